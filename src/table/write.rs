//! Writes tables as Parquet, CSV or JSON through [`StagedFiles`]: all appear, or none.

use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::build::{TableInputs, build_tables};
use crate::output::StagedFiles;
pub use crate::output::WriteError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet(ParquetCodec),
    Csv,
    /// A JSON array of row objects.
    Json,
}

/// How Parquet pages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCodec {
    /// Quick to write, read by every Parquet reader (pyarrow's default). Zstd's files are
    /// about 30 % smaller, but it spent about a sixth of `export`'s instructions.
    #[default]
    Snappy,
    Zstd,
    Lz4,
    None,
}

impl TableFormat {
    pub fn extension(&self) -> &'static str {
        match self {
            TableFormat::Parquet(_) => "parquet",
            TableFormat::Csv => "csv",
            TableFormat::Json => "json",
        }
    }
}

/// A table staged as a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedTable {
    pub rows: usize,
    /// The file's name in the staged directory: `name.ext`.
    pub file_name: String,
}

/// Builds the `wanted` tables (see [`build_tables`]) and stages each, encoded in `format`,
/// as `name.ext` on the thread that built it: the files are written while later tables are
/// still being built, rather than all at the end. Returns them in [`super::TABLE_NAMES`]
/// order.
pub fn stage_tables(
    staged: &StagedFiles,
    inputs: TableInputs<'_>,
    wanted: &[&str],
    format: TableFormat,
) -> Result<Vec<StagedTable>, String> {
    let built = build_tables(inputs, wanted, |name, mut frame| {
        let file_name = format!("{name}.{}", format.extension());
        staged
            .stage(&file_name, |out| write_frame(out, &mut frame, format))
            .map(|()| StagedTable {
                rows: frame.height(),
                file_name,
            })
    })
    .map_err(|e| format!("building tables: {e}"))?;
    built
        .into_iter()
        .map(|(_, table)| table.map_err(|e| e.to_string()))
        .collect()
}

/// Writes the `wanted` tables to `dir/name.ext` (see [`stage_tables`]); all or nothing.
pub fn write_tables(
    dir: &Path,
    inputs: TableInputs<'_>,
    wanted: &[&str],
    format: TableFormat,
) -> Result<Vec<(PathBuf, StagedTable)>, String> {
    let staged = StagedFiles::new(dir).map_err(|e| e.to_string())?;
    let tables = stage_tables(&staged, inputs, wanted, format)?;
    staged.commit().map_err(|e| e.to_string())?;
    Ok(tables
        .into_iter()
        .map(|table| (dir.join(&table.file_name), table))
        .collect())
}

fn write_frame(
    out: &mut impl Write,
    frame: &mut DataFrame,
    format: TableFormat,
) -> Result<(), String> {
    match format {
        TableFormat::Parquet(codec) => {
            let compression = match codec {
                ParquetCodec::Snappy => ParquetCompression::Snappy,
                ParquetCodec::Zstd => ParquetCompression::Zstd(None),
                ParquetCodec::Lz4 => ParquetCompression::Lz4Raw,
                ParquetCodec::None => ParquetCompression::Uncompressed,
            };
            ParquetWriter::new(out)
                .with_compression(compression)
                .finish(frame)
                .map(|_| ())
        }
        TableFormat::Csv => CsvWriter::new(out).finish(frame),
        TableFormat::Json => JsonWriter::new(out)
            .with_json_format(JsonFormat::Json)
            .finish(frame),
    }
    .map_err(|e| e.to_string())
}
