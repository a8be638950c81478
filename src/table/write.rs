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

/// A table encoded in a file format.
#[derive(Debug)]
pub struct EncodedTable {
    pub name: &'static str,
    pub rows: usize,
    pub bytes: Vec<u8>,
    /// The format's file name extension: the table is staged under the format it was
    /// encoded in.
    pub extension: &'static str,
}

/// Builds the `wanted` tables and encodes each in `format` as soon as it is built (see
/// [`build_tables`]), in [`super::TABLE_NAMES`] order.
pub fn encode_tables(
    inputs: TableInputs<'_>,
    wanted: &[&str],
    format: TableFormat,
) -> Result<Vec<EncodedTable>, String> {
    let encoded = build_tables(inputs, wanted, |name, mut frame| {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &mut frame, format).map(|()| EncodedTable {
            name,
            rows: frame.height(),
            bytes,
            extension: format.extension(),
        })
    })
    .map_err(|e| format!("building tables: {e}"))?;
    encoded
        .into_iter()
        .map(|(name, table)| table.map_err(|e| format!("encoding the {name} table: {e}")))
        .collect()
}

/// Stages each table as `name.ext`.
pub fn stage_tables(staged: &mut StagedFiles, tables: &[EncodedTable]) -> Result<(), WriteError> {
    for table in tables {
        let file_name = format!("{}.{}", table.name, table.extension);
        staged.stage_bytes(&file_name, &table.bytes)?;
    }
    Ok(())
}

/// Writes each table to `dir/name.ext`; all or nothing. Returns the paths written.
pub fn write_tables(dir: &Path, tables: &[EncodedTable]) -> Result<Vec<PathBuf>, WriteError> {
    let mut staged = StagedFiles::new(dir)?;
    stage_tables(&mut staged, tables)?;
    staged.commit()
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
