//! `backends` against a real HAProxy on loopback balancing three servers: one up, one answering
//! 500, one refusing. Every server is probed; HAProxy's own health checks are read from its stats
//! socket (`show stat`); discovery publishes what the playbook routes on.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use listeners::{Behaviour, closed_port, ctx, require, start};
use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::backends::{Params, run, table};
use triage502::duration::HumanDuration;

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
const ERR: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\nerror";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_of_an_haproxy_backend_with_its_health_check() {
    let haproxy = require("haproxy", "haproxy");
    let up = start(Behaviour::Reply(OK)).await;
    let five = start(Behaviour::Reply(ERR)).await;
    let refused = closed_port();
    let front = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global
    stats socket {sock} mode 600 level user
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind {front}
    default_backend app
backend app
    option httpchk GET /
    server s1 {up} check inter 200ms fall 1 rise 1
    server s2 {five} check inter 200ms fall 1 rise 1
    server s3 {refused} check inter 200ms fall 1 rise 1
",
            sock = sock.display()
        ),
    )
    .unwrap();
    let _h = Haproxy(
        Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let params = Params {
        addresses: format!("{up}\n{five}\n{refused}"),
        group: Some("app".into()),
        host: Some("shop.lab.test".into()),
        path: Some("/cart".into()),
        stats_socket: Some(sock.display().to_string()),
        slow: None,
        timeout: Some(HumanDuration(Duration::from_secs(2))),
    };
    // Until HAProxy has checked every server once (inter 200ms, fall 1).
    let t0 = Instant::now();
    let r = loop {
        let r = run(&params, &ctx()).await;
        let rows = table(&r);
        let checked = rows.len() == 3
            && rows[0].2.contains("UP")
            && rows[1].2.contains("DOWN")
            && rows[2].2.contains("DOWN");
        if checked || t0.elapsed() > Duration::from_secs(10) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rows = table(&r);
    assert_eq!(rows.len(), 3, "{r:#?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        (up.as_str(), "up")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        (five.as_str(), "http_5xx")
    );
    assert_eq!(
        (rows[2].0.as_str(), rows[2].1.as_str()),
        (refused.as_str(), "refused")
    );
    assert!(
        rows[0].2.starts_with("s1: UP"),
        "{rows:?} {:#?}",
        r.evidence
    );
    assert!(rows[1].2.starts_with("s2: DOWN (L7STS"), "{rows:?}");
    assert!(rows[2].2.starts_with("s3: DOWN (L4CON"), "{rows:?}");

    assert_eq!(r.outcome, Outcome::Problem);
    assert!(
        r.summary.starts_with("2 of 3 servers of app fail"),
        "{}",
        r.summary
    );
    assert_eq!(r.facts["backends.total"], "3");
    assert_eq!(r.facts["backends.up"], "1");
    assert_eq!(r.facts["backends.failing"], format!("{five}\n{refused}"));
    // The refusing server is a cause, named with its address; the 500 is a state, not a cause.
    let causes: Vec<Cause> = r.diagnoses.iter().map(|d| d.cause).collect();
    assert_eq!(causes, [Cause::UpstreamRefused], "{:#?}", r.diagnoses);
    assert!(
        r.diagnoses[0].summary.contains(&refused) && !r.diagnoses[0].summary.contains(&up),
        "{}",
        r.diagnoses[0].summary
    );
    // The single-probe facts come from the first failing server.
    assert_eq!(r.facts["probe.result"], "answered");
    assert_eq!(r.facts["probe.status"], "500");
    assert!(
        r.evidence
            .iter()
            .any(|e| e.label == "HAProxy show stat" && e.text.contains("3 server rows")),
        "{:#?}",
        r.evidence
    );

    // Discovery publishes what the playbook routes on: several servers, the group, the socket.
    let disc = triage502::checks::discovery::run(
        &triage502::checks::discovery::Params {
            url: format!("http://{front}/cart"),
            overrides: std::collections::BTreeMap::default(),
            timeout: None,
        },
        &ctx(),
    )
    .await;
    assert_eq!(
        disc.facts.get("front.kind").map(String::as_str),
        Some("haproxy"),
        "{disc:#?}"
    );
    assert_eq!(
        disc.facts.get("upstream.servers").map(String::as_str),
        Some("3")
    );
    assert_eq!(
        disc.facts.get("upstream.group").map(String::as_str),
        Some("app")
    );
    assert_eq!(
        disc.facts.get("stats_socket").map(String::as_str),
        Some(sock.display().to_string().as_str())
    );
}

#[tokio::test]
async fn all_servers_up_is_ok_and_nothing_to_probe_is_inconclusive() {
    let a = start(Behaviour::Reply(OK)).await;
    let b = start(Behaviour::Reply(OK)).await;
    let p = Params {
        addresses: format!("{a}, {b}"),
        group: None,
        host: None,
        path: None,
        stats_socket: None,
        slow: None,
        timeout: Some(HumanDuration(Duration::from_secs(2))),
    };
    let r = run(&p, &ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert!(r.diagnoses.is_empty());
    assert_eq!(r.facts["backends.up"], "2");
    let empty = Params {
        addresses: String::new(),
        ..p
    };
    assert_eq!(run(&empty, &ctx()).await.outcome, Outcome::Inconclusive);
}
