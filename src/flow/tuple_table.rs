//! The table of held tuples. Every segment looks its tuple up, in one direction or the other,
//! so the hash is symmetric in the two endpoints: computed once per segment, it finds the tuple
//! whichever side is the server, and both lookups probe the same slots.
//!
//! The hash table holds only a 4-byte index per tuple; the tuples themselves (a few hundred
//! bytes each) live in fixed-size chunks. Tuples come and go all the time, and a hash table grows
//! when its deleted slots run out, not only when it is full: with the tuples inline it
//! settled at twice the buckets the live tuples need, and briefly held the old table beside
//! the new one while growing. Indexes make the buckets cheap, and chunks never move.

use std::hash::BuildHasher;
use std::net::{SocketAddr, SocketAddrV4};

use hashbrown::HashTable;

use super::tuple::{TupleKey, unordered_pair};

/// Entries per chunk: a few hundred kB, so a chunk is a small step in memory.
const CHUNK_BITS: u32 = 11;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;

type Chunk<V> = Box<[Option<(TupleKey, V)>]>;

pub struct TupleTable<V> {
    /// Where each held tuple's entry is, found by the tuple's symmetric hash.
    index: HashTable<u32>,
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
            index: HashTable::new(),
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

fn slot<V>(chunks: &[Chunk<V>], at: u32) -> &Option<(TupleKey, V)> {
    &chunks[(at >> CHUNK_BITS) as usize][at as usize & (CHUNK_LEN - 1)]
}

fn slot_mut<V>(chunks: &mut [Chunk<V>], at: u32) -> &mut Option<(TupleKey, V)> {
    &mut chunks[(at >> CHUNK_BITS) as usize][at as usize & (CHUNK_LEN - 1)]
}

/// Whether the entry at `at` holds `key`.
fn holds<V>(chunks: &[Chunk<V>], at: u32, key: &TupleKey) -> bool {
    slot(chunks, at).as_ref().is_some_and(|(k, _)| k == key)
}

fn rehash<V>(hasher: &foldhash::fast::RandomState, chunks: &[Chunk<V>], at: u32) -> u64 {
    match slot(chunks, at) {
        Some((k, _)) => symmetric_hash(hasher, k.client, k.server),
        None => 0, // the index only points at held entries
    }
}

impl<V> TupleTable<V> {
    /// The hash both orientations of the endpoint pair share.
    pub fn hash(&self, a: SocketAddr, b: SocketAddr) -> u64 {
        symmetric_hash(&self.hasher, a, b)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Where the tuple `key` is held.
    pub fn find(&self, hash: u64, key: &TupleKey) -> Option<u32> {
        let chunks = &self.chunks;
        self.index.find(hash, |&at| holds(chunks, at, key)).copied()
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
        self.index.find(hash, |&at| between(at)).copied()
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

    pub fn get_mut(&mut self, hash: u64, key: &TupleKey) -> Option<&mut V> {
        let at = self.find(hash, key)?;
        Some(self.entry_mut(at).1)
    }

    /// Inserts a tuple that is not held yet.
    pub fn insert(&mut self, hash: u64, key: TupleKey, value: V) -> &mut V {
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                if self.used as usize == self.chunks.len() * CHUNK_LEN {
                    self.chunks
                        .push((0..CHUNK_LEN).map(|_| None).collect::<Vec<_>>().into());
                }
                self.used += 1;
                self.used - 1
            }
        };
        *slot_mut(&mut self.chunks, at) = Some((key, value));
        let (hasher, chunks) = (&self.hasher, &self.chunks);
        self.index
            .insert_unique(hash, at, |&at| rehash(hasher, chunks, at));
        match slot_mut(&mut self.chunks, at) {
            Some((_, v)) => v,
            None => unreachable!("the entry was just filled"),
        }
    }

    pub fn remove(&mut self, hash: u64, key: &TupleKey) -> Option<V> {
        let chunks = &self.chunks;
        let (at, _) = self
            .index
            .find_entry(hash, |&at| holds(chunks, at, key))
            .ok()?
            .remove();
        self.free.push(at);
        slot_mut(&mut self.chunks, at).take().map(|(_, v)| v)
    }

    /// Keeps the tuples `keep` says to keep. Walks the chunks in memory order (a sweep
    /// visits every tuple; the index's order would jump around memory) and unindexes the
    /// few it drops.
    pub fn retain(&mut self, mut keep: impl FnMut(&TupleKey, &mut V) -> bool) {
        let TupleTable {
            index,
            chunks,
            free,
            hasher,
            ..
        } = self;
        for (chunk_at, chunk) in chunks.iter_mut().enumerate() {
            for (offset, entry) in chunk.iter_mut().enumerate() {
                let Some((key, value)) = entry.as_mut() else {
                    continue;
                };
                if keep(key, value) {
                    continue;
                }
                let at = ((chunk_at << CHUNK_BITS) | offset) as u32;
                let hash = symmetric_hash(hasher, key.client, key.server);
                if let Ok(indexed) = index.find_entry(hash, |&i| i == at) {
                    indexed.remove();
                }
                *entry = None;
                free.push(at);
            }
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &TupleKey> {
        self.index
            .iter()
            .filter_map(|&at| slot(&self.chunks, at).as_ref().map(|(k, _)| k))
    }

    /// Rebuilds a table holding less than a quarter of its room (after a burst of tuples has
    /// been forgotten), leaving room to double: a table never gives back what a burst made it
    /// grow to, unless asked.
    pub fn shrink_when_sparse(&mut self) {
        let len = self.len();
        if self.index.capacity() > 4 * len + 1024 {
            let (hasher, chunks) = (&self.hasher, &self.chunks);
            self.index
                .shrink_to(2 * len, |&at| rehash(hasher, chunks, at));
        }
        if self.chunks.len() * CHUNK_LEN > 4 * len + CHUNK_LEN {
            self.compact();
        }
    }

    /// Moves every held entry into as few chunks as hold them, and indexes them again.
    fn compact(&mut self) {
        let held: Vec<(TupleKey, V)> = std::mem::take(&mut self.chunks)
            .into_iter()
            .flat_map(|chunk| chunk.into_vec().into_iter().flatten())
            .collect();
        let hasher = self.hasher.clone();
        *self = TupleTable {
            hasher,
            ..TupleTable::default()
        };
        for (key, value) in held {
            let hash = self.hash(key.client, key.server);
            self.insert(hash, key, value);
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
            *table.insert(hash, k, 0u32) = u32::from(port);
        }
        assert_eq!(table.len(), usize::from(n));
        let k = key(7);
        let hash = table.hash(k.client, k.server);
        assert_eq!(table.remove(hash, &k), Some(7));
        assert_eq!(get(&table, hash, &k), None);
        // The freed entry is reused, not a new one.
        *table.insert(hash, k, 0) = 70;
        assert_eq!(table.used, u32::from(n));
        assert_eq!(get(&table, hash, &k), Some(&70));

        // Forget all but every hundredth: the table compacts and still finds them.
        table.retain(|k, _| k.client.port() % 100 == 0);
        table.shrink_when_sparse();
        assert_eq!(table.chunks.len(), 1);
        assert_eq!(table.len(), usize::from(n).div_ceil(100));
        for port in (0..n).step_by(100) {
            let k = key(port);
            let hash = table.hash(k.client, k.server);
            let mut value = get(&table, hash, &k).copied();
            if let Some(v) = table.get_mut(hash, &k) {
                *v += 1;
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
        let mut keys: Vec<u16> = table.keys().map(|k| k.client.port()).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..n).step_by(100).collect::<Vec<_>>());
    }
}
