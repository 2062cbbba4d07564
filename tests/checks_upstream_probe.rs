//! upstream_probe against real loopback listeners and a real php-fpm.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::time::Duration;

use listeners::{Behaviour, ctx, start};
use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::upstream_probe::{Params, Protocol, run};
use triage502::duration::HumanDuration;

fn http(address: String) -> Params {
    Params {
        address,
        protocol: None,
        host: Some("shop.example".into()),
        path: Some("/checkout".into()),
        script_filename: None,
        document_root: None,
        header_limit: None,
        timeout: Some(HumanDuration(Duration::from_millis(800))),
    }
}

fn cause(r: &triage502::check::CheckReport) -> Option<Cause> {
    r.diagnoses.first().map(|d| d.cause)
}

#[tokio::test]
async fn healthy_http_upstream_is_ok_with_status_and_header_size() {
    let a = start(Behaviour::Reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    ))
    .await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["probe.status"], "200");
    assert_eq!(r.facts["probe.header_bytes"], "38");
    assert!(r.excluded.iter().any(|x| x.cause == Cause::UpstreamClosed));
}

#[tokio::test]
async fn upstream_5xx_is_a_problem_without_a_transport_cause() {
    let a = start(Behaviour::Reply(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    ))
    .await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.facts["probe.status"], "503");
    assert!(r.diagnoses.is_empty());
}

#[tokio::test]
async fn refused_is_upstream_refused() {
    let r = run(&http(listeners::closed_port()), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(cause(&r), Some(Cause::UpstreamRefused));
    assert_eq!(r.facts["probe.result"], "refused");
}

#[tokio::test]
async fn silence_is_upstream_timeout() {
    let a = start(Behaviour::Silent).await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::UpstreamTimeout), "{r:?}");
    assert!(r.summary.contains("sent nothing"), "{}", r.summary);
}

#[tokio::test]
async fn reset_before_header_is_upstream_closed() {
    let a = start(Behaviour::Reset).await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::UpstreamClosed), "{r:?}");
    assert_eq!(r.facts["probe.result"], "reset");
}

#[tokio::test]
async fn close_before_header_is_upstream_closed() {
    let a = start(Behaviour::Close).await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::UpstreamClosed), "{r:?}");
    assert_eq!(r.facts["probe.result"], "closed");
}

#[tokio::test]
async fn garbage_is_invalid_response_and_shown_escaped() {
    let a = start(Behaviour::Reply(b"\x00\x17garbage from a TLS port?\r\n")).await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::InvalidResponse), "{r:?}");
    assert!(r.summary.contains("\\x00\\x17garbage"), "{}", r.summary);
}

#[tokio::test]
async fn nul_in_a_header_line_is_invalid_response() {
    let a = start(Behaviour::Reply(
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\n\r\n",
    ))
    .await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::InvalidResponse), "{r:?}");
    assert!(r.summary.contains("NUL"), "{}", r.summary);
}

#[tokio::test]
async fn sixteen_kib_header_is_header_too_big() {
    let a = start(Behaviour::BigHeader).await;
    let r = run(&http(a), &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::HeaderTooBig), "{r:?}");
    let size: usize = r.facts["probe.header_bytes"].parse().unwrap();
    assert!(size > 16 * 1024);
    // With a buffer large enough the same answer is fine.
    let mut p = http(start(Behaviour::BigHeader).await);
    p.header_limit = Some(32 * 1024);
    assert_eq!(run(&p, &ctx()).await.outcome, Outcome::Ok);
}

#[tokio::test]
async fn missing_unix_socket_is_socket_missing() {
    let d = tempfile::tempdir().unwrap();
    let p = http(format!("unix:{}/nope.sock", d.path().display()));
    let r = run(&p, &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::SocketMissing), "{r:?}");
}

#[tokio::test]
async fn bad_address_is_inconclusive() {
    let r = run(&http("no-port".into()), &ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}

#[tokio::test]
async fn fastcgi_to_an_http_server_is_invalid_response() {
    let a = start(Behaviour::Reply(b"HTTP/1.1 400 Bad Request\r\n\r\n")).await;
    let mut p = http(a);
    p.protocol = Some(Protocol::Fastcgi);
    let r = run(&p, &ctx()).await;
    assert_eq!(cause(&r), Some(Cause::InvalidResponse), "{r:?}");
    assert!(r.summary.contains("not a FastCGI record"), "{}", r.summary);
}

#[tokio::test]
async fn fastcgi_over_unix_socket_reads_cgi_status() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("app.sock");
    // FCGI_STDOUT "Status: 502 Bad Gateway\r\n\r\n" (27 bytes, 5 padding), then END_REQUEST.
    static REPLY: &[u8] = b"\x01\x06\x00\x01\x00\x1b\x05\x00Status: 502 Bad Gateway\r\n\r\n\x00\x00\x00\x00\x00\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let _srv = listeners::unix_reply(&sock, REPLY);
    let mut p = http(format!("unix:{}", sock.display()));
    p.protocol = Some(Protocol::Fastcgi);
    let r = run(&p, &ctx()).await;
    assert_eq!(r.facts["probe.status"], "502", "{r:?}");
    assert_eq!(r.outcome, Outcome::Problem);
}

/// A real php-fpm on a temp unix socket answers a FastCGI GET.
#[tokio::test]
async fn real_php_fpm_answers_over_fastcgi() {
    let fpm = listeners::require("php-fpm8.2", "php8.2-fpm");
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("index.php"),
        "<?php header('X-T502: yes'); echo 'hello';",
    )
    .unwrap();
    let sock = d.path().join("fpm.sock");
    let conf = d.path().join("fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\npid = {dir}/fpm.pid\nerror_log = {dir}/fpm.log\ndaemonize = no\n[www]\nuser = root\ngroup = root\nlisten = {sock}\npm = static\npm.max_children = 1\n",
            dir = d.path().display(),
            sock = sock.display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(fpm)
        .args(["-R", "-F", "-n", "-y"])
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut p = http(format!("unix:{}", sock.display()));
    p.protocol = Some(Protocol::Fastcgi);
    p.path = Some("/index.php".into());
    p.document_root = Some(root.display().to_string());
    p.timeout = Some(HumanDuration(Duration::from_secs(5)));
    let r = run(&p, &ctx()).await;
    // SIGTERM makes the master stop its workers too (SIGKILL would orphan them).
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["probe.status"], "200");
    assert!(
        r.evidence.iter().any(|e| e.text.contains("X-T502: yes")),
        "{r:?}"
    );
}
