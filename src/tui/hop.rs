//! The hop dialog: when the walk ends with the failing path's upstream on another host, the
//! wizard offers to continue there over ssh ("Continue on 10.0.0.12 over ssh?"). It shows the
//! exact ssh commands of the copy first (the copy is a reversible action: asked, journalled,
//! removed afterwards), streams the remote runs' progress, and lists each host's outcome; the
//! remote findings then appear in the report and the ticket with their host, and on the map.
//!
//! ```text
//! +- Continue on the upstream's host over ssh? -------------------------+
//! | The upstream 10.0.0.12:80 is on another host. triage502 can walk    |
//! | http://10.0.0.12:80/cart there, read-only, over your ssh.           |
//! | If triage502 is not installed there, it is copied (reversible,      |
//! | removed afterwards):                                                |
//! |   ssh -o BatchMode=yes ... -- 10.0.0.12 'umask 077 && mktemp -d …'  |
//! | y hop · n / Esc not now                                             |
//! +---------------------------------------------------------------------+
//! ```

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

use crate::hop::run::{Copy, Plan};
use crate::hop::target::Skipped;
use crate::hop::{Hop, HopStatus, Target};
use crate::report::{Report, Status};
use crate::tui::app::App;
use crate::tui::render::{block, theme};

/// Progress lines kept (the newest).
pub const MAX_LINES: usize = 200;

/// Where the dialog is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asking before anything is run there.
    Asking,
    /// The hops run; progress streams in.
    Running,
    /// Every hop ended.
    Done,
    /// The operator said no.
    Declined,
}

/// The hop offer and its outcome.
#[derive(Debug, Clone)]
pub struct HopView {
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
    pub plan: Plan,
    pub phase: Phase,
    /// `host: line`, as the hops report them.
    pub lines: Vec<String>,
    pub results: Vec<(Hop, Option<Report>)>,
}

impl HopView {
    pub fn new(targets: Vec<Target>, skipped: Vec<Skipped>, plan: Plan) -> HopView {
        HopView {
            targets,
            skipped,
            plan,
            phase: Phase::Asking,
            lines: Vec::new(),
            results: Vec::new(),
        }
    }

    pub fn progress(&mut self, host: &str, line: &str) {
        self.lines.push(format!("{host}: {line}"));
        if self.lines.len() > MAX_LINES {
            self.lines.drain(..self.lines.len() - MAX_LINES);
        }
    }

    /// The hosts, "10.0.0.12, 10.0.0.13".
    pub fn hosts(&self) -> String {
        self.targets
            .iter()
            .map(|t| t.ssh_host.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The dialog's title: the host when there is one, else how many.
    pub fn title(&self) -> String {
        let hosts = if self.targets.len() == 1 {
            self.hosts()
        } else {
            format!("{} upstream hosts", self.targets.len())
        };
        match self.phase {
            Phase::Asking => format!(" Continue on {hosts} over ssh? "),
            Phase::Running => format!(" Hop to {hosts} (running) "),
            Phase::Done => " Hop results (Esc closes) ".to_owned(),
            Phase::Declined => " Hop not made ".to_owned(),
        }
    }

    /// The text of the dialog (plain lines: the screen tests read them). A line's leading
    /// blanks are its indent: wrapped, it continues two columns further in.
    pub fn text(&self) -> Vec<(String, Option<Color>)> {
        let mut v: Vec<(String, Option<Color>)> = Vec::new();
        match self.phase {
            Phase::Asking => {
                v.push((
                    if self.targets.len() == 1 {
                        "The failing path's upstream is on another host. Walk it there, read-only, over ssh:"
                    } else {
                        "The failing path's upstreams are on other hosts. Walk it on each, read-only, over ssh:"
                    }
                    .into(),
                    None,
                ));
                for t in &self.targets {
                    v.push((format!("  {}  {}", t.upstream, t.url), None));
                }
                match &self.plan.copy {
                    Copy::Allowed => {
                        v.push((
                            "Where the same triage502 is not installed, the hop copies its static build there (a reversible action, removed afterwards). Nothing runs there before y. Exactly:".into(),
                            Some(Color::Yellow),
                        ));
                        if let Some(t) = self.targets.first() {
                            let cmds = self.plan.copy_commands(&t.ssh_host, &t.url);
                            if let Some(first) = cmds.first() {
                                let prefix = &first[..first.len().saturating_sub(1)];
                                let host = if self.targets.len() == 1 {
                                    String::new()
                                } else {
                                    " (each host in turn)".to_owned()
                                };
                                v.push((
                                    format!("  $ {}{host}", crate::report::shell_words(prefix)),
                                    None,
                                ));
                            }
                            v.push((
                                "  with the remote command, in order (DIR: what mktemp -d prints):"
                                    .into(),
                                None,
                            ));
                            for (i, c) in cmds.iter().enumerate() {
                                if let Some(remote) = c.last() {
                                    v.push((format!("    {}. {remote}", i + 1), None));
                                }
                            }
                        }
                    }
                    Copy::Forbidden(why) => v.push((
                        format!("No copy: {why}; only an installed triage502 of the same version can run there."),
                        Some(Color::Yellow),
                    )),
                }
                for s in &self.skipped {
                    v.push((format!("Not hopping to {}: {}", s.upstream, s.why), None));
                }
                v.push(("y hop · n / Esc not now".into(), Some(Color::Cyan)));
            }
            Phase::Running | Phase::Done => {
                for (h, _) in &self.results {
                    let color = match (h.status, h.remote_status) {
                        (HopStatus::Done, Some(Status::Healthy)) => Color::Green,
                        (HopStatus::Done, Some(Status::Problem)) => Color::Red,
                        _ => Color::Yellow,
                    };
                    v.push((h.line(), Some(color)));
                    // Why it could not be reached or run, in ssh's (or the remote run's) words.
                    if h.status != HopStatus::Done
                        && let Some(last) = h.stderr.lines().rev().find(|l| !l.trim().is_empty())
                    {
                        let who = if h.status == HopStatus::Unreachable {
                            "ssh said"
                        } else {
                            "stderr"
                        };
                        v.push((format!("  {who}: {}", last.trim()), None));
                    }
                    if let Some(d) = &h.temp_dir {
                        let gone = if h.temp_dir_removed == Some(true) {
                            "removed"
                        } else {
                            "NOT removed"
                        };
                        v.push((format!("  temp dir {d}: {gone}"), None));
                    }
                }
                if self.phase == Phase::Running {
                    v.push(("Progress:".into(), Some(Color::Cyan)));
                } else if !self.lines.is_empty() {
                    v.push(("What the hops said (↑↓ scroll):".into(), Some(Color::Cyan)));
                }
                let shown = if self.phase == Phase::Running { 40 } else { 60 };
                let from = self.lines.len().saturating_sub(shown);
                for l in &self.lines[from..] {
                    v.push((format!("  {l}"), None));
                }
            }
            Phase::Declined => v.push(("Not now: h offers the hop again.".into(), None)),
        }
        v
    }
}

/// `text` wrapped at `width` columns on blanks, continuation rows indented two columns past the
/// line's own indent (a wrapped command reads as one); a word longer than a row is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let indent = text.len() - text.trim_start_matches(' ').len();
    let cont = " ".repeat((indent + 2).min(width / 2));
    let mut rows = Vec::new();
    let mut row = " ".repeat(indent);
    let mut row_len = indent;
    for word in text[indent..].split(' ') {
        let mut word = word.to_owned();
        let wl = word.chars().count();
        let fresh = row_len == indent || row.trim().is_empty();
        if !fresh && row_len + 1 + wl > width {
            rows.push(std::mem::replace(&mut row, cont.clone()));
            row_len = cont.len();
        } else if !fresh {
            row.push(' ');
            row_len += 1;
        }
        // A word longer than what is left of a row: cut it where the row ends.
        while row_len + word.chars().count() > width {
            let take = width - row_len;
            let cut: String = word.chars().take(take).collect();
            word = word.chars().skip(take).collect();
            row.push_str(&cut);
            rows.push(std::mem::replace(&mut row, cont.clone()));
            row_len = cont.len();
        }
        row_len += word.chars().count();
        row.push_str(&word);
    }
    rows.push(row);
    rows
}

/// The dialog's rows at `width` columns, with their colours. While the hops run, each
/// progress line takes one row (cut with `…`) so the newest stay in view.
fn rows(view: &HopView, width: usize) -> Vec<(String, Option<Color>)> {
    let mut out = Vec::new();
    for (text, color) in view.text() {
        if view.phase == Phase::Running && color.is_none() && text.starts_with("  ") {
            let n = text.chars().count();
            let t = if n > width {
                let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
                t.push('…');
                t
            } else {
                text
            };
            out.push((t, color));
            continue;
        }
        for r in wrap(&text, width) {
            out.push((r, color));
        }
    }
    out
}

/// Draw the dialog over the screen.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.hop else { return };
    let th = theme(app);
    let width = area.width.min(110);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y,
        width,
        height: area.height,
    };
    frame.render_widget(Clear, rect);
    let frame_block = block(th, view.title());
    let inner = frame_block.inner(rect);
    let (inner_w, inner_h) = (usize::from(inner.width), usize::from(inner.height));
    let rows = rows(view, inner_w);
    // While the hops run the newest progress is at the bottom: keep it in view.
    let scroll = if view.phase == Phase::Running {
        u16::try_from(rows.len().saturating_sub(inner_h)).unwrap_or(u16::MAX)
    } else {
        app.overlay_scroll
    };
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(text, color)| match color {
            Some(c) => Line::styled(th.text(&text), th.fg(c).add_modifier(Modifier::BOLD)),
            None => Line::raw(th.text(&text)),
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(frame_block),
        rect,
    );
}

/// Rows of the dialog, for scrolling (at 80 columns: 76 inside the border and its padding).
pub fn scroll_limit(app: &App) -> usize {
    app.hop.as_ref().map_or(0, |h| rows(h, 76).len())
}

/// The map's lines for the hops made: `→ 10.0.0.12 10.0.0.12:80 (ssh) → problem: …`.
pub fn map_lines(app: &App) -> Vec<String> {
    let Some(h) = &app.hop else {
        return Vec::new();
    };
    let arrow = if app.setup.ascii { "->" } else { "→" };
    h.results
        .iter()
        .map(|(hop, _)| {
            format!(
                "{arrow} {} {} (ssh) {arrow} {}",
                hop.name(),
                hop.upstream,
                hop.summary
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapped_rows_keep_the_indent_and_every_word() {
        let rows = wrap(
            "  $ ssh -F /tmp/lab/ssh_config -o BatchMode=yes -o ConnectTimeout=5 -- 10.0.0.12",
            30,
        );
        assert_eq!(
            rows,
            [
                "  $ ssh -F /tmp/lab/ssh_config",
                "    -o BatchMode=yes -o",
                "    ConnectTimeout=5 --",
                "    10.0.0.12",
            ]
        );
        assert!(rows.iter().all(|r| r.chars().count() <= 30));
        // A word longer than a row is cut, nothing is lost.
        let long = wrap(&"x".repeat(25), 10);
        assert_eq!(long.concat().replace(' ', ""), "x".repeat(25));
        assert!(long.iter().all(|r| r.chars().count() <= 10), "{long:?}");
    }
}
