//! Byte sources: files, standard input, and gzip/zstd streams recognised by their magic
//! numbers (not by file name).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::CaptureError;

/// How the capture's bytes were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The path that means standard input.
pub const STDIN_PATH: &str = "-";

/// Opens `path` (or standard input for `-`) and undoes its compression.
pub fn open(path: &Path) -> Result<(Box<dyn Read + Send>, Compression), CaptureError> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == STDIN_PATH {
        Box::new(io::stdin())
    } else {
        if path.is_dir() {
            return Err(CaptureError::new(
                path,
                None,
                "is a directory, not a capture file",
            ));
        }
        Box::new(File::open(path).map_err(|e| CaptureError::new(path, None, open_message(&e)))?)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, raw);
    let head = buffered
        .fill_buf()
        .map_err(|e| CaptureError::new(path, Some(0), format!("read error: {e}")))?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(buffered)),
            Compression::Gzip,
        ))
    } else if head.starts_with(&ZSTD_MAGIC) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(buffered)
            .map_err(|e| CaptureError::new(path, Some(0), format!("corrupt zstd stream: {e}")))?;
        Ok((Box::new(decoder), Compression::Zstd))
    } else {
        Ok((Box::new(buffered), Compression::None))
    }
}

fn open_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => format!("cannot open: {e}"),
    }
}

/// Fills every read as far as the source allows. Pipes and decompressors return short
/// reads; the pcap parser takes a short first read for a truncated header. The last I/O
/// error is kept, because the parser only reports that one happened.
pub struct Filling<R> {
    inner: R,
    last_error: Arc<Mutex<Option<String>>>,
}

impl<R: Read> Filling<R> {
    pub fn new(inner: R) -> (Self, Arc<Mutex<Option<String>>>) {
        let last_error = Arc::new(Mutex::new(None));
        (
            Filling {
                inner,
                last_error: Arc::clone(&last_error),
            },
            last_error,
        )
    }
}

impl<R: Read> Read for Filling<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Ok(mut slot) = self.last_error.lock() {
                        *slot = Some(e.to_string());
                    }
                    // Hand over what was read; the error comes back on the next call.
                    if filled > 0 {
                        return Ok(filled);
                    }
                    return Err(e);
                }
            }
        }
        Ok(filled)
    }
}
