//! The table of held tuples. Every segment looks its tuple up, in one direction or the other,
//! so the hash is symmetric in the two endpoints: computed once per segment, it finds the tuple
//! whichever side is the server, and both lookups probe the same slots.
//!
//! The index ([`HashIndex`]) holds only an 8-byte slot per tuple; the tuples themselves (a
//! few hundred bytes each) live in fixed-size chunks that never move. With the tuples inline
//! a hash table settled at twice the buckets the live tuples need and briefly held the old
//! table beside the new one while growing.
//!
//! Nearly every segment finds its tuple in memory the cache has not seen for a while: the
//! tracker hands the segments it will take next to [`TupleTable::prefetch_index`] and then
//! [`TupleTable::prefetch_entry`], so the index slots and the entry are on their way while
//! earlier segments are handled.
//!
//! Beside each chunk lies when each of its entries last saw a segment: a sweep for quiet
//! tuples reads that array alone (8 bytes an entry, in memory order) and opens only the
//! entries gone quiet, where reading every entry's own time would pull two cache lines of
//! each held tuple through the cache every sweep.

use std::hash::BuildHasher;
use std::net::{SocketAddr, SocketAddrV4};

use super::tuple::{TupleKey, unordered_pair};
use crate::hash_index::HashIndex;
use crate::prefetch::{prefetch, prefetch_whole};

/// The time seen of a free entry: later than any capture time, so never quiet.
const FREE: i64 = i64::MAX;

/// Entries per chunk: a few hundred kB, so a chunk is a small step in memory.
const CHUNK_BITS: u32 = 11;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
/// How many entries ahead a walk in an order of its own fetches the one it will visit.
pub const ENTRIES_AHEAD: usize = 8;

struct Chunk<V> {
    entries: Box<[Option<(TupleKey, V)>]>,
    /// Capture time of each entry's latest segment; [`FREE`] where the entry holds nothing,
    /// so that a sweep passes over it without opening it.
    seen_ns: Box<[i64]>,
}

impl<V> Chunk<V> {
    fn empty() -> Self {
        Chunk {
            entries: (0..CHUNK_LEN).map(|_| None).collect(),
            seen_ns: vec![FREE; CHUNK_LEN].into_boxed_slice(),
        }
    }
}

pub struct TupleTable<V> {
    /// Where each held tuple's entry is, found by the tuple's symmetric hash.
    index: HashIndex,
    /// The entries; `None` where one was removed and not yet reused.
    chunks: Vec<Chunk<V>>,
    /// Entries free for reuse.
    free: Vec<u32>,
    /// Entries ever handed out (the rest of the last chunk is untouched).
    used: u32,
    /// Seeded per process, so a crafted capture cannot aim collisions at the table.
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for TupleTable<V> {
    fn default() -> Self {
        TupleTable {
            index: HashIndex::default(),
            chunks: Vec::new(),
            free: Vec::new(),
            used: 0,
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

fn symmetric_hash(hasher: &foldhash::fast::RandomState, a: SocketAddr, b: SocketAddr) -> u64 {
    // IPv4 endpoints packed into 48 bits each and the pair into one integer: a single hash
    // step instead of one per address field.
    if let (SocketAddr::V4(a), SocketAddr::V4(b)) = (a, b) {
        let packed = |e: SocketAddrV4| u64::from(e.ip().to_bits()) << 16 | u64::from(e.port());
        let (a, b) = (packed(a), packed(b));
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        return hasher.hash_one(u128::from(low) | u128::from(high) << 48);
    }
    hasher.hash_one(unordered_pair(a, b))
}

/// Entry `at`'s chunk and its place in the chunk.
fn locate(at: u32) -> (usize, usize) {
    ((at >> CHUNK_BITS) as usize, at as usize & (CHUNK_LEN - 1))
}

/// The entry number of place `offset` in chunk `chunk` ([`locate`] undone).
fn entry_number(chunk: usize, offset: usize) -> u32 {
    ((chunk << CHUNK_BITS) | offset) as u32
}

fn slot<V>(chunks: &[Chunk<V>], at: u32) -> &Option<(TupleKey, V)> {
    let (chunk, offset) = locate(at);
    &chunks[chunk].entries[offset]
}

fn slot_mut<V>(chunks: &mut [Chunk<V>], at: u32) -> &mut Option<(TupleKey, V)> {
    let (chunk, offset) = locate(at);
    &mut chunks[chunk].entries[offset]
}

fn seen_mut<V>(chunks: &mut [Chunk<V>], at: u32) -> &mut i64 {
    let (chunk, offset) = locate(at);
    &mut chunks[chunk].seen_ns[offset]
}

/// Whether the entry at `at` holds `key`.
fn holds<V>(chunks: &[Chunk<V>], at: u32, key: &TupleKey) -> bool {
    slot(chunks, at).as_ref().is_some_and(|(k, _)| k == key)
}

impl<V> TupleTable<V> {
    /// The hash both orientations of the endpoint pair share.
    pub fn hash(&self, a: SocketAddr, b: SocketAddr) -> u64 {
        symmetric_hash(&self.hasher, a, b)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Starts fetching the index slots a lookup of `hash` reads.
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts fetching the entry a lookup of `hash` most likely ends at (the first whose
    /// index slot matches the hash), best after [`TupleTable::prefetch_index`] had time to
    /// bring the slots in.
    pub fn prefetch_entry(&self, hash: u64) {
        if let Some(at) = self.index.find(hash, |_| true) {
            self.prefetch_at(at);
        }
    }

    /// Starts fetching the entry at `at`, for a walk over entries in an order of its own.
    pub fn prefetch_at(&self, at: u32) {
        let (chunk, offset) = locate(at);
        let Some(chunk) = self.chunks.get(chunk) else {
            return;
        };
        if let Some(entry) = chunk.entries.get(offset) {
            prefetch_whole(entry);
            prefetch(&chunk.seen_ns[offset]);
        }
    }

    /// Where the tuple `key` is held.
    pub fn find(&self, hash: u64, key: &TupleKey) -> Option<u32> {
        let chunks = &self.chunks;
        self.index.find(hash, |at| holds(chunks, at, key))
    }

    /// Where the tuple between `a` and `b` is held, whichever of them is its client: one
    /// probe finds it for a segment going either way.
    pub fn find_pair(&self, hash: u64, a: SocketAddr, b: SocketAddr) -> Option<u32> {
        let chunks = &self.chunks;
        let between = |at: u32| {
            slot(chunks, at).as_ref().is_some_and(|(k, _)| {
                (k.client == a && k.server == b) || (k.client == b && k.server == a)
            })
        };
        self.index.find(hash, between)
    }

    /// The tuple held at `at` (from [`TupleTable::find`] or [`TupleTable::find_pair`]).
    pub fn entry(&self, at: u32) -> (&TupleKey, &V) {
        match slot(&self.chunks, at) {
            Some((k, v)) => (k, v),
            None => panic!("entry {at} is not held"),
        }
    }

    pub fn entry_mut(&mut self, at: u32) -> (&TupleKey, &mut V) {
        match slot_mut(&mut self.chunks, at) {
            Some((k, v)) => (k, v),
            None => panic!("entry {at} is not held"),
        }
    }

    /// The tuple held at `at`, noting that a segment reached it at `now_ns`.
    pub fn seen(&mut self, at: u32, now_ns: i64) -> (&TupleKey, &mut V) {
        *seen_mut(&mut self.chunks, at) = now_ns;
        self.entry_mut(at)
    }

    /// Inserts a tuple that is not held yet, seen first at `now_ns`; where it is held.
    pub fn insert(&mut self, hash: u64, key: TupleKey, value: V, now_ns: i64) -> u32 {
        let at = match self.free.pop() {
            Some(at) => {
                // The next tuple inserted takes the next free entry: long unused, it is far
                // from the cache.
                if let Some(&next) = self.free.last() {
                    let (chunk, offset) = locate(next);
                    prefetch_whole(&self.chunks[chunk].entries[offset]);
                }
                at
            }
            None => {
                if self.used as usize == self.chunks.len() * CHUNK_LEN {
                    self.chunks.push(Chunk::empty());
                }
                self.used += 1;
                self.used - 1
            }
        };
        *slot_mut(&mut self.chunks, at) = Some((key, value));
        *seen_mut(&mut self.chunks, at) = now_ns;
        self.index.insert(hash, at);
        at
    }

    /// Removes the tuple held at `at` (found under `hash`).
    pub fn remove(&mut self, hash: u64, at: u32) -> (TupleKey, V) {
        let indexed = self.index.remove(hash, at);
        debug_assert!(indexed, "entry {at} is indexed under its hash");
        self.free.push(at);
        *seen_mut(&mut self.chunks, at) = FREE;
        match slot_mut(&mut self.chunks, at).take() {
            Some(entry) => entry,
            None => panic!("entry {at} is not held"),
        }
    }

    /// Keeps the tuples `keep` says to keep, asking it only about those `quiet` says are
    /// quiet from the time they last saw a segment (the others are kept unopened; a free
    /// entry's time is later than any capture's, so it is never quiet). Walks
    /// the chunks in memory order (a sweep visits every tuple; the index's order would jump
    /// around memory) and unindexes the few it drops once the walk is done, fetching the
    /// index slots of the next ones while each is unindexed: they lie all over the index.
    pub fn retain_quiet(
        &mut self,
        quiet: impl Fn(i64) -> bool,
        mut keep: impl FnMut(&TupleKey, &mut V) -> bool,
    ) {
        let TupleTable {
            index,
            chunks,
            free,
            hasher,
            ..
        } = self;
        let mut dropped: Vec<(u64, u32)> = Vec::new();
        for (chunk_at, chunk) in chunks.iter_mut().enumerate() {
            let Chunk { entries, seen_ns } = chunk;
            for (offset, entry) in entries.iter_mut().enumerate() {
                if !quiet(seen_ns[offset]) {
                    continue;
                }
                let Some((key, value)) = entry.as_mut() else {
                    continue;
                };
                if keep(key, value) {
                    continue;
                }
                let at = entry_number(chunk_at, offset);
                dropped.push((symmetric_hash(hasher, key.client, key.server), at));
                *entry = None;
                seen_ns[offset] = FREE;
                free.push(at);
            }
        }
        index.remove_each(&dropped);
    }

    /// Where every held tuple is, in the tuples' order. IPv4 tuples are sorted as one integer
    /// each (the tuple's order and its entry number): comparing integers is a fraction of
    /// comparing two pairs of socket addresses field by field.
    pub fn in_key_order(&self) -> Vec<u32> {
        let entries: Vec<u32> = self.index.entries().collect();
        // The entries lie in no order: each is fetched a few keys early.
        let packed: Option<Vec<u128>> = entries
            .iter()
            .enumerate()
            .map(|(i, &at)| {
                if let Some(&ahead) = entries.get(i + ENTRIES_AHEAD) {
                    prefetch(slot(&self.chunks, ahead));
                }
                Some(self.entry(at).0.v4_order()? << 32 | u128::from(at))
            })
            .collect();
        match packed {
            Some(mut packed) => {
                packed.sort_unstable();
                // The entry number is the low 32 bits.
                packed.into_iter().map(|p| p as u32).collect()
            }
            None => {
                let mut entries = entries;
                entries.sort_unstable_by(|&a, &b| self.entry(a).0.cmp(self.entry(b).0));
                entries
            }
        }
    }

    /// Rebuilds a table holding less than a quarter of its room (after a burst of tuples has
    /// been forgotten), leaving room to double: a table never gives back what a burst made it
    /// grow to, unless asked.
    pub fn shrink_when_sparse(&mut self) {
        let len = self.len();
        if self.index.capacity() > 4 * len + 1024 {
            self.index.shrink_to(2 * len);
        }
        if self.chunks.len() * CHUNK_LEN > 4 * len + CHUNK_LEN {
            self.compact();
        }
    }

    /// Moves every held entry into as few chunks as hold them, and indexes them again.
    fn compact(&mut self) {
        let held: Vec<(TupleKey, V, i64)> = std::mem::take(&mut self.chunks)
            .into_iter()
            .flat_map(|chunk| {
                let seen_ns = chunk.seen_ns;
                chunk
                    .entries
                    .into_vec()
                    .into_iter()
                    .enumerate()
                    .filter_map(move |(i, entry)| entry.map(|(k, v)| (k, v, seen_ns[i])))
            })
            .collect();
        let hasher = self.hasher.clone();
        *self = TupleTable {
            hasher,
            ..TupleTable::default()
        };
        for (key, value, seen_ns) in held {
            let hash = self.hash(key.client, key.server);
            self.insert(hash, key, value, seen_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> TupleKey {
        TupleKey {
            client: SocketAddr::from(([203, 0, 113, 1], port)),
            server: SocketAddr::from(([203, 0, 113, 10], 80)),
        }
    }

    fn get<'t>(table: &'t TupleTable<u32>, hash: u64, key: &TupleKey) -> Option<&'t u32> {
        table.find(hash, key).map(|at| table.entry(at).1)
    }

    #[test]
    fn entries_are_found_reused_and_compacted() {
        let mut table = TupleTable::default();
        let n = 3 * CHUNK_LEN as u16;
        for port in 0..n {
            let k = key(port);
            let hash = table.hash(k.client, k.server);
            // Found from either side with the one hash.
            assert_eq!(hash, table.hash(k.server, k.client));
            let at = table.insert(hash, k, 0u32, i64::from(port));
            *table.entry_mut(at).1 = u32::from(port);
        }
        assert_eq!(table.len(), usize::from(n));
        let k = key(7);
        let hash = table.hash(k.client, k.server);
        let at = table.find(hash, &k).expect("held");
        assert_eq!(table.remove(hash, at), (k, 7));
        assert_eq!(get(&table, hash, &k), None);
        // The freed entry is reused, not a new one.
        assert_eq!(table.insert(hash, k, 70, 7), at);
        assert_eq!(table.used, u32::from(n));
        assert_eq!(get(&table, hash, &k), Some(&70));

        // Only entries quiet by their time seen are asked about: those seen at 4000 and
        // later are kept unasked.
        let mut asked = 0;
        table.retain_quiet(
            |seen_ns| seen_ns < 4000,
            |k, _| {
                asked += 1;
                k.client.port() % 100 == 0 || k.client.port() >= 4000
            },
        );
        assert_eq!(asked, 4000);
        let k = key(4001);
        let hash = table.hash(k.client, k.server);
        let at = table.find(hash, &k).expect("kept");
        assert_eq!(table.seen(at, 9000), (&k, &mut 4001));
        // Forget all but every hundredth: the table compacts and still finds them.
        table.retain_quiet(|_| true, |k, _| k.client.port() % 100 == 0);
        table.shrink_when_sparse();
        assert_eq!(table.chunks.len(), 1);
        // The time seen moves with its entry when the table compacts.
        let mut asked = Vec::new();
        table.retain_quiet(
            |seen_ns| seen_ns >= 5000,
            |k, _| {
                asked.push(k.client.port());
                true
            },
        );
        asked.sort_unstable();
        assert_eq!(asked, (5000..n).step_by(100).collect::<Vec<_>>());
        assert_eq!(table.len(), usize::from(n).div_ceil(100));
        for port in (0..n).step_by(100) {
            let k = key(port);
            let hash = table.hash(k.client, k.server);
            let mut value = get(&table, hash, &k).copied();
            if let Some(at) = table.find(hash, &k) {
                *table.entry_mut(at).1 += 1;
                value = value.map(|v| v + 1);
            }
            assert_eq!(value, Some(u32::from(port) + 1));
        }
        // Found from the server's side too, one probe either way.
        let k = key(300);
        let hash = table.hash(k.server, k.client);
        let at = table.find_pair(hash, k.server, k.client).expect("held");
        assert_eq!(table.entry(at), (&k, &301));
        assert_eq!(
            table.find(
                hash,
                &TupleKey {
                    client: k.server,
                    server: k.client
                }
            ),
            None
        );
        // In the tuples' order: one client address and server, so by client port.
        let ports: Vec<u16> = table
            .in_key_order()
            .into_iter()
            .map(|at| table.entry(at).0.client.port())
            .collect();
        assert_eq!(ports, (0..n).step_by(100).collect::<Vec<_>>());
    }
}
