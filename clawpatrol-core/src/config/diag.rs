//! Config diagnostics: errors and warnings with file, line, column and the source line.

use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config is refused.
    Error,
    /// The config loads, but something deserves attention.
    Warning,
}

/// A resolved position in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// 1-based column one past the end of the span on the same line (at least `column + 1`).
    pub end_column: usize,
    /// The text of the line, without its newline.
    pub source_line: String,
}

/// One error or warning of a config load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A one-line summary, lower-case, no trailing period.
    pub summary: String,
    /// Further explanation.
    pub detail: Option<String>,
    /// The offending block, e.g. `rule "github-reads"`.
    pub block: Option<String>,
    /// Where in the source.
    pub location: Option<Location>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with a summary only.
    pub fn error(summary: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: None,
            block: None,
            location: None,
            help: None,
        }
    }

    /// A warning with a summary only.
    pub fn warning(summary: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(summary)
        }
    }

    /// Adds a detail text.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Diagnostic {
        self.detail = Some(detail.into());
        self
    }

    /// Names the offending block.
    pub fn with_block(mut self, block: impl Into<String>) -> Diagnostic {
        self.block = Some(block.into());
        self
    }

    /// Adds a fix-it hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Sets the location.
    pub fn at(mut self, location: Option<Location>) -> Diagnostic {
        self.location = location;
        self
    }

    /// `file:line:col` of the diagnostic, if it has a location.
    pub fn position(&self) -> Option<String> {
        self.location
            .as_ref()
            .map(|l| format!("{}:{}:{}", l.file, l.line, l.column))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.summary)?;
        if let Some(block) = &self.block {
            write!(f, " (in {block})")?;
        }
        writeln!(f)?;
        if let Some(l) = &self.location {
            let num = l.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad}--> {}:{}:{}", l.file, l.line, l.column)?;
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {}", l.source_line)?;
            let lead: String = l
                .source_line
                .chars()
                .take(l.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = l.end_column.saturating_sub(l.column).max(1);
            writeln!(f, "{pad} | {lead}{}", "^".repeat(width))?;
        }
        if let Some(d) = &self.detail {
            for line in d.lines() {
                writeln!(f, "  = {line}")?;
            }
        }
        if let Some(h) = &self.help {
            writeln!(f, "  = help: {h}")?;
        }
        Ok(())
    }
}

/// A refused config: every error of the load (and its warnings), in source order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The errors and warnings; at least one is an error.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// The first error (the one bindings surface as file/line/column).
    pub fn first(&self) -> Option<&Diagnostic> {
        self.errors().next()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        let n = self.errors().count();
        write!(f, "{n} error{} in config", if n == 1 { "" } else { "s" })
    }
}
