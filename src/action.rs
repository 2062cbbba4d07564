//! Actions: the steps that change the server, described as data.
//!
//! The engine only *offers* an action; a front end shows the exact argv,
//! asks for consent, and the executor runs it. Nothing here runs a shell:
//! an action is an argv whose items are rendered from templates as data.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// Risk tier, ordered from least to most dangerous.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Can be undone exactly (disable a plugin).
    Reversible,
    /// Interrupts service briefly (restart or reload a service).
    Disruptive,
    /// Loses data that cannot be restored (delete cache files).
    Destructive,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Reversible => "reversible",
            Tier::Disruptive => "disruptive",
            Tier::Destructive => "destructive",
        })
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reversible" => Ok(Tier::Reversible),
            "disruptive" => Ok(Tier::Disruptive),
            "destructive" => Ok(Tier::Destructive),
            _ => Err(format!(
                "`{s}` is not a tier (reversible, disruptive, destructive)"
            )),
        }
    }
}

/// What an action does. The key names the kind: `do = { service = { ... } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Reload or restart a service (systemd, or the server's own signal).
    Service(ServiceAction),
    /// A playbook-defined command, run as this exact argv.
    Command(CommandAction),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAction {
    /// The systemd unit or service name, e.g. `php8.2-fpm`.
    pub unit: String,
    /// `reload` (preferred when it fixes the same thing) or `restart`.
    #[serde(default)]
    pub op: ServiceOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOp {
    #[default]
    Reload,
    Restart,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAction {
    /// The program and its arguments; never passed to a shell.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

impl ActionSpec {
    /// The exact argv this action would run.
    pub fn argv(&self) -> Vec<String> {
        match self {
            ActionSpec::Service(s) => {
                let op = match s.op {
                    ServiceOp::Reload => "reload",
                    ServiceOp::Restart => "restart",
                };
                vec!["systemctl".into(), op.into(), s.unit.clone()]
            }
            ActionSpec::Command(c) => c.argv.clone(),
        }
    }

    /// A short human description.
    pub fn describe(&self) -> String {
        match self {
            ActionSpec::Service(s) => format!(
                "{} {}",
                match s.op {
                    ServiceOp::Reload => "Reload",
                    ServiceOp::Restart => "Restart",
                },
                s.unit
            ),
            ActionSpec::Command(c) => format!("Run {}", c.argv.first().map_or("", String::as_str)),
        }
    }
}
