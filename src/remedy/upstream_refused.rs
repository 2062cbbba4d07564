//! `upstream_refused`: nothing accepts connections at the address the proxy
//! dials, while the application runs and listens elsewhere: on the other
//! loopback family (`[::1]:3000` only, when `127.0.0.1:3000` is configured,
//! as a `localhost` bind often does), or on a nearby port of the same address
//! after a change of its configuration (`127.0.0.1:3001`). Remedy: point the
//! directive that names the address (`proxy_pass`, or the `server` line of
//! its `upstream` block) at the live one, when exactly one candidate exists.
//!
//! Candidates, in this order (the first kind with any decides):
//! 1. the same port on another address the proxy can reach on this host
//!    (the other loopback, a wildcard, a local address): the port is the
//!    application's identity, an edit is offered for exactly one;
//! 2. the same address, a port within ±10 of the configured one: only named
//!    in the reason, never edited automatically (nothing proves the process
//!    on a nearby port is this site's application rather than another one).
//!
//! An `upstream` group of several servers is handed to
//! [`super::no_live_upstreams`] (each member, and nginx's marks explained).
//!
//! The front server's own sockets are never candidates (the check leaves
//! them out). With no candidate, or more than one, there is no edit: start
//! or restart the unit (the walk's generic step), or choose by hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Inputs, LiveListener, Remedy, nginx_front, retarget};
use crate::action_spec::ConfigSyntax;
use crate::discovery::service_map::Upstream;

const SAME_PORT: &str = "the same port on another address";

/// How far a "nearby" port may be.
pub const NEARBY_PORTS: u16 = 10;

/// Where a connection from this host to `l` would go, for the address
/// written in the proxy's configuration (a wildcard bind is reached through
/// the loopback of its family).
fn dial(l: &LiveListener) -> SocketAddr {
    let ip = match l.addr.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, l.addr.port())
}

/// The candidates for `configured`, by the rules above; `.0` says which rule.
pub fn candidates(
    configured: SocketAddr,
    live: &[LiveListener],
) -> (&'static str, Vec<&LiveListener>) {
    let accepts = |l: &LiveListener| {
        l.addr.port() == configured.port()
            && (l.addr.ip() == configured.ip()
                || (l.addr.ip().is_unspecified()
                    && (l.addr.is_ipv4() == configured.is_ipv4() || l.addr.is_ipv6())))
    };
    if live.iter().any(accepts) {
        // Something does listen there now: not a wrong address.
        return ("listening", Vec::new());
    }
    let same_port: Vec<&LiveListener> = live
        .iter()
        .filter(|l| l.addr.port() == configured.port())
        .collect();
    if !same_port.is_empty() {
        return (SAME_PORT, same_port);
    }
    let nearby: Vec<&LiveListener> = live
        .iter()
        .filter(|l| {
            dial(l).ip() == configured.ip()
                && l.addr.port().abs_diff(configured.port()) <= NEARBY_PORTS
        })
        .collect();
    ("a nearby port of the same address", nearby)
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let up = i
        .map
        .upstreams
        .iter()
        .find(|u| !u.backup && u.kind == "tcp")
        .ok_or("the upstream is not an IP address and port")?;
    // A group of servers: every member is looked at, and nginx's marks
    // (max_fails, fail_timeout) explained.
    if up.group.is_some()
        && i.map
            .upstreams
            .iter()
            .filter(|u| u.group == up.group && !u.backup)
            .count()
            > 1
    {
        return super::no_live_upstreams::compute(i).map(|r| Remedy {
            cause: "upstream_refused".into(),
            ..r
        });
    }
    compute_for(i, up)
}

/// The remedy for one upstream server `up` (of the map's upstreams).
pub fn compute_for(i: Inputs<'_>, up: &Upstream) -> Result<Remedy, String> {
    let (server, allowed) = nginx_front(i.map)?;
    let configured: SocketAddr = up
        .address
        .parse()
        .map_err(|_| format!("{} is not an IP address and port", up.address))?;
    let (rule, found) = candidates(configured, &i.measured.tcp_listeners);
    let live = match found.as_slice() {
        [one] if rule == SAME_PORT => *one,
        [one] => {
            return Err(format!(
                "nothing listens on {configured}; {} ({}) listens on a nearby port of the same address: if it is this site's application, point the proxy at it by hand (a nearby port alone does not prove it); otherwise start or restart the service",
                one.addr, one.owner
            ));
        }
        [] if rule == "listening" => {
            return Err(format!(
                "something listens on {configured} now: the refusal was transient, or the service restarted meanwhile"
            ));
        }
        [] => {
            return Err(format!(
                "nothing listens on {configured}, nor on its port at another address, nor within ±{NEARBY_PORTS} ports of it: the service is down; start or restart it"
            ));
        }
        many => {
            return Err(format!(
                "nothing listens on {configured}, and {} candidates listen on {rule} ({}): which one serves this site is the operator's call (point the proxy at it by hand), or start or restart the service",
                many.len(),
                many.iter()
                    .map(|l| format!("{} ({})", l.addr, l.owner))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let target = dial(live);
    let (file, line, name, args) = retarget(
        i.map,
        up,
        target.to_string(),
        super::PASSES,
        |name, words| {
            let configured_text = configured.to_string();
            let args: Vec<String> = words
                .iter()
                .map(|w| w.replace(&configured_text, &target.to_string()))
                .collect();
            if args.iter().any(|a| a.contains(&target.to_string())) {
                Ok(args)
            } else {
                Err(format!(
                    "`{name} {}` does not name {configured_text} literally (a variable or a name): edit it by hand",
                    words.join(" ")
                ))
            }
        },
    )?;
    let family = if live.addr.is_ipv6() == configured.is_ipv6() {
        String::new()
    } else {
        format!(
            " (it binds {} only: a `localhost` bind resolved to one family)",
            if live.addr.is_ipv6() { "IPv6" } else { "IPv4" }
        )
    };
    Ok(Remedy::edit(
        "upstream_refused",
        ConfigSyntax::Nginx,
        (server, allowed),
        file.clone(),
        vec![format!("@{line} {name} {}", args.join(" "))],
        format!(
            "the application listens on {} ({}), not on {configured} where {file}:{line} sends requests (connection refused){family}: point {name} at {target}, the one candidate on {rule}",
            live.addr, live.owner
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Measured;
    use super::super::fixture::{nginx_map, place, remedy, upstream};
    use super::*;
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::Route;

    fn map() -> ServiceMap {
        nginx_map(
            Route {
                handler: Some(place(27, "proxy_pass http://127.0.0.1:3000/app/")),
                ..Route::default()
            },
            vec![upstream("127.0.0.1:3000", "http", 27)],
        )
    }

    fn live(addrs: &[&str]) -> Measured {
        Measured {
            tcp_listeners: addrs
                .iter()
                .map(|a| LiveListener {
                    addr: a.parse().unwrap(),
                    owner: "7 node".into(),
                })
                .collect(),
            ..Measured::default()
        }
    }

    #[test]
    fn the_app_on_the_other_loopback_family_is_pointed_at() {
        let m = map();
        let r = remedy(
            "upstream_refused",
            &m,
            &live(&["[::1]:3000", "127.0.0.1:22"]),
        )
        .unwrap();
        assert_eq!(r.changes, ["@27 proxy_pass http://[::1]:3000/app/"]);
        assert!(r.reason.contains("IPv6 only"), "{}", r.reason);
        // A nearby port of the same address is named, not edited.
        let e = remedy(
            "upstream_refused",
            &m,
            &live(&["127.0.0.1:3001", "127.0.0.1:8080"]),
        )
        .unwrap_err();
        assert!(
            e.contains("127.0.0.1:3001 (7 node) listens on a nearby port"),
            "{e}"
        );
        // A wildcard bind on the port is reached through the loopback... but it accepts
        // 127.0.0.1 already: not refused.
        assert!(
            remedy("upstream_refused", &m, &live(&["0.0.0.0:3000"]))
                .unwrap_err()
                .contains("listens on 127.0.0.1:3000 now")
        );
    }

    #[test]
    fn none_or_several_candidates_give_no_edit() {
        let m = map();
        assert!(
            remedy("upstream_refused", &m, &live(&["127.0.0.1:8080"]))
                .unwrap_err()
                .contains("start or restart")
        );
        assert!(
            remedy(
                "upstream_refused",
                &m,
                &live(&["127.0.0.1:3001", "127.0.0.1:3002"])
            )
            .unwrap_err()
            .contains("2 candidates")
        );
    }
}
