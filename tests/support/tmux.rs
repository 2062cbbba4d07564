//! The real binary in a tmux pane: a session running a plain bash, keys
//! sent with `send-keys`, the screen read with `capture-pane`, the terminal
//! state read from tmux (alternate screen, mouse reporting) and from
//! `stty -a` in the pane, and the peak memory of the program from /proc.
#![allow(dead_code, reason = "each test file uses part of it")]

use std::process::Command;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_triage502");

pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tmux {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmux session running a plain shell; killed (only this one) on drop.
/// Its journals go to `XDG_STATE_HOME` in a temp dir, never the real state dir.
pub struct Session {
    pub name: String,
    _dir: tempfile::TempDir,
    state: Option<tempfile::TempDir>,
}

impl Session {
    pub fn new(tag: &str) -> Session {
        let state = tempfile::tempdir().unwrap();
        let mut s = Session::with_state(tag, state.path());
        s.state = Some(state);
        s
    }

    /// A session whose `XDG_STATE_HOME` is `state` (shared to test resume).
    pub fn with_state(tag: &str, state: &std::path::Path) -> Session {
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
            &format!(
                "env PS1='$ ' TERM=xterm-256color XDG_STATE_HOME='{}' bash --norc --noprofile",
                state.display()
            ),
        ]);
        Session {
            name,
            _dir: dir,
            state: None,
        }
    }

    pub fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    /// The screen with wrapped lines joined (long messages read whole).
    pub fn joined(&self) -> String {
        tmux(&["capture-pane", "-p", "-J", "-t", &self.name])
    }

    pub fn send(&self, keys: &str) {
        tmux(&["send-keys", "-t", &self.name, keys]);
    }

    pub fn type_line(&self, text: &str) {
        tmux(&["send-keys", "-t", &self.name, "-l", text]);
        self.send("Enter");
    }

    pub fn resize(&self, w: u16, h: u16) {
        tmux(&[
            "resize-window",
            "-t",
            &self.name,
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
        ]);
    }

    /// Wait until the screen satisfies `pred`; panic with the screen if not.
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_on(what, pred, Session::screen)
    }

    /// [`Session::wait`] on the screen with wrapped lines joined.
    pub fn wait_joined(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_on(what, pred, Session::joined)
    }

    fn wait_on(
        &self,
        what: &str,
        pred: impl Fn(&str) -> bool,
        capture: fn(&Session) -> String,
    ) -> String {
        let t0 = Instant::now();
        loop {
            let s = capture(self);
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

    /// Enter through the remaining steps (not while checks run) until the walk's end screen
    /// (`Done: `), at most 20 steps 400 ms apart; the last screen read.
    pub fn walk_to_done(&self) -> String {
        let mut done = String::new();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(400));
            done = self.screen();
            if done.contains("Done: ") {
                break;
            }
            if !done.contains("checks running") {
                self.send("Enter");
            }
        }
        done
    }

    /// The pid of the program started from the pane's shell.
    pub fn child_pid(&self) -> Option<String> {
        let shell = tmux(&["display", "-p", "-t", &self.name, "#{pane_pid}"]);
        let shell = shell.trim();
        let kids = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        kids.split_whitespace().next().map(str::to_owned)
    }

    /// (alternate screen, mouse button reporting, SGR mouse) as tmux sees the pane.
    pub fn modes(&self) -> (bool, bool, bool) {
        let f = tmux(&[
            "display",
            "-p",
            "-t",
            &self.name,
            "#{alternate_on} #{mouse_standard_flag} #{mouse_sgr_flag}",
        ]);
        let v: Vec<bool> = f.split_whitespace().map(|x| x == "1").collect();
        (v[0], v[1], v[2])
    }

    /// Run `stty -a` in the pane and assert canonical mode and echo are on.
    pub fn assert_sane_terminal(&self) {
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

/// A screen as one line of text, as an operator reads it: on each row the last box segment (the
/// text inside the box), rows joined with spaces, runs of blanks collapsed. A command or id wrapped
/// inside a box reads whole again, with one space where it wrapped.
pub fn flowed(screen: &str) -> String {
    let rows: Vec<&str> = screen
        .lines()
        .map(|l| {
            l.split('│')
                .map(str::trim)
                .rfind(|seg| !seg.is_empty())
                .unwrap_or("")
        })
        .collect();
    rows.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Peak resident memory (VmHWM) of a running process, in KiB.
pub fn peak_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The limit of issue 10: peak memory under 100 MiB in every hostile test.
pub const MAX_PEAK_KIB: u64 = 100 * 1024;
