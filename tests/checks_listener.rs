//! listener against real sockets of this test process.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::listener::{Params, run};

fn p(address: String) -> Params {
    Params { address }
}

#[tokio::test]
async fn our_tcp_listener_is_found_with_its_process() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let r = run(&p(addr.to_string()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["listener.pid"], std::process::id().to_string());
    assert_eq!(r.facts["listener.address"], addr.to_string());
    assert_eq!(r.facts["listener.user"], "root");
}

#[tokio::test]
async fn app_on_ipv6_loopback_only_while_proxy_dials_ipv4_is_refused() {
    let l = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let r = run(&p(format!("127.0.0.1:{port}")), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert_eq!(r.facts["listener.family_match"], "no");
    assert_eq!(r.diagnoses[0].cause, Cause::UpstreamRefused);
    assert!(r.summary.contains("[::1]"), "{}", r.summary);
    // Dialling [::1] matches.
    let r = run(&p(format!("[::1]:{port}")), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok);
}

#[tokio::test]
async fn nothing_on_the_port_is_upstream_refused() {
    let r = run(&p(listeners::closed_port()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert!(r.summary.contains("nothing listens"));
}

#[tokio::test]
async fn unix_listener_is_found() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("app.sock");
    let _l = tokio::net::UnixListener::bind(&path).unwrap();
    let r = run(&p(format!("unix:{}", path.display())), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["listener.pid"], std::process::id().to_string());
}

#[tokio::test]
async fn bad_address_is_inconclusive() {
    let r = run(&p("no-port-here".into()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}
