//! A map from 64-bit keys whose lookups can be started before they are made: a caller that
//! knows the keys it will ask for next has their index slots, then their entries, fetched
//! into the cache while it handles earlier ones. The open connect attempts (hundreds of
//! thousands, one looked up per SYN at a random place) otherwise wait on memory at every
//! SYN; a general-purpose map hides where it would look.
//!
//! The entries live in one vector, found through a [`HashIndex`]; removed entries are reused.

use std::hash::BuildHasher;

use crate::hash_index::HashIndex;
use crate::prefetch::prefetch_whole;

/// Which step of a lookup to start: the index slots first, the entry once they have had time
/// to arrive (finding the entry reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupStep {
    Index,
    Entry,
}

pub struct PrefetchMap<V> {
    index: HashIndex,
    /// `None` where an entry was removed and not yet reused.
    entries: Vec<Option<(u64, V)>>,
    /// Entries free for reuse.
    free: Vec<u32>,
    /// Seeded per process, so a crafted capture cannot aim collisions at the map.
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for PrefetchMap<V> {
    fn default() -> Self {
        PrefetchMap {
            index: HashIndex::default(),
            entries: Vec::new(),
            free: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl<V> std::fmt::Debug for PrefetchMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefetchMap")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<V> PrefetchMap<V> {
    /// Room for `len` keys before the index or the entries grow.
    pub fn with_capacity(len: usize) -> Self {
        PrefetchMap {
            index: HashIndex::with_capacity(len),
            entries: Vec::with_capacity(len),
            ..PrefetchMap::default()
        }
    }

    fn hash(&self, key: u64) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts one step of a lookup of `key`: [`LookupStep::Index`] some lookups before it,
    /// [`LookupStep::Entry`] a few lookups later (the entry an insert would take when `key`
    /// is not there).
    pub fn prefetch(&self, key: u64, step: LookupStep) {
        let hash = self.hash(key);
        match step {
            LookupStep::Index => self.index.prefetch(hash),
            LookupStep::Entry => {
                // The first entry whose slot matches the hash: nearly always the key's own.
                let at = self
                    .index
                    .find(hash, |_| true)
                    .or_else(|| self.free.last().copied());
                if let Some(entry) = at.and_then(|at| self.entries.get(at as usize)) {
                    prefetch_whole(entry);
                }
            }
        }
    }

    /// Where `key` is held.
    fn find(&self, hash: u64, key: u64) -> Option<u32> {
        let entries = &self.entries;
        self.index.find(
            hash,
            |at| matches!(&entries[at as usize], Some((held, _)) if *held == key),
        )
    }

    pub fn get(&self, key: u64) -> Option<&V> {
        let at = self.find(self.hash(key), key)?;
        self.entries[at as usize].as_ref().map(|(_, value)| value)
    }

    /// The value under `key`, made by `make` and inserted if there is none.
    pub fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hash(key);
        let at = match self.find(hash, key) {
            Some(at) => at,
            None => {
                let at = match self.free.pop() {
                    Some(at) => {
                        self.entries[at as usize] = Some((key, make()));
                        at
                    }
                    None => {
                        self.entries.push(Some((key, make())));
                        u32::try_from(self.entries.len() - 1)
                            .expect("fewer than 2^32 entries fit in memory")
                    }
                };
                self.index.insert(hash, at);
                at
            }
        };
        match &mut self.entries[at as usize] {
            Some((_, value)) => value,
            None => unreachable!("entry {at} is indexed, so held"),
        }
    }

    /// Keeps the values `keep` says to keep. Walks the entries in memory order, and unindexes
    /// the dropped ones after the walk, fetching their index slots ahead: they lie all over
    /// the index.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        let PrefetchMap {
            index,
            entries,
            free,
            hasher,
        } = self;
        let mut dropped = Vec::new();
        for (at, entry) in entries.iter_mut().enumerate() {
            let Some((key, value)) = entry else {
                continue;
            };
            if keep(value) {
                continue;
            }
            let at = at as u32;
            dropped.push((hasher.hash_one(*key), at));
            *entry = None;
            free.push(at);
        }
        index.remove_each(&dropped);
    }

    /// Every value, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().flatten().map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_a_map_through_inserts_retains_and_reuse() {
        let mut map: PrefetchMap<u64> = PrefetchMap::default();
        let mut model: HashMap<u64, u64> = HashMap::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for step in 0..30_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = state % 3000;
            // Asking ahead changes nothing.
            map.prefetch(key, LookupStep::Index);
            map.prefetch(key ^ 1, LookupStep::Entry);
            *map.get_or_insert_with(key, || step) += 1;
            *model.entry(key).or_insert(step) += 1;
            if step % 1000 == 999 {
                let keep = |value: &mut u64| {
                    *value += 7;
                    !value.is_multiple_of(3)
                };
                map.retain(keep);
                model.retain(|_, value| keep(value));
            }
            assert_eq!(map.len(), model.len(), "step {step}");
        }
        for (&key, value) in &model {
            assert_eq!(map.get(key), Some(value));
        }
        assert_eq!(map.get(3000), None);
        // Removed entries were reused: the vector holds no more than the most ever held.
        assert!(map.entries.len() <= 3000, "{}", map.entries.len());
        let mut values: Vec<u64> = map.values_mut().map(|value| *value).collect();
        let mut expected: Vec<u64> = model.values().copied().collect();
        values.sort_unstable();
        expected.sort_unstable();
        assert_eq!(values, expected);
    }
}
