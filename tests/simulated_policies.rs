//! Simulated captures (`pawscope simulate`, whose server models are written apart from
//! src/policy) judged by the matching policy must reproduce the simulated server's counters
//! exactly, and the NAT clock analysis must find exactly the hosts with timestamps behind
//! each address, even when their clocks are close.

mod common;

use common::{Scratch, analyze_json, pawscope, read_json};
use serde_json::Value;

/// The capture `pawscope simulate` writes with `args` (in a folder of its own, gone with
/// it), and its truth.
fn simulate(name: &str, args: &[&str]) -> (Scratch, Value) {
    let pcap = Scratch::new("simulated-policies", name).at(&format!("{name}.pcap"));
    let truth = pcap.dir().join(format!("{name}.json"));
    let mut argv = vec![
        "simulate",
        "-o",
        pcap.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let out = pawscope(&argv);
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pcap, read_json(&truth))
}

fn assert_counters(name: &str, report: &Value, truth: &Value) {
    let pairs = [
        ("PAWSTimewait", "TcpExtPAWSTimewait"),
        ("PassiveOpens", "TcpPassiveOpens"),
        ("TCPACKSkippedTimeWait", "TcpExtTCPACKSkippedTimeWait"),
        ("PAWSPassive", "TcpExtPAWSPassive"),
        ("TW", "TcpExtTW"),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(
            report["kernel_counters"][ours], truth["server_counters"][theirs],
            "{name}: {ours} vs {theirs}"
        );
    }
    assert_eq!(
        report["connections"], truth["server_counters"]["TcpPassiveOpens"],
        "{name}"
    );
    assert_eq!(
        report["agreement"]["reply_not_as_predicted"], 0,
        "{name}: every reply as predicted"
    );
}

#[test]
fn each_simulated_server_is_reproduced_by_its_policy() {
    let scenarios: [(&str, &str, &[&str]); 6] = [
        (
            "linux-nat",
            "linux",
            &[
                "--server",
                "linux",
                "--hosts",
                "8",
                "--rate",
                "20",
                "--duration",
                "20",
                "--seed",
                "3",
            ],
        ),
        (
            "linux-v6-mixed",
            "linux",
            &[
                "--server",
                "linux",
                "--hosts",
                "6",
                "--timestamps",
                "mixed",
                "--server-addr",
                "[2001:db8:2::10]:443",
                "--seed",
                "4",
            ],
        ),
        (
            "no-timestamps",
            "linux",
            &[
                "--server",
                "no-timestamps",
                "--hosts",
                "6",
                "--rate",
                "15",
                "--seed",
                "5",
            ],
        ),
        (
            "recycle",
            "linux-tw-recycle",
            &[
                "--server",
                "tw-recycle",
                "--hosts",
                "12",
                "--nat-addrs",
                "2",
                "--rate",
                "20",
                "--duration",
                "20",
                "--seed",
                "6",
            ],
        ),
        (
            "recycle-v6",
            "linux-tw-recycle",
            &[
                "--server",
                "tw-recycle",
                "--hosts",
                "24",
                "--nat-addrs",
                "2",
                "--rate",
                "33",
                "--duration",
                "30",
                "--ports",
                "40000-40012",
                "--server-addr",
                "[2001:db8:2::10]:443",
                "--seed",
                "16",
            ],
        ),
        (
            "recycle-24day",
            "linux-tw-recycle-24day",
            &[
                "--server",
                "tw-recycle-24day",
                "--hosts",
                "10",
                "--rate",
                "10",
                "--seed",
                "7",
            ],
        ),
    ];
    for (name, policy, args) in scenarios {
        let (pcap, truth) = simulate(name, args);
        let report = analyze_json(&pcap, &["--policy", policy]);
        assert_counters(name, &report, &truth);
        if policy.contains("recycle") {
            assert!(
                truth["server_counters"]["TcpExtPAWSPassive"]
                    .as_u64()
                    .unwrap()
                    > 0,
                "{name} drops nothing"
            );
            assert_eq!(report["policy_simulated"], true);
        }
    }
}

#[test]
fn hosts_behind_each_nat_address_are_counted_exactly() {
    let scenarios: [(&str, &[&str]); 4] = [
        (
            "spread-out",
            &[
                "--hosts",
                "7",
                "--nat-addrs",
                "2",
                "--rate",
                "20",
                "--duration",
                "20",
                "--seed",
                "11",
            ],
        ),
        (
            "mixed",
            &[
                "--hosts",
                "8",
                "--nat-addrs",
                "2",
                "--timestamps",
                "mixed",
                "--rate",
                "20",
                "--duration",
                "20",
                "--seed",
                "12",
            ],
        ),
        // Offsets within 50 ticks of each other: told apart by their lines, not their offsets.
        (
            "close-clocks",
            &[
                "--hosts",
                "5",
                "--clock-spread",
                "50",
                "--rate",
                "20",
                "--duration",
                "20",
                "--seed",
                "13",
            ],
        ),
        (
            "several-rates",
            &[
                "--hosts",
                "6",
                "--clock-rates",
                "1000,250,100",
                "--rate",
                "20",
                "--duration",
                "20",
                "--seed",
                "14",
            ],
        ),
    ];
    for (name, args) in scenarios {
        let (pcap, truth) = simulate(name, args);
        let report = analyze_json(&pcap, &[]);
        for expected in truth["nat"].as_array().unwrap() {
            let addr = expected["addr"].as_str().unwrap();
            let found = report["nat"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["address"] == addr)
                .unwrap_or_else(|| panic!("{name}: {addr} not reported"));
            assert_eq!(
                found["hosts_lower_bound"], expected["hosts_with_timestamps"],
                "{name}: {addr}"
            );
            if expected["hosts_with_timestamps"].as_u64() > Some(0) {
                assert_eq!(found["clock_model"], "per_host", "{name}: {addr}");
            }
        }
        if name == "several-rates" {
            let rates: Vec<f64> = report["nat"][0]["clock_rates_hz"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            for rate in [1000.0, 250.0, 100.0] {
                assert!(
                    rates.contains(&rate),
                    "{name}: {rate} Hz not measured in {rates:?}"
                );
            }
        }
    }
}
