//! Writes what tcpdump at the server would: a little-endian microsecond pcap of raw IP
//! packets (LINKTYPE_RAW), each an IPv4 or IPv6 header and a TCP segment with correct
//! lengths and checksums.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

/// LINKTYPE_RAW: the packet begins with the IP header.
pub const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 65_535;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// TCP options, already laid out (a multiple of 4 bytes; the layouts here need at most 20).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    bytes: [u8; 32],
    len: u8,
}

impl Options {
    pub fn none() -> Self {
        Options::default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn push(&mut self, bytes: &[u8]) {
        let at = usize::from(self.len);
        self.bytes[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len() as u8;
    }

    fn push_timestamp(&mut self, val: u32, ecr: u32) {
        self.push(&[8, 10]);
        self.push(&val.to_be_bytes());
        self.push(&ecr.to_be_bytes());
    }

    /// A Linux SYN or SYN-ACK: MSS, SACK permitted, timestamps, window scale. Without
    /// timestamps the SACK option moves behind two NOPs, as Linux lays it out.
    pub fn syn(mss: u16, window_scale: u8, timestamp: Option<(u32, u32)>) -> Self {
        let mut o = Options::none();
        o.push(&[2, 4]);
        o.push(&mss.to_be_bytes());
        match timestamp {
            Some((val, ecr)) => {
                o.push(&[4, 2]);
                o.push_timestamp(val, ecr);
            }
            None => o.push(&[1, 1, 4, 2]),
        }
        o.push(&[1, 3, 3, window_scale]);
        o
    }

    /// Any later segment: NOP, NOP, timestamps; or nothing.
    pub fn timestamp(timestamp: Option<(u32, u32)>) -> Self {
        let mut o = Options::none();
        if let Some((val, ecr)) = timestamp {
            o.push(&[1, 1]);
            o.push_timestamp(val, ecr);
        }
        o
    }
}

/// One TCP segment to write.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<'a> {
    /// Capture time, microseconds since the Unix epoch.
    pub ts_us: i64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Options,
    pub payload: &'a [u8],
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (unused for IPv6).
    pub ip_id: u16,
}

/// Why a packet could not be written.
#[derive(Debug)]
pub enum WriteError {
    Io(io::Error),
    /// More packets than the writer was allowed.
    TooMany(u64),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Streams pcap records to `out`.
pub struct PcapWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    packets: u64,
    limit: u64,
}

/// Adds 16-bit big-endian words to a one's-complement sum (not yet folded).
fn sum_words(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a sum to 16 bits and complements it.
fn finish_checksum(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header; at most `limit` packets may follow.
    pub fn new(mut out: W, limit: u64) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            buf: Vec::with_capacity(256),
            packets: 0,
            limit,
        })
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Builds the IP packet for `p` and appends it as one record.
    pub fn write(&mut self, p: &TcpPacket<'_>) -> Result<(), WriteError> {
        if self.packets >= self.limit {
            return Err(WriteError::TooMany(self.limit));
        }
        let tcp_len = 20 + p.options.as_bytes().len() + p.payload.len();
        let buf = &mut self.buf;
        buf.clear();
        // Record header, lengths filled in below.
        let secs = p.ts_us.div_euclid(1_000_000);
        let usecs = p.ts_us.rem_euclid(1_000_000);
        buf.extend_from_slice(&(secs as u32).to_le_bytes());
        buf.extend_from_slice(&(usecs as u32).to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        let ip_start = buf.len();
        let pseudo = match (p.src.ip(), p.dst.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = (20 + tcp_len) as u16;
                buf.extend_from_slice(&[0x45, 0]);
                buf.extend_from_slice(&total.to_be_bytes());
                buf.extend_from_slice(&p.ip_id.to_be_bytes());
                // Don't fragment.
                buf.extend_from_slice(&[0x40, 0, p.ttl, 6, 0, 0]);
                buf.extend_from_slice(&src.octets());
                buf.extend_from_slice(&dst.octets());
                let check = finish_checksum(sum_words(0, &buf[ip_start..]));
                buf[ip_start + 10..ip_start + 12].copy_from_slice(&check.to_be_bytes());
                let mut sum = sum_words(0, &src.octets());
                sum = sum_words(sum, &dst.octets());
                sum + 6 + tcp_len as u64
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                buf.extend_from_slice(&[0x60, 0, 0, 0]);
                buf.extend_from_slice(&(tcp_len as u16).to_be_bytes());
                buf.extend_from_slice(&[6, p.ttl]);
                buf.extend_from_slice(&src.octets());
                buf.extend_from_slice(&dst.octets());
                let mut sum = sum_words(0, &src.octets());
                sum = sum_words(sum, &dst.octets());
                sum + 6 + tcp_len as u64
            }
            _ => {
                return Err(WriteError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a packet between an IPv4 and an IPv6 address",
                )));
            }
        };
        let tcp_start = buf.len();
        buf.extend_from_slice(&p.src.port().to_be_bytes());
        buf.extend_from_slice(&p.dst.port().to_be_bytes());
        buf.extend_from_slice(&p.seq.to_be_bytes());
        buf.extend_from_slice(&p.ack.to_be_bytes());
        let data_offset = ((20 + p.options.as_bytes().len()) / 4) as u8;
        buf.extend_from_slice(&[data_offset << 4, p.flags]);
        buf.extend_from_slice(&p.window.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0]);
        buf.extend_from_slice(p.options.as_bytes());
        buf.extend_from_slice(p.payload);
        let check = finish_checksum(sum_words(pseudo, &buf[tcp_start..]));
        buf[tcp_start + 16..tcp_start + 18].copy_from_slice(&check.to_be_bytes());
        let ip_len = (buf.len() - ip_start) as u32;
        buf[8..12].copy_from_slice(&ip_len.to_le_bytes());
        buf[12..16].copy_from_slice(&ip_len.to_le_bytes());
        self.out.write_all(buf)?;
        self.packets += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Frame, LinkType};
    use crate::packet::{Decoder, Timestamp};

    fn packet(src: &str, dst: &str, options: Options, payload: &[u8]) -> TcpPacket<'static> {
        TcpPacket {
            ts_us: 1_767_225_600_123_456,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq: 0xdead_beef,
            ack: 7,
            flags: ACK | PSH,
            window: 502,
            options,
            payload: payload.to_vec().leak(),
            ttl: 63,
            ip_id: 0x1234,
        }
    }

    fn write_one(p: &TcpPacket<'_>) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), 10).unwrap();
        w.write(p).unwrap();
        w.into_inner()
    }

    /// The one's-complement sum over a whole checksummed region is 0xffff when it is right.
    fn verifies(sum: u64) -> bool {
        finish_checksum(sum) == 0
    }

    #[test]
    fn ipv4_record_has_right_lengths_and_checksums() {
        let p = packet(
            "203.0.113.1:40000",
            "203.0.113.10:80",
            Options::timestamp(Some((1, 2))),
            b"hello",
        );
        let file = write_one(&p);
        assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 101);
        let rec = &file[24..];
        assert_eq!(
            u32::from_le_bytes(rec[0..4].try_into().unwrap()),
            1_767_225_600
        );
        assert_eq!(u32::from_le_bytes(rec[4..8].try_into().unwrap()), 123_456);
        let caplen = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
        assert_eq!(caplen, 20 + 20 + 12 + 5);
        let ip = &rec[16..16 + caplen];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, caplen);
        assert!(verifies(sum_words(0, &ip[..20])));
        let tcp = &ip[20..];
        let pseudo = sum_words(sum_words(0, &ip[12..16]), &ip[16..20]) + 6 + tcp.len() as u64;
        assert!(verifies(sum_words(pseudo, tcp)));
        // Cross-check with etherparse.
        let parsed = etherparse::SlicedPacket::from_ip(ip).unwrap();
        if let Some(etherparse::TransportSlice::Tcp(t)) = parsed.transport {
            let header = t.to_header();
            let expected = header
                .calc_checksum_ipv4_raw([203, 0, 113, 1], [203, 0, 113, 10], t.payload())
                .unwrap();
            assert_eq!(header.checksum, expected);
        } else {
            panic!("no TCP");
        }
    }

    #[test]
    fn ipv6_segment_decodes_back_to_what_was_written() {
        let p = TcpPacket {
            flags: SYN,
            options: Options::syn(1440, 7, Some((123, 0))),
            ..packet(
                "[2001:db8:2::1]:40000",
                "[2001:db8:2::10]:80",
                Options::none(),
                b"",
            )
        };
        let file = write_one(&p);
        let rec = &file[24..];
        let caplen = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
        let frame = Frame {
            ts_ns: 0,
            link: LinkType::RAW,
            data: &rec[16..16 + caplen],
            orig_len: caplen as u32,
            offset: 24,
        };
        let seg = Decoder::new().decode(&frame).segment.unwrap();
        assert_eq!(seg.src, p.src);
        assert_eq!(seg.seq, 0xdead_beef);
        assert!(seg.is_syn());
        assert_eq!(seg.options.mss, Some(1440));
        assert_eq!(seg.options.window_scale, Some(7));
        assert!(seg.options.sack_permitted);
        assert_eq!(seg.options.timestamp, Some(Timestamp { val: 123, ecr: 0 }));
        let ip = &rec[16..16 + caplen];
        let tcp = &ip[40..];
        let pseudo = sum_words(sum_words(0, &ip[8..24]), &ip[24..40]) + 6 + tcp.len() as u64;
        assert!(verifies(sum_words(pseudo, tcp)));
    }

    #[test]
    fn option_layouts_are_whole_words() {
        assert_eq!(Options::syn(1460, 7, Some((1, 0))).as_bytes().len(), 20);
        assert_eq!(Options::syn(1460, 7, None).as_bytes().len(), 12);
        assert_eq!(Options::timestamp(Some((1, 2))).as_bytes().len(), 12);
        assert_eq!(Options::timestamp(None).as_bytes().len(), 0);
    }

    #[test]
    fn the_packet_limit_is_enforced() {
        let mut w = PcapWriter::new(Vec::new(), 1).unwrap();
        let p = packet("203.0.113.1:1", "203.0.113.10:80", Options::none(), b"");
        w.write(&p).unwrap();
        assert!(matches!(w.write(&p), Err(WriteError::TooMany(1))));
        assert_eq!(w.packets(), 1);
    }
}
