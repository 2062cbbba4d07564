//! Walk scenarios: small TOML files that say "given these check outcomes and
//! answers, the walk takes this path and finds these causes". They test a
//! playbook's logic without touching the host, and `triage502 playbook test`
//! runs them, so ops teams can test their own playbooks in their own CI.
//!
//! ```toml
//! playbook = "502"
//! name = "refused upstream"
//! vars = { url = "http://shop.example/" }
//!
//! # Steps are matched in order; a check node without a step answers `ok`.
//! [[step]]
//! at = "symptom"                      # the node the walk must be at
//! outcome = "problem"                 # every check of the node gets this outcome
//! facts = { "http.status" = "502" }   # facts the checks publish
//! diagnoses = ["upstream_refused"]    # causes the checks recognise
//! circumstantial = ["recent_change"]  # causes they could explain but do not show
//!
//! [[step]]
//! at = "cdn_question"
//! answer = "no"                       # question nodes; omitted = the default
//!
//! [expect]
//! end = "escalate"                    # resolved | escalate | none
//! status = "problem"
//! findings = ["upstream_refused"]     # ranked, exactly
//! ruled_out = ["frontend_down"]       # each must be among the exclusions
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::cause::{Cause, Severity};
use crate::check::{CheckReport, Diagnosis, Evidence, Exclusion, Outcome};
use crate::engine::{ActionResult, AnswerSource, Effect, Engine, Input};
use crate::playbook::library::Library;
use crate::report::{Report, Status};

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub playbook: String,
    pub name: String,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default, rename = "step")]
    pub steps: Vec<ScenarioStep>,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    pub at: String,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Outcomes per check, in order (instead of one `outcome` for all).
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
    #[serde(default)]
    pub facts: BTreeMap<String, String>,
    #[serde(default)]
    pub diagnoses: Vec<Cause>,
    /// Causes the checks see circumstantially (could explain the failure, do not show it).
    #[serde(default)]
    pub circumstantial: Vec<Cause>,
    #[serde(default)]
    pub excludes: Vec<Cause>,
    #[serde(default)]
    pub answer: Option<String>,
    /// For action nodes: `done`, `failed` or `declined`.
    #[serde(default)]
    pub action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `resolved`, `escalate` or `none` (cut short).
    pub end: String,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub findings: Option<Vec<Cause>>,
    #[serde(default)]
    pub ruled_out: Vec<Cause>,
    /// The node ids visited, in order (optional).
    #[serde(default)]
    pub path: Option<Vec<String>>,
    /// Actions that must have been offered (node ids).
    #[serde(default)]
    pub offered: Vec<String>,
}

fn fake_report(
    kind: &str,
    label: &str,
    outcome: Outcome,
    step: &ScenarioStep,
    first: bool,
) -> CheckReport {
    let mut r = CheckReport::new(
        kind,
        label,
        outcome,
        format!("scenario: {}", outcome.as_str()),
    );
    if first {
        r.facts = step.facts.clone();
        let direct = step
            .diagnoses
            .iter()
            .map(|c| (c, crate::check::Basis::Direct));
        let circumstantial = step
            .circumstantial
            .iter()
            .map(|c| (c, crate::check::Basis::Circumstantial));
        r.diagnoses = direct
            .chain(circumstantial)
            .map(|(c, basis)| Diagnosis {
                cause: *c,
                severity: Severity::High,
                summary: format!("scenario diagnosis {c}"),
                evidence: vec![Evidence::new("scenario", c.id())],
                basis,
            })
            .collect();
        r.excluded = step
            .excludes
            .iter()
            .map(|c| Exclusion {
                cause: *c,
                reason: "scenario".into(),
            })
            .collect();
    }
    r
}

/// Run one scenario; `Err` explains the first mismatch.
pub fn run(library: &Arc<Library>, sc: &Scenario) -> Result<Report, String> {
    let vars: BTreeMap<String, String> = sc.vars.clone();
    let mut engine =
        Engine::start(library.clone(), &sc.playbook, vars).map_err(|e| e.to_string())?;
    let mut steps = sc.steps.iter().peekable();
    let mut offered = Vec::new();
    for _ in 0..10_000 {
        let effect = engine.effect().clone();
        let node = match &effect {
            Effect::Done(_) => break,
            Effect::RunChecks { node, .. } | Effect::Ask { node, .. } | Effect::Inform { node } => {
                node.clone()
            }
            Effect::Offer(a) => a.node.clone(),
        };
        let step = match steps.peek() {
            Some(s) if s.at == node => steps.next(),
            _ => None,
        };
        let input = match (&effect, step) {
            (Effect::RunChecks { checks, .. }, Some(s)) => {
                let reports = checks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let o = s
                            .outcomes
                            .get(i)
                            .copied()
                            .or(s.outcome)
                            .unwrap_or(Outcome::Ok);
                        fake_report(c.kind, &c.label, o, s, i == 0)
                    })
                    .collect();
                Input::ChecksDone(reports)
            }
            (Effect::RunChecks { checks, .. }, None) => {
                // A check node the scenario does not mention answers `ok`
                // with no facts: scenarios list only what matters.
                let quiet = ScenarioStep {
                    at: node.clone(),
                    outcome: Some(Outcome::Ok),
                    outcomes: Vec::new(),
                    facts: BTreeMap::new(),
                    diagnoses: Vec::new(),
                    circumstantial: Vec::new(),
                    excludes: Vec::new(),
                    answer: None,
                    action: None,
                };
                Input::ChecksDone(
                    checks
                        .iter()
                        .map(|c| fake_report(c.kind, &c.label, Outcome::Ok, &quiet, false))
                        .collect(),
                )
            }
            (Effect::Ask { default, .. }, s) => match s.and_then(|s| s.answer.clone()) {
                Some(c) => Input::Answer {
                    choice: c,
                    by: AnswerSource::Operator,
                },
                None => Input::Answer {
                    choice: default.clone(),
                    by: AnswerSource::Default,
                },
            },
            (Effect::Inform { .. }, _) => Input::Continue,
            (Effect::Offer(a), s) => {
                offered.push(a.node.clone());
                match s.and_then(|s| s.action.as_deref()) {
                    Some("done") => Input::ActionDone(ActionResult {
                        argv: a.argv.clone(),
                        ok: true,
                        exit_code: Some(0),
                        output: String::new(),
                        summary: "scenario".into(),
                        duration_ms: 0,
                    }),
                    Some("failed") => Input::ActionDone(ActionResult {
                        argv: a.argv.clone(),
                        ok: false,
                        exit_code: Some(1),
                        output: String::new(),
                        summary: "scenario".into(),
                        duration_ms: 0,
                    }),
                    _ => Input::ActionDeclined {
                        reason: "scenario".into(),
                    },
                }
            }
            (Effect::Done(_), _) => break,
        };
        engine
            .step(input)
            .map_err(|e| format!("at `{node}`: {e}"))?;
    }
    if let Some(s) = steps.next() {
        return Err(format!(
            "the walk never reached `{}`; trail: {}",
            s.at,
            trail(&engine)
        ));
    }
    let report = Report::from_engine(
        &engine,
        sc.vars.get("url").cloned(),
        jiff::Timestamp::UNIX_EPOCH,
        0,
    );
    let end = match report.end {
        Some(crate::playbook::EndKind::Resolved) => "resolved",
        Some(crate::playbook::EndKind::Escalate) => "escalate",
        None => "none",
    };
    if end != sc.expect.end {
        return Err(format!(
            "ended `{end}`, expected `{}`; trail: {}",
            sc.expect.end,
            trail(&engine)
        ));
    }
    if let Some(st) = sc.expect.status {
        if st != report.status {
            return Err(format!("status {:?}, expected {st:?}", report.status));
        }
    }
    if let Some(f) = &sc.expect.findings {
        let got: Vec<Cause> = report.findings.iter().map(|f| f.cause).collect();
        if &got != f {
            return Err(format!(
                "findings {got:?}, expected {f:?}; trail: {}",
                trail(&engine)
            ));
        }
    }
    for c in &sc.expect.ruled_out {
        if !report.ruled_out.iter().any(|r| r.cause == *c) {
            return Err(format!(
                "`{c}` was not ruled out (ruled out: {:?})",
                report.ruled_out.iter().map(|r| r.cause).collect::<Vec<_>>()
            ));
        }
    }
    if let Some(p) = &sc.expect.path {
        let got: Vec<String> = engine.trail().iter().map(|s| s.node.clone()).collect();
        if &got != p {
            return Err(format!("path {got:?}, expected {p:?}"));
        }
    }
    for o in &sc.expect.offered {
        if !offered.contains(o) {
            return Err(format!(
                "action `{o}` was not offered (offered: {offered:?})"
            ));
        }
    }
    Ok(report)
}

fn trail(e: &Engine) -> String {
    e.trail()
        .iter()
        .map(|s| s.node.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Parse a scenario file's text.
pub fn parse(text: &str) -> Result<Scenario, String> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((0, 0), |s| {
            crate::playbook::diagnostic::line_col(text, s.start)
        });
        format!("{line}:{col}: {}", e.message())
    })
}
