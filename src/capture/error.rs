//! Errors of the capture layer: always name the file and, where one exists, the byte offset.

use std::fmt;
use std::path::{Path, PathBuf};

/// A capture file could not be read. Displayed as one line: `FILE: at byte N: what went wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub message: String,
}

impl CaptureError {
    pub fn new(path: &Path, offset: Option<u64>, message: impl Into<String>) -> Self {
        CaptureError {
            path: path.to_path_buf(),
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(
                f,
                "{}: at byte {}: {}",
                self.path.display(),
                offset,
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for CaptureError {}
