//! Runs the trackers over the decoded segments: in the reading thread (the straightforward
//! reference), or each tracker (one per kernel policy) on a thread of its own, fed batches of
//! segments while the reading thread goes on reading and decoding. Both give the same
//! trackers, segment for segment: every tracker sees every segment in capture order.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use super::AnalysisSink;
use crate::capture::CaptureError;
use crate::flow::Tracker;
use crate::packet::Segment;

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
/// Batches queued per tracker before the reader waits for it.
const BATCHES_IN_FLIGHT: usize = 4;

type Trackers<'p> = Vec<Tracker<'p, AnalysisSink>>;
/// The trackers, and where the first one went over its tuple limit.
type Tracked<'p> = (Trackers<'p>, Option<SegmentAt>);
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

/// Each tracker on its own thread; this thread reads, decodes and hands out batches.
pub fn track_in_threads<'p>(
    trackers: Trackers<'p>,
    read: impl FnOnce(Feed<'_>) -> Result<(), CaptureError>,
) -> Result<Tracked<'p>, CaptureError> {
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(trackers.len());
        let mut workers = Vec::with_capacity(trackers.len());
        for tracker in trackers {
            let (sender, receiver) = sync_channel::<Arc<Batch>>(BATCHES_IN_FLIGHT);
            senders.push(sender);
            workers.push(scope.spawn(move || track_batches(tracker, receiver)));
        }
        let mut batch = Batch::empty();
        // A tracker that stopped (over its tuple limit) has dropped its receiver.
        let hand_out = |batch: &mut Batch| {
            let full = Arc::new(std::mem::replace(batch, Batch::empty()));
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
        let mut trackers = Vec::with_capacity(workers.len());
        let mut over_limit: Option<SegmentAt> = None;
        for worker in workers {
            let (tracker, stopped_at) = crate::threads::join(worker);
            // The earliest segment any tracker stopped at, as in line.
            over_limit = match (over_limit, stopped_at) {
                (Some(a), Some(b)) => Some(if b.index < a.index { b } else { a }),
                (a, b) => a.or(b),
            };
            trackers.push(tracker);
        }
        read_result?;
        Ok((trackers, over_limit))
    })
}

/// A tracker's thread: every batch in order, until the reader is done or the tracker holds
/// too many tuples.
fn track_batches<'p>(
    mut tracker: Tracker<'p, AnalysisSink>,
    batches: Receiver<Arc<Batch>>,
) -> (Tracker<'p, AnalysisSink>, Option<SegmentAt>) {
    for batch in batches {
        let taken = tracker.on_segments(&batch.segments);
        if tracker.over_limit() {
            return (tracker, Some(batch.read_at[taken - 1]));
        }
    }
    (tracker, None)
}
