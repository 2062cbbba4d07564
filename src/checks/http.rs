//! `http`: request the URL the way a browser would and record what came back.
//!
//! No retries, a capped redirect count, a body capped at 64 KiB. Redirects are
//! followed only when asked (`max_redirects`), only on the same host (the
//! pinned address belongs to it: a check never wanders onto another server),
//! and a loop is reported as one. Whatever the server sends, the check ends
//! within its timeout: hyper bounds the response header (100 fields, about
//! 400 KiB), the body is cut at the cap, and every failure names what
//! happened (a header too large, an answer that is not HTTP, a port that
//! does not speak TLS, silence after the connect). A 5xx answer
//! is a `problem`, fingerprinted to say who generated it (see
//! [`fingerprint`]); a connection that fails before any answer means the front
//! server itself is not answering (`frontend_down`). Cookies and credentials
//! are redacted from the recorded headers.
//!
//! Timings: DNS is measured by resolving the host ourselves (the request is
//! then pinned to that address, so reqwest does not resolve again); connect is
//! measured by a layer around reqwest's connector on the request's own
//! connection, so for https it includes the TLS handshake (reqwest does not
//! separate the two); first byte is the time until the response headers
//! arrived; total includes reading the body.

pub mod fingerprint;

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::duration::HumanDuration;
use fingerprint::{Fingerprint, Generator};

/// Parameters of the `http` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The URL to request (http or https).
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Timeout of each request, connect included (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Redirects followed at most (default 0: report the redirect itself; at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u8>,
    /// Connect to this IP instead of resolving the host (like curl --resolve),
    /// keeping the Host header and SNI: tests the origin behind a CDN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
    /// Send the request this many times (default 1, at most 20) to tell an
    /// intermittent failure from a permanent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u8>,
    /// Pause between repeated requests (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
}

pub const DOC: KindDoc = KindDoc {
    kind: "http",
    summary: "Request a URL (no retry, capped body): status, timings, remote address, redacted headers, body excerpt, and who generated an error page (proxy, CDN/LB or the app).",
    example: r#"{ http = { url = "https://shop.example.com/checkout", timeout = "10s", repeat = 5, pause = "2s", resolve = "203.0.113.10" } }"#,
    facts: &[
        "http.status",
        "http.server",
        "http.remote",
        "http.generator",
        "http.gateway_error",
        "http.failures",
        "http.error",
    ],
};

/// How much of a body is kept as evidence.
pub const BODY_CAP: usize = 64 * 1024;
const MAX_REPEAT: u8 = 20;
const MAX_REDIRECTS: u8 = 10;

impl Params {
    pub fn label(&self) -> String {
        let m = match self.method {
            Some(Method::Head) => "HEAD",
            _ => "GET",
        };
        let mut s = format!("{m} {}", self.url);
        if let Some(ip) = &self.resolve {
            let _ = write!(s, " via {ip}");
        }
        if self.repeats() > 1 {
            let _ = write!(s, " ×{}", self.repeats());
        }
        s
    }
    fn per_request(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0)
    }
    fn repeats(&self) -> u8 {
        self.repeat.unwrap_or(1).clamp(1, MAX_REPEAT)
    }
    fn pause_time(&self) -> Duration {
        self.pause.map_or(Duration::from_secs(1), |d| d.0)
    }
    pub fn timeout(&self) -> Duration {
        let n = u32::from(self.repeats());
        self.per_request() * n + self.pause_time() * (n - 1) + Duration::from_secs(1)
    }
}

/// Per-phase timings of one request, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub dns: Option<u128>,
    pub connect: Option<u128>,
    pub first_byte: Option<u128>,
    pub total: Option<u128>,
}

impl Timings {
    fn text(&self, https: bool, pinned: bool) -> String {
        let f = |v: Option<u128>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
        format!(
            "dns {}, connect {}, tls {}, first byte {}, total {}",
            if pinned {
                "skipped (pinned address)".to_owned()
            } else {
                f(self.dns)
            },
            f(self.connect),
            if https {
                "included in connect"
            } else {
                "n/a (plain http)"
            },
            f(self.first_byte),
            f(self.total)
        )
    }
}

/// How one request failed before any response.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `dns`, `refused`, `timeout`, `unreachable`, `tls`, `closed`,
    /// `header_too_big`, `invalid` (not HTTP), `redirect` (a loop or too
    /// many), `error`.
    pub kind: &'static str,
    pub text: String,
    /// The failure happened while connecting (the front server is not answering).
    pub connect_phase: bool,
}

/// One request's result.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub timings: Timings,
    pub remote: Option<SocketAddr>,
    pub status: Option<u16>,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub truncated: bool,
    /// Why reading the body stopped early (after the header arrived).
    pub body_error: Option<String>,
    pub failure: Option<Failure>,
}

impl Attempt {
    fn failed(&self) -> bool {
        self.failure.is_some() || self.status.is_some_and(|s| s >= 500)
    }
}

const REDACTED: &[&str] = &[
    "set-cookie",
    "cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
];

/// The headers as text, one per line, with cookies and credentials redacted.
pub fn headers_text(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(k, v)| {
            if REDACTED.iter().any(|r| k.eq_ignore_ascii_case(r)) {
                format!("{k}: [redacted]")
            } else {
                format!("{k}: {v}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    let mut n = 0;
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
        n += 1;
        if n > 8 {
            break;
        }
    }
    s
}

fn elapsed_ms(slot: &Mutex<Option<Duration>>) -> Option<u128> {
    slot.lock().ok().and_then(|g| *g).map(|d| d.as_millis())
}

/// A layer around reqwest's connector that records how long the connection
/// (TCP, plus TLS for https) took to establish.
#[derive(Clone)]
struct ConnectTimer(Arc<Mutex<Option<Duration>>>);

impl<S> tower::Layer<S> for ConnectTimer {
    type Service = TimedConnect<S>;
    fn layer(&self, inner: S) -> TimedConnect<S> {
        TimedConnect {
            inner,
            slot: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct TimedConnect<S> {
    inner: S,
    slot: Arc<Mutex<Option<Duration>>>,
}

impl<S, R> tower::Service<R> for TimedConnect<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let started = Instant::now();
        let slot = self.slot.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            if r.is_ok()
                && let Ok(mut g) = slot.lock()
            {
                *g = Some(started.elapsed());
            }
            r
        })
    }
}

/// What went wrong, in the error chain's own words minus reqwest's and
/// hyper-util's wrappers (`error sending request for url (…)`, `client error
/// (Connect)`), which only repeat the URL.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    let mut n = 0;
    while let Some(x) = cur {
        let t = x.to_string();
        let wrapper = t.starts_with("error sending request for url")
            || t.starts_with("error decoding response body")
            || t.starts_with("error following redirect for url")
            || t.starts_with("request or response body error")
            || (t.starts_with("client error (") && t.ends_with(')'));
        if !wrapper && !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = x.source();
        n += 1;
        if n > 8 {
            break;
        }
    }
    if parts.is_empty() {
        chain(e)
    } else {
        parts.join(": ")
    }
}

/// Why a redirect chain was not followed to its end.
#[derive(Debug, thiserror::Error)]
enum RedirectStop {
    #[error("redirect loop: {0}")]
    Loop(String),
    #[error("more than {max} redirects: {chain}")]
    TooMany { max: u8, chain: String },
}

/// `/ → /a → /b`: the paths of a redirect chain (hosts are all the same).
fn redirect_chain(previous: &[reqwest::Url], next: &reqwest::Url) -> String {
    let show = |u: &reqwest::Url| {
        let mut t = u.path().to_owned();
        if let Some(q) = u.query() {
            t.push('?');
            t.push_str(q);
        }
        t
    };
    previous
        .iter()
        .chain(std::iter::once(next))
        .map(show)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Follow at most `max` redirects, only on the host first asked (the pinned
/// address is that host's; another host is reported, not visited), and stop a
/// loop at its first repeat.
fn redirect_policy(max: u8) -> reqwest::redirect::Policy {
    if max == 0 {
        return reqwest::redirect::Policy::none();
    }
    reqwest::redirect::Policy::custom(move |attempt| {
        let previous = attempt.previous();
        let next = attempt.url();
        let Some(first) = previous.first() else {
            return attempt.stop();
        };
        if next.host_str() != first.host_str() {
            return attempt.stop();
        }
        if previous.contains(next) {
            let chain = redirect_chain(previous, next);
            return attempt.error(RedirectStop::Loop(chain));
        }
        if previous.len() > usize::from(max) {
            let chain = redirect_chain(previous, next);
            return attempt.error(RedirectStop::TooMany { max, chain });
        }
        attempt.follow()
    })
}

/// Name what went wrong with a request to `addr` (how it is shown, e.g.
/// `127.0.0.1:8080`); `connected` says whether the connection was made, when known.
pub fn classify(
    e: &reqwest::Error,
    timeout: Duration,
    addr: &str,
    https: bool,
    connected: Option<bool>,
) -> Failure {
    let inner = error_text(e);
    let lower = inner.to_ascii_lowercase();
    let fail = |kind, text: String, connect_phase| Failure {
        kind,
        text,
        connect_phase,
    };
    if e.is_redirect() {
        return fail("redirect", format!("{addr}: {inner}"), false);
    }
    if e.is_timeout() {
        let within = HumanDuration(timeout);
        return match connected {
            Some(true) => fail(
                "timeout",
                format!(
                    "{addr} accepted the connection but sent no complete response header within {within}"
                ),
                false,
            ),
            Some(false) => fail(
                "timeout",
                if https {
                    format!(
                        "no connection to {addr} within {within} (the TCP connect or the TLS handshake got no answer)"
                    )
                } else {
                    format!(
                        "no connection to {addr} within {within} (the TCP connect got no answer)"
                    )
                },
                e.is_connect(),
            ),
            _ => fail(
                "timeout",
                format!("no complete response header from {addr} within {within}"),
                e.is_connect(),
            ),
        };
    }
    if lower.contains("message head is too large") {
        return fail(
            "header_too_big",
            format!(
                "{addr} sent a response header over the client's limits (100 fields or about 400 KiB); reading stopped there"
            ),
            false,
        );
    }
    if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        return fail(
            "tls",
            format!(
                "{addr} does not speak TLS: it answered the TLS handshake with something else ({inner}); try http://"
            ),
            true,
        );
    }
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("alert")
    {
        return fail("tls", format!("{addr}: {inner}"), true);
    }
    if lower.contains(" parsed") || lower.contains("invalid http") {
        let hint = if https {
            ""
        } else {
            "; a port that speaks TLS (https) or another protocol answers like this"
        };
        return fail(
            "invalid",
            format!("{addr} answered something that is not HTTP/1.x ({inner}){hint}"),
            false,
        );
    }
    if e.is_connect() {
        let kind = if lower.contains("refused") {
            "refused"
        } else if lower.contains("unreachable") {
            "unreachable"
        } else {
            "error"
        };
        return fail(kind, format!("{addr}: {inner}"), true);
    }
    let kind =
        if lower.contains("closed") || lower.contains("reset") || lower.contains("incomplete") {
            "closed"
        } else {
            "error"
        };
    fail(kind, format!("{addr}: {inner}"), false)
}

/// Send one request and record everything about it.
#[allow(
    clippy::many_single_char_names,
    reason = "p: params, a: the attempt being filled, b: the client builder"
)]
pub async fn attempt(p: &Params, url: &reqwest::Url) -> Attempt {
    let timeout = p.per_request();
    let started = Instant::now();
    let mut a = Attempt {
        timings: Timings::default(),
        remote: None,
        status: None,
        reason: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        truncated: false,
        body_error: None,
        failure: None,
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    // 1. DNS (ours), unless pinned.
    let addr: SocketAddr = if let Some(ip) = &p.resolve {
        if let Ok(ip) = ip.parse::<std::net::IpAddr>() {
            SocketAddr::new(ip, port)
        } else {
            a.failure = Some(Failure {
                kind: "error",
                text: format!("resolve = `{ip}` is not an IP address"),
                connect_phase: false,
            });
            return a;
        }
    } else if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        a.timings.dns = Some(0);
        SocketAddr::new(ip, port)
    } else {
        let t = Instant::now();
        let res =
            tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await;
        a.timings.dns = Some(t.elapsed().as_millis());
        match res {
            Ok(Ok(mut it)) => {
                if let Some(x) = it.next() {
                    x
                } else {
                    a.failure = Some(Failure {
                        kind: "dns",
                        text: format!("{host} resolved to no address"),
                        connect_phase: true,
                    });
                    return a;
                }
            }
            Ok(Err(e)) => {
                a.failure = Some(Failure {
                    kind: "dns",
                    text: format!("{host} does not resolve: {e}"),
                    connect_phase: true,
                });
                return a;
            }
            Err(_) => {
                a.failure = Some(Failure {
                    kind: "dns",
                    text: format!(
                        "resolving {host} took longer than {}",
                        HumanDuration(timeout)
                    ),
                    connect_phase: true,
                });
                return a;
            }
        }
    };
    // 2. The request itself, pinned to the same address, its connect timed.
    let redirects = p.max_redirects.unwrap_or(0).min(MAX_REDIRECTS);
    let policy = redirect_policy(redirects);
    let connect_time: Arc<Mutex<Option<Duration>>> = Arc::default();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("triage502/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connector_layer(ConnectTimer(connect_time.clone()));
    if host.parse::<std::net::IpAddr>().is_err() {
        b = b.resolve(&host, addr);
    }
    let built = match b.build() {
        // Without any CA certificate (an empty root, a minimal container) the platform
        // verifier cannot start, and reqwest builds no client at all, even for http://.
        // A plain-http probe does not need one: give it a TLS setup that trusts nothing, so
        // a redirect to https fails verification instead of being trusted.
        Err(_) if url.scheme() == "http" => {
            let mut b = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(redirect_policy(redirects))
                .user_agent(concat!("triage502/", env!("CARGO_PKG_VERSION")))
                .no_proxy()
                .pool_max_idle_per_host(0)
                .connector_layer(ConnectTimer(connect_time.clone()))
                .tls_backend_preconfigured(trust_nothing());
            if host.parse::<std::net::IpAddr>().is_err() {
                b = b.resolve(&host, addr);
            }
            b.build()
        }
        r => r,
    };
    let client = match built {
        Ok(c) => c,
        // The one way reqwest fails to build this client on an https URL: the platform verifier
        // found no CA certificate to trust. Say so, and how to give it one.
        Err(e) if url.scheme() == "https" => {
            a.failure = Some(Failure {
                kind: "tls",
                text: format!(
                    "cannot verify TLS certificates: no CA certificate found on this host \
                     (give one with SSL_CERT_FILE or SSL_CERT_DIR): {e}"
                ),
                connect_phase: false,
            });
            return a;
        }
        Err(e) => {
            a.failure = Some(Failure {
                kind: "error",
                text: format!("cannot build an HTTP client: {e}"),
                connect_phase: false,
            });
            return a;
        }
    };
    let method = match p.method {
        Some(Method::Head) => reqwest::Method::HEAD,
        _ => reqwest::Method::GET,
    };
    let mut resp = match client.request(method, url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            a.timings.connect = elapsed_ms(&connect_time);
            a.failure = Some(classify(
                &e,
                timeout,
                &addr.to_string(),
                url.scheme() == "https",
                Some(a.timings.connect.is_some()),
            ));
            a.timings.total = Some(started.elapsed().as_millis());
            return a;
        }
    };
    a.timings.connect = elapsed_ms(&connect_time);
    a.timings.first_byte = Some(started.elapsed().as_millis());
    a.remote = resp.remote_addr().or(Some(addr));
    a.status = Some(resp.status().as_u16());
    resp.status()
        .canonical_reason()
        .unwrap_or("")
        .clone_into(&mut a.reason);
    a.headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_CAP.saturating_sub(a.body.len());
                a.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    a.truncated = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                a.truncated = true;
                a.body_error = Some(if e.is_timeout() {
                    format!(
                        "the body stopped after {} bytes: no more within the {} timeout",
                        a.body.len(),
                        HumanDuration(timeout)
                    )
                } else {
                    format!(
                        "the body stopped after {} bytes: {}",
                        a.body.len(),
                        error_text(&e)
                    )
                });
                break;
            }
        }
    }
    a.timings.total = Some(started.elapsed().as_millis());
    a
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let started = Instant::now();
    let url = match reqwest::Url::parse(&p.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        Ok(u) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("unsupported URL `{u}` (use http:// or https:// with a host)"),
            );
        }
        Err(e) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("`{}` is not a URL: {e}", p.url),
            );
        }
    };
    if let Some(ip) = &p.resolve
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("resolve = `{ip}` is not an IP address"),
        );
    }
    let n = p.repeats();
    let mut attempts = Vec::with_capacity(usize::from(n));
    for i in 0..n {
        if i > 0 {
            tokio::time::sleep(p.pause_time()).await;
        }
        attempts.push(attempt(p, &url).await);
    }
    let mut report = summarise(p, &url, label, &attempts);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

fn status_line(a: &Attempt) -> String {
    match (&a.failure, a.status) {
        (Some(f), _) => format!("failed ({}): {}", f.kind, f.text),
        (None, Some(s)) => format!("{s} {}", a.reason),
        (None, None) => "no answer".into(),
    }
}

/// Where a 3xx answer points, and why it was not followed.
fn redirect_note(p: &Params, url: &reqwest::Url, a: &Attempt) -> Option<String> {
    if !a.status.is_some_and(|s| (300..400).contains(&s)) {
        return None;
    }
    let location = a
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.as_str())?;
    let shown: String = location.chars().take(200).collect();
    let why = match url.join(location) {
        Ok(to) if to.host_str() != url.host_str() => "another host: not followed",
        Ok(_) if p.max_redirects.unwrap_or(0) == 0 => "not followed: max_redirects = 0",
        Ok(_) => "not followed",
        Err(_) => "not a valid location",
    };
    Some(format!("`{shown}` ({why})"))
}

fn summarise(p: &Params, url: &reqwest::Url, label: String, attempts: &[Attempt]) -> CheckReport {
    let https = url.scheme() == "https";
    let pinned = p.resolve.is_some();
    let n = attempts.len();
    let failures = attempts.iter().filter(|a| a.failed()).count();
    // The first failing attempt is the one shown in detail; else the last.
    let Some(shown) = attempts.iter().find(|a| a.failed()).or(attempts.last()) else {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no request was sent",
        );
    };
    let remote = shown.remote.map(|a| a.to_string()).unwrap_or_default();
    let server = shown
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("server"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let fp: Option<Fingerprint> = shown
        .status
        .map(|s| fingerprint::fingerprint(s, &shown.headers, &shown.body));
    let pattern = if n == 1 {
        String::new()
    } else if failures == 0 {
        format!(" ({n}/{n} requests fine)")
    } else if failures == n {
        format!(" (every one of {n} requests failed: permanent)")
    } else {
        format!(" ({failures} of {n} requests failed: intermittent)")
    };
    let outcome = if failures > 0 {
        Outcome::Problem
    } else {
        Outcome::Ok
    };
    let mut summary = match (&shown.failure, shown.status) {
        (Some(f), _) => format!("{}: {}{pattern}", p.url, f.text),
        (None, Some(s)) => {
            let mut t = format!(
                "{} answered {s} {} in {} ms",
                p.url,
                shown.reason,
                shown.timings.first_byte.unwrap_or(0)
            );
            if let Some(f) = &fp
                && f.generator != Generator::None
            {
                let _ = write!(t, ", generated by {}", f.generator.id());
            } else if !server.is_empty() {
                let _ = write!(t, " (server: {server})");
            }
            if let Some(to) = redirect_note(p, url, shown) {
                let _ = write!(t, ", redirecting to {to}");
            }
            if let Some(b) = &shown.body_error {
                let _ = write!(t, "; {b}");
            } else if shown.truncated {
                let _ = write!(t, "; body read stopped at the {} KiB cap", BODY_CAP / 1024);
            }
            t.push_str(&pattern);
            t
        }
        (None, None) => format!("{}: no answer{pattern}", p.url),
    };
    if summary.len() > 400 {
        summary.truncate(
            summary
                .char_indices()
                .nth(400)
                .map_or(summary.len(), |(i, _)| i),
        );
    }
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary)
        .with_fact(
            "http.status",
            shown.status.map(|s| s.to_string()).unwrap_or_default(),
        )
        .with_fact("http.server", server.clone())
        .with_fact("http.remote", remote.clone())
        .with_fact(
            "http.generator",
            fp.as_ref().map_or("none", |f| f.generator.id()),
        )
        .with_fact(
            "http.gateway_error",
            if fp.as_ref().is_some_and(|f| f.gateway_error) {
                "yes"
            } else {
                "no"
            },
        )
        .with_fact("http.failures", format!("{failures}/{n}"))
        .with_fact("http.error", shown.failure.as_ref().map_or("", |f| f.kind));
    for (i, a) in attempts.iter().enumerate() {
        if n > 1 {
            r = r.with_evidence(Evidence::new(
                format!("request {}", i + 1),
                format!("{} — {}", status_line(a), a.timings.text(https, pinned)),
            ));
        }
    }
    r = r.with_evidence(
        Evidence::new("timings", shown.timings.text(https, pinned)).at(p.url.clone()),
    );
    if let Some(s) = shown.status {
        r = r.with_evidence(
            Evidence::new("status", format!("HTTP {s} {} from {remote}", shown.reason))
                .at(p.url.clone()),
        );
        r = r.with_evidence(Evidence::new("headers", headers_text(&shown.headers)));
        let excerpt: String = String::from_utf8_lossy(&shown.body)
            .chars()
            .take(600)
            .collect();
        r = r.with_evidence(Evidence::new(
            "body",
            format!(
                "{} bytes{}: {}",
                shown.body.len(),
                match (&shown.body_error, shown.truncated) {
                    (Some(_), _) => " (the body stopped early)",
                    (None, true) => " (truncated at the cap)",
                    (None, false) => "",
                },
                excerpt.trim()
            ),
        ));
        r = r.exclude(Cause::FrontendDown, format!("{} answered {s}", p.url));
    }
    if let Some(f) = &fp
        && f.generator != Generator::None
    {
        r = r.with_evidence(Evidence::new(
            "generator",
            format!("{}: {}", f.generator.id(), f.reason),
        ));
        let status = shown.status.unwrap_or(0);
        if f.generator.is_edge() && f.gateway_error && !f.origin_reported {
            let cf52x = f.generator == Generator::Cloudflare && (520..=527).contains(&status);
            r = r.diagnose(
                Cause::EdgeError,
                if cf52x { Severity::High } else { Severity::Medium },
                format!(
                    "{} generated the {status} itself ({}); compare with a direct request to the origin (param `resolve`)",
                    f.generator.id(),
                    f.reason
                ),
                vec![Evidence::new("generator", f.reason.clone()).at(p.url.clone())],
            );
        } else if f.origin_reported {
            r = r.exclude(
                Cause::EdgeError,
                format!("{}: look one hop further, at the origin", f.reason),
            );
        }
    }
    if let Some(f) = &shown.failure
        && f.connect_phase
        && f.kind != "tls"
    {
        r = r.diagnose(
            Cause::FrontendDown,
            Severity::Critical,
            format!(
                "Nothing answers at {}: no gateway error is even produced",
                p.url
            ),
            vec![Evidence::new("connect", f.text.clone()).at(p.url.clone())],
        );
    }
    r
}

/// A rustls client configuration with an empty root store: it can speak TLS but trusts no
/// certificate. Used only for plain-http probes on a host without CA certificates.
fn trust_nothing() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ClientConfig::builder())
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves the same response to every connection (the check opens a
    /// timing connection before the request).
    async fn serve(response: &'static [u8]) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    if let Ok(n) = s.read(&mut buf).await
                        && n > 0
                    {
                        let _ = s.write_all(response).await;
                    }
                });
            }
        });
        format!("http://{addr}/")
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

    fn ctx() -> CheckContext {
        CheckContext::last(Duration::from_secs(60))
    }

    #[tokio::test]
    async fn bad_gateway_is_a_problem_with_status_fact() {
        let url = serve(b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad").await;
        let r = run(&params(url), &ctx()).await;
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.facts["http.status"], "502");
        assert_eq!(r.facts["http.server"], "nginx");
        assert_eq!(r.facts["http.generator"], "upstream_app");
        assert_eq!(r.facts["http.failures"], "1/1");
    }

    #[tokio::test]
    async fn ok_page_is_ok_and_redacts_credentials() {
        let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: s=secret\r\nConnection: close\r\n\r\nhi").await;
        let r = run(&params(url), &ctx()).await;
        assert_eq!(r.outcome, Outcome::Ok);
        assert!(r.excluded.iter().any(|x| x.cause == Cause::FrontendDown));
        assert!(!format!("{r:?}").contains("secret"), "cookies are redacted");
        assert!(
            r.evidence
                .iter()
                .any(|e| e.label == "timings" && e.text.contains("connect"))
        );
    }

    #[tokio::test]
    async fn refused_front_is_frontend_down() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        drop(l);
        let r = run(&params(url), &ctx()).await;
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.diagnoses[0].cause, Cause::FrontendDown);
        assert_eq!(r.facts["http.error"], "refused");
    }

    #[tokio::test]
    async fn not_a_url_is_inconclusive() {
        let r = run(&params("ftp://x/".into()), &ctx()).await;
        assert_eq!(r.outcome, Outcome::Inconclusive);
    }
}
