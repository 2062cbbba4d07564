//! `triage502 fleet DIR --tui`: the full-screen fleet view.
//!
//! On `TestBackend` at 80x24, over the fleet fixtures `tests/fleet.rs` merges (three hosts
//! refused, an outlier, a healthy host, an unreachable host, three corrupt files): the summary,
//! a host's own report, the fleet ticket (snapshots), the keys (write and copy the ticket, back,
//! quit), and no panic on any key in any view at any size. Then the real binary in tmux at
//! 80x24: summary, a host, the ticket, quit, and the terminal restored.
//!
//! The fixtures are written under a relative directory (`target/fleet-tui/NAME`), so the
//! paths on screen are the same on every machine.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use triage502::tui::fleet::{FleetApp, FleetCommand, RowKind, View, render};
use triage502::tui::theme::Theme;

#[path = "support/fleet_fixtures.rs"]
mod fleet_fixtures;
#[path = "support/tmux.rs"]
mod tmux;

/// The fixtures in `target/fleet-tui/NAME` (relative: the screen shows the path).
fn fixtures(name: &str) -> PathBuf {
    let dir = PathBuf::from("target/fleet-tui").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    fleet_fixtures::write_fixtures(&dir);
    dir
}

fn app(name: &str) -> (FleetApp, tempfile::TempDir) {
    let dir = fixtures(name);
    let inputs = vec![dir];
    let files = triage502::fleet::collect_files(&inputs).unwrap();
    let report = triage502::fleet::merge(&files);
    let out = tempfile::tempdir().unwrap();
    let app = FleetApp::new(
        report,
        &inputs,
        files.len(),
        out.path().join("fleet.ticket.md"),
        Theme {
            ascii: false,
            color: true,
        },
    );
    (app, out)
}

fn key(app: &mut FleetApp, code: KeyCode) -> Option<FleetCommand> {
    app.update(KeyEvent::new(code, KeyModifiers::NONE))
}

fn screen(app: &FleetApp, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
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

#[test]
fn the_summary_shows_counts_causes_and_every_host() {
    let (app, _out) = app("summary");
    let s = screen(&app, 80, 24);
    insta::assert_snapshot!("fleet_summary_80x24", s);
    assert!(s.contains("3 failing") || s.contains("4 failing"), "{s}");
    assert!(s.contains("majority") && s.contains("outlier"), "{s}");
    assert!(s.contains("web4") && s.contains("unreachable"), "{s}");
    // Each unreadable file is named once, with why, at the end of the list.
    assert!(s.contains("3 files not read"), "{s}");
    assert!(s.contains("web8.json not read: not JSON"), "{s}");
    // Failing hosts first (the majority's, then the outlier), then healthy, unreachable, files.
    let kinds: Vec<RowKind> = app.rows.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RowKind::Failing,
            RowKind::Failing,
            RowKind::Failing,
            RowKind::Failing,
            RowKind::Healthy,
            RowKind::Unreachable,
            RowKind::Unreadable,
            RowKind::Unreadable,
            RowKind::Unreadable,
        ]
    );
    assert!(app.rows[3].outlier && app.rows[3].name == "web5");
    assert!(!app.rows[0].outlier);
}

#[test]
fn enter_opens_the_hosts_own_report() {
    let (mut app, _out) = app("host");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Host(0));
    let s = screen(&app, 80, 24);
    insta::assert_snapshot!("fleet_host_web1_80x24", s);
    // The walk's report rendering, reused: the same Markdown as `run --format md`.
    let doc = app.doc.clone().unwrap();
    let file = &app.rows[0].file;
    let report: triage502::report::Report =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(doc.text, triage502::redact::text(&report.to_markdown()));
    assert!(doc.text.contains("Connection refused"), "{}", doc.text);
    // Esc goes back to the summary, where the selection stayed.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Summary);
    assert!(!app.quit);
    // The outlier's report has both of its causes.
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    let doc = app.doc.clone().unwrap();
    assert!(doc.title.contains("web5"), "{}", doc.title);
    assert!(
        doc.text.contains("upstream_timeout") && doc.text.contains("upstream_overloaded"),
        "{}",
        doc.text
    );
}

#[test]
fn records_and_bad_files_open_as_what_the_fleet_knows() {
    let (mut app, _out) = app("records");
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.rows[app.selected].kind, RowKind::Unreachable);
    key(&mut app, KeyCode::Enter);
    let text = app.doc.clone().unwrap().text;
    assert!(text.contains("web4: not reached"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(app.view, View::Summary, "q goes back from a report");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let text = app.doc.clone().unwrap().text;
    assert!(text.contains("web7.json: not read"), "{text}");
    assert!(text.contains("not JSON"), "{text}");
}

#[test]
fn t_opens_the_fleet_ticket_which_w_writes_and_y_copies() {
    let (mut app, out) = app("ticket");
    key(&mut app, KeyCode::Char('t'));
    assert_eq!(app.view, View::Ticket);
    let s = screen(&app, 80, 24);
    insta::assert_snapshot!("fleet_ticket_80x24", s);
    let doc = app.doc.clone().unwrap();
    // The same Markdown as `fleet --format md`'s ticket.
    let md = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["fleet", "--format", "md"])
        .arg(&app.inputs)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    let ticket = md.split_once("## Ticket\n\n").unwrap().1;
    assert_eq!(ticket.trim_end(), doc.text.trim_end());
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        Some(FleetCommand::Clipboard(doc.text.clone()))
    );
    assert!(app.notice.as_deref().unwrap().contains("clipboard"));
    assert_eq!(key(&mut app, KeyCode::Char('w')), None);
    let path = out.path().join("fleet.ticket.md");
    assert_eq!(app.ticket_file.as_deref(), Some(path.as_path()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), doc.text);
    assert!(
        app.notice.as_deref().unwrap().contains("ticket written to"),
        "{:?}",
        app.notice
    );
    // Scrolling reaches the last line (wrapped at the window's width) and stops there.
    for _ in 0..500 {
        key(&mut app, KeyCode::Down);
    }
    let end = screen(&app, 80, 24);
    assert!(end.contains("they may fail too."), "{end}");
    let at_end = app.scroll;
    assert!(
        usize::from(at_end) < doc.text.lines().count() * 2,
        "{at_end}"
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(app.scroll, at_end);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.scroll, 0);
    key(&mut app, KeyCode::Char('t'));
    assert_eq!(
        app.view,
        View::Summary,
        "t closes the ticket as in the walk"
    );
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn esc_and_ctrl_c_quit() {
    let (mut a, _out) = app("quit");
    key(&mut a, KeyCode::Esc);
    assert!(a.quit);
    let (mut b, _out2) = app("quit2");
    key(&mut b, KeyCode::Enter);
    b.update(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(b.quit, "Ctrl-C quits from a report too");
}

#[test]
fn no_key_panics_in_any_view_at_any_size() {
    let keys = [
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::Left,
        KeyCode::Tab,
        KeyCode::Backspace,
        KeyCode::Char('x'),
        KeyCode::Char(' '),
        KeyCode::Char('y'),
        KeyCode::F(1),
    ];
    let (mut app, _out) = app("keys");
    let rows = app.rows.len();
    for open in [None, Some(KeyCode::Enter), Some(KeyCode::Char('t'))] {
        for start in 0..rows {
            app.selected = start;
            if let Some(k) = open {
                key(&mut app, k);
            }
            for k in keys {
                key(&mut app, k);
                for (w, h) in [(80, 24), (20, 6), (1, 1), (200, 60)] {
                    screen(&app, w, h);
                }
            }
            key(&mut app, KeyCode::Esc);
            assert!(!app.quit || open.is_none());
            app.quit = false;
        }
    }
    // An empty fleet (every file unreadable) still draws and quits.
    let dir = PathBuf::from("target/fleet-tui/empty");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.json"), "{").unwrap();
    let inputs = vec![dir];
    let files = triage502::fleet::collect_files(&inputs).unwrap();
    let mut app = FleetApp::new(
        triage502::fleet::merge(&files),
        &inputs,
        files.len(),
        PathBuf::from("target/fleet-tui/empty.ticket.md"),
        Theme {
            ascii: true,
            color: false,
        },
    );
    for k in keys.into_iter().chain([KeyCode::Enter, KeyCode::Char('t')]) {
        key(&mut app, k);
        screen(&app, 80, 24);
        screen(&app, 3, 2);
    }
}

/// The shell printed the exit status (a line of its own, not the typed command line).
fn exited(screen: &str) -> bool {
    screen.lines().any(|l| {
        l.trim()
            .strip_prefix("EXIT=")
            .is_some_and(|c| !c.is_empty() && c.chars().all(|d| d.is_ascii_digit()))
    })
}

/// The real binary in tmux at 80x24: the summary, a host's report, the ticket, quit, and the
/// terminal restored (main screen, no mouse reporting, canonical mode and echo).
#[test]
fn fleet_tui_in_tmux() {
    let dir = fixtures("tmux");
    let dir = std::fs::canonicalize(dir).unwrap();
    let sess = tmux::Session::new("fleet");
    sess.type_line(&format!(
        "'{}' fleet '{}' --tui; echo EXIT=$?",
        tmux::BIN,
        dir.display()
    ));
    let s = sess.wait("the fleet summary", |s| {
        s.contains("triage502 fleet") && s.contains("Hosts (1/9")
    });
    assert!(s.contains("majority") && s.contains("outlier"), "{s}");
    assert!(s.contains("web1") && s.contains("web6"), "{s}");
    assert!(sess.modes().0, "the alternate screen is on");
    sess.send("Down");
    sess.wait("web2 selected", |s| s.contains("Hosts (2/9"));
    sess.send("Enter");
    let s = sess.wait("web2's report", |s| {
        s.contains("web2: report") && s.contains("triage502 report: problem found")
    });
    assert!(s.contains("Upstream") || s.contains("upstream"), "{s}");
    sess.send("Escape");
    sess.wait("back on the summary", |s| s.contains("Hosts (2/9"));
    sess.send("t");
    let s = sess.wait("the fleet ticket", |s| s.contains("Fleet ticket"));
    assert!(s.contains("Gateway errors on"), "{s}");
    sess.send("Escape");
    sess.wait("back on the summary", |s| s.contains("Hosts (2/9"));
    sess.send("q");
    let s = sess.wait("the exit status", exited);
    assert!(
        s.lines().any(|l| l.trim() == "EXIT=1"),
        "a failing fleet exits 1:\n{s}"
    );
    assert!(s.contains("triage502 fleet: Gateway errors on"), "{s}");
    assert!(s.contains("skipped"), "the bad files are named after:\n{s}");
    let (alt, mouse, sgr) = sess.modes();
    assert!(
        !alt && !mouse && !sgr,
        "terminal modes left on: {alt} {mouse} {sgr}"
    );
    sess.assert_sane_terminal();
}

/// Without a terminal, `--tui` refuses with one line naming what works instead, before
/// anything is drawn; `--tui` and `--format` do not go together.
#[test]
fn fleet_tui_without_a_terminal_says_what_works() {
    let dir = fixtures("noterm");
    let out = std::process::Command::new(tmux::BIN)
        .arg("fleet")
        .arg(&dir)
        .arg("--tui")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the fleet view needs a terminal"), "{err}");
    assert!(err.contains("--format md"), "{err}");
    assert!(out.stdout.is_empty(), "nothing drawn on a pipe");
    let out = std::process::Command::new(tmux::BIN)
        .arg("fleet")
        .arg(&dir)
        .args(["--tui", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Reports the product wrote (`run --non-interactive --format json` on loopback ports where
/// nothing listens, as three hosts) merge and open in the view: each host's report is the walk's
/// own Markdown of that file, with its evidence.
#[test]
fn reports_written_by_run_open_in_the_view() {
    let dir = PathBuf::from("target/fleet-tui/real");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = tempfile::tempdir().unwrap();
    for (host, port) in [("shop-a", 9), ("shop-b", 9), ("shop-c", 1)] {
        let out = std::process::Command::new(tmux::BIN)
            .args(["run", "--non-interactive", "--read-only", "--no-journal"])
            .args(["--format", "json", "--url"])
            .arg(format!("http://127.0.0.1:{port}/checkout"))
            .env("TRIAGE502_HOST", host)
            .env("XDG_STATE_HOME", state.path())
            .output()
            .unwrap();
        assert!(
            !out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join(format!("{host}.json")), &out.stdout).unwrap();
    }
    let inputs = vec![dir];
    let files = triage502::fleet::collect_files(&inputs).unwrap();
    let report = triage502::fleet::merge(&files);
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    let mut app = FleetApp::new(
        report,
        &inputs,
        files.len(),
        state.path().join("t.md"),
        Theme {
            ascii: false,
            color: false,
        },
    );
    assert_eq!(app.rows.len(), 3);
    let s = screen(&app, 80, 24);
    assert!(s.contains("3 failing"), "{s}");
    assert!(s.contains("shop-a") && s.contains("shop-c"), "{s}");
    for i in 0..3 {
        app.selected = i;
        key(&mut app, KeyCode::Enter);
        let doc = app.doc.clone().unwrap();
        let r: triage502::report::Report =
            serde_json::from_str(&std::fs::read_to_string(&app.rows[i].file).unwrap()).unwrap();
        assert_eq!(doc.text, triage502::redact::text(&r.to_markdown()));
        assert!(doc.text.contains("## Findings"), "{}", doc.text);
        assert!(doc.text.contains("Connection refused"), "{}", doc.text);
        assert!(
            doc.text.contains(&format!("- Host: {}", app.rows[i].name)),
            "{}",
            doc.text
        );
        key(&mut app, KeyCode::Esc);
    }
}

/// `--ascii`: every view draws with ASCII only (marks, borders, dots, arrows, report text).
#[test]
fn ascii_views_are_ascii_only() {
    let (mut app, _out) = app("ascii");
    app.theme = Theme {
        ascii: true,
        color: false,
    };
    for open in [None, Some(KeyCode::Enter), Some(KeyCode::Char('t'))] {
        if let Some(k) = open {
            key(&mut app, k);
        }
        let s = screen(&app, 80, 24);
        assert!(s.is_ascii(), "{s}");
        key(&mut app, KeyCode::Esc);
    }
}

/// SIGTERM while the view is open: it quits and the terminal is restored all the same.
#[test]
fn fleet_tui_sigterm_restores_the_terminal() {
    let dir = std::fs::canonicalize(fixtures("sigterm")).unwrap();
    let sess = tmux::Session::new("fleet-term");
    sess.type_line(&format!(
        "'{}' fleet '{}' --tui; echo EXIT=$?",
        tmux::BIN,
        dir.display()
    ));
    sess.wait("the fleet summary", |s| s.contains("Hosts (1/9"));
    sess.send("t");
    sess.wait("the fleet ticket", |s| s.contains("Fleet ticket"));
    let pid = sess.child_pid().expect("the fleet view's pid");
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let s = sess.wait("the exit status", exited);
    assert!(s.lines().any(|l| l.trim() == "EXIT=1"), "{s}");
    let (alt, mouse, sgr) = sess.modes();
    assert!(
        !alt && !mouse && !sgr,
        "terminal modes left on: {alt} {mouse} {sgr}"
    );
    sess.assert_sane_terminal();
}

/// Twenty hosts at 80x24: the host list scrolls with the selection, and the summary and the
/// causes keep their place.
#[test]
fn twenty_hosts_scroll_with_the_selection() {
    let dir = PathBuf::from("target/fleet-tui/twenty");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=20 {
        let host = format!("web{i:02}");
        let v = if i % 7 == 0 {
            fleet_fixtures::report(Some(&host), "http://shop.lab.test/", "healthy", &[])
        } else {
            fleet_fixtures::report(
                Some(&host),
                "http://shop.lab.test/",
                "problem",
                &[(
                    "upstream_refused",
                    "The upstream 127.0.0.1:9000 refuses connections",
                    "connect() failed (111: Connection refused)",
                )],
            )
        };
        fleet_fixtures::write(&dir, &format!("{host}.json"), &v);
    }
    let inputs = vec![dir];
    let files = triage502::fleet::collect_files(&inputs).unwrap();
    let mut app = FleetApp::new(
        triage502::fleet::merge(&files),
        &inputs,
        files.len(),
        PathBuf::from("target/fleet-tui/twenty.ticket.md"),
        Theme {
            ascii: false,
            color: false,
        },
    );
    let s = screen(&app, 80, 24);
    assert!(s.contains("18 failing") && s.contains("2 healthy"), "{s}");
    assert!(s.contains("✗ web01") && !s.contains("✗ web20"), "{s}");
    // A large group names a few hosts, so the other causes stay in view.
    assert!(s.contains("web05 and 13 more"), "{s}");
    key(&mut app, KeyCode::End);
    let s = screen(&app, 80, 24);
    assert!(s.contains("Hosts (20/20"), "{s}");
    // The healthy ones come last: web14 is the last row.
    assert!(s.contains("✓ web14") && !s.contains("✗ web01"), "{s}");
    assert!(
        s.contains("Fleet: 20 hosts") && s.contains("majority"),
        "{s}"
    );
    key(&mut app, KeyCode::Enter);
    assert!(app.doc.as_ref().unwrap().title.contains("web14"));
}
