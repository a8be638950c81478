//! The ground truth written beside a simulated capture (`--truth FILE.json`).
//!
//! `server_counters` uses the nstat names of the recorded samples' truth files, so both
//! kinds of truth can be checked against `analyze` the same way.

use serde::Serialize;

use super::engine::{Outcome, QUICK_RETRANSMIT_US, SYN_TIMERS_US};
use super::params::Params;
use super::pcap::LINKTYPE_RAW;
use super::server;
use crate::timefmt::rfc3339;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Truth {
    /// Always "pawscope simulate".
    pub generator: &'static str,
    pub pawscope_version: &'static str,
    pub seed: u64,
    pub params: TruthParams,
    /// The model's fixed constants.
    pub model: Model,
    /// Records in the capture.
    pub packets: u64,
    pub capture: CaptureTruth,
    pub connects: Connects,
    pub syns: Syns,
    pub challenge_acks: ChallengeAcks,
    /// RSTs the clients sent in answer to challenge ACKs.
    pub client_rsts: u64,
    pub time_wait: TimeWaitTruth,
    pub server_counters: ServerCounters,
    pub nat: Vec<NatTruth>,
    pub hosts: Vec<HostTruth>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TruthParams {
    pub hosts: u32,
    pub nat_addrs: u32,
    pub ports: String,
    pub port_order: &'static str,
    pub rate: f64,
    pub duration_secs: f64,
    pub arrivals: &'static str,
    pub close: &'static str,
    pub timestamps: &'static str,
    pub clock_rates: Vec<u32>,
    pub clock_spread: Option<u32>,
    pub clock_offsets: &'static str,
    pub server: &'static str,
    pub server_addr: String,
    pub family: u8,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Model {
    pub time_wait_secs: f64,
    /// TIME_WAIT length under tcp_tw_recycle when timestamps were used.
    pub recycle_time_wait_secs: f64,
    /// The kernel tick the challenge-ACK rate limit counts in.
    pub hz: i64,
    pub challenge_ack_ratelimit_ms: i64,
    /// When an unanswered SYN is sent again, seconds after the first.
    pub syn_retransmits_secs: Vec<f64>,
    /// When an unanswered connect gives up, seconds after its first SYN.
    pub connect_timeout_secs: f64,
    /// Between a client's RST (answering a challenge ACK) and its SYN again.
    pub retransmit_after_rst_ms: f64,
    pub capture_start: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaptureTruth {
    pub link_type: u32,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Connects {
    pub attempted: u64,
    pub established: u64,
    /// Gave up after the last SYN retransmission went unanswered.
    pub failed: u64,
    /// Failed connects whose SYNs the NAT dropped every time: nothing of them is captured.
    pub failed_at_nat: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Syns {
    /// SYNs in the capture (first SYNs and retransmissions).
    pub sent: u64,
    pub retransmissions: u64,
    /// SYNs the NAT dropped for want of a free public port (not in the capture).
    pub dropped_by_nat: u64,
    /// SYNs the server dropped silently: tcp_tw_recycle's per-source-IP check.
    pub dropped_by_server: u64,
    pub answered_syn_ack: u64,
    pub answered_challenge_ack: u64,
    /// SYNs the server did not answer (dropped, or its challenge ACK rate-limited).
    pub unanswered: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChallengeAcks {
    pub sent: u64,
    pub rate_limited: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimeWaitTruth {
    /// Server sockets that entered TIME_WAIT (the server closed first).
    pub entered: u64,
    /// SYNs a TIME_WAIT socket rejected by PAWS.
    pub paws_rejects: u64,
    /// SYNs a TIME_WAIT socket rejected by the sequence rule.
    pub seq_rejects: u64,
    /// SYNs a TIME_WAIT socket accepted (SYN-ACK ISN = snd_nxt + 65537).
    pub reopened_by_syn: u64,
    pub killed_by_rst: u64,
}

#[allow(non_snake_case)]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerCounters {
    pub TcpPassiveOpens: u64,
    pub TcpExtPAWSTimewait: u64,
    pub TcpExtTCPACKSkippedTimeWait: u64,
    pub TcpExtPAWSPassive: u64,
    pub TcpExtTW: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NatTruth {
    pub addr: String,
    pub hosts: u32,
    pub hosts_with_timestamps: u32,
    pub syns_dropped: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostTruth {
    pub addr: String,
    pub nat_addr: String,
    pub timestamps: bool,
    pub clock_hz: u32,
    pub clock_offset: u32,
    pub rtt_us: i64,
    pub connects: u64,
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

impl Truth {
    pub fn build(params: &Params, outcome: &Outcome, packets: u64, start_us: i64) -> Truth {
        let Outcome {
            hosts,
            nats,
            server,
            tally,
        } = outcome;
        let (counters, stats) = (&server.counters, &server.stats);
        let ts = |us: Option<i64>| us.map(|t| rfc3339((start_us + t) * 1000));
        Truth {
            generator: "pawscope simulate",
            pawscope_version: env!("CARGO_PKG_VERSION"),
            seed: params.seed,
            params: TruthParams {
                hosts: params.hosts,
                nat_addrs: params.nat_addrs,
                ports: params.ports_text(),
                port_order: params.port_order.name(),
                rate: params.rate,
                duration_secs: params.duration_secs,
                arrivals: params.arrivals.name(),
                close: params.close.name(),
                timestamps: params.timestamps.name(),
                clock_rates: params.clock_rates.clone(),
                clock_spread: params.clock_spread,
                clock_offsets: params.clock_offsets.name(),
                server: params.server.name(),
                server_addr: params.server_addr.to_string(),
                family: if params.server_addr.is_ipv6() { 6 } else { 4 },
            },
            model: Model {
                time_wait_secs: secs(server::TIME_WAIT_LEN_US),
                recycle_time_wait_secs: secs(server::RECYCLE_TIME_WAIT_US),
                hz: server::HZ,
                challenge_ack_ratelimit_ms: i64::from(server::OOW_RATELIMIT_JIFFIES) * 1000
                    / server::HZ,
                syn_retransmits_secs: SYN_TIMERS_US[..SYN_TIMERS_US.len() - 1]
                    .iter()
                    .map(|&us| secs(us))
                    .collect(),
                connect_timeout_secs: secs(SYN_TIMERS_US[SYN_TIMERS_US.len() - 1]),
                retransmit_after_rst_ms: QUICK_RETRANSMIT_US as f64 / 1000.0,
                capture_start: rfc3339(start_us * 1000),
            },
            packets,
            capture: CaptureTruth {
                link_type: LINKTYPE_RAW,
                first_ts: ts(tally.first_us),
                last_ts: ts(tally.last_us),
            },
            connects: Connects {
                attempted: tally.connects_attempted,
                established: tally.connects_established,
                failed: tally.connects_failed,
                failed_at_nat: tally.connects_failed_at_nat,
            },
            syns: Syns {
                sent: tally.syns_sent,
                retransmissions: tally.syn_retransmissions,
                dropped_by_nat: tally.syns_dropped_by_nat,
                dropped_by_server: counters.paws_passive,
                answered_syn_ack: tally.syns_answered_syn_ack,
                answered_challenge_ack: tally.syns_answered_challenge_ack,
                unanswered: tally.syns_unanswered,
            },
            challenge_acks: ChallengeAcks {
                sent: stats.challenge_acks,
                rate_limited: counters.ack_skipped_timewait,
            },
            client_rsts: tally.client_rsts,
            time_wait: TimeWaitTruth {
                entered: counters.tw,
                paws_rejects: counters.paws_timewait,
                seq_rejects: stats.time_wait_seq_rejects,
                reopened_by_syn: stats.accepted_from_time_wait,
                killed_by_rst: stats.time_wait_killed_by_rst,
            },
            server_counters: ServerCounters {
                TcpPassiveOpens: counters.passive_opens,
                TcpExtPAWSTimewait: counters.paws_timewait,
                TcpExtTCPACKSkippedTimeWait: counters.ack_skipped_timewait,
                TcpExtPAWSPassive: counters.paws_passive,
                TcpExtTW: counters.tw,
            },
            nat: nats
                .iter()
                .map(|n| NatTruth {
                    addr: n.addr.to_string(),
                    hosts: n.hosts,
                    hosts_with_timestamps: n.hosts_with_timestamps,
                    syns_dropped: n.syns_dropped,
                })
                .collect(),
            hosts: hosts
                .iter()
                .map(|h| HostTruth {
                    addr: h.addr.to_string(),
                    nat_addr: nats
                        .get(h.nat)
                        .map(|n| n.addr.to_string())
                        .unwrap_or_default(),
                    timestamps: h.timestamps,
                    clock_hz: h.clock_hz,
                    clock_offset: h.clock_offset,
                    rtt_us: h.rtt_us,
                    connects: h.connects,
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        // Plain structs of numbers and strings always serialise.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}
