//! The result of a walk as a document: JSON (a documented contract,
//! `assets/report.schema.json`) and Markdown for people.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::Cause;
use crate::check::{Outcome, Unseen};
use crate::engine::{ContextNote, Engine, Finding, Record, RuledOut, Step};
use crate::playbook::EndKind;

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// At least one cause was established.
    Problem,
    /// Everything checked answered normally; no cause was found.
    Healthy,
    /// Something failed or could not be checked, but no cause was established.
    Inconclusive,
}

/// An action the walk recommends but did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Recommended {
    pub node: String,
    pub title: String,
    pub tier: crate::action::Tier,
    /// The exact command, as argv items.
    pub argv: Vec<String>,
    pub why_not_run: String,
    /// For a configuration edit: the unified diff it would make, ready to
    /// apply by hand (or why it cannot be made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// An action `run --non-interactive --apply TIER` ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Applied {
    pub node: String,
    pub title: String,
    pub tier: crate::action_spec::Tier,
    /// The command it ran last (a config edit: its test or reload).
    pub argv: Vec<String>,
    /// For a configuration edit: the unified diff it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Did it succeed (a refused or rolled-back edit did not)?
    pub ok: bool,
    pub summary: String,
    /// Its transcript (commands and their output), capped.
    pub output: String,
    /// The failing URL probed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::action::VerifyResult>,
    /// Whether the URL answered below 500 on every probe after it.
    pub recovered: bool,
    /// What it left changed, with how to undo it.
    #[serde(default)]
    pub undo: Vec<String>,
}

/// A visited node, for the JSON `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PathStep {
    pub playbook: String,
    pub node: String,
    pub title: String,
    /// `ok`, `problem`, `inconclusive` for checks; the choice for questions;
    /// `done`/`failed`/`declined` for actions; otherwise what happened.
    pub outcome: String,
    /// Everything recorded at the node (check reports with evidence, the answer, the action).
    pub detail: Record,
}

/// The JSON report of `run --non-interactive --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub status: Status,
    pub url: Option<String>,
    /// The host the walk ran on (its findings carry this name in `host`) (`run --non-interactive`): `TRIAGE502_HOST` when set (the
    /// Ansible role sets the inventory name), else the machine's host name. `fleet` names the
    /// host by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub playbook: PlaybookRef,
    /// What the walk could not look at (an unprivileged run: logs, socket owners, firewall
    /// rules), why, and what would let it; read it first, it bounds what the findings can say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseen: Vec<Unseen>,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: u64,
    /// Ranked: direct evidence of the failing hop first, circumstantial after; within each,
    /// root causes before consequences, then in the order the walk established them.
    pub findings: Vec<Finding>,
    /// Whether any finding rests on direct evidence of the failing hop. When false and there
    /// are findings, they are only what *could* explain the failure, and the report says so.
    #[serde(default)]
    pub direct_evidence: bool,
    /// Causes checked and excluded, with the evidence.
    pub ruled_out: Vec<RuledOut>,
    /// Seen off the failing path and set aside (an unrelated OOM kill, unrelated package
    /// upgrades, rules no packet of this path reaches), with why.
    #[serde(default)]
    pub context: Vec<ContextNote>,
    pub path: Vec<PathStep>,
    /// How the walk ended (`resolved`, `escalate`, or null when cut short).
    pub end: Option<EndKind>,
    pub recommended_actions: Vec<Recommended>,
    /// Actions `--apply TIER` ran unattended, with their verification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_actions: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `--hops N`: the walks run on the hosts of remote upstreams over ssh (their findings are
    /// merged into `findings`, each with its `host`), and the hosts that could not be reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<crate::hop::Hop>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookRef {
    pub id: String,
    pub version: String,
}

/// Direct evidence of the failing hop before circumstantial evidence; within each, root
/// causes before consequences; otherwise in the order the walk established them. The
/// playbook orders its steps so the most decisive evidence comes first (a config test, a
/// page-specific failure before the log lines they explain), so that order breaks ties;
/// severity says how bad a cause is, not how sure we are of it.
pub fn rank(findings: &[Finding]) -> Vec<Finding> {
    let mut v = findings.to_vec();
    v.sort_by_key(|f| (f.basis, f.cause.is_secondary()));
    v
}

fn step_outcome(s: &Step) -> String {
    match &s.record {
        Record::Checks { outcome, .. } => outcome.as_str().to_owned(),
        Record::Answer { choice, .. } => choice.clone(),
        Record::Read => "read".into(),
        Record::Routed { rule } => format!("routed: {rule}"),
        Record::Action {
            result: Some(r), ..
        } => if r.ok { "done" } else { "failed" }.into(),
        Record::Action { .. } => "declined".into(),
        Record::Call { playbook } => format!("call {playbook}"),
        Record::Return { end } | Record::End { end } => match end {
            EndKind::Resolved => "resolved".into(),
            EndKind::Escalate => "escalate".into(),
        },
        Record::LoopLimit => "loop limit".into(),
    }
}

/// The status a walk supports.
pub fn status(engine: &Engine) -> Status {
    if !engine.findings().is_empty() {
        // Only circumstantial findings while the strong evidence was unreadable: the failure
        // is not explained, and the report must not present a weak finding as the answer.
        if !engine.findings().iter().any(|f| f.basis.is_direct()) && !unseen(engine).is_empty() {
            return Status::Inconclusive;
        }
        return Status::Problem;
    }
    let saw_failure = engine.trail().iter().any(|s| {
        matches!(
            &s.record,
            Record::Checks {
                outcome: Outcome::Problem,
                ..
            }
        )
    });
    let cut_short = matches!(engine.effect(), crate::engine::Effect::Done(c) if c.end.is_none());
    if saw_failure || cut_short {
        Status::Inconclusive
    } else {
        Status::Healthy
    }
}

/// What the walk's checks could not look at, in the order they said so, without repeats.
pub fn unseen(engine: &Engine) -> Vec<Unseen> {
    let mut v: Vec<Unseen> = Vec::new();
    for s in engine.trail() {
        if let Record::Checks { reports, .. } = &s.record {
            for u in reports.iter().flat_map(|r| &r.unseen) {
                if !v.contains(u) {
                    v.push(u.clone());
                }
            }
        }
    }
    v
}

impl Report {
    /// Build the report of a walk.
    pub fn from_engine(
        engine: &Engine,
        url: Option<String>,
        started_at: jiff::Timestamp,
        duration_ms: u64,
    ) -> Report {
        let pb = engine.library().get(engine.root());
        let (end, note) = match engine.effect() {
            crate::engine::Effect::Done(c) => (c.end, c.note.clone()),
            _ => (None, Some("the walk stopped before reaching an end".into())),
        };
        let recommended_actions = engine
            .trail()
            .iter()
            .filter_map(|s| match &s.record {
                Record::Action {
                    tier,
                    argv,
                    result: None,
                    declined: Some(why),
                } => Some(Recommended {
                    node: format!("{}/{}", s.playbook, s.node),
                    title: s.title.clone(),
                    tier: *tier,
                    argv: argv.clone(),
                    why_not_run: why.clone(),
                    diff: None,
                }),
                _ => None,
            })
            .collect();
        let host = crate::hop::this_host();
        let mut findings = rank(engine.findings());
        for f in &mut findings {
            f.host.get_or_insert_with(|| host.clone());
        }
        Report {
            status: status(engine),
            unseen: unseen(engine),
            url,
            host: Some(host),
            playbook: PlaybookRef {
                id: engine.root().to_owned(),
                version: pb.map(|p| p.version.clone()).unwrap_or_default(),
            },
            started_at: started_at.to_string(),
            duration_ms,
            findings,
            direct_evidence: engine.findings().iter().any(|f| f.basis.is_direct()),
            ruled_out: engine.ruled_out(),
            context: engine.context().to_vec(),
            path: engine
                .trail()
                .iter()
                .map(|s| PathStep {
                    playbook: s.playbook.clone(),
                    node: s.node.clone(),
                    title: s.title.clone(),
                    outcome: step_outcome(s),
                    detail: s.record.clone(),
                })
                .collect(),
            end,
            recommended_actions,
            applied_actions: Vec::new(),
            note,
            hops: Vec::new(),
        }
    }

    /// Merge the hops' results: each remote finding gets the name of the host it was
    /// established on, the remote reports' own hops follow theirs (one level deeper), hosts
    /// that could not be reached become `unseen` entries, and the verdict takes the remote
    /// findings into account.
    pub fn merge_hops(&mut self, results: Vec<(crate::hop::Hop, Option<Report>)>) {
        use crate::hop::HopStatus;
        for (hop, remote) in results {
            match hop.status {
                HopStatus::Unreachable | HopStatus::Refused | HopStatus::Failed => {
                    self.unseen.push(Unseen::new(
                        format!("the upstream's host {}", hop.name()),
                        hop.summary.clone(),
                        match hop.status {
                            HopStatus::Refused => {
                                "allow the copy (run without --read-only), or install the same triage502 there"
                            }
                            _ => "reach it with `ssh HOST` from here (keys, known_hosts, ssh config), or run triage502 there",
                        },
                    ));
                }
                HopStatus::Done => {}
            }
            let depth = hop.depth;
            self.hops.push(hop.clone());
            let Some(r) = remote else { continue };
            for mut f in r.findings {
                if f.host.is_none() || f.host == r.host {
                    f.host = Some(hop.host.clone());
                }
                self.direct_evidence |= f.basis.is_direct();
                self.findings.push(f);
            }
            for mut h in r.hops {
                h.depth += depth;
                if h.from == r.host.clone().unwrap_or_default() {
                    h.from.clone_from(&hop.host);
                }
                self.hops.push(h);
            }
            for u in r.unseen {
                let u = Unseen::new(format!("on {}: {}", hop.host, u.what), u.why, u.how);
                if !self.unseen.contains(&u) {
                    self.unseen.push(u);
                }
            }
        }
        self.findings = rank(&self.findings);
        if !self.findings.is_empty() && (self.direct_evidence || self.status == Status::Healthy) {
            self.status = Status::Problem;
        }
    }

    /// Add what the unattended walk applied and the diffs of the edits it
    /// only recommends (keyed by node id).
    #[must_use]
    pub fn with_walk(mut self, w: &crate::walk::Walked) -> Report {
        for r in &mut self.recommended_actions {
            let id = r.node.rsplit('/').next().unwrap_or_default();
            if let Some(d) = w.diffs.get(id) {
                r.diff = Some(d.clone());
            }
        }
        self.applied_actions.clone_from(&w.applied);
        self
    }

    /// The primary cause, if any.
    pub fn primary(&self) -> Option<Cause> {
        self.findings.first().map(|f| f.cause)
    }

    /// The serving path through the hops, one line per host where it ends, as the map draws
    /// it: `lb → web2 (10.0.0.12) 10.0.0.12:80 (ssh) → app2 10.0.0.22:9000 (ssh) → healthy`
    /// (a hop's parent is the hop one level up whose host it was made from).
    pub fn hop_paths(&self) -> Vec<String> {
        let is_parent =
            |p: &crate::hop::Hop, h: &crate::hop::Hop| p.depth + 1 == h.depth && p.host == h.from;
        let mut out = Vec::new();
        for leaf in &self.hops {
            if self.hops.iter().any(|c| is_parent(leaf, c)) {
                continue;
            }
            let mut chain = vec![leaf];
            while chain.len() <= self.hops.len() {
                let Some(p) = self
                    .hops
                    .iter()
                    .find(|p| is_parent(p, chain[chain.len() - 1]))
                else {
                    break;
                };
                chain.push(p);
            }
            chain.reverse();
            let mut line = chain[0].from.clone();
            for h in &chain {
                let _ = write!(line, " → {} {} (ssh)", h.name(), h.upstream);
            }
            let _ = write!(line, " → {}", one_line(&leaf.summary));
            out.push(line);
        }
        out
    }

    /// Markdown for people.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let verdict = match self.status {
            Status::Problem => "problem found",
            Status::Healthy => "healthy: no fault found",
            Status::Inconclusive => "inconclusive: a failure was seen but not explained",
        };
        let _ = writeln!(s, "# triage502 report: {verdict}\n");
        if let Some(u) = &self.url {
            let _ = writeln!(s, "- URL: {u}");
        }
        if let Some(h) = &self.host {
            let _ = writeln!(s, "- Host: {h}");
        }
        let _ = writeln!(
            s,
            "- Playbook: {} v{}",
            self.playbook.id, self.playbook.version
        );
        let _ = writeln!(
            s,
            "- Started: {} (took {} ms)",
            self.started_at, self.duration_ms
        );
        if let Some(n) = &self.note {
            let _ = writeln!(s, "- Note: {n}");
        }
        if !self.unseen.is_empty() {
            let _ = writeln!(s, "\n## Not seen (the findings are bounded by this)\n");
            for u in &self.unseen {
                let _ = writeln!(s, "- {}: {}. To see it: {}.", u.what, u.why, u.how);
            }
        }
        let _ = writeln!(s, "\n## Findings\n");
        if self.findings.is_empty() {
            let _ = writeln!(s, "None.");
        } else if !self.direct_evidence {
            let _ = writeln!(
                s,
                "No direct evidence of the failing hop was found: the findings below could \
                 explain the failure but do not show it happening.\n"
            );
        }
        for (i, f) in self.findings.iter().enumerate() {
            let info = f.cause.info();
            let basis = if f.basis.is_direct() {
                String::new()
            } else {
                format!(", {}", f.basis.as_str())
            };
            let on = match &f.host {
                Some(h) if !self.hops.is_empty() || self.host.as_ref() != Some(h) => {
                    format!("on {h}: ")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{}. {on}**{}** (`{}`, {}{basis}): {}",
                i + 1,
                info.title,
                f.cause,
                f.severity,
                f.summary
            );
            for e in &f.evidence {
                let src = e
                    .source
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                let _ = writeln!(s, "   - {}{src}: `{}`", e.label, one_line(&e.text));
            }
            for fix in &info.fixes {
                let _ = writeln!(s, "   - Fix: {fix}");
            }
        }
        if !self.hops.is_empty() {
            let _ = writeln!(s, "\n## Hops (the upstreams' hosts, over ssh)\n");
            for p in self.hop_paths() {
                let _ = writeln!(s, "Path: {p}\n");
            }
            for h in &self.hops {
                let _ = writeln!(s, "- {}", h.line());
                let _ = writeln!(
                    s,
                    "  - from {} to {} ({}), depth {}, {} ms, {}",
                    h.from,
                    h.upstream,
                    h.url,
                    h.depth,
                    h.duration_ms,
                    match h.ran {
                        crate::hop::Ran::Installed => "the installed triage502",
                        crate::hop::Ran::Copied => "a copied static triage502",
                        crate::hop::Ran::NotRun => "nothing ran there",
                    }
                );
                if let Some(d) = &h.temp_dir {
                    let _ = writeln!(
                        s,
                        "  - temporary directory {d}: {}",
                        if h.temp_dir_removed == Some(true) {
                            "removed"
                        } else {
                            "NOT removed, remove it by hand"
                        }
                    );
                }
                if !h.stderr.is_empty() {
                    let _ = writeln!(s, "  - ssh said: `{}`", one_line(&h.stderr));
                }
            }
        }
        let _ = writeln!(s, "\n## Ruled out\n");
        if self.ruled_out.is_empty() {
            let _ = writeln!(s, "Nothing was excluded.");
        }
        for r in &self.ruled_out {
            let _ = writeln!(s, "- `{}`: {}", r.cause, r.reason);
        }
        if !self.context.is_empty() {
            let _ = writeln!(s, "\n## Context (seen, set aside)\n");
            for c in &self.context {
                let src = c
                    .aside
                    .source
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                let _ = writeln!(s, "- {}{src}: {}", one_line(&c.aside.seen), c.aside.why);
            }
        }
        if !self.recommended_actions.is_empty() {
            let _ = writeln!(s, "\n## Recommended next steps (not run)\n");
            for a in &self.recommended_actions {
                let _ = writeln!(
                    s,
                    "- {} ({}): `{}` ({})",
                    a.title,
                    a.tier,
                    shell_words(&a.argv),
                    a.why_not_run
                );
                if let Some(d) = &a.diff {
                    let _ = writeln!(s, "\n```diff\n{d}```\n");
                }
            }
        }
        if !self.applied_actions.is_empty() {
            let _ = writeln!(s, "\n## Applied (--apply)\n");
            for a in &self.applied_actions {
                let _ = writeln!(
                    s,
                    "- {} ({}): {}; {}",
                    a.title,
                    a.tier,
                    a.summary,
                    if a.recovered {
                        "the URL recovered"
                    } else {
                        "the URL did not recover"
                    }
                );
                if let Some(v) = &a.verification {
                    let _ = writeln!(s, "  - verification: {}", v.summary());
                }
                if let Some(d) = &a.diff {
                    let _ = writeln!(s, "\n```diff\n{d}```\n");
                }
                for u in &a.undo {
                    let _ = writeln!(s, "  - still changed: {u}");
                }
            }
        }
        let backends: Vec<&crate::check::CheckReport> = self
            .path
            .iter()
            .filter_map(|p| match &p.detail {
                Record::Checks { reports, .. } => Some(reports),
                _ => None,
            })
            .flatten()
            .filter(|r| r.kind == crate::checks::backends::DOC.kind)
            .collect();
        for r in backends {
            let rows = crate::checks::backends::table(r);
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n## Backends: {}\n", r.label);
            let _ = writeln!(s, "| server | state | health check |\n| --- | --- | --- |");
            for (addr, state, health) in rows {
                let health = if health.is_empty() {
                    "-".into()
                } else {
                    health
                };
                let _ = writeln!(s, "| {addr} | {state} | {health} |");
            }
        }
        let _ = writeln!(s, "\n## Steps\n");
        for p in &self.path {
            let _ = writeln!(s, "- {} [{}]", p.title, p.outcome);
            if let Record::Checks { reports, .. } = &p.detail {
                for r in reports {
                    let _ = writeln!(
                        s,
                        "  - {} {}: {}",
                        r.outcome.as_str(),
                        r.label,
                        one_line(&r.summary)
                    );
                }
            }
        }
        s
    }
}

/// A single display line (newlines shown as ⏎), capped.
pub fn one_line(s: &str) -> String {
    let flat: String = s
        .replace('\n', " ⏎ ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if flat.chars().count() > 300 {
        let cut: String = flat.chars().take(300).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Show an argv the way a shell user would type it (display only; never executed).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name `run` writes in the report's `host`: `TRIAGE502_HOST` when set and not empty (a
/// runner's own name for the host, e.g. Ansible's inventory name), else the machine's host name.
pub fn host_label() -> String {
    std::env::var("TRIAGE502_HOST")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(crate::journal::host_name)
}

/// The JSON schema of [`Report`] (kept in `assets/report.schema.json`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hop::{Hop, HopStatus, Ran};

    fn hop(host: &str, address: &str, from: &str, depth: u32, summary: &str) -> Hop {
        Hop {
            host: host.into(),
            address: address.into(),
            upstream: format!("{address}:80"),
            url: format!("http://{address}:80/checkout"),
            from: from.into(),
            depth,
            ran: Ran::Copied,
            status: HopStatus::Done,
            unreachable: None,
            remote_status: None,
            summary: summary.into(),
            first_finding: None,
            findings: 0,
            duration_ms: 5,
            temp_dir: None,
            temp_dir_removed: None,
            commands: vec![],
            stderr: String::new(),
        }
    }

    fn report_with(hops: Vec<Hop>) -> Report {
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "status": "problem", "url": "http://shop/checkout", "host": "lb",
            "playbook": {"id": "502", "version": "1"},
            "started_at": "2026-12-03T00:00:00Z", "duration_ms": 1,
            "findings": [], "ruled_out": [], "path": [], "end": null,
            "recommended_actions": []
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        r.hops = hops;
        r
    }

    #[test]
    fn the_markdown_draws_the_path_through_the_hops() {
        let r = report_with(vec![
            hop("web2", "10.250.20.12", "lb", 1, "problem: upstream refuses"),
            hop("web3", "10.250.20.13", "lb", 1, "healthy"),
            hop(
                "app2",
                "10.250.30.5",
                "web2",
                2,
                "problem: php-fpm pool www saturated",
            ),
            hop(
                "10.250.20.14",
                "10.250.20.14",
                "lb",
                1,
                "ssh refused — sshd down",
            ),
        ]);
        assert_eq!(
            r.hop_paths(),
            [
                "lb → web3 (10.250.20.13) 10.250.20.13:80 (ssh) → healthy",
                "lb → web2 (10.250.20.12) 10.250.20.12:80 (ssh) → app2 (10.250.30.5) \
                 10.250.30.5:80 (ssh) → problem: php-fpm pool www saturated",
                "lb → 10.250.20.14 10.250.20.14:80 (ssh) → ssh refused — sshd down",
            ]
        );
        let md = r.to_markdown();
        let hops = md.split_once("## Hops").map(|(_, h)| h).unwrap_or_default();
        assert!(
            hops.contains(
                "\n\nPath: lb → web2 (10.250.20.12) 10.250.20.12:80 (ssh) → app2 (10.250.30.5) \
                 10.250.30.5:80 (ssh) → problem: php-fpm pool www saturated\n\n"
            ),
            "{md}"
        );
        // The path comes before the hop list, in the Hops section only.
        assert!(
            hops.find("Path: ") < hops.find("- on ").or(hops.find("- web2")),
            "{md}"
        );
        assert_eq!(md.matches("Path: ").count(), 3, "{md}");
    }

    #[test]
    fn no_hops_no_path() {
        let r = report_with(vec![]);
        assert!(r.hop_paths().is_empty());
        assert!(!r.to_markdown().contains("Path: "));
    }
}
