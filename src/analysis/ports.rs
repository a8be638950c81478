//! Is the client side running out of ports? A client that closes first keeps each 4-tuple in
//! TIME_WAIT for 60 s, so toward one server ip:port it can open at most (port range size)
//! connections per TIME_WAIT length; beyond that connect() fails with EADDRNOTAVAIL and no SYN
//! is ever sent. Counted here from the incarnations the capture shows.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use crate::fastmap::FastMap;
use crate::flow::{IncarnationRecord, TimeWaitHolder, TupleKey};

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

/// A port taken (+1) or released (-1) at a time, for one (client address, server endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PortEvent {
    at_ns: i64,
    /// -1 sorts before +1: on a tie the port is free again before it is taken.
    delta: i8,
    /// Index into [`PortUsage::keys`].
    key: u32,
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

/// Pending events are grouped by the second they fall in; a second is sorted and applied
/// whole once no event can still arrive in it (cheaper than a heap of every event).
const BUCKET_NS: i64 = 1_000_000_000;

/// Counts, per (client address, server endpoint), the ports held over time, streaming: events
/// wait until no earlier one can still come, so memory follows the last few minutes of
/// connections, not the capture.
#[derive(Debug, Clone, Default)]
pub struct PortUsage {
    index: FastMap<(IpAddr, SocketAddr), u32>,
    keys: Vec<((IpAddr, SocketAddr), Tally)>,
    pending: BTreeMap<i64, Vec<PortEvent>>,
    newest_ns: i64,
    range_size: u32,
}

impl PortUsage {
    pub fn new(port_range: (u16, u16)) -> Self {
        PortUsage {
            range_size: range_size(port_range),
            ..PortUsage::default()
        }
    }

    fn key(&mut self, client: IpAddr, server: SocketAddr) -> u32 {
        let next = self.keys.len() as u32;
        let key = *self.index.entry((client, server)).or_insert(next);
        if key == next {
            self.keys.push(((client, server), Tally::default()));
        }
        key
    }

    fn push(&mut self, at_ns: i64, delta: i8, key: u32) {
        let bucket = at_ns.div_euclid(BUCKET_NS);
        self.pending
            .entry(bucket)
            .or_default()
            .push(PortEvent { at_ns, delta, key });
        if at_ns > self.newest_ns {
            self.newest_ns = at_ns;
            self.apply_until(self.newest_ns.saturating_sub(EVENT_DELAY_NS));
        }
    }

    /// The server answered a SYN on `tuple` first sent at `syn_ns`: a port is held.
    pub fn taken(&mut self, tuple: TupleKey, syn_ns: i64) {
        let key = self.key(tuple.client.ip(), tuple.server);
        self.keys[key as usize].1.connections += 1;
        self.push(syn_ns, 1, key);
    }

    /// An incarnation is over. `client_time_wait_ns`: how long the client holds a port after
    /// closing first.
    pub fn record(&mut self, incarnation: &IncarnationRecord, client_time_wait_ns: i64) {
        let key = self.key(incarnation.tuple.client.ip(), incarnation.tuple.server);
        let tally = &mut self.keys[key as usize].1;
        tally.client_time_waits +=
            u64::from(incarnation.time_wait_holder == TimeWaitHolder::Client);
        tally.ts_negotiated += u64::from(incarnation.ts_negotiated);
        if let Some(released) = released_ns(incarnation, client_time_wait_ns) {
            self.push(released, -1, key);
        }
    }

    /// Applies, in time order, the pending seconds that end at or before `until_ns`.
    fn apply_until(&mut self, until_ns: i64) {
        while let Some(entry) = self.pending.first_entry() {
            let bucket_end = entry.key().saturating_add(1).saturating_mul(BUCKET_NS);
            if bucket_end > until_ns && until_ns != i64::MAX {
                break;
            }
            let mut events = entry.remove();
            events.sort_unstable();
            for event in events {
                self.apply(event);
            }
        }
    }

    fn apply(&mut self, event: PortEvent) {
        let range_size = i64::from(self.range_size);
        let tally = &mut self.keys[event.key as usize].1;
        tally.in_use += i64::from(event.delta);
        if tally.in_use > tally.peak {
            tally.peak = tally.in_use;
            tally.peak_ns = Some(event.at_ns);
        }
        if tally.exhausted_ns.is_none() && tally.in_use >= range_size {
            tally.exhausted_ns = Some(event.at_ns);
        }
        if event.delta > 0 {
            let recent = &mut tally.recent_takes;
            recent.push_back(event.at_ns);
            while recent
                .front()
                .is_some_and(|&first| first.saturating_add(RATE_WINDOW_NS) <= event.at_ns)
            {
                recent.pop_front();
            }
            tally.busiest = tally.busiest.max(recent.len());
        }
    }

    /// Per client address and server endpoint, busiest first.
    pub fn finish(mut self, time_wait_ns: i64) -> Vec<ClientPorts> {
        self.apply_until(i64::MAX);
        let range_size = self.range_size;
        let mut out: Vec<ClientPorts> = self
            .keys
            .into_iter()
            .map(|((client, server), tally)| ClientPorts {
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
            })
            .collect();
        out.sort_by(|a, b| {
            b.peak_in_use
                .cmp(&a.peak_in_use)
                .then((a.client, a.server).cmp(&(b.client, b.server)))
        });
        out
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
