//! The table of held tuples. Every segment looks its tuple up, in one direction or the other,
//! so the hash is symmetric in the two endpoints: computed once per segment, it finds the tuple
//! whichever side is the server, and both lookups probe the same slots.

use std::hash::BuildHasher;
use std::net::SocketAddr;

use hashbrown::HashTable;

use super::tuple::{TupleKey, unordered_pair};

pub struct TupleTable<V> {
    table: HashTable<(TupleKey, V)>,
    /// Seeded per process, so a crafted capture cannot aim collisions at the table.
    hasher: foldhash::fast::RandomState,
}

impl<V> Default for TupleTable<V> {
    fn default() -> Self {
        TupleTable {
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

fn symmetric_hash(hasher: &foldhash::fast::RandomState, a: SocketAddr, b: SocketAddr) -> u64 {
    hasher.hash_one(unordered_pair(a, b))
}

impl<V> TupleTable<V> {
    /// The hash both orientations of the endpoint pair share.
    pub fn hash(&self, a: SocketAddr, b: SocketAddr) -> u64 {
        symmetric_hash(&self.hasher, a, b)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn get(&self, hash: u64, key: &TupleKey) -> Option<&V> {
        self.table.find(hash, |(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, hash: u64, key: &TupleKey) -> Option<&mut V> {
        self.table.find_mut(hash, |(k, _)| k == key).map(|(_, v)| v)
    }

    /// Inserts a tuple that is not held yet.
    pub fn insert(&mut self, hash: u64, key: TupleKey, value: V) -> &mut V {
        let hasher = &self.hasher;
        let entry = self.table.insert_unique(hash, (key, value), |(k, _)| {
            symmetric_hash(hasher, k.client, k.server)
        });
        &mut entry.into_mut().1
    }

    pub fn remove(&mut self, hash: u64, key: &TupleKey) -> Option<V> {
        self.table
            .find_entry(hash, |(k, _)| k == key)
            .ok()
            .map(|entry| entry.remove().0.1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&TupleKey, &mut V) -> bool) {
        self.table.retain(|(k, v)| keep(k, v));
    }

    pub fn keys(&self) -> impl Iterator<Item = &TupleKey> {
        self.table.iter().map(|(k, _)| k)
    }

    /// Rebuilds a table holding less than a quarter of its capacity (after a burst of tuples
    /// has been forgotten), leaving room to double: a table never gives back what a burst
    /// made it grow to, unless asked.
    pub fn shrink_when_sparse(&mut self) {
        if self.table.capacity() > 4 * self.table.len() + 1024 {
            let hasher = &self.hasher;
            self.table.shrink_to(2 * self.table.len(), |(k, _)| {
                symmetric_hash(hasher, k.client, k.server)
            });
        }
    }
}
