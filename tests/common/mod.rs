//! Shared by the integration tests: run the `pawscope` binary and compare its JSON with a
//! `.truth.json` recorded from the server's kernel.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn pawscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pawscope"))
        .args(args)
        .output()
        .expect("run pawscope")
}

/// Runs `analyze --json` and parses stdout; panics with stderr when it fails.
pub fn analyze_json(capture: &Path, extra: &[&str]) -> Value {
    let path = capture.to_str().expect("utf-8 path");
    let mut args = vec!["analyze", path, "--json"];
    args.extend_from_slice(extra);
    let out = pawscope(&args);
    assert!(
        out.status.success(),
        "pawscope {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze --json prints JSON")
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("missing number at {pointer} in {v}"))
}

/// The equalities every recorded capture must satisfy. Returns a description of each mismatch.
pub fn mismatches(name: &str, report: &Value, truth: &Value) -> Vec<String> {
    let pairs = [
        (
            "/kernel_counters/PAWSTimewait",
            "/server_counters/TcpExtPAWSTimewait",
        ),
        (
            "/kernel_counters/PassiveOpens",
            "/server_counters/TcpPassiveOpens",
        ),
        (
            "/kernel_counters/TCPACKSkippedTimeWait",
            "/server_counters/TcpExtTCPACKSkippedTimeWait",
        ),
        ("/kernel_counters/TW", "/server_counters/TcpExtTW"),
        ("/connections", "/server_counters/TcpPassiveOpens"),
    ];
    let mut out = Vec::new();
    for (ours, kernels) in pairs {
        let (a, b) = (num(report, ours), num(truth, kernels));
        if a != b {
            out.push(format!("{name}: {ours} = {a}, kernel {kernels} = {b}"));
        }
    }
    for key in [
        "/agreement/predicted_reject_observed_accept",
        "/agreement/predicted_accept_observed_reject",
        "/agreement/reply_not_as_predicted",
    ] {
        let n = num(report, key);
        if n != 0 {
            out.push(format!("{name}: {key} = {n}, expected 0"));
        }
    }
    out
}
