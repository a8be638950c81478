//! The simulation's parameters: parsed from the command line's text, checked, with one-line
//! messages for anything out of range.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// No capture larger than this is written.
pub const MAX_PACKETS: u64 = 100_000_000;
/// The fewest packets a connect that completes puts on the wire (client closing first).
pub const MIN_PACKETS_PER_CONNECT: u64 = 9;

pub const DEFAULT_HOSTS: &str = "4";
pub const DEFAULT_NAT_ADDRS: &str = "1";
pub const DEFAULT_PORTS: &str = "40000-40002";
pub const DEFAULT_RATE: &str = "10";
pub const DEFAULT_DURATION: &str = "10";
pub const DEFAULT_ARRIVALS: &str = "poisson";
pub const DEFAULT_PORT_ORDER: &str = "lowest";
pub const DEFAULT_CLOCK_OFFSETS: &str = "per-host";
pub const DEFAULT_CLOSE: &str = "server";
pub const DEFAULT_TIMESTAMPS: &str = "on";
pub const DEFAULT_CLOCK_RATES: &str = "1000";
pub const DEFAULT_SERVER: &str = "linux";
pub const DEFAULT_SERVER_ADDR: &str = "203.0.113.10:80";
pub const DEFAULT_SEED: &str = "1";

/// Which side sends the first FIN (and so holds TIME_WAIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseSide {
    Server,
    Client,
}

/// Which hosts send the TCP timestamp option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampMode {
    On,
    Off,
    /// Every second host (the 2nd, 4th ...) has timestamps off.
    Mixed,
}

/// How connects are spread over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// A Poisson process at the rate; each connect from a host chosen at random.
    Poisson,
    /// One connect every 1/rate seconds from t = 0, hosts taking turns in order.
    Fixed,
}

/// Which free public port a NAT address hands to a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOrder {
    /// The lowest free port: a port is reused as soon as it is free (the worst case for PAWS).
    Lowest,
    /// A free port chosen at random, as `iptables -j MASQUERADE --random-fully` does: reuse
    /// within TIME_WAIT becomes rare once the pool is large against the connect rate.
    Random,
}

/// How a host offsets its TCP timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockOffsets {
    /// One offset per host (Linux 4.10 to 6.x: per address pair).
    PerHost,
    /// A random offset per connection, as recent Linux derives it from the whole 4-tuple:
    /// every connection is a clock of its own.
    PerConnection,
}

impl ClockOffsets {
    pub fn name(self) -> &'static str {
        match self {
            ClockOffsets::PerHost => "per-host",
            ClockOffsets::PerConnection => "per-connection",
        }
    }
}

impl PortOrder {
    pub fn name(self) -> &'static str {
        match self {
            PortOrder::Lowest => "lowest",
            PortOrder::Random => "random",
        }
    }
}

/// The server's kernel behaviour: the ground truth the capture is generated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Current Linux (4.12 and later): TIME_WAIT per tuple, PAWS, challenge ACKs.
    Linux,
    /// Linux 2.6.32-4.11 with net.ipv4.tcp_tw_recycle = 1: per-source-IP timestamp check.
    TwRecycle,
    /// As `TwRecycle`, with per-source-IP timestamps ignored once older than 24 days.
    TwRecycle24Day,
    /// Current Linux with net.ipv4.tcp_timestamps = 0: TIME_WAIT judged by sequence only.
    NoTimestamps,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Linux => "linux",
            ServerKind::TwRecycle => "tw-recycle",
            ServerKind::TwRecycle24Day => "tw-recycle-24day",
            ServerKind::NoTimestamps => "no-timestamps",
        }
    }

    pub fn recycles(self) -> bool {
        matches!(self, ServerKind::TwRecycle | ServerKind::TwRecycle24Day)
    }
}

impl CloseSide {
    pub fn name(self) -> &'static str {
        match self {
            CloseSide::Server => "server",
            CloseSide::Client => "client",
        }
    }
}

impl TimestampMode {
    pub fn name(self) -> &'static str {
        match self {
            TimestampMode::On => "on",
            TimestampMode::Off => "off",
            TimestampMode::Mixed => "mixed",
        }
    }
}

impl Arrivals {
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Poisson => "poisson",
            Arrivals::Fixed => "fixed",
        }
    }
}

/// The parameters as text, as the command line gives them.
#[derive(Debug, Clone)]
pub struct RawParams {
    pub hosts: String,
    pub nat_addrs: String,
    pub ports: String,
    pub port_order: String,
    pub rate: String,
    pub duration: String,
    pub arrivals: String,
    pub close: String,
    pub timestamps: String,
    pub clock_rates: String,
    pub clock_spread: Option<String>,
    pub clock_offsets: String,
    pub server: String,
    pub server_addr: String,
    pub seed: String,
}

impl Default for RawParams {
    fn default() -> Self {
        RawParams {
            hosts: DEFAULT_HOSTS.into(),
            nat_addrs: DEFAULT_NAT_ADDRS.into(),
            ports: DEFAULT_PORTS.into(),
            port_order: DEFAULT_PORT_ORDER.into(),
            rate: DEFAULT_RATE.into(),
            duration: DEFAULT_DURATION.into(),
            arrivals: DEFAULT_ARRIVALS.into(),
            close: DEFAULT_CLOSE.into(),
            timestamps: DEFAULT_TIMESTAMPS.into(),
            clock_rates: DEFAULT_CLOCK_RATES.into(),
            clock_spread: None,
            clock_offsets: DEFAULT_CLOCK_OFFSETS.into(),
            server: DEFAULT_SERVER.into(),
            server_addr: DEFAULT_SERVER_ADDR.into(),
            seed: DEFAULT_SEED.into(),
        }
    }
}

/// Checked parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub hosts: u32,
    pub nat_addrs: u32,
    /// The NAT's public port pool, inclusive.
    pub ports: (u16, u16),
    pub port_order: PortOrder,
    /// Connects per second.
    pub rate: f64,
    /// Connects start within [0, duration).
    pub duration_secs: f64,
    pub arrivals: Arrivals,
    pub close: CloseSide,
    pub timestamps: TimestampMode,
    /// TCP timestamp clock rates in Hz, cycled over the hosts.
    pub clock_rates: Vec<u32>,
    /// When set, the hosts' clock offsets lie within this many ticks of each other.
    pub clock_spread: Option<u32>,
    pub clock_offsets: ClockOffsets,
    pub server: ServerKind,
    pub server_addr: SocketAddr,
    pub seed: u64,
}

/// A parameter that is out of range or does not parse: one line, naming the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

fn bad(option: &str, value: &str, why: &str) -> ParamError {
    ParamError(format!("{option}: `{value}` {why}"))
}

fn integer<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
    option: &str,
    value: &str,
    lo: T,
    hi: T,
) -> Result<T, ParamError> {
    match value.trim().parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(bad(
            option,
            value,
            &format!("is not a whole number from {lo} to {hi}"),
        )),
    }
}

fn positive(option: &str, value: &str, max: f64) -> Result<f64, ParamError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= max => Ok(v),
        _ => Err(bad(
            option,
            value,
            &format!("is not a positive number up to {max}"),
        )),
    }
}

fn parse_ports(value: &str) -> Result<(u16, u16), ParamError> {
    let why = "is not a port range LO-HI with 1 <= LO <= HI <= 65535";
    let (lo, hi) = value
        .split_once('-')
        .ok_or_else(|| bad("--ports", value, why))?;
    match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
        (Ok(lo), Ok(hi)) if lo >= 1 && lo <= hi => Ok((lo, hi)),
        _ => Err(bad("--ports", value, why)),
    }
}

fn parse_clock_rates(value: &str) -> Result<Vec<u32>, ParamError> {
    let why = "is not a comma-separated list of clock rates in Hz (1 to 1000000)";
    let rates: Vec<u32> = value
        .split(',')
        .map(|r| match r.trim().parse::<u32>() {
            Ok(v) if (1..=1_000_000).contains(&v) => Ok(v),
            _ => Err(bad("--clock-rates", value, why)),
        })
        .collect::<Result<_, _>>()?;
    if rates.is_empty() {
        return Err(bad("--clock-rates", value, why));
    }
    Ok(rates)
}

/// How many public addresses the NAT can have (203.0.113.1-254, 2001:db8:2::1-ffff), less
/// the server's own address when it is one of them.
pub fn max_nat_addrs(server_addr: &SocketAddr) -> u32 {
    match server_addr.ip() {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            254 - u32::from([a, b, c] == [203, 0, 113] && (1..=254).contains(&d))
        }
        IpAddr::V6(ip) => {
            let s = ip.segments();
            let inside = s[..7] == [0x2001, 0xdb8, 2, 0, 0, 0, 0] && s[7] != 0;
            0xffff - u32::from(inside)
        }
    }
}

/// How many hosts fit in the family's documentation range (192.0.2.x, 2001:db8:1::x).
pub fn max_hosts(server_addr: &SocketAddr) -> u32 {
    match server_addr.ip() {
        IpAddr::V4(_) => 254,
        IpAddr::V6(_) => 0xffff,
    }
}

impl Params {
    pub fn from_raw(raw: &RawParams) -> Result<Params, ParamError> {
        let server_addr: SocketAddr = raw.server_addr.trim().parse().map_err(|_| {
            bad(
                "--server-addr",
                &raw.server_addr,
                "is not ADDR:PORT (e.g. 203.0.113.10:80 or [2001:db8:2::10]:80)",
            )
        })?;
        if server_addr.port() == 0 {
            return Err(bad("--server-addr", &raw.server_addr, "has port 0"));
        }
        let hosts = integer("--hosts", &raw.hosts, 1, max_hosts(&server_addr))?;
        let nat_addrs = integer(
            "--nat-addrs",
            &raw.nat_addrs,
            1,
            max_nat_addrs(&server_addr),
        )?;
        if nat_addrs > hosts {
            return Err(ParamError(format!(
                "--nat-addrs: {nat_addrs} NAT addresses for {hosts} hosts would leave some with no host behind them"
            )));
        }
        let ports = parse_ports(&raw.ports)?;
        let port_order = match raw.port_order.trim() {
            "lowest" => PortOrder::Lowest,
            "random" => PortOrder::Random,
            other => return Err(bad("--port-order", other, "is not lowest or random")),
        };
        let clock_offsets = match raw.clock_offsets.trim() {
            "per-host" => ClockOffsets::PerHost,
            "per-connection" => ClockOffsets::PerConnection,
            other => {
                return Err(bad(
                    "--clock-offsets",
                    other,
                    "is not per-host or per-connection",
                ));
            }
        };
        let rate = positive("--rate", &raw.rate, 1e6)?;
        let duration_secs = positive("--duration", &raw.duration, 1e8)?;
        let arrivals = match raw.arrivals.trim() {
            "poisson" => Arrivals::Poisson,
            "fixed" => Arrivals::Fixed,
            other => return Err(bad("--arrivals", other, "is not poisson or fixed")),
        };
        let close = match raw.close.trim() {
            "server" => CloseSide::Server,
            "client" => CloseSide::Client,
            other => return Err(bad("--close", other, "is not server or client")),
        };
        let timestamps = match raw.timestamps.trim() {
            "on" => TimestampMode::On,
            "off" => TimestampMode::Off,
            "mixed" => TimestampMode::Mixed,
            other => return Err(bad("--timestamps", other, "is not on, off or mixed")),
        };
        let clock_rates = parse_clock_rates(&raw.clock_rates)?;
        let clock_spread = raw
            .clock_spread
            .as_deref()
            .map(|s| integer("--clock-spread", s, 0, u32::MAX))
            .transpose()?;
        let server = match raw.server.trim() {
            "linux" => ServerKind::Linux,
            "tw-recycle" => ServerKind::TwRecycle,
            "tw-recycle-24day" => ServerKind::TwRecycle24Day,
            "no-timestamps" => ServerKind::NoTimestamps,
            other => {
                return Err(bad(
                    "--server",
                    other,
                    "is not linux, tw-recycle, tw-recycle-24day or no-timestamps",
                ));
            }
        };
        let seed = integer("--seed", &raw.seed, 0, u64::MAX)?;
        let params = Params {
            hosts,
            nat_addrs,
            ports,
            port_order,
            rate,
            duration_secs,
            arrivals,
            close,
            timestamps,
            clock_rates,
            clock_spread,
            clock_offsets,
            server,
            server_addr,
            seed,
        };
        let expected = params
            .expected_connects()
            .saturating_mul(MIN_PACKETS_PER_CONNECT);
        if expected > MAX_PACKETS {
            return Err(ParamError(format!(
                "--rate {} x --duration {} asks for about {} connects, {expected} packets or more; at most {MAX_PACKETS} packets are written",
                raw.rate.trim(),
                raw.duration.trim(),
                params.expected_connects()
            )));
        }
        Ok(params)
    }

    /// Connects the arrival process is expected to start (exact for fixed arrivals).
    pub fn expected_connects(&self) -> u64 {
        (self.rate * self.duration_secs).ceil() as u64
    }

    /// Time between fixed arrivals, in microseconds (at least 1).
    pub fn fixed_gap_us(&self) -> f64 {
        (1e6 / self.rate).max(1.0)
    }

    pub fn duration_us(&self) -> i64 {
        (self.duration_secs * 1e6).round() as i64
    }

    pub fn ports_text(&self) -> String {
        format!("{}-{}", self.ports.0, self.ports.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut RawParams)) -> Result<Params, ParamError> {
        let mut raw = RawParams::default();
        edit(&mut raw);
        Params::from_raw(&raw)
    }

    #[test]
    fn defaults_parse() {
        let p = with(|_| {}).unwrap();
        assert_eq!(p.hosts, 4);
        assert_eq!(p.ports, (40000, 40002));
        assert_eq!(p.clock_rates, vec![1000]);
        assert_eq!(p.server, ServerKind::Linux);
        assert_eq!(p.clock_spread, None);
        assert_eq!(p.expected_connects(), 100);
    }

    #[test]
    fn lists_ranges_and_names_parse() {
        let p = with(|r| {
            r.clock_rates = "1000, 250,10".into();
            r.ports = "1-65535".into();
            r.server = "tw-recycle-24day".into();
            r.timestamps = "mixed".into();
            r.server_addr = "[2001:db8:2::10]:443".into();
            r.hosts = "1000".into();
            r.clock_spread = Some("0".into());
        })
        .unwrap();
        assert_eq!(p.clock_rates, vec![1000, 250, 10]);
        assert_eq!(p.ports, (1, 65535));
        assert_eq!(p.server, ServerKind::TwRecycle24Day);
        assert_eq!(p.timestamps, TimestampMode::Mixed);
        assert_eq!(p.hosts, 1000);
        assert_eq!(p.clock_spread, Some(0));
    }

    type Edit = fn(&mut RawParams);

    #[test]
    fn bad_values_name_their_option_on_one_line() {
        let cases: Vec<(Edit, &str)> = vec![
            (|r| r.hosts = "0".into(), "--hosts"),
            (|r| r.hosts = "255".into(), "--hosts"),
            (|r| r.nat_addrs = "5".into(), "--nat-addrs"),
            (|r| r.ports = "5-4".into(), "--ports"),
            (|r| r.ports = "0-4".into(), "--ports"),
            (|r| r.ports = "40000".into(), "--ports"),
            (|r| r.rate = "0".into(), "--rate"),
            (|r| r.rate = "NaN".into(), "--rate"),
            (|r| r.duration = "-1".into(), "--duration"),
            (|r| r.close = "both".into(), "--close"),
            (|r| r.timestamps = "yes".into(), "--timestamps"),
            (|r| r.clock_rates = "1000,,10".into(), "--clock-rates"),
            (|r| r.clock_rates = "0".into(), "--clock-rates"),
            (|r| r.clock_spread = Some("-3".into()), "--clock-spread"),
            (|r| r.server = "bsd".into(), "--server"),
            (|r| r.server_addr = "203.0.113.10".into(), "--server-addr"),
            (|r| r.server_addr = "203.0.113.10:0".into(), "--server-addr"),
            (|r| r.seed = "x".into(), "--seed"),
            (|r| r.arrivals = "burst".into(), "--arrivals"),
        ];
        for (edit, option) in cases {
            let err = with(edit).unwrap_err();
            assert!(err.0.starts_with(option), "{err}");
            assert!(!err.0.contains('\n'), "{err}");
        }
    }

    #[test]
    fn too_many_packets_are_refused_up_front() {
        let err = with(|r| {
            r.rate = "100000".into();
            r.duration = "112".into();
        })
        .unwrap_err();
        assert!(err.0.contains("100000000"), "{err}");
        // 11.1 million connects at 9 packets or more each stays under the bound.
        assert!(
            with(|r| {
                r.rate = "100000".into();
                r.duration = "111".into();
            })
            .is_ok()
        );
    }
}
