//! Every way a capture reaches pawscope, built from a bundled sample: compressed, split into
//! a rotated set, piped, cut off, corrupted. Each asserts exact counts or the exact error.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Scratch, analyze_json, pawscope, repo_root};
use serde_json::Value;

const PCAP_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

fn sample_path() -> PathBuf {
    repo_root().join("samples/nat-paws-reject.pcap")
}

fn sample() -> Vec<u8> {
    std::fs::read(sample_path()).expect("read sample")
}

/// The file `name`, holding `bytes`, in a folder of its own.
fn write(name: &str, bytes: &[u8]) -> Scratch {
    Scratch::new("input-kinds", name).with_file(name, bytes)
}

/// (start, end) of every record in a little-endian pcap file, read independently of pawscope.
fn records(pcap: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    let mut out = Vec::new();
    let mut at = PCAP_HEADER;
    while at + RECORD_HEADER <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let end = at + RECORD_HEADER + caplen;
        if end > pcap.len() {
            break;
        }
        out.push((at, end));
        at = end;
    }
    out
}

/// The parts of an analysis that must not depend on how the bytes arrived.
fn verdict_part(report: &Value) -> Value {
    let mut v = report.clone();
    let capture = v["capture"].as_object_mut().expect("capture");
    capture.remove("files");
    v
}

#[test]
fn gzip_and_zstd_are_recognised_by_content_not_name() {
    let plain = analyze_json(&sample_path(), &[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&sample()).unwrap();
    // Misleading names on purpose: the magic number decides.
    let gz_path = write("gzip-inside.pcap", &gz.finish().unwrap());
    let zst = ruzstd::encoding::compress_to_vec(
        &sample()[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let zst_path = write("zstd-inside.pcap.gz", &zst);
    for (path, name) in [(gz_path, "gzip"), (zst_path, "zstd")] {
        let report = analyze_json(&path, &[]);
        assert_eq!(verdict_part(&report), verdict_part(&plain), "{name}");
        assert_eq!(report["capture"]["files"][0]["compression"], name);
    }
}

#[test]
fn standard_input_is_read_when_the_path_is_a_dash() {
    let plain = analyze_json(&sample_path(), &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pawscope"))
        .args(["analyze", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bytes = sample();
    let mut stdin = child.stdin.take().expect("stdin");
    // Written from another thread in small pieces: the reader must cope with short reads.
    let writer = std::thread::spawn(move || {
        for chunk in bytes.chunks(1000) {
            stdin.write_all(chunk).unwrap();
        }
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict_part(&report), verdict_part(&plain));
}

#[test]
fn a_rotated_set_is_merged_by_time_whatever_the_name_order() {
    let bytes = sample();
    let recs = records(&bytes);
    let thirds = [0, recs.len() / 3, 2 * recs.len() / 3, recs.len()];
    // The earliest packets go to the file whose name sorts last, as with tcpdump -W rings.
    let names = ["ring2.pcap", "ring1.pcap", "ring0.pcap"];
    let dir = Scratch::new("input-kinds", "ring");
    let mut paths = Vec::new();
    for (part, name) in names.iter().enumerate() {
        let mut file = bytes[..PCAP_HEADER].to_vec();
        for &(start, end) in &recs[thirds[part]..thirds[part + 1]] {
            file.extend_from_slice(&bytes[start..end]);
        }
        let path = dir.join(name);
        std::fs::write(&path, &file).expect("write");
        paths.push(path);
    }
    paths.sort();
    let args: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let mut argv = vec!["analyze", "--json"];
    argv.extend(&args);
    let out = pawscope(&argv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    let whole = analyze_json(&sample_path(), &[]);
    assert_eq!(verdict_part(&merged), verdict_part(&whole));
    assert_eq!(merged["capture"]["files"].as_array().unwrap().len(), 3);
    // No file is out of order inside itself, and merging put the files back in order.
    assert_eq!(merged["capture"]["out_of_order"], 0);
}

#[test]
fn a_file_cut_anywhere_in_its_first_2_kb_reads_exactly_the_whole_records_before_the_cut() {
    let bytes = sample();
    let recs = records(&bytes);
    for cut in (0..2048).step_by(7) {
        let path = write(&format!("cut-{cut}.pcap"), &bytes[..cut]);
        let out = pawscope(&["info", "--json", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if cut == 0 {
            assert_eq!(out.status.code(), Some(2));
            assert!(
                stderr.contains("at byte 0: empty file"),
                "cut {cut}: {stderr}"
            );
            continue;
        }
        if cut < PCAP_HEADER {
            assert_eq!(out.status.code(), Some(2));
            assert!(
                stderr.contains("at byte 0: file ends inside the file header"),
                "cut {cut}: {stderr}"
            );
            continue;
        }
        assert!(out.status.success(), "cut {cut}: {stderr}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let whole = recs.iter().filter(|(_, end)| *end <= cut).count() as u64;
        let partial = recs
            .iter()
            .find(|(start, end)| *start < cut && cut < *end)
            .map(|(s, _)| *s as u64);
        let file = &report["files"][0];
        assert_eq!(file["packets"].as_u64(), Some(whole), "cut {cut}");
        assert_eq!(file["truncated_at"].as_u64(), partial, "cut {cut}");
    }
}

fn flipped(at: usize) -> Scratch {
    let mut bytes = sample();
    bytes[at] ^= 0xff;
    write(&format!("flip-{at}.pcap"), &bytes)
}

fn error_of(path: &Path) -> String {
    let out = pawscope(&["analyze", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", path.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn flipped_bytes_give_the_exact_error_or_the_exact_counts() {
    for at in 0..4 {
        assert!(
            error_of(&flipped(at)).contains("at byte 0: not a pcap or pcapng capture"),
            "magic byte {at}"
        );
    }
    assert!(
        error_of(&flipped(4)).contains("at byte 0: unsupported pcap version 253.4: expected 2.x")
    );
    // Link type 1 becomes 0xfe: a link type pawscope does not decode.
    assert!(error_of(&flipped(20)).contains("at byte 24: unsupported link type 254"));
    // The first record's captured length becomes about 4 GB.
    let caplen_high = PCAP_HEADER + 11;
    assert!(error_of(&flipped(caplen_high)).contains("at byte 24: record length"));
    // A byte of the first packet's TCP checksum: nothing pawscope reads changes.
    let (start, _) = records(&sample())[0];
    let tcp_checksum = start + RECORD_HEADER + 14 + 20 + 16;
    let report = analyze_json(&flipped(tcp_checksum), &[]);
    let whole = analyze_json(&sample_path(), &[]);
    assert_eq!(verdict_part(&report), verdict_part(&whole));
}

#[test]
fn no_flipped_byte_in_the_first_2_kb_panics_or_writes_more_than_one_error_line() {
    let bytes = sample();
    for at in 0..2048 {
        let mut copy = bytes.clone();
        copy[at] ^= 0xff;
        let path = write("flip-sweep.pcap", &copy);
        let out = pawscope(&["analyze", "--json", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "byte {at}: {stderr}");
        match out.status.code() {
            Some(0) => {
                let _: Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("byte {at}: {e}"));
            }
            Some(2) => {
                assert!(out.stdout.is_empty(), "byte {at}: output on error");
                assert_eq!(stderr.lines().count(), 1, "byte {at}: {stderr}");
                assert!(stderr.contains("flip-sweep.pcap"), "byte {at}: {stderr}");
            }
            other => panic!("byte {at}: exit {other:?}: {stderr}"),
        }
    }
}

#[test]
fn pcapng_with_two_sections_of_different_byte_order_and_resolution_reads_like_the_pcap() {
    let bytes = sample();
    let half = records(&bytes).len() / 2;
    let path = write("two-sections.pcapng", &common::pcap_to_pcapng(&bytes, half));
    let report = analyze_json(&path, &[]);
    assert_eq!(
        verdict_part(&report),
        verdict_part(&analyze_json(&sample_path(), &[]))
    );
    let out = pawscope(&["info", "--json", path.to_str().unwrap()]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = &info["files"][0];
    assert_eq!(file["format"], "pcapng");
    assert_eq!(file["byte_order"], "mixed");
    assert_eq!(file["sections"], 2);
    assert_eq!(file["interfaces"][0]["ts_units_per_sec"], 1_000_000_000u64);
    assert_eq!(file["interfaces"][1]["ts_units_per_sec"], 1_000_000u64);
    assert_eq!(file["packets"].as_u64(), Some(records(&bytes).len() as u64));
}

#[test]
fn pcapng_block_with_an_impossible_length_is_an_error_at_its_offset() {
    let pcapng = common::pcap_to_pcapng(&sample(), usize::MAX);
    // SHB (28) + IDB (32 with the if_tsresol option): the first EPB starts at 60.
    let first_epb = 60;
    assert_eq!(&pcapng[first_epb..first_epb + 4], &6u32.to_le_bytes());
    for bad_len in [7u32, 0x7fff_fff0] {
        let mut bytes = pcapng.clone();
        bytes[first_epb + 4..first_epb + 8].copy_from_slice(&bad_len.to_le_bytes());
        let stderr = error_of(&write("badlen.pcapng", &bytes));
        assert!(
            stderr.contains("badlen.pcapng: at byte 60"),
            "{bad_len}: {stderr}"
        );
    }
}

#[test]
fn snaplen_cut_packets_still_give_their_headers() {
    // 96 bytes hold Ethernet, IPv4 and any TCP header with options; HTTP payload is cut.
    const SNAPLEN: usize = 96;
    let bytes = sample();
    let mut cut = bytes[..PCAP_HEADER].to_vec();
    cut[16..20].copy_from_slice(&(SNAPLEN as u32).to_le_bytes());
    let mut shortened = 0;
    for (start, end) in records(&bytes) {
        let data = &bytes[start + RECORD_HEADER..end];
        let kept = data.len().min(SNAPLEN);
        shortened += u64::from(kept < data.len());
        cut.extend_from_slice(&bytes[start..start + 8]);
        cut.extend_from_slice(&(kept as u32).to_le_bytes());
        cut.extend_from_slice(&bytes[start + 12..start + 16]);
        cut.extend_from_slice(&data[..kept]);
    }
    assert!(shortened > 50, "the sample has payload to cut");
    let report = analyze_json(&write("snaplen96.pcap", &cut), &[]);
    assert_eq!(
        report["capture"]["snaplen_truncated"].as_u64(),
        Some(shortened)
    );
    let mut same = verdict_part(&report);
    same["capture"]["snaplen_truncated"] = 0.into();
    assert_eq!(same, verdict_part(&analyze_json(&sample_path(), &[])));
}
