//! One tracker judging under several server settings at once (a tuple held once, copied per
//! candidate only where they judge apart) against a tracker of its own per setting: every
//! count and record identical, on recorded captures where tcp_rfc1337 changes the outcome and
//! on a simulated NAT capture long enough that tuples split, merge back and are forgotten.

mod common;

use std::path::Path;

use common::{repo_root, simulated_nat_capture};
use pawscope::capture::CaptureReader;
use pawscope::flow::{FlowStats, IncarnationRecord, RecordSink, SynRecord, Tracker, TupleKey};
use pawscope::packet::{Decoder, Segment};
use pawscope::policy::ServerPolicy;
use pawscope::policy::linux::LinuxPolicy;
use pawscope::policy::tw_recycle::TwRecyclePolicy;

/// Every record a tracker hands on, in the order it hands them on.
#[derive(Debug, Clone, Default, PartialEq)]
struct Everything {
    syns: Vec<SynRecord>,
    incarnations: Vec<IncarnationRecord>,
    ports_taken: Vec<(TupleKey, i64)>,
}

impl RecordSink for Everything {
    fn syn(&mut self, syn: SynRecord) {
        self.syns.push(syn);
    }
    fn incarnation(&mut self, incarnation: IncarnationRecord) {
        self.incarnations.push(incarnation);
    }
    fn port_taken(&mut self, tuple: TupleKey, syn_ns: i64) {
        self.ports_taken.push((tuple, syn_ns));
    }
}

fn segments(path: &Path) -> Vec<Segment> {
    let mut reader = CaptureReader::open(path).expect("open capture");
    let mut decoder = Decoder::new();
    let mut segments = Vec::new();
    while let Some(frame) = reader.next_frame().expect("read capture") {
        if let Ok(segment) = decoder.decode(&frame).segment {
            segments.push(segment);
        }
    }
    segments
}

fn run(tracker: Tracker<'_, Everything>, segments: &[Segment]) -> Vec<(FlowStats, Everything)> {
    let mut tracker = tracker;
    for segment in segments {
        tracker.on_segment(segment);
    }
    tracker.finish_each()
}

/// Judges `segments` under both candidates together and under each alone; returns each
/// candidate's results after checking they are the same both ways.
fn together_equals_alone(
    candidates: [&dyn ServerPolicy; 2],
    segments: &[Segment],
) -> Vec<(FlowStats, Everything)> {
    let together = run(
        Tracker::new(candidates[0], None, Everything::default())
            .judging_alike([(candidates[1], Everything::default())]),
        segments,
    );
    assert_eq!(together.len(), 2);
    for (candidate, shared) in candidates.iter().zip(&together) {
        let alone = run(
            Tracker::new(*candidate, None, Everything::default()),
            segments,
        );
        let settings = candidate.settings();
        assert_eq!(shared.0, alone[0].0, "counts differ for {settings}");
        same_records("SYNs", &settings, &shared.1.syns, &alone[0].1.syns);
        same_records(
            "incarnations",
            &settings,
            &shared.1.incarnations,
            &alone[0].1.incarnations,
        );
        same_records(
            "ports taken",
            &settings,
            &shared.1.ports_taken,
            &alone[0].1.ports_taken,
        );
    }
    together
}

/// Asserts two trackers handed on the same records, naming the first that differs. Order
/// aside: tuples forgotten in one sweep are handed on in the hash table's order.
fn same_records<T: std::fmt::Debug>(what: &str, settings: &str, a: &[T], b: &[T]) {
    let sorted = |records: &[T]| {
        let mut texts: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
        texts.sort();
        texts
    };
    let (a, b) = (sorted(a), sorted(b));
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "{what} differ for {settings} at #{i} of {} and {}:\n together: {:?}\n alone:    {:?}",
            a.len(),
            b.len(),
            a.get(i),
            b.get(i)
        );
    }
}

fn rfc1337_both_ways() -> [LinuxPolicy; 2] {
    [
        LinuxPolicy::default(),
        LinuxPolicy {
            rfc1337: true,
            ..LinuxPolicy::default()
        },
    ]
}

#[test]
fn recorded_rfc1337_captures_judged_together_equal_each_alone() {
    let [off, on] = rfc1337_both_ways();
    for sample in [
        "rfc1337.pcap",
        "rfc1337-ratelimit-100.pcap",
        "nat-paws-reject.pcap",
    ] {
        let segments = segments(&repo_root().join("samples").join(sample));
        let results = together_equals_alone([&off, &on], &segments);
        if sample.starts_with("rfc1337") {
            // The setting shows in these captures: in-window RSTs kill TIME_WAIT only
            // without it, so the candidates really were judged apart.
            let (off_stats, on_stats) = (&results[0].0, &results[1].0);
            assert!(off_stats.time_wait.killed_by_rst > 0, "{sample}");
            assert_eq!(on_stats.time_wait.killed_by_rst, 0, "{sample}");
            assert_ne!(results[0].1.syns, results[1].1.syns, "{sample}");
        }
    }
}

#[test]
fn tw_recycle_candidates_keep_their_own_peer_memory() {
    let [off, on] = rfc1337_both_ways();
    let (off, on) = (
        TwRecyclePolicy::new(off, false),
        TwRecyclePolicy::new(on, false),
    );
    for sample in ["rfc1337.pcap", "nat-paws-reject.pcap"] {
        let segments = segments(&repo_root().join("samples").join(sample));
        together_equals_alone([&off, &on], &segments);
    }
}

#[test]
fn simulated_nat_capture_judged_together_equals_each_alone() {
    // 25 connects/s for 400 s from 8 hosts behind 2 NAT addresses over 1000 ports: PAWS
    // rejects whose challenge ACKs the clients answer with RSTs (judged apart), tuples reused
    // after TIME_WAIT (alike again) and tuples quiet long enough to be forgotten.
    let dir = common::Scratch::new("candidates", "sim");
    let (pcap, _) = simulated_nat_capture(&dir);
    let segments = segments(&pcap);
    let [off, on] = rfc1337_both_ways();
    let results = together_equals_alone([&off, &on], &segments);
    let (off_stats, on_stats) = (&results[0].0, &results[1].0);
    assert!(off_stats.time_wait.killed_by_rst > 0);
    assert_ne!(off_stats.time_wait, on_stats.time_wait);
    assert!(off_stats.peak_live_tuples < off_stats.tuples_with_syn);
}
