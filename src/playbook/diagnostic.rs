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

/// Characters of a source line shown at most, around the column.
const EXCERPT: usize = 120;

/// The part of `line` shown for column `col` (1-based, in characters), and
/// the column within it: the whole line when short, else [`EXCERPT`]
/// characters around the column with `…` where it was cut.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let n = line.chars().count();
    if n <= EXCERPT {
        return (line.to_owned(), col);
    }
    let from = col
        .saturating_sub(1 + EXCERPT / 2)
        .min(n.saturating_sub(EXCERPT));
    let mut out = String::new();
    let mut col_in = col - from;
    if from > 0 {
        out.push('…');
        col_in += 1;
    }
    out.extend(line.chars().skip(from).take(EXCERPT));
    if from + EXCERPT < n {
        out.push('…');
    }
    (out, col_in)
}

/// Where in `src` a TOML error that came without a position (the parser's
/// key-nesting limit, for one) happens: the start of the first line whose
/// prefix of the source already gives `message`. Found by bisecting on line
/// ends, so it costs about log2(lines) parses, and only on the error path.
pub fn locate_toml_error(src: &str, message: &str) -> Option<Range<usize>> {
    let has = |end: usize| {
        let (_, errors) = toml::de::DeTable::parse_recoverable(&src[..end]);
        errors
            .iter()
            .any(|e| e.span().is_none() && e.message().trim() == message.trim())
    };
    let ends: Vec<usize> = src
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain((!src.ends_with('\n')).then_some(src.len()))
        .collect();
    let last = *ends.last()?;
    if !has(last) {
        return None;
    }
    let (mut lo, mut hi) = (0usize, ends.len() - 1); // the answer is in lo..=hi
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if has(ends[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let start = if lo == 0 { 0 } else { ends[lo - 1] };
    let line = &src[start..ends[lo]];
    let indent = line.len() - line.trim_start().len();
    Some(start + indent..start + indent + 1)
}

/// 1-based line, column (in characters) and value of the first byte of
/// `bytes` that is not UTF-8, if any.
pub fn utf8_error_at(bytes: &[u8]) -> Option<(usize, usize, u8)> {
    let e = std::str::from_utf8(bytes).err()?;
    let bad = e.valid_up_to();
    let before = &bytes[..bad];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    Some((line, col, bytes.get(bad).copied().unwrap_or_default()))
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
        let full = self.src.lines().nth(line - 1).unwrap_or("");
        // A long line (a minified or hostile file) is shown around the
        // place only, so one diagnostic never floods the terminal.
        let (text, col) = excerpt(full, col);
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
    fn long_lines_are_cut_around_the_place() {
        let line = format!("a = {}1{}", "[".repeat(500), "]".repeat(500));
        let (text, col) = excerpt(&line, 300);
        assert_eq!(text.chars().count(), EXCERPT + 2);
        assert!(text.starts_with('…') && text.ends_with('…'));
        assert_eq!(text.chars().nth(col - 1), line.chars().nth(299));
        assert_eq!(excerpt("short", 2), ("short".to_owned(), 2));
    }

    #[test]
    fn spanless_toml_errors_are_located_by_line() {
        let deep = vec!["k"; 200].join(".");
        let src = format!("id = \"x\"\n\n  {deep} = 1\nz = 2\n");
        let (_, errors) = toml::de::DeTable::parse_recoverable(&src);
        let e = errors.iter().find(|e| e.span().is_none()).unwrap();
        let span = locate_toml_error(&src, e.message()).unwrap();
        assert_eq!(line_col(&src, span.start), (3, 3));
        assert_eq!(utf8_error_at(b"a\nb = \"caf\xe9\""), Some((2, 9, 0xE9)));
        assert_eq!(utf8_error_at(b"fine"), None);
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
