//! Draws the charts with plotters, as SVG text or PNG bytes. The font is compiled into the
//! binary, so rendering needs no system fonts.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::{
    OutcomeChart, PortChart, PortSeries, SecondOutcomes, TimelineChart, TimestampChart, TsPoint,
};
use crate::flow::{ObservedReply, Verdict};

pub const WIDTH: u32 = 1400;
pub const HEIGHT: u32 = 800;
const FONT: &str = "sans-serif";
static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// A chart ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Timestamps(TimestampChart),
    Timeline(TimelineChart),
    Outcomes(OutcomeChart),
    Ports(PortChart),
}

impl Chart {
    /// File-name stem and `--kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Chart::Timestamps(_) => "timestamps",
            Chart::Timeline(_) => "timeline",
            Chart::Outcomes(_) => "outcomes",
            Chart::Ports(_) => "ports",
        }
    }
}

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a font file checked into the repository: parsing cannot fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_DATA);
    });
}

pub fn render_svg(chart: &Chart) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

pub fn render_png(chart: &Chart) -> Result<Vec<u8>, String> {
    register_font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // The strongest setting spent ~1.3 G instructions on a report's four charts for
        // files a fifth smaller: the default level is the better trade for a report.
        encoder.set_compression(png::Compression::Default);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match chart {
        Chart::Timestamps(c) => draw_timestamps(root, c),
        Chart::Timeline(c) => draw_timeline(root, c),
        Chart::Outcomes(c) => draw_outcomes(root, c),
        Chart::Ports(c) => draw_ports(root, c),
    }
    .map_err(|e| e.to_string())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn verdict_color(verdict: Verdict) -> RGBColor {
    match verdict {
        Verdict::Accepted => RGBColor(0x2e, 0x8b, 0x57),
        Verdict::PawsReject => RGBColor(0xd6, 0x27, 0x28),
        Verdict::SeqReject => RGBColor(0xff, 0x7f, 0x0e),
        Verdict::PawsPassiveDrop => RGBColor(0x94, 0x67, 0xbd),
        Verdict::NoListener | Verdict::Unknown => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

const VERDICTS: [(Verdict, &str); 5] = [
    (Verdict::Accepted, "accepted"),
    (Verdict::PawsReject, "PAWS reject"),
    (Verdict::SeqReject, "sequence reject"),
    (Verdict::PawsPassiveDrop, "dropped by tw_recycle"),
    (Verdict::Unknown, "unknown / no listener"),
];

/// The time axis counts seconds from the capture's start, named in UTC.
fn time_axis(start_ns: i64) -> String {
    let start = crate::timefmt::rfc3339(start_ns);
    // Whole seconds are enough to anchor the axis.
    format!(
        "seconds since {} UTC",
        &start[..19.min(start.len())].replace('T', " ")
    )
}

fn title_style(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

fn draw_timestamps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &TimestampChart,
) -> DrawResult<DB> {
    let x_max = c.points.iter().map(|p| p.t).fold(1.0, f64::max) * 1.02;
    let y_max = c
        .points
        .iter()
        .flat_map(|p| [f64::from(p.tsval), p.ts_recent.map_or(0.0, f64::from)])
        .fold(1.0, f64::max)
        * 1.05;
    let model = if c.per_connection {
        "one clock per connection: offsets randomised per 4-tuple"
    } else {
        "one clock per host"
    };
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "SYN TSvals from {} to {}: {} clocks ({model})",
                c.address, c.server_address, c.clocks
            ),
            title_style(22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc(time_axis(c.start_ns))
        .y_desc("TSval (ticks)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .y_label_formatter(&|v| format!("{:.2e}", v))
        .draw()?;
    // The TIME_WAIT ts_recent each SYN met: a short black bar at the SYN's time.
    let half = x_max / 300.0;
    chart
        .draw_series(c.points.iter().filter_map(|p| {
            p.ts_recent.map(|recent| {
                PathElement::new(
                    vec![
                        (p.t - half, f64::from(recent)),
                        (p.t + half, f64::from(recent)),
                    ],
                    BLACK.stroke_width(2),
                )
            })
        }))?
        .label("ts_recent of the TIME_WAIT met")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    let at = |p: &TsPoint| (p.t, f64::from(p.tsval));
    let of = |verdict: Verdict| c.points.iter().filter(move |p| p.verdict == verdict);
    let color = verdict_color(Verdict::Accepted);
    chart
        .draw_series(
            of(Verdict::Accepted).map(|p| Circle::new(at(p), 4, clock_color(p.clock).filled())),
        )?
        .label("accepted (colour: its clock)")
        .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    let color = verdict_color(Verdict::PawsReject);
    chart
        .draw_series(of(Verdict::PawsReject).map(|p| Cross::new(at(p), 6, color.stroke_width(2))))?
        .label("PAWS reject")
        .legend(move |(x, y)| Cross::new((x + 8, y), 6, color.stroke_width(2)));
    let color = verdict_color(Verdict::SeqReject);
    chart
        .draw_series(of(Verdict::SeqReject).map(|p| TriangleMarker::new(at(p), 6, color.filled())))?
        .label("sequence reject")
        .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, color.filled()));
    let color = verdict_color(Verdict::PawsPassiveDrop);
    chart
        .draw_series(
            of(Verdict::PawsPassiveDrop).map(|p| Cross::new(at(p), 7, color.stroke_width(3))),
        )?
        .label("dropped by tw_recycle (simulated)")
        .legend(move |(x, y)| Cross::new((x + 8, y), 7, color.stroke_width(3)));
    let color = verdict_color(Verdict::Unknown);
    chart
        .draw_series(
            c.points
                .iter()
                .filter(|p| matches!(p.verdict, Verdict::Unknown | Verdict::NoListener))
                .map(|p| Circle::new(at(p), 4, color.stroke_width(1))),
        )?
        .label("unknown / no listener")
        .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.stroke_width(1)));
    chart
        .configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
}

/// One colour per clock, cycling through a palette made for telling series apart.
fn clock_color(clock: u32) -> RGBColor {
    let c = Palette99::pick(clock as usize).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn draw_timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &TimelineChart,
) -> DrawResult<DB> {
    let lanes = c.lanes.len().max(1);
    let x_max = c.end.max(1.0) * 1.02;
    let subtitle = if c.total_tuples > c.lanes.len() {
        format!(" ({} busiest of {} tuples)", c.lanes.len(), c.total_tuples)
    } else {
        String::new()
    };
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Tuple timeline{subtitle}: connections, TIME_WAIT, SYNs"),
            title_style(22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(260)
        .build_cartesian_2d(0f64..x_max, 0f64..lanes as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(time_axis(c.start_ns))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 17))
        .draw()?;
    let lane_y = |i: usize| i as f64;
    let conn = RGBColor(0x1f, 0x77, 0xb4);
    chart
        .draw_series(c.lanes.iter().enumerate().flat_map(|(i, l)| {
            l.bars.iter().map(move |(from, to)| {
                Rectangle::new(
                    [(*from, lane_y(i) + 0.3), (*to, lane_y(i) + 0.7)],
                    conn.filled(),
                )
            })
        }))?
        .label("connection")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], conn.filled()));
    // TIME_WAIT: an outlined tail with diagonal hatching; dark for the server, light for the client.
    let server_tw = RGBColor(0x44, 0x44, 0x44);
    let client_tw = RGBColor(0xaa, 0xaa, 0xaa);
    for (held_by_server, color, label) in [
        (true, server_tw, "TIME_WAIT held by the server"),
        (false, client_tw, "TIME_WAIT held by the client"),
    ] {
        let tails: Vec<(usize, f64, f64)> = c
            .lanes
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.time_waits
                    .iter()
                    .filter(move |t| t.2 == held_by_server)
                    .map(move |t| (i, t.0, t.1))
            })
            .collect();
        let step = x_max / 150.0;
        chart.draw_series(tails.iter().flat_map(|&(i, from, to)| {
            let mut lines = Vec::new();
            let mut x = from;
            while x < to {
                lines.push(PathElement::new(
                    vec![
                        (x, lane_y(i) + 0.35),
                        ((x + step / 2.0).min(to), lane_y(i) + 0.65),
                    ],
                    color.stroke_width(1),
                ));
                x += step;
            }
            lines
        }))?;
        chart
            .draw_series(tails.iter().map(|&(i, from, to)| {
                Rectangle::new(
                    [(from, lane_y(i) + 0.35), (to, lane_y(i) + 0.65)],
                    color.stroke_width(1),
                )
            }))?
            .label(label)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.stroke_width(2))
            });
    }
    // SYNs: ticks by verdict; a hollow top when the server sent nothing back.
    for (verdict, label) in VERDICTS {
        let color = verdict_color(verdict);
        let ticks: Vec<(usize, f64, ObservedReply)> = c
            .lanes
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.syns
                    .iter()
                    .filter(move |s| verdict_color(s.1) == color)
                    .map(move |s| (i, s.0, s.2))
            })
            .collect();
        if ticks.is_empty() {
            continue;
        }
        chart
            .draw_series(ticks.iter().map(|&(i, t, _)| {
                PathElement::new(
                    vec![(t, lane_y(i) + 0.1), (t, lane_y(i) + 0.9)],
                    color.stroke_width(2),
                )
            }))?
            .label(format!("SYN: {label}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x + 8, y - 6), (x + 8, y + 6)], color.stroke_width(2))
            });
        chart.draw_series(
            ticks
                .iter()
                .filter(|t| t.2 == ObservedReply::None)
                .map(|&(i, t, _)| Circle::new((t, lane_y(i) + 0.9), 3, WHITE.filled())),
        )?;
    }
    // Lane labels, drawn in the label area beside each lane's middle.
    for (i, lane) in c.lanes.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, lane_y(i) + 0.5));
        let label = format!("{} -> :{}", lane.tuple.client, lane.tuple.server.port());
        root.draw(&Text::new(label, (x - 250, y - 7), (FONT, 13).into_font()))?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
}

fn draw_outcomes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &OutcomeChart,
) -> DrawResult<DB> {
    let (left, right) = root.split_horizontally((WIDTH as f64 * 0.65) as u32);
    let x_min = c.seconds.first().map_or(0, |s| s.second) as f64;
    let x_max = c.seconds.last().map_or(1, |s| s.second + 1) as f64;
    let total = |s: &SecondOutcomes| s.first_try + s.after_rejection + s.failed;
    let y_max = c.seconds.iter().map(total).max().unwrap_or(1).max(1) as f64 * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("Connect attempts per second ({} policy)", c.policy),
            title_style(22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(x_min..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc(time_axis(c.start_ns))
        .y_desc("attempts (by first SYN)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()?;
    type Span = fn(&SecondOutcomes) -> (u32, u32);
    let kinds: [(&str, RGBColor, Span); 3] = [
        (
            "established at the first SYN",
            RGBColor(0x2e, 0x8b, 0x57),
            |s| (0, s.first_try),
        ),
        (
            "established after a rejection",
            RGBColor(0xff, 0x7f, 0x0e),
            |s| (s.first_try, s.first_try + s.after_rejection),
        ),
        ("failed", RGBColor(0xd6, 0x27, 0x28), |s| {
            (
                s.first_try + s.after_rejection,
                s.first_try + s.after_rejection + s.failed,
            )
        }),
    ];
    for (label, color, span) in kinds {
        chart
            .draw_series(c.seconds.iter().filter_map(|s| {
                let (from, to) = span(s);
                (to > from).then(|| {
                    Rectangle::new(
                        [
                            (s.second as f64 + 0.1, f64::from(from)),
                            (s.second as f64 + 0.9, f64::from(to)),
                        ],
                        color.filled(),
                    )
                })
            }))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;

    // Time to establish, in 20 buckets up to the worst.
    let worst = c.delays_ms.iter().copied().fold(1.0, f64::max);
    let width = worst / 20.0;
    let mut buckets = [0u32; 21];
    for d in &c.delays_ms {
        buckets[((d / width) as usize).min(20)] += 1;
    }
    let top = f64::from(*buckets.iter().max().unwrap_or(&1)).max(1.0) * 1.1;
    let mut hist = ChartBuilder::on(&right)
        .caption("Time to establish", title_style(20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..worst * 1.05 + width, 0f64..top)?;
    hist.configure_mesh()
        .x_desc("ms from first SYN to completed handshake")
        .y_desc("attempts")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;
    let bar = RGBColor(0x1f, 0x77, 0xb4);
    hist.draw_series(
        buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let from = i as f64 * width;
                Rectangle::new(
                    [(from, 0.0), (from + width * 0.9, f64::from(*n))],
                    bar.filled(),
                )
            }),
    )?;
    Ok(())
}

fn draw_ports<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &PortChart) -> DrawResult<DB> {
    let x_max = c.end.max(1.0) * 1.02;
    let peak = c
        .series
        .iter()
        .flat_map(|s| s.steps.iter().map(|p| p.1))
        .max()
        .unwrap_or(0);
    // A range far above what was used would flatten the lines: keep it off the scale then.
    let range_shown = f64::from(c.range_size) <= f64::from(peak.max(5)) * 4.0;
    let y_max = if range_shown {
        f64::from(peak.max(c.range_size).max(1)) * 1.1
    } else {
        f64::from(peak.max(5)) * 1.5
    };
    let range_note = if range_shown {
        format!("against a range of {}", c.range_size)
    } else {
        format!("(the range of {} is far above)", c.range_size)
    };
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Client ports held (open connections + client TIME_WAIT) {range_note}"),
            title_style(22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc(time_axis(c.start_ns))
        .y_desc("local ports held")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()?;
    let limit = RGBColor(0xd6, 0x27, 0x28);
    let range_line = range_shown.then(|| {
        PathElement::new(
            vec![
                (0.0, f64::from(c.range_size)),
                (x_max, f64::from(c.range_size)),
            ],
            limit.stroke_width(2),
        )
    });
    chart
        .draw_series(range_line)?
        .label("port range size")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], limit.stroke_width(2)));

    for (
        i,
        PortSeries {
            label,
            steps,
            exhausted,
        },
    ) in c.series.iter().enumerate()
    {
        // Palette colour 0 is the range line's red.
        let color = clock_color(i as u32 + 1);
        let mut points = Vec::with_capacity(steps.len() * 2 + 2);
        let mut last = 0u32;
        for &(t, n) in steps {
            points.push((t, f64::from(last)));
            points.push((t, f64::from(n)));
            last = n;
        }
        points.push((x_max, f64::from(last)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        if let Some(at) = exhausted {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*at, 0.0), (*at, y_max)],
                color.stroke_width(1),
            )))?;
            // One label per series, stacked low and left of the line: the filling steps
            // climb toward the upper right, so the lower right stays clear.
            chart.draw_series(std::iter::once(Text::new(
                format!(
                    "range exhausted ({})",
                    label.split(' ').next().unwrap_or_default()
                ),
                (*at - x_max * 0.22, y_max * (0.3 - 0.06 * i as f64)),
                (FONT, 14).into_font().color(&color),
            )))?;
        }
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
}
