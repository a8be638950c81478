//! Just enough IP reassembly to read a TCP header that fragmentation split up: the first
//! 60 bytes of each fragmented TCP datagram are kept until the header is whole and the
//! last fragment has said how long the datagram is.

use std::collections::HashMap;
use std::net::IpAddr;

/// The longest TCP header (data offset 15).
const MAX_TCP_HEADER: usize = 60;
/// Linux's net.ipv4.ipfrag_time: a datagram not complete by then is dropped.
const FRAGMENT_TIMEOUT_NS: i64 = 30 * 1_000_000_000;
/// Datagrams waiting at once; beyond this the oldest are dropped (a fragment flood).
const MAX_PENDING: usize = 4096;

/// Identifies the fragments of one datagram (RFC 791 / RFC 8200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
}

/// One fragment's place in its datagram.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub key: FragmentKey,
    /// Byte offset of this fragment's payload in the datagram's payload.
    pub offset: usize,
    pub more: bool,
    pub payload: &'a [u8],
}

/// A TCP header put together from fragments, and the datagram's payload length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    pub header: Vec<u8>,
    pub datagram_len: usize,
}

#[derive(Debug)]
struct Partial {
    head: [u8; MAX_TCP_HEADER],
    /// Bit i set: byte i of `head` has arrived.
    have: u64,
    datagram_len: Option<usize>,
    first_ns: i64,
}

#[derive(Debug, Default)]
pub struct HeaderDefrag {
    pending: HashMap<FragmentKey, Partial>,
}

impl HeaderDefrag {
    /// Adds a fragment; returns the TCP header once it is whole and the datagram's end known.
    pub fn add(&mut self, fragment: &Fragment<'_>, now_ns: i64) -> Option<Reassembled> {
        if self.pending.len() >= MAX_PENDING {
            self.pending
                .retain(|_, p| now_ns.saturating_sub(p.first_ns) < FRAGMENT_TIMEOUT_NS);
            if self.pending.len() >= MAX_PENDING {
                let oldest = self
                    .pending
                    .iter()
                    .min_by_key(|(_, p)| p.first_ns)
                    .map(|(k, _)| *k);
                if let Some(key) = oldest {
                    self.pending.remove(&key);
                }
            }
        }
        let partial = self.pending.entry(fragment.key).or_insert(Partial {
            head: [0; MAX_TCP_HEADER],
            have: 0,
            datagram_len: None,
            first_ns: now_ns,
        });
        if now_ns.saturating_sub(partial.first_ns) >= FRAGMENT_TIMEOUT_NS {
            // The kernel would have given up on the old datagram: start over.
            *partial = Partial {
                head: [0; MAX_TCP_HEADER],
                have: 0,
                datagram_len: None,
                first_ns: now_ns,
            };
        }
        for (i, byte) in fragment.payload.iter().enumerate() {
            let at = fragment.offset + i;
            if at >= MAX_TCP_HEADER {
                break;
            }
            partial.head[at] = *byte;
            partial.have |= 1 << at;
        }
        if !fragment.more {
            partial.datagram_len = Some(fragment.offset + fragment.payload.len());
        }
        let datagram_len = partial.datagram_len?;
        let has = |n: usize| n <= MAX_TCP_HEADER && (0..n).all(|i| partial.have & (1 << i) != 0);
        if !has(13) {
            return None;
        }
        let header_len = usize::from(partial.head[12] >> 4) * 4;
        if header_len < 20 || !has(header_len) || header_len > datagram_len {
            return None;
        }
        let header = partial.head[..header_len].to_vec();
        self.pending.remove(&fragment.key);
        Some(Reassembled {
            header,
            datagram_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragmentKey {
        FragmentKey {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            id: 7,
        }
    }

    fn header() -> Vec<u8> {
        // Ports 12345 -> 8080, seq 1, data offset 6 (24 bytes), SYN, one 4-byte option.
        let mut h = vec![
            0x30, 0x39, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0x20, 0,
        ];
        h.extend_from_slice(&[0x19, 0x0c, 0, 0, 3, 3, 14, 0]);
        h
    }

    /// The 8 bytes of `header` at `offset`, as one fragment.
    fn piece(header: &[u8], offset: usize, more: bool) -> Fragment<'_> {
        Fragment {
            key: key(),
            offset,
            more,
            payload: &header[offset..offset + 8],
        }
    }

    #[test]
    fn header_split_in_three_is_whole_at_the_last_fragment() {
        let h = header();
        let mut defrag = HeaderDefrag::default();
        let piece = |offset: usize, more: bool| piece(&h, offset, more);
        assert_eq!(defrag.add(&piece(0, true), 0), None);
        assert_eq!(defrag.add(&piece(8, true), 1), None);
        let done = defrag.add(&piece(16, false), 2).expect("complete");
        assert_eq!(done.header, h);
        assert_eq!(done.datagram_len, 24);
        assert!(defrag.pending.is_empty());
    }

    #[test]
    fn fragments_in_any_order() {
        let h = header();
        let mut defrag = HeaderDefrag::default();
        let piece = |offset: usize, more: bool| piece(&h, offset, more);
        assert_eq!(defrag.add(&piece(16, false), 0), None);
        assert_eq!(defrag.add(&piece(0, true), 1), None);
        assert!(defrag.add(&piece(8, true), 2).is_some());
    }

    #[test]
    fn stale_fragments_are_forgotten() {
        let h = header();
        let mut defrag = HeaderDefrag::default();
        let piece = |offset: usize, more: bool| piece(&h, offset, more);
        defrag.add(&piece(0, true), 0);
        defrag.add(&piece(8, true), 1);
        assert_eq!(defrag.add(&piece(16, false), FRAGMENT_TIMEOUT_NS + 1), None);
    }
}
