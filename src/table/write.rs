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
    for (name, frame) in tables.iter_mut() {
        let file_name = format!("{name}.{}", format.extension());
        staged.stage(&file_name, |out| write_frame(out, frame, format))?;
    }
    Ok(())
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
