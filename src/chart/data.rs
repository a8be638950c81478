//! What each chart shows, computed from the analysis records: plain numbers the renderer
//! draws and the tests check, with no drawing code here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

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
    let syns = syns_of(analysis);
    // The busiest tuples first: most rejected SYNs, then most SYNs, then the tuple for
    // stability. Ranked from counts alone; lanes are drawn only for the tuples that make it.
    let Busiest {
        lanes: busiest,
        total_tuples,
    } = Busiest::of(incarnations, syns);
    let time_wait_len = analysis.time_wait_len_ns as f64 / 1e9;
    let lanes = busiest
        .into_iter()
        .map(|(tuple, places)| {
            let mut lane = empty_lane(*tuple);
            for place in places {
                match place.checked_sub(SYN_RECORD) {
                    Some(syn) => {
                        let syn = &syns[syn as usize];
                        let at = secs(syn.ts_ns, start_ns);
                        lane.syns.push((at, syn.verdict, syn.reply));
                    }
                    None => {
                        let incarnation = &incarnations[place as usize];
                        add_incarnation(&mut lane, incarnation, start_ns, end, time_wait_len);
                    }
                }
            }
            lane
        })
        .collect();
    TimelineChart {
        start_ns,
        lanes,
        total_tuples,
        end,
    }
}

/// A tuple's (rejected SYNs, SYNs): the more, the busier.
type Counts = (usize, usize);

/// A record's place among the incarnations, or among the SYNs with this bit set.
const SYN_RECORD: u32 = 1 << 31;

/// The tuples the timeline draws, busiest first, each with the places of its records (its
/// incarnations', then its SYNs', each in record order), and how many tuples there are.
struct Busiest<'t> {
    lanes: Vec<(&'t TupleKey, Vec<u32>)>,
    total_tuples: usize,
}

impl<'t> Busiest<'t> {
    fn of(incarnations: &'t [IncarnationRecord], syns: &'t [SynRecord]) -> Self {
        Self::by_sorting(incarnations, syns).unwrap_or_else(|| Self::by_hashing(incarnations, syns))
    }

    /// IPv4 tuples as 96-bit integers with each record's place in the low 32 bits, sorted:
    /// each run of one tuple lists its records, and the runs come in the tuples' order, so
    /// the busiest are kept while walking the runs (ties go to the earlier tuple). Two
    /// million lookups in a map of a million 64-byte tuples waited on memory for each; the
    /// sort reads the records once, in order. `None` when a tuple is IPv6 (or the records
    /// are too many to mark).
    fn by_sorting(incarnations: &'t [IncarnationRecord], syns: &'t [SynRecord]) -> Option<Self> {
        if incarnations.len() >= SYN_RECORD as usize || syns.len() >= SYN_RECORD as usize {
            return None;
        }
        let places = (incarnations.iter().map(|r| &r.tuple).zip(0..))
            .chain(syns.iter().map(|r| &r.tuple).zip(SYN_RECORD..));
        let mut keyed: Vec<u128> = places
            .map(|(tuple, place)| Some(tuple.v4_order()? << 32 | u128::from(place)))
            .collect::<Option<_>>()?;
        keyed.sort_unstable();
        // Read in sorted order, the SYNs' verdicts were a wait on memory each: a byte per
        // SYN, in order, stays in the cache.
        let rejected: Vec<bool> = syns.iter().map(|s| s.verdict.is_reject()).collect();
        let place = |key: &u128| *key as u32;
        let mut kept = TopRuns::default();
        let mut total_tuples = 0;
        let mut start = 0;
        for run in keyed.chunk_by(|a, b| a >> 32 == b >> 32) {
            let mut counts = (0, 0);
            for syn in run
                .iter()
                .filter_map(|key| place(key).checked_sub(SYN_RECORD))
            {
                counts.0 += usize::from(rejected[syn as usize]);
                counts.1 += 1;
            }
            kept.offer(counts, start..start + run.len());
            start += run.len();
            total_tuples += 1;
        }
        let lanes = kept
            .busiest_first()
            .into_iter()
            .map(|run| {
                let places: Vec<u32> = keyed[run].iter().map(place).collect();
                (record_tuple(incarnations, syns, places[0]), places)
            })
            .collect();
        Some(Busiest {
            lanes,
            total_tuples,
        })
    }

    /// Each record's tuple looked up in a map, numbered as first seen; the busiest chosen
    /// from every tuple's counts, ties going to the lower tuple.
    fn by_hashing(incarnations: &'t [IncarnationRecord], syns: &'t [SynRecord]) -> Self {
        let mut numbers: PairNumbers<TupleKey> = PairNumbers::with_capacity(incarnations.len());
        // Each tuple's counts, by number.
        let mut counted: Vec<(&TupleKey, Counts)> = Vec::with_capacity(incarnations.len());
        let mut number = |tuple: &'t TupleKey, counted: &mut Vec<(&'t TupleKey, Counts)>| {
            let (number, new) = numbers.number(*tuple);
            if new {
                counted.push((tuple, (0, 0)));
            }
            number
        };
        let incarnation_numbers: Vec<u32> = (incarnations.iter())
            .map(|r| number(&r.tuple, &mut counted))
            .collect();
        let mut syn_numbers = Vec::with_capacity(syns.len());
        for syn in syns {
            let number = number(&syn.tuple, &mut counted);
            syn_numbers.push(number);
            let counts = &mut counted[number as usize].1;
            counts.0 += usize::from(syn.verdict.is_reject());
            counts.1 += 1;
        }
        let total_tuples = counted.len();
        let mut ranked: Vec<u32> = (0..total_tuples as u32).collect();
        let busiest_first = |a: &u32, b: &u32| {
            let (a, b) = (&counted[*a as usize], &counted[*b as usize]);
            (b.1.cmp(&a.1)).then_with(|| a.0.cmp(b.0))
        };
        if ranked.len() > MAX_LANES {
            ranked.select_nth_unstable_by(MAX_LANES, busiest_first);
            ranked.truncate(MAX_LANES);
        }
        ranked.sort_unstable_by(busiest_first);
        // By tuple number: the lane of each tuple drawn.
        let mut lane_of = vec![None; total_tuples];
        for (at, &number) in ranked.iter().enumerate() {
            lane_of[number as usize] = Some(at);
        }
        let mut lanes: Vec<(&TupleKey, Vec<u32>)> = ranked
            .iter()
            .map(|&number| (counted[number as usize].0, Vec::new()))
            .collect();
        let numbered = (incarnation_numbers.into_iter().zip(0..))
            .chain(syn_numbers.into_iter().zip(SYN_RECORD..));
        for (number, place) in numbered {
            if let Some(at) = lane_of[number as usize] {
                lanes[at].1.push(place);
            }
        }
        Busiest {
            lanes,
            total_tuples,
        }
    }
}

/// The tuple of the record at `place`.
fn record_tuple<'t>(
    incarnations: &'t [IncarnationRecord],
    syns: &'t [SynRecord],
    place: u32,
) -> &'t TupleKey {
    match place.checked_sub(SYN_RECORD) {
        Some(syn) => &syns[syn as usize].tuple,
        None => &incarnations[place as usize].tuple,
    }
}

/// The [`MAX_LANES`] busiest runs offered, in the order offered: a later run takes a place
/// only from a run with fewer counts, so among equal counts the earlier runs stay.
#[derive(Default)]
struct TopRuns {
    kept: Vec<(Counts, Range<usize>)>,
    /// Where the least busy kept run is (the latest offered among equals), once full.
    least: usize,
}

impl TopRuns {
    fn offer(&mut self, counts: Counts, run: Range<usize>) {
        if self.kept.len() < MAX_LANES {
            self.kept.push((counts, run));
            if self.kept.len() == MAX_LANES {
                self.find_least();
            }
            return;
        }
        // Most runs are a single SYN and its incarnation, no busier than the least kept.
        if counts <= self.kept[self.least].0 {
            return;
        }
        self.kept[self.least] = (counts, run);
        self.find_least();
    }

    fn find_least(&mut self) {
        // The least counts; among equals the latest offered, whose run starts furthest on.
        self.least = (0..self.kept.len())
            .min_by_key(|&i| (self.kept[i].0, std::cmp::Reverse(self.kept[i].1.start)))
            .unwrap_or(0);
    }

    /// The kept runs, busiest first, ties in the order offered.
    fn busiest_first(mut self) -> Vec<Range<usize>> {
        self.kept
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.start.cmp(&b.1.start)));
        self.kept.into_iter().map(|(_, run)| run).collect()
    }
}

/// An incarnation's bar on its lane, and its TIME_WAIT tail (to the TIME_WAIT's end when the
/// capture shows it, else `time_wait_len` seconds on, within the capture).
fn add_incarnation(
    lane: &mut Lane,
    incarnation: &IncarnationRecord,
    start_ns: i64,
    end: f64,
    time_wait_len: f64,
) {
    let from = secs(incarnation.syn_ns, start_ns);
    let to = incarnation.end_ns.map_or(end, |t| secs(t, start_ns));
    lane.bars.push((from, to));
    if let Some(tw_start) = incarnation.time_wait_start_ns {
        let tw_start = secs(tw_start, start_ns);
        let server = incarnation.time_wait_holder == crate::flow::TimeWaitHolder::Server;
        let tw_end = incarnation
            .time_wait_end_ns
            .map_or((tw_start + time_wait_len).min(end), |t| secs(t, start_ns));
        lane.time_waits.push((tw_start, tw_end, server));
    }
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
    use std::net::SocketAddr;

    use super::*;

    fn tuple(n: u64) -> TupleKey {
        TupleKey {
            client: SocketAddr::from(([203, 0, 113, (n % 7) as u8], 40000 + (n / 7) as u16)),
            server: "192.0.2.1:80".parse().unwrap(),
        }
    }

    /// Incarnations and SYNs on `tuples` tuples, every fourth SYN rejected: many tuples tie
    /// on their counts, and a few are busier.
    fn records(tuples: u64) -> (Vec<IncarnationRecord>, Vec<SynRecord>) {
        let incarnations = (0..2 * tuples)
            .map(|n| {
                let (client, server) = Default::default();
                IncarnationRecord::answered(tuple(n * 7 % tuples), 1, 0, 0, 0, client, server)
            })
            .collect();
        let syns = (0..3 * tuples as i64)
            .map(|n| {
                let on = tuple((n as u64 * 5 % (tuples + 1)) % tuples);
                let mut syn = SynRecord::accepted(n, on, 1, None, ObservedReply::SynAck);
                if n % 4 == 0 {
                    syn.verdict = Verdict::PawsReject;
                }
                syn
            })
            .collect();
        (incarnations, syns)
    }

    /// The lanes as tuples with their records' places.
    fn lanes(busiest: &Busiest<'_>) -> Vec<(TupleKey, Vec<u32>)> {
        (busiest.lanes.iter())
            .map(|(tuple, places)| (**tuple, places.clone()))
            .collect()
    }

    #[test]
    fn sorting_picks_the_busiest_tuples_as_hashing_does() {
        for tuples in [12, 200] {
            let (incarnations, syns) = records(tuples);
            let sorted = Busiest::by_sorting(&incarnations, &syns).expect("IPv4 tuples");
            let hashed = Busiest::by_hashing(&incarnations, &syns);
            assert_eq!(lanes(&sorted), lanes(&hashed), "{tuples} tuples");
            assert_eq!(sorted.total_tuples, tuples as usize);
            assert_eq!(hashed.total_tuples, tuples as usize);
            assert_eq!(sorted.lanes.len(), MAX_LANES.min(tuples as usize));
            // Every record of a tuple drawn is in its lane, incarnations first, each in order.
            for (tuple, places) in lanes(&sorted) {
                let of_tuple = (incarnations.iter().map(|r| r.tuple).zip(0..))
                    .chain(syns.iter().map(|r| r.tuple).zip(SYN_RECORD..))
                    .filter(|(t, _)| *t == tuple)
                    .map(|(_, place)| place);
                assert_eq!(places, of_tuple.collect::<Vec<u32>>());
            }
            // Busiest first: (rejected SYNs, SYNs) never rise down the lanes, and ties are in
            // the tuples' order.
            let counts = |tuple: TupleKey| {
                let on: Vec<_> = syns.iter().filter(|s| s.tuple == tuple).collect();
                let rejects = on.iter().filter(|s| s.verdict.is_reject()).count();
                (rejects, on.len())
            };
            let drawn = lanes(&sorted);
            for pair in drawn.windows(2) {
                let (a, b) = (counts(pair[0].0), counts(pair[1].0));
                assert!(
                    a > b || (a == b && pair[0].0 < pair[1].0),
                    "{a:?} before {b:?}"
                );
            }
            // No tuple left out is busier than the least busy drawn.
            let least = counts(drawn.last().unwrap().0);
            let all: std::collections::BTreeSet<TupleKey> = syns.iter().map(|s| s.tuple).collect();
            for left_out in all.iter().filter(|t| drawn.iter().all(|(d, _)| d != *t)) {
                assert!(counts(*left_out) <= least);
            }
        }
        // An IPv6 tuple leaves the numbering to the map.
        let (incarnations, mut v6) = records(12);
        v6[3].tuple.client = "[2001:db8::1]:40000".parse().unwrap();
        assert!(Busiest::by_sorting(&incarnations, &v6).is_none());
    }
}
