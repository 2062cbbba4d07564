//! Draw a playbook: Mermaid and Graphviz for docs, an indented tree for the terminal.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::{Cond, NodeKind, Playbook};

/// Output format of `playbook graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
    Text,
}

/// Labelled edges of a node: (label, target).
fn edges(pb: &Playbook, id: &str) -> Vec<(String, String)> {
    let Some(n) = pb.node(id) else { return vec![] };
    let mut out: Vec<(String, String)> = n
        .when
        .iter()
        .map(|w| {
            let label = match &w.cond {
                Cond::Found(c) => format!("found {c}"),
                Cond::FactEquals(f, v) => format!("{f} = {v}"),
                Cond::FactPresent(f) => format!("{f} known"),
            };
            (label, w.next.clone())
        })
        .collect();
    match &n.kind {
        NodeKind::Checks {
            ok,
            problem,
            inconclusive,
            ..
        } => {
            out.push(("ok".into(), ok.clone()));
            out.push(("problem".into(), problem.clone()));
            out.push(("inconclusive".into(), inconclusive.clone()));
        }
        NodeKind::Question { choices, .. } => {
            out.extend(choices.iter().map(|c| (c.id.clone(), c.next.clone())));
        }
        NodeKind::Action {
            done,
            failed,
            declined,
            ..
        } => {
            out.push(("done".into(), done.clone()));
            out.push(("failed".into(), failed.clone()));
            out.push(("declined".into(), declined.clone()));
        }
        NodeKind::Call {
            resolved, escalate, ..
        } => {
            out.push(("resolved".into(), resolved.clone()));
            out.push(("escalate".into(), escalate.clone()));
        }
        NodeKind::Info { next } => out.push((String::new(), next.clone())),
        NodeKind::End(_) => {}
    }
    out
}

fn mermaid_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_label(s: &str) -> String {
    s.replace('"', "'")
        .replace(['[', ']', '{', '}', '(', ')', '|', '<', '>'], " ")
}

/// Render the whole playbook in `format`.
pub fn render(pb: &Playbook, format: Format) -> String {
    match format {
        Format::Mermaid => mermaid(pb),
        Format::Dot => dot(pb),
        Format::Text => text(pb),
    }
}

fn mermaid(pb: &Playbook) -> String {
    let mut s = String::from("flowchart TD\n");
    for n in &pb.nodes {
        let title = escape_label(&n.title);
        let id = mermaid_id(&n.id);
        let shape = match &n.kind {
            NodeKind::Question { .. } => format!("{id}{{\"{title}\"}}"),
            NodeKind::End(_) => format!("{id}([\"{title}\"])"),
            NodeKind::Action { tier, .. } => format!("{id}[/\"{title} ({tier})\"/]"),
            NodeKind::Call { playbook, .. } => format!("{id}[[\"{title} → {playbook}\"]]"),
            _ => format!("{id}[\"{title}\"]"),
        };
        let _ = writeln!(s, "    {shape}");
    }
    for n in &pb.nodes {
        for (label, to) in edges(pb, &n.id) {
            if label.is_empty() {
                let _ = writeln!(s, "    {} --> {}", mermaid_id(&n.id), mermaid_id(&to));
            } else {
                let _ = writeln!(
                    s,
                    "    {} -->|{}| {}",
                    mermaid_id(&n.id),
                    escape_label(&label),
                    mermaid_id(&to)
                );
            }
        }
    }
    s
}

fn dot(pb: &Playbook) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut s = format!(
        "digraph {} {{\n    rankdir=TB;\n    node [fontname=\"sans-serif\"];\n",
        q(&pb.id)
    );
    for n in &pb.nodes {
        let shape = match n.kind {
            NodeKind::Question { .. } => "diamond",
            NodeKind::End(_) => "oval",
            NodeKind::Action { .. } => "parallelogram",
            NodeKind::Call { .. } => "component",
            _ => "box",
        };
        let _ = writeln!(
            s,
            "    {} [label={}, shape={shape}];",
            q(&n.id),
            q(&n.title)
        );
    }
    for n in &pb.nodes {
        for (label, to) in edges(pb, &n.id) {
            let _ = writeln!(s, "    {} -> {} [label={}];", q(&n.id), q(&to), q(&label));
        }
    }
    s.push_str("}\n");
    s
}

/// An indented tree from the start; a node already drawn is referenced, not repeated.
fn text(pb: &Playbook) -> String {
    let mut out = format!("{} ({} v{})\n", pb.title, pb.id, pb.version);
    let mut seen = HashSet::new();
    walk(pb, &pb.start, "", "", &mut seen, &mut out, 0);
    out
}

fn walk(
    pb: &Playbook,
    id: &str,
    label: &str,
    indent: &str,
    seen: &mut HashSet<String>,
    out: &mut String,
    depth: usize,
) {
    let Some(n) = pb.node(id) else { return };
    let tag = match &n.kind {
        NodeKind::End(e) => format!(
            " [end: {}]",
            serde_json::to_value(e)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        NodeKind::Question { .. } => " [?]".into(),
        NodeKind::Action { tier, .. } => format!(" [action: {tier}]"),
        NodeKind::Call { playbook, .. } => format!(" [call {playbook}]"),
        _ => String::new(),
    };
    let prefix = if label.is_empty() {
        String::new()
    } else {
        format!("{label} → ")
    };
    if !seen.insert(id.to_owned()) {
        let _ = writeln!(out, "{indent}{prefix}{id} (see above)");
        return;
    }
    let _ = writeln!(out, "{indent}{prefix}{id}: {}{tag}", n.title);
    if depth > 200 {
        return;
    }
    let child_indent = format!("{indent}    ");
    for (l, to) in edges(pb, id) {
        walk(pb, &to, &l, &child_indent, seen, out, depth + 1);
    }
}
