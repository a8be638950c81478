//! Every bundled sample was recorded from a real kernel; pawscope's predictions must equal
//! the server's own counters exactly.

mod common;

use common::{analyze_json, mismatches, read_json, repo_root};

fn samples() -> Vec<(String, std::path::PathBuf, serde_json::Value)> {
    let dir = repo_root().join("samples");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("samples/ exists") {
        let path = entry.expect("readable samples/").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".truth.json") {
            let pcap = dir.join(format!("{stem}.pcap"));
            assert!(pcap.exists(), "{} has no capture beside it", path.display());
            found.push((stem.to_string(), pcap, read_json(&path)));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn every_sample_matches_the_kernel_counters_it_was_recorded_with() {
    let samples = samples();
    assert!(
        samples.len() >= 5,
        "expected at least five samples, found {}",
        samples.len()
    );
    let mut failures = Vec::new();
    for (name, pcap, truth) in &samples {
        let report = analyze_json(pcap, &[]);
        failures.extend(mismatches(name, &report, truth));
        // Stricter than the counters: every SYN's first reply, silence included, as predicted.
        let off = &report["agreement"]["reply_not_as_predicted"];
        if off != 0 {
            failures.push(format!(
                "{name}: {off} SYNs got another reply than predicted"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn samples_cover_the_scenarios_the_tests_rely_on() {
    let samples = samples();
    let param = |truth: &serde_json::Value, key: &str| truth["params"][key].clone();
    let paws = |truth: &serde_json::Value| {
        truth["server_counters"]["TcpExtPAWSTimewait"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(
        samples
            .iter()
            .any(|(_, _, t)| param(t, "family") == 4 && paws(t) > 0),
        "IPv4 NAT with PAWS rejects"
    );
    assert!(
        samples
            .iter()
            .any(|(_, _, t)| param(t, "family") == 6 && paws(t) > 0),
        "IPv6 with PAWS rejects"
    );
    assert!(
        samples.iter().any(|(_, _, t)| t["params"]["client_ts"]
            .as_array()
            .is_some_and(|a| a.contains(&0.into()) && a.contains(&1.into()))),
        "clients with timestamps on and off"
    );
    assert!(
        samples.iter().any(|(_, _, t)| param(t, "server_ts") == 0),
        "a server with timestamps off"
    );
    assert!(
        samples.iter().any(|(_, _, t)| param(t, "rfc1337") == 1
            && t["params"]["invalid_ratelimit_ms"]
                .as_u64()
                .is_some_and(|ms| ms != 500)
            && t["server_counters"]["TcpExtTCPACKSkippedTimeWait"]
                .as_u64()
                .unwrap_or(0)
                > 0),
        "tcp_rfc1337=1 with a non-default tcp_invalid_ratelimit"
    );
    assert!(
        samples
            .iter()
            .any(|(_, _, t)| param(t, "close") == "client"),
        "clients closing first"
    );
    assert!(
        samples.iter().any(|(_, _, t)| param(t, "capture") == "any"),
        "a tcpdump -i any capture"
    );
}

#[test]
fn sll2_sample_really_is_linux_cooked_v2() {
    let dir = repo_root().join("samples");
    for (_, pcap, truth) in samples() {
        if truth["params"]["capture"] == "any" {
            let bytes = std::fs::read(&pcap).expect("read sample");
            let link = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
            assert_eq!(link, 276, "{} in {}", pcap.display(), dir.display());
        }
    }
}

#[test]
fn accepted_syns_out_of_time_wait_carry_the_predicted_server_isn() {
    for (name, pcap, truth) in samples() {
        let report = analyze_json(&pcap, &[]);
        let matched = report["time_wait"]["reopen_isn_matched"].as_u64().unwrap();
        let mismatched = report["time_wait"]["reopen_isn_mismatched"]
            .as_u64()
            .unwrap();
        assert_eq!(
            mismatched, 0,
            "{name}: SYN-ACK ISN differs from snd_nxt + 65537"
        );
        if truth["params"]["close"] == "server" {
            assert!(
                matched > 0,
                "{name}: no SYN accepted out of TIME_WAIT to check"
            );
        }
    }
}

#[test]
fn tcp_rfc1337_is_inferred_from_the_replies() {
    let mut checked = 0;
    for (name, pcap, truth) in samples() {
        // PAWS rejects bring challenge ACKs and the clients' RSTs: evidence of the setting.
        if truth["server_counters"]["TcpExtPAWSTimewait"]
            .as_u64()
            .unwrap_or(0)
            == 0
        {
            continue;
        }
        let report = analyze_json(&pcap, &[]);
        let recorded = format!("tcp_rfc1337={}", truth["params"]["rfc1337"]);
        // A rate limit other than the default is inferred too, and named.
        let settings = match truth["params"]["invalid_ratelimit_ms"].as_u64() {
            Some(ms) if ms != 500 => format!("{recorded}, tcp_invalid_ratelimit={ms}"),
            _ => recorded.clone(),
        };
        assert_eq!(report["settings"], settings.as_str(), "{name}");
        assert_eq!(report["settings_inferred"], true);
        // Forcing the other setting must make predictions and observations disagree:
        // the choice is real, not cosmetic.
        let other = if recorded.ends_with('1') { "0" } else { "1" };
        let forced = analyze_json(&pcap, &["--rfc1337", other]);
        let disagreements = forced["agreement"]["predicted_reject_observed_accept"]
            .as_u64()
            .unwrap()
            + forced["agreement"]["predicted_accept_observed_reject"]
                .as_u64()
                .unwrap();
        assert!(
            disagreements > 0,
            "{name}: tcp_rfc1337={other} fits as well"
        );
        checked += 1;
    }
    assert!(checked >= 3, "too few samples with PAWS rejects: {checked}");
}

#[test]
fn connect_attempts_match_what_the_clients_saw() {
    for (name, pcap, truth) in samples() {
        let report = analyze_json(&pcap, &[]);
        let attempts = &report["attempts"];
        let clients = &truth["clients"];
        // Every successful connect went through the server: exact.
        assert_eq!(attempts["established"], clients["successes"], "{name}");
        // Failed connects whose SYNs never left the client or the NAT are not in the capture.
        assert!(
            attempts["total"].as_u64() <= clients["attempts"].as_u64(),
            "{name}"
        );
        assert!(
            attempts["failed"].as_u64() <= clients["failures"].as_u64(),
            "{name}"
        );
    }
}
