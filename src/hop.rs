//! The hop: follow the 502 to the upstream's host. When discovery shows that the failing path's
//! upstream is another machine, triage502 runs itself there over the operator's own OpenSSH
//! (`ssh`, batch mode, the user's config), read-only, for the upstream's URL as that host sees
//! it, and merges the remote report into this one: every finding says which host established
//! it, and the report gains a `hops` section.
//!
//! On the remote host the same version runs: the one installed there when `triage502
//! --version` matches, otherwise this binary's static build is copied into a private temporary
//! directory (mode 0700), its SHA-256 checked there, and the directory removed afterwards in
//! every outcome. The copy is the only thing a hop leaves on the remote host, for the length of
//! the run: an action of the `reversible` tier (its undo is the removal), which `--read-only`
//! forbids and the TUI asks for. The remote run itself is `--read-only`.
//!
//! - [`quote`]: single-quote escaping for the remote shell (template values stay data).
//! - [`elf`]: is a binary static (no `PT_INTERP`)?
//! - [`ssh`]: the transport, its argv and how its failures read (DNS, refused, auth, host key).
//! - [`target`]: which upstreams are on another host, and their URL there.
//! - [`run`]: the steps of one hop and of several in parallel.

pub mod elf;
pub mod quote;
pub mod run;
pub mod ssh;
pub mod target;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use run::{Binary, HopEvent, Plan, hop_all, hop_one};
pub use ssh::{Ssh, Unreachable};
pub use target::{Locality, Target, targets};

/// The deepest chain of hops `--hops` accepts (this host → its upstream's host → the next).
pub const MAX_HOPS: u32 = 2;

/// How the remote run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ran {
    /// triage502 of the same version was installed there.
    Installed,
    /// This binary's static build was copied to a temporary directory there.
    Copied,
    /// Nothing ran there (unreachable, refused, failed before the run).
    NotRun,
}

/// How a hop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HopStatus {
    /// The remote run finished and its report is merged.
    Done,
    /// ssh could not reach the host (evidence, not an error: see `unreachable`).
    Unreachable,
    /// The hop needed to copy the binary and that was not allowed (`--read-only`, declined).
    Refused,
    /// Something failed on the way (the copy, the checksum, the remote run, its report).
    Failed,
}

/// One hop, for the report's `hops` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Hop {
    /// The host as the findings name it: its own host name when it has one of its own, else
    /// the address ssh used.
    pub host: String,
    /// What ssh connected to (the upstream's host).
    pub address: String,
    /// The upstream as the proxy names it (`10.0.0.12:8080`).
    pub upstream: String,
    /// The URL the remote run walked: the upstream and the failing request's path.
    pub url: String,
    /// The host the hop was made from.
    pub from: String,
    /// 1 for this host's upstreams, 2 for theirs.
    pub depth: u32,
    pub ran: Ran,
    pub status: HopStatus,
    /// Why ssh could not reach the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Unreachable>,
    /// The remote report's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<crate::report::Status>,
    /// One line: "ssh refused — sshd down or filtered", "problem: ...", "healthy".
    pub summary: String,
    /// The remote report's first finding, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_finding: Option<String>,
    /// How many findings the remote run established (merged into `findings` with this `host`).
    pub findings: usize,
    pub duration_ms: u64,
    /// The private directory the binary was copied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_dir: Option<String>,
    /// Whether that directory is gone (checked on the remote host after `rm -rf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_dir_removed: Option<bool>,
    /// The exact argv of every ssh call made, in order.
    pub commands: Vec<Vec<String>>,
    /// ssh's or the remote run's error output when it failed (capped).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

impl Hop {
    /// "web2 (10.250.20.12)" or "10.250.20.12".
    pub fn name(&self) -> String {
        if self.host == self.address {
            self.host.clone()
        } else {
            format!("{} ({})", self.host, self.address)
        }
    }

    /// One line for reports and the ticket: "on web2: php-fpm pool www saturated".
    pub fn line(&self) -> String {
        match (&self.status, &self.first_finding) {
            (HopStatus::Done, Some(f)) => format!("on {}: {f}", self.name()),
            _ => format!("{}: {}", self.name(), self.summary),
        }
    }
}

/// This host's name, as findings established here carry it.
pub fn this_host() -> String {
    crate::report::host_label()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Report, Status};

    fn report(host: &str, status: &str, findings: &serde_json::Value) -> Report {
        serde_json::from_value(serde_json::json!({
            "status": status, "url": "http://x/", "host": host,
            "playbook": {"id": "502", "version": "1"},
            "started_at": "2026-12-03T00:00:00Z", "duration_ms": 1,
            "findings": findings, "ruled_out": [], "path": [], "end": null,
            "recommended_actions": []
        }))
        .unwrap()
    }

    fn hop(address: &str, status: HopStatus) -> Hop {
        Hop {
            host: address.into(),
            address: address.into(),
            upstream: format!("{address}:80"),
            url: format!("http://{address}:80/"),
            from: "lb".into(),
            depth: 1,
            ran: Ran::Copied,
            status,
            unreachable: None,
            remote_status: None,
            summary: "ssh refused — sshd down or filtered".into(),
            first_finding: None,
            findings: 0,
            duration_ms: 5,
            temp_dir: None,
            temp_dir_removed: None,
            commands: vec![],
            stderr: String::new(),
        }
    }

    #[test]
    fn remote_findings_carry_their_host_and_unreachable_hosts_bound_the_report() {
        let mut local = report("lb", "inconclusive", &serde_json::json!([]));
        let remote = report(
            "lb", // a namespace shares the balancer's name: the hop names it by address
            "problem",
            &serde_json::json!([{"cause": "upstream_refused", "severity": "critical",
                "summary": "nothing at 127.0.0.1:9000", "evidence": [], "node": "502/tcp"}]),
        );
        local.merge_hops(vec![
            (hop("10.0.0.12", HopStatus::Done), Some(remote)),
            (hop("10.0.0.14", HopStatus::Unreachable), None),
        ]);
        assert_eq!(local.status, Status::Problem);
        assert_eq!(local.findings.len(), 1);
        assert_eq!(local.findings[0].host.as_deref(), Some("10.0.0.12"));
        assert_eq!(local.hops.len(), 2);
        assert!(
            local
                .unseen
                .iter()
                .any(|u| u.what.contains("10.0.0.14") && u.why.contains("ssh refused"))
        );
        let md = local.to_markdown();
        assert!(md.contains("## Hops"), "{md}");
        assert!(md.contains("on 10.0.0.12: **"), "{md}");
        assert!(md.contains("10.0.0.14: ssh refused"), "{md}");
    }
}
