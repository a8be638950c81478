//! A table of malformed captures built from a bundled sample (as pcap and as pcapng), each
//! with its exact expected error or its exact recovered counts. The expectations come from
//! walking the sample's records here, independently of pawscope's reader.

mod common;

use common::{Scratch, pawscope, pcap_to_pcapng, repo_root};
use serde_json::Value;

const PCAP_HEADER: usize = 24;

/// What `info --json` must say about a file.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Exit 2, one line, containing this text (after the file name).
    Error(String),
    /// Exit 0 with this many packets and this truncation offset.
    Read {
        packets: u64,
        truncated_at: Option<u64>,
    },
}

fn sample() -> Vec<u8> {
    std::fs::read(repo_root().join("samples/nat-paws-reject.pcap")).expect("sample")
}

/// (start, end) of each record of a little-endian pcap.
fn pcap_records(pcap: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = PCAP_HEADER;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let end = at + 16 + caplen;
        if end > pcap.len() {
            break;
        }
        out.push((at, end));
        at = end;
    }
    out
}

/// (start, end, type) of each block of a pcapng whose sections may change byte order.
fn pcapng_blocks(ng: &[u8]) -> Vec<(usize, usize, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut big = false;
    while at + 12 <= ng.len() {
        let raw_type = u32::from_le_bytes(ng[at..at + 4].try_into().unwrap());
        if raw_type == 0x0A0D_0D0A {
            big = ng[at + 8..at + 12] == [0x1a, 0x2b, 0x3c, 0x4d];
        }
        let read = |o: usize| {
            let b: [u8; 4] = ng[o..o + 4].try_into().unwrap();
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let len = read(at + 4) as usize;
        out.push((at, at + len, read(at)));
        at += len;
    }
    out
}

/// Expected reading of `bytes[..cut]` for a file of the given records (packet ranges).
fn cut_expectation(
    packets: &[(usize, usize)],
    header_len: usize,
    cut: usize,
    blocks: &[(usize, usize)],
) -> Expect {
    if cut == 0 {
        return Expect::Error("at byte 0: empty file".into());
    }
    if cut < header_len {
        return Expect::Error("at byte 0: file ends inside the file header".into());
    }
    let whole = packets.iter().filter(|(_, end)| *end <= cut).count() as u64;
    let partial = blocks
        .iter()
        .find(|(start, end)| *start < cut && cut < *end)
        .map(|(s, _)| *s as u64);
    Expect::Read {
        packets: whole,
        truncated_at: partial,
    }
}

fn scratch(name: &str, bytes: &[u8]) -> Scratch {
    Scratch::new("malformed", name).with_file(name, bytes)
}

fn check(name: &str, bytes: &[u8], expect: &Expect) -> Option<String> {
    let path = scratch(name, bytes);
    let out = pawscope(&["info", "--json", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let got = match out.status.code() {
        Some(0) => {
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            let f = &v["files"][0];
            Expect::Read {
                packets: f["packets"].as_u64().unwrap_or(u64::MAX),
                truncated_at: f["truncated_at"].as_u64(),
            }
        }
        Some(2) if stderr.lines().count() == 1 && stderr.contains(name) => match expect {
            Expect::Error(text) if stderr.contains(text.as_str()) => expect.clone(),
            _ => Expect::Error(stderr.trim().to_string()),
        },
        other => Expect::Error(format!("exit {other:?}: {stderr}")),
    };
    (got != *expect).then(|| format!("{name}: expected {expect:?}, got {got:?}"))
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

#[test]
fn every_malformed_input_gives_its_exact_error_or_counts() {
    let pcap = sample();
    let records = pcap_records(&pcap);
    let mut cases: Vec<(String, Vec<u8>, Expect)> = Vec::new();
    let mut with = |name: String, f: &dyn Fn(&mut Vec<u8>), expect: Expect| {
        let mut bytes = pcap.clone();
        f(&mut bytes);
        cases.push((name, bytes, expect));
    };

    // The magic number, each byte wrong.
    for i in 0..4 {
        with(
            format!("magic-{i}.pcap"),
            &|b| b[i] ^= 0xff,
            Expect::Error("at byte 0: not a pcap or pcapng capture".into()),
        );
    }
    // Versions libpcap refuses.
    for major in [0u16, 1, 3, 0xffff] {
        with(
            format!("version-{major}.pcap"),
            &|b| b[4..6].copy_from_slice(&major.to_le_bytes()),
            Expect::Error(format!("at byte 0: unsupported pcap version {major}.4")),
        );
    }
    // Link types pawscope does not decode: readable by `info`, every packet counted.
    for link in [147u32, 127, 0xffff] {
        with(
            format!("link-{link}.pcap"),
            &|b| b[20..24].copy_from_slice(&le32(link)),
            Expect::Read {
                packets: records.len() as u64,
                truncated_at: None,
            },
        );
    }
    // Record lengths no capture can have, at the first, the tenth and the last record.
    for (which, index) in [("first", 0), ("tenth", 9), ("last", records.len() - 1)] {
        let (start, _) = records[index];
        for caplen in [262_145u32, 0x7fff_ffff, u32::MAX] {
            with(
                format!("caplen-{which}-{caplen}.pcap"),
                &|b| b[start + 8..start + 12].copy_from_slice(&le32(caplen)),
                Expect::Error(format!("at byte {start}: record length {caplen} exceeds")),
            );
        }
    }
    // Cut anywhere: whole records before the cut are read, the partial one is reported.
    let blocks: Vec<(usize, usize)> = records.clone();
    for cut in [
        0,
        1,
        12,
        23,
        24,
        25,
        39,
        40,
        41,
        100,
        1000,
        5000,
        pcap.len() / 2,
        pcap.len() - 1,
        pcap.len(),
    ] {
        let expect = cut_expectation(&records, PCAP_HEADER, cut, &blocks);
        cases.push((format!("cut-{cut}.pcap"), pcap[..cut].to_vec(), expect));
    }

    // The same capture as pcapng: two sections, the second big-endian.
    let ng = pcap_to_pcapng(&pcap, records.len() / 2);
    let ng_blocks = pcapng_blocks(&ng);
    let packets: Vec<(usize, usize)> = ng_blocks
        .iter()
        .filter(|b| b.2 == 6)
        .map(|b| (b.0, b.1))
        .collect();
    let all_blocks: Vec<(usize, usize)> = ng_blocks.iter().map(|b| (b.0, b.1)).collect();
    let first_epb = packets[0].0;
    let mut ng_case = |name: String, f: &dyn Fn(&mut Vec<u8>), expect: Expect| {
        let mut bytes = ng.clone();
        f(&mut bytes);
        cases.push((name, bytes, expect));
    };
    for len in [0u32, 4, 7, 11, 33, 0x7fff_fff0] {
        ng_case(
            format!("block-len-{len}.pcapng"),
            &|b| b[first_epb + 4..first_epb + 8].copy_from_slice(&le32(len)),
            Expect::Error(format!(
                "at byte {first_epb}: block length {len} is impossible"
            )),
        );
    }
    ng_case(
        "bom.pcapng".into(),
        &|b| b[8..12].copy_from_slice(&[0, 0, 0, 0]),
        Expect::Error("at byte 0: corrupt pcapng section header".into()),
    );
    ng_case(
        "tsresol.pcapng".into(),
        // The first IDB's if_tsresol value (after SHB 28, IDB header 16, option header 4).
        &|b| b[28 + 16 + 4] = 20,
        Expect::Error("at byte 28: invalid if_tsresol 20".into()),
    );
    ng_case(
        "interface-id.pcapng".into(),
        &|b| b[first_epb + 8..first_epb + 12].copy_from_slice(&le32(5)),
        Expect::Error(format!(
            "at byte {first_epb}: packet names undeclared interface 5"
        )),
    );
    for cut in [
        0,
        10,
        27,
        28,
        40,
        60,
        61,
        first_epb + 40,
        ng.len() / 3,
        ng.len() / 2,
        ng.len() - 3,
        ng.len(),
    ] {
        let expect = cut_expectation(&packets, 28, cut, &all_blocks);
        cases.push((format!("cut-{cut}.pcapng"), ng[..cut].to_vec(), expect));
    }

    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, bytes, expect)| check(name, bytes, expect))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
