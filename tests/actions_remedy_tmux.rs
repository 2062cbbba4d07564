//! The real binary in tmux at 80x24 on the lab's real `nginx_header_too_big` incident: the
//! default playbook walks to the remedy, the action dialog shows the diff (the buffer sized from
//! the measured header), the file name is typed to confirm, the edit is applied and verified
//! (after: 200), and the walk reaches "Resolved". Then the lab stops (its files go away).
//!
//! Needs root, nginx and tmux.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

#[path = "lab/harness.rs"]
mod harness;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::Duration;

use tmux::{BIN, Session, tmux};

#[test]
fn header_too_big_diff_confirmed_in_the_dialog_reaches_resolved() {
    let mut lab = harness::Lab::start("nginx_header_too_big");
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let sess = Session::new("remedy");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&format!("{BIN} {}", lab.url));
    sess.wait("the start screen", |s| s.contains("Enter start"));
    sess.send("Enter");
    // Enter through checks and questions (defaults) until the remedy's dialog.
    let mut dialog = None;
    for _ in 0..60 {
        let s = sess.screen();
        assert!(s.lines().count() <= 24, "{s}");
        if s.contains("Action: Apply the remedy") && s.contains("type the name + Enter to confirm")
        {
            dialog = Some(s);
            break;
        }
        assert!(
            !s.contains("Done: "),
            "the walk ended without the remedy:\n{s}"
        );
        if !s.contains("checks running") && !s.contains("Action: ") {
            sess.send("Enter");
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let dialog = dialog.unwrap_or_else(|| panic!("no action dialog:\n{}", sess.screen()));
    eprintln!("{dialog}");
    assert!(
        dialog.contains("Tier: disruptive") && dialog.contains("set proxy_buffer_size 32k"),
        "{dialog}"
    );
    // The diff is in the dialog; scroll to it if the window starts above it.
    let mut shown = dialog.clone();
    for _ in 0..12 {
        if shown.contains("+            proxy_buffer_size 32k;") {
            break;
        }
        sess.send("Down");
        std::thread::sleep(Duration::from_millis(200));
        shown = sess.screen();
    }
    assert!(
        shown.contains("+            proxy_buffer_size 32k;"),
        "the diff never showed:\n{shown}"
    );
    tmux(&["send-keys", "-t", &sess.name, "-l", "nginx.conf"]);
    sess.send("Enter");
    let result = sess.wait("the action result with verify-after-fix", |s| {
        s.contains("Action result") && s.contains("after:  200")
    });
    eprintln!("{result}");
    sess.send("Escape");
    // The verification step, then the prevention advice: Enter until the end.
    let done = sess.walk_to_done();
    assert!(done.contains("Resolved"), "{done}");
    assert_eq!(harness::client::get(&lab.url).status(), Some(200));
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    sess.assert_sane_terminal();
}
