//! TCP timestamp clocks behind one source address. Each host's TSvals advance at a steady
//! rate from its own offset (Linux: 1 kHz, with a random offset per address pair since 4.10),
//! so the (capture time, TSval) points of one address fall on parallel lines, one per host.
//! Clustering the points into lines counts the hosts a NAT hides.

use super::clock_index::ClockIndex;
use crate::seq::ts_diff;

const NS_PER_SEC: f64 = 1e9;
/// Rates a clock is tried at before it has been seen long enough to be measured.
pub(super) const CANDIDATE_RATES_HZ: [f64; 5] = [1000.0, 250.0, 100.0, 300.0, 1_000_000.0];
/// Common rates a measured rate is snapped to when within 2 %.
pub(super) const STANDARD_RATES_HZ: [f64; 6] = [1000.0, 250.0, 100.0, 300.0, 1200.0, 1_000_000.0];
/// A clock's rate is measured once it spans this long.
const MIN_FIT_SPAN_NS: i64 = 500_000_000;
/// Ticks of slack for capture jitter, plus this fraction of the elapsed ticks for drift and
/// rate error (hosts' clocks drift by tens of ppm; a fitted rate is known to ~0.1 %).
const SLACK_TICKS: f64 = 3.0;
const DRIFT_FRACTION: f64 = 0.002;

/// One host's timestamp clock, as seen in the capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    pub id: u32,
    pub first_ns: i64,
    pub first_tsval: u32,
    pub last_ns: i64,
    pub last_tsval: u32,
    /// Ticks since `first_tsval`, counting wrap-arounds.
    last_unwrapped: i64,
    pub segments: u64,
    pub syns: u64,
    /// Connections that started on this clock: SYNs with distinct ISNs.
    pub connections: u32,
    last_syn_isn: Option<u32>,
    /// Sums for the least-squares rate (seconds and ticks since the first point).
    fit: Fit,
    pub rate_hz: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Fit {
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
}

impl Fit {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
    }

    fn slope(&self) -> Option<f64> {
        let denominator = self.n * self.sxx - self.sx * self.sx;
        (self.n >= 2.0 && denominator.abs() > f64::EPSILON)
            .then(|| (self.n * self.sxy - self.sx * self.sy) / denominator)
    }
}

impl Clock {
    fn new(id: u32, ts_ns: i64, tsval: u32, syn_isn: Option<u32>) -> Self {
        let mut fit = Fit::default();
        fit.add(0.0, 0.0);
        Clock {
            id,
            first_ns: ts_ns,
            first_tsval: tsval,
            last_ns: ts_ns,
            last_tsval: tsval,
            last_unwrapped: 0,
            segments: 1,
            syns: u64::from(syn_isn.is_some()),
            connections: u32::from(syn_isn.is_some()),
            last_syn_isn: syn_isn,
            fit,
            rate_hz: None,
        }
    }

    /// How far (in units of its tolerance) a point is from this clock's line; `None` when it
    /// is not on it.
    fn distance(&self, ts_ns: i64, tsval: u32) -> Option<f64> {
        let dt_secs = (ts_ns - self.last_ns) as f64 / NS_PER_SEC;
        let ticks = f64::from(ts_diff(tsval, self.last_tsval));
        let at_rate = |rate: f64| {
            let expected = rate * dt_secs;
            let (off, tolerance) = ((ticks - expected).abs(), Self::tolerance(expected));
            // Most points are far off most lines: that shows without the division (the
            // margin covers rounding, so the ratio would have been over 1 too).
            if off > tolerance * (1.0 + 1e-9) {
                return None;
            }
            Some(off / tolerance).filter(|d| *d <= 1.0)
        };
        match self.rate_hz {
            // Nearly every clock is measured within a second of appearing.
            Some(rate) => at_rate(rate),
            None => CANDIDATE_RATES_HZ
                .iter()
                .filter_map(|&rate| at_rate(rate))
                .min_by(f64::total_cmp),
        }
    }

    /// Whether the clock no longer takes points: never measured, and quiet for longer than
    /// the window.
    pub(super) fn ended(&self, ts_ns: i64, window_ns: i64) -> bool {
        self.rate_hz.is_none() && ts_ns.saturating_sub(self.last_ns) > window_ns
    }

    /// How far off its line a point may be after `expected_ticks` of the clock: capture
    /// jitter, plus drift and rate error growing with the time elapsed.
    pub(super) fn tolerance(expected_ticks: f64) -> f64 {
        SLACK_TICKS + DRIFT_FRACTION * expected_ticks.abs()
    }

    fn add(&mut self, ts_ns: i64, tsval: u32, syn_isn: Option<u32>) {
        self.last_unwrapped += i64::from(ts_diff(tsval, self.last_tsval));
        self.last_tsval = tsval;
        self.last_ns = self.last_ns.max(ts_ns);
        self.segments += 1;
        if let Some(isn) = syn_isn {
            self.syns += 1;
            if self.last_syn_isn != Some(isn) {
                self.connections += 1;
                self.last_syn_isn = Some(isn);
            }
        }
        let x = (ts_ns - self.first_ns) as f64 / NS_PER_SEC;
        self.fit.add(x, self.last_unwrapped as f64);
        if self.last_ns - self.first_ns >= MIN_FIT_SPAN_NS
            && let Some(slope) = self.fit.slope()
        {
            self.rate_hz = Some(snap_rate(slope));
        }
    }
}

/// A measured rate, snapped to a common one when within 2 %.
fn snap_rate(measured: f64) -> f64 {
    STANDARD_RATES_HZ
        .iter()
        .copied()
        .find(|rate| (measured - rate).abs() <= 0.02 * rate)
        .unwrap_or(measured)
}

/// A segment whose TSval is below the previous one from the same address (within 2MSL):
/// what a per-address PAWS check, such as tcp_tw_recycle's, would hold against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsDecrease {
    pub ts_ns: i64,
    pub port: u16,
    pub tsval: u32,
    pub clock: u32,
    pub syn: bool,
    pub previous_ns: i64,
    pub previous_port: u16,
    pub previous_tsval: u32,
    pub previous_clock: u32,
}

/// How the hosts behind an address offset their timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockModel {
    /// Each host has one clock for all its connections (Linux 4.10 to 6.x: an offset per
    /// address pair; older kernels: the raw tick counter): clocks count hosts.
    PerHost,
    /// Every connection starts its own clock (recent Linux derives the offset from the whole
    /// 4-tuple): clocks count connections, and hosts cannot be told apart by timestamps.
    PerConnection,
    /// Too few connections to tell.
    Unknown,
}

/// Counts over clocks: what is kept of clocks that ended (never measured, quiet past the
/// window: no point can join them again), and what the model is judged on. Recent Linux
/// starts a clock per connection, so keeping every clock would make memory grow with the
/// capture's connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockTally {
    pub clocks: u64,
    /// Of them, the ones that carried connections, and those that carried exactly one.
    pub started: u64,
    pub single_connection: u64,
    pub connections: u64,
}

impl ClockTally {
    fn add(&mut self, clock: &Clock) {
        self.clocks += 1;
        self.started += u64::from(clock.connections > 0);
        self.single_connection += u64::from(clock.connections == 1);
        self.connections += u64::from(clock.connections);
    }
}

/// The clocks seen on one source address toward one destination address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressClocks {
    /// The clocks still kept: all of them when tables are wanted (each is a row), else the
    /// ones that have not ended.
    pub clocks: Vec<Clock>,
    /// Ended clocks no longer kept (see [`AddressClocks::retiring`]).
    pub retired: ClockTally,
    /// Fold ended clocks into `retired` now and then.
    retire: bool,
    /// Clock count after the last retiring, to retire again once it has doubled.
    kept_after_retiring: usize,
    pub segments_with_ts: u64,
    pub segments_without_ts: u64,
    pub syns: u64,
    pub decreases: u64,
    pub syn_decreases: u64,
    /// The previous point: (time, port, tsval, clock id).
    last: Option<(i64, u16, u32, u32)>,
    /// Which clocks a point may lie on, for addresses with many clocks.
    index: Option<ClockIndex>,
    /// Points measured against a clock: what the index saves (tested, so that a capture
    /// with a clock per connection stays linear).
    distances_measured: u64,
    /// The clocks the index offers for the point at hand (kept to spare an allocation per
    /// point).
    candidates: Scratch,
}

/// Scratch space, reused from point to point: not part of the clocks' value, so any two
/// compare equal.
#[derive(Debug, Clone, Default)]
struct Scratch(Vec<u32>);

impl PartialEq for Scratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Up to this many clocks, a point is measured against each; beyond, an index is built that
/// picks the few it could lie on. Both find the same clock.
const SCAN_CLOCKS: usize = 32;

impl AddressClocks {
    /// Clocks that end are folded into counts ([`ClockTally`]) rather than kept: memory
    /// then follows the clocks that can still take points. Clock numbers are internal then
    /// (they are renumbered as clocks retire); tables, which name clocks, keep them all.
    pub fn retiring() -> Self {
        AddressClocks {
            retire: true,
            ..AddressClocks::default()
        }
    }

    /// Every clock seen, kept or retired.
    pub fn clock_count(&self) -> u64 {
        self.clocks.len() as u64 + self.retired.clocks
    }

    /// Counts over every clock seen, kept or retired.
    pub fn tally(&self) -> ClockTally {
        let mut tally = self.retired;
        for clock in &self.clocks {
            tally.add(clock);
        }
        tally
    }

    /// Connections started on the clocks, kept or retired.
    pub fn connections(&self) -> u64 {
        self.tally().connections
    }

    /// Folds the clocks that ended by `now_ns` into `retired` once the kept clocks have
    /// doubled since the last time (amortised: each clock is looked at a few times). The
    /// others keep their order and are numbered 1.. again; the index is rebuilt.
    // Asked at every point, due once in a long while: the check is inlined, the work is not.
    #[inline]
    fn retire_ended(&mut self, now_ns: i64, window_ns: i64) {
        if self.retire && self.clocks.len() >= 2 * self.kept_after_retiring.max(SCAN_CLOCKS) {
            self.retire_ended_now(now_ns, window_ns);
        }
    }

    #[cold]
    fn retire_ended_now(&mut self, now_ns: i64, window_ns: i64) {
        let mut kept = Vec::with_capacity(self.clocks.len());
        for clock in self.clocks.drain(..) {
            if clock.ended(now_ns, window_ns) {
                self.retired.add(&clock);
            } else {
                kept.push(clock);
            }
        }
        for (at, clock) in kept.iter_mut().enumerate() {
            clock.id = at as u32 + 1;
        }
        self.clocks = kept;
        self.kept_after_retiring = self.clocks.len();
        // The previous point's clock number is only ever named in events, which tables keep.
        if let Some(last) = self.last.as_mut() {
            last.3 = 0;
        }
        self.index = None;
    }

    /// Adds one segment's point (`syn_isn`: the ISN when it is a SYN); returns the clock it
    /// joined (none without a TSval) and hands the decrease it shows, if any, to
    /// `on_decrease`.
    // The decrease is handed on rather than returned: a 40-byte answer, written field by
    // field and copied whole by the caller, stalled every segment on store forwarding.
    pub fn add(
        &mut self,
        ts_ns: i64,
        port: u16,
        tsval: Option<u32>,
        syn_isn: Option<u32>,
        window_ns: i64,
        on_decrease: impl FnOnce(TsDecrease),
    ) -> Option<u32> {
        self.add_scanning_up_to(
            ts_ns,
            port,
            tsval,
            syn_isn,
            window_ns,
            SCAN_CLOCKS,
            on_decrease,
        )
    }

    /// [`AddressClocks::add`], measuring the point against every clock while there are at
    /// most `scan_clocks` of them and asking the index beyond.
    #[allow(clippy::too_many_arguments)]
    fn add_scanning_up_to(
        &mut self,
        ts_ns: i64,
        port: u16,
        tsval: Option<u32>,
        syn_isn: Option<u32>,
        window_ns: i64,
        scan_clocks: usize,
        on_decrease: impl FnOnce(TsDecrease),
    ) -> Option<u32> {
        let syn = syn_isn.is_some();
        self.syns += u64::from(syn);
        let Some(tsval) = tsval else {
            self.segments_without_ts += 1;
            return None;
        };
        self.segments_with_ts += 1;
        self.retire_ended(ts_ns, window_ns);
        // Most addresses have a few clocks: the index is only built, and kept up, once an
        // address has more than a scan should look at.
        if self.index.is_none() && self.clocks.len() > scan_clocks {
            let mut index = ClockIndex::new(ts_ns, window_ns);
            for clock in &self.clocks {
                index.file(clock);
            }
            self.index = Some(index);
        }
        if let Some(index) = self.index.as_mut() {
            index.maintain(ts_ns, &self.clocks);
        }
        // A clock that never ran long enough to be measured is not followed past the window:
        // where its line would lead is guesswork.
        let mut measured = 0u64;
        // The nearest; on a tie the earliest clock, however the candidates came.
        let mut nearest: Option<(f64, usize)> = None;
        let clocks = &self.clocks;
        let mut consider = |i: usize| {
            let clock = &clocks[i];
            if clock.ended(ts_ns, window_ns) {
                return;
            }
            measured += 1;
            let Some(d) = clock.distance(ts_ns, tsval) else {
                return;
            };
            let nearer =
                nearest.is_none_or(|(best, at)| d.total_cmp(&best).then(i.cmp(&at)).is_lt());
            if nearer {
                nearest = Some((d, i));
            }
        };
        match &self.index {
            None => (0..clocks.len()).for_each(&mut consider),
            Some(index) => {
                index.candidates(ts_ns, tsval, &mut self.candidates.0);
                for &id in &self.candidates.0 {
                    consider(id as usize - 1);
                }
            }
        }
        self.distances_measured += measured;
        let i = match nearest {
            Some((_, i)) => {
                self.clocks[i].add(ts_ns, tsval, syn_isn);
                i
            }
            None => {
                let id = self.clocks.len() as u32 + 1;
                self.clocks.push(Clock::new(id, ts_ns, tsval, syn_isn));
                self.clocks.len() - 1
            }
        };
        let clock = self.clocks[i].id;
        if let Some(index) = self.index.as_mut() {
            index.file(&self.clocks[i]);
        }
        if let Some((previous_ns, previous_port, previous_tsval, previous_clock)) = self.last
            && ts_diff(tsval, previous_tsval) < 0
            && ts_ns - previous_ns < window_ns
        {
            self.decreases += 1;
            self.syn_decreases += u64::from(syn);
            on_decrease(TsDecrease {
                ts_ns,
                port,
                tsval,
                clock,
                syn,
                previous_ns,
                previous_port,
                previous_tsval,
                previous_clock,
            });
        }
        self.last = Some((ts_ns, port, tsval, clock));
        Some(clock)
    }

    /// [`AddressClocks::add`], answering with the decrease instead of handing it on.
    #[cfg(test)]
    fn add_point(
        &mut self,
        ts_ns: i64,
        port: u16,
        tsval: Option<u32>,
        syn_isn: Option<u32>,
        window_ns: i64,
    ) -> (Option<u32>, Option<TsDecrease>) {
        let mut decrease = None;
        let clock = self.add(ts_ns, port, tsval, syn_isn, window_ns, |d| {
            decrease = Some(d)
        });
        (clock, decrease)
    }

    /// Whether clocks here stand for hosts or for connections: when (nearly) every clock
    /// carries a single connection and there are several, offsets are per connection.
    pub fn model(&self) -> ClockModel {
        let ClockTally {
            started,
            single_connection: single,
            ..
        } = self.tally();
        if started >= 3 && single * 10 >= started * 9 {
            ClockModel::PerConnection
        } else if started > single {
            // A clock that carried several connections is a host's, not a connection's.
            ClockModel::PerHost
        } else {
            ClockModel::Unknown
        }
    }

    /// At least this many hosts send from the address, as far as timestamps can tell: the
    /// number of clocks, or 1 when clocks are per connection (or unknown).
    pub fn hosts_lower_bound(&self) -> usize {
        match self.model() {
            ClockModel::PerHost => self.clock_count() as usize,
            ClockModel::PerConnection | ClockModel::Unknown => usize::from(self.clock_count() > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;
    const WINDOW: i64 = 60_000 * MS;

    /// Points from `hosts` clocks (offset, rate) interleaved every 7 ms for `n` rounds.
    fn feed(hosts: &[(u32, f64)], n: i64) -> AddressClocks {
        let mut clocks = AddressClocks::default();
        for round in 0..n {
            for (h, (offset, rate)) in hosts.iter().enumerate() {
                let t = (round * hosts.len() as i64 + h as i64) * 7 * MS;
                let tsval = offset.wrapping_add((rate * t as f64 / 1e9) as u32);
                let syn = (round % 10 == 0).then_some(round as u32);
                clocks.add_point(t, 40000 + h as u16, Some(tsval), syn, WINDOW);
            }
        }
        clocks
    }

    #[test]
    fn four_hosts_with_random_offsets_are_four_clocks() {
        let clocks = feed(
            &[
                (1_000, 1000.0),
                (2_000_000_000, 1000.0),
                (3_900_000_000, 1000.0),
                (77_777, 1000.0),
            ],
            200,
        );
        assert_eq!(clocks.clocks.len(), 4);
        assert!(clocks.clocks.iter().all(|c| c.rate_hz == Some(1000.0)));
    }

    #[test]
    fn clocks_fifty_ticks_apart_are_still_two() {
        let clocks = feed(&[(5_000, 1000.0), (5_050, 1000.0)], 300);
        assert_eq!(clocks.clocks.len(), 2);
        assert_eq!(clocks.clocks[0].segments, 300);
    }

    #[test]
    fn rates_are_measured() {
        let clocks = feed(&[(5_000, 250.0), (900_000, 100.0), (40, 1_000_000.0)], 200);
        let mut rates: Vec<f64> = clocks.clocks.iter().filter_map(|c| c.rate_hz).collect();
        rates.sort_by(f64::total_cmp);
        assert_eq!(rates, [100.0, 250.0, 1_000_000.0]);
    }

    #[test]
    fn a_clock_wrapping_around_stays_one_clock() {
        let clocks = feed(&[(u32::MAX - 500, 1000.0)], 300);
        assert_eq!(clocks.clocks.len(), 1);
        assert_eq!(clocks.clocks[0].rate_hz, Some(1000.0));
        assert_eq!(clocks.decreases, 0);
    }

    #[test]
    fn a_lower_tsval_from_another_clock_is_a_decrease_naming_both() {
        let mut clocks = AddressClocks::default();
        clocks.add_point(0, 40000, Some(900_000), Some(1), WINDOW);
        let event = clocks
            .add_point(MS, 40001, Some(1_000), Some(2), WINDOW)
            .1
            .expect("decrease");
        assert_eq!((event.previous_clock, event.clock), (1, 2));
        assert_eq!((event.previous_tsval, event.tsval), (900_000, 1_000));
        // Beyond the window, a lower TSval is not held against anyone.
        assert!(
            clocks
                .add_point(WINDOW + 2 * MS, 40002, Some(500), Some(3), WINDOW)
                .1
                .is_none()
        );
    }

    #[test]
    fn hosts_with_many_connections_each_are_per_host_clocks() {
        let clocks = feed(
            &[
                (1_000, 1000.0),
                (2_000_000_000, 1000.0),
                (3_900_000_000, 1000.0),
            ],
            200,
        );
        assert_eq!(clocks.model(), ClockModel::PerHost);
        assert_eq!(clocks.hosts_lower_bound(), 3);
    }

    /// Per-connection clocks (a random offset each, 20 connections a second for 200 s), hosts
    /// with one clock each that fall quiet for longer than the window and come back, and a
    /// host at a rate with no slot: the index picks exactly the clocks a scan of every clock
    /// picks.
    #[test]
    fn the_index_finds_the_clock_a_scan_of_every_clock_finds() {
        let points = per_connection_clocks_and_quiet_hosts();
        let (mut scan, mut indexed) = (AddressClocks::default(), AddressClocks::default());
        for &(t, port, tsval, syn) in &points {
            let a = scan.add_scanning_up_to(t, port, Some(tsval), syn, WINDOW, usize::MAX, drop);
            let b = indexed.add_scanning_up_to(t, port, Some(tsval), syn, WINDOW, 0, drop);
            assert_eq!(a, b, "point at {t} ns");
        }
        assert_eq!(scan.clocks, indexed.clocks);
        assert!(
            indexed.clocks.len() >= 4000,
            "{} clocks",
            indexed.clocks.len()
        );
        // The hosts kept their clocks across the quiet: each took all 400 points.
        for rate in [1000.0, 250.0] {
            assert!(
                indexed
                    .clocks
                    .iter()
                    .any(|c| c.segments == 400 && c.rate_hz == Some(rate)),
                "{rate} Hz host"
            );
        }
        assert!(indexed.distances_measured * 50 < scan.distances_measured);
    }

    #[test]
    fn retiring_ended_clocks_keeps_few_and_counts_the_same() {
        let points = per_connection_clocks_and_quiet_hosts();
        let (mut all, mut retiring) = (AddressClocks::default(), AddressClocks::retiring());
        for &(t, port, tsval, syn) in &points {
            let (_, a) = all.add_point(t, port, Some(tsval), syn, WINDOW);
            let (_, b) = retiring.add_point(t, port, Some(tsval), syn, WINDOW);
            // Clock numbers differ (retiring renumbers); the decreases do not.
            let seen = |d: Option<TsDecrease>| d.map(|d| (d.ts_ns, d.tsval, d.previous_tsval));
            assert_eq!(seen(a), seen(b), "point at {t} ns");
        }
        assert_eq!(retiring.clock_count(), all.clock_count());
        assert_eq!(retiring.connections(), all.connections());
        assert_eq!(retiring.model(), all.model());
        assert_eq!(retiring.model(), ClockModel::PerConnection);
        assert_eq!(retiring.hosts_lower_bound(), all.hosts_lower_bound());
        assert_eq!(
            (retiring.decreases, retiring.syn_decreases),
            (all.decreases, all.syn_decreases)
        );
        // A clock per connection for 200 s, of which only those of the last 60 s (and the
        // measured hosts) can take points: those are what stays, give or take the doubling
        // between two retirings.
        assert!(all.clocks.len() >= 4000);
        let end = points.last().map_or(0, |p| p.0);
        let live = all.clocks.iter().filter(|c| !c.ended(end, WINDOW)).count();
        assert!(retiring.retired.clocks > 0);
        assert!(
            retiring.clocks.len() < 2 * live + 2 * SCAN_CLOCKS,
            "{} kept, {live} live of {}",
            retiring.clocks.len(),
            all.clocks.len()
        );
        let measured = |c: &AddressClocks| {
            let mut rates: Vec<(u64, u64)> = c
                .clocks
                .iter()
                .filter_map(|k| k.rate_hz.map(|r| (r.to_bits(), k.segments)))
                .collect();
            rates.sort_unstable();
            rates
        };
        // Measured clocks never end: the hosts are all kept, with every point.
        assert_eq!(measured(&retiring), measured(&all));
    }

    /// 4000 connections 50 ms apart, each on a clock of its own (4 points in 4 ms), and hosts
    /// at 1000, 250 and 600 Hz (600 matches no standard rate), busy for 10 s, quiet for 90 s,
    /// busy again; in time order.
    fn per_connection_clocks_and_quiet_hosts() -> Vec<(i64, u16, u32, Option<u32>)> {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut points: Vec<(i64, u16, u32, Option<u32>)> = Vec::new();
        for conn in 0..4000i64 {
            let t = conn * 50 * MS;
            let offset = next() as u32;
            let port = 40000 + (conn % 20000) as u16;
            for k in 0..4i64 {
                let tsval = offset.wrapping_add(k as u32);
                points.push((t + k * MS, port, tsval, (k == 0).then_some(conn as u32)));
            }
        }
        for (h, rate) in [(0u32, 1000.0), (1, 250.0), (2, 600.0)] {
            let offset = next() as u32;
            for burst in [0i64, 100] {
                for k in 0..200i64 {
                    let t = (burst * 1000 + k * 50) * MS + i64::from(h);
                    let tsval = offset.wrapping_add((rate * t as f64 / 1e9) as u32);
                    points.push((
                        t,
                        30000 + h as u16,
                        tsval,
                        (k % 20 == 0).then_some(k as u32),
                    ));
                }
            }
        }
        points.sort_by_key(|p| p.0);
        points
    }

    /// The reproducer of a blow-up found by fuzzing: 16 000 SYNs a millisecond apart from one
    /// address, each with an unrelated TSval (each its own clock), once cost a distance per
    /// clock per SYN. The index keeps it to a few per SYN.
    #[test]
    fn sixteen_thousand_unrelated_syns_are_not_quadratic() {
        let mut clocks = AddressClocks::default();
        let mut tsval = 12_345u32;
        for i in 0..16_000i64 {
            tsval = tsval.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            clocks.add_point(i * MS, 40000, Some(tsval), Some(i as u32), WINDOW);
        }
        // Most are clocks of their own; a few land on another's line by chance (at the
        // 1 MHz candidate rate the tolerance grows 2 000 ticks a second).
        assert!(clocks.clocks.len() > 15_000, "{}", clocks.clocks.len());
        assert!(
            clocks.distances_measured < 16_000 * 8,
            "{} distances measured",
            clocks.distances_measured
        );
    }

    #[test]
    fn a_new_clock_for_every_connection_means_per_connection_offsets() {
        let mut clocks = AddressClocks::default();
        for conn in 0..20u32 {
            let t = i64::from(conn) * 100 * MS;
            let offset = conn.wrapping_mul(2_654_435_761);
            // SYN, then two data segments on the same clock.
            clocks.add_point(t, 40000, Some(offset), Some(conn), WINDOW);
            clocks.add_point(t + MS, 40000, Some(offset.wrapping_add(1)), None, WINDOW);
            clocks.add_point(
                t + 2 * MS,
                40000,
                Some(offset.wrapping_add(2)),
                None,
                WINDOW,
            );
        }
        assert_eq!(clocks.clocks.len(), 20);
        assert_eq!(clocks.model(), ClockModel::PerConnection);
        assert_eq!(clocks.hosts_lower_bound(), 1);
    }
}
