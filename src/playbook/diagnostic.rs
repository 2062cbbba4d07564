//! Problems found in a file, rendered as `file:line:col: message`, the source
//! line, a caret under the place, and a hint.

use std::fmt;
use std::ops::Range;

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
}

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub message: String,
    /// Byte range in the source; `None` for whole-file problems.
    pub span: Option<Range<usize>>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Diagnostic {
            level: Level::Error,
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>, span: Option<Range<usize>>) -> Self {
        Diagnostic {
            level: Level::Warning,
            message: message.into(),
            span,
            hint: None,
        }
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut off = offset;
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..off].chars().count() + 1;
    (line, col)
}

/// A diagnostic bound to its file and source text, ready to print.
pub struct Rendered<'a> {
    pub file: &'a str,
    pub src: &'a str,
    pub diag: &'a Diagnostic,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.diag.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        let Some(span) = &self.diag.span else {
            writeln!(f, "{}: {level}: {}", self.file, self.diag.message)?;
            if let Some(h) = &self.diag.hint {
                writeln!(f, "  = hint: {h}")?;
            }
            return Ok(());
        };
        let (line, col) = line_col(self.src, span.start);
        writeln!(
            f,
            "{}:{line}:{col}: {level}: {}",
            self.file, self.diag.message
        )?;
        let text = self.src.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string();
        writeln!(f, "{} |", " ".repeat(gutter.len()))?;
        writeln!(f, "{gutter} | {text}")?;
        // Underline the span on this line (at least one caret).
        let line_chars = text.chars().count();
        let span_chars = self
            .src
            .get(span.clone())
            .map_or(1, |s| s.lines().next().map_or(1, |l| l.chars().count()));
        let width = span_chars.clamp(1, line_chars.saturating_sub(col - 1).max(1));
        writeln!(
            f,
            "{} | {}{}",
            " ".repeat(gutter.len()),
            " ".repeat(col - 1),
            "^".repeat(width)
        )?;
        if let Some(h) = &self.diag.hint {
            writeln!(f, "{} = hint: {h}", " ".repeat(gutter.len()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_in_chars() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        let second_eq = src.rfind('=').unwrap();
        assert_eq!(line_col(src, second_eq), (2, 4));
    }

    #[test]
    fn renders_source_line_and_caret() {
        let src = "start = \"nope\"\n";
        let d = Diagnostic::error("unknown node `nope`", Some(8..14)).hint("did you mean `node`?");
        let out = Rendered {
            file: "p.toml",
            src,
            diag: &d,
        }
        .to_string();
        assert_eq!(
            out,
            "p.toml:1:9: error: unknown node `nope`\n  |\n1 | start = \"nope\"\n  |         ^^^^^^\n  = hint: did you mean `node`?\n"
        );
    }
}
