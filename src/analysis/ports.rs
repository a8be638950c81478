//! Is the client side running out of ports? A client that closes first keeps each 4-tuple in
//! TIME_WAIT for 60 s, so toward one server ip:port it can open at most (port range size)
//! connections per TIME_WAIT length; beyond that connect() fails with EADDRNOTAVAIL and no SYN
//! is ever sent. Counted here from the incarnations the capture shows.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use crate::flow::{IncarnationRecord, TimeWaitHolder, TupleKey};
use crate::pair_numbers::PairNumbers;
use crate::threads::{join, spawn_named};

/// The window the peak connect rate is measured over.
const RATE_WINDOW_NS: i64 = 10_000_000_000;

/// Linux's default net.ipv4.ip_local_port_range.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (32768, 60999);

/// The ports one client address uses toward one server endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPorts {
    pub client: IpAddr,
    pub server: SocketAddr,
    pub range_size: u32,
    pub connections: u64,
    /// Connections whose close left the client in TIME_WAIT.
    pub client_time_waits: u64,
    /// Connections that negotiated timestamps (tcp_tw_reuse needs them).
    pub ts_negotiated: u64,
    /// Most ports held at once (open connections plus the client's TIME_WAITs), and when.
    pub peak_in_use: u32,
    pub peak_ns: Option<i64>,
    /// When the held ports first filled the range: the next connect() would fail.
    pub exhausted_ns: Option<i64>,
    /// Most connections started within any 10 s, per second.
    pub peak_rate_per_s: f64,
    /// range size / TIME_WAIT length: the rate a client closing first can keep up.
    pub sustainable_rate_per_s: f64,
}

/// A port taken (+1) or released (-1) at a time, for one (client address, server endpoint),
/// for the candidates `first..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PortEvent {
    at_ns: i64,
    /// -1 sorts before +1: on a tie the port is free again before it is taken.
    delta: i8,
    /// Index into [`PortUsage::keys`].
    key: u32,
    first: u8,
    end: u8,
}

/// Takes arrive when the server answers a SYN (up to a SYN retransmission series after the
/// SYN), releases when the incarnation's record is handed on (up to the tracker's forget
/// horizon after the close). Events older than this behind the newest are final, in order.
const EVENT_DELAY_NS: i64 = 240 * 1_000_000_000;

/// The running count for one (client address, server endpoint).
#[derive(Debug, Clone, Default)]
struct Tally {
    connections: u64,
    client_time_waits: u64,
    ts_negotiated: u64,
    in_use: i64,
    peak: i64,
    peak_ns: Option<i64>,
    exhausted_ns: Option<i64>,
    /// Takes within the last rate window, oldest first.
    recent_takes: VecDeque<i64>,
    busiest: usize,
}

impl Tally {
    fn apply(&mut self, event: PortEvent, range_size: i64) {
        self.in_use += i64::from(event.delta);
        if self.in_use > self.peak {
            self.peak = self.in_use;
            self.peak_ns = Some(event.at_ns);
        }
        if self.exhausted_ns.is_none() && self.in_use >= range_size {
            self.exhausted_ns = Some(event.at_ns);
        }
        if event.delta > 0 {
            let recent = &mut self.recent_takes;
            recent.push_back(event.at_ns);
            while recent
                .front()
                .is_some_and(|&first| first.saturating_add(RATE_WINDOW_NS) <= event.at_ns)
            {
                recent.pop_front();
            }
            self.busiest = self.busiest.max(recent.len());
        }
    }
}

/// Pending events are grouped by the second they fall in; a second is sorted and applied
/// whole once no event can still arrive in it (cheaper than a heap of every event).
const BUCKET_NS: i64 = 1_000_000_000;

/// Counts, per (client address, server endpoint), the ports held over time, streaming: events
/// wait until no earlier one can still come, so memory follows the last few minutes of
/// connections, not the capture. It counts for every candidate of one tracker at once: an
/// event the tracker hands to several candidates is queued and sorted once.
#[derive(Debug, Clone, Default)]
pub struct PortUsage {
    pairs: PairNumbers<(IpAddr, SocketAddr)>,
    /// Each key's counts, one per candidate.
    keys: Vec<KeyTallies>,
    pending: BTreeMap<i64, Vec<PortEvent>>,
    newest_ns: i64,
    range_size: u32,
    candidates: usize,
}

impl PortUsage {
    /// Port usage for `candidates` candidates (at most 255), numbered from 0.
    pub fn new(port_range: (u16, u16), candidates: usize) -> Self {
        assert!(candidates <= usize::from(u8::MAX), "too many candidates");
        PortUsage {
            range_size: range_size(port_range),
            candidates,
            ..PortUsage::default()
        }
    }

    fn key(&mut self, client: IpAddr, server: SocketAddr) -> u32 {
        let (key, new) = self.pairs.number((client, server));
        if new {
            let tallies = vec![Tally::default(); self.candidates];
            self.keys.push(((client, server), tallies));
        }
        key
    }

    fn push(&mut self, at_ns: i64, delta: i8, key: u32, candidates: Range<usize>) {
        let bucket = at_ns.div_euclid(BUCKET_NS);
        self.pending.entry(bucket).or_default().push(PortEvent {
            at_ns,
            delta,
            key,
            // Both fit: there are at most 255 candidates.
            first: candidates.start as u8,
            end: candidates.end as u8,
        });
        if at_ns > self.newest_ns {
            self.newest_ns = at_ns;
            self.apply_until(self.newest_ns.saturating_sub(EVENT_DELAY_NS));
        }
    }

    /// The server answered a SYN on `tuple` first sent at `syn_ns`: a port is held, for
    /// each of `candidates`.
    pub fn taken(&mut self, candidates: Range<usize>, tuple: TupleKey, syn_ns: i64) {
        let key = self.key(tuple.client.ip(), tuple.server);
        for tally in &mut self.keys[key as usize].1[candidates.clone()] {
            tally.connections += 1;
        }
        self.push(syn_ns, 1, key, candidates);
    }

    /// An incarnation is over, for each of `candidates`. `client_time_wait_ns`: how long the
    /// client holds a port after closing first.
    pub fn record(
        &mut self,
        candidates: Range<usize>,
        incarnation: &IncarnationRecord,
        client_time_wait_ns: i64,
    ) {
        let key = self.key(incarnation.tuple.client.ip(), incarnation.tuple.server);
        for tally in &mut self.keys[key as usize].1[candidates.clone()] {
            tally.client_time_waits +=
                u64::from(incarnation.time_wait_holder == TimeWaitHolder::Client);
            tally.ts_negotiated += u64::from(incarnation.ts_negotiated);
        }
        if let Some(released) = released_ns(incarnation, client_time_wait_ns) {
            self.push(released, -1, key, candidates);
        }
    }

    /// Applies, in time order, the pending seconds that end at or before `until_ns`.
    fn apply_until(&mut self, until_ns: i64) {
        while let Some(entry) = self.pending.first_entry() {
            let bucket_end = entry.key().saturating_add(1).saturating_mul(BUCKET_NS);
            if bucket_end > until_ns {
                break;
            }
            apply_second(entry.remove(), &mut self.keys, 0, self.range_size);
        }
    }

    /// Applies every pending second. Each key's counts change with its own events alone:
    /// with `parallel`, the keys' two halves are counted on two threads (the last minutes of
    /// a capture's connections wait here until every other step of the analysis is done).
    fn apply_all(&mut self, parallel: bool) {
        let seconds = std::mem::take(&mut self.pending).into_values();
        let range_size = self.range_size;
        if !parallel {
            apply_seconds(seconds, &mut self.keys, 0, range_size);
            return;
        }
        let half = self.keys.len() / 2;
        let (low, high): (Vec<_>, Vec<_>) = seconds
            .map(|events| {
                events
                    .into_iter()
                    .partition::<Vec<_>, _>(|event| (event.key as usize) < half)
            })
            .unzip();
        let (low_keys, high_keys) = self.keys.split_at_mut(half);
        std::thread::scope(|scope| {
            let high_done = spawn_named(scope, "ports", move || {
                apply_seconds(high, high_keys, half, range_size);
            });
            apply_seconds(low, low_keys, 0, range_size);
            join(high_done);
        });
    }

    /// Each candidate's ports per client address and server endpoint, busiest first, in
    /// the candidates' order; `parallel`: see [`PortUsage::apply_all`].
    pub fn finish(mut self, time_wait_ns: i64, parallel: bool) -> Vec<Vec<ClientPorts>> {
        self.apply_all(parallel);
        let range_size = self.range_size;
        let mut each: Vec<Vec<ClientPorts>> = vec![Vec::new(); self.candidates];
        for ((client, server), tallies) in self.keys {
            for (out, tally) in each.iter_mut().zip(tallies) {
                out.push(ClientPorts {
                    client,
                    server,
                    range_size,
                    connections: tally.connections,
                    client_time_waits: tally.client_time_waits,
                    ts_negotiated: tally.ts_negotiated,
                    peak_in_use: u32::try_from(tally.peak).unwrap_or(u32::MAX),
                    peak_ns: tally.peak_ns,
                    exhausted_ns: tally.exhausted_ns,
                    peak_rate_per_s: tally.busiest as f64 / (RATE_WINDOW_NS as f64 / 1e9),
                    sustainable_rate_per_s: f64::from(range_size) / (time_wait_ns as f64 / 1e9),
                });
            }
        }
        for out in &mut each {
            out.sort_by(|a, b| {
                b.peak_in_use
                    .cmp(&a.peak_in_use)
                    .then((a.client, a.server).cmp(&(b.client, b.server)))
            });
        }
        each
    }
}

/// One (client address, server endpoint) and its counts, one per candidate.
type KeyTallies = ((IpAddr, SocketAddr), Vec<Tally>);

/// [`apply_second`] of each second, in order.
fn apply_seconds(
    seconds: impl IntoIterator<Item = Vec<PortEvent>>,
    keys: &mut [KeyTallies],
    first_key: usize,
    range_size: u32,
) {
    for events in seconds {
        apply_second(events, keys, first_key, range_size);
    }
}

/// Sorts one second's events and counts them, in order, into `keys` (which start at key
/// number `first_key`).
fn apply_second(
    mut events: Vec<PortEvent>,
    keys: &mut [KeyTallies],
    first_key: usize,
    range_size: u32,
) {
    events.sort_unstable();
    for event in events {
        let candidates = usize::from(event.first)..usize::from(event.end);
        for tally in &mut keys[event.key as usize - first_key].1[candidates] {
            tally.apply(event, i64::from(range_size));
        }
    }
}

/// When the connection's client port is free again: after the client's TIME_WAIT when the
/// client closed first, at the end otherwise; `None` while still open.
fn released_ns(incarnation: &IncarnationRecord, client_time_wait_ns: i64) -> Option<i64> {
    match (incarnation.time_wait_holder, incarnation.time_wait_start_ns) {
        (TimeWaitHolder::Client, Some(start)) => Some(start.saturating_add(client_time_wait_ns)),
        _ => incarnation.end_ns,
    }
}

fn range_size(port_range: (u16, u16)) -> u32 {
    u32::from(port_range.1.saturating_sub(port_range.0)) + 1
}

/// Ports `client` held toward `server` after every change, in time order, from the kept
/// incarnation records (for charts).
pub fn port_occupancy(
    incarnations: &[IncarnationRecord],
    client: IpAddr,
    server: SocketAddr,
    client_time_wait_ns: i64,
) -> Vec<(i64, u32)> {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for incarnation in incarnations
        .iter()
        .filter(|i| i.tuple.client.ip() == client && i.tuple.server == server)
    {
        events.push((incarnation.syn_ns, 1));
        if let Some(released) = released_ns(incarnation, client_time_wait_ns) {
            events.push((released, -1));
        }
    }
    events.sort();
    let mut in_use = 0i64;
    events
        .into_iter()
        .map(|(at, delta)| {
            in_use += i64::from(delta);
            (at, u32::try_from(in_use).unwrap_or(0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{CloseKind, Closer, SideTraffic};

    const SECOND: i64 = 1_000_000_000;

    /// A connection from 203.0.113.`client`:`port` that the client or the server closed first.
    fn incarnation(client: u8, port: u16, syn_ns: i64, client_closed: bool) -> IncarnationRecord {
        let end_ns = syn_ns + SECOND;
        IncarnationRecord {
            tuple: TupleKey {
                client: SocketAddr::new([203, 0, 113, client].into(), port),
                server: "198.51.100.10:80".parse().unwrap(),
            },
            number: 1,
            syn_ns,
            handshake_ns: Some(syn_ns + 1),
            client_isn: 1,
            server_isn: 2,
            ts_negotiated: port.is_multiple_of(3),
            client: SideTraffic::default(),
            server: SideTraffic::default(),
            closed_first: if client_closed {
                Closer::Client
            } else {
                Closer::Server
            },
            close_kind: CloseKind::Fin,
            end_ns: Some(end_ns),
            time_wait_holder: if client_closed {
                TimeWaitHolder::Client
            } else {
                TimeWaitHolder::Server
            },
            time_wait_start_ns: Some(end_ns),
            time_wait_end_ns: None,
            time_wait_end: None,
            gap_to_next_ns: None,
        }
    }

    /// Candidates counted together get what each counted alone gets, where they are handed
    /// the same connections and where they are not.
    #[test]
    fn candidates_counted_together_count_as_each_alone() {
        let range = (40000, 40099);
        let mut together = PortUsage::new(range, 2);
        let mut alone = [PortUsage::new(range, 1), PortUsage::new(range, 1)];
        // 40 connects/s for 20 minutes from 3 clients; each is told when its port is taken,
        // and its record some seconds after it closed.
        // (when due, the first candidate's record, the second's), in order.
        let mut records: VecDeque<(i64, IncarnationRecord, IncarnationRecord)> = VecDeque::new();
        for i in 0..48_000_i64 {
            let syn_ns = i * SECOND / 40;
            let port = 40000 + (i % 100) as u16;
            let client = (i % 3) as u8;
            // The second candidate's view differs for one connection in seven: the server,
            // not the client, closed first (no client TIME_WAIT holds the port).
            let differs = i % 7 == 0;
            let tuple = incarnation(client, port, syn_ns, true).tuple;
            if differs {
                together.taken(0..1, tuple, syn_ns);
                together.taken(1..2, tuple, syn_ns);
            } else {
                together.taken(0..2, tuple, syn_ns);
            }
            for usage in &mut alone {
                usage.taken(0..1, tuple, syn_ns);
            }
            records.push_back((
                syn_ns + 5 * SECOND,
                incarnation(client, port, syn_ns, true),
                incarnation(client, port, syn_ns, !differs),
            ));
            while records.front().is_some_and(|(due, _, _)| *due <= syn_ns)
                && let Some((_, first, second)) = records.pop_front()
            {
                if first == second {
                    together.record(0..2, &first, 60 * SECOND);
                } else {
                    together.record(0..1, &first, 60 * SECOND);
                    together.record(1..2, &second, 60 * SECOND);
                }
                alone[0].record(0..1, &first, 60 * SECOND);
                alone[1].record(0..1, &second, 60 * SECOND);
            }
        }
        // Together on two threads, alone on one.
        let together = together.finish(60 * SECOND, true);
        let [first, second] = alone.map(|usage| usage.finish(60 * SECOND, false).remove(0));
        assert_eq!(together, [first.clone(), second.clone()]);
        assert_ne!(first, second);
        assert!(first.iter().all(|ports| ports.exhausted_ns.is_some()));
        assert!(first[0].peak_in_use > second[0].peak_in_use);
        assert_eq!(first[0].connections, 16_000);
    }
}
