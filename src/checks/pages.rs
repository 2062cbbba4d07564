//! `pages`: does the failure hit the whole site or only some pages?
//!
//! Probes, concurrently with a bound, the given paths, links found on the
//! home page (same origin only) and a static control file, with one GET each
//! (no retry, body capped). All failing (or the control failing too) is
//! `site_wide`; some failing while the control works is `page_specific`
//! (which points at the application, e.g. a plugin fault); none is `none`.
//! Invariants: at most [`MAX_PAGES`] pages, concurrency at most 16, loopback
//! or the operator's own site only (the URL comes from the playbook).

use std::time::{Duration, Instant};

use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::http::{self, fingerprint};
use crate::duration::HumanDuration;

/// Parameters of the `pages` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The site's base URL, e.g. `https://shop.example.com`.
    pub url: String,
    /// Paths to probe, e.g. the failing page and the most requested ones from
    /// the access log (default: none besides `/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A static file served by the proxy itself, as a control (default `/robots.txt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Links taken from the home page at most (default 10; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<u8>,
    /// Requests in flight at most (default 4, at most 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u8>,
    /// Timeout of each request (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Connect to this IP instead of resolving the host, keeping the Host header (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "pages",
    summary: "Probe several paths of the site concurrently (given paths, links from the home page, a static control): is the failure site_wide, page_specific (which pages) or none?",
    example: r#"{ pages = { url = "https://shop.example.com", paths = ["/checkout", "/cart", "{{ top_paths }}"], control = "/robots.txt", concurrency = 4 } }"#,
    facts: &["pages.scope", "pages.failing", "pages.checked"],
};

pub const MAX_PAGES: usize = 40;
const BODY_CAP: usize = 256 * 1024;

impl Params {
    pub fn label(&self) -> String {
        format!("pages of {}", self.url)
    }
    fn per_request(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0)
    }
    pub fn timeout(&self) -> Duration {
        // Home page, then the rest in waves of `concurrency`.
        let waves =
            MAX_PAGES.div_ceil(usize::from(self.concurrency.unwrap_or(4).clamp(1, 16))) as u32;
        self.per_request() * (waves + 1) + Duration::from_secs(1)
    }
}

/// One probed page.
#[derive(Debug, Clone)]
struct Probe {
    path: String,
    status: Option<u16>,
    error: Option<String>,
    generator: &'static str,
    ms: u128,
    /// A 4xx the front server made itself (its canned error page, or the same answer as the
    /// static control): no upstream was involved, so it says nothing about the upstream.
    front_made: Option<String>,
    /// Status and body, hashed: the same answer as the control's?
    digest: u64,
}

impl Probe {
    fn failed(&self) -> bool {
        self.error.is_some() || self.status.is_some_and(|s| s >= 500)
    }
    fn text(&self) -> String {
        match (&self.error, self.status) {
            (Some(e), _) => format!("{} → failed: {e} ({} ms)", self.path, self.ms),
            (None, Some(s)) => format!(
                "{} → {s}{}{} ({} ms)",
                self.path,
                if s >= 500 {
                    format!(" by {}", self.generator)
                } else {
                    String::new()
                },
                self.front_made
                    .as_ref()
                    .map(|by| format!(" made by {by} itself, not counted as a working page"))
                    .unwrap_or_default(),
                self.ms
            ),
            _ => format!("{} → ?", self.path),
        }
    }
}

/// The front server's own canned 4xx page (nginx's `<center>nginx</center>` template, Apache's
/// HTML 2.0 page): the front answered without asking any upstream (a directory without index
/// answers 403, a missing static file 404).
fn canned_4xx(status: u16, body: &[u8]) -> Option<&'static str> {
    if !(400..500).contains(&status) {
        return None;
    }
    let t = String::from_utf8_lossy(body);
    if t.starts_with(&format!("<html>\r\n<head><title>{status} "))
        && t.contains("<hr><center>nginx")
    {
        return Some("nginx");
    }
    if t.starts_with("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">")
        && t.contains(&format!("<title>{status} "))
    {
        return Some("Apache");
    }
    None
}

fn digest(status: u16, body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    status.hash(&mut h);
    body.hash(&mut h);
    h.finish()
}

/// ` (/: …)`: why the first failing page got no answer at all (a timeout, a
/// header too big, not HTTP, no TLS), for the summary, at most 240
/// characters; empty when it answered (its status is in the evidence).
fn first_failure(f: &Probe) -> String {
    let Some(e) = &f.error else {
        return String::new();
    };
    let why: String = e.chars().take(240).collect();
    format!(" ({}: {why})", f.path)
}

/// Same-origin paths linked from an HTML page, in order, without duplicates.
pub fn links(base: &reqwest::Url, html: &str, max: usize) -> Vec<String> {
    let Ok(re) = regex::Regex::new(r#"(?i)href\s*=\s*["']([^"'#]+)["']"#) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for c in re.captures_iter(html).take(5000) {
        let Ok(u) = base.join(&c[1]) else { continue };
        if u.origin() != base.origin() {
            continue;
        }
        let mut path = u.path().to_owned();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        let skip = [
            ".css", ".js", ".png", ".jpg", ".svg", ".ico", ".woff", ".woff2", ".xml",
        ];
        if skip.iter().any(|s| u.path().ends_with(s))
            || path.contains("wp-login")
            || path.contains("logout")
        {
            continue;
        }
        if !out.contains(&path) {
            out.push(path);
        }
        if out.len() >= max {
            break;
        }
    }
    out
}

async fn probe(
    client: &reqwest::Client,
    base: &reqwest::Url,
    path: String,
    timeout: Duration,
) -> (Probe, String) {
    let t = Instant::now();
    let url = match base.join(&path) {
        Ok(u) => u,
        Err(e) => {
            return (
                Probe {
                    path,
                    status: None,
                    error: Some(e.to_string()),
                    generator: "none",
                    ms: 0,
                    front_made: None,
                    digest: 0,
                },
                String::new(),
            );
        }
    };
    match client.get(url).send().await {
        Err(e) => {
            let peer = format!(
                "{}:{}",
                base.host_str().unwrap_or_default(),
                base.port_or_known_default().unwrap_or(80)
            );
            let f = http::classify(&e, timeout, &peer, base.scheme() == "https", None);
            (
                Probe {
                    path,
                    status: None,
                    error: Some(format!("{}: {}", f.kind, f.text)),
                    generator: "none",
                    ms: t.elapsed().as_millis(),
                    front_made: None,
                    digest: 0,
                },
                String::new(),
            )
        }
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            while let Ok(Some(c)) = resp.chunk().await {
                body.extend_from_slice(&c);
                if body.len() >= BODY_CAP {
                    body.truncate(BODY_CAP);
                    break;
                }
            }
            let generator = fingerprint::fingerprint(status, &headers, &body)
                .generator
                .id();
            let html = String::from_utf8_lossy(&body).into_owned();
            (
                Probe {
                    path,
                    status: Some(status),
                    error: None,
                    generator,
                    ms: t.elapsed().as_millis(),
                    front_made: canned_4xx(status, &body).map(str::to_owned),
                    digest: digest(status, &body),
                },
                html,
            )
        }
    }
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = survey(p).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn survey(p: &Params) -> CheckReport {
    let label = p.label();
    let base = match reqwest::Url::parse(&p.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("`{}` is not an http(s) URL", p.url),
            );
        }
    };
    let mut b = reqwest::Client::builder()
        .timeout(p.per_request())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("triage502/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if let Some(ip) = &p.resolve {
        let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("resolve = `{ip}` is not an IP address"),
            );
        };
        let host = base.host_str().unwrap_or_default().to_owned();
        b = b.resolve(
            &host,
            std::net::SocketAddr::new(ip, base.port_or_known_default().unwrap_or(80)),
        );
    }
    let client = match b.build() {
        Ok(c) => c,
        Err(e) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("cannot build an HTTP client: {e}"),
            );
        }
    };
    let control = p.control.clone().unwrap_or_else(|| "/robots.txt".into());
    // The home page first: its links join the set.
    let timeout = p.per_request();
    let (home, html) = probe(&client, &base, "/".into(), timeout).await;
    let mut paths: Vec<String> = Vec::new();
    for path in p.paths.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        if path != "/" && path != control && !paths.contains(&path) {
            paths.push(path);
        }
    }
    let nlinks = usize::from(p.links.unwrap_or(10));
    if nlinks > 0 && !html.is_empty() {
        for l in links(&base, &html, nlinks) {
            if l != "/" && l != control && !paths.contains(&l) {
                paths.push(l);
            }
        }
    }
    paths.truncate(MAX_PAGES - 2);
    let conc = usize::from(p.concurrency.unwrap_or(4).clamp(1, 16));
    let mut probes: Vec<Probe> = futures::stream::iter(paths.iter().cloned().map(|path| {
        let client = &client;
        let base = &base;
        async move { probe(client, base, path, timeout).await.0 }
    }))
    .buffer_unordered(conc)
    .collect()
    .await;
    let order = |p: &Probe| {
        paths
            .iter()
            .position(|x| *x == p.path)
            .unwrap_or(usize::MAX)
    };
    probes.sort_by_key(order);
    let (ctl, _) = probe(&client, &base, control.clone(), timeout).await;
    let mut pages = vec![home];
    pages.extend(probes);
    // A 4xx identical to the static control's answer came from the front too.
    if let Some(cs) = ctl.status.filter(|s| (400..500).contains(s)) {
        for x in &mut pages {
            if x.front_made.is_none() && x.status == Some(cs) && x.digest == ctl.digest {
                x.front_made =
                    Some("the front server (the same answer as the static control)".into());
            }
        }
    }
    // Only pages the upstream took part in say whether it works.
    let informative = pages.iter().filter(|x| x.front_made.is_none()).count();
    let front_made: Vec<String> = pages
        .iter()
        .filter_map(|x| {
            let by = x.front_made.as_ref()?;
            Some(format!(
                "{} answered {} made by {by}",
                x.path,
                x.status.unwrap_or(0)
            ))
        })
        .collect();
    let failing: Vec<&Probe> = pages.iter().filter(|x| x.failed()).collect();
    let control_failed = ctl.failed();
    let all_failed = !failing.is_empty() && failing.len() == informative;
    let (scope, outcome) = if failing.is_empty() && !control_failed {
        ("none", Outcome::Ok)
    } else if all_failed || (control_failed && failing.len() * 2 >= informative) {
        ("site_wide", Outcome::Problem)
    } else if failing.is_empty() {
        ("none", Outcome::Ok)
    } else {
        ("page_specific", Outcome::Problem)
    };
    let failing_list: Vec<String> = failing.iter().map(|x| x.path.clone()).collect();
    let control_text = format!("control {}", ctl.text());
    let summary = match scope {
        "none" => format!(
            "all {} page(s) answered without a server error ({control_text})",
            pages.len()
        ),
        "site_wide" => format!(
            "site-wide: {} of {} page(s) fail{}{}",
            failing.len(),
            informative,
            if control_failed {
                ", the static control too"
            } else {
                "; the static control works (the upstream app is failing everywhere)"
            },
            failing
                .first()
                .map(|f| first_failure(f))
                .unwrap_or_default()
        ),
        _ => format!(
            "page-specific: {} of {} page(s) fail ({}) while the others and the control work",
            failing.len(),
            informative,
            failing_list.join(", ")
        ),
    };
    let summary = if front_made.is_empty() || failing.is_empty() {
        summary
    } else {
        format!(
            "{summary}; {} itself, no upstream involved: not counted as working",
            front_made.join(", ")
        )
    };
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary.clone())
        .with_fact("pages.scope", scope)
        .with_fact("pages.failing", failing_list.join("\n"))
        .with_fact("pages.checked", pages.len().to_string())
        .with_evidence(
            Evidence::new(
                "pages",
                pages.iter().map(Probe::text).collect::<Vec<_>>().join("\n"),
            )
            .at(p.url.clone()),
        )
        .with_evidence(Evidence::new("control", ctl.text()).at(p.url.clone()));
    if scope == "page_specific" {
        let ev = failing
            .iter()
            .map(|f| Evidence::new("failing page", f.text()))
            .collect();
        r = r.diagnose(
            Cause::AppFatal,
            Severity::Medium,
            format!("only some pages fail: {}", failing_list.join(", ")),
            ev,
        );
    } else if scope == "site_wide" {
        r = r.exclude(
            Cause::AppFatal,
            "every page fails, not a page-specific fault",
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_links_only() {
        let base = reqwest::Url::parse("http://127.0.0.1:8080/").unwrap();
        let html = r#"<a href="/shop">x</a><a href='cart?id=2'>y</a><a href="http://other.example/">z</a><a href="/style.css"><a href="/shop">"#;
        assert_eq!(links(&base, html, 10), vec!["/shop", "/cart?id=2"]);
    }

    #[test]
    fn the_fronts_own_4xx_pages_are_recognised() {
        // nginx 1.22's answer for a directory without an index file (`autoindex off`).
        let nginx = b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(canned_4xx(403, nginx), Some("nginx"));
        assert_eq!(canned_4xx(200, nginx), None);
        assert_eq!(canned_4xx(404, nginx), None, "the title names the status");
        let apache = b"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>403 Forbidden</title>\n</head><body>";
        assert_eq!(canned_4xx(403, apache), Some("Apache"));
        // An application's own 403 is the upstream answering.
        assert_eq!(canned_4xx(403, br#"{"error":"forbidden"}"#), None);
        assert_eq!(canned_4xx(403, b"<h1>Access denied</h1>"), None);
    }
}
