//! The typed TCP record every analysis stage works on.

use std::fmt;
use std::net::SocketAddr;

/// TCP header flags, as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::ACK, '.'),
        ];
        for (bit, c) in names {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// RFC 7323 timestamp option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub val: u32,
    pub ecr: u32,
}

/// The TCP options pawscope cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamp: Option<Timestamp>,
}

/// One TCP segment as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Payload bytes on the wire (from the IP length, not from what the snaplen kept).
    pub payload_len: u32,
    pub window: u16,
    pub options: TcpOptions,
}

impl Segment {
    /// Sequence space the segment occupies: SYN and FIN count one each (RFC 9293 3.4).
    pub fn end_seq(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload_len)
            .wrapping_add(u32::from(self.flags.syn()))
            .wrapping_add(u32::from(self.flags.fin()))
    }

    pub fn tsval(&self) -> Option<u32> {
        self.options.timestamp.map(|t| t.val)
    }

    /// A connection request: SYN without ACK.
    pub fn is_syn(&self) -> bool {
        self.flags.syn() && !self.flags.ack() && !self.flags.rst()
    }

    pub fn is_syn_ack(&self) -> bool {
        self.flags.syn() && self.flags.ack() && !self.flags.rst()
    }
}

/// Why a frame did not become a segment. Counted, never silently dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The frame's link type is not one pawscope decodes.
    UnsupportedLinkType(u32),
    /// A link-layer frame carrying something other than IPv4/IPv6 (ARP, LLDP ...).
    NotIp,
    /// IP carrying something other than TCP.
    NotTcp,
    /// A fragment of an IP packet (the TCP header is not in this frame, or not whole).
    IpFragment,
    /// The captured bytes end before the TCP header does.
    Truncated,
    /// Headers that do not parse.
    Malformed,
}

impl SkipReason {
    /// Stable name used as a key in reports.
    pub fn key(&self) -> String {
        match self {
            SkipReason::UnsupportedLinkType(t) => format!("unsupported_link_type_{t}"),
            SkipReason::NotIp => "not_ip".into(),
            SkipReason::NotTcp => "not_tcp".into(),
            SkipReason::IpFragment => "ip_fragment".into(),
            SkipReason::Truncated => "truncated".into(),
            SkipReason::Malformed => "malformed".into(),
        }
    }
}
