//! Finds the clocks a point may lie on without measuring its distance to every clock of the
//! address. Recent Linux gives every connection a clock of its own, so one NAT address can
//! hold a clock per connection; looking at all of them for every segment made the analysis
//! quadratic in the connections.
//!
//! A clock at rate r is the line TSval = intercept + r × time. A point lies on it only if its
//! own intercept at r is within the clock's tolerance of the clock's, so clocks are filed by
//! intercept: recent clocks in buckets as wide as the largest tolerance a recent clock can
//! have, measured clocks gone quiet in an ordered map searched with the tolerance of the
//! oldest. Whatever this returns is then measured exactly; it never leaves out a clock the
//! point could lie on.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use super::clocks::{CANDIDATE_RATES_HZ, Clock, STANDARD_RATES_HZ};
use crate::fastmap::FastMap;

/// Rate slots: the candidate rates of clocks not yet measured, then the standard rates a
/// measured clock is snapped to.
const SLOTS: usize = CANDIDATE_RATES_HZ.len() + STANDARD_RATES_HZ.len();
const TICKS: f64 = 4_294_967_296.0;
const NS_PER_SEC: f64 = 1e9;

fn slot_rate(slot: usize) -> f64 {
    if slot < CANDIDATE_RATES_HZ.len() {
        CANDIDATE_RATES_HZ[slot]
    } else {
        STANDARD_RATES_HZ[slot - CANDIDATE_RATES_HZ.len()]
    }
}

/// Where a clock is filed.
#[derive(Debug, Clone, PartialEq)]
enum Filed {
    /// Not yet seen by the index.
    Nowhere,
    /// Seen within the window: in these (slot, bucket) cells.
    Recent(Cells),
    /// Measured at a standard rate and quiet past the window: under (slot, intercept).
    Old(u8, u32),
    /// Measured at a rate with no slot: looked at for every point.
    Odd,
    /// Not measured and quiet past the window: it takes no more points.
    Ended,
}

/// The clocks filed in one cell. Cells are many and most hold one clock (with a clock per
/// connection, hundreds of thousands of them): up to two are kept inline, without an
/// allocation each.
type CellIds = SmallVec<[u32; 2]>;

/// The cells of one recent clock: one per slot it is filed under (at most every candidate
/// rate), kept inline so filing a clock again allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cells {
    cells: [(u8, i64); CANDIDATE_RATES_HZ.len()],
    len: usize,
}

impl Cells {
    fn iter(&self) -> impl Iterator<Item = (u8, i64)> + '_ {
        self.cells[..self.len].iter().copied()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClockIndex {
    /// Time all intercepts are taken from (the address's first point).
    origin_ns: i64,
    window_ns: i64,
    /// Bucket width per slot, in ticks (a power of two, so buckets tile the 2^32 circle).
    width: [u64; SLOTS],
    recent: FastMap<(u8, i64), CellIds>,
    /// Clocks filed as recent, by slot (the slots worth looking in).
    recent_per_slot: [usize; SLOTS],
    recent_ids: Vec<u32>,
    old: BTreeMap<(u8, u32), CellIds>,
    /// The earliest last point among the old clocks of each slot (bounds their tolerance).
    old_earliest_ns: [Option<i64>; SLOTS],
    odd: Vec<u32>,
    filed: Vec<Filed>,
    next_maintenance_ns: i64,
}

impl ClockIndex {
    pub fn new(origin_ns: i64, window_ns: i64) -> Self {
        let mut index = ClockIndex {
            origin_ns,
            window_ns: window_ns.max(1),
            // Built with every clock filed as recent: the first maintenance sorts them.
            next_maintenance_ns: origin_ns,
            ..ClockIndex::default()
        };
        // A recent clock is at most a window plus a maintenance period old.
        let age_secs = (index.window_ns + Self::period(window_ns)) as f64 / NS_PER_SEC;
        for slot in 0..SLOTS {
            let tolerance = Clock::tolerance(slot_rate(slot) * age_secs) + 2.0;
            index.width[slot] = (tolerance.ceil() as u64).next_power_of_two().min(1 << 31);
        }
        index
    }

    fn period(window_ns: i64) -> i64 {
        (window_ns / 4).max(1)
    }

    /// A point's intercept at `rate`, on the 2^32 circle.
    fn intercept(&self, ts_ns: i64, tsval: u32, rate: f64) -> f64 {
        let secs = ts_ns.saturating_sub(self.origin_ns) as f64 / NS_PER_SEC;
        on_circle(f64::from(tsval) - rate * secs)
    }

    fn bucket(&self, slot: usize, intercept: f64) -> i64 {
        (intercept / self.width[slot] as f64) as i64
    }

    fn buckets(&self, slot: usize) -> i64 {
        (TICKS as u64 / self.width[slot]) as i64
    }

    /// Where `clock` belongs while recent; `None` for a measured rate with no slot.
    fn recent_cells(&self, clock: &Clock) -> Option<Cells> {
        let (first, len) = match clock.rate_hz {
            None => (0, CANDIDATE_RATES_HZ.len()),
            Some(rate) => (
                CANDIDATE_RATES_HZ.len() + STANDARD_RATES_HZ.iter().position(|r| *r == rate)?,
                1,
            ),
        };
        let mut cells = Cells {
            cells: [(0, 0); CANDIDATE_RATES_HZ.len()],
            len,
        };
        for (i, slot) in (first..first + len).enumerate() {
            let intercept = self.intercept(clock.last_ns, clock.last_tsval, slot_rate(slot));
            cells.cells[i] = (slot as u8, self.bucket(slot, intercept));
        }
        Some(cells)
    }

    fn unfile(&mut self, id: u32) {
        let Some(filed) = self.filed.get_mut(id as usize - 1) else {
            return;
        };
        match std::mem::replace(filed, Filed::Nowhere) {
            Filed::Recent(cells) => {
                for cell in cells.iter() {
                    self.recent_per_slot[cell.0 as usize] -= 1;
                    remove_id(&mut self.recent, cell, id);
                }
            }
            Filed::Old(slot, intercept) => {
                if let Some(ids) = self.old.get_mut(&(slot, intercept)) {
                    ids.retain(|i| *i != id);
                    if ids.is_empty() {
                        self.old.remove(&(slot, intercept));
                    }
                }
            }
            Filed::Odd => self.odd.retain(|&i| i != id),
            Filed::Nowhere | Filed::Ended => {}
        }
    }

    /// Files a clock that was just created or took a point.
    pub fn file(&mut self, clock: &Clock) {
        let id = clock.id;
        while self.filed.len() < id as usize {
            self.filed.push(Filed::Nowhere);
        }
        let wanted = match self.recent_cells(clock) {
            Some(cells) => Filed::Recent(cells),
            None => Filed::Odd,
        };
        if self.filed[id as usize - 1] == wanted {
            return;
        }
        self.unfile(id);
        match &wanted {
            Filed::Recent(cells) => {
                for cell in cells.iter() {
                    self.recent_per_slot[cell.0 as usize] += 1;
                    self.recent.entry(cell).or_default().push(id);
                }
                self.recent_ids.push(id);
            }
            Filed::Odd => self.odd.push(id),
            _ => {}
        }
        self.filed[id as usize - 1] = wanted;
    }

    /// Moves clocks quiet past the window out of the recent cells: measured ones to the old
    /// map, unmeasured ones out of the index for good.
    pub fn maintain(&mut self, now_ns: i64, clocks: &[Clock]) {
        if now_ns < self.next_maintenance_ns {
            return;
        }
        self.next_maintenance_ns = now_ns.saturating_add(Self::period(self.window_ns));
        let mut ids = std::mem::take(&mut self.recent_ids);
        ids.sort_unstable();
        ids.dedup();
        let mut still_recent = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(clock) = clocks.get(id as usize - 1) else {
                continue;
            };
            if !matches!(self.filed.get(id as usize - 1), Some(Filed::Recent(_))) {
                continue;
            }
            if now_ns.saturating_sub(clock.last_ns) <= self.window_ns {
                still_recent.push(id);
                continue;
            }
            self.unfile(id);
            let filed = match self.recent_cells(clock) {
                Some(cells) if clock.rate_hz.is_some() => {
                    let slot = cells.cells[0].0;
                    let intercept =
                        self.intercept(clock.last_ns, clock.last_tsval, slot_rate(slot as usize))
                            as u32;
                    self.old.entry((slot, intercept)).or_default().push(id);
                    let earliest = &mut self.old_earliest_ns[slot as usize];
                    *earliest = Some(earliest.map_or(clock.last_ns, |e| e.min(clock.last_ns)));
                    Filed::Old(slot, intercept)
                }
                _ => Filed::Ended,
            };
            self.filed[id as usize - 1] = filed;
        }
        self.recent_ids = still_recent;
    }

    /// Every clock the point at (`ts_ns`, `tsval`) could lie on, and maybe others.
    pub fn candidates(&self, ts_ns: i64, tsval: u32, out: &mut Vec<u32>) {
        out.clear();
        for slot in 0..SLOTS {
            if self.recent_per_slot[slot] == 0 {
                continue;
            }
            let bucket = self.bucket(slot, self.intercept(ts_ns, tsval, slot_rate(slot)));
            let buckets = self.buckets(slot);
            for near in [bucket - 1, bucket, bucket + 1] {
                let cell = (slot as u8, near.rem_euclid(buckets));
                if let Some(ids) = self.recent.get(&cell) {
                    out.extend_from_slice(ids);
                }
            }
        }
        for slot in 0..SLOTS {
            let Some(earliest) = self.old_earliest_ns[slot] else {
                continue;
            };
            let rate = slot_rate(slot);
            let age_secs = ts_ns.saturating_sub(earliest).max(0) as f64 / NS_PER_SEC;
            let reach = (Clock::tolerance(rate * age_secs) + 2.0).ceil();
            if reach * 2.0 >= TICKS {
                // Tolerance spans the whole circle: every old clock of the slot.
                for ((s, _), ids) in self.old.range((slot as u8, 0)..=(slot as u8, u32::MAX)) {
                    debug_assert_eq!(*s as usize, slot);
                    out.extend_from_slice(ids);
                }
                continue;
            }
            let centre = self.intercept(ts_ns, tsval, rate);
            let low = on_circle(centre - reach) as u32;
            let high = on_circle(centre + reach) as u32;
            let s = slot as u8;
            let mut take = |from: u32, to: u32| {
                for (_, ids) in self.old.range((s, from)..=(s, to)) {
                    out.extend_from_slice(ids);
                }
            };
            if low <= high {
                take(low, high);
            } else {
                take(low, u32::MAX);
                take(0, high);
            }
        }
        out.extend_from_slice(&self.odd);
        out.sort_unstable();
        out.dedup();
    }
}

/// `x.rem_euclid(2^32)` without the fmod call, which costs more than the rest of a lookup:
/// dividing and multiplying by a power of two, flooring and the final subtraction are all
/// exact for the values here (|x| far below 2^84), so the result is the same.
fn on_circle(x: f64) -> f64 {
    // A tiny negative x gives the circle's length itself, as rem_euclid does.
    x - (x / TICKS).floor() * TICKS
}

fn remove_id(cells: &mut FastMap<(u8, i64), CellIds>, cell: (u8, i64), id: u32) {
    if let Some(ids) = cells.get_mut(&cell) {
        if let Some(at) = ids.iter().position(|&i| i == id) {
            ids.swap_remove(at);
        }
        if ids.is_empty() {
            cells.remove(&cell);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_circle_is_rem_euclid() {
        let mut edges = vec![
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            -1e-7,
            TICKS,
            -TICKS,
            TICKS - 0.5,
        ];
        edges.extend([
            4_294_967_295.999_999,
            -4_294_967_296.000_001,
            1e15 + 0.25,
            -3e12,
        ]);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // TSval minus rate x seconds: up to a MHz clock over a few days, either sign.
            let x = (state >> 11) as f64 / (1u64 << 53) as f64 * 6e11 - 3e11;
            edges.push(x);
            edges.push(x.fract());
        }
        for x in edges {
            // Equal as numbers (-0 and 0 alike: both file into the same bucket).
            assert_eq!(on_circle(x), x.rem_euclid(TICKS), "{x}");
        }
    }
}
