//! `iptables-save` / `ip6tables-save` output (iptables-nft and iptables-legacy) into tables.
//!
//! Invariants: every option a rule uses is understood or becomes an unknown match that keeps
//! its text (never dropped, never assumed true); a target that is not a verdict, a chain or a
//! known non-terminal target is an unknown verdict.

use std::collections::BTreeMap;

use super::packet::{CtState, Hook, ICMP, ICMPV6, TCP, UDP};
use super::rules::{
    Action, AddrRange, Addrs, Base, Chain, Cond, Family, IfName, IpSet, Match, Net, Rule, Source,
    Table,
};

/// Built-in chains of an iptables table: hook and priority (`NF_IP_PRI_*`).
fn builtin(table: &str, chain: &str) -> Option<(Hook, i32, &'static str)> {
    let hook = Hook::parse(chain)?;
    let (prio, kind) = match table {
        "raw" => (-300, "filter"),
        "mangle" => (
            -150,
            if hook == Hook::Output {
                "route"
            } else {
                "filter"
            },
        ),
        "nat" => (
            if matches!(hook, Hook::Prerouting | Hook::Output) {
                -100
            } else {
                100
            },
            "nat",
        ),
        "filter" => (0, "filter"),
        "security" => (50, "filter"),
        _ => return None,
    };
    let ok = match table {
        "raw" => matches!(hook, Hook::Prerouting | Hook::Output),
        "nat" => hook != Hook::Forward,
        "filter" | "security" => matches!(hook, Hook::Input | Hook::Forward | Hook::Output),
        _ => true,
    };
    ok.then_some((hook, prio, kind))
}

/// Splits a rule line into words, keeping quoted strings (`"a b"`) whole, quotes removed.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn proto_num(s: &str) -> Option<Vec<u8>> {
    Some(match s.to_ascii_lowercase().as_str() {
        "all" | "0" => return None,
        "tcp" => vec![TCP],
        "udp" => vec![UDP],
        "icmp" => vec![ICMP],
        "icmpv6" | "ipv6-icmp" => vec![ICMPV6],
        "sctp" => vec![132],
        "dccp" => vec![33],
        "udplite" => vec![136],
        "esp" => vec![50],
        "ah" => vec![51],
        "gre" => vec![47],
        n => vec![n.parse().ok()?],
    })
}

/// `80`, `1000:2000`, `:1024`, `1024:`, several comma-separated (multiport); names are unknown.
pub fn port_ranges(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|p| match p.split_once(':') {
            Some((a, b)) => {
                let a = if a.is_empty() { 0 } else { a.parse().ok()? };
                let b = if b.is_empty() {
                    u16::MAX
                } else {
                    b.parse().ok()?
                };
                Some((a.min(b), a.max(b)))
            }
            None => p.parse().ok().map(|n| (n, n)),
        })
        .collect()
}

fn addrs(s: &str) -> Option<Addrs> {
    let mut a = Addrs::default();
    for part in s.split(',') {
        a.nets.push(Net::parse(part)?);
    }
    Some(a)
}

fn range(s: &str) -> Option<Addrs> {
    let (x, y) = s.split_once('-')?;
    Some(Addrs {
        nets: vec![],
        ranges: vec![AddrRange(x.parse().ok()?, y.parse().ok()?)],
    })
}

/// Options of known modules that take this many values (besides the option itself).
fn arity(opt: &str) -> usize {
    match opt {
        "--tcp-flags" | "--match-set" => 2,
        "--syn"
        | "--limit-iface-in"
        | "--limit-iface-out"
        | "--return-nomatch"
        | "--update-counters"
        | "--update-subcounters"
        | "--rcheck"
        | "--update"
        | "--set"
        | "--remove"
        | "--rsource"
        | "--rdest"
        | "--reap"
        | "--log-uid"
        | "--log-tcp-options"
        | "--log-ip-options"
        | "--log-tcp-sequence"
        | "--log-macdecode"
        | "--nfmask"
        | "--ctmask"
        | "--random"
        | "--random-fully"
        | "--persistent"
        | "--notrack"
        | "--clamp-mss-to-pmtu"
        | "--checksum-fill"
        | "--fragment"
        | "-f"
        | "--exist" => 0,
        _ => 1,
    }
}

/// Non-terminal targets: the packet goes on to the next rule.
const CONTINUE_TARGETS: &[&str] = &[
    "LOG",
    "NFLOG",
    "ULOG",
    "MARK",
    "CONNMARK",
    "CT",
    "NOTRACK",
    "TRACE",
    "TCPMSS",
    "CHECKSUM",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "SET",
    "AUDIT",
    "CONNSECMARK",
    "SECMARK",
    "IDLETIMER",
    "LED",
    "RATEEST",
    "SYNPROXY",
    "TEE",
    "HMARK",
    "TCPOPTSTRIP",
];
const NAT_TARGETS: &[&str] = &["DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"];

/// Parses one `-A CHAIN ...` line (without the `-A `) into a rule of `chain`.
pub fn parse_rule(rest: &str, line: &str) -> Option<(String, Rule)> {
    let w = words(rest);
    let chain = w.first()?.clone();
    let mut matches = Vec::new();
    let mut action = Action::Continue;
    let mut i = 1;
    let mut neg = false;
    let mut unknown_mod: Option<(String, Vec<String>)> = None;
    let flush = |u: &mut Option<(String, Vec<String>)>, ms: &mut Vec<Match>| {
        if let Some((m, opts)) = u.take() {
            ms.push(Match::new(Cond::Unknown(
                format!("-m {m} {}", opts.join(" ")).trim().to_owned(),
            )));
        }
    };
    while i < w.len() {
        let opt = w[i].as_str();
        if opt == "!" {
            neg = true;
            i += 1;
            continue;
        }
        let val = w.get(i + 1).cloned().unwrap_or_default();
        let mk = |c: Cond, neg: bool| Match { neg, cond: c };
        match opt {
            "-m" | "--match" => {
                flush(&mut unknown_mod, &mut matches);
                let module = val.clone();
                if !matches!(
                    module.as_str(),
                    "tcp"
                        | "udp"
                        | "multiport"
                        | "conntrack"
                        | "state"
                        | "addrtype"
                        | "comment"
                        | "set"
                        | "iprange"
                        | "icmp"
                        | "icmp6"
                        | "sctp"
                        | "udplite"
                        | "dccp"
                ) {
                    unknown_mod = Some((module.clone(), Vec::new()));
                }
                i += 2;
                continue;
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                flush(&mut unknown_mod, &mut matches);
                let goto = opt.starts_with("-g") || opt == "--goto";
                action = match val.as_str() {
                    "ACCEPT" => Action::Accept,
                    "DROP" => Action::Drop,
                    "RETURN" => Action::Return,
                    "REJECT" => {
                        let with = w
                            .windows(2)
                            .find(|x| x[0] == "--reject-with")
                            .map_or_else(String::new, |x| x[1].clone());
                        Action::Reject(with)
                    }
                    t if CONTINUE_TARGETS.contains(&t) => Action::Continue,
                    t if NAT_TARGETS.contains(&t) => Action::Nat(t.to_owned()),
                    t if goto => Action::Goto(t.to_owned()),
                    t => Action::Jump(t.to_owned()),
                };
                // Target options follow; none of them matter for the verdict.
                break;
            }
            _ => {}
        }
        // Options of unknown modules take the words up to the next option.
        let n = if unknown_mod.is_some() {
            w.iter()
                .skip(i + 1)
                .take_while(|x| !x.starts_with('-') && x.as_str() != "!")
                .count()
        } else {
            arity(opt)
        };
        if let Some((_, opts)) = unknown_mod.as_mut() {
            let mut text = String::new();
            if neg {
                text.push_str("! ");
            }
            text.push_str(opt);
            for v in w.iter().skip(i + 1).take(n) {
                text.push(' ');
                text.push_str(v);
            }
            opts.push(text);
            neg = false;
            i += 1 + n;
            continue;
        }
        let cond = match opt {
            "-s" | "--source" | "--src" => addrs(&val).map(Cond::Src),
            "-d" | "--destination" | "--dst" => addrs(&val).map(Cond::Dst),
            "--src-range" => range(&val).map(Cond::Src),
            "--dst-range" => range(&val).map(Cond::Dst),
            "-i" | "--in-interface" => Some(Cond::Iif(vec![IfName::iptables(&val)])),
            "-o" | "--out-interface" => Some(Cond::Oif(vec![IfName::iptables(&val)])),
            "-p" | "--protocol" => match proto_num(&val) {
                Some(p) => Some(Cond::Proto(p)),
                None if val == "all" || val == "0" => Some(Cond::Always),
                None => None,
            },
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                port_ranges(&val).map(Cond::Dport)
            }
            "--sport" | "--source-port" | "--sports" | "--source-ports" => {
                port_ranges(&val).map(Cond::Sport)
            }
            "--ports" => port_ranges(&val).map(Cond::Port),
            "--ctstate" | "--state" => val
                .split(',')
                .map(CtState::parse)
                .collect::<Option<Vec<_>>>()
                .map(Cond::CtState),
            "--src-type" => Some(Cond::SrcType(
                val.split(',').map(str::to_ascii_uppercase).collect(),
            )),
            "--dst-type" => Some(Cond::DstType(
                val.split(',').map(str::to_ascii_uppercase).collect(),
            )),
            "--limit-iface-in" | "--limit-iface-out" => Some(Cond::Always),
            "--comment" => Some(Cond::Always),
            "--match-set" => {
                let flags = w.get(i + 2).cloned().unwrap_or_default();
                Some(Cond::Set {
                    name: val.clone(),
                    dims: flags.split(',').map(|f| f == "src").collect(),
                })
            }
            "--syn" => Some(Cond::Syn),
            "--tcp-flags" => {
                // `--syn` is saved as `--tcp-flags FIN,SYN,RST,ACK SYN`; other flag tests
                // cannot be judged for a packet described by its state.
                let comp = w.get(i + 2).map_or("", String::as_str);
                (val.split(',').any(|f| f == "SYN")
                    && val.split(',').any(|f| f == "ACK")
                    && comp == "SYN")
                    .then_some(Cond::Syn)
            }
            "--icmp-type" | "--icmpv6-type" => Some(Cond::Always),
            _ => None,
        };
        let cond = cond.unwrap_or_else(|| {
            let mut text = String::new();
            if neg {
                text.push_str("! ");
            }
            text.push_str(opt);
            for v in w.iter().skip(i + 1).take(n) {
                text.push(' ');
                text.push_str(v);
            }
            Cond::Unknown(text)
        });
        matches.push(mk(cond, neg));
        neg = false;
        i += 1 + n;
    }
    flush(&mut unknown_mod, &mut matches);
    Some((
        chain,
        Rule {
            text: line.trim().to_owned(),
            matches,
            action,
        },
    ))
}

/// Parses `iptables-save` (or `ip6tables-save` with `v6`) output. `source` says whether it came
/// from iptables-nft or iptables-legacy (see [`save_source`]).
pub fn parse(text: &str, v6: bool, source: Source) -> Vec<Table> {
    let family = if v6 { Family::Ip6 } else { Family::Ip };
    let mut tables = Vec::new();
    let mut cur: Option<Table> = None;
    for line in text.lines().take(200_000) {
        let line = line.trim_end();
        if let Some(t) = line.strip_prefix('*') {
            if let Some(done) = cur.take() {
                tables.push(done);
            }
            cur = Some(Table {
                source,
                family,
                name: t.trim().to_owned(),
                chains: BTreeMap::new(),
            });
        } else if line == "COMMIT" {
            if let Some(done) = cur.take() {
                tables.push(done);
            }
        } else if let Some(c) = line.strip_prefix(':') {
            let Some(t) = cur.as_mut() else { continue };
            let mut it = c.split_whitespace();
            let name = it.next().unwrap_or("").to_owned();
            let policy = it.next().unwrap_or("-");
            let base = builtin(&t.name, &name).map(|(hook, priority, kind)| Base {
                hook,
                priority,
                accept: policy != "DROP",
                kind: kind.to_owned(),
            });
            t.chains.insert(
                name.clone(),
                Chain {
                    name,
                    base,
                    rules: Vec::new(),
                },
            );
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let Some(t) = cur.as_mut() else { continue };
            if let Some((chain, rule)) = parse_rule(rest, line) {
                t.chains
                    .entry(chain.clone())
                    .or_insert_with(|| Chain {
                        name: chain,
                        base: None,
                        rules: Vec::new(),
                    })
                    .rules
                    .push(rule);
            }
        }
    }
    if let Some(done) = cur.take() {
        tables.push(done);
    }
    tables
}

/// iptables-nft or iptables-legacy, from the header line `# Generated by iptables-save v1.8.9
/// (nf_tables)` (`(legacy)` or no suffix: legacy); `None` when there is no header (no tables).
pub fn save_source(text: &str) -> Option<Source> {
    let head = text.lines().find(|l| l.starts_with("# Generated by"))?;
    Some(if head.contains("nf_tables") {
        Source::IptablesNft
    } else {
        Source::IptablesLegacy
    })
}

/// Parses `ipset save` output (`create NAME TYPE ...`, `add NAME MEMBER`).
pub fn parse_ipsets(text: &str) -> BTreeMap<String, IpSet> {
    let mut out: BTreeMap<String, IpSet> = BTreeMap::new();
    for line in text.lines().take(1_000_000) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["create", name, kind, ..] => {
                out.insert(
                    (*name).to_owned(),
                    IpSet {
                        kind: (*kind).to_owned(),
                        members: Vec::new(),
                    },
                );
            }
            ["add", name, member, ..] => {
                if let Some(s) = out.get_mut(*name) {
                    s.members.push((*member).to_owned());
                }
            }
            _ => {}
        }
    }
    out
}
