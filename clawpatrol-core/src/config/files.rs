//! Reading config files (a file, or a directory of `*.hcl`) and `<<file:NAME>>` inlining.

use std::path::{Path, PathBuf};

use super::diag::{ConfigError, Diagnostic};
use super::source::SourceFile;

/// The files of one load and the directory `<<file:>>` paths are relative to.
pub(crate) struct ConfigFiles {
    /// The files, in load order.
    pub files: Vec<SourceFile>,
    /// The config directory.
    pub dir: PathBuf,
}

fn io_error(path: &Path, err: &std::io::Error) -> ConfigError {
    ConfigError {
        diagnostics: vec![
            Diagnostic::error(format!("cannot read `{}`", path.display()))
                .with_detail(err.to_string()),
        ],
    }
}

/// Reads `path`: a single file, or every direct `*.hcl` child of a directory (not starting
/// with `.`), sorted by file name.
pub(crate) fn read_path(path: &Path) -> Result<ConfigFiles, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if !meta.is_dir() {
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Ok(ConfigFiles {
            files: vec![SourceFile::new(path.display().to_string(), text)],
            dir,
        });
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io_error(path, &e))? {
        let entry = entry.map_err(|e| io_error(path, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".hcl") {
            continue;
        }
        let is_file = entry
            .file_type()
            .map(|t| t.is_file() || t.is_symlink())
            .unwrap_or(false);
        if is_file {
            names.push(name);
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(ConfigError {
            diagnostics: vec![
                Diagnostic::error("no HCL config files found").with_detail(format!(
                    "the directory `{}` holds no `*.hcl` files",
                    path.display()
                )),
            ],
        });
    }
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let p = path.join(&name);
        let text = std::fs::read_to_string(&p).map_err(|e| io_error(&p, &e))?;
        files.push(SourceFile::new(p.display().to_string(), text));
    }
    Ok(ConfigFiles {
        files,
        dir: path.to_path_buf(),
    })
}

/// Why a `<<file:NAME>>` marker could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IncludeError {
    /// The file could not be read.
    #[error("cannot inline file `{name}`")]
    Unreadable {
        /// The name in the marker.
        name: String,
        /// The I/O error text.
        why: String,
    },
    /// `<<file:` without a closing `>>`.
    #[error("unterminated `<<file:...>>` marker")]
    Unterminated,
}

/// Expands every `<<file:NAME>>` marker in `text` (relative names are joined with `dir`).
/// On an unreadable file the marker is removed and the error recorded; expansion goes on.
pub(crate) fn expand_includes(text: &str, dir: &Path) -> (String, Vec<IncludeError>) {
    const OPEN: &str = "<<file:";
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let Some(end) = after.find(">>") else {
            errors.push(IncludeError::Unterminated);
            out.push_str(&rest[i..]);
            return (out, errors);
        };
        let name = &after[..end];
        let p = Path::new(name);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        match std::fs::read_to_string(&full) {
            Ok(content) => out.push_str(&content),
            Err(e) => errors.push(IncludeError::Unreadable {
                name: name.to_string(),
                why: format!("{}: {e}", full.display()),
            }),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let dir = std::env::temp_dir().join(format!("cp-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.pem"), "PEM").unwrap();
        let (s, e) = expand_includes("x<<file:a.pem>>y<<file:a.pem>>", &dir);
        assert_eq!(s, "xPEMyPEM");
        assert!(e.is_empty());
        let (s, e) = expand_includes("<<file:nope>>z", &dir);
        assert_eq!(s, "z");
        assert!(matches!(e[0], IncludeError::Unreadable { .. }));
        let (_, e) = expand_includes("<<file:a.pem", &dir);
        assert_eq!(e, vec![IncludeError::Unterminated]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
