//! `dns_failure` where nginx resolves the upstream's name at request time (a
//! variable in `proxy_pass`, or a `resolve` server) and has no `resolver`:
//! nginx does not use the system's resolver then, and every request fails
//! with "no resolver defined". Remedy: add a `resolver` naming the system's
//! nameservers (from resolv.conf) to the server block that serves the URL.
//!
//! With a resolver already configured, the name may be a typo: when exactly
//! one name found on this host (the hosts file) is within [`MAX_TYPO`]
//! edits of it and resolves through nginx's resolver, the remedy corrects
//! the name where it is written (the `set $VAR` directive, the handler, or
//! the `server` line of its `upstream` block). None or several: no edit.

use super::{
    Inputs, NameCandidate, Remedy, Server, file_of, nginx_front, primary_upstream, retarget,
    route_handler, route_server_block,
};
use crate::action_spec::ConfigSyntax;

/// How long nginx may keep an answer (nginx default: the record's TTL).
pub const VALID: &str = "30s";

/// The nameservers of a resolv.conf text, as nginx writes addresses.
pub fn nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            let ip: std::net::IpAddr = w.next()?.split('%').next()?.parse().ok()?;
            Some(match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                std::net::IpAddr::V4(v4) => v4.to_string(),
            })
        })
        .take(3)
        .collect()
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, allowed) = nginx_front(i.map)?;
    if let Some(r) = &i.map.resolver {
        return typo(i, r, (server, allowed));
    }
    let handler = route_handler(i.map)?;
    let variable = handler.text.contains('$');
    let resolve = i
        .map
        .upstreams
        .iter()
        .any(|u| u.options.iter().any(|o| o == "resolve"));
    if !variable && !resolve {
        return Err(format!(
            "`{}` names its upstream without a variable: nginx resolved it at start with the system's resolver; a resolver directive would not change that",
            handler.text
        ));
    }
    let ns = &i.measured.nameservers;
    if ns.is_empty() {
        return Err(format!(
            "no nameserver was found in {}: which resolver to give nginx is the operator's call",
            i.measured.resolv_conf
        ));
    }
    let block = route_server_block(i.map)?;
    let name = primary_upstream(i.map)
        .map_or_else(|_| "the upstream's name".to_owned(), |u| u.address.clone());
    let line = format!("{} valid={VALID}", ns.join(" "));
    Ok(Remedy::edit(
        "dns_failure",
        ConfigSyntax::Nginx,
        (server, allowed),
        file_of(block),
        vec![format!("@{}+ resolver {line}", block.line)],
        format!(
            "nginx must resolve {name} at request time (`{}`, {}) but has no resolver, so every request fails with \"no resolver defined\": add `resolver {line}` to the server block ({}): the nameservers of {}, answers kept {VALID}",
            handler.text,
            handler.at(),
            block.at(),
            i.measured.resolv_conf
        ),
    ))
}

/// How many single-character edits a typo may be.
pub const MAX_TYPO: usize = 2;

/// Single-character insertions, deletions and substitutions from `a` to `b`.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The host of `host:port` (`[v6]:port` left alone: not a name).
pub fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => h,
        _ => address,
    }
}

/// The names within [`MAX_TYPO`] edits of `host` (not `host` itself).
pub fn close_names<'a>(host: &str, names: &'a [NameCandidate]) -> Vec<&'a NameCandidate> {
    let mut v: Vec<&NameCandidate> = names
        .iter()
        .filter(|c| {
            !c.name.eq_ignore_ascii_case(host)
                && distance(&c.name.to_ascii_lowercase(), &host.to_ascii_lowercase()) <= MAX_TYPO
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v.dedup_by(|a, b| a.name == b.name);
    v
}

/// nginx has a resolver and the name does not resolve through it: a typo,
/// when exactly one close name resolves there.
fn typo(i: Inputs<'_>, resolver: &str, front: (Server, Vec<String>)) -> Result<Remedy, String> {
    let up = primary_upstream(i.map)?;
    let host = host_of(&up.address);
    if host.contains('$') || host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "nginx has a resolver ({resolver}) and the upstream {} is not a literal name: check the name and the record",
            up.address
        ));
    }
    let close = close_names(host, &i.measured.name_candidates);
    let resolving: Vec<&&NameCandidate> = close.iter().filter(|c| !c.resolved.is_empty()).collect();
    let seen = |v: &[&NameCandidate]| {
        v.iter()
            .map(|c| format!("{} ({})", c.name, c.from))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cand = match resolving.as_slice() {
        [one] => **one,
        [] => {
            let note = if close.is_empty() {
                String::new()
            } else {
                format!(
                    "; close names found do not resolve through it either: {}",
                    seen(&close)
                )
            };
            return Err(format!(
                "nginx has a resolver ({resolver}) and {host} does not resolve through it; no name within {MAX_TYPO} edits of it that resolves was found{note}: check the name and the record"
            ));
        }
        many => {
            return Err(format!(
                "{host} does not resolve through nginx's resolver ({resolver}); {} names within {MAX_TYPO} edits of it do ({}): which one was meant is the operator's call",
                many.len(),
                seen(&many.iter().map(|c| **c).collect::<Vec<_>>())
            ));
        }
    };
    let d = distance(&cand.name.to_ascii_lowercase(), &host.to_ascii_lowercase());
    let fixed = |w: &str| w.replace(host, &cand.name);
    // Where the name is written: a `set $VAR NAME` the handler's variable takes it from,
    // else the handler or the `server` line itself.
    let (file, line, name, args) = match &i.measured.name_set {
        Some(s) if s.args.get(1).is_some_and(|v| v.contains(host)) => (
            s.file.clone(),
            s.line,
            s.name.clone(),
            s.args.iter().map(|a| fixed(a)).collect(),
        ),
        _ => retarget(
            i.map,
            up,
            fixed(&up.address),
            super::PASSES,
            |name, words| {
                let args: Vec<String> = words.iter().map(|w| fixed(w)).collect();
                if args.iter().zip(&words).any(|(a, w)| a != w) {
                    Ok(args)
                } else {
                    Err(format!(
                        "`{name} {}` does not name {host} literally: correct it where it is set, by hand",
                        words.join(" ")
                    ))
                }
            },
        )?,
    };
    Ok(Remedy::edit(
        "dns_failure",
        ConfigSyntax::Nginx,
        front,
        file.clone(),
        vec![format!("@{line} {name} {}", args.join(" "))],
        format!(
            "{host} does not resolve through nginx's resolver ({resolver}), but {} ({}) does, to {}, and differs from it by {d} character{}: a typo; correct the name in `{name}` ({file}:{line})",
            cand.name,
            cand.from,
            cand.resolved.join(", "),
            if d == 1 { "" } else { "s" }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Measured;
    use super::super::fixture::{nginx_map, place, remedy, upstream};
    use super::*;
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Route, Upstream};

    fn map() -> ServiceMap {
        nginx_map(
            Route {
                server_block: Some(place(23, "server")),
                handler: Some(place(29, "proxy_pass http://$backend:3000")),
                ..Route::default()
            },
            vec![Upstream {
                kind: "name".into(),
                ..upstream("app.shop.internal:3000", "http", 29)
            }],
        )
    }

    #[test]
    fn a_variable_upstream_without_resolver_gets_the_system_nameservers() {
        assert_eq!(
            nameservers("# x\nnameserver 127.53.1.2\nnameserver ::1\nsearch lan\n"),
            ["127.53.1.2", "[::1]"]
        );
        let m = map();
        let measured = Measured {
            nameservers: vec!["127.53.1.2".into()],
            resolv_conf: "/etc/resolv.conf".into(),
            ..Measured::default()
        };
        let r = remedy("dns_failure", &m, &measured).unwrap();
        assert_eq!(r.changes, ["@23+ resolver 127.53.1.2 valid=30s"]);
        assert!(r.reason.contains("no resolver"), "{}", r.reason);
        let mut with = map();
        with.resolver = Some("10.0.0.2".into());
        assert!(remedy("dns_failure", &with, &measured).is_err());
        let none = Measured::default();
        assert!(remedy("dns_failure", &m, &none).is_err());
    }

    fn candidate(name: &str, resolved: &[&str]) -> NameCandidate {
        NameCandidate {
            name: name.into(),
            from: "/etc/hosts:3".into(),
            resolved: resolved.iter().map(|&r| r.to_owned()).collect(),
        }
    }

    #[test]
    fn a_name_one_typo_away_from_the_one_resolvable_name_is_corrected_where_it_is_set() {
        let mut m = map();
        m.resolver = Some("127.53.1.2 valid=10s".into());
        m.upstreams[0].address = "app.shop.internl:3000".into();
        let set = super::super::ConfigDirective {
            file: "/etc/nginx/nginx.conf".into(),
            line: 25,
            name: "set".into(),
            args: vec!["$backend".into(), "app.shop.internl".into()],
        };
        let measured = Measured {
            name_candidates: vec![
                candidate("app.shop.internal", &["127.0.0.1"]),
                candidate("db.shop.internal", &["127.0.0.2"]),
            ],
            name_set: Some(set.clone()),
            ..Measured::default()
        };
        let r = remedy("dns_failure", &m, &measured).unwrap();
        assert_eq!(r.changes, ["@25 set $backend app.shop.internal"]);
        assert!(
            r.reason.contains("differs from it by 1 character: a typo"),
            "{}",
            r.reason
        );
        // Two resolvable close names: no edit.
        let two = Measured {
            name_candidates: vec![
                candidate("app.shop.internal", &["127.0.0.1"]),
                candidate("app.shop.interna", &["127.0.0.3"]),
            ],
            name_set: Some(set.clone()),
            ..Measured::default()
        };
        let e = remedy("dns_failure", &m, &two).unwrap_err();
        assert!(e.contains("2 names within 2 edits"), "{e}");
        // The close name does not resolve either: no edit.
        let dead = Measured {
            name_candidates: vec![candidate("app.shop.internal", &[])],
            name_set: Some(set),
            ..Measured::default()
        };
        let e = remedy("dns_failure", &m, &dead).unwrap_err();
        assert!(e.contains("do not resolve through it either"), "{e}");
        // Written in proxy_pass itself: corrected there.
        m.route.as_mut().unwrap().handler =
            Some(place(29, "proxy_pass http://app.shop.internl:3000/"));
        let lit = Measured {
            name_candidates: vec![candidate("app.shop.internal", &["127.0.0.1"])],
            ..Measured::default()
        };
        let r = remedy("dns_failure", &m, &lit).unwrap();
        assert_eq!(r.changes, ["@29 proxy_pass http://app.shop.internal:3000/"]);
        assert_eq!(distance("app.shop.internl", "app.shop.internal"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(host_of("app:3000"), "app");
        let none = Measured::default();
        assert!(remedy("dns_failure", &m, &none).is_err());
    }
}
