//! `access_log`: summarise access logs in the incident window.
//!
//! Runs [`crate::logs::access::summarise`] on a blocking thread and
//! publishes where and since when the gateway errors happen: `access.scope`
//! (site_wide | page_specific | none), `access.onset`, `access.failing_paths`
//! and `access.error_rate`. Failures concentrated on a few pages point at an
//! application fault on those pages (§4 item 7 of the signatures catalogue).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::duration::HumanDuration;
use crate::logs::Window;
use crate::logs::access::{self, AccessSummary, Scope};

/// Parameters of the `access_log` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Access-log files; `["{{ access_logs }}"]` expands to one item per discovered log.
    pub paths: Vec<String>,
    /// The format: a preset (combined, main, common, vhost_combined, haproxy) or the
    /// `log_format` / `LogFormat` string. Default: detected from the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Look back this far from now instead of the incident window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<HumanDuration>,
    /// Give up after this long (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "access_log",
    summary: "Summarise access logs in the window: 502/503/504 per minute, onset, failing paths, site-wide or page-specific.",
    example: r#"{ access_log = { paths = ["/var/log/nginx/access.log"], format = "combined" } }"#,
    facts: &[
        "access.scope",
        "access.onset",
        "access.failing_paths",
        "access.error_rate",
        "access.requests",
        "access.ongoing",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        format!("summarise access logs {}", self.paths.join(", "))
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(30), |d| d.0)
    }
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let label = p.label();
    let files: Vec<PathBuf> = p
        .paths
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(PathBuf::from)
        .collect();
    if files.is_empty() {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no access log to read",
        );
    }
    let window = match p.since {
        Some(d) => Window::last(d.0),
        None => Window::between(ctx.window_from, ctx.window_to),
    };
    let format = p.format.clone();
    let res =
        tokio::task::spawn_blocking(move || access::summarise(&files, format.as_deref(), &window))
            .await;
    let mut r = match res {
        Ok(Ok(s)) => summarise(&s, label),
        Ok(Err(e)) => CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("bad access-log format: {e}"),
        ),
        Err(e) => CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("the summary stopped: {e}"),
        ),
    };
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

/// Turn a summary into the check's answer.
pub fn summarise(s: &AccessSummary, label: String) -> CheckReport {
    let unreadable: Vec<_> = s.files.iter().filter(|f| f.error.is_some()).collect();
    if unreadable.len() == s.files.len() {
        let why: Vec<String> = unreadable.iter().filter_map(|f| f.error.clone()).collect();
        let mut summary = format!("cannot read the access logs: {}", why.join("; "));
        if unreadable.iter().any(|f| f.permission_denied) && !summary.contains("group adm") {
            summary.push_str(" (run as root or add yourself to group adm)");
        }
        let mut r = CheckReport::new(DOC.kind, label, Outcome::Inconclusive, summary);
        for f in unreadable.iter().filter(|f| f.permission_denied) {
            r = r.unseen(crate::checks::log_scan::unseen_log("access log", &f.path));
        }
        return r;
    }
    let paths: Vec<&str> = s
        .top_failing_paths
        .iter()
        .map(|p| p.path.as_str())
        .collect();
    let mut r = if s.gateway_errors == 0 {
        CheckReport::new(
            DOC.kind,
            label,
            Outcome::Ok,
            format!("{} requests in the window, no 502/503/504", s.requests),
        )
    } else {
        CheckReport::new(
            DOC.kind,
            label,
            Outcome::Problem,
            format!(
                "{} of {} requests were 502/503/504 ({:.1}%), {}{}",
                s.gateway_errors,
                s.requests,
                s.error_rate * 100.0,
                s.scope.as_str().replace('_', "-"),
                s.onset
                    .as_ref()
                    .map(|o| format!(
                        ", since {o}{}",
                        if s.ongoing { " and still failing" } else { "" }
                    ))
                    .unwrap_or_default()
            ),
        )
    }
    .with_fact("access.scope", s.scope.as_str())
    .with_fact("access.onset", s.onset.clone().unwrap_or_default())
    .with_fact("access.failing_paths", paths.join("\n"))
    .with_fact("access.error_rate", format!("{:.4}", s.error_rate))
    .with_fact("access.requests", s.requests.to_string())
    .with_fact("access.ongoing", s.ongoing.to_string());
    for f in &unreadable {
        if let Some(e) = &f.error {
            r = r.with_evidence(Evidence::new("unreadable log", e.clone()).at(f.path.clone()));
        }
    }
    for p in s.top_failing_paths.iter().take(5) {
        r = r.with_evidence(Evidence::new(
            "failing path",
            format!(
                "{}: {} gateway errors, {:.0}% of its {} requests",
                p.path,
                p.count,
                p.share * 100.0,
                p.requests
            ),
        ));
    }
    if s.error_pages.proxy_generated + s.error_pages.passed_through > 0 {
        r = r.with_evidence(Evidence::new(
            "error page sizes",
            format!(
                "{} sized like the proxy's own error page, {} other sizes (passed through from the upstream or a custom error_page)",
                s.error_pages.proxy_generated, s.error_pages.passed_through
            ),
        ));
    }
    if s.scope == Scope::PageSpecific {
        let ev: Vec<Evidence> = s
            .top_failing_paths
            .iter()
            .take(3)
            .map(|p| {
                Evidence::new(
                    "failing path",
                    format!("{} ({} errors, {:.0}%)", p.path, p.count, p.share * 100.0),
                )
            })
            .collect();
        r = r.diagnose(
            Cause::AppFatal,
            Severity::Medium,
            format!(
                "gateway errors concentrate on {} while the rest of the site answers",
                paths.iter().take(3).copied().collect::<Vec<_>>().join(", ")
            ),
            ev,
        );
    }
    for f in &s.files {
        if let Some(u) = &f.unread {
            r = r.with_evidence(
                Evidence::new("partly read log", format!("the file {u}")).at(f.path.clone()),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[tokio::test]
    async fn page_specific_failures_publish_scope_and_paths() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        let now = jiff::Timestamp::now().as_second() - 120;
        let z = crate::logs::time::Zone::utc();
        let mut text = String::new();
        for i in 0..200i64 {
            let dt = z.civil(now + i / 10);
            let (path, status) = if i % 4 == 0 {
                ("/broken", 502)
            } else {
                ("/ok", 200)
            };
            let mon = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ][dt.month() as usize - 1];
            let _ = writeln!(
                text,
                "10.0.0.1 - - [{:02}/{mon}/{}:{:02}:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} 157 \"-\" \"curl\"",
                dt.day(),
                dt.year(),
                dt.hour(),
                dt.minute(),
                dt.second()
            );
        }
        std::fs::write(&p, text).unwrap();
        let r = run(
            &Params {
                paths: vec![p.display().to_string()],
                format: None,
                since: Some(HumanDuration(Duration::from_secs(3600))),
                timeout: None,
            },
            &CheckContext::last(Duration::from_secs(3600)),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
        assert_eq!(r.facts["access.scope"], "page_specific");
        assert_eq!(r.facts["access.failing_paths"], "/broken");
        assert_eq!(r.facts["access.error_rate"], "0.2500");
        assert!(!r.facts["access.onset"].is_empty());
        assert_eq!(r.diagnoses[0].cause, Cause::AppFatal);
    }
}
