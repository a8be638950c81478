//! Connect attempts counted as SYNs stream past (the `attempts` table without keeping its
//! rows): how many connects the server let through, how many PAWS delayed, how many failed.

use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};

use crate::fastmap::FastMap;

use crate::flow::{SynRecord, Verdict};
use crate::table::same_clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenAttempt {
    first_ns: i64,
    last_ns: i64,
    last_tsval: Option<u32>,
    established_ns: Option<i64>,
    rejected_syns: u32,
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
/// How often, in SYN time, quiet attempts are closed.
const CLOSE_EVERY_NS: i64 = 30 * 1_000_000_000;

#[derive(Debug, Clone, Default)]
pub struct AttemptTally {
    /// (client address, server endpoint) pairs, numbered as first seen: a connect's key is
    /// its pair's number and its ISN, 8 bytes instead of 56, for the hundreds of thousands
    /// of attempts a busy capture keeps open.
    pairs: FastMap<(IpAddr, SocketAddr), u32>,
    open: FastMap<(u32, u32), OpenAttempt>,
    totals: AttemptTotals,
    /// The latest SYN time seen, and when quiet attempts are next closed.
    latest_ns: Option<i64>,
    next_close_ns: Option<i64>,
}

impl AttemptTally {
    pub fn add(&mut self, syn: &SynRecord) {
        self.close_quiet(syn.ts_ns);
        let next_pair = self.pairs.len() as u32;
        let pair = *self
            .pairs
            .entry((syn.tuple.client.ip(), syn.tuple.server))
            .or_insert(next_pair);
        let key = (pair, syn.isn);
        let fresh = OpenAttempt {
            first_ns: syn.ts_ns,
            last_ns: syn.ts_ns,
            last_tsval: syn.tsval,
            established_ns: None,
            rejected_syns: 0,
        };
        // One lookup: the SYN joins the open attempt with its ISN if on the same clock, or
        // closes it and starts its own.
        let mut done = None;
        let open = match self.open.entry(key) {
            Entry::Occupied(entry) => {
                let open = entry.into_mut();
                if !same_clock((open.last_ns, open.last_tsval), (syn.ts_ns, syn.tsval)) {
                    done = Some(std::mem::replace(open, fresh));
                }
                open
            }
            Entry::Vacant(entry) => entry.insert(fresh),
        };
        // SYNs may arrive out of time order (each waits for its own reply window).
        open.first_ns = open.first_ns.min(syn.ts_ns);
        if syn.ts_ns >= open.last_ns {
            open.last_ns = syn.ts_ns;
            open.last_tsval = syn.tsval.or(open.last_tsval);
        }
        if let Some(at) = syn.established_ns {
            open.established_ns = Some(open.established_ns.map_or(at, |t| t.min(at)));
        }
        if matches!(syn.verdict, Verdict::PawsReject | Verdict::SeqReject) {
            open.rejected_syns += 1;
        }
        if let Some(done) = done {
            self.close(done);
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
        let mut quiet = Vec::new();
        self.open.retain(|_, attempt| {
            let keep = attempt.last_ns >= cutoff;
            if !keep {
                quiet.push(*attempt);
            }
            keep
        });
        for attempt in quiet {
            self.close(attempt);
        }
    }

    fn close(&mut self, attempt: OpenAttempt) {
        let totals = &mut self.totals;
        totals.attempts += 1;
        match attempt.established_ns {
            Some(at) => {
                totals.established += 1;
                if attempt.rejected_syns > 0 {
                    let delay = at - attempt.first_ns;
                    totals.delayed += 1;
                    totals.delay_total_ns += delay;
                    totals.delay_max_ns = totals.delay_max_ns.max(delay);
                }
            }
            None => {
                totals.failed += 1;
                totals.failed_after_reject += u64::from(attempt.rejected_syns > 0);
            }
        }
    }

    pub fn finish(mut self) -> AttemptTotals {
        let open: Vec<OpenAttempt> = self.open.drain().map(|(_, a)| a).collect();
        for attempt in open {
            self.close(attempt);
        }
        self.totals
    }
}
