//! Charts for incident reports: the data each shows (tested) and its drawing (plotters).

mod data;
mod render;

pub use data::{
    Lane, MAX_LANES, MAX_PORT_SERIES, OutcomeChart, PortChart, PortSeries, SecondOutcomes,
    TimelineChart, TimestampChart, TsPoint, outcome_chart, port_chart, timeline_chart,
    timestamp_chart,
};
pub use render::{Chart, HEIGHT, WIDTH, render_png, render_svg};

use crate::analysis::Analysis;
use crate::table::SharedAttempts;

/// Every chart an analysis (with its records kept) can draw, in report order. The
/// timestamp chart needs a client address that sent timestamps. `attempts`: the analysis's
/// SYNs chained into attempts, or to be chained.
pub fn all_charts(
    analysis: &Analysis,
    client_time_wait_ns: i64,
    attempts: &SharedAttempts,
) -> Vec<Chart> {
    let mut charts = Vec::new();
    if let Some(ts) = timestamp_chart(analysis) {
        charts.push(Chart::Timestamps(ts));
    }
    charts.push(Chart::Timeline(timeline_chart(analysis)));
    charts.push(Chart::Outcomes(outcome_chart(analysis, attempts)));
    charts.push(Chart::Ports(port_chart(analysis, client_time_wait_ns)));
    charts
}
