//! The playbook file as written: serde types that mirror the TOML one to one.
//!
//! Every reference another part of the file resolves (`next`, `start`,
//! choices, cause ids, playbook calls) is `Spanned`, so validation can point
//! at `file:line:col`. Only externally tagged enums are used (no `tag`,
//! `flatten` or `untagged`), which keeps spans and `deny_unknown_fields`
//! working. `schemars` derives `assets/playbook.schema.json` from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::action_spec::ActionSpec;
use crate::cause::Severity;
use crate::check::{CheckSpec, Outcome};

/// Spans are kept in the Rust types; the schema describes the plain value.
pub type S<T> = Spanned<T>;

/// The top of a playbook file (everything but `[[node]]`, which is parsed
/// node by node so one bad node does not hide errors in the others).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    /// Unique id; `--playbook ID` and `call` refer to it.
    #[schemars(with = "String")]
    pub id: S<String>,
    pub title: String,
    /// The playbook's own version, quoted in reports and tickets.
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// HTTP statuses this playbook diagnoses, e.g. `[502, 503, 504]`.
    #[serde(default)]
    pub symptoms: Vec<u16>,
    /// The id of the first node.
    #[schemars(with = "String")]
    pub start: S<String>,
    /// Values the playbook reads in templates: `[[var]]`.
    #[serde(default, rename = "var")]
    pub vars: Vec<RawVar>,
    /// The steps: `[[node]]`.
    #[serde(default, rename = "node")]
    #[schemars(with = "Vec<RawNode>")]
    pub nodes: Vec<toml::Value>,
}

/// A value the operator can give (`--var NAME=VALUE`, the start screen).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVar {
    #[schemars(with = "String")]
    pub name: S<String>,
    /// The question shown when the value is asked for.
    pub prompt: String,
    #[serde(rename = "type", default)]
    pub ty: VarType,
    #[serde(default)]
    pub default: Option<String>,
    /// Must be given before the walk starts.
    #[serde(default)]
    pub required: bool,
    /// A regular expression the whole value must match.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pattern: Option<S<String>>,
    #[serde(default)]
    pub help: String,
}

/// The type of a variable: decides how its value is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VarType {
    Url,
    Host,
    Port,
    Path,
    Unit,
    Duration,
    #[default]
    String,
}

/// One step of the walk. Exactly one of `checks`, `question`, `action`,
/// `call`, `end` (or none, with `next`: a guidance-only step).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    #[schemars(with = "String")]
    pub id: S<String>,
    pub title: String,
    /// What this step does and why, in plain words (shown and quoted).
    #[serde(default)]
    pub guidance: String,

    /// Checks run together; the node branches on their combined outcome.
    #[serde(default)]
    #[schemars(with = "Option<Vec<CheckSpec>>")]
    pub checks: Option<S<Vec<S<CheckSpec>>>>,
    /// A question only the operator can answer.
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub choices: Vec<RawChoice>,
    /// The choice used when nobody answers (`--non-interactive`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub default: Option<S<String>>,
    /// A step that changes the server, behind confirmation.
    #[serde(default)]
    #[schemars(with = "Option<RawAction>")]
    pub action: Option<S<RawAction>>,
    /// Hand over to another playbook; branch with `on.resolved` / `on.escalate`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub call: Option<S<String>>,
    /// The walk ends here.
    #[serde(default)]
    pub end: Option<EndKind>,
    /// The next node of a guidance-only step.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub next: Option<S<String>>,

    /// Where to go for each outcome.
    #[serde(default)]
    pub on: RawBranches,
    /// Conditions tried before `on`, first match wins.
    #[serde(default)]
    pub when: Vec<RawWhen>,
    /// Findings recorded when the checks' outcome matches.
    #[serde(default)]
    pub finding: Vec<RawFinding>,
    /// Causes excluded when the checks are all `ok`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub rules_out: Vec<S<String>>,
    /// Record the causes the checks themselves recognised (default true).
    #[serde(default = "yes")]
    pub adopt: bool,
}

fn yes() -> bool {
    true
}

/// Branch targets by outcome. Which keys apply depends on the node type.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBranches {
    #[schemars(with = "Option<String>")]
    pub ok: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    pub problem: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    pub inconclusive: Option<S<String>>,
    /// Action ran and succeeded.
    #[schemars(with = "Option<String>")]
    pub done: Option<S<String>>,
    /// Action ran and failed.
    #[schemars(with = "Option<String>")]
    pub failed: Option<S<String>>,
    /// Action declined, refused (read-only, tier cap) or not run (non-interactive).
    #[schemars(with = "Option<String>")]
    pub declined: Option<S<String>>,
    /// Called playbook ended `resolved`.
    #[schemars(with = "Option<String>")]
    pub resolved: Option<S<String>>,
    /// Called playbook ended `escalate`.
    #[schemars(with = "Option<String>")]
    pub escalate: Option<S<String>>,
}

/// A choice of a question.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChoice {
    #[schemars(with = "String")]
    pub id: S<String>,
    pub label: String,
    #[schemars(with = "String")]
    pub next: S<String>,
    /// Values set when this choice is taken (`set = { behind_cdn = "yes" }`).
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
}

/// A condition that routes the walk. Give `found`, or `fact` with `equals`
/// (or `fact` alone: present and not empty), or `unexplained = true` (no
/// root cause established yet).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    /// A cause id already among the findings.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub found: Option<S<String>>,
    /// A value name (variable or fact).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub fact: Option<S<String>>,
    #[serde(default)]
    pub equals: Option<String>,
    /// True: matches while no root cause has been found (consequences such
    /// as `no_live_upstreams` do not count).
    #[serde(default)]
    pub unexplained: bool,
    #[schemars(with = "String")]
    pub next: S<String>,
}

/// A finding the playbook author attaches to an outcome.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFinding {
    /// The outcome that records it (default `problem`).
    #[serde(default = "problem", rename = "on")]
    pub when: Outcome,
    /// Only when this value (a fact or variable) ...
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub fact: Option<S<String>>,
    /// ... equals this text (without `equals`: is known and not empty).
    #[serde(default)]
    pub equals: Option<String>,
    #[schemars(with = "String")]
    pub cause: S<String>,
    #[serde(default)]
    pub severity: Severity,
    /// `direct` (default): the outcome shows the failure on the failing path;
    /// `circumstantial`: it could explain the failure without showing it (ranked after
    /// direct findings, never promoted to the top).
    #[serde(default)]
    pub basis: crate::check::Basis,
    /// Text with `{{ value }}` placeholders; the checks' summaries are quoted as evidence.
    #[schemars(with = "String")]
    pub summary: S<String>,
}

fn problem() -> Outcome {
    Outcome::Problem
}

/// An action: a risk tier and what to do.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    /// Required: `reversible`, `disruptive` or `destructive`.
    #[serde(default)]
    pub tier: Option<crate::action_spec::Tier>,
    /// What it does (one key: the action kind).
    #[serde(rename = "do")]
    pub run: ActionSpec,
    /// How to undo it, in words, when it cannot be undone automatically.
    #[serde(default)]
    pub undo: Option<String>,
}

/// How a walk ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    /// The problem is explained and fixed (or there was none).
    Resolved,
    /// Hand over to hosting support with the ticket.
    Escalate,
}
