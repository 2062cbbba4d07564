//! Crash safety of the real binary: kill it (SIGKILL, SIGHUP) in the middle
//! of a slow check, then `run --non-interactive --resume` continues at the
//! same node from the journal.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use triage502::engine::Input;
use triage502::journal::{self, Event};

const PLAYBOOK: &str = r#"
id = "slowtest"
title = "A walk with a slow check"
version = "0.3.0"
start = "first"

[[var]]
name = "url"
prompt = "Which URL fails?"
type = "url"
required = true

[[var]]
name = "open"
prompt = "An open port"
type = "string"
required = true

[[node]]
id = "first"
title = "Something quick"
checks = [{ tcp = { address = "{{ open }}", timeout = "3s" } }]
on = { ok = "ask", problem = "ask", inconclusive = "ask" }

[[node]]
id = "ask"
title = "A question"
question = "Go on?"
default = "yes"
choices = [{ id = "yes", label = "Yes", next = "slow" }]

[[node]]
id = "slow"
title = "The slow check"
checks = [{ http = { url = "{{ url }}", timeout = "60s" } }]
on = { ok = "fine", problem = "broken", inconclusive = "broken" }

[[node]]
id = "fine"
title = "Fine"
end = "resolved"

[[node]]
id = "broken"
title = "Broken"
end = "escalate"
"#;

/// A loopback HTTP server that holds every request until `release` is set,
/// then answers 502. Counts the connections it accepted.
struct SlowServer {
    url: String,
    hits: Arc<AtomicUsize>,
    release: Arc<AtomicBool>,
}

fn slow_server() -> SlowServer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/checkout", l.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let (h, r) = (hits.clone(), release.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                // Bounded: the test ends within minutes; a dropped client ends the write.
                for _ in 0..6000 {
                    if r.load(Ordering::SeqCst) {
                        let body =
                            "<html><title>502 Bad Gateway</title><center>nginx</center></html>";
                        let _ = write!(
                            s,
                            "HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    SlowServer { url, hits, release }
}

fn bin(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage502"));
    c.env("XDG_CONFIG_HOME", "/nonexistent-triage502-test")
        .env("XDG_STATE_HOME", state);
    c
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn only_journal(state: &Path) -> PathBuf {
    let dir = state.join("triage502/sessions");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn crash_then_resume(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let pb = tmp.path().join("slowtest.toml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_addr = open.local_addr().unwrap().to_string();
    let server = slow_server();

    let mut child = bin(&state)
        .args(["run", "--non-interactive", "--playbook"])
        .arg(&pb)
        .args(["--var", &format!("open={open_addr}"), &server.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the slow check to connect", || {
        server.hits.load(Ordering::SeqCst) >= 1
    });
    if signal == "KILL" {
        child.kill().unwrap();
    } else {
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the walk was not interrupted: {status:?}"
    );

    // The journal holds everything before the slow check, intact.
    let path = only_journal(&state);
    let s = journal::load(&path).unwrap();
    assert_eq!(s.meta.playbook, "slowtest");
    assert_eq!(s.meta.playbook_version, "0.3.0");
    assert_eq!(s.meta.url.as_deref(), Some(server.url.as_str()));
    assert!(s.end().is_none());
    let inputs = s.inputs();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    let Input::ChecksDone(reports) = &inputs[0] else {
        panic!("first input is not check results: {inputs:?}")
    };
    assert_eq!(reports[0].kind, "tcp");
    assert_eq!(reports[0].facts["tcp.result"], "connected");
    assert!(matches!(&inputs[1], Input::Answer { choice, .. } if choice == "yes"));

    // The ticket of the interrupted session renders (status: in progress).
    let t = bin(&state)
        .args(["ticket", "--format", "json"])
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let t: serde_json::Value = serde_json::from_slice(&t.stdout).unwrap();
    assert_eq!(t["session"]["status"], "in progress");
    assert_eq!(t["recovery"], "the session is still in progress");

    // Resume: the quick check is not run again, the slow one is, at the same node.
    server.release.store(true, Ordering::SeqCst);
    let out = bin(&state)
        .args(["run", "--non-interactive", "--resume", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("resuming session {} at slowtest/slow", s.meta.id)),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes: Vec<&str> = report["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["first", "ask", "slow", "broken"]);
    assert_eq!(report["end"], "escalate");

    let after = journal::load(&path).unwrap();
    assert!(!after.torn);
    assert_eq!(after.events[..2], s.events[..2]);
    assert!(
        after
            .events
            .iter()
            .any(|e| matches!(e.event, Event::Resumed { .. }))
    );
    let checks = after
        .inputs()
        .iter()
        .filter(|i| matches!(i, Input::ChecksDone(_)))
        .count();
    assert_eq!(checks, 2);
    assert!(after.end().is_some());

    // The session list shows it finished.
    let out = bin(&state).arg("sessions").output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&s.meta.id), "{listing}");
    assert!(
        listing.contains("inconclusive (escalate)") || listing.contains("problem (escalate)"),
        "{listing}"
    );
    drop(open);
}

#[test]
fn kill_9_mid_check_then_resume_continues_at_the_same_node() {
    crash_then_resume("KILL");
}

#[test]
fn sighup_mid_check_then_resume_continues_at_the_same_node() {
    crash_then_resume("HUP");
}

#[test]
fn resume_without_sessions_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin(tmp.path())
        .args(["run", "--non-interactive", "--resume"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no saved session"));
}
