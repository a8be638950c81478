//! The client side: hosts with their own TCP timestamp clocks, behind NAT addresses whose
//! public port pools hand out the lowest free port or a random one.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::params::{Params, PortOrder, TimestampMode};
use super::rng::Rng;

/// Shortest and longest round trip between the server and a host (through the NAT), in µs.
pub const RTT_MIN_US: i64 = 100;
pub const RTT_MAX_US: i64 = 5_000;
/// A host's clock rate when no rate was given: Linux's 1 kHz.
const DEFAULT_CLOCK_HZ: u32 = 1000;

/// One client host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its private address (192.0.2.x / 2001:db8:1::x); never on the wire at the server.
    pub addr: IpAddr,
    /// Index of the NAT address it leaves through.
    pub nat: usize,
    /// Sends the TCP timestamp option.
    pub timestamps: bool,
    /// Timestamp clock rate, ticks per second.
    pub clock_hz: u32,
    /// The clock's reading at time 0.
    pub clock_offset: u32,
    /// Round trip between the server and this host, µs.
    pub rtt_us: i64,
    /// Connects it started.
    pub connects: u64,
}

impl Host {
    /// TSval at `t_us` microseconds after the simulation began.
    pub fn tsval(&self, t_us: i64) -> u32 {
        let ticks = (i128::from(t_us.max(0)) * i128::from(self.clock_hz)) / 1_000_000;
        self.clock_offset.wrapping_add(ticks as u32)
    }
}

/// One public NAT address and its port pool.
#[derive(Debug, Clone)]
pub struct Nat {
    pub addr: IpAddr,
    free: FreePorts,
    pub hosts: u32,
    pub hosts_with_timestamps: u32,
    /// SYNs dropped because no public port was free.
    pub syns_dropped: u64,
}

/// A NAT address's free public ports, kept the way its port order needs them.
#[derive(Debug, Clone)]
enum FreePorts {
    Lowest(BTreeSet<u16>),
    /// Unordered; a random index is taken out with `swap_remove`, so each pick is O(1).
    Random {
        ports: Vec<u16>,
        rng: Rng,
    },
}

impl Nat {
    fn new(addr: IpAddr, ports: (u16, u16), order: PortOrder, rng: Rng) -> Self {
        let all = ports.0..=ports.1;
        Nat {
            addr,
            free: match order {
                PortOrder::Lowest => FreePorts::Lowest(all.collect()),
                PortOrder::Random => FreePorts::Random {
                    ports: all.collect(),
                    rng,
                },
            },
            hosts: 0,
            hosts_with_timestamps: 0,
            syns_dropped: 0,
        }
    }

    /// A mapping for a new connection: a free public port in the pool's order, if any.
    pub fn allocate(&mut self) -> Option<u16> {
        match &mut self.free {
            FreePorts::Lowest(free) => free.pop_first(),
            FreePorts::Random { ports, rng } => {
                if ports.is_empty() {
                    return None;
                }
                let pick = rng.below(ports.len() as u64) as usize;
                Some(ports.swap_remove(pick))
            }
        }
    }

    /// The connection using `port` is over: the port may be handed out at once.
    pub fn release(&mut self, port: u16) {
        match &mut self.free {
            FreePorts::Lowest(free) => {
                free.insert(port);
            }
            FreePorts::Random { ports, .. } => ports.push(port),
        }
    }
}

/// The `n`-th (0-based) address of a documentation range: 192.0.2.0/24 style for IPv4
/// (`n + 1` in the last octet), `prefix::(n + 1)` for IPv6.
fn nth_addr(v4_prefix: [u8; 3], v6_prefix: [u16; 3], ipv6: bool, n: u32) -> IpAddr {
    if ipv6 {
        let [a, b, c] = v6_prefix;
        IpAddr::V6(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, (n + 1) as u16))
    } else {
        let [a, b, c] = v4_prefix;
        IpAddr::V4(Ipv4Addr::new(a, b, c, (n + 1) as u8))
    }
}

/// The NAT's public addresses: 203.0.113.1, .2 ... (2001:db8:2::1, ::2 ... for IPv6),
/// skipping the server's own address.
pub fn nat_addresses(params: &Params) -> Vec<IpAddr> {
    let ipv6 = params.server_addr.is_ipv6();
    (0..)
        .map(|n| nth_addr([203, 0, 113], [0x2001, 0xdb8, 2], ipv6, n))
        .filter(|addr| *addr != params.server_addr.ip())
        .take(params.nat_addrs as usize)
        .collect()
}

/// Builds the hosts and the NAT addresses they sit behind (host `i` uses NAT address
/// `i mod nat_addrs`).
pub fn build(params: &Params, rng: &mut Rng) -> (Vec<Host>, Vec<Nat>) {
    let ipv6 = params.server_addr.is_ipv6();
    let mut nats: Vec<Nat> = nat_addresses(params)
        .into_iter()
        .enumerate()
        .map(|(i, addr)| {
            // Each address its own stream, so adding addresses leaves the others' picks alone.
            let rng = Rng::new(params.seed, 0x4a7_0000 + i as u64);
            Nat::new(addr, params.ports, params.port_order, rng)
        })
        .collect();
    let base = rng.next_u32();
    let mut hosts = Vec::with_capacity(params.hosts as usize);
    for i in 0..params.hosts {
        let timestamps = match params.timestamps {
            TimestampMode::On => true,
            TimestampMode::Off => false,
            TimestampMode::Mixed => i % 2 == 0,
        };
        let clock_offset = match params.clock_spread {
            Some(spread) => base.wrapping_add(rng.below(u64::from(spread) + 1) as u32),
            None => rng.next_u32(),
        };
        let nat = i as usize % nats.len().max(1);
        if let Some(n) = nats.get_mut(nat) {
            n.hosts += 1;
            n.hosts_with_timestamps += u32::from(timestamps);
        }
        hosts.push(Host {
            addr: nth_addr([192, 0, 2], [0x2001, 0xdb8, 1], ipv6, i),
            nat,
            timestamps,
            clock_hz: (i as usize)
                .checked_rem(params.clock_rates.len())
                .and_then(|k| params.clock_rates.get(k).copied())
                .unwrap_or(DEFAULT_CLOCK_HZ),
            clock_offset,
            rtt_us: rng.between(RTT_MIN_US, RTT_MAX_US),
            connects: 0,
        });
    }
    (hosts, nats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::params::RawParams;

    fn params(edit: impl FnOnce(&mut RawParams)) -> Params {
        let mut raw = RawParams::default();
        edit(&mut raw);
        Params::from_raw(&raw).unwrap()
    }

    #[test]
    fn nat_hands_out_the_lowest_free_port() {
        let mut nat = Nat::new(
            "203.0.113.1".parse().unwrap(),
            (40000, 40002),
            PortOrder::Lowest,
            Rng::new(1, 1),
        );
        assert_eq!(nat.allocate(), Some(40000));
        assert_eq!(nat.allocate(), Some(40001));
        assert_eq!(nat.allocate(), Some(40002));
        assert_eq!(nat.allocate(), None);
        nat.release(40001);
        nat.release(40000);
        assert_eq!(nat.allocate(), Some(40000));
        assert_eq!(nat.allocate(), Some(40001));
    }

    #[test]
    fn random_order_hands_out_every_free_port_once_and_takes_them_back() {
        let mut nat = Nat::new(
            "203.0.113.1".parse().unwrap(),
            (40000, 40999),
            PortOrder::Random,
            Rng::new(1, 1),
        );
        let first: Vec<u16> = std::iter::from_fn(|| nat.allocate()).collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (40000..=40999).collect::<Vec<u16>>());
        // Not the lowest-first order: the first ten picks are spread over the pool.
        assert_ne!(first[..10], sorted[..10]);
        nat.release(40500);
        assert_eq!(nat.allocate(), Some(40500));
        assert_eq!(nat.allocate(), None);
    }

    #[test]
    fn hosts_round_robin_over_nat_addresses_skipping_the_server() {
        let p = params(|r| {
            r.hosts = "5".into();
            r.nat_addrs = "2".into();
            r.server_addr = "203.0.113.2:80".into();
            r.timestamps = "mixed".into();
            r.clock_rates = "1000,250".into();
        });
        let (hosts, nats) = build(&p, &mut Rng::new(1, 0));
        let addrs: Vec<String> = nats.iter().map(|n| n.addr.to_string()).collect();
        assert_eq!(addrs, ["203.0.113.1", "203.0.113.3"]);
        assert_eq!(nats[0].hosts, 3);
        assert_eq!(nats[1].hosts, 2);
        // Hosts 0, 2, 4 have timestamps; they all use NAT address 0.
        assert_eq!(nats[0].hosts_with_timestamps, 3);
        assert_eq!(nats[1].hosts_with_timestamps, 0);
        let rates: Vec<u32> = hosts.iter().map(|h| h.clock_hz).collect();
        assert_eq!(rates, [1000, 250, 1000, 250, 1000]);
        assert_eq!(hosts[4].addr.to_string(), "192.0.2.5");
        assert!(
            hosts
                .iter()
                .all(|h| (RTT_MIN_US..=RTT_MAX_US).contains(&h.rtt_us))
        );
    }

    #[test]
    fn ipv6_hosts_and_nat_addresses() {
        let p = params(|r| {
            r.server_addr = "[2001:db8:2::10]:80".into();
            r.nat_addrs = "2".into();
        });
        let (hosts, nats) = build(&p, &mut Rng::new(1, 0));
        assert_eq!(hosts[3].addr.to_string(), "2001:db8:1::4");
        assert_eq!(nats[1].addr.to_string(), "2001:db8:2::2");
    }

    #[test]
    fn clock_spread_keeps_offsets_close() {
        let p = params(|r| {
            r.hosts = "50".into();
            r.clock_spread = Some("10".into());
        });
        let (hosts, _) = build(&p, &mut Rng::new(9, 0));
        let first = hosts[0].clock_offset;
        for h in &hosts {
            let d = h.clock_offset.wrapping_sub(first) as i32;
            assert!((-10..=10).contains(&d), "{d}");
        }
    }

    #[test]
    fn clocks_tick_at_their_rate_and_wrap() {
        let host = Host {
            addr: "192.0.2.1".parse().unwrap(),
            nat: 0,
            timestamps: true,
            clock_hz: 250,
            clock_offset: u32::MAX - 1,
            rtt_us: 1000,
            connects: 0,
        };
        assert_eq!(host.tsval(0), u32::MAX - 1);
        assert_eq!(host.tsval(3_999), u32::MAX - 1);
        assert_eq!(host.tsval(4_000), u32::MAX);
        assert_eq!(host.tsval(8_000), 0);
        assert_eq!(host.tsval(1_000_000), 248);
    }
}
