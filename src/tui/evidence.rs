//! The evidence panel's text: one model for drawing, scrolling and search.
//!
//! The evidence shown is that of the newest batch of checks in the trail:
//! each item is a heading line (its label and source) followed by its text,
//! each line indented two spaces, at most [`MAX_LINES_PER_ITEM`] lines per
//! item. Scrolling and search count these lines (not wrapped screen rows),
//! so the last line can always be scrolled to and a match's line is known
//! without knowing the width of the panel.

use crate::engine::{Engine, Record};

/// Lines of one evidence item shown at most (the rest is in the ticket).
pub const MAX_LINES_PER_ITEM: usize = 200;

/// One line of the evidence panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// The label line of an item (drawn as a title).
    pub heading: bool,
}

/// The evidence of the newest checks in the trail, as shown.
pub fn lines(engine: &Engine) -> Vec<Line> {
    let Some(reports) = engine.trail().iter().rev().find_map(|s| match &s.record {
        Record::Checks { reports, .. } => Some(reports),
        _ => None,
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in reports.iter().flat_map(|r| &r.evidence) {
        let src = e
            .source
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        out.push(Line {
            text: format!("{}{src}", e.label),
            heading: true,
        });
        out.extend(e.text.lines().take(MAX_LINES_PER_ITEM).map(|l| Line {
            text: format!("  {l}"),
            heading: false,
        }));
    }
    out
}
