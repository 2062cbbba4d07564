//! The support ticket: a complete account of a saved session for someone who
//! was not there, rendered from a journal (never from live state).
//!
//! [`Ticket::build`] replays the journal through the engine and gathers the
//! sections; [`render`] redacts every string (secrets always, IPs and host
//! names on request) and renders Markdown or plain text from a minijinja
//! template (embedded in `assets/`, overridable on the playbook search path),
//! or JSON. Invariant: nothing leaves this module unredacted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::cause::Cause;
use crate::check::{Evidence, Outcome};
use crate::engine::{Effect, Engine, Record, Step};
use crate::journal::{self, Event, Session};
use crate::playbook::library::Library;
use crate::playbook::{EndKind, NodeKind};
use crate::redact::Redactor;
use crate::report::{Status, one_line, shell_words};

/// The embedded Markdown template.
pub const MD_TEMPLATE: &str = include_str!("../assets/ticket.md.j2");
/// The embedded plain-text template.
pub const TXT_TEMPLATE: &str = include_str!("../assets/ticket.txt.j2");
/// Template files larger than this are refused.
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;
/// Action output kept in a ticket, per action.
pub const MAX_OUTPUT_CHARS: usize = 2_000;

/// `triage502 ticket`.
#[derive(Debug, Args)]
pub struct TicketArgs {
    /// Session id, unique prefix, or a journal file (default: the newest session).
    pub session: Option<String>,
    #[arg(long, value_enum, default_value = "md")]
    pub format: TicketFormat,
    /// Write the ticket here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace client IP addresses with consistent pseudonyms (ip-1, ...).
    #[arg(long)]
    pub redact_ips: bool,
    /// Replace host names with consistent pseudonyms (host-1, ...).
    #[arg(long)]
    pub redact_hosts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TicketFormat {
    Md,
    Json,
    Text,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub journal: String,
    pub playbook: String,
    pub playbook_version: String,
    pub started_at: String,
    pub last_event: String,
    /// `problem`, `healthy`, `inconclusive`, or `in progress`.
    pub status: String,
    /// `resolved`, `escalate`, or empty.
    pub end: String,
    pub resumed: usize,
    pub torn: bool,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub url: String,
    pub status_seen: String,
    /// `HH:MM UTC`.
    pub since: String,
    /// Where `since` comes from.
    pub since_source: String,
    /// `site-wide`, `page-specific` or `unknown (operator to confirm)`.
    pub scope: String,
    pub error_rate: String,
    /// Every `access.*` fact, as `name: value`.
    pub access: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub host: String,
    pub os: String,
    pub front_server: String,
    pub upstreams: Vec<String>,
    pub edge: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    /// `HH:MM:SS` UTC.
    pub at: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketFinding {
    pub cause: Cause,
    pub title: String,
    pub severity: String,
    pub summary: String,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
    pub fixes: Vec<String>,
    pub node: String,
    /// `direct` or `circumstantial`.
    pub basis: String,
    /// The remote host it was established on (a hop); none for this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A hop to an upstream's host (`run --hops`, or the wizard's).
#[derive(Debug, Clone, Serialize)]
pub struct TicketHop {
    /// "on web2: php-fpm pool www saturated", "web4 (10.0.0.14): ssh refused — ...".
    pub line: String,
    /// How it ran and what it left: "a copied static triage502; /tmp/... removed".
    pub detail: String,
}

/// Seen off the failing path, set aside.
#[derive(Debug, Clone, Serialize)]
pub struct TicketContext {
    pub seen: String,
    pub why: String,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketRuledOut {
    pub cause: Cause,
    pub title: String,
    pub reason: String,
    pub node: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    pub title: String,
    pub command: String,
    /// `done`, `failed`.
    pub result: String,
    pub summary: String,
    pub output: String,
    /// What the next checks showed afterwards (verify-after-fix).
    pub after: String,
    /// How to undo the change, when the playbook says.
    pub undo: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotRun {
    pub title: String,
    pub command: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub criterion: String,
    /// `yes`, `no`, `likely`, or `operator to confirm`.
    pub applies: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub at: String,
    pub node: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepLine {
    pub title: String,
    pub outcome: String,
    pub details: Vec<String>,
}

/// Everything the templates see (also the JSON format).
#[derive(Debug, Clone, Serialize)]
pub struct Ticket {
    pub summary: String,
    pub session: SessionInfo,
    pub impact: Impact,
    pub environment: Environment,
    pub timeline: Vec<TimelineItem>,
    pub recent_changes: Vec<String>,
    pub steps: Vec<StepLine>,
    pub findings: Vec<TicketFinding>,
    /// Whether any finding rests on direct evidence of the failing hop.
    pub direct_evidence: bool,
    /// What the walk could not look at, why, and what would let it.
    pub unseen: Vec<crate::check::Unseen>,
    pub ruled_out: Vec<TicketRuledOut>,
    /// Seen off the failing path and set aside (never findings).
    pub context: Vec<TicketContext>,
    pub tried: Vec<Tried>,
    pub not_run: Vec<NotRun>,
    pub recovery: String,
    pub escalation: Vec<Criterion>,
    pub asks: Vec<String>,
    pub notes: Vec<Note>,
    pub attachment: String,
    /// Hops to the upstreams' hosts over ssh.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<TicketHop>,
}

fn hhmm(ts: &str, secs: bool) -> String {
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => t
            .strftime(if secs { "%H:%M:%S" } else { "%H:%M UTC" })
            .to_string(),
        Err(_) => ts.to_owned(),
    }
}

fn outcome_of(s: &Step) -> String {
    match &s.record {
        Record::Checks { outcome, .. } => outcome.as_str().to_owned(),
        Record::Answer { label, by, .. } => {
            let by = match by {
                crate::engine::AnswerSource::Operator => "operator",
                crate::engine::AnswerSource::Flag => "--answer",
                crate::engine::AnswerSource::Default => "default, nobody answered",
            };
            format!("{label} ({by})")
        }
        Record::Read => "read".into(),
        Record::Routed { rule } => format!("routed: {rule}"),
        Record::Action {
            result: Some(r), ..
        } => format!("{}: {}", if r.ok { "done" } else { "failed" }, r.summary),
        Record::Action { declined, .. } => {
            format!("not run: {}", declined.as_deref().unwrap_or("declined"))
        }
        Record::Call { playbook } => format!("playbook {playbook}"),
        Record::Return { end } | Record::End { end } => end_str(Some(*end)).to_owned(),
        Record::LoopLimit => "stopped: loop limit".into(),
    }
}

fn end_str(e: Option<EndKind>) -> &'static str {
    match e {
        Some(EndKind::Resolved) => "resolved",
        Some(EndKind::Escalate) => "escalate",
        None => "",
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Problem => "problem",
        Status::Healthy => "healthy",
        Status::Inconclusive => "inconclusive",
    }
}

fn describe_step(s: &Step) -> String {
    let mut what = format!("{}: {}", s.title, outcome_of(s));
    if let Record::Checks { reports, .. } = &s.record {
        let parts: Vec<String> = reports.iter().map(|r| one_line(&r.summary)).collect();
        if !parts.is_empty() {
            let _ = write!(what, " ({})", parts.join("; "));
        }
    }
    if let Record::Action { argv, .. } = &s.record {
        let _ = write!(what, " [`{}`]", shell_words(argv));
    }
    what
}

fn answer_at<'a>(engine: &'a Engine, node: &str) -> Option<&'a str> {
    engine.trail().iter().rev().find_map(|s| match &s.record {
        Record::Answer { choice, .. } if s.node == node => Some(choice.as_str()),
        _ => None,
    })
}

impl Ticket {
    /// Build the ticket of a saved session with the playbooks of `library`.
    pub fn build(session: &Session, library: &Arc<Library>) -> anyhow::Result<Ticket> {
        let meta = &session.meta;
        let mut engine =
            Engine::start(library.clone(), &meta.playbook, meta.initial_values.clone())
                .with_context(|| format!("cannot replay session {}", meta.id))?;
        let mut timeline = vec![TimelineItem {
            at: hhmm(&meta.started_at, true),
            what: format!(
                "session started on {} ({} v{}){}",
                meta.host,
                meta.playbook,
                meta.playbook_version,
                if meta.read_only { ", read-only" } else { "" }
            ),
        }];
        let mut notes = Vec::new();
        let mut resumed = 0;
        let mut hops = Vec::new();
        let mut remote_findings = Vec::new();
        for e in &session.events {
            let at = hhmm(&e.at, true);
            match &e.event {
                Event::Start(_) => {}
                Event::Input(i) => {
                    let before = engine.trail().len();
                    engine
                        .step(i.clone())
                        .with_context(|| format!("cannot replay session {}", meta.id))?;
                    for s in &engine.trail()[before..] {
                        if matches!(s.record, Record::Routed { .. }) {
                            continue;
                        }
                        timeline.push(TimelineItem {
                            at: at.clone(),
                            what: describe_step(s),
                        });
                    }
                }
                Event::Back { reason } => {
                    engine.back().context("cannot replay a back step")?;
                    timeline.push(TimelineItem {
                        at,
                        what: format!(
                            "went back one step{}",
                            reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        ),
                    });
                }
                Event::Note { text, node } => {
                    notes.push(Note {
                        at: at.clone(),
                        node: node.clone().unwrap_or_default(),
                        text: text.clone(),
                    });
                    timeline.push(TimelineItem {
                        at,
                        what: format!("note: {}", one_line(text)),
                    });
                }
                Event::Hop { hop, findings } => {
                    timeline.push(TimelineItem {
                        at,
                        what: format!("hop over ssh: {}", hop.line()),
                    });
                    let mut detail = match hop.ran {
                        crate::hop::Ran::Installed => "the installed triage502".to_owned(),
                        crate::hop::Ran::Copied => "a copied static triage502".to_owned(),
                        crate::hop::Ran::NotRun => "nothing ran there".to_owned(),
                    };
                    if let Some(d) = &hop.temp_dir {
                        let gone = if hop.temp_dir_removed == Some(true) {
                            "removed"
                        } else {
                            "NOT removed"
                        };
                        let _ = write!(detail, "; {d} {gone}");
                    }
                    hops.push(TicketHop {
                        line: hop.line(),
                        detail,
                    });
                    remote_findings.extend(findings.iter().cloned());
                }
                Event::Resumed { .. } => {
                    resumed += 1;
                    timeline.push(TimelineItem {
                        at,
                        what: "session resumed".into(),
                    });
                }
                Event::End { status, end } => timeline.push(TimelineItem {
                    at,
                    what: format!("walk ended: {} {}", status_str(*status), end_str(*end))
                        .trim_end()
                        .to_owned(),
                }),
            }
        }
        let values = engine.values().clone();
        let fact = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
        let mut all = engine.findings().to_vec();
        all.extend(remote_findings);
        let findings: Vec<TicketFinding> = crate::report::rank(&all)
            .into_iter()
            .map(|f| {
                let info = f.cause.info();
                TicketFinding {
                    cause: f.cause,
                    title: info.title.clone(),
                    severity: f.severity.to_string(),
                    summary: f.summary.clone(),
                    explanation: info.explanation.trim().to_owned(),
                    evidence: f.evidence.clone(),
                    fixes: info.fixes.clone(),
                    node: f.node.clone(),
                    basis: f.basis.as_str().to_owned(),
                    host: f.host.clone(),
                }
            })
            .collect();
        let direct_evidence = all.iter().any(|f| f.basis.is_direct());
        let context = engine
            .context()
            .iter()
            .map(|c| TicketContext {
                seen: c.aside.seen.clone(),
                why: c.aside.why.clone(),
                source: c.aside.source.clone(),
            })
            .collect();
        let ruled_out = engine
            .ruled_out()
            .into_iter()
            .map(|r| TicketRuledOut {
                cause: r.cause,
                title: r.cause.info().title.clone(),
                reason: r.reason,
                node: r.node,
            })
            .collect();

        // What was tried, and what the next checks showed.
        let trail = engine.trail();
        let mut tried = Vec::new();
        let mut not_run = Vec::new();
        for (i, s) in trail.iter().enumerate() {
            let Record::Action {
                argv,
                result,
                declined,
                ..
            } = &s.record
            else {
                continue;
            };
            if let Some(r) = result {
                let after = trail[i + 1..]
                    .iter()
                    .find(|x| matches!(x.record, Record::Checks { .. }))
                    .map_or_else(
                        || "no check ran afterwards".into(),
                        |x| format!("then {}", describe_step(x)),
                    );
                let undo = library
                    .get(&s.playbook)
                    .and_then(|p| p.node(&s.node))
                    .and_then(|n| match &n.kind {
                        NodeKind::Action { undo, .. } => undo.clone(),
                        _ => None,
                    });
                let mut output: String = r.output.chars().take(MAX_OUTPUT_CHARS).collect();
                if r.output.chars().count() > MAX_OUTPUT_CHARS {
                    output.push_str("\n[… cut]");
                }
                tried.push(Tried {
                    title: s.title.clone(),
                    command: shell_words(&r.argv),
                    result: if r.ok { "done" } else { "failed" }.into(),
                    summary: r.summary.clone(),
                    output,
                    after,
                    undo: if r.ok {
                        undo.map(|u| format!("to undo: {u}")).unwrap_or_default()
                    } else {
                        String::new()
                    },
                });
            } else {
                not_run.push(NotRun {
                    title: s.title.clone(),
                    command: shell_words(argv),
                    reason: declined.clone().unwrap_or_default(),
                });
            }
        }

        let (end, done) = match engine.effect() {
            Effect::Done(c) => (c.end, true),
            _ => (None, false),
        };
        let status = crate::report::status(&engine);
        let recovery = recovery(trail, &tried, end, done);

        // Impact.
        let url = meta.url.clone().unwrap_or_else(|| "(no URL)".into());
        let access: Vec<String> = values
            .iter()
            .filter(|(k, v)| k.starts_with("access.") && !v.is_empty())
            .map(|(k, v)| format!("{k}: {}", one_line(v)))
            .collect();
        let onset = values.iter().find_map(|(k, v)| {
            (k.starts_with("access.") || k.starts_with("logs.") || k.starts_with("log."))
                .then_some(())
                .filter(|()| ["first", "onset", "since"].iter().any(|w| k.contains(w)))
                .and_then(|()| v.parse::<jiff::Timestamp>().ok().map(|t| (k.clone(), t)))
        });
        let (since, since_source) = match onset {
            Some((k, t)) => (
                t.strftime("%H:%M UTC").to_string(),
                format!("first error in the logs ({k})"),
            ),
            None => (
                hhmm(&meta.started_at, false),
                "when this session started; the onset was not found in the logs, operator to confirm"
                    .into(),
            ),
        };
        let error_rate = values
            .iter()
            .find(|(k, v)| {
                k.starts_with("access.")
                    && !v.is_empty()
                    && (k.contains("rate") || k.contains("per_min"))
            })
            .map_or_else(
                || "unknown (no access-log figures in this session)".into(),
                |(k, v)| format!("{v} per minute ({k})"),
            );
        let probed = fact("pages.scope").filter(|s| s != "none").map(|s| {
            let pages = fact("pages.failing")
                .unwrap_or_default()
                .replace('\n', ", ");
            if pages.is_empty() {
                format!("{s} (probed)")
            } else {
                format!("{s} (probed; failing: {pages})")
            }
        });
        let scope = match (
            fact("access.scope").or(probed),
            answer_at(&engine, "pages_question"),
        ) {
            (Some(s), _) => s,
            (None, Some("some")) => "page-specific (operator: other pages work)".into(),
            (None, Some("none")) => "site-wide (operator: every page fails)".into(),
            _ => "unknown (operator to confirm)".into(),
        };
        // What was seen first (facts are overwritten by later checks, e.g. verify-after-fix).
        let first_fact = |k: &str| {
            trail.iter().find_map(|s| match &s.record {
                Record::Checks { reports, .. } => reports
                    .iter()
                    .find_map(|r| r.facts.get(k).filter(|v| !v.is_empty()).cloned()),
                _ => None,
            })
        };
        let status_seen = first_fact("http.status")
            .map(|s| format!("HTTP {s}"))
            .or_else(|| first_fact("http.error").map(|e| format!("no answer ({e})")))
            .unwrap_or_else(|| "not observed".into());
        let code = first_fact("http.status")
            .filter(|s| s.starts_with('5'))
            .unwrap_or_else(|| "502".into());

        // Environment.
        let front_server = match (fact("front.server"), fact("front.version")) {
            (Some(s), Some(v)) if !s.contains(&v) => format!("{s} {v}"),
            (Some(s), _) => s,
            (None, _) => fact("http.server").map_or_else(
                || "unknown".into(),
                |s| format!("{s} (from the Server header)"),
            ),
        };
        let mut upstreams: Vec<String> = values
            .iter()
            .filter(|(k, _)| {
                (k.as_str() == "upstream"
                    || k.starts_with("upstream.")
                    || k.starts_with("upstreams"))
                    && !matches!(k.rsplit('.').next(), Some("host" | "port"))
            })
            .flat_map(|(k, v)| v.lines().take(20).map(move |l| format!("{l} ({k})")))
            .filter(|l| !l.starts_with(" ("))
            .collect();
        upstreams.dedup();
        let edge_facts: Vec<String> = values
            .iter()
            .filter(|(k, v)| (k.starts_with("edge.") || k.starts_with("cdn.")) && !v.is_empty())
            .map(|(k, v)| format!("{k}: {}", one_line(v)))
            .collect();
        let edge = if edge_facts.is_empty() {
            match answer_at(&engine, "who") {
                Some("yes") => "a CDN or load balancer is in front (operator)".into(),
                Some("no") => "none: clients reach this server directly (operator)".into(),
                _ => "unknown (operator to confirm)".into(),
            }
        } else {
            edge_facts.join("; ")
        };

        let mut recent_changes: Vec<String> = findings
            .iter()
            .filter(|f| f.cause == Cause::RecentChange)
            .map(|f| f.summary.clone())
            .collect();
        match answer_at(&engine, "changes") {
            Some("yes") => recent_changes
                .push("the operator reports a change shortly before the errors began".into()),
            Some("no") => recent_changes.push("the operator knows of no recent change".into()),
            _ => {}
        }

        let primary = findings.first();
        let summary = match (primary, status) {
            (Some(f), _) => format!("{code} on {url} since {since}: {}", f.title),
            (None, Status::Healthy) => {
                format!(
                    "{code} reported on {url} since {since}: no fault found, the site answers normally now"
                )
            }
            (None, _) => {
                format!("{code} on {url} since {since}: cause not established (see ruled out)")
            }
        };
        let escalation = escalation(
            &findings,
            &tried,
            end,
            trail.len(),
            &recent_changes,
            &values,
        );
        let asks = asks(
            &findings,
            &meta.host,
            &since,
            &front_server,
            &edge,
            &escalation,
            end == Some(EndKind::Resolved),
        );
        let steps = trail
            .iter()
            .filter(|s| !matches!(s.record, Record::Routed { .. }))
            .map(|s| StepLine {
                title: s.title.clone(),
                outcome: outcome_of(s),
                details: match &s.record {
                    Record::Checks { reports, .. } => reports
                        .iter()
                        .map(|r| {
                            format!(
                                "{} {}: {}",
                                r.outcome.as_str(),
                                r.label,
                                one_line(&r.summary)
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                },
            })
            .collect();
        Ok(Ticket {
            summary,
            session: SessionInfo {
                id: meta.id.clone(),
                journal: session.path.display().to_string(),
                playbook: meta.playbook.clone(),
                playbook_version: meta.playbook_version.clone(),
                started_at: meta.started_at.clone(),
                last_event: session.last_at(),
                status: if done {
                    status_str(status).to_owned()
                } else {
                    "in progress".into()
                },
                end: end_str(end).to_owned(),
                resumed,
                torn: session.torn,
                read_only: meta.read_only,
            },
            impact: Impact {
                url,
                status_seen,
                since,
                since_source,
                scope,
                error_rate,
                access,
            },
            environment: Environment {
                host: meta.host.clone(),
                os: meta.os.clone().unwrap_or_else(|| "unknown".into()),
                front_server,
                upstreams,
                edge,
            },
            timeline,
            recent_changes,
            steps,
            findings,
            direct_evidence,
            unseen: crate::report::unseen(&engine),
            ruled_out,
            context,
            tried,
            not_run,
            recovery,
            escalation,
            asks,
            notes,
            attachment: session.path.display().to_string(),
            hops,
        })
    }
}

fn recovery(trail: &[Step], tried: &[Tried], end: Option<EndKind>, done: bool) -> String {
    let last_check = trail.iter().rev().find_map(|s| match &s.record {
        Record::Checks { outcome, .. } => Some((s.title.clone(), *outcome)),
        _ => None,
    });
    let fixed_by = tried
        .iter()
        .find(|t| t.result == "done" && t.after.contains(": ok"));
    match (end, fixed_by, last_check) {
        (_, Some(t), _) => format!("recovered after `{}` ({}): {}", t.command, t.title, t.after),
        (Some(EndKind::Resolved), None, _) => "the walk ended resolved".into(),
        (_, None, Some((title, Outcome::Problem))) => {
            format!("not recovered: the last check ({title}) still shows the problem")
        }
        _ if !done => "the session is still in progress".into(),
        _ => "not recovered (no fix was confirmed)".into(),
    }
}

fn crit(criterion: &str, applies: &str, why: impl Into<String>) -> Criterion {
    Criterion {
        criterion: criterion.into(),
        applies: applies.into(),
        why: why.into(),
    }
}

fn escalation(
    findings: &[TicketFinding],
    tried: &[Tried],
    end: Option<EndKind>,
    steps: usize,
    changes: &[String],
    values: &BTreeMap<String, String>,
) -> Vec<Criterion> {
    const CONFIRM: &str = "operator to confirm";
    let mut v = Vec::new();
    v.push(match end {
        Some(EndKind::Escalate) => crit(
            "Errors persist after the basic steps",
            "yes",
            format!(
                "the walk went through {steps} steps{} and ended at escalate",
                if tried.is_empty() {
                    String::new()
                } else {
                    format!(" and {} action(s)", tried.len())
                }
            ),
        ),
        Some(EndKind::Resolved) => crit(
            "Errors persist after the basic steps",
            "no",
            "the walk ended resolved",
        ),
        None => crit(
            "Errors persist after the basic steps",
            CONFIRM,
            "the walk has not ended",
        ),
    });
    let from_logs: Vec<&str> = findings
        .iter()
        .filter(|f| {
            f.evidence.iter().any(|e| {
                e.label.to_ascii_lowercase().contains("log")
                    || e.source.as_deref().is_some_and(|s| s.contains(".log"))
            })
        })
        .map(|f| f.title.as_str())
        .collect();
    v.push(if from_logs.is_empty() {
        crit(
            "The logs point at the server",
            CONFIRM,
            "no finding in this session is backed by a log line",
        )
    } else {
        crit(
            "The logs point at the server",
            "yes",
            format!("log lines prove: {}", from_logs.join(", ")),
        )
    });
    let load = findings.iter().find(|f| {
        matches!(
            f.cause,
            Cause::UpstreamOverloaded | Cause::ResourceExhaustion | Cause::UpstreamTimeout
        )
    });
    v.push(match load {
        Some(f) => crit(
            "Recurring at peak traffic",
            "likely",
            format!(
                "{} was found; {CONFIRM} that it recurs at peak times",
                f.title
            ),
        ),
        None => crit(
            "Recurring at peak traffic",
            CONFIRM,
            "not measurable from one session",
        ),
    });
    let access: Vec<String> = values
        .iter()
        .filter(|(k, v)| k.starts_with("access.") && !v.is_empty())
        .map(|(k, v)| format!("{k} = {}", one_line(v)))
        .take(3)
        .collect();
    v.push(crit(
        "DDoS or traffic growth beyond the plan",
        CONFIRM,
        if access.is_empty() {
            "no access-log figures in this session".to_owned()
        } else {
            format!("access log: {}", access.join(", "))
        },
    ));
    let change = findings.iter().find(|f| f.cause == Cause::RecentChange);
    v.push(
        match (
            change,
            changes.iter().any(|c| c.contains("reports a change")),
        ) {
            (Some(f), _) => crit(
                "A platform change (e.g. a PHP upgrade)",
                "yes",
                format!("recent change found: {}", f.summary),
            ),
            (None, true) => crit(
                "A platform change (e.g. a PHP upgrade)",
                CONFIRM,
                "the operator reports a recent change; confirm whether it was a platform change",
            ),
            (None, false) => crit(
                "A platform change (e.g. a PHP upgrade)",
                CONFIRM,
                "no change was found",
            ),
        },
    );
    v.push(crit(
        "Several sites affected",
        CONFIRM,
        "this session looked at one URL",
    ));
    v.push(match change {
        Some(_) => crit(
            "A recent migration",
            CONFIRM,
            "a recent change was found; confirm whether it was a migration",
        ),
        None => crit("A recent migration", CONFIRM, "not visible from this host"),
    });
    v
}

fn asks(
    findings: &[TicketFinding],
    host: &str,
    since: &str,
    front: &str,
    edge: &str,
    criteria: &[Criterion],
    resolved: bool,
) -> Vec<String> {
    let mut v = Vec::new();
    if let (true, Some(f)) = (resolved, findings.first()) {
        v.push(format!(
            "The errors stopped during this session; please review the root cause on {host} to prevent a recurrence: {} ({}).",
            f.title, f.summary
        ));
    } else if let Some(f) = findings.first() {
        v.push(format!(
            "Please confirm and fix the primary cause on {host}: {} ({}).",
            f.title, f.summary
        ));
        if let Some(fix) = f.fixes.first() {
            v.push(format!("The documented remedy is: {fix}"));
        }
    } else {
        v.push(format!(
            "We could not establish a cause on {host}; please investigate the upstream behind {front} using the ruled-out list below as a starting point."
        ));
    }
    v.push(format!(
        "Please check the web server and upstream service logs on your side for the period since {since}."
    ));
    if edge.contains("CDN") || edge.starts_with("edge.") || edge.starts_with("cdn.") {
        v.push(
            "Please check the CDN / load balancer logs for this host and its origin health checks."
                .into(),
        );
    }
    let yes: Vec<&str> = criteria
        .iter()
        .filter(|c| c.applies == "yes" || c.applies == "likely")
        .map(|c| c.criterion.as_str())
        .collect();
    if !yes.is_empty() {
        v.push(format!(
            "Escalation criteria met: {}; please escalate accordingly.",
            yes.join("; ")
        ));
    }
    v
}

/// Where a team's template override may live, in search order.
pub fn template_candidates(file: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in crate::playbook::library::search_dirs() {
        out.push(d.join(file));
        if d.ends_with("triage502/playbooks") {
            if let Some(parent) = d.parent() {
                out.push(parent.join(file));
            }
        }
    }
    out
}

/// The template for `format`: the first override found, else the embedded one.
pub fn template_source(format: TicketFormat) -> anyhow::Result<(String, String)> {
    let (file, embedded) = match format {
        TicketFormat::Md | TicketFormat::Json => ("ticket.md.j2", MD_TEMPLATE),
        TicketFormat::Text => ("ticket.txt.j2", TXT_TEMPLATE),
    };
    for p in template_candidates(file) {
        if let Ok(md) = std::fs::metadata(&p) {
            if md.len() > MAX_TEMPLATE_BYTES {
                anyhow::bail!(
                    "{}: template larger than {MAX_TEMPLATE_BYTES} bytes",
                    p.display()
                );
            }
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            return Ok((p.display().to_string(), text));
        }
    }
    Ok((format!("embedded:{file}"), embedded.to_owned()))
}

/// Render a template over a (redacted) ticket value.
pub fn render_template(
    name: &str,
    source: &str,
    ctx: &serde_json::Value,
) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| anyhow::anyhow!("template syntax settings: {e}"))?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("oneline", |s: String| one_line(&s));
    env.add_filter("code", |s: String| code_span(&s));
    env.add_filter("fenced", |s: String| {
        let fence = "`".repeat(3.max(longest_backtick_run(&s) + 1));
        format!("{fence}\n{s}\n{fence}")
    });
    env.add_filter("indent_lines", |s: String, prefix: String| {
        s.lines()
            .map(|l| format!("{prefix}{l}"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let place = |e: &minijinja::Error| match e.line() {
        Some(l) => format!("{name}:{l}"),
        None => name.to_owned(),
    };
    env.add_template_owned(name.to_owned(), source.to_owned())
        .map_err(|e| anyhow::anyhow!("{}: template error: {e}", place(&e)))?;
    let t = env
        .get_template(name)
        .map_err(|e| anyhow::anyhow!("{}: {e}", place(&e)))?;
    t.render(to_template_value(ctx))
        .map_err(|e| anyhow::anyhow!("{}: template error: {e}", place(&e)))
}

fn longest_backtick_run(s: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A Markdown code span that survives backticks in its text.
pub fn code_span(s: &str) -> String {
    let longest = longest_backtick_run(s);
    if longest == 0 {
        format!("`{s}`")
    } else {
        let fence = "`".repeat(longest + 1);
        format!("{fence} {s} {fence}")
    }
}

/// A JSON value as a template value (minijinja is built without its serde feature).
fn to_template_value(v: &serde_json::Value) -> minijinja::Value {
    use minijinja::Value as V;
    match v {
        serde_json::Value::Null => V::from(()),
        serde_json::Value::Bool(b) => V::from(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(V::from)
            .or_else(|| n.as_f64().map(V::from))
            .unwrap_or_else(|| V::from(n.to_string())),
        serde_json::Value::String(s) => V::from(s.as_str()),
        serde_json::Value::Array(a) => V::from(a.iter().map(to_template_value).collect::<Vec<_>>()),
        serde_json::Value::Object(o) => V::from(
            o.iter()
                .map(|(k, x)| (k.clone(), to_template_value(x)))
                .collect::<BTreeMap<String, V>>(),
        ),
    }
}

/// The rendered ticket plus what redaction did.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    pub masked: Vec<crate::redact::Masked>,
    /// Where the pseudonym mapping was saved, if pseudonyms were used.
    pub mapping: Option<PathBuf>,
}

/// Redact and render a ticket. `mapping` is where pseudonyms are kept
/// (loaded first, so names stay consistent across renders).
pub fn render(
    ticket: &Ticket,
    format: TicketFormat,
    redactor: &mut Redactor,
) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(ticket)?;
    redactor.value(&mut v, "");
    let text = match format {
        TicketFormat::Json => serde_json::to_string_pretty(&v)? + "\n",
        TicketFormat::Md | TicketFormat::Text => {
            let (name, source) = template_source(format)?;
            render_template(&name, &source, &v)?
        }
    };
    // A second pass over the whole output: a team template cannot reintroduce a secret.
    Ok(crate::redact::text(&text))
}

/// A redactor for a session: known host names and the saved pseudonyms.
pub fn redactor_for(session: &Session, ips: bool, hosts: bool) -> (Redactor, PathBuf) {
    let mapping = session
        .path
        .with_file_name(format!("{}.pseudonyms.json", session.meta.id));
    let mut r = Redactor::new(ips, hosts);
    r.pseudonyms = crate::redact::Pseudonyms::load(&mapping);
    r.known_hosts.push(session.meta.host.clone());
    if let Some(h) = session
        .meta
        .url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        r.known_hosts.push(h);
    }
    (r, mapping)
}

/// Load a session's playbooks (with the file it was started from, if any).
pub fn library_for(session: &Session) -> anyhow::Result<Arc<Library>> {
    let extra: Vec<PathBuf> = session
        .meta
        .playbook_file
        .iter()
        .filter(|p| p.is_file())
        .cloned()
        .collect();
    let (lib, _) = Library::standard(&extra).map_err(|e| anyhow::anyhow!(e))?;
    if lib.get(&session.meta.playbook).is_none() {
        anyhow::bail!(
            "playbook `{}` of session {} is not on the search path any more",
            session.meta.playbook,
            session.meta.id
        );
    }
    Ok(Arc::new(lib))
}

/// Build, redact and render the ticket of the journal at `path`.
pub fn render_session(
    path: &Path,
    format: TicketFormat,
    ips: bool,
    hosts: bool,
) -> anyhow::Result<Rendered> {
    let session = journal::load(path)?;
    let lib = library_for(&session)?;
    let ticket = Ticket::build(&session, &lib)?;
    let (mut r, mapping) = redactor_for(&session, ips, hosts);
    let text = render(&ticket, format, &mut r)?;
    let mapping = if (ips || hosts) && !r.pseudonyms.map.is_empty() {
        r.pseudonyms
            .save(&mapping)
            .with_context(|| format!("cannot save the pseudonym mapping {}", mapping.display()))?;
        Some(mapping)
    } else {
        None
    };
    Ok(Rendered {
        text,
        masked: r.masked,
        mapping,
    })
}

/// `triage502 ticket`.
pub fn ticket_command(args: &TicketArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let given = args.session.as_deref().map(Path::new);
    let path = match given {
        // A journal file copied from another machine.
        Some(p) if p.extension().is_some_and(|e| e == "jsonl") && p.is_file() => p.to_owned(),
        _ => journal::find(args.session.as_deref())
            .map_err(|e| crate::cli::UsageError(e.to_string()))?,
    };
    let r = render_session(&path, args.format, args.redact_ips, args.redact_hosts)?;
    match &args.output {
        Some(p) => {
            std::fs::write(p, &r.text).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("ticket written to {}", p.display());
        }
        None => out.write_all(r.text.as_bytes())?,
    }
    if !r.masked.is_empty() {
        eprintln!("redacted {} item(s) before export", r.masked.len());
    }
    if let Some(m) = &r.mapping {
        eprintln!("pseudonym mapping (keep private): {}", m.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `triage502 sessions`.
pub fn sessions_command(out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let all = journal::list();
    if all.is_empty() {
        let dir = journal::sessions_dir()?;
        writeln!(out, "no saved sessions in {}", dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<24} {:<20} {:<20} {:<22} URL",
        "ID", "STARTED", "LAST EVENT", "STATUS"
    )?;
    let short = |t: &str| {
        t.parse::<jiff::Timestamp>().map_or_else(
            |_| t.to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
    };
    for s in all {
        writeln!(
            out,
            "{:<24} {:<20} {:<20} {:<22} {}",
            s.id,
            short(&s.started),
            short(&s.last_event),
            s.status,
            crate::redact::text(s.url.as_deref().unwrap_or("-"))
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
