//! `dns`: resolve a name (A and AAAA) the way the proxy's resolver would, with
//! timings, keeping NXDOMAIN, SERVFAIL, REFUSED, no data and timeout apart.
//!
//! Hand-written DNS over UDP (RFC 1035): one query per type to the resolver
//! named in the params (nginx `resolver 127.0.0.1:5353`) or to the
//! nameservers of /etc/resolv.conf, in order. Invariants: a reply must carry
//! our query id and come from the resolver we asked; at most 3 resolvers are
//! tried; replies are parsed with bounds checks (compression pointers
//! followed at most 16 times); /etc/hosts is read (capped) and reported, since
//! the system resolver consults it but nginx's `resolver` does not.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::duration::HumanDuration;

/// Parameters of the `dns` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The host name to resolve (a `host:port` is accepted; the port is ignored).
    pub name: String,
    /// Resolver to ask, `IP` or `IP:port` (e.g. nginx's `resolver 127.0.0.1:5353`);
    /// default: the nameservers in /etc/resolv.conf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// Time to wait for each answer (default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "dns",
    summary: "Resolve a name (A and AAAA) with timings; NXDOMAIN, SERVFAIL, REFUSED, no data and timeout are distinct results.",
    example: r#"{ dns = { name = "app.internal", resolver = "127.0.0.1:5353", timeout = "3s" } }"#,
    facts: &[
        "dns.result",
        "dns.a",
        "dns.aaaa",
        "dns.resolver",
        "dns.hosts_file",
    ],
};

const MAX_RESOLVERS: usize = 3;
const FILE_CAP: u64 = 1024 * 1024;

impl Params {
    pub fn label(&self) -> String {
        match &self.resolver {
            Some(r) => format!("resolve {} via {r}", self.host()),
            None => format!("resolve {}", self.host()),
        }
    }
    fn per_query(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(3), |d| d.0)
    }
    pub fn timeout(&self) -> Duration {
        // Two types, up to MAX_RESOLVERS resolvers each.
        self.per_query() * (2 * MAX_RESOLVERS as u32) + Duration::from_secs(1)
    }
    fn host(&self) -> &str {
        let n = self.name.trim();
        if n.starts_with('[') {
            return n;
        }
        match n.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() && !h.contains(':') => h,
            _ => n,
        }
    }
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Addresses(Vec<IpAddr>),
    NoData,
    NxDomain,
    ServFail,
    Refused,
    Timeout,
    Error(String),
}

impl Answer {
    pub fn id(&self) -> &'static str {
        match self {
            Answer::Addresses(_) => "ok",
            Answer::NoData => "nodata",
            Answer::NxDomain => "nxdomain",
            Answer::ServFail => "servfail",
            Answer::Refused => "refused",
            Answer::Timeout => "timeout",
            Answer::Error(_) => "error",
        }
    }
}

fn read_capped(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(FILE_CAP)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// Nameservers from resolv.conf text, in order, with port 53.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|ip| ip.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn parse_resolver(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
        .or_else(|| {
            s.trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
}

/// Encode a query for `name` and `qtype` (1 = A, 28 = AAAA) with recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("`{name}` is not a valid host name"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if q.len() > 512 {
        return Err(format!("`{name}` is too long for a DNS query"));
    }
    Ok(q)
}

/// Skip a (possibly compressed) name starting at `pos`; returns the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        if len & 0xc0 == 0xc0 {
            return Some(pos + 2);
        }
        if len == 0 {
            return Some(pos + 1);
        }
        pos += 1 + usize::from(len);
    }
    None
}

/// Decode a reply to a query of `qtype`: rcode and the addresses of that type.
pub fn decode_reply(msg: &[u8], id: u16, qtype: u16) -> Answer {
    if msg.len() < 12 || msg[..2] != id.to_be_bytes() {
        return Answer::Error("reply with a wrong id or too short".into());
    }
    if msg[2] & 0x80 == 0 {
        return Answer::Error("reply is not a response".into());
    }
    let rcode = msg[3] & 0x0f;
    match rcode {
        0 => {}
        2 => return Answer::ServFail,
        3 => return Answer::NxDomain,
        5 => return Answer::Refused,
        n => return Answer::Error(format!("rcode {n}")),
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = 12;
    for _ in 0..qd {
        let Some(p) = skip_name(msg, pos) else {
            return Answer::Error("truncated question".into());
        };
        pos = p + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an.min(256) {
        let Some(p) = skip_name(msg, pos) else {
            return Answer::Error("truncated answer".into());
        };
        if msg.len() < p + 10 {
            return Answer::Error("truncated answer".into());
        }
        let rtype = u16::from_be_bytes([msg[p], msg[p + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([msg[p + 8], msg[p + 9]]));
        let rd = p + 10;
        if msg.len() < rd + rdlen {
            return Answer::Error("truncated record data".into());
        }
        match (rtype, rdlen) {
            (1, 4) if qtype == 1 => {
                out.push(IpAddr::V4(Ipv4Addr::new(
                    msg[rd],
                    msg[rd + 1],
                    msg[rd + 2],
                    msg[rd + 3],
                )));
            }
            (28, 16) if qtype == 28 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&msg[rd..rd + 16]);
                out.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            _ => {}
        }
        pos = rd + rdlen;
    }
    if out.is_empty() {
        Answer::NoData
    } else {
        Answer::Addresses(out)
    }
}

/// Ask one resolver one question over UDP.
pub async fn query(resolver: SocketAddr, name: &str, qtype: u16, timeout: Duration) -> Answer {
    let id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ u32::from(qtype)) as u16;
    let q = match encode_query(id, name, qtype) {
        Ok(q) => q,
        Err(e) => return Answer::Error(e),
    };
    let bind: SocketAddr = if resolver.is_ipv6() {
        "[::]:0"
            .parse()
            .unwrap_or(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0))
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    };
    let sock = match tokio::net::UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return Answer::Error(format!("cannot open a UDP socket: {e}")),
    };
    if let Err(e) = sock.connect(resolver).await {
        return Answer::Error(format!("cannot reach {resolver}: {e}"));
    }
    if let Err(e) = sock.send(&q).await {
        return Answer::Error(format!("cannot send to {resolver}: {e}"));
    }
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 4096];
    // Bounded: each iteration waits at most until the deadline.
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Answer::Timeout;
        }
        match tokio::time::timeout(deadline - now, sock.recv(&mut buf)).await {
            Err(_) => return Answer::Timeout,
            // ICMP port unreachable on loopback: nothing listens there.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Answer::Error(format!("nothing listens at {resolver} (port unreachable)"));
            }
            Ok(Err(e)) => return Answer::Error(e.to_string()),
            Ok(Ok(n)) => {
                if n >= 2 && buf[..2] == id.to_be_bytes() {
                    return decode_reply(&buf[..n], id, qtype);
                }
            }
        }
    }
}

/// Entries for `name` in /etc/hosts-style text.
fn hosts_entries(hosts: &str, name: &str) -> Vec<IpAddr> {
    hosts
        .lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut w = l.split_whitespace();
            let ip: IpAddr = w.next()?.parse().ok()?;
            w.any(|h| h.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let started = Instant::now();
    let name = p.host().trim_matches(['[', ']']).to_owned();
    if let Ok(ip) = name.parse::<IpAddr>() {
        let (a, aaaa) = if ip.is_ipv4() {
            (ip.to_string(), String::new())
        } else {
            (String::new(), ip.to_string())
        };
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Ok,
            format!("{name} is an IP address: nothing to resolve"),
        )
        .with_fact("dns.result", "ok")
        .with_fact("dns.a", a)
        .with_fact("dns.aaaa", aaaa)
        .exclude(Cause::DnsFailure, "the upstream is an IP address");
    }
    if let Err(e) = encode_query(0, &name, 1) {
        return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e);
    }
    let resolvers: Vec<SocketAddr> = match &p.resolver {
        Some(r) => match parse_resolver(r) {
            Some(a) => vec![a],
            None => {
                return CheckReport::new(
                    DOC.kind,
                    label,
                    Outcome::Inconclusive,
                    format!("resolver = `{r}` is not IP or IP:port"),
                );
            }
        },
        None => match read_capped("/etc/resolv.conf") {
            Ok(t) => nameservers(&t),
            Err(e) => {
                return CheckReport::new(
                    DOC.kind,
                    label,
                    Outcome::Inconclusive,
                    format!("cannot read /etc/resolv.conf: {e}; name a resolver with `resolver`"),
                );
            }
        },
    };
    if resolvers.is_empty() {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "/etc/resolv.conf names no nameserver; name a resolver with `resolver`",
        );
    }
    let hosts = if p.resolver.is_none() {
        read_capped("/etc/hosts")
            .map(|t| hosts_entries(&t, &name))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut evidence = Vec::new();
    let mut results: Vec<(u16, Answer, SocketAddr)> = Vec::new();
    for qtype in [1u16, 28] {
        let tname = if qtype == 1 { "A" } else { "AAAA" };
        let mut last = None;
        for r in resolvers.iter().take(MAX_RESOLVERS) {
            let t = Instant::now();
            let ans = query(*r, &name, qtype, p.per_query()).await;
            let ms = t.elapsed().as_millis();
            let text = match &ans {
                Answer::Addresses(a) => a
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                Answer::Error(e) => format!("error: {e}"),
                other => other.id().to_uppercase(),
            };
            evidence.push(
                Evidence::new(format!("{tname} query"), format!("{text} ({ms} ms)"))
                    .at(format!("{r}")),
            );
            let retry = matches!(ans, Answer::Timeout | Answer::Error(_));
            last = Some((qtype, ans, *r));
            if !retry {
                break;
            }
        }
        if let Some(l) = last {
            results.push(l);
        }
    }
    let list = |qt: u16| {
        results
            .iter()
            .filter(|r| r.0 == qt)
            .flat_map(|r| match &r.1 {
                Answer::Addresses(a) => a.clone(),
                _ => Vec::new(),
            })
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (a4, a6) = (list(1), list(28));
    let answers: Vec<&Answer> = results.iter().map(|r| &r.1).collect();
    let resolver = results.first().map(|r| r.2.to_string()).unwrap_or_default();
    let any_addr = !a4.is_empty() || !a6.is_empty();
    let worst = answers
        .iter()
        .find(|a| matches!(a, Answer::NxDomain))
        .or_else(|| answers.iter().find(|a| matches!(a, Answer::ServFail)))
        .or_else(|| answers.iter().find(|a| matches!(a, Answer::Refused)))
        .or_else(|| answers.iter().find(|a| matches!(a, Answer::Timeout)))
        .or_else(|| answers.iter().find(|a| matches!(a, Answer::Error(_))))
        .copied();
    let hosts_text = hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let (outcome, result, summary) = if any_addr {
        let mut s = format!("{name} resolves via {resolver}:");
        if !a4.is_empty() {
            let _ = write!(s, " A {}", a4.replace('\n', ", "));
        }
        if !a6.is_empty() {
            let _ = write!(s, " AAAA {}", a6.replace('\n', ", "));
        }
        (Outcome::Ok, "ok", s)
    } else {
        match worst {
            Some(Answer::NxDomain) => (
                Outcome::Problem,
                "nxdomain",
                format!("{name} does not exist (NXDOMAIN from {resolver})"),
            ),
            Some(Answer::ServFail) => (
                Outcome::Problem,
                "servfail",
                format!("the resolver {resolver} failed to resolve {name} (SERVFAIL)"),
            ),
            Some(Answer::Refused) => (
                Outcome::Problem,
                "refused",
                format!("the resolver {resolver} refused to resolve {name} (REFUSED)"),
            ),
            Some(Answer::Timeout) => (
                Outcome::Problem,
                "timeout",
                format!(
                    "no answer about {name} from {resolver} within {}",
                    HumanDuration(p.per_query())
                ),
            ),
            Some(Answer::Error(e)) => (
                Outcome::Inconclusive,
                "error",
                format!("could not ask {resolver} about {name}: {e}"),
            ),
            _ => (
                Outcome::Problem,
                "nodata",
                format!("{name} exists but has no A or AAAA record ({resolver})"),
            ),
        }
    };
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary.clone())
        .with_fact("dns.result", result)
        .with_fact("dns.a", a4)
        .with_fact("dns.aaaa", a6)
        .with_fact("dns.resolver", resolver)
        .with_fact("dns.hosts_file", hosts_text.clone());
    for e in &evidence {
        r = r.with_evidence(e.clone());
    }
    if !hosts.is_empty() {
        r = r.with_evidence(
            Evidence::new(
                "hosts file",
                format!(
                    "{name} → {} (used by the system resolver, not by nginx's `resolver`)",
                    hosts_text.replace('\n', ", ")
                ),
            )
            .at("/etc/hosts"),
        );
    }
    match outcome {
        Outcome::Ok => r = r.exclude(Cause::DnsFailure, format!("{name} resolves")),
        Outcome::Problem => {
            r = r.diagnose(Cause::DnsFailure, Severity::High, summary, evidence);
        }
        Outcome::Inconclusive => {}
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_hosts_are_parsed() {
        let ns = nameservers("# x\nnameserver 127.0.0.53\nsearch a\nnameserver ::1\n");
        assert_eq!(ns.len(), 2);
        assert_eq!(ns[0].to_string(), "127.0.0.53:53");
        assert_eq!(
            hosts_entries("127.0.0.1 localhost app # c\n", "app").len(),
            1
        );
    }

    #[test]
    fn reply_rcode_and_records_are_decoded() {
        let q = encode_query(7, "a.test", 1).unwrap();
        let mut reply = q.clone();
        reply[2] |= 0x80;
        reply[3] = 0x83;
        assert_eq!(decode_reply(&reply, 7, 1), Answer::NxDomain);
        let mut ok = q.clone();
        ok[2] |= 0x80;
        ok[3] = 0x80;
        ok[7] = 1;
        ok.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7]);
        assert_eq!(
            decode_reply(&ok, 7, 1),
            Answer::Addresses(vec!["10.0.0.7".parse().unwrap()])
        );
        assert!(matches!(decode_reply(&ok, 8, 1), Answer::Error(_)));
    }
}
