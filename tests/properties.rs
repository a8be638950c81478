//! Property tests: wrap-around comparisons, the Linux TIME_WAIT policy against a direct
//! transcription of `tcp_timewait_state_process()`, and reading a capture split, merged or
//! compressed giving the same analysis as reading it whole.

mod common;

use std::io::Write;
use std::net::SocketAddr;

use common::{analyze_json, pawscope, repo_root};
use pawscope::packet::{Segment, TcpFlags, TcpOptions, Timestamp};
use pawscope::policy::linux::LinuxPolicy;
use pawscope::policy::{ServerPolicy, TimeWait, TwNext, TwReply};
use pawscope::seq::{after, before, ts_diff};
use proptest::prelude::*;
use serde_json::Value;

proptest! {
    #[test]
    fn after_and_before_hold_across_wrap_around(a in any::<u32>(), d in 1u32..0x8000_0000) {
        let b = a.wrapping_add(d);
        prop_assert!(after(b, a));
        prop_assert!(before(a, b));
        prop_assert!(!after(a, b));
        prop_assert_eq!(ts_diff(b, a), d as i32);
    }
}

const SEC: i64 = 1_000_000_000;

/// `tcp_timewait_state_process()` for the TIME_WAIT substate, written out line by line from
/// net/ipv4/tcp_minisocks.c, apart from pawscope's code: (accepted ISN, paws_reject, reply,
/// killed, timer re-armed).
fn kernel(
    tw: &TimeWait,
    seg: &Segment,
    rfc1337: bool,
) -> (Option<u32>, bool, &'static str, bool, bool) {
    let now = seg.ts_ns;
    let saw_tstamp = tw.ts_recent_stamp_ns.is_some() && seg.options.timestamp.is_some();
    let tsval = seg.options.timestamp.map_or(0, |t| t.val);
    let stamp = tw.ts_recent_stamp_ns.unwrap_or(0);
    // tcp_paws_reject(): tcp_paws_check() fails, and for a RST the stamp is recent.
    let paws_check_ok = (tw.ts_recent.wrapping_sub(tsval) as i32) <= 0
        || now - stamp >= 2147 * SEC
        || tw.ts_recent == 0;
    let paws_reject = saw_tstamp && !paws_check_ok && !(seg.flags.rst() && now - stamp >= 60 * SEC);
    let end_seq = seg
        .seq
        .wrapping_add(seg.payload_len)
        .wrapping_add(u32::from(seg.flags.syn()))
        .wrapping_add(u32::from(seg.flags.fin()));
    if !paws_reject && seg.seq == tw.rcv_nxt && (seg.seq == end_seq || seg.flags.rst()) {
        if seg.flags.rst() {
            if !rfc1337 {
                return (None, false, "none", true, false);
            }
            return (None, false, "none", false, false);
        }
        return (None, false, "none", false, true);
    }
    let seq_after = ((seg.seq.wrapping_sub(tw.rcv_nxt)) as i32) > 0;
    if seg.flags.syn()
        && !seg.flags.rst()
        && !seg.flags.ack()
        && !paws_reject
        && (seq_after || (saw_tstamp && (tw.ts_recent.wrapping_sub(tsval) as i32) < 0))
    {
        let mut isn = tw.snd_nxt.wrapping_add(65535 + 2);
        if isn == 0 {
            isn = 1;
        }
        return (Some(isn), false, "syn", false, false);
    }
    if seg.flags.rst() {
        return (None, paws_reject, "none", false, false);
    }
    let rearmed = paws_reject || seg.flags.ack();
    // tcp_oow_rate_limited(): data without SYN is never limited.
    let limited = if seg.seq != end_seq && !seg.flags.syn() {
        false
    } else {
        match tw.last_oow_ack_ns {
            Some(last) => {
                // 4 ms jiffies (HZ=250), rounded to the nearest tick.
                let ticks = (now - last + 2_000_000).div_euclid(4_000_000);
                (0..125).contains(&ticks)
            }
            None => false,
        }
    };
    (
        None,
        paws_reject,
        if limited { "limited" } else { "ack" },
        false,
        rearmed,
    )
}

fn arb_segment() -> impl Strategy<Value = Segment> {
    (
        any::<u32>(),
        prop_oneof![
            Just(0u8),
            Just(TcpFlags::SYN),
            Just(TcpFlags::ACK),
            Just(TcpFlags::RST),
            Just(TcpFlags::ACK | TcpFlags::FIN),
            Just(TcpFlags::SYN | TcpFlags::ACK)
        ],
        prop_oneof![Just(0u32), Just(1), Just(100)],
        proptest::option::of(any::<u32>()),
        0i64..3000 * SEC,
    )
        .prop_map(|(seq, flags, payload_len, tsval, at)| Segment {
            ts_ns: at,
            src: "203.0.113.1:40000".parse::<SocketAddr>().unwrap(),
            dst: "203.0.113.10:80".parse::<SocketAddr>().unwrap(),
            seq,
            ack: 7,
            flags: TcpFlags(flags),
            payload_len,
            window: 100,
            options: TcpOptions {
                timestamp: tsval.map(|val| Timestamp { val, ecr: 0 }),
                ..TcpOptions::default()
            },
        })
}

fn arb_time_wait() -> impl Strategy<Value = TimeWait> {
    (
        any::<u32>(),
        any::<u32>(),
        prop_oneof![Just(0u32), any::<u32>()],
        proptest::option::of(0i64..3000 * SEC),
        proptest::option::of(0i64..3000 * SEC),
    )
        .prop_map(|(rcv_nxt, snd_nxt, ts_recent, stamp, last_oow)| TimeWait {
            start_ns: 0,
            deadline_ns: i64::MAX,
            rcv_nxt,
            snd_nxt,
            ts_recent,
            ts_recent_stamp_ns: stamp,
            last_oow_ack_ns: last_oow,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn linux_policy_matches_the_kernel_transcription(
        tw in arb_time_wait(),
        mut seg in arb_segment(),
        rfc1337 in any::<bool>(),
        near in any::<bool>(),
    ) {
        // Half the segments aim at rcv_nxt, where the in-window rules live.
        if near {
            seg.seq = tw.rcv_nxt;
        }
        let policy = LinuxPolicy { rfc1337, ..LinuxPolicy::default() };
        let j = policy.on_time_wait_segment(&tw, &seg);
        let (accepted, paws, reply, killed, rearmed) = kernel(&tw, &seg, rfc1337);
        match j.next {
            TwNext::Reopened { server_isn } => prop_assert_eq!(Some(server_isn), accepted),
            TwNext::Killed => prop_assert!(killed),
            TwNext::Stay(next) => {
                prop_assert!(accepted.is_none() && !killed);
                prop_assert_eq!(next.deadline_ns != tw.deadline_ns, rearmed);
            }
        }
        prop_assert_eq!(j.paws_reject, paws);
        let ours = match j.reply {
            TwReply::Ack => "ack",
            TwReply::RateLimited => "limited",
            TwReply::ToListener => "syn",
            TwReply::Nothing => "none",
        };
        prop_assert_eq!(ours, reply);
    }
}

fn records(pcap: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((at, at + 16 + caplen));
        at += 16 + caplen;
    }
    out
}

fn without_files(mut v: Value) -> Value {
    v["capture"].as_object_mut().unwrap().remove("files");
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn split_into_pieces_and_merged_reads_like_the_whole(cuts in proptest::collection::vec(1usize..650, 1..5), gzip in any::<bool>()) {
        let path = repo_root().join("samples/nat-paws-reject.pcap");
        let bytes = std::fs::read(&path).unwrap();
        let recs = records(&bytes);
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(recs.len() - 1)).collect();
        bounds.push(0);
        bounds.push(recs.len());
        bounds.sort();
        bounds.dedup();
        let dir = common::Scratch::new("properties", "pieces");
        let mut names = Vec::new();
        for (i, w) in bounds.windows(2).enumerate() {
            let mut part = bytes[..24].to_vec();
            for &(s, e) in &recs[w[0]..w[1]] {
                part.extend_from_slice(&bytes[s..e]);
            }
            if gzip {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&part).unwrap();
                part = enc.finish().unwrap();
            }
            // Names in reverse time order: merging must not trust names.
            let name = dir.join(format!("part-{}.pcap", bounds.len() - i));
            std::fs::write(&name, &part).unwrap();
            names.push(name.to_string_lossy().into_owned());
        }
        let mut args = vec!["analyze", "--json"];
        args.extend(names.iter().map(String::as_str));
        let out = pawscope(&args);
        prop_assert!(out.status.success());
        let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
        prop_assert_eq!(without_files(merged), without_files(analyze_json(&path, &[])));
    }
}

/// Well-formed TCP options in any order and number, as etherparse writes them.
fn option_element() -> impl Strategy<Value = etherparse::TcpOptionElement> {
    use etherparse::TcpOptionElement::*;
    prop_oneof![
        Just(Noop),
        any::<u16>().prop_map(MaximumSegmentSize),
        any::<u8>().prop_map(WindowScale),
        Just(SelectiveAcknowledgementPermitted),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| SelectiveAcknowledgement((a, b), [None; 3])),
        (any::<u32>(), any::<u32>()).prop_map(|(val, ecr)| Timestamp(val, ecr)),
    ]
}

proptest! {
    /// The decoder reads well-formed options as etherparse's own option iterator does: the
    /// last of each kind the segment carries.
    #[test]
    fn decoded_options_match_etherparse(elements in proptest::collection::vec(option_element(), 0..6)) {
        use etherparse::TcpOptionElement::*;
        let Ok(builder) = etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [203, 0, 113, 10], 64)
            .tcp(40000, 80, 1, 1000)
            .syn()
            .options(&elements)
        else {
            // More than the 40 bytes a TCP header holds.
            return Ok(());
        };
        let mut bytes = Vec::new();
        builder.write(&mut bytes, &[]).unwrap();
        let frame = pawscope::capture::Frame {
            ts_ns: 1,
            link: pawscope::capture::LinkType::RAW,
            data: &bytes,
            orig_len: bytes.len() as u32,
            offset: 0,
        };
        let decoded = pawscope::packet::Decoder::new().decode(&frame).segment.unwrap();
        let mut expected = TcpOptions::default();
        for element in &elements {
            match *element {
                MaximumSegmentSize(mss) => expected.mss = Some(mss),
                WindowScale(shift) => expected.window_scale = Some(shift),
                SelectiveAcknowledgementPermitted => expected.sack_permitted = true,
                Timestamp(val, ecr) => expected.timestamp = Some(self::Timestamp { val, ecr }),
                _ => {}
            }
        }
        prop_assert_eq!(decoded.options, expected);
    }
}
