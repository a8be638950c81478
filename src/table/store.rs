//! Records kept once for every server-setting candidate they hold for. Candidates judged
//! together hand on the same record for every tuple they judge alike, which is nearly all of
//! them: keeping one copy with the set of candidates it belongs to, instead of a copy per
//! candidate, halves what `export` and `report` hold for the usual two tcp_rfc1337
//! candidates.

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use super::TableRecords;
use crate::flow::{IncarnationRecord, SynRecord};

/// Candidates a record belongs to, one bit each.
type Candidates = u64;

/// The most candidates one store tells apart.
pub const MAX_CANDIDATES: usize = Candidates::BITS as usize;

/// The records of the candidates of one tracker, kept as the tracker hands them on.
#[derive(Debug, Default)]
pub struct SharedRecords {
    syns: Vec<(SynRecord, Candidates)>,
    incarnations: Vec<(IncarnationRecord, Candidates)>,
}

fn bits(candidates: Range<usize>) -> Candidates {
    assert!(
        candidates.end <= MAX_CANDIDATES,
        "at most {MAX_CANDIDATES} candidates share a record store"
    );
    candidates.fold(0, |bits, candidate| bits | 1 << candidate)
}

/// Appends `record` for `owners`: to the last entry when that is the same record and none of
/// them has it yet (split copies hand the same record to each candidate in turn), else as a
/// new entry. Each candidate's records keep the order it was handed them in.
fn shelve<R: PartialEq>(entries: &mut Vec<(R, Candidates)>, record: R, owners: Candidates) {
    match entries.last_mut() {
        Some((last, held_by)) if *held_by & owners == 0 && *last == record => *held_by |= owners,
        _ => entries.push((record, owners)),
    }
}

impl SharedRecords {
    pub fn syn(&mut self, candidates: Range<usize>, syn: SynRecord) {
        shelve(&mut self.syns, syn, bits(candidates));
    }

    pub fn incarnation(&mut self, candidates: Range<usize>, incarnation: IncarnationRecord) {
        shelve(&mut self.incarnations, incarnation, bits(candidates));
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
    /// second copy from ever being made. The store is empty afterwards.
    pub fn take(self) -> TableRecords {
        let bit = 1 << self.candidate;
        // A poisoned lock means a thread panicked holding it; the records are whole anyway.
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        TableRecords {
            syns: mine(std::mem::take(&mut store.syns), bit),
            incarnations: mine(std::mem::take(&mut store.incarnations), bit),
        }
    }
}

/// The records of `bit`'s candidate, reusing the entries' memory.
fn mine<R>(entries: Vec<(R, Candidates)>, bit: Candidates) -> Vec<R> {
    entries
        .into_iter()
        .filter(|(_, owners)| owners & bit != 0)
        .map(|(record, _)| record)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_handed_to_candidates_together_or_in_turn_is_kept_once() {
        let mut entries = Vec::new();
        shelve(&mut entries, 'a', 0b11);
        shelve(&mut entries, 'b', 0b10);
        shelve(&mut entries, 'c', 0b01);
        shelve(&mut entries, 'c', 0b10);
        // The same record again for a candidate that has it: a second record.
        shelve(&mut entries, 'c', 0b10);
        assert_eq!(
            entries,
            vec![('a', 0b11), ('b', 0b10), ('c', 0b11), ('c', 0b10)]
        );
        assert_eq!(mine(entries.clone(), 0b01), vec!['a', 'c']);
        assert_eq!(mine(entries, 0b10), vec!['a', 'b', 'c', 'c']);
        assert_eq!(bits(1..3), 0b110);
    }
}
