//! One connection on a tuple, from its SYN to the end of the TIME_WAIT it leaves: the
//! `connections` table's row.

use super::TupleKey;
use crate::packet::Segment;

/// Who sent the first FIN, judged by what the server's FIN acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    Client,
    Server,
    /// Each side's FIN left before it had the other's (both enter CLOSING).
    Simultaneous,
    /// The connection did not close with FINs.
    Nobody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    Fin,
    Rst,
    /// Still open (or its close not seen) when the capture ended.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitHolder {
    Server,
    Client,
    Nobody,
}

/// How the server's TIME_WAIT ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitEnd {
    /// The timer fired.
    Expired,
    /// An in-window RST killed it.
    KilledByRst,
    /// A SYN was accepted as the next incarnation.
    ReopenedBySyn,
    /// Still in TIME_WAIT when the capture ended.
    OpenAtEnd,
}

/// Traffic one side sent during the incarnation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideTraffic {
    pub segments: u64,
    pub payload_bytes: u64,
    pub first_tsval: Option<u32>,
    pub last_tsval: Option<u32>,
}

impl SideTraffic {
    pub fn add(&mut self, seg: &Segment) {
        self.segments += 1;
        self.payload_bytes += u64::from(seg.payload_len);
        if let Some(tsval) = seg.tsval() {
            self.first_tsval.get_or_insert(tsval);
            self.last_tsval = Some(tsval);
        }
    }
}

/// One incarnation of a tuple: a handshake the server answered, and what became of it.
/// While the tracker holds it, its tuple is `()`: the tuple table holds the key already, and
/// 64 bytes less a held tuple is a cache line less to fetch per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncarnationRecord<T = TupleKey> {
    pub tuple: T,
    /// 1 for the tuple's first incarnation in the capture, 2 for the next ...
    pub number: u32,
    pub syn_ns: i64,
    /// When the client's ACK completed the handshake (TcpPassiveOpens); `None` if never.
    pub handshake_ns: Option<i64>,
    pub client_isn: u32,
    pub server_isn: u32,
    pub ts_negotiated: bool,
    pub client: SideTraffic,
    pub server: SideTraffic,
    pub closed_first: Closer,
    pub close_kind: CloseKind,
    /// When the close completed (or the RST arrived).
    pub end_ns: Option<i64>,
    pub time_wait_holder: TimeWaitHolder,
    pub time_wait_start_ns: Option<i64>,
    /// When the server's TIME_WAIT ended and how (server holder only: the client's is not
    /// seen in a capture at the server).
    pub time_wait_end_ns: Option<i64>,
    pub time_wait_end: Option<TimeWaitEnd>,
    /// From this incarnation's end to the next incarnation's SYN on the tuple.
    pub gap_to_next_ns: Option<i64>,
}

impl<T> IncarnationRecord<T> {
    /// An incarnation whose SYN at `syn_ns` the server answered, nothing after the answer
    /// seen yet: timestamps count as negotiated when both sides' first segments carried one.
    pub fn answered(
        tuple: T,
        number: u32,
        syn_ns: i64,
        client_isn: u32,
        server_isn: u32,
        client: SideTraffic,
        server: SideTraffic,
    ) -> Self {
        IncarnationRecord {
            tuple,
            number,
            syn_ns,
            handshake_ns: None,
            client_isn,
            server_isn,
            ts_negotiated: client.first_tsval.is_some() && server.first_tsval.is_some(),
            client,
            server,
            closed_first: Closer::Nobody,
            close_kind: CloseKind::None,
            end_ns: None,
            time_wait_holder: TimeWaitHolder::Nobody,
            time_wait_start_ns: None,
            time_wait_end_ns: None,
            time_wait_end: None,
            gap_to_next_ns: None,
        }
    }
}

impl IncarnationRecord<()> {
    /// The record of a held incarnation, handed on with its tuple.
    pub fn with_tuple(self, tuple: TupleKey) -> IncarnationRecord {
        IncarnationRecord {
            tuple,
            number: self.number,
            syn_ns: self.syn_ns,
            handshake_ns: self.handshake_ns,
            client_isn: self.client_isn,
            server_isn: self.server_isn,
            ts_negotiated: self.ts_negotiated,
            client: self.client,
            server: self.server,
            closed_first: self.closed_first,
            close_kind: self.close_kind,
            end_ns: self.end_ns,
            time_wait_holder: self.time_wait_holder,
            time_wait_start_ns: self.time_wait_start_ns,
            time_wait_end_ns: self.time_wait_end_ns,
            time_wait_end: self.time_wait_end,
            gap_to_next_ns: self.gap_to_next_ns,
        }
    }
}
