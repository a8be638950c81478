//! The records a tracker hands on, kept in order instead of counted at once, so that another
//! thread can hand them to the sinks that count them. Counting them (connect attempts, ports
//! held, the summaries) is a third of the work after reading; in a thread of its own it runs
//! beside the judging of the next segments.

use std::ops::Range;

use super::incarnation::IncarnationRecord;
use super::syn::{RecordSink, SynRecord};
use super::tuple::TupleKey;
use crate::prefetch_map::LookupStep;

/// One call a tracker made on its sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    Syn(SynRecord),
    Incarnation(IncarnationRecord),
    PortTaken(TupleKey, i64),
}

/// The calls, each with the candidates it was made for, in the order the tracker made them.
pub type HandedRecords = Vec<(Range<usize>, Handed)>;

/// A sink that keeps what it is handed. A tracker's calls all go to its first candidate's log,
/// whichever candidates they hold for, so one log keeps their order; the other candidates'
/// logs stay empty.
#[derive(Debug, Default)]
pub struct RecordLog {
    /// The candidate this sink stands for, for calls made on it alone.
    candidate: usize,
    handed: HandedRecords,
}

impl RecordLog {
    /// The log of candidate `candidate` (numbered from 0, in the tracker's order).
    pub fn for_candidate(candidate: usize) -> Self {
        RecordLog {
            candidate,
            handed: Vec::new(),
        }
    }

    /// What the tracker's candidates were handed since the last call, in order; `spare` (an
    /// emptied list given back, so that lists are not allocated anew for every batch) takes
    /// its place.
    pub fn take(logs: &mut [RecordLog], mut spare: HandedRecords) -> HandedRecords {
        debug_assert!(logs.iter().skip(1).all(|log| log.handed.is_empty()));
        spare.clear();
        match logs.first_mut() {
            Some(first) => std::mem::replace(&mut first.handed, spare),
            None => spare,
        }
    }

    /// Makes the same calls on `sinks`, in order: they end as if the tracker had fed them.
    /// The list is left empty, to be given back.
    pub fn replay<S: RecordSink>(handed: &mut HandedRecords, sinks: &mut [S]) {
        // A SYN's lookups land anywhere in tables of hundreds of thousands of entries: each
        // is started in two steps, INDEX_AHEAD and then ENTRY_AHEAD records before the SYN.
        const INDEX_AHEAD: usize = 16;
        const ENTRY_AHEAD: usize = 8;
        let syn_at = |i: usize| match handed.get(i) {
            Some((_, Handed::Syn(syn))) => Some(syn),
            _ => None,
        };
        for syn in (0..INDEX_AHEAD).filter_map(syn_at) {
            S::prefetch_syn(sinks, syn, LookupStep::Index);
        }
        for (i, (candidates, call)) in handed.iter().enumerate() {
            if let Some(syn) = syn_at(i + INDEX_AHEAD) {
                S::prefetch_syn(sinks, syn, LookupStep::Index);
            }
            if let Some(syn) = syn_at(i + ENTRY_AHEAD) {
                S::prefetch_syn(sinks, syn, LookupStep::Entry);
            }
            let candidates = candidates.clone();
            match *call {
                Handed::Syn(syn) => S::syn_to(sinks, candidates, syn),
                Handed::Incarnation(incarnation) => {
                    S::incarnation_to(sinks, candidates, incarnation)
                }
                Handed::PortTaken(tuple, syn_ns) => {
                    S::port_taken_to(sinks, candidates, tuple, syn_ns)
                }
            }
        }
        handed.clear();
    }

    fn own(&self) -> Range<usize> {
        self.candidate..self.candidate + 1
    }
}

impl RecordSink for RecordLog {
    fn syn(&mut self, syn: SynRecord) {
        let own = self.own();
        self.handed.push((own, Handed::Syn(syn)));
    }

    fn incarnation(&mut self, incarnation: IncarnationRecord) {
        let own = self.own();
        self.handed.push((own, Handed::Incarnation(incarnation)));
    }

    fn port_taken(&mut self, tuple: TupleKey, syn_ns: i64) {
        let own = self.own();
        self.handed.push((own, Handed::PortTaken(tuple, syn_ns)));
    }

    fn syn_to(logs: &mut [Self], candidates: Range<usize>, syn: SynRecord) {
        logs[0].handed.push((candidates, Handed::Syn(syn)));
    }

    fn incarnation_to(logs: &mut [Self], candidates: Range<usize>, incarnation: IncarnationRecord) {
        logs[0]
            .handed
            .push((candidates, Handed::Incarnation(incarnation)));
    }

    fn port_taken_to(logs: &mut [Self], candidates: Range<usize>, tuple: TupleKey, syn_ns: i64) {
        logs[0]
            .handed
            .push((candidates, Handed::PortTaken(tuple, syn_ns)));
    }
}
