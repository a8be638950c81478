//! The short human summary `analyze` prints without `--json`.

use std::fmt::Write;

use crate::analysis::Analysis;
use crate::flow::{FoundState, SynRecord};
use crate::timefmt::rfc3339;

pub fn to_text(analysis: &Analysis) -> String {
    let mut out = String::new();
    let cap = &analysis.capture;
    let flow = &analysis.flow;
    let syns = &analysis.syns;
    let span = match (cap.first_ts_ns, cap.last_ts_ns) {
        (Some(first), Some(last)) => format!(
            "{} .. {} ({:.1} s)",
            rfc3339(first),
            rfc3339(last),
            (last - first) as f64 / 1e9
        ),
        _ => "no packets".to_string(),
    };
    let simulated = if analysis.policy_simulated {
        " (simulated, not recorded from a kernel)"
    } else {
        ""
    };
    let file = match cap.files.as_slice() {
        [one] => one.path.display().to_string(),
        files => format!("{} files", files.len()),
    };
    let _ = writeln!(
        out,
        "{file}: {} packets, {} TCP segments, {span}",
        cap.packets, cap.tcp_segments
    );
    let inferred = if analysis.settings_inferred {
        ", inferred from the replies"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "policy {}{simulated} ({}{inferred}), TIME_WAIT {:.0} s",
        analysis.policy_name,
        analysis.settings,
        analysis.time_wait_len_ns as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "connections {} on {} tuples; SYNs {} ({} retransmissions); tuple reuse within 2MSL {}, after {}",
        flow.counters.passive_opens,
        flow.tuples_with_syn,
        flow.syn_total,
        flow.syn_retransmissions,
        flow.reuse_within_2msl,
        flow.reuse_after_2msl
    );
    let v = &syns.verdicts;
    let _ = writeln!(
        out,
        "verdicts: accepted {}, paws_reject {}, seq_reject {}, no_listener {}, unknown {}",
        v.accepted, v.paws_reject, v.seq_reject, v.no_listener, v.unknown
    );
    let r = &syns.replies;
    let a = &syns.agreement;
    let _ = writeln!(
        out,
        "replies seen: syn_ack {}, challenge_ack {}, rst {}, none {}; prediction agrees {}, disagrees {}, unobserved {}",
        r.syn_ack,
        r.challenge_ack,
        r.rst,
        r.none,
        a.predicted_accept_observed_accept + a.predicted_reject_observed_reject,
        a.disagreements(),
        a.unobserved
    );
    let _ = writeln!(
        out,
        "server counters predicted: TcpExtPAWSTimewait {}, TcpPassiveOpens {}, TcpExtTCPACKSkippedTimeWait {}",
        flow.counters.paws_timewait,
        flow.counters.passive_opens,
        flow.counters.ack_skipped_timewait
    );
    for warning in &analysis.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    if !syns.rejected.is_empty() {
        let _ = writeln!(out, "\nrejected SYNs, newest first:");
        for syn in &syns.rejected {
            let _ = writeln!(
                out,
                "  {}",
                rejected_line(syn, cap.first_ts_ns.unwrap_or(0))
            );
        }
    }
    out
}

fn rejected_line(syn: &SynRecord, start_ns: i64) -> String {
    let offset = (syn.ts_ns - start_ns) as f64 / 1e9;
    let tsval = syn.tsval.map_or("-".to_string(), |v| v.to_string());
    let state = match syn.found {
        FoundState::TimeWait {
            ts_recent,
            ts_negotiated,
            age_ns,
            ..
        } => {
            let recent = if ts_negotiated {
                ts_recent.to_string()
            } else {
                "-".to_string()
            };
            format!(
                "TSval {tsval} vs ts_recent {recent}, TIME_WAIT age {:.3} s",
                age_ns as f64 / 1e9
            )
        }
        _ => format!("TSval {tsval}"),
    };
    format!(
        "+{offset:.3} s  {}  {}  {}: {}  reply: {}",
        syn.tuple,
        state,
        syn.verdict.key(),
        syn.reason,
        syn.reply.key()
    )
}
