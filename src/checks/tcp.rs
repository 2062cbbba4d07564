//! `tcp`: can we open a TCP connection to an address?
//!
//! Refused, timed out (SYNs unanswered: a DROP rule or a dead host),
//! unreachable, and a name that does not resolve are distinct answers,
//! published as the fact `tcp.result` so playbooks can branch on them.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::duration::HumanDuration;

/// Parameters of the `tcp` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `host:port`, `IP:port` or `[IPv6]:port`.
    pub address: String,
    /// Connect timeout (default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "tcp",
    summary: "Open a TCP connection: refused, timed out (filtered), unreachable and DNS failure are distinct.",
    example: r#"{ tcp = { address = "{{ upstream }}", timeout = "3s" } }"#,
    facts: &["tcp.result", "tcp.peer", "tcp.ipv4", "tcp.ipv6"],
};

impl Params {
    pub fn label(&self) -> String {
        format!("TCP connect to {}", self.address)
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(3), |d| d.0)
    }
}

/// How one connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Connected,
    Refused,
    TimedOut,
    Unreachable,
    Other,
}

impl Connect {
    pub fn as_str(self) -> &'static str {
        match self {
            Connect::Connected => "connected",
            Connect::Refused => "refused",
            Connect::TimedOut => "timeout",
            Connect::Unreachable => "unreachable",
            Connect::Other => "error",
        }
    }
}

/// Try one address with a timeout; the error text is kept for evidence.
pub async fn connect_once(addr: SocketAddr, timeout: Duration) -> (Connect, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => (
            Connect::TimedOut,
            format!("no answer within {}", HumanDuration(timeout)),
        ),
        Ok(Ok(_)) => (Connect::Connected, "connection accepted".into()),
        Ok(Err(e)) => {
            let kind = match e.kind() {
                ErrorKind::ConnectionRefused => Connect::Refused,
                ErrorKind::TimedOut => Connect::TimedOut,
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Connect::Unreachable,
                _ => Connect::Other,
            };
            (kind, e.to_string())
        }
    }
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let started = Instant::now();
    let timeout = p.timeout();
    let port_ok = p
        .address
        .rsplit_once(':')
        .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!(
                "`{}` is not host:port (write 127.0.0.1:8080, [::1]:8080 or app.internal:8080)",
                p.address
            ),
        );
    }
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host(p.address.as_str())).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                return CheckReport::new(
                    DOC.kind,
                    label,
                    Outcome::Problem,
                    format!("{} cannot be resolved or parsed: {e}", p.address),
                )
                .with_fact("tcp.result", "dns")
                .with_evidence(Evidence::new("resolve", e.to_string()).at(p.address.clone()));
            }
            Err(_) => {
                return CheckReport::new(
                    DOC.kind,
                    label,
                    Outcome::Problem,
                    format!("resolving {} timed out", p.address),
                )
                .with_fact("tcp.result", "dns");
            }
        };
    let mut addrs = addrs;
    addrs.sort();
    addrs.dedup();
    addrs.truncate(16);
    // IPv4 and IPv6 are tried separately (and concurrently): `localhost` may
    // be [::1] and 127.0.0.1, and only one of them may have a listener.
    let results: Vec<(SocketAddr, Connect, String)> =
        futures::future::join_all(addrs.iter().copied().map(|addr| async move {
            let t = Instant::now();
            let (r, text) = connect_once(addr, timeout).await;
            (addr, r, format!("{text} ({} ms)", t.elapsed().as_millis()))
        }))
        .await;
    let mut report = summarise(&p.address, &results, label);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

fn summarise(
    target: &str,
    results: &[(SocketAddr, Connect, String)],
    label: String,
) -> CheckReport {
    let ok = results.iter().find(|r| r.1 == Connect::Connected);
    let (outcome, summary, result, peer) = if let Some((addr, ..)) = ok {
        let partial = results.iter().any(|r| r.1 != Connect::Connected);
        let s = if partial {
            format!("{target}: {addr} accepts connections, but other addresses of the name do not")
        } else {
            format!("{target} accepts connections ({addr})")
        };
        (Outcome::Ok, s, "connected", addr.to_string())
    } else if let Some((addr, r, text)) = results.first() {
        let s = match r {
            Connect::Refused => {
                format!("{target} refused the connection: nothing listens at {addr}")
            }
            Connect::TimedOut => format!(
                "{target} did not answer ({text}): filtered by a firewall, or the host is down"
            ),
            Connect::Unreachable => format!("{target} is unreachable: {text}"),
            _ => format!("connecting to {target} failed: {text}"),
        };
        (Outcome::Problem, s, r.as_str(), addr.to_string())
    } else {
        (
            Outcome::Problem,
            format!("{target} resolved to no address"),
            "dns",
            String::new(),
        )
    };
    let family = |v6: bool| {
        results
            .iter()
            .filter(|r| r.0.is_ipv6() == v6)
            .map(|r| r.1)
            .fold(None, |acc: Option<Connect>, c| match acc {
                Some(Connect::Connected) => acc,
                _ => Some(c),
            })
            .map_or("", Connect::as_str)
    };
    let mut report = CheckReport::new(DOC.kind, label, outcome, summary)
        .with_fact("tcp.result", result)
        .with_fact("tcp.peer", peer)
        .with_fact("tcp.ipv4", family(false))
        .with_fact("tcp.ipv6", family(true));
    for (addr, _, text) in results {
        report = report.with_evidence(
            Evidence::new("connect", format!("{addr}: {text}")).at(target.to_owned()),
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CheckContext {
        CheckContext::last(Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn open_port_is_ok() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let r = run(
            &Params {
                address: addr,
                timeout: None,
            },
            &ctx(),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.facts["tcp.result"], "connected");
    }

    #[tokio::test]
    async fn closed_port_is_refused_problem() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let r = run(
            &Params {
                address: addr,
                timeout: None,
            },
            &ctx(),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.facts["tcp.result"], "refused");
        assert!(r.summary.contains("refused"), "{}", r.summary);
    }

    #[tokio::test]
    async fn name_that_does_not_resolve_is_a_dns_problem() {
        let r = run(
            &Params {
                address: "t502-nonexistent.invalid:80".into(),
                timeout: None,
            },
            &ctx(),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.facts["tcp.result"], "dns");
    }

    #[tokio::test]
    async fn address_without_port_is_inconclusive() {
        let r = run(
            &Params {
                address: "no-port-here".into(),
                timeout: None,
            },
            &ctx(),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Inconclusive);
    }

    #[tokio::test]
    async fn families_are_reported_separately() {
        // Only IPv4 listens; localhost may also be ::1 (refused).
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let r = run(
            &Params {
                address: format!("localhost:{port}"),
                timeout: None,
            },
            &ctx(),
        )
        .await;
        assert_eq!(r.facts["tcp.ipv4"], "connected", "{r:?}");
        assert_ne!(r.facts["tcp.ipv6"], "connected");
    }
}
