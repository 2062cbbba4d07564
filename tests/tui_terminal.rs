//! Issue 10, the terminal: the real binary in tmux with no terminal on
//! stdin (redirected from /dev/null, or closed), output to a pipe, and
//! `TERM=dumb`: one clear error naming `run --non-interactive`, a non-zero
//! exit, and the terminal untouched (no alternate screen, no mouse
//! reporting, `stty -a` sane). A resize storm (hundreds of `tmux
//! resize-window`, down to 1x1) while the wizard runs: it still draws a
//! readable screen and leaves a sane terminal. The mouse wheel scrolls the
//! evidence, and wheel reporting is off again after a quit and after
//! SIGTERM. Peak memory of the binary is measured in each (GNU time's
//! maximum RSS for the short runs, VmHWM from /proc for the long ones) and
//! must stay under 100 MiB.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

#[path = "support/listeners.rs"]
mod listeners;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::Duration;

use tmux::{BIN, MAX_PEAK_KIB, Session, peak_kib};

/// A loopback server answering 502 from "nginx"; lives as long as the runtime.
fn bad_gateway(rt: &tokio::runtime::Runtime) -> String {
    let addr = rt.block_on(listeners::start(listeners::Behaviour::Reply(
        b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )));
    format!("http://{addr}/checkout")
}

fn gnu_time() -> &'static str {
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "GNU time is missing: install it with `apt-get install -y time`"
    );
    "/usr/bin/time -f RSS=%M"
}

/// Run `line` (which must end by printing `EXIT=<status>`) in a fresh pane;
/// return the joined screen, the exit status and the peak RSS in KiB.
fn refused(tag: &str, line: &str) -> (String, u32, u64) {
    let sess = Session::new(tag);
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(line);
    let s = sess.wait_joined("the exit status", |s| {
        s.lines().any(|l| l.starts_with("EXIT=")) && s.contains("RSS=")
    });
    let field = |p: &str| -> u64 {
        s.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {p} in:\n{s}"))
    };
    let code = field("EXIT=") as u32;
    let rss = field("RSS=");
    // Untouched: never switched to the alternate screen or mouse mode.
    assert_eq!(sess.modes(), (false, false, false), "{s}");
    sess.assert_sane_terminal();
    (s, code, rss)
}

fn assert_one_clear_error(s: &str, why: &str) {
    let errors: Vec<&str> = s.lines().filter(|l| l.starts_with("triage502: ")).collect();
    assert_eq!(errors.len(), 1, "one message, not a cascade:\n{s}");
    let e = errors[0];
    assert!(
        e.contains("needs a terminal") && e.contains(why) && e.contains("run --non-interactive"),
        "{e}"
    );
    // No escape sequences leaked as text.
    assert!(!s.contains("[?1049") && !s.contains("[?1000"), "{s}");
}

#[test]
fn stdin_from_dev_null_or_closed_is_refused_clearly() {
    let t = gnu_time();
    let url = "http://127.0.0.1:9/";
    for (tag, redirect) in [("devnull", "< /dev/null"), ("closed", "<&-")] {
        let (s, code, rss) = refused(
            &format!("stdin-{tag}"),
            &format!("{t} {BIN} {url} {redirect}; echo EXIT=$?"),
        );
        assert_eq!(code, 2, "a usage error:\n{s}");
        assert_one_clear_error(&s, "standard input is not a terminal");
        assert!(rss < MAX_PEAK_KIB, "peak RSS {rss} KiB");
    }
}

#[test]
fn output_to_a_pipe_is_refused_and_writes_nothing_to_it() {
    let t = gnu_time();
    let (s, code, rss) = refused(
        "pipe",
        &format!("{t} {BIN} http://127.0.0.1:9/ | wc -c; echo EXIT=${{PIPESTATUS[0]}}"),
    );
    assert_eq!(code, 2, "{s}");
    assert_one_clear_error(&s, "standard output is not a terminal");
    // `wc -c` counted what reached the pipe: nothing.
    assert!(
        s.lines().any(|l| l.trim() == "0"),
        "bytes reached the pipe:\n{s}"
    );
    assert!(rss < MAX_PEAK_KIB, "peak RSS {rss} KiB");
}

#[test]
fn term_dumb_is_refused_clearly() {
    let t = gnu_time();
    let (s, code, rss) = refused(
        "dumb",
        &format!("TERM=dumb {t} {BIN} http://127.0.0.1:9/; echo EXIT=$?"),
    );
    assert_eq!(code, 2, "{s}");
    assert_one_clear_error(&s, "TERM=dumb");
    assert!(rss < MAX_PEAK_KIB, "peak RSS {rss} KiB");
}

#[test]
fn resize_storm_then_a_readable_screen_and_a_sane_terminal() {
    let sess = Session::new("storm");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&format!("{BIN} http://127.0.0.1:9/checkout"));
    sess.wait("the start screen", |s| s.contains("Start: diagnose a 502"));
    assert_eq!(
        sess.modes(),
        (true, true, true),
        "alternate screen and wheel reports on"
    );
    let pid = sess
        .child_pid()
        .expect("the wizard runs under the pane's shell");
    let sizes: [(u16, u16); 9] = [
        (1, 1),
        (2, 2),
        (1, 24),
        (80, 1),
        (200, 60),
        (17, 5),
        (120, 40),
        (3, 100),
        (80, 24),
    ];
    // 360 resizes back to back, no pause: the loop sees them in bursts.
    for i in 0..360 {
        let (w, h) = sizes[i % sizes.len()];
        sess.resize(w, h);
    }
    sess.resize(80, 24);
    let s = sess.wait("a whole redraw at 80x24", |s| {
        s.contains("Start: diagnose a 502")
            && s.lines().nth(1).is_some_and(|l| l.chars().count() == 80)
    });
    assert!(
        s.contains("Enter start") && s.contains("127.0.0.1:9"),
        "{s}"
    );
    // Still answering keys after the storm.
    sess.send("?");
    sess.wait("the help", |s| s.contains("Is a 502 my fault?"));
    sess.send("Escape");
    sess.wait("the help closed", |s| !s.contains("Is a 502 my fault?"));
    let peak = peak_kib(&pid).expect("VmHWM of the running wizard");
    assert!(peak < MAX_PEAK_KIB, "peak RSS {peak} KiB after the storm");
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    sess.wait("the shell again", |s| {
        s.contains("quit before the walk started")
    });
    assert_eq!(
        sess.modes(),
        (false, false, false),
        "alternate screen or mouse mode left on"
    );
    sess.assert_sane_terminal();
}

/// Send one SGR wheel report at (10, 15), as a terminal would for a notch.
fn wheel(sess: &Session, up: bool) {
    let code = if up { 64 } else { 65 };
    tmux::tmux(&[
        "send-keys",
        "-t",
        &sess.name,
        "-l",
        &format!("\x1b[<{code};10;15M"),
    ]);
}

#[test]
fn wheel_scrolls_the_evidence_and_reporting_is_off_after_quit_and_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = bad_gateway(&rt);
    let walk = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tui_walk.toml");
    for how in ["quit", "TERM"] {
        let sess = Session::new(&format!("wheel-{how}"));
        sess.wait("the shell prompt", |s| s.contains('$'));
        sess.type_line(&format!("{BIN} --playbook {walk} {url}"));
        sess.wait("the start screen", |s| s.contains("Enter start"));
        assert_eq!(sess.modes(), (true, true, true));
        sess.send("Enter");
        let before = sess.wait("the question after the probe", |s| {
            s.contains("(default)") && s.contains("Evidence (")
        });
        let evidence_top = |s: &str| -> String {
            let l = s.lines().skip_while(|l| !l.contains("Evidence (")).nth(1);
            l.unwrap_or_default().to_owned()
        };
        let top = evidence_top(&before);
        wheel(&sess, false);
        let after = sess.wait("the evidence scrolled by the wheel", |s| {
            evidence_top(s) != top
        });
        wheel(&sess, true);
        sess.wait("and back up", |s| evidence_top(s) == top);
        // The wheel did nothing else: still the same question.
        assert!(after.contains("(default)"), "{after}");
        let pid = sess.child_pid().unwrap();
        let peak = peak_kib(&pid).unwrap();
        assert!(peak < MAX_PEAK_KIB, "peak RSS {peak} KiB");
        if how == "quit" {
            sess.send("q");
            sess.wait("the quit question", |s| s.contains("Quit triage502?"));
            sess.send("y");
        } else {
            let st = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(st.success());
        }
        sess.wait("the resume hint", |s| s.contains("--resume"));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            sess.modes(),
            (false, false, false),
            "mouse reporting left on after {how}"
        );
        sess.assert_sane_terminal();
    }
}
