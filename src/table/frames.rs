//! polars DataFrames from analysis records. Column names, types and meanings are documented
//! in docs/tables.md; a test keeps the two in step.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use polars::prelude::*;

use super::attempts::{Attempt, chain_attempts};
use crate::fastmap::FastMap;
use crate::flow::{
    CloseKind, Closer, FoundState, IncarnationRecord, Reuse, SynRecord, TimeWaitEnd,
    TimeWaitHolder, TupleKey,
};
use crate::nat::{AddressEvent, AddressReport, Clock, ClockModel, NatReport};
use crate::seq::{after, ts_diff};
use crate::threads::join;

/// Every table `export` can write, by name.
pub const TABLE_NAMES: [&str; 6] = [
    "connections",
    "syns",
    "attempts",
    "reuse",
    "nat_hosts",
    "ts_events",
];

/// `rows` in order of (time, tuple), equal ones in their given order: what a stable sort by
/// that key gives. Times are sorted as plain integers beside each row's place and tuples
/// compared only on a tie: a sort that read both keys through the rows for every
/// comparison spent most of its time waiting on memory.
fn in_time_order<R: Copy>(
    rows: &[R],
    time: impl Fn(&R) -> i64,
    tuple: impl Fn(&R) -> TupleKey,
) -> Vec<R> {
    let mut order: Vec<(i64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(at, row)| (time(row), at as u32))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| tuple(&rows[a.1 as usize]).cmp(&tuple(&rows[b.1 as usize])))
            .then(a.1.cmp(&b.1))
    });
    order.into_iter().map(|(_, at)| rows[at as usize]).collect()
}

/// A column holding `value(row)` for every row.
fn col<R, T, P: ?Sized>(name: &str, rows: &[R], value: impl Fn(&R) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, P>,
{
    Column::new(name.into(), rows.iter().map(value).collect::<Vec<T>>())
}

/// A text column, each row written by `write` into one reused buffer: no String per row.
fn text_col<R>(name: &str, rows: &[R], mut write: impl FnMut(&R, &mut String)) -> Column {
    let mut builder = StringChunkedBuilder::new(name.into(), rows.len());
    let mut text = String::new();
    for row in rows {
        text.clear();
        write(row, &mut text);
        builder.append_value(&text);
    }
    builder.finish().into_column()
}

/// An address column. A capture holds few distinct addresses and tables a row per
/// connection or SYN: each address is written out once.
fn addr_col<R>(name: &str, rows: &[R], addr: impl Fn(&R) -> IpAddr) -> Column {
    let mut texts: FastMap<IpAddr, String> = FastMap::default();
    let mut builder = StringChunkedBuilder::new(name.into(), rows.len());
    for row in rows {
        let addr = addr(row);
        builder.append_value(texts.entry(addr).or_insert_with(|| addr.to_string()));
    }
    builder.finish().into_column()
}

/// A UTC timestamp column (nanoseconds) from optional epoch nanoseconds.
fn time_col<R>(name: &str, rows: &[R], value: impl Fn(&R) -> Option<i64>) -> PolarsResult<Column> {
    col(name, rows, value).cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
}

fn ms(ns: Option<i64>) -> Option<f64> {
    ns.map(|v| v as f64 / 1e6)
}

fn family(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() { "ipv4" } else { "ipv6" }
}

/// The four tuple columns and the address family, shared by every table keyed by a tuple.
fn tuple_columns<R>(rows: &[R], tuple: impl Fn(&R) -> TupleKey) -> Vec<Column> {
    vec![
        addr_col("client_addr", rows, |r| tuple(r).client.ip()),
        col("client_port", rows, |r| u32::from(tuple(r).client.port())),
        addr_col("server_addr", rows, |r| tuple(r).server.ip()),
        col("server_port", rows, |r| u32::from(tuple(r).server.port())),
        col("family", rows, |r| family(&tuple(r).client)),
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
    let rows: Vec<&IncarnationRecord> = incarnations.iter().collect();
    let rows = in_time_order(&rows, |r| r.syn_ns, |r| r.tuple);
    let mut columns = tuple_columns(&rows, |r| r.tuple);
    columns.extend([
        col("incarnation", &rows, |r| r.number),
        time_col("syn_time", &rows, |r| Some(r.syn_ns))?,
        time_col("handshake_time", &rows, |r| r.handshake_ns)?,
        col("client_isn", &rows, |r| r.client_isn),
        col("server_isn", &rows, |r| r.server_isn),
        col("ts_negotiated", &rows, |r| r.ts_negotiated),
        col("client_first_tsval", &rows, |r| r.client.first_tsval),
        col("client_last_tsval", &rows, |r| r.client.last_tsval),
        col("server_first_tsval", &rows, |r| r.server.first_tsval),
        col("server_last_tsval", &rows, |r| r.server.last_tsval),
        col("client_bytes", &rows, |r| r.client.payload_bytes),
        col("server_bytes", &rows, |r| r.server.payload_bytes),
        col("client_segments", &rows, |r| r.client.segments),
        col("server_segments", &rows, |r| r.server.segments),
        col("closed_first", &rows, |r| closer_key(r.closed_first)),
        col("close_kind", &rows, |r| close_kind_key(r.close_kind)),
        time_col("end_time", &rows, |r| r.end_ns)?,
        col("time_wait_holder", &rows, |r| {
            holder_key(r.time_wait_holder)
        }),
        time_col("time_wait_start", &rows, |r| r.time_wait_start_ns)?,
        time_col("time_wait_end", &rows, |r| r.time_wait_end_ns)?,
        col("time_wait_end_reason", &rows, |r| {
            r.time_wait_end.map(tw_end_key)
        }),
        col("gap_to_next_ms", &rows, |r| ms(r.gap_to_next_ns)),
    ]);
    DataFrame::new(rows.len(), columns)
}

/// One row per SYN segment, in time order; `attempts` gives each SYN's attempt id.
pub fn syns_frame(syns: &[SynRecord], attempts: &[u64]) -> PolarsResult<DataFrame> {
    let rows: Vec<(&SynRecord, u64)> = syns.iter().zip(attempts.iter().copied()).collect();
    let rows = in_time_order(&rows, |(r, _)| r.ts_ns, |(r, _)| r.tuple);
    let tw = |r: &(&SynRecord, u64)| time_wait_of(&r.0.found);
    let mut columns = vec![time_col("time", &rows, |(r, _)| Some(r.ts_ns))?];
    columns.extend(tuple_columns(&rows, |(r, _)| r.tuple));
    columns.extend([
        col("isn", &rows, |(r, _)| r.isn),
        col("tsval", &rows, |(r, _)| r.tsval),
        col("retransmission", &rows, |(r, _)| r.retransmission),
        col("attempt", &rows, |(_, attempt)| *attempt),
        col("state_found", &rows, |(r, _)| found_key(&r.found)),
        col("tw_ts_recent", &rows, |r| tw(r).and_then(|(ts, _, _)| ts)),
        col("tw_rcv_nxt", &rows, |r| tw(r).map(|(_, rcv, _)| rcv)),
        col("tw_age_ms", &rows, |r| ms(tw(r).map(|(_, _, age)| age))),
        col("verdict", &rows, |(r, _)| r.verdict.key()),
        col("reason", &rows, |(r, _)| r.reason_text()),
        col("predicted_reply", &rows, |(r, _)| r.predicted_reply.key()),
        col("reply", &rows, |(r, _)| r.reply.key()),
        col("reply_delay_ms", &rows, |(r, _)| ms(r.reply_delay_ns)),
        col("reply_server_isn", &rows, |(r, _)| r.reply_server_isn),
        col("expected_server_isn", &rows, |(r, _)| r.expected_server_isn),
        time_col("established_time", &rows, |(r, _)| r.established_ns)?,
    ]);
    DataFrame::new(rows.len(), columns)
}

/// One row per connect attempt, in order of their first SYN.
pub fn attempts_frame(attempts: &[Attempt]) -> PolarsResult<DataFrame> {
    let ports = |a: &Attempt, text: &mut String| {
        for (i, port) in a.client_ports.iter().enumerate() {
            let gap = if i == 0 { "" } else { " " };
            // Writing into a String cannot fail.
            let _ = write!(text, "{gap}{port}");
        }
    };
    let columns = vec![
        col("attempt", attempts, |a| a.id),
        addr_col("client_addr", attempts, |a| a.client_ip),
        text_col("client_ports", attempts, ports),
        addr_col("server_addr", attempts, |a| a.server.ip()),
        col("server_port", attempts, |a| u32::from(a.server.port())),
        col("family", attempts, |a| family(&a.server)),
        col("isn", attempts, |a| a.isn),
        time_col("first_syn_time", attempts, |a| Some(a.first_syn_ns))?,
        time_col("last_syn_time", attempts, |a| Some(a.last_syn_ns))?,
        col("syns", attempts, |a| a.syns),
        col("public_ports", attempts, |a| a.client_ports.len() as u32),
        col("paws_rejects", attempts, |a| a.paws_rejects),
        col("seq_rejects", attempts, |a| a.seq_rejects),
        col("outcome", attempts, |a| a.outcome.key()),
        time_col("established_time", attempts, |a| a.established_ns)?,
        col("time_to_establish_ms", attempts, |a| {
            ms(a.time_to_establish_ns())
        }),
    ];
    DataFrame::new(attempts.len(), columns)
}

/// One row per SYN that reopened a tuple, in time order.
pub fn reuse_frame(syns: &[SynRecord]) -> PolarsResult<DataFrame> {
    let mut rows: Vec<(&SynRecord, Reuse)> = syns
        .iter()
        .filter_map(|s| s.reuse.map(|u| (s, u)))
        .collect();
    rows.sort_by_key(|(r, _)| (r.ts_ns, r.tuple));
    let tw = |r: &(&SynRecord, Reuse)| time_wait_of(&r.0.found);
    let ts_recent = |r: &(&SynRecord, Reuse)| tw(r).and_then(|(ts, _, _)| ts);
    let mut columns = vec![time_col("time", &rows, |(r, _)| Some(r.ts_ns))?];
    columns.extend(tuple_columns(&rows, |(r, _)| r.tuple));
    columns.extend([
        col("isn", &rows, |(r, _)| r.isn),
        col("tsval", &rows, |(r, _)| r.tsval),
        time_col("previous_end_time", &rows, |(_, u)| u.previous_end_ns)?,
        col("previous_time_wait_holder", &rows, |(_, u)| {
            holder_key(u.previous_holder)
        }),
        col("gap_ms", &rows, |(_, u)| u.gap_ns as f64 / 1e6),
        col("within_2msl", &rows, |(_, u)| u.within_2msl),
        col("state_found", &rows, |(r, _)| found_key(&r.found)),
        col("ts_recent", &rows, ts_recent),
        col("tsval_minus_ts_recent", &rows, |row| {
            let (r, _) = row;
            r.tsval
                .zip(ts_recent(row))
                .map(|(v, recent)| i64::from(ts_diff(v, recent)))
        }),
        col("rcv_nxt", &rows, |r| tw(r).map(|(_, rcv, _)| rcv)),
        col("seq_after_rcv_nxt", &rows, |row| {
            tw(row).map(|(_, rcv, _)| after(row.0.isn, rcv))
        }),
        col("verdict", &rows, |(r, _)| r.verdict.key()),
        col("reason", &rows, |(r, _)| r.reason),
        col("reply", &rows, |(r, _)| r.reply.key()),
    ]);
    DataFrame::new(rows.len(), columns)
}

fn clock_model_key(model: ClockModel) -> &'static str {
    match model {
        ClockModel::PerHost => "per_host",
        ClockModel::PerConnection => "per_connection",
        ClockModel::Unknown => "unknown",
    }
}

/// One row per timestamp clock seen on a client address, busiest address first.
pub fn nat_hosts_frame(nat: &NatReport) -> PolarsResult<DataFrame> {
    // The model looks at every clock of the address: once per address, not once per row.
    let rows: Vec<(&AddressReport, &Clock, &'static str)> = nat
        .addresses
        .iter()
        .flat_map(|a| {
            let model = clock_model_key(a.clocks.model());
            a.clocks.clocks.iter().map(move |c| (a, c, model))
        })
        .collect();
    let columns = vec![
        addr_col("address", &rows, |(a, _, _)| a.source),
        addr_col("server_addr", &rows, |(a, _, _)| a.destination),
        col("clock_model", &rows, |(_, _, model)| *model),
        col("clock", &rows, |(_, c, _)| c.id),
        col("rate_hz", &rows, |(_, c, _)| c.rate_hz),
        time_col("first_time", &rows, |(_, c, _)| Some(c.first_ns))?,
        time_col("last_time", &rows, |(_, c, _)| Some(c.last_ns))?,
        col("first_tsval", &rows, |(_, c, _)| c.first_tsval),
        col("last_tsval", &rows, |(_, c, _)| c.last_tsval),
        col("segments", &rows, |(_, c, _)| c.segments),
        col("syns", &rows, |(_, c, _)| c.syns),
        col("connections", &rows, |(_, c, _)| c.connections),
    ];
    DataFrame::new(rows.len(), columns)
}

/// One row per TSval decrease on a client address, in time order.
pub fn ts_events_frame(nat: &NatReport) -> PolarsResult<DataFrame> {
    let mut rows: Vec<&AddressEvent> = nat.events.iter().flatten().collect();
    rows.sort_by_key(|e| (e.event.ts_ns, e.source, e.destination));
    let columns = vec![
        time_col("time", &rows, |e| Some(e.event.ts_ns))?,
        addr_col("address", &rows, |e| e.source),
        addr_col("server_addr", &rows, |e| e.destination),
        col("port", &rows, |e| u32::from(e.event.port)),
        col("tsval", &rows, |e| e.event.tsval),
        col("clock", &rows, |e| e.event.clock),
        col("syn", &rows, |e| e.event.syn),
        time_col("previous_time", &rows, |e| Some(e.event.previous_ns))?,
        col("previous_port", &rows, |e| u32::from(e.event.previous_port)),
        col("previous_tsval", &rows, |e| e.event.previous_tsval),
        col("previous_clock", &rows, |e| e.event.previous_clock),
        col("ticks_behind", &rows, |e| {
            i64::from(ts_diff(e.event.previous_tsval, e.event.tsval))
        }),
    ];
    DataFrame::new(rows.len(), columns)
}

/// All the tables from one analysis's records.
pub struct Tables {
    pub connections: DataFrame,
    pub syns: DataFrame,
    pub attempts: DataFrame,
    pub reuse: DataFrame,
    pub nat_hosts: DataFrame,
    pub ts_events: DataFrame,
}

impl Tables {
    /// Builds the tables on two threads: a million-connection capture takes seconds per
    /// table, and the tables are independent but for the attempt numbers the syns table
    /// carries.
    pub fn build(
        syns: &[SynRecord],
        incarnations: &[IncarnationRecord],
        nat: &NatReport,
    ) -> PolarsResult<Self> {
        std::thread::scope(|scope| {
            let others = scope.spawn(|| -> PolarsResult<_> {
                Ok((
                    connections_frame(incarnations)?,
                    reuse_frame(syns)?,
                    nat_hosts_frame(nat)?,
                    ts_events_frame(nat)?,
                ))
            });
            let (attempts, attempt_ids) = chain_attempts(syns);
            let (connections, reuse, nat_hosts, ts_events) = join(others)?;
            let attempts = scope.spawn(move || attempts_frame(&attempts));
            let syns = syns_frame(syns, &attempt_ids)?;
            Ok(Tables {
                connections,
                syns,
                attempts: join(attempts)?,
                reuse,
                nat_hosts,
                ts_events,
            })
        })
    }

    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        match name {
            "connections" => Some(&self.connections),
            "syns" => Some(&self.syns),
            "attempts" => Some(&self.attempts),
            "reuse" => Some(&self.reuse),
            "nat_hosts" => Some(&self.nat_hosts),
            "ts_events" => Some(&self.ts_events),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as (time, tuple, number): many share a time, some share both time and tuple.
    fn rows() -> Vec<(i64, TupleKey, u32)> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..5000)
            .map(|n| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let tuple = TupleKey {
                    client: SocketAddr::from(([203, 0, 113, (state % 3) as u8], 40000)),
                    server: SocketAddr::from(([192, 0, 2, 1], 80 + (state >> 8) as u16 % 2)),
                };
                ((state >> 20) as i64 % 400, tuple, n)
            })
            .collect()
    }

    #[test]
    fn time_order_is_a_stable_sort_by_time_and_tuple() {
        let rows = rows();
        let mut expected = rows.clone();
        expected.sort_by_key(|(time, tuple, _)| (*time, *tuple));
        let sorted = in_time_order(&rows, |r| r.0, |r| r.1);
        assert_eq!(sorted, expected);
        // The data has the ties that make the order matter.
        let ties = expected
            .windows(2)
            .filter(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1))
            .count();
        assert!(ties > 100, "{ties} ties");
    }
}
