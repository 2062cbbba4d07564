//! `firewall`: does the packet filter let the proxy's connection to the upstream through?
//!
//! Evaluates instead of grepping: builds the packet the proxy sends (TCP SYN from the source
//! address the kernel would choose to the upstream's address and port, through the interface
//! of the route: `lo` for a local address), reads the rules read-only (`iptables-save`,
//! `ip6tables-save`, `iptables-legacy-save` when legacy tables are loaded, `nft -j list ruleset`,
//! `ipset save`; optionally inside a named network namespace via `ip netns exec`), walks them
//! as the kernel does ([`crate::firewall`]) for the packet and for its reply, then confirms with
//! a real TCP connect from the same vantage point. A blocking verdict the probe confirms (DROP
//! and a timeout, REJECT and a refusal or "no route to host") is direct evidence; one the probe
//! could not confirm is circumstantial; one the probe contradicts (it connected) is reported as
//! a contradiction, not as a finding. Rules the packet never traverses are context, not
//! evidence. Also SELinux (mode, `httpd_can_network_connect`, recent AVC denials) and AppArmor.
//!
//! Invariants: only listing commands and one connect (closed at once) are run; nothing is
//! changed; a match that cannot be judged is never assumed to match ("cannot tell").

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{Aside, CheckContext, CheckReport, Evidence, KindDoc, Outcome, Unseen};
use crate::checks::tool;
use crate::firewall::{self, Evaluation, Packet, PortSpec, Ruleset, Source, Verdict};

fn yes() -> bool {
    true
}

/// Parameters of the `firewall` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The upstream the proxy dials: `127.0.0.1:8080`, `[::1]:8080` or `10.0.0.5:9000`.
    pub address: String,
    /// Inspect the rules of this network namespace and probe from inside it (`ip netns exec
    /// NAME …`; default: the host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// Confirm the rules' verdict with one real TCP connect to the upstream, closed at once
    /// (default: true).
    #[serde(default = "yes")]
    pub probe: bool,
}

pub const DOC: KindDoc = KindDoc {
    kind: "firewall",
    summary: "Read-only packet filter evaluation: walks iptables (nft and legacy), ip6tables and nftables rules as the kernel does for the proxy's TCP packet to the upstream and its reply (hooks, priorities, jumps, policies), names the deciding rule and chain path, and confirms with one TCP connect; SELinux mode, httpd_can_network_connect, recent AVC denials; AppArmor profiles.",
    example: r#"{ firewall = { address = "{{ upstream }}" } }"#,
    facts: &[
        "firewall.verdict",
        "firewall.path",
        "firewall.rule",
        "firewall.blocking_rules",
        "firewall.selinux",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        match &self.netns {
            Some(n) => format!("firewall rules for {} (netns {n})", self.address),
            None => format!("firewall rules for {}", self.address),
        }
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(20)
    }
}

/// The traffic to judge rules against.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    pub ip: IpAddr,
    pub port: u16,
}

/// How long the confirming connect may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn parse_address(a: &str) -> Result<Flow, String> {
    if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
        return Ok(Flow {
            ip: sa.ip(),
            port: sa.port(),
        });
    }
    let a = a
        .strip_prefix("http://")
        .or_else(|| a.strip_prefix("https://"))
        .unwrap_or(a)
        .trim_end_matches('/');
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| format!("`{a}` is not IP:port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("`{a}` has no valid port"))?;
    let ip = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| format!("{host} does not resolve: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?
            .ip()
    };
    Ok(Flow { ip, port })
}

async fn listing(netns: Option<&str>, program: &str, args: &[&str]) -> Result<String, String> {
    let (prog, argv): (&str, Vec<String>) = match netns {
        Some(ns) => (
            "ip",
            ["netns", "exec", ns, program]
                .iter()
                .chain(args.iter())
                .map(|s| (*s).to_owned())
                .collect(),
        ),
        None => (program, args.iter().map(|s| (*s).to_owned()).collect()),
    };
    if netns.is_some() {
        tool::find(program).map_err(|e| e.to_string())?;
    }
    let o = tool::run(prog, &argv, Duration::from_secs(8), 16 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if o.timed_out {
        return Err(format!("`{}` timed out", o.argv));
    }
    if o.truncated {
        return Err(format!("`{}` printed more than 16 MiB", o.argv));
    }
    if o.code != Some(0) {
        let err = o.stderr.trim();
        let hint = if err.to_ascii_lowercase().contains("permission denied")
            || err.contains("Operation not permitted")
        {
            " (run as root)"
        } else {
            ""
        };
        return Err(format!("`{}` failed: {err}{hint}", o.argv));
    }
    Ok(o.stdout)
}

/// What `ip -j route get` says about the way to the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteInfo {
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    pub local: bool,
}

/// Parses `ip -j route get ADDR` output.
pub fn parse_route_get(json: &str) -> Option<RouteInfo> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let r = v.as_array()?.first()?;
    Some(RouteInfo {
        dev: r.get("dev").and_then(|d| d.as_str()).map(str::to_owned),
        src: r
            .get("prefsrc")
            .and_then(|d| d.as_str())
            .and_then(|s| s.parse().ok()),
        local: r.get("type").and_then(|t| t.as_str()) == Some("local"),
    })
}

/// The device of the most specific IPv4 route in `/proc/net/route` text.
pub fn route_dev_v4(table: &str, ip: std::net::Ipv4Addr) -> Option<String> {
    let ip = u32::from(ip);
    let mut best: Option<(u32, String)> = None;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
        let (Some(dst), Some(mask)) = (hex(f[1]), hex(f[7])) else {
            continue;
        };
        if ip & mask == dst & mask && best.as_ref().is_none_or(|(m, _)| mask.count_ones() > *m) {
            best = Some((mask.count_ones(), f[0].to_owned()));
        }
    }
    best.map(|(_, d)| d)
}

/// How the confirming connect went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Connected,
    Refused,
    /// No route to host (113), network unreachable, or not permitted: an ICMP error or a
    /// local reject.
    Unreachable(String),
    TimedOut,
    Other(String),
    NotRun(String),
}

impl Probe {
    fn text(&self, to: SocketAddr) -> String {
        match self {
            Probe::Connected => format!("a TCP connect to {to} succeeded (closed at once)"),
            Probe::Refused => format!("a TCP connect to {to} was refused (111)"),
            Probe::Unreachable(e) => format!("a TCP connect to {to} failed: {e}"),
            Probe::TimedOut => format!(
                "a TCP connect to {to} got no answer in {}s",
                PROBE_TIMEOUT.as_secs()
            ),
            Probe::Other(e) => format!("a TCP connect to {to} failed: {e}"),
            Probe::NotRun(why) => format!("no probe: {why}"),
        }
    }
}

/// Everything seen from the proxy's vantage point (the host, or inside `netns`).
#[derive(Debug, Clone)]
struct Vantage {
    /// The source address the kernel picks (a connected UDP socket's name; nothing is sent).
    src: Option<IpAddr>,
    local: BTreeSet<IpAddr>,
    route_dev: Option<String>,
    ports: PortSpec,
    probe: Probe,
}

fn parse_if_inet6(text: &str) -> BTreeSet<IpAddr> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|h| h.len() == 32)
        .filter_map(|h| u128::from_str_radix(h, 16).ok())
        .map(|v| IpAddr::V6(std::net::Ipv6Addr::from(v)))
        .collect()
}

/// Runs on its own thread: joins `netns` (that thread only), then looks and probes.
fn look(netns: Option<&str>, to: SocketAddr, probe: bool) -> Result<Vantage, String> {
    if let Some(ns) = netns {
        let path = format!("/run/netns/{ns}");
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        crate::platform::enter_netns(&f)
            .map_err(|(e, _)| format!("cannot enter netns {ns}: {e} (run as root)"))?;
    }
    // This thread's namespace: /proc/thread-self, not /proc/self (the process's main thread).
    let read = |p: &str| crate::sys::read_text(std::path::Path::new(p)).unwrap_or_default();
    let mut local = crate::sys::net::parse_fib_trie_local(&read("/proc/thread-self/net/fib_trie"));
    local.extend(parse_if_inet6(&read("/proc/thread-self/net/if_inet6")));
    local.insert(IpAddr::from([127, 0, 0, 1]));
    local.insert(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
    let route_dev = match to.ip() {
        IpAddr::V4(v4) => route_dev_v4(&read("/proc/thread-self/net/route"), v4),
        IpAddr::V6(_) => None,
    };
    let ports = {
        let r = read("/proc/sys/net/ipv4/ip_local_port_range");
        let mut it = r.split_whitespace().filter_map(|x| x.parse::<u16>().ok());
        match (it.next(), it.next()) {
            (Some(a), Some(b)) => PortSpec::Range(a, b),
            _ => firewall::packet::EPHEMERAL,
        }
    };
    let bind: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let src = std::net::UdpSocket::bind(bind)
        .and_then(|s| {
            s.connect(to)?;
            s.local_addr()
        })
        .ok()
        .map(|a| a.ip());
    let probe = if probe {
        match std::net::TcpStream::connect_timeout(&to, PROBE_TIMEOUT) {
            Ok(s) => {
                drop(s);
                Probe::Connected
            }
            Err(e) => match (e.kind(), e.raw_os_error()) {
                (std::io::ErrorKind::ConnectionRefused, _) => Probe::Refused,
                (std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock, _) => {
                    Probe::TimedOut
                }
                (_, Some(113 | 101 | 13 | 1)) => Probe::Unreachable(e.to_string()),
                _ => Probe::Other(e.to_string()),
            },
        }
    } else {
        Probe::NotRun("disabled (probe = false)".into())
    };
    Ok(Vantage {
        src,
        local,
        route_dev,
        ports,
        probe,
    })
}

/// The rules, read from every source there is.
#[derive(Debug, Default)]
struct Read {
    rules: Ruleset,
    evidence: Vec<Evidence>,
    unread: Vec<String>,
    sources: usize,
}

async fn read_rules(ns: Option<&str>, v6: bool) -> Read {
    let mut out = Read::default();
    let save = if v6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    };
    let mut xt_nft: Vec<(firewall::rules::Family, String)> = Vec::new();
    let mut uses_sets = false;
    let mut main_source = None;
    let mut add = |out: &mut Read, t: &str, prog: &str, uses_sets: &mut bool| -> Option<Source> {
        let source = firewall::iptables::save_source(t)?;
        let tables = firewall::iptables::parse(t, v6, source);
        let n: usize = tables
            .iter()
            .map(|t| t.chains.values().map(|c| c.rules.len()).sum::<usize>())
            .sum();
        *uses_sets |= t.contains("--match-set");
        out.evidence.push(
            Evidence::new(
                source.as_str(),
                format!("{n} rule(s) in {} table(s)", tables.len()),
            )
            .at(prog),
        );
        if source == Source::IptablesNft {
            xt_nft.extend(tables.iter().map(|t| (t.family, t.name.clone())));
        }
        out.rules.tables.extend(tables);
        Some(source)
    };
    match listing(ns, save, &[]).await {
        Ok(t) => {
            out.sources += 1;
            main_source = add(&mut out, &t, save, &mut uses_sets);
        }
        Err(e) => out.unread.push(e),
    }
    // The other iptables variant. Legacy only when its tables are loaded (read from /proc
    // first, so that nothing is loaded into the kernel just by looking).
    let names = if v6 {
        "/proc/net/ip6_tables_names"
    } else {
        "/proc/net/ip_tables_names"
    };
    let mut others = Vec::new();
    if main_source != Some(Source::IptablesLegacy) {
        let loaded = if ns.is_some() {
            listing(ns, "cat", &[names]).await.unwrap_or_default()
        } else {
            std::fs::read_to_string(names).unwrap_or_default()
        };
        if !loaded.trim().is_empty() {
            others.push(if v6 {
                "ip6tables-legacy-save"
            } else {
                "iptables-legacy-save"
            });
        }
    }
    if main_source != Some(Source::IptablesNft) {
        others.push(if v6 {
            "ip6tables-nft-save"
        } else {
            "iptables-nft-save"
        });
    }
    for prog in others {
        if tool::find(prog).is_err() {
            continue;
        }
        if let Ok(t) = listing(ns, prog, &[]).await {
            if firewall::iptables::save_source(&t).is_some_and(|s| Some(s) != main_source) {
                out.sources += 1;
                add(&mut out, &t, prog, &mut uses_sets);
            }
        }
    }
    match listing(ns, "nft", &["-j", "list", "ruleset"]).await {
        Ok(t) => match firewall::nft::parse(&t, &xt_nft) {
            Ok(tables) => {
                out.sources += 1;
                let n: usize = tables
                    .iter()
                    .map(|t| t.chains.values().map(|c| c.rules.len()).sum::<usize>())
                    .sum();
                let mut text = format!("{n} rule(s) in {} native table(s)", tables.len());
                if !xt_nft.is_empty() {
                    let _ = write!(
                        text,
                        "; {} iptables-nft table(s) read from {save} instead",
                        xt_nft.len()
                    );
                }
                out.evidence
                    .push(Evidence::new("nftables", text).at("nft -j list ruleset"));
                out.rules.tables.extend(tables);
            }
            Err(e) => out.unread.push(e),
        },
        Err(e) => out.unread.push(e),
    }
    if uses_sets {
        match listing(ns, "ipset", &["save"]).await {
            Ok(t) => out.rules.ipsets = firewall::iptables::parse_ipsets(&t),
            Err(e) => out
                .unread
                .push(format!("{e} (rules using ipsets cannot be judged)")),
        }
    }
    out
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = review(p, ctx).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

/// Do the verdict and the probe agree?
fn agrees(v: &Verdict, probe: &Probe) -> Option<bool> {
    match (v, probe) {
        (_, Probe::NotRun(_) | Probe::Other(_)) => None,
        (Verdict::Drop, Probe::TimedOut) => Some(true),
        (Verdict::Reject(_), Probe::Refused | Probe::Unreachable(_)) => Some(true),
        (Verdict::Drop | Verdict::Reject(_), Probe::Connected) => Some(false),
        // DROP answered by a refusal, REJECT by silence: something else answered.
        _ => None,
    }
}

fn eval_evidence(label: &str, e: &Evaluation) -> Evidence {
    let mut text = e.primary.describe();
    if e.branches.len() > 1 {
        let _ = write!(text, "\n{} way(s) the walk can end:", e.branches.len());
        for b in &e.branches {
            let assumed: Vec<String> = b
                .assumed
                .iter()
                .map(|(r, m)| format!("`{r}` {}", if *m { "matches" } else { "does not" }))
                .collect();
            let _ = write!(text, "\n- {} if {}", b.describe(), assumed.join(" and "));
        }
    }
    if !e.base_chains.is_empty() {
        let _ = write!(text, "\nbase chains walked: {}", e.base_chains.join(", "));
    }
    Evidence::new(label, text)
}

async fn review(p: &Params, ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let flow = match parse_address(&p.address) {
        Ok(f) => f,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e),
    };
    let ns = p.netns.as_deref();
    let to = SocketAddr::new(flow.ip, flow.port);
    let read = read_rules(ns, flow.ip.is_ipv6()).await;
    let route = listing(ns, "ip", &["-j", "route", "get", &flow.ip.to_string()])
        .await
        .ok()
        .and_then(|t| parse_route_get(&t));
    let (netns, do_probe) = (p.netns.clone(), p.probe && read.sources > 0);
    // A thread of its own: joining a namespace must not leak into a pooled worker thread.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("firewall-probe".into())
        .spawn(move || {
            let _ = tx.send(look(netns.as_deref(), to, do_probe));
        });
    let vantage = match spawned {
        Ok(_) => rx
            .await
            .unwrap_or_else(|_| Err("the probe thread ended without an answer".into())),
        Err(e) => Err(format!("cannot start the probe thread: {e}")),
    };
    let vantage = match vantage {
        Ok(v) => v,
        Err(e) => {
            return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e);
        }
    };
    let mut ev = read.evidence.clone();
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new());
    let mut denied = Vec::new();
    for u in &read.unread {
        r = r.with_evidence(Evidence::new("not readable", u.clone()));
        if u.contains("(run as root)") {
            // The tool and its first line: `iptables-save` failed: ... (you must be root).
            denied.push(
                u.lines()
                    .next()
                    .unwrap_or(u)
                    .trim_end_matches(" (run as root)")
                    .to_owned(),
            );
        }
    }
    if !denied.is_empty() {
        r = r.unseen(Unseen::new(
            "the firewall's rules",
            denied.join("; "),
            crate::check::AS_ROOT,
        ));
    }
    let mac = mac_review(flow, ctx, &mut ev).await;
    let selinux = mac.0;
    let mac_problems = mac.1;
    r = r.with_fact("firewall.selinux", selinux);

    if read.sources == 0 {
        for e in ev {
            r = r.with_evidence(e);
        }
        r.outcome = Outcome::Inconclusive;
        r.summary = format!(
            "no firewall rules could be read: {}",
            read.unread.join("; ")
        );
        return with_mac(r, &mac_problems);
    }

    // The packet the proxy sends.
    let local_dst = route.as_ref().is_some_and(|r| r.local) || vantage.local.contains(&flow.ip);
    let oif = if local_dst {
        "lo".to_owned()
    } else {
        route
            .as_ref()
            .and_then(|r| r.dev.clone())
            .or_else(|| vantage.route_dev.clone())
            .unwrap_or_default()
    };
    let src = route
        .as_ref()
        .and_then(|r| r.src)
        .or(vantage.src)
        .unwrap_or(if local_dst {
            flow.ip
        } else if flow.ip.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        });
    let mut packet = Packet::tcp_syn(src, flow.ip, flow.port, &oif, vantage.local.clone());
    packet.sport = vantage.ports;
    let reply = packet.reply();
    let there = firewall::evaluate(&read.rules, &packet);
    let back = firewall::evaluate(&read.rules, &reply);
    ev.push(
        Evidence::new("packet", packet.describe()).at(if route.is_some() {
            format!("ip -j route get {}", flow.ip)
        } else {
            "/proc/net/route".to_owned()
        }),
    );
    ev.push(eval_evidence("verdict for the connection", &there));
    ev.push(eval_evidence("verdict for the reply", &back));
    let probe_text = vantage.probe.text(to);
    ev.push(Evidence::new("probe", probe_text.clone()));
    let unreached = firewall::unreached(&read.rules, &[&there, &back]);
    if unreached.rules > 0 {
        r = r.aside(
            Aside::new(
                unreached.describe(),
                "not on the path of the proxy's connection or its reply: not evidence",
            )
            .at("iptables-save / nft -j list ruleset"),
        );
    }

    // The decisive evaluation: the connection's, unless it passes and the reply is what fails.
    let (which, decisive) =
        if there.verdict.is_blocking() || matches!(there.verdict, Verdict::CannotTell(_)) {
            ("the connection to", &there)
        } else if back.verdict != Verdict::Accept {
            ("the reply from", &back)
        } else {
            ("the connection to", &there)
        };
    let branch = decisive.deciding();
    let verdict_word = match &decisive.verdict {
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
        Verdict::Reject(_) => "reject",
        Verdict::CannotTell(_) => "cannot tell",
    };
    r = r
        .with_fact("firewall.verdict", verdict_word)
        .with_fact(
            "firewall.path",
            if decisive.verdict == Verdict::Accept {
                String::new()
            } else {
                format!("{}: {}", branch.table, branch.path_text())
            },
        )
        .with_fact("firewall.rule", branch.rule.clone().unwrap_or_default())
        .with_fact(
            "firewall.blocking_rules",
            if decisive.verdict.is_blocking() {
                branch.rule.clone().unwrap_or_else(|| {
                    format!(
                        "policy of {}",
                        branch.path.first().cloned().unwrap_or_default()
                    )
                })
            } else {
                String::new()
            },
        );
    for x in ev {
        r = r.with_evidence(x);
    }
    let target = format!("TCP {}:{}", flow.ip, flow.port);
    match &decisive.verdict {
        Verdict::Drop | Verdict::Reject(_) => {
            let rule = branch.rule.clone().map_or_else(
                || {
                    format!(
                        "the {} policy of {}",
                        decisive.verdict.word(),
                        branch.path.first().cloned().unwrap_or_default()
                    )
                },
                |x| format!("`{x}`"),
            );
            let decided = format!(
                "{which} {target} is {} by {rule} ({}: {})",
                if decisive.verdict == Verdict::Drop {
                    "dropped"
                } else {
                    "rejected"
                },
                branch.table,
                branch.path_text()
            );
            let rules_ev = Evidence::new(
                "deciding rule",
                format!(
                    "{}\nchain path: {} ({})",
                    branch
                        .rule
                        .clone()
                        .unwrap_or_else(|| "(chain policy)".into()),
                    branch.path_text(),
                    branch.table
                ),
            );
            match agrees(&decisive.verdict, &vantage.probe) {
                Some(true) => {
                    let s = format!("{decided}; {probe_text}, as the rule says");
                    r.outcome = Outcome::Problem;
                    r.summary.clone_from(&s);
                    r = r.diagnose(
                        Cause::FirewallBlocked,
                        Severity::High,
                        s,
                        vec![rules_ev, Evidence::new("probe", probe_text)],
                    );
                }
                Some(false) => {
                    r.outcome = Outcome::Inconclusive;
                    r.summary = format!(
                        "contradiction: by the rules {decided}, yet {probe_text}: the rules read are not the ones in force (another namespace, a rule changed meanwhile, or a match judged wrongly)"
                    );
                }
                None => {
                    let s = format!("{decided}; not confirmed: {probe_text}");
                    r.outcome = Outcome::Problem;
                    r.summary.clone_from(&s);
                    r = r
                        .diagnose(
                            Cause::FirewallBlocked,
                            Severity::High,
                            s,
                            vec![rules_ev, Evidence::new("probe", probe_text)],
                        )
                        .circumstantial();
                }
            }
        }
        Verdict::CannotTell(why) => {
            r.outcome = Outcome::Inconclusive;
            r.summary =
                format!("cannot tell whether the rules let {target} through: {why}; {probe_text}");
        }
        Verdict::Accept => {
            let how = format!(
                "the rules let {target} and its reply through ({} base chain(s) walked)",
                there.base_chains.len() + back.base_chains.len()
            );
            if vantage.probe == Probe::TimedOut {
                r.summary = format!(
                    "{how}, yet {probe_text}: dropped by something these rules do not show (a remote filter, a full listen queue)"
                );
            } else {
                r.summary = format!("{how}; {probe_text}");
                let why = r.summary.clone();
                r = r.exclude(Cause::FirewallBlocked, why);
            }
        }
    }
    with_mac(r, &mac_problems)
}

/// Adds SELinux/AppArmor findings (circumstantial: a policy that could forbid the connect).
fn with_mac(mut r: CheckReport, mac_problems: &[String]) -> CheckReport {
    if mac_problems.is_empty() {
        return r;
    }
    let s = mac_problems.join("; ");
    if r.outcome != Outcome::Problem {
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
    }
    r.excluded.retain(|x| x.cause != Cause::FirewallBlocked);
    r.diagnose(Cause::FirewallBlocked, Severity::High, s, Vec::new())
        .circumstantial()
}

/// SELinux and AppArmor: (SELinux mode, problems); evidence is appended to `ev`.
async fn mac_review(
    flow: Flow,
    ctx: &CheckContext,
    ev: &mut Vec<Evidence>,
) -> (String, Vec<String>) {
    // SELinux.
    let mut selinux = "absent".to_owned();
    let mut mac_problems: Vec<String> = Vec::new();
    if let Ok(mode) = std::fs::read_to_string("/sys/fs/selinux/enforce") {
        selinux = if mode.trim() == "1" {
            "enforcing".into()
        } else {
            "permissive".into()
        };
        let mut text = format!("SELinux {selinux}");
        if let Ok(o) = tool::run(
            "getsebool",
            &["httpd_can_network_connect".to_owned()],
            Duration::from_secs(5),
            4096,
        )
        .await
        {
            let _ = write!(text, "; {}", o.stdout.trim());
            if selinux == "enforcing" && o.stdout.contains("--> off") && !flow.ip.is_loopback() {
                mac_problems.push("SELinux is enforcing and httpd_can_network_connect is off: the web server may not connect out".into());
            }
        }
        ev.push(Evidence::new("selinux", text).at("/sys/fs/selinux/enforce"));
        let avc = match tool::run(
            "ausearch",
            &[
                "-m".into(),
                "avc".into(),
                "-ts".into(),
                ctx.window_from.strftime("%m/%d/%Y %H:%M:%S").to_string(),
                "-i".into(),
            ],
            Duration::from_secs(10),
            1 << 20,
        )
        .await
        {
            Ok(o) => o.stdout,
            Err(_) => std::fs::read_to_string("/var/log/audit/audit.log").unwrap_or_default(),
        };
        let denials: Vec<&str> = avc
            .lines()
            .filter(|l| {
                l.contains("avc:")
                    && l.contains("denied")
                    && (l.contains("name_connect") || l.contains("httpd") || l.contains("nginx"))
            })
            .take(20)
            .collect();
        if !denials.is_empty() {
            mac_problems.push(format!(
                "{} SELinux AVC denial(s) for the web server",
                denials.len()
            ));
            ev.push(Evidence::new("AVC denials", denials.join("\n")).at("audit log"));
        }
    }
    // AppArmor.
    if let Ok(profiles) = std::fs::read_to_string("/sys/kernel/security/apparmor/profiles") {
        let web: Vec<&str> = profiles
            .lines()
            .filter(|l| {
                ["nginx", "apache2", "httpd", "php-fpm", "haproxy"]
                    .iter()
                    .any(|n| l.contains(n))
            })
            .take(20)
            .collect();
        ev.push(
            Evidence::new(
                "apparmor",
                if web.is_empty() {
                    "AppArmor active; no web server profile loaded".to_owned()
                } else {
                    web.join("\n")
                },
            )
            .at("/sys/kernel/security/apparmor/profiles"),
        );
    }
    (selinux, mac_problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_get_and_proc_net_route() {
        let r = parse_route_get(r#"[{"type":"local","dst":"127.0.0.1","dev":"lo","prefsrc":"127.0.0.1","flags":[],"uid":0,"cache":["local"]}]"#).unwrap();
        assert!(r.local);
        assert_eq!(r.dev.as_deref(), Some("lo"));
        let r = parse_route_get(r#"[{"dst":"10.213.0.5","dev":"docker0","prefsrc":"10.213.0.1","flags":[],"uid":0,"cache":[]}]"#).unwrap();
        assert!(!r.local);
        assert_eq!(r.src, Some("10.213.0.1".parse().unwrap()));
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
docker0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            route_dev_v4(table, "10.213.0.9".parse().unwrap()).as_deref(),
            Some("docker0")
        );
        assert_eq!(
            route_dev_v4(table, "8.8.8.8".parse().unwrap()).as_deref(),
            Some("eth0")
        );
    }

    #[test]
    fn probe_and_verdict_agreement() {
        assert_eq!(agrees(&Verdict::Drop, &Probe::TimedOut), Some(true));
        assert_eq!(
            agrees(&Verdict::Reject(String::new()), &Probe::Refused),
            Some(true)
        );
        assert_eq!(
            agrees(
                &Verdict::Reject(String::new()),
                &Probe::Unreachable("113".into())
            ),
            Some(true)
        );
        assert_eq!(agrees(&Verdict::Drop, &Probe::Connected), Some(false));
        assert_eq!(agrees(&Verdict::Drop, &Probe::Refused), None);
        assert_eq!(agrees(&Verdict::Drop, &Probe::NotRun(String::new())), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_address("127.0.0.1:8080").unwrap().port, 8080);
        assert!(parse_address("[::1]:80").unwrap().ip.is_ipv6());
        assert_eq!(
            parse_address("localhost:81").unwrap().ip,
            IpAddr::from([127, 0, 0, 1])
        );
        assert!(parse_address("nonsense").is_err());
    }
}
