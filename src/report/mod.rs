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
