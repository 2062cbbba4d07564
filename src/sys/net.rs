//! Sockets bound on this host, from `/proc/net/*`, with their owning PIDs.
//!
//! TCP sockets in state LISTEN, UDP sockets bound with no peer, and unix
//! sockets that listen (stream/seqpacket with `__SO_ACCEPTCON`) or are bound
//! datagram sockets (`/dev/log`). Owners come from one walk of
//! `/proc/*/fd`; processes whose descriptors cannot be read are listed in
//! [`ListenerScan::unreadable`] with the reason.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SysError;

/// Socket family and type of a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    /// A unix stream (or seqpacket) socket that accepts connections.
    Unix,
    /// A bound unix datagram socket (e.g. syslog's `/dev/log`).
    UnixDgram,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Tcp6 => "tcp6",
            Proto::Udp => "udp",
            Proto::Udp6 => "udp6",
            Proto::Unix => "unix",
            Proto::UnixDgram => "unix-dgram",
        }
    }

    pub fn is_tcp(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Tcp6)
    }

    pub fn is_udp(self) -> bool {
        matches!(self, Proto::Udp | Proto::Udp6)
    }
}

/// One socket that accepts connections or datagrams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub proto: Proto,
    /// Bound address (IP sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    /// Bound port (IP sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Filesystem path (unix sockets; abstract ones start with `@`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub inode: u64,
    /// Processes holding the socket open, ascending.
    pub pids: Vec<u32>,
}

impl Listener {
    /// Does this listener accept a connection to `ip:port`? A wildcard
    /// address accepts its own family; `[::]` also accepts IPv4 (dual-stack
    /// is Linux's default, `/proc` does not show `IPV6_V6ONLY`).
    pub fn accepts(&self, ip: IpAddr, port: u16) -> bool {
        if self.port != Some(port) {
            return false;
        }
        match (self.addr, ip) {
            (Some(a), ip) if a == ip => true,
            (Some(IpAddr::V4(a)), IpAddr::V4(_)) => a.is_unspecified(),
            (Some(IpAddr::V6(a)), IpAddr::V6(_)) => a.is_unspecified(),
            (Some(IpAddr::V6(a)), IpAddr::V4(v4)) => {
                a.is_unspecified() || a.to_ipv4_mapped() == Some(v4)
            }
            _ => false,
        }
    }

    /// Is the bound address a wildcard (`0.0.0.0` or `::`)?
    pub fn is_wildcard(&self) -> bool {
        self.addr.is_some_and(|a| a.is_unspecified())
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.addr, self.port) {
            (Some(p), ..) => write!(f, "{} {}", self.proto.as_str(), p.display()),
            (None, Some(IpAddr::V6(a)), Some(port)) => {
                write!(f, "{} [{a}]:{port}", self.proto.as_str())
            }
            (None, Some(a), Some(port)) => write!(f, "{} {a}:{port}", self.proto.as_str()),
            _ => write!(f, "{} inode {}", self.proto.as_str(), self.inode),
        }
    }
}

/// The result of one scan: the listeners, and what could not be looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListenerScan {
    pub listeners: Vec<Listener>,
    /// Processes whose `/proc/PID/fd` could not be read, with the reason.
    /// A listener with no `pids` may belong to one of them.
    pub unreadable: Vec<(u32, String)>,
    /// `/proc/net` tables that could not be read.
    pub errors: Vec<SysError>,
}

impl ListenerScan {
    /// TCP listeners that accept `ip:port`, exact binds before wildcards.
    pub fn tcp_for(&self, ip: IpAddr, port: u16) -> Vec<&Listener> {
        let mut v: Vec<&Listener> = self
            .listeners
            .iter()
            .filter(|l| l.proto.is_tcp() && l.accepts(ip, port))
            .collect();
        v.sort_by_key(|l| (l.is_wildcard(), l.proto));
        v
    }

    /// UDP sockets bound to accept datagrams for `ip:port`.
    pub fn udp_for(&self, ip: IpAddr, port: u16) -> Vec<&Listener> {
        let mut v: Vec<&Listener> = self
            .listeners
            .iter()
            .filter(|l| l.proto.is_udp() && l.accepts(ip, port))
            .collect();
        v.sort_by_key(|l| (l.is_wildcard(), l.proto));
        v
    }

    /// Any TCP listener on `port`, whatever the address.
    pub fn tcp_on_port(&self, port: u16) -> Vec<&Listener> {
        self.listeners
            .iter()
            .filter(|l| l.proto.is_tcp() && l.port == Some(port))
            .collect()
    }

    /// The unix socket bound at `path` (stream first, then datagram).
    pub fn unix_at(&self, path: &Path) -> Option<&Listener> {
        let mut v: Vec<&Listener> = self
            .listeners
            .iter()
            .filter(|l| {
                matches!(l.proto, Proto::Unix | Proto::UnixDgram) && l.path.as_deref() == Some(path)
            })
            .collect();
        v.sort_by_key(|l| l.proto);
        if let Some(l) = v.first() {
            return Some(l);
        }
        // Servers that bind to a temporary name and rename it into place
        // (HAProxy: `admin.sock.<pid>.tmp`) show the old name in /proc.
        let prefix = format!("{}.", path.display());
        self.listeners.iter().find(|l| {
            matches!(l.proto, Proto::Unix | Proto::UnixDgram)
                && l.path.as_deref().is_some_and(|p| {
                    let p = p.to_string_lossy();
                    p.starts_with(&prefix) && p.ends_with(".tmp")
                })
        })
    }

    /// A sentence saying why an owner may be missing, when it may be.
    pub fn owner_caveat(&self) -> Option<String> {
        let denied = self
            .unreadable
            .iter()
            .filter(|(_, r)| r.contains("permission"))
            .count();
        (denied > 0).then(|| {
            format!("{denied} process(es) could not be inspected (permission denied: run as root)")
        })
    }
}

/// Scan every listening socket on the host and map each to its processes.
pub fn listeners() -> ListenerScan {
    let mut scan = ListenerScan::default();
    for (file, proto) in [
        ("/proc/net/tcp", Proto::Tcp),
        ("/proc/net/tcp6", Proto::Tcp6),
        ("/proc/net/udp", Proto::Udp),
        ("/proc/net/udp6", Proto::Udp6),
    ] {
        match super::read_text(Path::new(file)) {
            Ok(text) => scan.listeners.extend(parse_inet(&text, proto)),
            Err(e) => scan.errors.push(e),
        }
    }
    match super::read_text(Path::new("/proc/net/unix")) {
        Ok(text) => scan.listeners.extend(parse_unix(&text)),
        Err(e) => scan.errors.push(e),
    }
    let owners = socket_owners();
    for l in &mut scan.listeners {
        if let Some(p) = owners.by_inode.get(&l.inode) {
            l.pids = p.iter().copied().collect();
        }
    }
    scan.unreadable = owners.unreadable;
    scan
}

/// Which processes hold which socket inodes.
#[derive(Debug, Default)]
pub struct SocketOwners {
    pub by_inode: HashMap<u64, BTreeSet<u32>>,
    pub unreadable: Vec<(u32, String)>,
}

/// Walk `/proc/*/fd` once, collecting `socket:[N]` links.
pub fn socket_owners() -> SocketOwners {
    let mut out = SocketOwners::default();
    for pid in super::process::pids() {
        let dir = PathBuf::from(format!("/proc/{pid}/fd"));
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.unreadable.push((pid, SysError::new(&dir, &e).reason));
                continue;
            }
        };
        for entry in entries.take(super::MAX_FDS_PER_PROCESS).flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if let Some(inode) = socket_inode(&target) {
                out.by_inode.entry(inode).or_default().insert(pid);
            }
        }
    }
    out
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// Parse `/proc/net/{tcp,tcp6,udp,udp6}`: TCP in LISTEN, UDP bound with no peer.
pub fn parse_inet(text: &str, proto: Proto) -> Vec<Listener> {
    let want = if proto.is_tcp() {
        TCP_LISTEN
    } else {
        UDP_UNCONNECTED
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != want {
                return None;
            }
            let (addr, port) = parse_hex_endpoint(f[1])?;
            if proto.is_udp() {
                let (_, rport) = parse_hex_endpoint(f[2])?;
                if rport != 0 {
                    return None;
                }
            }
            let inode: u64 = f[9].parse().ok()?;
            Some(Listener {
                proto,
                addr: Some(addr),
                port: Some(port),
                path: None,
                inode,
                pids: Vec::new(),
            })
        })
        .collect()
}

/// `0100007F:1F90` → 127.0.0.1:8080. The kernel prints each 32-bit word of
/// the address in host byte order, the port already in host order.
pub fn parse_hex_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let addr = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port))
}

const SO_ACCEPTCON: u32 = 0x0001_0000;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const SOCK_SEQPACKET: u32 = 5;

/// Parse `/proc/net/unix`: listening stream/seqpacket sockets and bound
/// datagram sockets that have a path.
pub fn parse_unix(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode [Path]; the path is
            // the rest of the line and may contain spaces.
            let mut rest = line.trim_start();
            let mut fields = [""; 7];
            for f in &mut fields {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                *f = &rest[..end];
                rest = rest[end..].trim_start();
            }
            let path = rest.trim_end();
            if path.is_empty() {
                return None;
            }
            let flags = u32::from_str_radix(fields[3], 16).ok()?;
            let ty = u32::from_str_radix(fields[4], 16).ok()?;
            let proto = match ty {
                SOCK_STREAM | SOCK_SEQPACKET if flags & SO_ACCEPTCON != 0 => Proto::Unix,
                SOCK_DGRAM => Proto::UnixDgram,
                _ => return None,
            };
            let inode = fields[6].parse().ok()?;
            Some(Listener {
                proto,
                addr: None,
                port: None,
                path: Some(PathBuf::from(path)),
                inode,
                pids: Vec::new(),
            })
        })
        .collect()
}

/// The addresses assigned to this host: IPv4 from the `LOCAL` host routes
/// in `/proc/net/fib_trie`, IPv6 from `/proc/net/if_inet6`.
pub fn local_addresses() -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    if let Ok(t) = super::read_text(Path::new("/proc/net/fib_trie")) {
        out.extend(parse_fib_trie_local(&t));
    }
    if let Ok(t) = super::read_text(Path::new("/proc/net/if_inet6")) {
        for line in t.lines() {
            if let Some(hex) = line.split_whitespace().next()
                && hex.len() == 32
                && let Ok(v) = u128::from_str_radix(hex, 16)
            {
                out.insert(IpAddr::V6(Ipv6Addr::from(v)));
            }
        }
    }
    out.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
    out.insert(IpAddr::V6(Ipv6Addr::LOCALHOST));
    out
}

/// `|-- 10.0.0.5` followed by `/32 host LOCAL` marks a local address.
pub fn parse_fib_trie_local(text: &str) -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(ip) = t.strip_prefix("|-- ").or_else(|| t.strip_prefix("+-- ")) {
            last = ip.split('/').next().and_then(|s| s.parse().ok());
        } else if t.starts_with("/32 host LOCAL")
            && let Some(ip) = last
        {
            out.insert(IpAddr::V4(ip));
        }
    }
    out
}

/// Is `ip` one of this host's addresses (or loopback)?
pub fn is_local(ip: IpAddr, local: &BTreeSet<IpAddr>) -> bool {
    ip.is_loopback() || ip.is_unspecified() || local.contains(&ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_listeners_only() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1510 1 0 100 0 0 10 0\n\
   1: 0100007F:83E9 0100007F:945A 01 00000000:00000000 03:000014C9 00000000     0        0 0 3 0\n";
        let l = parse_inet(t, Proto::Tcp);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].addr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(l[0].port, Some(8080));
        assert_eq!(l[0].inode, 1510);
    }

    #[test]
    fn parses_tcp6_loopback_and_wildcard() {
        let t = "hdr\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0\n   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78 1 0\n";
        let l = parse_inet(t, Proto::Tcp6);
        assert_eq!(l[0].addr, Some("::1".parse().unwrap()));
        assert!(l[1].is_wildcard());
        assert!(l[1].accepts("127.0.0.1".parse().unwrap(), 80));
        assert!(!l[0].accepts("127.0.0.1".parse().unwrap(), 8080));
    }

    #[test]
    fn parses_unix_listeners_and_dgram() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/php/php8.2-fpm.sock\n\
0000000000000000: 00000002 00000000 00000000 0001 03 12346 /run/x.sock\n\
0000000000000000: 00000002 00000000 00000000 0002 01 12347 /dev/log\n\
0000000000000000: 00000002 00000000 00010000 0001 01 12348 /tmp/with space.sock\n\
0000000000000000: 00000002 00000000 00010000 0001 01 12349\n";
        let l = parse_unix(t);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].proto, Proto::Unix);
        assert_eq!(l[1].proto, Proto::UnixDgram);
        assert_eq!(
            l[2].path.as_deref(),
            Some(Path::new("/tmp/with space.sock"))
        );
    }

    #[test]
    fn fib_trie_local_addresses() {
        let t = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 192.0.2.0\n        /24 link UNICAST\n";
        let s = parse_fib_trie_local(t);
        assert!(s.contains(&"192.0.2.2".parse().unwrap()));
        assert_eq!(s.len(), 1);
    }

    // Linux only: reads /proc/net and /proc/PID/fd.
    #[cfg(unix)]
    #[test]
    fn finds_our_own_listener_with_our_pid() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let scan = listeners();
        let found = scan.tcp_for("127.0.0.1".parse().unwrap(), port);
        assert_eq!(found.len(), 1, "{scan:?}");
        assert!(found[0].pids.contains(&std::process::id()));
    }
}
