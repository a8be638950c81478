//! Exit statuses the README documents: 0 ok, 1 a finding at least as severe as `--fail-on`
//! (or an output that could not be written), 2 bad input or usage.

mod common;

use common::{Scratch, pawscope, repo_root};

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

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn a_full_disk_leaves_no_report_behind() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let dir = Scratch::new("exit-codes", "full-disk");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let out = pawscope(&[
        "report",
        &sample("nat-paws-reject.pcap"),
        "-o",
        dir.to_str().unwrap(),
    ]);
    let listing: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = std::process::Command::new("umount").arg(&dir).status();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(listing.is_empty(), "left behind: {listing:?}");
}

#[test]
fn an_interrupted_report_leaves_nothing_behind() {
    // A capture long enough that the report is still being written when SIGINT arrives:
    // the sample repeated 40 times, shifted in time.
    let bytes = std::fs::read(repo_root().join("samples/nat-paws-reject.pcap")).unwrap();
    let mut big = bytes[..24].to_vec();
    let body = &bytes[24..];
    for round in 0..40u32 {
        let mut at = 0;
        while at + 16 <= body.len() {
            let caplen = u32::from_le_bytes(body[at + 8..at + 12].try_into().unwrap()) as usize;
            let sec = u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) + round * 600;
            big.extend_from_slice(&sec.to_le_bytes());
            big.extend_from_slice(&body[at + 4..at + 16 + caplen]);
            at += 16 + caplen;
        }
    }
    let dir = Scratch::new("exit-codes", "interrupt");
    let input = dir.join("long.pcap");
    std::fs::write(&input, &big).unwrap();
    let out_dir = dir.join("report");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pawscope"))
        .args([
            "report",
            input.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it has started writing, then interrupt.
    let started = std::time::Instant::now();
    while !out_dir.exists() && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let listing: Vec<String> = std::fs::read_dir(&out_dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if status.code() == Some(0) {
        // Finished before the signal landed: then every file is whole.
        assert!(listing.iter().any(|f| f == "report.html"));
        assert!(listing.iter().all(|f| !f.contains(".tmp")), "{listing:?}");
    } else {
        assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
        assert!(listing.is_empty(), "left behind: {listing:?}");
    }
}

/// Runs pawscope under a pseudo-terminal (util-linux `script`), so that it sees a terminal on
/// stderr; returns what the terminal showed, or `None` where `script` or a pseudo-terminal
/// is missing.
fn on_a_terminal(args: &[&str]) -> Option<String> {
    let command = std::iter::once(env!("CARGO_BIN_EXE_pawscope"))
        .chain(args.iter().copied())
        .map(|arg| format!("'{arg}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .ok()?;
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && !shown.contains("pawscope") {
        // `script` is there but could not open a pseudo-terminal.
        return None;
    }
    assert!(out.status.success(), "{command}: {out:?}");
    Some(shown)
}

#[test]
fn long_work_shows_progress_on_a_terminal_only() {
    let dir = common::Scratch::new("exit_codes", "progress");
    // Over the 64 MiB a progress line waits for, and over the 65 536 frames between two
    // updates of it: 70 000 Ethernet frames of 1 000 bytes (not IP: quick to skip).
    let pcap = dir.join("big.pcap");
    let mut bytes = Vec::with_capacity(24 + 70_000 * 1016);
    for field in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 65_535, 1] {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    let mut frame = vec![0u8; 1000];
    frame[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental EtherType
    for n in 0..70_000u32 {
        for field in [1_700_000_000 + n / 1000, (n % 1000) * 1000, 1000, 1000] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        bytes.extend_from_slice(&frame);
    }
    std::fs::write(&pcap, bytes).unwrap();
    let out_dir = dir.join("tables");
    let args = [
        "export",
        "--format",
        "csv",
        "--out",
        out_dir.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ];
    let Some(shown) = on_a_terminal(&args) else {
        eprintln!("skipped: no util-linux `script` or pseudo-terminal to give pawscope a terminal");
        return;
    };
    assert!(
        shown.contains("% of 67 MiB read"),
        "no progress line: {shown:?}"
    );
    assert!(
        shown.contains("pawscope: building and writing the tables ..."),
        "{shown:?}"
    );
    // The note is taken away before the lines that stay.
    let wrote = shown.find("pawscope: wrote").expect("wrote lines");
    assert!(shown[..wrote].ends_with("\r\u{1b}[K"), "{shown:?}");
    // Not a terminal: only the lines that stay.
    let piped = pawscope(&args);
    assert!(piped.status.success(), "{piped:?}");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(stderr.contains("pawscope: wrote"), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains("building"),
        "{stderr}"
    );
}
