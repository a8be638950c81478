//! Output files appear whole or not at all: each is written under a temporary name in its
//! destination directory and renamed into place only when every file of the set is complete.
//! Until then (and if anything fails) the temporaries are removed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, PoisonError};

/// Temporary files not yet renamed or removed, for the interrupt handler to clean up.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// On Ctrl-C (or SIGTERM), remove the temporaries of unfinished outputs and exit with the
/// conventional status 130: nothing half-written is left, and no finished file was started.
fn clean_up_on_interrupt() {
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if let Ok(pending) = PENDING.lock() {
                for temp in pending.iter() {
                    let _ = std::fs::remove_file(temp);
                }
            }
            eprintln!("pawscope: interrupted: no output written");
            std::process::exit(130);
        });
    });
}

fn forget(temp: &Path) {
    if let Ok(mut pending) = PENDING.lock() {
        pending.retain(|p| p != temp);
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

/// Files staged in one directory, committed together. Threads may stage files side by side
/// (each writing its own).
pub struct StagedFiles {
    dir: PathBuf,
    /// Each staged file's temporary and final paths, in the order they were staged.
    staged: Mutex<Vec<(PathBuf, PathBuf)>>,
    committed: bool,
}

impl StagedFiles {
    /// Creates `dir` if needed.
    pub fn new(dir: &Path) -> Result<Self, WriteError> {
        clean_up_on_interrupt();
        std::fs::create_dir_all(dir).map_err(|e| WriteError {
            path: dir.to_path_buf(),
            message: format!("cannot create directory: {e}"),
        })?;
        Ok(StagedFiles {
            dir: dir.to_path_buf(),
            staged: Mutex::new(Vec::new()),
            committed: false,
        })
    }

    /// Writes `name` through `fill` into its temporary file.
    pub fn stage(
        &self,
        name: &str,
        fill: impl FnOnce(&mut BufWriter<File>) -> Result<(), String>,
    ) -> Result<(), WriteError> {
        clean_up_on_interrupt();
        let target = self.dir.join(name);
        let temp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        if let Ok(mut pending) = PENDING.lock() {
            pending.push(temp.clone());
        }
        self.staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((temp.clone(), target));
        let failed = |message: String| WriteError {
            path: temp.clone(),
            message,
        };
        let file = File::create(&temp).map_err(|e| failed(format!("cannot create: {e}")))?;
        let mut out = BufWriter::new(file);
        fill(&mut out).map_err(|e| failed(format!("cannot write: {e}")))?;
        let file = out
            .into_inner()
            .map_err(|e| failed(format!("cannot write: {}", e.error())))?;
        file.sync_all()
            .map_err(|e| failed(format!("cannot write: {e}")))
    }

    pub fn stage_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), WriteError> {
        self.stage(name, |out| out.write_all(bytes).map_err(|e| e.to_string()))
    }

    /// Moves every staged file into place; returns their paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, WriteError> {
        let staged = self
            .staged
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for (temp, target) in staged.iter() {
            std::fs::rename(temp, target).map_err(|e| WriteError {
                path: target.clone(),
                message: format!("cannot move the finished file into place: {e}"),
            })?;
            forget(temp);
        }
        self.committed = true;
        Ok(staged.iter().map(|(_, target)| target.clone()).collect())
    }
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        if !self.committed {
            for (temp, _) in self
                .staged
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                let _ = std::fs::remove_file(temp);
                forget(temp);
            }
        }
    }
}

/// Writes one file atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| WriteError {
            path: path.to_path_buf(),
            message: "not a file name".to_string(),
        })?;
    let staged = StagedFiles::new(dir)?;
    staged.stage_bytes(name, bytes)?;
    staged.commit().map(|_| ())
}
