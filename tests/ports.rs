//! Client port exhaustion, on a capture recorded from clients that close first with a
//! 50-port local range, faster than 50 ports per 60 s: their connect() failed with
//! EADDRNOTAVAIL and sent no SYN. The exhaustion pawscope dates from the capture must come
//! just before the clients' first failure.

mod common;

use common::{analyze_json, read_json, repo_root};
use serde_json::Value;

fn seconds(rfc3339: &Value) -> f64 {
    // "2026-11-26T11:03:16.858850000Z": seconds within the day are enough here.
    let time = rfc3339
        .as_str()
        .expect("time")
        .split('T')
        .nth(1)
        .expect("time part");
    let parts: Vec<f64> = time
        .trim_end_matches('Z')
        .split(':')
        .map(|p| p.parse().expect("number"))
        .collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

#[test]
fn exhaustion_is_dated_just_before_the_first_eaddrnotavail() {
    let dir = repo_root().join("samples");
    let truth = read_json(&dir.join("client-port-exhaustion.truth.json"));
    let range = truth["params"]["client_port_range"]
        .as_str()
        .expect("range");
    let pcap = dir.join("client-port-exhaustion.pcap");
    let report = analyze_json(&pcap, &["--port-range", range]);
    let usage = truth["client_port_usage"]
        .as_object()
        .expect("client_port_usage");
    let ports = report["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), usage.len());

    // Each client's first SYN, from the syns table.
    let syns = common::export_json_rows(&pcap, "syns", &[]);

    for (client, used) in usage {
        let entry = ports
            .iter()
            .find(|p| p["client_address"] == client.as_str())
            .expect("client");
        assert_eq!(entry["port_range_size"], 50);
        assert_eq!(entry["peak_ports_in_use"], 50, "{client}");
        assert_eq!(entry["connections"], used["local_ports_used"], "{client}");
        assert_eq!(
            entry["client_time_waits"], entry["connections"],
            "{client} closes first"
        );
        let first_syn = syns
            .iter()
            .filter(|s| s["client_addr"] == client.as_str())
            .map(|s| {
                let t = s["time"].as_str().unwrap().replace(' ', "T");
                seconds(&Value::String(t))
            })
            .fold(f64::INFINITY, f64::min);
        let exhausted = seconds(&entry["exhausted_at"]) - first_syn;
        let failed = used["first_addr_not_available_s"]
            .as_f64()
            .expect("first failure");
        assert!(
            exhausted <= failed && failed - exhausted < 1.0,
            "{client}: exhausted after {exhausted:.3} s, first EADDRNOTAVAIL after {failed:.3} s"
        );
        assert!(
            entry["peak_rate_per_s"].as_f64().unwrap()
                > entry["sustainable_rate_per_s"].as_f64().unwrap()
        );
    }
}

#[test]
fn nat_samples_with_the_default_range_are_not_exhausted() {
    let report = analyze_json(&repo_root().join("samples/nat-paws-reject.pcap"), &[]);
    for entry in report["ports"].as_array().unwrap() {
        assert!(entry["exhausted_at"].is_null());
        assert_eq!(entry["port_range_size"], 60999 - 32768 + 1);
    }
}
