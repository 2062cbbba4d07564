//! `dns_failure` where nginx resolves the upstream's name at request time (a
//! variable in `proxy_pass`, or a `resolve` server) and has no `resolver`:
//! nginx does not use the system's resolver then, and every request fails
//! with "no resolver defined". Remedy: add a `resolver` naming the system's
//! nameservers (from resolv.conf) to the server block that serves the URL.
//!
//! With a resolver already configured there is no edit here (a typo in the
//! name, or a resolver that does not know it, is the operator's call).

use super::{Inputs, Remedy, nginx_front, split_at};
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
        return Err(format!(
            "nginx has a resolver ({r}): the name does not resolve through it; check the name and the record"
        ));
    }
    let route = i
        .map
        .route
        .as_ref()
        .ok_or("the route that serves the URL was not found")?;
    let handler = route
        .handler
        .as_ref()
        .ok_or("the directive that hands the request on was not found")?;
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
    let block = route
        .server_block
        .as_ref()
        .ok_or("the server block that serves the URL was not found")?;
    let name = i
        .map
        .upstreams
        .iter()
        .find(|u| !u.backup)
        .map_or_else(|| "the upstream's name".to_owned(), |u| u.address.clone());
    let line = format!("{} valid={VALID}", ns.join(" "));
    Ok(Remedy {
        cause: "dns_failure".into(),
        reason: format!(
            "nginx must resolve {name} at request time (`{}`, {}) but has no resolver, so every request fails with \"no resolver defined\": add `resolver {line}` to the server block ({}): the nameservers of {}, answers kept {VALID}",
            handler.text,
            handler.at(),
            block.at(),
            i.measured.resolv_conf
        ),
        stopgap: false,
        changes: vec![format!("@{}+ resolver {line}", block.line)],
        file: split_at(&block.at()).map_or_else(|| block.file.clone(), |(f, _)| f),
        syntax: ConfigSyntax::Nginx,
        allowed,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Measured, compute as remedy};
    use super::*;
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Front, Place, Route, Upstream};

    fn map() -> ServiceMap {
        ServiceMap {
            front: Some(Front {
                kind: "nginx".into(),
                pid: 42,
                config_files: vec!["/etc/nginx/nginx.conf".into()],
                ..Front::default()
            }),
            route: Some(Route {
                server_block: Some(Place {
                    file: "/etc/nginx/nginx.conf".into(),
                    line: 23,
                    text: "server".into(),
                }),
                handler: Some(Place {
                    file: "/etc/nginx/nginx.conf".into(),
                    line: 29,
                    text: "proxy_pass http://$backend:3000".into(),
                }),
                ..Route::default()
            }),
            upstreams: vec![Upstream {
                address: "app.shop.internal:3000".into(),
                kind: "name".into(),
                scheme: "http".into(),
                ..Upstream::default()
            }],
            ..ServiceMap::default()
        }
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
        let r = remedy(
            "dns_failure",
            Inputs {
                map: &m,
                measured: &measured,
            },
        )
        .unwrap();
        assert_eq!(r.changes, ["@23+ resolver 127.53.1.2 valid=30s"]);
        assert!(r.reason.contains("no resolver"), "{}", r.reason);
        let mut with = map();
        with.resolver = Some("10.0.0.2".into());
        assert!(
            compute(Inputs {
                map: &with,
                measured: &measured
            })
            .is_err()
        );
        let none = Measured::default();
        assert!(
            compute(Inputs {
                map: &m,
                measured: &none
            })
            .is_err()
        );
    }
}
