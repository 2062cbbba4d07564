//! The wizard's hop dialog at 80x24 on `TestBackend`, fed with synthetic messages: it asks
//! before anything runs on the other host and shows the copy's exact ssh commands, `y` starts
//! the hop (and only then), progress streams in, and the results name each host.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use triage502::duration::HumanDuration;
use triage502::hop::{Hop, HopEvent, HopStatus, Plan, Ran, Ssh, Target};
use triage502::playbook::library::{Library, Origin, Source};
use triage502::tui::app::{App, Command, Msg, Setup};
use triage502::tui::keymap::Screen;
use triage502::tui::render::render;

const WALK: &str = include_str!("tui_walk.toml");

fn app() -> App {
    let (lib, _) = Library::from_sources(vec![Source {
        origin: Origin::Embedded("tui_walk.toml"),
        text: WALK.into(),
    }]);
    let setup = Setup {
        library: Arc::new(lib),
        playbook: "tuitest".into(),
        vars: vec![],
        read_only: false,
        max_tier: None,
        journal: false,
        playbook_file: None,
        since: HumanDuration(Duration::from_secs(3600)),
        ascii: false,
        color: false,
    };
    let mut app = App::new(
        setup,
        Some("http://shop.lab/cart".into()),
        "2026-01-02T03:04:05Z".parse().unwrap(),
    );
    let ssh = Ssh {
        program: None,
        config: Some("/lab/ssh_config".into()),
        connect_timeout: 5,
    };
    app.hop_plan = Some(Plan::new(ssh, 1));
    app
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn key(app: &mut App, c: char) -> Option<Command> {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

fn target() -> Target {
    Target {
        ssh_host: "10.250.20.12".into(),
        upstream: "10.250.20.12:80".into(),
        url: "http://10.250.20.12:80/cart".into(),
    }
}

#[test]
fn asks_with_the_exact_copy_commands_then_hops_and_shows_each_host() {
    let mut app = app();
    assert!(
        app.update(Msg::HopTargets(vec![target()], vec![]))
            .is_none()
    );
    assert_eq!(app.screen(), Screen::Hop);
    let s = screen(&app);
    assert!(s.contains("Continue on 10.250.20.12 over ssh?"), "{s}");
    assert!(
        s.contains("$ ssh -F /lab/ssh_config -o BatchMode=yes"),
        "{s}"
    );
    assert!(s.contains("mktemp -d"), "{s}");
    assert!(s.contains("y hop"), "{s}");
    // The whole offer fits 80x24: each remote command on its own numbered row(s).
    insta::assert_snapshot!("hop_offer_80x24", s);

    // Nothing runs before the operator says yes; n declines and h offers it again.
    assert!(key(&mut app, 'n').is_none());
    assert_eq!(app.screen(), Screen::Start);
    assert_eq!(key(&mut app, 'h'), None, "h works on the Done screen only");
    app.overlay = Some(triage502::tui::app::Overlay::Hop);
    if let Some(h) = app.hop.as_mut() {
        h.phase = triage502::tui::hop::Phase::Asking;
    }
    match key(&mut app, 'y') {
        Some(Command::Hop { targets, plan }) => {
            assert_eq!(targets, vec![target()]);
            assert_eq!(plan.hops, 1);
        }
        other => panic!("y must start the hop: {other:?}"),
    }
    assert!(
        key(&mut app, 'y').is_none(),
        "a second y does not hop twice"
    );

    app.update(Msg::HopProgress(HopEvent {
        host: "10.250.20.12".into(),
        line: "progress: problem GET http://10.250.20.12:80/cart".into(),
    }));
    let s = screen(&app);
    assert!(s.contains("Hop to 10.250.20.12 (running)"), "{s}");
    assert!(s.contains("10.250.20.12: progress: problem GET"), "{s}");

    let hop = Hop {
        host: "web2".into(),
        address: "10.250.20.12".into(),
        upstream: "10.250.20.12:80".into(),
        url: "http://10.250.20.12:80/cart".into(),
        from: "lb".into(),
        depth: 1,
        ran: Ran::Copied,
        status: HopStatus::Done,
        unreachable: None,
        remote_status: Some(triage502::report::Status::Problem),
        summary: "problem: The upstream refuses connections".into(),
        first_finding: Some("The upstream refuses connections".into()),
        findings: 1,
        duration_ms: 900,
        temp_dir: Some("/tmp/triage502-hop.AbCd1234".into()),
        temp_dir_removed: Some(true),
        commands: vec![],
        stderr: String::new(),
    };
    app.update(Msg::HopDone(vec![(hop, None)]));
    let s = screen(&app);
    assert!(s.contains("Hop results"), "{s}");
    assert!(
        s.contains("on web2 (10.250.20.12): The upstream refuses connections"),
        "{s}"
    );
    assert!(s.contains("/tmp/triage502-hop.AbCd1234: removed"), "{s}");
    insta::assert_snapshot!("hop_results_80x24", s);
}
