//! Shared by the integration tests: run the `pawscope` binary and compare its JSON with a
//! `.truth.json` recorded from the server's kernel.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pawscope::analysis::{Analysis, AnalyzeOptions, analyze_files};
use pawscope::policy::ServerPolicy;
use pawscope::policy::linux::LinuxPolicy;
use serde_json::Value;

/// A folder of its own under the system temp folder for one test's files, and a path in it
/// (the folder itself, a file written there, or a name not made yet, for an output folder a
/// command makes). The folder goes when the test is done with it, so that runs of the suite
/// leave nothing behind; a failing test keeps it, and names it, for a look.
pub struct Scratch {
    dir: PathBuf,
    path: PathBuf,
}

impl Scratch {
    /// A fresh, empty folder named after the suite and the test (and a number, so that
    /// tests running side by side, or one test asking twice, never share one).
    pub fn new(suite: &str, test: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pawscope-{suite}-{}-{}-{test}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch {
            path: dir.clone(),
            dir,
        }
    }

    /// The path `name` in the folder, not made: for an output folder a command makes.
    pub fn at(mut self, name: &str) -> Scratch {
        self.path = self.dir.join(name);
        self
    }

    /// The file `name` in the folder, holding `bytes`.
    pub fn with_file(mut self, name: &str, bytes: &[u8]) -> Scratch {
        self.path = self.dir.join(name);
        std::fs::write(&self.path, bytes).expect("write temp file");
        self
    }

    /// The folder the path is in (the folder itself for [`Scratch::new`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept for a look: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The public corpus in ../shared/corpus, or `None` (saying the test is skipped) in a clone
/// without it beside.
pub fn corpus_dir() -> Option<PathBuf> {
    let corpus = repo_root().join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("skipped: ../shared/corpus is not beside this checkout");
        return None;
    }
    Some(corpus)
}

/// The files in `dir` that `keep` takes, sorted by path (none when `dir` cannot be read).
pub fn files_in(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| keep(p));
    files.sort();
    files
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

/// Rewrites a little-endian microsecond pcap as pcapng: the records are split at `split`
/// into two sections, the first little-endian with nanosecond timestamps, the second
/// big-endian with the default microsecond resolution, so one file exercises both byte
/// orders, `if_tsresol` and section changes.
pub fn pcap_to_pcapng(pcap: &[u8], split: usize) -> Vec<u8> {
    let link = u16::from_le_bytes([pcap[20], pcap[21]]);
    let snaplen = u32::from_le_bytes(pcap[16..20].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 24;
    let mut index = 0;
    let section = |out: &mut Vec<u8>, big: bool, nanos: bool| {
        let u16b = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        // Section Header Block: BOM, version 1.0, unknown section length.
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        shb.extend_from_slice(&u32b(28));
        shb.extend_from_slice(&u32b(0x1A2B_3C4D));
        shb.extend_from_slice(&u16b(1));
        shb.extend_from_slice(&u16b(0));
        shb.extend_from_slice(&[0xff; 8]);
        shb.extend_from_slice(&u32b(28));
        out.extend_from_slice(&shb);
        // Interface Description Block, with if_tsresol = 9 for nanoseconds.
        let mut options = Vec::new();
        if nanos {
            options.extend_from_slice(&u16b(9));
            options.extend_from_slice(&u16b(1));
            options.extend_from_slice(&[9, 0, 0, 0]);
            options.extend_from_slice(&[0; 4]);
        }
        let len = 20 + options.len() as u32;
        out.extend_from_slice(&u32b(1));
        out.extend_from_slice(&u32b(len));
        out.extend_from_slice(&u16b(link));
        out.extend_from_slice(&u16b(0));
        out.extend_from_slice(&u32b(snaplen));
        out.extend_from_slice(&options);
        out.extend_from_slice(&u32b(len));
    };
    section(&mut out, false, true);
    while at + 16 <= pcap.len() {
        if index == split {
            section(&mut out, true, false);
        }
        let field = |o: usize| u32::from_le_bytes(pcap[at + o..at + o + 4].try_into().unwrap());
        let (sec, usec, caplen, origlen) = (field(0), field(4), field(8), field(12));
        let data = &pcap[at + 16..at + 16 + caplen as usize];
        let big = index >= split;
        let units = if big {
            u64::from(sec) * 1_000_000 + u64::from(usec)
        } else {
            (u64::from(sec) * 1_000_000 + u64::from(usec)) * 1_000
        };
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let padded = data.len().div_ceil(4) * 4;
        let len = 32 + padded as u32;
        out.extend_from_slice(&u32b(6));
        out.extend_from_slice(&u32b(len));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b((units >> 32) as u32));
        out.extend_from_slice(&u32b(units as u32));
        out.extend_from_slice(&u32b(caplen));
        out.extend_from_slice(&u32b(origlen));
        out.extend_from_slice(data);
        out.resize(out.len() + padded - data.len(), 0);
        out.extend_from_slice(&u32b(len));
        at += 16 + caplen as usize;
        index += 1;
    }
    out
}

/// Exports one table as JSON (`export --tables NAME --format json`, plus `extra` options)
/// and returns its rows.
pub fn export_json_rows(capture: &Path, table: &str, extra: &[&str]) -> Vec<Value> {
    let dir = Scratch::new("export", table).at("out");
    let path = capture.to_str().expect("utf-8 path");
    let dir_arg = dir.to_str().expect("utf-8 path");
    let mut args = vec![
        "export", path, "-o", dir_arg, "--tables", table, "--format", "json",
    ];
    args.extend_from_slice(extra);
    let out = pawscope(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join(format!("{table}.json"))).expect("table file");
    let rows: Value = serde_json::from_str(&text).expect("json rows");
    rows.as_array().cloned().unwrap_or_default()
}

/// The library analysis the CLI's default settings give (`--rfc1337 auto`: judged both ways,
/// the replies decide), with every record kept, for the given client port range.
pub fn analysis_with_records(pcap: &Path, port_range: (u16, u16)) -> Analysis {
    analysis_with_threads(pcap, port_range, AnalyzeOptions::default().threads)
}

/// As [`analysis_with_records`], tracking on `threads` threads (1: in the reading thread).
pub fn analysis_with_threads(pcap: &Path, port_range: (u16, u16), threads: usize) -> Analysis {
    let policies = [
        LinuxPolicy::default(),
        LinuxPolicy {
            rfc1337: true,
            ..LinuxPolicy::default()
        },
    ];
    let options = AnalyzeOptions {
        candidates: policies.iter().map(|p| p as &dyn ServerPolicy).collect(),
        server: None,
        keep_rejected: 0,
        progress: None,
        keep_records: true,
        port_range,
        client_time_wait_ns: 60_000_000_000,
        threads,
        ..AnalyzeOptions::default()
    };
    analyze_files(&[pcap.to_path_buf()], &options).expect("analysis")
}

/// 25 connects/s for 400 s from 8 hosts behind 2 NAT addresses picking among 1000 ports at
/// random: tuples are reused within TIME_WAIT (PAWS rejects) and after it, and many go quiet
/// for longer than the 3 minutes after which they are forgotten.
pub fn simulated_nat_capture(dir: &Path) -> (PathBuf, serde_json::Value) {
    let pcap = dir.join("capture.pcap");
    let truth = dir.join("capture.truth.json");
    let out = pawscope(&[
        "simulate",
        "-o",
        pcap.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--hosts",
        "8",
        "--nat-addrs",
        "2",
        "--ports",
        "40000-40999",
        "--port-order",
        "random",
        "--rate",
        "25",
        "--duration",
        "400",
        "--seed",
        "11",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pcap, read_json(&truth))
}
