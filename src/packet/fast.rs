//! The common case, decoded without the general slicer: Ethernet (or a Linux cooked header,
//! or bare IP) around one whole, unfragmented IPv4 or IPv6 header without extensions, then
//! TCP. Incident captures are almost all such frames, and slicing every layer generically
//! costs more than the rest of reading. Anything else (VLAN tags, tunnels, PPPoE, IP options
//! or extension headers, fragments, frames the snaplen cut, lengths that disagree) is left to
//! the general decoder, which gives the same segment for every frame taken here (checked
//! frame by frame in `tests/decode_paths.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6Header};

use super::link::{SLL_HEADER_LEN, SLL2_HEADER_LEN};
use crate::capture::LinkType;

// etherparse's values, as constants the matches below can use as patterns.
const ETHERTYPE_IPV4: u16 = EtherType::IPV4.0;
const ETHERTYPE_IPV6: u16 = EtherType::IPV6.0;
const ETHERNET_HEADER_LEN: usize = Ethernet2Header::LEN;
const IPV4_HEADER_LEN: usize = Ipv4Header::MIN_LEN;
const IPV6_HEADER_LEN: usize = Ipv6Header::LEN;
const PROTOCOL_TCP: u8 = IpNumber::TCP.0;

/// The IP facts of a frame taken by the fast path, and its whole TCP header and payload.
pub struct FastIp<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TCP header and payload, cut to the IP header's length (Ethernet padding dropped).
    pub tcp: &'a [u8],
}

/// The IP packet of a frame and its version, when the link header says plainly that IP
/// starts after it. An EtherType must agree with the version nibble; bare IP has only that.
fn ip_bytes(link: LinkType, data: &[u8]) -> Option<(u8, &[u8])> {
    let (ether_type, ip) = match link {
        LinkType::ETHERNET => (be16(data, 12)?, data.get(ETHERNET_HEADER_LEN..)?),
        LinkType::LINUX_SLL => (be16(data, 14)?, data.get(SLL_HEADER_LEN..)?),
        LinkType::LINUX_SLL2 => (be16(data, 0)?, data.get(SLL2_HEADER_LEN..)?),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => {
            return Some((*data.first()? >> 4, data));
        }
        _ => return None,
    };
    let version = *ip.first()? >> 4;
    match (ether_type, version) {
        (ETHERTYPE_IPV4, 4) | (ETHERTYPE_IPV6, 6) => Some((version, ip)),
        _ => None,
    }
}

/// The frame's addresses and TCP bytes, or `None` when the general decoder must look at it.
pub fn plain_tcp(link: LinkType, data: &[u8]) -> Option<FastIp<'_>> {
    match ip_bytes(link, data)? {
        (4, ip) => plain_ipv4_tcp(ip),
        (6, ip) => plain_ipv6_tcp(ip),
        _ => None,
    }
}

fn plain_ipv4_tcp(ip: &[u8]) -> Option<FastIp<'_>> {
    let header: &[u8; IPV4_HEADER_LEN] = ip.get(..IPV4_HEADER_LEN)?.try_into().ok()?;
    // Version 4, no options; the fragment offset and the more-fragments bit both zero.
    let unfragmented = u16::from_be_bytes([header[6], header[7]]) & 0x3fff == 0;
    if header[0] != 0x45 || header[9] != PROTOCOL_TCP || !unfragmented {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let tcp = ip.get(IPV4_HEADER_LEN..total_len)?;
    Some(FastIp {
        src: IpAddr::V4(Ipv4Addr::new(
            header[12], header[13], header[14], header[15],
        )),
        dst: IpAddr::V4(Ipv4Addr::new(
            header[16], header[17], header[18], header[19],
        )),
        tcp,
    })
}

fn plain_ipv6_tcp(ip: &[u8]) -> Option<FastIp<'_>> {
    let header: &[u8; IPV6_HEADER_LEN] = ip.get(..IPV6_HEADER_LEN)?.try_into().ok()?;
    // TCP right after the fixed header; a zero length (a jumbogram) goes the general way.
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    if header[6] != PROTOCOL_TCP || payload_len == 0 {
        return None;
    }
    let tcp = ip.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)?;
    let address = |at: usize| -> Option<IpAddr> {
        let octets: [u8; 16] = header.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(octets)))
    };
    Some(FastIp {
        src: address(8)?,
        dst: address(24)?,
        tcp,
    })
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;

    fn ethernet(v6: bool) -> Vec<u8> {
        let ethernet = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let ip = if v6 {
            ethernet.ipv6(
                [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20; 16],
                64,
            )
        } else {
            ethernet.ipv4([192, 0, 2, 1], [203, 0, 113, 10], 64)
        };
        let mut bytes = Vec::new();
        ip.tcp(40000, 80, 1, 1000)
            .write(&mut bytes, &[9; 5])
            .unwrap();
        bytes
    }

    #[test]
    fn takes_plain_ipv4_and_ipv6_tcp() {
        for v6 in [false, true] {
            let frame = ethernet(v6);
            let ip = plain_tcp(LinkType::ETHERNET, &frame).expect("fast path");
            assert_eq!((ip.src.is_ipv6(), ip.tcp.len()), (v6, 25));
            assert!(plain_tcp(LinkType::RAW, &frame[14..]).is_some());
        }
    }

    #[test]
    fn leaves_vlan_fragments_and_cut_frames_to_the_general_decoder() {
        let frame = ethernet(false);
        let mut vlan = frame[..12].to_vec();
        vlan.extend_from_slice(&[0x81, 0, 0, 7]);
        vlan.extend_from_slice(&frame[12..]);
        let mut fragment = frame.clone();
        fragment[20] = 0x20;
        for refused in [&vlan[..], &fragment, &frame[..frame.len() - 1]] {
            assert!(plain_tcp(LinkType::ETHERNET, refused).is_none());
        }
        assert!(plain_tcp(LinkType(147), &frame).is_none());
    }
}
