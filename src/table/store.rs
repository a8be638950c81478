//! Records kept once for every server-setting candidate they hold for. Candidates judged
//! together hand on the same record for every tuple they judge alike, which is nearly all of
//! them: keeping one copy with the set of candidates it belongs to, instead of a copy per
//! candidate, halves what `export` and `report` hold for the usual two tcp_rfc1337
//! candidates.

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use super::TableRecords;
use crate::flow::{IncarnationRecord, SynRecord};
use crate::threads::{join, spawn_named};

/// Candidates a record belongs to, one bit each.
type Candidates = u64;

/// The most candidates one store tells apart.
pub const MAX_CANDIDATES: usize = Candidates::BITS as usize;

/// The records of the candidates of one tracker, kept as the tracker hands them on.
#[derive(Debug, Default)]
pub struct SharedRecords {
    syns: Shelf<SynRecord>,
    incarnations: Shelf<IncarnationRecord>,
}

/// Records in the order they were handed on, and beside each the candidates it belongs to.
/// Kept apart, so that a candidate every record belongs to (nearly always the case) takes
/// the records as they are, where records paired with their candidates had to be copied
/// out of the pairs: half a GB on a ten-million-packet capture.
#[derive(Debug, Clone)]
struct Shelf<R> {
    records: Vec<R>,
    owners: Vec<Candidates>,
}

impl<R> Default for Shelf<R> {
    fn default() -> Self {
        Shelf {
            records: Vec::new(),
            owners: Vec::new(),
        }
    }
}

fn bits(candidates: Range<usize>) -> Candidates {
    assert!(
        candidates.end <= MAX_CANDIDATES,
        "at most {MAX_CANDIDATES} candidates share a record store"
    );
    candidates.fold(0, |bits, candidate| bits | 1 << candidate)
}

impl<R: PartialEq> Shelf<R> {
    /// Appends `record` for `owners`: to the last entry when that is the same record and
    /// none of them has it yet (split copies hand the same record to each candidate in
    /// turn), else as a new entry. Each candidate's records keep the order it was handed
    /// them in.
    fn shelve(&mut self, record: R, owners: Candidates) {
        match (self.records.last(), self.owners.last_mut()) {
            (Some(last), Some(held_by)) if *held_by & owners == 0 && *last == record => {
                *held_by |= owners;
            }
            _ => {
                self.records.push(record);
                self.owners.push(owners);
            }
        }
    }
}

impl<R> Shelf<R> {
    /// The records of `bit`'s candidate, in place, each handed to `each` on the way (in the
    /// same pass: a second pass over a quarter GB of records is a second wait on memory).
    fn mine(self, bit: Candidates, mut each: impl FnMut(&mut R)) -> Vec<R> {
        let Shelf {
            mut records,
            owners,
        } = self;
        if owners.iter().any(|held_by| held_by & bit == 0) {
            // `retain_mut` visits the records once each, in order.
            let mut owners = owners.iter();
            records.retain_mut(|record| {
                let kept = owners.next().is_some_and(|held_by| held_by & bit != 0);
                if kept {
                    each(record);
                }
                kept
            });
        } else {
            records.iter_mut().for_each(each);
        }
        records
    }
}

impl SharedRecords {
    pub fn syn(&mut self, candidates: Range<usize>, syn: SynRecord) {
        self.syns.shelve(syn, bits(candidates));
    }

    pub fn incarnation(&mut self, candidates: Range<usize>, incarnation: IncarnationRecord) {
        self.incarnations.shelve(incarnation, bits(candidates));
    }

    /// A view of the store for each of `candidates` candidates, in order, to take one
    /// candidate's records out once the candidates are compared.
    pub fn into_views(self, candidates: usize) -> Vec<RecordsView> {
        let store = Arc::new(Mutex::new(self));
        (0..candidates)
            .map(|candidate| RecordsView {
                store: Arc::clone(&store),
                candidate,
            })
            .collect()
    }
}

/// One candidate's records in a store its tracker's candidates share.
#[derive(Debug)]
pub struct RecordsView {
    store: Arc<Mutex<SharedRecords>>,
    candidate: usize,
}

impl RecordsView {
    /// This candidate's records, in the order it was handed them, taken out of the store:
    /// one candidate's records are used in the end, and taking them in place keeps a
    /// second copy from ever being made. The store is empty afterwards. When the other
    /// candidates own records this one does not, the records after the first of them move
    /// up: the SYNs on another thread, in the time the incarnations take (each a quarter GB
    /// on a ten-million-packet capture, while every other thread of the analysis is done).
    /// Each SYN kept is handed to `each_syn` as it is taken.
    pub fn take(self, each_syn: impl FnMut(&mut SynRecord) + Send) -> TableRecords {
        let bit = 1 << self.candidate;
        // A poisoned lock means a thread panicked holding it; the records are whole anyway.
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let (syns, incarnations) = (
            std::mem::take(&mut store.syns),
            std::mem::take(&mut store.incarnations),
        );
        std::thread::scope(|scope| {
            let syns = spawn_named(scope, "records", move || syns.mine(bit, each_syn));
            let incarnations = incarnations.mine(bit, |_| {});
            TableRecords {
                syns: join(syns),
                incarnations,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_handed_to_candidates_together_or_in_turn_is_kept_once() {
        let mut shelf = Shelf::default();
        shelf.shelve('a', 0b11);
        shelf.shelve('b', 0b10);
        shelf.shelve('c', 0b01);
        shelf.shelve('c', 0b10);
        // The same record again for a candidate that has it: a second record.
        shelf.shelve('c', 0b10);
        assert_eq!(shelf.records, ['a', 'b', 'c', 'c']);
        assert_eq!(shelf.owners, [0b11, 0b10, 0b11, 0b10]);
        let mut seen = Vec::new();
        assert_eq!(shelf.clone().mine(0b01, |r| seen.push(*r)), ['a', 'c']);
        assert_eq!(seen, ['a', 'c']);
        seen.clear();
        assert_eq!(shelf.mine(0b10, |r| seen.push(*r)), ['a', 'b', 'c', 'c']);
        assert_eq!(seen, ['a', 'b', 'c', 'c']);
        assert_eq!(bits(1..3), 0b110);
    }
}
