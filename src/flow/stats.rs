//! Counts the tracker keeps while it goes.

/// The server's nstat counters, as pawscope predicts them over the capture's span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// TcpExtPAWSTimewait: segments rejected by PAWS on a TIME_WAIT socket.
    pub paws_timewait: u64,
    /// TcpPassiveOpens: handshakes completed by the listener.
    pub passive_opens: u64,
    /// TcpExtTCPACKSkippedTimeWait: out-of-window ACKs suppressed by the rate limit.
    pub ack_skipped_timewait: u64,
    /// TcpExtPAWSPassive: SYNs dropped by tcp_tw_recycle's per-address check.
    pub paws_passive: u64,
}

/// What became of server TIME_WAIT sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWaitStats {
    pub entered: u64,
    /// Timer fired (60 s after the last arming) within the capture.
    pub expired: u64,
    /// Killed by an in-window RST (TIME_WAIT assassination).
    pub killed_by_rst: u64,
    /// Ended by an accepted SYN that opened a new incarnation.
    pub reopened_by_syn: u64,
    /// Still in TIME_WAIT when the capture ended.
    pub open_at_end: u64,
    /// Incarnations the client closed first (it holds TIME_WAIT, the server none).
    pub client_held: u64,
    /// SYN-ACKs answering a SYN accepted out of TIME_WAIT whose ISN is snd_nxt + 65537.
    pub reopen_isn_matched: u64,
    pub reopen_isn_mismatched: u64,
}

/// Everything counted across the capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub tcp_segments: u64,
    pub to_server: u64,
    pub to_client: u64,
    /// Segments on tuples whose start the capture did not show.
    pub unoriented: u64,
    pub tuples_with_syn: u64,
    /// Most tuples held at once: the live state memory follows.
    pub peak_live_tuples: u64,
    pub syn_total: u64,
    pub syn_retransmissions: u64,
    /// New-ISN SYNs on a tuple that had an earlier connection, by the gap since it ended.
    pub reuse_within_2msl: u64,
    pub reuse_after_2msl: u64,
    pub counters: KernelCounters,
    pub time_wait: TimeWaitStats,
    /// SYN-ACKs answering SYNs that carried a TSval, and how many carried one too: shows
    /// the server's net.ipv4.tcp_timestamps.
    pub synacks_to_ts_syns: u64,
    pub synacks_with_ts: u64,
}

impl KernelCounters {
    fn add(&mut self, other: &KernelCounters) {
        let KernelCounters {
            paws_timewait,
            passive_opens,
            ack_skipped_timewait,
            paws_passive,
        } = *other;
        self.paws_timewait += paws_timewait;
        self.passive_opens += passive_opens;
        self.ack_skipped_timewait += ack_skipped_timewait;
        self.paws_passive += paws_passive;
    }
}

impl TimeWaitStats {
    fn add(&mut self, other: &TimeWaitStats) {
        let TimeWaitStats {
            entered,
            expired,
            killed_by_rst,
            reopened_by_syn,
            open_at_end,
            client_held,
            reopen_isn_matched,
            reopen_isn_mismatched,
        } = *other;
        self.entered += entered;
        self.expired += expired;
        self.killed_by_rst += killed_by_rst;
        self.reopened_by_syn += reopened_by_syn;
        self.open_at_end += open_at_end;
        self.client_held += client_held;
        self.reopen_isn_matched += reopen_isn_matched;
        self.reopen_isn_mismatched += reopen_isn_mismatched;
    }
}

impl FlowStats {
    /// Adds counts kept apart (a candidate's own, on tuples it judged apart from the others);
    /// the peak of live tuples is the larger one. Destructured so a new field cannot be missed.
    pub fn add(&mut self, other: &FlowStats) {
        let FlowStats {
            tcp_segments,
            to_server,
            to_client,
            unoriented,
            tuples_with_syn,
            peak_live_tuples,
            syn_total,
            syn_retransmissions,
            reuse_within_2msl,
            reuse_after_2msl,
            counters,
            time_wait,
            synacks_to_ts_syns,
            synacks_with_ts,
        } = other;
        self.tcp_segments += tcp_segments;
        self.to_server += to_server;
        self.to_client += to_client;
        self.unoriented += unoriented;
        self.tuples_with_syn += tuples_with_syn;
        self.peak_live_tuples = self.peak_live_tuples.max(*peak_live_tuples);
        self.syn_total += syn_total;
        self.syn_retransmissions += syn_retransmissions;
        self.reuse_within_2msl += reuse_within_2msl;
        self.reuse_after_2msl += reuse_after_2msl;
        self.counters.add(counters);
        self.time_wait.add(time_wait);
        self.synacks_to_ts_syns += synacks_to_ts_syns;
        self.synacks_with_ts += synacks_with_ts;
    }
}
