//! Link layers: where the network-layer bytes start in a frame of a given link type.

use crate::capture::LinkType;

use super::SkipReason;

/// Where the network layer begins, in the form etherparse's slicers take.
pub enum NetworkStart<'a> {
    /// An Ethernet II frame (VLAN tags are handled by the slicer).
    Ethernet(&'a [u8]),
    /// A payload whose protocol an EtherType names (Linux cooked captures).
    EtherType(u16, &'a [u8]),
    /// Bare IPv4 or IPv6; the version nibble says which.
    Ip(&'a [u8]),
}

/// Linux cooked capture v1 header: packet type, ARPHRD, address length, 8-byte address, protocol.
pub(super) const SLL_HEADER_LEN: usize = 16;
/// Linux cooked capture v2 header (`tcpdump -i any` since libpcap 1.10): protocol first.
pub(super) const SLL2_HEADER_LEN: usize = 20;
/// BSD loopback (NULL/LOOP): a 4-byte address family, then the IP packet.
const LOOPBACK_HEADER_LEN: usize = 4;

pub fn network_start(link: LinkType, data: &[u8]) -> Result<NetworkStart<'_>, SkipReason> {
    match link {
        LinkType::ETHERNET => Ok(NetworkStart::Ethernet(data)),
        LinkType::LINUX_SLL => {
            let header = data.get(..SLL_HEADER_LEN).ok_or(SkipReason::Truncated)?;
            let protocol = u16::from_be_bytes([header[14], header[15]]);
            Ok(NetworkStart::EtherType(protocol, &data[SLL_HEADER_LEN..]))
        }
        LinkType::LINUX_SLL2 => {
            let header = data.get(..SLL2_HEADER_LEN).ok_or(SkipReason::Truncated)?;
            let protocol = u16::from_be_bytes([header[0], header[1]]);
            Ok(NetworkStart::EtherType(protocol, &data[SLL2_HEADER_LEN..]))
        }
        LinkType::RAW
        | LinkType::RAW_BSD12
        | LinkType::RAW_BSD14
        | LinkType::IPV4
        | LinkType::IPV6 => Ok(NetworkStart::Ip(data)),
        LinkType::NULL | LinkType::LOOP => {
            // The family value's byte order depends on the writer; the IP version nibble
            // that follows is unambiguous, so it decides.
            let ip = data
                .get(LOOPBACK_HEADER_LEN..)
                .ok_or(SkipReason::Truncated)?;
            Ok(NetworkStart::Ip(ip))
        }
        LinkType(other) => Err(SkipReason::UnsupportedLinkType(other)),
    }
}

/// EtherType of a PPPoE session frame (RFC 2516), common on DSL uplinks.
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// PPPoE header (6 bytes) and the PPP protocol field (2 bytes).
const PPPOE_HEADER_LEN: usize = 8;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// The IP packet inside a PPPoE session payload, if it carries one.
pub fn pppoe_session_ip(payload: &[u8]) -> Result<&[u8], SkipReason> {
    let header = payload
        .get(..PPPOE_HEADER_LEN)
        .ok_or(SkipReason::Truncated)?;
    match u16::from_be_bytes([header[6], header[7]]) {
        PPP_IPV4 | PPP_IPV6 => Ok(&payload[PPPOE_HEADER_LEN..]),
        _ => Err(SkipReason::NotIp),
    }
}
