//! `nft -j list ruleset` (native nftables) into tables.
//!
//! Families ip, ip6 and inet are evaluated (bridge, arp and netdev tables are kept with
//! [`Family::Other`] and never seen by an IP packet here). Base chains carry hook, priority and
//! policy; rules become matches (`iif`/`oif`/`iifname`/`oifname` with `*` wildcards,
//! `ip`/`ip6 saddr`/`daddr` with prefixes, ranges and sets, `tcp`/`udp`/`th` ports with ranges
//! and sets, `ct state`, `meta l4proto`/`nfproto`, `fib ... type`) and an action (accept, drop,
//! reject, jump, goto, return, verdict maps, NAT). Anything else that restricts a rule is an
//! unknown match that keeps its text. Each rule's text is rendered back from the JSON in nft's
//! syntax, with its handle, so it can be found with `nft -a list ruleset`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::iptables;
use super::packet::{CtState, Hook, ICMP, ICMPV6, TCP, UDP};
use super::rules::{
    Action, AddrRange, Addrs, Base, Chain, Cond, Family, IfName, Match, Net, Rule, Source, Table,
};

/// One atom of a right-hand side.
#[derive(Debug, Clone)]
enum Atom {
    Str(String),
    Num(i64),
    Prefix(String, u8),
    Range(Box<Atom>, Box<Atom>),
}

fn atoms(v: &Value, sets: &BTreeMap<String, Value>, out: &mut Vec<Atom>) -> bool {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('@') {
                match sets.get(name) {
                    Some(elems) => return atoms(elems, sets, out),
                    None => return false,
                }
            }
            out.push(Atom::Str(s.clone()));
            true
        }
        Value::Number(n) => match n.as_i64() {
            Some(n) => {
                out.push(Atom::Num(n));
                true
            }
            None => false,
        },
        Value::Array(a) => a.iter().all(|x| atoms(x, sets, out)),
        Value::Object(o) => {
            if let Some(s) = o.get("set") {
                return atoms(s, sets, out);
            }
            if let Some(p) = o.get("prefix") {
                let addr = p.get("addr").and_then(Value::as_str).unwrap_or("");
                let len = p.get("len").and_then(Value::as_u64).unwrap_or(255);
                if let Ok(len) = u8::try_from(len) {
                    out.push(Atom::Prefix(addr.to_owned(), len));
                    return true;
                }
                return false;
            }
            if let Some(Value::Array(r)) = o.get("range") {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                if r.len() == 2
                    && atoms(&r[0], sets, &mut a)
                    && atoms(&r[1], sets, &mut b)
                    && a.len() == 1
                    && b.len() == 1
                {
                    out.push(Atom::Range(Box::new(a.remove(0)), Box::new(b.remove(0))));
                    return true;
                }
                return false;
            }
            if let Some(e) = o.get("elem") {
                return atoms(e.get("val").unwrap_or(e), sets, out);
            }
            false
        }
        _ => false,
    }
}

fn num(a: &Atom) -> Option<i64> {
    match a {
        Atom::Num(n) => Some(*n),
        Atom::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// Renders a JSON expression back in nft syntax (best effort, for showing rules).
fn render(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => {
            if s.starts_with('@')
                || s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".:/-_".contains(c))
            {
                s.clone()
            } else {
                format!("\"{s}\"")
            }
        }
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => format!(
            "{{ {} }}",
            a.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            if let Some(s) = o.get("set") {
                return match s {
                    Value::Array(_) => render(s),
                    x => format!("{{ {} }}", render(x)),
                };
            }
            if let Some(p) = o.get("prefix") {
                return format!(
                    "{}/{}",
                    p.get("addr").map(render).unwrap_or_default(),
                    p.get("len").map(render).unwrap_or_default()
                );
            }
            if let Some(Value::Array(r)) = o.get("range") {
                return r.iter().map(render).collect::<Vec<_>>().join("-");
            }
            if let Some(m) = o.get("meta") {
                let key = m.get("key").and_then(Value::as_str).unwrap_or("?");
                return if matches!(
                    key,
                    "iifname" | "oifname" | "iif" | "oif" | "mark" | "skuid" | "skgid"
                ) {
                    key.to_owned()
                } else {
                    format!("meta {key}")
                };
            }
            if let Some(p) = o.get("payload") {
                return format!(
                    "{} {}",
                    p.get("protocol").and_then(Value::as_str).unwrap_or("?"),
                    p.get("field").and_then(Value::as_str).unwrap_or("?")
                );
            }
            if let Some(c) = o.get("ct") {
                return format!("ct {}", c.get("key").and_then(Value::as_str).unwrap_or("?"));
            }
            if let Some(f) = o.get("fib") {
                let flags = match f.get("flags") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" . "),
                    Some(Value::String(s)) => s.clone(),
                    _ => String::new(),
                };
                return format!(
                    "fib {flags} {}",
                    f.get("result").and_then(Value::as_str).unwrap_or("")
                );
            }
            if let Some(e) = o.get("elem") {
                return render(e.get("val").unwrap_or(e));
            }
            if let Some((k, x)) = o.iter().next() {
                let arg = render(x);
                return if arg.is_empty() {
                    k.clone()
                } else {
                    format!("{k} {arg}")
                };
            }
            String::new()
        }
    }
}

fn render_stmt(s: &Value) -> String {
    let Some(o) = s.as_object() else {
        return render(s);
    };
    if let Some(m) = o.get("match") {
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let left = m.get("left").map(render).unwrap_or_default();
        let right = m.get("right").map(render).unwrap_or_default();
        return match op {
            "==" | "in" => format!("{left} {right}"),
            op => format!("{left} {op} {right}"),
        };
    }
    if o.contains_key("counter") {
        return "counter".into();
    }
    if let Some(Value::Object(j)) = o.get("jump") {
        return format!(
            "jump {}",
            j.get("target").and_then(Value::as_str).unwrap_or("?")
        );
    }
    if let Some(Value::Object(j)) = o.get("goto") {
        return format!(
            "goto {}",
            j.get("target").and_then(Value::as_str).unwrap_or("?")
        );
    }
    if let Some(r) = o.get("reject") {
        return match r {
            Value::Object(r) if r.contains_key("expr") => format!(
                "reject with {} {}",
                r.get("type").and_then(Value::as_str).unwrap_or("icmp"),
                render(&r["expr"])
            ),
            _ => "reject".into(),
        };
    }
    if let Some(x) = o.get("xt") {
        return format!(
            "xt {} {}",
            x.get("type").and_then(Value::as_str).unwrap_or(""),
            x.get("name").and_then(Value::as_str).unwrap_or("")
        );
    }
    if let Some(v) = o.get("vmap") {
        return format!(
            "{} vmap {}",
            v.get("key").map(render).unwrap_or_default(),
            v.get("data").map(render_vmap_data).unwrap_or_default()
        );
    }
    render(s)
}

fn render_vmap_data(d: &Value) -> String {
    match d.get("set") {
        Some(Value::Array(items)) => format!(
            "{{ {} }}",
            items
                .iter()
                .map(|it| match it {
                    Value::Array(kv) if kv.len() == 2 =>
                        format!("{} : {}", render(&kv[0]), render(&kv[1])),
                    x => render(x),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => render(d),
    }
}

/// What the left side of a match tests.
enum Left {
    Iif,
    Oif,
    Saddr,
    Daddr,
    L4proto,
    Sport,
    Dport,
    State,
    FibSrc,
    FibDst,
    Nfproto,
}

/// The left side: what it tests and the implicit dependencies nft adds (`ip saddr` only sees
/// IPv4; `tcp dport` only TCP).
fn left(v: &Value) -> Option<(Vec<Match>, Left)> {
    let o = v.as_object()?;
    if let Some(m) = o.get("meta") {
        return Some((
            Vec::new(),
            match m.get("key")?.as_str()? {
                "iifname" | "iif" => Left::Iif,
                "oifname" | "oif" => Left::Oif,
                "l4proto" => Left::L4proto,
                "nfproto" => Left::Nfproto,
                _ => return None,
            },
        ));
    }
    if let Some(p) = o.get("payload") {
        let proto = p.get("protocol")?.as_str()?;
        let field = p.get("field")?.as_str()?;
        let mut deps = Vec::new();
        let l = match (proto, field) {
            ("ip" | "ip6", "saddr") => Left::Saddr,
            ("ip" | "ip6", "daddr") => Left::Daddr,
            ("ip", "protocol") | ("ip6", "nexthdr") => Left::L4proto,
            ("tcp" | "udp" | "th" | "sctp" | "dccp" | "udplite", "sport") => Left::Sport,
            ("tcp" | "udp" | "th" | "sctp" | "dccp" | "udplite", "dport") => Left::Dport,
            _ => return None,
        };
        match proto {
            "ip" => deps.push(Match::new(Cond::V4(true))),
            "ip6" => deps.push(Match::new(Cond::V4(false))),
            "tcp" => deps.push(Match::new(Cond::Proto(vec![TCP]))),
            "udp" => deps.push(Match::new(Cond::Proto(vec![UDP]))),
            "sctp" => deps.push(Match::new(Cond::Proto(vec![132]))),
            "dccp" => deps.push(Match::new(Cond::Proto(vec![33]))),
            "udplite" => deps.push(Match::new(Cond::Proto(vec![136]))),
            _ => {}
        }
        return Some((deps, l));
    }
    if let Some(c) = o.get("ct") {
        return (c.get("key")?.as_str()? == "state" && c.get("dir").is_none())
            .then_some((Vec::new(), Left::State));
    }
    if let Some(f) = o.get("fib") {
        if f.get("result")?.as_str()? != "type" {
            return None;
        }
        let flags: Vec<&str> = match f.get("flags")? {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => return None,
        };
        if flags.iter().any(|f| matches!(*f, "iif" | "oif" | "mark")) {
            return None;
        }
        if flags.contains(&"daddr") {
            return Some((Vec::new(), Left::FibDst));
        }
        if flags.contains(&"saddr") {
            return Some((Vec::new(), Left::FibSrc));
        }
    }
    None
}

fn proto_atom(a: &Atom) -> Option<u8> {
    match a {
        Atom::Num(n) => u8::try_from(*n).ok(),
        Atom::Str(s) => match s.as_str() {
            "tcp" => Some(TCP),
            "udp" => Some(UDP),
            "icmp" => Some(ICMP),
            "icmpv6" | "ipv6-icmp" => Some(ICMPV6),
            "sctp" => Some(132),
            "dccp" => Some(33),
            "udplite" => Some(136),
            "esp" => Some(50),
            "ah" => Some(51),
            "gre" => Some(47),
            s => s.parse().ok(),
        },
        _ => None,
    }
}

fn addr_atoms(xs: &[Atom]) -> Option<Addrs> {
    let mut a = Addrs::default();
    for x in xs {
        match x {
            Atom::Str(s) => a.nets.push(Net::parse(s)?),
            Atom::Prefix(addr, len) => a.nets.push(Net {
                addr: addr.parse().ok()?,
                len: *len,
            }),
            Atom::Range(x, y) => match (&**x, &**y) {
                (Atom::Str(x), Atom::Str(y)) => {
                    a.ranges.push(AddrRange(x.parse().ok()?, y.parse().ok()?));
                }
                _ => return None,
            },
            Atom::Num(_) => return None,
        }
    }
    Some(a)
}

fn port_atoms(xs: &[Atom], op: &str) -> Option<Vec<(u16, u16)>> {
    let one = |a: &Atom| -> Option<u16> { num(a).and_then(|n| u16::try_from(n).ok()) };
    match op {
        "<" | ">" | "<=" | ">=" => {
            let n = one(xs.first()?)?;
            return Some(vec![match op {
                "<" => (0, n.checked_sub(1)?),
                "<=" => (0, n),
                ">" => (n.checked_add(1)?, u16::MAX),
                _ => (n, u16::MAX),
            }]);
        }
        _ => {}
    }
    xs.iter()
        .map(|x| match x {
            Atom::Range(a, b) => Some((one(a)?, one(b)?)),
            a => one(a).map(|n| (n, n)),
        })
        .collect()
}

/// One `match` statement into matches (dependencies first); `None`: cannot be judged.
fn convert_match(m: &Value, sets: &BTreeMap<String, Value>) -> Option<Vec<Match>> {
    let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
    let (mut deps, l) = left(m.get("left")?)?;
    let mut xs = Vec::new();
    if !atoms(m.get("right")?, sets, &mut xs) || xs.is_empty() {
        return None;
    }
    let neg = match op {
        "==" | "in" => false,
        "!=" => true,
        "<" | ">" | "<=" | ">=" if matches!(l, Left::Sport | Left::Dport) => false,
        _ => return None,
    };
    let strs = || -> Option<Vec<String>> {
        xs.iter()
            .map(|a| match a {
                Atom::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    let cond = match l {
        Left::Iif => Cond::Iif(strs()?.iter().map(|s| IfName::nft(s)).collect()),
        Left::Oif => Cond::Oif(strs()?.iter().map(|s| IfName::nft(s)).collect()),
        Left::Saddr => Cond::Src(addr_atoms(&xs)?),
        Left::Daddr => Cond::Dst(addr_atoms(&xs)?),
        Left::L4proto => Cond::Proto(xs.iter().map(proto_atom).collect::<Option<_>>()?),
        Left::Sport => Cond::Sport(port_atoms(&xs, op)?),
        Left::Dport => Cond::Dport(port_atoms(&xs, op)?),
        Left::State => Cond::CtState(
            strs()?
                .iter()
                .map(|s| CtState::parse(s))
                .collect::<Option<_>>()?,
        ),
        Left::FibSrc => Cond::SrcType(strs()?.iter().map(|s| s.to_ascii_uppercase()).collect()),
        Left::FibDst => Cond::DstType(strs()?.iter().map(|s| s.to_ascii_uppercase()).collect()),
        Left::Nfproto => {
            let s = strs()?;
            if s.len() != 1 {
                return None;
            }
            Cond::V4(match s[0].as_str() {
                "ipv4" | "ip" => true,
                "ipv6" | "ip6" => false,
                _ => return None,
            })
        }
    };
    deps.push(Match { neg, cond });
    Some(deps)
}

fn verdict(o: &serde_json::Map<String, Value>) -> Option<Action> {
    let (k, v) = o.iter().next()?;
    Some(match k.as_str() {
        "accept" => Action::Accept,
        "drop" => Action::Drop,
        "reject" => Action::Reject(match v {
            Value::Object(r) => r
                .get("expr")
                .map(render)
                .or_else(|| r.get("type").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default(),
            _ => String::new(),
        }),
        "jump" => Action::Jump(v.get("target")?.as_str()?.to_owned()),
        "goto" => Action::Goto(v.get("target")?.as_str()?.to_owned()),
        "return" => Action::Return,
        "continue" => Action::Continue,
        "masquerade" | "snat" | "dnat" | "redirect" => Action::Nat(k.to_ascii_uppercase()),
        "queue" => Action::Unknown("queue (userspace decides)".into()),
        _ => return None,
    })
}

/// A rule's expressions into matches and an action.
fn convert_rule(exprs: &[Value], sets: &BTreeMap<String, Value>) -> (Vec<Match>, Action) {
    let mut ms = Vec::new();
    let mut action = Action::Continue;
    for stmt in exprs {
        let Some(obj) = stmt.as_object() else {
            continue;
        };
        let Some((key, val)) = obj.iter().next() else {
            continue;
        };
        match key.as_str() {
            "match" => match convert_match(val, sets) {
                Some(m) => ms.extend(m),
                None => ms.push(Match::new(Cond::Unknown(render_stmt(stmt)))),
            },
            "limit" | "quota" | "connlimit" | "numgen" | "meter" | "set" | "synproxy" => {
                ms.push(Match::new(Cond::Unknown(render_stmt(stmt))));
            }
            "xt" => {
                let name = val.get("name").and_then(Value::as_str).unwrap_or("");
                match val.get("type").and_then(Value::as_str) {
                    Some("match") if name == "comment" => {}
                    Some("match") => ms.push(Match::new(Cond::Unknown(render_stmt(stmt)))),
                    Some("target") => {
                        let line = format!("-A X -j {name}");
                        action = iptables::parse_rule(&line[3..], &line)
                            .map_or(Action::Unknown(render_stmt(stmt)), |(_, r)| r.action);
                        break;
                    }
                    _ => {}
                }
            }
            "vmap" => {
                let vkey = val.get("key").cloned().unwrap_or(Value::Null);
                let mut entries = Vec::new();
                let data = val.get("data").cloned().unwrap_or(Value::Null);
                let items = match &data {
                    Value::String(s) if s.starts_with('@') => {
                        sets.get(&s[1..]).cloned().unwrap_or(Value::Null)
                    }
                    d => d.get("set").cloned().unwrap_or(Value::Null),
                };
                let mut ok = true;
                for it in items.as_array().map(Vec::as_slice).unwrap_or_default() {
                    let Some([k, d]) = it
                        .as_array()
                        .map(Vec::as_slice)
                        .and_then(|a| <&[Value; 2]>::try_from(a).ok())
                    else {
                        ok = false;
                        break;
                    };
                    let m = serde_json::json!({ "op": "==", "left": vkey, "right": k });
                    let (Some(mut conds), Some(act)) =
                        (convert_match(&m, sets), d.as_object().and_then(verdict))
                    else {
                        ok = false;
                        break;
                    };
                    // Dependencies are the same for every entry: an entry holds when all its
                    // matches do, expressed as one match on the last condition after its deps.
                    let last = conds.pop();
                    for c in conds {
                        if !ms.contains(&c) {
                            ms.push(c);
                        }
                    }
                    if let Some(last) = last {
                        entries.push((last, act));
                    }
                }
                action = if ok && !entries.is_empty() {
                    Action::Vmap(entries)
                } else {
                    Action::Unknown(render_stmt(stmt))
                };
                break;
            }
            _ => {
                if let Some(a) = verdict(obj) {
                    action = a;
                    if !matches!(action, Action::Continue) {
                        break;
                    }
                }
            }
        }
    }
    (ms, action)
}

/// Parses `nft -j list ruleset`. Tables named in `skip` (family, name) are left out: those are
/// the iptables-nft tables the caller reads from `iptables-save` instead.
pub fn parse(json: &str, skip: &[(Family, String)]) -> Result<Vec<Table>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("nft JSON does not parse: {e}"))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft JSON has no `nftables` array")?;
    let key = |o: &Value| -> Option<(Family, String)> {
        Some((
            Family::parse(o.get("family")?.as_str()?),
            o.get("table")?.as_str()?.to_owned(),
        ))
    };
    let skipped = |f: Family, t: &str| skip.iter().any(|(sf, st)| *sf == f && st == t);
    let mut tables: Vec<Table> = Vec::new();
    let mut sets: BTreeMap<(Family, String), BTreeMap<String, Value>> = BTreeMap::new();
    for it in items {
        if let Some(t) = it.get("table") {
            let fam = Family::parse(t.get("family").and_then(Value::as_str).unwrap_or(""));
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if !skipped(fam, &name) {
                tables.push(Table {
                    source: Source::Nft,
                    family: fam,
                    name,
                    chains: BTreeMap::new(),
                });
            }
        } else if let Some(s) = it.get("set").or_else(|| it.get("map")) {
            if let (Some(k), Some(name)) = (key(s), s.get("name").and_then(Value::as_str)) {
                sets.entry(k).or_default().insert(
                    name.to_owned(),
                    s.get("elem").cloned().unwrap_or(Value::Array(vec![])),
                );
            }
        }
    }
    for it in items {
        if let Some(c) = it.get("chain") {
            let Some((fam, tname)) = key(c) else { continue };
            let Some(t) = tables
                .iter_mut()
                .find(|t| t.family == fam && t.name == tname)
            else {
                continue;
            };
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let base = match (c.get("hook").and_then(Value::as_str), c.get("prio")) {
                (Some(h), Some(p)) => Hook::parse(h).map(|hook| Base {
                    hook,
                    priority: p.as_i64().unwrap_or(0) as i32,
                    accept: c.get("policy").and_then(Value::as_str) != Some("drop"),
                    kind: c
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("filter")
                        .to_owned(),
                }),
                _ => None,
            };
            t.chains.insert(
                name.clone(),
                Chain {
                    name,
                    base,
                    rules: Vec::new(),
                },
            );
        }
    }
    let empty = BTreeMap::new();
    for it in items {
        let Some(r) = it.get("rule") else { continue };
        let Some((fam, tname)) = key(r) else { continue };
        let Some(t) = tables
            .iter_mut()
            .find(|t| t.family == fam && t.name == tname)
        else {
            continue;
        };
        let chain = r
            .get("chain")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let exprs = r
            .get("expr")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let tsets = sets.get(&(fam, tname.clone())).unwrap_or(&empty);
        let (matches, action) = convert_rule(exprs, tsets);
        let mut text = exprs
            .iter()
            .map(render_stmt)
            .filter(|s| !s.is_empty() && s != "counter")
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(c) = r.get("comment").and_then(Value::as_str) {
            let _ = write!(text, " comment \"{c}\"");
        }
        if let Some(h) = r.get("handle").and_then(Value::as_u64) {
            let _ = write!(text, " # handle {h}");
        }
        t.chains
            .entry(chain.clone())
            .or_insert_with(|| Chain {
                name: chain,
                base: None,
                rules: Vec::new(),
            })
            .rules
            .push(Rule {
                text,
                matches,
                action,
            });
    }
    Ok(tables)
}
