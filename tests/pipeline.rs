//! The optimised path (the NAT clocks, each tracker and the counting of its records on
//! threads of their own, fed in batches) against the straightforward reference (everything
//! in the reading thread, one segment at a time): identical tables, clocks and summaries on a
//! simulated capture of about 100 000 packets, long enough that quiet tuples are forgotten
//! along the way.

mod common;

use std::path::Path;

use common::{analysis_with_threads, analyze_json, pawscope, simulated_nat_capture};
use pawscope::analysis::{Analysis, DEFAULT_PORT_RANGE};
use pawscope::table::{TABLE_NAMES, Tables};

fn scratch(test: &str) -> common::Scratch {
    common::Scratch::new("pipeline", test)
}

fn analysis(pcap: &Path, threads: usize) -> Analysis {
    analysis_with_threads(pcap, DEFAULT_PORT_RANGE, threads)
}

fn tables(analysis: &Analysis) -> Tables {
    let records = analysis.records.as_ref().expect("records kept");
    Tables::build(&records.syns, &records.incarnations, &analysis.nat).expect("tables")
}

#[test]
fn threaded_tracking_gives_the_reference_tables_exactly() {
    let dir = scratch("tables");
    let (pcap, truth) = simulated_nat_capture(&dir);
    let packets = truth["packets"].as_u64().unwrap();
    assert!(
        (90_000..=130_000).contains(&packets),
        "{packets} packets simulated"
    );

    let reference = analysis(&pcap, 1);
    let threaded = analysis(&pcap, 2);
    let (reference_tables, threaded_tables) = (tables(&reference), tables(&threaded));
    for name in TABLE_NAMES {
        let (a, b) = (
            reference_tables.get(name).unwrap(),
            threaded_tables.get(name).unwrap(),
        );
        assert!(a.height() > 0 || name == "ts_events", "{name} is empty");
        assert!(a.equals_missing(b), "{name} differs between the two paths");
    }
    assert_eq!(reference.flow, threaded.flow);
    assert_eq!(reference.syns.verdicts, threaded.syns.verdicts);
    assert_eq!(reference.syns.agreement, threaded.syns.agreement);
    assert_eq!(reference.syns.attempt_totals, threaded.syns.attempt_totals);
    assert_eq!(reference.ports, threaded.ports);
    assert_eq!(reference.nat, threaded.nat);
    assert_eq!(reference.settings, threaded.settings);

    // The capture exercises what the optimised path does differently: forgetting quiet
    // tuples, reuse within and after TIME_WAIT, PAWS rejects.
    let flow = &reference.flow;
    assert!(
        flow.peak_live_tuples < flow.tuples_with_syn,
        "nothing was forgotten"
    );
    assert!(flow.reuse_within_2msl > 0 && flow.reuse_after_2msl > 0);
    assert!(reference.syns.verdicts.paws_reject > 0);
    // And both paths still predict the simulated server's counters exactly.
    assert_eq!(
        flow.counters.paws_timewait,
        truth["server_counters"]["TcpExtPAWSTimewait"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(
        flow.counters.passive_opens,
        truth["server_counters"]["TcpPassiveOpens"]
            .as_u64()
            .unwrap()
    );
}

#[test]
fn the_threads_option_changes_nothing_in_the_report() {
    let dir = scratch("cli");
    let (pcap, _) = simulated_nat_capture(&dir);
    let one = analyze_json(&pcap, &["--threads", "1"]);
    let four = analyze_json(&pcap, &["--threads", "4"]);
    assert_eq!(one, four);
    let out = pawscope(&["analyze", pcap.to_str().unwrap(), "--threads", "0"]);
    assert_eq!(out.status.code(), Some(2), "--threads 0 is a usage error");
}

#[test]
fn both_paths_stop_at_the_same_segment_over_the_tuple_limit() {
    let dir = scratch("limit");
    let (pcap, _) = simulated_nat_capture(&dir);
    let stopped = |threads: &str| {
        let out = pawscope(&[
            "analyze",
            pcap.to_str().unwrap(),
            "--max-tuples",
            "300",
            "--threads",
            threads,
        ]);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let in_line = stopped("1");
    assert!(
        in_line.contains("at byte ") && in_line.contains("more than 300 tuples live at once"),
        "{in_line}"
    );
    // The byte named is where the segment that needed the 301st tuple was read: inside the
    // threaded path's first batch, not at a batch's end.
    assert_eq!(stopped("2"), in_line);
}
