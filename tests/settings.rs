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
