//! `http`: request the URL the way a browser would and record what came back.
//!
//! No retries, a capped redirect count, a capped body. A 5xx answer is a
//! `problem`; a connection that fails before any answer means the front
//! server itself is not answering (`frontend_down`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::duration::HumanDuration;

/// Parameters of the `http` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The URL to request.
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Whole-request timeout (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Redirects followed at most (default 0: report the redirect itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u8>,
    /// Connect to this IP instead of resolving the host (like curl --resolve),
    /// keeping the Host header: tests the origin behind a CDN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
}

pub const DOC: KindDoc = KindDoc {
    kind: "http",
    summary: "Request a URL (no retry, capped body) and record status, timing, server and a body excerpt.",
    example: r#"{ http = { url = "{{ url }}", timeout = "10s" } }"#,
    facts: &["http.status", "http.server", "http.remote"],
};

/// How much of a body is kept as evidence.
pub const BODY_CAP: usize = 64 * 1024;

impl Params {
    pub fn label(&self) -> String {
        let m = match self.method {
            Some(Method::Head) => "HEAD",
            _ => "GET",
        };
        format!("{m} {}", self.url)
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0)
    }
}

fn build_client(p: &Params, url: &reqwest::Url) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(p.timeout())
        .connect_timeout(p.timeout())
        .redirect(reqwest::redirect::Policy::limited(usize::from(
            p.max_redirects.unwrap_or(0),
        )))
        .user_agent(concat!("triage502/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if p.max_redirects.unwrap_or(0) == 0 {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(ip) = &p.resolve {
        let ip: std::net::IpAddr = ip
            .parse()
            .map_err(|_| format!("resolve = `{ip}` is not an IP address"))?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        b = b.resolve(host, SocketAddr::new(ip, port));
    }
    b.build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let started = Instant::now();
    let url = match reqwest::Url::parse(&p.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(u) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("unsupported scheme `{}` (use http or https)", u.scheme()),
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
    let client = match build_client(p, &url) {
        Ok(c) => c,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e),
    };
    let method = match p.method {
        Some(Method::Head) => reqwest::Method::HEAD,
        _ => reqwest::Method::GET,
    };
    let mut report = match client.request(method, url.clone()).send().await {
        Ok(resp) => response_report(p, label, resp, started).await,
        Err(e) => error_report(p, label, &e),
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

async fn response_report(
    p: &Params,
    label: String,
    mut resp: reqwest::Response,
    started: Instant,
) -> CheckReport {
    let headers_ms = started.elapsed().as_millis();
    let status = resp.status();
    let server = resp
        .headers()
        .get(reqwest::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let remote = resp
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut header_text = String::new();
    for (k, v) in resp.headers() {
        let shown = if k == reqwest::header::SET_COOKIE || k == reqwest::header::COOKIE {
            "[redacted]".to_owned()
        } else {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        let _ = writeln!(header_text, "{k}: {shown}");
    }
    let mut body = Vec::new();
    let mut truncated = false;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_CAP.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    truncated = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                truncated = true;
                break;
            }
        }
    }
    let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
    let code = status.as_u16();
    let outcome = if status.is_server_error() {
        Outcome::Problem
    } else {
        Outcome::Ok
    };
    let mut summary = format!("{} answered {status} in {headers_ms} ms", p.url);
    if !server.is_empty() {
        let _ = write!(summary, " (server: {server})");
    }
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary)
        .with_fact("http.status", code.to_string())
        .with_fact("http.server", server)
        .with_fact("http.remote", remote.clone())
        .with_evidence(
            Evidence::new("status", format!("HTTP {status} from {remote}")).at(p.url.clone()),
        )
        .with_evidence(Evidence::new("headers", header_text.trim_end().to_owned()))
        .with_evidence(Evidence::new(
            "body",
            format!(
                "{} bytes{}: {}",
                body.len(),
                if truncated { "+ (truncated)" } else { "" },
                excerpt.trim()
            ),
        ));
    if !status.is_server_error() {
        r = r.exclude(Cause::FrontendDown, format!("{} answered {status}", p.url));
    }
    r
}

fn error_report(p: &Params, label: String, e: &reqwest::Error) -> CheckReport {
    use std::error::Error as _;
    let mut chain = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let (result, what) = if e.is_timeout() {
        (
            "timeout",
            format!("no answer within {}", HumanDuration(p.timeout())),
        )
    } else if e.is_connect() {
        ("connect", "the connection failed".to_owned())
    } else {
        ("error", "the request failed".to_owned())
    };
    let summary = format!("{}: {what} ({chain})", p.url);
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Problem, summary)
        .with_fact("http.status", "")
        .with_fact("http.error", result)
        .with_evidence(Evidence::new("error", chain.clone()).at(p.url.clone()));
    if e.is_connect() {
        r = r.diagnose(
            Cause::FrontendDown,
            Severity::Critical,
            format!(
                "Nothing answers at {}: no gateway error is even produced",
                p.url
            ),
            vec![Evidence::new("connect", chain).at(p.url.clone())],
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn serve_once(response: &'static [u8]) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response).await;
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
        }
    }

    #[tokio::test]
    async fn bad_gateway_is_a_problem_with_status_fact() {
        let url = serve_once(b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad").await;
        let r = run(&params(url), &CheckContext::last(Duration::from_secs(60))).await;
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.facts["http.status"], "502");
        assert_eq!(r.facts["http.server"], "nginx");
    }

    #[tokio::test]
    async fn ok_page_is_ok_and_rules_out_frontend_down() {
        let url = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: s=secret\r\nConnection: close\r\n\r\nhi").await;
        let r = run(&params(url), &CheckContext::last(Duration::from_secs(60))).await;
        assert_eq!(r.outcome, Outcome::Ok);
        assert!(r.excluded.iter().any(|x| x.cause == Cause::FrontendDown));
        assert!(!format!("{r:?}").contains("secret"), "cookies are redacted");
    }

    #[tokio::test]
    async fn refused_front_is_frontend_down() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        drop(l);
        let r = run(&params(url), &CheckContext::last(Duration::from_secs(60))).await;
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.diagnoses[0].cause, Cause::FrontendDown);
    }

    #[tokio::test]
    async fn not_a_url_is_inconclusive() {
        let r = run(
            &params("ftp://x/".into()),
            &CheckContext::last(Duration::from_secs(60)),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Inconclusive);
    }
}
