//! Kernel behaviours, one module each. A policy is a set of pure functions: the state a
//! server socket holds and an arriving segment in, a judgement and the next state out.
//! Only this module knows kernel rules; `flow` only asks.

pub mod linux;
pub mod no_timestamps;
pub mod rfc7323;
pub mod tw_recycle;

use std::fmt;
use std::net::IpAddr;

use crate::fastmap::FastMap;
use crate::packet::Segment;

/// What a server's TIME_WAIT socket remembers (struct tcp_timewait_sock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWait {
    /// When the socket entered TIME_WAIT (capture time, ns).
    pub start_ns: i64,
    /// When its timer fires; some segments re-arm it.
    pub deadline_ns: i64,
    /// Next sequence number expected from the peer: after the peer's FIN.
    pub rcv_nxt: u32,
    /// Next sequence number the server would send: after its own FIN.
    pub snd_nxt: u32,
    /// The peer's last accepted TSval.
    pub ts_recent: u32,
    /// When `ts_recent` was stored; `None` when the connection did not negotiate timestamps
    /// (the kernel stores 0 and then ignores timestamp options altogether).
    pub ts_recent_stamp_ns: Option<i64>,
    /// When the socket last sent an out-of-window ACK, for the per-socket rate limit.
    pub last_oow_ack_ns: Option<i64>,
}

/// What becomes of the TIME_WAIT socket after a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwNext {
    /// It stays, with this (possibly updated) state.
    Stay(TimeWait),
    /// An in-window RST killed it (TIME_WAIT assassination).
    Killed,
    /// A SYN opened a new incarnation; the server's SYN-ACK carries this ISN.
    Reopened { server_isn: u32 },
}

/// What the TIME_WAIT socket sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwReply {
    Nothing,
    /// An ACK for rcv_nxt (a "challenge ACK" when the segment was a SYN).
    Ack,
    /// An ACK was due but the per-socket rate limit suppressed it.
    RateLimited,
    /// The segment is handed to the listener (a SYN-ACK follows, or RST without one).
    ToListener,
}

/// Why a segment got its outcome, in the kernel's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwReason {
    /// PAWS: the TSval is older than ts_recent.
    PawsOlderTsval,
    /// SYN accepted: its sequence number is after rcv_nxt.
    SeqAfterRcvNxt,
    /// SYN accepted: its TSval is newer than ts_recent.
    TsvalNewer,
    /// SYN rejected: sequence number not after rcv_nxt and no newer TSval to save it.
    SeqNotAfterRcvNxt,
    /// In-window RST: the socket dies.
    InWindowRst,
    /// In-window RST ignored because net.ipv4.tcp_rfc1337 = 1.
    InWindowRstIgnored,
    /// In-window bare ACK: the timer restarts.
    InWindowAck,
    /// Any other out-of-window segment.
    OutOfWindow,
    /// A policy whose TIME_WAIT never reopens for a SYN.
    TimeWaitRefusesSyn,
}

impl TwReason {
    pub fn describe(&self) -> &'static str {
        match self {
            TwReason::PawsOlderTsval => "PAWS: TSval older than the TIME_WAIT socket's ts_recent",
            TwReason::SeqAfterRcvNxt => "TIME_WAIT accepts it: sequence number after rcv_nxt",
            TwReason::TsvalNewer => "TIME_WAIT accepts it: TSval newer than ts_recent",
            TwReason::SeqNotAfterRcvNxt => {
                "TIME_WAIT rejects it: sequence number not after rcv_nxt, no newer TSval"
            }
            TwReason::InWindowRst => "in-window RST kills TIME_WAIT",
            TwReason::InWindowRstIgnored => "in-window RST ignored (tcp_rfc1337=1)",
            TwReason::InWindowAck => "in-window ACK re-arms the TIME_WAIT timer",
            TwReason::OutOfWindow => "out-of-window segment",
            TwReason::TimeWaitRefusesSyn => "TIME_WAIT refuses every SYN until 2MSL has passed",
        }
    }
}

impl fmt::Display for TwReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The outcome of one segment arriving on a TIME_WAIT socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwJudgement {
    pub next: TwNext,
    pub reply: TwReply,
    /// The segment failed the PAWS test (counted by TcpExtPAWSTimewait when not accepted).
    pub paws_reject: bool,
    pub reason: TwReason,
}

/// What a server remembers per peer address across connections (tcp_tw_recycle's
/// `inet_peer` / `tcp_metrics` timestamps): the latest TSval and when it was stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMemory {
    stamps: FastMap<IpAddr, PeerStamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStamp {
    pub tsval: u32,
    pub stored_ns: i64,
}

impl PeerMemory {
    pub fn get(&self, peer: IpAddr) -> Option<PeerStamp> {
        self.stamps.get(&peer).copied()
    }

    pub fn set(&mut self, peer: IpAddr, stamp: PeerStamp) {
        self.stamps.insert(peer, stamp);
    }
}

/// The fate of a SYN that meets no socket for its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerJudgement {
    /// The listener takes it (if there is one).
    Accept,
    /// Dropped without a reply: the per-peer PAWS check of tcp_tw_recycle
    /// (TcpExtPAWSPassive).
    PawsPassiveDrop,
}

/// A server-side kernel behaviour: how its TIME_WAIT sockets and its listener judge what
/// arrives. Policies are pure: state comes in, the judgement and the next state go out.
/// `Sync`: the trackers judging one capture under different policies run on threads of
/// their own and share the policies.
pub trait ServerPolicy: Sync {
    /// Name used on the command line and in reports.
    fn name(&self) -> &'static str;
    /// The server settings this instance assumes, e.g. `tcp_rfc1337=0`.
    fn settings(&self) -> String;
    /// True when the behaviour is only simulated from the kernel's source, not recorded.
    fn simulated(&self) -> bool;
    /// Equal for two policies that judge everything alike except segments arriving on a
    /// TIME_WAIT socket (`on_time_wait_segment`): one tracker follows such candidates together
    /// until a segment shows them apart. The default, name and every setting, shares nothing.
    fn tracking_key(&self) -> String {
        format!("{} {}", self.name(), self.settings())
    }
    /// How long a fresh TIME_WAIT lasts (2MSL).
    fn time_wait_len_ns(&self) -> i64;
    /// How long the TIME_WAIT of a connection lasts, given whether it used timestamps.
    fn time_wait_len_for(&self, _ts_negotiated: bool) -> i64 {
        self.time_wait_len_ns()
    }
    /// Has the TIME_WAIT timer fired by `now_ns`?
    fn expired(&self, tw: &TimeWait, now_ns: i64) -> bool;
    /// A segment from the peer arrives on the TIME_WAIT socket.
    fn on_time_wait_segment(&self, tw: &TimeWait, seg: &Segment) -> TwJudgement;
    /// A SYN reaches the listener (no socket holds its tuple).
    fn on_listener_syn(&self, _peers: &PeerMemory, _seg: &Segment) -> ListenerJudgement {
        ListenerJudgement::Accept
    }
    /// The server's socket for a connection with `peer` enters TIME_WAIT.
    fn on_time_wait_entry(&self, _peers: &mut PeerMemory, _peer: IpAddr, _tw: &TimeWait) {}
    /// A connection completed its handshake with timestamps: lets a policy that remembers
    /// peers refresh what it knows.
    fn on_established(&self, _peers: &mut PeerMemory, _peer: IpAddr, _tsval: u32, _now_ns: i64) {}
}
