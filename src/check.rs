//! What a check is: typed parameters in, data out.
//!
//! A check never changes anything on the host. It returns a [`CheckReport`]
//! whose outcome is an *answer* ("the upstream refused the connection" is a
//! `problem`), not a Rust error; only a check that could not look at all is
//! `inconclusive`, with the reason and the remedy. Each kind lives in its own
//! file under `checks/`; this module is the one place that lists them.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::checks;

/// The verdict of one check (or of a node's checks together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Looked, and found nothing wrong.
    Ok,
    /// Looked, and found the fault the check is about.
    Problem,
    /// Could not tell (no permission, tool missing, value unknown, timed out).
    Inconclusive,
}

impl Outcome {
    /// The outcome of several checks run together: any problem wins, then
    /// any inconclusive; all ok is ok. No checks at all is ok.
    pub fn combine(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        outcomes
            .into_iter()
            .fold(Outcome::Ok, |acc, o| match (acc, o) {
                (Outcome::Problem, _) | (_, Outcome::Problem) => Outcome::Problem,
                (Outcome::Inconclusive, _) | (_, Outcome::Inconclusive) => Outcome::Inconclusive,
                _ => Outcome::Ok,
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Problem => "problem",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// One piece of proof: a log line, a probe result, a config line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What this is, e.g. "response", "error log line", "listener".
    pub label: String,
    /// The observed text, quoted as it was seen (redacted where needed).
    pub text: String,
    /// Where it came from: `file:line`, a URL, a command, `/proc/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Evidence {
    pub fn new(label: impl Into<String>, text: impl Into<String>) -> Self {
        Evidence {
            label: label.into(),
            text: text.into(),
            source: None,
        }
    }

    #[must_use]
    pub fn at(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// A cause the check itself recognised in what it saw (a classified log
/// line, a refused connection, an edge error page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnosis {
    pub cause: Cause,
    pub severity: Severity,
    pub summary: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

/// A cause the check looked for and can exclude, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exclusion {
    pub cause: Cause,
    pub reason: String,
}

/// Everything one check run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckReport {
    /// The check kind, e.g. `http`.
    pub kind: String,
    /// What was checked, e.g. `GET http://127.0.0.1:8080/`.
    pub label: String,
    pub outcome: Outcome,
    /// One line an operator understands.
    pub summary: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Values for later nodes (`upstream`, `error_logs`, `worker_user`, ...).
    #[serde(default)]
    pub facts: BTreeMap<String, String>,
    #[serde(default)]
    pub diagnoses: Vec<Diagnosis>,
    #[serde(default)]
    pub excluded: Vec<Exclusion>,
    pub duration_ms: u64,
}

impl CheckReport {
    /// A report with no evidence yet; checks fill in the rest.
    pub fn new(
        kind: &str,
        label: impl Into<String>,
        outcome: Outcome,
        summary: impl Into<String>,
    ) -> Self {
        CheckReport {
            kind: kind.to_owned(),
            label: label.into(),
            outcome,
            summary: summary.into(),
            evidence: Vec::new(),
            facts: BTreeMap::new(),
            diagnoses: Vec::new(),
            excluded: Vec::new(),
            duration_ms: 0,
        }
    }

    #[must_use]
    pub fn with_evidence(mut self, e: Evidence) -> Self {
        self.evidence.push(e);
        self
    }

    #[must_use]
    pub fn with_fact(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.facts.insert(k.into(), v.into());
        self
    }

    #[must_use]
    pub fn diagnose(
        mut self,
        cause: Cause,
        severity: Severity,
        summary: impl Into<String>,
        evidence: Vec<Evidence>,
    ) -> Self {
        self.diagnoses.push(Diagnosis {
            cause,
            severity,
            summary: summary.into(),
            evidence,
        });
        self
    }

    #[must_use]
    pub fn exclude(mut self, cause: Cause, reason: impl Into<String>) -> Self {
        self.excluded.push(Exclusion {
            cause,
            reason: reason.into(),
        });
        self
    }
}

/// What a check may use besides its own parameters.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The incident window: log checks look at `[from, to]`.
    pub window_from: jiff::Timestamp,
    pub window_to: jiff::Timestamp,
}

impl CheckContext {
    /// A window ending now and reaching back `since`.
    pub fn last(since: Duration) -> Self {
        let now = jiff::Timestamp::now();
        let back =
            jiff::SignedDuration::try_from(since).unwrap_or(jiff::SignedDuration::from_hours(1));
        CheckContext {
            window_from: now.checked_sub(back).unwrap_or(now),
            window_to: now,
        }
    }
}

/// Static documentation of a check kind, for `checks list` and validation.
#[derive(Debug, Clone, Copy)]
pub struct KindDoc {
    pub kind: &'static str,
    pub summary: &'static str,
    /// A TOML example of the kind inside a node's `checks` list.
    pub example: &'static str,
    /// Facts the kind may publish for later nodes' templates.
    pub facts: &'static [&'static str],
}

/// A check as written in a playbook: the kind is the key, the table its params
/// (`{ http = { url = "{{ url }}" } }`). Unknown kinds and params are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckSpec {
    Http(checks::http::Params),
    Tcp(checks::tcp::Params),
    LogScan(checks::log_scan::Params),
    AccessLog(checks::access_log::Params),
}

/// Documentation of every kind, in the order `checks list` prints them.
pub const KINDS: &[KindDoc] = &[
    checks::http::DOC,
    checks::tcp::DOC,
    checks::log_scan::DOC,
    checks::access_log::DOC,
];

/// Upper bound on any check's own timeout: a check never holds the operator longer.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => checks::http::DOC.kind,
            CheckSpec::Tcp(_) => checks::tcp::DOC.kind,
            CheckSpec::LogScan(_) => checks::log_scan::DOC.kind,
            CheckSpec::AccessLog(_) => checks::access_log::DOC.kind,
        }
    }

    /// A short description of what this instance checks.
    pub fn label(&self) -> String {
        match self {
            CheckSpec::Http(p) => p.label(),
            CheckSpec::Tcp(p) => p.label(),
            CheckSpec::LogScan(p) => p.label(),
            CheckSpec::AccessLog(p) => p.label(),
        }
    }

    /// How long the runner lets it run (its own limit, capped at [`MAX_TIMEOUT`]).
    pub fn timeout(&self) -> Duration {
        let t = match self {
            CheckSpec::Http(p) => p.timeout(),
            CheckSpec::Tcp(p) => p.timeout(),
            CheckSpec::LogScan(p) => p.timeout(),
            CheckSpec::AccessLog(p) => p.timeout(),
        };
        t.min(MAX_TIMEOUT)
    }

    /// Run the check. Never panics on bad input; never mutates the host.
    pub async fn run(&self, ctx: &CheckContext) -> CheckReport {
        match self {
            CheckSpec::Http(p) => checks::http::run(p, ctx).await,
            CheckSpec::Tcp(p) => checks::tcp::run(p, ctx).await,
            CheckSpec::LogScan(p) => checks::log_scan::run(p, ctx).await,
            CheckSpec::AccessLog(p) => checks::access_log::run(p, ctx).await,
        }
    }

    /// The documentation entry of a kind name, if it exists.
    pub fn doc(kind: &str) -> Option<&'static KindDoc> {
        KINDS.iter().find(|d| d.kind == kind)
    }
}

/// Every fact name some check kind can publish.
pub fn known_facts() -> impl Iterator<Item = &'static str> {
    KINDS.iter().flat_map(|d| d.facts.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_prefers_problem_then_inconclusive() {
        use Outcome::{Inconclusive as I, Ok as O, Problem as P};
        assert_eq!(Outcome::combine([O, I, P]), P);
        assert_eq!(Outcome::combine([O, I]), I);
        assert_eq!(Outcome::combine([O, O]), O);
        assert_eq!(Outcome::combine([]), O);
    }

    #[test]
    fn every_kind_example_parses_as_a_spec() {
        for d in KINDS {
            let v: CheckSpec = toml::from_str::<toml::Table>(&format!("c = {}", d.example))
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t["c"]
                        .clone()
                        .try_into()
                        .map_err(|e: toml::de::Error| e.to_string())
                })
                .unwrap_or_else(|e| panic!("example of {} does not parse: {e}", d.kind));
            assert_eq!(v.kind(), d.kind);
        }
    }
}
