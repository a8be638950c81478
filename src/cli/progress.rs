//! A one-line progress indicator on stderr for long reads.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A one-line progress indicator on stderr for large files, only when stderr is a terminal.
pub struct Progress {
    total_bytes: u64,
    started: Instant,
    last_shown: Cell<Option<Instant>>,
    enabled: bool,
}

impl Progress {
    /// Files smaller than this finish before a progress line would be worth reading.
    const MIN_BYTES: u64 = 64 << 20;

    pub fn new(paths: &[PathBuf]) -> Self {
        // Standard input and compressed files have no size to measure against; their
        // decompressed offsets would run past 100 %.
        let total_bytes = paths
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        Progress {
            total_bytes,
            started: Instant::now(),
            last_shown: Cell::new(None),
            enabled: total_bytes >= Self::MIN_BYTES && std::io::stderr().is_terminal(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn show(&self, bytes: u64) {
        let now = Instant::now();
        if self
            .last_shown
            .get()
            .is_some_and(|t| now - t < Duration::from_secs(1))
        {
            return;
        }
        self.last_shown.set(Some(now));
        let percent = bytes as f64 * 100.0 / self.total_bytes.max(1) as f64;
        eprint!(
            "\rpawscope: {:.0}% of {} MiB read, {:.0} s",
            percent,
            self.total_bytes >> 20,
            (now - self.started).as_secs_f64()
        );
    }

    /// Says what runs now that reading is done (building and writing tables, drawing charts:
    /// seconds on a large capture, with nothing to count), under the same conditions as the
    /// progress line; [`Progress::clear`] takes it away.
    pub fn note(&self, what: &str) {
        if !self.enabled {
            return;
        }
        self.last_shown.set(Some(Instant::now()));
        eprint!("\rpawscope: {what} ...\x1b[K");
    }

    pub fn clear(&self) {
        if self.last_shown.get().is_some() {
            eprint!("\r\x1b[K");
        }
    }
}
