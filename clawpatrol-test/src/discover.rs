//! Finding fixture files: a file as given, or a directory's `*.json` (optionally recursive).

use std::path::{Path, PathBuf};

/// Why fixtures could not be found; rendered by the CLI with the reference's prefixes.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The path does not exist or cannot be read.
    #[error("resolve fixtures: {0}")]
    Resolve(String),
    /// A directory without fixtures.
    #[error("no .json fixtures under {0}")]
    Empty(String),
}

/// The fixture files under `path`, sorted lexicographically (paths printed as given).
pub fn fixture_files(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, DiscoverError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| DiscoverError::Resolve(format!("{}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, recursive, &mut out)?;
    out.sort();
    if out.is_empty() {
        return Err(DiscoverError::Empty(path.display().to_string()));
    }
    Ok(out)
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), DiscoverError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DiscoverError::Resolve(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| DiscoverError::Resolve(format!("{}: {e}", dir.display())))?;
        let p = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            if recursive {
                walk(&p, recursive, out)?;
            }
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}
