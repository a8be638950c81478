//! Aggregates judged SYNs: verdicts, observed replies, and how well they agree.

use super::attempt_tally::AttemptTotals;
use super::settings::RateLimitEvidence;
use crate::fastmap::FastMap;
use crate::flow::{FoundState, ObservedReply, RecordSink, SynRecord, TupleKey, Verdict};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerdictCounts {
    pub accepted: u64,
    pub paws_reject: u64,
    pub seq_reject: u64,
    pub no_listener: u64,
    pub paws_passive_drop: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCounts {
    pub syn_ack: u64,
    pub challenge_ack: u64,
    pub rst: u64,
    pub none: u64,
}

/// Prediction against observation. A SYN is observed accepted when a SYN-ACK for it came
/// back, observed rejected when a challenge ACK or RST did; with no reply it is unobserved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreement {
    pub predicted_reject_observed_reject: u64,
    pub predicted_reject_observed_accept: u64,
    pub predicted_accept_observed_reject: u64,
    pub predicted_accept_observed_accept: u64,
    /// Judged SYNs with no reply in the capture.
    pub unobserved: u64,
    /// SYNs with verdict `unknown`: nothing to compare.
    pub unjudged: u64,
    /// The server's first reply was exactly the predicted one (including "nothing", for a
    /// challenge ACK the rate limit suppresses), or was not.
    pub reply_as_predicted: u64,
    pub reply_not_as_predicted: u64,
}

impl Agreement {
    pub fn disagreements(&self) -> u64 {
        self.predicted_reject_observed_accept + self.predicted_accept_observed_reject
    }
}

/// The SYN sink the `analyze` command uses.
#[derive(Debug, Default)]
pub struct SynSummary {
    pub verdicts: VerdictCounts,
    pub replies: ReplyCounts,
    pub agreement: Agreement,
    /// The newest rejected SYNs, newest first, at most `keep_rejected` of them.
    pub rejected: Vec<SynRecord>,
    keep_rejected: usize,
    /// Rejected or dropped SYNs per tuple, and the time span they cover.
    pub rejects_by_tuple: FastMap<TupleKey, u64>,
    pub first_reject_ns: Option<i64>,
    pub last_reject_ns: Option<i64>,
    /// New SYNs reusing a tuple the server held in TIME_WAIT, and how many of them had a
    /// sequence number past its rcv_nxt: how the NAT reuses public ports.
    pub reuse_met_time_wait: u64,
    pub reuse_seq_advanced: u64,
    /// Challenge-ACK spacing seen on TIME_WAIT sockets (net.ipv4.tcp_invalid_ratelimit).
    pub rate_limit: RateLimitEvidence,
    last_challenge: FastMap<TupleKey, (u32, u32, i64)>,
    /// Counted for all the candidates of a tracker at once (in [`super::AttemptTally`]) and
    /// set when the tracker is done.
    pub attempt_totals: AttemptTotals,
}

impl SynSummary {
    pub fn new(keep_rejected: usize) -> Self {
        SynSummary {
            keep_rejected,
            ..SynSummary::default()
        }
    }

    /// Orders and trims the kept rejected SYNs.
    pub fn finish(mut self) -> Self {
        self.trim_rejected();
        self
    }

    fn trim_rejected(&mut self) {
        self.rejected
            .sort_by(|a, b| b.ts_ns.cmp(&a.ts_ns).then(a.tuple.cmp(&b.tuple)));
        self.rejected.truncate(self.keep_rejected);
    }
}

impl RecordSink for SynSummary {
    fn syn(&mut self, syn: SynRecord) {
        let verdicts = &mut self.verdicts;
        *match syn.verdict {
            Verdict::Accepted => &mut verdicts.accepted,
            Verdict::PawsReject => &mut verdicts.paws_reject,
            Verdict::SeqReject => &mut verdicts.seq_reject,
            Verdict::NoListener => &mut verdicts.no_listener,
            Verdict::PawsPassiveDrop => &mut verdicts.paws_passive_drop,
            Verdict::Unknown => &mut verdicts.unknown,
        } += 1;
        let replies = &mut self.replies;
        *match syn.reply {
            ObservedReply::SynAck => &mut replies.syn_ack,
            ObservedReply::ChallengeAck => &mut replies.challenge_ack,
            ObservedReply::Rst => &mut replies.rst,
            ObservedReply::None => &mut replies.none,
        } += 1;

        let agreement = &mut self.agreement;
        let observed_accept = match syn.reply {
            ObservedReply::SynAck => Some(true),
            ObservedReply::ChallengeAck | ObservedReply::Rst => Some(false),
            ObservedReply::None => None,
        };
        *match (syn.verdict, observed_accept) {
            (Verdict::Unknown, _) => &mut agreement.unjudged,
            (_, None) => &mut agreement.unobserved,
            (v, Some(true)) if v.is_reject() => &mut agreement.predicted_reject_observed_accept,
            (v, Some(false)) if v.is_reject() => &mut agreement.predicted_reject_observed_reject,
            (_, Some(true)) => &mut agreement.predicted_accept_observed_accept,
            (_, Some(false)) => &mut agreement.predicted_accept_observed_reject,
        } += 1;

        if syn.reply == syn.predicted_reply {
            agreement.reply_as_predicted += 1;
        } else {
            agreement.reply_not_as_predicted += 1;
        }

        self.rate_limit.add(&syn, &mut self.last_challenge);
        if syn.reuse.is_some()
            && let FoundState::TimeWait { rcv_nxt, .. } = syn.found
        {
            self.reuse_met_time_wait += 1;
            self.reuse_seq_advanced += u64::from(crate::seq::after(syn.isn, rcv_nxt));
        }
        if matches!(
            syn.verdict,
            Verdict::PawsReject | Verdict::SeqReject | Verdict::PawsPassiveDrop
        ) {
            *self.rejects_by_tuple.entry(syn.tuple).or_insert(0) += 1;
            self.first_reject_ns =
                Some(self.first_reject_ns.map_or(syn.ts_ns, |t| t.min(syn.ts_ns)));
            self.last_reject_ns = Some(self.last_reject_ns.map_or(syn.ts_ns, |t| t.max(syn.ts_ns)));
        }
        if syn.verdict.is_reject() && self.keep_rejected > 0 {
            self.rejected.push(syn);
            // Records arrive nearly in time order; trimming in batches keeps memory bounded.
            if self.rejected.len() >= self.keep_rejected * 2 {
                self.trim_rejected();
            }
        }
    }
}
