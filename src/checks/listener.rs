//! `listener`: which process listens on the upstream's port or socket, and
//! does it listen on the address family the proxy dials?
//!
//! Reads /proc/net/tcp, /proc/net/tcp6 and /proc/net/unix for listening
//! sockets, then maps socket inodes to processes through /proc/PID/fd (only
//! complete as root: other users' fds are unreadable, which is said). This is
//! a minimal reader kept inside the check because the shared `src/sys/`
//! module was not in main yet. Invariants: reads at most [`MAX_LINES`] lines
//! per table and [`MAX_FDS`] fd links in total.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::{permission, process};

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

pub const MAX_LINES: usize = 200_000;
pub const MAX_FDS: usize = 1_000_000;

impl Params {
    pub fn label(&self) -> String {
        format!("listener on {}", self.address)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// A listening socket from /proc/net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// `tcp`, `tcp6` or `unix`.
    pub table: &'static str,
    pub addr: Option<SocketAddr>,
    pub path: Option<String>,
    pub inode: u64,
    pub uid: Option<u32>,
}

fn read_capped(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(64 << 20)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// Decode `0100007F:1F90` (IPv4) or the 32-hex-digit IPv6 form.
pub fn decode_addr(hex: &str) -> Option<SocketAddr> {
    let (ip, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for w in 0..4 {
                let word = u32::from_str_radix(&ip[w * 8..w * 8 + 8], 16).ok()?;
                b[w * 4..w * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Listening TCP sockets (state 0A) from /proc/net/tcp-style text.
pub fn parse_tcp(text: &str, table: &'static str) -> Vec<Listening> {
    text.lines()
        .skip(1)
        .take(MAX_LINES)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                return None;
            }
            Some(Listening {
                table,
                addr: decode_addr(f[1]),
                path: None,
                inode: f[9].parse().ok()?,
                uid: f[7].parse().ok(),
            })
        })
        .collect()
}

/// Listening unix sockets (flag __SO_ACCEPTCON) from /proc/net/unix text.
pub fn parse_unix(text: &str) -> Vec<Listening> {
    text.lines()
        .skip(1)
        .take(MAX_LINES)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & 0x0001_0000 == 0 {
                return None;
            }
            Some(Listening {
                table: "unix",
                addr: None,
                path: Some(f[7..].join(" ")),
                inode: f[6].parse().ok()?,
                uid: None,
            })
        })
        .collect()
}

/// inode → pid for the wanted inodes, from /proc/PID/fd links.
fn owners(inodes: &[u64]) -> (HashMap<u64, u32>, bool) {
    let mut map = HashMap::new();
    let mut denied = false;
    let mut seen = 0usize;
    for pid in process::pids() {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            denied = true;
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            seen += 1;
            if seen > MAX_FDS {
                return (map, denied);
            }
            if let Ok(t) = std::fs::read_link(e.path())
                && let Some(n) = t.to_str().and_then(|s| {
                    s.strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse::<u64>()
                        .ok()
                })
                && inodes.contains(&n)
            {
                map.entry(n).or_insert(pid);
            }
        }
    }
    (map, denied)
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

/// Whether a socket bound to `bound` accepts connections to `dialled`.
/// `[::]` is taken to accept IPv4 too (net.ipv6.bindv6only = 0, the default).
fn accepts(bound: IpAddr, dialled: IpAddr) -> bool {
    match (bound, dialled) {
        (b, d) if b == d => true,
        (IpAddr::V4(b), IpAddr::V4(_)) => b.is_unspecified(),
        (IpAddr::V6(b), IpAddr::V6(_)) => b.is_unspecified(),
        (IpAddr::V6(b), IpAddr::V4(d)) => b.is_unspecified() || b.to_ipv4_mapped() == Some(d),
        (IpAddr::V4(_), IpAddr::V6(d)) => {
            d.to_ipv4_mapped().is_some_and(|m| IpAddr::V4(m) == bound)
        }
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
    let mut all = Vec::new();
    let tables: &[(&str, &'static str)] = match t {
        Target::Unix(_) => &[("/proc/net/unix", "unix")],
        Target::Tcp { .. } => &[("/proc/net/tcp", "tcp"), ("/proc/net/tcp6", "tcp6")],
    };
    let mut read_any = false;
    for (path, table) in tables {
        match read_capped(path) {
            Ok(text) => {
                read_any = true;
                if *table == "unix" {
                    all.extend(parse_unix(&text));
                } else {
                    all.extend(parse_tcp(&text, table));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && *table == "tcp6" => {}
            Err(e) => {
                return CheckReport::new(
                    DOC.kind,
                    label,
                    Outcome::Inconclusive,
                    format!("cannot read {path}: {e}"),
                );
            }
        }
    }
    if !read_any {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no /proc/net table is readable",
        );
    }
    let (on_port, dialled): (Vec<Listening>, Vec<IpAddr>) = match &t {
        Target::Unix(path) => (
            all.into_iter()
                .filter(|l| l.path.as_deref() == Some(path.as_str()))
                .collect(),
            Vec::new(),
        ),
        Target::Tcp { ips, port } => (
            all.into_iter()
                .filter(|l| l.addr.is_some_and(|a| a.port() == *port))
                .collect(),
            ips.clone(),
        ),
    };
    let what = match &t {
        Target::Unix(path) => path.clone(),
        Target::Tcp { port, .. } => format!("port {port}"),
    };
    if on_port.is_empty() {
        let s = format!(
            "nothing listens on {what} (checked {})",
            tables.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        );
        return CheckReport::new(DOC.kind, label, Outcome::Problem, s.clone())
            .with_fact("listener.pid", "")
            .with_fact("listener.process", "")
            .with_fact("listener.user", "")
            .with_fact("listener.address", "")
            .with_fact("listener.family_match", "no")
            .diagnose(Cause::UpstreamRefused, Severity::High, s, Vec::new());
    }
    let inodes: Vec<u64> = on_port.iter().map(|l| l.inode).collect();
    let (owner, denied) = owners(&inodes);
    let btime = process::boot_time();
    let now = jiff::Timestamp::now().as_second();
    let mut ev = Vec::new();
    let mut first_proc = None;
    for l in &on_port {
        let bound = l
            .addr
            .map_or_else(|| l.path.clone().unwrap_or_default(), |a| a.to_string());
        let who = match owner
            .get(&l.inode)
            .and_then(|pid| process::read(*pid, btime))
        {
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
                format!("{} {bound} (inode {}): {who}", l.table, l.inode),
            )
            .at(format!("/proc/net/{}", l.table)),
        );
    }
    let matching: Vec<&Listening> = on_port
        .iter()
        .filter(|l| match l.addr {
            None => true,
            Some(a) => dialled.is_empty() || dialled.iter().any(|d| accepts(a.ip(), *d)),
        })
        .collect();
    let shown = matching.first().copied().or(on_port.first());
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
            shown
                .map(|l| {
                    l.addr
                        .map_or_else(|| l.path.clone().unwrap_or_default(), |a| a.to_string())
                })
                .unwrap_or_default(),
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
            .filter_map(|l| l.addr.map(|a| a.to_string()))
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
                .map(|l| l
                    .addr
                    .map_or_else(|| l.path.clone().unwrap_or_default(), |a| a.to_string()))
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
    fn proc_net_addresses_decode() {
        assert_eq!(
            decode_addr("0100007F:1F90").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            decode_addr("00000000000000000000000001000000:1F90")
                .unwrap()
                .to_string(),
            "[::1]:8080"
        );
        assert!(accepts("::".parse().unwrap(), "127.0.0.1".parse().unwrap()));
        assert!(!accepts(
            "::1".parse().unwrap(),
            "127.0.0.1".parse().unwrap()
        ));
    }
}
