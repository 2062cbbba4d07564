//! Work done from inside another process's network namespace, and names
//! resolved the way a process in that namespace resolves them.
//!
//! [`Vantage::run`] starts a dedicated OS thread, moves that thread (and
//! only it) into `/proc/PID/ns/net` with `setns(2)`, runs a current-thread
//! tokio runtime there and hands the result back; the thread then ends, so
//! no pooled thread is ever left in a foreign namespace. Nothing is
//! executed in the container and no tool is needed there: sockets opened on
//! that thread simply belong to its namespace. Entering needs
//! `CAP_SYS_ADMIN` (root); without it the answer is a clear "cannot enter
//! the network namespace of pid N" that callers report as inconclusive.
//!
//! [`resolve_in`] answers "what does `app` resolve to for the process with
//! root R": its `/etc/hosts` (read through `/proc/PID/root`), then an A and
//! AAAA query over UDP to the first `nameserver` of its `/etc/resolv.conf`
//! (Docker's embedded DNS `127.0.0.11` on user-defined networks), sent
//! from its namespace. The DNS client checks the answer's id, question and
//! flags, and bounds every read of the packet; a hostile answer is an
//! error, never a panic.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// Where a probe looks from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Vantage {
    /// This host's own network namespace.
    #[default]
    Host,
    /// The network namespace of process `pid` (a container's process).
    Netns {
        pid: u32,
        /// The container's name, when it is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
}

impl Vantage {
    /// `from this host`, `from the network namespace of container shop-web (pid 1234)`.
    pub fn describe(&self) -> String {
        match self {
            Vantage::Host => "from this host".to_owned(),
            Vantage::Netns {
                pid,
                container: Some(c),
            } => format!("from the network namespace of container {c} (pid {pid})"),
            Vantage::Netns {
                pid,
                container: None,
            } => format!("from the network namespace of pid {pid}"),
        }
    }

    /// The short form for facts: `host` or `netns:PID`.
    pub fn fact(&self) -> String {
        match self {
            Vantage::Host => "host".to_owned(),
            Vantage::Netns { pid, .. } => format!("netns:{pid}"),
        }
    }

    pub fn is_host(&self) -> bool {
        matches!(self, Vantage::Host)
    }

    /// Run `work` from this vantage point: inline on the host, on a
    /// dedicated thread inside the namespace otherwise.
    pub async fn run<F, Fut, T>(&self, work: F) -> Result<T, String>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        match self {
            Vantage::Host => Ok(work().await),
            Vantage::Netns { pid, .. } => in_netns(*pid, work).await,
        }
    }
}

/// Run `work` on a new thread moved into the network namespace of `pid`.
pub async fn in_netns<F, Fut, T>(pid: u32, work: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("netns-{pid}"))
        .spawn(move || {
            let result = enter(pid).and_then(|()| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        format!("cannot start a runtime in the namespace of pid {pid}: {e}")
                    })
                    .map(|rt| rt.block_on(work()))
            });
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(format!(
            "cannot start a thread for the namespace of pid {pid}: {e}"
        ));
    }
    rx.await
        .unwrap_or_else(|_| Err(format!("the work in the namespace of pid {pid} panicked")))
}

/// Move the calling thread into the network namespace of `pid`.
fn enter(pid: u32) -> Result<(), String> {
    let path = format!("/proc/{pid}/ns/net");
    let fail = |e: &dyn std::fmt::Display, perm: bool| {
        format!(
            "cannot enter the network namespace of pid {pid}: {e}{}",
            if perm {
                " (needs root: CAP_SYS_ADMIN)"
            } else {
                ""
            }
        )
    };
    let f = std::fs::File::open(&path).map_err(|e| {
        fail(
            &format!("{path}: {e}"),
            e.kind() == std::io::ErrorKind::PermissionDenied,
        )
    })?;
    crate::platform::enter_netns(&f).map_err(|(e, perm)| fail(&e, perm))
}

/// The identity of a network namespace (`net:[4026532...]`), to tell
/// whether two processes share one.
pub fn netns_id(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string())
}

/// How a name resolved for a process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    /// `/etc/hosts` (inside the container) or `dns 127.0.0.11:53`.
    pub source: String,
    /// Set when the name does not resolve: NXDOMAIN, no answer, timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Resolve `name` the way the process `pid` does (its `/etc/hosts`, then the
/// first nameserver of its `/etc/resolv.conf`, queried from its network
/// namespace). `pid` = `None`: this host's files and namespace.
pub async fn resolve_in(pid: Option<u32>, name: &str, timeout: Duration) -> Resolution {
    let root = pid.map_or_else(|| "/".to_owned(), |p| format!("/proc/{p}/root"));
    let root = Path::new(&root);
    let mut res = Resolution {
        name: name.to_owned(),
        ..Resolution::default()
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        res.addresses.push(ip);
        "an address literal".clone_into(&mut res.source);
        return res;
    }
    let hosts = crate::sys::read_text(&root.join("etc/hosts")).unwrap_or_default();
    let from_hosts = hosts_lookup(&hosts, name);
    if !from_hosts.is_empty() {
        res.addresses = from_hosts;
        "/etc/hosts".clone_into(&mut res.source);
        return res;
    }
    let resolv = crate::sys::read_text(&root.join("etc/resolv.conf")).unwrap_or_default();
    let Some(server) = nameservers(&resolv).into_iter().next() else {
        res.error = Some("no nameserver in /etc/resolv.conf".to_owned());
        return res;
    };
    let server = SocketAddr::new(server, 53);
    res.source = format!("dns {server}");
    let fqdn = name.to_owned();
    let work = move || async move {
        let a = query(server, &fqdn, QType::A, timeout).await;
        let aaaa = query(server, &fqdn, QType::Aaaa, timeout).await;
        (a, aaaa)
    };
    let answers = match pid {
        Some(p) => in_netns(p, work).await,
        None => Ok(work().await),
    };
    match answers {
        Err(e) => res.error = Some(e),
        Ok((a, aaaa)) => {
            let mut errors = Vec::new();
            for r in [a, aaaa] {
                match r {
                    Ok(ips) => res.addresses.extend(ips),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if res.addresses.is_empty() {
                errors.dedup();
                res.error = Some(if errors.is_empty() {
                    format!("{server} has no address for {name}")
                } else {
                    errors.join("; ")
                });
            }
        }
    }
    res
}

/// Addresses for `name` in an `/etc/hosts` text.
pub fn hosts_lookup(hosts: &str, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(name)) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// The `nameserver` addresses of a `resolv.conf` text.
pub fn nameservers(resolv: &str) -> Vec<IpAddr> {
    resolv
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .and_then(|a| a.split('%').next())
                .and_then(|a| a.parse().ok())
        })
        .collect()
}

/// The record types asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    A = 1,
    Aaaa = 28,
}

/// A failed DNS query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("{server} says {name} does not exist (NXDOMAIN)")]
    NxDomain { server: SocketAddr, name: String },
    #[error("{server} answered {name} with error code {rcode}")]
    Rcode {
        server: SocketAddr,
        name: String,
        rcode: u8,
    },
    #[error("no answer from {server} within {} ms", .timeout.as_millis())]
    Timeout {
        server: SocketAddr,
        timeout: Duration,
    },
    #[error("querying {server}: {reason}")]
    Io { server: SocketAddr, reason: String },
    #[error("a malformed answer from {server}: {reason}")]
    Malformed { server: SocketAddr, reason: String },
    #[error("cannot ask for {name:?}: {reason}")]
    Name { name: String, reason: String },
}

/// One query over UDP; answers with another id or question are ignored
/// (spoofed or stale) until the deadline.
pub async fn query(
    server: SocketAddr,
    name: &str,
    qtype: QType,
    timeout: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let id = random_id();
    let packet = encode_query(id, name, qtype)?;
    let io = |e: std::io::Error| DnsError::Io {
        server,
        reason: e.to_string(),
    };
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let work = async {
        let sock = tokio::net::UdpSocket::bind(bind).await.map_err(io)?;
        sock.connect(server).await.map_err(io)?;
        sock.send(&packet).await.map_err(io)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            match parse_answer(&buf[..n], id, name, qtype) {
                Ok(Answer::Addresses(a)) => return Ok(a),
                Ok(Answer::NxDomain) => {
                    return Err(DnsError::NxDomain {
                        server,
                        name: name.to_owned(),
                    });
                }
                Ok(Answer::Rcode(rcode)) => {
                    return Err(DnsError::Rcode {
                        server,
                        name: name.to_owned(),
                        rcode,
                    });
                }
                Ok(Answer::NotOurs) => {}
                Err(reason) => return Err(DnsError::Malformed { server, reason }),
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| DnsError::Timeout { server, timeout })?
}

fn random_id() -> u16 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u16
}

/// A standard recursive query for `name`.
pub fn encode_query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, DnsError> {
    let bad = |reason: &str| DnsError::Name {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let mut p = Vec::with_capacity(32 + name.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(bad("empty or longer than 253 bytes"));
    }
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("a label is empty or longer than 63 bytes"));
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&(qtype as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    Ok(p)
}

/// What one packet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Addresses(Vec<IpAddr>),
    NxDomain,
    Rcode(u8),
    /// Another id, not a response, or another question: ignore it.
    NotOurs,
}

/// Parse an answer to query `id` for `name`/`qtype`.
pub fn parse_answer(p: &[u8], id: u16, name: &str, qtype: QType) -> Result<Answer, String> {
    if p.len() < 12 {
        return Ok(Answer::NotOurs);
    }
    if u16::from_be_bytes([p[0], p[1]]) != id || p[2] & 0x80 == 0 {
        return Ok(Answer::NotOurs);
    }
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut pos = 12;
    if qd != 1 {
        return Ok(Answer::NotOurs);
    }
    let (qname, next) = read_name(p, pos)?;
    pos = next;
    let qt = read_u16(p, pos)?;
    if !qname.eq_ignore_ascii_case(name.trim_end_matches('.')) || qt != qtype as u16 {
        return Ok(Answer::NotOurs);
    }
    pos += 4;
    if p[2] & 0x02 != 0 {
        return Err("the answer is truncated (TC set)".to_owned());
    }
    match p[3] & 0x0f {
        0 => {}
        3 => return Ok(Answer::NxDomain),
        r => return Ok(Answer::Rcode(r)),
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, next) = read_name(p, pos)?;
        pos = next;
        let rtype = read_u16(p, pos)?;
        let rdlen = read_u16(p, pos + 8)? as usize;
        let start = pos + 10;
        let end = start + rdlen;
        if end > p.len() {
            return Err(format!(
                "a record runs past the packet ({end} > {})",
                p.len()
            ));
        }
        let rd = &p[start..end];
        match (rtype, rd.len()) {
            (1, 4) if qtype == QType::A => {
                out.push(IpAddr::V4(Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3])));
            }
            (28, 16) if qtype == QType::Aaaa => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rd);
                out.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            (1 | 28, n) if n != 4 && n != 16 => {
                return Err(format!("an address record of {n} bytes"));
            }
            _ => {}
        }
        pos = end;
    }
    Ok(Answer::Addresses(out))
}

fn read_u16(p: &[u8], pos: usize) -> Result<u16, String> {
    p.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "the packet ends inside a record".to_owned())
}

/// A (possibly compressed) name at `pos`; returns it and the position after
/// it in the original stream. At most 64 jumps (a loop is an error).
fn read_name(p: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut labels: Vec<String> = Vec::new();
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *p.get(pos).ok_or("the packet ends inside a name")? as usize;
        match len & 0xc0 {
            0xc0 => {
                let lo = *p.get(pos + 1).ok_or("the packet ends inside a name")? as usize;
                if after.is_none() {
                    after = Some(pos + 2);
                }
                jumps += 1;
                if jumps > 64 {
                    return Err("a compression loop in a name".to_owned());
                }
                pos = ((len & 0x3f) << 8) | lo;
            }
            0 if len == 0 => {
                return Ok((labels.join("."), after.unwrap_or(pos + 1)));
            }
            0 => {
                let label = p
                    .get(pos + 1..pos + 1 + len)
                    .ok_or("the packet ends inside a name")?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                if labels.iter().map(|l| l.len() + 1).sum::<usize>() > 255 {
                    return Err("a name longer than 255 bytes".to_owned());
                }
                pos += 1 + len;
            }
            _ => return Err("an unknown label type in a name".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: u16, name: &str, rcode: u8, records: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let q = encode_query(id, name, QType::A).unwrap();
        let mut p = q.clone();
        p[2] = 0x81;
        p[3] = 0x80 | rcode;
        p[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (t, rd) in records {
            p.extend_from_slice(&[0xc0, 12]);
            p.extend_from_slice(&t.to_be_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 2, 88]);
            p.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            p.extend_from_slice(rd);
        }
        p
    }

    #[test]
    fn a_records_and_cnames() {
        let p = answer(
            7,
            "app",
            0,
            &[
                (5, vec![0xc0, 12]),
                (1, vec![172, 18, 0, 4]),
                (1, vec![172, 18, 0, 5]),
            ],
        );
        assert_eq!(
            parse_answer(&p, 7, "app", QType::A).unwrap(),
            Answer::Addresses(vec![
                "172.18.0.4".parse().unwrap(),
                "172.18.0.5".parse().unwrap()
            ])
        );
    }

    #[test]
    fn nxdomain_other_ids_and_questions() {
        let p = answer(7, "app", 3, &[]);
        assert_eq!(
            parse_answer(&p, 7, "app", QType::A).unwrap(),
            Answer::NxDomain
        );
        assert_eq!(
            parse_answer(&p, 8, "app", QType::A).unwrap(),
            Answer::NotOurs
        );
        assert_eq!(
            parse_answer(&p, 7, "db", QType::A).unwrap(),
            Answer::NotOurs
        );
        assert_eq!(
            parse_answer(&p, 7, "app", QType::Aaaa).unwrap(),
            Answer::NotOurs
        );
        let p = answer(7, "app", 2, &[]);
        assert_eq!(
            parse_answer(&p, 7, "app", QType::A).unwrap(),
            Answer::Rcode(2)
        );
        // A query echoed back (QR clear) is not an answer.
        let q = encode_query(7, "app", QType::A).unwrap();
        assert_eq!(
            parse_answer(&q, 7, "app", QType::A).unwrap(),
            Answer::NotOurs
        );
    }

    #[test]
    fn hostile_packets_are_errors_not_panics() {
        // A record claiming more data than the packet has.
        let mut p = answer(7, "app", 0, &[(1, vec![1, 2, 3, 4])]);
        let n = p.len();
        p[n - 6] = 0xff;
        assert!(parse_answer(&p, 7, "app", QType::A).is_err());
        // A compression loop.
        let mut p = answer(7, "app", 0, &[]);
        p[6..8].copy_from_slice(&1u16.to_be_bytes());
        let at = p.len() as u8;
        p.extend_from_slice(&[0xc0, at]);
        assert!(
            parse_answer(&p, 7, "app", QType::A)
                .unwrap_err()
                .contains("loop")
        );
        // A 3-byte "A" record.
        let p = answer(7, "app", 0, &[(1, vec![1, 2, 3])]);
        assert!(parse_answer(&p, 7, "app", QType::A).is_err());
        // Every truncation of a good answer.
        let p = answer(7, "app", 0, &[(1, vec![1, 2, 3, 4])]);
        for cut in 0..p.len() {
            let _ = parse_answer(&p[..cut], 7, "app", QType::A);
        }
        // Truncated flag.
        let mut p = answer(7, "app", 0, &[]);
        p[2] |= 0x02;
        assert!(
            parse_answer(&p, 7, "app", QType::A)
                .unwrap_err()
                .contains("TC")
        );
    }

    #[test]
    fn query_encoding_refuses_bad_names() {
        let q = encode_query(0x1234, "app.shop.", QType::Aaaa).unwrap();
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(&q[12..22], b"\x03app\x04shop\x00");
        assert_eq!(&q[22..], &[0, 28, 0, 1]);
        assert!(encode_query(1, "", QType::A).is_err());
        assert!(encode_query(1, "a..b", QType::A).is_err());
        assert!(encode_query(1, &"x".repeat(64), QType::A).is_err());
    }

    #[test]
    fn hosts_and_resolv_conf() {
        let hosts = "127.0.0.1 localhost\n172.18.0.4\tapp shop-app # compose\n# 1.2.3.4 app\n::1 localhost ip6-localhost\n";
        assert_eq!(
            hosts_lookup(hosts, "app"),
            vec!["172.18.0.4".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(hosts_lookup(hosts, "SHOP-APP").len(), 1);
        assert!(hosts_lookup(hosts, "db").is_empty());
        let resolv =
            "search shop\nnameserver 127.0.0.11\nnameserver fe80::1%eth0\noptions ndots:0\n";
        assert_eq!(
            nameservers(resolv),
            vec![
                "127.0.0.11".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn queries_a_fake_server_on_loopback() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let srv = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = srv.local_addr().unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let (n, from) = srv.recv_from(&mut buf).await.unwrap();
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                // A spoofed answer with the wrong id first, then the real one.
                let bad = answer(id.wrapping_add(1), "app", 0, &[(1, vec![6, 6, 6, 6])]);
                srv.send_to(&bad, from).await.unwrap();
                let good = answer(id, "app", 0, &[(1, vec![172, 18, 0, 4])]);
                let _ = n;
                srv.send_to(&good, from).await.unwrap();
            });
            let ips = query(addr, "app", QType::A, Duration::from_secs(2))
                .await
                .unwrap();
            assert_eq!(ips, vec!["172.18.0.4".parse::<IpAddr>().unwrap()]);
            // Nobody answers: a timeout naming the server.
            let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let e = query(
                silent.local_addr().unwrap(),
                "app",
                QType::A,
                Duration::from_millis(100),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, DnsError::Timeout { .. }), "{e}");
        });
    }

    #[test]
    fn entering_a_namespace_runs_there_or_says_why_not() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Our own namespace: works as root, and says why not otherwise.
            let me = std::process::id();
            let r = in_netns(me, move || async move { netns_id(me) }).await;
            match r {
                Ok(id) => assert_eq!(id, netns_id(me)),
                Err(e) => assert!(
                    e.contains(&format!("cannot enter the network namespace of pid {me}")),
                    "{e}"
                ),
            }
            let e = in_netns(u32::MAX - 1, || async {}).await.unwrap_err();
            assert!(
                e.contains("cannot enter the network namespace of pid"),
                "{e}"
            );
            assert_eq!(Vantage::Host.describe(), "from this host");
            assert_eq!(
                Vantage::Netns {
                    pid: 1234,
                    container: Some("shop-web".into())
                }
                .describe(),
                "from the network namespace of container shop-web (pid 1234)"
            );
        });
    }
}
