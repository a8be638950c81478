//! One live incarnation of a tuple as the server sees it: handshake, data, and the close
//! that decides who holds TIME_WAIT.

use super::incarnation::Closer;
use crate::packet::Segment;
use crate::policy::TimeWait;
use crate::seq::{before, ts_diff};

/// SYN seen, handshake not yet completed (the server's request socket, SYN_RECV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub syn_ns: i64,
    pub client_isn: u32,
    /// The SYN's TSval: the request socket's ts_recent.
    pub client_tsval: Option<u32>,
    /// The server's ISN, once its SYN-ACK is seen (or inferred from the client's ACK).
    pub server_isn: Option<u32>,
    /// The SYN-ACK carried a timestamp option: timestamps negotiated when the SYN did too.
    pub server_ts: bool,
}

impl Handshake {
    pub fn new(syn: &Segment) -> Self {
        Handshake {
            syn_ns: syn.ts_ns,
            client_isn: syn.seq,
            client_tsval: syn.tsval(),
            server_isn: None,
            server_ts: false,
        }
    }

    /// The client's ACK that completes the handshake (tcp_check_req accepting the final ACK).
    pub fn completed_by(&self, seg: &Segment) -> bool {
        seg.flags.ack()
            && !seg.flags.syn()
            && !seg.flags.rst()
            && self
                .server_isn
                .is_none_or(|isn| seg.ack == isn.wrapping_add(1))
    }
}

/// How an incarnation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The server closed first (or simultaneously): it holds TIME_WAIT.
    ServerTimeWait(TimeWait),
    /// The client closed first: the server went through LAST_ACK to CLOSED, the client
    /// holds TIME_WAIT.
    ClientTimeWait,
    /// A RST ended it; nobody holds TIME_WAIT.
    Reset,
}

/// An established connection (and its close), server view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub established_ns: i64,
    pub client_isn: u32,
    pub server_isn: u32,
    pub ts_negotiated: bool,
    /// The client's latest in-order TSval (tcp_replace_ts_recent) and when it was stored.
    pub ts_recent: u32,
    pub ts_recent_ns: i64,
    /// rcv_nxt after the client's FIN.
    pub client_fin_end: Option<u32>,
    /// snd_nxt after the server's FIN.
    pub server_fin_end: Option<u32>,
    /// The server's FIN acknowledged the client's FIN: the server had received it first and
    /// closed passively (CLOSE_WAIT -> LAST_ACK), so it will hold no TIME_WAIT.
    pub server_closed_passively: bool,
    /// The client's FIN acknowledged the server's FIN: the client closed passively.
    pub client_closed_passively: bool,
    /// The client acknowledged the server's FIN.
    pub server_fin_acked: bool,
}

impl Connection {
    pub fn establish(handshake: &Handshake, server_isn: u32, now_ns: i64) -> Self {
        Connection {
            established_ns: now_ns,
            client_isn: handshake.client_isn,
            server_isn,
            ts_negotiated: handshake.client_tsval.is_some() && handshake.server_ts,
            ts_recent: handshake.client_tsval.unwrap_or(0),
            ts_recent_ns: handshake.syn_ns,
            client_fin_end: None,
            server_fin_end: None,
            server_closed_passively: false,
            client_closed_passively: false,
            server_fin_acked: false,
        }
    }

    /// A segment from the client. Returns how the connection ended, if it did.
    pub fn on_client(&mut self, seg: &Segment, time_wait_len_ns: i64) -> Option<CloseOutcome> {
        if seg.flags.rst() {
            return Some(CloseOutcome::Reset);
        }
        if self.ts_negotiated
            && let Some(tsval) = seg.tsval()
            && ts_diff(tsval, self.ts_recent) >= 0
        {
            self.ts_recent = tsval;
            self.ts_recent_ns = seg.ts_ns;
        }
        if seg.flags.fin() && self.client_fin_end.is_none() {
            self.client_fin_end = Some(seg.end_seq());
            self.client_closed_passively = self
                .server_fin_end
                .is_some_and(|end| seg.flags.ack() && !before(seg.ack, end));
        }
        if let Some(server_fin_end) = self.server_fin_end
            && seg.flags.ack()
            && !before(seg.ack, server_fin_end)
        {
            self.server_fin_acked = true;
        }
        self.close_outcome(seg.ts_ns, time_wait_len_ns)
    }

    /// A segment from the server. Returns how the connection ended, if it did.
    pub fn on_server(&mut self, seg: &Segment) -> Option<CloseOutcome> {
        if seg.flags.rst() {
            return Some(CloseOutcome::Reset);
        }
        if seg.flags.fin() && self.server_fin_end.is_none() {
            self.server_fin_end = Some(seg.end_seq());
            // Who closed first is read from what the server's FIN acknowledges, not from
            // capture order: FINs cross on the wire.
            self.server_closed_passively = self
                .client_fin_end
                .is_some_and(|end| seg.flags.ack() && !before(seg.ack, end));
        }
        None
    }

    /// Who sent the first FIN: the side whose FIN did not acknowledge the other's.
    pub fn closer(&self) -> Closer {
        match (self.client_fin_end, self.server_fin_end) {
            (Some(_), Some(_)) if self.server_closed_passively => Closer::Client,
            (Some(_), Some(_)) if self.client_closed_passively => Closer::Server,
            (Some(_), Some(_)) => Closer::Simultaneous,
            (Some(_), None) => Closer::Client,
            (None, Some(_)) => Closer::Server,
            (None, None) => Closer::Nobody,
        }
    }

    /// Both FINs received and the server's acknowledged: the server leaves the connection,
    /// into TIME_WAIT if it closed actively (FIN_WAIT2 + FIN, or CLOSING + ACK).
    fn close_outcome(&self, now_ns: i64, time_wait_len_ns: i64) -> Option<CloseOutcome> {
        let (Some(rcv_nxt), Some(snd_nxt)) = (self.client_fin_end, self.server_fin_end) else {
            return None;
        };
        if !self.server_fin_acked {
            return None;
        }
        if self.server_closed_passively {
            return Some(CloseOutcome::ClientTimeWait);
        }
        Some(CloseOutcome::ServerTimeWait(TimeWait {
            start_ns: now_ns,
            deadline_ns: now_ns + time_wait_len_ns,
            rcv_nxt,
            snd_nxt,
            ts_recent: self.ts_recent,
            ts_recent_stamp_ns: self.ts_negotiated.then_some(self.ts_recent_ns),
            last_oow_ack_ns: None,
        }))
    }
}
