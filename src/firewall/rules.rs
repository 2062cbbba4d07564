//! Rules as data: tables, chains, rules, their matches and actions, and how one match judges
//! one packet (true, false, or unknown).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::packet::{CtState, Hook, Packet, PortSpec};

/// Where a table was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `iptables-save`/`ip6tables-save` of iptables-nft (the tables live in nftables).
    IptablesNft,
    /// `iptables-legacy-save` (the x_tables kernel tables).
    IptablesLegacy,
    /// Native nftables (`nft -j list ruleset`).
    Nft,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::IptablesNft => "iptables-nft",
            Source::IptablesLegacy => "iptables-legacy",
            Source::Nft => "nftables",
        }
    }
}

/// The address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    /// bridge, arp, netdev: not evaluated for IP packets here.
    Other,
}

impl Family {
    pub fn parse(s: &str) -> Family {
        match s {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            _ => Family::Other,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Other => "other",
        }
    }
    /// Does a table of this family see an IPv4 (`v4`) or IPv6 packet?
    pub fn sees(self, v4: bool) -> bool {
        match self {
            Family::Ip => v4,
            Family::Ip6 => !v4,
            Family::Inet => true,
            Family::Other => false,
        }
    }
}

/// An address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub len: u8,
}

impl Net {
    /// `10.0.0.0/8`, `::1`, `10.0.0.1/255.255.255.0`; a range `a-b` is not a prefix.
    pub fn parse(s: &str) -> Option<Net> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                Ok(_) => return None,
                Err(_) => {
                    let m: IpAddr = l.parse().ok()?;
                    match m {
                        IpAddr::V4(m) => u32::from(m).count_ones() as u8,
                        IpAddr::V6(m) => u128::from(m).count_ones() as u8,
                    }
                }
            },
        };
        Some(Net { addr, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len.min(32)))
                };
                u32::from(n) & m == u32::from(i) & m
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len.min(128)))
                };
                u128::from(n) & m == u128::from(i) & m
            }
            _ => false,
        }
    }
}

/// An inclusive address range (`10.0.0.1-10.0.0.9`, nft `range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange(pub IpAddr, pub IpAddr);

/// Addresses a match names: prefixes and ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addrs {
    pub nets: Vec<Net>,
    pub ranges: Vec<AddrRange>,
}

impl Addrs {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
            || self.ranges.iter().any(|r| match (r.0, r.1, ip) {
                (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(i)) => a <= i && i <= b,
                (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(i)) => a <= i && i <= b,
                _ => false,
            })
    }
}

/// An interface name pattern: exact, or a prefix (`br+` in iptables, `br*` in nft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfName {
    pub name: String,
    pub prefix: bool,
}

impl IfName {
    pub fn iptables(s: &str) -> IfName {
        match s.strip_suffix('+') {
            Some(p) => IfName {
                name: p.to_owned(),
                prefix: true,
            },
            None => IfName {
                name: s.to_owned(),
                prefix: false,
            },
        }
    }
    pub fn nft(s: &str) -> IfName {
        match s.strip_suffix('*').filter(|p| !p.ends_with('\\')) {
            Some(p) => IfName {
                name: p.to_owned(),
                prefix: true,
            },
            None => IfName {
                name: s.replace("\\*", "*"),
                prefix: false,
            },
        }
    }
    pub fn matches(&self, iface: &str) -> bool {
        if self.prefix {
            iface.starts_with(&self.name)
        } else {
            iface == self.name
        }
    }
}

/// What a match tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// Input interface by name, any of.
    Iif(Vec<IfName>),
    /// Output interface by name, any of.
    Oif(Vec<IfName>),
    Src(Addrs),
    Dst(Addrs),
    /// IP protocol, any of.
    Proto(Vec<u8>),
    /// Source port within any of these inclusive ranges (implies TCP/UDP/SCTP/DCCP).
    Sport(Vec<(u16, u16)>),
    Dport(Vec<(u16, u16)>),
    /// Source or destination port (multiport `--ports`).
    Port(Vec<(u16, u16)>),
    /// A TCP packet with SYN set and ACK clear: the first packet of a connection (`--syn`).
    Syn,
    CtState(Vec<CtState>),
    /// `-m addrtype --src-type`/`fib saddr type`: any of these types (upper case).
    SrcType(Vec<String>),
    DstType(Vec<String>),
    /// `-m set --match-set NAME src,dst`: an ipset looked up by the packet's fields.
    Set {
        name: String,
        dims: Vec<bool>,
    },
    /// The packet is IPv4 (true) or IPv6 (false): nft's implicit `meta nfproto` of `ip saddr`.
    V4(bool),
    /// Always true (e.g. `-m comment`); kept so the rule text is complete.
    Always,
    /// Cannot be evaluated here (unknown extension, mark, rate limit, owner, ...).
    Unknown(String),
}

/// One match of a rule, maybe negated (`!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub neg: bool,
    pub cond: Cond,
}

impl Match {
    pub fn new(cond: Cond) -> Match {
        Match { neg: false, cond }
    }
    pub fn not(cond: Cond) -> Match {
        Match { neg: true, cond }
    }
}

/// What a rule does when all its matches hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    /// `REJECT --reject-with X` / `reject with X` (the text, empty for the default).
    Reject(String),
    Jump(String),
    Goto(String),
    Return,
    /// A non-terminal action (LOG, counter, MARK, ...) or no action at all.
    Continue,
    /// A NAT target (DNAT, SNAT, MASQUERADE, REDIRECT): ends the nat chain, rewrites addresses.
    Nat(String),
    /// A verdict map: the first entry whose match holds gives the action; none: continue.
    Vmap(Vec<(Match, Action)>),
    /// A verdict decided elsewhere (NFQUEUE, an unknown target): cannot tell.
    Unknown(String),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule as listed (iptables-save line, or the nft rule rendered back).
    pub text: String,
    pub matches: Vec<Match>,
    pub action: Action,
}

/// The hook, priority and policy of a base chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub hook: Hook,
    pub priority: i32,
    /// `true`: policy accept; `false`: drop.
    pub accept: bool,
    /// `filter`, `nat`, `route`.
    pub kind: String,
}

/// A chain; base chains sit on a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub base: Option<Base>,
    pub rules: Vec<Rule>,
}

/// A table of chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub source: Source,
    pub family: Family,
    pub name: String,
    pub chains: BTreeMap<String, Chain>,
}

impl Table {
    /// `ip filter` (nftables naming), with where it was read from for legacy tables.
    pub fn label(&self) -> String {
        match self.source {
            Source::IptablesLegacy => format!("{} {} (legacy)", self.family.as_str(), self.name),
            _ => format!("{} {}", self.family.as_str(), self.name),
        }
    }
}

/// One ipset (`ipset save`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    /// `hash:ip`, `hash:net`, `hash:ip,port`, ...
    pub kind: String,
    /// Members as listed (`10.0.0.1`, `10.0.0.0/8`, `10.0.0.1,tcp:80`).
    pub members: Vec<String>,
}

/// Everything read, ready to evaluate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
    pub ipsets: BTreeMap<String, IpSet>,
}

/// A three-valued answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    fn from(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

fn ports_match(ranges: &[(u16, u16)], p: PortSpec) -> Tri {
    match p {
        PortSpec::Exact(p) => Tri::from(ranges.iter().any(|(a, b)| *a <= p && p <= *b)),
        PortSpec::Range(lo, hi) => {
            // Every port of lo..=hi covered: yes; none: no; otherwise it depends on the port.
            let covered: u32 = (u32::from(lo)..=u32::from(hi))
                .filter(|q| {
                    ranges
                        .iter()
                        .any(|(a, b)| u32::from(*a) <= *q && *q <= u32::from(*b))
                })
                .count() as u32;
            if covered == 0 {
                Tri::No
            } else if covered == u32::from(hi) - u32::from(lo) + 1 {
                Tri::Yes
            } else {
                Tri::Unknown
            }
        }
    }
}

fn addr_type(ip: IpAddr, types: &[String], p: &Packet) -> Tri {
    let local = ip.is_loopback() || p.local.contains(&ip);
    let mut any_unknown = false;
    for t in types {
        let m = match t.as_str() {
            "LOCAL" => Some(local),
            "UNICAST" => Some(!local && !ip.is_multicast() && !ip.is_unspecified()),
            "MULTICAST" => Some(ip.is_multicast()),
            "BROADCAST" => match ip {
                IpAddr::V4(v) => {
                    if v.is_broadcast() {
                        Some(true)
                    } else if local || v.is_loopback() {
                        Some(false)
                    } else {
                        None
                    }
                }
                IpAddr::V6(_) => Some(false),
            },
            "UNSPEC" => Some(ip.is_unspecified()),
            "BLACKHOLE" | "UNREACHABLE" | "PROHIBIT" | "THROW" | "NAT" | "XRESOLVE" | "ANYCAST" => {
                if local {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        };
        match m {
            Some(true) => return Tri::Yes,
            Some(false) => {}
            None => any_unknown = true,
        }
    }
    if any_unknown { Tri::Unknown } else { Tri::No }
}

/// Is the packet a member of ipset `set`, looked up by `dims` (true = src, false = dst)?
fn set_member(set: &IpSet, dims: &[bool], p: &Packet) -> Tri {
    let addr = |src: bool| if src { p.src } else { p.dst };
    let port = |src: bool| if src { p.sport } else { p.dport };
    let base = set.kind.split(':').nth(1).unwrap_or("");
    let parts: Vec<&str> = base.split(',').collect();
    if parts.is_empty() || dims.len() < parts.len() {
        return Tri::Unknown;
    }
    let mut unknown = false;
    for m in &set.members {
        let fields: Vec<&str> = m.split(',').collect();
        if fields.len() != parts.len() {
            unknown = true;
            continue;
        }
        let mut hit = Tri::Yes;
        for (i, kind) in parts.iter().enumerate() {
            let dir = dims.get(i).copied().unwrap_or(false);
            let f = fields[i];
            let t = match *kind {
                "ip" | "net" => {
                    if let Some((a, b)) = f.split_once('-') {
                        match (a.parse(), b.parse()) {
                            (Ok(a), Ok(b)) => Tri::from(
                                Addrs {
                                    nets: vec![],
                                    ranges: vec![AddrRange(a, b)],
                                }
                                .contains(addr(dir)),
                            ),
                            _ => Tri::Unknown,
                        }
                    } else {
                        Net::parse(f).map_or(Tri::Unknown, |n| Tri::from(n.contains(addr(dir))))
                    }
                }
                "port" => {
                    let (proto, num) = f.split_once(':').unwrap_or(("tcp", f));
                    let proto_ok = match proto {
                        "tcp" => p.proto == super::packet::TCP,
                        "udp" => p.proto == super::packet::UDP,
                        _ => false,
                    };
                    let range = match num.split_once('-') {
                        Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                        None => num.parse().ok().map(|n| (n, n)),
                    };
                    match range {
                        Some(r) if proto_ok => ports_match(&[r], port(dir)),
                        Some(_) => Tri::No,
                        None => Tri::Unknown,
                    }
                }
                _ => Tri::Unknown,
            };
            hit = match (hit, t) {
                (Tri::No, _) | (_, Tri::No) => Tri::No,
                (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
                _ => Tri::Yes,
            };
        }
        match hit {
            Tri::Yes => return Tri::Yes,
            Tri::Unknown => unknown = true,
            Tri::No => {}
        }
    }
    if unknown { Tri::Unknown } else { Tri::No }
}

impl Match {
    /// Does this match hold for `p` at `hook`?
    pub fn test(&self, p: &Packet, hook: Hook, sets: &BTreeMap<String, IpSet>) -> Tri {
        let has_ports = matches!(p.proto, 6 | 17 | 33 | 132);
        let t = match &self.cond {
            Cond::Iif(names) => match p.iif_at(hook) {
                Some(i) => Tri::from(names.iter().any(|n| n.matches(i))),
                None => Tri::from(names.iter().any(|n| n.prefix && n.name.is_empty())),
            },
            Cond::Oif(names) => match p.oif_at(hook) {
                Some(o) => Tri::from(names.iter().any(|n| n.matches(o))),
                None => Tri::from(names.iter().any(|n| n.prefix && n.name.is_empty())),
            },
            Cond::Src(a) => Tri::from(a.contains(p.src)),
            Cond::Dst(a) => Tri::from(a.contains(p.dst)),
            Cond::Proto(ps) => Tri::from(ps.contains(&p.proto)),
            Cond::Sport(r) if has_ports => ports_match(r, p.sport),
            Cond::Dport(r) if has_ports => ports_match(r, p.dport),
            Cond::Port(r) if has_ports => {
                match (ports_match(r, p.sport), ports_match(r, p.dport)) {
                    (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
                    (Tri::No, Tri::No) => Tri::No,
                    _ => Tri::Unknown,
                }
            }
            Cond::Sport(_) | Cond::Dport(_) | Cond::Port(_) => Tri::No,
            Cond::Syn => Tri::from(p.proto == super::packet::TCP && p.state == CtState::New),
            Cond::CtState(s) => Tri::from(s.contains(&p.state)),
            Cond::SrcType(t) => addr_type(p.src, t, p),
            Cond::DstType(t) => addr_type(p.dst, t, p),
            Cond::Set { name, dims } => match sets.get(name) {
                Some(s) => set_member(s, dims, p),
                None => Tri::Unknown,
            },
            Cond::V4(v4) => Tri::from(p.is_v4() == *v4),
            Cond::Always => Tri::Yes,
            Cond::Unknown(_) => Tri::Unknown,
        };
        if self.neg { t.not() } else { t }
    }
}

/// All matches of a rule together: any no is no, then any unknown is unknown.
pub fn all(ms: &[Match], p: &Packet, hook: Hook, sets: &BTreeMap<String, IpSet>) -> Tri {
    let mut out = Tri::Yes;
    for m in ms {
        match m.test(p, hook, sets) {
            Tri::No => return Tri::No,
            Tri::Unknown => out = Tri::Unknown,
            Tri::Yes => {}
        }
    }
    out
}
