//! For each upstream address: is it on this host, and which process (if
//! any) listens there? A php-fpm listener is described down to its pool.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::HostView;
use super::front::{self, Kind};
use super::service_map::{ServiceMap, Upstream};
use crate::sys;

/// Fill `local`, `listener` and `listener_note` of every upstream, and
/// `php_fpm` for the first upstream served by php-fpm.
pub fn resolve_listeners(map: &mut ServiceMap, view: &HostView) {
    let mut php: Option<(u32, String)> = None;
    for u in &mut map.upstreams {
        if u.listener_note.is_some() && u.address.contains('$') {
            continue;
        }
        let pid = match u.kind.as_str() {
            "unix" => unix(u, view),
            "tcp" => {
                if let Some(sa) = parse_socket_addr(&u.address) {
                    tcp(u, sa, view)
                } else {
                    u.listener_note = Some(format!("cannot parse {} as an address", u.address));
                    None
                }
            }
            _ => name(u, view),
        };
        if let Some(pid) = pid
            && php.is_none()
            && view
                .process(pid)
                .is_some_and(|p| front::kind_of(p) == Kind::PhpFpm)
        {
            php = Some((pid, u.address.clone()));
        }
    }
    if let Some((pid, addr)) = php {
        super::php_fpm::describe(map, pid, &addr, view);
    }
}

fn set_listener(u: &mut Upstream, l: &sys::Listener, view: &HostView) -> Option<u32> {
    if let Some(pid) = super::front::master_of(l, &view.procs) {
        u.listener = Some(view.label(pid));
        u.listener_pid = Some(pid);
        Some(pid)
    } else {
        u.listener_note = Some(format!(
            "{l} is listening, but its process is unknown{}",
            view.scan
                .owner_caveat()
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        ));
        None
    }
}

fn unix(u: &mut Upstream, view: &HostView) -> Option<u32> {
    let path = u
        .address
        .strip_prefix("unix:")
        .unwrap_or(&u.address)
        .to_owned();
    u.local = Some(true);
    if let Some(l) = view.scan.unix_at(Path::new(&path)) {
        return set_listener(u, l, view);
    }
    u.listener_note = Some(match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("no socket file at {path}: nothing listens (connect gives ENOENT)")
        }
        Err(e) => format!("cannot look at {path}: {e}"),
        Ok(_) => format!(
            "{path} exists but no process listens on it (a stale socket: connect gives ECONNREFUSED)"
        ),
    });
    None
}

fn tcp(u: &mut Upstream, sa: SocketAddr, view: &HostView) -> Option<u32> {
    let local = sys::net::is_local(sa.ip(), &view.local);
    u.local = Some(local);
    if !local {
        u.listener_note = Some(format!(
            "{} is another host: its listener cannot be seen from here (use a tcp check)",
            sa.ip()
        ));
        return None;
    }
    if let Some(l) = view.scan.tcp_for(sa.ip(), sa.port()).first() {
        return set_listener(u, l, view);
    }
    u.listener_note = Some(format!("nothing listens on {sa}: connections are refused"));
    None
}

fn name(u: &mut Upstream, view: &HostView) -> Option<u32> {
    let addrs = match resolve_with_timeout(&u.address, Duration::from_secs(3)) {
        Ok(a) => a,
        Err(e) => {
            u.listener_note = Some(format!("{} does not resolve here: {e}", u.address));
            return None;
        }
    };
    for sa in &addrs {
        if sys::net::is_local(sa.ip(), &view.local) {
            u.local = Some(true);
            if let Some(l) = view.scan.tcp_for(sa.ip(), sa.port()).first() {
                return set_listener(u, l, view);
            }
        }
    }
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    if u.local == Some(true) {
        u.listener_note = Some(format!(
            "{} resolves to {} on this host, but nothing listens there",
            u.address,
            list.join(", ")
        ));
    } else {
        u.local = Some(false);
        u.listener_note = Some(format!(
            "{} resolves to {} (another host): its listener cannot be seen from here",
            u.address,
            list.join(", ")
        ));
    }
    None
}

/// `127.0.0.1:80`, `[::1]:80`.
pub fn parse_socket_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok().or_else(|| {
        let (h, p) = s.rsplit_once(':')?;
        let ip: IpAddr = h.trim_matches(['[', ']']).parse().ok()?;
        Some(SocketAddr::new(ip, p.parse().ok()?))
    })
}

/// Resolve `host:port` with the system resolver, giving up after `t`
/// (the lookup thread is left to finish on its own).
pub fn resolve_with_timeout(addr: &str, t: Duration) -> Result<Vec<SocketAddr>, String> {
    let (tx, rx) = mpsc::channel();
    let a = addr.to_owned();
    std::thread::spawn(move || {
        let r = a
            .to_socket_addrs()
            .map(Iterator::collect::<Vec<_>>)
            .map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    rx.recv_timeout(t)
        .map_err(|_| format!("no answer within {}s", t.as_secs()))?
}
