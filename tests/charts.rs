//! Charts and the report on the recorded samples: the chart data agrees with the analysis
//! (markers = verdicts, lanes = tuples, bars = attempts), the images decode and are not blank,
//! and report.html is a self-contained page with every section.

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, analysis_with_records, analyze_json, pawscope, repo_root};
use pawscope::analysis::Analysis;
use pawscope::chart::{
    Chart, MAX_LANES, SecondOutcomes, all_charts, outcome_chart, port_chart, render_png,
    render_svg, timeline_chart, timestamp_chart,
};
use pawscope::flow::Verdict;
use pawscope::table::SharedAttempts;

const MINUTE_NS: i64 = 60_000_000_000;

fn sample(name: &str) -> PathBuf {
    repo_root().join("samples").join(name)
}

fn default_analysis(name: &str) -> Analysis {
    analysis_with_records(&sample(name), pawscope::analysis::DEFAULT_PORT_RANGE)
}

#[test]
fn timestamp_markers_are_the_verdicts_of_the_addresses_syns() {
    let a = default_analysis("nat-paws-reject.pcap");
    let chart = timestamp_chart(&a).expect("an address with timestamps");
    let json = analyze_json(&sample("nat-paws-reject.pcap"), &[]);
    // Every SYN of this capture comes from the one NAT address and carries a TSval.
    assert_eq!(
        chart.points.len() as u64,
        json["syn"]["total"].as_u64().unwrap()
    );
    let count = |v: Verdict| chart.points.iter().filter(|p| p.verdict == v).count() as u64;
    assert_eq!(
        count(Verdict::Accepted),
        json["verdicts"]["accepted"].as_u64().unwrap()
    );
    assert_eq!(
        count(Verdict::PawsReject),
        json["verdicts"]["paws_reject"].as_u64().unwrap()
    );
    // Each point sits on one of the address's clocks.
    assert!(
        chart
            .points
            .iter()
            .all(|p| p.clock >= 1 && p.clock as usize <= chart.clocks)
    );
    // Every PAWS-rejected SYN has the ts_recent it lost to, and that ts_recent is newer.
    for p in chart
        .points
        .iter()
        .filter(|p| p.verdict == Verdict::PawsReject)
    {
        let recent = p.ts_recent.expect("ts_recent");
        assert!((recent.wrapping_sub(p.tsval) as i32) > 0);
    }
    assert!(chart.per_connection);
}

#[test]
fn timeline_lanes_cover_the_tuples() {
    for name in ["nat-paws-reject.pcap", "client-port-exhaustion.pcap"] {
        let a = default_analysis(name);
        let chart = timeline_chart(&a);
        let json = analyze_json(&sample(name), &[]);
        let tuples = json["tuples"].as_u64().unwrap() as usize;
        assert_eq!(chart.total_tuples, tuples, "{name}");
        assert_eq!(chart.lanes.len(), tuples.min(MAX_LANES), "{name}");
        let bars: usize = chart.lanes.iter().map(|l| l.bars.len()).sum();
        let ticks: usize = chart.lanes.iter().map(|l| l.syns.len()).sum();
        if tuples <= MAX_LANES {
            assert_eq!(
                bars as u64,
                json["connections"].as_u64().unwrap(),
                "{name}: one bar per incarnation"
            );
            assert_eq!(
                ticks as u64,
                json["syn"]["total"].as_u64().unwrap(),
                "{name}"
            );
        }
        // The busiest tuples, busiest first: every tuple's (rejected SYNs, SYNs) counted
        // from the records, ranked, against the lanes drawn.
        let records = a.records.as_ref().unwrap();
        let mut counts: std::collections::BTreeMap<_, (usize, usize)> = records
            .incarnations
            .iter()
            .map(|i| (i.tuple, (0, 0)))
            .collect();
        for syn in &records.syns {
            let (rejects, syns) = counts.entry(syn.tuple).or_default();
            *rejects += usize::from(syn.verdict.is_reject());
            *syns += 1;
        }
        let mut ranked: Vec<_> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let drawn: Vec<_> = chart.lanes.iter().map(|l| l.tuple).collect();
        let expected: Vec<_> = ranked.iter().take(MAX_LANES).map(|(t, _)| *t).collect();
        assert_eq!(drawn, expected, "{name}");
        if name == "nat-paws-reject.pcap" {
            assert!(ranked[0].1.0 > 0, "{name}: tuples with rejects drawn first");
        }
        // Lanes within the capture's span.
        assert!(
            chart
                .lanes
                .iter()
                .flat_map(|l| &l.bars)
                .all(|(a, b)| *a >= 0.0 && a <= b && *b <= chart.end + 1e-9)
        );
    }
}

#[test]
fn outcome_bars_add_up_to_the_attempts() {
    for name in ["nat-paws-reject.pcap", "rfc1337.pcap"] {
        let a = default_analysis(name);
        let chart = outcome_chart(&a, &SharedAttempts::default());
        let json = analyze_json(&sample(name), &[]);
        let sum = |f: fn(&SecondOutcomes) -> u32| chart.seconds.iter().map(f).sum::<u32>() as u64;
        let established = sum(|s| s.first_try) + sum(|s| s.after_rejection);
        assert_eq!(
            established,
            json["attempts"]["established"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            sum(|s| s.failed),
            json["attempts"]["failed"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            sum(|s| s.after_rejection),
            json["attempts"]["delayed"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            chart.delays_ms.len() as u64,
            json["attempts"]["established"].as_u64().unwrap()
        );
        assert!(chart.seconds.windows(2).all(|w| w[0].second < w[1].second));
    }
}

#[test]
fn port_series_reach_the_range_where_it_was_exhausted() {
    let a = analysis_with_records(&sample("client-port-exhaustion.pcap"), (40000, 40049));
    let chart = port_chart(&a, MINUTE_NS);
    assert_eq!(chart.range_size, 50);
    assert_eq!(chart.series.len(), 2);
    for series in &chart.series {
        assert_eq!(
            series.steps.iter().map(|s| s.1).max(),
            Some(50),
            "{}",
            series.label
        );
        let at = series.exhausted.expect("exhausted");
        let first_full = series
            .steps
            .iter()
            .find(|s| s.1 == 50)
            .map(|s| s.0)
            .unwrap();
        assert!((first_full - at).abs() < 1e-9, "{}", series.label);
    }
}

/// Decodes a PNG: (width, height, distinct colours, share of non-white pixels).
fn png_stats(bytes: &[u8]) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(bytes);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png data");
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    let mut colours: Vec<&[u8]> = pixels.clone();
    colours.sort();
    colours.dedup();
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / pixels.len() as f64;
    (info.width, info.height, colours.len(), ink)
}

#[test]
fn every_chart_renders_a_png_and_an_svg_with_content() {
    let a = default_analysis("nat-paws-reject.pcap");
    let charts = all_charts(&a, MINUTE_NS, &SharedAttempts::default());
    assert_eq!(charts.len(), 4);
    for chart in &charts {
        let (w, h, colours, ink) = png_stats(&render_png(chart).expect("png"));
        assert_eq!((w, h), (1400, 800), "{}", chart.kind());
        assert!(colours > 10, "{}: {colours} colours", chart.kind());
        assert!(
            ink > 0.02 && ink < 0.9,
            "{}: {ink:.3} of the pixels drawn",
            chart.kind()
        );
        let svg = render_svg(chart).expect("svg");
        assert!(
            svg.contains("<svg") && svg.contains("seconds since 20")
                || matches!(chart, Chart::Outcomes(_)),
            "{}",
            chart.kind()
        );
    }
}

#[test]
fn report_writes_a_self_contained_page_and_its_files() {
    let dir = Scratch::new("report", "page").at("out");
    let out = pawscope(&[
        "report",
        sample("nat-paws-reject.pcap").to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let dom = tl::parse(&html, tl::ParserOptions::default()).expect("html parses");
    let parser = dom.parser();
    for id in ["facts", "findings", "charts", "worst-tuples", "nat"] {
        assert!(dom.get_element_by_id(id).is_some(), "section {id}");
    }
    let svgs = dom.query_selector("svg").expect("selector").count();
    assert_eq!(svgs, 4, "charts inlined as SVG");
    // Nothing to fetch: no external scripts, styles or images.
    for tag in ["script", "link", "img"] {
        assert_eq!(
            dom.query_selector(tag).expect("selector").count(),
            0,
            "{tag}"
        );
    }
    let findings = dom
        .get_element_by_id("findings")
        .unwrap()
        .get(parser)
        .unwrap()
        .inner_text(parser);
    assert!(findings.contains("PAWS"), "{findings}");
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    for kind in ["timestamps", "timeline", "outcomes", "ports"] {
        assert!(markdown.contains(&format!("({kind}.png)")), "{kind} linked");
        let (w, _, _, ink) = png_stats(&std::fs::read(dir.join(format!("{kind}.png"))).unwrap());
        assert_eq!(w, 1400);
        assert!(ink > 0.02);
        assert!(dir.join(format!("{kind}.svg")).exists());
    }
    for table in pawscope::table::TABLE_NAMES {
        assert!(dir.join(format!("{table}.parquet")).exists(), "{table}");
    }
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn report_html_renders_in_a_headless_browser() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        eprintln!("skipped: no Chromium installed (.ci/run installs it)");
        return;
    };
    let dir = Scratch::new("report", "shot").at("out");
    let out = pawscope(&[
        "report",
        sample("rfc1337.pcap").to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let shot = dir.join("screenshot.png");
    let profile = dir.join("profile");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,3000",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.join("report.html").display()))
        .output()
        .expect("run chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (w, h, colours, ink) = png_stats_any(&std::fs::read(&shot).unwrap());
    assert!(w >= 1000 && h >= 1000, "{w}x{h}");
    assert!(
        colours > 20 && ink > 0.02,
        "blank page? {colours} colours, {ink:.3} ink"
    );
}

/// Like `png_stats` for RGB or RGBA screenshots.
fn png_stats_any(bytes: &[u8]) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(bytes);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png data");
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| &p[..3])
        .collect();
    let mut colours = pixels.clone();
    colours.sort();
    colours.dedup();
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / pixels.len() as f64;
    (info.width, info.height, colours.len(), ink)
}
