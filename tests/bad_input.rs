//! Bad input gives one line naming the file (and the byte offset where there is one) and
//! exit status 2; never a panic. A file cut inside a record is analysed up to the cut.

mod common;

use std::path::Path;

use common::{Scratch, pawscope, repo_root};

fn temp_file(name: &str, bytes: &[u8]) -> Scratch {
    Scratch::new("bad-input", name).with_file(name, bytes)
}

/// Runs analyze and returns (exit code, stdout, stderr).
fn analyze(path: &Path) -> (Option<i32>, String, String) {
    let out = pawscope(&["analyze", path.to_str().expect("utf-8"), "--json"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(path: &Path, expect_in_message: &str) {
    let (code, stdout, stderr) = analyze(path);
    assert_eq!(code, Some(2), "{}: stderr {stderr}", path.display());
    assert!(stdout.is_empty(), "no output on error, got {stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&path.display().to_string()),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains(expect_in_message),
        "{stderr} should say {expect_in_message}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn a_sample() -> Vec<u8> {
    let dir = repo_root().join("samples");
    let pcaps = common::files_in(&dir, |p| p.extension().is_some_and(|x| x == "pcap"));
    std::fs::read(pcaps.first().expect("a sample pcap")).expect("read sample")
}

#[test]
fn missing_file() {
    assert_one_line_error(Path::new("/nonexistent/capture.pcap"), "no such file");
}

#[test]
fn directory() {
    assert_one_line_error(&std::env::temp_dir(), "is a directory");
}

#[test]
fn empty_file() {
    assert_one_line_error(&temp_file("empty.pcap", b""), "at byte 0: empty file");
}

#[test]
fn not_a_capture() {
    let text = b"GET / HTTP/1.1\r\nHost: example\r\n\r\nthis is not a capture file";
    assert_one_line_error(
        &temp_file("text.pcap", text),
        "at byte 0: not a pcap or pcapng",
    );
}

#[test]
fn truncated_file_header() {
    let sample = a_sample();
    assert_one_line_error(
        &temp_file("short.pcap", &sample[..10]),
        "at byte 0: file ends inside the file header",
    );
}

#[test]
fn unsupported_link_type_only() {
    let mut sample = a_sample();
    // Link type field of the pcap header: 147 is LINKTYPE_USER0.
    sample[20..24].copy_from_slice(&147u32.to_le_bytes());
    assert_one_line_error(
        &temp_file("user0.pcap", &sample),
        "at byte 24: unsupported link type 147",
    );
}

#[test]
fn corrupt_record_length() {
    let mut sample = a_sample();
    // First record's caplen (bytes 8..12 of the record header at 24): far beyond any snaplen.
    sample[32..36].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    sample[36..40].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let (code, _, stderr) = analyze(&temp_file("biglen.pcap", &sample));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("at byte 24"), "{stderr}");
}

#[test]
fn file_cut_inside_a_record_is_analysed_up_to_the_cut() {
    let sample = a_sample();
    let whole = common::analyze_json(&temp_file("whole.pcap", &sample), &[]);
    let cut_at = sample.len() - 7;
    let path = temp_file("cut.pcap", &sample[..cut_at]);
    let (code, stdout, stderr) = analyze(&path);
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let packets = report["capture"]["packets"].as_u64().unwrap();
    assert_eq!(packets, whole["capture"]["packets"].as_u64().unwrap() - 1);
    let at = report["capture"]["truncated_at"]
        .as_u64()
        .expect("truncated_at set");
    assert!(at < cut_at as u64 && at > 24, "offset {at}");
    assert!(
        stderr.contains(&format!("at byte {at}")),
        "warning names the offset: {stderr}"
    );
}

#[test]
fn every_corpus_file_either_analyses_or_fails_cleanly() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let files = common::files_in(&corpus, |p| {
        !p.extension().is_some_and(|x| x == "md" || x == "tsv")
    });
    assert!(files.len() > 30);
    for path in files {
        let (code, stdout, stderr) = analyze(&path);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", path.display());
        match code {
            Some(0) => {
                let _: serde_json::Value = serde_json::from_str(&stdout)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            Some(2) => assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", path.display()),
            other => panic!("{}: exit {other:?}: {stderr}", path.display()),
        }
    }
}

#[test]
fn permission_denied() {
    let path = temp_file("no-access.pcap", &a_sample());
    let mut perms = std::fs::metadata(&path).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&path, perms).expect("chmod");
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    // Root reads any file: drop to an unprivileged user to see the refusal.
    let out = if is_root {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_pawscope"))
            .args(["analyze", path.to_str().unwrap()])
            .output()
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_pawscope"))
            .args(["analyze", path.to_str().unwrap()])
            .output()
    };
    let Ok(out) = out else {
        eprintln!("skipped: cannot run as an unprivileged user (setpriv missing)");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if is_root && stderr.contains("setpriv") {
        eprintln!("skipped: setpriv cannot drop privileges here: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no-access.pcap: permission denied"),
        "{stderr}"
    );
}

/// Inputs the fuzzers found crashing, kept in `fuzz/regressions`: pcapng packet times beyond
/// what an i64 of nanoseconds can hold with room for arithmetic are refused at their block,
/// and a truncated IPv6 extension chain is a skipped packet, not an out-of-bounds read.
#[test]
fn fuzz_regressions() {
    let dir = repo_root().join("fuzz/regressions");
    for (name, message) in [
        (
            "analyze-pcapng-negative-tsoffset",
            "at byte 84: packet time out of range",
        ),
        (
            "analyze-pcapng-time-overflow",
            "at byte 48: packet time out of range",
        ),
    ] {
        assert_one_line_error(&dir.join(name), message);
    }
    for name in [
        "analyze-pcapng-time-bound-edge",
        "analyze-ipv6-truncated-ext-chain",
        "decoder-ipv6-truncated-ext-chain",
    ] {
        let (code, _, stderr) = analyze(&dir.join(name));
        assert_ne!(code, Some(101), "{name} panicked: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}
