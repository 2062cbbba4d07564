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
use ratatui::widgets::{Clear, Paragraph, Wrap};

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

    /// The dialog's title.
    pub fn title(&self) -> String {
        match self.phase {
            Phase::Asking => format!(" Continue on {} over ssh? ", self.hosts()),
            Phase::Running => format!(" Hop to {} (running) ", self.hosts()),
            Phase::Done => " Hop results (Esc closes) ".to_owned(),
            Phase::Declined => " Hop not made ".to_owned(),
        }
    }

    /// The text of the dialog (plain lines: the screen tests read them).
    pub fn text(&self) -> Vec<(String, Option<Color>)> {
        let mut v: Vec<(String, Option<Color>)> = Vec::new();
        match self.phase {
            Phase::Asking => {
                for t in &self.targets {
                    v.push((
                        format!(
                            "The upstream {} is on another host: walk {} there, read-only, over ssh.",
                            t.upstream, t.url
                        ),
                        None,
                    ));
                }
                match &self.plan.copy {
                    Copy::Allowed => {
                        v.push((
                            "Where the same triage502 is not installed, the hop copies its static build (a reversible action, removed afterwards), with exactly:".into(),
                            Some(Color::Yellow),
                        ));
                        if let Some(t) = self.targets.first() {
                            for c in self.plan.copy_commands(&t.ssh_host) {
                                v.push((format!("  $ {}", crate::report::shell_words(&c)), None));
                            }
                        }
                        v.push(("(DIR: the directory mktemp -d makes there)".into(), None));
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
                }
                let shown = if self.phase == Phase::Running { 12 } else { 40 };
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
    let lines: Vec<Line> = view
        .text()
        .into_iter()
        .map(|(text, color)| match color {
            Some(c) => Line::styled(th.text(&text), th.fg(c).add_modifier(Modifier::BOLD)),
            None => Line::raw(th.text(&text)),
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.overlay_scroll, 0))
            .block(block(th, view.title())),
        rect,
    );
}

/// Lines of the dialog, for scrolling.
pub fn scroll_limit(app: &App) -> usize {
    app.hop.as_ref().map_or(0, |h| h.text().len() * 3)
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
