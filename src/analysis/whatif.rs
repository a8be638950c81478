//! One capture judged under several policies: how many connects each would let through, and
//! which SYNs they judge differently.

use std::collections::BTreeMap;

use super::Analysis;
use crate::flow::{TupleKey, Verdict};
use crate::table::chain_attempts;

/// Connect attempts (SYNs chained across retransmissions) and how many would fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyOutcome {
    pub attempts: u64,
    /// Attempts none of whose SYNs (those in the capture) the policy accepts.
    pub failed_attempts: u64,
}

/// A SYN not every policy judges alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub ts_ns: i64,
    pub tuple: TupleKey,
    pub isn: u32,
    /// The verdict under each policy, in the analyses' order.
    pub verdicts: Vec<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub outcomes: Vec<PolicyOutcome>,
    /// Newest first.
    pub differences: Vec<Difference>,
}

/// Compares analyses of the same capture that kept their records.
pub fn compare(analyses: &[Analysis]) -> Comparison {
    let mut outcomes = Vec::with_capacity(analyses.len());
    let mut verdicts: BTreeMap<(i64, TupleKey, u32, u32), Vec<Verdict>> = BTreeMap::new();
    for (index, analysis) in analyses.iter().enumerate() {
        let syns = analysis.records.as_ref().map_or(&[][..], |r| &r.syns[..]);
        let (attempts, ids) = chain_attempts(syns);
        let mut accepted = vec![false; attempts.len()];
        for (syn, id) in syns.iter().zip(&ids) {
            if syn.verdict == Verdict::Accepted {
                accepted[(*id - 1) as usize] = true;
            }
            let key = (syn.ts_ns, syn.tuple, syn.isn, syn.retransmission);
            verdicts
                .entry(key)
                .or_insert_with(|| vec![Verdict::Unknown; analyses.len()])[index] = syn.verdict;
        }
        outcomes.push(PolicyOutcome {
            attempts: attempts.len() as u64,
            failed_attempts: accepted.iter().filter(|a| !**a).count() as u64,
        });
    }
    let mut differences: Vec<Difference> = verdicts
        .into_iter()
        .filter(|(_, v)| v.windows(2).any(|pair| pair[0] != pair[1]))
        .map(|((ts_ns, tuple, isn, _), verdicts)| Difference {
            ts_ns,
            tuple,
            isn,
            verdicts,
        })
        .collect();
    differences.sort_by_key(|d| std::cmp::Reverse(d.ts_ns));
    Comparison {
        outcomes,
        differences,
    }
}
