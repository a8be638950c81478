//! Findings on the recorded samples: the right problems named, with the analysis's own
//! numbers as evidence, and "all clear" when nothing is wrong.

mod common;

use common::{analyze_json, repo_root};
use serde_json::Value;

fn findings(sample: &str, extra: &[&str]) -> (Value, Vec<Value>) {
    let report = analyze_json(&repo_root().join("samples").join(sample), extra);
    let list = report["findings"].as_array().expect("findings").clone();
    (report, list)
}

fn find<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|f| f["id"] == id)
}

fn severities(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|f| f["severity"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn paws_rejects_behind_nat_are_the_top_finding_with_their_counts() {
    let (report, list) = findings("nat-paws-reject.pcap", &[]);
    let top = &list[0];
    assert_eq!(top["id"], "paws-time-wait");
    // An attempt failed after being rejected: high.
    assert_eq!(report["attempts"]["failed_after_reject"], 1);
    assert_eq!(top["severity"], "high");
    let evidence = top["evidence"][0].as_str().unwrap();
    let rejects = report["verdicts"]["paws_reject"].as_u64().unwrap();
    assert!(
        evidence.starts_with(&format!("{rejects} SYNs rejected by PAWS")),
        "{evidence}"
    );
    let advice = top["advice"].to_string();
    for fix in [
        "close first",
        "SO_LINGER",
        "public addresses",
        "tcp_rfc1337=0",
    ] {
        assert!(advice.contains(fix), "advice lacks {fix}: {advice}");
    }
}

#[test]
fn rfc1337_is_named_when_the_server_has_it() {
    let (_, list) = findings("rfc1337.pcap", &[]);
    let finding = find(&list, "rfc1337-blocks-recovery").expect("rfc1337 finding");
    assert_eq!(finding["severity"], "high");
    let (_, default) = findings("nat-paws-reject.pcap", &[]);
    assert!(find(&default, "rfc1337-blocks-recovery").is_none());
}

#[test]
fn exhausted_client_ports_are_high_for_each_client() {
    let (_, list) = findings(
        "client-port-exhaustion.pcap",
        &["--port-range", "40000-40049"],
    );
    let exhausted: Vec<&Value> = list
        .iter()
        .filter(|f| f["id"] == "client-ports-exhausted")
        .collect();
    assert_eq!(exhausted.len(), 2);
    assert!(exhausted.iter().all(|f| f["severity"] == "high"));
    assert!(exhausted[0]["advice"].to_string().contains("tcp_tw_reuse"));
    // With the default range the same capture is far from exhaustion.
    let (_, default) = findings("client-port-exhaustion.pcap", &[]);
    assert!(find(&default, "client-ports-exhausted").is_none());
    assert!(find(&default, "all-clear").is_some());
}

#[test]
fn a_clean_capture_says_so() {
    let (_, list) = findings("client-closes-first.pcap", &[]);
    assert!(find(&list, "all-clear").is_some());
    assert!(
        severities(&list).iter().all(|s| s == "info" || s == "low"),
        "{list:?}"
    );
}

#[test]
fn the_recycle_what_if_names_its_silent_drops() {
    let (report, list) = findings("nat-paws-reject.pcap", &["--policy", "linux-tw-recycle"]);
    let finding = find(&list, "tw-recycle-drops").expect("recycle finding");
    assert!(finding["title"].as_str().unwrap().contains("simulated"));
    let drops = report["verdicts"]["paws_passive_drop"].as_u64().unwrap();
    assert!(drops > 0);
    assert!(
        finding["evidence"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{drops} SYNs dropped"))
    );
}

#[test]
fn findings_are_ranked_most_severe_first() {
    for sample in [
        "nat-paws-reject.pcap",
        "rfc1337.pcap",
        "mixed-timestamps.pcap",
        "ipv6-nat.pcap",
    ] {
        let (_, list) = findings(sample, &[]);
        let rank = |s: &str| {
            ["high", "medium", "low", "info"]
                .iter()
                .position(|x| *x == s)
                .unwrap()
        };
        let ranks: Vec<usize> = severities(&list).iter().map(|s| rank(s)).collect();
        assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "{sample}: {ranks:?}"
        );
    }
}
