//! polars DataFrames from analysis records. Column names, types and meanings are documented
//! in docs/tables.md; a test keeps the two in step.

use std::net::SocketAddr;

use polars::prelude::*;

use super::attempts::{Attempt, chain_attempts};
use crate::flow::{
    CloseKind, Closer, FoundState, IncarnationRecord, SynRecord, TimeWaitEnd, TimeWaitHolder,
};
use crate::seq::{after, ts_diff};

/// Every table `export` can write, by name.
pub const TABLE_NAMES: [&str; 4] = ["connections", "syns", "attempts", "reuse"];

fn datetime(name: &str, values: Vec<Option<i64>>) -> PolarsResult<Column> {
    Column::new(name.into(), values).cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
}

fn ms(ns: Option<i64>) -> Option<f64> {
    ns.map(|v| v as f64 / 1e6)
}

fn family(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() { "ipv4" } else { "ipv6" }
}

fn str_col<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> Column {
    Column::new(name.into(), values.collect::<Vec<&str>>())
}

fn string_col(name: &str, values: impl Iterator<Item = String>) -> Column {
    Column::new(name.into(), values.collect::<Vec<String>>())
}

/// The four tuple columns and the address family, shared by every table keyed by a tuple.
fn tuple_columns(tuples: impl Iterator<Item = (SocketAddr, SocketAddr)> + Clone) -> Vec<Column> {
    vec![
        string_col(
            "client_addr",
            tuples.clone().map(|(c, _)| c.ip().to_string()),
        ),
        Column::new(
            "client_port".into(),
            tuples
                .clone()
                .map(|(c, _)| u32::from(c.port()))
                .collect::<Vec<u32>>(),
        ),
        string_col(
            "server_addr",
            tuples.clone().map(|(_, s)| s.ip().to_string()),
        ),
        Column::new(
            "server_port".into(),
            tuples
                .clone()
                .map(|(_, s)| u32::from(s.port()))
                .collect::<Vec<u32>>(),
        ),
        str_col("family", tuples.map(|(c, _)| family(&c))),
    ]
}

fn closer_key(closer: Closer) -> &'static str {
    match closer {
        Closer::Client => "client",
        Closer::Server => "server",
        Closer::Simultaneous => "simultaneous",
        Closer::Nobody => "none",
    }
}

fn close_kind_key(kind: CloseKind) -> &'static str {
    match kind {
        CloseKind::Fin => "fin",
        CloseKind::Rst => "rst",
        CloseKind::None => "none",
    }
}

fn holder_key(holder: TimeWaitHolder) -> &'static str {
    match holder {
        TimeWaitHolder::Server => "server",
        TimeWaitHolder::Client => "client",
        TimeWaitHolder::Nobody => "none",
    }
}

fn tw_end_key(end: TimeWaitEnd) -> &'static str {
    match end {
        TimeWaitEnd::Expired => "expired",
        TimeWaitEnd::KilledByRst => "rst",
        TimeWaitEnd::ReopenedBySyn => "syn",
        TimeWaitEnd::OpenAtEnd => "open_at_end",
    }
}

fn found_key(found: &FoundState) -> &'static str {
    match found {
        FoundState::Listen => "listen",
        FoundState::TimeWait { .. } => "time_wait",
        FoundState::SynRecv => "syn_recv",
        FoundState::Open => "open",
        FoundState::Unknown => "unknown",
    }
}

/// The TIME_WAIT a SYN met: (ts_recent if timestamps were negotiated, rcv_nxt, age).
fn time_wait_of(found: &FoundState) -> Option<(Option<u32>, u32, i64)> {
    match *found {
        FoundState::TimeWait {
            ts_recent,
            ts_negotiated,
            rcv_nxt,
            age_ns,
        } => Some((ts_negotiated.then_some(ts_recent), rcv_nxt, age_ns)),
        _ => None,
    }
}

/// One row per incarnation, in order of their SYNs.
pub fn connections_frame(incarnations: &[IncarnationRecord]) -> PolarsResult<DataFrame> {
    let mut rows: Vec<&IncarnationRecord> = incarnations.iter().collect();
    rows.sort_by_key(|r| (r.syn_ns, r.tuple));
    let tuples = rows.iter().map(|r| (r.tuple.client, r.tuple.server));
    let mut columns = tuple_columns(tuples);
    columns.extend([
        Column::new(
            "incarnation".into(),
            rows.iter().map(|r| r.number).collect::<Vec<u32>>(),
        ),
        datetime("syn_time", rows.iter().map(|r| Some(r.syn_ns)).collect())?,
        datetime(
            "handshake_time",
            rows.iter().map(|r| r.handshake_ns).collect(),
        )?,
        Column::new(
            "client_isn".into(),
            rows.iter().map(|r| r.client_isn).collect::<Vec<u32>>(),
        ),
        Column::new(
            "server_isn".into(),
            rows.iter().map(|r| r.server_isn).collect::<Vec<u32>>(),
        ),
        Column::new(
            "ts_negotiated".into(),
            rows.iter().map(|r| r.ts_negotiated).collect::<Vec<bool>>(),
        ),
        Column::new(
            "client_first_tsval".into(),
            rows.iter()
                .map(|r| r.client.first_tsval)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "client_last_tsval".into(),
            rows.iter().map(|r| r.client.last_tsval).collect::<Vec<_>>(),
        ),
        Column::new(
            "server_first_tsval".into(),
            rows.iter()
                .map(|r| r.server.first_tsval)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "server_last_tsval".into(),
            rows.iter().map(|r| r.server.last_tsval).collect::<Vec<_>>(),
        ),
        Column::new(
            "client_bytes".into(),
            rows.iter()
                .map(|r| r.client.payload_bytes)
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "server_bytes".into(),
            rows.iter()
                .map(|r| r.server.payload_bytes)
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "client_segments".into(),
            rows.iter().map(|r| r.client.segments).collect::<Vec<u64>>(),
        ),
        Column::new(
            "server_segments".into(),
            rows.iter().map(|r| r.server.segments).collect::<Vec<u64>>(),
        ),
        str_col(
            "closed_first",
            rows.iter().map(|r| closer_key(r.closed_first)),
        ),
        str_col(
            "close_kind",
            rows.iter().map(|r| close_kind_key(r.close_kind)),
        ),
        datetime("end_time", rows.iter().map(|r| r.end_ns).collect())?,
        str_col(
            "time_wait_holder",
            rows.iter().map(|r| holder_key(r.time_wait_holder)),
        ),
        datetime(
            "time_wait_start",
            rows.iter().map(|r| r.time_wait_start_ns).collect(),
        )?,
        datetime(
            "time_wait_end",
            rows.iter().map(|r| r.time_wait_end_ns).collect(),
        )?,
        Column::new(
            "time_wait_end_reason".into(),
            rows.iter()
                .map(|r| r.time_wait_end.map(tw_end_key))
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            "gap_to_next_ms".into(),
            rows.iter()
                .map(|r| ms(r.gap_to_next_ns))
                .collect::<Vec<_>>(),
        ),
    ]);
    DataFrame::new(rows.len(), columns)
}

/// One row per SYN segment, in time order; `attempts` gives each SYN's attempt id.
pub fn syns_frame(syns: &[SynRecord], attempts: &[u64]) -> PolarsResult<DataFrame> {
    let mut order: Vec<usize> = (0..syns.len()).collect();
    order.sort_by_key(|&i| (syns[i].ts_ns, i));
    let rows: Vec<&SynRecord> = order.iter().map(|&i| &syns[i]).collect();
    let tw: Vec<Option<(Option<u32>, u32, i64)>> =
        rows.iter().map(|r| time_wait_of(&r.found)).collect();
    let mut columns = vec![datetime(
        "time",
        rows.iter().map(|r| Some(r.ts_ns)).collect(),
    )?];
    columns.extend(tuple_columns(
        rows.iter().map(|r| (r.tuple.client, r.tuple.server)),
    ));
    columns.extend([
        Column::new(
            "isn".into(),
            rows.iter().map(|r| r.isn).collect::<Vec<u32>>(),
        ),
        Column::new(
            "tsval".into(),
            rows.iter().map(|r| r.tsval).collect::<Vec<_>>(),
        ),
        Column::new(
            "retransmission".into(),
            rows.iter().map(|r| r.retransmission).collect::<Vec<u32>>(),
        ),
        Column::new(
            "attempt".into(),
            order.iter().map(|&i| attempts[i]).collect::<Vec<u64>>(),
        ),
        str_col("state_found", rows.iter().map(|r| found_key(&r.found))),
        Column::new(
            "tw_ts_recent".into(),
            tw.iter()
                .map(|t| t.and_then(|(ts, _, _)| ts))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "tw_rcv_nxt".into(),
            tw.iter()
                .map(|t| t.map(|(_, rcv, _)| rcv))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "tw_age_ms".into(),
            tw.iter()
                .map(|t| ms(t.map(|(_, _, age)| age)))
                .collect::<Vec<_>>(),
        ),
        str_col("verdict", rows.iter().map(|r| r.verdict.key())),
        str_col("reason", rows.iter().map(|r| r.reason)),
        str_col(
            "predicted_reply",
            rows.iter().map(|r| r.predicted_reply.key()),
        ),
        str_col("reply", rows.iter().map(|r| r.reply.key())),
        Column::new(
            "reply_delay_ms".into(),
            rows.iter()
                .map(|r| ms(r.reply_delay_ns))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "reply_server_isn".into(),
            rows.iter().map(|r| r.reply_server_isn).collect::<Vec<_>>(),
        ),
        Column::new(
            "expected_server_isn".into(),
            rows.iter()
                .map(|r| r.expected_server_isn)
                .collect::<Vec<_>>(),
        ),
        datetime(
            "established_time",
            rows.iter().map(|r| r.established_ns).collect(),
        )?,
    ]);
    DataFrame::new(rows.len(), columns)
}

/// One row per connect attempt, in order of their first SYN.
pub fn attempts_frame(attempts: &[Attempt]) -> PolarsResult<DataFrame> {
    let ports = |a: &Attempt| {
        a.client_ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let columns = vec![
        Column::new(
            "attempt".into(),
            attempts.iter().map(|a| a.id).collect::<Vec<u64>>(),
        ),
        string_col(
            "client_addr",
            attempts.iter().map(|a| a.client_ip.to_string()),
        ),
        string_col("client_ports", attempts.iter().map(ports)),
        string_col(
            "server_addr",
            attempts.iter().map(|a| a.server.ip().to_string()),
        ),
        Column::new(
            "server_port".into(),
            attempts
                .iter()
                .map(|a| u32::from(a.server.port()))
                .collect::<Vec<u32>>(),
        ),
        str_col("family", attempts.iter().map(|a| family(&a.server))),
        Column::new(
            "isn".into(),
            attempts.iter().map(|a| a.isn).collect::<Vec<u32>>(),
        ),
        datetime(
            "first_syn_time",
            attempts.iter().map(|a| Some(a.first_syn_ns)).collect(),
        )?,
        datetime(
            "last_syn_time",
            attempts.iter().map(|a| Some(a.last_syn_ns)).collect(),
        )?,
        Column::new(
            "syns".into(),
            attempts.iter().map(|a| a.syns).collect::<Vec<u32>>(),
        ),
        Column::new(
            "public_ports".into(),
            attempts
                .iter()
                .map(|a| a.client_ports.len() as u32)
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "paws_rejects".into(),
            attempts
                .iter()
                .map(|a| a.paws_rejects)
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "seq_rejects".into(),
            attempts.iter().map(|a| a.seq_rejects).collect::<Vec<u32>>(),
        ),
        str_col("outcome", attempts.iter().map(|a| a.outcome.key())),
        datetime(
            "established_time",
            attempts.iter().map(|a| a.established_ns).collect(),
        )?,
        Column::new(
            "time_to_establish_ms".into(),
            attempts
                .iter()
                .map(|a| ms(a.time_to_establish_ns()))
                .collect::<Vec<_>>(),
        ),
    ];
    DataFrame::new(attempts.len(), columns)
}

/// One row per SYN that reopened a tuple, in time order.
pub fn reuse_frame(syns: &[SynRecord]) -> PolarsResult<DataFrame> {
    let mut rows: Vec<&SynRecord> = syns.iter().filter(|s| s.reuse.is_some()).collect();
    rows.sort_by_key(|r| (r.ts_ns, r.tuple));
    let reuse: Vec<_> = rows.iter().filter_map(|r| r.reuse).collect();
    let tw: Vec<Option<(Option<u32>, u32, i64)>> =
        rows.iter().map(|r| time_wait_of(&r.found)).collect();
    let mut columns = vec![datetime(
        "time",
        rows.iter().map(|r| Some(r.ts_ns)).collect(),
    )?];
    columns.extend(tuple_columns(
        rows.iter().map(|r| (r.tuple.client, r.tuple.server)),
    ));
    columns.extend([
        Column::new(
            "isn".into(),
            rows.iter().map(|r| r.isn).collect::<Vec<u32>>(),
        ),
        Column::new(
            "tsval".into(),
            rows.iter().map(|r| r.tsval).collect::<Vec<_>>(),
        ),
        datetime(
            "previous_end_time",
            reuse.iter().map(|u| u.previous_end_ns).collect(),
        )?,
        str_col(
            "previous_time_wait_holder",
            reuse.iter().map(|u| holder_key(u.previous_holder)),
        ),
        Column::new(
            "gap_ms".into(),
            reuse
                .iter()
                .map(|u| u.gap_ns as f64 / 1e6)
                .collect::<Vec<f64>>(),
        ),
        Column::new(
            "within_2msl".into(),
            reuse.iter().map(|u| u.within_2msl).collect::<Vec<bool>>(),
        ),
        str_col("state_found", rows.iter().map(|r| found_key(&r.found))),
        Column::new(
            "ts_recent".into(),
            tw.iter()
                .map(|t| t.and_then(|(ts, _, _)| ts))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "tsval_minus_ts_recent".into(),
            rows.iter()
                .zip(&tw)
                .map(|(r, t)| match (r.tsval, t.and_then(|(ts, _, _)| ts)) {
                    (Some(v), Some(recent)) => Some(i64::from(ts_diff(v, recent))),
                    _ => None,
                })
                .collect::<Vec<Option<i64>>>(),
        ),
        Column::new(
            "rcv_nxt".into(),
            tw.iter()
                .map(|t| t.map(|(_, rcv, _)| rcv))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seq_after_rcv_nxt".into(),
            rows.iter()
                .zip(&tw)
                .map(|(r, t)| t.map(|(_, rcv, _)| after(r.isn, rcv)))
                .collect::<Vec<Option<bool>>>(),
        ),
        str_col("verdict", rows.iter().map(|r| r.verdict.key())),
        str_col("reason", rows.iter().map(|r| r.reason)),
        str_col("reply", rows.iter().map(|r| r.reply.key())),
    ]);
    DataFrame::new(rows.len(), columns)
}

/// All four tables from one analysis's records.
pub struct Tables {
    pub connections: DataFrame,
    pub syns: DataFrame,
    pub attempts: DataFrame,
    pub reuse: DataFrame,
}

impl Tables {
    pub fn build(syns: &[SynRecord], incarnations: &[IncarnationRecord]) -> PolarsResult<Self> {
        let (attempts, attempt_ids) = chain_attempts(syns);
        Ok(Tables {
            connections: connections_frame(incarnations)?,
            syns: syns_frame(syns, &attempt_ids)?,
            attempts: attempts_frame(&attempts)?,
            reuse: reuse_frame(syns)?,
        })
    }

    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        match name {
            "connections" => Some(&self.connections),
            "syns" => Some(&self.syns),
            "attempts" => Some(&self.attempts),
            "reuse" => Some(&self.reuse),
            _ => None,
        }
    }
}
