//! Connect attempts counted as SYNs stream past (the `attempts` table without keeping its
//! rows): how many connects the server let through, how many PAWS delayed, how many failed.

use std::ops::Range;

use crate::prefetch_map::{LookupStep, PrefetchMap};

use crate::flow::{SynRecord, Verdict};
use crate::table::{AttemptKeys, same_clock};

/// A connect attempt whose SYNs may still arrive, as one candidate saw it. 32 bytes: the
/// open attempts of the last minutes are the tally's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenAttempt {
    first_ns: i64,
    last_ns: i64,
    /// When a SYN of it was answered and the handshake completed; [`NOT_ESTABLISHED`] if not.
    established_ns: i64,
    last_tsval: u32,
    has_tsval: bool,
    /// A SYN of it was rejected by TIME_WAIT.
    rejected: bool,
    /// False in a slot whose candidate has no open attempt with this key.
    open: bool,
}

const NOT_ESTABLISHED: i64 = i64::MAX;

impl OpenAttempt {
    const NONE: OpenAttempt = OpenAttempt {
        first_ns: 0,
        last_ns: 0,
        established_ns: NOT_ESTABLISHED,
        last_tsval: 0,
        has_tsval: false,
        rejected: false,
        open: false,
    };

    fn last_tsval(&self) -> Option<u32> {
        self.has_tsval.then_some(self.last_tsval)
    }
}

/// What became of the connect attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptTotals {
    pub attempts: u64,
    pub established: u64,
    /// Attempts none of whose SYNs led to a completed handshake.
    pub failed: u64,
    /// Failed attempts that had at least one SYN rejected by TIME_WAIT.
    pub failed_after_reject: u64,
    /// Established attempts that had at least one SYN rejected first: PAWS delayed them.
    pub delayed: u64,
    /// Total and worst time those delayed attempts took to establish.
    pub delay_total_ns: i64,
    pub delay_max_ns: i64,
}

/// An attempt is closed once no SYN of it can still arrive: its SYNs span at most a
/// retransmission series (tcp_syn_retries = 6: about 127 s), and the tracker hands a SYN on
/// at most its forget horizon (180 s) plus a sweep after the SYN was sent. Closing them keeps
/// memory to the attempts of the last few minutes, whatever the capture's length.
const ATTEMPT_QUIET_NS: i64 = 6 * 60 * 1_000_000_000;
/// How often, in SYN time, quiet attempts are closed. Each close walks every open attempt:
/// once a minute keeps those walks rare for holding a minute more of attempts (every two
/// minutes pushed a 2000 connects/s capture's map past a doubling: 150 MB more).
const CLOSE_EVERY_NS: i64 = 60 * 1_000_000_000;

/// Each candidate's open attempt with one key: one for them all while they were handed the
/// same SYNs (nearly always), a slot per candidate from the first SYN only some were handed.
/// 32 bytes while alike.
#[derive(Debug, Clone)]
enum Slots {
    Alike(OpenAttempt),
    Apart(Box<[OpenAttempt]>),
}

/// The connect attempts of every candidate of one tracker, counted as their SYN records
/// stream past (the `attempts` table without keeping its rows). One map holds each open
/// attempt with a slot per candidate: the tracker hands a shared tuple's SYN record to all
/// its candidates at once, so one lookup serves them all in a map of hundreds of thousands
/// of attempts.
#[derive(Debug, Default)]
pub struct AttemptTally {
    keys: AttemptKeys,
    /// By attempt key. Each SYN looks up a random place in it: the lookups are started a few
    /// records ahead ([`AttemptTally::prefetch`]).
    open: PrefetchMap<Slots>,
    /// Each candidate's totals, in order: one per candidate.
    totals: Vec<AttemptTotals>,
    /// The latest SYN time any candidate saw, and when quiet attempts are next closed.
    latest_ns: Option<i64>,
    next_close_ns: Option<i64>,
}

impl AttemptTally {
    /// A tally for `candidates` candidates, numbered from 0.
    pub fn new(candidates: usize) -> Self {
        AttemptTally {
            totals: vec![AttemptTotals::default(); candidates],
            ..AttemptTally::default()
        }
    }

    /// Counts a SYN record every candidate in `candidates` was handed.
    pub fn add(&mut self, candidates: Range<usize>, syn: &SynRecord) {
        self.close_quiet(syn.ts_ns);
        let fresh = OpenAttempt {
            first_ns: syn.ts_ns,
            last_ns: syn.ts_ns,
            established_ns: NOT_ESTABLISHED,
            last_tsval: syn.tsval.unwrap_or(0),
            has_tsval: syn.tsval.is_some(),
            rejected: false,
            open: true,
        };
        let all = 0..self.totals.len();
        let slots = self
            .open
            .get_or_insert_with(self.keys.key(syn), || Slots::Alike(OpenAttempt::NONE));
        if let Slots::Alike(alike) = slots {
            if candidates == all {
                if let Some(done) = join(alike, fresh, syn) {
                    close(&mut self.totals, done);
                }
                return;
            }
            *slots = Slots::Apart(vec![*alike; all.len()].into_boxed_slice());
        }
        let Slots::Apart(apart) = slots else {
            unreachable!("made apart above");
        };
        for candidate in candidates {
            if let Some(done) = join(&mut apart[candidate], fresh, syn) {
                close(&mut self.totals[candidate..=candidate], done);
            }
        }
        // Alike again: one attempt stands for every candidate.
        if apart.windows(2).all(|pair| pair[0] == pair[1]) {
            *slots = Slots::Alike(apart[0]);
        }
    }

    /// Starts one step of the lookup counting `syn` will make (see [`LookupStep`]).
    pub fn prefetch(&self, syn: &SynRecord, step: LookupStep) {
        // A pair not numbered yet has no open attempts.
        if let Some(key) = self.keys.known(syn) {
            self.open.prefetch(key, step);
        }
    }

    /// Closes the attempts no SYN has joined for [`ATTEMPT_QUIET_NS`]. The totals are sums
    /// over attempts, so closing early changes nothing but memory.
    fn close_quiet(&mut self, syn_ns: i64) {
        let latest = *self
            .latest_ns
            .insert(self.latest_ns.map_or(syn_ns, |t| t.max(syn_ns)));
        let due = self.next_close_ns.get_or_insert(latest + CLOSE_EVERY_NS);
        if latest < *due {
            return;
        }
        *due = latest + CLOSE_EVERY_NS;
        let cutoff = latest.saturating_sub(ATTEMPT_QUIET_NS);
        let totals = &mut self.totals;
        self.open.retain(|slots| {
            let mut any_open = false;
            slots.each_candidate(totals, |attempt, totals| {
                if attempt.open && attempt.last_ns < cutoff {
                    close(totals, *attempt);
                    attempt.open = false;
                }
                any_open |= attempt.open;
            });
            any_open
        });
    }

    /// Closes the attempts still open and gives each candidate's totals, in order.
    pub fn finish(mut self) -> Vec<AttemptTotals> {
        for slots in self.open.values_mut() {
            slots.each_candidate(&mut self.totals, |attempt, totals| {
                if attempt.open {
                    close(totals, *attempt);
                }
            });
        }
        self.totals
    }
}

impl Slots {
    /// Runs `f` on each distinct attempt with the totals of the candidates it stands for:
    /// once with every candidate's while alike, once per candidate while apart.
    fn each_candidate(
        &mut self,
        totals: &mut [AttemptTotals],
        mut f: impl FnMut(&mut OpenAttempt, &mut [AttemptTotals]),
    ) {
        match self {
            Slots::Alike(attempt) => f(attempt, totals),
            Slots::Apart(attempts) => {
                for (candidate, attempt) in attempts.iter_mut().enumerate() {
                    f(attempt, &mut totals[candidate..candidate + 1]);
                }
            }
        }
    }
}

/// Adds a SYN to an open attempt (`fresh`: the attempt it starts on its own). The SYN joins
/// the open attempt with its ISN if on the same clock, or closes it (returned) and starts
/// its own.
fn join(open: &mut OpenAttempt, fresh: OpenAttempt, syn: &SynRecord) -> Option<OpenAttempt> {
    let mut done = None;
    if !open.open {
        *open = fresh;
    } else if !same_clock((open.last_ns, open.last_tsval()), (syn.ts_ns, syn.tsval)) {
        done = Some(std::mem::replace(open, fresh));
    }
    // SYNs may arrive out of time order (each waits for its own reply window).
    open.first_ns = open.first_ns.min(syn.ts_ns);
    if syn.ts_ns >= open.last_ns {
        open.last_ns = syn.ts_ns;
        if let Some(tsval) = syn.tsval {
            (open.last_tsval, open.has_tsval) = (tsval, true);
        }
    }
    if let Some(at) = syn.established_ns {
        open.established_ns = open.established_ns.min(at);
    }
    open.rejected |= matches!(syn.verdict, Verdict::PawsReject | Verdict::SeqReject);
    done
}

/// Counts a closed attempt in the totals of every candidate it stands for.
fn close(totals: &mut [AttemptTotals], attempt: OpenAttempt) {
    for totals in totals {
        totals.attempts += 1;
        if attempt.established_ns == NOT_ESTABLISHED {
            totals.failed += 1;
            totals.failed_after_reject += u64::from(attempt.rejected);
            continue;
        }
        totals.established += 1;
        if attempt.rejected {
            let delay = attempt.established_ns - attempt.first_ns;
            totals.delayed += 1;
            totals.delay_total_ns += delay;
            totals.delay_max_ns = totals.delay_max_ns.max(delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ObservedReply, TupleKey};
    use std::net::SocketAddr;

    const SECOND: i64 = 1_000_000_000;

    fn syn(at_ns: i64, client: u8, isn: u32, tsval: u32) -> SynRecord {
        let tuple = TupleKey {
            client: SocketAddr::new([203, 0, 113, client].into(), 40000),
            server: "198.51.100.10:80".parse().unwrap(),
        };
        SynRecord::accepted(at_ns, tuple, isn, Some(tsval), ObservedReply::SynAck)
    }

    /// Two candidates' record streams over 20 minutes: few ISNs, so SYNs join attempts, meet
    /// other clocks and go quiet; the second candidate rejects some SYNs the first accepts and
    /// misses some records altogether.
    fn streams() -> Vec<(SynRecord, Option<SynRecord>)> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        (0..20_000)
            .map(|i| {
                let at = i * 60 * SECOND / 1000 + next(2 * SECOND as u64) as i64;
                let clock = next(3) as u32 * 50_000_000;
                // Half the ISNs recur (SYNs join attempts), half are seen once (they go quiet).
                let isn = if next(2) == 0 {
                    next(40) as u32
                } else {
                    1000 + i as u32
                };
                let mut first = syn(at, next(4) as u8, isn, clock + (at / 1_000_000) as u32);
                if next(3) > 0 {
                    first.established_ns = Some(at + next(SECOND as u64) as i64);
                }
                if next(5) == 0 {
                    first.verdict = Verdict::PawsReject;
                }
                let second = match next(10) {
                    0 => None,
                    1 | 2 => Some(SynRecord {
                        verdict: Verdict::SeqReject,
                        established_ns: None,
                        ..first
                    }),
                    _ => Some(first),
                };
                (first, second)
            })
            .collect()
    }

    #[test]
    fn candidates_sharing_a_tally_count_as_each_alone() {
        let mut together = AttemptTally::new(2);
        let (mut first_alone, mut second_alone) = (AttemptTally::new(1), AttemptTally::new(1));
        for (a, b) in streams() {
            match b {
                // Handed to both at once, as the tracker does for a shared tuple.
                Some(b) if b == a => together.add(0..2, &a),
                _ => together.add(0..1, &a),
            }
            first_alone.add(0..1, &a);
            if let Some(b) = b {
                if b != a {
                    together.add(1..2, &b);
                }
                second_alone.add(0..1, &b);
            }
        }
        let [first, second] = together.finish()[..] else {
            panic!("two candidates");
        };
        assert_eq!(first, first_alone.finish()[0]);
        assert_eq!(second, second_alone.finish()[0]);
        assert_ne!(first, second);
        for totals in [first, second] {
            assert!(
                totals.attempts > 1000 && totals.attempts < 20_000,
                "{totals:?}"
            );
            assert!(
                totals.delayed > 0 && totals.failed_after_reject > 0,
                "{totals:?}"
            );
            assert_eq!(totals.attempts, totals.established + totals.failed);
        }
    }
}
