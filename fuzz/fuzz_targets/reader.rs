//! Arbitrary bytes as a capture stream: pcap / pcapng parsing, and the gzip and zstd
//! paths the way `CaptureReader::open` sets them up (magic number first).

#![no_main]

use std::io::{Cursor, Read};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pawscope::capture::CaptureReader;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads every frame, touching its bytes, until the end or an error.
fn drain(source: impl Read + Send + 'static) {
    let Ok(mut reader) = CaptureReader::from_reader(Path::new("fuzz"), source) else {
        return;
    };
    let mut sum = 0u64;
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                let len = frame.data.len();
                assert!(len <= 1 << 26, "frame larger than the reader's bound");
                sum = sum.wrapping_add(len as u64);
                sum = sum.wrapping_add(frame.data.iter().map(|&b| u64::from(b)).sum::<u64>());
                // The lent frame is still there when asked again.
                let again = reader.current().expect("current() after next_frame()");
                assert_eq!(again.data.len(), len);
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    let info = reader.into_info();
    std::hint::black_box((&info, sum));
}

fuzz_target!(|data: &[u8]| {
    drain(Cursor::new(data.to_vec()));
    if data.starts_with(&GZIP_MAGIC) {
        drain(flate2::read::GzDecoder::new(Cursor::new(data.to_vec())));
        // What `open` uses: concatenated gzip members read as one stream.
        drain(flate2::read::MultiGzDecoder::new(Cursor::new(data.to_vec())));
    } else if data.starts_with(&ZSTD_MAGIC) {
        if let Ok(decoder) = ruzstd::decoding::StreamingDecoder::new(Cursor::new(data.to_vec())) {
            drain(decoder);
        }
    }
});
