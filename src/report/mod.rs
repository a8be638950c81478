//! Renders an [`Analysis`](crate::analysis::Analysis) for people (text) and tools (JSON).

mod incident;
mod info;
mod json;
mod text;
mod whatif;

pub use incident::{ReportChart, chart_title, report_html, report_markdown};
pub use info::{info_json, info_text, link_name};
pub use json::to_json;
pub use text::to_text;
pub use whatif::{whatif_json, whatif_text};

use crate::analysis::CaptureSummary;
use crate::timefmt::rfc3339;

/// "first to last (duration)" in UTC, for the text summary and the report.
fn capture_span(cap: &CaptureSummary) -> String {
    match (cap.first_ts_ns, cap.last_ts_ns) {
        (Some(first), Some(last)) => format!(
            "{} to {} ({:.1} s)",
            rfc3339(first),
            rfc3339(last),
            (last as f64 - first as f64) / 1e9
        ),
        _ => "no packets".to_string(),
    }
}
