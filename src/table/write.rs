//! Writes tables as Parquet, CSV or JSON through [`StagedFiles`]: all appear, or none.

use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::output::StagedFiles;
pub use crate::output::WriteError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
    Csv,
    /// A JSON array of row objects.
    Json,
}

impl TableFormat {
    pub fn extension(&self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Csv => "csv",
            TableFormat::Json => "json",
        }
    }
}

/// Stages each `(name, frame)` as `name.ext`.
pub fn stage_tables(
    staged: &mut StagedFiles,
    tables: &mut [(&str, DataFrame)],
    format: TableFormat,
) -> Result<(), WriteError> {
    let encoded = encode_all(tables, format);
    for ((name, _), bytes) in tables.iter().zip(encoded) {
        let file_name = format!("{name}.{}", format.extension());
        staged.stage(&file_name, |out| {
            out.write_all(&bytes?).map_err(|e| e.to_string())
        })?;
    }
    Ok(())
}

/// Encodes every table on two threads, the biggest tables shared out first: an encoder
/// keeps about one core busy (a million-row table takes a second or more), and the tables
/// are independent.
fn encode_all(
    tables: &mut [(&str, DataFrame)],
    format: TableFormat,
) -> Vec<Result<Vec<u8>, String>> {
    let count = tables.len();
    let mut by_size: Vec<(usize, &mut DataFrame)> = tables
        .iter_mut()
        .map(|(_, frame)| frame)
        .enumerate()
        .collect();
    by_size.sort_by_key(|(_, frame)| std::cmp::Reverse(frame.estimated_size()));
    let (mut shares, mut loads) = ([Vec::new(), Vec::new()], [0usize; 2]);
    for (i, frame) in by_size {
        let lighter = usize::from(loads[1] < loads[0]);
        loads[lighter] += frame.estimated_size();
        shares[lighter].push((i, frame));
    }
    let encode = |share: Vec<(usize, &mut DataFrame)>| -> Vec<(usize, Result<Vec<u8>, String>)> {
        share
            .into_iter()
            .map(|(i, frame)| {
                let mut bytes = Vec::new();
                (i, write_frame(&mut bytes, frame, format).map(|()| bytes))
            })
            .collect()
    };
    let [first, second] = shares;
    let done = std::thread::scope(|scope| {
        let other = scope.spawn(|| encode(second));
        let mut done = encode(first);
        done.extend(crate::threads::join(other));
        done
    });
    let mut encoded: Vec<Result<Vec<u8>, String>> = (0..count).map(|_| Ok(Vec::new())).collect();
    for (i, result) in done {
        encoded[i] = result;
    }
    encoded
}

/// Writes each `(name, frame)` to `dir/name.ext`; all or nothing. Returns the paths written.
pub fn write_tables(
    dir: &Path,
    tables: &mut [(&str, DataFrame)],
    format: TableFormat,
) -> Result<Vec<PathBuf>, WriteError> {
    let mut staged = StagedFiles::new(dir)?;
    stage_tables(&mut staged, tables, format)?;
    staged.commit()
}

fn write_frame(
    out: &mut impl Write,
    frame: &mut DataFrame,
    format: TableFormat,
) -> Result<(), String> {
    match format {
        TableFormat::Parquet => ParquetWriter::new(out).finish(frame).map(|_| ()),
        TableFormat::Csv => CsvWriter::new(out).finish(frame),
        TableFormat::Json => JsonWriter::new(out)
            .with_json_format(JsonFormat::Json)
            .finish(frame),
    }
    .map_err(|e| e.to_string())
}
