//! The `analyze --json` object. Keys are a stable interface: add, never rename.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::{Agreement, Analysis, ReplyCounts, VerdictCounts, findings, server_settings};
use crate::nat::ClockModel;
use crate::timefmt::rfc3339;

#[derive(Serialize)]
struct Report<'a> {
    pawscope_version: &'static str,
    policy: &'static str,
    /// Server settings the verdicts assume.
    settings: &'a str,
    /// The settings were inferred from the capture (the best agreeing candidate).
    settings_inferred: bool,
    /// The policy's behaviour is simulated from kernel source, not recorded from a kernel.
    policy_simulated: bool,
    time_wait_len_secs: f64,
    capture: Capture<'a>,
    /// Handshakes completed at the server.
    connections: u64,
    /// Distinct 4-tuples that carried a SYN (a tuple quiet for 3 minutes is forgotten and
    /// counts again if it comes back).
    tuples: u64,
    /// Most tuples held at once: what memory follows.
    peak_live_tuples: u64,
    syn: Syn,
    /// Client connect attempts (SYNs chained across retransmissions and NAT port moves).
    attempts: AttemptsJson,
    reuse: Reuse,
    verdicts: Verdicts,
    agreement: AgreementJson,
    kernel_counters: KernelCounters,
    time_wait: TimeWait,
    /// Per client address (toward each server address): its timestamp clocks.
    nat: Vec<NatAddress>,
    /// Per client address and server endpoint: local ports held against the port range.
    ports: Vec<PortsJson>,
    /// What went wrong, most severe first, with evidence and advice.
    findings: Vec<FindingJson>,
    /// The server settings the verdicts assume: value, source (given, inferred, default),
    /// evidence, and whether the capture contradicts a given or default value.
    server_settings: BTreeMap<&'static str, SettingJson>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct SettingJson {
    value: String,
    source: &'static str,
    evidence: String,
    contradicted: bool,
}

#[derive(Serialize)]
struct FindingJson {
    id: &'static str,
    severity: &'static str,
    title: String,
    evidence: Vec<String>,
    advice: Vec<String>,
}

#[derive(Serialize)]
struct PortsJson {
    client_address: String,
    server: String,
    port_range_size: u32,
    connections: u64,
    /// Connections the client closed first (it then holds the port in TIME_WAIT).
    client_time_waits: u64,
    /// Connections that negotiated timestamps (tcp_tw_reuse only helps with them).
    ts_negotiated: u64,
    peak_ports_in_use: u32,
    peak_time: Option<String>,
    /// When the ports held first filled the range (the next connect() fails), or null.
    exhausted_at: Option<String>,
    /// Most connections started in any 10 s, per second.
    peak_rate_per_s: f64,
    /// Port range size / TIME_WAIT length: what a client closing first can sustain.
    sustainable_rate_per_s: f64,
}

#[derive(Serialize)]
struct NatAddress {
    address: String,
    server_address: String,
    /// `per_host` (clocks count hosts), `per_connection` (every connection has its own
    /// offset: hosts cannot be counted from timestamps) or `unknown`.
    clock_model: &'static str,
    /// Distinct TCP timestamp clocks seen.
    clocks: u64,
    /// At least this many hosts share the address, as far as timestamps tell.
    hosts_lower_bound: usize,
    /// Each clock's rate, when it was seen long enough to measure (null otherwise).
    clock_rates_hz: Vec<f64>,
    syns: u64,
    segments_with_ts: u64,
    segments_without_ts: u64,
    /// Segments whose TSval is below the previous one from the address within TIME_WAIT.
    ts_decreases: u64,
    syn_ts_decreases: u64,
}

#[derive(Serialize)]
struct Capture<'a> {
    packets: u64,
    tcp_segments: u64,
    first_ts: Option<String>,
    last_ts: Option<String>,
    skipped: &'a BTreeMap<String, u64>,
    /// Where the first file cut off inside a record ends (see `files` for each file).
    truncated_at: Option<u64>,
    out_of_order: u64,
    snaplen_truncated: u64,
    files: Vec<FileJson>,
}

#[derive(Serialize)]
struct FileJson {
    path: String,
    compression: &'static str,
    packets: u64,
    truncated_at: Option<u64>,
}

#[derive(Serialize)]
struct Syn {
    total: u64,
    retransmissions: u64,
    replies: Replies,
}

#[derive(Serialize)]
struct AttemptsJson {
    total: u64,
    established: u64,
    failed: u64,
    /// Failed attempts that had a SYN rejected by TIME_WAIT.
    failed_after_reject: u64,
    /// Established only after a SYN was rejected: the delay PAWS cost.
    delayed: u64,
    delay_mean_ms: Option<f64>,
    delay_max_ms: Option<f64>,
}

#[derive(Serialize)]
struct Replies {
    syn_ack: u64,
    challenge_ack: u64,
    rst: u64,
    none: u64,
}

#[derive(Serialize)]
struct Reuse {
    within_2msl: u64,
    after_2msl: u64,
}

#[derive(Serialize)]
struct Verdicts {
    accepted: u64,
    paws_reject: u64,
    seq_reject: u64,
    no_listener: u64,
    unknown: u64,
    /// tcp_tw_recycle policies only: SYNs dropped silently by the per-address check.
    paws_passive_drop: u64,
}

#[derive(Serialize)]
struct AgreementJson {
    predicted_reject_observed_reject: u64,
    predicted_reject_observed_accept: u64,
    predicted_accept_observed_reject: u64,
    predicted_accept_observed_accept: u64,
    unobserved: u64,
    unjudged: u64,
    reply_as_predicted: u64,
    reply_not_as_predicted: u64,
}

#[allow(non_snake_case)]
#[derive(Serialize)]
struct KernelCounters {
    PAWSTimewait: u64,
    PassiveOpens: u64,
    TCPACKSkippedTimeWait: u64,
    /// TcpExtTW: counted when a TIME_WAIT socket's timer is first armed
    /// (`__inet_twsk_schedule`), so it counts sockets entering TIME_WAIT, not expiries.
    TW: u64,
    /// TcpExtPAWSPassive: tcp_tw_recycle's silent SYN drops (simulated policies only).
    PAWSPassive: u64,
}

#[derive(Serialize)]
struct TimeWait {
    entered: u64,
    expired: u64,
    killed_by_rst: u64,
    reopened_by_syn: u64,
    open_at_end: u64,
    client_held: u64,
    reopen_isn_matched: u64,
    reopen_isn_mismatched: u64,
}

impl From<&ReplyCounts> for Replies {
    fn from(r: &ReplyCounts) -> Self {
        Replies {
            syn_ack: r.syn_ack,
            challenge_ack: r.challenge_ack,
            rst: r.rst,
            none: r.none,
        }
    }
}

impl From<&VerdictCounts> for Verdicts {
    fn from(v: &VerdictCounts) -> Self {
        Verdicts {
            accepted: v.accepted,
            paws_reject: v.paws_reject,
            seq_reject: v.seq_reject,
            no_listener: v.no_listener,
            paws_passive_drop: v.paws_passive_drop,
            unknown: v.unknown,
        }
    }
}

impl From<&Agreement> for AgreementJson {
    fn from(a: &Agreement) -> Self {
        AgreementJson {
            predicted_reject_observed_reject: a.predicted_reject_observed_reject,
            predicted_reject_observed_accept: a.predicted_reject_observed_accept,
            predicted_accept_observed_reject: a.predicted_accept_observed_reject,
            predicted_accept_observed_accept: a.predicted_accept_observed_accept,
            unobserved: a.unobserved,
            unjudged: a.unjudged,
            reply_as_predicted: a.reply_as_predicted,
            reply_not_as_predicted: a.reply_not_as_predicted,
        }
    }
}

/// The analysis as one pretty-printed JSON object.
pub fn to_json(analysis: &Analysis) -> String {
    let flow = &analysis.flow;
    let tw = &flow.time_wait;
    let report = Report {
        pawscope_version: env!("CARGO_PKG_VERSION"),
        policy: analysis.policy_name,
        settings: &analysis.settings,
        settings_inferred: analysis.settings_inferred,
        policy_simulated: analysis.policy_simulated,
        time_wait_len_secs: analysis.time_wait_len_ns as f64 / 1e9,
        capture: Capture {
            packets: analysis.capture.packets,
            tcp_segments: analysis.capture.tcp_segments,
            first_ts: analysis.capture.first_ts_ns.map(rfc3339),
            last_ts: analysis.capture.last_ts_ns.map(rfc3339),
            skipped: &analysis.capture.skipped,
            truncated_at: analysis.capture.files.iter().find_map(|f| f.truncated_at),
            files: analysis
                .capture
                .files
                .iter()
                .map(|f| FileJson {
                    path: f.path.display().to_string(),
                    compression: f.compression.name(),
                    packets: f.packets,
                    truncated_at: f.truncated_at,
                })
                .collect(),
            out_of_order: analysis.capture.out_of_order,
            snaplen_truncated: analysis.capture.snaplen_truncated,
        },
        connections: flow.counters.passive_opens,
        tuples: flow.tuples_with_syn,
        peak_live_tuples: flow.peak_live_tuples,
        syn: Syn {
            total: flow.syn_total,
            retransmissions: flow.syn_retransmissions,
            replies: (&analysis.syns.replies).into(),
        },
        attempts: {
            let a = &analysis.syns.attempt_totals;
            AttemptsJson {
                total: a.attempts,
                established: a.established,
                failed: a.failed,
                failed_after_reject: a.failed_after_reject,
                delayed: a.delayed,
                delay_mean_ms: (a.delayed > 0)
                    .then(|| a.delay_total_ns as f64 / a.delayed as f64 / 1e6),
                delay_max_ms: (a.delayed > 0).then(|| a.delay_max_ns as f64 / 1e6),
            }
        },
        reuse: Reuse {
            within_2msl: flow.reuse_within_2msl,
            after_2msl: flow.reuse_after_2msl,
        },
        verdicts: (&analysis.syns.verdicts).into(),
        agreement: (&analysis.syns.agreement).into(),
        kernel_counters: KernelCounters {
            PAWSTimewait: flow.counters.paws_timewait,
            PassiveOpens: flow.counters.passive_opens,
            TCPACKSkippedTimeWait: flow.counters.ack_skipped_timewait,
            TW: tw.entered,
            PAWSPassive: flow.counters.paws_passive,
        },
        time_wait: TimeWait {
            entered: tw.entered,
            expired: tw.expired,
            killed_by_rst: tw.killed_by_rst,
            reopened_by_syn: tw.reopened_by_syn,
            open_at_end: tw.open_at_end,
            client_held: tw.client_held,
            reopen_isn_matched: tw.reopen_isn_matched,
            reopen_isn_mismatched: tw.reopen_isn_mismatched,
        },
        nat: analysis
            .nat
            .addresses
            .iter()
            .map(|a| NatAddress {
                address: a.source.to_string(),
                server_address: a.destination.to_string(),
                clock_model: match a.clocks.model() {
                    ClockModel::PerHost => "per_host",
                    ClockModel::PerConnection => "per_connection",
                    ClockModel::Unknown => "unknown",
                },
                clocks: a.clocks.clock_count(),
                hosts_lower_bound: a.hosts_lower_bound(),
                clock_rates_hz: a.clocks.clocks.iter().filter_map(|c| c.rate_hz).collect(),
                syns: a.clocks.syns,
                segments_with_ts: a.clocks.segments_with_ts,
                segments_without_ts: a.clocks.segments_without_ts,
                ts_decreases: a.clocks.decreases,
                syn_ts_decreases: a.clocks.syn_decreases,
            })
            .collect(),
        ports: analysis
            .ports
            .iter()
            .map(|p| PortsJson {
                client_address: p.client.to_string(),
                server: p.server.to_string(),
                port_range_size: p.range_size,
                connections: p.connections,
                client_time_waits: p.client_time_waits,
                ts_negotiated: p.ts_negotiated,
                peak_ports_in_use: p.peak_in_use,
                peak_time: p.peak_ns.map(rfc3339),
                exhausted_at: p.exhausted_ns.map(rfc3339),
                peak_rate_per_s: p.peak_rate_per_s,
                sustainable_rate_per_s: p.sustainable_rate_per_s,
            })
            .collect(),
        findings: findings(analysis)
            .into_iter()
            .map(|f| FindingJson {
                id: f.id,
                severity: f.severity.key(),
                title: f.title,
                evidence: f.evidence,
                advice: f.advice,
            })
            .collect(),
        server_settings: server_settings(analysis)
            .into_iter()
            .map(|(k, s)| {
                (
                    k,
                    SettingJson {
                        value: s.value,
                        source: s.source.key(),
                        evidence: s.evidence,
                        contradicted: s.contradicted,
                    },
                )
            })
            .collect(),
        warnings: &analysis.warnings,
    };
    // Serialising plain structs of numbers and strings cannot fail.
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
