//! The capture reader reads whole legacy pcap records straight from its buffer and leaves the
//! rest to pcap-parser. Here every pcap file (the bundled samples, a simulated capture of
//! thousands of records over many buffer refills, and the public corpus in ../shared/corpus
//! when it is beside this checkout: both byte orders, nanosecond files, the modified format,
//! snaplen cuts and truncations) is read both ways, and every frame must agree: where it
//! starts, its time, its bytes and its length on the wire.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};

use common::{repo_root, simulated_nat_capture};
use pawscope::capture::CaptureReader;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

/// (offset, time in ns, bytes, length on the wire)
type Record = (u64, i64, Vec<u8>, u32);

/// The records pcap-parser's own reader yields, up to its first error or the end.
fn parser_records(path: &Path) -> Vec<Record> {
    // Room for any record libpcap writes (262 144 bytes) without growing.
    let mut reader = create_reader(1 << 20, File::open(path).expect("open")).expect("pcap header");
    let mut nanosecond = false;
    let mut records = Vec::new();
    loop {
        let offset = reader.consumed() as u64;
        let exhausted = reader.reader_exhausted();
        match reader.next() {
            Ok((size, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(header) => {
                        nanosecond = header.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(record) => {
                        let fraction =
                            i64::from(record.ts_usec) * if nanosecond { 1 } else { 1000 };
                        let ts_ns = i64::from(record.ts_sec) * 1_000_000_000 + fraction;
                        records.push((offset, ts_ns, record.data.to_vec(), record.origlen));
                    }
                    PcapBlockOwned::NG(_) => unreachable!("only pcap files are compared"),
                }
                reader.consume(size);
            }
            Err(PcapError::Incomplete(_)) if !exhausted => {
                reader.refill().expect("refill");
            }
            Err(_) => return records,
        }
    }
}

/// The records pawscope's reader yields, and whether it stopped on an error (rather than at
/// the end or a truncation).
fn reader_records(path: &Path) -> (Vec<Record>, bool) {
    let Ok(mut reader) = CaptureReader::open(path) else {
        return (Vec::new(), true);
    };
    let mut records = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => records.push((
                frame.offset,
                frame.ts_ns,
                frame.data.to_vec(),
                frame.orig_len,
            )),
            Ok(None) => return (records, false),
            Err(_) => return (records, true),
        }
    }
}

/// Reads `path` both ways; returns how many records agreed. Where pawscope refuses what the
/// parser reads on (a pcap version it does not take), the records before must agree.
fn compare(path: &Path) -> usize {
    let expected = parser_records(path);
    let (read, refused) = reader_records(path);
    if !refused {
        assert_eq!(
            read.len(),
            expected.len(),
            "{}: record count",
            path.display()
        );
    }
    for (ours, theirs) in read.iter().zip(&expected) {
        assert_eq!(
            ours,
            theirs,
            "{}: record at byte {}",
            path.display(),
            theirs.0
        );
    }
    assert!(read.len() <= expected.len(), "{}", path.display());
    read.len()
}

/// Uncompressed legacy pcap files in `dir` whose header pcap-parser takes.
fn pcap_files(dir: &Path) -> Vec<PathBuf> {
    common::files_in(dir, |p| {
        p.extension().is_some_and(|e| e == "pcap")
            && File::open(p)
                .ok()
                .and_then(|f| create_reader(1 << 16, f).ok())
                .is_some()
    })
}

#[test]
fn samples_read_alike_both_ways() {
    let samples = pcap_files(&repo_root().join("samples"));
    assert!(samples.len() >= 8, "samples: {samples:?}");
    for sample in samples {
        assert!(compare(&sample) > 0, "{}", sample.display());
    }
}

#[test]
fn simulated_capture_reads_alike_both_ways() {
    let dir = common::Scratch::new("reader-paths", "sim");
    let (pcap, truth) = simulated_nat_capture(&dir);
    let records = compare(&pcap) as u64;
    assert_eq!(Some(records), truth["packets"].as_u64());
    // Many times the reader's buffer: records straddle its refills.
    assert!(std::fs::metadata(&pcap).expect("size").len() > 4 << 20);
}

#[test]
fn public_corpus_reads_alike_both_ways() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let files = pcap_files(&corpus);
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect();
    // The layouts the direct path must get right, and the ones it leaves to the parser.
    for needed in [
        "be-usec-eth-tcp-pptp.pcap",
        "le-nsec-sll-tcp-handshake.pcap",
        "pcap-modified-magic.pcap",
        "snaplen-trunc-be-brcm.pcap",
    ] {
        assert!(
            names.iter().any(|n| n == needed),
            "{needed} not in the corpus"
        );
    }
    let records: usize = files.iter().map(|file| compare(file)).sum();
    assert!(records > 100, "only {records} records compared");
}
