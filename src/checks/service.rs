//! `service`: is the upstream's service running, since when, and did it
//! restart recently?
//!
//! With systemd (detected by /run/systemd/system, as `sd_booted` does) it
//! reads `systemctl show UNIT -p …` (a read-only query); without it, it finds
//! the processes by name in /proc and takes the oldest one's start time as
//! the service's uptime. Invariants: never starts, stops or reloads anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::{permission, process, tool};
use crate::duration::HumanDuration;

/// Parameters of the `service` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The systemd unit, e.g. `php8.2-fpm` or `nginx.service`.
    pub unit: String,
    /// Process name to look for in /proc without systemd (default: the unit
    /// name without `.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// `auto` (default: systemd when it is running, else /proc), `systemd` or `proc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// A start more recent than this counts as "restarted recently" (default 15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<HumanDuration>,
    /// Time allowed for `systemctl` (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Auto,
    Systemd,
    Proc,
}

pub const DOC: KindDoc = KindDoc {
    kind: "service",
    summary: "State of the upstream's service: systemd unit (ActiveState, SubState, NRestarts, ExecMainStatus, ActiveEnterTimestamp) or, without systemd, its processes in /proc; uptime and recent restarts.",
    example: r#"{ service = { unit = "php8.2-fpm", process = "php-fpm8.2", recent = "15m" } }"#,
    facts: &[
        "service.state",
        "service.pid",
        "service.uptime",
        "service.restarts",
        "service.restarted_recently",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        format!("service {}", self.unit)
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(5), |d| d.0) + Duration::from_secs(1)
    }
    fn recent_secs(&self) -> i64 {
        self.recent.map_or(900, |d| d.0.as_secs() as i64)
    }
    fn process_name(&self) -> String {
        self.process
            .clone()
            .unwrap_or_else(|| self.unit.trim_end_matches(".service").to_owned())
    }
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let systemd = match p.via.unwrap_or(Via::Auto) {
        Via::Systemd => true,
        Via::Proc => false,
        Via::Auto => std::path::Path::new("/run/systemd/system").is_dir(),
    };
    let mut r = if systemd {
        via_systemd(p).await
    } else {
        via_proc(p)
    };
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

/// `Mon 2024-05-06 10:00:00 UTC` → epoch seconds (local zone when not UTC).
fn parse_systemd_time(s: &str) -> Option<i64> {
    let w: Vec<&str> = s.split_whitespace().collect();
    if w.len() < 3 {
        return None;
    }
    let dt: jiff::civil::DateTime = format!("{}T{}", w[1], w[2]).parse().ok()?;
    let tz = match w.get(3) {
        Some(&"UTC" | &"GMT") | None => jiff::tz::TimeZone::UTC,
        Some(_) => jiff::tz::TimeZone::system(),
    };
    Some(dt.to_zoned_datetime(tz).ok()?.timestamp().as_second())
}

async fn via_systemd(p: &Params) -> CheckReport {
    let label = p.label();
    let args: Vec<String> = [
        "show",
        p.unit.as_str(),
        "--no-pager",
        "-p",
        "LoadState,ActiveState,SubState,NRestarts,ExecMainStatus,ExecMainPID,MainPID,ActiveEnterTimestamp,Result",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = match tool::run(
        "systemctl",
        &args,
        p.timeout.map_or(Duration::from_secs(5), |d| d.0),
        64 * 1024,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
    };
    if out.timed_out || out.code != Some(0) {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("`{}` failed: {}", out.argv, out.combined().trim()),
        );
    }
    let props: BTreeMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| props.get(k).copied().unwrap_or("");
    let ev = Evidence::new("systemctl show", out.stdout.trim().to_owned()).at(out.argv.clone());
    if get("LoadState") == "not-found" {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("systemd knows no unit `{}` (check the name: `systemctl list-units --type=service`)", p.unit),
        )
        .with_evidence(ev);
    }
    let active = get("ActiveState");
    let sub = get("SubState");
    let restarts: u64 = get("NRestarts").parse().unwrap_or(0);
    let since = parse_systemd_time(get("ActiveEnterTimestamp"));
    let now = jiff::Timestamp::now().as_second();
    let uptime = since.map(|s| now - s);
    let recent = uptime.is_some_and(|u| u < p.recent_secs());
    let pid = get("MainPID").to_owned();
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact("service.state", format!("{active}/{sub}"))
        .with_fact("service.pid", if pid == "0" { String::new() } else { pid })
        .with_fact(
            "service.uptime",
            uptime.map(process::age_text).unwrap_or_default(),
        )
        .with_fact("service.restarts", restarts.to_string())
        .with_fact(
            "service.restarted_recently",
            if recent || restarts > 0 { "yes" } else { "no" },
        )
        .with_evidence(ev.clone());
    let status = get("ExecMainStatus");
    if active == "active" {
        let mut s = format!("{} is {active} ({sub})", p.unit);
        if let Some(u) = uptime {
            let _ = write!(s, " for {}", process::age_text(u));
        }
        if restarts > 0 {
            let _ = write!(s, ", restarted {restarts} time(s) by systemd");
        }
        if recent {
            s.push_str(" — started recently");
        }
        r.summary = s;
    } else {
        let s = format!(
            "{} is {active} ({sub}){}{}",
            p.unit,
            if status.is_empty() || status == "0" {
                String::new()
            } else {
                format!(", last exit status {status}")
            },
            if restarts > 0 {
                format!(", {restarts} automatic restarts")
            } else {
                String::new()
            }
        );
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
        r = r.diagnose(
            Cause::UpstreamRefused,
            Severity::High,
            format!("{s}: nothing of it accepts connections"),
            vec![ev],
        );
    }
    r
}

fn via_proc(p: &Params) -> CheckReport {
    let label = p.label();
    let name = p.process_name();
    let procs = process::by_name(&name);
    if procs.is_empty() {
        let s = format!(
            "no process named `{name}` is running (systemd is not running here, so /proc was searched)"
        );
        return CheckReport::new(DOC.kind, label, Outcome::Problem, s.clone())
            .with_fact("service.state", "absent")
            .with_fact("service.pid", "")
            .with_fact("service.uptime", "")
            .with_fact("service.restarts", "")
            .with_fact("service.restarted_recently", "")
            .diagnose(Cause::UpstreamRefused, Severity::High, s, Vec::new());
    }
    // The oldest process is the master; younger ones are workers.
    let oldest = procs
        .iter()
        .min_by_key(|p| (p.started.unwrap_or(i64::MAX), p.pid));
    let now = jiff::Timestamp::now().as_second();
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact("service.state", "running")
        .with_fact("service.restarts", "");
    let mut lines = Vec::new();
    for pr in procs.iter().take(20) {
        lines.push(format!(
            "pid {} ({}) user {} started {} ago: {}",
            pr.pid,
            pr.name,
            permission::user_name(pr.uid),
            pr.started
                .map_or("?".into(), |s| process::age_text(now - s)),
            pr.cmdline
        ));
    }
    r = r.with_evidence(Evidence::new("processes", lines.join("\n")).at("/proc"));
    if let Some(o) = oldest {
        let up = o.started.map(|s| now - s);
        let recent = up.is_some_and(|u| u < p.recent_secs());
        r = r
            .with_fact("service.pid", o.pid.to_string())
            .with_fact(
                "service.uptime",
                up.map(process::age_text).unwrap_or_default(),
            )
            .with_fact(
                "service.restarted_recently",
                if recent { "yes" } else { "no" },
            );
        r.summary = format!(
            "{} process(es) named `{name}` running; the oldest (pid {}) for {}{}",
            procs.len(),
            o.pid,
            up.map_or("an unknown time".into(), process::age_text),
            if recent { " — started recently" } else { "" }
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_timestamps_parse_in_utc() {
        assert_eq!(
            parse_systemd_time("Mon 2024-05-06 10:00:00 UTC"),
            Some(1_714_989_600)
        );
        assert_eq!(parse_systemd_time("n/a"), None);
    }
}
