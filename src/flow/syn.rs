//! What pawscope records for every SYN: the server state it met, the verdict the policy
//! predicts, and the reply the capture shows.

use std::ops::Range;

use super::TupleKey;
use super::incarnation::{IncarnationRecord, TimeWaitHolder};
use crate::prefetch_map::LookupStep;

/// The predicted fate of a SYN at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// A new incarnation starts (or a SYN_RECV socket answers a retransmitted SYN).
    Accepted,
    /// TIME_WAIT rejects it: TSval older than ts_recent.
    PawsReject,
    /// TIME_WAIT rejects it: sequence number not after rcv_nxt, no newer TSval.
    SeqReject,
    /// No listener on the server port: answered with RST.
    NoListener,
    /// Dropped silently by tcp_tw_recycle's per-address PAWS check (old kernels).
    PawsPassiveDrop,
    /// The server's state for this tuple cannot be known from the capture.
    Unknown,
}

impl Verdict {
    /// Every verdict's key, in the order of the variants.
    pub const KEYS: [&'static str; 6] = [
        "accepted",
        "paws_reject",
        "seq_reject",
        "no_listener",
        "paws_passive_drop",
        "unknown",
    ];

    pub fn key(&self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::PawsReject => "paws_reject",
            Verdict::SeqReject => "seq_reject",
            Verdict::NoListener => "no_listener",
            Verdict::PawsPassiveDrop => "paws_passive_drop",
            Verdict::Unknown => "unknown",
        }
    }

    pub fn is_reject(&self) -> bool {
        matches!(
            self,
            Verdict::PawsReject
                | Verdict::SeqReject
                | Verdict::NoListener
                | Verdict::PawsPassiveDrop
        )
    }
}

/// The first thing the server sent back on the tuple after the SYN, before the next SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservedReply {
    /// A SYN-ACK acknowledging this SYN's ISN.
    SynAck,
    /// An ACK that does not acknowledge the SYN (TIME_WAIT's or an open socket's challenge ACK).
    ChallengeAck,
    Rst,
    /// Nothing before the next SYN on the tuple or the end of the capture.
    None,
}

impl ObservedReply {
    /// Every reply's key, in the order of the variants.
    pub const KEYS: [&'static str; 4] = ["syn_ack", "challenge_ack", "rst", "none"];

    pub fn key(&self) -> &'static str {
        match self {
            ObservedReply::SynAck => "syn_ack",
            ObservedReply::ChallengeAck => "challenge_ack",
            ObservedReply::Rst => "rst",
            ObservedReply::None => "none",
        }
    }
}

/// The server-side state a SYN found on its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundState {
    /// No socket for the tuple: the SYN goes to the listener.
    Listen,
    /// A TIME_WAIT socket, as it was when the SYN arrived.
    TimeWait {
        ts_recent: u32,
        ts_negotiated: bool,
        rcv_nxt: u32,
        age_ns: i64,
    },
    /// A request socket from an earlier SYN (SYN_RECV).
    SynRecv,
    /// A connection not yet closed at the server.
    Open,
    /// The capture did not show how the tuple's earlier conversation began or ended.
    Unknown,
}

/// What a SYN that reopens a tuple follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// When the previous incarnation ended (`None`: still open at the server).
    pub previous_end_ns: Option<i64>,
    /// Who held TIME_WAIT for it.
    pub previous_holder: TimeWaitHolder,
    /// From that end to this SYN.
    pub gap_ns: i64,
    pub within_2msl: bool,
}

/// One SYN segment and everything known about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynRecord {
    pub ts_ns: i64,
    pub tuple: TupleKey,
    pub isn: u32,
    pub tsval: Option<u32>,
    /// 0 for the first SYN with this ISN on the tuple, 1 for its first retransmission ...
    pub retransmission: u32,
    pub found: FoundState,
    pub verdict: Verdict,
    pub reason: &'static str,
    /// What the server should send back under the policy (`None`: nothing, e.g. a
    /// challenge ACK suppressed by the rate limit).
    pub predicted_reply: ObservedReply,
    /// For a SYN accepted out of TIME_WAIT: the ISN the server must answer with.
    pub expected_server_isn: Option<u32>,
    pub reply: ObservedReply,
    /// Time from the SYN to its reply.
    pub reply_delay_ns: Option<i64>,
    /// The server ISN in the SYN-ACK, when there was one.
    pub reply_server_isn: Option<u32>,
    /// When the handshake this SYN started completed at the server.
    pub established_ns: Option<i64>,
    /// Set when the SYN (with a new ISN) reopens a tuple that had an earlier connection.
    pub reuse: Option<Reuse>,
    /// The verdict still depends on whether the port has a listener, which a later SYN-ACK
    /// on another tuple may show.
    pub(crate) listener_pending: bool,
    /// The server setting the verdict or predicted reply rests on, when the other value
    /// would have changed it: an in-window RST that did (or did not) end the TIME_WAIT
    /// before this SYN, or a challenge ACK the rate limit allowed or suppressed.
    pub rests_on: Option<Assumption>,
    /// Set once the analysis knows the capture shows nothing of that setting: the reason
    /// then says the verdict rests on an assumption.
    pub assumption_unsupported: bool,
}

/// A server setting a SYN's verdict rests on, with the value assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assumption {
    /// tcp_rfc1337=0: an in-window RST ended the TIME_WAIT.
    Rfc1337Off,
    /// tcp_rfc1337=1: the TIME_WAIT outlived an in-window RST.
    Rfc1337On,
    /// tcp_invalid_ratelimit: the challenge ACK was sent or suppressed by the rate limit.
    RateLimit,
}

impl Assumption {
    /// The `--sysctl` name of the setting.
    pub fn setting(self) -> &'static str {
        match self {
            Assumption::Rfc1337Off | Assumption::Rfc1337On => "net.ipv4.tcp_rfc1337",
            Assumption::RateLimit => "net.ipv4.tcp_invalid_ratelimit",
        }
    }

    /// What a reason adds when the capture shows nothing of the setting.
    pub fn note(self) -> &'static str {
        match self {
            Assumption::Rfc1337Off => {
                "; rests on tcp_rfc1337=0 (an in-window RST ended the TIME_WAIT), which the capture does not show"
            }
            Assumption::Rfc1337On => {
                "; rests on tcp_rfc1337=1 (the TIME_WAIT outlived an in-window RST), which the capture does not show"
            }
            Assumption::RateLimit => {
                "; rests on the challenge-ACK rate limit (tcp_invalid_ratelimit), which the capture does not show"
            }
        }
    }
}

impl SynRecord {
    /// The verdict's reason, saying so when it rests on a setting the capture does not show.
    pub fn reason_text(&self) -> String {
        self.reason_words().into_iter().flatten().collect()
    }

    /// [`Self::reason_text`] in its parts: the rule, then the note on an unsupported
    /// assumption. Tables label each SYN by its parts, writing out each distinct reason once.
    pub fn reason_words(&self) -> [Option<&'static str>; 2] {
        let note = self.rests_on.filter(|_| self.assumption_unsupported);
        [Some(self.reason), note.map(Assumption::note)]
    }
}

#[cfg(test)]
impl SynRecord {
    /// A SYN from a listening port's point of view, accepted and answered with `reply`: the
    /// record unit tests start from and vary.
    pub(crate) fn accepted(
        ts_ns: i64,
        tuple: TupleKey,
        isn: u32,
        tsval: Option<u32>,
        reply: ObservedReply,
    ) -> SynRecord {
        SynRecord {
            ts_ns,
            tuple,
            isn,
            tsval,
            retransmission: 0,
            found: FoundState::Listen,
            verdict: Verdict::Accepted,
            reason: "",
            predicted_reply: reply,
            expected_server_isn: None,
            reply,
            reply_delay_ns: None,
            reply_server_isn: None,
            established_ns: None,
            reuse: None,
            listener_pending: false,
            rests_on: None,
            assumption_unsupported: false,
        }
    }
}

/// Where finished records go: a summary, a table builder, a test's vector.
pub trait RecordSink {
    /// A SYN whose reply window has closed and whose verdict is settled.
    fn syn(&mut self, syn: SynRecord);
    /// An incarnation that is over: its TIME_WAIT ended and the next one (if any) began.
    fn incarnation(&mut self, _incarnation: IncarnationRecord) {}
    /// A connection's client port was taken at `syn_ns` (the server answered its SYN). Told
    /// as it happens, so that a connection open for hours is counted while it is open.
    fn port_taken(&mut self, _tuple: TupleKey, _syn_ns: i64) {}

    /// Starts one step of the lookups handing `syn` on will make, some records before it is
    /// handed ([`super::RecordLog::replay`] knows what comes next). Most sinks make none
    /// worth starting early.
    fn prefetch_syn(_sinks: &[Self], _syn: &SynRecord, _step: LookupStep)
    where
        Self: Sized,
    {
    }

    /// Hands a SYN record to the sinks of `candidates` (indexes into `sinks`, one sink per
    /// candidate a tracker judges under). Sinks that share work across candidates, one
    /// lookup for every candidate a record holds for, override it.
    fn syn_to(sinks: &mut [Self], candidates: Range<usize>, syn: SynRecord)
    where
        Self: Sized,
    {
        for sink in &mut sinks[candidates] {
            sink.syn(syn);
        }
    }

    /// [`RecordSink::incarnation`] for the sinks of `candidates`, as [`RecordSink::syn_to`].
    fn incarnation_to(sinks: &mut [Self], candidates: Range<usize>, incarnation: IncarnationRecord)
    where
        Self: Sized,
    {
        for sink in &mut sinks[candidates] {
            sink.incarnation(incarnation);
        }
    }

    /// [`RecordSink::port_taken`] for the sinks of `candidates`, as [`RecordSink::syn_to`].
    fn port_taken_to(sinks: &mut [Self], candidates: Range<usize>, tuple: TupleKey, syn_ns: i64)
    where
        Self: Sized,
    {
        for sink in &mut sinks[candidates] {
            sink.port_taken(tuple, syn_ns);
        }
    }
}

impl RecordSink for Vec<SynRecord> {
    fn syn(&mut self, syn: SynRecord) {
        self.push(syn);
    }
}
