//! The action dialog of a configuration edit on `TestBackend` at 80x24: the
//! unified diff is shown before consent, scrolls with the arrows when it is
//! longer than the dialog's window, and the confirmed spec is pinned to the
//! SHA-256 of the file the diff was made from.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use triage502::action::{ActionSpec, Plan};
use triage502::duration::HumanDuration;
use triage502::playbook::library::{Library, Origin, Source};
use triage502::tui::app::{App, Command, Msg, Setup};
use triage502::tui::render::render;

/// A fixed place, so the screens (which show the path) are stable.
fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join("triage502-config-edit-tui");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A site whose edit touches two places far apart: a diff longer than the window.
fn site() -> String {
    let mut s = String::from("server {\n    listen 8080;\n    proxy_read_timeout 1s;\n");
    for i in 0..12 {
        let _ = writeln!(s, "    location /p{i} {{ return 200; }}");
    }
    s.push_str("    location / {\n        fastcgi_pass unix:/run/php/php7.4-fpm.sock;\n    }\n}\n");
    s
}

fn app() -> App {
    let file = dir().join("site.conf");
    std::fs::write(&file, site()).unwrap();
    let f = file.display();
    let pb = format!(
        r#"
id = "edit"
title = "A configuration edit"
version = "1.0.0"
description = "Offers one config_edit."
start = "apply"

[[node]]
id = "apply"
title = "Apply the remedy"
guidance = "Point fastcgi_pass at the live socket and raise the timeout."
action = {{ tier = "disruptive", do = {{ config_edit = {{ file = "{f}", changes = ["@3 proxy_read_timeout 11s", "@17 fastcgi_pass unix:/run/php/php8.2-fpm.sock"], allowed = ["{f}"], url = "http://127.0.0.1:9/", service = {{ unit = "nginx", config = "{f}" }} }} }} }}
next = "done"

[[node]]
id = "done"
title = "Done"
end = "resolved"
"#
    );
    let (lib, failures) = Library::from_sources(vec![Source {
        origin: Origin::Embedded("edit.toml"),
        text: pb,
    }]);
    assert!(failures.is_empty(), "{}", failures[0].rendered);
    App::new(
        Setup {
            library: Arc::new(lib),
            playbook: "edit".into(),
            vars: vec![],
            read_only: false,
            max_tier: None,
            journal: false,
            playbook_file: None,
            since: HumanDuration(Duration::from_secs(3600)),
            ascii: false,
            color: true,
        },
        Some("http://127.0.0.1:9/".into()),
        "2026-01-02T03:04:05Z".parse().unwrap(),
    )
}

fn key(app: &mut App, code: KeyCode) -> Option<Command> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..24 {
        for x in 0..80 {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn the_diff_is_shown_scrolls_at_80x24_and_the_confirmed_edit_is_pinned_to_it() {
    let mut a = app();
    let Some(Command::Plan {
        seq,
        offer,
        why,
        mut policy,
    }) = key(&mut a, KeyCode::Enter)
    else {
        panic!("Enter on the start screen offers the edit");
    };
    policy.systemd = Some(false);
    let plan = Plan::new(&offer, &why, &policy);
    assert!(plan.runnable(), "{}", plan.render());
    a.update(Msg::Plan(seq, Box::new(plan)));

    let top = screen(&a);
    assert!(top.contains("Diff, lines 1-6 of"), "{top}");
    assert!(top.contains("+    proxy_read_timeout 11s;"), "{top}");
    insta::assert_snapshot!("config_edit_diff_top_80x24", top);
    for _ in 0..30 {
        key(&mut a, KeyCode::Down);
    }
    let bottom = screen(&a);
    // The long line wraps in the 80-column dialog.
    assert!(
        bottom.contains("Diff, lines 11-16 of 16")
            && bottom.contains("+        fastcgi_pass")
            && bottom.contains("unix:/run/php/php8.2-fpm.sock;"),
        "{bottom}"
    );
    insta::assert_snapshot!("config_edit_diff_bottom_80x24", bottom);
    key(&mut a, KeyCode::Up);
    assert_ne!(screen(&a), bottom, "up scrolls back");

    // Typing the file's name confirms; what runs carries the file's hash.
    for c in "site.conf".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    let Some(Command::Execute { spec, policy, .. }) = key(&mut a, KeyCode::Enter) else {
        panic!("the typed file name confirms");
    };
    let ActionSpec::ConfigEdit(e) = *spec else {
        panic!("a config edit runs");
    };
    assert_eq!(
        e.expect_sha256.as_deref(),
        Some(triage502::action::config_edit::sha256_hex(site().as_bytes()).as_str())
    );
    assert!(policy.interactive_consent && !policy.read_only);
}
