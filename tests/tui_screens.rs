//! Every screen of the wizard on `TestBackend` at 80x24 and 120x40, fed with
//! synthetic messages (no ticks, so every elapsed time is 0.0s and the report
//! says 0 ms; check reports carry fixed durations; the start time is fixed).

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use triage502::cause::{Cause, Severity};
use triage502::check::{CheckReport, Evidence, Outcome};
use triage502::duration::HumanDuration;
use triage502::playbook::library::{Library, Origin, Source};
use triage502::runner::RunnerEvent;
use triage502::tui::app::{App, Command, Msg, Setup};
use triage502::tui::render::render;

const WALK: &str = include_str!("tui_walk.toml");
const URL: &str = "http://127.0.0.1:8080/checkout";

fn setup(ascii: bool, read_only: bool) -> Setup {
    let (lib, failures) = Library::from_sources(vec![Source {
        origin: Origin::Embedded("tui_walk.toml"),
        text: WALK.into(),
    }]);
    assert!(failures.is_empty(), "{}", failures[0].rendered);
    Setup {
        library: Arc::new(lib),
        playbook: "tuitest".into(),
        vars: vec![],
        read_only,
        since: HumanDuration(Duration::from_secs(3600)),
        ascii,
        color: true,
    }
}

fn app(url: Option<&str>) -> App {
    App::new(
        setup(false, false),
        url.map(str::to_owned),
        "2026-01-02T03:04:05Z".parse().unwrap(),
    )
}

fn key(app: &mut App, code: KeyCode) -> Option<Command> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    t
}

fn screen_text(app: &App, w: u16, h: u16) -> String {
    let t = draw(app, w, h);
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..h {
        for x in 0..w {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

/// Snapshot the screen at both sizes.
fn snap(app: &App, name: &str) {
    insta::assert_snapshot!(format!("{name}_80x24"), screen_text(app, 80, 24));
    insta::assert_snapshot!(format!("{name}_120x40"), screen_text(app, 120, 40));
}

fn probe_reports() -> Vec<CheckReport> {
    let mut http = CheckReport::new(
        "http",
        format!("GET {URL}"),
        Outcome::Problem,
        "answered 502 Bad Gateway in 12 ms (server: nginx)",
    )
    .with_evidence(Evidence::new("status", "HTTP 502 Bad Gateway from 127.0.0.1:8080").at(URL))
    .with_evidence(Evidence::new(
        "headers",
        "server: nginx\ncontent-type: text/html",
    ))
    .diagnose(
        Cause::UpstreamRefused,
        Severity::High,
        "nginx could not connect to the upstream",
        vec![],
    );
    http.duration_ms = 12;
    let mut tcp = CheckReport::new(
        "tcp",
        "connect 127.0.0.1:9",
        Outcome::Problem,
        "connection refused",
    );
    tcp.duration_ms = 1;
    vec![http, tcp]
}

/// Start the walk and deliver the probe results.
fn at_question() -> App {
    let mut a = app(Some(URL));
    let Some(Command::Run { batch, checks }) = key(&mut a, KeyCode::Enter) else {
        panic!("Enter on the start screen must run the first checks");
    };
    assert_eq!(checks.len(), 2);
    for (index, report) in probe_reports().into_iter().enumerate() {
        a.update(Msg::Runner(RunnerEvent::Finished {
            batch,
            index,
            report,
        }));
    }
    a
}

#[test]
fn start_screen_asks_for_the_url_and_validates_it_as_typed() {
    let mut a = app(None);
    snap(&a, "start_url_empty");
    typed(&mut a, "htp:/x");
    let bad = screen_text(&a, 80, 24);
    assert!(bad.contains("htp:/x_"), "{bad}");
    assert!(a.url_error.is_some());
    assert_eq!(
        key(&mut a, KeyCode::Enter),
        None,
        "an invalid URL must not start the walk"
    );
    for _ in 0..6 {
        key(&mut a, KeyCode::Backspace);
    }
    typed(&mut a, URL);
    assert!(a.url_error.is_none(), "{:?}", a.url_error);
    snap(&a, "start_url_typed");
    assert!(matches!(
        key(&mut a, KeyCode::Enter),
        Some(Command::Run { .. })
    ));
    assert_eq!(a.url.as_deref(), Some(URL));
}

#[test]
fn start_screen_with_a_url_shows_the_setup() {
    let a = App::new(
        setup(false, true),
        Some(URL.into()),
        "2026-01-02T03:04:05Z".parse().unwrap(),
    );
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("READ-ONLY") && s.contains("tuitest") && s.contains("last 1h"),
        "{s}"
    );
    snap(&a, "start_given");
}

#[test]
fn step_screen_shows_running_checks_with_spinner_and_timeout() {
    let mut a = app(Some(URL));
    let Some(Command::Run { batch, .. }) = key(&mut a, KeyCode::Enter) else {
        panic!("no checks started")
    };
    a.update(Msg::Runner(RunnerEvent::Started {
        batch,
        index: 0,
        kind: "http",
        label: format!("GET {URL}"),
        timeout: Duration::from_secs(10),
    }));
    let mut tcp = probe_reports().remove(1);
    tcp.duration_ms = 1;
    a.update(Msg::Runner(RunnerEvent::Finished {
        batch,
        index: 1,
        report: tcp,
    }));
    assert!(a.is_running());
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("Checks running: 1/2") && s.contains("0.0s / 10.0s"),
        "{s}"
    );
    assert!(s.contains("connection refused"), "{s}");
    snap(&a, "step_running");
    // Enter while running explains instead of doing nothing silently.
    assert_eq!(key(&mut a, KeyCode::Enter), None);
    assert!(a.notice.as_deref().unwrap_or("").contains("still running"));
}

#[test]
fn esc_cancels_running_checks_as_inconclusive_and_the_walk_goes_on() {
    let mut a = app(Some(URL));
    key(&mut a, KeyCode::Enter);
    assert!(a.is_running());
    key(&mut a, KeyCode::Esc);
    assert!(!a.is_running());
    let e = a.engine.as_ref().unwrap();
    let checks = e
        .trail()
        .iter()
        .find_map(|s| match &s.record {
            triage502::engine::Record::Checks { reports, .. } => Some(reports.clone()),
            _ => None,
        })
        .unwrap();
    assert!(checks.iter().all(|r| r.outcome == Outcome::Inconclusive
        && r.summary == "cancelled by the operator"));
    snap(&a, "step_cancelled");
}

#[test]
fn question_screen_numbers_the_choices_and_marks_the_default() {
    let a = at_question();
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("3. I don't know  (default)"), "{s}");
    assert!(
        s.contains("Findings (1, most likely first)") && s.contains("refused"),
        "{s}"
    );
    snap(&a, "question");
}

#[test]
fn number_keys_answer_and_back_returns_to_the_question() {
    let mut a = at_question();
    key(&mut a, KeyCode::Char('2'));
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("Note the time") && s.contains("No"), "{s}");
    snap(&a, "step_guidance");
    key(&mut a, KeyCode::Char('g'));
    let g = screen_text(&a, 80, 24);
    assert!(g.contains("Write down when the 502s started"), "{g}");
    snap(&a, "guidance_overlay");
    key(&mut a, KeyCode::Esc);
    let cmd = key(&mut a, KeyCode::Char('b'));
    assert!(
        !matches!(cmd, Some(Command::Run { .. })),
        "back must not re-run checks"
    );
    assert!(screen_text(&a, 80, 24).contains("(default)"));
    // Backspace from the question goes back past the check results to the start
    // of the walk, which re-runs the first checks.
    assert!(matches!(
        key(&mut a, KeyCode::Backspace),
        Some(Command::Run { .. })
    ));
}

#[test]
fn r_reruns_the_checks_of_the_step() {
    let mut a = at_question();
    assert!(matches!(
        key(&mut a, KeyCode::Char('r')),
        Some(Command::Run { .. })
    ));
    assert!(a.is_running());
}

fn at_action(read_only: bool) -> App {
    let mut a = at_question();
    a.setup.read_only = read_only;
    key(&mut a, KeyCode::Enter); // the default choice
    key(&mut a, KeyCode::Enter); // past the guidance
    a
}

#[test]
fn action_screen_shows_argv_and_tier_and_needs_the_unit_typed() {
    let mut a = at_action(false);
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("systemctl restart php8.2-fpm") && s.contains("disruptive"),
        "{s}"
    );
    snap(&a, "action_typed");
    // `y` types a letter here; Enter with the wrong word does not confirm.
    key(&mut a, KeyCode::Char('y'));
    key(&mut a, KeyCode::Enter);
    assert!(a.notice.as_deref().unwrap_or("").contains("php8.2-fpm"));
    key(&mut a, KeyCode::Backspace);
    typed(&mut a, "php8.2-fpm");
    key(&mut a, KeyCode::Enter);
    let done = screen_text(&a, 80, 24);
    assert!(done.contains("Escalate"), "{done}");
    let md = a.report().unwrap().to_markdown();
    assert!(
        md.contains("not executed: the action executor is not built yet"),
        "{md}"
    );
}

#[test]
fn action_is_refused_under_read_only() {
    let mut a = at_action(true);
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("Read-only: this action will not run"), "{s}");
    snap(&a, "action_read_only");
    key(&mut a, KeyCode::Char('y'));
    let md = a.report().unwrap().to_markdown();
    assert!(md.contains("refused: running read-only"), "{md}");
}

fn at_done() -> App {
    let mut a = at_action(false);
    key(&mut a, KeyCode::Esc); // decline
    a
}

#[test]
fn done_screen_and_ticket_preview() {
    let mut a = at_done();
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("Escalate") && s.contains("Most likely"), "{s}");
    snap(&a, "done");
    key(&mut a, KeyCode::Enter);
    let t = screen_text(&a, 80, 24);
    assert!(
        t.contains("Ticket preview") && t.contains("## Findings"),
        "{t}"
    );
    snap(&a, "ticket");
    key(&mut a, KeyCode::PageDown);
    snap(&a, "ticket_scrolled");
    key(&mut a, KeyCode::Esc);
    assert!(screen_text(&a, 80, 24).contains("Most likely"));
}

#[test]
fn help_and_quit_confirmation() {
    let mut a = at_question();
    key(&mut a, KeyCode::Char('?'));
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("Is a 502 my fault?") && s.contains("problem"),
        "{s}"
    );
    snap(&a, "help");
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('q'));
    snap(&a, "quit");
    key(&mut a, KeyCode::Char('n'));
    assert!(!a.quit);
    key(&mut a, KeyCode::Char('q'));
    assert_eq!(key(&mut a, KeyCode::Char('y')), Some(Command::Quit));
    assert!(a.quit);
}

#[test]
fn ascii_and_no_color_variants() {
    let mut a = App::new(
        Setup {
            color: false,
            ..setup(true, false)
        },
        Some(URL.into()),
        "2026-01-02T03:04:05Z".parse().unwrap(),
    );
    key(&mut a, KeyCode::Enter);
    for (index, report) in probe_reports().into_iter().enumerate() {
        a.update(Msg::Runner(RunnerEvent::Finished {
            batch: a.batch,
            index,
            report,
        }));
    }
    let t = draw(&a, 80, 24);
    let buf = t.backend().buffer();
    assert!(
        buf.content().iter().all(|c| c.symbol().is_ascii()),
        "non-ASCII cell under --ascii"
    );
    assert!(
        buf.content()
            .iter()
            .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset),
        "a colour under NO_COLOR"
    );
    snap(&a, "question_ascii");
}

#[test]
fn stale_runner_events_are_ignored() {
    let mut a = app(Some(URL));
    key(&mut a, KeyCode::Enter);
    let old = a.batch;
    key(&mut a, KeyCode::Char('r'));
    assert_ne!(a.batch, old);
    for (index, report) in probe_reports().into_iter().enumerate() {
        a.update(Msg::Runner(RunnerEvent::Finished {
            batch: old,
            index,
            report,
        }));
    }
    assert!(
        a.is_running(),
        "results of a cancelled batch must not count"
    );
}

#[test]
fn scrolling_stops_at_the_end_of_the_evidence() {
    let mut a = at_question();
    for _ in 0..50 {
        key(&mut a, KeyCode::PageDown);
    }
    // 2 evidence items: 1 + 1 and 1 + 2 lines.
    assert_eq!(a.evidence_scroll, 4);
    key(&mut a, KeyCode::PageUp);
    assert_eq!(a.evidence_scroll, 0);
}
