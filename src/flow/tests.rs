//! The tracker on hand-built conversations: one lifecycle rule per test.

use std::net::SocketAddr;

use super::tracker::SWEEP_DRAIN_TUPLES;
use super::*;
use crate::packet::{Segment, TcpFlags, TcpOptions, Timestamp};
use crate::policy::linux::LinuxPolicy;

const MS: i64 = 1_000_000;
const SEC: i64 = 1_000 * MS;
const S: u8 = TcpFlags::SYN;
const A: u8 = TcpFlags::ACK;
const F: u8 = TcpFlags::FIN;
const R: u8 = TcpFlags::RST;

fn client() -> SocketAddr {
    "203.0.113.1:40000".parse().unwrap()
}
fn server() -> SocketAddr {
    "203.0.113.10:80".parse().unwrap()
}

fn seg(
    t: i64,
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
    tsval: Option<u32>,
) -> Segment {
    let (src, dst) = if from_client {
        (client(), server())
    } else {
        (server(), client())
    };
    Segment {
        ts_ns: t,
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags(flags),
        payload_len: len,
        window: 1000,
        options: TcpOptions {
            timestamp: tsval.map(|val| Timestamp { val, ecr: 0 }),
            ..TcpOptions::default()
        },
    }
}

fn c(t: i64, flags: u8, seq: u32, ack: u32, len: u32, tsval: Option<u32>) -> Segment {
    seg(t, true, flags, seq, ack, len, tsval)
}
fn s(t: i64, flags: u8, seq: u32, ack: u32, len: u32, tsval: Option<u32>) -> Segment {
    seg(t, false, flags, seq, ack, len, tsval)
}

fn run(segments: &[Segment]) -> (FlowStats, Vec<SynRecord>) {
    run_with(&LinuxPolicy::default(), segments)
}

fn run_with(policy: &LinuxPolicy, segments: &[Segment]) -> (FlowStats, Vec<SynRecord>) {
    let mut tracker = Tracker::new(policy, None, Vec::new());
    for segment in segments {
        tracker.on_segment(segment);
    }
    let (stats, mut syns) = tracker.finish();
    syns.sort_by_key(|syn| syn.ts_ns);
    (stats, syns)
}

/// A request/response where the server closes first: client ISN 100, server ISN 5000,
/// client clock at 1000. Ends with the server in TIME_WAIT: rcv_nxt 112, snd_nxt 5022,
/// ts_recent 1004.
fn server_closes_first(t0: i64) -> Vec<Segment> {
    let ts = Some;
    vec![
        c(t0, S, 100, 0, 0, ts(1000)),
        s(t0 + MS, S | A, 5000, 101, 0, ts(7)),
        c(t0 + 2 * MS, A, 101, 5001, 0, ts(1001)),
        c(t0 + 3 * MS, A, 101, 5001, 10, ts(1002)),
        s(t0 + 4 * MS, A | F, 5001, 111, 20, ts(8)),
        c(t0 + 5 * MS, A, 111, 5022, 0, ts(1003)),
        c(t0 + 6 * MS, A | F, 111, 5022, 0, ts(1004)),
        s(t0 + 7 * MS, A, 5022, 112, 0, ts(9)),
    ]
}

#[test]
fn server_that_closes_first_holds_time_wait_with_the_clients_fin_state() {
    let mut conversation = server_closes_first(0);
    // Another host behind the NAT, with a clock behind: PAWS rejects its SYN.
    conversation.push(c(SEC, S, 90_000, 0, 0, Some(500)));
    let (stats, syns) = run(&conversation);
    assert_eq!(stats.counters.passive_opens, 1);
    assert_eq!(stats.time_wait.entered, 1);
    assert_eq!(stats.counters.paws_timewait, 1);
    let rejected = &syns[1];
    assert_eq!(rejected.verdict, Verdict::PawsReject);
    assert_eq!(
        rejected.found,
        FoundState::TimeWait {
            ts_recent: 1004,
            ts_negotiated: true,
            rcv_nxt: 112,
            age_ns: SEC - 6 * MS
        }
    );
}

/// After [`server_closes_first`], a SYN from another host's clock behind the NAT: PAWS
/// rejects it with a challenge ACK, the client answers with an in-window RST and sends the
/// SYN again.
fn rejected_then_rst_then_retransmitted() -> Vec<Segment> {
    let mut conversation = server_closes_first(0);
    conversation.extend([
        c(SEC, S, 90_000, 0, 0, Some(500)),
        s(SEC + MS, A, 5022, 112, 0, Some(10)),
        c(SEC + 2 * MS, R, 112, 0, 0, None),
        c(SEC + 5 * MS, S, 90_000, 0, 0, Some(505)),
    ]);
    conversation
}

#[test]
fn challenge_ack_then_client_rst_then_retransmission_is_accepted_with_the_time_wait_isn() {
    let mut conversation = rejected_then_rst_then_retransmitted();
    conversation.extend([
        s(SEC + 6 * MS, S | A, 5022 + 65_537, 90_001, 0, Some(11)),
        c(SEC + 7 * MS, A, 90_001, 5022 + 65_538, 0, Some(506)),
    ]);
    let (stats, syns) = run(&conversation);
    assert_eq!(syns[1].reply, ObservedReply::ChallengeAck);
    assert_eq!(syns[1].reply_delay_ns, Some(MS));
    assert_eq!(stats.time_wait.killed_by_rst, 1);
    // The retransmission meets no socket (the RST killed TIME_WAIT): an ordinary accept.
    assert_eq!(syns[2].retransmission, 1);
    assert_eq!(syns[2].verdict, Verdict::Accepted);
    assert_eq!(syns[2].found, FoundState::Listen);
    assert_eq!(syns[2].reply, ObservedReply::SynAck);
    assert_eq!(stats.counters.passive_opens, 2);
    assert_eq!(stats.syn_retransmissions, 1);
    assert_eq!(stats.reuse_within_2msl, 1);
}

#[test]
fn syn_accepted_out_of_time_wait_is_answered_with_snd_nxt_plus_65537() {
    let mut conversation = server_closes_first(0);
    conversation.extend([
        c(SEC, S, 90_000, 0, 0, Some(2000)),
        s(SEC + MS, S | A, 5022 + 65_537, 90_001, 0, Some(11)),
    ]);
    let (stats, syns) = run(&conversation);
    assert_eq!(syns[1].verdict, Verdict::Accepted);
    assert_eq!(syns[1].expected_server_isn, Some(5022 + 65_537));
    assert_eq!(stats.time_wait.reopened_by_syn, 1);
    assert_eq!(stats.time_wait.reopen_isn_matched, 1);
}

#[test]
fn crossing_fins_are_ordered_by_what_the_servers_fin_acknowledges() {
    // The client's FIN is captured first, but the server's FIN (ack 111) does not cover it:
    // the server had closed before it arrived, so the server holds TIME_WAIT.
    let ts = Some;
    let conversation = vec![
        c(0, S, 100, 0, 0, ts(1000)),
        s(MS, S | A, 5000, 101, 0, ts(7)),
        c(2 * MS, A, 101, 5001, 10, ts(1001)),
        c(3 * MS, A | F, 111, 5001, 0, ts(1002)),
        s(3 * MS + 1, A | F, 5001, 111, 0, ts(8)),
        s(4 * MS, A, 5002, 112, 0, ts(9)),
        c(4 * MS + 1, A, 112, 5002, 0, ts(1003)),
    ];
    let (stats, _) = run(&conversation);
    assert_eq!(stats.time_wait.entered, 1);
    assert_eq!(stats.time_wait.client_held, 0);
}

#[test]
fn client_that_closes_first_leaves_the_server_no_time_wait() {
    let ts = Some;
    let conversation = vec![
        c(0, S, 100, 0, 0, ts(1000)),
        s(MS, S | A, 5000, 101, 0, ts(7)),
        c(2 * MS, A, 101, 5001, 0, ts(1001)),
        c(3 * MS, A | F, 101, 5001, 0, ts(1002)),
        s(4 * MS, A | F, 5001, 102, 0, ts(8)),
        c(5 * MS, A, 102, 5002, 0, ts(1003)),
        // The same tuple again at once, older clock and lower ISN: no TIME_WAIT to stop it.
        c(SEC, S, 50, 0, 0, ts(10)),
        s(SEC + MS, S | A, 777, 51, 0, ts(20)),
    ];
    let (stats, syns) = run(&conversation);
    assert_eq!(stats.time_wait.entered, 0);
    assert_eq!(stats.time_wait.client_held, 1);
    assert_eq!(syns[1].verdict, Verdict::Accepted);
    assert_eq!(syns[1].found, FoundState::Listen);
    assert_eq!(stats.reuse_within_2msl, 1);
}

#[test]
fn time_wait_expires_after_its_length_and_reuse_counts_as_after_2msl() {
    let mut conversation = server_closes_first(0);
    conversation.push(c(61 * SEC, S, 90, 0, 0, Some(1)));
    let (stats, syns) = run(&conversation);
    assert_eq!(stats.time_wait.expired, 1);
    assert_eq!(syns[1].verdict, Verdict::Accepted);
    assert_eq!(syns[1].found, FoundState::Listen);
    assert_eq!(stats.reuse_after_2msl, 1);
    assert_eq!(stats.counters.paws_timewait, 0);
}

#[test]
fn second_challenge_ack_within_500_ms_is_skipped_and_counted() {
    let mut conversation = server_closes_first(0);
    conversation.extend([
        c(SEC, S, 90, 0, 0, Some(1)),
        c(SEC + 400 * MS, S, 91, 0, 0, Some(2)),
    ]);
    let (stats, syns) = run(&conversation);
    assert_eq!(stats.counters.paws_timewait, 2);
    assert_eq!(stats.counters.ack_skipped_timewait, 1);
    assert_eq!(syns[2].verdict, Verdict::PawsReject);
}

#[test]
fn without_timestamps_a_lower_isn_is_a_sequence_reject() {
    let conversation = vec![
        c(0, S, 100, 0, 0, None),
        s(MS, S | A, 5000, 101, 0, None),
        c(2 * MS, A, 101, 5001, 0, None),
        s(3 * MS, A | F, 5001, 101, 0, None),
        c(4 * MS, A | F, 101, 5002, 0, None),
        c(SEC, S, 50, 0, 0, None),
        s(SEC + MS, A, 5002, 102, 0, None),
    ];
    let (stats, syns) = run(&conversation);
    assert_eq!(syns[1].verdict, Verdict::SeqReject);
    assert_eq!(syns[1].reply, ObservedReply::ChallengeAck);
    assert_eq!(stats.counters.paws_timewait, 0);
}

#[test]
fn port_without_a_syn_ack_anywhere_has_no_listener() {
    let conversation = vec![c(0, S, 100, 0, 0, None), s(MS, R | A, 0, 101, 0, None)];
    let (_, syns) = run(&conversation);
    assert_eq!(syns[0].verdict, Verdict::NoListener);
    assert_eq!(syns[0].reply, ObservedReply::Rst);
}

#[test]
fn listener_shown_later_in_the_capture_settles_earlier_syns() {
    let other: SocketAddr = "203.0.113.2:40000".parse().unwrap();
    let mut late_syn_ack = s(2 * SEC, S | A, 9, 301, 0, None);
    late_syn_ack.dst = other;
    let mut late_syn = c(2 * SEC - MS, S, 300, 0, 0, None);
    late_syn.src = other;
    let conversation = vec![c(0, S, 100, 0, 0, None), late_syn, late_syn_ack];
    let (_, syns) = run(&conversation);
    assert_eq!(syns[0].verdict, Verdict::Accepted);
    assert_eq!(syns[0].reply, ObservedReply::None);
}

#[test]
fn one_direction_capture_leaves_listener_verdicts_unknown() {
    let conversation = vec![c(0, S, 100, 0, 0, None), c(SEC, S, 100, 0, 0, None)];
    let (stats, syns) = run(&conversation);
    assert_eq!(stats.to_client, 0);
    assert!(syns.iter().all(|syn| syn.verdict == Verdict::Unknown));
}

#[test]
fn capture_starting_mid_conversation_makes_the_next_syn_unknown() {
    let conversation = vec![
        c(0, A, 500, 900, 10, None),
        s(MS, A, 900, 510, 0, None),
        c(SEC, S, 100, 0, 0, None),
        s(SEC + MS, S | A, 5000, 101, 0, None),
    ];
    let (stats, syns) = run(&conversation);
    assert_eq!(stats.unoriented, 2);
    assert_eq!(syns[0].verdict, Verdict::Unknown);
    assert_eq!(syns[0].found, FoundState::Unknown);
}

#[test]
fn quiet_closed_tuples_are_forgotten_and_come_back_as_new_tuples() {
    let policy = LinuxPolicy::default();
    let mut tracker = Tracker::new(&policy, None, Vec::new());
    // 400 short connections, each on its own client port, one every second.
    for i in 0..400u16 {
        let t0 = i64::from(i) * SEC;
        for mut segment in server_closes_first(t0) {
            if segment.src == client() {
                segment.src.set_port(20_000 + i);
            } else {
                segment.dst.set_port(20_000 + i);
            }
            tracker.on_segment(&segment);
        }
    }
    // Only tuples from the last few minutes of capture time are held in full.
    assert!(
        tracker.live_tuples() <= 200,
        "{} live tuples",
        tracker.live_tuples()
    );
    // The last tuple comes back 90 s after it closed: still held, reused after 2MSL.
    let mut recent = c(400 * SEC + 90 * SEC, S, 7, 0, 0, Some(9));
    recent.src.set_port(20_399);
    tracker.on_segment(&recent);
    // The first tuple comes back 10 minutes after it closed: the server's kernel kept
    // nothing of it, and neither does the tracker: a new tuple, not a reuse.
    let mut again = c(400 * SEC + 200 * SEC, S, 7, 0, 0, Some(9));
    again.src.set_port(20_000);
    tracker.on_segment(&again);
    let (stats, syns) = tracker.finish();
    assert_eq!(stats.tuples_with_syn, 401);
    assert_eq!(stats.counters.passive_opens, 400);
    assert_eq!(stats.reuse_after_2msl, 1);
    assert_eq!(stats.reuse_within_2msl, 0);
    let last = syns.iter().max_by_key(|s| s.ts_ns).expect("SYNs");
    assert_eq!(last.reuse, None);
}

/// Replays a recorded sample and prints every SYN whose observed reply differs from the
/// predicted one (a debugging aid: `cargo test -- --ignored --nocapture replay_sample`).
#[test]
#[ignore]
fn replay_sample_and_show_reply_mismatches() {
    let path = std::env::var("PAWSCOPE_REPLAY").unwrap_or_else(|_| "samples/rfc1337.pcap".into());
    let policy = LinuxPolicy {
        rfc1337: std::env::var("PAWSCOPE_RFC1337").is_ok(),
        ..LinuxPolicy::default()
    };
    let mut tracker = Tracker::new(&policy, None, Vec::new());
    let mut reader = crate::capture::CaptureReader::open(std::path::Path::new(&path)).unwrap();
    let mut decoder = crate::packet::Decoder::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        if let Ok(segment) = decoder.decode(&frame).segment {
            tracker.on_segment(&segment);
        }
    }
    let (_, syns) = tracker.finish();
    for syn in syns.iter().filter(|s| s.predicted_reply != s.reply) {
        println!("{syn:?}");
    }
}

#[derive(Default)]
struct Everything {
    syns: Vec<SynRecord>,
    incarnations: Vec<IncarnationRecord>,
}

impl RecordSink for Everything {
    fn syn(&mut self, syn: SynRecord) {
        self.syns.push(syn);
    }
    fn incarnation(&mut self, incarnation: IncarnationRecord) {
        self.incarnations.push(incarnation);
    }
}

fn run_all(segments: &[Segment]) -> Everything {
    let policy = LinuxPolicy::default();
    let mut tracker = Tracker::new(&policy, None, Everything::default());
    for segment in segments {
        tracker.on_segment(segment);
    }
    let (_, mut all) = tracker.finish();
    all.incarnations.sort_by_key(|i| i.syn_ns);
    all
}

#[test]
fn incarnation_record_holds_the_lifecycle_and_the_time_wait_it_left() {
    let mut conversation = server_closes_first(0);
    conversation.extend([
        c(SEC, S, 90_000, 0, 0, Some(2000)),
        s(SEC + MS, S | A, 5022 + 65_537, 90_001, 0, Some(11)),
        c(SEC + 2 * MS, A, 90_001, 5022 + 65_538, 0, Some(2001)),
    ]);
    let all = run_all(&conversation);
    assert_eq!(all.incarnations.len(), 2);
    let first = &all.incarnations[0];
    assert_eq!(first.number, 1);
    assert_eq!(first.syn_ns, 0);
    assert_eq!(first.handshake_ns, Some(2 * MS));
    assert_eq!((first.client_isn, first.server_isn), (100, 5000));
    assert!(first.ts_negotiated);
    assert_eq!(
        (first.client.first_tsval, first.client.last_tsval),
        (Some(1000), Some(1004))
    );
    assert_eq!(
        (first.client.payload_bytes, first.server.payload_bytes),
        (10, 20)
    );
    // The server's ACK of the client's FIN leaves from TIME_WAIT, after the close completed.
    assert_eq!((first.client.segments, first.server.segments), (5, 2));
    assert_eq!(first.closed_first, Closer::Server);
    assert_eq!(first.close_kind, CloseKind::Fin);
    assert_eq!(first.end_ns, Some(6 * MS));
    assert_eq!(first.time_wait_holder, TimeWaitHolder::Server);
    assert_eq!(first.time_wait_start_ns, Some(6 * MS));
    assert_eq!(first.time_wait_end, Some(TimeWaitEnd::ReopenedBySyn));
    assert_eq!(first.time_wait_end_ns, Some(SEC));
    assert_eq!(first.gap_to_next_ns, Some(SEC - 6 * MS));
    let second = &all.incarnations[1];
    assert_eq!(second.number, 2);
    assert_eq!(second.handshake_ns, Some(SEC + 2 * MS));
    assert_eq!(second.close_kind, CloseKind::None);
    assert_eq!(second.gap_to_next_ns, None);
    // The reopening SYN knows what it followed.
    let reuse = all.syns[1].reuse.expect("reuse");
    assert_eq!(reuse.previous_end_ns, Some(6 * MS));
    assert_eq!(reuse.previous_holder, TimeWaitHolder::Server);
    assert!(reuse.within_2msl);
    assert_eq!(all.syns[1].established_ns, Some(SEC + 2 * MS));
}

#[test]
fn handshake_answered_but_never_completed_is_a_failed_incarnation() {
    let conversation = vec![c(0, S, 100, 0, 0, None), s(MS, S | A, 5000, 101, 0, None)];
    let all = run_all(&conversation);
    assert_eq!(all.incarnations.len(), 1);
    assert_eq!(all.incarnations[0].handshake_ns, None);
    assert_eq!(all.incarnations[0].close_kind, CloseKind::None);
}

#[test]
fn verdicts_name_the_setting_they_rest_on() {
    let conversation = rejected_then_rst_then_retransmitted();
    // tcp_rfc1337=0: the RST ended the TIME_WAIT, so the retransmission meets the listener.
    let (_, syns) = run(&conversation);
    assert_eq!(syns[0].rests_on, None);
    assert_eq!(
        syns[1].rests_on, None,
        "the first challenge ACK is not rate limited"
    );
    assert_eq!(syns[2].rests_on, Some(Assumption::Rfc1337Off));
    assert!(!syns[2].assumption_unsupported);
    assert_eq!(syns[2].reason_text(), syns[2].reason);
    // tcp_rfc1337=1: the TIME_WAIT outlived the RST; the retransmission is judged against it,
    // 4 ms after the first challenge ACK: the rate limit suppresses the second.
    let policy = LinuxPolicy {
        rfc1337: true,
        ..LinuxPolicy::default()
    };
    let (_, mut syns) = run_with(&policy, &conversation);
    assert_eq!(syns[2].verdict, Verdict::PawsReject);
    assert_eq!(syns[2].rests_on, Some(Assumption::Rfc1337On));
    // Once the analysis finds nothing in the capture that shows the setting, the reason
    // says what it rests on.
    syns[2].assumption_unsupported = true;
    let reason = syns[2].reason_text();
    assert!(reason.starts_with(syns[2].reason), "{reason}");
    assert!(reason.ends_with("rests on tcp_rfc1337=1 (the TIME_WAIT outlived an in-window RST), which the capture does not show"), "{reason}");
}

#[test]
fn a_challenge_ack_suppressed_or_sent_after_another_rests_on_the_rate_limit() {
    let mut conversation = server_closes_first(0);
    conversation.extend([
        c(SEC, S, 90, 0, 0, Some(1)),
        c(SEC + 400 * MS, S, 91, 0, 0, Some(2)),
        c(SEC + 900 * MS, S, 92, 0, 0, Some(3)),
    ]);
    let (_, syns) = run(&conversation);
    assert_eq!(syns[1].rests_on, None);
    assert_eq!(syns[1].predicted_reply, ObservedReply::ChallengeAck);
    // Suppressed 400 ms after the first ACK, sent 900 ms after it: both the limit's doing.
    assert_eq!(syns[2].predicted_reply, ObservedReply::None);
    assert_eq!(syns[2].rests_on, Some(Assumption::RateLimit));
    assert_eq!(syns[3].predicted_reply, ObservedReply::ChallengeAck);
    assert_eq!(syns[3].rests_on, Some(Assumption::RateLimit));
}

#[test]
fn syn_acks_show_whether_the_server_sends_timestamps() {
    // Timestamps on: the SYN-ACK to a SYN with a TSval carries one.
    let (stats, _) = run(&server_closes_first(0));
    assert_eq!((stats.synacks_to_ts_syns, stats.synacks_with_ts), (1, 1));
    // net.ipv4.tcp_timestamps=0 at the server: the SYN-ACK has none.
    let (stats, _) = run(&[
        c(0, S, 100, 0, 0, Some(1000)),
        s(MS, S | A, 5000, 101, 0, None),
        c(2 * MS, A, 101, 5001, 0, None),
    ]);
    assert_eq!((stats.synacks_to_ts_syns, stats.synacks_with_ts), (1, 0));
    // A SYN without timestamps shows nothing about the server's setting.
    let (stats, _) = run(&[c(0, S, 100, 0, 0, None), s(MS, S | A, 5000, 101, 0, None)]);
    assert_eq!((stats.synacks_to_ts_syns, stats.synacks_with_ts), (0, 0));
}

#[test]
fn a_sweep_forgetting_thousands_hands_its_records_on_in_pieces_in_order() {
    const TUPLES: u16 = 3000;
    let on_port = |mut segment: Segment, port: u16| {
        if segment.src == client() {
            segment.src.set_port(port);
        } else {
            segment.dst.set_port(port);
        }
        segment
    };
    // Handshakes the clients never complete: each tuple's SYN and incarnation stay open
    // until the tuple is forgotten.
    let mut segments: Vec<Segment> = (0..TUPLES)
        .flat_map(|i| {
            let (port, t) = (10_000 + i, i64::from(i) * MS);
            [
                on_port(c(t, S, 100, 0, 0, Some(1000)), port),
                on_port(s(t + 1, S | A, 5000, 101, 0, Some(7)), port),
            ]
        })
        .collect();
    // Long after: the sweep this SYN sets off forgets every one of them.
    segments.push(c(400 * SEC, S, 100, 0, 0, Some(1000)));
    let policy = LinuxPolicy::default();

    // One segment at a time, the records taken once at the end.
    let mut reference = Tracker::new(&policy, None, RecordLog::for_candidate(0));
    for segment in &segments {
        reference.on_segment(segment);
    }
    let all_at_once = RecordLog::take(reference.sinks_mut(), Vec::new());

    // In one batch: the sweep hands its records on as it goes.
    let mut tracker = Tracker::new(&policy, None, RecordLog::for_candidate(0));
    let mut pieces: Vec<HandedRecords> = Vec::new();
    let taken = tracker.on_segments(&segments, &mut |logs| {
        pieces.push(RecordLog::take(logs, Vec::new()));
    });
    assert_eq!(taken, segments.len());
    pieces.push(RecordLog::take(tracker.sinks_mut(), Vec::new()));

    let syns = |records: &[(std::ops::Range<usize>, Handed)]| {
        records
            .iter()
            .filter(|(_, handed)| matches!(handed, Handed::Syn(_)))
            .count()
    };
    // Every forgotten tuple's SYN (the last SYN is still open).
    assert_eq!(syns(&all_at_once), usize::from(TUPLES));
    assert_eq!(pieces.concat(), all_at_once);
    // Three thousand tuples forgotten: handed on after 1024 and 2048 of them, the rest
    // with the batch.
    assert_eq!(pieces.len(), 3);
    assert!(
        pieces.iter().all(|piece| syns(piece) <= SWEEP_DRAIN_TUPLES),
        "{:?}",
        pieces.iter().map(|piece| syns(piece)).collect::<Vec<_>>()
    );
}
