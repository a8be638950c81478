//! `whatif` judges one capture under several policies in one pass; each column must be what
//! `analyze --policy` says alone, and the differing SYNs exactly those whose verdicts differ.

mod common;

use std::collections::BTreeMap;

use common::{analyze_json, pawscope, repo_root};
use serde_json::Value;

const POLICIES: [&str; 5] = [
    "linux",
    "linux-tw-recycle",
    "linux-tw-recycle-24day",
    "no-timestamps",
    "rfc7323",
];

fn syn_verdicts(pcap: &std::path::Path, policy: &str) -> BTreeMap<(String, u64, u64), String> {
    common::export_json_rows(pcap, "syns", &["--policy", policy])
        .iter()
        .map(|r| {
            let key = (
                format!("{}|{}", r["time"], r["client_port"]),
                r["isn"].as_u64().unwrap(),
                r["retransmission"].as_u64().unwrap(),
            );
            (key, r["verdict"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn each_policy_column_is_what_analyze_says_alone() {
    let pcap = repo_root().join("samples/nat-paws-reject.pcap");
    let mut args = vec!["whatif", pcap.to_str().unwrap(), "--json"];
    for p in POLICIES {
        args.extend(["--policy", p]);
    }
    let out = pawscope(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let columns = report["policies"].as_array().unwrap();
    assert_eq!(columns.len(), POLICIES.len());
    for (column, policy) in columns.iter().zip(POLICIES) {
        let alone = analyze_json(&pcap, &["--policy", policy]);
        assert_eq!(column["policy"], policy);
        assert_eq!(column["simulated"], alone["policy_simulated"], "{policy}");
        assert_eq!(column["simulated"], policy != "linux", "{policy}");
        assert_eq!(column["connections"], alone["connections"], "{policy}");
        for verdict in [
            "accepted",
            "paws_reject",
            "seq_reject",
            "no_listener",
            "unknown",
            "paws_passive_drop",
        ] {
            assert_eq!(
                column["verdicts"][verdict], alone["verdicts"][verdict],
                "{policy} {verdict}"
            );
        }
        for counter in [
            "PAWSTimewait",
            "PassiveOpens",
            "TCPACKSkippedTimeWait",
            "PAWSPassive",
        ] {
            assert_eq!(
                column["kernel_counters"][counter], alone["kernel_counters"][counter],
                "{policy} {counter}"
            );
        }
    }
    // The recycle policy drops SYNs silently on this NAT capture; current Linux never does.
    assert!(
        columns[1]["verdicts"]["paws_passive_drop"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(columns[0]["verdicts"]["paws_passive_drop"], 0);

    // Differences: exactly the SYNs whose verdicts are not all equal across the exports.
    let per_policy: Vec<_> = POLICIES.iter().map(|p| syn_verdicts(&pcap, p)).collect();
    let differing = per_policy[0]
        .keys()
        .filter(|key| per_policy.iter().any(|v| v[*key] != per_policy[0][*key]))
        .count();
    assert_eq!(report["differing_syns"].as_u64(), Some(differing as u64));
}

#[test]
fn simulated_policies_say_so_in_the_text() {
    let pcap = repo_root().join("samples/nat-paws-reject.pcap");
    let out = pawscope(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--policy",
        "linux-tw-recycle",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("linux-tw-recycle (simulated, not recorded from a kernel)"),
        "{text}"
    );
    let out = pawscope(&["whatif", pcap.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("linux-tw-recycle (simulated)"), "{text}");
}
