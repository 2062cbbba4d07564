//! http against real loopback servers: fingerprints of every generator in
//! signatures §3 (fixtures in tests/fixtures/responses/, built from the exact
//! catalogue strings), repeat/intermittency, resolve pinning, HEAD, timeouts.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triage502::cause::Cause;
use triage502::check::{CheckReport, Outcome};
use triage502::checks::http::fingerprint::{Generator, fingerprint};
use triage502::checks::http::{Method, Params, run};
use triage502::duration::HumanDuration;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/responses")
            .join(format!("{name}.http")),
    )
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Split a raw response into status, headers and body.
fn parse(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let i = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..i].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (status, headers, raw[i + 4..].to_vec())
}

/// Serve `bytes` to every connection (the check opens a timing connection first).
async fn serve(bytes: Vec<u8>) -> String {
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    format!(
        "http://{}/",
        listeners::start(listeners::Behaviour::Reply(bytes)).await
    )
}

fn params(url: String) -> Params {
    Params {
        url,
        method: None,
        timeout: Some(HumanDuration(Duration::from_secs(3))),
        max_redirects: None,
        resolve: None,
        repeat: None,
        pause: None,
    }
}

fn has(r: &CheckReport, c: Cause) -> bool {
    r.diagnoses.iter().any(|d| d.cause == c)
}

const CASES: &[(&str, &str, bool, bool)] = &[
    // fixture, generator, gateway_error, edge_error diagnosis
    ("nginx_502", "nginx", true, false),
    ("nginx_502_tokens_off", "nginx", true, false),
    ("nginx_502_msie_padding", "nginx", true, false),
    ("nginx_502_old", "nginx", true, false),
    ("nginx_504", "nginx", true, false),
    ("apache_502_proxy_error", "apache", true, false),
    ("apache_503", "apache", true, false),
    ("haproxy_502", "haproxy", true, false),
    ("haproxy_504", "haproxy", true, false),
    ("caddy_502", "caddy", true, false),
    ("envoy_503", "envoy", true, false),
    ("envoy_no_healthy", "envoy", true, false),
    ("traefik_502", "traefik", true, false),
    ("traefik_504", "traefik", true, false),
    ("cloudflare_branded_502", "cloudflare", true, false),
    ("cloudflare_unbranded_502", "cloudflare", true, true),
    ("cloudflare_521", "cloudflare", true, true),
    ("aws_alb_502", "aws_elb", true, true),
    ("aws_alb_504", "aws_elb", true, true),
    ("gcp_lb_502", "gcp_lb", true, true),
    ("fastly_503", "fastly", true, true),
    ("akamai_503", "akamai", true, true),
    ("azure_appgw_502", "azure", true, true),
    ("upstream_app_502", "upstream_app", false, false),
];

#[test]
fn fixtures_are_attributed_to_their_generator() {
    for (name, generator, gateway, _) in CASES {
        let (status, headers, body) = parse(&fixture(name));
        let f = fingerprint(status, &headers, &body);
        assert_eq!(f.generator.id(), *generator, "{name}: {}", f.reason);
        assert_eq!(f.gateway_error, *gateway, "{name}: {}", f.reason);
    }
}

#[test]
fn known_nginx_sizes_are_cited_and_msie_padding_recognised() {
    let (s, h, b) = parse(&fixture("nginx_502_msie_padding"));
    assert_eq!(b.len(), 559);
    let f = fingerprint(s, &h, &b);
    assert!(f.reason.contains("MSIE padding"), "{}", f.reason);
    let (s, h, b) = parse(&fixture("nginx_502_tokens_off"));
    assert_eq!(b.len(), 150);
    assert!(fingerprint(s, &h, &b).reason.contains("known nginx size"));
}

#[test]
fn cloudflare_branded_page_says_the_origin_failed() {
    let (s, h, b) = parse(&fixture("cloudflare_branded_502"));
    let f = fingerprint(s, &h, &b);
    assert_eq!(f.generator, Generator::Cloudflare);
    assert!(f.origin_reported);
    let (s, h, b) = parse(&fixture("cloudflare_unbranded_502"));
    assert!(!fingerprint(s, &h, &b).origin_reported);
}

#[tokio::test]
async fn http_check_publishes_generator_facts_for_every_fixture() {
    for (name, generator, gateway, edge) in CASES {
        let url = serve(fixture(name)).await;
        let r = run(&params(url), &listeners::ctx()).await;
        assert_eq!(r.outcome, Outcome::Problem, "{name}: {r:?}");
        assert_eq!(r.facts["http.generator"], *generator, "{name}");
        assert_eq!(
            r.facts["http.gateway_error"],
            if *gateway { "yes" } else { "no" },
            "{name}"
        );
        assert_eq!(
            has(&r, Cause::EdgeError),
            *edge,
            "{name}: {:?}",
            r.diagnoses
        );
        assert!(!has(&r, Cause::FrontendDown), "{name}");
    }
}

#[tokio::test]
async fn healthy_page_is_ok_with_timings_and_no_generator() {
    let url = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nAuthorization: Bearer hunter2\r\n\r\nhello"
            .to_vec(),
    )
    .await;
    let r = run(&params(url.clone()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(r.facts["http.generator"], "none");
    assert_eq!(r.facts["http.failures"], "0/1");
    assert!(!format!("{r:?}").contains("hunter2"));
    let t = r.evidence.iter().find(|e| e.label == "timings").unwrap();
    assert!(
        t.text.contains("first byte") && t.text.contains("total"),
        "{}",
        t.text
    );
    assert!(
        !t.text.contains("connect -"),
        "connect is timed on the request's own connection: {}",
        t.text
    );
    let mut head = params(url);
    head.method = Some(Method::Head);
    assert_eq!(
        run(&head, &listeners::ctx()).await.facts["http.status"],
        "200"
    );
}

#[tokio::test]
async fn repeat_tells_intermittent_from_permanent() {
    // Every other request gets a 502 (timing connections send nothing and are ignored).
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let n = n.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if let Ok(k) = s.read(&mut buf).await
                    && k > 0
                {
                    let resp: &[u8] = if n.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    };
                    let _ = s.write_all(resp).await;
                }
            });
        }
    });
    let mut p = params(format!("http://{addr}/"));
    p.repeat = Some(4);
    p.pause = Some(HumanDuration(Duration::from_millis(10)));
    let r = run(&p, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.facts["http.failures"], "2/4");
    assert!(r.summary.contains("intermittent"), "{}", r.summary);
}

#[tokio::test]
async fn resolve_pins_the_host_and_keeps_the_host_header() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if let Ok(k) = s.read(&mut buf).await
                    && k > 0
                {
                    let _ = tx
                        .send(String::from_utf8_lossy(&buf[..k]).into_owned())
                        .await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    let mut p = params(format!("http://shop.t502.invalid:{port}/"));
    p.resolve = Some("127.0.0.1".into());
    let r = run(&p, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let req = rx.recv().await.unwrap();
    assert!(
        req.contains(&format!("host: shop.t502.invalid:{port}")),
        "{req}"
    );
    assert!(r.facts["http.remote"].starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn silent_server_times_out_without_frontend_down() {
    let a = listeners::start(listeners::Behaviour::Silent).await;
    let mut p = params(format!("http://{a}/"));
    p.timeout = Some(HumanDuration(Duration::from_millis(500)));
    let r = run(&p, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.facts["http.error"], "timeout");
    assert!(!has(&r, Cause::FrontendDown), "the server accepted: {r:?}");
}

#[tokio::test]
async fn bad_resolve_value_is_inconclusive() {
    let mut p = params("http://example.test/".into());
    p.resolve = Some("not-an-ip".into());
    assert_eq!(
        run(&p, &listeners::ctx()).await.outcome,
        Outcome::Inconclusive
    );
}
