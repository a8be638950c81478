//! `whatif` output: one line (or object) per policy, then the SYNs they judge differently.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::analysis::{Analysis, Comparison};
use crate::timefmt::rfc3339;

#[derive(Serialize)]
struct WhatifJson<'a> {
    policies: Vec<PolicyJson<'a>>,
    differing_syns: usize,
    /// Newest first.
    differences: Vec<DifferenceJson>,
}

#[derive(Serialize)]
struct PolicyJson<'a> {
    policy: &'static str,
    settings: &'a str,
    simulated: bool,
    connections: u64,
    attempts: u64,
    failed_attempts: u64,
    verdicts: BTreeMap<&'static str, u64>,
    kernel_counters: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct DifferenceJson {
    time: String,
    client: String,
    server: String,
    isn: u32,
    verdicts: BTreeMap<&'static str, &'static str>,
}

fn verdict_counts(analysis: &Analysis) -> BTreeMap<&'static str, u64> {
    let v = &analysis.syns.verdicts;
    BTreeMap::from([
        ("accepted", v.accepted),
        ("paws_reject", v.paws_reject),
        ("seq_reject", v.seq_reject),
        ("no_listener", v.no_listener),
        ("paws_passive_drop", v.paws_passive_drop),
        ("unknown", v.unknown),
    ])
}

fn counters(analysis: &Analysis) -> BTreeMap<&'static str, u64> {
    let c = &analysis.flow.counters;
    BTreeMap::from([
        ("PAWSTimewait", c.paws_timewait),
        ("PassiveOpens", c.passive_opens),
        ("TCPACKSkippedTimeWait", c.ack_skipped_timewait),
        ("PAWSPassive", c.paws_passive),
    ])
}

pub fn whatif_json(analyses: &[Analysis], comparison: &Comparison) -> String {
    let report = WhatifJson {
        policies: analyses
            .iter()
            .zip(&comparison.outcomes)
            .map(|(a, o)| PolicyJson {
                policy: a.policy_name,
                settings: &a.settings,
                simulated: a.policy_simulated,
                connections: a.flow.counters.passive_opens,
                attempts: o.attempts,
                failed_attempts: o.failed_attempts,
                verdicts: verdict_counts(a),
                kernel_counters: counters(a),
            })
            .collect(),
        differing_syns: comparison.differences.len(),
        differences: comparison
            .differences
            .iter()
            .map(|d| DifferenceJson {
                time: rfc3339(d.ts_ns),
                client: d.tuple.client.to_string(),
                server: d.tuple.server.to_string(),
                isn: d.isn,
                verdicts: analyses
                    .iter()
                    .zip(&d.verdicts)
                    .map(|(a, v)| (a.policy_name, v.key()))
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

pub fn whatif_text(analyses: &[Analysis], comparison: &Comparison, top: usize) -> String {
    let mut out = String::new();
    let start = analyses
        .first()
        .and_then(|a| a.capture.first_ts_ns)
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{:<30} {:>9} {:>9} {:>11} {:>10} {:>10} {:>9} {:>12}",
        "policy",
        "accepted",
        "paws_rej",
        "seq_reject",
        "recycled",
        "no_listen",
        "unknown",
        "failed/conn"
    );
    for (analysis, outcome) in analyses.iter().zip(&comparison.outcomes) {
        let v = &analysis.syns.verdicts;
        let name = if analysis.policy_simulated {
            format!("{} (simulated)", analysis.policy_name)
        } else {
            analysis.policy_name.to_string()
        };
        let _ = writeln!(
            out,
            "{name:<30} {:>9} {:>9} {:>11} {:>10} {:>10} {:>9} {:>12}",
            v.accepted,
            v.paws_reject,
            v.seq_reject,
            v.paws_passive_drop,
            v.no_listener,
            v.unknown,
            format!("{}/{}", outcome.failed_attempts, outcome.attempts)
        );
    }
    if let (Some(base), Some(base_outcome)) = (analyses.first(), comparison.outcomes.first()) {
        for (analysis, outcome) in analyses.iter().zip(&comparison.outcomes).skip(1) {
            let lost = outcome.failed_attempts as i64 - base_outcome.failed_attempts as i64;
            let change = match lost {
                0 => "as many failed connects".to_string(),
                n if n > 0 => format!("{n} more failed connects"),
                n => format!("{} fewer failed connects", -n),
            };
            let _ = writeln!(
                out,
                "{} instead of {}: {change}, of the {} attempts in the capture",
                analysis.policy_name, base.policy_name, outcome.attempts
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} SYNs judged differently{}",
        comparison.differences.len(),
        if comparison.differences.is_empty() {
            ""
        } else {
            ", newest first:"
        }
    );
    for d in comparison.differences.iter().take(top) {
        let verdicts: Vec<String> = analyses
            .iter()
            .zip(&d.verdicts)
            .map(|(a, v)| format!("{} {}", a.policy_name, v.key()))
            .collect();
        let _ = writeln!(
            out,
            "  +{:.3} s  {}  {}",
            (d.ts_ns - start) as f64 / 1e9,
            d.tuple,
            verdicts.join(", ")
        );
    }
    out
}
