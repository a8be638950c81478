//! Client connect attempts: SYNs chained across retransmissions, even when the NAT moved a
//! retransmission to another public port. A retransmission repeats the ISN and its TSval
//! comes from the same clock, so (client address, server, ISN) plus a TSval that advanced no
//! faster than time did identify it.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use smallvec::SmallVec;

use super::frames::time_order;
use crate::flow::{ObservedReply, SynRecord, Verdict};
use crate::pair_numbers::PairNumbers;
use crate::prefetch::prefetch_whole;
use crate::prefetch_map::{LookupStep, PrefetchMap};
use crate::seq::ts_diff;

/// A connect gives up long before this (tcp_syn_retries = 6: about 127 s).
const MAX_RETRANSMISSION_SPAN_NS: i64 = 180 * 1_000_000_000;
/// Slack between a TS clock (1 kHz on Linux) and capture time, in ticks.
const TS_CLOCK_SLACK: i64 = 50;

/// How a connect attempt ended, from worst to best: an attempt ends as the best of what
/// its SYNs got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The server never answered.
    NoReply,
    /// The server answered only with challenge ACKs or RSTs.
    Rejected,
    /// The server answered a SYN but the handshake never completed.
    SynAckOnly,
    /// One of its SYNs led to a completed handshake.
    Established,
}

impl Outcome {
    /// Every outcome's key, from worst to best.
    pub const KEYS: [&'static str; 4] = ["no_reply", "rejected", "syn_ack_only", "established"];

    pub fn key(&self) -> &'static str {
        match self {
            Outcome::Established => "established",
            Outcome::SynAckOnly => "syn_ack_only",
            Outcome::Rejected => "rejected",
            Outcome::NoReply => "no_reply",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: u64,
    pub client_ip: IpAddr,
    pub server: SocketAddr,
    pub isn: u32,
    pub first_syn_ns: i64,
    pub last_syn_ns: i64,
    pub syns: u32,
    /// Distinct client ports its SYNs left from (more than one: the NAT moved it). Nearly
    /// always one: kept in place, not in an allocation per attempt.
    pub client_ports: SmallVec<[u16; 4]>,
    pub paws_rejects: u32,
    pub seq_rejects: u32,
    pub outcome: Outcome,
    pub established_ns: Option<i64>,
}

impl Attempt {
    pub fn time_to_establish_ns(&self) -> Option<i64> {
        self.established_ns.map(|t| t - self.first_syn_ns)
    }
}

/// The SYNs chained into attempts once, by whichever of its users (the tables, the outcome
/// chart) asks first, on whichever thread: the others wait for that chaining instead of
/// repeating it.
#[derive(Debug, Default)]
pub struct SharedAttempts(OnceLock<ChainedSyns>);

impl SharedAttempts {
    /// [`chain_attempts`] of `syns`, the same SYNs every time.
    pub fn of(&self, syns: &[SynRecord]) -> (&[Attempt], &[u64]) {
        let chained = self.chained(syns);
        (&chained.attempts, &chained.ids)
    }

    /// [`chain_syns`] of `syns`, the same SYNs every time.
    pub fn chained(&self, syns: &[SynRecord]) -> &ChainedSyns {
        self.0.get_or_init(|| chain_syns(syns))
    }
}

/// SYNs chained into attempts, and the order they were visited in.
#[derive(Debug, Default)]
pub struct ChainedSyns {
    /// In order of their first SYN.
    pub attempts: Vec<Attempt>,
    /// For each SYN, in the SYNs' order, the id of its attempt.
    pub ids: Vec<u64>,
    /// Each SYN's (time, place among the SYNs), sorted: the SYNs in time order, those of
    /// one time in their own order. The syns table starts from it rather than sorting the
    /// SYNs again.
    pub time_order: Vec<(i64, u32)>,
}

/// Keys connect attempts by their (client address, server endpoint) pair, numbered as first
/// seen, and their ISN: 8 bytes a key, where the pair itself takes 56.
#[derive(Debug, Default)]
pub struct AttemptKeys(PairNumbers<(IpAddr, SocketAddr)>);

impl AttemptKeys {
    /// The key of `syn`'s attempt, numbering its pair if it is new.
    #[inline]
    pub fn key(&mut self, syn: &SynRecord) -> u64 {
        let (pair, _) = self.0.number((syn.tuple.client.ip(), syn.tuple.server));
        attempt_key(pair, syn.isn)
    }

    /// The key of `syn`'s attempt if its pair has a number already (if not, no attempt of
    /// that pair was seen yet).
    #[inline]
    pub fn known(&self, syn: &SynRecord) -> Option<u64> {
        let pair = self.0.get((syn.tuple.client.ip(), syn.tuple.server))?;
        Some(attempt_key(pair, syn.isn))
    }
}

fn attempt_key(pair: u32, isn: u32) -> u64 {
    u64::from(pair) << 32 | u64::from(isn)
}

/// Groups SYNs (in any order) into attempts; returns the attempts in order of their first SYN
/// and, for each SYN in `syns` order, the id of its attempt.
pub fn chain_attempts(syns: &[SynRecord]) -> (Vec<Attempt>, Vec<u64>) {
    let ChainedSyns { attempts, ids, .. } = chain_syns(syns);
    (attempts, ids)
}

/// [`chain_attempts`], with the time order the SYNs were visited in.
pub fn chain_syns(syns: &[SynRecord]) -> ChainedSyns {
    let time_order = time_order(syns, |s| s.ts_ns);
    // Room for an attempt per SYN from the start: growing by doubling copied them over.
    let mut attempts: Vec<Attempt> = Vec::with_capacity(syns.len());
    // Each key's latest attempt.
    let mut keys = AttemptKeys::default();
    let mut open: PrefetchMap<usize> = PrefetchMap::with_capacity(syns.len());
    // Each attempt's latest SYN (time, TSval), by attempt index: kept here, the SYN's record
    // is not read again out of order.
    let mut last_syn: Vec<(i64, Option<u32>)> = Vec::with_capacity(syns.len());
    let mut ids = vec![0u64; syns.len()];
    // The SYNs are visited in time order, their records in no order, and each looks its key
    // up at a random place: the record is fetched RECORD_AHEAD SYNs early, then the lookup's
    // index slots and its entry (see [`LookupStep`]), overlapping the waits for memory.
    const RECORD_AHEAD: usize = 16;
    const INDEX_AHEAD: usize = 8;
    const ENTRY_AHEAD: usize = 4;
    for (at, &(_, i)) in time_order.iter().enumerate() {
        let i = i as usize;
        if let Some(&(_, ahead)) = time_order.get(at + RECORD_AHEAD) {
            prefetch_whole(&syns[ahead as usize]);
        }
        for (ahead, step) in [
            (INDEX_AHEAD, LookupStep::Index),
            (ENTRY_AHEAD, LookupStep::Entry),
        ] {
            // A pair not numbered yet has no attempts to find.
            if let Some(key) = time_order
                .get(at + ahead)
                .and_then(|&(_, i)| keys.known(&syns[i as usize]))
            {
                open.prefetch(key, step);
            }
        }
        let syn = &syns[i];
        let this = (syn.ts_ns, syn.tsval);
        let latest = open.get_or_insert_with(keys.key(syn), || usize::MAX);
        let index = match *latest {
            index if index != usize::MAX && same_clock(last_syn[index], this) => index,
            _ => {
                attempts.push(Attempt {
                    id: attempts.len() as u64 + 1,
                    client_ip: syn.tuple.client.ip(),
                    server: syn.tuple.server,
                    isn: syn.isn,
                    first_syn_ns: syn.ts_ns,
                    last_syn_ns: syn.ts_ns,
                    syns: 0,
                    client_ports: SmallVec::new(),
                    paws_rejects: 0,
                    seq_rejects: 0,
                    outcome: Outcome::NoReply,
                    established_ns: None,
                });
                *latest = attempts.len() - 1;
                last_syn.push(this);
                attempts.len() - 1
            }
        };
        last_syn[index] = this;
        let attempt = &mut attempts[index];
        attempt.syns += 1;
        attempt.last_syn_ns = syn.ts_ns;
        if !attempt.client_ports.contains(&syn.tuple.client.port()) {
            attempt.client_ports.push(syn.tuple.client.port());
        }
        attempt.paws_rejects += u32::from(syn.verdict == Verdict::PawsReject);
        attempt.seq_rejects += u32::from(syn.verdict == Verdict::SeqReject);
        if let Some(at) = syn.established_ns {
            attempt.established_ns = Some(attempt.established_ns.map_or(at, |t| t.min(at)));
        }
        let this_syn = match (syn.established_ns, syn.reply) {
            (Some(_), _) => Outcome::Established,
            (None, ObservedReply::SynAck) => Outcome::SynAckOnly,
            (None, ObservedReply::ChallengeAck | ObservedReply::Rst) => Outcome::Rejected,
            (None, ObservedReply::None) => Outcome::NoReply,
        };
        attempt.outcome = attempt.outcome.max(this_syn);
        ids[i] = attempt.id;
    }
    ChainedSyns {
        attempts,
        ids,
        time_order,
    }
}

/// Could two SYNs (time, TSval), in either order, be one host's SYN and its retransmission:
/// close enough in time, and with a TSval that advanced no faster than a 1 kHz clock would?
pub fn same_clock(a: (i64, Option<u32>), b: (i64, Option<u32>)) -> bool {
    let (previous, next) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    let elapsed = next.0 - previous.0;
    if elapsed > MAX_RETRANSMISSION_SPAN_NS {
        return false;
    }
    match (previous.1, next.1) {
        (Some(a), Some(b)) => {
            let ticks = i64::from(ts_diff(b, a));
            (0..=elapsed / 1_000_000 + TS_CLOCK_SLACK).contains(&ticks)
        }
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::TupleKey;

    const MS: i64 = 1_000_000;

    fn syn(at_ms: i64, port: u16, isn: u32, tsval: Option<u32>, reply: ObservedReply) -> SynRecord {
        let tuple = TupleKey {
            client: SocketAddr::new("203.0.113.1".parse().unwrap(), port),
            server: "203.0.113.10:80".parse().unwrap(),
        };
        SynRecord::accepted(at_ms * MS, tuple, isn, tsval, reply)
    }

    #[test]
    fn retransmission_on_another_public_port_joins_its_attempt() {
        let mut first = syn(0, 40000, 7, Some(1000), ObservedReply::ChallengeAck);
        first.verdict = Verdict::PawsReject;
        let mut moved = syn(12, 40001, 7, Some(1012), ObservedReply::SynAck);
        moved.established_ns = Some(13 * MS);
        let (attempts, ids) = chain_attempts(&[first, moved]);
        assert_eq!(ids, [1, 1]);
        assert_eq!(attempts.len(), 1);
        let a = &attempts[0];
        assert_eq!(a.client_ports[..], [40000, 40001]);
        assert_eq!(a.syns, 2);
        assert_eq!(a.paws_rejects, 1);
        assert_eq!(a.outcome, Outcome::Established);
        assert_eq!(a.time_to_establish_ns(), Some(13 * MS));
    }

    #[test]
    fn same_isn_from_another_clock_is_another_attempt() {
        // 5 ms later but the TSval jumped by a million ticks: another host behind the NAT.
        let a = syn(0, 40000, 7, Some(1000), ObservedReply::None);
        let b = syn(5, 40001, 7, Some(1_001_000), ObservedReply::None);
        let (attempts, ids) = chain_attempts(&[a, b]);
        assert_eq!(ids, [1, 2]);
        assert!(attempts.iter().all(|a| a.outcome == Outcome::NoReply));
    }

    #[test]
    fn outcome_is_the_best_any_syn_got() {
        let rejected = syn(0, 40000, 7, None, ObservedReply::ChallengeAck);
        let answered = syn(1000, 40000, 7, None, ObservedReply::SynAck);
        let (attempts, _) = chain_attempts(&[answered, rejected]);
        assert_eq!(attempts[0].outcome, Outcome::SynAckOnly);
        assert_eq!(attempts[0].first_syn_ns, 0);
    }
}
