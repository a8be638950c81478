//! Frame -> [`Segment`]: link layer, PPPoE, IPv4/IPv6 (extension headers, fragments,
//! IP-in-IP and GRE tunnels) and the TCP header.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, IpNumber, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TcpSlice};

use super::defrag::{Fragment, FragmentKey, HeaderDefrag};
use super::fast;
use super::link::{ETHERTYPE_PPPOE_SESSION, NetworkStart, network_start, pppoe_session_ip};
use super::{Segment, SkipReason, TcpFlags, TcpOptions, Timestamp};
use crate::capture::Frame;

/// A TCP header without options.
const TCP_MIN_HEADER_LEN: usize = 20;

/// Tunnels inside tunnels beyond this are not followed.
const MAX_TUNNEL_DEPTH: usize = 2;

/// Everything decoding learned from one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The frame carried an IPv4 / IPv6 header (outer or tunnelled).
    pub ipv4: bool,
    pub ipv6: bool,
    pub segment: Result<Segment, SkipReason>,
}

/// Decodes frames in capture order. It keeps state only to put TCP headers split by IP
/// fragmentation back together.
#[derive(Debug, Default)]
pub struct Decoder {
    defrag: HeaderDefrag,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Decodes one frame into a TCP segment (or says why it is not one), noting which IP
    /// versions it carried.
    pub fn decode(&mut self, frame: &Frame<'_>) -> Decoded {
        if let Some(ip) = fast::plain_tcp(frame.link, frame.data)
            && let Some(segment) = plain_segment(&ip, frame.ts_ns)
        {
            return Decoded {
                ipv4: ip.src.is_ipv4(),
                ipv6: ip.src.is_ipv6(),
                segment: Ok(segment),
            };
        }
        self.decode_general(frame)
    }

    /// [`Decoder::decode`] without the fast path for plain IPv4/IPv6 TCP frames: every frame
    /// through the general slicer. The reference the fast path is checked against.
    pub fn decode_general(&mut self, frame: &Frame<'_>) -> Decoded {
        let mut decoded = Decoded {
            ipv4: false,
            ipv6: false,
            segment: Err(SkipReason::NotIp),
        };
        decoded.segment = self.decode_into(frame, &mut decoded.ipv4, &mut decoded.ipv6);
        decoded
    }

    fn decode_into(
        &mut self,
        frame: &Frame<'_>,
        ipv4: &mut bool,
        ipv6: &mut bool,
    ) -> Result<Segment, SkipReason> {
        let mut sliced = match network_start(frame.link, frame.data)? {
            NetworkStart::Ethernet(bytes) => {
                LaxSlicedPacket::from_ethernet(bytes).map_err(|_| SkipReason::Truncated)?
            }
            NetworkStart::EtherType(protocol, bytes) => {
                LaxSlicedPacket::from_ether_type(EtherType(protocol), bytes)
            }
            NetworkStart::Ip(bytes) => slice_ip(bytes)?,
        };
        // PPPoE sessions (possibly inside VLAN tags) carry IP behind a PPP header.
        if sliced.net.is_none()
            && let Some(ether) = sliced.ether_payload()
            && ether.ether_type == EtherType(ETHERTYPE_PPPOE_SESSION)
        {
            sliced = slice_ip(pppoe_session_ip(ether.payload)?)?;
        }
        note_ip_version(&sliced, ipv4, ipv6);
        // IP-in-IP (6in4/6rd, 4in4, 4in6, 6in6) and GRE tunnels: the inner packet is the
        // conversation.
        for _ in 0..MAX_TUNNEL_DEPTH {
            match tunnelled_ip(&sliced) {
                Some(inner) => sliced = slice_ip(inner)?,
                None => break,
            }
            note_ip_version(&sliced, ipv4, ipv6);
        }

        let net = network(&sliced)?;
        let payload = net.payload;
        if payload.ip_number != IpNumber::TCP {
            return Err(SkipReason::NotTcp);
        }
        if let Some(fragment) = &net.fragment {
            // The segment appears when its header is whole, at the fragment that completes it.
            let whole = self
                .defrag
                .add(fragment, frame.ts_ns)
                .ok_or(SkipReason::IpFragment)?;
            let tcp = TcpSlice::from_slice(&whole.header).map_err(|_| SkipReason::Malformed)?;
            let payload_len = whole.datagram_len - whole.header.len();
            return segment_of(
                tcp.header_slice(),
                net.src,
                net.dst,
                payload_len,
                frame.ts_ns,
            );
        }
        let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| {
            if payload.incomplete || payload.payload.len() < 20 {
                SkipReason::Truncated
            } else {
                SkipReason::Malformed
            }
        })?;
        let header_len = usize::from(tcp.data_offset()) * 4;
        // The wire length comes from the IP header when the snaplen cut the bytes short.
        let ip_payload_len = if payload.incomplete {
            net.declared_len.unwrap_or(payload.payload.len())
        } else {
            payload.payload.len()
        };
        let payload_len = ip_payload_len
            .checked_sub(header_len)
            .ok_or(SkipReason::Malformed)?;
        segment_of(
            tcp.header_slice(),
            net.src,
            net.dst,
            payload_len,
            frame.ts_ns,
        )
    }
}

/// The segment of a frame the fast path took, its TCP header checked as
/// [`TcpSlice::from_slice`] checks it (a data offset too small or beyond the bytes leaves the
/// frame to the general decoder) without building the slice.
fn plain_segment(ip: &fast::FastIp<'_>, ts_ns: i64) -> Option<Segment> {
    let tcp = ip.tcp;
    let header_len = usize::from(*tcp.get(12)? >> 4) * 4;
    if header_len < TCP_MIN_HEADER_LEN || header_len > tcp.len() {
        return None;
    }
    let payload_len = tcp.len() - header_len;
    segment_of(&tcp[..header_len], ip.src, ip.dst, payload_len, ts_ns).ok()
}

/// The segment a whole TCP header (`header`, options included) describes.
// Inlined: it is most of the fast path's work on every segment.
#[inline(always)]
fn segment_of(
    header: &[u8],
    src: IpAddr,
    dst: IpAddr,
    payload_len: usize,
    ts_ns: i64,
) -> Result<Segment, SkipReason> {
    // A TCP header is never shorter (both callers checked the data offset).
    let (fixed, options) = header
        .split_first_chunk::<TCP_MIN_HEADER_LEN>()
        .ok_or(SkipReason::Malformed)?;
    let u16_at = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
    let u32_at =
        |at: usize| u32::from_be_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
    Ok(Segment {
        ts_ns,
        src: SocketAddr::new(src, u16_at(0)),
        dst: SocketAddr::new(dst, u16_at(2)),
        seq: u32_at(4),
        ack: u32_at(8),
        // FIN, SYN, RST, PSH and ACK are the low five bits of byte 13, as in TcpFlags.
        flags: TcpFlags(fixed[13] & 0x1f),
        payload_len: u32::try_from(payload_len).map_err(|_| SkipReason::Malformed)?,
        window: u16_at(14),
        options: read_options(options),
    })
}

/// The innermost IP layer's facts.
struct Network<'s, 'a> {
    src: IpAddr,
    dst: IpAddr,
    payload: &'s LaxIpPayloadSlice<'a>,
    /// IP payload length from the header (None for IPv6 jumbograms).
    declared_len: Option<usize>,
    /// Where this packet sits in a fragmented datagram, if it is a fragment.
    fragment: Option<Fragment<'a>>,
}

/// The fields of an IPv6 fragment header.
struct Ipv6FragmentFields {
    id: u32,
    offset: usize,
    more: bool,
}

/// Finds the fragment header in an IPv6 extension chain, checking every length against the
/// bytes present. etherparse's own iterator trusts a lax chain that ended early and reads past
/// it, so the chain is walked here instead.
fn ipv6_fragment_header(first: u8, mut chain: &[u8]) -> Option<Ipv6FragmentFields> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTIONS: u8 = 60;
    let mut next = first;
    loop {
        if chain.len() < 8 {
            return None;
        }
        let len = match next {
            FRAGMENT => {
                let offset_and_flags = u16::from_be_bytes([chain[2], chain[3]]);
                return Some(Ipv6FragmentFields {
                    id: u32::from_be_bytes([chain[4], chain[5], chain[6], chain[7]]),
                    // 13 bits of 8-byte units above 3 flag bits: masking gives bytes.
                    offset: usize::from(offset_and_flags & 0xfff8),
                    more: offset_and_flags & 1 == 1,
                });
            }
            HOP_BY_HOP | ROUTING | DEST_OPTIONS => (usize::from(chain[1]) + 1) * 8,
            AUTH => (usize::from(chain[1]) + 2) * 4,
            _ => return None,
        };
        next = chain[0];
        chain = chain.get(len..)?;
    }
}

fn network<'s, 'a>(sliced: &'s LaxSlicedPacket<'a>) -> Result<Network<'s, 'a>, SkipReason> {
    match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let header = v4.header();
            let headers_len =
                usize::from(header.ihl()) * 4 + v4.extensions().auth.map_or(0, |a| a.slice().len());
            let (src, dst) = (
                header.source_addr().into(),
                header.destination_addr().into(),
            );
            let payload = v4.payload();
            let fragment = payload.fragmented.then(|| Fragment {
                key: FragmentKey {
                    src,
                    dst,
                    id: u32::from(header.identification()),
                },
                offset: usize::from(header.fragments_offset().byte_offset()),
                more: header.more_fragments(),
                payload: payload.payload,
            });
            Ok(Network {
                src,
                dst,
                payload,
                declared_len: usize::from(header.total_len()).checked_sub(headers_len),
                fragment,
            })
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let header = v6.header();
            let extensions = v6.extensions();
            let (src, dst) = (
                header.source_addr().into(),
                header.destination_addr().into(),
            );
            let payload = v6.payload();
            let fragment = payload
                .fragmented
                .then(|| ipv6_fragment_header(header.next_header().0, extensions.slice()))
                .flatten()
                .map(|f| Fragment {
                    key: FragmentKey { src, dst, id: f.id },
                    offset: f.offset,
                    more: f.more,
                    payload: payload.payload,
                });
            Ok(Network {
                src,
                dst,
                payload,
                // A zero payload length means a jumbogram: the captured bytes are all we know.
                declared_len: match header.payload_length() {
                    0 => None,
                    len => usize::from(len).checked_sub(extensions.slice().len()),
                },
                fragment,
            })
        }
        Some(LaxNetSlice::Arp(_)) => Err(SkipReason::NotIp),
        None => Err(match sliced.stop_err {
            Some(_) => SkipReason::Truncated,
            None => SkipReason::NotIp,
        }),
    }
}

fn note_ip_version(sliced: &LaxSlicedPacket<'_>, ipv4: &mut bool, ipv6: &mut bool) {
    match sliced.net {
        Some(LaxNetSlice::Ipv4(_)) => *ipv4 = true,
        Some(LaxNetSlice::Ipv6(_)) => *ipv6 = true,
        _ => {}
    }
}

/// The inner IP packet of an unfragmented IP-in-IP or GRE (RFC 2784/2890) packet.
fn tunnelled_ip<'a>(sliced: &LaxSlicedPacket<'a>) -> Option<&'a [u8]> {
    let payload = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => v4.payload(),
        Some(LaxNetSlice::Ipv6(v6)) => v6.payload(),
        _ => return None,
    };
    if payload.fragmented {
        return None;
    }
    match payload.ip_number {
        IpNumber::IPV4 | IpNumber::IPV6 => Some(payload.payload),
        IpNumber::GRE => gre_ip_payload(payload.payload),
        _ => None,
    }
}

/// GRE carrying IPv4 or IPv6: skips the optional checksum, key and sequence fields.
fn gre_ip_payload(gre: &[u8]) -> Option<&[u8]> {
    const CHECKSUM: u8 = 0x80;
    const KEY: u8 = 0x20;
    const SEQUENCE: u8 = 0x10;
    let flags = *gre.first()?;
    let protocol = u16::from_be_bytes([*gre.get(2)?, *gre.get(3)?]);
    if protocol != EtherType::IPV4.0 && protocol != EtherType::IPV6.0 {
        return None;
    }
    let optional = [CHECKSUM, KEY, SEQUENCE]
        .iter()
        .filter(|bit| flags & **bit != 0)
        .count();
    gre.get(4 + 4 * optional..)
}

fn slice_ip(bytes: &[u8]) -> Result<LaxSlicedPacket<'_>, SkipReason> {
    if !matches!(bytes.first().map(|b| b >> 4), Some(4) | Some(6)) {
        return Err(if bytes.is_empty() {
            SkipReason::Truncated
        } else {
            SkipReason::NotIp
        });
    }
    LaxSlicedPacket::from_ip(bytes).map_err(|_| SkipReason::Truncated)
}

/// A timestamp option's value: TSval, then TSecr.
fn timestamp_in(value: &[u8]) -> Timestamp {
    let word =
        |at: usize| u32::from_be_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    Timestamp {
        val: word(0),
        ecr: word(4),
    }
}

/// Reads the options pawscope needs the way Linux's tcp_parse_options does: the walk ends at
/// end-of-options or at a length byte below 2 or past the header; an option of a kind it does
/// not know (MD5, MPTCP, Fast Open ...) is stepped over by its length, and one of a known
/// kind with the wrong length is ignored. A timestamp behind an unknown option is still read,
/// as the server reads it.
fn read_options(mut rest: &[u8]) -> TcpOptions {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const MSS: (u8, usize) = (2, 4);
    const WINDOW_SCALE: (u8, usize) = (3, 3);
    const SACK_PERMITTED: (u8, usize) = (4, 2);
    const TIMESTAMP: (u8, usize) = (8, 10);
    let mut options = TcpOptions::default();
    // What Linux puts on every segment but the SYNs: two NOPs, then the timestamp.
    if let [NOP, NOP, 8, 10, ref value @ ..] = *rest
        && value.len() == 8
    {
        options.timestamp = Some(timestamp_in(value));
        return options;
    }
    while let [kind, ..] = *rest {
        match kind {
            END => break,
            NOP => {
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = rest.get(1) else { break };
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            break;
        }
        let option = &rest[..len];
        match (kind, len) {
            MSS => options.mss = Some(u16::from_be_bytes([option[2], option[3]])),
            WINDOW_SCALE => options.window_scale = Some(option[2]),
            SACK_PERMITTED => options.sack_permitted = true,
            TIMESTAMP => options.timestamp = Some(timestamp_in(&option[2..])),
            _ => {}
        }
        rest = &rest[len..];
    }
    options
}

#[cfg(test)]
mod tests {
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder, TcpOptionElement};

    use super::*;
    use crate::capture::LinkType;

    /// An IPv4 TCP SYN from 192.0.2.1:40000 to 203.0.113.10:80 with a timestamp option.
    fn inner_syn() -> Vec<u8> {
        let builder = PacketBuilder::ipv4([192, 0, 2, 1], [203, 0, 113, 10], 64)
            .tcp(40000, 80, 1234, 64240)
            .syn()
            .options(&[TcpOptionElement::Timestamp(777, 0)])
            .unwrap();
        let mut bytes = Vec::new();
        builder.write(&mut bytes, &[]).unwrap();
        bytes
    }

    fn raw_frame(data: &[u8]) -> Frame<'_> {
        Frame {
            ts_ns: 5,
            link: LinkType::RAW,
            data,
            orig_len: data.len() as u32,
            offset: 0,
        }
    }

    fn decode_one(link: LinkType, data: &[u8]) -> Result<Segment, SkipReason> {
        let frame = Frame {
            ts_ns: 5,
            link,
            data,
            orig_len: data.len() as u32,
            offset: 0,
        };
        Decoder::new().decode(&frame).segment
    }

    fn assert_inner_syn(segment: Result<Segment, SkipReason>) {
        let segment = segment.expect("a segment");
        assert_eq!(segment.src, "192.0.2.1:40000".parse().unwrap());
        assert_eq!(segment.dst, "203.0.113.10:80".parse().unwrap());
        assert_eq!(segment.seq, 1234);
        assert!(segment.is_syn());
        assert_eq!(segment.tsval(), Some(777));
    }

    fn outer_ipv4(protocol: IpNumber, payload: &[u8]) -> Vec<u8> {
        let header = Ipv4Header::new(
            payload.len() as u16,
            64,
            protocol,
            [198, 51, 100, 1],
            [198, 51, 100, 2],
        )
        .unwrap();
        let mut bytes = Vec::new();
        header.write(&mut bytes).unwrap();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn options_are_read_as_linux_reads_them() {
        let ts = [8, 10, 0, 0, 0, 7, 0, 0, 0, 9];
        let with = |before: &[u8]| read_options(&[before, &ts[..]].concat()).timestamp;
        let expected = Some(Timestamp { val: 7, ecr: 9 });
        // Behind an MD5 signature (Linux puts it first), an MPTCP option, NOPs: still read.
        assert_eq!(
            with(&[19, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            expected
        );
        assert_eq!(with(&[30, 4, 0, 0, 1, 1]), expected);
        // An MSS of the wrong length is ignored, not the end of the walk.
        assert_eq!(with(&[2, 3, 5]), expected);
        // End of options, a length below 2, a length past the header: the walk stops.
        assert_eq!(with(&[0]), None);
        assert_eq!(with(&[30, 1]), None);
        assert_eq!(read_options(&ts[..9]).timestamp, None);
        let syn = read_options(&[
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        assert_eq!(
            (syn.mss, syn.sack_permitted, syn.window_scale),
            (Some(1460), true, Some(7))
        );
        assert_eq!(syn.timestamp, Some(Timestamp { val: 1, ecr: 0 }));
    }

    #[test]
    fn raw_ipv4() {
        assert_inner_syn(decode_one(LinkType::RAW, &inner_syn()));
    }

    #[test]
    fn gre_with_key_and_sequence_carries_the_inner_segment() {
        let mut gre = vec![0x30, 0x00, 0x08, 0x00];
        gre.extend_from_slice(&[0, 0, 0, 42, 0, 0, 0, 7]);
        gre.extend_from_slice(&inner_syn());
        assert_inner_syn(decode_one(LinkType::RAW, &outer_ipv4(IpNumber::GRE, &gre)));
    }

    #[test]
    fn ip_in_ip_carries_the_inner_segment() {
        let packet = outer_ipv4(IpNumber::IPV4, &inner_syn());
        assert_inner_syn(decode_one(LinkType::IPV4, &packet));
    }

    #[test]
    fn pppoe_session_over_ethernet() {
        let mut frame = vec![0; 12];
        frame.extend_from_slice(&ETHERTYPE_PPPOE_SESSION.to_be_bytes());
        let inner = inner_syn();
        frame.extend_from_slice(&[0x11, 0x00, 0x3b, 0x1a]);
        frame.extend_from_slice(&((inner.len() + 2) as u16).to_be_bytes());
        frame.extend_from_slice(&[0x00, 0x21]);
        frame.extend_from_slice(&inner);
        assert_inner_syn(decode_one(LinkType::ETHERNET, &frame));
    }

    #[test]
    fn linux_cooked_v2() {
        let mut frame = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
        frame.extend_from_slice(&[0; 8]);
        frame.extend_from_slice(&inner_syn());
        assert_inner_syn(decode_one(LinkType::LINUX_SLL2, &frame));
    }

    #[test]
    fn bsd_loopback_in_either_byte_order() {
        for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let mut frame = family.to_vec();
            frame.extend_from_slice(&inner_syn());
            assert_inner_syn(decode_one(LinkType::NULL, &frame));
        }
    }

    #[test]
    fn snaplen_cut_inside_the_tcp_header_is_truncated() {
        let syn = inner_syn();
        assert_eq!(
            decode_one(LinkType::RAW, &syn[..30]),
            Err(SkipReason::Truncated)
        );
    }

    #[test]
    fn unknown_link_type_is_named() {
        assert_eq!(
            decode_one(LinkType(147), &inner_syn()),
            Err(SkipReason::UnsupportedLinkType(147))
        );
    }

    /// Found by fuzzing: a destination-options header naming a hop-by-hop header after it (which
    /// must come first) ends etherparse's lax extension chain early, and its iterator then reads
    /// past the slice. The decoder walks the chain itself, so this is a skipped packet.
    #[test]
    fn ipv6_extension_chain_cut_short_is_skipped() {
        let mut packet = vec![0x60, 0, 0, 0, 0, 16, 60, 64];
        packet.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        packet.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        // Destination options (next header: hop-by-hop), then a hop-by-hop header.
        packet.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
        packet.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        assert!(decode_one(LinkType::RAW, &packet).is_err());
    }

    /// An IPv6 SYN in two fragments, each behind a destination-options header: the decoder
    /// finds the fragment header past the other extension and reassembles the TCP header.
    #[test]
    fn ipv6_fragments_behind_destination_options_reassemble() {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut whole = Vec::new();
        PacketBuilder::ipv6(src, dst, 64)
            .tcp(40000, 80, 1234, 64240)
            .syn()
            .options(&[TcpOptionElement::Timestamp(777, 0)])
            .unwrap()
            .write(&mut whole, &[])
            .unwrap();
        let tcp = &whole[40..];
        let fragment = |offset: usize, more: bool, body: &[u8]| {
            let mut packet = vec![0x60, 0, 0, 0];
            packet.extend_from_slice(&((16 + body.len()) as u16).to_be_bytes());
            packet.extend_from_slice(&[60, 64]);
            packet.extend_from_slice(&src);
            packet.extend_from_slice(&dst);
            packet.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
            let offset_and_more = (offset as u16) | u16::from(more);
            packet.extend_from_slice(&[6, 0]);
            packet.extend_from_slice(&offset_and_more.to_be_bytes());
            packet.extend_from_slice(&0xfeed_u32.to_be_bytes());
            packet.extend_from_slice(body);
            packet
        };
        let first = fragment(0, true, &tcp[..8]);
        let last = fragment(8, false, &tcp[8..]);
        let mut decoder = Decoder::new();
        assert!(decoder.decode(&raw_frame(&first)).segment.is_err());
        let segment = decoder
            .decode(&raw_frame(&last))
            .segment
            .expect("reassembled");
        assert_eq!(segment.src, "[2001:db8::1]:40000".parse().unwrap());
        assert_eq!(segment.dst, "[2001:db8::2]:80".parse().unwrap());
        assert_eq!(segment.seq, 1234);
        assert!(segment.is_syn());
        assert_eq!(segment.tsval(), Some(777));
    }
}
