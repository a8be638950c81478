//! Command line: parses arguments, runs the library, prints, and maps failures to exit codes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::analysis::{AnalyzeOptions, analyze_file};
use crate::policy::ServerPolicy;
use crate::policy::linux::LinuxPolicy;
use crate::report::{to_json, to_text};

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
    /// Capture file (pcap or pcapng), taken at the server or on the public side of the NAT.
    capture: PathBuf,
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

fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e6 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Analyze(args) => analyze(args),
    }
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    let time_wait_len_ns = (args.tw_len * 1e9).round() as i64;
    let linux = |rfc1337| LinuxPolicy {
        time_wait_len_ns,
        rfc1337,
    };
    let candidates = match (args.policy, args.rfc1337) {
        (PolicyName::Linux, Rfc1337::Auto) => vec![linux(false), linux(true)],
        (PolicyName::Linux, Rfc1337::Off) => vec![linux(false)],
        (PolicyName::Linux, Rfc1337::On) => vec![linux(true)],
    };
    let options = AnalyzeOptions {
        candidates: candidates.iter().map(|p| p as &dyn ServerPolicy).collect(),
        server: args.server,
        keep_rejected: args.show,
    };
    let analysis = match analyze_file(&args.capture, &options) {
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
        to_text(&analysis, &args.capture.display().to_string())
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    ExitCode::SUCCESS
}
