//! Several capture files read as one stream, in time order: rotated `tcpdump -C/-W` sets
//! and captures from several points come out of order by name.

use super::{CaptureError, CaptureReader, Frame};

pub struct MergedCaptures {
    readers: Vec<CaptureReader>,
    /// Time of each reader's current frame; `None` once it is exhausted.
    heads: Vec<Option<i64>>,
    /// The reader whose frame was returned last: it advances on the next call.
    last: Option<usize>,
}

impl MergedCaptures {
    /// Primes every reader with its first frame.
    pub fn new(mut readers: Vec<CaptureReader>) -> Result<Self, CaptureError> {
        let mut heads = Vec::with_capacity(readers.len());
        for reader in &mut readers {
            heads.push(reader.next_frame()?.map(|f| f.ts_ns));
        }
        Ok(MergedCaptures {
            readers,
            heads,
            last: None,
        })
    }

    /// The earliest pending frame of all files (the first file wins a tie), with the index
    /// of the file it came from.
    pub fn next_frame(&mut self) -> Result<Option<(usize, Frame<'_>)>, CaptureError> {
        // Nothing to merge: the frame `new` primed, then the file's frames as they come.
        if self.readers.len() == 1 {
            if self.last.replace(0).is_none() {
                return Ok(self.readers[0].current().map(|frame| (0, frame)));
            }
            return Ok(self.readers[0].next_frame()?.map(|frame| (0, frame)));
        }
        if let Some(i) = self.last.take() {
            self.heads[i] = self.readers[i].next_frame()?.map(|f| f.ts_ns);
        }
        // A linear scan: merged sets hold a handful to a few hundred files.
        let Some(i) = (0..self.heads.len())
            .filter_map(|i| self.heads[i].map(|ts| (ts, i)))
            .min()
            .map(|(_, i)| i)
        else {
            return Ok(None);
        };
        self.last = Some(i);
        Ok(self.readers[i].current().map(|frame| (i, frame)))
    }

    pub fn readers(&self) -> &[CaptureReader] {
        &self.readers
    }

    pub fn into_readers(self) -> Vec<CaptureReader> {
        self.readers
    }
}
