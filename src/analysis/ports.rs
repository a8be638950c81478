//! Is the client side running out of ports? A client that closes first keeps each 4-tuple in
//! TIME_WAIT for 60 s, so toward one server ip:port it can open at most (port range size)
//! connections per TIME_WAIT length; beyond that connect() fails with EADDRNOTAVAIL and no SYN
//! is ever sent. Counted here from the incarnations the capture shows.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::flow::{IncarnationRecord, TimeWaitHolder};

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

/// One connection's hold on a client port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeldPort {
    taken_ns: i64,
    /// `None`: still held when the capture ended.
    released_ns: Option<i64>,
    client_time_wait: bool,
    ts_negotiated: bool,
}

/// Collects, per (client address, server endpoint), when each port was taken and released.
#[derive(Debug, Clone, Default)]
pub struct PortUsage {
    held: HashMap<(IpAddr, SocketAddr), Vec<HeldPort>>,
}

impl PortUsage {
    /// `client_time_wait_ns`: how long the client holds a port after closing first.
    pub fn record(&mut self, incarnation: &IncarnationRecord, client_time_wait_ns: i64) {
        let client_time_wait = incarnation.time_wait_holder == TimeWaitHolder::Client;
        let released_ns = match (client_time_wait, incarnation.time_wait_start_ns) {
            (true, Some(start)) => Some(start + client_time_wait_ns),
            _ => incarnation.end_ns,
        };
        self.held
            .entry((incarnation.tuple.client.ip(), incarnation.tuple.server))
            .or_default()
            .push(HeldPort {
                taken_ns: incarnation.syn_ns,
                released_ns,
                client_time_wait,
                ts_negotiated: incarnation.ts_negotiated,
            });
    }

    /// Ports held by `client` toward `server` after every change, in time order.
    pub fn occupancy(&self, client: IpAddr, server: SocketAddr) -> Vec<(i64, u32)> {
        let Some(held) = self.held.get(&(client, server)) else {
            return Vec::new();
        };
        let mut in_use = 0i64;
        let events = take_and_release(held);
        events
            .into_iter()
            .map(|(at, delta)| {
                in_use += i64::from(delta);
                (at, u32::try_from(in_use).unwrap_or(0))
            })
            .collect()
    }

    /// Per client address and server endpoint, busiest first.
    pub fn finish(self, port_range: (u16, u16), time_wait_ns: i64) -> Vec<ClientPorts> {
        let range_size = u32::from(port_range.1.saturating_sub(port_range.0)) + 1;
        let mut out: Vec<ClientPorts> = self
            .held
            .into_iter()
            .map(|((client, server), held)| {
                client_ports(client, server, held, range_size, time_wait_ns)
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

/// +1 when a port is taken, -1 when it is released, in time order (releases first on ties).
fn take_and_release(held: &[HeldPort]) -> Vec<(i64, i32)> {
    let mut events: Vec<(i64, i32)> = Vec::with_capacity(held.len() * 2);
    for hold in held {
        events.push((hold.taken_ns, 1));
        if let Some(released) = hold.released_ns {
            events.push((released, -1));
        }
    }
    events.sort();
    events
}

fn client_ports(
    client: IpAddr,
    server: SocketAddr,
    mut held: Vec<HeldPort>,
    range_size: u32,
    time_wait_ns: i64,
) -> ClientPorts {
    held.sort_by_key(|h| h.taken_ns);
    let events = take_and_release(&held);
    let (mut in_use, mut peak, mut peak_ns, mut exhausted_ns) = (0i64, 0i64, None, None);
    for (at, delta) in events {
        in_use += i64::from(delta);
        if in_use > peak {
            peak = in_use;
            peak_ns = Some(at);
        }
        if exhausted_ns.is_none() && in_use >= i64::from(range_size) {
            exhausted_ns = Some(at);
        }
    }
    // The busiest 10 s of connection starts.
    let mut busiest = 0usize;
    let mut first = 0usize;
    for (last, hold) in held.iter().enumerate() {
        while held[first].taken_ns + RATE_WINDOW_NS <= hold.taken_ns {
            first += 1;
        }
        busiest = busiest.max(last + 1 - first);
    }
    ClientPorts {
        client,
        server,
        range_size,
        connections: held.len() as u64,
        client_time_waits: held.iter().filter(|h| h.client_time_wait).count() as u64,
        ts_negotiated: held.iter().filter(|h| h.ts_negotiated).count() as u64,
        peak_in_use: u32::try_from(peak).unwrap_or(u32::MAX),
        peak_ns,
        exhausted_ns,
        peak_rate_per_s: busiest as f64 / (RATE_WINDOW_NS as f64 / 1e9),
        sustainable_rate_per_s: f64::from(range_size) / (time_wait_ns as f64 / 1e9),
    }
}
