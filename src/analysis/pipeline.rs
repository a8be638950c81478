//! Runs the trackers and the NAT clocks over the decoded segments: all in the reading thread
//! (the straightforward reference), or as steps on threads of their own, handing batches
//! along: the reading thread reads and decodes; the clocks and each tracker (one per kernel
//! policy) take every batch; each tracker hands the records it makes to a counting thread
//! that feeds them to its sinks. More threads than cores, each a step of about equal weight,
//! lets the system keep both cores busy whichever step is heaviest on a capture. Both ways
//! give the same trackers, clocks and sinks: every tracker and the clocks see every segment
//! in capture order, and every sink every record in the order it was made.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use super::AnalysisSink;
use crate::capture::CaptureError;
use crate::flow::{FlowStats, HandedRecords, RecordLog, Tracker};
use crate::nat::NatClocks;
use crate::packet::Segment;
use crate::policy::ServerPolicy;
use crate::threads::spawn_named;

/// Where a segment was read: for the one-line error when a tracker holds too many tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentAt {
    pub file: usize,
    pub offset: u64,
    /// The segment's place in capture order.
    pub index: u64,
}

/// Segments per batch: large enough that handing a batch over costs nothing per segment,
/// small enough that batches in flight stay a few MB.
const BATCH_SEGMENTS: usize = 4096;
/// Batches queued per tracker before the reader waits for it. Every 30 s of capture time
/// a tracker's sweep forgets the tuples gone quiet, a burst of a few milliseconds: with
/// four batches queued the reader soon stopped, and a core idled while the tracker swept;
/// sixteen (about 9 MB of segments) carry the reader over it.
const BATCHES_IN_FLIGHT: usize = 16;
/// Lists of records given back for reuse up to this room: a batch's records (a few hundred
/// connections' SYNs, ends and ports) fit several times over.
const KEEP_RECORDS_CAPACITY: usize = 4096;

type Trackers<'p> = Vec<Tracker<'p, AnalysisSink>>;
/// The trackers, and where the first one went over its tuple limit.
type Tracked<'p> = (Trackers<'p>, Option<SegmentAt>);
/// A tracker that keeps its records, with the sinks its records are counted into (one per
/// candidate, in order).
pub type LoggingTracker<'p> = (Tracker<'p, RecordLog>, Vec<AnalysisSink>);
/// A tracker's candidates, and their counts and sinks once it has finished.
pub type FinishedTracker<'p> = (Vec<&'p dyn ServerPolicy>, Vec<(FlowStats, AnalysisSink)>);
/// The finished trackers (none when one went over its tuple limit), the clocks, and where
/// the first tracker went over its tuple limit.
type ThreadsEnd<'p> = (Vec<FinishedTracker<'p>>, NatClocks, Option<SegmentAt>);
/// What a tracker's thread ends with: its candidates' counts, in order (their records all
/// handed on), or where it went over its tuple limit.
type TrackerEnd = Result<Vec<FlowStats>, SegmentAt>;
/// Reads the capture, handing each segment to the feed (which says whether to go on).
type Feed<'f> = &'f mut dyn FnMut(&Segment, SegmentAt) -> bool;

/// Every tracker takes each segment in turn, in this thread.
pub fn track_in_line<'p>(
    mut trackers: Trackers<'p>,
    read: impl FnOnce(Feed<'_>) -> Result<(), CaptureError>,
) -> Result<Tracked<'p>, CaptureError> {
    let mut over_limit = None;
    read(&mut |segment, at| {
        for tracker in &mut trackers {
            tracker.on_segment(segment);
        }
        if trackers.iter().any(Tracker::over_limit) {
            over_limit = Some(at);
            return false;
        }
        true
    })?;
    Ok((trackers, over_limit))
}

/// A batch of segments in capture order, with where each was read.
struct Batch {
    segments: Vec<Segment>,
    read_at: Vec<SegmentAt>,
}

impl Batch {
    /// Room for a whole batch from the start: growing a vector of segments by doubling
    /// copies each one several times over.
    fn empty() -> Self {
        Batch {
            segments: Vec::with_capacity(BATCH_SEGMENTS),
            read_at: Vec::with_capacity(BATCH_SEGMENTS),
        }
    }
}

/// Each tracker on its own thread, the counting of its records on another, and the clocks on
/// a third; this thread reads, decodes and hands out batches. Each tracker is finished on its
/// thread too (settling what is still open, giving back its memory) while the others end.
pub fn track_in_threads<'p>(
    trackers: Vec<LoggingTracker<'p>>,
    clocks: NatClocks,
    read: impl FnOnce(Feed<'_>) -> Result<(), CaptureError>,
) -> Result<ThreadsEnd<'p>, CaptureError> {
    std::thread::scope(|scope| {
        let (to_clocks, batches) = sync_channel::<Arc<Batch>>(BATCHES_IN_FLIGHT);
        let clock_worker = spawn_named(scope, "clocks", move || clock_batches(clocks, batches));
        let mut senders = Vec::with_capacity(trackers.len());
        let mut workers = Vec::with_capacity(trackers.len());
        for (tracker, sinks) in trackers {
            let policies = tracker.policies().to_vec();
            let (sender, receiver) = sync_channel::<Arc<Batch>>(BATCHES_IN_FLIGHT);
            let (handing, handed) = sync_channel::<HandedRecords>(BATCHES_IN_FLIGHT);
            let (giving_back, given_back) = channel::<HandedRecords>();
            senders.push(sender);
            let counter = spawn_named(scope, "counting", move || {
                count_records(sinks, handed, giving_back)
            });
            workers.push((
                policies,
                spawn_named(scope, "judging", move || {
                    track_batches(tracker, receiver, handing, given_back)
                }),
                counter,
            ));
        }
        let mut batch = Batch::empty();
        // Batches handed out, oldest first: once every thread is done with the oldest, it is
        // filled again. Fresh batches would each be new memory to fault in (a third of a
        // second of system time over ten million segments), freed by other threads.
        let mut handed_out: VecDeque<Arc<Batch>> = VecDeque::new();
        // A tracker that stopped (over its tuple limit) has dropped its receiver.
        let mut hand_out = |batch: &mut Batch| {
            let next = match handed_out.pop_front().map(Arc::try_unwrap) {
                Some(Ok(mut done)) => {
                    done.segments.clear();
                    done.read_at.clear();
                    done
                }
                Some(Err(in_use)) => {
                    handed_out.push_front(in_use);
                    Batch::empty()
                }
                None => Batch::empty(),
            };
            let full = Arc::new(std::mem::replace(batch, next));
            handed_out.push_back(Arc::clone(&full));
            // The clocks only stop early by panicking, which joining them shows.
            let _ = to_clocks.send(Arc::clone(&full));
            senders
                .iter()
                .all(|sender| sender.send(Arc::clone(&full)).is_ok())
        };
        let read_result = read(&mut |segment, at| {
            batch.segments.push(*segment);
            batch.read_at.push(at);
            if batch.segments.len() < BATCH_SEGMENTS {
                return true;
            }
            hand_out(&mut batch)
        });
        if read_result.is_ok() && !batch.segments.is_empty() {
            hand_out(&mut batch);
        }
        // Dropping the senders ends each tracker's loop once it has taken every batch.
        drop(senders);
        drop(to_clocks);
        let clocks = crate::threads::join(clock_worker);
        let mut finished = Vec::with_capacity(workers.len());
        let mut over_limit: Option<SegmentAt> = None;
        for (policies, worker, counter) in workers {
            // The tracker's end drops its sender of records: the counter ends after it.
            let end = crate::threads::join(worker);
            let sinks = crate::threads::join(counter);
            match end {
                Ok(stats) => finished.push((policies, stats.into_iter().zip(sinks).collect())),
                // The earliest segment any tracker stopped at, as in line.
                Err(stopped_at) => {
                    over_limit = Some(match over_limit {
                        Some(a) if a.index <= stopped_at.index => a,
                        _ => stopped_at,
                    });
                }
            }
        }
        read_result?;
        if over_limit.is_some() {
            finished.clear();
        }
        Ok((finished, clocks, over_limit))
    })
}

/// The clocks' thread: every segment of every batch, in order.
fn clock_batches(mut clocks: NatClocks, batches: Receiver<Arc<Batch>>) -> NatClocks {
    for batch in batches {
        for segment in &batch.segments {
            clocks.on_segment(segment);
        }
    }
    clocks
}

/// A tracker's thread: every batch in order, until the reader is done or the tracker holds
/// too many tuples, then the tracker's end; the records of each batch, and those its end
/// settles, go to the counting thread.
fn track_batches(
    mut tracker: Tracker<'_, RecordLog>,
    batches: Receiver<Arc<Batch>>,
    counter: SyncSender<HandedRecords>,
    given_back: Receiver<HandedRecords>,
) -> TrackerEnd {
    // Hands on what the logs hold, taking a list the counter gave back in their place. The
    // counter only stops early by panicking, which joining it shows.
    let mut hand_on = |logs: &mut [RecordLog]| {
        let handed = RecordLog::take(logs, given_back.try_recv().unwrap_or_default());
        if !handed.is_empty() {
            let _ = counter.send(handed);
        }
    };
    for batch in batches {
        let taken = tracker.on_segments(&batch.segments, &mut hand_on);
        hand_on(tracker.sinks_mut());
        if tracker.over_limit() {
            return Err(batch.read_at[taken - 1]);
        }
    }
    let (stats, mut logs): (Vec<FlowStats>, Vec<RecordLog>) =
        tracker.finish_each_draining(hand_on).into_iter().unzip();
    hand_on(&mut logs);
    Ok(stats)
}

/// A counting thread: each batch's records into the sinks, in order, until the tracker ends;
/// the emptied lists go back to the tracker's thread.
fn count_records(
    mut sinks: Vec<AnalysisSink>,
    handed: Receiver<HandedRecords>,
    giving_back: Sender<HandedRecords>,
) -> Vec<AnalysisSink> {
    for mut records in handed {
        RecordLog::replay(&mut records, &mut sinks);
        // A rare list many times the usual (the SYNs a tracker's end settles at once): kept,
        // every list would grow that large in turn.
        if records.capacity() <= KEEP_RECORDS_CAPACITY {
            // The tracker's thread may have ended.
            let _ = giving_back.send(records);
        }
    }
    sinks
}
