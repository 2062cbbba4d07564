//! Playbooks: the decision trees ops teams write, loaded and validated.
//!
//! `raw` mirrors the file; `load` parses and validates it into [`Playbook`]
//! (every reference resolved, every problem reported with its place);
//! `library` finds playbooks on the search path and embeds the shipped ones;
//! `graph` draws a playbook. Nothing here does I/O except `library`.

pub mod diagnostic;
pub mod graph;
pub mod library;
pub mod load;
pub mod raw;

use std::collections::{BTreeMap, HashMap};

use crate::action_spec::{ActionSpec, Tier};
use crate::cause::{Cause, Severity};
use crate::check::{CheckSpec, Outcome};
pub use raw::{EndKind, VarType};

/// A validated playbook: ids resolved, every branch target exists.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    pub version: String,
    pub description: String,
    pub symptoms: Vec<u16>,
    pub start: String,
    pub vars: Vec<Var>,
    /// In file order.
    pub nodes: Vec<Node>,
    index: HashMap<String, usize>,
}

impl Playbook {
    pub(crate) fn new(header: Header, vars: Vec<Var>, nodes: Vec<Node>) -> Self {
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        Playbook {
            id: header.id,
            title: header.title,
            version: header.version,
            description: header.description,
            symptoms: header.symptoms,
            start: header.start,
            vars,
            nodes,
            index,
        }
    }

    /// The node with this id (validation guarantees every reference exists).
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }
}

/// The scalar header fields, as validated.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub id: String,
    pub title: String,
    pub version: String,
    pub description: String,
    pub symptoms: Vec<u16>,
    pub start: String,
}

/// A declared variable.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub prompt: String,
    pub ty: VarType,
    pub default: Option<String>,
    pub required: bool,
    pub pattern: Option<regex::Regex>,
    pub help: String,
}

impl Var {
    /// Check a value against the type and pattern; the message says why not.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        validate_typed(self.ty, value).map_err(|e| format!("{}: {e}", self.name))?;
        if let Some(re) = &self.pattern {
            let whole = re
                .find(value)
                .is_some_and(|m| m.start() == 0 && m.end() == value.len());
            if !whole {
                return Err(format!(
                    "{}: `{value}` does not match the pattern `{}`",
                    self.name,
                    re.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// Validate a value for a variable type.
pub fn validate_typed(ty: VarType, value: &str) -> Result<(), String> {
    match ty {
        VarType::Url => match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
            Ok(u) => Err(format!(
                "`{value}` must be an http:// or https:// URL with a host (got scheme `{}`)",
                u.scheme()
            )),
            Err(e) => Err(format!("`{value}` is not a URL: {e}")),
        },
        VarType::Host => {
            let ok = !value.is_empty()
                && (value.parse::<std::net::IpAddr>().is_ok()
                    || value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            if ok {
                Ok(())
            } else {
                Err(format!("`{value}` is not a host name or IP address"))
            }
        }
        VarType::Port => match value.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!("`{value}` is not a port (1-65535)")),
        },
        VarType::Path => {
            if value.starts_with('/') {
                Ok(())
            } else {
                Err(format!("`{value}` is not an absolute path"))
            }
        }
        VarType::Unit => {
            let ok = !value.is_empty()
                && !value.starts_with('-')
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c));
            if ok {
                Ok(())
            } else {
                Err(format!("`{value}` is not a service unit name"))
            }
        }
        VarType::Duration => value.parse::<crate::duration::HumanDuration>().map(|_| ()),
        VarType::String => Ok(()),
    }
}

/// One step of the walk.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub title: String,
    pub guidance: String,
    pub kind: NodeKind,
    /// Tried in order before the outcome branches.
    pub when: Vec<When>,
    pub findings: Vec<FindingRule>,
    /// Excluded when the node's checks are all ok.
    pub rules_out: Vec<Cause>,
    /// Record the causes the checks recognised themselves.
    pub adopt: bool,
}

/// What a node does, with its branch targets.
#[derive(Debug, Clone)]
pub enum NodeKind {
    Checks {
        checks: Vec<CheckSpec>,
        ok: String,
        problem: String,
        inconclusive: String,
    },
    Question {
        text: String,
        choices: Vec<Choice>,
        default: String,
    },
    Action {
        tier: Tier,
        spec: ActionSpec,
        undo: Option<String>,
        done: String,
        failed: String,
        declined: String,
    },
    Call {
        playbook: String,
        resolved: String,
        escalate: String,
    },
    /// Guidance only; the operator reads it and continues.
    Info {
        next: String,
    },
    End(EndKind),
}

impl NodeKind {
    /// Every node this one can lead to (not counting `when` rules).
    pub fn targets(&self) -> Vec<&str> {
        match self {
            NodeKind::Checks {
                ok,
                problem,
                inconclusive,
                ..
            } => vec![ok, problem, inconclusive],
            NodeKind::Question { choices, .. } => choices.iter().map(|c| c.next.as_str()).collect(),
            NodeKind::Action {
                done,
                failed,
                declined,
                ..
            } => vec![done, failed, declined],
            NodeKind::Call {
                resolved, escalate, ..
            } => vec![resolved, escalate],
            NodeKind::Info { next } => vec![next],
            NodeKind::End(_) => vec![],
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Checks { .. } => "check",
            NodeKind::Question { .. } => "question",
            NodeKind::Action { .. } => "action",
            NodeKind::Call { .. } => "call",
            NodeKind::Info { .. } => "info",
            NodeKind::End(_) => "end",
        }
    }
}

impl Node {
    /// All successors, including `when` targets, deduplicated in order.
    pub fn successors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in self
            .when
            .iter()
            .map(|w| w.next.as_str())
            .chain(self.kind.targets())
        {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub id: String,
    pub label: String,
    pub next: String,
    pub set: BTreeMap<String, String>,
}

/// A routing rule.
#[derive(Debug, Clone)]
pub struct When {
    pub cond: Cond,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// A finding with this cause has been recorded.
    Found(Cause),
    /// The value is present and equals this text.
    FactEquals(String, String),
    /// The value is present and not empty.
    FactPresent(String),
    /// No root cause has been found yet.
    Unexplained,
}

/// A finding the node records when its checks' outcome is `on`.
#[derive(Debug, Clone)]
pub struct FindingRule {
    pub on: Outcome,
    /// An extra condition on a value.
    pub cond: Option<Cond>,
    pub cause: Cause,
    pub severity: Severity,
    pub basis: crate::check::Basis,
    pub summary: String,
}

/// The JSON Schema of a playbook file (kept in `assets/playbook.schema.json`).
pub fn schema() -> serde_json::Value {
    let mut v = serde_json::to_value(schemars::schema_for!(raw::RawHeader)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("title".into(), "triage502 playbook".into());
    }
    v
}
