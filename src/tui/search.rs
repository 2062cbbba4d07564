//! `/` search in the evidence: the query, the current match, and where the
//! matches are.
//!
//! Invariants: matching is ASCII case-insensitive unless the query holds an
//! upper-case letter (smart case, as in less and ripgrep), so a match's byte
//! range is the same in the shown text and always on char boundaries; at
//! most [`MAX_HITS`] matches are counted and the query holds at most
//! [`MAX_QUERY`] bytes. Matches are recomputed from the evidence whenever
//! they are needed, so they can never point into text that changed. Matches
//! are marked by reverse video (the current one also bold and underlined,
//! with a mark at the start of its line), never by colour alone.

use ratatui::style::{Modifier, Style};
use ratatui::text::Span;

use crate::tui::evidence;

/// Longest query kept.
pub const MAX_QUERY: usize = 256;
/// Matches counted at most.
pub const MAX_HITS: usize = 10_000;

/// What a search key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOp {
    /// `/`: start a new query.
    Open,
    /// Add a character to the query (the view jumps to the first match).
    Type(char),
    /// Delete the last character of the query.
    Erase,
    /// Enter: keep the query and its highlights; `n`/`N` move between them.
    Accept,
    /// `n`: the next match (wraps around).
    Next,
    /// `N`: the previous match (wraps around).
    Prev,
    /// Esc: no search any more.
    Clear,
}

/// An active search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    /// The query is being typed.
    pub editing: bool,
    /// Index of the current match.
    pub current: usize,
}

/// Where a match is: a line of the evidence and a byte range in its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

/// Every match of `query` in `lines`, in order (none for an empty query).
pub fn hits(lines: &[evidence::Line], query: &str) -> Vec<Hit> {
    if query.is_empty() {
        return Vec::new();
    }
    let fold = !query.chars().any(char::is_uppercase);
    let needle = if fold {
        query.to_ascii_lowercase()
    } else {
        query.to_owned()
    };
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let hay = if fold {
            std::borrow::Cow::Owned(l.text.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(l.text.as_str())
        };
        for (start, m) in hay.match_indices(needle.as_str()) {
            if out.len() >= MAX_HITS {
                return out;
            }
            out.push(Hit {
                line: i,
                start,
                end: start + m.len(),
            });
        }
    }
    out
}

impl Search {
    /// The current match among `hits` (clamped, so never out of range).
    pub fn current_hit(&self, hits: &[Hit]) -> Option<Hit> {
        hits.get(self.current.min(hits.len().saturating_sub(1)))
            .copied()
    }

    /// "3/7 matches", "no match", or "" for an empty query.
    pub fn indicator(&self, hits: &[Hit]) -> String {
        match hits.len() {
            _ if self.query.is_empty() => String::new(),
            0 => "no match".into(),
            n => {
                let more = if n >= MAX_HITS { "+" } else { "" };
                let i = self.current.min(n - 1) + 1;
                format!("{i}/{n}{more} matches")
            }
        }
    }
}

/// Apply `op` to the search state (`None` when no search is active) over
/// the evidence `lines`. Returns the evidence line to bring into view when
/// the current match moved.
pub fn apply(state: &mut Option<Search>, op: SearchOp, lines: &[evidence::Line]) -> Option<usize> {
    if op == SearchOp::Open {
        *state = Some(Search {
            editing: true,
            ..Search::default()
        });
        return None;
    }
    if op == SearchOp::Clear {
        *state = None;
        return None;
    }
    let s = state.as_mut()?;
    match op {
        SearchOp::Type(c) => {
            if s.query.len() + c.len_utf8() <= MAX_QUERY {
                s.query.push(c);
            }
            s.current = 0;
        }
        SearchOp::Erase => {
            s.query.pop();
            s.current = 0;
        }
        SearchOp::Accept => {
            if s.query.is_empty() {
                *state = None;
            } else {
                s.editing = false;
            }
            return None;
        }
        SearchOp::Next | SearchOp::Prev => {
            let n = hits(lines, &s.query).len();
            if n == 0 {
                return None;
            }
            let cur = s.current.min(n - 1);
            s.current = if op == SearchOp::Next {
                (cur + 1) % n
            } else {
                (cur + n - 1) % n
            };
        }
        SearchOp::Open | SearchOp::Clear => return None,
    }
    let hits = hits(lines, &s.query);
    s.current_hit(&hits).map(|h| h.line)
}

/// The spans of one evidence line with its matches marked; `mark` (the
/// current match's line) replaces the two-space indent, or is put in front.
pub fn spans<'a>(
    text: &str,
    base: Style,
    line_hits: &[Hit],
    current: Option<Hit>,
    mark: Option<&'a str>,
) -> Vec<Span<'a>> {
    let hit_style = base.add_modifier(Modifier::REVERSED);
    let current_style = hit_style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let mut out: Vec<Span> = Vec::new();
    let mut text_from = 0;
    if let Some(m) = mark {
        out.push(Span::styled(
            format!("{m} "),
            base.add_modifier(Modifier::BOLD),
        ));
        let first = line_hits.first().map_or(usize::MAX, |h| h.start);
        if text.starts_with("  ") && first >= 2 {
            text_from = 2;
        }
    }
    let mut at = text_from;
    for h in line_hits {
        let (Some(before), Some(hit)) = (text.get(at..h.start), text.get(h.start..h.end)) else {
            continue;
        };
        if !before.is_empty() {
            out.push(Span::styled(before.to_owned(), base));
        }
        let style = if Some(*h) == current {
            current_style
        } else {
            hit_style
        };
        out.push(Span::styled(hit.to_owned(), style));
        at = h.end;
    }
    if let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) {
        out.push(Span::styled(rest.to_owned(), base));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(texts: &[&str]) -> Vec<evidence::Line> {
        texts
            .iter()
            .map(|t| evidence::Line {
                text: (*t).to_owned(),
                heading: false,
            })
            .collect()
    }

    #[test]
    fn smart_case_and_byte_ranges() {
        let l = ev(&[
            "  Connection refused",
            "  connect() failed (111: Connection refused)",
        ]);
        let h = hits(&l, "refused");
        assert_eq!(h.len(), 2);
        assert_eq!(&l[1].text[h[1].start..h[1].end], "refused");
        assert_eq!(hits(&l, "connection").len(), 2);
        assert_eq!(hits(&l, "Connection").len(), 2);
        assert_eq!(hits(&l, "connect").len(), 3);
        assert_eq!(
            hits(&l, "Connect").len(),
            2,
            "an upper-case letter makes it exact"
        );
        assert!(hits(&l, "").is_empty());
    }

    #[test]
    fn next_and_prev_wrap_and_report_the_line() {
        let l = ev(&["a x", "b", "x x", "c"]);
        let mut s = None;
        apply(&mut s, SearchOp::Open, &l);
        assert_eq!(apply(&mut s, SearchOp::Type('x'), &l), Some(0));
        apply(&mut s, SearchOp::Accept, &l);
        assert!(!s.as_ref().unwrap().editing);
        assert_eq!(apply(&mut s, SearchOp::Next, &l), Some(2));
        assert_eq!(apply(&mut s, SearchOp::Next, &l), Some(2));
        assert_eq!(s.as_ref().unwrap().indicator(&hits(&l, "x")), "3/3 matches");
        assert_eq!(
            apply(&mut s, SearchOp::Next, &l),
            Some(0),
            "wraps to the first"
        );
        assert_eq!(
            apply(&mut s, SearchOp::Prev, &l),
            Some(2),
            "and back to the last"
        );
        apply(&mut s, SearchOp::Clear, &l);
        assert_eq!(s, None);
    }

    #[test]
    fn empty_query_accepted_is_no_search_and_no_match_says_so() {
        let l = ev(&["abc"]);
        let mut s = None;
        apply(&mut s, SearchOp::Open, &l);
        apply(&mut s, SearchOp::Accept, &l);
        assert_eq!(s, None);
        apply(&mut s, SearchOp::Open, &l);
        assert_eq!(apply(&mut s, SearchOp::Type('z'), &l), None);
        assert_eq!(s.as_ref().unwrap().indicator(&[]), "no match");
        assert_eq!(apply(&mut s, SearchOp::Next, &l), None);
    }

    #[test]
    fn the_query_is_bounded_and_non_ascii_text_is_safe() {
        let l = ev(&["  ünïcödé ÄÖ refused"]);
        let mut s = None;
        apply(&mut s, SearchOp::Open, &l);
        for _ in 0..1000 {
            apply(&mut s, SearchOp::Type('é'), &l);
        }
        assert!(s.as_ref().unwrap().query.len() <= MAX_QUERY);
        let h = hits(&l, "ö");
        assert_eq!(h.len(), 1);
        let spans = spans(
            &l[0].text,
            Style::default(),
            &h,
            h.first().copied(),
            Some(">"),
        );
        let shown: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(shown, "> ünïcödé ÄÖ refused");
    }

    #[test]
    fn spans_mark_matches_without_colour() {
        let l = ev(&["  upstream refused, refused again"]);
        let h = hits(&l, "refused");
        let sp = spans(&l[0].text, Style::default(), &h, Some(h[1]), None);
        let marked: Vec<(&str, bool, bool)> = sp
            .iter()
            .map(|s| {
                (
                    s.content.as_ref(),
                    s.style.add_modifier.contains(Modifier::REVERSED),
                    s.style.add_modifier.contains(Modifier::UNDERLINED),
                )
            })
            .collect();
        assert_eq!(
            marked,
            vec![
                ("  upstream ", false, false),
                ("refused", true, false),
                (", ", false, false),
                ("refused", true, true),
                (" again", false, false),
            ]
        );
        assert!(
            sp.iter()
                .all(|s| s.style.fg.is_none() && s.style.bg.is_none())
        );
    }
}
