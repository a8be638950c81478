//! The incident report: the same content as a self-contained HTML page (charts inlined as
//! SVG, no network needed to open it) and as Markdown with PNG links for a wiki or ticket.

use std::fmt::Write;

use crate::analysis::{Analysis, Finding, findings};
use crate::chart::Chart;

/// Rows the "worst tuples" table shows.
const WORST_TUPLES: usize = 15;

/// A chart as the report places it.
pub struct ReportChart<'a> {
    pub chart: &'a Chart,
    pub title: &'static str,
    /// The SVG text (HTML) and the PNG file name (Markdown).
    pub svg: &'a str,
    pub png_name: String,
}

pub fn chart_title(chart: &Chart) -> &'static str {
    match chart {
        Chart::Timestamps(_) => "TSval against time for the busiest client address",
        Chart::Timeline(_) => "Tuple timeline: connections, TIME_WAIT and SYNs",
        Chart::Outcomes(_) => "Connect attempts per second and time to establish",
        Chart::Ports(_) => "Client ports held against the port range",
    }
}

/// The capture and judging facts, as (label, value) rows.
fn facts(analysis: &Analysis) -> Vec<(&'static str, String)> {
    let cap = &analysis.capture;
    let files: Vec<String> = cap
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let span = super::capture_span(cap);
    let simulated = if analysis.policy_simulated {
        " — simulated from kernel source, not recorded from a kernel"
    } else {
        ""
    };
    let v = &analysis.syns.verdicts;
    let c = &analysis.flow.counters;
    let a = &analysis.syns.attempt_totals;
    vec![
        ("capture", files.join(", ")),
        ("time", span),
        (
            "packets",
            format!("{} ({} TCP segments)", cap.packets, cap.tcp_segments),
        ),
        (
            "policy",
            format!(
                "{} ({}){simulated}",
                analysis.policy_name, analysis.settings
            ),
        ),
        (
            "connections",
            format!(
                "{} completed handshakes on {} tuples",
                c.passive_opens, analysis.flow.tuples_with_syn
            ),
        ),
        (
            "connect attempts",
            format!(
                "{} attempts: {} established ({} only after a rejection), {} failed",
                a.attempts, a.established, a.delayed, a.failed
            ),
        ),
        (
            "SYN verdicts",
            format!(
                "{} SYNs: accepted {}, PAWS reject {}, sequence reject {}, tw_recycle drop {}, no listener {}, unknown {}",
                analysis.flow.syn_total,
                v.accepted,
                v.paws_reject,
                v.seq_reject,
                v.paws_passive_drop,
                v.no_listener,
                v.unknown
            ),
        ),
        (
            "server counters predicted",
            format!(
                "TcpExtPAWSTimewait {}, TcpPassiveOpens {}, TcpExtTCPACKSkippedTimeWait {}, TcpExtTW {}, TcpExtPAWSPassive {}",
                c.paws_timewait,
                c.passive_opens,
                c.ack_skipped_timewait,
                analysis.flow.time_wait.entered,
                c.paws_passive
            ),
        ),
    ]
}

fn worst_tuples(analysis: &Analysis) -> Vec<(String, u64)> {
    let mut tuples: Vec<(String, u64)> = analysis
        .syns
        .rejects_by_tuple
        .iter()
        .map(|(t, n)| (t.to_string(), *n))
        .collect();
    tuples.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    tuples.truncate(WORST_TUPLES);
    tuples
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1500px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
.high{color:#b00}.medium{color:#c60}.low{color:#555}.info{color:#357}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}";

pub fn report_html(analysis: &Analysis, charts: &[ReportChart<'_>]) -> String {
    let mut h = String::new();
    let title = format!(
        "TCP TIME_WAIT / PAWS incident report — {}",
        analysis.policy_name
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    h.push_str("<section id=\"facts\"><h2>Capture and policy</h2><table>\n");
    for (label, value) in facts(analysis) {
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(label),
            escape(&value)
        );
    }
    h.push_str("</table></section>\n<section id=\"findings\"><h2>Findings</h2>\n");
    for (i, f) in findings(analysis).iter().enumerate() {
        let _ = write!(
            h,
            "<div class=\"finding\"><h3 class=\"{}\">{}. [{}] {}</h3><ul>",
            f.severity.key(),
            i + 1,
            f.severity.key(),
            escape(&f.title)
        );
        for e in &f.evidence {
            let _ = write!(h, "<li>{}</li>", escape(e));
        }
        h.push_str("</ul>");
        if !f.advice.is_empty() {
            h.push_str("<p>What to change:</p><ul>");
            for a in &f.advice {
                let _ = write!(h, "<li>{}</li>", escape(a));
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n<section id=\"charts\"><h2>Charts</h2>\n");
    for c in charts {
        let _ = writeln!(
            h,
            "<figure><figcaption>{}</figcaption>\n{}\n</figure>",
            escape(c.title),
            strip_xml_declaration(c.svg)
        );
    }
    h.push_str("</section>\n<section id=\"worst-tuples\"><h2>Most rejected tuples</h2><table><tr><th>tuple</th><th>SYNs rejected or dropped</th></tr>\n");
    for (tuple, n) in worst_tuples(analysis) {
        let _ = writeln!(h, "<tr><td>{}</td><td>{n}</td></tr>", escape(&tuple));
    }
    h.push_str("</table></section>\n<section id=\"nat\"><h2>Client addresses</h2><table><tr><th>address</th><th>server</th><th>timestamp clocks</th><th>model</th><th>TSval decreases</th></tr>\n");
    for a in analysis.nat.addresses.iter().take(WORST_TUPLES) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td></tr>",
            a.source,
            a.destination,
            a.clocks.clock_count(),
            a.clocks.model(),
            a.clocks.decreases
        );
    }
    h.push_str("</table></section>\n</body></html>\n");
    h
}

/// SVG from plotters starts with its own XML header, which has no place inside HTML.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(at) => &svg[at..],
        None => svg,
    }
}

pub fn report_markdown(analysis: &Analysis, charts: &[ReportChart<'_>]) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# TCP TIME_WAIT / PAWS incident report — {}\n",
        analysis.policy_name
    );
    m.push_str("## Capture and policy\n\n| | |\n| --- | --- |\n");
    for (label, value) in facts(analysis) {
        let _ = writeln!(m, "| {label} | {} |", value.replace('|', "\\|"));
    }
    m.push_str("\n## Findings\n\n");
    let list: Vec<Finding> = findings(analysis);
    for (i, f) in list.iter().enumerate() {
        let _ = writeln!(m, "{}. **[{}] {}**", i + 1, f.severity.key(), f.title);
        for e in &f.evidence {
            let _ = writeln!(m, "   - {e}");
        }
        for a in &f.advice {
            let _ = writeln!(m, "   - fix: {a}");
        }
    }
    m.push_str("\n## Charts\n\n");
    for c in charts {
        let _ = writeln!(m, "### {}\n\n![{}]({})\n", c.title, c.title, c.png_name);
    }
    m.push_str("## Most rejected tuples\n\n| tuple | SYNs rejected or dropped |\n| --- | --- |\n");
    for (tuple, n) in worst_tuples(analysis) {
        let _ = writeln!(m, "| {tuple} | {n} |");
    }
    m
}
