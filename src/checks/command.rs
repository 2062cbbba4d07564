//! `command`: a playbook-defined read-only command (the playbook author
//! vouches that it is read-only; the TUI shows the exact argv).
//!
//! Runs argv directly (no shell) with a timeout and capped output, then maps
//! the exit code and regex patterns on stdout+stderr to ok or problem.
//! Order: a `problem_if` match → problem; an unexpected exit code → problem;
//! `ok_if` given and unmatched → problem; otherwise ok.

use std::time::{Duration, Instant};

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::tool;
use crate::duration::HumanDuration;

/// Parameters of the `command` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Program and arguments, run directly without a shell: `["ss", "-ltnp"]`.
    pub argv: Vec<String>,
    /// Time allowed before the command is killed (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Exit code that means the command worked (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_exit: Option<i32>,
    /// Regexes on stdout+stderr; any match makes the outcome `problem` (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problem_if: Vec<String>,
    /// Regexes on stdout+stderr; when given, one must match for `ok` (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ok_if: Vec<String>,
    /// The cause a problem points at, reported as a diagnosis (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "command",
    summary: "Run a playbook-defined read-only command (fixed argv, no shell, timeout, capped output); exit code and regex patterns map to ok or problem.",
    example: r#"{ command = { argv = ["ss", "-ltn", "sport = :9000"], timeout = "5s", ok_if = ["LISTEN"], cause = "upstream_refused" } }"#,
    facts: &["command.exit", "command.match"],
};

/// Output kept per stream.
const OUTPUT_CAP: usize = 64 * 1024;

impl Params {
    pub fn label(&self) -> String {
        match self.argv.split_first() {
            Some((p, a)) => format!("run {}", tool::display_argv(p, a)),
            None => "run (empty argv)".into(),
        }
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0) + Duration::from_secs(1)
    }
}

fn compile(list: &[String], name: &str) -> Result<Vec<Regex>, String> {
    list.iter()
        .map(|p| {
            Regex::new(p).map_err(|e| format!("{name} pattern `{p}` is not a valid regex: {e}"))
        })
        .collect()
}

fn matching_line<'a>(re: &Regex, text: &'a str) -> Option<&'a str> {
    text.lines()
        .find(|l| re.is_match(l))
        .or_else(|| re.find(text).map(|m| m.as_str()))
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = execute(p).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn execute(p: &Params) -> CheckReport {
    let label = p.label();
    let Some((program, args)) = p.argv.split_first() else {
        return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, "argv is empty");
    };
    let (problem_re, ok_re) = match (
        compile(&p.problem_if, "problem_if"),
        compile(&p.ok_if, "ok_if"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e);
        }
    };
    let timeout = p.timeout.map_or(Duration::from_secs(10), |d| d.0);
    let out = match tool::run(program, args, timeout, OUTPUT_CAP).await {
        Ok(o) => o,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
    };
    if out.timed_out {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!(
                "`{}` did not finish within {} and was killed",
                out.argv,
                HumanDuration(timeout)
            ),
        )
        .with_fact("command.exit", "");
    }
    let text = out.combined();
    let excerpt: String = {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines.len().saturating_sub(40);
        lines[tail..].join("\n")
    };
    let code = out.code;
    let code_text = code.map_or("killed by a signal".to_owned(), |c| c.to_string());
    let ev = Evidence::new(
        "output",
        format!(
            "exit {code_text}{}\n{excerpt}",
            if out.truncated {
                " (output truncated at the cap)"
            } else {
                ""
            }
        ),
    )
    .at(out.argv.clone());
    let want = p.expect_exit.unwrap_or(0);
    let mut matched = String::new();
    let (outcome, summary) = if let Some((re, line)) = problem_re
        .iter()
        .find_map(|re| matching_line(re, &text).map(|l| (re, l)))
    {
        line.clone_into(&mut matched);
        (
            Outcome::Problem,
            format!(
                "`{}`: output matches `{}`: {}",
                out.argv,
                re.as_str(),
                line.trim()
            ),
        )
    } else if code != Some(want) {
        (
            Outcome::Problem,
            format!("`{}` exited {code_text} (expected {want})", out.argv),
        )
    } else if !ok_re.is_empty() {
        match ok_re.iter().find_map(|re| matching_line(re, &text)) {
            Some(line) => {
                line.clone_into(&mut matched);
                (Outcome::Ok, format!("`{}`: {}", out.argv, line.trim()))
            }
            None => (
                Outcome::Problem,
                format!(
                    "`{}`: output matches none of {}",
                    out.argv,
                    p.ok_if
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    } else {
        (Outcome::Ok, format!("`{}` exited {code_text}", out.argv))
    };
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary.clone())
        .with_fact(
            "command.exit",
            code.map(|c| c.to_string()).unwrap_or_default(),
        )
        .with_fact("command.match", matched)
        .with_evidence(ev.clone());
    if outcome == Outcome::Problem
        && let Some(c) = p.cause
    {
        r = r.diagnose(c, Severity::Medium, summary, vec![ev]);
    }
    r
}
