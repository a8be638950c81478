//! Frame -> [`Segment`]: link layer, PPPoE, IPv4/IPv6 (extension headers, first fragments,
//! IP-in-IP tunnels) and the TCP header.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    EtherType, IpNumber, Ipv6ExtensionSlice, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket,
    TcpOptionElement, TcpSlice,
};

use super::defrag::{Fragment, FragmentKey, HeaderDefrag};
use super::link::{ETHERTYPE_PPPOE_SESSION, NetworkStart, network_start, pppoe_session_ip};
use super::{Segment, SkipReason, TcpFlags, TcpOptions, Timestamp};
use crate::capture::Frame;

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
        // IP-in-IP tunnels (6in4/6rd, 4in4, 4in6, 6in6): the inner packet is the conversation.
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
            return segment_of(&tcp, &net, payload_len, frame.ts_ns);
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
        segment_of(&tcp, &net, payload_len, frame.ts_ns)
    }
}

fn segment_of(
    tcp: &TcpSlice<'_>,
    net: &Network<'_, '_>,
    payload_len: usize,
    ts_ns: i64,
) -> Result<Segment, SkipReason> {
    Ok(Segment {
        ts_ns,
        src: SocketAddr::new(net.src, tcp.source_port()),
        dst: SocketAddr::new(net.dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: flags_of(tcp),
        payload_len: u32::try_from(payload_len).map_err(|_| SkipReason::Malformed)?,
        window: tcp.window_size(),
        options: options_of(tcp),
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
            let fragment = extensions.clone().into_iter().find_map(|ext| match ext {
                Ipv6ExtensionSlice::Fragment(f) if payload.fragmented => Some(Fragment {
                    key: FragmentKey {
                        src,
                        dst,
                        id: f.identification(),
                    },
                    offset: usize::from(f.fragment_offset().byte_offset()),
                    more: f.more_fragments(),
                    payload: payload.payload,
                }),
                _ => None,
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

/// The inner packet of an unfragmented IP-in-IP packet.
fn tunnelled_ip<'a>(sliced: &LaxSlicedPacket<'a>) -> Option<&'a [u8]> {
    let payload = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => v4.payload(),
        Some(LaxNetSlice::Ipv6(v6)) => v6.payload(),
        _ => return None,
    };
    let tunnel = payload.ip_number == IpNumber::IPV4 || payload.ip_number == IpNumber::IPV6;
    (tunnel && !payload.fragmented).then_some(payload.payload)
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

fn flags_of(tcp: &TcpSlice<'_>) -> TcpFlags {
    let mut bits = 0;
    for (set, bit) in [
        (tcp.fin(), TcpFlags::FIN),
        (tcp.syn(), TcpFlags::SYN),
        (tcp.rst(), TcpFlags::RST),
        (tcp.psh(), TcpFlags::PSH),
        (tcp.ack(), TcpFlags::ACK),
    ] {
        if set {
            bits |= bit;
        }
    }
    TcpFlags(bits)
}

/// Reads the options pawscope needs; a malformed option ends the walk, as it does in the kernel.
fn options_of(tcp: &TcpSlice<'_>) -> TcpOptions {
    let mut options = TcpOptions::default();
    for element in tcp.options_iterator() {
        match element {
            Ok(TcpOptionElement::MaximumSegmentSize(mss)) => options.mss = Some(mss),
            Ok(TcpOptionElement::WindowScale(shift)) => options.window_scale = Some(shift),
            Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => {
                options.sack_permitted = true
            }
            Ok(TcpOptionElement::Timestamp(val, ecr)) => {
                options.timestamp = Some(Timestamp { val, ecr })
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    options
}
