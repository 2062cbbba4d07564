//! The real binary in tmux at 80x24, against a loopback server answering
//! `502 Bad Gateway` with `Server: nginx`: driven with `send-keys` from the
//! start screen to the end of the walk and the ticket preview, then quit; and
//! killed with SIGHUP. Each time the shell in the pane must get a sane
//! terminal back (`stty -a` shows `icanon` and `echo`).
//!
//! Only generic things of the default playbook are relied on (the start
//! screen's title, Enter/defaults until the walk ends, "Findings" in the
//! ticket), since the playbook changes independently.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_triage502");

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

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tmux {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmux session running a plain shell; killed (only this one) on drop.
struct Session {
    name: String,
    _dir: tempfile::TempDir,
}

impl Session {
    fn new(tag: &str) -> Session {
        assert!(
            which::which("tmux").is_ok(),
            "tmux is missing: install it with `apt-get install -y tmux`"
        );
        let dir = tempfile::tempdir().unwrap();
        let name = format!("triage502-{tag}-{}", std::process::id());
        let d = dir.path().to_str().unwrap().to_owned();
        tmux(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            &name,
            "-c",
            &d,
            "env PS1='$ ' TERM=xterm-256color bash --norc --noprofile",
        ]);
        Session { name, _dir: dir }
    }

    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    fn send(&self, keys: &str) {
        tmux(&["send-keys", "-t", &self.name, keys]);
    }

    fn type_line(&self, text: &str) {
        tmux(&["send-keys", "-t", &self.name, "-l", text]);
        self.send("Enter");
    }

    /// Wait until the screen satisfies `pred`; panic with the screen if not.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of the program started from the pane's shell.
    fn child_pid(&self) -> Option<String> {
        let shell = tmux(&["display", "-p", "-t", &self.name, "#{pane_pid}"]);
        let shell = shell.trim();
        let kids = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        kids.split_whitespace().next().map(str::to_owned)
    }

    /// Run `stty -a` in the pane and assert canonical mode and echo are on.
    fn assert_sane_terminal(&self) {
        self.send("clear");
        self.send("Enter");
        // The marker is computed so the typed command line never matches it.
        self.type_line("stty -a; echo STTY-$((40+2))");
        let s = self.wait("stty output", |s| s.lines().any(|l| l.trim() == "STTY-42"));
        let words: Vec<&str> = s.split_whitespace().collect();
        assert!(
            words.contains(&"icanon") && !words.contains(&"-icanon"),
            "terminal left raw:\n{s}"
        );
        assert!(
            words.contains(&"echo") && !words.contains(&"-echo"),
            "echo left off:\n{s}"
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
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
            assert!(s.contains("Runs exactly:") && s.contains("Tier:"), "{s}");
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
    let ticket = sess.wait("the ticket preview", |s| s.contains("Ticket preview"));
    assert!(
        ticket.contains("## Findings") && ticket.contains(&url),
        "{ticket}"
    );
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
    _dir: tempfile::TempDir,
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
            _dir: dir,
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
    sess.send("t");
    let ticket = sess.wait("the ticket preview", |s| s.contains("Ticket preview"));
    assert!(
        ticket.contains("## Findings") && ticket.contains("upstream_refused"),
        "{ticket}"
    );
    sess.send("Escape");
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    let after = sess.wait("the summary line", |s| {
        s.contains("triage502: problem found")
    });
    assert!(after.contains("upstream_refused"), "{after}");
    sess.assert_sane_terminal();
}
