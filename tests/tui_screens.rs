//! Every screen of the wizard on `TestBackend` at 80x24 and 120x40, fed with
//! synthetic messages (no ticks, so every elapsed time is 0.0s and the report
//! says 0 ms; check reports carry fixed durations; the start time is fixed).

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use triage502::action::{Executed, Plan, Probe, VerifyResult};
use triage502::cause::{Cause, Severity};
use triage502::check::{CheckReport, Evidence, Outcome};
use triage502::duration::HumanDuration;
use triage502::engine::ActionResult;
use triage502::playbook::library::{Library, Origin, Source};
use triage502::runner::RunnerEvent;
use triage502::tui::app::{App, Command, Msg, Setup};
use triage502::tui::keymap::Screen;
use triage502::tui::render::render;
use triage502::tui::watch::{AccessRate, MinuteRate, Sample, WatchEvent};

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
        max_tier: None,
        journal: false,
        playbook_file: None,
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
        let mut row = String::new();
        for x in 0..w {
            row.push_str(buf[(x, y)].symbol());
        }
        s.push_str(&machine_neutral(&row));
        s.push('\n');
    }
    s
}

/// The report names the host it ran on (`- Host: NAME`): the machine's name is read as `HOST`,
/// padded to the same width, so that the snapshots are the same on every machine.
fn machine_neutral(row: &str) -> String {
    let host = triage502::report::host_label();
    let key = format!("- Host: {host}");
    let Some(at) = row.find(&key) else {
        return row.to_owned();
    };
    let start = at + "- Host: ".len();
    let rest = &row[start + host.len()..];
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    let width = host.len() + spaces;
    format!(
        "{}{:<width$}{}",
        &row[..start],
        "HOST",
        rest.trim_start_matches(' ')
    )
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

/// Build the plan the loop would build (on a blocking task) and hand it back.
fn give_plan(a: &mut App, cmd: Option<Command>) {
    let Some(Command::Plan {
        seq,
        offer,
        why,
        mut policy,
    }) = cmd
    else {
        panic!("expected a plan command, got {cmd:?}");
    };
    // Screens must not depend on whether this machine runs systemd.
    policy.systemd = Some(true);
    a.update(Msg::Plan(seq, Box::new(Plan::new(&offer, &why, &policy))));
}

fn at_action(read_only: bool) -> App {
    let mut a = at_question();
    a.setup.read_only = read_only;
    key(&mut a, KeyCode::Enter); // the default choice
    let cmd = key(&mut a, KeyCode::Enter); // past the guidance
    give_plan(&mut a, cmd);
    a
}

fn executed(ok: bool, before: u16, after: u16) -> Msg {
    let probe = |s: u16| Probe {
        status: Some(s),
        latency_ms: 3,
        error: None,
    };
    Msg::Executed(
        Box::new(Executed {
            result: ActionResult {
                argv: vec!["systemctl".into(), "restart".into(), "php8.2-fpm".into()],
                ok,
                exit_code: Some(i32::from(!ok)),
                output: "Job for php8.2-fpm.service finished.".into(),
                summary: "systemctl restart php8.2-fpm: done".into(),
                duration_ms: 850,
            },
            refused: None,
            undo: vec![],
            resolved: vec![],
        }),
        Some(VerifyResult {
            url: URL.into(),
            before: vec![probe(before)],
            after: vec![probe(after), probe(after), probe(after)],
        }),
    )
}

#[test]
fn action_screen_shows_argv_and_tier_and_needs_the_unit_typed() {
    let mut a = at_action(false);
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("systemctl restart php8.2-fpm") && s.contains("disruptive"),
        "{s}"
    );
    assert!(s.contains("type `php8.2-fpm`"), "{s}");
    snap(&a, "action_typed");
    // `y` types a letter here; Enter with the wrong word does not confirm.
    key(&mut a, KeyCode::Char('y'));
    assert_eq!(key(&mut a, KeyCode::Enter), None);
    assert!(a.notice.as_deref().unwrap_or("").contains("php8.2-fpm"));
    key(&mut a, KeyCode::Backspace);
    typed(&mut a, "php8.2-fpm");
    let Some(Command::Execute {
        tier, policy, url, ..
    }) = key(&mut a, KeyCode::Enter)
    else {
        panic!("the typed unit confirms");
    };
    assert_eq!(tier, triage502::action::Tier::Disruptive);
    assert!(policy.interactive_consent && !policy.read_only);
    assert_eq!(url.as_deref(), Some(URL));
    // While it runs, keys do nothing and a spinner shows.
    assert_eq!(a.screen(), Screen::Executing);
    assert!(screen_text(&a, 80, 24).contains("running..."));
    assert_eq!(key(&mut a, KeyCode::Char('b')), None);
    a.update(executed(true, 502, 200));
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("succeeded") && s.contains("after:  200"), "{s}");
    snap(&a, "action_result");
    key(&mut a, KeyCode::Esc);
    let done = screen_text(&a, 80, 24);
    assert!(done.contains("Done"), "{done}");
    let md = a.report().unwrap().to_markdown();
    assert!(md.contains("Restart php-fpm [done]"), "{md}");
}

#[test]
fn reversible_action_is_confirmed_with_y() {
    let walk = WALK.replace(
        r#"action = { tier = "disruptive", do = { service = { unit = "php8.2-fpm", op = "restart" } } }"#,
        r#"action = { tier = "reversible", do = { command = { argv = ["touch", "/tmp/triage502-never-run"] } } }"#,
    );
    let (lib, failures) = Library::from_sources(vec![Source {
        origin: Origin::Embedded("tui_walk.toml"),
        text: walk,
    }]);
    assert!(failures.is_empty(), "{}", failures[0].rendered);
    let mut a = App::new(
        Setup {
            library: Arc::new(lib),
            ..setup(false, false)
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
    key(&mut a, KeyCode::Enter);
    let cmd = key(&mut a, KeyCode::Enter);
    give_plan(&mut a, cmd);
    assert_eq!(a.screen(), Screen::Action);
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("reversible") && s.contains("y = yes"), "{s}");
    snap(&a, "action_reversible");
    assert!(matches!(
        key(&mut a, KeyCode::Char('y')),
        Some(Command::Execute { .. })
    ));
}

#[test]
fn action_is_refused_under_read_only() {
    let mut a = at_action(true);
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("Not run: refused: read-only"), "{s}");
    snap(&a, "action_read_only");
    assert_eq!(a.screen(), Screen::Action);
    // No key runs it: `y` declines with the policy's reason.
    assert_eq!(key(&mut a, KeyCode::Char('y')), None);
    let md = a.report().unwrap().to_markdown();
    assert!(md.contains("read-only session (--read-only)"), "{md}");
}

#[test]
fn max_tier_refuses_a_disruptive_action() {
    let mut a = at_question();
    a.setup.max_tier = Some(triage502::action::Tier::Reversible);
    key(&mut a, KeyCode::Enter);
    let cmd = key(&mut a, KeyCode::Enter);
    give_plan(&mut a, cmd);
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("--max-tier"), "{s}");
    let wide = screen_text(&a, 120, 40);
    assert!(wide.contains("max tier reversible"), "{wide}");
    assert_eq!(key(&mut a, KeyCode::Enter), None);
    let md = a.report().unwrap().to_markdown();
    assert!(md.contains("above this session's --max-tier"), "{md}");
}

#[test]
fn note_field() {
    let mut a = at_question();
    key(&mut a, KeyCode::Char('n'));
    assert_eq!(a.screen(), Screen::Note);
    typed(
        &mut a,
        "restarted php-fpm by hand at 09:30, q and b are text here",
    );
    snap(&a, "note");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen(), Screen::Question);
    // This app has journalling off: the operator is told the note is not kept.
    assert!(a.notice.as_deref().unwrap_or("").contains("not journalled"));
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

// ── Map (m) and Watch (w) ───────────────────────────────────────────────

/// Probe, map the serving path, then test the route and the upstream.
const MAP_WALK: &str = r#"
id = "tuimap"
title = "TUI map walk"
version = "1.0.0"
description = "Probe, map, connect."
start = "probe"

[[var]]
name = "url"
prompt = "Failing URL"
type = "url"
required = true

[[node]]
id = "probe"
title = "Probe the URL"
checks = [{ http = { url = "{{ url }}" } }]
on = { ok = "map", problem = "map", inconclusive = "map" }

[[node]]
id = "map"
title = "Map the serving path"
checks = [{ discovery = { url = "{{ url }}" } }]
on = { ok = "reach", problem = "reach", inconclusive = "reach" }

[[node]]
id = "reach"
title = "Can the proxy reach the upstream?"
checks = [
  { config_test = { server = "nginx", config = "{{ front.config }}" } },
  { tcp = { address = "{{ upstream }}" } },
]
on = { ok = "end", problem = "end", inconclusive = "end" }

[[node]]
id = "end"
title = "Hand over"
end = "escalate"
"#;

fn map_app(ascii: bool, color: bool) -> App {
    let (lib, failures) = Library::from_sources(vec![Source {
        origin: Origin::Embedded("tuimap.toml"),
        text: MAP_WALK.into(),
    }]);
    assert!(failures.is_empty(), "{}", failures[0].rendered);
    App::new(
        Setup {
            library: Arc::new(lib),
            playbook: "tuimap".into(),
            color,
            ..setup(ascii, false)
        },
        Some(URL.into()),
        "2026-01-02T03:04:05Z".parse().unwrap(),
    )
}

fn deliver(a: &mut App, reports: Vec<CheckReport>) {
    for (index, report) in reports.into_iter().enumerate() {
        a.update(Msg::Runner(RunnerEvent::Finished {
            batch: a.batch,
            index,
            report,
        }));
    }
}

fn http_502_from_nginx() -> CheckReport {
    CheckReport::new(
        "http",
        format!("GET {URL}"),
        Outcome::Problem,
        format!("{URL} answered 502 Bad Gateway in 3 ms, generated by nginx"),
    )
    .with_evidence(Evidence::new(
        "headers",
        "server: nginx/1.22.1\ncontent-type: text/html\ncontent-length: 157",
    ))
    .with_fact("http.status", "502")
    .with_fact("http.server", "nginx/1.22.1")
    .with_fact("http.remote", "127.0.0.1:8080")
    .with_fact("http.generator", "nginx")
    .with_fact("http.gateway_error", "yes")
    .with_fact("http.error", "")
}

fn discovery_report() -> CheckReport {
    let conf = "/etc/nginx/sites-enabled/shop.conf";
    let mut r = CheckReport::new(
        "discovery",
        format!("map the serving path of {URL}"),
        Outcome::Ok,
        format!("nginx (pid 812) route {conf}:14 → upstream 127.0.0.1:9000"),
    )
    .with_evidence(
        Evidence::new(
            "server block",
            "server { listen 127.0.0.1:8080; server_name shop.example.com; ... }",
        )
        .at(format!("{conf}:3")),
    )
    .with_evidence(Evidence::new("location", "location /checkout").at(format!("{conf}:14")))
    .with_evidence(
        Evidence::new("upstream", "proxy_pass http://127.0.0.1:9000").at(format!("{conf}:15")),
    );
    for (k, v) in [
        ("gateway_local", "yes"),
        ("front.kind", "nginx"),
        ("front.pid", "812"),
        ("front.version", "nginx/1.22.1"),
        ("front.config", "/etc/nginx/nginx.conf"),
        ("route.server_block", &format!("{conf}:3")),
        ("route.location", &format!("{conf}:14")),
        ("upstream", "127.0.0.1:9000"),
        ("upstream.kind", "tcp"),
        ("upstream.listener", ""),
        ("upstream.addresses", "127.0.0.1:9000"),
        ("error_logs", "/var/log/nginx/shop.error.log"),
        ("access_logs", "/var/log/nginx/shop.access.log"),
    ] {
        r = r.with_fact(k, v);
    }
    r
}

fn reach_reports() -> Vec<CheckReport> {
    let test = CheckReport::new(
        "config_test",
        "nginx config test of /etc/nginx/nginx.conf",
        Outcome::Ok,
        "`nginx -t -c /etc/nginx/nginx.conf`: the configuration is valid",
    );
    let tcp = CheckReport::new(
        "tcp",
        "connect 127.0.0.1:9000",
        Outcome::Problem,
        "connect to 127.0.0.1:9000: connection refused",
    )
    .with_fact("tcp.result", "refused");
    vec![test, tcp]
}

/// The map walk up to the end: probe, discovery and reach results in.
fn mapped(ascii: bool, color: bool) -> App {
    let mut a = map_app(ascii, color);
    key(&mut a, KeyCode::Enter);
    deliver(&mut a, vec![http_502_from_nginx()]);
    deliver(&mut a, vec![discovery_report()]);
    deliver(&mut a, reach_reports());
    assert_eq!(a.screen(), Screen::Done);
    a
}

/// Snapshot at both sizes with times, dates and durations masked.
fn snap_timeless(app: &App, name: &str) {
    let ago = regex::Regex::new(r"\b\d+(h\d{2}m|m\d{2}s|s) ago\b").unwrap();
    let mask = |s: String| {
        ago.replace_all(&timeless(&s), |c: &regex::Captures| {
            "#".repeat(c[0].chars().count())
        })
        .into_owned()
    };
    insta::assert_snapshot!(format!("{name}_80x24"), mask(screen_text(app, 80, 24)));
    insta::assert_snapshot!(format!("{name}_120x40"), mask(screen_text(app, 120, 40)));
}

/// Under `--ascii` and `NO_COLOR`: only ASCII cells, no colour, at 80x24 and 120x40.
fn plain_at_both_sizes(a: &App) {
    for (w, h) in [(80, 24), (120, 40)] {
        let t = draw(a, w, h);
        let buf = t.backend().buffer();
        let bad: Vec<&str> = buf
            .content()
            .iter()
            .map(ratatui::buffer::Cell::symbol)
            .filter(|s| !s.is_ascii())
            .collect();
        assert!(bad.is_empty(), "non-ASCII cells at {w}x{h}: {bad:?}");
        assert!(
            buf.content()
                .iter()
                .all(|c| c.fg == ratatui::style::Color::Reset
                    && c.bg == ratatui::style::Color::Reset),
            "a colour under NO_COLOR at {w}x{h}"
        );
    }
}

#[test]
fn map_before_discovery_says_so_and_how_to_get_back() {
    let mut a = map_app(false, true);
    key(&mut a, KeyCode::Enter);
    deliver(&mut a, vec![http_502_from_nginx()]);
    assert!(a.is_running(), "discovery runs now");
    key(&mut a, KeyCode::Char('m'));
    assert_eq!(a.screen(), Screen::Map);
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("Discovery has not run yet") && s.contains("Esc or m goes back"),
        "{s}"
    );
    snap(&a, "map_not_yet");
    key(&mut a, KeyCode::Char('m'));
    assert_eq!(a.screen(), Screen::Step, "m again closes the map");
}

#[test]
fn map_marks_the_failing_upstream_and_quotes_the_config() {
    let mut a = mapped(false, true);
    key(&mut a, KeyCode::Char('m'));
    assert_eq!(a.screen(), Screen::Map);
    let s = screen_text(&a, 120, 40);
    assert!(
        s.contains("First failing hop: upstream 127.0.0.1:9000 (tcp)")
            && s.contains("✗ upstream  FAILING")
            && s.contains("✓ front     healthy")
            && s.contains("answers 502 with its own error page")
            && s.contains("location /etc/nginx/sites-enabled/shop.conf:14")
            && s.contains("- CDN/LB    not seen")
            && s.contains("/var/log/nginx/shop.access.log"),
        "{s}"
    );
    snap(&a, "map_upstream_failing");
    // At 80x24 the rest is reached by scrolling.
    for _ in 0..40 {
        key(&mut a, KeyCode::Down);
    }
    let end = screen_text(&a, 80, 24);
    assert!(end.contains("Discovery: nginx (pid 812)"), "{end}");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen(), Screen::Done);
}

#[test]
fn map_under_ascii_and_no_color_uses_words_and_ascii_marks() {
    let mut a = mapped(true, false);
    key(&mut a, KeyCode::Char('m'));
    plain_at_both_sizes(&a);
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("x upstream  FAILING") && s.contains("+ front     healthy"),
        "{s}"
    );
    snap(&a, "map_ascii");
}

fn watch_sample(a: &App, secs_ago: u64, status: Option<u16>, latency_ms: u64) -> Msg {
    Msg::Watch(WatchEvent::Sample {
        watch: a.watch.id,
        sample: Sample {
            at: a.now.checked_sub(Duration::from_secs(secs_ago)).unwrap(),
            status,
            latency_ms,
            error: status.is_none().then(|| {
                "error sending request: tcp connect error: Connection refused (os error 111)".into()
            }),
        },
    })
}

/// 8 answers, a burst of 502s and one refused connection, then `after` answers.
fn watch_burst(a: &mut App, after: usize) {
    let mut plan: Vec<(Option<u16>, u64)> = vec![(Some(200), 40); 8];
    plan.extend([(Some(502), 3); 9]);
    plan.push((None, 1));
    plan.extend([(Some(502), 4); 3]);
    plan.extend(std::iter::repeat_n((Some(200), 55), after));
    let n = plan.len() as u64;
    for (i, (status, ms)) in plan.into_iter().enumerate() {
        let msg = watch_sample(a, (n - i as u64) * 2, status, ms + i as u64 % 3);
        a.update(msg);
    }
}

fn access_burst(a: &App) -> Msg {
    let minutes = (0..30)
        .map(|i| MinuteRate {
            minute: format!("09:{i:02}"),
            requests: 60,
            gateway: match i {
                18..=24 => 20 + i as u64,
                25 => 6,
                _ => 0,
            },
        })
        .collect::<Vec<_>>();
    Msg::Watch(WatchEvent::Access {
        watch: a.watch.id,
        rate: Ok(AccessRate {
            files: vec!["/var/log/nginx/shop.access.log".into()],
            requests: minutes.iter().map(|m| m.requests).sum(),
            gateway_errors: minutes.iter().map(|m| m.gateway).sum(),
            minutes,
            unreadable: vec![],
        }),
    })
}

#[test]
fn watch_charts_a_502_burst_then_says_recovered() {
    let mut a = mapped(false, true);
    key(&mut a, KeyCode::Char('w'));
    assert_eq!(a.screen(), Screen::Watch);
    assert_eq!(
        a.watch.access_logs,
        vec!["/var/log/nginx/shop.access.log"],
        "the access log comes from discovery"
    );
    let first = screen_text(&a, 80, 24);
    assert!(
        first.contains("first probe of the URL") && first.contains("every 2s"),
        "{first}"
    );
    watch_burst(&mut a, 1);
    let failing = screen_text(&a, 80, 24);
    assert!(failing.contains("recovering: 1 of 3"), "{failing}");
    a.update(watch_sample(&a, 0, Some(200), 50));
    a.update(watch_sample(&a, 0, Some(200), 50));
    a.update(access_burst(&a));
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("RECOVERED: 3 answers in a row")
            && s.contains("last 5xx/no answer 4s ago (502)")
            && s.contains("24 probes, 13 failed")
            && s.contains("peak 44 at 09:24"),
        "{s}"
    );
    snap_timeless(&a, "watch_burst_recovered");
    // `+` and `-` change the interval; Esc leaves (the loop then stops probing).
    key(&mut a, KeyCode::Char('+'));
    assert!(screen_text(&a, 80, 24).contains("every 5s"));
    key(&mut a, KeyCode::Char('-'));
    key(&mut a, KeyCode::Char('-'));
    assert_eq!(a.watch.interval, Duration::from_secs(1));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen(), Screen::Done);
    assert!(triage502::tui::watch::wanted(&a).is_none());
}

#[test]
fn watch_during_the_burst_under_ascii_and_no_color() {
    let mut a = mapped(true, false);
    key(&mut a, KeyCode::Char('w'));
    watch_burst(&mut a, 0);
    a.update(access_burst(&a));
    plain_at_both_sizes(&a);
    let s = screen_text(&a, 80, 24);
    // Monochrome: the 5xx bars are the tall ones and the refused probe an `x`.
    assert!(
        s.contains("x FAILING: the last probe got 502") && s.contains("#########x###"),
        "{s}"
    );
    snap_timeless(&a, "watch_failing_ascii");
}

#[test]
fn watch_needs_a_url_and_ignores_samples_once_left() {
    let mut a = mapped(false, true);
    key(&mut a, KeyCode::Char('w'));
    let id = a.watch.id;
    key(&mut a, KeyCode::Char('m'));
    assert_eq!(a.screen(), Screen::Map, "m switches to the map");
    a.update(Msg::Watch(WatchEvent::Sample {
        watch: id,
        sample: Sample {
            at: a.now,
            status: Some(502),
            latency_ms: 1,
            error: None,
        },
    }));
    assert!(a.watch.samples.is_empty(), "a late sample is dropped");
    key(&mut a, KeyCode::Char('w'));
    assert_eq!(a.screen(), Screen::Watch, "w switches back to the watch");
    assert_ne!(a.watch.id, id, "a new watch");
}

/// Times, dates and durations change per run: mask them for snapshots.
fn timeless(s: &str) -> String {
    let re = regex::Regex::new(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?|\b\d{2}:\d{2}(:\d{2})?\b|\b\d+ ms\b",
    )
    .unwrap();
    re.replace_all(s, |c: &regex::Captures| "#".repeat(c[0].chars().count()))
        .into_owned()
}

#[test]
fn journalled_session_note_and_ticket_preview() {
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("tui_walk.toml");
    std::fs::write(&pb, WALK).unwrap();
    let mut a = app(Some(URL));
    key(&mut a, KeyCode::Enter);
    let mut meta =
        triage502::journal::meta_for(a.engine.as_ref().unwrap(), Some(URL.into()), false);
    meta.playbook_file = Some(pb);
    meta.id = "20260102T030405Z-test".into();
    meta.host = "lab-host".into();
    meta.os = Some("Test OS".into());
    a.journal = Some(
        triage502::journal::Journal::create_in(&tmp.path().join("sessions"), &mut meta).unwrap(),
    );
    for (index, report) in probe_reports().into_iter().enumerate() {
        a.update(Msg::Runner(RunnerEvent::Finished {
            batch: a.batch,
            index,
            report,
        }));
    }
    // A note at the question, with a secret the ticket must not carry.
    key(&mut a, KeyCode::Char('n'));
    typed(&mut a, "saw db password=hunter2 in wp-config");
    key(&mut a, KeyCode::Enter);
    assert!(
        a.notice.as_deref().unwrap_or("").contains("note saved"),
        "{:?}",
        a.notice
    );
    key(&mut a, KeyCode::Enter); // the default choice
    let cmd = key(&mut a, KeyCode::Enter); // past the guidance
    give_plan(&mut a, cmd);
    key(&mut a, KeyCode::Esc); // decline
    assert_eq!(a.screen(), Screen::Done);
    let Some(Command::RenderTicket(path)) = key(&mut a, KeyCode::Char('t')) else {
        panic!("t renders the ticket from the journal");
    };
    assert!(screen_text(&a, 80, 24).contains("rendering"));
    let r =
        triage502::ticket::render_session(&path, triage502::ticket::TicketFormat::Md, false, false)
            .unwrap();
    assert!(
        !r.text.contains("hunter2") && r.text.contains("wp-config"),
        "{}",
        r.text
    );
    assert!(r.text.contains("declined by the operator"), "{}", r.text);
    a.update(Msg::Ticket(Ok(Box::new(r))));
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("Masked before export: ")
            && s.contains("secret parameter")
            && s.contains("## Impact"),
        "{s}"
    );
    insta::assert_snapshot!("ticket_journal_80x24", timeless(&s));
    insta::assert_snapshot!("ticket_journal_120x40", timeless(&screen_text(&a, 120, 40)));
    // `w` writes it beside the journal.
    key(&mut a, KeyCode::Char('w'));
    let written = a.ticket_file.clone().unwrap();
    assert!(
        std::fs::read_to_string(&written)
            .unwrap()
            .contains("## Findings")
    );
    // `y` hands the loop the text for OSC 52.
    let Some(Command::Clipboard(text)) = key(&mut a, KeyCode::Char('y')) else {
        panic!("y copies");
    };
    assert!(text.contains("## Findings"));
    // The journal holds the note, every input and the end.
    let session = triage502::journal::load(&path).unwrap();
    let kinds: Vec<String> = session
        .events
        .iter()
        .map(|e| {
            serde_json::to_value(&e.event)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect();
    assert!(
        kinds.contains(&"note".to_owned()) && kinds.last() == Some(&"end".to_owned()),
        "{kinds:?}"
    );
}

#[test]
fn quit_lists_what_is_still_changed() {
    let mut a = at_action(false);
    typed(&mut a, "php8.2-fpm");
    assert!(matches!(
        key(&mut a, KeyCode::Enter),
        Some(Command::Execute { .. })
    ));
    let Msg::Executed(mut x, v) = executed(true, 502, 200) else {
        unreachable!()
    };
    x.undo.push(triage502::action::UndoEntry {
        key: "plugin:/srv/wp:evil".into(),
        what: "plugin evil is still disabled".into(),
        undo: None,
        how: "wp plugin activate evil".into(),
    });
    a.update(Msg::Executed(x, v));
    assert!(screen_text(&a, 80, 24).contains("Still changed: plugin evil is still disabled"));
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('q'));
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("Still changed: plugin evil is still disabled"),
        "{s}"
    );
    assert_eq!(a.undo.still_changed().len(), 1);
}

/// The probe's reports with an error-log excerpt long enough to scroll:
/// 24 lines, 7 of them "Connection refused".
fn log_reports() -> Vec<CheckReport> {
    let mut r = probe_reports();
    let log: Vec<String> = (0..24)
        .map(|i| {
            if i % 4 == 1 || i == 22 {
                format!(
                    "09:{i:02}:01 [error] connect() failed (111: Connection refused) while connecting to upstream, upstream: \"http://127.0.0.1:9000/\""
                )
            } else {
                format!("09:{i:02}:00 [warn] an upstream response is buffered to a temporary file")
            }
        })
        .collect();
    r[0] = r[0].clone().with_evidence(
        Evidence::new("error.log, last hour", log.join("\n")).at("/var/log/nginx/error.log"),
    );
    r
}

fn at_question_with(reports: Vec<CheckReport>) -> App {
    let mut a = app(Some(URL));
    key(&mut a, KeyCode::Enter);
    for (index, report) in reports.into_iter().enumerate() {
        a.update(Msg::Runner(RunnerEvent::Finished {
            batch: a.batch,
            index,
            report,
        }));
    }
    a
}

fn cells_with(t: &Terminal<TestBackend>, m: ratatui::style::Modifier) -> String {
    t.backend()
        .buffer()
        .content()
        .iter()
        .filter(|c| c.modifier.contains(m))
        .map(ratatui::buffer::Cell::symbol)
        .collect()
}

#[test]
fn slash_searches_the_evidence_marks_matches_and_n_moves_between_them() {
    use triage502::tui::keymap::Beneath;
    let mut a = at_question_with(log_reports());
    key(&mut a, KeyCode::Char('/'));
    assert_eq!(a.screen(), Screen::SearchInput);
    // Letters that are keys elsewhere are text in the query.
    typed(&mut a, "refused");
    let typing = screen_text(&a, 80, 24);
    assert!(
        typing.contains("/refused_") && typing.contains("1/7 matches"),
        "{typing}"
    );
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.screen(), Screen::Searched(Beneath::Question));
    key(&mut a, KeyCode::Char('n'));
    key(&mut a, KeyCode::Char('n'));
    let s = screen_text(&a, 80, 24);
    assert!(s.contains("refused: 3/7 matches"), "{s}");
    // The evidence scrolled to the 3rd match (09:09), past the first lines.
    assert!(
        s.contains("09:09:01") && !s.contains("HTTP 502 Bad Gateway from"),
        "{s}"
    );
    // Matches are in reverse video, the current one also underlined: not colour alone.
    let t = draw(&a, 80, 24);
    let reversed = cells_with(&t, ratatui::style::Modifier::REVERSED);
    assert!(reversed.contains("refused"), "{reversed}");
    let current = cells_with(&t, ratatui::style::Modifier::UNDERLINED);
    assert_eq!(current, "refused", "exactly one current match");
    snap(&a, "search_matches");
    // N goes back, wrapping around from the first to the last.
    key(&mut a, KeyCode::Char('N'));
    key(&mut a, KeyCode::Char('N'));
    key(&mut a, KeyCode::Char('N'));
    assert!(screen_text(&a, 120, 40).contains("7/7 matches"));
    // Other keys keep their meaning: `2` answers the question beneath...
    let mut answered = at_question_with(log_reports());
    key(&mut answered, KeyCode::Char('/'));
    typed(&mut answered, "refused");
    key(&mut answered, KeyCode::Enter);
    key(&mut answered, KeyCode::Char('2'));
    assert!(screen_text(&answered, 80, 24).contains("Note the time"));
    assert!(answered.search.is_none(), "a new step ends the search");
    // ...and Esc clears the search, then `n` is the note again.
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen(), Screen::Question);
    let t = draw(&a, 80, 24);
    assert!(cells_with(&t, ratatui::style::Modifier::UNDERLINED).is_empty());
    key(&mut a, KeyCode::Char('n'));
    assert_eq!(a.screen(), Screen::Note);
}

fn sessions_app(rows: Option<Vec<triage502::tui::sessions::Row>>) -> App {
    let mut a = App::new(
        Setup {
            library: Arc::default(),
            playbook: String::new(),
            ..setup(false, false)
        },
        None,
        "2026-01-02T03:04:05Z".parse().unwrap(),
    );
    a.sessions = Some(triage502::tui::sessions::SessionList {
        rows,
        ..Default::default()
    });
    a
}

fn session_rows() -> Vec<triage502::tui::sessions::Row> {
    use triage502::tui::sessions::Row;
    vec![
        Row {
            id: "20260102T030000Z-a1b2".into(),
            url: Some("https://shop.example.com/checkout".into()),
            playbook: "502".into(),
            reached: "502/upstream_down".into(),
            age: "4 min ago".into(),
            ended: None,
        },
        Row {
            id: "20260101T220000Z-c3d4".into(),
            url: Some("http://127.0.0.1:8080/".into()),
            playbook: "502".into(),
            reached: "the end (escalate_host)".into(),
            age: "5 h ago".into(),
            ended: Some("problem (escalate)".into()),
        },
        Row {
            id: "20251230T080000Z-e5f6".into(),
            url: None,
            playbook: "wordpress".into(),
            reached: "wordpress/plugins".into(),
            age: "3 d ago".into(),
            ended: None,
        },
    ]
}

#[test]
fn resume_list_shows_sessions_newest_first_and_enter_resumes_the_chosen_one() {
    let mut a = sessions_app(None);
    assert_eq!(a.screen(), Screen::Sessions);
    assert!(screen_text(&a, 80, 24).contains("reading the saved sessions"));
    a.update(Msg::Sessions(session_rows()));
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("1. https://shop.example.com/checkout")
            && s.contains("4 min ago")
            && s.contains("open")
            && s.contains("ended: problem (escalate)")
            && s.contains("playbook 502, at 502/upstream_down"),
        "{s}"
    );
    key(&mut a, KeyCode::Down);
    snap(&a, "resume_list");
    // The highlighted row is marked and in reverse video.
    let t = draw(&a, 80, 24);
    let rev = cells_with(&t, ratatui::style::Modifier::REVERSED);
    assert!(rev.starts_with("2. http://127.0.0.1:8080/"), "{rev}");
    // A number highlights; Enter asks the loop to resume that session, once.
    key(&mut a, KeyCode::Char('3'));
    let cmd = key(&mut a, KeyCode::Enter);
    assert_eq!(
        cmd,
        Some(Command::Resume {
            id: "20251230T080000Z-e5f6".into(),
            vars: vec![]
        })
    );
    assert_eq!(key(&mut a, KeyCode::Enter), None);
    // It could not be opened: said so, and the list is usable again.
    a.update(Msg::Resumed(triage502::tui::sessions::Handoff::new(Err(
        "cannot rebuild session: gone".into(),
    ))));
    assert!(screen_text(&a, 80, 24).contains("cannot rebuild session: gone"));
    assert!(matches!(
        key(&mut a, KeyCode::Enter),
        Some(Command::Resume { .. })
    ));
}

#[test]
fn resume_list_resumes_a_real_journal_at_its_node() {
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("tui_walk.toml");
    std::fs::write(&pb, WALK).unwrap();
    // A session that reached the question, journalled like the app does.
    let mut first = app(Some(URL));
    key(&mut first, KeyCode::Enter);
    let mut meta =
        triage502::journal::meta_for(first.engine.as_ref().unwrap(), Some(URL.into()), false);
    meta.playbook_file = Some(pb);
    let dir = tmp.path().join("sessions");
    let mut j = triage502::journal::Journal::create_in(&dir, &mut meta).unwrap();
    j.input(&triage502::engine::Input::ChecksDone(probe_reports()))
        .unwrap();
    drop(j);
    let session = triage502::journal::load(&triage502::journal::paths_in(&dir, 1)[0]).unwrap();
    let (engine, _) = triage502::journal::rebuild(
        first.setup.library.clone(),
        &session,
        &std::collections::BTreeMap::new(),
        jiff::Timestamp::now(),
    )
    .unwrap();
    let (journal, session) =
        triage502::journal::Journal::reopen(&triage502::journal::paths_in(&dir, 1)[0]).unwrap();
    let mut a = sessions_app(Some(session_rows()));
    let cmd = a.update(Msg::Resumed(triage502::tui::sessions::Handoff::new(Ok(
        triage502::tui::sessions::Resumed {
            engine,
            journal,
            session,
        },
    ))));
    assert_eq!(cmd, None, "the question needs no checks");
    assert_eq!(a.screen(), Screen::Question);
    assert!(a.sessions.is_none() && a.journal.is_some());
    let s = screen_text(&a, 80, 24);
    assert!(
        s.contains("tuitest") && s.contains(URL) && s.contains("resumed session"),
        "{s}"
    );
}

/// Every screen state the wizard has, for the tiny-terminal test.
fn every_screen() -> Vec<(&'static str, App)> {
    let mut v: Vec<(&'static str, App)> = vec![
        ("url prompt", app(None)),
        ("start", app(Some(URL))),
        ("question", at_question()),
        ("action typed", at_action(false)),
        ("action read-only", at_action(true)),
        ("done", at_done()),
        ("sessions loading", sessions_app(None)),
        ("sessions", sessions_app(Some(session_rows()))),
    ];
    let mut running = app(Some(URL));
    key(&mut running, KeyCode::Enter);
    v.push(("step running", running));
    let mut guidance = at_question();
    key(&mut guidance, KeyCode::Char('2'));
    v.push(("step guidance", guidance));
    for (name, keys) in [
        ("help", &[KeyCode::Char('?')][..]),
        ("guidance overlay", &[KeyCode::Char('g')]),
        ("ticket", &[KeyCode::Char('t')]),
        ("quit", &[KeyCode::Char('q')]),
        ("note", &[KeyCode::Char('n')]),
        ("search input", &[KeyCode::Char('/'), KeyCode::Char('r')]),
        (
            "searched",
            &[KeyCode::Char('/'), KeyCode::Char('r'), KeyCode::Enter],
        ),
    ] {
        let mut a = at_question_with(log_reports());
        for k in keys {
            key(&mut a, *k);
        }
        v.push((name, a));
    }
    let mut executing = at_action(false);
    typed(&mut executing, "php8.2-fpm");
    key(&mut executing, KeyCode::Enter);
    assert_eq!(executing.screen(), Screen::Executing);
    v.push(("executing", executing));
    let mut result = at_action(false);
    typed(&mut result, "php8.2-fpm");
    key(&mut result, KeyCode::Enter);
    result.update(executed(true, 502, 200));
    v.push(("action result", result));
    let mut map = mapped(false, true);
    key(&mut map, KeyCode::Char('m'));
    assert_eq!(map.screen(), Screen::Map);
    v.push(("map", map));
    let mut watch = mapped(false, true);
    key(&mut watch, KeyCode::Char('w'));
    watch_burst(&mut watch, 4);
    let rate = access_burst(&watch);
    watch.update(rate);
    assert_eq!(watch.screen(), Screen::Watch);
    v.push(("watch", watch));
    v
}

/// Regression guard for issue 10: a terminal of width 1 or height 1 (a
/// split pane squeezed shut, a resize in progress) must neither panic nor
/// draw outside the area it was given. Each screen is drawn into a fixed
/// viewport inside a larger buffer whose cells outside must stay blank.
#[test]
fn every_screen_draws_in_a_tiny_terminal_without_panic_or_spill() {
    use ratatui::layout::Rect;
    use ratatui::{TerminalOptions, Viewport};
    let screens = every_screen();
    assert!(screens.len() >= 19, "{}", screens.len());
    for (w, h) in [(1, 1), (1, 24), (80, 1), (2, 2), (3, 7), (20, 5)] {
        for (name, a) in &screens {
            let area = Rect::new(3, 2, w, h);
            let mut t = Terminal::with_options(
                TestBackend::new(w + 6, h + 4),
                TerminalOptions {
                    viewport: Viewport::Fixed(area),
                },
            )
            .unwrap();
            t.draw(|f| render(a, f))
                .unwrap_or_else(|e| panic!("{name} at {w}x{h}: {e}"));
            let buf = t.backend().buffer();
            for y in 0..h + 4 {
                for x in 0..w + 6 {
                    if !area.contains((x, y).into()) {
                        assert_eq!(
                            buf[(x, y)].symbol(),
                            " ",
                            "{name} at {w}x{h} drew outside its area at ({x},{y})"
                        );
                    }
                }
            }
        }
    }
}
