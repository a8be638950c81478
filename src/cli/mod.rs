//! Command line: parses arguments, runs the library, prints, and maps failures to exit codes.

mod progress;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use progress::Progress;

use clap::{Parser, Subcommand, ValueEnum};

use crate::analysis::{
    Analysis, AnalyzeOptions, DEFAULT_MAX_TUPLES, DEFAULT_RATE_LIMIT_MS, Severity, compare,
    findings, judge_files, summarize_file,
};
use crate::chart::{
    Chart, all_charts, outcome_chart, port_chart, render_png, render_svg, timeline_chart,
    timestamp_chart,
};
use crate::output::{StagedFiles, write_file};
use crate::policy::ServerPolicy;
use crate::policy::linux::LinuxPolicy;
use crate::policy::no_timestamps::NoTimestampsPolicy;
use crate::policy::rfc7323::Rfc7323Policy;
use crate::policy::tw_recycle::TwRecyclePolicy;
use crate::report::{ReportChart, chart_title, report_html, report_markdown};
use crate::report::{info_json, info_text, to_json, to_text, whatif_json, whatif_text};
use crate::simulate;
use crate::table::{
    ParquetCodec, SharedAttempts, StagedTable, TABLE_NAMES, TableFormat, TableInputs, TableRecords,
    stage_tables, write_tables,
};

/// Exit status for bad input (unreadable or invalid capture), like clap's usage errors.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when `--fail-on` finds a finding that severe (and for output failures).
const EXIT_FINDINGS: u8 = 1;

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
    /// Judge one capture under several kernels' rules, side by side.
    Whatif(WhatifArgs),
    /// Write an incident report: report.html, report.md, the charts and the tables.
    Report(ReportArgs),
    /// Draw one chart to a PNG or SVG file.
    Chart(ChartArgs),
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
    /// Each NAT address's public port pool.
    #[arg(long, value_name = "LO-HI", default_value = simulate::params_default::PORTS, allow_hyphen_values = true)]
    ports: String,
    /// Which free port a NAT address hands out: `lowest` (reused as soon as free) or `random`
    /// (as MASQUERADE --random-fully).
    #[arg(long, value_name = "lowest|random", default_value = simulate::params_default::PORT_ORDER)]
    port_order: String,
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
    /// `per-host`: one timestamp offset per host; `per-connection`: a random offset per
    /// connection, as recent Linux gives (every connection is a clock of its own).
    #[arg(long, value_name = "per-host|per-connection", default_value = simulate::params_default::CLOCK_OFFSETS)]
    clock_offsets: String,
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
    /// Linux 2.6.32-4.11 with tcp_tw_recycle=1: per-address PAWS, silent SYN drops (simulated).
    LinuxTwRecycle,
    /// The same with the 24-day PAWS rule of the oldest kernels (simulated).
    #[value(name = "linux-tw-recycle-24day")]
    LinuxTwRecycle24day,
    /// What if the server or load balancer did not negotiate timestamps: sequence checks only.
    NoTimestamps,
    /// Plain RFC: TIME_WAIT never reopens for a SYN.
    Rfc7323,
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
    /// Which kernel's rules judge the SYNs.
    #[arg(long, value_enum, default_value = "linux")]
    policy: PolicyName,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    json: bool,
    /// How many rejected SYNs the text summary lists (newest first).
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Exit with status 1 when a finding is at least this severe (for CI pipelines).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum FailOn {
    High,
    Medium,
    Low,
    Info,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
            FailOn::Info => Severity::Info,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Parquet,
    Csv,
    Json,
}

/// Parquet page compression.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CodecArg {
    Snappy,
    Zstd,
    Lz4,
    None,
}

#[derive(clap::Args, Debug)]
struct WhatifArgs {
    #[command(flatten)]
    judge: JudgeArgs,
    /// Policies to compare (repeat the option); the first is the baseline.
    #[arg(long = "policy", value_enum, default_values = ["linux", "linux-tw-recycle"])]
    policies: Vec<PolicyName>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// How many differently judged SYNs the text lists (newest first).
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    judge: JudgeArgs,
    /// Which kernel's rules judge the SYNs.
    #[arg(long, value_enum, default_value = "linux")]
    policy: PolicyName,
    /// Directory the report is written to (created if missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ChartKind {
    /// TSval against time for the busiest client address, one colour per clock.
    Timestamps,
    /// One lane per busy tuple: connections, TIME_WAIT, SYNs by verdict.
    Timeline,
    /// Connect attempts per second by outcome, and time to establish.
    Outcomes,
    /// Client ports held against the port range.
    Ports,
}

#[derive(clap::Args, Debug)]
struct ChartArgs {
    #[command(flatten)]
    judge: JudgeArgs,
    /// Which kernel's rules judge the SYNs.
    #[arg(long, value_enum, default_value = "linux")]
    policy: PolicyName,
    /// Which chart.
    #[arg(long, value_enum)]
    kind: ChartKind,
    /// The file to write: `.png` or `.svg`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    judge: JudgeArgs,
    /// Which kernel's rules judge the SYNs.
    #[arg(long, value_enum, default_value = "linux")]
    policy: PolicyName,
    /// Directory the tables are written to (created if missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Which tables to write.
    #[arg(long, value_delimiter = ',', default_value = "connections,syns,attempts,reuse,nat_hosts,ts_events", value_parser = clap::builder::PossibleValuesParser::new(TABLE_NAMES))]
    tables: Vec<String>,
    /// File format of the tables.
    #[arg(long, value_enum, default_value = "parquet")]
    format: FormatArg,
    /// Parquet's compression: snappy (the default) is quick and read everywhere; zstd makes
    /// files about 30 % smaller for more time; lz4 (LZ4_RAW) needs a recent reader.
    #[arg(long, value_enum)]
    compression: Option<CodecArg>,
}

/// What every command that judges SYNs needs: the input and the server's settings.
#[derive(clap::Args, Debug)]
struct JudgeArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd; `-` reads standard input),
    /// taken at the server or on the public side of the NAT. Several files (a rotated
    /// `tcpdump -C/-W` set) are merged by time.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// The server endpoint, when the capture cannot show it (e.g. 203.0.113.10:80, [2001:db8::1]:443).
    #[arg(long, value_name = "ADDR:PORT")]
    server: Option<SocketAddr>,
    /// TIME_WAIT length in seconds (TCP_TIMEWAIT_LEN, 2MSL on Linux).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_positive_secs)]
    tw_len: f64,
    /// How old the TSval a TIME_WAIT remembers may get before PAWS stops comparing with it,
    /// in seconds (TCP_PAWS_WRAP: 2147 on Linux; kernels before 4.x used 24 days, 2073600).
    #[arg(long, value_name = "SECS", default_value_t = PAWS_WRAP_SECS, value_parser = parse_paws_stale_secs)]
    paws_stale: f64,
    /// The server's net.ipv4.tcp_rfc1337 (1: RSTs do not end TIME_WAIT). `auto` judges with
    /// both and keeps the one the server's observed replies agree with.
    #[arg(long, value_name = "auto|0|1", default_value = "auto", default_missing_value = "1", num_args = 0..=1)]
    rfc1337: Rfc1337,
    /// A server setting as the server had it, e.g. net.ipv4.tcp_rfc1337=1 (repeatable):
    /// net.ipv4.tcp_rfc1337, net.ipv4.tcp_invalid_ratelimit (ms), net.ipv4.tcp_timestamps.
    /// Without it each is inferred from the capture when it holds evidence.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_sysctl)]
    sysctl: Vec<(String, String)>,
    /// Most tuples held at once before stopping with an error (bounds memory).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TUPLES)]
    max_tuples: usize,
    /// Threads: 1 does everything in the reading thread; more run reading, the NAT clocks,
    /// judging and counting on threads of their own (default: the CPUs available). The
    /// results are the same.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// The clients' local port range (net.ipv4.ip_local_port_range), to judge port exhaustion.
    #[arg(long, value_name = "LO-HI", default_value = "32768-60999", value_parser = parse_port_range)]
    port_range: (u16, u16),
}

/// The settings `--sysctl` takes, with the values each allows.
const SYSCTLS: [(&str, &[&str]); 3] = [
    ("net.ipv4.tcp_rfc1337", &["0", "1"]),
    ("net.ipv4.tcp_timestamps", &["0", "1", "2"]),
    ("net.ipv4.tcp_invalid_ratelimit", &[]),
];

fn parse_sysctl(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    let (key, value) = (key.trim(), value.trim());
    let Some((_, allowed)) = SYSCTLS.iter().find(|(k, _)| *k == key) else {
        let known: Vec<&str> = SYSCTLS.iter().map(|(k, _)| *k).collect();
        return Err(format!(
            "unknown setting `{key}`: pawscope uses {}",
            known.join(", ")
        ));
    };
    let valid = if allowed.is_empty() {
        value.parse::<u32>().is_ok_and(|ms| ms <= 60_000)
    } else {
        allowed.contains(&value)
    };
    if !valid {
        return Err(format!("`{value}` is not a valid value for {key}"));
    }
    Ok((key.to_string(), value.to_string()))
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not a port range like 32768-60999");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (u16, u16) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl JudgeArgs {
    /// The server settings to judge with under one policy: several when one (tcp_rfc1337)
    /// must be inferred from the capture.
    fn candidates(&self, name: PolicyName, oow_ratelimit_ns: i64) -> Vec<Box<dyn ServerPolicy>> {
        let time_wait_len_ns = (self.tw_len * 1e9).round() as i64;
        let stated = self
            .sysctl
            .iter()
            .rev()
            .find(|(k, _)| k == "net.ipv4.tcp_rfc1337");
        let rfc1337_values: &[bool] = match (stated.map(|(_, v)| v.as_str()), self.rfc1337) {
            (Some("1"), _) | (None, Rfc1337::On) => &[true],
            (Some(_), _) | (None, Rfc1337::Off) => &[false],
            (None, Rfc1337::Auto) => &[false, true],
        };
        rfc1337_values
            .iter()
            .map(|&rfc1337| {
                let linux = LinuxPolicy {
                    time_wait_len_ns,
                    rfc1337,
                    oow_ratelimit_ns,
                    paws_wrap_ns: (self.paws_stale * 1e9).round() as i64,
                    ..LinuxPolicy::default()
                };
                let policy: Box<dyn ServerPolicy> = match name {
                    PolicyName::Linux => Box::new(linux),
                    PolicyName::LinuxTwRecycle => Box::new(TwRecyclePolicy::new(linux, false)),
                    PolicyName::LinuxTwRecycle24day => Box::new(TwRecyclePolicy::new(linux, true)),
                    PolicyName::NoTimestamps => Box::new(NoTimestampsPolicy { linux }),
                    PolicyName::Rfc7323 => Box::new(Rfc7323Policy { linux }),
                };
                policy
            })
            .collect()
    }

    /// Reads the captures once and judges them under each policy, with a progress line;
    /// errors are printed as one line.
    fn judge(
        &self,
        names: &[PolicyName],
        keep_rejected: usize,
        keep_records: bool,
    ) -> Result<Vec<Analysis>, ExitCode> {
        let given_limit_ms = self
            .sysctl
            .iter()
            .rev()
            .find(|(k, _)| k == "net.ipv4.tcp_invalid_ratelimit")
            .and_then(|(_, v)| v.parse::<i64>().ok());
        let limit_ms = given_limit_ms.unwrap_or(DEFAULT_RATE_LIMIT_MS);
        let analyses = self.judge_with(names, keep_rejected, keep_records, limit_ms, None)?;
        // The rate limit only changes which challenge ACKs are sent, and a first pass shows
        // their spacing: when the default does not explain it, judge again with a limit that
        // does. A capture read from standard input cannot be read twice.
        let inferred = analyses
            .first()
            .and_then(|a| a.syns.rate_limit.inferred_ms())
            .filter(|_| given_limit_ms.is_none())
            .filter(|_| self.captures.iter().all(|p| p.as_os_str() != "-"));
        match inferred {
            Some(ms) => self.judge_with(names, keep_rejected, keep_records, ms, Some(ms)),
            None => Ok(analyses),
        }
    }

    /// The settings the user stated: `--sysctl` values, and the kernel constants given as
    /// options when they differ from Linux's.
    fn given_settings(&self) -> BTreeMap<String, String> {
        let mut given: BTreeMap<String, String> = self.sysctl.iter().cloned().collect();
        if self.tw_len != 60.0 {
            given.insert("time_wait_len_secs".into(), self.tw_len.to_string());
        }
        if self.paws_stale != PAWS_WRAP_SECS {
            given.insert("paws_stale_secs".into(), self.paws_stale.to_string());
        }
        given
    }

    /// One pass over the capture with the given challenge-ACK rate limit (`inferred`: it
    /// came from an earlier pass).
    fn judge_with(
        &self,
        names: &[PolicyName],
        keep_rejected: usize,
        keep_records: bool,
        limit_ms: i64,
        inferred: Option<i64>,
    ) -> Result<Vec<Analysis>, ExitCode> {
        let owned: Vec<Vec<Box<dyn ServerPolicy>>> = names
            .iter()
            .map(|name| self.candidates(*name, limit_ms.saturating_mul(1_000_000)))
            .collect();
        let groups: Vec<Vec<&dyn ServerPolicy>> = owned
            .iter()
            .map(|group| group.iter().map(|p| p.as_ref()).collect())
            .collect();
        let progress = Progress::new(&self.captures);
        let report_progress = |bytes: u64| progress.show(bytes);
        let options = AnalyzeOptions {
            candidates: Vec::new(),
            server: self.server,
            keep_rejected,
            progress: progress
                .enabled()
                .then_some(&report_progress as &dyn Fn(u64)),
            keep_records,
            port_range: self.port_range,
            client_time_wait_ns: (self.tw_len * 1e9).round() as i64,
            max_tuples: self.max_tuples,
            given_settings: self.given_settings(),
            inferred_settings: inferred
                .map(|ms| ("net.ipv4.tcp_invalid_ratelimit".to_string(), ms.to_string()))
                .into_iter()
                .collect(),
            threads: self
                .threads
                .map_or_else(|| AnalyzeOptions::default().threads, usize::from),
        };
        let result = judge_files(&self.captures, &groups, &options);
        progress.clear();
        result.map_err(|e| {
            eprintln!("pawscope: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        })
    }

    /// The analysis that file-writing commands need (every record kept), its warnings
    /// printed: their stdout is not the place.
    fn analyze_for_files(&self, name: PolicyName) -> Result<Analysis, ExitCode> {
        let analysis = self.analyze(name, 0, true)?;
        for warning in &analysis.warnings {
            eprintln!("pawscope: warning: {warning}");
        }
        Ok(analysis)
    }

    fn client_time_wait_ns(&self) -> i64 {
        (self.tw_len * 1e9).round() as i64
    }

    fn analyze(
        &self,
        name: PolicyName,
        keep_rejected: usize,
        keep_records: bool,
    ) -> Result<Analysis, ExitCode> {
        let mut analyses = self.judge(&[name], keep_rejected, keep_records)?;
        analyses.pop().ok_or(ExitCode::FAILURE)
    }
}

/// TCP_PAWS_WRAP in seconds.
const PAWS_WRAP_SECS: f64 = (crate::policy::linux::PAWS_WRAP_NS / 1_000_000_000) as f64;

fn parse_paws_stale_secs(s: &str) -> Result<f64, String> {
    parse_secs_below(s, 1e9)
}

fn parse_positive_secs(s: &str) -> Result<f64, String> {
    parse_secs_below(s, 1e6)
}

fn parse_secs_below(s: &str, limit: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < limit => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Export(args) => export(args),
        Command::Whatif(args) => whatif(args),
        Command::Report(args) => report(args),
        Command::Chart(args) => chart(args),
        Command::Info(args) => info(args),
        Command::Simulate(args) => simulate_command(*args),
    }
}

fn simulate_command(args: SimulateArgs) -> ExitCode {
    let raw = simulate::RawParams {
        hosts: args.hosts,
        nat_addrs: args.nat_addrs,
        ports: args.ports,
        port_order: args.port_order,
        rate: args.rate,
        duration: args.duration,
        arrivals: args.arrivals,
        close: args.close,
        timestamps: args.timestamps,
        clock_rates: args.clock_rates,
        clock_spread: args.clock_spread,
        clock_offsets: args.clock_offsets,
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
    let analysis = match args.judge.analyze(args.policy, args.top, false) {
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
    if let Some(threshold) = args.fail_on
        && findings(&analysis)
            .iter()
            .any(|f| f.severity <= threshold.severity())
    {
        return ExitCode::from(EXIT_FINDINGS);
    }
    ExitCode::SUCCESS
}

fn whatif(args: WhatifArgs) -> ExitCode {
    let analyses = match args.judge.judge(&args.policies, 0, true) {
        Ok(analyses) => analyses,
        Err(code) => return code,
    };
    let comparison = compare(&analyses);
    let output = if args.json {
        whatif_json(&analyses, &comparison) + "\n"
    } else {
        whatif_text(&analyses, &comparison, args.top)
    };
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    ExitCode::SUCCESS
}

fn report(args: ReportArgs) -> ExitCode {
    let analysis = match args.judge.analyze_for_files(args.policy) {
        Ok(analysis) => analysis,
        Err(code) => return code,
    };
    let progress = Progress::new(&args.judge.captures);
    progress.note("drawing the charts, building and writing the tables");
    let written = write_report(&analysis, &args.out, args.judge.client_time_wait_ns());
    progress.clear();
    match written {
        Ok(paths) => {
            eprintln!(
                "pawscope: wrote {} files to {}",
                paths.len(),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pawscope: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything the report needs, staged and committed together.
fn write_report(
    analysis: &Analysis,
    dir: &std::path::Path,
    client_time_wait_ns: i64,
) -> Result<Vec<PathBuf>, String> {
    // The tables are built and staged beside the charts: both only read the analysis, and
    // the SYNs are chained into attempts once, for the attempts table and the outcome chart.
    let attempts = SharedAttempts::default();
    let staged = StagedFiles::new(dir).map_err(|e| e.to_string())?;
    std::thread::scope(|scope| {
        let tables = scope.spawn(|| {
            let no_records = TableRecords::default();
            let records = analysis.records.as_ref().unwrap_or(&no_records);
            let inputs = TableInputs::new(records, &analysis.nat, &attempts);
            // Parquet, compressed as `export` does by default.
            let format = TableFormat::Parquet(ParquetCodec::default());
            stage_tables(&staged, inputs, &TABLE_NAMES, format)
        });
        let pages = stage_pages(analysis, &staged, client_time_wait_ns, &attempts);
        // The tables' thread is joined whatever became of the pages.
        crate::threads::join(tables)?;
        pages
    })?;
    staged.commit().map_err(|e| e.to_string())
}

/// Stages the charts and the pages.
fn stage_pages(
    analysis: &Analysis,
    staged: &StagedFiles,
    client_time_wait_ns: i64,
    attempts: &SharedAttempts,
) -> Result<(), String> {
    let charts = all_charts(analysis, client_time_wait_ns, attempts);
    let mut svgs = Vec::with_capacity(charts.len());
    for chart in &charts {
        let svg = render_svg(chart)?;
        let png = render_png(chart)?;
        staged
            .stage_bytes(&format!("{}.svg", chart.kind()), svg.as_bytes())
            .map_err(|e| e.to_string())?;
        staged
            .stage_bytes(&format!("{}.png", chart.kind()), &png)
            .map_err(|e| e.to_string())?;
        svgs.push(svg);
    }
    let placed: Vec<ReportChart<'_>> = charts
        .iter()
        .zip(&svgs)
        .map(|(chart, svg)| ReportChart {
            chart,
            title: chart_title(chart),
            svg,
            png_name: format!("{}.png", chart.kind()),
        })
        .collect();
    staged
        .stage_bytes("report.html", report_html(analysis, &placed).as_bytes())
        .map_err(|e| e.to_string())?;
    staged
        .stage_bytes("report.md", report_markdown(analysis, &placed).as_bytes())
        .map_err(|e| e.to_string())
}

fn chart(args: ChartArgs) -> ExitCode {
    let analysis = match args.judge.analyze_for_files(args.policy) {
        Ok(analysis) => analysis,
        Err(code) => return code,
    };
    let tw = args.judge.client_time_wait_ns();
    let chart = match args.kind {
        ChartKind::Timestamps => match timestamp_chart(&analysis) {
            Some(c) => Chart::Timestamps(c),
            None => {
                eprintln!("pawscope: no client address sent TCP timestamps: nothing to draw");
                return ExitCode::FAILURE;
            }
        },
        ChartKind::Timeline => Chart::Timeline(timeline_chart(&analysis)),
        ChartKind::Outcomes => {
            Chart::Outcomes(outcome_chart(&analysis, &SharedAttempts::default()))
        }
        ChartKind::Ports => Chart::Ports(port_chart(&analysis, tw)),
    };
    let svg = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let bytes = if svg {
        render_svg(&chart).map(String::into_bytes)
    } else {
        render_png(&chart)
    };
    let result = bytes.and_then(|b| write_file(&args.out, &b).map_err(|e| e.to_string()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pawscope: {e}");
            ExitCode::FAILURE
        }
    }
}

fn export(args: ExportArgs) -> ExitCode {
    // Said before the capture is read: CSV and JSON tables are written uncompressed.
    if args.compression.is_some() && !matches!(args.format, FormatArg::Parquet) {
        eprintln!("pawscope: --compression applies to Parquet tables only (--format parquet)");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let analysis = match args.judge.analyze_for_files(args.policy) {
        Ok(analysis) => analysis,
        Err(code) => return code,
    };
    let records = analysis.records.unwrap_or_default();
    let progress = Progress::new(&args.judge.captures);
    progress.note("building and writing the tables");
    let attempts = SharedAttempts::default();
    let inputs = TableInputs::new(&records, &analysis.nat, &attempts);
    let wanted: Vec<&str> = args.tables.iter().map(String::as_str).collect();
    let format = match args.format {
        FormatArg::Parquet => TableFormat::Parquet(match args.compression {
            None => ParquetCodec::default(),
            Some(CodecArg::Snappy) => ParquetCodec::Snappy,
            Some(CodecArg::Zstd) => ParquetCodec::Zstd,
            Some(CodecArg::Lz4) => ParquetCodec::Lz4,
            Some(CodecArg::None) => ParquetCodec::None,
        }),
        FormatArg::Csv => TableFormat::Csv,
        FormatArg::Json => TableFormat::Json,
    };
    let written = write_tables(&args.out, inputs, &wanted, format);
    progress.clear();
    match written {
        Ok(tables) => {
            for (path, StagedTable { rows, .. }) in &tables {
                eprintln!("pawscope: wrote {} ({rows} rows)", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pawscope: {e}");
            ExitCode::FAILURE
        }
    }
}
