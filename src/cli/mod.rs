//! Command line: parses arguments, runs the library, prints, and maps failures to exit codes.

mod progress;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use progress::Progress;

use clap::{Parser, Subcommand, ValueEnum};

use polars::prelude::DataFrame;

use crate::analysis::{Analysis, AnalyzeOptions, analyze_files, summarize_file};
use crate::policy::ServerPolicy;
use crate::policy::linux::LinuxPolicy;
use crate::report::{info_json, info_text, to_json, to_text};
use crate::simulate;
use crate::table::{TABLE_NAMES, TableFormat, Tables, write_tables};

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
    /// Write the evidence as tables (connections, syns, attempts, reuse) for other tools.
    Export(ExportArgs),
    /// Describe capture files: format, interfaces, packets, times, what they carry.
    Info(InfoArgs),
    /// Write a synthetic capture of hosts behind NAT meeting a server's TIME_WAIT, and its
    /// ground truth.
    Simulate(Box<SimulateArgs>),
}

/// Every value is taken as text and checked by `simulate::Params`, so that a bad one gives
/// a single line naming the option.
#[derive(clap::Args, Debug)]
struct SimulateArgs {
    /// The capture to write (pcap, raw IP, microseconds).
    #[arg(short = 'o', long = "out", value_name = "FILE.pcap")]
    out: PathBuf,
    /// Also write the ground truth as JSON.
    #[arg(long, value_name = "FILE.json")]
    truth: Option<PathBuf>,
    /// Client hosts (192.0.2.x, or 2001:db8:1::x with an IPv6 server).
    #[arg(long, value_name = "N", default_value = simulate::params_default::HOSTS, allow_hyphen_values = true)]
    hosts: String,
    /// Public NAT addresses (203.0.113.x / 2001:db8:2::x); hosts take them in turn.
    #[arg(long, value_name = "N", default_value = simulate::params_default::NAT_ADDRS, allow_hyphen_values = true)]
    nat_addrs: String,
    /// Each NAT address's public port pool; the lowest free port is used first.
    #[arg(long, value_name = "LO-HI", default_value = simulate::params_default::PORTS, allow_hyphen_values = true)]
    ports: String,
    /// Connects per second.
    #[arg(long, value_name = "CONNECTS_PER_SEC", default_value = simulate::params_default::RATE, allow_hyphen_values = true)]
    rate: String,
    /// Seconds during which connects start.
    #[arg(long, value_name = "SECS", default_value = simulate::params_default::DURATION, allow_hyphen_values = true)]
    duration: String,
    /// `poisson`: random arrivals, random hosts; `fixed`: one connect every 1/rate seconds,
    /// hosts in turn.
    #[arg(long, value_name = "poisson|fixed", default_value = simulate::params_default::ARRIVALS)]
    arrivals: String,
    /// Which side sends the first FIN.
    #[arg(long, value_name = "server|client", default_value = simulate::params_default::CLOSE)]
    close: String,
    /// Hosts sending TCP timestamps (`mixed`: every second host does not).
    #[arg(long, value_name = "on|off|mixed", default_value = simulate::params_default::TIMESTAMPS)]
    timestamps: String,
    /// The hosts' timestamp clock rates in Hz, cycled over the hosts.
    #[arg(long, value_name = "HZ[,HZ...]", default_value = simulate::params_default::CLOCK_RATES, allow_hyphen_values = true)]
    clock_rates: String,
    /// Place the hosts' clock offsets within this many ticks of each other (default: random).
    #[arg(long, value_name = "TICKS", allow_hyphen_values = true)]
    clock_spread: Option<String>,
    /// The server's kernel behaviour.
    #[arg(
        long,
        value_name = "linux|tw-recycle|tw-recycle-24day|no-timestamps",
        default_value = simulate::params_default::SERVER
    )]
    server: String,
    /// The server endpoint; its address family decides the hosts' and NAT's.
    #[arg(long, value_name = "ADDR:PORT", default_value = simulate::params_default::SERVER_ADDR)]
    server_addr: String,
    /// Seed of every random choice: the same seed writes the same bytes.
    #[arg(long, value_name = "N", default_value = simulate::params_default::SEED, allow_hyphen_values = true)]
    seed: String,
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
    #[command(flatten)]
    judge: JudgeArgs,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    json: bool,
    /// How many rejected SYNs the text summary lists (newest first).
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Parquet,
    Csv,
    Json,
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    judge: JudgeArgs,
    /// Directory the tables are written to (created if missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Which tables to write.
    #[arg(long, value_delimiter = ',', default_value = "connections,syns,attempts,reuse", value_parser = clap::builder::PossibleValuesParser::new(TABLE_NAMES))]
    tables: Vec<String>,
    /// File format of the tables.
    #[arg(long, value_enum, default_value = "parquet")]
    format: FormatArg,
}

/// What every command that judges SYNs needs: the input and the server's settings.
#[derive(clap::Args, Debug)]
struct JudgeArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd; `-` reads standard input),
    /// taken at the server or on the public side of the NAT. Several files (a rotated
    /// `tcpdump -C/-W` set) are merged by time.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
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
}

impl JudgeArgs {
    /// The server settings to judge with: several when one must be inferred.
    fn candidates(&self) -> Vec<LinuxPolicy> {
        let time_wait_len_ns = (self.tw_len * 1e9).round() as i64;
        let linux = |rfc1337| LinuxPolicy {
            time_wait_len_ns,
            rfc1337,
            ..LinuxPolicy::default()
        };
        match (self.policy, self.rfc1337) {
            (PolicyName::Linux, Rfc1337::Auto) => vec![linux(false), linux(true)],
            (PolicyName::Linux, Rfc1337::Off) => vec![linux(false)],
            (PolicyName::Linux, Rfc1337::On) => vec![linux(true)],
        }
    }

    /// Runs the analysis with a progress line; errors are printed as one line.
    fn analyze(&self, keep_rejected: usize, keep_records: bool) -> Result<Analysis, ExitCode> {
        let candidates = self.candidates();
        let progress = Progress::new(&self.captures);
        let report_progress = |bytes: u64| progress.show(bytes);
        let options = AnalyzeOptions {
            candidates: candidates.iter().map(|p| p as &dyn ServerPolicy).collect(),
            server: self.server,
            keep_rejected,
            progress: progress
                .enabled()
                .then_some(&report_progress as &dyn Fn(u64)),
            keep_records,
        };
        let result = analyze_files(&self.captures, &options);
        progress.clear();
        result.map_err(|e| {
            eprintln!("pawscope: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        })
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
        Command::Export(args) => export(args),
        Command::Info(args) => info(args),
        Command::Simulate(args) => simulate_command(*args),
    }
}

fn simulate_command(args: SimulateArgs) -> ExitCode {
    let raw = simulate::RawParams {
        hosts: args.hosts,
        nat_addrs: args.nat_addrs,
        ports: args.ports,
        rate: args.rate,
        duration: args.duration,
        arrivals: args.arrivals,
        close: args.close,
        timestamps: args.timestamps,
        clock_rates: args.clock_rates,
        clock_spread: args.clock_spread,
        server: args.server,
        server_addr: args.server_addr,
        seed: args.seed,
    };
    let params = match simulate::Params::from_raw(&raw) {
        Ok(params) => params,
        Err(e) => {
            eprintln!("pawscope: simulate: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match simulate::simulate_to_files(&params, &args.out, args.truth.as_deref()) {
        Ok(truth) => {
            eprintln!(
                "pawscope: wrote {} ({} packets; {} connects, {} established, {} failed)",
                args.out.display(),
                truth.packets,
                truth.connects.attempted,
                truth.connects.established,
                truth.connects.failed
            );
            ExitCode::SUCCESS
        }
        Err(e @ simulate::SimError::TooManyPackets(_)) => {
            eprintln!("pawscope: simulate: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(e) => {
            eprintln!("pawscope: simulate: {e}");
            ExitCode::FAILURE
        }
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
    let analysis = match args.judge.analyze(args.top, false) {
        Ok(analysis) => analysis,
        Err(code) => return code,
    };
    let output = if args.json {
        for warning in &analysis.warnings {
            eprintln!("pawscope: warning: {warning}");
        }
        to_json(&analysis) + "\n"
    } else {
        match to_text(&analysis) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("pawscope: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    ExitCode::SUCCESS
}

fn export(args: ExportArgs) -> ExitCode {
    let analysis = match args.judge.analyze(0, true) {
        Ok(analysis) => analysis,
        Err(code) => return code,
    };
    for warning in &analysis.warnings {
        eprintln!("pawscope: warning: {warning}");
    }
    let records = analysis.records.unwrap_or_default();
    let tables = match Tables::build(&records.syns, &records.incarnations) {
        Ok(tables) => tables,
        Err(e) => {
            eprintln!("pawscope: building tables: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut chosen: Vec<(&str, DataFrame)> = TABLE_NAMES
        .iter()
        .filter(|name| args.tables.iter().any(|t| t == *name))
        .filter_map(|name| tables.get(name).map(|df| (*name, df.clone())))
        .collect();
    let format = match args.format {
        FormatArg::Parquet => TableFormat::Parquet,
        FormatArg::Csv => TableFormat::Csv,
        FormatArg::Json => TableFormat::Json,
    };
    match write_tables(&args.out, &mut chosen, format) {
        Ok(paths) => {
            for (path, (_, frame)) in paths.iter().zip(&chosen) {
                eprintln!(
                    "pawscope: wrote {} ({} rows)",
                    path.display(),
                    frame.height()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pawscope: {e}");
            ExitCode::FAILURE
        }
    }
}
