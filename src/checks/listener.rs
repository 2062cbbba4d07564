//! `listener`: which process listens on the upstream's port or socket, and
//! does it listen on the address family the proxy dials?
//!
//! Uses `crate::sys::net` (listening sockets of /proc/net/tcp, tcp6 and unix,
//! mapped to processes through /proc/PID/fd, complete only as root: other
//! users' fds are unreadable, which is said) and `crate::sys::process`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::{permission, process};
use crate::sys;
use crate::sys::net::Proto;

/// Parameters of the `listener` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The address the proxy dials: `127.0.0.1:8080`, `[::1]:8080`,
    /// `localhost:8080`, a bare port `8080`, or `unix:/run/php/php8.2-fpm.sock`.
    pub address: String,
}

pub const DOC: KindDoc = KindDoc {
    kind: "listener",
    summary: "Which process listens on a port or unix socket (from /proc/net and /proc/PID/fd): command line, user, start time; and whether it listens on the address family the proxy dials (e.g. app on [::1] only, proxy dials 127.0.0.1).",
    example: r#"{ listener = { address = "{{ upstream }}" } }"#,
    facts: &[
        "listener.pid",
        "listener.process",
        "listener.user",
        "listener.address",
        "listener.family_match",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        format!("listener on {}", self.address)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

enum Target {
    Unix(String),
    Tcp { ips: Vec<IpAddr>, port: u16 },
}

fn target(address: &str) -> Result<Target, String> {
    if let Some(p) = address.strip_prefix("unix:") {
        return Ok(Target::Unix(p.to_owned()));
    }
    if let Ok(port) = address.trim_start_matches(':').parse::<u16>() {
        return Ok(Target::Tcp {
            ips: Vec::new(),
            port,
        });
    }
    if let Ok(sa) = address.parse::<SocketAddr>() {
        return Ok(Target::Tcp {
            ips: vec![sa.ip()],
            port: sa.port(),
        });
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("`{address}` is not host:port, a port or unix:/path"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{address}` has no valid port"))?;
    let ips = if host == "localhost" {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    } else {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| format!("{host} does not resolve: {e}"))?
            .map(|s| s.ip())
            .collect()
    };
    Ok(Target::Tcp { ips, port })
}

/// `127.0.0.1:8080`, `[::1]:8080` or the socket path.
fn bound_text(l: &sys::net::Listener) -> String {
    match (&l.path, l.addr, l.port) {
        (Some(p), ..) => p.display().to_string(),
        (None, Some(a), Some(port)) => SocketAddr::new(a, port).to_string(),
        _ => format!("inode {}", l.inode),
    }
}

#[allow(
    clippy::unused_async,
    reason = "every kind's run is async for the dispatcher"
)]
pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = inspect(p);
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

fn inspect(p: &Params) -> CheckReport {
    let label = p.label();
    let t = match target(&p.address) {
        Ok(t) => t,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e),
    };
    let scan = sys::net::listeners();
    let tables: &[&str] = match t {
        Target::Unix(_) => &["/proc/net/unix"],
        Target::Tcp { .. } => &["/proc/net/tcp", "/proc/net/tcp6"],
    };
    let failed: Vec<String> = scan
        .errors
        .iter()
        .filter(|e| tables.iter().any(|t| e.path == Path::new(t)))
        .map(|e| format!("{}: {}", e.path.display(), e.reason))
        .collect();
    if failed.len() == tables.len() || (failed.len() == 1 && tables.len() == 1) {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("cannot read {}", failed.join("; ")),
        );
    }
    let denied = !scan.unreadable.is_empty();
    let (on_port, dialled): (Vec<&sys::net::Listener>, Vec<IpAddr>) = match &t {
        Target::Unix(path) => (
            scan.listeners
                .iter()
                .filter(|l| l.proto == Proto::Unix && l.path.as_deref() == Some(Path::new(path)))
                .collect(),
            Vec::new(),
        ),
        Target::Tcp { ips, port } => (
            scan.listeners
                .iter()
                .filter(|l| l.proto.is_tcp() && l.port == Some(*port))
                .collect(),
            ips.clone(),
        ),
    };
    let what = match &t {
        Target::Unix(path) => path.clone(),
        Target::Tcp { port, .. } => format!("port {port}"),
    };
    if on_port.is_empty() {
        let s = format!("nothing listens on {what} (checked {})", tables.join(", "));
        return CheckReport::new(DOC.kind, label, Outcome::Problem, s.clone())
            .with_fact("listener.pid", "")
            .with_fact("listener.process", "")
            .with_fact("listener.user", "")
            .with_fact("listener.address", "")
            .with_fact("listener.family_match", "no")
            .diagnose(Cause::UpstreamRefused, Severity::High, s, Vec::new());
    }
    let now = jiff::Timestamp::now().as_second();
    let mut ev = Vec::new();
    let mut first_proc = None;
    for l in &on_port {
        let bound = bound_text(l);
        let who = match l.pids.first().and_then(|pid| process::read(*pid)) {
            Some(pr) => {
                let text = format!(
                    "pid {} user {} started {} ago: {}",
                    pr.pid,
                    permission::user_name(pr.uid),
                    pr.started
                        .map_or("?".into(), |s| process::age_text(now - s)),
                    if pr.cmdline.is_empty() {
                        pr.name.clone()
                    } else {
                        pr.cmdline.clone()
                    }
                );
                first_proc.get_or_insert(pr);
                text
            }
            None if denied => {
                "process unknown (other users' /proc/PID/fd are unreadable: run as root)".into()
            }
            None => "process unknown (socket inode not found in any /proc/PID/fd)".into(),
        };
        ev.push(
            Evidence::new(
                "listening",
                format!("{} {bound} (inode {}): {who}", l.proto.as_str(), l.inode),
            )
            .at(format!("/proc/net/{}", l.proto.as_str())),
        );
    }
    let matching: Vec<&sys::net::Listener> = on_port
        .iter()
        .copied()
        .filter(|l| match (l.addr, l.port) {
            (Some(_), Some(port)) => {
                dialled.is_empty() || dialled.iter().any(|d| l.accepts(*d, port))
            }
            _ => true,
        })
        .collect();
    let shown = matching.first().or(on_port.first()).copied();
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact(
            "listener.pid",
            first_proc
                .as_ref()
                .map(|p| p.pid.to_string())
                .unwrap_or_default(),
        )
        .with_fact(
            "listener.process",
            first_proc
                .as_ref()
                .map(|p| p.cmdline.clone())
                .unwrap_or_default(),
        )
        .with_fact(
            "listener.user",
            first_proc
                .as_ref()
                .map(|p| permission::user_name(p.uid))
                .unwrap_or_default(),
        )
        .with_fact(
            "listener.address",
            shown.map(bound_text).unwrap_or_default(),
        )
        .with_fact(
            "listener.family_match",
            if matching.is_empty() { "no" } else { "yes" },
        );
    for e in &ev {
        r = r.with_evidence(e.clone());
    }
    let proc_text = first_proc
        .as_ref()
        .map_or_else(String::new, |p| format!(" by pid {} ({})", p.pid, p.name));
    if matching.is_empty() {
        let bound: Vec<String> = on_port
            .iter()
            .copied()
            .filter(|l| l.addr.is_some())
            .map(bound_text)
            .collect();
        let dial: Vec<String> = dialled.iter().map(ToString::to_string).collect();
        let s = format!(
            "{what} is listened on only at {}{proc_text}, but {} is dialled: connections are refused",
            bound.join(", "),
            dial.join(" / ")
        );
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
        r = r.diagnose(Cause::UpstreamRefused, Severity::High, s, ev);
    } else {
        r.summary = format!(
            "{what} is listened on at {}{proc_text}",
            matching
                .iter()
                .copied()
                .map(bound_text)
                .collect::<Vec<_>>()
                .join(", ")
        );
        r = r.exclude(
            Cause::UpstreamRefused,
            format!("a listener accepts {}", p.address),
        );
        if first_proc.is_none() && denied {
            r.summary
                .push_str(" (process unknown: run as root to see it)");
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert!(matches!(target("8080"), Ok(Target::Tcp { port: 8080, .. })));
        assert!(matches!(target("unix:/run/x.sock"), Ok(Target::Unix(_))));
        assert!(target("nope").is_err());
    }
}
