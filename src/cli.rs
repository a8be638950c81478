//! Command line: parses arguments, runs the library, prints, and maps failures to exit codes.

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::analysis::{AnalyzeOptions, analyze_files, summarize_file};
use crate::policy::ServerPolicy;
use crate::policy::linux::LinuxPolicy;
use crate::report::{info_json, info_text, to_json, to_text};

/// Exit status for bad input (unreadable or invalid capture): distinct from clap's usage error.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "pawscope",
    version,
    about = "Explains TCP connection failures through NAT: TIME_WAIT meeting PAWS, from a tcpdump capture"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Rebuild every 4-tuple's life and judge every SYN as the server's kernel would.
    Analyze(AnalyzeArgs),
    /// Describe capture files: format, interfaces, packets, times, what they carry.
    Info(InfoArgs),
}

#[derive(clap::Args, Debug)]
struct InfoArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd; `-` reads standard input).
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum PolicyName {
    /// Current Linux (4.12 and later): PAWS per tuple in TIME_WAIT.
    Linux,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Rfc1337 {
    Auto,
    #[value(name = "0")]
    Off,
    #[value(name = "1")]
    On,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd; `-` reads standard input),
    /// taken at the server or on the public side of the NAT. Several files (a rotated
    /// `tcpdump -C/-W` set) are merged by time.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    json: bool,
    /// Which kernel's rules judge the SYNs.
    #[arg(long, value_enum, default_value = "linux")]
    policy: PolicyName,
    /// The server endpoint, when the capture cannot show it (e.g. 203.0.113.10:80, [2001:db8::1]:443).
    #[arg(long, value_name = "ADDR:PORT")]
    server: Option<SocketAddr>,
    /// TIME_WAIT length in seconds (TCP_TIMEWAIT_LEN, 2MSL on Linux).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_positive_secs)]
    tw_len: f64,
    /// The server's net.ipv4.tcp_rfc1337 (1: RSTs do not end TIME_WAIT). `auto` judges with
    /// both and keeps the one the server's observed replies agree with.
    #[arg(long, value_name = "auto|0|1", default_value = "auto", default_missing_value = "1", num_args = 0..=1)]
    rfc1337: Rfc1337,
    /// How many rejected SYNs the text summary lists.
    #[arg(long, value_name = "N", default_value_t = 20)]
    show: usize,
}

/// A one-line progress indicator on stderr for large files, only when stderr is a terminal.
struct Progress {
    total_bytes: u64,
    started: Instant,
    last_shown: Cell<Option<Instant>>,
    enabled: bool,
}

impl Progress {
    /// Files smaller than this finish before a progress line would be worth reading.
    const MIN_BYTES: u64 = 64 << 20;

    fn new(paths: &[PathBuf]) -> Self {
        // Standard input and compressed files have no size to measure against; their
        // decompressed offsets would run past 100 %.
        let total_bytes = paths
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        Progress {
            total_bytes,
            started: Instant::now(),
            last_shown: Cell::new(None),
            enabled: total_bytes >= Self::MIN_BYTES && std::io::stderr().is_terminal(),
        }
    }

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn show(&self, bytes: u64) {
        let now = Instant::now();
        if self
            .last_shown
            .get()
            .is_some_and(|t| now - t < Duration::from_secs(1))
        {
            return;
        }
        self.last_shown.set(Some(now));
        let percent = bytes as f64 * 100.0 / self.total_bytes.max(1) as f64;
        eprint!(
            "\rpawscope: {:.0}% of {} MiB read, {:.0} s",
            percent,
            self.total_bytes >> 20,
            (now - self.started).as_secs_f64()
        );
    }

    fn clear(&self) {
        if self.last_shown.get().is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e6 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Info(args) => info(args),
    }
}

fn info(args: InfoArgs) -> ExitCode {
    let mut summaries = Vec::with_capacity(args.captures.len());
    for path in &args.captures {
        match summarize_file(path) {
            Ok(summary) => summaries.push(summary),
            Err(e) => {
                eprintln!("pawscope: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    let output = if args.json {
        info_json(&summaries) + "\n"
    } else {
        info_text(&summaries)
    };
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    ExitCode::SUCCESS
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    let time_wait_len_ns = (args.tw_len * 1e9).round() as i64;
    let linux = |rfc1337| LinuxPolicy {
        time_wait_len_ns,
        rfc1337,
        ..LinuxPolicy::default()
    };
    let candidates = match (args.policy, args.rfc1337) {
        (PolicyName::Linux, Rfc1337::Auto) => vec![linux(false), linux(true)],
        (PolicyName::Linux, Rfc1337::Off) => vec![linux(false)],
        (PolicyName::Linux, Rfc1337::On) => vec![linux(true)],
    };
    let progress = Progress::new(&args.captures);
    let report_progress = |bytes: u64| progress.show(bytes);
    let options = AnalyzeOptions {
        candidates: candidates.iter().map(|p| p as &dyn ServerPolicy).collect(),
        server: args.server,
        keep_rejected: args.show,
        progress: progress
            .enabled()
            .then_some(&report_progress as &dyn Fn(u64)),
    };
    let result = analyze_files(&args.captures, &options);
    progress.clear();
    let analysis = match result {
        Ok(analysis) => analysis,
        Err(e) => {
            eprintln!("pawscope: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let output = if args.json {
        for warning in &analysis.warnings {
            eprintln!("pawscope: warning: {warning}");
        }
        to_json(&analysis) + "\n"
    } else {
        to_text(&analysis)
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    ExitCode::SUCCESS
}
