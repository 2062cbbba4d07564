//! Parse and validate one playbook file, reporting every problem at once.
//!
//! Syntax errors stop early (the structure is not trustworthy). After that,
//! the header and each `[[node]]` are deserialised separately, so a typo in
//! one node does not hide the errors in the others; then the references,
//! templates and graph are checked.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostic::{Diagnostic, Level};
use super::raw::{RawBranches, RawHeader, RawNode, RawVar, VarType};
use super::{Choice, Cond, FindingRule, Header, Node, NodeKind, Playbook, Var, When};
use crate::cause::Cause;
use crate::check;
use crate::template;

/// The result of loading: a playbook when there was no error, and every
/// diagnostic (errors and warnings) either way.
#[derive(Debug)]
pub struct Loaded {
    pub playbook: Option<Playbook>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == Level::Error)
    }
}

/// Names every playbook can read without declaring them.
pub const BUILTIN_VALUES: &[&str] = &["since", "playbook.id", "host.name"];

/// Suffixes derived from every `url` variable (`{{ url.host }}`).
pub const URL_PARTS: &[&str] = &["host", "port", "path", "scheme", "origin", "hostport"];

/// Parse and validate `src`. `known_playbooks` are the ids `call` may name
/// (besides this playbook's own id).
#[allow(clippy::implicit_hasher)]
pub fn load(src: &str, known_playbooks: &HashSet<String>) -> Loaded {
    let mut diags = Vec::new();
    let (doc, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        for e in errors {
            let mut d = toml_error(&e, "TOML syntax error");
            if d.span.is_none() {
                d.span = super::diagnostic::locate_toml_error(src, e.message());
            }
            diags.push(d);
        }
        return Loaded {
            playbook: None,
            diagnostics: diags,
        };
    }
    let doc_span = doc.span();
    let mut table = doc.into_inner();
    let node_key = table
        .keys()
        .find(|k| k.get_ref().as_ref() == "node")
        .cloned();
    let raw_nodes_value = node_key.and_then(|k| table.remove(&k));

    let header =
        match RawHeader::deserialize(toml::de::Deserializer::from(Spanned::new(doc_span, table))) {
            Ok(h) => Some(h),
            Err(e) => {
                diags.push(toml_error(&e, "invalid playbook header"));
                None
            }
        };

    let mut raw_nodes = Vec::new();
    let mut broken_ids = Vec::new();
    if let Some(v) = raw_nodes_value {
        let span = v.span();
        match v.into_inner() {
            DeValue::Array(items) => {
                for item in items {
                    let id = node_id(item.get_ref());
                    match RawNode::deserialize(ValueDeserializer::from(item)) {
                        Ok(n) => raw_nodes.push(n),
                        Err(e) => {
                            diags.push(toml_error(&e, "invalid node"));
                            // Still known, so references to it are not reported twice.
                            broken_ids.extend(id);
                        }
                    }
                }
            }
            _ => diags.push(
                Diagnostic::error("`node` must be an array of tables", Some(span))
                    .hint("write each step as a `[[node]]` section"),
            ),
        }
    }

    let Some(header) = header else {
        return Loaded {
            playbook: None,
            diagnostics: diags,
        };
    };
    let had_parse_errors = !diags.is_empty();
    let mut v = Validator {
        diags,
        known_playbooks,
        names: HashSet::new(),
    };
    let playbook = v.validate(header, raw_nodes, &broken_ids);
    let failed = had_parse_errors || v.diags.iter().any(|d| d.level == Level::Error);
    Loaded {
        playbook: if failed { None } else { playbook },
        diagnostics: v.diags,
    }
}

/// The `id` of a node table that failed to deserialise, if readable.
fn node_id(v: &DeValue<'_>) -> Option<String> {
    let DeValue::Table(t) = v else { return None };
    t.iter()
        .find(|(k, _)| k.get_ref().as_ref() == "id")
        .and_then(|(_, v)| match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        })
}

fn toml_error(e: &toml::de::Error, context: &str) -> Diagnostic {
    let mut msg = e.message().trim().trim_end_matches('.').to_owned();
    // The list of check kinds grows; the hint points at the full list instead.
    if msg.contains("unknown variant") && msg.contains("`http`") {
        if let Some(i) = msg.find(", expected") {
            msg.truncate(i);
            msg.push_str(" (not a check kind)");
        }
    }
    let hint = if msg.contains("unknown field") {
        Some("check the spelling; `triage502 playbook schema` prints every allowed key")
    } else if msg.contains("unknown variant") && msg.contains("`http`") {
        Some("`triage502 checks list` lists the check kinds and their parameters")
    } else {
        None
    };
    let d = Diagnostic::error(format!("{context}: {msg}"), e.span());
    match hint {
        Some(h) => d.hint(h),
        None => d,
    }
}

struct Validator<'a> {
    diags: Vec<Diagnostic>,
    known_playbooks: &'a HashSet<String>,
    /// Every value name templates may read.
    names: HashSet<String>,
}

#[allow(clippy::unnecessary_wraps)] // diagnostics take an optional span
fn span_of<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    Some(s.span())
}

/// The closest candidate by edit distance, for "did you mean" hints.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(word, c);
        if d <= word.len().max(3) / 3 + 1 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Validator<'_> {
    fn error(&mut self, msg: impl Into<String>, span: Option<Range<usize>>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(msg, span));
        self.diags.last_mut().expect("just pushed")
    }

    fn validate(
        &mut self,
        h: RawHeader,
        raw_nodes: Vec<RawNode>,
        broken_ids: &[String],
    ) -> Option<Playbook> {
        let vars = self.vars(&h.vars);
        // Names templates may use: variables (and url parts), facts, builtins, choice `set`s.
        for v in &vars {
            self.names.insert(v.name.clone());
            if v.ty == VarType::Url {
                for p in URL_PARTS {
                    self.names.insert(format!("{}.{p}", v.name));
                }
            }
        }
        self.names.extend(check::known_facts().map(str::to_owned));
        self.names
            .extend(BUILTIN_VALUES.iter().map(|s| (*s).to_owned()));
        for n in &raw_nodes {
            for c in &n.choices {
                self.names.extend(c.set.keys().cloned());
            }
        }

        // Node ids: unique.
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        for n in &raw_nodes {
            if let Some(first) = seen.get(n.id.get_ref()) {
                let (line, _) = (first.start, 0);
                let _ = line;
                self.error(
                    format!("duplicate node id `{}`", n.id.get_ref()),
                    span_of(&n.id),
                )
                .hint =
                    Some("node ids must be unique within a playbook; rename one of them".into());
            } else {
                seen.insert(n.id.get_ref().clone(), n.id.span());
            }
        }
        let mut ids: BTreeSet<String> = seen.keys().cloned().collect();
        ids.extend(broken_ids.iter().cloned());

        if !ids.contains(h.start.get_ref()) {
            self.unknown_node(&h.start, &ids, "start");
        }

        let mut nodes = Vec::new();
        for n in raw_nodes {
            if let Some(node) = self.node(n, &ids) {
                nodes.push(node);
            }
        }
        let header = Header {
            id: h.id.get_ref().clone(),
            title: h.title,
            version: h.version,
            description: h.description,
            symptoms: h.symptoms,
            start: h.start.get_ref().clone(),
        };
        if header.id.is_empty()
            || !header
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.error(
                format!(
                    "playbook id `{}` must be letters, digits, `-`, `_` or `.`",
                    header.id
                ),
                span_of(&h.id),
            );
        }
        let pb = Playbook::new(header, vars, nodes);
        if self.diags.iter().any(|d| d.level == Level::Error) {
            return None;
        }
        self.graph(&pb, &seen);
        Some(pb)
    }

    fn vars(&mut self, raw: &[RawVar]) -> Vec<Var> {
        let mut out: Vec<Var> = Vec::new();
        for v in raw {
            let name = v.name.get_ref();
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    format!("variable name `{name}` must be letters, digits and `_`"),
                    span_of(&v.name),
                );
                continue;
            }
            if out.iter().any(|o| &o.name == name) {
                self.error(format!("duplicate variable `{name}`"), span_of(&v.name));
                continue;
            }
            let pattern = match &v.pattern {
                None => None,
                Some(p) => match regex::Regex::new(p.get_ref()) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let msg = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                        self.error(format!("invalid pattern for `{name}`: {msg}"), span_of(p));
                        None
                    }
                },
            };
            let var = Var {
                name: name.clone(),
                prompt: v.prompt.clone(),
                ty: v.ty,
                default: v.default.clone(),
                required: v.required,
                pattern,
                help: v.help.clone(),
            };
            if let Some(d) = &v.default {
                if let Err(e) = var.validate(d) {
                    self.error(format!("default does not fit: {e}"), span_of(&v.name));
                }
            }
            out.push(var);
        }
        out
    }

    fn unknown_node(&mut self, r: &Spanned<String>, ids: &BTreeSet<String>, what: &str) {
        let hint = match suggest(r.get_ref(), ids.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("{what} must name the `id` of a `[[node]]` in this playbook"),
        };
        self.error(
            format!("{what} names unknown node `{}`", r.get_ref()),
            span_of(r),
        )
        .hint = Some(hint);
    }

    #[allow(clippy::ref_option)] // mirrors the optional raw fields
    fn target(
        &mut self,
        r: &Option<Spanned<String>>,
        fallback: &Option<Spanned<String>>,
        ids: &BTreeSet<String>,
        what: &str,
        node: &Spanned<String>,
    ) -> Option<String> {
        let Some(t) = r.as_ref().or(fallback.as_ref()) else {
            self.error(
                format!("node `{}` has no branch for `{what}`", node.get_ref()),
                span_of(node),
            )
            .hint = Some(format!(
                "add `on.{what} = \"NODE\"` (or a `next` used for every unlisted outcome)"
            ));
            return None;
        };
        if ids.contains(t.get_ref()) {
            Some(t.get_ref().clone())
        } else {
            let label = if [
                "ok",
                "problem",
                "inconclusive",
                "done",
                "failed",
                "declined",
                "resolved",
                "escalate",
            ]
            .contains(&what)
            {
                format!("on.{what}")
            } else {
                what.to_owned()
            };
            self.unknown_node(t, ids, &label);
            None
        }
    }

    fn cause(&mut self, c: &Spanned<String>) -> Option<Cause> {
        if let Ok(c) = c.get_ref().parse::<Cause>() {
            Some(c)
        } else {
            let hint = match suggest(c.get_ref(), Cause::ALL.iter().map(|c| c.id())) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "cause ids are fixed; see `triage502 causes` or assets/causes.toml".into(),
            };
            self.error(format!("unknown cause id `{}`", c.get_ref()), span_of(c))
                .hint = Some(hint);
            None
        }
    }

    fn template_names(&mut self, text: &str, span: Option<Range<usize>>) {
        match template::placeholders(text) {
            Err(e) => {
                self.error(format!("bad template: {e}"), span);
            }
            Ok(ps) => {
                for p in ps {
                    self.check_name(&p.name, span.clone());
                }
            }
        }
    }

    fn check_name(&mut self, name: &str, span: Option<Range<usize>>) {
        if !self.names.contains(name) {
            let names: Vec<String> = self.names.iter().cloned().collect();
            let hint = match suggest(name, names.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`? Otherwise declare it with a `[[var]]`"),
                None => "declare it with a `[[var]]` section, or use a fact a check publishes (`triage502 checks list`)".into(),
            };
            self.error(format!("template names undeclared value `{name}`"), span)
                .hint = Some(hint);
        }
    }

    fn json_templates(&mut self, v: &serde_json::Value, span: Option<Range<usize>>) {
        let mut names = Vec::new();
        match template::names_in_json(v, &mut names) {
            Err(e) => {
                self.error(format!("bad template: {e}"), span);
            }
            Ok(()) => {
                for n in names {
                    self.check_name(&n, span.clone());
                }
            }
        }
    }

    fn node(&mut self, n: RawNode, ids: &BTreeSet<String>) -> Option<Node> {
        let id = n.id.get_ref().clone();
        let kinds: Vec<&str> = [
            n.checks.as_ref().map(|_| "checks"),
            n.question.as_ref().map(|_| "question"),
            n.action.as_ref().map(|_| "action"),
            n.call.as_ref().map(|_| "call"),
            n.end.as_ref().map(|_| "end"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() > 1 {
            self.error(
                format!(
                    "node `{id}` has {}; a node is exactly one of these",
                    kinds.join(" and ")
                ),
                span_of(&n.id),
            );
            return None;
        }
        self.template_names(&n.guidance, Some(n.id.span()));
        let b = &n.on;
        let kind = match kinds.first().copied() {
            Some("checks") => {
                let checks = n.checks.as_ref()?;
                if checks.get_ref().is_empty() {
                    self.error(
                        format!("node `{id}` has an empty `checks` list"),
                        span_of(checks),
                    );
                }
                let mut specs = Vec::new();
                for c in checks.get_ref() {
                    match serde_json::to_value(c.get_ref()) {
                        Ok(j) => self.json_templates(&j, Some(c.span())),
                        Err(e) => {
                            self.error(format!("check cannot be serialised: {e}"), Some(c.span()));
                        }
                    }
                    specs.push(c.get_ref().clone());
                }
                self.irrelevant(
                    b,
                    &["done", "failed", "declined", "resolved", "escalate"],
                    &n.id,
                );
                let ok = self.target(&b.ok, &n.next, ids, "ok", &n.id);
                let problem = self.target(&b.problem, &n.next, ids, "problem", &n.id);
                let inconclusive =
                    self.target(&b.inconclusive, &n.next, ids, "inconclusive", &n.id);
                NodeKind::Checks {
                    checks: specs,
                    ok: ok?,
                    problem: problem?,
                    inconclusive: inconclusive?,
                }
            }
            Some("question") => {
                let text = n.question.clone().unwrap_or_default();
                self.template_names(&text, Some(n.id.span()));
                if n.choices.is_empty() {
                    self.error(format!("question `{id}` has no choices"), span_of(&n.id))
                        .hint = Some(
                        "add `choices = [{ id = \"yes\", label = \"Yes\", next = \"NODE\" }, ...]`"
                            .into(),
                    );
                }
                let mut choices = Vec::new();
                let mut choice_ids = HashSet::new();
                for c in &n.choices {
                    if !choice_ids.insert(c.id.get_ref().clone()) {
                        self.error(
                            format!("duplicate choice `{}` in question `{id}`", c.id.get_ref()),
                            span_of(&c.id),
                        );
                    }
                    if let Some(next) =
                        self.target(&Some(c.next.clone()), &None, ids, "choice", &n.id)
                    {
                        choices.push(Choice {
                            id: c.id.get_ref().clone(),
                            label: c.label.clone(),
                            next,
                            set: c.set.clone(),
                        });
                    }
                }
                let default = match &n.default {
                    None => {
                        self.error(format!("question `{id}` has no `default` choice"), span_of(&n.id)).hint =
                            Some("every question needs a default, used when nobody can answer (non-interactive runs)".into());
                        None
                    }
                    Some(d) if !choice_ids.contains(d.get_ref()) => {
                        let hint = suggest(d.get_ref(), choice_ids.iter().map(String::as_str))
                            .map_or_else(
                                || "the default must be the id of one of the choices".into(),
                                |s| format!("did you mean `{s}`?"),
                            );
                        self.error(
                            format!(
                                "default `{}` is not a choice of question `{id}`",
                                d.get_ref()
                            ),
                            span_of(d),
                        )
                        .hint = Some(hint);
                        None
                    }
                    Some(d) => Some(d.get_ref().clone()),
                };
                self.irrelevant(
                    b,
                    &[
                        "ok",
                        "problem",
                        "inconclusive",
                        "done",
                        "failed",
                        "declined",
                        "resolved",
                        "escalate",
                    ],
                    &n.id,
                );
                NodeKind::Question {
                    text,
                    choices,
                    default: default?,
                }
            }
            Some("action") => {
                let a = n.action.as_ref()?;
                let tier = a.get_ref().tier;
                if tier.is_none() {
                    self.error(format!("action `{id}` has no `tier`"), span_of(a)).hint =
                        Some("every action declares its risk: tier = \"reversible\" | \"disruptive\" | \"destructive\"".into());
                }
                match serde_json::to_value(&a.get_ref().run) {
                    Ok(j) => self.json_templates(&j, Some(a.span())),
                    Err(e) => {
                        self.error(format!("action cannot be serialised: {e}"), Some(a.span()));
                    }
                }
                self.irrelevant(
                    b,
                    &["ok", "problem", "inconclusive", "resolved", "escalate"],
                    &n.id,
                );
                let done = self.target(&b.done, &n.next, ids, "done", &n.id);
                let failed = self.target(&b.failed, &n.next, ids, "failed", &n.id);
                let declined = self.target(&b.declined, &n.next, ids, "declined", &n.id);
                NodeKind::Action {
                    tier: tier?,
                    spec: a.get_ref().run.clone(),
                    undo: a.get_ref().undo.clone(),
                    done: done?,
                    failed: failed?,
                    declined: declined?,
                }
            }
            Some("call") => {
                let c = n.call.as_ref()?;
                if !self.known_playbooks.contains(c.get_ref()) {
                    let hint = suggest(
                        c.get_ref(),
                        self.known_playbooks.iter().map(String::as_str),
                    )
                    .map_or_else(
                        || {
                            "`triage502 playbook list` shows the playbooks that can be called"
                                .into()
                        },
                        |s| format!("did you mean `{s}`?"),
                    );
                    self.error(
                        format!("call names unknown playbook `{}`", c.get_ref()),
                        span_of(c),
                    )
                    .hint = Some(hint);
                }
                self.irrelevant(
                    b,
                    &[
                        "ok",
                        "problem",
                        "inconclusive",
                        "done",
                        "failed",
                        "declined",
                    ],
                    &n.id,
                );
                let resolved = self.target(&b.resolved, &n.next, ids, "resolved", &n.id);
                let escalate = self.target(&b.escalate, &n.next, ids, "escalate", &n.id);
                NodeKind::Call {
                    playbook: c.get_ref().clone(),
                    resolved: resolved?,
                    escalate: escalate?,
                }
            }
            Some("end") => {
                self.irrelevant(
                    b,
                    &[
                        "ok",
                        "problem",
                        "inconclusive",
                        "done",
                        "failed",
                        "declined",
                        "resolved",
                        "escalate",
                    ],
                    &n.id,
                );
                if let Some(next) = &n.next {
                    self.error(format!("end node `{id}` cannot have `next`"), span_of(next));
                }
                NodeKind::End(n.end?)
            }
            _ => {
                if let Some(next) = &n.next {
                    let t = self.target(&Some(next.clone()), &None, ids, "next", &n.id)?;
                    NodeKind::Info { next: t }
                } else {
                    self.error(format!("node `{id}` does nothing"), span_of(&n.id)).hint =
                    Some("give it `checks`, a `question`, an `action`, a `call`, an `end`, or a `next` for a guidance-only step".into());
                    return None;
                }
            }
        };

        let mut when = Vec::new();
        for w in &n.when {
            let cond = match (&w.found, &w.fact) {
                (None, None) if w.unexplained => Some(Cond::Unexplained),
                (Some(c), None) => self.cause(c).map(Cond::Found),
                (None, Some(f)) => {
                    self.check_name(f.get_ref(), span_of(f));
                    Some(match &w.equals {
                        Some(v) => Cond::FactEquals(f.get_ref().clone(), v.clone()),
                        None => Cond::FactPresent(f.get_ref().clone()),
                    })
                }
                _ => {
                    self.error(
                        format!(
                            "a `when` rule of node `{id}` needs exactly one of `found`, `fact` or `unexplained = true`"
                        ),
                        span_of(&w.next),
                    );
                    None
                }
            };
            let next = self.target(&Some(w.next.clone()), &None, ids, "when", &n.id);
            if let (Some(cond), Some(next)) = (cond, next) {
                when.push(When { cond, next });
            }
        }
        let mut findings = Vec::new();
        for f in &n.finding {
            if !matches!(kind, NodeKind::Checks { .. }) {
                self.error(format!("node `{id}` records a finding but has no checks"), span_of(&f.cause)).hint =
                    Some("findings are recorded from check outcomes; move it to the node whose checks prove it".into());
                continue;
            }
            self.template_names(f.summary.get_ref(), span_of(&f.summary));
            let cond = f.fact.as_ref().map(|fact| {
                self.check_name(fact.get_ref(), span_of(fact));
                match &f.equals {
                    Some(v) => Cond::FactEquals(fact.get_ref().clone(), v.clone()),
                    None => Cond::FactPresent(fact.get_ref().clone()),
                }
            });
            if let Some(cause) = self.cause(&f.cause) {
                findings.push(FindingRule {
                    on: f.when,
                    cond,
                    cause,
                    severity: f.severity,
                    basis: f.basis,
                    summary: f.summary.get_ref().clone(),
                });
            }
        }
        let mut rules_out = Vec::new();
        for r in &n.rules_out {
            if let Some(c) = self.cause(r) {
                rules_out.push(c);
            }
        }
        Some(Node {
            id,
            title: n.title,
            guidance: n.guidance,
            kind,
            when,
            findings,
            rules_out,
            adopt: n.adopt,
        })
    }

    fn irrelevant(&mut self, b: &RawBranches, keys: &[&str], node: &Spanned<String>) {
        let all = [
            ("ok", &b.ok),
            ("problem", &b.problem),
            ("inconclusive", &b.inconclusive),
            ("done", &b.done),
            ("failed", &b.failed),
            ("declined", &b.declined),
            ("resolved", &b.resolved),
            ("escalate", &b.escalate),
        ];
        for (k, v) in all {
            if let Some(v) = v {
                if keys.contains(&k) {
                    self.diags.push(
                        Diagnostic::warning(format!("`on.{k}` does not apply to node `{}` and is ignored", node.get_ref()), Some(v.span()))
                            .hint("check nodes use ok/problem/inconclusive; actions done/failed/declined; calls resolved/escalate"),
                    );
                }
            }
        }
    }

    /// Reachability from the start, and an end reachable from every node.
    fn graph(&mut self, pb: &Playbook, spans: &HashMap<String, Range<usize>>) {
        let mut reached = HashSet::new();
        let mut queue = VecDeque::from([pb.start.as_str()]);
        while let Some(id) = queue.pop_front() {
            if !reached.insert(id) {
                continue;
            }
            if let Some(n) = pb.node(id) {
                queue.extend(n.successors());
            }
        }
        // Reverse walk from the ends.
        let mut preds: HashMap<&str, Vec<&str>> = HashMap::new();
        for n in &pb.nodes {
            for s in n.successors() {
                preds.entry(s).or_default().push(&n.id);
            }
        }
        let mut can_end = HashSet::new();
        let mut queue: VecDeque<&str> = pb
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::End(_)))
            .map(|n| n.id.as_str())
            .collect();
        while let Some(id) = queue.pop_front() {
            if !can_end.insert(id) {
                continue;
            }
            if let Some(p) = preds.get(id) {
                queue.extend(p.iter().copied());
            }
        }
        if can_end.is_empty() {
            self.error("the playbook has no `end` node", None).hint =
                Some("add a node with `end = \"resolved\"` or `end = \"escalate\"`".into());
        }
        for n in &pb.nodes {
            let span = spans.get(&n.id).cloned();
            if !reached.contains(n.id.as_str()) {
                self.diags.push(
                    Diagnostic::warning(
                        format!(
                            "node `{}` is unreachable from the start `{}`",
                            n.id, pb.start
                        ),
                        span.clone(),
                    )
                    .hint("no branch leads here; link it from another node or remove it"),
                );
            } else if !can_end.is_empty() && !can_end.contains(n.id.as_str()) {
                let hint = if n.successors().is_empty() {
                    "it has no way forward".to_owned()
                } else {
                    format!(
                        "every path from here loops back ({}); add a branch that leads to an end",
                        n.successors().join(", ")
                    )
                };
                self.error(format!("no end is reachable from node `{}`", n.id), span)
                    .hint = Some(hint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(src: &str) -> Vec<String> {
        load(src, &HashSet::new())
            .diagnostics
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    const MINI: &str = r#"
id = "mini"
title = "Mini"
version = "1"
start = "a"
[[var]]
name = "url"
prompt = "URL"
type = "url"
[[node]]
id = "a"
title = "Probe"
checks = [{ http = { url = "{{ url }}" } }]
on = { ok = "fine", problem = "bad", inconclusive = "bad" }
[[node]]
id = "fine"
title = "Fine"
end = "resolved"
[[node]]
id = "bad"
title = "Bad"
end = "escalate"
"#;

    #[test]
    fn a_minimal_playbook_validates() {
        let l = load(MINI, &HashSet::new());
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let pb = l.playbook.unwrap();
        assert_eq!(pb.nodes.len(), 3);
        assert!(matches!(
            pb.node("a").unwrap().kind,
            NodeKind::Checks { .. }
        ));
    }

    #[test]
    fn reports_several_errors_in_one_run() {
        let src = MINI
            .replace("problem = \"bad\"", "problem = \"bda\"")
            .replace("{{ url }}", "{{ ulr }}")
            .replace("end = \"resolved\"", "end = \"resolved\"\nbogus = 1");
        let e = errs(&src);
        assert!(
            e.iter().any(|m| m.contains("unknown field `bogus`")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("unknown node `bda`")), "{e:?}");
        assert!(
            e.iter().any(|m| m.contains("undeclared value `ulr`")),
            "{e:?}"
        );
    }

    #[test]
    fn cycles_without_exit_are_errors() {
        let src = MINI.replace(
            r#"on = { ok = "fine", problem = "bad", inconclusive = "bad" }"#,
            r#"on = { ok = "a", problem = "a", inconclusive = "a" }"#,
        );
        let e = errs(&src);
        assert!(
            e.iter().any(|m| m == "no end is reachable from node `a`"),
            "{e:?}"
        );
    }

    #[test]
    fn suggestions_find_close_names() {
        assert_eq!(
            suggest("upstream_refsued", Cause::ALL.iter().map(|c| c.id())),
            Some("upstream_refused")
        );
        assert_eq!(suggest("zzz", ["alpha", "beta"]), None);
    }
}
