//! Frame -> [`Segment`]: link layer, IPv4/IPv6 (with extension headers) and the TCP header.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    EtherType, IpNumber, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TcpOptionElement,
    TcpSlice,
};

use super::link::{ETHERTYPE_PPPOE_SESSION, NetworkStart, network_start, pppoe_session_ip};
use super::{Segment, SkipReason, TcpFlags, TcpOptions, Timestamp};
use crate::capture::Frame;

/// Decodes one frame into a TCP segment, or says why it is not one.
pub fn decode(frame: &Frame<'_>) -> Result<Segment, SkipReason> {
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
    // IP-in-IP tunnels (6in4/6rd, 4in4, 4in6, 6in6): the inner packet is the conversation.
    for _ in 0..MAX_TUNNEL_DEPTH {
        match tunnelled_ip(&sliced) {
            Some(inner) => sliced = slice_ip(inner)?,
            None => break,
        }
    }

    let (src_ip, dst_ip, payload, declared_len): (
        IpAddr,
        IpAddr,
        &LaxIpPayloadSlice<'_>,
        Option<usize>,
    ) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let header = v4.header();
            let headers_len =
                usize::from(header.ihl()) * 4 + v4.extensions().auth.map_or(0, |a| a.slice().len());
            let declared = usize::from(header.total_len()).checked_sub(headers_len);
            (
                header.source_addr().into(),
                header.destination_addr().into(),
                v4.payload(),
                declared,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let header = v6.header();
            // A zero payload length means a jumbogram: the captured bytes are all we know.
            let declared = match header.payload_length() {
                0 => None,
                len => usize::from(len).checked_sub(v6.extensions().slice().len()),
            };
            (
                header.source_addr().into(),
                header.destination_addr().into(),
                v6.payload(),
                declared,
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(SkipReason::NotIp),
        None => {
            return Err(match sliced.stop_err {
                Some(_) => SkipReason::Truncated,
                None => SkipReason::NotIp,
            });
        }
    };

    if payload.ip_number != IpNumber::TCP {
        return Err(SkipReason::NotTcp);
    }
    if payload.fragmented {
        return Err(SkipReason::IpFragment);
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| {
        if payload.incomplete || payload.payload.len() < 20 {
            SkipReason::Truncated
        } else {
            SkipReason::Malformed
        }
    })?;
    let header_len = usize::from(tcp.data_offset()) * 4;
    let ip_payload_len = if payload.incomplete {
        declared_len.unwrap_or(payload.payload.len())
    } else {
        payload.payload.len()
    };
    let payload_len = ip_payload_len
        .checked_sub(header_len)
        .ok_or(SkipReason::Malformed)?;

    Ok(Segment {
        ts_ns: frame.ts_ns,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: flags_of(&tcp),
        payload_len: u32::try_from(payload_len).map_err(|_| SkipReason::Malformed)?,
        window: tcp.window_size(),
        options: options_of(&tcp),
    })
}

/// Tunnels inside tunnels beyond this are not followed.
const MAX_TUNNEL_DEPTH: usize = 2;

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
