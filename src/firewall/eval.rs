//! Walking the rules as the kernel does, for one packet.
//!
//! For each hook of the packet's route (in order), every base chain of a table that sees the
//! packet's family, in priority order: rules in order; `accept` ends the base chain (the next
//! base chain of the hook still runs), `drop`/`reject` end the packet, `jump` pushes, `goto`
//! replaces, `return` pops, falling off a base chain applies its policy. nat chains only see the
//! first packet of a connection (conntrack NEW), and a loopback packet's NAT is decided on the
//! way out (OUTPUT, POSTROUTING), not again on the way in. A match that cannot be judged forks
//! the walk: one branch where it holds, one where it does not.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::packet::{CtState, Hook, Packet, Route};
use super::rules::{Action, IpSet, Rule, Ruleset, Tri, all};

/// What happens to the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// Rejected (the text of `--reject-with`/`reject with`, empty for the default).
    Reject(String),
    /// The rules alone cannot say (an unknown match that decides, NFQUEUE, NAT that rewrites
    /// the destination): the reason.
    CannotTell(String),
}

impl Verdict {
    /// DROP or REJECT.
    pub fn is_blocking(&self) -> bool {
        matches!(self, Verdict::Drop | Verdict::Reject(_))
    }
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject(_) => "REJECT",
            Verdict::CannotTell(_) => "cannot tell",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Reject(w) if !w.is_empty() => write!(f, "REJECT ({w})"),
            Verdict::CannotTell(why) => write!(f, "cannot tell: {why}"),
            v => f.write_str(v.word()),
        }
    }
}

/// One way the walk can end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub verdict: Verdict,
    /// The rule that decided (none when a policy decided or every chain let the packet pass).
    pub rule: Option<String>,
    /// The table of that rule or policy, e.g. `ip filter` or `inet fw`.
    pub table: String,
    pub hook: Option<Hook>,
    /// Chain names from the base chain to the deciding rule's chain.
    pub path: Vec<String>,
    /// A chain policy decided.
    pub by_policy: bool,
    /// Rules whose matches could not be judged, and whether this branch assumed they match.
    pub assumed: Vec<(String, bool)>,
}

impl Branch {
    /// `INPUT → ufw-before-input → ufw-user-input`.
    pub fn path_text(&self) -> String {
        self.path.join(" → ")
    }

    /// One line: `DROP by -A ufw-user-input ... (ip filter: INPUT → ufw-before-input → ...)`.
    pub fn describe(&self) -> String {
        let whom = match (&self.rule, self.by_policy) {
            (Some(r), _) => format!(" by `{r}`"),
            (None, true) => " by the chain's policy".to_owned(),
            (None, false) => String::new(),
        };
        if self.path.is_empty() {
            format!("{}{whom}", self.verdict)
        } else {
            format!(
                "{}{whom} ({}: {})",
                self.verdict,
                self.table,
                self.path_text()
            )
        }
    }
}

/// The result of walking the rules for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The verdict every branch agrees on, or `CannotTell` when they disagree.
    pub verdict: Verdict,
    /// The branch where no undecidable match holds (the walk's first branch).
    pub primary: Branch,
    /// Every branch (the primary first).
    pub branches: Vec<Branch>,
    /// Rules on the path whose matches could not be judged.
    pub unknown: Vec<String>,
    /// (table index, chain) entered by any branch.
    pub visited: BTreeSet<(usize, String)>,
    /// The base chains met, in order: `OUTPUT (ip filter, priority 0)`.
    pub base_chains: Vec<String>,
    /// Rules looked at, over all branches.
    pub rules_evaluated: usize,
}

impl Evaluation {
    /// The branch that decides the verdict: the primary branch, or when the verdict is definite
    /// the first blocking branch for a blocking verdict.
    pub fn deciding(&self) -> &Branch {
        &self.primary
    }
}

#[derive(Debug, Clone)]
struct Frame {
    table: usize,
    chain: String,
    next: usize,
}

#[derive(Debug, Clone)]
struct State {
    hook_i: usize,
    base_i: usize,
    /// The base chain being walked (table, chain), for its policy.
    base: Option<(usize, String)>,
    frames: Vec<Frame>,
    assumed: Vec<(String, bool)>,
}

const MAX_DEPTH: usize = 64;
const MAX_BRANCHES: usize = 64;
const MAX_STEPS: usize = 200_000;

/// Base chains on `hook` that see `p`, in priority order (stable by table order on ties).
fn bases(rs: &Ruleset, p: &Packet, hook: Hook) -> Vec<(usize, String, i32)> {
    let mut out = Vec::new();
    for (ti, t) in rs.tables.iter().enumerate() {
        if !t.family.sees(p.is_v4()) {
            continue;
        }
        for c in t.chains.values() {
            let Some(b) = &c.base else { continue };
            if b.hook != hook {
                continue;
            }
            if b.kind == "nat" {
                // NAT is decided on the first packet only, and for loopback on the way out.
                let first = p.state == CtState::New;
                let loop_in =
                    p.route == Route::Loopback && matches!(hook, Hook::Prerouting | Hook::Input);
                if !first || loop_in {
                    continue;
                }
            }
            out.push((ti, c.name.clone(), b.priority));
        }
    }
    out.sort_by_key(|x| x.2);
    out
}

struct Walk<'a> {
    rs: &'a Ruleset,
    p: &'a Packet,
    hooks: &'a [Hook],
    sets: &'a BTreeMap<String, IpSet>,
    pending: Vec<State>,
    branches: Vec<Branch>,
    unknown: Vec<String>,
    visited: BTreeSet<(usize, String)>,
    base_chains: Vec<String>,
    steps: usize,
}

enum Step {
    Go,
    Done(Branch),
}

impl Walk<'_> {
    fn leaf(&self, st: &State, verdict: Verdict, rule: Option<&Rule>, by_policy: bool) -> Step {
        let (table, path) = match (&st.base, st.frames.first()) {
            (Some((t, _)), _) => (
                self.rs.tables[*t].label(),
                std::iter::once(st.base.as_ref().map(|b| b.1.clone()).unwrap_or_default())
                    .chain(st.frames.iter().skip(1).map(|f| f.chain.clone()))
                    .collect::<Vec<_>>(),
            ),
            (None, Some(f)) => (self.rs.tables[f.table].label(), vec![f.chain.clone()]),
            (None, None) => (String::new(), Vec::new()),
        };
        // A goto replaced frames: show the chains actually on the stack after the base chain.
        let path = if st
            .frames
            .first()
            .is_some_and(|f| Some(&f.chain) != st.base.as_ref().map(|b| &b.1))
        {
            std::iter::once(path[0].clone())
                .chain(st.frames.iter().map(|f| f.chain.clone()))
                .collect()
        } else {
            path
        };
        Step::Done(Branch {
            verdict,
            rule: rule.map(|r| r.text.clone()),
            table,
            hook: self.hooks.get(st.hook_i).copied(),
            path,
            by_policy,
            assumed: st.assumed.clone(),
        })
    }

    /// The base chain after the current one.
    fn next_base(st: &mut State) {
        st.base_i += 1;
        st.base = None;
        st.frames.clear();
    }

    fn apply(&mut self, st: &mut State, action: &Action, rule: &Rule) -> Step {
        match action {
            Action::Accept => {
                Self::next_base(st);
                Step::Go
            }
            Action::Drop => self.leaf(st, Verdict::Drop, Some(rule), false),
            Action::Reject(w) => self.leaf(st, Verdict::Reject(w.clone()), Some(rule), false),
            Action::Continue => Step::Go,
            Action::Jump(c) | Action::Goto(c) => {
                let t = st.frames.last().map_or(0, |f| f.table);
                if !self.rs.tables[t].chains.contains_key(c) {
                    return self.leaf(
                        st,
                        Verdict::CannotTell(format!(
                            "the rule jumps to chain {c}, which was not listed"
                        )),
                        Some(rule),
                        false,
                    );
                }
                if st.frames.len() >= MAX_DEPTH {
                    return self.leaf(
                        st,
                        Verdict::CannotTell("jumps nest deeper than 64".into()),
                        Some(rule),
                        false,
                    );
                }
                if matches!(action, Action::Goto(_)) {
                    st.frames.pop();
                }
                st.frames.push(Frame {
                    table: t,
                    chain: c.clone(),
                    next: 0,
                });
                self.visited.insert((t, c.clone()));
                Step::Go
            }
            Action::Return => {
                st.frames.pop();
                if st.frames.is_empty() {
                    return self.policy(st);
                }
                Step::Go
            }
            Action::Nat(kind) if matches!(kind.as_str(), "DNAT" | "REDIRECT" | "NETMAP") => self
                .leaf(
                    st,
                    Verdict::CannotTell(format!(
                        "{kind} rewrites the destination; the rewritten packet is not evaluated"
                    )),
                    Some(rule),
                    false,
                ),
            Action::Nat(_) => {
                Self::next_base(st);
                Step::Go
            }
            Action::Vmap(entries) => {
                for (m, a) in entries {
                    match m.test(self.p, self.hooks[st.hook_i], self.sets) {
                        Tri::Yes => return self.apply(st, a, rule),
                        Tri::No => {}
                        Tri::Unknown => {
                            self.note_unknown(rule);
                            let mut fork = st.clone();
                            fork.assumed.push((rule.text.clone(), true));
                            if let Step::Done(b) = self.apply(&mut fork, a, rule) {
                                self.branches.push(b);
                            } else {
                                self.push(fork);
                            }
                            st.assumed.push((rule.text.clone(), false));
                        }
                    }
                }
                Step::Go
            }
            Action::Unknown(what) => self.leaf(
                st,
                Verdict::CannotTell(format!("the verdict is {what}")),
                Some(rule),
                false,
            ),
        }
    }

    fn policy(&mut self, st: &mut State) -> Step {
        let Some((t, c)) = st.base.clone() else {
            Self::next_base(st);
            return Step::Go;
        };
        let accept = self.rs.tables[t]
            .chains
            .get(&c)
            .and_then(|c| c.base.as_ref())
            .is_none_or(|b| b.accept);
        if accept {
            Self::next_base(st);
            Step::Go
        } else {
            st.frames = vec![Frame {
                table: t,
                chain: c,
                next: 0,
            }];
            self.leaf(st, Verdict::Drop, None, true)
        }
    }

    fn note_unknown(&mut self, rule: &Rule) {
        if !self.unknown.contains(&rule.text) {
            self.unknown.push(rule.text.clone());
        }
    }

    fn push(&mut self, st: State) {
        if self.pending.len() + self.branches.len() >= MAX_BRANCHES {
            let b = Branch {
                verdict: Verdict::CannotTell("too many undecidable rules".into()),
                rule: None,
                table: String::new(),
                hook: None,
                path: Vec::new(),
                by_policy: false,
                assumed: st.assumed,
            };
            self.branches.push(b);
        } else {
            self.pending.push(st);
        }
    }

    /// Runs one state to its end.
    fn run(&mut self, mut st: State) -> Branch {
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Branch {
                    verdict: Verdict::CannotTell("the rules are too long to walk".into()),
                    rule: None,
                    table: String::new(),
                    hook: None,
                    path: Vec::new(),
                    by_policy: false,
                    assumed: st.assumed,
                };
            }
            if st.frames.is_empty() {
                let Some(&hook) = self.hooks.get(st.hook_i) else {
                    return Branch {
                        verdict: Verdict::Accept,
                        rule: None,
                        table: String::new(),
                        hook: None,
                        path: Vec::new(),
                        by_policy: false,
                        assumed: st.assumed,
                    };
                };
                let list = bases(self.rs, self.p, hook);
                let Some((t, c, prio)) = list.get(st.base_i).cloned() else {
                    st.hook_i += 1;
                    st.base_i = 0;
                    continue;
                };
                let label = format!(
                    "{c} ({}, {hook}, priority {prio})",
                    self.rs.tables[t].label()
                );
                if !self.base_chains.contains(&label) {
                    self.base_chains.push(label);
                }
                self.visited.insert((t, c.clone()));
                st.base = Some((t, c.clone()));
                st.frames.push(Frame {
                    table: t,
                    chain: c,
                    next: 0,
                });
                continue;
            }
            let f = st.frames.last().cloned().unwrap_or(Frame {
                table: 0,
                chain: String::new(),
                next: 0,
            });
            let rules = self.rs.tables[f.table]
                .chains
                .get(&f.chain)
                .map(|c| c.rules.as_slice())
                .unwrap_or_default();
            let Some(rule) = rules.get(f.next) else {
                st.frames.pop();
                if st.frames.is_empty() {
                    if let Step::Done(b) = self.policy(&mut st) {
                        return b;
                    }
                }
                continue;
            };
            if let Some(top) = st.frames.last_mut() {
                top.next += 1;
            }
            let hook = self.hooks[st.hook_i];
            let step = match all(&rule.matches, self.p, hook, self.sets) {
                Tri::No => Step::Go,
                Tri::Yes => self.apply(&mut st, &rule.action, rule),
                Tri::Unknown => {
                    if rule.action == Action::Continue {
                        Step::Go
                    } else {
                        self.note_unknown(rule);
                        let mut fork = st.clone();
                        fork.assumed.push((rule.text.clone(), true));
                        match self.apply(&mut fork, &rule.action, rule) {
                            Step::Done(b) => self.branches.push(b),
                            Step::Go => self.push(fork),
                        }
                        st.assumed.push((rule.text.clone(), false));
                        Step::Go
                    }
                }
            };
            if let Step::Done(b) = step {
                return b;
            }
        }
    }
}

/// Walks `rs` for packet `p` (see the module doc).
pub fn evaluate(rs: &Ruleset, p: &Packet) -> Evaluation {
    let mut w = Walk {
        rs,
        p,
        hooks: p.route.hooks(),
        sets: &rs.ipsets,
        pending: Vec::new(),
        branches: Vec::new(),
        unknown: Vec::new(),
        visited: BTreeSet::new(),
        base_chains: Vec::new(),
        steps: 0,
    };
    let first = w.run(State {
        hook_i: 0,
        base_i: 0,
        base: None,
        frames: Vec::new(),
        assumed: Vec::new(),
    });
    let mut rest = std::mem::take(&mut w.branches);
    while let Some(st) = w.pending.pop() {
        let b = w.run(st);
        rest.push(b);
        rest.append(&mut w.branches);
    }
    let mut branches = vec![first.clone()];
    branches.extend(rest);
    let verdict = if branches.iter().all(|b| b.verdict == Verdict::Accept) {
        Verdict::Accept
    } else if branches.iter().all(|b| b.verdict.is_blocking()) {
        first.verdict.clone()
    } else if let Some(ct) = branches.iter().find_map(|b| match &b.verdict {
        Verdict::CannotTell(why) if branches.len() == 1 => Some(why.clone()),
        _ => None,
    }) {
        Verdict::CannotTell(ct)
    } else {
        Verdict::CannotTell(format!(
            "it depends on {} rule(s) whose matches cannot be judged here: {}",
            w.unknown.len(),
            w.unknown.join(" | ")
        ))
    };
    Evaluation {
        verdict,
        primary: first,
        branches,
        unknown: w.unknown,
        visited: w.visited,
        base_chains: w.base_chains,
        rules_evaluated: w.steps,
    }
}

/// DROP/REJECT rules the packet never reaches: how many, in which chains, and from which hooks
/// those chains are reachable (e.g. only FORWARD for Docker's chains).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unreached {
    pub rules: usize,
    pub chains: Vec<String>,
    pub hooks: BTreeSet<Hook>,
}

impl Unreached {
    /// `2 DROP/REJECT rule(s) in 2 chain(s) this packet never traverses (DOCKER-ISOLATION-STAGE-2,
    /// TRIAGE502-FENCE; reached only from FORWARD)`.
    pub fn describe(&self) -> String {
        let mut shown: Vec<&str> = self.chains.iter().map(String::as_str).take(8).collect();
        if self.chains.len() > 8 {
            shown.push("…");
        }
        let hooks: Vec<&str> = self.hooks.iter().map(|h| h.as_str()).collect();
        let from = if hooks.is_empty() {
            "no hook reaches them".to_owned()
        } else {
            format!("reached only from {}", hooks.join("/"))
        };
        format!(
            "{} DROP/REJECT rule(s) in {} chain(s) this packet never traverses ({}; {from})",
            self.rules,
            self.chains.len(),
            shown.join(", ")
        )
    }
}

/// The chains none of `evals` entered, with their rules and the hooks that reach them.
pub fn unreached(rs: &Ruleset, evals: &[&Evaluation]) -> Unreached {
    let visited: BTreeSet<(usize, String)> = evals
        .iter()
        .flat_map(|e| e.visited.iter().cloned())
        .collect();
    let mut out = Unreached::default();
    for (ti, t) in rs.tables.iter().enumerate() {
        // Which hooks reach each chain of this table.
        let mut reach: BTreeMap<&str, BTreeSet<Hook>> = BTreeMap::new();
        for c in t.chains.values() {
            let Some(b) = &c.base else { continue };
            let mut stack = vec![c.name.as_str()];
            let mut seen = BTreeSet::new();
            while let Some(n) = stack.pop() {
                if !seen.insert(n) {
                    continue;
                }
                reach.entry(n).or_default().insert(b.hook);
                for r in t
                    .chains
                    .get(n)
                    .map(|c| c.rules.as_slice())
                    .unwrap_or_default()
                {
                    let mut targets = Vec::new();
                    match &r.action {
                        Action::Jump(x) | Action::Goto(x) => targets.push(x.as_str()),
                        Action::Vmap(es) => {
                            for (_, a) in es {
                                if let Action::Jump(x) | Action::Goto(x) = a {
                                    targets.push(x.as_str());
                                }
                            }
                        }
                        _ => {}
                    }
                    stack.extend(targets);
                }
            }
        }
        for c in t.chains.values() {
            let blocking = c
                .rules
                .iter()
                .filter(|r| matches!(r.action, Action::Drop | Action::Reject(_)))
                .count();
            if blocking == 0 || visited.contains(&(ti, c.name.clone())) {
                continue;
            }
            out.rules += blocking;
            out.chains.push(c.name.clone());
            if let Some(h) = reach.get(c.name.as_str()) {
                out.hooks.extend(h.iter().copied());
            }
        }
    }
    out
}
