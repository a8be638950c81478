//! `pawscope info --json` on every public capture in ../shared/corpus, against the counts
//! tshark reports in its MANIFEST.tsv. Where pawscope deliberately differs, the file and the
//! reason are named here and pawscope's own exact numbers are asserted instead.

mod common;

use std::path::PathBuf;

use common::{pawscope, repo_root};
use serde_json::Value;

/// (packets, TCP segments, IPv4 frames, IPv6 frames) as `info` reports them.
type Counts = (u64, u64, u64, u64);

enum Expected {
    Counts(Counts),
    /// Exit status 2 and one line containing this.
    Error(&'static str),
}

/// Files where pawscope's answer is not tshark's, and why.
fn deliberate(file: &str) -> Option<(Expected, &'static str)> {
    use Expected::*;
    Some(match file {
        "le-usec-eth-tcp-ts-ipv6.pcap" => (
            Counts((62, 20, 56, 0)),
            "IPv6 carried in L2TP (UDP 1701) inside PPPoE is not decoded; tshark finds 10 more TCP segments and 11 IPv6 frames there",
        ),
        "pcapng-nsec-wireshark-mix.pcapng" => (
            Counts((5898, 15, 3851, 237)),
            "Teredo (IPv6 in UDP 3544) is not decoded; tshark counts those 13 frames as IPv6",
        ),
        "pcapng-mixed-endian-sections.pcapng" => (
            Counts((8, 0, 8, 0)),
            "tshark 4.0 counts the 3 Custom Blocks as packet records",
        ),
        "pcapng-custom-blocks.pcapng" => (
            Counts((4, 0, 4, 0)),
            "tshark 4.0 counts the 4 Custom Blocks as packet records",
        ),
        "snaplen-trunc-be-brcm.pcap" => (
            Counts((4, 0, 0, 0)),
            "tshark refuses link type 281 outright; `info` reads and counts the records (`analyze` refuses the file)",
        ),
        "pcap-lt-reserved-bits.pcap" => (
            Counts((0, 0, 0, 0)),
            "tshark refuses the reserved bits of the link type field; the file holds no records to misread",
        ),
        "err-eof.bin" => (
            Error("at byte 0: not a pcap or pcapng capture"),
            "not a capture at all: pawscope says so where tshark reports an empty file",
        ),
        _ => return None,
    })
}

fn leading_number(field: &str) -> Option<u64> {
    field.split_whitespace().next()?.parse().ok()
}

#[test]
fn info_matches_tshark_on_the_public_corpus() {
    let corpus = repo_root().join("../shared/corpus");
    let Ok(manifest) = std::fs::read_to_string(corpus.join("MANIFEST.tsv")) else {
        eprintln!("skipped: ../shared/corpus is not beside this checkout");
        return;
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [
            file,
            _repo,
            _path,
            _format,
            _links,
            packets,
            tcp,
            ipv4,
            ipv6,
            ..,
        ] = cols[..]
        else {
            panic!("short MANIFEST row: {line}");
        };
        let expected = match deliberate(file) {
            Some((expected, _why)) => expected,
            None if packets.starts_with("error") => Expected::Error("at byte"),
            None => Expected::Counts((
                leading_number(packets).expect("packets"),
                tcp.parse().expect("tcp"),
                ipv4.parse().expect("ipv4"),
                ipv6.parse().expect("ipv6"),
            )),
        };
        let path: PathBuf = corpus.join(file);
        let out = pawscope(&["info", "--json", path.to_str().expect("utf-8")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match expected {
            Expected::Counts(want) => {
                if !out.status.success() {
                    failures.push(format!("{file}: failed: {stderr}"));
                    continue;
                }
                let report: Value = serde_json::from_slice(&out.stdout).expect("json");
                let f = &report["files"][0];
                let got = (
                    f["packets"].as_u64().unwrap(),
                    f["tcp_segments"].as_u64().unwrap(),
                    f["ipv4"].as_u64().unwrap(),
                    f["ipv6"].as_u64().unwrap(),
                );
                if got != want {
                    failures.push(format!(
                        "{file}: (packets, tcp, ipv4, ipv6) = {got:?}, expected {want:?}"
                    ));
                }
            }
            Expected::Error(text) => {
                let one_line = stderr.lines().count() == 1;
                if out.status.code() != Some(2)
                    || !one_line
                    || !stderr.contains(text)
                    || !stderr.contains(file)
                {
                    failures.push(format!(
                        "{file}: expected a one-line error with {text:?}, got {:?}: {stderr}",
                        out.status.code()
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} corpus files checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
