//! `pawscope simulate` writes captures that `info` and `analyze` read, with a ground truth
//! from its own server model; for a current-Linux server the analyzer's predictions must
//! equal that truth exactly, as they equal the recorded samples' kernel counters.

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, analyze_json, mismatches, pawscope, read_json};
use serde_json::Value;

/// A fresh directory for one test's files.
fn scratch(test: &str) -> Scratch {
    Scratch::new("simulate", test)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs `simulate` into `dir/name.pcap` with its truth; panics with stderr when it fails.
fn simulate(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, Value) {
    let pcap = dir.join(format!("{name}.pcap"));
    let truth = dir.join(format!("{name}.truth.json"));
    let mut all = vec![
        "simulate",
        "-o",
        path_str(&pcap),
        "--truth",
        path_str(&truth),
    ];
    all.extend_from_slice(args);
    let out = pawscope(&all);
    assert!(
        out.status.success(),
        "pawscope {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pcap, read_json(&truth))
}

fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("missing number at {pointer}"))
}

fn info_json(capture: &Path) -> Value {
    let out = pawscope(&["info", path_str(capture), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("info --json prints JSON")
}

/// What every simulated capture must satisfy, whatever the server model: the readers count
/// the packets and SYNs the generator wrote.
fn readable_as_written(name: &str, pcap: &Path, truth: &Value) -> Value {
    let info = info_json(pcap);
    let file = &info["files"][0];
    assert_eq!(
        num(file, "/packets"),
        num(truth, "/packets"),
        "{name}: info packets"
    );
    assert_eq!(num(file, "/tcp_segments"), num(truth, "/packets"), "{name}");
    assert_eq!(
        num(file, "/packets_by_link_type/101"),
        num(truth, "/packets")
    );
    assert_eq!(
        num(file, "/syns"),
        num(truth, "/syns/sent"),
        "{name}: info syns"
    );
    assert_eq!(file["skipped"], serde_json::json!({}), "{name}");
    let report = analyze_json(pcap, &[]);
    assert_eq!(
        num(&report, "/capture/packets"),
        num(truth, "/packets"),
        "{name}: analyze packets"
    );
    assert_eq!(
        num(&report, "/syn/total"),
        num(truth, "/syns/sent"),
        "{name}: SYNs"
    );
    assert_eq!(
        num(&report, "/syn/retransmissions"),
        num(truth, "/syns/retransmissions"),
        "{name}: SYN retransmissions"
    );
    assert_eq!(num(&report, "/capture/out_of_order"), 0, "{name}");
    assert_eq!(report["capture"]["first_ts"], truth["capture"]["first_ts"]);
    assert_eq!(report["capture"]["last_ts"], truth["capture"]["last_ts"]);
    report
}

/// The truth's own bookkeeping adds up.
fn truth_adds_up(name: &str, truth: &Value) {
    assert_eq!(
        num(truth, "/connects/attempted"),
        num(truth, "/connects/established") + num(truth, "/connects/failed"),
        "{name}"
    );
    assert_eq!(
        num(truth, "/syns/sent"),
        num(truth, "/syns/answered_syn_ack")
            + num(truth, "/syns/answered_challenge_ack")
            + num(truth, "/syns/unanswered"),
        "{name}"
    );
    assert_eq!(
        num(truth, "/syns/unanswered"),
        num(truth, "/syns/dropped_by_server") + num(truth, "/challenge_acks/rate_limited"),
        "{name}"
    );
    assert_eq!(
        num(truth, "/syns/dropped_by_server"),
        num(truth, "/server_counters/TcpExtPAWSPassive")
    );
    assert_eq!(
        num(truth, "/connects/established"),
        num(truth, "/server_counters/TcpPassiveOpens")
    );
    assert!(num(truth, "/connects/failed_at_nat") <= num(truth, "/connects/failed"));
    assert_eq!(
        num(truth, "/time_wait/entered"),
        num(truth, "/server_counters/TcpExtTW")
    );
    let nats = truth["nat"].as_array().expect("nat list");
    let hosts = truth["hosts"].as_array().expect("host list");
    assert_eq!(nats.len() as u64, num(truth, "/params/nat_addrs"));
    assert_eq!(hosts.len() as u64, num(truth, "/params/hosts"));
    let behind: u64 = nats.iter().map(|n| num(n, "/hosts")).sum();
    assert_eq!(behind, hosts.len() as u64, "{name}");
    let with_ts: u64 = nats.iter().map(|n| num(n, "/hosts_with_timestamps")).sum();
    let hosts_ts = hosts.iter().filter(|h| h["timestamps"] == true).count() as u64;
    assert_eq!(with_ts, hosts_ts, "{name}");
    let connects: u64 = hosts.iter().map(|h| num(h, "/connects")).sum();
    assert_eq!(connects, num(truth, "/connects/attempted"), "{name}");
    let nat_drops: u64 = nats.iter().map(|n| num(n, "/syns_dropped")).sum();
    assert_eq!(nat_drops, num(truth, "/syns/dropped_by_nat"), "{name}");
}

#[test]
fn linux_server_captures_match_the_analyzer_exactly() {
    let dir = scratch("linux");
    let scenarios: &[(&str, &[&str])] = &[
        ("defaults", &[]),
        (
            "pressure",
            &[
                "--rate",
                "40",
                "--duration",
                "20",
                "--hosts",
                "8",
                "--seed",
                "3",
            ],
        ),
        (
            "ipv6-mixed-clocks",
            &[
                "--server-addr",
                "[2001:db8:2::10]:80",
                "--hosts",
                "9",
                "--nat-addrs",
                "2",
                "--timestamps",
                "mixed",
                "--clock-rates",
                "1000,250,10",
                "--clock-spread",
                "50",
                "--rate",
                "30",
                "--duration",
                "20",
            ],
        ),
        (
            "client-closes",
            &["--close", "client", "--rate", "40", "--duration", "10"],
        ),
        (
            "timestamps-off",
            &["--timestamps", "off", "--rate", "20", "--duration", "20"],
        ),
        (
            "fixed-close-clocks",
            &[
                "--arrivals",
                "fixed",
                "--rate",
                "50",
                "--duration",
                "10",
                "--hosts",
                "10",
                "--clock-rates",
                "1000,250",
                "--clock-spread",
                "0",
                "--ports",
                "40000-40004",
            ],
        ),
        (
            "random-ports",
            &[
                "--port-order",
                "random",
                "--ports",
                "40000-40019",
                "--nat-addrs",
                "2",
                "--hosts",
                "8",
                "--rate",
                "40",
                "--duration",
                "20",
            ],
        ),
    ];
    let mut failures = Vec::new();
    let (mut paws, mut seq, mut nat_drops, mut client_closes) = (0, 0, 0, 0);
    for (name, args) in scenarios {
        let (pcap, truth) = simulate(&dir, name, args);
        truth_adds_up(name, &truth);
        let report = readable_as_written(name, &pcap, &truth);
        failures.extend(mismatches(name, &report, &truth));
        attempts_match(name, &dir, &pcap, &truth);
        if report["settings"] != "tcp_rfc1337=0" {
            failures.push(format!("{name}: settings {}", report["settings"]));
        }
        if num(&report, "/time_wait/reopen_isn_mismatched") != 0 {
            failures.push(format!("{name}: SYN-ACK ISN not snd_nxt + 65537"));
        }
        if num(&report, "/time_wait/reopen_isn_matched")
            != num(&truth, "/time_wait/reopened_by_syn")
        {
            failures.push(format!("{name}: SYNs accepted out of TIME_WAIT differ"));
        }
        if num(&report, "/time_wait/killed_by_rst") != num(&truth, "/time_wait/killed_by_rst") {
            failures.push(format!("{name}: TIME_WAITs killed by RST differ"));
        }
        if num(&report, "/syn/replies/challenge_ack") != num(&truth, "/challenge_acks/sent") {
            failures.push(format!("{name}: challenge ACKs differ"));
        }
        if num(&report, "/verdicts/seq_reject") != num(&truth, "/time_wait/seq_rejects") {
            failures.push(format!("{name}: sequence rejects differ"));
        }
        paws += num(&truth, "/server_counters/TcpExtPAWSTimewait");
        seq += num(&truth, "/time_wait/seq_rejects");
        nat_drops += num(&truth, "/syns/dropped_by_nat");
        client_closes += num(&report, "/time_wait/client_held");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The scenarios exercise what they are meant to.
    assert!(paws > 0, "no PAWS rejects");
    assert!(seq > 0, "no sequence rejects");
    assert!(nat_drops > 0, "no NAT port exhaustion");
    assert!(client_closes > 0, "no client-first closes");
}

/// `export`'s attempts table chains each connect's SYNs: one row per connect that reached
/// the capture, established exactly when the truth says.
fn attempts_match(name: &str, dir: &Path, pcap: &Path, truth: &Value) {
    let out_dir = dir.join(format!("{name}-tables"));
    let out = pawscope(&[
        "export",
        path_str(pcap),
        "-o",
        path_str(&out_dir),
        "--tables",
        "attempts",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_json(&out_dir.join("attempts.json"));
    let rows = rows.as_array().expect("attempts rows");
    assert_eq!(
        rows.len() as u64,
        num(truth, "/connects/attempted") - num(truth, "/connects/failed_at_nat"),
        "{name}: attempts"
    );
    let established = rows
        .iter()
        .filter(|r| r["outcome"] == "established")
        .count() as u64;
    assert_eq!(established, num(truth, "/connects/established"), "{name}");
    let syns: u64 = rows.iter().map(|r| num(r, "/syns")).sum();
    assert_eq!(syns, num(truth, "/syns/sent"), "{name}: SYNs chained");
}

#[test]
fn no_timestamps_server_matches_the_analyzer_exactly() {
    let dir = scratch("no-ts");
    let (pcap, truth) = simulate(
        &dir,
        "no-ts",
        &[
            "--server",
            "no-timestamps",
            "--rate",
            "20",
            "--duration",
            "20",
        ],
    );
    truth_adds_up("no-ts", &truth);
    let report = readable_as_written("no-ts", &pcap, &truth);
    attempts_match("no-ts", &dir, &pcap, &truth);
    let failures = mismatches("no-ts", &report, &truth);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(num(&truth, "/server_counters/TcpExtPAWSTimewait"), 0);
    assert!(num(&truth, "/time_wait/seq_rejects") > 0);
    // The clients offer timestamps in their SYNs; the server never takes them up, so no
    // other segment carries one.
    let bytes = std::fs::read(&pcap).expect("read capture");
    assert!(!timestamp_beyond_client_syns(&bytes));
}

/// Whether any record other than a SYN without ACK has a timestamp option (kind 8) among
/// its TCP options. Raw IPv4 records only.
fn timestamp_beyond_client_syns(pcap: &[u8]) -> bool {
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let ip = &pcap[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        let tcp = &ip[usize::from(ip[0] & 0x0f) * 4..];
        if tcp[13] & 0x12 == 0x02 {
            continue;
        }
        let options = &tcp[20..usize::from(tcp[12] >> 4) * 4];
        let mut i = 0;
        while i < options.len() {
            match options[i] {
                0 => break,
                1 => i += 1,
                8 => return true,
                _ => i += usize::from(options[i + 1].max(2)),
            }
        }
    }
    false
}

/// Two hosts behind one NAT address take turns every 10 s, the server closing first. Both
/// clocks start at the same reading (`--clock-spread 0`), but host A's ticks at 1000 Hz and
/// host B's at 10 Hz, so from A's second connect on (t = 20 s), A's stored timestamp is far
/// ahead of anything B sends for the next 60 s. The expected drops follow from the
/// tcp_tw_recycle rule alone, evaluated here without the simulator's server model.
#[test]
fn tw_recycle_drops_match_the_closed_form() {
    const GAP: f64 = 10.0;
    const CONNECTS: u32 = 10;
    const RATES: [f64; 2] = [1000.0, 10.0];
    // When an unanswered SYN is sent again, after the first (the truth's model says so too).
    const RETRANSMITS: [f64; 3] = [1.0, 3.0, 7.0];
    let dir = scratch("recycle");
    let (pcap, truth) = simulate(
        &dir,
        "recycle",
        &[
            "--server",
            "tw-recycle",
            "--hosts",
            "2",
            "--nat-addrs",
            "1",
            "--ports",
            "40000-40009",
            "--arrivals",
            "fixed",
            "--rate",
            "0.1",
            "--duration",
            "100",
            "--clock-rates",
            "1000,10",
            "--clock-spread",
            "0",
            "--close",
            "server",
        ],
    );
    assert_eq!(
        truth["model"]["syn_retransmits_secs"],
        serde_json::json!(RETRANSMITS)
    );
    let offsets: Vec<u64> = (0..2)
        .map(|i| num(&truth, &format!("/hosts/{i}/clock_offset")))
        .collect();
    assert_eq!(
        offsets[0], offsets[1],
        "--clock-spread 0: one starting reading"
    );

    // Closed form. With a common offset, a host's TSval at t is offset + rate * t (ticks);
    // A (host 0) connects at even multiples of GAP, B (host 1) at odd ones. A's connects are
    // never dropped (its clock is the newest). The server stores A's timestamp when A's
    // connection enters TIME_WAIT, milliseconds after A's connect at time c; B's SYN at t is
    // dropped iff t < c + 60 and (s32)(stored - tsval_B) > 1 for the latest such A close,
    // i.e. 1000 c - 10 t > 1. (A's close is a few ms after c: 1000 c moves by a few ticks,
    // which changes no comparison here; the margins are 100 ticks or more.) B's successful
    // connects happen only before A's clock pulls ahead, so B never overwrites A's stamp
    // afterwards.
    let mut expected_drops = 0;
    let mut expected_failed = 0;
    for k in (1..CONNECTS).step_by(2) {
        let start = f64::from(k) * GAP;
        let last_a_close = f64::from(k - 1) * GAP;
        let syn_times = std::iter::once(start).chain(RETRANSMITS.iter().map(|r| start + r));
        let mut all_dropped = true;
        for t in syn_times {
            let dropped = t < last_a_close + 60.0 && RATES[0] * last_a_close - RATES[1] * t > 1.0;
            if dropped {
                expected_drops += 1;
            } else {
                all_dropped = false;
                // B's SYN is accepted: no retransmissions follow.
                break;
            }
        }
        expected_failed += u64::from(all_dropped);
    }
    assert_eq!(expected_drops, 16, "the scenario as designed");
    assert_eq!(num(&truth, "/syns/dropped_by_server"), expected_drops);
    assert_eq!(
        num(&truth, "/server_counters/TcpExtPAWSPassive"),
        expected_drops
    );
    assert_eq!(num(&truth, "/connects/failed"), expected_failed);
    assert_eq!(
        num(&truth, "/connects/established"),
        u64::from(CONNECTS) - expected_failed
    );
    truth_adds_up("recycle", &truth);
    let report = readable_as_written("recycle", &pcap, &truth);
    // Every dropped SYN shows in the capture with no reply.
    assert_eq!(num(&report, "/syn/replies/none"), expected_drops);
    attempts_match("recycle", &dir, &pcap, &truth);
}

#[test]
fn tw_recycle_captures_are_readable_and_drop_syns() {
    let dir = scratch("recycle-poisson");
    for server in ["tw-recycle", "tw-recycle-24day"] {
        let (pcap, truth) = simulate(
            &dir,
            server,
            &[
                "--server",
                server,
                "--rate",
                "5",
                "--duration",
                "30",
                "--timestamps",
                "mixed",
                "--hosts",
                "6",
                "--ports",
                "40000-40019",
            ],
        );
        truth_adds_up(server, &truth);
        let report = readable_as_written(server, &pcap, &truth);
        assert!(num(&truth, "/syns/dropped_by_server") > 0, "{server}");
        assert!(num(&report, "/syn/replies/none") >= num(&truth, "/syns/dropped_by_server"));
        assert_eq!(truth["params"]["server"], server);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = scratch("determinism");
    let args = ["--rate", "30", "--duration", "5", "--timestamps", "mixed"];
    let with_seed = |name: &str, seed: &str| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--seed", seed]);
        let (pcap, _) = simulate(&dir, name, &all);
        let truth = dir.join(format!("{name}.truth.json"));
        (
            std::fs::read(pcap).expect("read capture"),
            std::fs::read(truth).expect("read truth"),
        )
    };
    let first = with_seed("a", "42");
    let again = with_seed("b", "42");
    let other = with_seed("c", "43");
    assert!(first.0 == again.0, "same seed, different captures");
    assert!(first.1 == again.1, "same seed, different truths");
    assert!(first.0 != other.0, "different seeds, same capture");
}

#[test]
fn bad_parameters_give_one_line_and_status_2() {
    let dir = scratch("bad");
    let out = dir.join("never.pcap");
    let truth = dir.join("never.json");
    let cases: &[(&[&str], &str)] = &[
        (&["--hosts", "0"], "--hosts"),
        (&["--hosts", "many"], "--hosts"),
        (&["--nat-addrs", "9"], "--nat-addrs"),
        (&["--ports", "40010-40000"], "--ports"),
        (&["--rate", "-1"], "--rate"),
        (&["--duration", "0"], "--duration"),
        (&["--close", "nobody"], "--close"),
        (&["--timestamps", "sometimes"], "--timestamps"),
        (&["--clock-rates", "1000,x"], "--clock-rates"),
        (&["--clock-spread", "-1"], "--clock-spread"),
        (&["--server", "windows"], "--server"),
        (&["--server-addr", "nowhere"], "--server-addr"),
        (&["--seed", "1.5"], "--seed"),
        (&["--port-order", "sequential"], "--port-order"),
        (&["--rate", "100000", "--duration", "1000"], "100000000"),
    ];
    for (args, expect) in cases {
        let mut all = vec![
            "simulate",
            "-o",
            path_str(&out),
            "--truth",
            path_str(&truth),
        ];
        all.extend_from_slice(args);
        let result = pawscope(&all);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir).expect("read dir").collect();
    assert!(left.is_empty(), "nothing written on refusal: {left:?}");
}

#[test]
fn outputs_appear_whole_or_not_at_all() {
    let dir = scratch("atomic");
    let (_, truth) = simulate(&dir, "ok", &["--duration", "2"]);
    assert!(num(&truth, "/packets") > 0);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ok.pcap", "ok.truth.json"], "no temporaries left");

    // The truth cannot be written: the capture must not appear either.
    let pcap = dir.join("half.pcap");
    let result = pawscope(&[
        "simulate",
        "-o",
        path_str(&pcap),
        "--truth",
        path_str(&dir.join("missing-dir/half.json")),
        "--duration",
        "2",
    ]);
    assert!(!result.status.success());
    assert_eq!(String::from_utf8_lossy(&result.stderr).lines().count(), 1);
    assert!(!pcap.exists());
    assert_eq!(std::fs::read_dir(&dir).expect("read dir").count(), 2);
}

/// Recent Linux offsets each connection's timestamps: a clock per connection. `analyze`
/// (no tables) counts the clocks that ended instead of keeping them; the counts equal the
/// clocks the exported `nat_hosts` table (which keeps every clock, one row each) lists, and
/// the server's counters are still predicted exactly.
#[test]
fn per_connection_clocks_are_counted_as_the_table_lists_them() {
    let dir = scratch("per-connection");
    let (pcap, truth) = simulate(
        &dir,
        "per-connection",
        &[
            "--clock-offsets",
            "per-connection",
            "--hosts",
            "6",
            "--nat-addrs",
            "1",
            "--ports",
            "40000-40199",
            "--rate",
            "40",
            "--duration",
            "300",
        ],
    );
    assert_eq!(truth["params"]["clock_offsets"], "per-connection");
    let report = analyze_json(&pcap, &[]);
    let failures = mismatches("per-connection", &report, &truth);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Each connection's TSval is unrelated to the last one on its tuple: PAWS rejects.
    assert!(num(&report, "/verdicts/paws_reject") > 0);
    let nat = &report["nat"][0];
    assert_eq!(nat["clock_model"], "per_connection");
    assert_eq!(nat["hosts_lower_bound"], 1);
    let rows = common::export_json_rows(&pcap, "nat_hosts", &[]);
    let listed = rows
        .iter()
        .filter(|row| row["address"] == nat["address"])
        .count() as u64;
    // About a clock per connection (a few land on another's line by chance): 12 000
    // connections, far more than the few hundred of the last TIME_WAIT length.
    assert!(listed > 10_000, "{listed} clocks listed");
    assert_eq!(num(nat, "/clocks"), listed);
    let measured = rows
        .iter()
        .filter(|row| row["address"] == nat["address"] && row["rate_hz"].is_number())
        .count();
    assert_eq!(
        nat["clock_rates_hz"].as_array().map(Vec::len),
        Some(measured)
    );
}
