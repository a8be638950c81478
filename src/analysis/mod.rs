//! The whole job: read a capture, decode, track, judge, and summarise.

mod attempt_tally;
mod file_summary;
mod findings;
mod pipeline;
mod ports;
mod settings;
mod summary;
mod whatif;

pub use attempt_tally::{AttemptTally, AttemptTotals};
pub use file_summary::{FileSummary, summarize_file};
pub use findings::{Finding, Severity, findings, findings_text};
pub use ports::{ClientPorts, DEFAULT_PORT_RANGE, PortUsage, port_occupancy};
pub use settings::{
    DEFAULT_RATE_LIMIT_MS, RateLimitEvidence, Setting, Source, UnsupportedAssumptions,
    server_settings,
};
pub use summary::{Agreement, ReplyCounts, SynSummary, VerdictCounts};
pub use whatif::{Comparison, Difference, PolicyOutcome, compare};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use crate::capture::{CaptureError, CaptureReader, FileInfo, MergedCaptures};
use crate::flow::{
    FlowStats, IncarnationRecord, RecordLog, RecordSink, SynRecord, Tracker, TupleKey,
};
use crate::nat::{NatClocks, NatReport};
use crate::packet::{Decoder, Segment, SkipReason};
use crate::policy::ServerPolicy;
use crate::prefetch_map::LookupStep;
use crate::table::{MAX_CANDIDATES, RecordsView, SharedRecords, TableRecords};
use crate::threads::{join, spawn_named};
use pipeline::{FinishedTracker, SegmentAt};

/// How to run an analysis.
pub struct AnalyzeOptions<'p> {
    /// The server's possible settings under one kernel policy. With more than one, the
    /// capture is judged under each (in one tracker when they differ only in TIME_WAIT
    /// judgements) and the one whose predictions the observed replies contradict least is
    /// kept (the first on a tie): settings such as tcp_rfc1337 are not on the wire.
    pub candidates: Vec<&'p dyn ServerPolicy>,
    /// Forces which endpoint is the server.
    pub server: Option<SocketAddr>,
    /// How many rejected SYNs to keep for the report (newest first).
    pub keep_rejected: usize,
    /// Called now and then with the number of bytes read so far.
    pub progress: Option<&'p dyn Fn(u64)>,
    /// Keep every SYN and incarnation record, for tables.
    pub keep_records: bool,
    /// The clients' local port range (net.ipv4.ip_local_port_range).
    pub port_range: (u16, u16),
    /// How long a client that closes first holds its port in TIME_WAIT.
    pub client_time_wait_ns: i64,
    /// Tuples held in full at once before the analysis stops with an error: bounds memory
    /// (about 400 bytes per tuple) on captures with millions of concurrent tuples.
    pub max_tuples: usize,
    /// Server settings the user stated (`--sysctl KEY=VALUE`).
    pub given_settings: BTreeMap<String, String>,
    /// Server settings a first pass over the capture inferred, which the candidates judge
    /// with.
    pub inferred_settings: BTreeMap<String, String>,
    /// Above 1, each tracker (one per kernel policy) runs on a thread of its own, fed in
    /// batches while this thread reads and decodes; 1 runs everything in this thread (the
    /// reference path the threaded one must match exactly).
    pub threads: usize,
}

/// Live tuples allowed by default: about 1 GB of state.
pub const DEFAULT_MAX_TUPLES: usize = 2_500_000;

impl Default for AnalyzeOptions<'_> {
    fn default() -> Self {
        AnalyzeOptions {
            candidates: Vec::new(),
            server: None,
            keep_rejected: 20,
            progress: None,
            keep_records: false,
            port_range: DEFAULT_PORT_RANGE,
            client_time_wait_ns: 60_000_000_000,
            max_tuples: DEFAULT_MAX_TUPLES,
            given_settings: BTreeMap::new(),
            inferred_settings: BTreeMap::new(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// What each tracker feeds, one per candidate: the summary, and every record when tables are
/// wanted. Fed through [`RecordSink::syn_to`] and the other `_to` functions: a record handed
/// to one sink alone reaches only its summary.
#[derive(Debug)]
pub struct AnalysisSink {
    pub summary: SynSummary,
    /// This candidate's records, once the tracker is done (when tables are wanted).
    pub records: Option<RecordsView>,
    /// What the tracker's candidates count together, in its first sink only: the tracker
    /// hands a record to all the candidates it holds for at once ([`RecordSink::syn_to`]),
    /// and one lookup in these maps serves them all.
    together: Option<CountedTogether>,
    /// This candidate's client ports, once the tracker is done.
    pub client_ports: Vec<ClientPorts>,
}

/// What the candidates of one tracker count in one place, each entry with the candidates it
/// holds for.
#[derive(Debug)]
struct CountedTogether {
    attempts: AttemptTally,
    ports: PortUsage,
    /// Every record, for tables: kept once for the candidates it holds for.
    records: Option<SharedRecords>,
    client_time_wait_ns: i64,
}

impl AnalysisSink {
    fn together(sinks: &mut [Self]) -> Option<&mut CountedTogether> {
        sinks.first_mut().and_then(|first| first.together.as_mut())
    }

    /// Ends what a tracker's candidates counted together: each one's attempt totals, client
    /// ports and view of the kept records, into its own sink. With `parallel`, the attempts
    /// and the ports end side by side (once every tracker is done, nothing else runs).
    fn finish_together(sinks: &mut [&mut AnalysisSink], client_time_wait_ns: i64, parallel: bool) {
        let Some(CountedTogether {
            attempts,
            ports,
            records,
            ..
        }) = sinks.first_mut().and_then(|first| first.together.take())
        else {
            return;
        };
        let (attempts, ports) = if parallel {
            std::thread::scope(|scope| {
                let attempts = spawn_named(scope, "attempts", || attempts.finish());
                let ports = ports.finish(client_time_wait_ns, true);
                (join(attempts), ports)
            })
        } else {
            (attempts.finish(), ports.finish(client_time_wait_ns, false))
        };
        let mut records = records
            .map(|records| records.into_views(sinks.len()))
            .into_iter()
            .flatten();
        for ((sink, totals), ports) in sinks.iter_mut().zip(attempts).zip(ports) {
            sink.summary.attempt_totals = totals;
            sink.client_ports = ports;
            sink.records = records.next();
        }
    }
}

impl RecordSink for AnalysisSink {
    fn syn(&mut self, syn: SynRecord) {
        self.summary.syn(syn);
    }

    fn prefetch_syn(sinks: &[Self], syn: &SynRecord, step: LookupStep) {
        if let Some(together) = sinks.first().and_then(|first| first.together.as_ref()) {
            together.attempts.prefetch(syn, step);
        }
    }

    fn syn_to(sinks: &mut [Self], candidates: Range<usize>, syn: SynRecord) {
        if let Some(together) = AnalysisSink::together(sinks) {
            together.attempts.add(candidates.clone(), &syn);
            if let Some(records) = together.records.as_mut() {
                records.syn(candidates.clone(), syn);
            }
        }
        for sink in &mut sinks[candidates] {
            sink.syn(syn);
        }
    }

    fn incarnation_to(
        sinks: &mut [Self],
        candidates: Range<usize>,
        incarnation: IncarnationRecord,
    ) {
        if let Some(together) = AnalysisSink::together(sinks) {
            let client_time_wait_ns = together.client_time_wait_ns;
            together
                .ports
                .record(candidates.clone(), &incarnation, client_time_wait_ns);
            if let Some(records) = together.records.as_mut() {
                records.incarnation(candidates, incarnation);
            }
        }
    }

    fn port_taken_to(sinks: &mut [Self], candidates: Range<usize>, tuple: TupleKey, syn_ns: i64) {
        if let Some(together) = AnalysisSink::together(sinks) {
            together.ports.taken(candidates, tuple, syn_ns);
        }
    }
}

/// Frames between progress calls: cheap enough to never show in a profile.
const PROGRESS_EVERY_FRAMES: u64 = 1 << 16;

/// What the capture file held, before any TCP analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    pub packets: u64,
    pub tcp_segments: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    /// Frames that did not become TCP segments, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Packets earlier than the packet before them in the same file.
    pub out_of_order: u64,
    /// Packets the snaplen cut short; their headers were still read.
    pub snaplen_truncated: u64,
    /// Each input file, as its reader saw it.
    pub files: Vec<FileInfo>,
    /// The first frame of a link type pawscope does not decode: (file, offset, link type).
    first_unsupported: Option<(usize, u64, u32)>,
}

/// Everything an analysis found.
#[derive(Debug)]
pub struct Analysis {
    pub policy_name: &'static str,
    /// The server settings the verdicts assume, e.g. `tcp_rfc1337=0`.
    pub settings: String,
    /// The settings were chosen among candidates by the capture's evidence.
    pub settings_inferred: bool,
    /// The candidates' predictions differed, and the replies seen agreed with one more than
    /// with the others: the capture shows the setting. False on a tie.
    pub settings_evidence: bool,
    pub policy_simulated: bool,
    pub time_wait_len_ns: i64,
    pub capture: CaptureSummary,
    pub flow: FlowStats,
    pub syns: SynSummary,
    /// Every record, when `keep_records` asked for them.
    pub records: Option<TableRecords>,
    /// The timestamp clocks behind each client address.
    pub nat: NatReport,
    /// Ports each client address held toward each server endpoint.
    pub ports: Vec<ClientPorts>,
    /// Server settings the user stated (`--sysctl`).
    pub given_settings: BTreeMap<String, String>,
    /// Server settings inferred from the capture and judged with.
    pub inferred_settings: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

/// Reads the capture files once, streaming, merged by time, and analyses every TCP segment.
pub fn analyze_files(
    paths: &[PathBuf],
    options: &AnalyzeOptions<'_>,
) -> Result<Analysis, CaptureError> {
    let mut analyses = judge_files(paths, std::slice::from_ref(&options.candidates), options)?;
    analyses
        .pop()
        .ok_or_else(|| CaptureError::new(&paths[0], None, "no policy to judge with"))
}

/// Reads the capture files once and judges them under each group of candidate policies (one
/// [`Analysis`] per group, in order): `whatif` compares kernels this way.
/// `options.candidates` is not used.
pub fn judge_files(
    paths: &[PathBuf],
    groups: &[Vec<&dyn ServerPolicy>],
    options: &AnalyzeOptions<'_>,
) -> Result<Vec<Analysis>, CaptureError> {
    let readers = paths
        .iter()
        .map(|path| CaptureReader::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut merged = MergedCaptures::new(readers)?;
    // One tracker per set of candidates that differ only in TIME_WAIT judgements: it holds
    // a tuple once for all of them, and a copy per candidate only where they judge apart.
    let sets: Vec<Vec<&dyn ServerPolicy>> =
        groups.iter().flat_map(|group| alike_sets(group)).collect();
    // Clocks are policy-independent: a TSval decrease matters within the first candidate's
    // TIME_WAIT length.
    let window_ns = groups
        .iter()
        .flatten()
        .next()
        .map_or(60_000_000_000, |p| p.time_wait_len_ns());
    let clocks = NatClocks::new(window_ns, options.keep_records);
    let mut capture = CaptureSummary::default();
    let (tracked, clocks, over_limit): (Vec<FinishedTracker<'_>>, _, _) =
        if options.threads > 1 && !sets.is_empty() {
            let trackers = sets
                .iter()
                .map(|alike| {
                    let logs = (0..alike.len()).map(RecordLog::for_candidate).collect();
                    (
                        new_tracker(alike, logs, options),
                        sinks_for(alike.len(), options),
                    )
                })
                .collect();
            pipeline::track_in_threads(trackers, clocks, |feed| {
                read_segments(&mut merged, None, &mut capture, options, feed)
            })?
        } else {
            let mut clocks = clocks;
            let trackers = sets
                .iter()
                .map(|alike| new_tracker(alike, sinks_for(alike.len(), options), options))
                .collect();
            let (trackers, over_limit) = pipeline::track_in_line(trackers, |feed| {
                read_segments(&mut merged, Some(&mut clocks), &mut capture, options, feed)
            })?;
            let finished = trackers
                .into_iter()
                .map(|tracker| (tracker.policies().to_vec(), tracker.finish_each()))
                .collect();
            (finished, clocks, over_limit)
        };
    if let Some(at) = over_limit {
        return Err(CaptureError::new(
            &paths[at.file],
            Some(at.offset),
            format!(
                "more than {} tuples live at once: raise --max-tuples (each costs a few hundred bytes) or split the capture",
                options.max_tuples
            ),
        ));
    }
    let first_unsupported = capture.first_unsupported.take();
    capture.files = merged
        .into_readers()
        .into_iter()
        .map(CaptureReader::into_info)
        .collect();
    for info in &capture.files {
        capture.packets += info.packets;
        capture.out_of_order += info.out_of_order;
        capture.snaplen_truncated += info.snaplen_cut;
        capture.first_ts_ns = min_some(capture.first_ts_ns, info.first_ts_ns);
        capture.last_ts_ns = max_some(capture.last_ts_ns, info.max_ts_ns);
    }
    // A capture whose every packet has a link type pawscope cannot decode is not a capture
    // it can analyse: say so instead of reporting empty results.
    if let Some((file, offset, link)) = first_unsupported
        && capture
            .skipped
            .keys()
            .all(|k| k.starts_with("unsupported_link_type_"))
        && capture.tcp_segments == 0
    {
        return Err(CaptureError::new(
            &paths[file],
            Some(offset),
            format!(
                "unsupported link type {link}: expected Ethernet (1), Linux cooked (113, 276), raw IP (101, 228, 229) or BSD loopback (0, 108)"
            ),
        ));
    }

    let mut nat = clocks.finish();
    // Each candidate's results, with the candidate.
    type Judged = (FlowStats, AnalysisSink);
    let mut finished: Vec<(&dyn ServerPolicy, Option<Judged>)> = tracked
        .into_iter()
        .flat_map(|(policies, mut results)| {
            let mut sinks: Vec<&mut AnalysisSink> =
                results.iter_mut().map(|(_, sink)| sink).collect();
            AnalysisSink::finish_together(
                &mut sinks,
                options.client_time_wait_ns,
                options.threads > 1,
            );
            policies.into_iter().zip(results.into_iter().map(Some))
        })
        .collect();
    let mut analyses = Vec::with_capacity(groups.len());
    for (number, group) in groups.iter().enumerate() {
        // Where each candidate of the group finished.
        let result_of: Vec<usize> = group
            .iter()
            .filter_map(|candidate| {
                finished.iter().position(|(policy, results)| {
                    results.is_some() && std::ptr::addr_eq(*policy, *candidate)
                })
            })
            .collect();
        let disagreements = |i: usize| {
            finished[i]
                .1
                .as_ref()
                .map_or(u64::MAX, |(_, sink)| sink.summary.agreement.disagreements())
        };
        let best = (0..result_of.len())
            .min_by_key(|&c| (disagreements(result_of[c]), c))
            .unwrap_or(0);
        let settings_evidence = result_of.first().is_some_and(|&first| {
            result_of
                .iter()
                .any(|&r| disagreements(r) != disagreements(first))
        });
        let (Some((flow, sink)), Some(policy)) = (
            result_of.get(best).and_then(|&r| finished[r].1.take()),
            group.get(best),
        ) else {
            return Err(CaptureError::new(
                &paths[0],
                None,
                "no policy to judge with",
            ));
        };
        let warnings = warnings_for(&capture, &flow);
        let mut analysis = Analysis {
            policy_name: policy.name(),
            settings: policy.settings(),
            settings_inferred: group.len() > 1,
            settings_evidence,
            policy_simulated: policy.simulated(),
            time_wait_len_ns: policy.time_wait_len_ns(),
            capture: capture.clone(),
            flow,
            syns: sink.summary.finish(),
            records: None,
            ports: sink.client_ports,
            // Every group's analysis holds the clocks: the last takes them (their events are
            // a row per TSval decrease, hundreds of thousands on a big capture).
            nat: if number + 1 == groups.len() {
                std::mem::take(&mut nat)
            } else {
                nat.clone()
            },
            given_settings: options.given_settings.clone(),
            inferred_settings: options.inferred_settings.clone(),
            warnings,
        };
        let unsupported = UnsupportedAssumptions::of(&analysis);
        analysis
            .syns
            .rejected
            .iter_mut()
            .for_each(|syn| unsupported.mark(syn));
        // Marked as they are taken out of the store: one pass over the SYNs, not two.
        analysis.records = (sink.records).map(|records| records.take(|syn| unsupported.mark(syn)));
        analyses.push(analysis);
    }
    Ok(analyses)
}

/// A tracker judging under the candidates `alike`, each with its sink (in order).
fn new_tracker<'p, S: RecordSink>(
    alike: &[&'p dyn ServerPolicy],
    sinks: Vec<S>,
    options: &AnalyzeOptions<'_>,
) -> Tracker<'p, S> {
    let mut sinks = sinks.into_iter();
    let first = sinks.next().expect("a set holds at least one candidate");
    Tracker::new(alike[0], options.server, first)
        .with_max_tuples(options.max_tuples)
        .judging_alike(alike[1..].iter().copied().zip(sinks))
}

/// The sinks of a tracker judging under `candidates` candidates, one per candidate, the
/// first also counting what they count together.
fn sinks_for(candidates: usize, options: &AnalyzeOptions<'_>) -> Vec<AnalysisSink> {
    let mut together = Some(CountedTogether {
        attempts: AttemptTally::new(candidates),
        ports: PortUsage::new(options.port_range, candidates),
        records: options.keep_records.then(SharedRecords::default),
        client_time_wait_ns: options.client_time_wait_ns,
    });
    (0..candidates)
        .map(|_| AnalysisSink {
            summary: SynSummary::new(options.keep_rejected),
            records: None,
            together: together.take(),
            client_ports: Vec::new(),
        })
        .collect()
}

/// The group's candidates in sets that judge alike beyond TIME_WAIT (equal tracking keys),
/// each set in the group's order.
fn alike_sets<'p>(group: &[&'p dyn ServerPolicy]) -> Vec<Vec<&'p dyn ServerPolicy>> {
    let mut sets: Vec<(String, Vec<&'p dyn ServerPolicy>)> = Vec::new();
    for &policy in group {
        let key = policy.tracking_key();
        match sets
            .iter_mut()
            .find(|(k, set)| *k == key && set.len() < MAX_CANDIDATES)
        {
            Some((_, set)) => set.push(policy),
            None => sets.push((key, vec![policy])),
        }
    }
    sets.into_iter().map(|(_, set)| set).collect()
}

/// Reads every frame, decodes it, feeds the clocks (when given: threads feed them apart)
/// and hands each TCP segment, with where it was read, to `feed`; stops early when `feed`
/// says so.
fn read_segments(
    merged: &mut MergedCaptures,
    mut clocks: Option<&mut NatClocks>,
    capture: &mut CaptureSummary,
    options: &AnalyzeOptions<'_>,
    feed: &mut dyn FnMut(&Segment, SegmentAt) -> bool,
) -> Result<(), CaptureError> {
    let mut decoder = Decoder::new();
    let mut offsets = vec![0u64; merged.readers().len()];
    let mut frames_seen: u64 = 0;
    let mut segments_seen: u64 = 0;
    while let Some((file, frame)) = merged.next_frame()? {
        frames_seen += 1;
        offsets[file] = frame.offset;
        if let Some(progress) = options.progress
            && frames_seen.is_multiple_of(PROGRESS_EVERY_FRAMES)
        {
            progress(offsets.iter().sum());
        }
        match decoder.decode(&frame).segment {
            Ok(segment) => {
                capture.tcp_segments += 1;
                if let Some(clocks) = clocks.as_deref_mut() {
                    clocks.on_segment(&segment);
                }
                let at = SegmentAt {
                    file,
                    offset: frame.offset,
                    index: segments_seen,
                };
                segments_seen += 1;
                if !feed(&segment, at) {
                    break;
                }
            }
            Err(reason) => {
                if let SkipReason::UnsupportedLinkType(link) = reason {
                    capture
                        .first_unsupported
                        .get_or_insert((file, frame.offset, link));
                }
                *capture.skipped.entry(reason.key()).or_insert(0) += 1;
            }
        }
    }
    Ok(())
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn warnings_for(capture: &CaptureSummary, flow: &FlowStats) -> Vec<String> {
    let mut warnings = Vec::new();
    for info in &capture.files {
        let file = info.path.display();
        if let Some(offset) = info.truncated_at {
            warnings.push(format!(
                "{file}: file ends inside a record at byte {offset}: analysed everything before it"
            ));
        }
        if info.out_of_order > 0 {
            warnings.push(format!(
                "{file}: {} packets are earlier than the packet before them",
                info.out_of_order
            ));
        }
    }
    let input = match capture.files.as_slice() {
        [one] => one.path.display().to_string(),
        files => format!("{} files", files.len()),
    };
    if capture.tcp_segments > 0 && (flow.to_server == 0 || flow.to_client == 0) {
        let seen = if flow.to_server == 0 {
            "server-to-client"
        } else {
            "client-to-server"
        };
        warnings.push(format!(
            "{input}: only {seen} segments: replies, listeners and TIME_WAIT holders cannot be seen; \
             SYNs that depend on them are judged unknown (capture both directions)"
        ));
    }
    if capture.packets > 0 && capture.tcp_segments == 0 {
        warnings.push(format!("{input}: no TCP segments in the capture"));
    }
    warnings
}
