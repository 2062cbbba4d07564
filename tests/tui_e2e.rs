//! The real binary in tmux at 80x24, against a loopback server answering
//! `502 Bad Gateway` with `Server: nginx`: driven with `send-keys` from the
//! start screen to the end of the walk and the ticket preview, then quit; and
//! killed with SIGHUP. Each time the shell in the pane must get a sane
//! terminal back (`stty -a` shows `icanon` and `echo`).
//!
//! In the real-nginx walk, `m` (map) and `w` (watch) are read at 80x24 too.
//!
//! Only generic things of the default playbook are relied on (the start
//! screen's title, Enter/defaults until the walk ends, "Findings" in the
//! ticket), since the playbook changes independently.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/tmux.rs"]
mod tmux;

use tmux::{BIN, Session, tmux};

/// A loopback HTTP server that answers every request with a 502 from "nginx".
fn bad_gateway_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().take(10_000) {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = "<html><body><h1>502 Bad Gateway</h1></body></html>";
            let _ = write!(
                c,
                "HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/")
}

fn is_walk_screen(s: &str) -> bool {
    s.contains("Path (") && s.contains("Findings (")
}

/// Press Enter (take defaults, continue) and Esc on actions (decline) until
/// the walk ends; check each screen on the way. Returns the final screen.
fn walk_to_the_end(sess: &Session) -> String {
    for _ in 0..60 {
        let s = sess.wait("a walk screen without running checks", |s| {
            is_walk_screen(s) && !s.contains("checks running")
        });
        assert!(s.lines().count() <= 24 && s.contains("? help"), "{s}");
        if s.contains("Done: ") {
            return s;
        }
        if s.contains("Action: ") {
            if !s.contains("Runs exactly") {
                // The dialog's details are still being prepared.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            assert!(s.contains("Tier:"), "{s}");
            sess.send("Escape");
        } else if s.contains("Question: ") {
            assert!(s.contains("(default)"), "{s}");
            sess.send("Enter");
        } else {
            sess.send("Enter");
        }
        // Let the key be handled before reading the screen again.
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("the walk did not end within 60 steps:\n{}", sess.screen());
}

/// Page down the open preview until `text` shows; returns that screen.
fn page_to(sess: &Session, text: &str) -> String {
    for _ in 0..12 {
        let s = sess.screen();
        if s.contains(text) {
            return s;
        }
        sess.send("PageDown");
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("`{text}` never showed:\n{}", sess.screen());
}

#[test]
fn walk_the_default_playbook_in_tmux_to_the_ticket_and_quit() {
    let url = bad_gateway_server();
    let sess = Session::new("walk");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&format!("{BIN} {url}"));
    let start = sess.wait("the start screen", |s| s.contains("Start: diagnose a 502"));
    assert!(
        start.contains(&url) && start.contains("Enter start"),
        "{start}"
    );

    // Resize while the app runs: it redraws at the new size, then back.
    tmux(&["resize-window", "-t", &sess.name, "-x", "120", "-y", "40"]);
    let big = sess.wait("a redraw at 120x40", |s| {
        s.lines().nth(1).is_some_and(|l| l.chars().count() == 120)
    });
    assert!(big.contains("Start: diagnose a 502"), "{big}");
    tmux(&["resize-window", "-t", &sess.name, "-x", "80", "-y", "24"]);
    sess.wait("a redraw at 80x24", |s| {
        s.lines().nth(1).is_some_and(|l| l.chars().count() == 80)
    });

    sess.send("Enter");
    let done = walk_to_the_end(&sess);
    // The probe saw the 502 from nginx: its summary is on the screen.
    assert!(done.contains("502"), "{done}");

    sess.send("t");
    let ticket = sess.wait("the ticket preview", |s| {
        s.contains("Ticket preview") && s.contains("## Impact")
    });
    assert!(
        ticket.contains("Masked before export") && ticket.contains(&url),
        "{ticket}"
    );
    page_to(&sess, "## Findings");
    sess.send("PageDown");
    sess.send("Escape");
    sess.wait("the done screen again", |s| {
        s.contains("Done: ") && !s.contains("Ticket preview")
    });

    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    let after = sess.wait("the summary line after exit", |s| s.contains("triage502: "));
    assert!(
        !after.contains("Path ("),
        "the alternate screen was not left:\n{after}"
    );
    sess.assert_sane_terminal();
}

#[test]
fn sighup_restores_the_terminal() {
    let sess = Session::new("hup");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(BIN);
    let s = sess.wait("the URL prompt", |s| s.contains("Start: diagnose a 502"));
    assert!(s.contains("URL"), "{s}");
    tmux(&["send-keys", "-t", &sess.name, "-l", "http://127.0.0.1:9/"]);
    sess.wait("the typed URL", |s| s.contains("http://127.0.0.1:9/_"));
    let pid = sess
        .child_pid()
        .expect("the app runs under the pane's shell");
    let st = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(st.success());
    let s = sess.wait("the exit message", |s| s.contains("stopped by SIGHUP"));
    assert!(
        !s.contains("Start: diagnose"),
        "the alternate screen was not left:\n{s}"
    );
    sess.assert_sane_terminal();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real nginx on loopback proxying to a port where nothing listens.
struct Nginx {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
    upstream: u16,
}

impl Nginx {
    fn upstream_refused() -> Nginx {
        let bin = which::which("nginx")
            .expect("nginx is missing: install it with `apt-get install -y nginx`");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let (port, upstream) = (free_port(), free_port());
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/cb;\n  \
             proxy_temp_path {d}/pt;\n  fastcgi_temp_path {d}/ft;\n  uwsgi_temp_path {d}/ut;\n  \
             scgi_temp_path {d}/st;\n  server {{ listen 127.0.0.1:{port}; \
             location / {{ proxy_pass http://127.0.0.1:{upstream}; }} }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            dir,
            port,
            upstream,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers too.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

#[test]
fn real_nginx_upstream_refused_reaches_the_finding_and_the_ticket() {
    let ngx = Nginx::upstream_refused();
    let url = format!("http://127.0.0.1:{}/", ngx.port);
    let sess = Session::new("nginx");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&format!(
        "{BIN} --var upstream=127.0.0.1:{} {url}",
        ngx.upstream
    ));
    sess.wait("the start screen", |s| s.contains("Start: diagnose a 502"));
    sess.send("Enter");
    let done = walk_to_the_end(&sess);
    assert!(done.contains("The upstream refuses connections"), "{done}");
    map_and_watch(&sess, &ngx);
    sess.send("t");
    sess.wait("the ticket preview", |s| {
        s.contains("Ticket preview") && s.contains("## Impact")
    });
    // The finding itself, under "## Findings" (the only place it is written this way; the
    // timeline above may mention the cause too, and may push the section down a page).
    let findings = page_to(
        &sess,
        "**The upstream refuses connections** (`upstream_refused`",
    );
    assert!(findings.contains("upstream_refused"), "{findings}");
    sess.send("Escape");
    // Wait before `q`: Esc and a quick `q` would arrive as one Alt-q.
    sess.wait("the preview closed", |s| !s.contains("Ticket preview"));
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    let after = sess.wait("the summary line", |s| {
        s.contains("triage502: problem found")
    });
    assert!(after.contains("upstream_refused"), "{after}");
    sess.assert_sane_terminal();
}

/// `m` and `w` on the done screen of the real-nginx walk: the map names the
/// refused upstream as the failing hop behind a healthy nginx; the watch
/// re-probes the URL (502s), charts the access log nginx writes, and stops
/// probing when left (nginx's access log stops growing).
fn map_and_watch(sess: &Session, ngx: &Nginx) {
    sess.send("m");
    let map = sess.wait("the map", |s| s.contains("First failing hop"));
    let up = format!("127.0.0.1:{}", ngx.upstream);
    assert!(
        map.contains(&format!("First failing hop: upstream {up}"))
            && map.contains("✗ upstream  FAILING")
            && map.contains("✓ front     healthy   nginx (pid")
            && map.contains("answers 502 with its own error page")
            && map.contains("nginx.conf:"),
        "{map}"
    );
    assert!(map.lines().count() <= 24, "{map}");
    sess.send("Escape");
    sess.wait("the done screen after the map", |s| {
        s.contains("Done: ") && !s.contains("First failing hop")
    });
    sess.send("w");
    let probes = regex::Regex::new(r"(\d+) probes, (\d+) failed").unwrap();
    let watch = sess.wait("three probes and the access log in the watch", |s| {
        let n = probes
            .captures(s)
            .and_then(|c| c[1].parse::<u32>().ok())
            .unwrap_or(0);
        s.contains("every 2s") && n >= 3 && s.contains("peak ")
    });
    let log = ngx.dir.path().join("access.log");
    assert!(
        watch.contains("FAILING: the last probe got 502")
            && watch.contains("502/503/504 per minute, last 30 min of"),
        "{watch}"
    );
    sess.send("Escape");
    sess.wait("the done screen after the watch", |s| {
        s.contains("Done: ") && !s.contains("every 2s")
    });
    let lines = || std::fs::read_to_string(&log).unwrap().lines().count();
    // A probe already on the wire may still land; after that, nothing.
    std::thread::sleep(Duration::from_millis(500));
    let left = lines();
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(lines(), left, "the watch kept probing after it was left");
}

/// A lab where the front nginx proxies to an upstream nginx that is
/// stopped (502); the playbook's action starts the upstream again.
struct Lab {
    front: Nginx,
    dir: tempfile::TempDir,
    playbook: std::path::PathBuf,
}

const LAB_PLAYBOOK: &str = r#"
id = "tui-lab"
title = "Lab: start a stopped upstream"
version = "1.0.0"
description = "The front proxy answers 502 because its upstream is down."
start = "probe"

[[var]]
name = "url"
prompt = "Which URL fails?"
type = "url"
required = true

[[var]]
name = "upstream_prefix"
prompt = "The upstream nginx prefix"
type = "path"
required = true

[[node]]
id = "probe"
title = "Request the failing URL"
checks = [{ http = { url = "{{ url }}", timeout = "5s" } }]
on = { ok = "healthy", problem = "start", inconclusive = "start" }

[[node]]
id = "start"
title = "Start the upstream"
guidance = "The upstream refuses connections: start it again."
action = { tier = "disruptive", do = { command = { argv = ["nginx", "-p", "{{ upstream_prefix }}", "-c", "{{ upstream_prefix }}/nginx.conf"] } } }
on = { done = "verify", failed = "escalate", declined = "escalate" }

[[node]]
id = "verify"
title = "Request it again"
checks = [{ http = { url = "{{ url }}", timeout = "5s" } }]
on = { ok = "healthy", problem = "escalate", inconclusive = "escalate" }

[[node]]
id = "healthy"
title = "It answers"
end = "resolved"

[[node]]
id = "escalate"
title = "Hand over"
end = "escalate"
"#;

impl Lab {
    fn new() -> Lab {
        let front = Nginx::upstream_refused();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "daemon on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/cb;\n  \
             proxy_temp_path {d}/pt;\n  fastcgi_temp_path {d}/ft;\n  uwsgi_temp_path {d}/ut;\n  \
             scgi_temp_path {d}/st;\n  server {{ listen 127.0.0.1:{}; \
             location / {{ return 200 \"shop\\n\"; }} }}\n}}\n",
            front.upstream
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let playbook = dir.path().join("lab.toml");
        std::fs::write(&playbook, LAB_PLAYBOOK).unwrap();
        Lab {
            front,
            dir,
            playbook,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/checkout", self.front.port)
    }

    fn command(&self) -> String {
        format!(
            "{BIN} --playbook {} --var upstream_prefix={} {}",
            self.playbook.display(),
            self.dir.path().display(),
            self.url()
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The upstream the action started daemonised: stop it by its pid file.
        let Some(pid) = std::fs::read_to_string(self.dir.path().join("nginx.pid"))
            .ok()
            .map(|s| s.trim().to_owned())
        else {
            return;
        };
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let t0 = Instant::now();
        while std::path::Path::new(&format!("/proc/{pid}")).exists()
            && t0.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn confirmed_action_starts_the_upstream_and_the_wizard_sees_200() {
    let lab = Lab::new();
    let sess = Session::new("action");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&lab.command());
    sess.wait("the start screen", |s| s.contains("Enter start"));
    sess.send("Enter");
    let offer = sess.wait("the action dialog", |s| s.contains("type `nginx`"));
    assert!(
        offer.contains("disruptive")
            && offer.contains("Runs exactly")
            && offer.contains("nginx -p"),
        "{offer}"
    );
    // `y` is not enough for a disruptive action: it is typed into the field.
    tmux(&["send-keys", "-t", &sess.name, "-l", "nginx"]);
    sess.send("Enter");
    let result = sess.wait("the action result with verify-after-fix", |s| {
        s.contains("Action result") && s.contains("after:  200")
    });
    assert!(
        result.contains("succeeded") && result.contains("before: 502"),
        "{result}"
    );
    sess.send("Escape");
    let done = sess.wait("the end of the walk", |s| s.contains("Done: "));
    assert!(done.contains("Resolved"), "{done}");
    // The ticket (from the journal) records the fix and its before/after.
    sess.send("t");
    sess.wait("the ticket preview", |s| {
        s.contains("Ticket preview") && s.contains("## Impact")
    });
    let tried = page_to(&sess, "verify-after-fix");
    assert!(
        tried.contains("## What was tried") || tried.contains("nginx -p"),
        "{tried}"
    );
    sess.send("Escape");
    // Wait before `q`: Esc and a quick `q` would arrive as one Alt-q.
    sess.wait("the preview closed", |s| !s.contains("Ticket preview"));
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    let after = sess.wait("the resume hint", |s| s.contains("--resume"));
    assert!(after.contains("saved: resume with"), "{after}");
    sess.assert_sane_terminal();
}

#[test]
fn sighup_then_resume_continues_at_the_same_node() {
    resume_after("HUP");
}

#[test]
fn kill_9_then_resume_continues_at_the_same_node() {
    resume_after("KILL");
}

/// Stop the wizard at the action offer with `signal`, then `--resume` in a
/// new tmux session (same state dir) and find the same offer again.
fn resume_after(signal: &str) {
    let lab = Lab::new();
    let state = tempfile::tempdir().unwrap();
    let sess = Session::with_state(&format!("{signal}-1"), state.path());
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&lab.command());
    sess.wait("the start screen", |s| s.contains("Enter start"));
    sess.send("Enter");
    sess.wait("the action dialog", |s| s.contains("type `nginx`"));
    let pid = sess
        .child_pid()
        .expect("the app runs under the pane's shell");
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(st.success());
    if signal == "KILL" {
        // Nothing can restore a terminal after SIGKILL: the shell gets it back raw.
        sess.wait("the shell again", |s| {
            s.contains("Killed") || s.contains('$')
        });
        std::thread::sleep(Duration::from_millis(300));
        sess.type_line("stty sane");
    } else {
        let s = sess.wait("the resume hint", |s| s.contains("--resume"));
        assert!(s.contains("stopped by SIGHUP"), "{s}");
    }
    sess.assert_sane_terminal();
    drop(sess);

    let again = Session::with_state(&format!("{signal}-2"), state.path());
    again.wait("the shell prompt", |s| s.contains('$'));
    again.type_line(&format!("{BIN} --resume"));
    // Without an id the saved sessions are listed, newest first, the newest highlighted.
    let list = again.wait("the list of saved sessions", |s| {
        s.contains("Resume a saved session (1)") && s.contains("open")
    });
    assert!(
        list.contains(&lab.url()) && list.contains("playbook tui-lab, at tui-lab/start"),
        "{list}"
    );
    again.send("Enter");
    let s = again.wait("the same action offered again", |s| {
        s.contains("Action: Start the upstream") && s.contains("type `nginx`")
    });
    // The trail was rebuilt from the journal: the probe's result is on the path.
    assert!(
        s.contains("✗ Request the failing") && s.contains("resumed session"),
        "{s}"
    );
    // `q` would be typed into the confirmation field: Ctrl-C asks to quit.
    again.send("C-c");
    again.wait("the quit question", |s| s.contains("Quit triage502?"));
    again.send("y");
    again.wait("the resume hint", |s| s.contains("--resume"));
    again.assert_sane_terminal();
    // The journal was not garbled by the two processes: it still loads.
    let dir = state.path().join("triage502/sessions");
    let journals: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(journals.len(), 1, "one session, resumed in place");
    let session = triage502::journal::load(&journals[0].path()).unwrap();
    assert!(!session.torn, "the journal ends with a torn line");
}
