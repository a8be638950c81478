//! Records kept once for every server-setting candidate they hold for. Candidates judged
//! together hand on the same record for every tuple they judge alike, which is nearly all of
//! them: keeping one copy with the set of candidates it belongs to, instead of a copy per
//! candidate, halves what `export` and `report` hold for the usual two tcp_rfc1337
//! candidates.

use std::sync::{Arc, Mutex, PoisonError};

use super::TableRecords;
use crate::flow::{IncarnationRecord, RecordSink, SynRecord};

/// Candidates a record belongs to, one bit each.
type Candidates = u64;

/// The most candidates one store tells apart.
pub const MAX_CANDIDATES: usize = Candidates::BITS as usize;

#[derive(Debug, Default)]
struct Shelf {
    syns: Vec<(SynRecord, Candidates)>,
    incarnations: Vec<(IncarnationRecord, Candidates)>,
}

/// Appends `record` for `candidate`: to the last entry when that is the same record and not
/// yet the candidate's (the tracker hands a shared record to each candidate in turn), else as
/// a new entry. Each candidate's records keep the order it was handed them in.
fn shelve<R: PartialEq>(entries: &mut Vec<(R, Candidates)>, record: R, candidate: usize) {
    let bit = 1 << candidate;
    match entries.last_mut() {
        Some((last, owners)) if *owners & bit == 0 && *last == record => *owners |= bit,
        _ => entries.push((record, bit)),
    }
}

/// One candidate's view of a store the candidates of one tracker share; a [`RecordSink`].
#[derive(Debug, Clone)]
pub struct SharedRecords {
    shelf: Arc<Mutex<Shelf>>,
    candidate: usize,
}

impl SharedRecords {
    /// A store for `candidates` candidates, and each one's view of it, in order.
    pub fn for_candidates(candidates: usize) -> Vec<SharedRecords> {
        assert!(
            candidates <= MAX_CANDIDATES,
            "at most {MAX_CANDIDATES} candidates share a record store"
        );
        let shelf = Arc::new(Mutex::new(Shelf::default()));
        (0..candidates)
            .map(|candidate| SharedRecords {
                shelf: Arc::clone(&shelf),
                candidate,
            })
            .collect()
    }

    fn with_shelf<R>(&self, f: impl FnOnce(&mut Shelf) -> R) -> R {
        // The store is only ever used from the tracker's thread; a poisoned lock means that
        // thread panicked, and the panic is passed on anyway.
        f(&mut self.shelf.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// This candidate's records, in the order it was handed them, taken out of the store:
    /// one candidate's records are used in the end, and taking them in place keeps a
    /// second copy from ever being made. The store is empty afterwards.
    pub fn take(self) -> TableRecords {
        let bit = 1 << self.candidate;
        self.with_shelf(|shelf| TableRecords {
            syns: mine(std::mem::take(&mut shelf.syns), bit),
            incarnations: mine(std::mem::take(&mut shelf.incarnations), bit),
        })
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

impl RecordSink for SharedRecords {
    fn syn(&mut self, syn: SynRecord) {
        let candidate = self.candidate;
        self.with_shelf(|shelf| shelve(&mut shelf.syns, syn, candidate));
    }

    fn incarnation(&mut self, incarnation: IncarnationRecord) {
        let candidate = self.candidate;
        self.with_shelf(|shelf| shelve(&mut shelf.incarnations, incarnation, candidate));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_handed_to_each_candidate_in_turn_is_kept_once() {
        let mut entries = Vec::new();
        shelve(&mut entries, 'a', 0);
        shelve(&mut entries, 'a', 1);
        shelve(&mut entries, 'b', 1);
        shelve(&mut entries, 'c', 0);
        shelve(&mut entries, 'c', 1);
        // The same record again for a candidate that has it: a second record.
        shelve(&mut entries, 'c', 1);
        assert_eq!(
            entries,
            vec![('a', 0b11), ('b', 0b10), ('c', 0b11), ('c', 0b10)]
        );
        assert_eq!(mine(entries.clone(), 0b01), vec!['a', 'c']);
        assert_eq!(mine(entries, 0b10), vec!['a', 'b', 'c', 'c']);
    }
}
