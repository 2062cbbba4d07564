//! The `--resume` list on the start screen: the saved sessions, newest
//! first, two lines each, the highlighted one marked and in reverse video.
//!
//! ```text
//! +- Resume a saved session (3) ---------------------------------+
//! | ▸ 1. http://shop.example/checkout              12 min ago · open
//! |      playbook 502, at 502/upstream · 20260102T030405Z-ab12    |
//! |   2. ...                                                      |
//! +---------------------------------------------------------------+
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{block, theme};
use crate::tui::app::App;
use crate::tui::theme::Mark;

/// The list, scrolled so the highlighted session is in view.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let Some(list) = &app.sessions else { return };
    let Some(rows) = &list.rows else {
        let lines = vec![
            Line::raw(""),
            Line::styled(
                format!("  {} reading the saved sessions...", t.spinner(app.ticks)),
                t.dim(),
            ),
        ];
        frame.render_widget(
            Paragraph::new(lines).block(block(t, " Resume a saved session ")),
            area,
        );
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    if rows.is_empty() {
        lines.push(Line::styled(
            "No saved session could be read. q quits; start one with `triage502 URL`.",
            t.dim(),
        ));
    }
    // Two rows per session: scroll so the highlighted one is whole.
    let fits = usize::from(area.height.saturating_sub(2) / 2).max(1);
    let first = (list.selected + 1).saturating_sub(fits);
    for (i, r) in rows.iter().enumerate().skip(first) {
        let on = i == list.selected;
        let mark = if on { t.mark(Mark::Current) } else { " " };
        let state = r
            .ended
            .as_deref()
            .map_or_else(|| "open".to_owned(), |e| format!("ended: {e}"));
        let url = r
            .url
            .as_deref()
            .map_or_else(|| "(no URL)".to_owned(), crate::redact::text);
        let head = if on {
            t.selected().add_modifier(Modifier::BOLD)
        } else {
            ratatui::style::Style::default().add_modifier(Modifier::BOLD)
        };
        let state_style = if r.ended.is_some() {
            t.dim()
        } else {
            t.fg(Color::Green)
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), t.mark_style(Mark::Current)),
            Span::styled(format!("{}. {url}", i + 1), head),
            Span::styled(format!("  {} {} ", r.age, t.dot()), t.dim()),
            Span::styled(state, state_style),
        ]));
        lines.push(Line::from(vec![
            Span::raw("     "),
            Span::raw(format!("playbook {}, at {}", r.playbook, r.reached)),
            Span::styled(format!(" {} {}", t.dot(), r.id), t.dim()),
        ]));
    }
    let title = format!(" Resume a saved session ({}) ", rows.len());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(t, title)),
        area,
    );
}
