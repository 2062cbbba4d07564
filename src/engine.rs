//! The decision engine: a pure, synchronous state machine over playbooks.
//!
//! No tokio, no terminal, no files, no network. The shell feeds [`Input`]s
//! (check reports, answers, action results) and gets the next [`Effect`]
//! (run these checks, ask this, offer this action, done). The state is a
//! pure function of the playbooks, the initial values and the inputs so far:
//! `back` drops the last input and replays, and a saved input list rebuilds
//! the same state after a crash (resume).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action_spec::{ActionSpec, Tier};
use crate::cause::{Cause, Severity};
use crate::check::{Aside, Basis, CheckReport, CheckSpec, Evidence, Outcome};
use crate::playbook::library::Library;
use crate::playbook::{Cond, EndKind, Node, NodeKind, Playbook, VarType};
use crate::template::{self, Values};

/// A node visited more often than this ends the walk (a loop that never exits).
pub const MAX_VISITS: usize = 25;

/// Who chose an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    Operator,
    /// `--answer NODE=CHOICE`.
    Flag,
    /// Nobody could answer; the question's default was taken.
    Default,
}

/// The result of running (or trying to run) an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionResult {
    pub argv: Vec<String>,
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// Output, capped and redacted by the executor.
    pub output: String,
    pub summary: String,
    pub duration_ms: u64,
}

/// What the shell tells the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The reports of the checks from the last `RunChecks`, in order.
    ChecksDone(Vec<CheckReport>),
    Answer {
        choice: String,
        by: AnswerSource,
    },
    /// The operator read a guidance-only step.
    Continue,
    ActionDone(ActionResult),
    /// Not run: declined, refused by --read-only or --max-tier, or non-interactive.
    ActionDeclined {
        reason: String,
    },
}

/// A check ready to run, or the reason it cannot run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCheck {
    pub kind: &'static str,
    pub label: String,
    pub spec: Result<CheckSpec, String>,
}

/// An action the operator may run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    pub node: String,
    pub title: String,
    pub tier: Tier,
    pub spec: Option<ActionSpec>,
    /// The exact argv, or empty when a value is missing.
    pub argv: Vec<String>,
    pub description: String,
    pub undo: Option<String>,
    /// Why it cannot run (a value is missing), if so.
    pub blocked: Option<String>,
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    RunChecks {
        node: String,
        checks: Vec<PlannedCheck>,
    },
    Ask {
        node: String,
        text: String,
        choices: Vec<(String, String)>,
        default: String,
    },
    /// Show the guidance; continue on `Input::Continue`.
    Inform {
        node: String,
    },
    Offer(PlannedAction),
    Done(Conclusion),
}

/// How the walk ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Conclusion {
    /// `None` when the walk was cut short (a loop that never exits).
    pub end: Option<EndKind>,
    pub node: String,
    pub note: Option<String>,
}

/// A cause the walk established, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub cause: Cause,
    pub severity: Severity,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// The node that recorded it (`playbook/node`).
    pub node: String,
    /// Direct evidence of the failing hop, or circumstantial (could explain it).
    #[serde(default)]
    pub basis: Basis,
    /// The host it was established on (reports fill it in: this host's name, or the remote
    /// host of a hop); the engine leaves it empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Something seen off the failing path and set aside, with the node that saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextNote {
    #[serde(flatten)]
    pub aside: Aside,
    /// The node whose checks saw it (`playbook/node`).
    pub node: String,
}

/// A cause checked and excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuledOut {
    pub cause: Cause,
    pub reason: String,
    pub node: String,
}

/// What happened at one visited node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Record {
    Checks {
        outcome: Outcome,
        reports: Vec<CheckReport>,
    },
    Answer {
        choice: String,
        label: String,
        by: AnswerSource,
    },
    Read,
    /// A `when` rule decided without asking or running anything.
    Routed {
        rule: String,
    },
    Action {
        tier: Tier,
        argv: Vec<String>,
        result: Option<ActionResult>,
        declined: Option<String>,
    },
    Call {
        playbook: String,
    },
    Return {
        end: EndKind,
    },
    End {
        end: EndKind,
    },
    LoopLimit,
}

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Step {
    pub playbook: String,
    pub node: String,
    pub title: String,
    pub record: Record,
    /// Where the walk went from here.
    pub next: Option<String>,
}

/// Inputs that do not fit the current effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the engine is waiting for {expected}, not {got}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    #[error("`{choice}` is not a choice of `{node}` (choices: {choices})")]
    UnknownChoice {
        node: String,
        choice: String,
        choices: String,
    },
    #[error("expected {expected} check reports, got {got}")]
    ReportCount { expected: usize, got: usize },
    #[error("playbook `{0}` is not loaded")]
    UnknownPlaybook(String),
    #[error("invalid value: {0}")]
    BadValue(String),
}

#[derive(Debug, Clone)]
struct Frame {
    playbook: Arc<Playbook>,
    node: String,
}

#[derive(Debug, Clone)]
struct State {
    stack: Vec<Frame>,
    values: Values,
    findings: Vec<Finding>,
    ruled_out: Vec<RuledOut>,
    context: Vec<ContextNote>,
    trail: Vec<Step>,
    visits: BTreeMap<String, usize>,
    effect: Effect,
}

/// The engine. Cheap to clone; every method is pure.
#[derive(Debug, Clone)]
pub struct Engine {
    library: Arc<Library>,
    root: String,
    initial: Values,
    /// Names given by the operator: facts never overwrite them.
    pinned: HashSet<String>,
    inputs: Vec<Input>,
    st: State,
}

fn input_name(i: &Input) -> &'static str {
    match i {
        Input::ChecksDone(_) => "check results",
        Input::Answer { .. } => "an answer",
        Input::Continue => "continue",
        Input::ActionDone(_) => "an action result",
        Input::ActionDeclined { .. } => "an action refusal",
    }
}

fn effect_name(e: &Effect) -> &'static str {
    match e {
        Effect::RunChecks { .. } => "check results",
        Effect::Ask { .. } => "an answer",
        Effect::Inform { .. } => "continue",
        Effect::Offer(_) => "an action result or refusal",
        Effect::Done(_) => "nothing (the walk is over)",
    }
}

/// Add `NAME.host`, `.port`, ... for a URL value.
pub fn derive_url_parts(name: &str, value: &str, values: &mut Values) {
    let Ok(u) = url::Url::parse(value) else {
        return;
    };
    let host = u
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = u
        .port_or_known_default()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let hostport = match u.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    let mut path = u.path().to_owned();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    values.insert(format!("{name}.host"), host);
    values.insert(format!("{name}.port"), port);
    values.insert(format!("{name}.path"), path);
    values.insert(format!("{name}.scheme"), u.scheme().to_owned());
    values.insert(format!("{name}.origin"), u.origin().ascii_serialization());
    values.insert(format!("{name}.hostport"), hostport);
}

impl Engine {
    /// Start a walk of playbook `root` with the operator's values
    /// (`--var`, the start screen). Defaults fill the rest.
    pub fn start(library: Arc<Library>, root: &str, given: Values) -> Result<Engine, EngineError> {
        let pb = library
            .get(root)
            .cloned()
            .ok_or_else(|| EngineError::UnknownPlaybook(root.to_owned()))?;
        let pinned: HashSet<String> = given.keys().cloned().collect();
        let mut values = Values::new();
        for v in &pb.vars {
            if let Some(d) = &v.default {
                values.insert(v.name.clone(), d.clone());
            }
        }
        for (k, v) in &given {
            if let Some(var) = pb.var(k) {
                var.validate(v).map_err(EngineError::BadValue)?;
            }
            values.insert(k.clone(), v.clone());
        }
        for var in pb.vars.iter().filter(|v| v.ty == VarType::Url) {
            if let Some(v) = values.get(&var.name).cloned() {
                derive_url_parts(&var.name, &v, &mut values);
            }
        }
        values.insert("playbook.id".into(), pb.id.clone());
        let st = State {
            stack: vec![Frame {
                playbook: pb.clone(),
                node: pb.start.clone(),
            }],
            values,
            findings: Vec::new(),
            ruled_out: Vec::new(),
            context: Vec::new(),
            trail: Vec::new(),
            visits: BTreeMap::new(),
            effect: Effect::Done(Conclusion {
                end: None,
                node: String::new(),
                note: None,
            }),
        };
        let mut e = Engine {
            library,
            root: root.to_owned(),
            initial: given,
            pinned,
            inputs: Vec::new(),
            st,
        };
        let start = pb.start.clone();
        e.arrive(&start);
        Ok(e)
    }

    /// Rebuild a walk from its initial values and the inputs it received.
    pub fn replay(
        library: Arc<Library>,
        root: &str,
        given: Values,
        inputs: &[Input],
    ) -> Result<Engine, EngineError> {
        let mut e = Engine::start(library, root, given)?;
        for i in inputs {
            e.step(i.clone())?;
        }
        Ok(e)
    }

    /// What the shell must do now.
    pub fn effect(&self) -> &Effect {
        &self.st.effect
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    pub fn initial_values(&self) -> &Values {
        &self.initial
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    pub fn values(&self) -> &Values {
        &self.st.values
    }

    /// The current node's guidance with the values known so far filled in
    /// (a missing one shows as `<name?>`); empty when there is no current node.
    pub fn guidance(&self) -> String {
        self.current()
            .map(|(_, n)| render_lenient(n.guidance.trim(), &self.st.values))
            .unwrap_or_default()
    }

    pub fn trail(&self) -> &[Step] {
        &self.st.trail
    }

    /// Findings in the order they were recorded.
    pub fn findings(&self) -> &[Finding] {
        &self.st.findings
    }

    /// What the checks saw off the failing path and set aside, in the order seen.
    pub fn context(&self) -> &[ContextNote] {
        &self.st.context
    }

    /// Excluded causes that no finding contradicts.
    pub fn ruled_out(&self) -> Vec<RuledOut> {
        let found: HashSet<Cause> = self.st.findings.iter().map(|f| f.cause).collect();
        let mut seen = HashSet::new();
        self.st
            .ruled_out
            .iter()
            .filter(|r| !found.contains(&r.cause) && seen.insert(r.cause))
            .cloned()
            .collect()
    }

    /// The playbook and node the walk is at.
    pub fn current(&self) -> Option<(&Arc<Playbook>, &Node)> {
        let f = self.st.stack.last()?;
        Some((&f.playbook, f.playbook.node(&f.node)?))
    }

    /// Can `back` undo anything?
    pub fn can_go_back(&self) -> bool {
        !self.inputs.is_empty()
    }

    /// Undo the last input: the state is rebuilt by replaying the rest.
    pub fn back(&mut self) -> Result<(), EngineError> {
        if self.inputs.pop().is_some() {
            let inputs = std::mem::take(&mut self.inputs);
            *self = Engine::replay(
                self.library.clone(),
                &self.root.clone(),
                self.initial.clone(),
                &inputs,
            )?;
        }
        Ok(())
    }

    /// Feed one input; the new effect is `effect()`.
    pub fn step(&mut self, input: Input) -> Result<&Effect, EngineError> {
        let (pb, node) = match self.current() {
            Some((p, n)) => (p.clone(), n.clone()),
            None => {
                return Err(EngineError::Unexpected {
                    expected: "nothing (the walk is over)",
                    got: input_name(&input),
                });
            }
        };
        let next = match (&self.st.effect, &input) {
            (Effect::RunChecks { checks, .. }, Input::ChecksDone(reports)) => {
                if checks.len() != reports.len() {
                    return Err(EngineError::ReportCount {
                        expected: checks.len(),
                        got: reports.len(),
                    });
                }
                Some(self.checks_done(&pb, &node, reports))
            }
            (Effect::Ask { choices, .. }, Input::Answer { choice, by }) => {
                let NodeKind::Question { choices: cs, .. } = &node.kind else {
                    unreachable!("Ask comes from a question")
                };
                let Some(c) = cs.iter().find(|c| &c.id == choice) else {
                    return Err(EngineError::UnknownChoice {
                        node: node.id.clone(),
                        choice: choice.clone(),
                        choices: choices
                            .iter()
                            .map(|(id, _)| id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                for (k, v) in &c.set {
                    if !self.pinned.contains(k) {
                        self.st.values.insert(k.clone(), v.clone());
                    }
                }
                self.push_step(
                    &pb,
                    &node,
                    Record::Answer {
                        choice: c.id.clone(),
                        label: c.label.clone(),
                        by: *by,
                    },
                    &c.next,
                );
                Some(c.next.clone())
            }
            (Effect::Inform { .. }, Input::Continue) => {
                let NodeKind::Info { next } = &node.kind else {
                    unreachable!("Inform comes from an info node")
                };
                self.push_step(&pb, &node, Record::Read, next);
                Some(next.clone())
            }
            (Effect::Offer(a), Input::ActionDone(r)) => {
                let NodeKind::Action { done, failed, .. } = &node.kind else {
                    unreachable!("Offer comes from an action")
                };
                let to = if r.ok { done } else { failed };
                let rec = Record::Action {
                    tier: a.tier,
                    argv: r.argv.clone(),
                    result: Some(r.clone()),
                    declined: None,
                };
                self.push_step(&pb, &node, rec, to);
                Some(to.clone())
            }
            (Effect::Offer(a), Input::ActionDeclined { reason }) => {
                let NodeKind::Action { declined, .. } = &node.kind else {
                    unreachable!("Offer comes from an action")
                };
                let rec = Record::Action {
                    tier: a.tier,
                    argv: a.argv.clone(),
                    result: None,
                    declined: Some(reason.clone()),
                };
                self.push_step(&pb, &node, rec, declined);
                Some(declined.clone())
            }
            (e, i) => {
                return Err(EngineError::Unexpected {
                    expected: effect_name(e),
                    got: input_name(i),
                });
            }
        };
        self.inputs.push(input);
        if let Some(n) = next {
            self.arrive(&n);
        }
        Ok(&self.st.effect)
    }

    fn push_step(&mut self, pb: &Playbook, node: &Node, record: Record, next: &str) {
        self.st.trail.push(Step {
            playbook: pb.id.clone(),
            node: node.id.clone(),
            title: node.title.clone(),
            record,
            next: Some(next.to_owned()),
        });
    }

    fn checks_done(&mut self, pb: &Playbook, node: &Node, reports: &[CheckReport]) -> String {
        let outcome = Outcome::combine(reports.iter().map(|r| r.outcome));
        for r in reports {
            for (k, v) in &r.facts {
                if !self.pinned.contains(k) {
                    self.st.values.insert(k.clone(), v.clone());
                }
            }
        }
        let at = format!("{}/{}", pb.id, node.id);
        if node.adopt {
            for r in reports {
                for d in &r.diagnoses {
                    self.add_finding(Finding {
                        cause: d.cause,
                        severity: d.severity,
                        summary: d.summary.clone(),
                        evidence: d.evidence.clone(),
                        node: at.clone(),
                        basis: d.basis,
                        host: None,
                    });
                }
                for x in &r.excluded {
                    self.st.ruled_out.push(RuledOut {
                        cause: x.cause,
                        reason: x.reason.clone(),
                        node: at.clone(),
                    });
                }
            }
        }
        let rules: Vec<_> = node
            .findings
            .iter()
            .filter(|f| f.on == outcome && f.cond.as_ref().is_none_or(|c| self.holds(c)))
            .collect();
        for rule in rules {
            let summary = render_lenient(&rule.summary, &self.st.values);
            let evidence = reports
                .iter()
                .filter(|r| r.outcome == outcome)
                .flat_map(|r| {
                    std::iter::once(Evidence::new(r.label.clone(), r.summary.clone()))
                        .chain(r.evidence.iter().take(3).cloned())
                })
                .collect();
            self.add_finding(Finding {
                cause: rule.cause,
                severity: rule.severity,
                summary,
                evidence,
                node: at.clone(),
                basis: rule.basis,
                host: None,
            });
        }
        for r in reports {
            for a in &r.context {
                if !self.st.context.iter().any(|c| c.aside == *a) {
                    self.st.context.push(ContextNote {
                        aside: a.clone(),
                        node: at.clone(),
                    });
                }
            }
        }
        if outcome == Outcome::Ok {
            let reason = reports
                .iter()
                .map(|r| r.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            for c in &node.rules_out {
                self.st.ruled_out.push(RuledOut {
                    cause: *c,
                    reason: reason.clone(),
                    node: at.clone(),
                });
            }
        }
        let NodeKind::Checks {
            ok,
            problem,
            inconclusive,
            ..
        } = &node.kind
        else {
            unreachable!("checks come from a check node")
        };
        let to = self.matching_when(node).map_or_else(
            || match outcome {
                Outcome::Ok => ok.clone(),
                Outcome::Problem => problem.clone(),
                Outcome::Inconclusive => inconclusive.clone(),
            },
            |(_, n)| n,
        );
        self.push_step(
            pb,
            node,
            Record::Checks {
                outcome,
                reports: reports.to_vec(),
            },
            &to,
        );
        to
    }

    /// A finding for a cause already found adds its evidence there instead.
    fn add_finding(&mut self, f: Finding) {
        if let Some(existing) = self.st.findings.iter_mut().find(|x| x.cause == f.cause) {
            existing.severity = existing.severity.max(f.severity);
            existing.basis = existing.basis.strongest(f.basis);
            for e in f.evidence {
                if !existing.evidence.contains(&e) && existing.evidence.len() < 12 {
                    existing.evidence.push(e);
                }
            }
        } else {
            self.st.findings.push(f);
        }
    }

    fn holds(&self, cond: &Cond) -> bool {
        match cond {
            Cond::Found(c) => self.st.findings.iter().any(|f| f.cause == *c),
            Cond::FactEquals(k, v) => self.st.values.get(k) == Some(v),
            Cond::FactPresent(k) => self.st.values.get(k).is_some_and(|v| !v.is_empty()),
            // A circumstantial finding (a rule that could match, a disk near full) explains
            // nothing yet: the walk keeps looking for direct evidence.
            Cond::Unexplained => self
                .st
                .findings
                .iter()
                .all(|f| f.cause.is_secondary() || !f.basis.is_direct()),
        }
    }

    fn matching_when(&self, node: &Node) -> Option<(String, String)> {
        node.when.iter().find_map(|w| {
            let desc = match &w.cond {
                Cond::Found(c) => format!("found {c}"),
                Cond::FactEquals(k, v) => format!("{k} = {v}"),
                Cond::FactPresent(k) => format!("{k} is known"),
                Cond::Unexplained => "no root cause found yet".to_owned(),
            };
            self.holds(&w.cond).then(|| (desc, w.next.clone()))
        })
    }

    /// Enter node `id` of the current frame and settle on the next effect.
    fn arrive(&mut self, id: &str) {
        let mut id = id.to_owned();
        // Bounded: each iteration records a step, and MAX_VISITS caps visits per node.
        loop {
            let Some(frame) = self.st.stack.last_mut() else {
                return;
            };
            frame.node.clone_from(&id);
            let pb = frame.playbook.clone();
            let Some(node) = pb.node(&id).cloned() else {
                // Validation guarantees targets exist; a broken library ends the walk.
                self.st.effect = Effect::Done(Conclusion {
                    end: None,
                    node: id,
                    note: Some("unknown node".into()),
                });
                return;
            };
            let key = format!("{}/{}", pb.id, node.id);
            let visits = self.st.visits.entry(key).or_insert(0);
            *visits += 1;
            if *visits > MAX_VISITS {
                self.st.trail.push(Step {
                    playbook: pb.id.clone(),
                    node: node.id.clone(),
                    title: node.title.clone(),
                    record: Record::LoopLimit,
                    next: None,
                });
                self.st.effect = Effect::Done(Conclusion {
                    end: None,
                    node: node.id.clone(),
                    note: Some(format!(
                        "node `{}` was visited {MAX_VISITS} times; the walk stopped",
                        node.id
                    )),
                });
                return;
            }
            // Routing rules decide before asking or running anything (not for check nodes,
            // whose rules read the checks' results).
            if !matches!(node.kind, NodeKind::Checks { .. } | NodeKind::End(_)) {
                if let Some((rule, next)) = self.matching_when(&node) {
                    self.push_step(&pb, &node, Record::Routed { rule }, &next);
                    id = next;
                    continue;
                }
            }
            match &node.kind {
                NodeKind::Checks { checks, .. } => {
                    let planned = checks
                        .iter()
                        .map(|c| plan_check(c, &self.st.values))
                        .collect();
                    self.st.effect = Effect::RunChecks {
                        node: node.id.clone(),
                        checks: planned,
                    };
                    return;
                }
                NodeKind::Question {
                    text,
                    choices,
                    default,
                } => {
                    self.st.effect = Effect::Ask {
                        node: node.id.clone(),
                        text: render_lenient(text, &self.st.values),
                        choices: choices
                            .iter()
                            .map(|c| (c.id.clone(), c.label.clone()))
                            .collect(),
                        default: default.clone(),
                    };
                    return;
                }
                NodeKind::Info { .. } => {
                    self.st.effect = Effect::Inform {
                        node: node.id.clone(),
                    };
                    return;
                }
                NodeKind::Action {
                    tier, spec, undo, ..
                } => {
                    self.st.effect = Effect::Offer(plan_action(
                        &node,
                        *tier,
                        spec,
                        undo.clone(),
                        &self.st.values,
                    ));
                    return;
                }
                NodeKind::Call { playbook, .. } => {
                    let Some(sub) = self.library.get(playbook).cloned() else {
                        self.st.effect = Effect::Done(Conclusion {
                            end: None,
                            node: node.id.clone(),
                            note: Some(format!("playbook `{playbook}` is not loaded")),
                        });
                        return;
                    };
                    self.push_step(
                        &pb,
                        &node,
                        Record::Call {
                            playbook: playbook.clone(),
                        },
                        &sub.start,
                    );
                    let start = sub.start.clone();
                    self.st.stack.push(Frame {
                        playbook: sub,
                        node: start.clone(),
                    });
                    id = start;
                }
                NodeKind::End(end) => {
                    if self.st.stack.len() > 1 {
                        self.st.stack.pop();
                        let Some((caller_pb, caller)) =
                            self.current().map(|(p, n)| (p.clone(), n.clone()))
                        else {
                            return;
                        };
                        let NodeKind::Call {
                            resolved, escalate, ..
                        } = &caller.kind
                        else {
                            return;
                        };
                        let to = match end {
                            EndKind::Resolved => resolved.clone(),
                            EndKind::Escalate => escalate.clone(),
                        };
                        self.st.trail.push(Step {
                            playbook: pb.id.clone(),
                            node: node.id.clone(),
                            title: node.title.clone(),
                            record: Record::Return { end: *end },
                            next: Some(format!("{}/{}", caller_pb.id, to)),
                        });
                        id = to;
                        continue;
                    }
                    self.st.trail.push(Step {
                        playbook: pb.id.clone(),
                        node: node.id.clone(),
                        title: node.title.clone(),
                        record: Record::End { end: *end },
                        next: None,
                    });
                    self.st.effect = Effect::Done(Conclusion {
                        end: Some(*end),
                        node: node.id.clone(),
                        note: None,
                    });
                    return;
                }
            }
        }
    }
}

/// Render for display: a missing value shows as `<name?>` rather than failing.
pub fn render_lenient(text: &str, values: &Values) -> String {
    if let Ok(s) = template::render(text, values) {
        s
    } else {
        let mut out = text.to_owned();
        if let Ok(ph) = template::placeholders(text) {
            for p in ph.iter().rev() {
                let v = values
                    .get(&p.name)
                    .cloned()
                    .unwrap_or_else(|| format!("<{}?>", p.name));
                out.replace_range(p.range.clone(), &v);
            }
        }
        out
    }
}

fn plan_check(spec: &CheckSpec, values: &Values) -> PlannedCheck {
    let rendered = serde_json::to_value(spec)
        .map_err(|e| e.to_string())
        .and_then(|j| template::render_json_optional(&j, values).map_err(|e| e.to_string()))
        .and_then(|(j, missing)| {
            serde_json::from_value::<CheckSpec>(j).map_err(|e| match missing.first() {
                // A required parameter had no value: say which value is unknown.
                Some(name) => template::RenderError::Missing(name.clone()).to_string(),
                None => e.to_string(),
            })
        });
    match rendered {
        Ok(s) => PlannedCheck {
            kind: s.kind(),
            label: s.label(),
            spec: Ok(s),
        },
        Err(e) => PlannedCheck {
            kind: spec.kind(),
            label: render_lenient(&spec.label(), values),
            spec: Err(e),
        },
    }
}

fn plan_action(
    node: &Node,
    tier: Tier,
    spec: &ActionSpec,
    undo: Option<String>,
    values: &Values,
) -> PlannedAction {
    match spec.render(values) {
        Ok(s) => PlannedAction {
            node: node.id.clone(),
            title: node.title.clone(),
            tier,
            argv: s.argv(),
            description: s.describe(),
            spec: Some(s),
            undo,
            blocked: None,
        },
        Err(e) => PlannedAction {
            node: node.id.clone(),
            title: node.title.clone(),
            tier,
            argv: Vec::new(),
            description: spec.describe(),
            spec: None,
            undo,
            blocked: Some(e),
        },
    }
}
