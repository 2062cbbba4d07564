//! The catalogue against a real HAProxy on loopback (config in a temp dir,
//! foreground, `log stdout format raw` so its httplog lines land in the file
//! its stdout is captured to): a backend port nobody listens on (`SC--` 503),
//! a backend that accepts and closes (`SH--` 502) and one that never answers
//! (`sH--` 504 after `timeout server`). The captured log is scanned and each
//! termination state must give its cause, with exact counts. From the URL
//! alone there is no file to read (HAProxy logs to its stdout): a clear error.
//!
//! Needs haproxy; fails with the install command when missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "discovery_support/servers.rs"]
mod servers;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use servers::{free_port, http_status, triage502, write};
use triage502::cause::Cause;
use triage502::logs::{self, ScanOptions, Window};

/// A backend that reads each request and closes without a byte (bounded: `n` connections).
fn closing_backend(n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
        }
    });
    port
}

#[test]
fn real_haproxy_termination_states_are_classified() {
    let dir = servers::tempdir();
    let d = dir.path();
    let port = free_port();
    let dead = free_port(); // nothing listens here
    let closing = closing_backend(2);
    // Bound, never accepted: the kernel completes the handshake, nobody answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let cfg = d.join("haproxy.cfg");
    write(
        &cfg,
        &format!(
            r"global
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    retries 1
    timeout connect 2s
    timeout client 10s
    timeout server 1s

frontend fe_shop
    bind 127.0.0.1:{port}
    use_backend be_closing if {{ path_beg /closing }}
    use_backend be_silent if {{ path_beg /silent }}
    default_backend be_dead

backend be_dead
    server app1 127.0.0.1:{dead}

backend be_closing
    server app2 127.0.0.1:{closing}

backend be_silent
    server app3 127.0.0.1:{silent_port}
"
        ),
    );
    let mut h = servers::haproxy(d, &cfg);
    h.wait_tcp(&format!("127.0.0.1:{port}"));

    let mut statuses = Vec::new();
    for p in ["/dead", "/dead", "/dead", "/closing", "/closing", "/silent"] {
        statuses.push(http_status(port, p));
    }
    assert_eq!(statuses, vec![503, 503, 503, 502, 502, 504]);
    let log = d.join("haproxy.stderr"); // stdout and stderr of the foreground process
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches(" HTTP/1.1\"").count() >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let w = Window::last(Duration::from_secs(600));
    let r = logs::scan(std::slice::from_ref(&log), &w, &ScanOptions::default());
    let count = |c: Cause| {
        r.causes
            .iter()
            .find(|s| s.cause == c)
            .map_or(0, |s| s.count)
    };
    assert_eq!(count(Cause::UpstreamRefused), 3, "{text}\n{r:#?}");
    assert_eq!(count(Cause::UpstreamClosed), 2, "{text}\n{r:#?}");
    assert_eq!(count(Cause::UpstreamTimeout), 1, "{text}\n{r:#?}");
    assert_eq!(r.top_cause(), Some(Cause::UpstreamRefused));
    let refused = r
        .causes
        .iter()
        .find(|s| s.cause == Cause::UpstreamRefused)
        .unwrap();
    assert_eq!(refused.paths[0].value, "/dead", "{r:#?}");
    assert_eq!(r.unmatched.count, 0, "{text}");
    drop(silent);

    // The URL leads to HAProxy, whose log goes to its stdout: nothing to read, said clearly.
    let url = format!("http://127.0.0.1:{port}/dead");
    let (_, err, code) = triage502(&["logs", "scan", "--url", &url]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("discovery found no error log for {url}")),
        "{err}"
    );
    assert!(err.contains("haproxy pid"), "{err}");
    assert!(err.contains("HAProxy logs to its own stdout"), "{err}");
}
