//! The tracker: follows every tuple's server-side state through the capture, asks the policy
//! how the server judges what arrives, and records each SYN with its observed reply.
//!
//! One tracker can judge under several candidate server settings at once (`judging_alike`):
//! settings such as tcp_rfc1337 are not on the wire, so each is tried and the replies seen
//! choose. The candidates differ only in how a TIME_WAIT socket judges a segment, which few
//! segments show, so a tuple is held once for all of them; at a segment they judge apart the
//! tuple gets a copy per candidate, until the copies are alike again. Counts and records of a
//! shared tuple go to every candidate, of a copy to its own.

use std::net::SocketAddr;
use std::ops::Range;

use super::connection::{CloseOutcome, Connection, Handshake};
use super::incarnation::{
    CloseKind, Closer, IncarnationRecord, SideTraffic, TimeWaitEnd, TimeWaitHolder,
};
use super::stats::FlowStats;
use super::syn::{Assumption, FoundState, ObservedReply, RecordSink, Reuse, SynRecord, Verdict};
use super::tuple::{Direction, TupleKey, unordered_pair};
use super::tuple_table::{ENTRIES_AHEAD, TupleTable};
use crate::fastmap::{FastMap, FastSet};
use crate::packet::Segment;
use crate::policy::{
    ListenerJudgement, PeerMemory, ServerPolicy, TimeWait, TwJudgement, TwNext, TwReason, TwReply,
};

/// The server's socket for one tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// No socket: a SYN goes to the listener.
    Closed,
    Handshake(Handshake),
    Open(Connection),
    TimeWait(TimeWait),
    /// The capture began in the middle of this tuple's conversation.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tuple {
    state: ServerState,
    /// Completed handshakes on this tuple.
    incarnations: u32,
    /// When the latest incarnation ended (close completed or RST).
    last_end_ns: Option<i64>,
    /// ISN of the latest SYN and how many times it was sent again.
    last_isn: Option<u32>,
    retransmission: u32,
    /// The latest SYN, waiting for its reply. Records are boxed so that the many tuples
    /// holding none (established, or closed and waiting to be forgotten) stay small.
    open_syn: Option<Box<SynRecord>>,
    /// The latest incarnation, until the next one begins (its gap is known then). Held
    /// inline: nearly every held tuple has one, and nearly every segment updates it.
    incarnation: Option<IncarnationRecord<()>>,
    incarnations_started: u32,
    /// What an in-window RST did to the tuple's TIME_WAIT since the last SYN: the next
    /// SYN's verdict rests on tcp_rfc1337.
    rst_decided: Option<Assumption>,
    saw_syn: bool,
    /// Capture time of the latest segment on the tuple.
    last_seen_ns: i64,
}

/// A quiet tuple is forgotten after this long (and at least twice TIME_WAIT): longer than a
/// SYN retransmission series (tcp_syn_retries = 6: about 127 s) or a request socket's life,
/// so nothing the server's kernel remembers is lost. Forgetting is what keeps memory
/// proportional to live connections, not to the capture's length: a tuple that comes back
/// later is a new tuple, its SYN not a reuse.
const RETIRE_AFTER_NS: i64 = 180 * 1_000_000_000;
/// How often, in capture time, quiet tuples are looked for. Each sweep visits the whole
/// table; TIME_WAIT ends are dated by their deadline, not by the sweep, so sweeping less often
/// only holds forgotten tuples a little longer.
const SWEEP_EVERY_NS: i64 = 30 * 1_000_000_000;
/// Tuples a sweep forgets between two hand-overs of what they left in the sinks: about what
/// a batch of segments opens and closes.
pub(super) const SWEEP_DRAIN_TUPLES: usize = 1024;

impl Tuple {
    fn new(state: ServerState, now_ns: i64) -> Self {
        Tuple {
            state,
            incarnations: 0,
            last_end_ns: None,
            last_isn: None,
            retransmission: 0,
            open_syn: None,
            incarnation: None,
            incarnations_started: 0,
            rst_decided: None,
            saw_syn: false,
            last_seen_ns: now_ns,
        }
    }

    /// Nothing about the tuple can still matter to the server's kernel at `now_ns`.
    fn retirable(&self, now_ns: i64, horizon_ns: i64, policy: &dyn ServerPolicy) -> bool {
        // Most tuples a sweep visits are not quiet: that answers without a look at the state.
        if now_ns.saturating_sub(self.last_seen_ns) <= horizon_ns {
            return false;
        }
        match self.state {
            ServerState::Closed => true,
            // A request socket gives up long before the horizon.
            ServerState::Handshake(_) => true,
            ServerState::TimeWait(tw) => policy.expired(&tw, now_ns),
            // Connections can idle for hours.
            ServerState::Open(_) | ServerState::Unknown => false,
        }
    }
}

/// A held tuple: one state for every candidate while they judge it alike, or a copy per
/// candidate (in the candidates' order) from a segment they judge apart on.
// Shared is nearly every slot and is touched by nearly every segment: held inline, where
// boxing it would cost an allocation per tuple and a cache miss per segment.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Slot {
    Shared(Tuple),
    Split(Box<[Tuple]>),
}

impl Slot {
    /// Every candidate's server has forgotten the tuple: the whole slot can go.
    fn retirable(&self, now_ns: i64, horizon_ns: i64, policy: &dyn ServerPolicy) -> bool {
        match self {
            Slot::Shared(tuple) => tuple.retirable(now_ns, horizon_ns, policy),
            Slot::Split(copies) => copies
                .iter()
                .all(|tuple| tuple.retirable(now_ns, horizon_ns, policy)),
        }
    }
}

/// A SYN record waiting to learn whether its port has a listener, and the candidates it
/// holds for.
type Parked = (SynRecord, Range<usize>);

/// Everything but the tuple table, so a tuple can be borrowed while the rest is updated.
struct Context<'p, S> {
    /// The candidate settings, in order: they judge alike beyond TIME_WAIT (equal
    /// [`ServerPolicy::tracking_key`]).
    policies: Vec<&'p dyn ServerPolicy>,
    /// The candidates the tuple at hand stands for: all of them for a shared tuple, one for a
    /// split tuple's copy.
    current: Range<usize>,
    /// Server endpoints that answered a SYN with a SYN-ACK: they have a listener.
    listeners: FastSet<SocketAddr>,
    /// Server endpoints that sent anything at all, and the latest one added.
    heard_from: FastSet<SocketAddr>,
    last_heard_from: Option<SocketAddr>,
    /// What each candidate's server remembers per peer address (tcp_tw_recycle).
    peers: Vec<PeerMemory>,
    /// SYN records whose verdict waits on whether their port has a listener, with the
    /// candidates they hold for.
    awaiting_listener: FastMap<SocketAddr, Vec<Parked>>,
    /// Counts for every candidate (shared tuples), or, while a copy is handled, its
    /// candidate's own.
    stats: FlowStats,
    /// Each candidate's counts from split copies, swapped in while a copy is handled.
    split_stats: Vec<FlowStats>,
    last_ts_ns: Option<i64>,
    /// Each candidate's records.
    sinks: Vec<S>,
}

pub struct Tracker<'p, S: RecordSink> {
    server_override: Option<SocketAddr>,
    /// Tuples held in full at once; beyond it new tuples are not tracked and
    /// [`Tracker::over_limit`] says so.
    max_tuples: usize,
    over_limit: bool,
    tuples: TupleTable<Slot>,
    next_sweep_ns: Option<i64>,
    /// How long a tuple stays quiet before it is forgotten.
    horizon_ns: i64,
    /// Endpoint pairs seen talking before any SYN or SYN-ACK showed who is the server.
    midstream: FastSet<(SocketAddr, SocketAddr)>,
    ctx: Context<'p, S>,
}

impl<'p, S: RecordSink> Tracker<'p, S> {
    pub fn new(policy: &'p dyn ServerPolicy, server_override: Option<SocketAddr>, sink: S) -> Self {
        Tracker {
            server_override,
            max_tuples: usize::MAX,
            over_limit: false,
            tuples: TupleTable::default(),
            next_sweep_ns: None,
            horizon_ns: RETIRE_AFTER_NS.max(2 * policy.time_wait_len_ns()),
            midstream: FastSet::default(),
            ctx: Context {
                policies: vec![policy],
                current: 0..1,
                listeners: FastSet::default(),
                heard_from: FastSet::default(),
                last_heard_from: None,
                peers: vec![PeerMemory::default()],
                awaiting_listener: FastMap::default(),
                stats: FlowStats::default(),
                split_stats: vec![FlowStats::default()],
                last_ts_ns: None,
                sinks: vec![sink],
            },
        }
    }

    /// Also judges under other candidate policies, each with its own sink. They must judge
    /// everything as the first candidate does except segments arriving on a TIME_WAIT socket:
    /// equal [`ServerPolicy::tracking_key`].
    pub fn judging_alike(
        mut self,
        candidates: impl IntoIterator<Item = (&'p dyn ServerPolicy, S)>,
    ) -> Self {
        let first = self.ctx.policies[0];
        let ctx = &mut self.ctx;
        for (policy, sink) in candidates {
            assert_eq!(
                policy.tracking_key(),
                first.tracking_key(),
                "candidates judged together must differ only in TIME_WAIT judgements"
            );
            ctx.policies.push(policy);
            ctx.peers.push(PeerMemory::default());
            ctx.split_stats.push(FlowStats::default());
            ctx.sinks.push(sink);
        }
        ctx.current = 0..ctx.policies.len();
        self
    }

    /// Each candidate's sink, in order: a sink that keeps what it is handed
    /// ([`super::RecordLog`]) is emptied here while the tracker goes on.
    pub fn sinks_mut(&mut self) -> &mut [S] {
        &mut self.ctx.sinks
    }

    /// The candidate settings judged under, in order: [`Tracker::finish_each`] gives their
    /// results in the same order.
    pub fn policies(&self) -> &[&'p dyn ServerPolicy] {
        &self.ctx.policies
    }

    pub fn with_max_tuples(mut self, max_tuples: usize) -> Self {
        self.max_tuples = max_tuples;
        self
    }

    /// A segment needed a new tuple while `max_tuples` were already held.
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// Tuples held (quiet ones are forgotten).
    pub fn live_tuples(&self) -> usize {
        self.tuples.len()
    }

    /// Feeds one segment, in capture order.
    pub fn on_segment(&mut self, seg: &Segment) {
        let hash = self.tuples.hash(seg.src, seg.dst);
        self.on_hashed_segment(seg, hash, &mut |_| {});
    }

    /// Feeds segments in capture order, as [`Tracker::on_segment`] one by one would, until
    /// one puts the tracker over its tuple limit; returns how many it took. A sweep for
    /// quiet tuples among them forgets tens of thousands at once: `drain` is handed the
    /// sinks every `SWEEP_DRAIN_TUPLES` (1024) of them, so what they hand on can be taken while
    /// the sweep goes on (in order, as ever) and no list grows to the sweep's size.
    ///
    /// Nearly every segment's tuple lies in memory the cache lost long ago, and waiting for
    /// it is most of a segment's cost. The segments coming next are known, so their index
    /// slots are asked for `INDEX_AHEAD` segments early and their entries `ENTRY_AHEAD`
    /// early: both arrive while the segments before them are handled.
    pub fn on_segments(&mut self, segments: &[Segment], drain: &mut dyn FnMut(&mut [S])) -> usize {
        const INDEX_AHEAD: usize = 16;
        const ENTRY_AHEAD: usize = 8;
        // Hashes of the segments from the one at hand to INDEX_AHEAD beyond it.
        const RING: usize = 32;
        let mut hashes = [0u64; RING];
        // The segments were written on the reading thread's core: each is fetched
        // INDEX_AHEAD segments before it is hashed, not on demand.
        let hash_ahead = |tuples: &TupleTable<Slot>, hashes: &mut [u64; RING], i: usize| {
            if let Some(ahead) = segments.get(i + INDEX_AHEAD) {
                crate::prefetch::prefetch_whole(ahead);
            }
            let hash = tuples.hash(segments[i].src, segments[i].dst);
            hashes[i % RING] = hash;
            tuples.prefetch_index(hash);
        };
        for i in 0..segments.len().min(INDEX_AHEAD) {
            hash_ahead(&self.tuples, &mut hashes, i);
        }
        for (i, seg) in segments.iter().enumerate() {
            if i + INDEX_AHEAD < segments.len() {
                hash_ahead(&self.tuples, &mut hashes, i + INDEX_AHEAD);
            }
            if i + ENTRY_AHEAD < segments.len() {
                self.tuples.prefetch_entry(hashes[(i + ENTRY_AHEAD) % RING]);
            }
            self.on_hashed_segment(seg, hashes[i % RING], drain);
            if self.over_limit {
                return i + 1;
            }
        }
        segments.len()
    }

    /// [`Tracker::on_segment`], with the segment's hash in the tuple table.
    fn on_hashed_segment(&mut self, seg: &Segment, hash: u64, drain: &mut dyn FnMut(&mut [S])) {
        self.ctx.stats.tcp_segments += 1;
        self.ctx.last_ts_ns = Some(self.ctx.last_ts_ns.map_or(seg.ts_ns, |t| t.max(seg.ts_ns)));
        self.sweep(seg.ts_ns, drain);
        let (at, direction) = loop {
            match self.orient(seg, hash) {
                Orientation::Held(at, direction) => break (at, direction),
                Orientation::New(key, direction) => {
                    if self.tuples.len() >= self.max_tuples {
                        self.over_limit = true;
                        return;
                    }
                    let live = self.tuples.len() as u64 + 1;
                    self.ctx.stats.peak_live_tuples = self.ctx.stats.peak_live_tuples.max(live);
                    let state = first_state(&self.midstream, &key, seg);
                    let tuple = Tuple::new(state, seg.ts_ns);
                    let at = self
                        .tuples
                        .insert(hash, key, Slot::Shared(tuple), seg.ts_ns);
                    break (at, direction);
                }
                // Forgotten now rather than at the next sweep: when a tuple is forgotten
                // does not depend on when sweeps happen to run.
                Orientation::Stale(at) => self.forget(hash, at, seg.ts_ns),
                Orientation::Unknown => {
                    self.ctx.stats.unoriented += 1;
                    self.midstream.insert(unordered_pair(seg.src, seg.dst));
                    return;
                }
            }
        };
        // The key is read where the table holds it: copied out, its 64 bytes of socket
        // addresses (built field by field) cost more than the segment's own work.
        let (key, slot) = self.tuples.seen(at, seg.ts_ns);
        let ctx = &mut self.ctx;
        if let Slot::Shared(tuple) = slot
            && ctx.policies.len() > 1
            && ctx.judged_apart(tuple, direction, seg)
        {
            let copies = vec![tuple.clone(); ctx.policies.len()];
            *slot = Slot::Split(copies.into_boxed_slice());
        }
        match slot {
            Slot::Shared(tuple) => ctx.dispatch(key, tuple, direction, seg),
            Slot::Split(copies) => {
                for (candidate, tuple) in copies.iter_mut().enumerate() {
                    ctx.as_candidate(candidate, |ctx| {
                        // This candidate's server forgot the tuple while another's still
                        // holds it: for this one it begins anew, as first seen with this
                        // segment. (A tracker of its own would not hold a tuple for a
                        // segment that is neither SYN nor SYN-ACK and count it unoriented;
                        // held together, the tuple stays, its state unknown.)
                        if tuple.retirable(seg.ts_ns, self.horizon_ns, ctx.policy()) {
                            ctx.forget(key, tuple, seg.ts_ns);
                            let state = first_state(&self.midstream, key, seg);
                            *tuple = Tuple::new(state, seg.ts_ns);
                        }
                        ctx.dispatch(key, tuple, direction, seg);
                    });
                }
                // Alike again: from here on every candidate goes the same way.
                if copies.windows(2).all(|pair| pair[0] == pair[1]) {
                    let mut copies = std::mem::take(copies).into_vec();
                    *slot = Slot::Shared(copies.swap_remove(0));
                }
            }
        }
    }

    /// Ends the capture (see [`Tracker::finish_each`]) and returns the first candidate's
    /// counts and sink.
    pub fn finish(self) -> (FlowStats, S) {
        self.finish_each()
            .into_iter()
            .next()
            .expect("a tracker judges under at least one policy")
    }

    /// Ends the capture: settles every SYN still waiting for a reply or a listener, expires
    /// TIME_WAIT timers that fired before the last packet, and returns each candidate's
    /// counts and sink, in the order of [`Tracker::policies`].
    pub fn finish_each(self) -> Vec<(FlowStats, S)> {
        self.finish_each_draining(|_| {})
    }

    /// [`Tracker::finish_each`], handing the sinks to `drain` now and then while the held
    /// tuples are ended: a sink that keeps its records ([`super::RecordLog`]) is emptied
    /// there instead of holding the records of every tuple at once.
    pub fn finish_each_draining(mut self, mut drain: impl FnMut(&mut [S])) -> Vec<(FlowStats, S)> {
        const TUPLES_PER_DRAIN: usize = 1024;
        let end_ns = self.ctx.last_ts_ns.unwrap_or(0);
        // Ending a tuple changes no entry's place: the entries are visited in order.
        let order = self.tuples.in_key_order();
        for (start, chunk) in (0..)
            .step_by(TUPLES_PER_DRAIN)
            .zip(order.chunks(TUPLES_PER_DRAIN))
        {
            for (i, &at) in chunk.iter().enumerate() {
                // In key order the entries lie anywhere: each is fetched a few tuples early.
                if let Some(&ahead) = order.get(start + i + ENTRIES_AHEAD) {
                    self.tuples.prefetch_at(ahead);
                }
                let (key, slot) = self.tuples.entry_mut(at);
                self.ctx
                    .each_copy(slot, |ctx, tuple| ctx.end_capture(key, tuple, end_ns));
            }
            drain(&mut self.ctx.sinks);
        }
        let mut waiting: Vec<(SocketAddr, Vec<Parked>)> =
            self.ctx.awaiting_listener.drain().collect();
        waiting.sort_by_key(|(endpoint, _)| *endpoint);
        for (endpoint, records) in waiting {
            // No SYN-ACK from this port anywhere in the capture. If the server's side of it
            // was seen at all, nothing listens there; if not, the capture cannot tell.
            let (verdict, reason) = if self.ctx.heard_from.contains(&endpoint) {
                (
                    Verdict::NoListener,
                    "no SYN-ACK from this server port in the whole capture",
                )
            } else {
                (
                    Verdict::Unknown,
                    "nothing from this server port in the capture (one direction only?)",
                )
            };
            for (mut syn, candidates) in records {
                syn.verdict = verdict;
                syn.predicted_reply = match verdict {
                    Verdict::NoListener => ObservedReply::Rst,
                    _ => ObservedReply::None,
                };
                syn.reason = reason;
                syn.listener_pending = false;
                self.ctx.current = candidates;
                self.ctx.emit_syn(syn);
            }
        }
        let shared = self.ctx.stats;
        self.ctx
            .split_stats
            .into_iter()
            .zip(self.ctx.sinks)
            .map(|(own, sink)| {
                let mut stats = shared.clone();
                stats.add(&own);
                (stats, sink)
            })
            .collect()
    }

    /// Every few seconds of capture time, forgets tuples the server has forgotten.
    fn sweep(&mut self, now_ns: i64, drain: &mut dyn FnMut(&mut [S])) {
        let due = self.next_sweep_ns.get_or_insert(now_ns + SWEEP_EVERY_NS);
        if now_ns < *due {
            return;
        }
        *due = now_ns + SWEEP_EVERY_NS;
        let horizon = self.horizon_ns;
        let ctx = &mut self.ctx;
        // Every copy of a tuple saw its slot's latest segment (`Tuple::last_seen_ns`): a
        // slot the table saw recently is not quiet, and is not opened.
        let quiet = |seen_ns: i64| now_ns.saturating_sub(seen_ns) > horizon;
        let mut forgotten = 0usize;
        self.tuples.retain_quiet(quiet, |key, slot| {
            if !slot.retirable(now_ns, horizon, ctx.policy()) {
                return true;
            }
            ctx.forget_slot(key, slot, now_ns);
            forgotten += 1;
            if forgotten.is_multiple_of(SWEEP_DRAIN_TUPLES) {
                drain(&mut ctx.sinks);
            }
            false
        });
        self.tuples.shrink_when_sparse();
    }

    fn forget(&mut self, hash: u64, at: u32, now_ns: i64) {
        let (key, mut slot) = self.tuples.remove(hash, at);
        self.ctx.forget_slot(&key, &mut slot, now_ns);
    }

    /// Which tuple a segment belongs to, which way it goes, and whether the tuple is held.
    /// Most segments are found on their first lookup: each costs a hash of two addresses.
    fn orient(&self, seg: &Segment, hash: u64) -> Orientation {
        let stale = |slot: &Slot| slot.retirable(seg.ts_ns, self.horizon_ns, self.ctx.policy());
        let to_server = TupleKey {
            client: seg.src,
            server: seg.dst,
        };
        let to_client = TupleKey {
            client: seg.dst,
            server: seg.src,
        };
        let forced = match self.server_override {
            Some(server) if seg.dst == server => Some((to_server, Direction::ToServer)),
            Some(server) if seg.src == server => Some((to_client, Direction::ToClient)),
            _ => None,
        };
        if let Some((key, direction)) = forced {
            return match self.tuples.find(hash, &key) {
                Some(at) if stale(self.tuples.entry(at).1) => Orientation::Stale(at),
                Some(at) => Orientation::Held(at, direction),
                None => Orientation::New(key, direction),
            };
        }
        // A tuple is held one way round only: a segment either way finds it in one probe.
        if let Some(at) = self.tuples.find_pair(hash, seg.src, seg.dst) {
            let (key, slot) = self.tuples.entry(at);
            if stale(slot) {
                return Orientation::Stale(at);
            }
            let direction = if key.client == seg.src && key.server == seg.dst {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            return Orientation::Held(at, direction);
        }
        if seg.is_syn() {
            return Orientation::New(to_server, Direction::ToServer);
        }
        if seg.is_syn_ack() {
            return Orientation::New(to_client, Direction::ToClient);
        }
        Orientation::Unknown
    }
}

/// Where a segment belongs.
enum Orientation {
    /// Where the tuple is held, and the segment's direction on it.
    Held(u32, Direction),
    /// A tuple not held yet, and the segment's direction on it.
    New(TupleKey, Direction),
    /// Where a held tuple is that was quiet for so long it must be forgotten first.
    Stale(u32),
    /// Neither endpoint pair is held and the segment does not say who is the server.
    Unknown,
}

/// The state a tuple first seen with `seg` starts in.
fn first_state(
    midstream: &FastSet<(SocketAddr, SocketAddr)>,
    key: &TupleKey,
    seg: &Segment,
) -> ServerState {
    // A SYN on a pair that already talked: the server may hold state the capture never
    // showed. A SYN-ACK without its SYN: the same.
    if midstream.contains(&unordered_pair(key.client, key.server)) || !seg.is_syn() {
        ServerState::Unknown
    } else {
        ServerState::Closed
    }
}

impl<'p, S: RecordSink> Context<'p, S> {
    /// The policy judging the tuple at hand: its candidates judge alike.
    fn policy(&self) -> &'p dyn ServerPolicy {
        self.policies[self.current.start]
    }

    /// Runs `f` for one candidate's copy of a split tuple: its counts and records go to that
    /// candidate only.
    fn as_candidate<R>(&mut self, candidate: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        std::mem::swap(&mut self.stats, &mut self.split_stats[candidate]);
        self.current = candidate..candidate + 1;
        let result = f(self);
        self.current = 0..self.policies.len();
        std::mem::swap(&mut self.stats, &mut self.split_stats[candidate]);
        result
    }

    fn emit_syn(&mut self, syn: SynRecord) {
        S::syn_to(&mut self.sinks, self.current.clone(), syn);
    }

    fn emit_incarnation(&mut self, incarnation: IncarnationRecord) {
        S::incarnation_to(&mut self.sinks, self.current.clone(), incarnation);
    }

    fn emit_port_taken(&mut self, tuple: TupleKey, syn_ns: i64) {
        S::port_taken_to(&mut self.sinks, self.current.clone(), tuple, syn_ns);
    }

    /// Whether the candidates would judge `seg` differently at the tuple: on its TIME_WAIT
    /// socket, or (a SYN) at the listener, where each remembers its own peers.
    fn judged_apart(&self, tuple: &Tuple, direction: Direction, seg: &Segment) -> bool {
        if direction != Direction::ToServer {
            return false;
        }
        let first = self.policies[0];
        if let ServerState::TimeWait(tw) = tuple.state
            && !first.expired(&tw, seg.ts_ns)
        {
            let judgement = first.on_time_wait_segment(&tw, seg);
            return self.policies[1..]
                .iter()
                .any(|policy| policy.on_time_wait_segment(&tw, seg) != judgement);
        }
        if !seg.is_syn() {
            return false;
        }
        let judgement = first.on_listener_syn(&self.peers[0], seg);
        self.policies
            .iter()
            .zip(&self.peers)
            .skip(1)
            .any(|(policy, peers)| policy.on_listener_syn(peers, seg) != judgement)
    }

    /// Hands a segment to its tuple's side.
    fn dispatch(&mut self, key: &TupleKey, tuple: &mut Tuple, direction: Direction, seg: &Segment) {
        tuple.last_seen_ns = seg.ts_ns;
        match direction {
            Direction::ToServer => {
                self.stats.to_server += 1;
                self.on_client_segment(key, tuple, seg);
            }
            Direction::ToClient => {
                self.stats.to_client += 1;
                self.on_server_segment(key, tuple, seg);
            }
        }
    }

    /// The capture ended with the tuple held: TIME_WAIT still open or expired by its last
    /// packet, and what it still holds handed on.
    fn end_capture(&mut self, key: &TupleKey, tuple: &mut Tuple, end_ns: i64) {
        self.expire_time_wait(tuple, end_ns);
        if matches!(tuple.state, ServerState::TimeWait(_)) {
            self.stats.time_wait.open_at_end += 1;
            end_time_wait(tuple, TimeWaitEnd::OpenAtEnd, None);
        }
        if let Some(syn) = tuple.open_syn.take() {
            self.finish_syn(*syn);
        }
        if let Some(incarnation) = tuple.incarnation.take() {
            self.emit_incarnation(incarnation.with_tuple(*key));
        }
    }

    /// Hands on what a slot about to be forgotten still holds, for each candidate.
    fn forget_slot(&mut self, key: &TupleKey, slot: &mut Slot, now_ns: i64) {
        self.each_copy(slot, |ctx, tuple| ctx.forget(key, tuple, now_ns));
    }

    /// Runs `f` on a shared tuple for every candidate, or on each copy of a split one as its
    /// candidate.
    fn each_copy(&mut self, slot: &mut Slot, mut f: impl FnMut(&mut Self, &mut Tuple)) {
        match slot {
            Slot::Shared(tuple) => f(self, tuple),
            Slot::Split(copies) => {
                for (candidate, tuple) in copies.iter_mut().enumerate() {
                    self.as_candidate(candidate, |ctx| f(ctx, tuple));
                }
            }
        }
    }

    /// Hands on what a tuple about to be forgotten still holds.
    fn forget(&mut self, key: &TupleKey, tuple: &mut Tuple, now_ns: i64) {
        self.expire_time_wait(tuple, now_ns);
        // Nothing can answer a SYN this old any more.
        if let Some(syn) = tuple.open_syn.take() {
            self.finish_syn(*syn);
        }
        if let Some(incarnation) = tuple.incarnation.take() {
            self.emit_incarnation(incarnation.with_tuple(*key));
        }
    }

    fn on_client_segment(&mut self, key: &TupleKey, tuple: &mut Tuple, seg: &Segment) {
        self.expire_time_wait(tuple, seg.ts_ns);
        if seg.is_syn() {
            self.on_syn(key, tuple, seg);
            return;
        }
        match tuple.state {
            ServerState::TimeWait(tw) => {
                let judgement = self.policy().on_time_wait_segment(&tw, seg);
                match judgement.reason {
                    TwReason::InWindowRst => tuple.rst_decided = Some(Assumption::Rfc1337Off),
                    TwReason::InWindowRstIgnored => {
                        tuple.rst_decided = Some(Assumption::Rfc1337On);
                    }
                    _ => {}
                }
                self.apply_time_wait(tuple, &judgement, seg.ts_ns);
            }
            ServerState::Handshake(handshake) => {
                count_traffic(tuple, seg, Direction::ToServer);
                if seg.flags.rst() {
                    self.end_incarnation(
                        key,
                        tuple,
                        CloseOutcome::Reset,
                        Closer::Nobody,
                        seg.ts_ns,
                    );
                } else if handshake.completed_by(seg) {
                    // Without the SYN-ACK in the capture, the client's ACK still shows the
                    // server's ISN.
                    let server_isn = handshake.server_isn.unwrap_or(seg.ack.wrapping_sub(1));
                    let connection = Connection::establish(&handshake, server_isn, seg.ts_ns);
                    self.stats.counters.passive_opens += 1;
                    tuple.incarnations += 1;
                    let recorded = tuple.incarnation.as_ref().is_some_and(|r| {
                        r.end_ns.is_none() && r.client_isn == handshake.client_isn
                    });
                    if !recorded {
                        self.start_incarnation(key, tuple, &handshake, server_isn, None);
                    }
                    if let Some(mut syn) = tuple.open_syn.take_if(|s| s.isn == handshake.client_isn)
                    {
                        // Nothing changes a SYN's record once its connection is established:
                        // hand it on now rather than hold it for the tuple's lifetime.
                        syn.established_ns = Some(seg.ts_ns);
                        self.finish_syn(*syn);
                    }
                    if let Some(record) = tuple.incarnation.as_mut() {
                        record.handshake_ns = Some(seg.ts_ns);
                        record.ts_negotiated = connection.ts_negotiated;
                    }
                    self.on_open_client_segment(key, tuple, connection, seg);
                }
            }
            ServerState::Open(connection) => {
                count_traffic(tuple, seg, Direction::ToServer);
                self.on_open_client_segment(key, tuple, connection, seg);
            }
            ServerState::Closed | ServerState::Unknown => {}
        }
    }

    /// A client segment on an open connection; a close it completes ends the incarnation.
    fn on_open_client_segment(
        &mut self,
        key: &TupleKey,
        tuple: &mut Tuple,
        mut connection: Connection,
        seg: &Segment,
    ) {
        let outcome = connection.on_client(
            seg,
            self.policy().time_wait_len_for(connection.ts_negotiated),
        );
        tuple.state = ServerState::Open(connection);
        if let Some(outcome) = outcome {
            self.end_incarnation(key, tuple, outcome, connection.closer(), seg.ts_ns);
        }
    }

    fn on_server_segment(&mut self, key: &TupleKey, tuple: &mut Tuple, seg: &Segment) {
        // Captures usually hold one or a few servers: most segments come from the endpoint
        // the one before came from, and need no lookup.
        if self.last_heard_from != Some(key.server) {
            self.heard_from.insert(key.server);
            self.last_heard_from = Some(key.server);
        }
        self.observe_reply(tuple, seg);
        if seg.is_syn_ack() {
            self.learn_listener(key.server);
            self.follow_unpredicted_accept(tuple, seg);
        }
        match tuple.state {
            ServerState::Handshake(mut handshake) => {
                if seg.is_syn_ack() && seg.ack == handshake.client_isn.wrapping_add(1) {
                    if handshake.server_isn.is_none() {
                        if handshake.client_tsval.is_some() {
                            self.stats.synacks_to_ts_syns += 1;
                            self.stats.synacks_with_ts += u64::from(seg.tsval().is_some());
                        }
                        self.start_incarnation(key, tuple, &handshake, seg.seq, Some(seg));
                    } else {
                        count_traffic(tuple, seg, Direction::ToClient);
                    }
                    handshake.server_isn = Some(seg.seq);
                    handshake.server_ts = seg.tsval().is_some();
                    tuple.state = ServerState::Handshake(handshake);
                } else if seg.flags.rst() {
                    count_traffic(tuple, seg, Direction::ToClient);
                    self.end_incarnation(
                        key,
                        tuple,
                        CloseOutcome::Reset,
                        Closer::Nobody,
                        seg.ts_ns,
                    );
                }
            }
            ServerState::Open(mut connection) => {
                count_traffic(tuple, seg, Direction::ToClient);
                let outcome = connection.on_server(seg);
                tuple.state = ServerState::Open(connection);
                if let Some(outcome) = outcome {
                    self.end_incarnation(key, tuple, outcome, connection.closer(), seg.ts_ns);
                }
            }
            ServerState::TimeWait(_) | ServerState::Closed | ServerState::Unknown => {}
        }
    }

    /// The policy kept the tuple in TIME_WAIT (or dropped the SYN), but the server answered the
    /// latest SYN with a SYN-ACK: the prediction is already counted as a disagreement; the
    /// tracker now follows what the server did, so the connection is not lost.
    fn follow_unpredicted_accept(&mut self, tuple: &mut Tuple, seg: &Segment) {
        let Some(syn) = tuple.open_syn.as_deref().copied() else {
            return;
        };
        if seg.ack != syn.isn.wrapping_add(1) {
            return;
        }
        match tuple.state {
            ServerState::TimeWait(_) => {
                self.stats.time_wait.reopened_by_syn += 1;
                end_time_wait(tuple, TimeWaitEnd::ReopenedBySyn, Some(seg.ts_ns));
            }
            ServerState::Closed => {}
            _ => return,
        }
        tuple.state = ServerState::Handshake(Handshake {
            syn_ns: syn.ts_ns,
            client_isn: syn.isn,
            client_tsval: syn.tsval,
            server_isn: None,
            server_ts: false,
        });
    }

    /// Classifies the server's first answer to the tuple's latest SYN.
    fn observe_reply(&mut self, tuple: &mut Tuple, seg: &Segment) {
        let Some(syn) = tuple.open_syn.as_mut() else {
            return;
        };
        if syn.reply != ObservedReply::None {
            return;
        }
        let reply = if seg.is_syn_ack() {
            if seg.ack != syn.isn.wrapping_add(1) {
                return;
            }
            syn.reply_server_isn = Some(seg.seq);
            if let Some(expected) = syn.expected_server_isn {
                if expected == seg.seq {
                    self.stats.time_wait.reopen_isn_matched += 1;
                } else {
                    self.stats.time_wait.reopen_isn_mismatched += 1;
                }
            }
            ObservedReply::SynAck
        } else if seg.flags.rst() {
            ObservedReply::Rst
        } else if seg.flags.ack() {
            ObservedReply::ChallengeAck
        } else {
            return;
        };
        syn.reply = reply;
        syn.reply_delay_ns = Some(seg.ts_ns - syn.ts_ns);
    }

    fn on_syn(&mut self, key: &TupleKey, tuple: &mut Tuple, seg: &Segment) {
        let now = seg.ts_ns;
        self.stats.syn_total += 1;
        if !tuple.saw_syn {
            tuple.saw_syn = true;
            self.stats.tuples_with_syn += 1;
        }
        let retransmitted = tuple.last_isn == Some(seg.seq);
        let mut reuse = None;
        if retransmitted {
            self.stats.syn_retransmissions += 1;
            tuple.retransmission += 1;
        } else {
            tuple.retransmission = 0;
            if tuple.incarnations > 0 {
                let previous_end_ns = match tuple.state {
                    ServerState::Open(_) => None,
                    _ => tuple.last_end_ns,
                };
                let gap_ns = previous_end_ns.map_or(0, |end| now - end);
                let within_2msl = gap_ns < self.policy().time_wait_len_ns();
                if within_2msl {
                    self.stats.reuse_within_2msl += 1;
                } else {
                    self.stats.reuse_after_2msl += 1;
                }
                reuse = Some(Reuse {
                    previous_end_ns,
                    previous_holder: tuple
                        .incarnation
                        .as_ref()
                        .map_or(TimeWaitHolder::Nobody, |r| r.time_wait_holder),
                    gap_ns,
                    within_2msl,
                });
            }
        }
        tuple.last_isn = Some(seg.seq);
        if let Some(previous) = tuple.open_syn.take() {
            self.finish_syn(*previous);
        }

        let mut record = SynRecord {
            ts_ns: now,
            tuple: *key,
            isn: seg.seq,
            tsval: seg.tsval(),
            retransmission: tuple.retransmission,
            found: FoundState::Listen,
            verdict: Verdict::Accepted,
            reason: "",
            expected_server_isn: None,
            predicted_reply: ObservedReply::SynAck,
            reply: ObservedReply::None,
            reply_delay_ns: None,
            reply_server_isn: None,
            established_ns: None,
            reuse,
            listener_pending: false,
            rests_on: tuple.rst_decided.take(),
            assumption_unsupported: false,
        };

        match tuple.state {
            ServerState::TimeWait(tw) => {
                record.found = FoundState::TimeWait {
                    ts_recent: tw.ts_recent,
                    ts_negotiated: tw.ts_recent_stamp_ns.is_some(),
                    rcv_nxt: tw.rcv_nxt,
                    age_ns: now - tw.start_ns,
                };
                let judgement = self.policy().on_time_wait_segment(&tw, seg);
                record.reason = judgement.reason.describe();
                match judgement.next {
                    TwNext::Reopened { server_isn } => {
                        record.expected_server_isn = Some(server_isn);
                    }
                    _ if judgement.paws_reject => record.verdict = Verdict::PawsReject,
                    _ => record.verdict = Verdict::SeqReject,
                }
                record.predicted_reply = match judgement.reply {
                    TwReply::Ack => ObservedReply::ChallengeAck,
                    TwReply::ToListener => ObservedReply::SynAck,
                    TwReply::Nothing | TwReply::RateLimited => ObservedReply::None,
                };
                // A challenge ACK soon after another one: the rate limit decided the reply.
                let limited = judgement.reply == TwReply::RateLimited
                    || (judgement.reply == TwReply::Ack && tw.last_oow_ack_ns.is_some());
                if limited && record.rests_on.is_none() {
                    record.rests_on = Some(Assumption::RateLimit);
                }
                self.apply_time_wait(tuple, &judgement, now);
                if let TwNext::Reopened { .. } = judgement.next {
                    tuple.state = ServerState::Handshake(Handshake::new(seg));
                }
            }
            ServerState::Closed => {
                if self.send_to_listener(&mut record, seg) {
                    tuple.state = ServerState::Handshake(Handshake::new(seg));
                }
            }
            ServerState::Handshake(handshake) => {
                if handshake.server_isn.is_none() {
                    // No SYN-ACK yet: whether a request socket exists is the listener's
                    // question, as for the first SYN.
                    if self.send_to_listener(&mut record, seg) && handshake.client_isn != seg.seq {
                        tuple.state = ServerState::Handshake(Handshake::new(seg));
                    }
                } else if handshake.client_isn == seg.seq {
                    record.found = FoundState::SynRecv;
                    record.reason = "retransmitted SYN: the request socket answers it again";
                } else {
                    record.found = FoundState::SynRecv;
                    record.verdict = Verdict::Unknown;
                    record.predicted_reply = ObservedReply::None;
                    record.reason = "new ISN while the server holds a request socket (SYN_RECV)";
                }
            }
            ServerState::Open(_) => {
                record.found = FoundState::Open;
                record.verdict = Verdict::Unknown;
                record.predicted_reply = ObservedReply::None;
                record.reason = "the tuple's previous connection is still open at the server";
            }
            ServerState::Unknown => {
                record.found = FoundState::Unknown;
                record.verdict = Verdict::Unknown;
                record.predicted_reply = ObservedReply::None;
                record.reason = "the capture did not show this tuple's earlier conversation begin";
                // Follow what the server does next, so later SYNs can be judged.
                tuple.state = ServerState::Handshake(Handshake::new(seg));
            }
        }
        tuple.open_syn = Some(Box::new(record));
    }

    /// A SYN that meets no socket goes to the listener, if the port has one.
    /// Returns whether the listener takes it: a policy may drop it first.
    fn send_to_listener(&mut self, record: &mut SynRecord, seg: &Segment) -> bool {
        record.found = FoundState::Listen;
        let peers = &self.peers[self.current.start];
        if self.policy().on_listener_syn(peers, seg) == ListenerJudgement::PawsPassiveDrop {
            record.verdict = Verdict::PawsPassiveDrop;
            record.predicted_reply = ObservedReply::None;
            record.reason =
                "tcp_tw_recycle: TSval behind the one remembered for this address (dropped)";
            self.stats.counters.paws_passive += 1;
            return false;
        }
        record.verdict = Verdict::Accepted;
        record.reason = "no socket for the tuple: the listener accepts it";
        record.listener_pending = !self.listeners.contains(&seg.dst);
        true
    }

    /// The policy's judgement on a TIME_WAIT socket, applied to the tuple and the counters.
    fn apply_time_wait(&mut self, tuple: &mut Tuple, judgement: &TwJudgement, now_ns: i64) {
        // The kernel counts a PAWS failure only for segments it does not accept, and an
        // accepted SYN never fails PAWS.
        if judgement.paws_reject {
            self.stats.counters.paws_timewait += 1;
        }
        if judgement.reply == TwReply::RateLimited {
            self.stats.counters.ack_skipped_timewait += 1;
        }
        match judgement.next {
            TwNext::Stay(tw) => tuple.state = ServerState::TimeWait(tw),
            TwNext::Killed => {
                self.stats.time_wait.killed_by_rst += 1;
                tuple.state = ServerState::Closed;
                end_time_wait(tuple, TimeWaitEnd::KilledByRst, Some(now_ns));
            }
            TwNext::Reopened { .. } => {
                self.stats.time_wait.reopened_by_syn += 1;
                tuple.state = ServerState::Closed;
                end_time_wait(tuple, TimeWaitEnd::ReopenedBySyn, Some(now_ns));
            }
        }
    }

    fn expire_time_wait(&mut self, tuple: &mut Tuple, now_ns: i64) {
        if let ServerState::TimeWait(tw) = tuple.state
            && self.policy().expired(&tw, now_ns)
        {
            self.stats.time_wait.expired += 1;
            tuple.state = ServerState::Closed;
            end_time_wait(tuple, TimeWaitEnd::Expired, Some(tw.deadline_ns));
        }
    }

    fn end_incarnation(
        &mut self,
        key: &TupleKey,
        tuple: &mut Tuple,
        outcome: CloseOutcome,
        closer: Closer,
        now_ns: i64,
    ) {
        tuple.last_end_ns = Some(now_ns);
        let (state, close_kind, holder) = match outcome {
            CloseOutcome::ServerTimeWait(tw) => {
                self.stats.time_wait.entered += 1;
                for candidate in self.current.clone() {
                    self.policies[candidate].on_time_wait_entry(
                        &mut self.peers[candidate],
                        key.client.ip(),
                        &tw,
                    );
                }
                (
                    ServerState::TimeWait(tw),
                    CloseKind::Fin,
                    TimeWaitHolder::Server,
                )
            }
            CloseOutcome::ClientTimeWait => {
                self.stats.time_wait.client_held += 1;
                (ServerState::Closed, CloseKind::Fin, TimeWaitHolder::Client)
            }
            CloseOutcome::Reset => (ServerState::Closed, CloseKind::Rst, TimeWaitHolder::Nobody),
        };
        tuple.state = state;
        if let Some(record) = tuple.incarnation.as_mut()
            && record.end_ns.is_none()
        {
            record.end_ns = Some(now_ns);
            record.close_kind = close_kind;
            record.closed_first = closer;
            record.time_wait_holder = holder;
            if holder != TimeWaitHolder::Nobody {
                record.time_wait_start_ns = Some(now_ns);
            }
        }
    }

    /// The server answered a SYN: a new incarnation begins, and the tuple's previous one is
    /// complete now that its gap to this one is known.
    fn start_incarnation(
        &mut self,
        key: &TupleKey,
        tuple: &mut Tuple,
        handshake: &Handshake,
        server_isn: u32,
        syn_ack: Option<&Segment>,
    ) {
        if let Some(mut previous) = tuple.incarnation.take() {
            previous.gap_to_next_ns = previous.end_ns.map(|end| handshake.syn_ns - end);
            self.emit_incarnation(previous.with_tuple(*key));
        }
        tuple.incarnations_started += 1;
        self.emit_port_taken(*key, handshake.syn_ns);
        let mut server = SideTraffic::default();
        if let Some(syn_ack) = syn_ack {
            server.add(syn_ack);
        }
        let client = SideTraffic {
            segments: 1,
            payload_bytes: 0,
            first_tsval: handshake.client_tsval,
            last_tsval: handshake.client_tsval,
        };
        tuple.incarnation = Some(IncarnationRecord::answered(
            (),
            tuple.incarnations_started,
            handshake.syn_ns,
            handshake.client_isn,
            server_isn,
            client,
            server,
        ));
    }

    /// The first SYN-ACK from a port proves a listener: settle the SYNs waiting on it.
    fn learn_listener(&mut self, server: SocketAddr) {
        if !self.listeners.insert(server) {
            return;
        }
        let current = self.current.clone();
        for (mut syn, candidates) in self.awaiting_listener.remove(&server).unwrap_or_default() {
            syn.listener_pending = false;
            self.current = candidates;
            self.emit_syn(syn);
        }
        self.current = current;
    }

    /// A SYN's reply window closed: hand it on, or park it until the listener is known.
    fn finish_syn(&mut self, mut syn: SynRecord) {
        if syn.listener_pending {
            if !self.listeners.contains(&syn.tuple.server) {
                let candidates = self.current.clone();
                self.awaiting_listener
                    .entry(syn.tuple.server)
                    .or_default()
                    .push((syn, candidates));
                return;
            }
            syn.listener_pending = false;
        }
        self.emit_syn(syn);
    }
}

/// Adds a segment of a live connection to its incarnation's traffic.
fn count_traffic(tuple: &mut Tuple, seg: &Segment, direction: Direction) {
    if let Some(record) = tuple.incarnation.as_mut()
        && record.end_ns.is_none()
    {
        match direction {
            Direction::ToServer => record.client.add(seg),
            Direction::ToClient => record.server.add(seg),
        }
    }
}

/// Notes how and when the server's TIME_WAIT for the tuple's latest incarnation ended.
fn end_time_wait(tuple: &mut Tuple, how: TimeWaitEnd, at_ns: Option<i64>) {
    if let Some(record) = tuple.incarnation.as_mut()
        && record.time_wait_holder == TimeWaitHolder::Server
        && record.time_wait_end.is_none()
    {
        record.time_wait_end = Some(how);
        record.time_wait_end_ns = at_ns;
    }
}
