//! Renders an [`Analysis`](crate::analysis::Analysis) for people (text) and tools (JSON).

mod json;
mod text;

pub use json::to_json;
pub use text::to_text;
