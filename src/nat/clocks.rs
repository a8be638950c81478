//! TCP timestamp clocks behind one source address. Each host's TSvals advance at a steady
//! rate from its own offset (Linux: 1 kHz, with a random offset per address pair since 4.10),
//! so the (capture time, TSval) points of one address fall on parallel lines, one per host.
//! Clustering the points into lines counts the hosts a NAT hides.

use crate::seq::ts_diff;

const NS_PER_SEC: f64 = 1e9;
/// Rates a clock is tried at before it has been seen long enough to be measured.
const CANDIDATE_RATES_HZ: [f64; 5] = [1000.0, 250.0, 100.0, 300.0, 1_000_000.0];
/// Common rates a measured rate is snapped to when within 2 %.
const STANDARD_RATES_HZ: [f64; 6] = [1000.0, 250.0, 100.0, 300.0, 1200.0, 1_000_000.0];
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
        let rates: &[f64] = match &self.rate_hz {
            Some(rate) => std::slice::from_ref(rate),
            None => &CANDIDATE_RATES_HZ,
        };
        rates
            .iter()
            .map(|rate| {
                let expected = rate * dt_secs;
                let tolerance = SLACK_TICKS + DRIFT_FRACTION * expected.abs();
                (ticks - expected).abs() / tolerance
            })
            .filter(|d| *d <= 1.0)
            .min_by(f64::total_cmp)
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

/// The clocks seen on one source address toward one destination address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressClocks {
    pub clocks: Vec<Clock>,
    pub segments_with_ts: u64,
    pub segments_without_ts: u64,
    pub syns: u64,
    pub decreases: u64,
    pub syn_decreases: u64,
    /// The previous point: (time, port, tsval, clock id).
    last: Option<(i64, u16, u32, u32)>,
}

impl AddressClocks {
    /// Adds one segment's point (`syn_isn`: the ISN when it is a SYN); returns the clock it
    /// joined (none without a TSval) and the decrease it shows, if any.
    pub fn add(
        &mut self,
        ts_ns: i64,
        port: u16,
        tsval: Option<u32>,
        syn_isn: Option<u32>,
        window_ns: i64,
    ) -> (Option<u32>, Option<TsDecrease>) {
        let syn = syn_isn.is_some();
        self.syns += u64::from(syn);
        let Some(tsval) = tsval else {
            self.segments_without_ts += 1;
            return (None, None);
        };
        self.segments_with_ts += 1;
        let nearest = self
            .clocks
            .iter()
            .enumerate()
            .filter_map(|(i, clock)| clock.distance(ts_ns, tsval).map(|d| (d, i)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let clock = match nearest {
            Some((_, i)) => {
                self.clocks[i].add(ts_ns, tsval, syn_isn);
                self.clocks[i].id
            }
            None => {
                let id = self.clocks.len() as u32 + 1;
                self.clocks.push(Clock::new(id, ts_ns, tsval, syn_isn));
                id
            }
        };
        let decrease = match self.last {
            Some((previous_ns, previous_port, previous_tsval, previous_clock))
                if ts_diff(tsval, previous_tsval) < 0 && ts_ns - previous_ns < window_ns =>
            {
                self.decreases += 1;
                self.syn_decreases += u64::from(syn);
                Some(TsDecrease {
                    ts_ns,
                    port,
                    tsval,
                    clock,
                    syn,
                    previous_ns,
                    previous_port,
                    previous_tsval,
                    previous_clock,
                })
            }
            _ => None,
        };
        self.last = Some((ts_ns, port, tsval, clock));
        (Some(clock), decrease)
    }

    /// Whether clocks here stand for hosts or for connections: when (nearly) every clock
    /// carries a single connection and there are several, offsets are per connection.
    pub fn model(&self) -> ClockModel {
        let started: Vec<&Clock> = self.clocks.iter().filter(|c| c.connections > 0).collect();
        let single = started.iter().filter(|c| c.connections == 1).count();
        if started.len() >= 3 && single * 10 >= started.len() * 9 {
            ClockModel::PerConnection
        } else if started.iter().any(|c| c.connections >= 2) {
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
            ClockModel::PerHost => self.clocks.len(),
            ClockModel::PerConnection | ClockModel::Unknown => usize::from(!self.clocks.is_empty()),
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
                clocks.add(t, 40000 + h as u16, Some(tsval), syn, WINDOW);
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
        clocks.add(0, 40000, Some(900_000), Some(1), WINDOW);
        let event = clocks
            .add(MS, 40001, Some(1_000), Some(2), WINDOW)
            .1
            .expect("decrease");
        assert_eq!((event.previous_clock, event.clock), (1, 2));
        assert_eq!((event.previous_tsval, event.tsval), (900_000, 1_000));
        // Beyond the window, a lower TSval is not held against anyone.
        assert!(
            clocks
                .add(WINDOW + 2 * MS, 40002, Some(500), Some(3), WINDOW)
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

    #[test]
    fn a_new_clock_for_every_connection_means_per_connection_offsets() {
        let mut clocks = AddressClocks::default();
        for conn in 0..20u32 {
            let t = i64::from(conn) * 100 * MS;
            let offset = conn.wrapping_mul(2_654_435_761);
            // SYN, then two data segments on the same clock.
            clocks.add(t, 40000, Some(offset), Some(conn), WINDOW);
            clocks.add(t + MS, 40000, Some(offset.wrapping_add(1)), None, WINDOW);
            clocks.add(
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
