//! What each chart shows, computed from the analysis records: plain numbers the renderer
//! draws and the tests check, with no drawing code here.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::analysis::{Analysis, port_occupancy};
use crate::flow::{FoundState, IncarnationRecord, ObservedReply, SynRecord, TupleKey, Verdict};
use crate::pair_numbers::PairNumbers;
use crate::table::SharedAttempts;

/// Lanes the timeline draws at most; the rest are summarised in the subtitle.
pub const MAX_LANES: usize = 30;
/// Client addresses the port chart draws at most.
pub const MAX_PORT_SERIES: usize = 4;

fn secs(ts_ns: i64, start_ns: i64) -> f64 {
    // In floating point: two valid packet times can be 2^63 ns apart.
    (ts_ns as f64 - start_ns as f64) / 1e9
}

/// One SYN on the TSval chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TsPoint {
    pub t: f64,
    pub tsval: u32,
    pub clock: u32,
    pub verdict: Verdict,
    /// The ts_recent of the TIME_WAIT it met, drawn as the reference it lost (or won) against.
    pub ts_recent: Option<u32>,
}

/// Chart 1: TSval against time for the busiest client address.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestampChart {
    pub address: String,
    pub server_address: String,
    pub clocks: usize,
    pub per_connection: bool,
    pub points: Vec<TsPoint>,
    pub start_ns: i64,
}

/// One tuple's lane on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub tuple: TupleKey,
    /// Incarnations: from SYN to the end of the connection (or of the capture).
    pub bars: Vec<(f64, f64)>,
    /// TIME_WAIT tails: start, end, held by the server (true) or the client.
    pub time_waits: Vec<(f64, f64, bool)>,
    /// SYNs: time, verdict, reply seen.
    pub syns: Vec<(f64, Verdict, ObservedReply)>,
}

/// Chart 2: one lane per busy tuple.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineChart {
    /// Capture start: the time axis counts seconds from it.
    pub start_ns: i64,
    pub lanes: Vec<Lane>,
    pub total_tuples: usize,
    pub end: f64,
}

/// Connect attempts whose first SYN fell in one second, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecondOutcomes {
    /// Seconds since the capture started.
    pub second: i64,
    pub first_try: u32,
    pub after_rejection: u32,
    pub failed: u32,
}

/// One client address's ports held over time.
#[derive(Debug, Clone, PartialEq)]
pub struct PortSeries {
    pub label: String,
    /// (seconds since start, ports held) after every change.
    pub steps: Vec<(f64, u32)>,
    pub exhausted: Option<f64>,
}

/// Chart 3: connect attempts per second by outcome, and how long the delayed ones took.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeChart {
    /// Capture start: the time axis counts seconds from it.
    pub start_ns: i64,
    pub seconds: Vec<SecondOutcomes>,
    /// Time to establish of every established attempt, in ms.
    pub delays_ms: Vec<f64>,
    pub policy: String,
}

/// Chart 4: local ports held by client addresses over time against the range.
#[derive(Debug, Clone, PartialEq)]
pub struct PortChart {
    /// Capture start: the time axis counts seconds from it.
    pub start_ns: i64,
    pub range_size: u32,
    /// Per client address toward a server.
    pub series: Vec<PortSeries>,
    pub end: f64,
}

fn start_of(analysis: &Analysis) -> i64 {
    analysis.capture.first_ts_ns.unwrap_or(0)
}

fn syns_of(analysis: &Analysis) -> &[SynRecord] {
    analysis.records.as_ref().map_or(&[][..], |r| &r.syns[..])
}

pub fn timestamp_chart(analysis: &Analysis) -> Option<TimestampChart> {
    let address = analysis.nat.addresses.first()?;
    let start_ns = start_of(analysis);
    let clocks = analysis
        .nat
        .syn_clocks_between(address.source, address.destination);
    let points = syns_of(analysis)
        .iter()
        .filter(|s| {
            s.tuple.client.ip() == address.source && s.tuple.server.ip() == address.destination
        })
        .filter_map(|s| {
            let tsval = s.tsval?;
            Some(TsPoint {
                t: secs(s.ts_ns, start_ns),
                tsval,
                clock: clocks.get(&s.isn).copied().unwrap_or(0),
                verdict: s.verdict,
                ts_recent: match s.found {
                    FoundState::TimeWait {
                        ts_recent,
                        ts_negotiated: true,
                        ..
                    } => Some(ts_recent),
                    _ => None,
                },
            })
        })
        .collect();
    Some(TimestampChart {
        address: address.source.to_string(),
        server_address: address.destination.to_string(),
        clocks: address.clocks.clock_count() as usize,
        per_connection: address.clocks.model() == crate::nat::ClockModel::PerConnection,
        points,
        start_ns,
    })
}

pub fn timeline_chart(analysis: &Analysis) -> TimelineChart {
    let start_ns = start_of(analysis);
    let end = secs(analysis.capture.last_ts_ns.unwrap_or(start_ns), start_ns);
    let records = analysis.records.as_ref();
    let incarnations = records.map_or(&[][..], |r| &r.incarnations[..]);
    // The busiest tuples first: most rejected SYNs, then most SYNs, then the tuple for
    // stability. Ranked from counts alone; lanes are drawn only for the tuples that make it.
    let TupleNumbers {
        incarnations: incarnation_numbers,
        syns: syn_numbers,
        mut ranked,
        in_tuple_order,
    } = TupleNumbers::of(incarnations, syns_of(analysis));
    let total_tuples = ranked.len();
    // Most tuples tie on their counts (one SYN, no reject): comparing their numbers, when
    // those follow the tuples' order, spares comparing two pairs of socket addresses.
    let busiest_first = |a: &Ranked<'_>, b: &Ranked<'_>| {
        (b.counts.0.cmp(&a.counts.0))
            .then(b.counts.1.cmp(&a.counts.1))
            .then_with(|| {
                if in_tuple_order {
                    a.number.cmp(&b.number)
                } else {
                    a.tuple.cmp(b.tuple)
                }
            })
    };
    if ranked.len() > MAX_LANES {
        ranked.select_nth_unstable_by(MAX_LANES, busiest_first);
        ranked.truncate(MAX_LANES);
    }
    ranked.sort_unstable_by(busiest_first);
    let mut lanes: Vec<Lane> = ranked
        .iter()
        .map(|ranked| empty_lane(*ranked.tuple))
        .collect();
    // By tuple number: the lane of each tuple drawn.
    let mut lane_of = vec![None; total_tuples];
    for (at, ranked) in ranked.iter().enumerate() {
        lane_of[ranked.number as usize] = Some(at);
    }
    for (incarnation, &number) in incarnations.iter().zip(&incarnation_numbers) {
        let Some(at) = lane_of[number as usize] else {
            continue;
        };
        let l = &mut lanes[at];
        let from = secs(incarnation.syn_ns, start_ns);
        let to = incarnation.end_ns.map_or(end, |t| secs(t, start_ns));
        l.bars.push((from, to));
        if let Some(tw_start) = incarnation.time_wait_start_ns {
            let server = incarnation.time_wait_holder == crate::flow::TimeWaitHolder::Server;
            let tw_end = incarnation
                .time_wait_end_ns
                .map(|t| secs(t, start_ns))
                .unwrap_or_else(|| {
                    (secs(tw_start, start_ns) + analysis.time_wait_len_ns as f64 / 1e9).min(end)
                });
            l.time_waits
                .push((secs(tw_start, start_ns), tw_end, server));
        }
    }
    for (syn, &number) in syns_of(analysis).iter().zip(&syn_numbers) {
        if let Some(at) = lane_of[number as usize] {
            lanes[at]
                .syns
                .push((secs(syn.ts_ns, start_ns), syn.verdict, syn.reply));
        }
    }
    TimelineChart {
        start_ns,
        lanes,
        total_tuples,
        end,
    }
}

/// A tuple in the timeline's ranking: its (rejected SYNs, SYNs) counts and its number.
struct Ranked<'t> {
    tuple: &'t TupleKey,
    counts: (usize, usize),
    number: u32,
}

/// Every tuple of the records numbered, with its counts: each record's tuple number is kept,
/// so that its lane is found by number afterwards instead of by its tuple again.
struct TupleNumbers<'t> {
    incarnations: Vec<u32>,
    syns: Vec<u32>,
    /// Each tuple, by its number.
    ranked: Vec<Ranked<'t>>,
    /// Whether the numbers follow the tuples' order.
    in_tuple_order: bool,
}

/// A record's place among the incarnations, or among the SYNs with this bit set.
const SYN_RECORD: u32 = 1 << 31;

impl<'t> TupleNumbers<'t> {
    fn of(incarnations: &'t [IncarnationRecord], syns: &'t [SynRecord]) -> Self {
        Self::by_sorting(incarnations, syns).unwrap_or_else(|| Self::by_hashing(incarnations, syns))
    }

    /// IPv4 tuples as integers beside their records' places, sorted: each run of one tuple
    /// is numbered. Two million lookups in a map of a million 64-byte tuples waited on
    /// memory for each; the sort reads the records once, in order. `None` when a tuple is
    /// IPv6 (or the records are too many to mark).
    fn by_sorting(incarnations: &'t [IncarnationRecord], syns: &'t [SynRecord]) -> Option<Self> {
        if incarnations.len() >= SYN_RECORD as usize || syns.len() >= SYN_RECORD as usize {
            return None;
        }
        let places = (incarnations.iter().map(|r| &r.tuple).zip(0..))
            .chain(syns.iter().map(|r| &r.tuple).zip(SYN_RECORD..));
        let mut keyed: Vec<(u128, u32)> = places
            .map(|(tuple, place)| Some((tuple.v4_order()?, place)))
            .collect::<Option<_>>()?;
        keyed.sort_unstable();
        let mut numbers = TupleNumbers {
            incarnations: vec![0; incarnations.len()],
            syns: vec![0; syns.len()],
            ranked: Vec::new(),
            // Runs in the order of the integers, which is the tuples' order.
            in_tuple_order: true,
        };
        for run in keyed.chunk_by(|a, b| a.0 == b.0) {
            let number = numbers.ranked.len() as u32;
            let first = run[0].1;
            let tuple = match first.checked_sub(SYN_RECORD) {
                Some(syn) => &syns[syn as usize].tuple,
                None => &incarnations[first as usize].tuple,
            };
            let mut counts = (0, 0);
            for &(_, place) in run {
                match place.checked_sub(SYN_RECORD) {
                    Some(syn) => {
                        numbers.syns[syn as usize] = number;
                        counts.0 += usize::from(syns[syn as usize].verdict.is_reject());
                        counts.1 += 1;
                    }
                    None => numbers.incarnations[place as usize] = number,
                }
            }
            numbers.ranked.push(Ranked {
                tuple,
                counts,
                number,
            });
        }
        Some(numbers)
    }

    /// Each record's tuple looked up in a map, numbered as first seen.
    fn by_hashing(incarnations: &'t [IncarnationRecord], syns: &'t [SynRecord]) -> Self {
        let mut numbers: PairNumbers<TupleKey> = PairNumbers::with_capacity(incarnations.len());
        let mut ranked: Vec<Ranked<'_>> = Vec::with_capacity(incarnations.len());
        let incarnations = incarnations
            .iter()
            .map(|incarnation| counts_of(&mut numbers, &mut ranked, &incarnation.tuple).0)
            .collect();
        let syns = syns
            .iter()
            .map(|syn| {
                let (number, (rejects, syns)) = counts_of(&mut numbers, &mut ranked, &syn.tuple);
                *rejects += usize::from(syn.verdict.is_reject());
                *syns += 1;
                number
            })
            .collect();
        TupleNumbers {
            incarnations,
            syns,
            ranked,
            in_tuple_order: false,
        }
    }
}

/// The number of `tuple` and its counts, kept in `counts` by that number.
fn counts_of<'a, 't>(
    numbers: &mut PairNumbers<TupleKey>,
    counts: &'a mut Vec<Ranked<'t>>,
    tuple: &'t TupleKey,
) -> (u32, &'a mut (usize, usize)) {
    let (number, new) = numbers.number(*tuple);
    if new {
        counts.push(Ranked {
            tuple,
            counts: (0, 0),
            number,
        });
    }
    (number, &mut counts[number as usize].counts)
}

fn empty_lane(tuple: TupleKey) -> Lane {
    Lane {
        tuple,
        bars: Vec::new(),
        time_waits: Vec::new(),
        syns: Vec::new(),
    }
}

/// `attempts`: the analysis's SYNs chained into attempts, or to be chained.
pub fn outcome_chart(analysis: &Analysis, attempts: &SharedAttempts) -> OutcomeChart {
    let start_ns = start_of(analysis);
    let (attempts, _) = attempts.of(syns_of(analysis));
    let mut seconds: HashMap<i64, SecondOutcomes> = HashMap::new();
    let mut delays_ms = Vec::new();
    for attempt in attempts {
        let second = (attempt.first_syn_ns - start_ns).div_euclid(1_000_000_000);
        let bucket = seconds.entry(second).or_insert(SecondOutcomes {
            second,
            ..SecondOutcomes::default()
        });
        match attempt.time_to_establish_ns() {
            Some(delay) => {
                delays_ms.push(delay as f64 / 1e6);
                if attempt.paws_rejects + attempt.seq_rejects > 0 {
                    bucket.after_rejection += 1;
                } else {
                    bucket.first_try += 1;
                }
            }
            None => bucket.failed += 1,
        }
    }
    let mut seconds: Vec<SecondOutcomes> = seconds.into_values().collect();
    seconds.sort();
    OutcomeChart {
        start_ns,
        seconds,
        delays_ms,
        policy: analysis.policy_name.to_string(),
    }
}

pub fn port_chart(analysis: &Analysis, client_time_wait_ns: i64) -> PortChart {
    let start_ns = start_of(analysis);
    let end = secs(analysis.capture.last_ts_ns.unwrap_or(start_ns), start_ns);
    let incarnations = analysis
        .records
        .as_ref()
        .map_or(&[][..], |r| &r.incarnations[..]);
    let wanted: Vec<(IpAddr, std::net::SocketAddr, Option<i64>)> = analysis
        .ports
        .iter()
        .take(MAX_PORT_SERIES)
        .map(|p| (p.client, p.server, p.exhausted_ns))
        .collect();
    let range_size = analysis.ports.first().map_or(0, |p| p.range_size);
    let series = wanted
        .into_iter()
        .map(|(client, server, exhausted)| {
            let steps = port_occupancy(incarnations, client, server, client_time_wait_ns)
                .into_iter()
                .map(|(t, n)| (secs(t, start_ns), n))
                .collect();
            PortSeries {
                label: format!("{client} -> {server}"),
                steps,
                exhausted: exhausted.map(|t| secs(t, start_ns)),
            }
        })
        .collect();
    PortChart {
        start_ns,
        range_size,
        series,
        end,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use super::*;

    fn tuple(n: u64) -> TupleKey {
        TupleKey {
            client: SocketAddr::from(([203, 0, 113, (n % 3) as u8], 40000 + (n % 4) as u16)),
            server: "192.0.2.1:80".parse().unwrap(),
        }
    }

    /// Each tuple's counts and the records numbered with it, whatever its number.
    type ByTuple = BTreeMap<TupleKey, ((usize, usize), Vec<usize>, Vec<usize>)>;

    fn by_tuple(numbers: &TupleNumbers<'_>) -> ByTuple {
        let mut tuples = ByTuple::new();
        for ranked in &numbers.ranked {
            let with = |records: &[u32]| {
                (0..records.len())
                    .filter(|&i| records[i] == ranked.number)
                    .collect()
            };
            let entry = (
                ranked.counts,
                with(&numbers.incarnations),
                with(&numbers.syns),
            );
            assert!(
                tuples.insert(*ranked.tuple, entry).is_none(),
                "numbered twice"
            );
        }
        tuples
    }

    #[test]
    fn sorting_numbers_the_tuples_as_hashing_does() {
        let incarnations: Vec<IncarnationRecord> = (0..40)
            .map(|n| {
                let (client, server) = Default::default();
                IncarnationRecord::answered(tuple(n * 7 % 11), 1, 0, 0, 0, client, server)
            })
            .collect();
        let syns: Vec<SynRecord> = (0..60)
            .map(|n| {
                let mut syn = SynRecord::accepted(n, tuple(n as u64 * 5 % 13), 1, None, {
                    ObservedReply::SynAck
                });
                if n % 4 == 0 {
                    syn.verdict = Verdict::PawsReject;
                }
                syn
            })
            .collect();
        let sorted = TupleNumbers::by_sorting(&incarnations, &syns).expect("IPv4 tuples");
        let hashed = TupleNumbers::by_hashing(&incarnations, &syns);
        assert_eq!(by_tuple(&sorted), by_tuple(&hashed));
        assert!(sorted.ranked.is_sorted_by_key(|r| *r.tuple));
        assert_eq!(sorted.ranked.len(), 12);
        // An IPv6 tuple leaves the numbering to the map.
        let mut v6 = syns.clone();
        v6[3].tuple.client = "[2001:db8::1]:40000".parse().unwrap();
        assert!(TupleNumbers::by_sorting(&incarnations, &v6).is_none());
    }
}
