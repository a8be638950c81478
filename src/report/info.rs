//! The `info` command's output: one block (or JSON object) per capture file.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::analysis::FileSummary;
use crate::capture::{FileFormat, LinkType};
use crate::timefmt::rfc3339;

#[derive(Serialize)]
struct InfoJson<'a> {
    files: Vec<FileJson<'a>>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    file: String,
    format: &'static str,
    compression: &'static str,
    /// "little", "big", or "mixed" (pcapng sections may differ).
    byte_order: &'static str,
    version: Option<String>,
    sections: u64,
    interfaces: Vec<InterfaceJson>,
    /// The largest snaplen any interface declares.
    snaplen: Option<u32>,
    packets: u64,
    packets_by_link_type: BTreeMap<String, u64>,
    first_ts: Option<String>,
    last_ts: Option<String>,
    duration_secs: Option<f64>,
    tcp_segments: u64,
    ipv4: u64,
    ipv6: u64,
    syns: u64,
    skipped: &'a BTreeMap<String, u64>,
    snaplen_truncated: u64,
    out_of_order: u64,
    obsolete_packet_blocks: u64,
    other_blocks: &'a BTreeMap<String, u64>,
    truncated_at: Option<u64>,
}

#[derive(Serialize)]
struct InterfaceJson {
    link_type: u32,
    link_name: &'static str,
    snaplen: u32,
    /// Timestamp units per second (if_tsresol): 1000000 for microseconds.
    ts_units_per_sec: u64,
    ts_offset_secs: i64,
}

/// The tcpdump name of a link type, for people.
pub fn link_name(link: LinkType) -> &'static str {
    match link.0 {
        0 => "NULL",
        1 => "ETHERNET",
        12 | 14 | 101 => "RAW",
        108 => "LOOP",
        113 => "LINUX_SLL",
        127 => "IEEE802_11_RADIOTAP",
        228 => "IPV4",
        229 => "IPV6",
        276 => "LINUX_SLL2",
        _ => "unsupported",
    }
}

fn format_name(summary: &FileSummary) -> &'static str {
    match summary.info.format {
        Some(FileFormat::Pcap { .. }) => "pcap",
        Some(FileFormat::PcapNg) => "pcapng",
        None => "unknown",
    }
}

fn byte_order(summary: &FileSummary) -> &'static str {
    match summary.info.format {
        Some(FileFormat::Pcap { big_endian, .. }) => {
            if big_endian {
                "big"
            } else {
                "little"
            }
        }
        _ => {
            let orders = &summary.info.section_byte_orders;
            match (orders.iter().any(|b| *b), orders.iter().any(|b| !*b)) {
                (true, true) => "mixed",
                (true, false) => "big",
                _ => "little",
            }
        }
    }
}

fn file_json(summary: &FileSummary) -> FileJson<'_> {
    let info = &summary.info;
    FileJson {
        file: info.path.display().to_string(),
        format: format_name(summary),
        compression: info.compression.name(),
        byte_order: byte_order(summary),
        version: info
            .version
            .map(|(major, minor)| format!("{major}.{minor}")),
        sections: info.sections,
        interfaces: info
            .interfaces
            .iter()
            .map(|i| InterfaceJson {
                link_type: i.link.0,
                link_name: link_name(i.link),
                snaplen: i.snaplen,
                ts_units_per_sec: i.units_per_sec,
                ts_offset_secs: i.offset_sec,
            })
            .collect(),
        snaplen: info.interfaces.iter().map(|i| i.snaplen).max(),
        packets: info.packets,
        packets_by_link_type: info
            .packets_by_link
            .iter()
            .map(|(link, n)| (link.0.to_string(), *n))
            .collect(),
        first_ts: info.first_ts_ns.map(rfc3339),
        last_ts: info.max_ts_ns.map(rfc3339),
        duration_secs: info
            .first_ts_ns
            .zip(info.max_ts_ns)
            .map(|(a, b)| (b - a) as f64 / 1e9),
        tcp_segments: summary.tcp_segments,
        ipv4: summary.ipv4,
        ipv6: summary.ipv6,
        syns: summary.syns,
        skipped: &summary.skipped,
        snaplen_truncated: info.snaplen_cut,
        out_of_order: info.out_of_order,
        obsolete_packet_blocks: info.obsolete_packet_blocks,
        other_blocks: &info.other_blocks,
        truncated_at: info.truncated_at,
    }
}

pub fn info_json(summaries: &[FileSummary]) -> String {
    let report = InfoJson {
        files: summaries.iter().map(file_json).collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

pub fn info_text(summaries: &[FileSummary]) -> String {
    let mut out = String::new();
    for summary in summaries {
        let j = file_json(summary);
        let _ = writeln!(out, "file:            {}", j.file);
        let version = j
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "format:          {}{version}, {}-endian, compression {}",
            j.format, j.byte_order, j.compression
        );
        if j.sections > 0 {
            let _ = writeln!(out, "sections:        {}", j.sections);
        }
        for (n, i) in j.interfaces.iter().enumerate() {
            let _ = writeln!(
                out,
                "interface {n}:     link type {} ({}), snaplen {}, {} ticks/s{}",
                i.link_type,
                i.link_name,
                i.snaplen,
                i.ts_units_per_sec,
                if i.ts_offset_secs != 0 {
                    format!(", offset {} s", i.ts_offset_secs)
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(out, "packets:         {}", j.packets);
        if let (Some(first), Some(last), Some(d)) = (&j.first_ts, &j.last_ts, j.duration_secs) {
            let _ = writeln!(out, "time:            {first} .. {last} ({d:.3} s)");
        }
        let _ = writeln!(
            out,
            "TCP segments:    {} ({} SYNs); IPv4 {}, IPv6 {}",
            j.tcp_segments, j.syns, j.ipv4, j.ipv6
        );
        if !j.skipped.is_empty() {
            let skipped: Vec<String> = j.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "not TCP:         {}", skipped.join(", "));
        }
        if !j.other_blocks.is_empty() {
            let other: Vec<String> = j
                .other_blocks
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(out, "other blocks:    {}", other.join(", "));
        }
        for (label, n) in [
            ("snaplen-cut:     ", j.snaplen_truncated),
            ("out of order:    ", j.out_of_order),
            ("obsolete blocks: ", j.obsolete_packet_blocks),
        ] {
            if n > 0 {
                let _ = writeln!(out, "{label}{n}");
            }
        }
        if let Some(offset) = j.truncated_at {
            let _ = writeln!(out, "cut off:         inside a record at byte {offset}");
        }
        out.push('\n');
    }
    out
}
