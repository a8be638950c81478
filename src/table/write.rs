//! Writes tables as Parquet, CSV or JSON, atomically: every file is written under a
//! temporary name beside its destination and renamed into place only when all are complete,
//! so a failure never leaves a half-written table behind.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use polars::prelude::*;

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

/// An output that could not be written: one line naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for WriteError {}

/// Writes each `(name, frame)` to `dir/name.ext`; all or nothing. Returns the paths written.
pub fn write_tables(
    dir: &Path,
    tables: &mut [(&str, DataFrame)],
    format: TableFormat,
) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|e| WriteError {
        path: dir.to_path_buf(),
        message: format!("cannot create directory: {e}"),
    })?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        for (name, frame) in tables.iter_mut() {
            let target = dir.join(format!("{name}.{}", format.extension()));
            let temp = dir.join(format!(
                ".{name}.{}.{}.tmp",
                format.extension(),
                std::process::id()
            ));
            staged.push((temp.clone(), target));
            write_one(&temp, frame, format)?;
        }
        for (temp, target) in &staged {
            std::fs::rename(temp, target).map_err(|e| WriteError {
                path: target.clone(),
                message: format!("cannot move the finished file into place: {e}"),
            })?;
        }
        Ok(staged.iter().map(|(_, target)| target.clone()).collect())
    })();
    if result.is_err() {
        for (temp, _) in &staged {
            let _ = std::fs::remove_file(temp);
        }
    }
    result
}

fn write_one(path: &Path, frame: &mut DataFrame, format: TableFormat) -> Result<(), WriteError> {
    let failed = |message: String| WriteError {
        path: path.to_path_buf(),
        message,
    };
    let file = File::create(path).map_err(|e| failed(format!("cannot create: {e}")))?;
    let mut out = BufWriter::new(file);
    match format {
        TableFormat::Parquet => ParquetWriter::new(&mut out).finish(frame).map(|_| ()),
        TableFormat::Csv => CsvWriter::new(&mut out).finish(frame),
        TableFormat::Json => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::Json)
            .finish(frame),
    }
    .map_err(|e| failed(format!("cannot write: {e}")))?;
    let file = out
        .into_inner()
        .map_err(|e| failed(format!("cannot write: {}", e.error())))?;
    file.sync_all()
        .map_err(|e| failed(format!("cannot write: {e}")))
}
