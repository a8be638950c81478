//! Server settings: inferred from the capture's evidence, or stated with --sysctl, and a
//! finding when a stated value contradicts what the server was seen to do.

mod common;

use common::{analyze_json, pawscope, read_json, repo_root};

fn sample(name: &str) -> std::path::PathBuf {
    repo_root().join("samples").join(name)
}

#[test]
fn rfc1337_and_timestamps_are_inferred_as_recorded() {
    for name in ["nat-paws-reject", "rfc1337", "mixed-timestamps", "ipv6-nat"] {
        let truth = read_json(&sample(&format!("{name}.truth.json")));
        let report = analyze_json(&sample(&format!("{name}.pcap")), &[]);
        let settings = &report["server_settings"];
        let rfc1337 = &settings["net.ipv4.tcp_rfc1337"];
        assert_eq!(
            rfc1337["value"],
            truth["params"]["rfc1337"].to_string().as_str(),
            "{name}"
        );
        assert_eq!(rfc1337["source"], "inferred", "{name}");
        let timestamps = &settings["net.ipv4.tcp_timestamps"];
        assert_eq!(
            timestamps["value"],
            truth["params"]["server_ts"].to_string().as_str(),
            "{name}"
        );
        assert_eq!(timestamps["source"], "inferred", "{name}");
        // Linux MASQUERADE reuses a public tuple only once sequence numbers moved past it
        // (kernel-paws.md) — except where RSTs ended connections and the NAT's entries early.
        if name != "rfc1337" {
            assert_eq!(
                settings["nat_port_reuse"]["value"], "sequence-aware",
                "{name}"
            );
        }
    }
}

#[test]
fn the_rate_limit_evidence_brackets_500_ms() {
    let report = analyze_json(&sample("rfc1337.pcap"), &[]);
    let limit = &report["server_settings"]["net.ipv4.tcp_invalid_ratelimit"];
    assert_eq!(limit["value"], "500");
    assert_eq!(limit["source"], "inferred");
    assert_eq!(limit["contradicted"], false, "{limit}");
    // Stating 100 ms contradicts SYNs left unanswered more than 100 ms after an ACK.
    let stated = analyze_json(
        &sample("rfc1337.pcap"),
        &["--sysctl", "net.ipv4.tcp_invalid_ratelimit=100"],
    );
    let limit = &stated["server_settings"]["net.ipv4.tcp_invalid_ratelimit"];
    assert_eq!(limit["source"], "given");
    assert_eq!(limit["contradicted"], true, "{limit}");
    assert!(
        stated["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "setting-contradicted")
    );
}

#[test]
fn a_stated_rfc1337_is_used_and_checked() {
    // The recorded server had tcp_rfc1337=1; stating 0 forces the wrong model.
    let report = analyze_json(
        &sample("rfc1337.pcap"),
        &["--sysctl", "net.ipv4.tcp_rfc1337=0"],
    );
    let setting = &report["server_settings"]["net.ipv4.tcp_rfc1337"];
    assert_eq!(setting["value"], "0");
    assert_eq!(setting["source"], "given");
    assert_eq!(setting["contradicted"], true);
    assert_eq!(report["settings_inferred"], false);
    let right = analyze_json(
        &sample("rfc1337.pcap"),
        &["--sysctl", "net.ipv4.tcp_rfc1337=1"],
    );
    assert_eq!(
        right["server_settings"]["net.ipv4.tcp_rfc1337"]["contradicted"],
        false
    );
}

#[test]
fn unknown_settings_are_usage_errors() {
    let out = pawscope(&[
        "analyze",
        sample("rfc1337.pcap").to_str().unwrap(),
        "--sysctl",
        "net.ipv4.tcp_fin_timeout=30",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting"));
}

#[test]
fn the_summary_prints_the_settings_used() {
    let out = pawscope(&["analyze", sample("rfc1337.pcap").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("server settings:") && text.contains("tcp_rfc1337=1 (inferred)"),
        "{text}"
    );
}

/// The recorded scenarios: predicted counters equal the kernel's with the settings
/// inferred (no flags) and again with them stated, and the inferred values are the recorded
/// ones.
#[test]
fn recorded_settings_are_inferred_and_the_kernel_counters_follow_either_way() {
    let cases: [(&str, &[&str]); 3] = [
        ("rfc1337", &["--sysctl", "net.ipv4.tcp_rfc1337=1"]),
        (
            "rfc1337-ratelimit-100",
            &[
                "--sysctl",
                "net.ipv4.tcp_rfc1337=1",
                "--sysctl",
                "net.ipv4.tcp_invalid_ratelimit=100",
            ],
        ),
        (
            "server-timestamps-off",
            &["--sysctl", "net.ipv4.tcp_timestamps=0"],
        ),
    ];
    for (name, stated) in cases {
        let truth = read_json(&sample(&format!("{name}.truth.json")));
        let pcap = sample(&format!("{name}.pcap"));
        let params = &truth["params"];
        let recorded = [
            ("net.ipv4.tcp_rfc1337", params["rfc1337"].to_string()),
            (
                "net.ipv4.tcp_invalid_ratelimit",
                params
                    .get("invalid_ratelimit_ms")
                    .map_or("500".to_string(), |v| v.to_string()),
            ),
            ("net.ipv4.tcp_timestamps", params["server_ts"].to_string()),
        ];
        for (flags, source) in [(&[][..], "inferred"), (stated, "given")] {
            let report = analyze_json(&pcap, flags);
            let failures = common::mismatches(name, &report, &truth);
            assert!(failures.is_empty(), "{name} {flags:?}: {failures:?}");
            assert_eq!(report["agreement"]["reply_not_as_predicted"], 0, "{name}");
            for (key, value) in &recorded {
                let setting = &report["server_settings"][key];
                assert_eq!(setting["value"], value.as_str(), "{name} {flags:?} {key}");
                assert_eq!(setting["contradicted"], false, "{name} {flags:?} {key}");
                if flags.iter().any(|f| f.starts_with(key)) {
                    assert_eq!(setting["source"], source, "{name} {key}");
                }
            }
        }
    }
    // The captures show the settings, so no SYN's reason says it rests on an assumption.
    for name in ["rfc1337", "rfc1337-ratelimit-100", "nat-paws-reject"] {
        let rows = common::export_json_rows(&sample(&format!("{name}.pcap")), "syns", &[]);
        assert!(!rows.is_empty());
        for row in rows {
            let reason = row["reason"].as_str().unwrap_or("");
            assert!(!reason.contains("does not show"), "{name}: {reason}");
        }
    }
    // Without the inferred limit, 500 ms would predict challenge ACKs the kernel suppressed
    // (and the other way round): the limit had to be inferred, not defaulted.
    let report = analyze_json(&sample("rfc1337-ratelimit-100.pcap"), &[]);
    assert_eq!(
        report["server_settings"]["net.ipv4.tcp_invalid_ratelimit"]["source"],
        "inferred"
    );
    let forced = analyze_json(
        &sample("rfc1337-ratelimit-100.pcap"),
        &["--sysctl", "net.ipv4.tcp_invalid_ratelimit=500"],
    );
    assert_ne!(
        forced["kernel_counters"]["TCPACKSkippedTimeWait"],
        report["kernel_counters"]["TCPACKSkippedTimeWait"]
    );
    assert_eq!(
        forced["server_settings"]["net.ipv4.tcp_invalid_ratelimit"]["contradicted"],
        true
    );
}

/// Were the replies not in the capture, nothing would show tcp_rfc1337: the SYNs whose verdict
/// follows what an in-window RST did to the TIME_WAIT say that it rests on the setting.
#[test]
fn reasons_say_when_a_verdict_rests_on_a_setting_nothing_shows() {
    let pcap = sample("nat-paws-reject.pcap");
    let mut analysis = common::analysis_with_records(&pcap, pawscope::analysis::DEFAULT_PORT_RANGE);
    let reasons = |analysis: &pawscope::analysis::Analysis| -> Vec<String> {
        let syns = &analysis.records.as_ref().unwrap().syns;
        syns.iter().map(|s| s.reason_text()).collect()
    };
    assert!(analysis.settings_evidence);
    assert!(
        reasons(&analysis)
            .iter()
            .all(|r| !r.contains("does not show"))
    );
    let after_rst = analysis
        .records
        .as_ref()
        .unwrap()
        .syns
        .iter()
        .filter(|s| s.rests_on == Some(pawscope::flow::Assumption::Rfc1337Off))
        .count();
    assert!(after_rst > 0, "no SYN followed an RST on a TIME_WAIT");
    // The same analysis, had the candidates tied.
    analysis.settings_evidence = false;
    let unsupported = pawscope::analysis::UnsupportedAssumptions::of(&analysis);
    let records = analysis.records.as_mut().unwrap();
    records
        .syns
        .iter_mut()
        .for_each(|syn| unsupported.mark(syn));
    let noted: Vec<String> = reasons(&analysis)
        .into_iter()
        .filter(|r| r.contains("rests on tcp_rfc1337=0"))
        .collect();
    assert_eq!(noted.len(), after_rst, "{noted:?}");
    // The export's syns table carries the same words.
    let records = analysis.records.as_ref().unwrap();
    let tables =
        pawscope::table::Tables::build(&records.syns, &records.incarnations, &analysis.nat)
            .expect("tables");
    let reasons = tables.syns.column("reason").unwrap();
    let column = reasons.cast(&polars::prelude::DataType::String).unwrap();
    let column = column.str().unwrap();
    let in_table = column
        .iter()
        .flatten()
        .filter(|r| r.contains("which the capture does not show"))
        .count();
    assert_eq!(in_table, after_rst);
}

/// A capture with no evidence of a setting reports the default, and says nothing shows it.
#[test]
fn settings_without_evidence_are_defaults_and_say_so() {
    // The clients close first: the server holds no TIME_WAIT, so no SYN meets one.
    let report = analyze_json(&sample("client-closes-first.pcap"), &[]);
    let settings = &report["server_settings"];
    let rfc1337 = &settings["net.ipv4.tcp_rfc1337"];
    assert_eq!(rfc1337["value"], "0");
    assert_eq!(rfc1337["source"], "default");
    assert!(
        rfc1337["evidence"]
            .as_str()
            .unwrap()
            .contains("nothing shows the setting"),
        "{rfc1337}"
    );
    let limit = &settings["net.ipv4.tcp_invalid_ratelimit"];
    assert_eq!(limit["value"], "500");
    assert_eq!(limit["source"], "default");
    assert_eq!(settings["nat_port_reuse"]["source"], "default");
    // The SYN-ACKs still show the server's timestamps.
    assert_eq!(settings["net.ipv4.tcp_timestamps"]["source"], "inferred");
    assert_eq!(settings["net.ipv4.tcp_timestamps"]["value"], "1");
}

/// TIME_WAIT length and PAWS staleness are options only: stated, they are reported as given
/// and judged with.
#[test]
fn kernel_constants_given_as_options_are_reported_and_used() {
    let pcap = sample("nat-paws-reject.pcap");
    let default = analyze_json(&pcap, &[]);
    assert_eq!(
        default["server_settings"]["paws_stale_secs"]["value"],
        "2147"
    );
    assert_eq!(
        default["server_settings"]["paws_stale_secs"]["source"],
        "default"
    );
    assert_eq!(
        default["server_settings"]["time_wait_len_secs"]["source"],
        "default"
    );
    // A ts_recent trusted for only a millisecond: PAWS never compares, so no SYN fails it,
    // and the replies seen contradict that.
    let stale = analyze_json(&pcap, &["--paws-stale", "0.001", "--tw-len", "60"]);
    let settings = &stale["server_settings"];
    assert_eq!(settings["paws_stale_secs"]["value"], "0.001");
    assert_eq!(settings["paws_stale_secs"]["source"], "given");
    assert_eq!(settings["time_wait_len_secs"]["source"], "default");
    assert_eq!(stale["kernel_counters"]["PAWSTimewait"], 0);
    assert!(default["kernel_counters"]["PAWSTimewait"].as_u64().unwrap() > 0);
    let given_tw = analyze_json(&pcap, &["--tw-len", "30"]);
    assert_eq!(
        given_tw["server_settings"]["time_wait_len_secs"]["value"],
        "30"
    );
    assert_eq!(
        given_tw["server_settings"]["time_wait_len_secs"]["source"],
        "given"
    );
}
