//! Who is behind an address: the TCP timestamp clocks on each source address, as a lower
//! bound on the hosts a NAT hides, and the TSval decreases a per-address PAWS check would
//! punish.

mod clock_index;
mod clocks;

pub use clocks::{AddressClocks, Clock, ClockModel, ClockTally, TsDecrease};

use std::net::IpAddr;

use crate::fastmap::{FastMap, FastSet};
use crate::packet::Segment;
use crate::pair_numbers::PairNumbers;

/// Clocks per (source address, destination address): Linux offsets its TSvals per address
/// pair, so one host toward one server is one clock.
#[derive(Debug, Clone, Default)]
pub struct NatClocks {
    /// Each pair seen, in order of first sight, with its clocks.
    pairs: Vec<((IpAddr, IpAddr), AddressClocks)>,
    /// Where each pair is in `pairs`: its number.
    numbers: PairNumbers<(IpAddr, IpAddr)>,
    /// TIME_WAIT length: a decrease only counts against a TSval this recent.
    window_ns: i64,
    /// Every decrease, when tables are wanted.
    events: Option<Vec<AddressEvent>>,
    /// The clock of every SYN with a TSval, when tables or charts are wanted.
    syn_clocks: Option<Vec<SynClock>>,
}

/// The clock a SYN with a TSval joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynClock {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub isn: u32,
    pub clock: u32,
}

/// A decrease and the address pair it was seen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressEvent {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub event: TsDecrease,
}

/// The clocks of one client address toward one server address.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressReport {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub clocks: AddressClocks,
}

impl AddressReport {
    /// At least this many hosts sent from the address (hosts without timestamps are not seen).
    pub fn hosts_lower_bound(&self) -> usize {
        self.clocks.hosts_lower_bound()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NatReport {
    /// Addresses that sent SYNs, busiest first.
    pub addresses: Vec<AddressReport>,
    pub events: Option<Vec<AddressEvent>>,
    /// In capture order: only a chart asks, for one address pair, so nothing is indexed
    /// while reading.
    pub syn_clocks: Option<Vec<SynClock>>,
}

impl NatReport {
    /// The clock of each SYN (by ISN) from `source` to `destination`: for a retransmitted
    /// SYN, the clock of its latest copy.
    pub fn syn_clocks_between(&self, source: IpAddr, destination: IpAddr) -> FastMap<u32, u32> {
        self.syn_clocks
            .iter()
            .flatten()
            .filter(|s| s.source == source && s.destination == destination)
            .map(|s| (s.isn, s.clock))
            .collect()
    }
}

impl NatClocks {
    pub fn new(window_ns: i64, keep_events: bool) -> Self {
        NatClocks {
            window_ns,
            events: keep_events.then(Vec::new),
            syn_clocks: keep_events.then(Vec::new),
            ..NatClocks::default()
        }
    }

    /// Where the clocks of the pair `key` are, added if it is new.
    fn clocks_of(&mut self, key: (IpAddr, IpAddr)) -> usize {
        let (at, new) = self.numbers.number(key);
        if new {
            // Tables name every clock; otherwise ended ones are only counted.
            let clocks = if self.events.is_some() {
                AddressClocks::default()
            } else {
                AddressClocks::retiring()
            };
            self.pairs.push((key, clocks));
        }
        at as usize
    }

    pub fn on_segment(&mut self, seg: &Segment) {
        let key = (seg.src.ip(), seg.dst.ip());
        let at = self.clocks_of(key);
        let events = &mut self.events;
        let clock = self.pairs[at].1.add(
            seg.ts_ns,
            seg.src.port(),
            seg.tsval(),
            seg.is_syn().then_some(seg.seq),
            self.window_ns,
            |event| {
                if let Some(events) = events.as_mut() {
                    events.push(AddressEvent {
                        source: key.0,
                        destination: key.1,
                        event,
                    });
                }
            },
        );
        if let (Some(syn_clocks), Some(clock), true) =
            (self.syn_clocks.as_mut(), clock, seg.is_syn())
        {
            syn_clocks.push(SynClock {
                source: key.0,
                destination: key.1,
                isn: seg.seq,
                clock,
            });
        }
    }

    /// The client addresses (those that sent SYNs) and their clocks.
    pub fn finish(self) -> NatReport {
        let mut addresses: Vec<AddressReport> = self
            .pairs
            .into_iter()
            .filter(|(_, clocks)| clocks.syns > 0)
            .map(|((source, destination), clocks)| AddressReport {
                source,
                destination,
                clocks,
            })
            .collect();
        addresses.sort_by(|a, b| {
            b.clocks
                .syns
                .cmp(&a.clocks.syns)
                .then((a.source, a.destination).cmp(&(b.source, b.destination)))
        });
        // Only client addresses are reported: drop the server side's events.
        let clients: FastSet<(IpAddr, IpAddr)> = addresses
            .iter()
            .map(|a| (a.source, a.destination))
            .collect();
        let events = self.events.map(|events| {
            events
                .into_iter()
                .filter(|e| clients.contains(&(e.source, e.destination)))
                .collect()
        });
        NatReport {
            addresses,
            events,
            syn_clocks: self.syn_clocks,
        }
    }
}
