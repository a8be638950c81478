//! `info`: what one capture file holds, container and packets, without the TCP analysis.

use std::collections::BTreeMap;
use std::path::Path;

use crate::capture::{CaptureError, CaptureReader, FileInfo};
use crate::packet::Decoder;

/// A capinfos-like account of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub info: FileInfo,
    pub tcp_segments: u64,
    /// Frames carrying an IPv4 / IPv6 header (outer or tunnelled), TCP or not.
    pub ipv4: u64,
    pub ipv6: u64,
    /// Connection requests: SYN without ACK.
    pub syns: u64,
    /// Frames that did not become TCP segments, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// Reads one file through, streaming.
pub fn summarize_file(path: &Path) -> Result<FileSummary, CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut decoder = Decoder::new();
    let mut summary = FileSummary {
        info: FileInfo::new(path),
        tcp_segments: 0,
        ipv4: 0,
        ipv6: 0,
        syns: 0,
        skipped: BTreeMap::new(),
    };
    while let Some(frame) = reader.next_frame()? {
        let decoded = decoder.decode(&frame);
        summary.ipv4 += u64::from(decoded.ipv4);
        summary.ipv6 += u64::from(decoded.ipv6);
        match decoded.segment {
            Ok(segment) => {
                summary.tcp_segments += 1;
                summary.syns += u64::from(segment.is_syn());
            }
            Err(reason) => *summary.skipped.entry(reason.key()).or_insert(0) += 1,
        }
    }
    summary.info = reader.into_info();
    Ok(summary)
}
