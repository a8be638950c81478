//! Arbitrary bytes as a sequence of frames, each decoded under every link type pawscope
//! knows, one `Decoder` per link type so that IP fragment reassembly keeps its state
//! across frames.
//!
//! Input layout (a pcap file without its 24-byte header is a valid input, and so is a
//! whole little-endian pcap file: its header is skipped):
//! records of `ts_sec: u32le, ts_frac: u32le, incl_len: u32le, orig_len: u32le, data`.
//! `ts_frac` below 10^9 is a fraction in microseconds (times 1000, as the reader does for
//! microsecond files); from 2^31 up, the low 63 bits of the 8 time bytes (little-endian)
//! are nanoseconds from -2^62, the all-ones value standing for +2^62: the whole range of
//! times the reader lets through (pcapng's `if_tsoffset` and 64-bit timestamps reach it).
//! `incl_len` beyond the bytes left takes the rest.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pawscope::capture::{Frame, LinkType};
use pawscope::packet::{Decoder, SkipReason};

const LINKS: [u32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];
/// A link type pawscope does not decode (802.11 radiotap).
const UNKNOWN_LINK: u32 = 127;
const RECORD_HEADER: usize = 16;
/// The reader refuses packet times further than this from 1970.
const MAX_ABS_TIME_NS: i64 = 1 << 62;
/// Frames read from one input at most.
const MAX_FRAMES: usize = 4096;

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

struct Record<'a> {
    ts_ns: i64,
    data: &'a [u8],
    orig_len: u32,
    offset: u64,
}

fn records(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut offset = 0u64;
    // A whole pcap file: skip its header.
    if data.len() >= 24
        && matches!(
            data[..4],
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
        )
    {
        data = &data[24..];
        offset = 24;
    }
    let mut out = Vec::new();
    while data.len() >= RECORD_HEADER && out.len() < MAX_FRAMES {
        let sec = u32_at(data, 0);
        let frac = u32_at(data, 4);
        let incl = u32_at(data, 8) as usize;
        let orig_len = u32_at(data, 12);
        let ts_ns = if frac >= 0x8000_0000 {
            // The low 63 bits, from -2^62 up; the highest value stands for +2^62 itself.
            let raw = u64::from_le_bytes(data[..8].try_into().unwrap()) & (u64::MAX >> 1);
            if raw == u64::MAX >> 1 {
                MAX_ABS_TIME_NS
            } else {
                raw as i64 - MAX_ABS_TIME_NS
            }
        } else if frac < 1_000_000_000 {
            i64::from(sec) * 1_000_000_000 + i64::from(frac) * 1_000
        } else {
            i64::from(sec) * 1_000_000_000 + i64::from(frac)
        };
        let body = &data[RECORD_HEADER..];
        let take = incl.min(body.len());
        out.push(Record {
            ts_ns,
            data: &body[..take],
            orig_len,
            offset,
        });
        data = &body[take..];
        offset += (RECORD_HEADER + take) as u64;
    }
    // Bytes too few for a record header still make one frame.
    if !data.is_empty() && out.len() < MAX_FRAMES {
        out.push(Record {
            ts_ns: 0,
            data,
            orig_len: data.len() as u32,
            offset,
        });
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let records = records(data);
    for link in LINKS {
        let mut decoder = Decoder::new();
        for record in &records {
            let frame = Frame {
                ts_ns: record.ts_ns,
                link: LinkType(link),
                data: record.data,
                orig_len: record.orig_len,
                offset: record.offset,
            };
            let decoded = decoder.decode(&frame);
            if let Ok(segment) = decoded.segment {
                assert_eq!(segment.ts_ns, record.ts_ns, "segment keeps its frame's time");
                assert!(
                    decoded.ipv4 || decoded.ipv6,
                    "a TCP segment came without an IP header"
                );
                assert_eq!(
                    segment.src.is_ipv4(),
                    segment.dst.is_ipv4(),
                    "source and destination of different IP versions"
                );
            }
            std::hint::black_box(&decoded);
        }
    }
    // Unknown link types are counted, never decoded.
    let mut decoder = Decoder::new();
    for record in &records {
        let frame = Frame {
            ts_ns: record.ts_ns,
            link: LinkType(UNKNOWN_LINK),
            data: record.data,
            orig_len: record.orig_len,
            offset: record.offset,
        };
        assert_eq!(
            decoder.decode(&frame).segment,
            Err(SkipReason::UnsupportedLinkType(UNKNOWN_LINK))
        );
    }
});
