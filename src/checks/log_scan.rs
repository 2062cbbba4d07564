//! `log_scan`: classify the upstream failures in error logs within the incident window.
//!
//! Runs [`crate::logs::scan`] (seeking to the window, following rotations) on
//! a blocking thread. Each cause found becomes a diagnosis with the real log
//! lines (`file:line`) as evidence, plus what correlation decided about it
//! (a php-fpm timeout kill behind a premature close, SELinux behind EACCES on
//! TCP) with the backend lines that decided it; the top cause, the causes, the top
//! upstream and the failing paths become facts for later nodes. A file that
//! cannot be read makes the check inconclusive with the remedy.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::Severity;
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome, Unseen};
use crate::duration::HumanDuration;
use crate::logs::{self, Role, ScanOptions, ScanReport, Window};

/// Parameters of the `log_scan` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Error-log files; `["{{ error_logs }}"]` expands to one item per discovered log.
    pub paths: Vec<String>,
    /// Look back this far from now instead of the incident window (e.g. `30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<HumanDuration>,
    /// Give up after this long (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "log_scan",
    summary: "Classify upstream failures in error logs (nginx, Apache, php-fpm, HAProxy, Caddy, kernel) within the incident window.",
    example: r#"{ log_scan = { paths = ["{{ error_logs }}"], since = "1h" } }"#,
    facts: &[
        "log.top_cause",
        "log.causes",
        "log.top_upstream",
        "log.failing_paths",
        "log.unmatched",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        format!("scan error logs {}", self.paths.join(", "))
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(30), |d| d.0)
    }
    fn window(&self, ctx: &CheckContext) -> Window {
        match self.since {
            Some(d) => Window::last(d.0),
            None => Window::between(ctx.window_from, ctx.window_to),
        }
    }
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let label = p.label();
    if p.paths.iter().all(|s| s.trim().is_empty()) {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no error log to read: discovery found none and none was given",
        );
    }
    let files: Vec<PathBuf> = p
        .paths
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(PathBuf::from)
        .collect();
    let window = p.window(ctx);
    let report =
        tokio::task::spawn_blocking(move || logs::scan(&files, &window, &ScanOptions::default()))
            .await;
    let mut r = match report {
        Ok(rep) => summarise(&rep, label),
        Err(e) => CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("the log scan stopped: {e}"),
        ),
    };
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

fn severity(rank: usize, role: Role, count: u64) -> Severity {
    match (role, rank) {
        (Role::Primary, 0) if count >= 10 => Severity::Critical,
        (Role::Primary, 0) => Severity::High,
        (Role::Primary, _) => Severity::Medium,
        _ => Severity::Low,
    }
}

/// A log that exists but may not be read, as something the walk could not see: the one way
/// to read it is root, or membership of the file's group (Debian's logs: `adm`).
pub(crate) fn unseen_log(kind: &str, path: &str) -> Unseen {
    use crate::platform::fs::MetadataExt as _;
    let group = std::fs::metadata(path)
        .ok()
        .map(|m| crate::checks::permission::group_name(m.gid()))
        .filter(|g| g != "root");
    let how = match group {
        Some(g) => format!(
            "{}, or join the log's group: sudo usermod -aG {g} $USER (then log in again)",
            crate::check::AS_ROOT
        ),
        None => crate::check::AS_ROOT.to_owned(),
    };
    Unseen::new(format!("the {kind} {path}"), "permission denied", how)
}

/// Turn a scan report into the check's answer.
pub fn summarise(rep: &ScanReport, label: String) -> CheckReport {
    let read: Vec<_> = rep.files.iter().filter(|f| f.error.is_none()).collect();
    let unreadable: Vec<_> = rep.unreadable().collect();
    let unseen: Vec<Unseen> = unreadable
        .iter()
        .filter(|f| f.permission_denied)
        .map(|f| unseen_log("error log", &f.path))
        .collect();
    let mut r = if rep.causes.is_empty() {
        if read.is_empty() {
            let denied = unreadable.iter().any(|f| f.permission_denied);
            let why = unreadable
                .iter()
                .filter_map(|f| f.error.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let summary = if denied {
                format!(
                    "cannot read the error logs ({why}): run as root or add yourself to group adm"
                )
            } else {
                format!("cannot read the error logs: {why}")
            };
            CheckReport::new(DOC.kind, label, Outcome::Inconclusive, summary)
        } else {
            CheckReport::new(
                DOC.kind,
                label,
                Outcome::Ok,
                format!(
                    "no upstream failure in {} in the window",
                    read.iter()
                        .map(|f| f.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    } else {
        let top = &rep.causes[0];
        CheckReport::new(
            DOC.kind,
            label,
            Outcome::Problem,
            format!(
                "{}: {} entries from {} to {} ({})",
                top.cause,
                top.count.max(top.secondary_count),
                top.first_seen.as_deref().unwrap_or("?"),
                top.last_seen.as_deref().unwrap_or("?"),
                top.cause.info().title
            ),
        )
    };
    for f in &unreadable {
        if let Some(e) = &f.error {
            let mut ev = Evidence::new("unreadable log", e.clone()).at(f.path.clone());
            if f.permission_denied {
                ev.text
                    .push_str(" — run as root or add yourself to group adm");
            }
            r = r.with_evidence(ev);
        }
    }
    for f in &rep.files {
        if let Some(u) = &f.unread {
            r = r.with_evidence(
                Evidence::new("partly read log", format!("the file {u}")).at(f.path.clone()),
            );
        }
    }
    if let Some(top) = rep.causes.first() {
        r = r.with_fact("log.top_cause", top.cause.id());
        if let Some(u) = top.upstreams.first().or_else(|| top.sockets.first()) {
            r = r.with_fact("log.top_upstream", u.value.clone());
        }
        let paths: Vec<&str> = top.paths.iter().map(|p| p.value.as_str()).collect();
        r = r.with_fact("log.failing_paths", paths.join("\n"));
    }
    let causes: Vec<&str> = rep.causes.iter().map(|c| c.cause.id()).collect();
    r = r
        .with_fact("log.causes", causes.join("\n"))
        .with_fact("log.unmatched", rep.unmatched.count.to_string());
    for (rank, c) in rep.causes.iter().enumerate() {
        let mut evidence: Vec<Evidence> = c
            .samples
            .iter()
            .map(|s| Evidence::new("error log line", s.text.clone()).at(s.source.clone()))
            .collect();
        // What correlation decided about this cause, with the backend lines that decided it.
        let decided: Vec<&logs::correlate::Correlation<logs::scan::Sample>> = rep
            .correlations
            .iter()
            .filter(|k| k.cause == c.cause)
            .collect();
        for k in &decided {
            evidence.push(Evidence::new("correlation", k.explanation.clone()));
            evidence.extend(
                k.evidence.iter().map(|s| {
                    Evidence::new("backend log line", s.text.clone()).at(s.source.clone())
                }),
            );
        }
        let mut summary = format!(
            "{} {} entries (first {}, last {})",
            c.count.max(c.secondary_count),
            if c.role == Role::Primary {
                "failure"
            } else {
                "related"
            },
            c.first_seen.as_deref().unwrap_or("?"),
            c.last_seen.as_deref().unwrap_or("?")
        );
        if let Some(u) = c.upstreams.first() {
            let _ = write!(summary, "; upstream {}", u.value);
        }
        if let Some(s) = c.sockets.first() {
            let _ = write!(summary, "; socket {}", s.value);
        }
        if !c.paths.is_empty() {
            let p: Vec<String> = c
                .paths
                .iter()
                .take(3)
                .map(|p| format!("{} ({})", p.value, p.count))
                .collect();
            let _ = write!(summary, "; paths {}", p.join(", "));
        }
        for k in &decided {
            let _ = write!(summary, "; correlated: {}", k.kind);
        }
        r = r.diagnose(c.cause, severity(rank, c.role, c.count), summary, evidence);
    }
    for u in unseen {
        r = r.unseen(u);
    }
    for n in &rep.notes {
        r = r.with_evidence(Evidence::new("log scan note", n.clone()));
    }
    if rep.unmatched.count > 0 {
        for s in &rep.unmatched.samples {
            r = r.with_evidence(
                Evidence::new("unclassified error line", s.text.clone()).at(s.source.clone()),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ctx() -> CheckContext {
        CheckContext::last(Duration::from_secs(3600))
    }

    fn nginx_now(msg: &str) -> String {
        let z = logs::time::Zone::system();
        let dt = z.civil(jiff::Timestamp::now().as_second() - 60);
        format!(
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02} {msg}\n",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }

    #[tokio::test]
    async fn finds_refusals_and_publishes_facts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("error.log");
        let mut f = std::fs::File::create(&p).unwrap();
        for i in 0..3 {
            f.write_all(nginx_now(&format!("[error] 7#7: *{i} connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: e, request: \"GET /cart HTTP/1.1\", upstream: \"http://127.0.0.1:8080/cart\", host: \"e\"")).as_bytes()).unwrap();
        }
        f.write_all(nginx_now("[error] 7#7: *9 no live upstreams while connecting to upstream, client: 10.0.0.1, server: e, request: \"GET / HTTP/1.1\", upstream: \"http://backend/\", host: \"e\"").as_bytes()).unwrap();
        drop(f);
        let r = run(
            &Params {
                paths: vec![p.display().to_string()],
                since: None,
                timeout: None,
            },
            &ctx(),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
        assert_eq!(r.facts["log.top_cause"], "upstream_refused");
        assert_eq!(r.facts["log.causes"], "upstream_refused\nno_live_upstreams");
        assert_eq!(r.facts["log.top_upstream"], "http://127.0.0.1:8080");
        assert_eq!(r.facts["log.failing_paths"], "/cart");
        let d0 = &r.diagnoses[0];
        assert_eq!(d0.cause, crate::cause::Cause::UpstreamRefused);
        assert!(
            d0.evidence[0]
                .source
                .as_deref()
                .unwrap()
                .ends_with("error.log:1"),
            "{:?}",
            d0.evidence
        );
    }

    #[tokio::test]
    async fn missing_file_is_inconclusive_and_empty_log_ok() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nope.log");
        let params = Params {
            paths: vec![p.display().to_string()],
            since: Some(HumanDuration(Duration::from_secs(600))),
            timeout: None,
        };
        let r = run(&params, &ctx()).await;
        assert_eq!(r.outcome, Outcome::Inconclusive);
        std::fs::write(&p, nginx_now("[notice] 1#1: signal process started")).unwrap();
        let r = run(&params, &ctx()).await;
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    }
}
