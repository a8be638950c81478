//! The short human summary `analyze` prints without `--json`.

use std::fmt::Write;

use polars::prelude::*;

use crate::analysis::{Analysis, findings, findings_text, server_settings};
use crate::table::{chain_attempts, syns_frame};

/// The summary: totals, then the newest rejected SYNs from the `syns` table.
pub fn to_text(analysis: &Analysis) -> PolarsResult<String> {
    let mut out = String::new();
    let cap = &analysis.capture;
    let flow = &analysis.flow;
    let syns = &analysis.syns;
    let span = super::capture_span(cap);
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
        "policy {}{simulated} ({}{inferred}), TIME_WAIT {} s",
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
        "verdicts: accepted {}, paws_reject {}, seq_reject {}, no_listener {}, unknown {}{}",
        v.accepted,
        v.paws_reject,
        v.seq_reject,
        v.no_listener,
        v.unknown,
        if v.paws_passive_drop > 0 {
            format!(
                ", paws_passive_drop {} (tcp_tw_recycle)",
                v.paws_passive_drop
            )
        } else {
            String::new()
        }
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
        "server counters predicted: TcpExtPAWSTimewait {}, TcpPassiveOpens {}, TcpExtTCPACKSkippedTimeWait {}, TcpExtTW {}{}",
        flow.counters.paws_timewait,
        flow.counters.passive_opens,
        flow.counters.ack_skipped_timewait,
        flow.time_wait.entered,
        if flow.counters.paws_passive > 0 {
            format!(", TcpExtPAWSPassive {}", flow.counters.paws_passive)
        } else {
            String::new()
        }
    );
    for warning in &analysis.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let settings: Vec<String> = server_settings(analysis)
        .iter()
        .map(|(k, s)| {
            format!(
                "{}={} ({})",
                k.trim_start_matches("net.ipv4."),
                s.value,
                s.source.key()
            )
        })
        .collect();
    let _ = writeln!(out, "server settings: {}", settings.join(", "));
    let _ = writeln!(out, "\nfindings:");
    out.push_str(&findings_text(&findings(analysis)));
    if !syns.rejected.is_empty() {
        let _ = writeln!(out, "\nrejected SYNs, newest first:");
        // The same rows `export` writes to the syns table.
        let (_, attempts) = chain_attempts(&syns.rejected);
        let table = syns_frame(&syns.rejected, &attempts)?;
        for line in rejected_lines(&table, cap.first_ts_ns.unwrap_or(0))? {
            let _ = writeln!(out, "  {line}");
        }
    }
    Ok(out)
}

/// One line per row of a `syns` table, newest first.
fn rejected_lines(table: &DataFrame, start_ns: i64) -> PolarsResult<Vec<String>> {
    let int = |name: &str| -> PolarsResult<Vec<Option<i64>>> {
        Ok(table
            .column(name)?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .collect())
    };
    let text = |name: &str| -> PolarsResult<Vec<String>> {
        Ok(table
            .column(name)?
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or("-").to_string())
            .collect())
    };
    let (time, tsval, ts_recent) = (int("time")?, int("tsval")?, int("tw_ts_recent")?);
    let (client_port, server_port) = (int("client_port")?, int("server_port")?);
    let age_ms: Vec<Option<f64>> = table.column("tw_age_ms")?.f64()?.iter().collect();
    let (client, server) = (text("client_addr")?, text("server_addr")?);
    let (verdict, reason, reply) = (text("verdict")?, text("reason")?, text("reply")?);
    let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut lines: Vec<(i64, String)> = (0..table.height())
        .map(|i| {
            let at = time[i].unwrap_or(start_ns);
            let endpoint = |addr: &str, port: Option<i64>| {
                if addr.contains(':') {
                    format!("[{addr}]:{}", show(port))
                } else {
                    format!("{addr}:{}", show(port))
                }
            };
            let state = match age_ms[i] {
                Some(age) => format!(
                    "TSval {} vs ts_recent {}, TIME_WAIT age {:.3} s",
                    show(tsval[i]),
                    show(ts_recent[i]),
                    age / 1e3
                ),
                None => format!("TSval {}", show(tsval[i])),
            };
            let line = format!(
                "+{:.3} s  {} -> {}  {}  {}: {}  reply: {}",
                (at - start_ns) as f64 / 1e9,
                endpoint(&client[i], client_port[i]),
                endpoint(&server[i], server_port[i]),
                state,
                verdict[i],
                reason[i],
                reply[i]
            );
            (at, line)
        })
        .collect();
    lines.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}
