//! An index from hashes to entry numbers, for tables that keep their entries elsewhere (the
//! tuple table, the open connect attempts): which entry holds a key, found by its hash.
//!
//! Open addressing with linear probing over 8-byte slots, each holding 32 bits of the hash
//! and the entry's number. A lookup usually reads one cache line of slots and compares hash
//! bits before it touches any entry, and the slot a hash starts from is known before the
//! lookup: callers that know their next keys ask for it to be fetched into the cache while
//! they handle earlier ones ([`HashIndex::prefetch`]). A general-purpose map hides where it
//! would look.
//!
//! Removal shifts the slots behind the removed one back (no tombstones), so the index never
//! fills with deleted slots however many keys come and go. The hash bits kept in a slot are
//! those that pick its home slot, so growing and shrinking re-place slots without asking for
//! the keys' hashes again.

/// The fewest slots. Slots are kept at most half full: linear probing's runs stay short.
const MIN_SLOTS: usize = 64;

pub struct HashIndex {
    /// 0: empty; else the low 32 bits of the hash above the entry's number plus one.
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

impl Default for HashIndex {
    fn default() -> Self {
        HashIndex::with_slots(MIN_SLOTS)
    }
}

/// The hash bits a slot keeps: they pick its home slot (tables up to 2^32 slots) and tell
/// most non-matching slots apart without opening their entries.
fn hash_bits(hash: u64) -> u32 {
    hash as u32
}

fn slot_value(hash: u64, at: u32) -> u64 {
    u64::from(hash_bits(hash)) << 32 | (u64::from(at) + 1)
}

fn entry_of(slot: u64) -> u32 {
    (slot as u32).wrapping_sub(1)
}

/// `slots` empty slots, written out. `vec![0; n]` asks for memory the system hands over
/// zeroed and maps on first touch: the first lookup reading a page mapped the shared zero
/// page, and the first insert there faulted again to replace it, which makes the kernel
/// flush that page from every core's TLB (an interrupt to each). Written at once, each
/// page faults once. (Half the faults of a large index, and most of their cost.)
#[allow(clippy::slow_vector_initialization)] // written out on purpose, as said above
fn empty_slots(slots: usize) -> Vec<u64> {
    let mut empty = Vec::with_capacity(slots);
    empty.resize(slots, 0);
    empty
}

/// Slots for `len` entries, at most half full.
fn slots_for(len: usize) -> usize {
    (2 * len).next_power_of_two().max(MIN_SLOTS)
}

impl HashIndex {
    fn with_slots(slots: usize) -> Self {
        HashIndex {
            slots: empty_slots(slots),
            mask: slots - 1,
            len: 0,
        }
    }

    /// Room for `len` entries before the slots grow.
    pub fn with_capacity(len: usize) -> Self {
        HashIndex::with_slots(slots_for(len))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.slots.len() / 2
    }

    fn home(&self, bits: u32) -> usize {
        bits as usize & self.mask
    }

    /// Fetches the slots a lookup of `hash` starts at into the cache.
    pub fn prefetch(&self, hash: u64) {
        crate::prefetch::prefetch(&self.slots[self.home(hash_bits(hash))]);
    }

    /// The first entry indexed under `hash` that `is` accepts (asked only of entries whose
    /// slots match the hash).
    pub fn find(&self, hash: u64, is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, is).map(|i| entry_of(self.slots[i]))
    }

    fn find_slot(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<usize> {
        let bits = hash_bits(hash);
        let mut i = self.home(bits);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == bits && is(entry_of(slot)) {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Indexes entry `at` under `hash` (not indexed yet).
    pub fn insert(&mut self, hash: u64, at: u32) {
        if 2 * (self.len + 1) > self.slots.len() {
            self.resize(2 * self.slots.len());
        }
        self.place(slot_value(hash, at));
        self.len += 1;
    }

    fn place(&mut self, value: u64) {
        let mut i = self.home((value >> 32) as u32);
        while self.slots[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = value;
    }

    /// Unindexes entry `at`, indexed under `hash`; whether it was there.
    pub fn remove(&mut self, hash: u64, at: u32) -> bool {
        let Some(mut hole) = self.find_slot(hash, |i| i == at) else {
            return false;
        };
        self.len -= 1;
        // Backward shift: a later slot of the run moves into the hole unless its home lies
        // after the hole (it would then be found before reaching it).
        let mut next = (hole + 1) & self.mask;
        loop {
            let slot = self.slots[next];
            if slot == 0 {
                break;
            }
            let home = self.home((slot >> 32) as u32);
            let from_home_to_next = next.wrapping_sub(home) & self.mask;
            let from_home_to_hole = hole.wrapping_sub(home) & self.mask;
            if from_home_to_hole <= from_home_to_next {
                self.slots[hole] = slot;
                hole = next;
            }
            next = (next + 1) & self.mask;
        }
        self.slots[hole] = 0;
        true
    }

    /// Unindexes each entry under its hash, as [`HashIndex::remove`] one at a time would,
    /// fetching the slots of those a few places on while each is unindexed.
    pub fn remove_each(&mut self, indexed: &[(u64, u32)]) {
        const AHEAD: usize = 8;
        for (i, &(hash, at)) in indexed.iter().enumerate() {
            if let Some(&(ahead, _)) = indexed.get(i + AHEAD) {
                self.prefetch(ahead);
            }
            let removed = self.remove(hash, at);
            debug_assert!(removed, "entry {at} is indexed under its hash");
        }
    }

    /// Every indexed entry, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .filter(|&&slot| slot != 0)
            .map(|&slot| entry_of(slot))
    }

    /// Gives back room beyond what `len` entries need twice over.
    pub fn shrink_to(&mut self, len: usize) {
        let slots = slots_for(len.max(self.len));
        if slots < self.slots.len() {
            self.resize(slots);
        }
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, empty_slots(slots));
        self.mask = slots - 1;
        for slot in old.into_iter().filter(|&slot| slot != 0) {
            self.place(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Hashes crowded into few home slots, so runs wrap around the table's end and removals
    /// shift slots back across it.
    fn crowded_hash(n: u32) -> u64 {
        u64::from(n % 7) * 0x9e37_79b9 + 60
    }

    #[test]
    fn room_asked_for_takes_no_resize() {
        let mut index = HashIndex::with_capacity(1000);
        let slots = index.slots.len();
        for at in 0..1000u32 {
            index.insert(u64::from(at).wrapping_mul(0x9e37_79b9_7f4a_7c15), at);
        }
        assert_eq!(index.slots.len(), slots);
        assert!(index.capacity() >= 1000);
    }

    #[test]
    fn matches_a_map_through_inserts_removals_and_resizes() {
        let mut index = HashIndex::default();
        let mut model: HashMap<u32, u64> = HashMap::new();
        let mut state = 12345u64;
        for step in 0..20_000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (state >> 40) as u32 % 500;
            let hash = if at.is_multiple_of(3) {
                crowded_hash(at)
            } else {
                state ^ u64::from(at)
            };
            match model.get(&at) {
                Some(&indexed) => {
                    assert!(index.remove(indexed, at), "step {step}: {at} indexed");
                    assert!(!index.remove(indexed, at));
                    model.remove(&at);
                }
                None => {
                    index.insert(hash, at);
                    model.insert(at, hash);
                }
            }
            if step % 5000 == 4999 {
                index.shrink_to(model.len());
            }
            assert_eq!(index.len(), model.len());
            for (&at, &hash) in model.iter().take(8) {
                assert_eq!(index.find(hash, |i| i == at), Some(at), "step {step}");
            }
        }
        for (&at, &hash) in &model {
            assert_eq!(index.find(hash, |i| i == at), Some(at));
        }
        let mut all: Vec<u32> = index.entries().collect();
        all.sort_unstable();
        let mut expected: Vec<u32> = model.keys().copied().collect();
        expected.sort_unstable();
        assert_eq!(all, expected);
        assert!(index.find(crowded_hash(1), |_| false).is_none());
    }
}
