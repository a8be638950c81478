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

/// Collects, per (client address, server endpoint), when each port was taken and released.
#[derive(Debug, Clone, Default)]
pub struct PortUsage {
    /// (start, release, left client TIME_WAIT, timestamps negotiated) per connection.
    held: HashMap<(IpAddr, SocketAddr), Vec<(i64, Option<i64>, bool, bool)>>,
}

impl PortUsage {
    /// `client_time_wait_ns`: how long the client holds a port after closing first.
    pub fn record(&mut self, incarnation: &IncarnationRecord, client_time_wait_ns: i64) {
        let client_tw = incarnation.time_wait_holder == TimeWaitHolder::Client;
        let release = match (
            client_tw,
            incarnation.time_wait_start_ns,
            incarnation.end_ns,
        ) {
            (true, Some(start), _) => Some(start + client_time_wait_ns),
            (_, _, end) => end,
        };
        self.held
            .entry((incarnation.tuple.client.ip(), incarnation.tuple.server))
            .or_default()
            .push((
                incarnation.syn_ns,
                release,
                client_tw,
                incarnation.ts_negotiated,
            ));
    }

    /// Per client address and server endpoint, busiest first.
    pub fn finish(self, port_range: (u16, u16), time_wait_ns: i64) -> Vec<ClientPorts> {
        let range_size = u32::from(port_range.1.saturating_sub(port_range.0)) + 1;
        let window_secs = time_wait_ns as f64 / 1e9;
        let mut out: Vec<ClientPorts> = self
            .held
            .into_iter()
            .map(|((client, server), mut held)| {
                held.sort_by_key(|h| h.0);
                // Sweep: +1 when a port is taken, -1 when released (releases first on ties).
                let mut events: Vec<(i64, i32)> = Vec::with_capacity(held.len() * 2);
                for (start, release, _, _) in &held {
                    events.push((*start, 1));
                    if let Some(release) = release {
                        events.push((*release, -1));
                    }
                }
                events.sort();
                let (mut in_use, mut peak, mut peak_ns, mut exhausted_ns) =
                    (0i64, 0i64, None, None);
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
                let starts: Vec<i64> = held.iter().map(|h| h.0).collect();
                let mut busiest = 0usize;
                let mut first = 0usize;
                for (last, at) in starts.iter().enumerate() {
                    while starts[first] + RATE_WINDOW_NS <= *at {
                        first += 1;
                    }
                    busiest = busiest.max(last + 1 - first);
                }
                ClientPorts {
                    client,
                    server,
                    range_size,
                    connections: held.len() as u64,
                    client_time_waits: held.iter().filter(|h| h.2).count() as u64,
                    ts_negotiated: held.iter().filter(|h| h.3).count() as u64,
                    peak_in_use: peak as u32,
                    peak_ns,
                    exhausted_ns,
                    peak_rate_per_s: busiest as f64 / (RATE_WINDOW_NS as f64 / 1e9),
                    sustainable_rate_per_s: f64::from(range_size) / window_secs,
                }
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
