//! Source files of a config load, and byte offsets → line/column.

use super::diag::Location;

/// One config file's text with a line index.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Indexes `text`, known to the user as `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The name diagnostics show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The location of the byte range `start..end` (clamped to the text).
    pub fn location(&self, start: usize, end: usize) -> Location {
        let start = floor_char(&self.text, start.min(self.text.len()));
        let end = floor_char(&self.text, end.clamp(start, self.text.len()));
        let line_idx = match self.line_starts.binary_search(&start) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_idx];
        let line_end = self.text[line_start..]
            .find('\n')
            .map(|i| line_start + i)
            .unwrap_or(self.text.len());
        let source_line = self.text[line_start..line_end].trim_end_matches('\r');
        let column = self.text[line_start..start].chars().count() + 1;
        let end_on_line = end.min(line_end);
        let end_column = (self.text[line_start..end_on_line].chars().count() + 1).max(column + 1);
        Location {
            file: self.name.clone(),
            line: line_idx + 1,
            column,
            end_column,
            source_line: source_line.to_string(),
        }
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let f = SourceFile::new("a.hcl", "one\n  two\nthree");
        let l = f.location(6, 9);
        assert_eq!((l.line, l.column, l.end_column), (2, 3, 6));
        assert_eq!(l.source_line, "  two");
        let l = f.location(0, 0);
        assert_eq!((l.line, l.column, l.end_column), (1, 1, 2));
        let l = f.location(100, 200);
        assert_eq!(l.line, 3);
    }
}
