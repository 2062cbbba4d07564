//! `triage502 fleet FILES...|DIR --tui`: the merged fleet report, full screen.
//!
//! Three views over one [`FleetReport`]:
//!
//! ```text
//!  triage502 fleet · triage502-reports/ · 9 files             <- header
//! +- Fleet: 8 hosts -----------------------------------------+
//! | 4 failing · 1 healthy · 1 unreachable · 0 without report |
//! | Gateway errors on 4 of 8 hosts: ... (the ticket's title) |
//! +- Causes (majority first) --------------------------------+
//! | 3 hosts  Upstream refuses (upstream_refused) · majority  |
//! | 1 host   Upstream timed out (upstream_timeout) · outlier |
//! +- Hosts (Enter opens a host's report) --------------------+
//! | ✗ web1   upstream_refused: The upstream ... refuses      |
//! | ✓ web6   healthy                                         |
//! | ? web4   unreachable: ssh: connect to host ... refused   |
//! +----------------------------------------------------------+
//!  ↑↓ choose · Enter host report · t ticket · q quit          <- hints
//! ```
//!
//! Enter on a host opens its own report in the window the walk's ticket preview uses
//! ([`render::text_window`]), with the same rendering as a walk that is not journalled:
//! [`Report::to_markdown`], redacted, with what redaction masked. `t` opens the fleet ticket
//! (the Markdown `fleet --format md` ends with, redacted the same way); there `w` writes it to a
//! file and `y` copies it (OSC 52), as in the walk's ticket view. Esc or `q` goes back from a
//! report or the ticket, and quits from the summary; Ctrl-C quits anywhere.
//!
//! The state is a plain value: [`FleetApp::update`] takes a key, [`render`] draws it (tests
//! drive both on `TestBackend`). [`run`] owns the terminal through
//! [`TerminalGuard`](crate::tui::terminal::TerminalGuard), so it is restored on every way out,
//! and reads keys, resizes and signals through the walk's own input tasks.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use crate::fleet::{FleetReport, HostLine, HostStatus};
use crate::report::Report;
use crate::tui::render::{block, masked_line, text_window, wrapped_height};
use crate::tui::theme::{Mark, Theme};

/// What kind of entry a row of the host list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A report with a failure.
    Failing,
    Healthy,
    /// A record of a host the runner could not reach.
    Unreachable,
    /// A record of a host where no report was made.
    NoReport,
    /// A file that is not a readable report (not a host).
    Unreadable,
}

/// One row of the host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The host name, or the file name for an unreadable file.
    pub name: String,
    pub kind: RowKind,
    /// The file, as the fleet read it (a path).
    pub file: String,
    /// What the row says after the name (cause and summary, reason, error).
    pub detail: String,
    /// A failing host whose cause differs from the majority cause.
    pub outlier: bool,
}

/// Which view is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Summary,
    /// The report of host row N.
    Host(usize),
    Ticket,
}

/// A document shown in the text window: a host's report or the fleet ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub title: String,
    /// Redacted Markdown.
    pub text: String,
    /// What redaction masked (the window's first line).
    pub masked: String,
}

/// What the loop must do for the view (the rest happens in [`FleetApp::update`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetCommand {
    /// Send this text to the clipboard (OSC 52 on stdout).
    Clipboard(String),
}

/// The fleet view's state.
#[derive(Debug)]
pub struct FleetApp {
    pub report: FleetReport,
    /// The inputs as given, for the header.
    pub inputs: String,
    /// How many files were read.
    pub files: usize,
    pub rows: Vec<Row>,
    pub selected: usize,
    pub view: View,
    /// The open document (host report or ticket).
    pub doc: Option<Doc>,
    pub scroll: u16,
    pub notice: Option<String>,
    pub quit: bool,
    /// Where `w` writes the ticket.
    pub save_to: PathBuf,
    /// Where the ticket was written.
    pub ticket_file: Option<PathBuf>,
    pub theme: Theme,
    /// The text window's inner width and height at the last frame: how far a document
    /// scrolls depends on how its lines wrap and how many rows show.
    pub doc_size: std::cell::Cell<(u16, u16)>,
}

/// The file name relative to the input directory it came from, for display.
fn short_name(file: &str, dirs: &[PathBuf]) -> String {
    let p = Path::new(file);
    dirs.iter()
        .find_map(|d| p.strip_prefix(d).ok())
        .filter(|rest| !rest.as_os_str().is_empty())
        .map_or_else(|| file.to_owned(), |rest| rest.display().to_string())
}

fn failing_detail(h: &HostLine) -> String {
    let cause = h.cause.as_deref().unwrap_or("no cause established");
    let on = h
        .established_on
        .as_deref()
        .map(|o| format!(" (on {o})"))
        .unwrap_or_default();
    match &h.summary {
        Some(s) => format!("{cause}{on}: {s}"),
        None => format!("{cause}{on}"),
    }
}

impl FleetApp {
    /// The view over `report`, merged from `files` files of `inputs`; `w` writes to `save_to`.
    pub fn new(
        report: FleetReport,
        inputs: &[PathBuf],
        files: usize,
        save_to: PathBuf,
        theme: Theme,
    ) -> FleetApp {
        let dirs: Vec<PathBuf> = inputs.iter().filter(|p| p.is_dir()).cloned().collect();
        let mut rows = Vec::new();
        for g in &report.failing {
            for h in &g.hosts {
                rows.push(Row {
                    name: h.host.clone(),
                    kind: RowKind::Failing,
                    file: h.file.clone(),
                    detail: failing_detail(h),
                    outlier: report.outliers.iter().any(|o| o.file == h.file),
                });
            }
        }
        for h in &report.healthy {
            rows.push(Row {
                name: h.host.clone(),
                kind: RowKind::Healthy,
                file: h.file.clone(),
                detail: "healthy: no fault found".into(),
                outlier: false,
            });
        }
        for (list, kind, what) in [
            (&report.unreachable, RowKind::Unreachable, "unreachable"),
            (&report.failed, RowKind::NoReport, "no report"),
        ] {
            for n in list {
                rows.push(Row {
                    name: n.host.clone(),
                    kind,
                    file: n.file.clone(),
                    detail: format!("{what}: {}", n.reason),
                    outlier: false,
                });
            }
        }
        for u in &report.unreadable {
            rows.push(Row {
                name: short_name(&u.file, &dirs),
                kind: RowKind::Unreadable,
                file: u.file.clone(),
                detail: format!("not read: {}", u.error),
                outlier: false,
            });
        }
        FleetApp {
            inputs: inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            files,
            rows,
            selected: 0,
            view: View::Summary,
            doc: None,
            scroll: 0,
            notice: None,
            quit: false,
            save_to,
            ticket_file: None,
            theme,
            report,
            doc_size: std::cell::Cell::new((0, 0)),
        }
    }

    /// Apply a key.
    pub fn update(&mut self, key: KeyEvent) -> Option<FleetCommand> {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return None;
        }
        // A notice is read once: the next key clears it.
        self.notice = None;
        match self.view {
            View::Summary => self.summary_key(key.code),
            View::Host(_) | View::Ticket => self.doc_key(key.code),
        }
    }

    /// The mouse wheel: move in the list, or scroll the open document.
    pub fn wheel(&mut self, up: bool) {
        match (self.view, up) {
            (View::Summary, true) => self.select(-1),
            (View::Summary, false) => self.select(1),
            (_, true) => self.scroll_by(-3),
            (_, false) => self.scroll_by(3),
        }
    }

    fn summary_key(&mut self, code: KeyCode) -> Option<FleetCommand> {
        match code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Up | KeyCode::Char('k') => self.select(-1),
            KeyCode::Down | KeyCode::Char('j') => self.select(1),
            KeyCode::PageUp => self.select(-10),
            KeyCode::PageDown | KeyCode::Char(' ') => self.select(10),
            KeyCode::Home => self.selected = 0,
            KeyCode::End => self.selected = self.rows.len().saturating_sub(1),
            KeyCode::Enter if !self.rows.is_empty() => self.open_host(self.selected),
            KeyCode::Char('t') => self.open_ticket(),
            _ => {}
        }
        None
    }

    fn doc_key(&mut self, code: KeyCode) -> Option<FleetCommand> {
        match code {
            KeyCode::Esc | KeyCode::Char('q') => self.close(),
            KeyCode::Char('t') if self.view == View::Ticket => self.close(),
            KeyCode::Char('t') => self.open_ticket(),
            KeyCode::Up | KeyCode::Char('k') => self.scroll_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_by(1),
            KeyCode::PageUp => self.scroll_by(-10),
            KeyCode::PageDown | KeyCode::Char(' ') => self.scroll_by(10),
            KeyCode::Home => self.scroll = 0,
            KeyCode::Char('w') if self.view == View::Ticket => self.write_ticket(),
            KeyCode::Char('y') => {
                if let Some(d) = &self.doc {
                    self.notice = Some(format!(
                        "{} sent to the clipboard (OSC 52; the terminal must allow it)",
                        if self.view == View::Ticket {
                            "ticket"
                        } else {
                            "report"
                        }
                    ));
                    return Some(FleetCommand::Clipboard(d.text.clone()));
                }
            }
            _ => {}
        }
        None
    }

    fn select(&mut self, delta: isize) {
        let last = self.rows.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    fn scroll_by(&mut self, delta: i32) {
        // Until the last page fills the window: the rows it has (its head line, a blank, the
        // wrapped text) less the rows that show. Before the first frame: 80x24's window.
        let (w, h) = self.doc_size.get();
        let (width, height) = if w == 0 { (76, 20) } else { (w, h) };
        let limit = self.doc.as_ref().map_or(0, |d| {
            let lines: Vec<Line> = d.text.lines().map(Line::raw).collect();
            wrapped_height(&lines, width)
                .saturating_add(2)
                .saturating_sub(height)
        });
        let v = i32::from(self.scroll) + delta;
        self.scroll = u16::try_from(v.max(0)).unwrap_or(u16::MAX).min(limit);
    }

    fn close(&mut self) {
        self.view = View::Summary;
        self.doc = None;
        self.scroll = 0;
    }

    fn open_host(&mut self, i: usize) {
        let Some(row) = self.rows.get(i) else { return };
        self.doc = Some(host_doc(row, &self.report));
        self.view = View::Host(i);
        self.scroll = 0;
    }

    fn open_ticket(&mut self) {
        self.doc = Some(ticket_doc(&self.report));
        self.view = View::Ticket;
        self.scroll = 0;
    }

    fn write_ticket(&mut self) {
        let Some(d) = &self.doc else { return };
        let path = &self.save_to;
        let made = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all);
        match made.and_then(|()| std::fs::write(path, &d.text)) {
            Ok(()) => {
                self.notice = Some(format!("ticket written to {}", path.display()));
                self.ticket_file = Some(path.clone());
            }
            Err(e) => self.notice = Some(format!("cannot write {}: {e}", path.display())),
        }
    }
}

/// The fleet ticket as `fleet --format md` prints it, redacted.
pub fn ticket_doc(report: &FleetReport) -> Doc {
    let body = &report.ticket.body;
    Doc {
        title: " Fleet ticket (Esc back) ".into(),
        text: crate::redact::text(body),
        masked: masked_line(&crate::redact::preview(body)),
    }
}

/// A host's own report: the same Markdown as the walk's report (`run --format md`), redacted.
/// A record or an unreadable file shows what the fleet knows of it; a report this version
/// cannot read whole (another triage502 version) shows what the fleet read of it.
pub fn host_doc(row: &Row, report: &FleetReport) -> Doc {
    let md = match row.kind {
        RowKind::Failing | RowKind::Healthy => {
            let parsed = std::fs::read_to_string(&row.file)
                .map_err(|e| format!("cannot read it again: {e}"))
                .and_then(|t| serde_json::from_str::<Report>(&t).map_err(|e| e.to_string()));
            match parsed {
                Ok(r) => r.to_markdown(),
                Err(e) => lenient_md(row, report, &e),
            }
        }
        RowKind::Unreachable | RowKind::NoReport => {
            let n = report
                .unreachable
                .iter()
                .chain(&report.failed)
                .find(|n| n.file == row.file);
            let mut s = format!(
                "# {}: {}\n\n",
                row.name,
                if row.kind == RowKind::Unreachable {
                    "not reached"
                } else {
                    "no report was made"
                }
            );
            if let Some(n) = n {
                if let Some(a) = &n.address {
                    let _ = writeln!(s, "- Address: {a}");
                }
                let _ = writeln!(s, "- Reason: {}", n.reason);
            }
            let _ = writeln!(s, "- Record: {}", row.file);
            s
        }
        RowKind::Unreadable => format!(
            "# {}: not read\n\n- File: {}\n- Why: {}\n\nThe file is left out of the fleet report; \
             its host is not counted.\n",
            row.name, row.file, row.detail
        ),
    };
    Doc {
        title: format!(" {}: report (Esc back) ", row.name),
        text: crate::redact::text(&md),
        masked: masked_line(&crate::redact::preview(&md)),
    }
}

/// What the fleet read of a report this version cannot read whole.
fn lenient_md(row: &Row, report: &FleetReport, error: &str) -> String {
    let h = report
        .failing
        .iter()
        .flat_map(|g| &g.hosts)
        .chain(&report.healthy)
        .find(|h| h.file == row.file);
    let mut s = format!(
        "# {}: the report as the fleet read it\n\nThis triage502 cannot read the whole report \
         ({error}); it may come from another version. What the fleet read of it:\n\n",
        row.name
    );
    if let Some(h) = h {
        let status = match h.status {
            HostStatus::Problem => "problem",
            HostStatus::Healthy => "healthy",
            HostStatus::Inconclusive => "inconclusive",
        };
        let _ = writeln!(s, "- Status: {status}");
        if let Some(u) = &h.url {
            let _ = writeln!(s, "- URL: {u}");
        }
        if let Some(c) = &h.cause {
            let _ = writeln!(
                s,
                "- Root cause: `{c}`: {}",
                h.summary.as_deref().unwrap_or("")
            );
        }
        if let Some(e) = &h.evidence {
            let _ = writeln!(s, "  - evidence: `{e}`");
        }
        if h.causes.len() > 1 {
            let _ = writeln!(s, "- Every cause found: {}", h.causes.join(", "));
        }
    }
    let _ = writeln!(s, "- File: {}", row.file);
    s
}

fn mark_of(row: &Row) -> Mark {
    match row.kind {
        RowKind::Failing => Mark::Problem,
        RowKind::Healthy => Mark::Ok,
        RowKind::Unreachable | RowKind::NoReport | RowKind::Unreadable => Mark::Inconclusive,
    }
}

/// Keys for the hints line.
fn hints(app: &FleetApp) -> &'static str {
    match app.view {
        View::Summary => "↑↓ choose · Enter host report · t fleet ticket · q quit",
        View::Host(_) => "↑↓ PgUp PgDn scroll · y copy (OSC 52) · t fleet ticket · Esc back",
        View::Ticket => "w write file · y copy (OSC 52) · ↑↓ scroll · Esc back",
    }
}

/// The whole screen.
pub fn render(app: &FleetApp, frame: &mut Frame) {
    let t = app.theme;
    let [header, body, hints_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let d = t.dot();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" triage502 fleet ", t.title()),
            Span::raw(t.text(&format!(
                "{d} {} {d} {} file{}",
                app.inputs,
                app.files,
                if app.files == 1 { "" } else { "s" }
            ))),
        ])),
        header,
    );
    render_summary(app, frame, body);
    if let Some(doc) = app.doc.as_ref().filter(|_| app.view != View::Summary) {
        // The window is at most 120 wide, with borders and padding (see `text_window`).
        app.doc_size.set((
            body.width.min(120).saturating_sub(4),
            body.height.saturating_sub(2),
        ));
        text_window(
            t,
            frame,
            body,
            &doc.title,
            &doc.masked,
            &t.text(&doc.text),
            app.scroll,
        );
    }
    let mut keys = hints(app).to_owned();
    if t.ascii {
        keys = keys.replace('·', "|").replace("↑↓", "Up/Down");
    }
    let line = match &app.notice {
        Some(n) => Line::from(vec![
            Span::styled(
                format!(" {} ", t.text(n)),
                t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!(" {keys}"), t.dim()),
        ]),
        None => Line::from(Span::styled(format!(" {keys}"), t.dim())),
    };
    frame.render_widget(Paragraph::new(line), hints_area);
}

/// Host names shown per cause in the causes window.
const CAUSE_NAMES: usize = 5;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary, the causes and the host list.
fn render_summary(app: &FleetApp, frame: &mut Frame, area: Rect) {
    let t = app.theme;
    let r = &app.report;
    let failing: usize = r.failing.iter().map(|g| g.hosts.len()).sum();
    let d = t.dot();
    let mut counts = vec![
        Span::styled(
            format!("{failing} failing"),
            if failing > 0 {
                t.mark_style(Mark::Problem)
            } else {
                t.dim()
            },
        ),
        Span::raw(format!(" {d} ")),
        Span::styled(
            format!("{} healthy", r.healthy.len()),
            t.mark_style(Mark::Ok),
        ),
        Span::raw(format!(
            " {d} {} unreachable {d} {} no report",
            r.unreachable.len(),
            r.failed.len()
        )),
    ];
    if !r.unreadable.is_empty() {
        counts.push(Span::styled(
            format!(
                " {d} {} not read",
                plural(r.unreadable.len(), "file", "files")
            ),
            t.fg(Color::Yellow),
        ));
    }
    let summary = vec![
        Line::from(counts),
        Line::styled(
            t.text(&r.ticket.title),
            ratatui::style::Style::default().add_modifier(Modifier::BOLD),
        ),
    ];
    let inner_w = area.width.saturating_sub(4);
    let summary_h = wrapped_height(&summary, inner_w).min(3) + 2;

    let causes: Vec<Line> = if r.failing.is_empty() {
        vec![Line::styled("no failing host", t.dim())]
    } else {
        r.failing
            .iter()
            .map(|g| {
                let majority = g.cause.is_some() && g.cause == r.majority_cause;
                let outlier = r.majority_cause.is_some() && !majority;
                let id = g.cause.as_deref().unwrap_or("unexplained");
                // A few names per group, so a large group never pushes the outliers out of
                // the window (the host list has them all).
                let mut names = g
                    .hosts
                    .iter()
                    .take(CAUSE_NAMES)
                    .map(|h| h.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                if g.hosts.len() > CAUSE_NAMES {
                    let _ = write!(names, " and {} more", g.hosts.len() - CAUSE_NAMES);
                }
                let mut spans = vec![
                    Span::styled(
                        format!("{:<8} ", plural(g.hosts.len(), "host", "hosts")),
                        t.mark_style(Mark::Problem),
                    ),
                    Span::raw(t.text(&format!("{} ({id})", g.title))),
                ];
                if majority {
                    spans.push(Span::styled(format!(" {d} majority"), t.title()));
                } else if outlier {
                    spans.push(Span::styled(
                        format!(" {d} outlier"),
                        t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                    ));
                }
                spans.push(Span::styled(format!(": {}", t.text(&names)), t.dim()));
                Line::from(spans)
            })
            .collect()
    };
    let causes_h = wrapped_height(&causes, inner_w).min(6) + 2;
    let [sum_area, causes_area, hosts_area] = Layout::vertical([
        Constraint::Length(summary_h),
        Constraint::Length(causes_h),
        Constraint::Min(3),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(summary)
            .wrap(Wrap { trim: false })
            .block(block(
                t,
                format!(" Fleet: {} ", plural(r.hosts, "host", "hosts")),
            )),
        sum_area,
    );
    let causes_title = if r.majority_cause.is_some() {
        " Causes (majority first) "
    } else {
        " Causes (largest group first) "
    };
    frame.render_widget(
        Paragraph::new(causes)
            .wrap(Wrap { trim: false })
            .block(block(t, causes_title)),
        causes_area,
    );
    let name_w = app
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(20);
    let items: Vec<ListItem> = app
        .rows
        .iter()
        .map(|row| {
            let m = mark_of(row);
            let mut spans = vec![
                Span::styled(format!("{} ", t.mark(m)), t.mark_style(m)),
                Span::raw(format!("{:<name_w$} ", t.text(&row.name))),
            ];
            if row.outlier {
                spans.push(Span::styled(
                    "outlier ",
                    t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ));
            }
            spans.push(Span::styled(t.text(&row.detail), t.dim()));
            ListItem::new(Line::from(spans))
        })
        .collect();
    let title = if app.rows.is_empty() {
        " Hosts ".to_owned()
    } else {
        format!(
            " Hosts ({}/{}, Enter opens its report) ",
            app.selected + 1,
            app.rows.len()
        )
    };
    let mut state = ListState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(
        List::new(items)
            .highlight_style(t.selected())
            .block(block(t, title)),
        hosts_area,
        &mut state,
    );
}

/// Where `w` writes the fleet ticket unless `--output` says: next to the saved sessions
/// (`$XDG_STATE_HOME/triage502/`), named by the time, never in the reports directory (the
/// next `fleet DIR` would read it as a report).
pub fn default_ticket_path() -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let name = format!("fleet-{stamp}.ticket.md");
    crate::journal::sessions_dir()
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf))
        .map_or_else(|| PathBuf::from(&name), |d| d.join(&name))
}

/// The terminal is needed on both ends: else one line saying what works instead.
pub fn usable(inputs: &[PathBuf]) -> Result<(), crate::cli::UsageError> {
    use std::io::IsTerminal as _;
    let term = std::env::var("TERM").ok();
    crate::tui::terminal::check(
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
        term.as_deref(),
    )
    .map_err(|why| {
        crate::cli::UsageError(format!(
            "the fleet view needs a terminal: {}; without one, run `triage502 fleet {} --format md`",
            crate::tui::terminal::what(&why),
            inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ))
    })
}

/// `fleet --tui`: show `report` until the operator quits; the terminal is restored on every
/// way out. Returns where the ticket was written, if it was.
pub fn run(
    report: FleetReport,
    inputs: &[PathBuf],
    files: usize,
    save_to: Option<PathBuf>,
    ascii: bool,
) -> anyhow::Result<(FleetReport, Option<PathBuf>)> {
    use crate::tui::app::Msg;
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = FleetApp::new(
        report,
        inputs,
        files,
        save_to.unwrap_or_else(default_ticket_path),
        Theme { ascii, color },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let res: anyhow::Result<()> = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        crate::tui::spawn_inputs(&tx)?;
        let mut guard =
            crate::tui::terminal::TerminalGuard::new().context("cannot set up the terminal")?;
        let term = &mut guard.terminal;
        term.draw(|f| render(&app, f))?;
        while !app.quit {
            let Some(msg) = rx.recv().await else { break };
            let redraw = match msg {
                Msg::Key(k) => {
                    if let Some(FleetCommand::Clipboard(text)) = app.update(k) {
                        use std::io::Write as _;
                        let mut out = std::io::stdout();
                        let _ = out.write_all(crate::tui::clipboard::osc52(&text).as_bytes());
                        let _ = out.flush();
                    }
                    true
                }
                Msg::Mouse(m) => {
                    app.wheel(m.kind == MouseEventKind::ScrollUp);
                    true
                }
                Msg::Resize(..) => true,
                Msg::Signal(_) => {
                    app.quit = true;
                    false
                }
                _ => false,
            };
            if redraw && !app.quit {
                term.draw(|f| render(&app, f))?;
            }
        }
        drop(guard);
        Ok(())
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    res?;
    Ok((app.report, app.ticket_file))
}

/// The exit status and what is printed after the view closed, as the CLI does.
pub fn after(report: &FleetReport, ticket_file: Option<&Path>) -> ExitCode {
    use std::io::Write as _;
    for u in &report.unreadable {
        eprintln!("triage502 fleet: skipped {}: {}", u.file, u.error);
    }
    let mut out = std::io::stdout();
    if let Some(p) = ticket_file {
        let _ = writeln!(out, "triage502 fleet: ticket written to {}", p.display());
    }
    let _ = writeln!(out, "triage502 fleet: {}", report.ticket.title);
    if report.all_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
