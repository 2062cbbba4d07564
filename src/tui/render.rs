//! Rendering: a pure function of the app state, one function per region.
//!
//! Nothing here changes the app or reads the clock; the elapsed time of a
//! check is `app.now - slot.started`, and `app.now` only moves on `Tick`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::engine::{Effect, Engine, Record, Step};
use crate::playbook::EndKind;
use crate::report::{one_line, rank};
use crate::tui::app::{App, Overlay};
use crate::tui::help::HELP;
use crate::tui::keymap::Screen;
use crate::tui::theme::{Mark, Theme};
use crate::tui::{evidence, search};

mod sessions;

pub(crate) fn theme(app: &App) -> Theme {
    Theme {
        ascii: app.setup.ascii,
        color: app.setup.color,
    }
}

pub(crate) fn block<'a>(t: Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .border_set(t.border())
        .padding(ratatui::widgets::Padding::horizontal(1))
        .title(title.into().style(t.title()))
}

/// The whole screen.
///
/// ```text
///  triage502 · playbook · URL · last 1h · read-only     <- header
/// +- Path ------+ +- Step: title ---------------------+
/// | ✓ Probe     | | guidance / question / action /   |
/// | ▸ Current   | | conclusion                       |
/// |             | +- Checks --------------------------+
/// |             | | ⠋ http GET ...   1.2s / 10s       |
/// |             | +- Evidence ------------------------+
/// |             | | scrollable                        |
/// +-------------+ +-----------------------------------+
/// +- Findings (ranked) -------------------------------+
/// +---------------------------------------------------+
///  Enter continue · b back · ... · ? help · q quit    <- hints
/// ```
/// The start screen replaces everything below the header; help, ticket and
/// the quit question are drawn over it.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let [header, body, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(app, frame, header);
    render_hints(app, frame, hints);
    if app.engine.is_none() && app.sessions.is_some() {
        sessions::render(app, frame, body);
    } else if app.engine.is_none() {
        render_start(app, frame, body);
    } else {
        render_walk(app, frame, body);
    }
    match app.overlay {
        Some(Overlay::Help) => render_help(app, frame, body),
        Some(Overlay::Guidance) => render_guidance(app, frame, body),
        Some(Overlay::Ticket) => render_ticket(app, frame, body),
        Some(Overlay::ConfirmQuit) => render_quit(app, frame, area),
        Some(Overlay::Note) => render_note(app, frame, body),
        Some(Overlay::ActionResult) => render_action_result(app, frame, body),
        Some(Overlay::Map) => crate::tui::map::render(app, frame, body),
        Some(Overlay::Watch) => crate::tui::watch::render(app, frame, body),
        Some(Overlay::Hop) => crate::tui::hop::render(app, frame, body),
        None => {}
    }
}

fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let d = t.dot();
    let mut spans = vec![Span::styled(" triage502 ", t.title())];
    if !app.setup.playbook.is_empty() {
        spans.push(Span::raw(format!("{d} {} ", app.setup.playbook)));
    }
    if let Some(u) = &app.url {
        spans.push(Span::raw(format!("{d} {u} ")));
    }
    spans.push(Span::raw(format!("{d} last {} ", app.setup.since)));
    if app.setup.read_only {
        spans.push(Span::styled(
            format!("{d} READ-ONLY"),
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    } else if let Some(max) = app.setup.max_tier {
        spans.push(Span::styled(
            format!("{d} max tier {max}"),
            t.fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn hints_for(app: &App) -> &'static str {
    match app.screen() {
        Screen::UrlPrompt => "type the URL · Enter start · F1 help · Esc quit",
        Screen::Start => "Enter start · ? help · q quit",
        Screen::Step if app.is_running() => {
            "checks running · Esc cancel · r re-run · ↑↓ evidence · ? help · q quit"
        }
        Screen::Step => "Enter continue · b back · r re-run · n note · t ticket · ? help · q quit",
        Screen::Question => "1-9/↑↓+Enter choose · b back · n note · t ticket · ? help · q quit",
        Screen::Action if app.plan.as_ref().is_some_and(|p| !p.runnable()) => {
            "Enter / n go on (not run) · b back · t ticket · ? help · q quit"
        }
        Screen::Action => "y confirm · n / Enter decline · b back · t ticket · ? help · q quit",
        Screen::ActionTyped => "type the name + Enter to confirm · Esc decline · F1 help",
        Screen::Done => "Enter/t ticket · b back · n note · ↑↓ evidence · ? help · q quit",
        Screen::Help | Screen::Guidance | Screen::ActionResult => "↑↓ PgUp PgDn scroll · Esc close",
        Screen::Ticket => "w write file · y copy (OSC 52) · ↑↓ scroll · Esc close",
        Screen::Note => "type the note · Enter save · Esc cancel",
        Screen::Executing => "the action is running; wait for its result · Ctrl-C quit",
        Screen::ConfirmQuit => "y quit · n stay",
        Screen::Hop => "y hop · n / Esc close · ↑↓ scroll · Ctrl-C quit",
        Screen::Map => crate::tui::map::HINTS,
        Screen::Watch => crate::tui::watch::HINTS,
        Screen::SearchInput => "type to search the evidence · Enter keep · Esc clear",
        Screen::Searched(_) => "n next · N previous match · / new search · Esc clear · ? help",
        Screen::Sessions => "↑↓ or 1-9 choose · Enter continue it · ? help · q quit",
    }
}

/// Keys of the walk screens that fit only on a wide terminal (at 80 columns
/// the help window lists them).
const WIDE_HINTS: &str = " · / search · m map · w watch";

fn render_hints(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let mut text = hints_for(app).to_owned();
    let walk = matches!(app.screen(), Screen::Step | Screen::Question | Screen::Done);
    if walk
        && app.notice.is_none()
        && usize::from(area.width) > text.chars().count() + WIDE_HINTS.chars().count() + 1
    {
        text.push_str(WIDE_HINTS);
    }
    if app.setup.ascii {
        text = text.replace('·', "|").replace("↑↓", "Up/Down");
    }
    let line = match &app.notice {
        _ if app.screen() == Screen::SearchInput => search_field(app, t, &text),
        Some(n) => Line::from(vec![
            Span::styled(
                format!(" {n} "),
                t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!(" {text}"), t.dim()),
        ]),
        None => Line::from(Span::styled(format!(" {text}"), t.dim())),
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The start screen.
///
/// ```text
/// +- Start: diagnose a 502 ---------------------------+
/// | Playbook   502 (title) v0.1.0                     |
/// | URL        [http://...            ]  / why not    |
/// | Window     logs from the last 1h                  |
/// | Mode       read-only | actions ask first          |
/// +---------------------------------------------------+
/// ```
fn render_start(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let pb = app.setup.library.get(&app.setup.playbook);
    let mut lines = vec![Line::raw("")];
    let title = pb.map_or_else(String::new, |p| format!("{} v{}", p.title, p.version));
    lines.push(Line::from(vec![
        Span::styled("  Playbook  ", t.dim()),
        Span::raw(format!("{} ({title})", app.setup.playbook)),
    ]));
    if let Some(d) = pb.map(|p| p.description.trim()).filter(|d| !d.is_empty()) {
        lines.push(Line::from(vec![
            Span::raw("            "),
            // The playbook's own line breaks are not the screen's: reflow.
            Span::styled(d.split_whitespace().collect::<Vec<_>>().join(" "), t.dim()),
        ]));
    }
    if app.editing_url {
        lines.push(Line::from(vec![
            Span::styled("  URL       ", t.dim()),
            Span::styled(format!("{}_", app.url_input), t.selected()),
        ]));
        let (msg, style) = match &app.url_error {
            Some(e) if !app.url_input.is_empty() => (e.clone(), t.fg(Color::Red)),
            Some(e) => (e.clone(), t.dim()),
            None => ("looks valid: Enter to start".into(), t.fg(Color::Green)),
        };
        lines.push(Line::from(vec![
            Span::raw("            "),
            Span::styled(msg, style),
        ]));
    } else {
        let u = app
            .url
            .clone()
            .unwrap_or_else(|| "(not needed by this playbook)".into());
        lines.push(Line::from(vec![
            Span::styled("  URL       ", t.dim()),
            Span::raw(u),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled("  Window    ", t.dim()),
        Span::raw(format!(
            "logs and events from the last {} (--since)",
            app.setup.since
        )),
    ]));
    let mode = if app.setup.read_only {
        "read-only: actions are shown, never run (--read-only)"
    } else {
        "checks only read; every action asks before it runs"
    };
    lines.push(Line::from(vec![
        Span::styled("  Mode      ", t.dim()),
        Span::raw(mode),
    ]));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "  Checks only read: nothing on the server is changed without your yes.",
        t.dim(),
    ));
    let b = block(t, " Start: diagnose a 502 Bad Gateway ");
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(b),
        area,
    );
}

/// The walk: path on the left, the current step on the right, findings below.
fn render_walk(app: &App, frame: &mut Frame, area: Rect) {
    let Some(engine) = &app.engine else { return };
    let findings = findings_lines(app, engine);
    let findings_h = wrapped_height(&findings, area.width.saturating_sub(4)).clamp(1, 4) + 2;
    let [top, findings_area] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(findings_h)]).areas(area);
    let path_w = (area.width / 3).clamp(18, 40);
    let [path, main] =
        Layout::horizontal([Constraint::Length(path_w), Constraint::Min(20)]).areas(top);
    render_path(app, engine, frame, path);
    render_findings(app, engine, findings, frame, findings_area);
    // The action dialog needs the room: the checks stay in the path and evidence.
    let offer = matches!(engine.effect(), Effect::Offer(_));
    let checks = checks_content(app, engine).filter(|_| !offer);
    let checks_h = checks.as_ref().map_or(0, |(_, l)| {
        wrapped_height(l, main.width.saturating_sub(4)).min(main.height / 3) + 2
    });
    let focus = focus_content(app, engine);
    let room = main.height.saturating_sub(checks_h + 3).max(4);
    let focus_h = focus.height(main.width).clamp(4, room);
    let [node, checks_area, evidence] = Layout::vertical([
        Constraint::Length(focus_h),
        Constraint::Length(checks_h),
        Constraint::Min(3),
    ])
    .areas(main);
    render_focus(app, focus, frame, node);
    if let Some(c) = checks {
        render_checks(app, c, frame, checks_area);
    }
    render_evidence(app, engine, frame, evidence);
}

fn mark_of(step: &Step) -> Mark {
    match &step.record {
        Record::Checks { outcome, .. } => Mark::from(*outcome),
        Record::Action {
            result: Some(r), ..
        } => {
            if r.ok {
                Mark::Ok
            } else {
                Mark::Problem
            }
        }
        Record::Action { .. } | Record::Routed { .. } | Record::LoopLimit => Mark::Skipped,
        Record::End {
            end: EndKind::Escalate,
        }
        | Record::Return {
            end: EndKind::Escalate,
        } => Mark::Problem,
        Record::End { .. } | Record::Return { .. } => Mark::Ok,
        Record::Answer { .. } | Record::Read | Record::Call { .. } => Mark::Visited,
    }
}

fn step_detail(step: &Step) -> Option<String> {
    match &step.record {
        Record::Answer { label, .. } => Some(label.clone()),
        Record::Action {
            declined: Some(_), ..
        } => Some("not run".into()),
        _ => None,
    }
}

/// The path so far, each step with its mark, and the current step.
fn render_path(app: &App, engine: &Engine, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let mut lines: Vec<Line> = engine
        .trail()
        .iter()
        .map(|s| {
            let m = mark_of(s);
            let mut spans = vec![
                Span::styled(format!("{} ", t.mark(m)), t.mark_style(m)),
                Span::raw(s.title.clone()),
            ];
            if let Some(d) = step_detail(s) {
                spans.push(Span::styled(format!(": {d}"), t.dim()));
            }
            Line::from(spans)
        })
        .collect();
    if !matches!(engine.effect(), Effect::Done(_))
        && let Some((_, node)) = engine.current()
    {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} ", t.mark(Mark::Current)),
                t.mark_style(Mark::Current),
            ),
            Span::styled(
                node.title.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
        ]));
    }
    // Keep the newest steps visible: drop the oldest until the wrapped
    // rows fit, and say how many are hidden.
    let inner_h = area.height.saturating_sub(2);
    let width = area.width.saturating_sub(4);
    let mut skip = 0;
    while skip < lines.len()
        && wrapped_height(&lines[skip..], width) + u16::from(skip > 0) > inner_h
    {
        skip += 1;
    }
    let mut shown: Vec<Line> = Vec::new();
    if skip > 0 {
        shown.push(Line::styled(format!("({skip} earlier)"), t.dim()));
    }
    shown.extend(lines.into_iter().skip(skip));
    let lines = shown;
    let title = format!(" Path ({} steps) ", engine.trail().len());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(t, title)),
        area,
    );
}

/// The findings so far, ranked (root causes first), one wrapped line each.
fn findings_lines(app: &App, engine: &Engine) -> Vec<Line<'static>> {
    let t = theme(app);
    let ranked = rank(engine.findings());
    // What could not be seen comes first: it bounds what the findings can say.
    let unseen = crate::report::unseen(engine);
    let mut head: Vec<Line<'static>> = unseen
        .iter()
        .map(|u| {
            Line::from(vec![
                Span::styled(
                    "Not seen: ",
                    t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("{} ({}); {}", u.what, one_line(&u.why), u.how)),
            ])
        })
        .collect();
    if ranked.is_empty() {
        head.push(Line::styled("none yet", t.dim()));
        return head;
    }
    head.extend(ranked.iter().enumerate().map(|(i, f)| {
        Line::from(vec![
            Span::styled(format!("{}. ", i + 1), t.dim()),
            Span::styled(
                f.cause.info().title.clone(),
                t.fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!(" [{}] ", f.severity), t.dim()),
            Span::raw(one_line(&f.summary)),
        ])
    }));
    head
}

fn render_findings(
    app: &App,
    engine: &Engine,
    lines: Vec<Line<'static>>,
    frame: &mut Frame,
    area: Rect,
) {
    let title = format!(
        " Findings ({}, most likely first) ",
        engine.findings().len()
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(theme(app), title)),
        area,
    );
}

fn last_checks(engine: &Engine) -> Option<(&Step, &[crate::check::CheckReport])> {
    engine.trail().iter().rev().find_map(|s| match &s.record {
        Record::Checks { reports, .. } => Some((s, reports.as_slice())),
        _ => None,
    })
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The checks running now (spinner, elapsed / timeout), or the summaries of
/// the last ones.
fn checks_content(app: &App, engine: &Engine) -> Option<(String, Vec<Line<'static>>)> {
    let t = theme(app);
    let (title, lines): (String, Vec<Line>) = if app.running.is_empty() {
        let (step, reports) = last_checks(engine)?;
        let lines = reports
            .iter()
            .map(|r| {
                let m = Mark::from(r.outcome);
                Line::from(vec![
                    Span::styled(format!("{} ", t.mark(m)), t.mark_style(m)),
                    Span::styled(format!("{}: ", r.label), t.dim()),
                    Span::raw(one_line(&r.summary)),
                ])
            })
            .collect();
        (format!(" Checks of {} ", step.title), lines)
    } else {
        let done = app.running.iter().filter(|s| s.report.is_some()).count();
        let lines = app
            .running
            .iter()
            .map(|s| {
                if let Some(r) = &s.report {
                    let m = Mark::from(r.outcome);
                    Line::from(vec![
                        Span::styled(format!("{} ", t.mark(m)), t.mark_style(m)),
                        Span::styled(format!("{}: ", s.label), t.dim()),
                        Span::raw(one_line(&r.summary)),
                    ])
                } else {
                    let el = app.now.saturating_duration_since(s.started);
                    Line::from(vec![
                        Span::styled(format!("{} ", t.spinner(app.ticks)), t.fg(Color::Cyan)),
                        Span::raw(format!("{} ", s.label)),
                        Span::styled(format!("{} / {}", secs(el), secs(s.timeout)), t.dim()),
                    ])
                }
            })
            .collect();
        let state = if app.is_running() { "running" } else { "done" };
        (
            format!(" Checks {state}: {done}/{} ", app.running.len()),
            lines,
        )
    };
    Some((title, lines))
}

fn render_checks(app: &App, content: (String, Vec<Line<'static>>), frame: &mut Frame, area: Rect) {
    let (title, lines) = content;
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(theme(app), title)),
        area,
    );
}

/// What the focus panel shows: its heading, the reflowed guidance, and the
/// interactive part (question and choices, action, verdict) that must stay
/// fully visible.
struct Focus {
    heading: String,
    guidance: Vec<Line<'static>>,
    tail: Vec<Line<'static>>,
}

impl Focus {
    /// Rows the panel needs at `width` (borders included).
    fn height(&self, width: u16) -> u16 {
        let w = width.saturating_sub(4);
        wrapped_height(&self.guidance, w) + wrapped_height(&self.tail, w) + 2
    }
}

fn focus_content(app: &App, engine: &Engine) -> Focus {
    let t = theme(app);
    let title = engine
        .current()
        .map(|(_, n)| n.title.clone())
        .unwrap_or_default();
    let guidance = engine.guidance();
    let mut lines: Vec<Line> = Vec::new();
    let heading = match engine.effect() {
        Effect::RunChecks { .. } => {
            lines.push(Line::styled(
                "Running the checks of this step; nothing is changed.",
                t.dim(),
            ));
            format!(" Step: {title} ")
        }
        Effect::Inform { .. } => {
            lines.push(Line::styled(
                "Press Enter when you have read this.",
                t.dim(),
            ));
            format!(" Step: {title} ")
        }
        Effect::Ask {
            text,
            choices,
            default,
            ..
        } => {
            lines.push(Line::styled(
                text.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            for (i, (id, label)) in choices.iter().enumerate() {
                let def = if id == default { "  (default)" } else { "" };
                let style = if i == app.selected {
                    t.selected()
                } else {
                    Style::default()
                };
                lines.push(Line::styled(format!(" {}. {label}{def}", i + 1), style));
            }
            format!(" Question: {title} ")
        }
        Effect::Offer(a) => {
            action_lines(app, a, &mut lines);
            format!(" Action: {} ", a.title)
        }
        Effect::Done(c) => {
            let verdict = match c.end {
                Some(EndKind::Resolved) => "Resolved: the walk ended here.",
                Some(EndKind::Escalate) => {
                    "Escalate: send the ticket to hosting support (t shows it)."
                }
                None => "Cut short: a loop never exited; the ticket says where.",
            };
            lines.push(Line::styled(
                verdict,
                Style::default().add_modifier(Modifier::BOLD),
            ));
            if let Some(n) = &c.note {
                lines.push(Line::raw(n.clone()));
            }
            let top = rank(engine.findings());
            match top.first() {
                Some(f) => {
                    let info = f.cause.info();
                    lines.push(Line::raw(format!(
                        "Most likely: {} ({})",
                        info.title, f.cause
                    )));
                    if let Some(fix) = info.fixes.first() {
                        lines.push(Line::raw(format!("Fix: {fix}")));
                    }
                }
                None => lines.push(Line::raw("No cause was established.")),
            }
            format!(" Done: {title} ")
        }
    };
    let guidance: Vec<Line> = reflow(&guidance)
        .lines()
        .map(|l| Line::raw(l.to_owned()))
        .collect();
    if !guidance.is_empty() {
        lines.insert(0, Line::raw(""));
    }
    Focus {
        heading,
        guidance,
        tail: lines,
    }
}

/// The focus panel: guidance on top (cut with a note when the terminal is
/// too small), the question, action or verdict always whole at the bottom.
fn render_focus(app: &App, focus: Focus, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let Focus {
        heading,
        guidance: g_lines,
        tail: lines,
    } = focus;
    let b = block(t, heading);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let tail_h = wrapped_height(&lines, inner.width).min(inner.height);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(tail_h)]).areas(inner);
    let clipped = wrapped_height(&g_lines, top.width) > top.height;
    let g = Paragraph::new(g_lines).wrap(Wrap { trim: false });
    let tail = Paragraph::new(lines).wrap(Wrap { trim: false });
    if clipped {
        let note = Paragraph::new(Line::styled("... g shows all of it", t.dim()));
        if top.height >= 1 {
            let [text, more] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(top);
            frame.render_widget(g, text);
            frame.render_widget(note, more);
            frame.render_widget(tail, bottom);
        } else {
            // No room at all: the note takes the blank row above the tail.
            frame.render_widget(tail, bottom);
            frame.render_widget(
                Clear,
                Rect {
                    height: 1,
                    ..bottom
                },
            );
            frame.render_widget(
                note,
                Rect {
                    height: 1,
                    ..bottom
                },
            );
        }
    } else {
        frame.render_widget(g, top);
        frame.render_widget(tail, bottom);
    }
}

/// Lines needed to show `lines` word-wrapped at `width` (greedy, like
/// ratatui's wrapping; a word longer than the width is split).
pub fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    let mut total = 0usize;
    for line in lines {
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        let mut rows = 1usize;
        let mut cur = 0usize;
        for word in text.split(' ') {
            let n = word.chars().count();
            let need = if cur == 0 { n } else { cur + 1 + n };
            if need <= w {
                cur = need;
            } else if n <= w {
                rows += 1;
                cur = n;
            } else {
                rows += usize::from(cur > 0) + (n - 1) / w;
                cur = n % w;
            }
        }
        total += rows;
    }
    total.min(usize::from(u16::MAX)) as u16
}

/// Join the hard-wrapped lines of each paragraph of playbook text (blank
/// lines separate paragraphs; list items keep their own line).
pub fn reflow(text: &str) -> String {
    let mut out = String::new();
    for line in text.trim().lines().map(str::trim) {
        let item = line.starts_with("- ")
            || line.starts_with("* ")
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        if line.is_empty() {
            out.push_str("\n\n");
        } else if out.is_empty() || out.ends_with('\n') {
            out.push_str(line);
        } else if item {
            out.push('\n');
            out.push_str(line);
        } else {
            out.push(' ');
            out.push_str(line);
        }
    }
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    out
}

fn action_lines(app: &App, a: &crate::engine::PlannedAction, lines: &mut Vec<Line<'static>>) {
    let t = theme(app);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let Some(plan) = &app.plan else {
        lines.push(Line::from(vec![
            Span::styled("Tier: ", t.dim()),
            Span::styled(
                a.tier.to_string(),
                t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("  {}", a.description)),
        ]));
        lines.push(Line::styled(
            format!(
                "{} preparing the details (nothing runs yet)",
                t.spinner(app.ticks)
            ),
            t.dim(),
        ));
        return;
    };
    lines.push(Line::from(vec![
        Span::styled("Tier: ", t.dim()),
        Span::styled(
            plan.tier.to_string(),
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("  {}", plan.what)),
    ]));
    // The diff is what the operator consents to: first, before the commands.
    if let Some(d) = &plan.detail {
        let rows = crate::tui::app::DIFF_ROWS;
        let all = crate::tui::app::diff_rows(d);
        let from = usize::from(app.plan_scroll).min(all.len().saturating_sub(rows));
        if all.len() > rows {
            lines.push(Line::styled(
                format!(
                    "Diff, lines {}-{} of {} (up/down scroll):",
                    from + 1,
                    (from + rows).min(all.len()),
                    all.len()
                ),
                t.dim(),
            ));
        }
        for l in all.iter().skip(from).take(rows) {
            let style = if l.starts_with('+') && !l.starts_with("+++") {
                t.fg(Color::Green)
            } else if l.starts_with('-') && !l.starts_with("---") {
                t.fg(Color::Red)
            } else {
                t.dim()
            };
            lines.push(Line::styled(format!("  {l}"), style));
        }
    }
    lines.push(Line::styled("Runs exactly (no shell):", t.dim()));
    for c in &plan.commands {
        lines.push(Line::styled(format!("  {c}"), bold));
    }
    if !plan.affects.is_empty() {
        lines.push(Line::raw(format!("Affects: {}", plan.affects.join("; "))));
    }
    lines.push(Line::raw(format!("Undo: {}", plan.undo)));
    if let Some(started) = app.executing {
        lines.push(Line::styled(
            format!(
                "{} running... {} (then the URL is probed {} times)",
                t.spinner(app.ticks),
                secs(app.now.saturating_duration_since(started)),
                crate::tui::app::VERIFY_PROBES
            ),
            t.fg(Color::Cyan),
        ));
        return;
    }
    let prompt = if let Some(r) = app.refusal(a) {
        format!("Not run: {r}. Enter or n to go on.")
    } else {
        match plan.confirmation() {
            crate::action::Confirmation::Yes => "Run it? y = yes, n = no".to_owned(),
            crate::action::Confirmation::Type(name) => {
                format!("To confirm, type `{name}` and Enter: {}_", app.typed)
            }
        }
    };
    lines.push(Line::styled(prompt, t.fg(Color::Yellow)));
}

/// The `/` field on the hints line: the query, the match count, the keys.
fn search_field(app: &App, t: Theme, keys: &str) -> Line<'static> {
    let Some(s) = &app.search else {
        return Line::raw("");
    };
    let count = app.engine.as_ref().map_or_else(String::new, |e| {
        s.indicator(&search::hits(&evidence::lines(e), &s.query))
    });
    Line::from(vec![
        Span::styled(format!(" /{}_", s.query), t.selected()),
        Span::styled(
            format!(" {count} "),
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!(" {keys}"), t.dim()),
    ])
}

/// Evidence of the last checks (or of the findings when the walk is done),
/// scrolled by whole lines; with a search, its matches marked and the
/// current one kept in view.
fn render_evidence(app: &App, engine: &Engine, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let ev = evidence::lines(engine);
    let search = app.search.as_ref();
    let hits = search
        .map(|s| search::hits(&ev, &s.query))
        .unwrap_or_default();
    let current = search.and_then(|s| s.current_hit(&hits));
    let mark = t.mark(Mark::Current);
    let mut lines: Vec<Line> = Vec::with_capacity(ev.len());
    let mut next_hit = 0;
    for (i, l) in ev.iter().enumerate() {
        let first = next_hit;
        while next_hit < hits.len() && hits[next_hit].line == i {
            next_hit += 1;
        }
        let base = if l.heading {
            t.title()
        } else {
            Style::default()
        };
        let on_line = &hits[first..next_hit];
        let here = current.filter(|c| c.line == i);
        lines.push(Line::from(search::spans(
            &l.text,
            base,
            on_line,
            here,
            here.map(|_| mark),
        )));
    }
    if lines.is_empty() {
        lines.push(Line::styled("no evidence yet", t.dim()));
    }
    let total = lines.len();
    let title = match search {
        Some(s) if !s.query.is_empty() => format!(
            " Evidence ({total} lines) /{}: {} ",
            s.query,
            s.indicator(&hits)
        ),
        _ => format!(" Evidence ({total} lines, ↑↓ scroll) "),
    };
    let title = if app.setup.ascii {
        title.replace("↑↓", "Up/Down")
    } else {
        title
    };
    let b = block(t, title);
    let inner = b.inner(area);
    let mut top = usize::from(app.evidence_scroll).min(lines.len().saturating_sub(1));
    if let Some(c) = current {
        // Keep the current match in view, whatever the panel's size.
        if c.line < top || wrapped_height(&lines[top..=c.line], inner.width) > inner.height {
            top = c.line;
        }
    }
    frame.render_widget(
        Paragraph::new(lines.split_off(top))
            .wrap(Wrap { trim: false })
            .block(b),
        area,
    );
}

fn popup(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Help over the body: keys, marks, and the questions operators ask.
fn render_help(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let r = popup(area, 100, area.height);
    frame.render_widget(Clear, r);
    let marks = [
        Mark::Ok,
        Mark::Problem,
        Mark::Inconclusive,
        Mark::Skipped,
        Mark::Visited,
        Mark::Current,
    ]
    .iter()
    .zip([
        "ok",
        "problem",
        "inconclusive",
        "skipped",
        "answered",
        "current",
    ])
    .map(|(m, w)| format!("{} {w}", t.mark(*m)))
    .collect::<Vec<_>>()
    .join("  ");
    let text = HELP.replace("{marks}", &marks);
    let text = if app.setup.ascii {
        text.replace('·', "|").replace("↑↓", "Up/Down")
    } else {
        text
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .scroll((app.overlay_scroll, 0))
            .block(block(t, " Help (Esc closes) ")),
        r,
    );
}

/// The current step's guidance (and question) in full, scrollable.
fn render_guidance(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let Some(engine) = &app.engine else { return };
    let focus = focus_content(app, engine);
    let mut lines = focus.guidance;
    lines.extend(focus.tail);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.overlay_scroll, 0))
            .block(block(t, format!("{}(Esc closes) ", focus.heading))),
        area,
    );
}

/// The support ticket preview (rendered from the journal, redacted), with
/// what redaction masked, scrollable.
fn render_ticket(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let masked = match &app.ticket {
        Some(Ok(x)) => masked_line(&x.masked),
        Some(Err(_)) => "Not rendered.".to_owned(),
        None if app.journal.is_none() => {
            "Not journalled: this preview is the walk report (redacted).".to_owned()
        }
        None => format!("{} rendering...", t.spinner(app.ticks)),
    };
    text_window(
        t,
        frame,
        area,
        " Ticket preview (Esc closes) ",
        &masked,
        &app.ticket_text(),
        app.overlay_scroll,
    );
}

/// "Masked before export: ..." for what redaction masked in an export.
pub(crate) fn masked_line(masked: &[crate::redact::Masked]) -> String {
    if masked.is_empty() {
        return "Masked before export: nothing needed masking.".to_owned();
    }
    let mut kinds: Vec<&str> = masked.iter().map(|m| m.what.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    format!(
        "Masked before export: {} item(s): {}",
        masked.len(),
        kinds.join(", ")
    )
}

/// A document window over `area` (the ticket preview; the fleet's host reports and ticket):
/// one highlighted line (what was masked), then the Markdown text, wrapped and scrolled.
pub(crate) fn text_window(
    t: Theme,
    frame: &mut Frame,
    area: Rect,
    title: &str,
    head: &str,
    text: &str,
    scroll: u16,
) {
    let r = popup(area, 120, area.height);
    frame.render_widget(Clear, r);
    let mut lines = vec![
        Line::styled(head.to_owned(), t.fg(Color::Yellow)),
        Line::raw(""),
    ];
    lines.extend(text.lines().map(|l| Line::raw(l.to_owned())));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block(t, title.to_owned())),
        r,
    );
}

/// The note field.
fn render_note(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let r = popup(area, 76, 7);
    frame.render_widget(Clear, r);
    let lines = vec![
        Line::styled(
            "A note for the journal and the ticket, at this step:",
            t.dim(),
        ),
        Line::raw(format!("> {}_", app.note_input)),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(t, " Note (Enter saves, Esc cancels) ")),
        r,
    );
}

/// What the action did: exit status, duration, output, and before/after.
fn render_action_result(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let r = popup(area, 110, area.height);
    frame.render_widget(Clear, r);
    let mut lines: Vec<Line> = Vec::new();
    if let Some((x, verified)) = &app.last_action {
        let res = &x.result;
        if let Some(why) = &x.refused {
            lines.push(Line::styled(format!("Not run: {why}"), t.fg(Color::Yellow)));
        } else {
            let (word, color) = if res.ok {
                ("succeeded", Color::Green)
            } else {
                ("FAILED", Color::Red)
            };
            let code = res
                .exit_code
                .map_or_else(String::new, |c| format!(", exit status {c}"));
            lines.push(Line::styled(
                format!("The action {word}{code}, in {} ms.", res.duration_ms),
                t.fg(color).add_modifier(Modifier::BOLD),
            ));
        }
        lines.push(Line::raw(res.summary.clone()));
        if let Some(v) = verified {
            let fixed = if v.fixed() {
                "the URL answers again"
            } else {
                "the URL still fails"
            };
            lines.push(Line::styled(
                format!("Verify-after-fix: {fixed}"),
                t.title(),
            ));
            for p in &v.before {
                lines.push(Line::raw(format!("  before: {}", p.describe())));
            }
            for p in &v.after {
                lines.push(Line::raw(format!("  after:  {}", p.describe())));
            }
        }
        for line in app.undo.still_changed() {
            lines.push(Line::styled(
                format!("Still changed: {line}"),
                t.fg(Color::Yellow),
            ));
        }
        if !res.output.trim().is_empty() {
            lines.push(Line::styled("Output:", t.dim()));
            for l in res.output.lines().take(200) {
                lines.push(Line::raw(format!("  {l}")));
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.overlay_scroll, 0))
            .block(block(t, " Action result (Esc closes) ")),
        r,
    );
}

fn render_quit(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let mut lines = vec![Line::raw("Quit triage502?")];
    if let Some(j) = &app.journal {
        lines.push(Line::styled(
            format!("The session is saved ({}).", j.id()),
            t.dim(),
        ));
    }
    for c in app.undo.still_changed() {
        lines.push(Line::styled(
            format!("Still changed: {c}"),
            t.fg(Color::Yellow),
        ));
    }
    if app.executing.is_some() {
        lines.push(Line::styled(
            "An action is running: quitting stops it; its result is not recorded.",
            t.fg(Color::Red),
        ));
    }
    lines.push(Line::styled("y = quit, n or Esc = stay", t.dim()));
    let h = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2)
        .max(5);
    let r = popup(area, 60, h);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(t, " Quit ")),
        r,
    );
}
