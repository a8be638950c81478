//! Timestamp clocks behind NAT addresses, on captures recorded from Linux 6.18 clients.
//! Those kernels derive the TSval offset from the whole 4-tuple, so every connection starts a
//! clock of its own: the clocks found must be exactly the connections that carried
//! timestamps, and the address must be reported as per-connection (hosts not countable).

mod common;

use std::collections::BTreeSet;

use common::{analyze_json, read_json, repo_root};

#[test]
fn recorded_linux_clients_start_one_clock_per_connection() {
    let dir = repo_root().join("samples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("samples/") {
        let path = entry.expect("entry").path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".truth.json"))
        else {
            continue;
        };
        let truth = read_json(&path);
        if truth["params"]["nat"] == "none" {
            continue;
        }
        let pcap = dir.join(format!("{stem}.pcap"));
        let report = analyze_json(&pcap, &[]);
        let nat_public = truth["params"]["nat_public"].as_str().expect("nat_public");
        let address = report["nat"]
            .as_array()
            .expect("nat")
            .iter()
            .find(|a| a["address"] == nat_public)
            .unwrap_or_else(|| panic!("{stem}: no clocks for {nat_public}"));
        assert_eq!(address["clock_model"], "per_connection", "{stem}");
        assert_eq!(address["hosts_lower_bound"], 1, "{stem}");

        // Connections with timestamps, counted independently from the SYNs themselves: the
        // ISNs of SYNs carrying a TSval. A retransmission repeats its ISN (and its clock), even
        // when the NAT moved it to another public port.
        let syns = syn_ids_with_timestamps(&pcap);
        assert_eq!(
            address["clocks"].as_u64(),
            Some(syns.len() as u64),
            "{stem}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} NAT samples");
}

/// The ISN of every SYN with a timestamp option, read from `export --format json`.
fn syn_ids_with_timestamps(pcap: &std::path::Path) -> BTreeSet<u64> {
    common::export_json_rows(pcap, "syns", &[])
        .iter()
        .filter(|r| !r["tsval"].is_null())
        .map(|r| r["isn"].as_u64().unwrap())
        .collect()
}
