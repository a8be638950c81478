//! Arbitrary bytes as a capture file through the whole `analyze` pipeline (with the
//! `--rfc1337 auto` candidates the command line uses), then the tables, the chart data,
//! and the JSON and text reports built from the result.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pawscope::analysis::{AnalyzeOptions, analyze_files};
use pawscope::policy::ServerPolicy;
use pawscope::policy::linux::LinuxPolicy;
use pawscope::table::{SharedAttempts, TABLE_NAMES, TableInputs, build_tables};

const CLIENT_TIME_WAIT_NS: i64 = 60_000_000_000;

/// One file per fuzzing process, rewritten for every input.
fn capture_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("pawscope-fuzz-analyze-{}.cap", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = capture_path();
    std::fs::write(path, data).expect("writing the capture to a temporary file");
    let candidates = [
        LinuxPolicy::default(),
        LinuxPolicy {
            rfc1337: true,
            ..LinuxPolicy::default()
        },
    ];
    let options = AnalyzeOptions {
        candidates: candidates.iter().map(|p| p as &dyn ServerPolicy).collect(),
        keep_records: true,
        client_time_wait_ns: CLIENT_TIME_WAIT_NS,
        ..AnalyzeOptions::default()
    };
    let Ok(analysis) = analyze_files(std::slice::from_ref(path), &options) else {
        return;
    };
    let records = analysis.records.as_ref().expect("records kept");
    // As `report` does: the tables' threads and the charts share the chaining of attempts.
    let attempts = SharedAttempts::default();
    let inputs = TableInputs::new(records, &analysis.nat, &attempts);
    let tables = match build_tables(inputs, &TABLE_NAMES, |_, frame| frame) {
        Ok(tables) => tables,
        Err(e) => panic!("tables from an analysis that succeeded: {e}"),
    };
    let charts = pawscope::chart::all_charts(&analysis, CLIENT_TIME_WAIT_NS, &attempts);
    let json = pawscope::report::to_json(&analysis);
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        panic!("to_json wrote invalid JSON: {e}");
    }
    if let Err(e) = pawscope::report::to_text(&analysis) {
        panic!("text report from an analysis that succeeded: {e}");
    }
    std::hint::black_box((tables, charts, json));
});
