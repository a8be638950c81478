//! polars DataFrames from analysis records. Column names, types and meanings are documented
//! in docs/tables.md; a test keeps the two in step.

use std::fmt::Write;

use polars::prelude::*;

use super::attempts::{Attempt, Outcome};
use super::columns::{FAMILIES, Frame, family};
use crate::flow::{
    CloseKind, Closer, FoundState, IncarnationRecord, ObservedReply, Reuse, SynRecord, TimeWaitEnd,
    TimeWaitHolder, Verdict,
};
use crate::nat::{AddressEvent, AddressReport, Clock, ClockModel, NatReport};
use crate::seq::{after, ts_diff};

/// Every table `export` can write, by name.
pub const TABLE_NAMES: [&str; 6] = [
    "connections",
    "syns",
    "attempts",
    "reuse",
    "nat_hosts",
    "ts_events",
];

/// `rows` in order of (time, then `tie`), equal ones in their given order: what a stable
/// sort by that key gives. (time, place) pairs are sorted as plain integers, and only runs
/// of rows sharing a time are then ordered by `tie` (a tuple, addresses): a sort that read
/// both keys through the rows for every comparison spent most of its time waiting on
/// memory, and one comparing through a closure that might read a tuple spent twice the
/// instructions of this.
fn in_time_order<R: Copy, K: Ord>(
    rows: &[R],
    time: impl Fn(&R) -> i64,
    tie: impl Fn(&R) -> K,
) -> Vec<R> {
    in_given_time_order(rows, &time_order(rows, time), tie)
}

/// Each row's (time, place), sorted: the rows' places in order of time, then of place.
pub(super) fn time_order<R>(rows: &[R], time: impl Fn(&R) -> i64) -> Vec<(i64, u32)> {
    let mut order: Vec<(i64, u32)> = (rows.iter().map(time)).zip(0..).collect();
    order.sort_unstable();
    order
}

/// [`in_time_order`] from the rows' [`time_order`], made already.
fn in_given_time_order<R: Copy, K: Ord>(
    rows: &[R],
    order: &[(i64, u32)],
    tie: impl Fn(&R) -> K,
) -> Vec<R> {
    let mut in_order = Vec::with_capacity(order.len());
    for tied in order.chunk_by(|a, b| a.0 == b.0) {
        if let [(_, at)] = tied {
            in_order.push(rows[*at as usize]);
            continue;
        }
        let mut tied = tied.to_vec();
        tied.sort_by_cached_key(|&(_, at)| (tie(&rows[at as usize]), at));
        in_order.extend(tied.iter().map(|&(_, at)| rows[at as usize]));
    }
    in_order
}

fn ms(ns: Option<i64>) -> Option<f64> {
    ns.map(|v| v as f64 / 1e6)
}

/// The words of each column of fixed words, in the order of their Enum's categories.
const CLOSERS: [&str; 4] = ["client", "server", "simultaneous", "none"];
const CLOSE_KINDS: [&str; 3] = ["fin", "rst", "none"];
const HOLDERS: [&str; 3] = ["server", "client", "none"];
const TIME_WAIT_ENDS: [&str; 4] = ["expired", "rst", "syn", "open_at_end"];
const FOUND_STATES: [&str; 5] = ["listen", "time_wait", "syn_recv", "open", "unknown"];
const CLOCK_MODELS: [&str; 3] = ["per_host", "per_connection", "unknown"];

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
    Frame::over(&rows)
        .tuple(|r| r.tuple)
        .values("incarnation", |r| r.number)
        .times("syn_time", |r| Some(r.syn_ns))
        .times("handshake_time", |r| r.handshake_ns)
        .values("client_isn", |r| r.client_isn)
        .values("server_isn", |r| r.server_isn)
        .values("ts_negotiated", |r| r.ts_negotiated)
        .optional("client_first_tsval", |r| r.client.first_tsval)
        .optional("client_last_tsval", |r| r.client.last_tsval)
        .optional("server_first_tsval", |r| r.server.first_tsval)
        .optional("server_last_tsval", |r| r.server.last_tsval)
        .values("client_bytes", |r| r.client.payload_bytes)
        .values("server_bytes", |r| r.server.payload_bytes)
        .values("client_segments", |r| r.client.segments)
        .values("server_segments", |r| r.server.segments)
        .words("closed_first", &CLOSERS, |r| {
            Some(closer_key(r.closed_first))
        })
        .words("close_kind", &CLOSE_KINDS, |r| {
            Some(close_kind_key(r.close_kind))
        })
        .times("end_time", |r| r.end_ns)
        .words("time_wait_holder", &HOLDERS, |r| {
            Some(holder_key(r.time_wait_holder))
        })
        .times("time_wait_start", |r| r.time_wait_start_ns)
        .times("time_wait_end", |r| r.time_wait_end_ns)
        .words("time_wait_end_reason", &TIME_WAIT_ENDS, |r| {
            r.time_wait_end.map(tw_end_key)
        })
        .optional("gap_to_next_ms", |r| ms(r.gap_to_next_ns))
        .build()
}

/// One row per SYN segment, in time order; `attempts` gives each SYN's attempt id.
pub fn syns_frame(syns: &[SynRecord], attempts: &[u64]) -> PolarsResult<DataFrame> {
    syns_frame_in(syns, attempts, &time_order(syns, |s| s.ts_ns))
}

/// [`syns_frame`] from the SYNs' time order, made already (by the chaining of attempts).
pub fn syns_frame_in(
    syns: &[SynRecord],
    attempts: &[u64],
    time_order: &[(i64, u32)],
) -> PolarsResult<DataFrame> {
    let rows: Vec<(&SynRecord, u64)> = syns.iter().zip(attempts.iter().copied()).collect();
    let rows = in_given_time_order(&rows, time_order, |(r, _)| r.tuple);
    let tw = |r: &(&SynRecord, u64)| time_wait_of(&r.0.found);
    Frame::over(&rows)
        .times("time", |(r, _)| Some(r.ts_ns))
        .tuple(|(r, _)| r.tuple)
        .values("isn", |(r, _)| r.isn)
        .optional("tsval", |(r, _)| r.tsval)
        .values("retransmission", |(r, _)| r.retransmission)
        .values("attempt", |(_, attempt)| *attempt)
        .words("state_found", &FOUND_STATES, |(r, _)| {
            Some(found_key(&r.found))
        })
        .optional("tw_ts_recent", move |r| tw(r).and_then(|(ts, _, _)| ts))
        .optional("tw_rcv_nxt", move |r| tw(r).map(|(_, rcv, _)| rcv))
        .optional("tw_age_ms", move |r| ms(tw(r).map(|(_, _, age)| age)))
        .words("verdict", &Verdict::KEYS, |(r, _)| Some(r.verdict.key()))
        .labels(
            "reason",
            "reason",
            |(r, _)| Some(r.reason_words()),
            |words, text| text.extend(words.iter().flatten().copied()),
        )
        .words("predicted_reply", &ObservedReply::KEYS, |(r, _)| {
            Some(r.predicted_reply.key())
        })
        .words("reply", &ObservedReply::KEYS, |(r, _)| Some(r.reply.key()))
        .optional("reply_delay_ms", |(r, _)| ms(r.reply_delay_ns))
        .optional("reply_server_isn", |(r, _)| r.reply_server_isn)
        .optional("expected_server_isn", |(r, _)| r.expected_server_isn)
        .times("established_time", |(r, _)| r.established_ns)
        .build()
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
    Frame::over(attempts)
        .values("attempt", |a| a.id)
        .addrs("client_addr", |a| a.client_ip)
        .text("client_ports", ports)
        .addrs("server_addr", |a| a.server.ip())
        .values("server_port", |a| u32::from(a.server.port()))
        .words("family", &FAMILIES, |a| Some(family(&a.server)))
        .values("isn", |a| a.isn)
        .times("first_syn_time", |a| Some(a.first_syn_ns))
        .times("last_syn_time", |a| Some(a.last_syn_ns))
        .values("syns", |a| a.syns)
        .values("public_ports", |a| a.client_ports.len() as u32)
        .values("paws_rejects", |a| a.paws_rejects)
        .values("seq_rejects", |a| a.seq_rejects)
        .words("outcome", &Outcome::KEYS, |a| Some(a.outcome.key()))
        .times("established_time", |a| a.established_ns)
        .optional("time_to_establish_ms", |a| ms(a.time_to_establish_ns()))
        .build()
}

/// One row per SYN that reopened a tuple, in time order.
pub fn reuse_frame(syns: &[SynRecord]) -> PolarsResult<DataFrame> {
    let rows: Vec<(&SynRecord, Reuse)> = syns
        .iter()
        .filter_map(|s| s.reuse.map(|u| (s, u)))
        .collect();
    let rows = in_time_order(&rows, |(r, _)| r.ts_ns, |(r, _)| r.tuple);
    let tw = |r: &(&SynRecord, Reuse)| time_wait_of(&r.0.found);
    let ts_recent = move |r: &(&SynRecord, Reuse)| tw(r).and_then(|(ts, _, _)| ts);
    Frame::over(&rows)
        .times("time", |(r, _)| Some(r.ts_ns))
        .tuple(|(r, _)| r.tuple)
        .values("isn", |(r, _)| r.isn)
        .optional("tsval", |(r, _)| r.tsval)
        .times("previous_end_time", |(_, u)| u.previous_end_ns)
        .words("previous_time_wait_holder", &HOLDERS, |(_, u)| {
            Some(holder_key(u.previous_holder))
        })
        .values("gap_ms", |(_, u)| u.gap_ns as f64 / 1e6)
        .values("within_2msl", |(_, u)| u.within_2msl)
        .words("state_found", &FOUND_STATES, |(r, _)| {
            Some(found_key(&r.found))
        })
        .optional("ts_recent", ts_recent)
        .optional("tsval_minus_ts_recent", move |row| {
            let (r, _) = row;
            r.tsval
                .zip(ts_recent(row))
                .map(|(v, recent)| i64::from(ts_diff(v, recent)))
        })
        .optional("rcv_nxt", move |r| tw(r).map(|(_, rcv, _)| rcv))
        .values("seq_after_rcv_nxt", move |row| {
            tw(row).map(|(_, rcv, _)| after(row.0.isn, rcv))
        })
        .words("verdict", &Verdict::KEYS, |(r, _)| Some(r.verdict.key()))
        .labels(
            "reason",
            "reason",
            |(r, _)| Some(r.reason),
            |reason, text| text.push_str(reason),
        )
        .words("reply", &ObservedReply::KEYS, |(r, _)| Some(r.reply.key()))
        .build()
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
    Frame::over(&rows)
        .addrs("address", |(a, _, _)| a.source)
        .addrs("server_addr", |(a, _, _)| a.destination)
        .words("clock_model", &CLOCK_MODELS, |(_, _, model)| Some(*model))
        .values("clock", |(_, c, _)| c.id)
        .optional("rate_hz", |(_, c, _)| c.rate_hz)
        .times("first_time", |(_, c, _)| Some(c.first_ns))
        .times("last_time", |(_, c, _)| Some(c.last_ns))
        .values("first_tsval", |(_, c, _)| c.first_tsval)
        .values("last_tsval", |(_, c, _)| c.last_tsval)
        .values("segments", |(_, c, _)| c.segments)
        .values("syns", |(_, c, _)| c.syns)
        .values("connections", |(_, c, _)| c.connections)
        .build()
}

/// One row per TSval decrease on a client address, in time order.
pub fn ts_events_frame(nat: &NatReport) -> PolarsResult<DataFrame> {
    let rows: Vec<&AddressEvent> = nat.events.iter().flatten().collect();
    let rows = in_time_order(&rows, |e| e.event.ts_ns, |e| (e.source, e.destination));
    Frame::over(&rows)
        .times("time", |e| Some(e.event.ts_ns))
        .addrs("address", |e| e.source)
        .addrs("server_addr", |e| e.destination)
        .values("port", |e| u32::from(e.event.port))
        .values("tsval", |e| e.event.tsval)
        .values("clock", |e| e.event.clock)
        .values("syn", |e| e.event.syn)
        .times("previous_time", |e| Some(e.event.previous_ns))
        .values("previous_port", |e| u32::from(e.event.previous_port))
        .values("previous_tsval", |e| e.event.previous_tsval)
        .values("previous_clock", |e| e.event.previous_clock)
        .values("ticks_behind", |e| {
            i64::from(ts_diff(e.event.previous_tsval, e.event.tsval))
        })
        .build()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::flow::TupleKey;

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
    fn every_word_a_column_can_hold_is_in_its_vocabulary() {
        // Each list names every variant of its type, in declaration order.
        let closers = [
            Closer::Client,
            Closer::Server,
            Closer::Simultaneous,
            Closer::Nobody,
        ];
        let kinds = [CloseKind::Fin, CloseKind::Rst, CloseKind::None];
        let holders = [
            TimeWaitHolder::Server,
            TimeWaitHolder::Client,
            TimeWaitHolder::Nobody,
        ];
        let ends = [
            TimeWaitEnd::Expired,
            TimeWaitEnd::KilledByRst,
            TimeWaitEnd::ReopenedBySyn,
            TimeWaitEnd::OpenAtEnd,
        ];
        let found = [
            FoundState::Listen,
            FoundState::TimeWait {
                ts_recent: 0,
                ts_negotiated: true,
                rcv_nxt: 0,
                age_ns: 0,
            },
            FoundState::SynRecv,
            FoundState::Open,
            FoundState::Unknown,
        ];
        let verdicts = [
            Verdict::Accepted,
            Verdict::PawsReject,
            Verdict::SeqReject,
            Verdict::NoListener,
            Verdict::PawsPassiveDrop,
            Verdict::Unknown,
        ];
        let replies = [
            ObservedReply::SynAck,
            ObservedReply::ChallengeAck,
            ObservedReply::Rst,
            ObservedReply::None,
        ];
        let outcomes = [
            Outcome::NoReply,
            Outcome::Rejected,
            Outcome::SynAckOnly,
            Outcome::Established,
        ];
        let models = [
            ClockModel::PerHost,
            ClockModel::PerConnection,
            ClockModel::Unknown,
        ];
        let check = |keys: Vec<&str>, vocabulary: &[&str]| {
            // The vocabulary is exactly the keys, in the variants' order.
            assert_eq!(keys, vocabulary);
        };
        check(closers.map(closer_key).to_vec(), &CLOSERS);
        check(kinds.map(close_kind_key).to_vec(), &CLOSE_KINDS);
        check(holders.map(holder_key).to_vec(), &HOLDERS);
        check(ends.map(tw_end_key).to_vec(), &TIME_WAIT_ENDS);
        check(found.iter().map(found_key).collect(), &FOUND_STATES);
        check(verdicts.iter().map(Verdict::key).collect(), &Verdict::KEYS);
        check(
            replies.iter().map(ObservedReply::key).collect(),
            &ObservedReply::KEYS,
        );
        check(outcomes.iter().map(Outcome::key).collect(), &Outcome::KEYS);
        check(models.map(clock_model_key).to_vec(), &CLOCK_MODELS);
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        let v4: SocketAddr = "192.0.2.1:1".parse().unwrap();
        check(vec![family(&v4), family(&v6)], &FAMILIES);
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
