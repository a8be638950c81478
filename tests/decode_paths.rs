//! The decoder's fast path for plain IPv4/IPv6 TCP frames against the general slicer, frame
//! by frame: every bundled sample, a simulated NAT capture, hand-made edge frames and (when it
//! is beside this checkout) the public corpus in ../shared/corpus. Both must give the same
//! segment, or the same reason to skip, for every frame.

mod common;

use std::path::{Path, PathBuf};

use common::{repo_root, simulated_nat_capture};
use etherparse::{PacketBuilder, TcpOptionElement};
use pawscope::capture::{CaptureReader, Frame, LinkType};
use pawscope::packet::Decoder;

/// Decodes every frame of a capture both ways; returns (frames, segments). Files the reader
/// refuses count as zero frames: the reader's own tests cover them.
fn compare_paths(path: &Path) -> (u64, u64) {
    let Ok(mut reader) = CaptureReader::open(path) else {
        return (0, 0);
    };
    let (mut fast, mut general) = (Decoder::new(), Decoder::new());
    let (mut frames, mut segments) = (0, 0);
    while let Ok(Some(frame)) = reader.next_frame() {
        frames += 1;
        let (a, b) = (fast.decode(&frame), general.decode_general(&frame));
        assert_eq!(a, b, "{} frame at byte {}", path.display(), frame.offset);
        segments += u64::from(a.segment.is_ok());
    }
    (frames, segments)
}

fn captures_in(dir: &Path) -> Vec<PathBuf> {
    common::files_in(dir, |p| {
        let name = p.to_string_lossy();
        [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz", ".bin"]
            .iter()
            .any(|ext| name.ends_with(ext))
    })
}

#[test]
fn samples_decode_alike_both_ways() {
    let samples = captures_in(&repo_root().join("samples"));
    assert!(samples.len() >= 4, "samples: {samples:?}");
    for sample in samples {
        let (frames, segments) = compare_paths(&sample);
        assert!(
            segments > 0 && segments == frames,
            "{}: {segments} of {frames}",
            sample.display()
        );
    }
}

#[test]
fn simulated_capture_decodes_alike_both_ways() {
    let dir = common::Scratch::new("decode-paths", "sim");
    let (pcap, truth) = simulated_nat_capture(&dir);
    let (frames, segments) = compare_paths(&pcap);
    assert_eq!(Some(frames), truth["packets"].as_u64());
    assert_eq!(segments, frames);
}

#[test]
fn public_corpus_decodes_alike_both_ways() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let (mut frames, mut segments) = (0, 0);
    for capture in captures_in(&corpus) {
        let (f, s) = compare_paths(&capture);
        frames += f;
        segments += s;
    }
    assert!(frames > 1000 && segments > 100, "{segments} of {frames}");
}

/// An Ethernet frame carrying an IPv4 TCP SYN with a timestamp option.
fn ethernet_syn() -> Vec<u8> {
    let mut bytes = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 1], [203, 0, 113, 10], 64)
        .tcp(40000, 80, 1234, 64240)
        .syn()
        .options(&[TcpOptionElement::Timestamp(777, 0)])
        .unwrap()
        .write(&mut bytes, &[1, 2, 3])
        .unwrap();
    bytes
}

/// Frames at the edges of what the fast path takes: each must decode as the general path does.
#[test]
fn edge_frames_decode_alike_both_ways() {
    let syn = ethernet_syn();
    let set = |at: usize, value: &[u8]| {
        let mut frame = syn.clone();
        frame[at..at + value.len()].copy_from_slice(value);
        frame
    };
    let mut padded = syn.clone();
    padded.extend_from_slice(&[0; 6]);
    let mut vlan = syn[..12].to_vec();
    vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    vlan.extend_from_slice(&syn[12..]);
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("plain", syn.clone()),
        ("ethernet padding", padded),
        ("vlan tag", vlan),
        ("cut inside the options", syn[..60].to_vec()),
        ("cut inside the payload", syn[..syn.len() - 1].to_vec()),
        ("ip total length 0 (segmentation offload)", set(16, &[0, 0])),
        ("ip total length inside the tcp header", set(16, &[0, 30])),
        ("ip total length past the frame", set(16, &[0x05, 0xdc])),
        ("more fragments", set(20, &[0x20, 0])),
        ("fragment offset", set(20, &[0, 1])),
        ("don't fragment", set(20, &[0x40, 0])),
        ("ip options", set(14, &[0x46])),
        ("ipv6 version under the ipv4 ethertype", set(14, &[0x65])),
        ("udp", set(23, &[17])),
        ("tcp data offset too small", set(46, &[0x40])),
        ("tcp data offset past the segment", set(46, &[0xf0])),
        ("unknown tcp option", set(54, &[99])),
        ("ethernet header only", syn[..14].to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, data) in &frames {
        for link in [LinkType::ETHERNET, LinkType::RAW] {
            let bytes = if link == LinkType::RAW {
                data.get(14..).unwrap_or(&[])
            } else {
                data
            };
            let frame = Frame {
                ts_ns: 1,
                link,
                data: bytes,
                orig_len: bytes.len() as u32,
                offset: 0,
            };
            let fast = Decoder::new().decode(&frame);
            let general = Decoder::new().decode_general(&frame);
            assert_eq!(fast, general, "{what} ({link:?})");
        }
    }
    let plain = Frame {
        ts_ns: 1,
        link: LinkType::ETHERNET,
        data: &syn,
        orig_len: syn.len() as u32,
        offset: 0,
    };
    let segment = Decoder::new().decode(&plain).segment.expect("segment");
    assert_eq!((segment.payload_len, segment.tsval()), (3, Some(777)));
}
