//! The export tables on the bundled samples: documented columns and types, row counts that
//! agree with the summary and the kernel, and files that read back identical.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Scratch, analysis_with_records, analyze_json, pawscope, read_json, repo_root};
use pawscope::analysis::Analysis;
use pawscope::table::{
    SharedAttempts, TABLE_NAMES, TableInputs, Tables, attempts_frame, build_tables, chain_attempts,
    connections_frame, nat_hosts_frame, reuse_frame, syns_frame, ts_events_frame,
};
use polars::prelude::*;
use serde_json::Value;

fn samples() -> Vec<(String, PathBuf, Value)> {
    let dir = repo_root().join("samples");
    let mut found: Vec<(String, PathBuf, Value)> = std::fs::read_dir(&dir)
        .expect("samples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix(".truth.json")?
                .to_string();
            Some((
                name.clone(),
                dir.join(format!("{name}.pcap")),
                read_json(&p),
            ))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The analysis the CLI's default settings give, with every record kept.
fn analysis_of(pcap: &Path) -> Analysis {
    analysis_with_records(pcap, pawscope::analysis::DEFAULT_PORT_RANGE)
}

fn tables_of(analysis: &Analysis) -> Tables {
    let records = analysis.records.as_ref().expect("records kept");
    Tables::build(&records.syns, &records.incarnations, &analysis.nat).expect("tables")
}

/// `## name` sections of docs/tables.md, each with its `| column | type | ...` rows.
fn documented_columns() -> BTreeMap<String, Vec<(String, String)>> {
    let docs = std::fs::read_to_string(repo_root().join("docs/tables.md")).expect("docs/tables.md");
    let mut tables: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = None;
    for line in docs.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            current = Some(name.trim().to_string());
            tables.insert(name.trim().to_string(), Vec::new());
        } else if let (Some(table), Some(row)) = (&current, line.strip_prefix("| ")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            if cells.len() >= 4 && cells[0] != "column" && !cells[0].starts_with("---") {
                tables
                    .get_mut(table)
                    .unwrap()
                    .push((cells[0].to_string(), cells[1].to_string()));
            }
        }
    }
    tables
}

fn count(frame: &DataFrame, column: &str, value: &str) -> usize {
    frame
        .column(column)
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .filter(|v| *v == Some(value))
        .count()
}

fn nulls(frame: &DataFrame, column: &str) -> usize {
    frame.column(column).unwrap().null_count()
}

#[test]
fn every_column_is_documented_with_its_type_and_nothing_else_exists() {
    let documented = documented_columns();
    assert_eq!(
        documented
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .iter()
            .collect::<std::collections::BTreeSet<_>>(),
        TABLE_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter()
            .collect(),
    );
    let (_, pcap, _) = &samples()[0];
    let tables = tables_of(&analysis_of(pcap));
    for name in TABLE_NAMES {
        let frame = tables.get(name).unwrap();
        let actual: Vec<(String, String)> = frame
            .schema()
            .iter()
            .map(|(column, dtype)| (column.to_string(), dtype.to_string()))
            .collect();
        assert_eq!(
            actual, documented[name],
            "table {name}: columns and types differ from docs/tables.md"
        );
    }
}

#[test]
fn row_counts_agree_with_the_summary_and_the_kernel() {
    for (name, pcap, truth) in samples() {
        let analysis = analysis_of(&pcap);
        let tables = tables_of(&analysis);
        let summary = analyze_json(&pcap, &[]);
        let passive_opens = truth["server_counters"]["TcpPassiveOpens"]
            .as_u64()
            .unwrap() as usize;

        assert_eq!(
            tables.syns.height() as u64,
            summary["syn"]["total"].as_u64().unwrap(),
            "{name}: syns"
        );
        let reuse = summary["reuse"]["within_2msl"].as_u64().unwrap()
            + summary["reuse"]["after_2msl"].as_u64().unwrap();
        assert_eq!(tables.reuse.height() as u64, reuse, "{name}: reuse rows");
        let within = tables
            .reuse
            .column("within_2msl")
            .unwrap()
            .bool()
            .unwrap()
            .sum()
            .unwrap_or(0);
        assert_eq!(
            u64::from(within),
            summary["reuse"]["within_2msl"].as_u64().unwrap(),
            "{name}"
        );

        // connections = TcpPassiveOpens + handshakes the server answered that never completed.
        let completed = tables.connections.height() - nulls(&tables.connections, "handshake_time");
        assert_eq!(completed, passive_opens, "{name}: completed handshakes");
        let failed = nulls(&tables.connections, "handshake_time");
        assert_eq!(
            tables.connections.height(),
            passive_opens + failed,
            "{name}"
        );
        let server_tw = count(&tables.connections, "time_wait_holder", "server") as u64;
        assert_eq!(
            server_tw,
            truth["server_counters"]["TcpExtTW"].as_u64().unwrap(),
            "{name}: TIME_WAIT entries"
        );

        // Every successful client connect shows up as an established attempt.
        let established = count(&tables.attempts, "outcome", "established");
        assert_eq!(
            established as u64,
            truth["clients"]["successes"].as_u64().unwrap(),
            "{name}: established attempts"
        );
        assert!(
            tables.attempts.height() as u64 <= truth["clients"]["attempts"].as_u64().unwrap(),
            "{name}"
        );
        let syns_in_attempts: u64 = tables
            .attempts
            .column("syns")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .map(u64::from)
            .sum();
        assert_eq!(
            syns_in_attempts,
            tables.syns.height() as u64,
            "{name}: every SYN in one attempt"
        );
        let nat = summary["nat"].as_array().unwrap();
        let clocks: u64 = nat.iter().map(|a| a["clocks"].as_u64().unwrap()).sum();
        assert_eq!(
            tables.nat_hosts.height() as u64,
            clocks,
            "{name}: nat_hosts rows"
        );
        let decreases: u64 = nat
            .iter()
            .map(|a| a["ts_decreases"].as_u64().unwrap())
            .sum();
        assert_eq!(
            tables.ts_events.height() as u64,
            decreases,
            "{name}: ts_events rows"
        );
        for verdict in [
            "accepted",
            "paws_reject",
            "seq_reject",
            "no_listener",
            "unknown",
        ] {
            assert_eq!(
                count(&tables.syns, "verdict", verdict) as u64,
                summary["verdicts"][verdict].as_u64().unwrap(),
                "{name}: {verdict}"
            );
        }
    }
}

#[test]
fn nat_port_moves_are_chained_into_one_attempt() {
    // In the NAT samples a rejected SYN's retransmission often leaves from another port.
    let moved: usize = samples()
        .iter()
        .map(|(_, pcap, _)| {
            let tables = tables_of(&analysis_of(pcap));
            let ports = tables
                .attempts
                .column("public_ports")
                .unwrap()
                .u32()
                .unwrap()
                .clone();
            ports.iter().flatten().filter(|p| *p > 1).count()
        })
        .sum();
    assert!(
        moved > 0,
        "no attempt moved ports: chaining is not exercised"
    );
}

fn export(pcap: &Path, dir: &Path, format: &str) -> std::process::Output {
    export_with(pcap, dir, &["--format", format])
}

/// `pawscope export PCAP -o DIR OPTIONS...`.
fn export_with(pcap: &Path, dir: &Path, options: &[&str]) -> std::process::Output {
    let mut args = vec![
        "export",
        pcap.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    pawscope(&args)
}

/// An output folder not made yet, for the command to make.
fn scratch(name: &str) -> Scratch {
    Scratch::new("tables", name).at("out")
}

#[test]
fn parquet_export_reads_back_identical_frames() {
    let (_, pcap, _) = &samples()[0];
    let dir = scratch("parquet");
    let out = export(pcap, &dir, "parquet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = tables_of(&analysis_of(pcap));
    for name in TABLE_NAMES {
        let file = std::fs::File::open(dir.join(format!("{name}.parquet"))).expect(name);
        let back = ParquetReader::new(file).finish().expect("read parquet");
        assert!(
            back.equals_missing(tables.get(name).unwrap()),
            "{name} differs after a round trip"
        );
    }
}

#[test]
fn every_parquet_compression_reads_back_the_same_tables() {
    let (_, pcap, _) = &samples()[0];
    let tables = tables_of(&analysis_of(pcap));
    let mut sizes = BTreeMap::new();
    for codec in ["snappy", "zstd", "lz4", "none"] {
        let dir = scratch(&format!("codec-{codec}"));
        let out = export_with(pcap, &dir, &["--compression", codec]);
        assert!(
            out.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut bytes = 0;
        for name in TABLE_NAMES {
            let path = dir.join(format!("{name}.parquet"));
            bytes += std::fs::metadata(&path).unwrap().len();
            let back = ParquetReader::new(std::fs::File::open(&path).unwrap())
                .finish()
                .expect("read parquet");
            assert!(
                back.equals_missing(tables.get(name).unwrap()),
                "{codec} {name}"
            );
        }
        sizes.insert(codec, bytes);
    }
    // The option reaches the writer: each codec gives files of its own size, none the largest.
    assert!(sizes["zstd"] < sizes["snappy"], "{sizes:?}");
    assert!(
        sizes["snappy"] < sizes["none"] && sizes["lz4"] < sizes["none"],
        "{sizes:?}"
    );
}

#[test]
fn compression_asked_for_csv_is_refused_before_reading() {
    let (_, pcap, _) = &samples()[0];
    let dir = scratch("csv-compressed");
    let out = export_with(pcap, &dir, &["--format", "csv", "--compression", "zstd"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--compression") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(!dir.exists());
}

#[test]
fn csv_and_json_exports_hold_every_row() {
    let (_, pcap, _) = &samples()[0];
    let tables = tables_of(&analysis_of(pcap));
    let csv_dir = scratch("csv");
    assert!(export(pcap, &csv_dir, "csv").status.success());
    let json_dir = scratch("json");
    assert!(export(pcap, &json_dir, "json").status.success());
    for name in TABLE_NAMES {
        let rows = tables.get(name).unwrap().height();
        let csv = std::fs::read_to_string(csv_dir.join(format!("{name}.csv"))).unwrap();
        assert_eq!(
            csv.lines().count(),
            rows + 1,
            "{name}.csv: header plus rows"
        );
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(json_dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(json.as_array().map(Vec::len), Some(rows), "{name}.json");
    }
}

#[test]
fn only_the_chosen_tables_are_written() {
    let (_, pcap, _) = &samples()[0];
    let dir = scratch("chosen");
    let out = export_with(pcap, &dir, &["--tables", "syns,reuse", "--format", "csv"]);
    assert!(out.status.success());
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["reuse.csv", "syns.csv"]);
}

#[test]
fn a_failed_export_leaves_no_file_behind() {
    // Bad input: nothing is written at all.
    let dir = scratch("bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"not a capture at all").unwrap();
    let out_dir = dir.join("out");
    let out = export(&junk, &out_dir, "parquet");
    assert_eq!(out.status.code(), Some(2));
    assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().next().is_none());

    // An output directory that cannot be made: the error names it, and no temporary is left.
    let (_, pcap, _) = &samples()[0];
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"in the way").unwrap();
    let out = export(pcap, &blocker.join("tables"), "parquet");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a-file") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let mut leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    leftovers.sort();
    assert_eq!(leftovers, ["a-file", "junk.pcap"]);

    // A table that cannot be moved into place (a directory holds its name): the error names
    // it, no temporary file stays, and every table file present reads back whole.
    let out_dir = dir.join("tables");
    std::fs::create_dir_all(out_dir.join("syns.parquet")).unwrap();
    let out = export(pcap, &out_dir, "parquet");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("syns.parquet"), "{stderr}");
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "temporary file left: {name}");
        if path.is_file() {
            ParquetReader::new(std::fs::File::open(&path).unwrap())
                .finish()
                .expect(&name);
        }
    }
}

#[test]
fn any_choice_of_tables_is_built_as_each_table_alone() {
    // The two build threads share the tables out, and the syns and attempts tables wait for
    // the SYNs to be chained: whichever tables are asked for, each is what its own frame
    // function gives, and they come back in the documented order.
    let (_, pcap, _) = &samples()[0];
    let analysis = analysis_of(pcap);
    let records = analysis.records.as_ref().expect("records kept");
    let (attempts, ids) = chain_attempts(&records.syns);
    let alone = |name: &str| {
        match name {
            "connections" => connections_frame(&records.incarnations),
            "syns" => syns_frame(&records.syns, &ids),
            "attempts" => attempts_frame(&attempts),
            "reuse" => reuse_frame(&records.syns),
            "nat_hosts" => nat_hosts_frame(&analysis.nat),
            "ts_events" => ts_events_frame(&analysis.nat),
            _ => unreachable!(),
        }
        .unwrap()
    };
    assert!(alone("syns").height() > 0 && alone("connections").height() > 0);
    let choices: [&[&str]; 5] = [
        &["attempts"],
        &["syns", "reuse"],
        &["ts_events", "connections", "nat_hosts"],
        &[],
        &TABLE_NAMES,
    ];
    for wanted in choices {
        let chained = SharedAttempts::default();
        let inputs = TableInputs::new(records, &analysis.nat, &chained);
        let built = build_tables(inputs, wanted, |_, frame| frame).unwrap();
        let names: Vec<&str> = built.iter().map(|(name, _)| *name).collect();
        let expected: Vec<&str> = TABLE_NAMES
            .into_iter()
            .filter(|name| wanted.contains(name))
            .collect();
        assert_eq!(names, expected);
        for (name, frame) in built {
            assert!(frame.equals_missing(&alone(name)), "{name} for {wanted:?}");
        }
    }
}
