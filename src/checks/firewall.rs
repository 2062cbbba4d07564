//! `firewall`: could a packet filter or a MAC policy block the proxy → upstream
//! connection?
//!
//! Reads rules read-only (`iptables-save`, `ip6tables-save`, `nft list
//! ruleset`, optionally inside a named network namespace via `ip netns exec`)
//! and lists the DROP/REJECT rules that could match TCP traffic to the
//! upstream's address and port, including rules on the loopback interface.
//! Also SELinux (mode, `httpd_can_network_connect`, recent AVC denials) and
//! AppArmor (profiles of web servers in enforce mode). Invariants: only
//! listing commands are run; jumps into user chains are not followed (a
//! matching rule in any chain is reported, with its chain).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::tool;

/// Parameters of the `firewall` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The upstream the proxy dials: `127.0.0.1:8080`, `[::1]:8080` or `10.0.0.5:9000`.
    pub address: String,
    /// Inspect the rules of this network namespace (`ip netns exec NAME …`; default: the host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "firewall",
    summary: "Read-only firewall and MAC review: DROP/REJECT rules (iptables-save, ip6tables-save, nft) that could match TCP to the upstream address/port incl. loopback; SELinux mode, httpd_can_network_connect, recent AVC denials; AppArmor profiles.",
    example: r#"{ firewall = { address = "{{ upstream }}" } }"#,
    facts: &["firewall.blocking_rules", "firewall.selinux"],
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

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = cidr
        .split_once('/')
        .unwrap_or((cidr, if cidr.contains(':') { "128" } else { "32" }));
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn port_in(spec: &str, port: u16) -> bool {
    spec.split(',').any(|p| match p.split_once(':') {
        Some((a, b)) => {
            a.parse::<u16>().is_ok_and(|a| a <= port) && b.parse::<u16>().is_ok_and(|b| port <= b)
        }
        None => p.parse::<u16>() == Ok(port),
    })
}

/// DROP/REJECT rules of `iptables-save` output that could match the flow.
pub fn iptables_matches(save: &str, flow: Flow) -> Vec<String> {
    let loopback = flow.ip.is_loopback();
    let mut table = "";
    let mut out = Vec::new();
    for line in save.lines().take(100_000) {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim();
            continue;
        }
        let Some(rule) = line.strip_prefix("-A ") else {
            continue;
        };
        if table == "nat" {
            continue;
        }
        let w: Vec<&str> = rule.split_whitespace().collect();
        let chain = w.first().copied().unwrap_or("");
        let target = w.windows(2).find(|x| x[0] == "-j").map_or("", |x| x[1]);
        if !matches!(target, "DROP" | "REJECT") {
            continue;
        }
        let mut ok = true;
        let mut i = 1;
        while i < w.len() && ok {
            let neg = w[i] == "!";
            let (opt, val) = if neg {
                (
                    w.get(i + 1).copied().unwrap_or(""),
                    w.get(i + 2).copied().unwrap_or(""),
                )
            } else {
                (w[i], w.get(i + 1).copied().unwrap_or(""))
            };
            let m = match opt {
                "-p" => Some(val == "tcp" || val == "6" || val == "all"),
                "--dport" | "--dports" | "--destination-port" | "--destination-ports" => {
                    Some(port_in(val, flow.port))
                }
                "-d" => Some(cidr_contains(val, flow.ip)),
                "-s" if loopback => Some(val.split(',').any(|c| {
                    cidr_contains(c, flow.ip)
                        || cidr_contains(
                            c,
                            if flow.ip.is_ipv4() {
                                "127.0.0.1".parse().unwrap_or(flow.ip)
                            } else {
                                flow.ip
                            },
                        )
                })),
                "-i" | "-o" => Some(if loopback {
                    val == "lo" || val.ends_with('+')
                } else {
                    val != "lo"
                }),
                "--ctstate" | "--state" => Some(val.split(',').any(|s| s == "NEW")),
                "--tcp-flags" | "--syn" => Some(true),
                _ => None,
            };
            if let Some(mut v) = m {
                if neg {
                    v = !v;
                }
                ok = v;
            }
            i += if neg { 3 } else { 2 };
            if matches!(opt, "--syn") {
                i -= 1;
            }
        }
        if ok {
            out.push(format!("[{chain}] {line}"));
        }
    }
    out
}

/// drop/reject rules of `nft list ruleset` output that could match the flow.
pub fn nft_matches(ruleset: &str, flow: Flow) -> Vec<String> {
    let loopback = flow.ip.is_loopback();
    let mut chain = String::new();
    let mut out = Vec::new();
    for line in ruleset.lines().take(100_000) {
        let l = line.trim();
        if let Some(c) = l.strip_prefix("chain ") {
            c.trim_end_matches('{').trim().clone_into(&mut chain);
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        if !w.iter().any(|x| *x == "drop" || *x == "reject")
            || l.starts_with("type ")
            || l.starts_with("policy")
        {
            continue;
        }
        let mut ok = true;
        for (i, x) in w.iter().enumerate() {
            let next = w.get(i + 1).copied().unwrap_or("");
            match *x {
                "dport" => {
                    let spec = if next == "{" {
                        w[i + 2..]
                            .iter()
                            .take_while(|t| **t != "}")
                            .map(|t| t.trim_end_matches(','))
                            .collect::<Vec<_>>()
                            .join(",")
                    } else {
                        next.replace('-', ":")
                    };
                    ok &= port_in(&spec.replace('-', ":"), flow.port);
                }
                "daddr" => ok &= next == "{" || cidr_contains(next, flow.ip),
                "iif" | "iifname" | "oif" | "oifname" => {
                    let v = next.trim_matches('"');
                    ok &= if loopback { v == "lo" } else { v != "lo" };
                }
                "udp" if next == "dport" => ok = false,
                _ => {}
            }
        }
        if ok {
            out.push(format!("[{chain}] {l}"));
        }
    }
    out
}

fn parse_address(a: &str) -> Result<Flow, String> {
    if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
        return Ok(Flow {
            ip: sa.ip(),
            port: sa.port(),
        });
    }
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
    let o = tool::run(prog, &argv, Duration::from_secs(8), 4 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if o.timed_out {
        return Err(format!("`{}` timed out", o.argv));
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

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = review(p, ctx).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn review(p: &Params, ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let flow = match parse_address(&p.address) {
        Ok(f) => f,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e),
    };
    let ns = p.netns.as_deref();
    let mut ev = Vec::new();
    let mut blocking = Vec::new();
    let mut unread = Vec::new();
    let mut read_rules = 0;
    let save = if flow.ip.is_ipv4() {
        "iptables-save"
    } else {
        "ip6tables-save"
    };
    match listing(ns, save, &[]).await {
        Ok(t) => {
            read_rules += 1;
            let m = iptables_matches(&t, flow);
            ev.push(
                Evidence::new(
                    "iptables",
                    format!(
                        "{} rule line(s) read, {} could block {}:{}",
                        t.lines().filter(|l| l.starts_with("-A")).count(),
                        m.len(),
                        flow.ip,
                        flow.port
                    ),
                )
                .at(save),
            );
            blocking.extend(m);
        }
        Err(e) => unread.push(e),
    }
    match listing(ns, "nft", &["list", "ruleset"]).await {
        Ok(t) => {
            read_rules += 1;
            let m = nft_matches(&t, flow);
            ev.push(
                Evidence::new(
                    "nftables",
                    format!("{} could block {}:{}", m.len(), flow.ip, flow.port),
                )
                .at("nft list ruleset"),
            );
            // iptables-nft rules show up in both listings: report them once.
            if blocking.is_empty() {
                blocking.extend(m);
            }
        }
        Err(e) => unread.push(e),
    }
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
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact("firewall.blocking_rules", blocking.join("\n"))
        .with_fact("firewall.selinux", selinux);
    for e in &ev {
        r = r.with_evidence(e.clone());
    }
    for u in &unread {
        r = r.with_evidence(Evidence::new("not readable", u.clone()));
    }
    if !blocking.is_empty() || !mac_problems.is_empty() {
        let mut parts = Vec::new();
        if !blocking.is_empty() {
            parts.push(format!(
                "{} DROP/REJECT rule(s) could match TCP to {}:{}: {}",
                blocking.len(),
                flow.ip,
                flow.port,
                blocking[0]
            ));
        }
        parts.extend(mac_problems);
        let s = parts.join("; ");
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
        let rules_ev = Evidence::new("matching rules", blocking.join("\n"));
        r = r.diagnose(Cause::FirewallBlocked, Severity::High, s, vec![rules_ev]);
    } else if read_rules == 0 {
        r.outcome = Outcome::Inconclusive;
        r.summary = format!("no firewall rules could be read: {}", unread.join("; "));
    } else {
        r.summary = format!(
            "no DROP/REJECT rule matches TCP to {}:{}",
            flow.ip, flow.port
        );
        let why = r.summary.clone();
        r = r.exclude(Cause::FirewallBlocked, why);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(ip: &str, port: u16) -> Flow {
        Flow {
            ip: ip.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn iptables_rules_on_lo_match_loopback_flows() {
        let save = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -p tcp -m tcp --dport 8080 -j REJECT --reject-with icmp-port-unreachable\n-A INPUT -p udp -m udp --dport 8080 -j DROP\n-A INPUT -i eth0 -p tcp --dport 8080 -j DROP\nCOMMIT\n";
        assert_eq!(iptables_matches(save, flow("127.0.0.1", 8080)).len(), 1);
        assert!(iptables_matches(save, flow("127.0.0.1", 9000)).is_empty());
    }

    #[test]
    fn nft_rules_match_ports_and_sets() {
        let rs = "table inet f {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iif \"lo\" tcp dport { 80, 8080 } drop\n  tcp dport 9000 accept\n }\n}\n";
        assert_eq!(nft_matches(rs, flow("127.0.0.1", 8080)).len(), 1);
        assert!(nft_matches(rs, flow("127.0.0.1", 9000)).is_empty());
    }
}
