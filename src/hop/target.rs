//! Where to hop: the upstreams of the failing path that live on another host. An address is
//! local when it is one of this host's own addresses (loopback included) or lies in one of the
//! container networks of this host's Docker Engine (those upstreams are containers here, which
//! the container checks already see), or when discovery matched it to a container.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::template::Values;

/// An IP network, `10.0.0.0/8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.trim().parse().ok()?;
        let prefix: u8 = p.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let m = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & m == u32::from(i) & m
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let m = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & m == u128::from(i) & m
            }
            _ => false,
        }
    }
}

/// What counts as this host.
#[derive(Debug, Clone, Default)]
pub struct Locality {
    pub addresses: BTreeSet<IpAddr>,
    /// Container networks of this host (Docker's IPAM subnets), with their names.
    pub container_nets: Vec<(String, Net)>,
}

impl Locality {
    /// This host's addresses and its Docker networks (when an Engine answers within 2 s).
    pub async fn here() -> Locality {
        let addresses = tokio::task::spawn_blocking(crate::sys::local_addresses)
            .await
            .unwrap_or_default();
        let mut container_nets = Vec::new();
        if let Ok(d) = crate::docker::Docker::from_env() {
            let d = d.with_timeout(Duration::from_secs(2));
            if let Ok(nets) = d.networks().await {
                for n in nets {
                    for c in &n.ipam.config {
                        if let Some(net) = Net::parse(&c.subnet) {
                            container_nets.push((n.name.clone(), net));
                        }
                    }
                }
            }
        }
        Locality {
            addresses,
            container_nets,
        }
    }

    /// Why `ip` is not another host, or None when it is.
    pub fn local_because(&self, ip: IpAddr) -> Option<String> {
        if crate::sys::net::is_local(ip, &self.addresses) {
            return Some(format!("{ip} is this host's address"));
        }
        self.container_nets
            .iter()
            .find(|(_, n)| n.contains(ip))
            .map(|(name, n)| {
                format!(
                    "{ip} is in the container network {name} ({}/{}) of this host",
                    n.addr, n.prefix
                )
            })
    }
}

/// One remote upstream to hop to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What ssh connects to: the upstream's host (a name or an address).
    pub ssh_host: String,
    /// The upstream as the proxy names it (`10.0.0.12:8080`).
    pub upstream: String,
    /// The URL as that host sees it: the upstream address and the failing request's path.
    pub url: String,
}

/// An upstream set aside (local, a socket, unparsable), with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub upstream: String,
    pub why: String,
}

fn split_host_port(a: &str) -> Option<(String, Option<u16>)> {
    if let Ok(sa) = a.parse::<SocketAddr>() {
        return Some((sa.ip().to_string(), Some(sa.port())));
    }
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Some((ip.to_string(), None));
    }
    if let Some(rest) = a.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        let port = p.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((h.to_owned(), port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_owned(), Some(p.parse().ok()?))),
        None if !a.is_empty() => Some((a.to_owned(), None)),
        _ => None,
    }
}

/// The path and query of the failing URL (`/` when it has none).
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].split('#').next().unwrap_or("/").to_owned(),
        None => "/".into(),
    }
}

/// The remote upstreams of the failing path, from discovery's facts (`upstream.addresses`,
/// else `upstream`), with the ones set aside and why.
pub fn targets(values: &Values, url: &str, here: &Locality) -> (Vec<Target>, Vec<Skipped>) {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let list = values
        .get("upstream.addresses")
        .or_else(|| values.get("upstream"))
        .cloned()
        .unwrap_or_default();
    let scheme = values
        .get("upstream.scheme")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("http");
    let in_container = values.get("upstream.container").filter(|c| !c.is_empty());
    let path = path_of(url);
    let mut seen = BTreeSet::new();
    for raw in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !seen.insert(raw.to_owned()) {
            continue;
        }
        let skip = |why: String| Skipped {
            upstream: raw.to_owned(),
            why,
        };
        let addr = raw
            .strip_prefix("http://")
            .or_else(|| raw.strip_prefix("https://"))
            .unwrap_or(raw);
        if addr.starts_with("unix:") || addr.starts_with('/') {
            skipped.push(skip("a unix socket: on this host".into()));
            continue;
        }
        let Some((host, port)) = split_host_port(addr) else {
            skipped.push(skip("not an address".into()));
            continue;
        };
        if let Some(c) = in_container {
            if list.lines().count() == 1 {
                skipped.push(skip(format!("the container {c} on this host")));
                continue;
            }
        }
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host.as_str(), port.unwrap_or(80))
                .to_socket_addrs()
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default(),
        };
        if let Some(why) = ips.iter().find_map(|ip| here.local_because(*ip)) {
            skipped.push(skip(why));
            continue;
        }
        let web_scheme = if scheme == "https" { "https" } else { "http" };
        if scheme != "http" && scheme != "https" {
            skipped.push(skip(format!(
                "a {scheme} upstream: no URL to follow on its host"
            )));
            continue;
        }
        let authority = match (host.contains(':'), port) {
            (true, Some(p)) => format!("[{host}]:{p}"),
            (true, None) => format!("[{host}]"),
            (false, Some(p)) => format!("{host}:{p}"),
            (false, None) => host.clone(),
        };
        found.push(Target {
            ssh_host: host,
            upstream: raw.to_owned(),
            url: format!("{web_scheme}://{authority}{path}"),
        });
    }
    (found, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> Locality {
        Locality {
            addresses: ["10.0.0.5".parse().unwrap()].into_iter().collect(),
            container_nets: vec![("bridge".into(), Net::parse("172.17.0.0/16").unwrap())],
        }
    }

    #[test]
    fn nets() {
        let n = Net::parse("172.17.0.0/16").unwrap();
        assert!(n.contains("172.17.3.4".parse().unwrap()));
        assert!(!n.contains("172.18.0.1".parse().unwrap()));
        assert!(
            Net::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(Net::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn remote_upstreams_only_with_the_failing_path() {
        let mut v = Values::new();
        v.insert(
            "upstream.addresses".into(),
            "10.250.20.11:80\n127.0.0.1:9000\n10.0.0.5:8080\n172.17.0.2:80\nunix:/run/php/www.sock\n10.250.20.12:80\n10.250.20.11:80".into(),
        );
        v.insert("upstream.scheme".into(), "http".into());
        let (t, s) = targets(&v, "https://shop.example.com/cart/x.php?id=1#frag", &here());
        let urls: Vec<&str> = t.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://10.250.20.11:80/cart/x.php?id=1",
                "http://10.250.20.12:80/cart/x.php?id=1"
            ]
        );
        assert_eq!(t[0].ssh_host, "10.250.20.11");
        let why: Vec<&str> = s.iter().map(|s| s.why.as_str()).collect();
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why[0].contains("this host's address"));
        assert!(why[2].contains("container network bridge"));
        assert!(why[3].contains("unix socket"));
    }

    #[test]
    fn fastcgi_on_another_host_is_set_aside_with_why() {
        let mut v = Values::new();
        v.insert("upstream".into(), "10.9.9.9:9000".into());
        v.insert("upstream.scheme".into(), "fastcgi".into());
        let (t, s) = targets(&v, "http://x/", &here());
        assert!(t.is_empty());
        assert!(s[0].why.contains("fastcgi"));
    }

    #[test]
    fn paths() {
        assert_eq!(path_of("http://a"), "/");
        assert_eq!(path_of("http://a:8/b/c?d=1"), "/b/c?d=1");
    }
}
