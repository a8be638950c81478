//! Exit statuses the README documents: 0 ok, 1 a finding at least as severe as `--fail-on`
//! (or an output that could not be written), 2 bad input or usage.

mod common;

use common::{pawscope, repo_root};

fn sample(name: &str) -> String {
    repo_root()
        .join("samples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn fail_on_turns_findings_into_exit_status_1() {
    let rejects = sample("nat-paws-reject.pcap");
    assert_eq!(pawscope(&["analyze", &rejects]).status.code(), Some(0));
    assert_eq!(
        pawscope(&["analyze", &rejects, "--fail-on", "high"])
            .status
            .code(),
        Some(1)
    );
    let clean = sample("client-closes-first.pcap");
    // Only informational findings there.
    assert_eq!(
        pawscope(&["analyze", &clean, "--fail-on", "low"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        pawscope(&["analyze", &clean, "--fail-on", "info"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn usage_errors_are_status_2() {
    assert_eq!(pawscope(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        pawscope(&["analyze", "x.pcap", "--policy", "windows"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        pawscope(&["analyze", "x.pcap", "--port-range", "9-1"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn the_tuple_limit_stops_with_a_clear_error() {
    let out = pawscope(&[
        "analyze",
        &sample("nat-paws-reject.pcap"),
        "--max-tuples",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("more than 2 tuples live at once: raise --max-tuples"),
        "{stderr}"
    );
    // Three tuples fit in three.
    let ok = pawscope(&[
        "analyze",
        &sample("nat-paws-reject.pcap"),
        "--max-tuples",
        "3",
    ]);
    assert_eq!(ok.status.code(), Some(0));
}
