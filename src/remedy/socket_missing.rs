//! `socket_missing`: the configuration names a unix socket that does not
//! exist, while a running php-fpm pool listens on another (typical after a
//! PHP upgrade: `php7.4-fpm.sock` configured, `php8.2-fpm.sock` live).
//! Remedy: point the directive that names it (`fastcgi_pass`, or the
//! `server` line of its `upstream` block) at the live socket, when exactly
//! one candidate exists.

use super::{Inputs, Remedy, nginx_front, retarget};
use crate::action_spec::ConfigSyntax;

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, allowed) = nginx_front(i.map)?;
    let up = i
        .map
        .upstreams
        .iter()
        .find(|u| !u.backup && u.address.starts_with("unix:"))
        .ok_or("the upstream is not a unix socket")?;
    let configured = up.address.trim_start_matches("unix:");
    if i.measured
        .php_fpm_sockets
        .iter()
        .any(|s| s.path == configured)
    {
        return Err(format!("{configured} is live: the socket is not missing"));
    }
    let candidates: Vec<_> = i
        .measured
        .php_fpm_sockets
        .iter()
        .filter(|s| s.path != configured)
        .collect();
    // The typical upgrade leaves the live socket beside the configured one
    // (/run/php/php7.4-fpm.sock → /run/php/php8.2-fpm.sock): one live socket
    // in the same directory decides, even when other pools run elsewhere.
    let dir = |p: &str| {
        std::path::Path::new(p)
            .parent()
            .map(std::path::Path::to_path_buf)
    };
    let beside: Vec<_> = candidates
        .iter()
        .filter(|s| dir(&s.path) == dir(configured))
        .copied()
        .collect();
    let candidates = if beside.len() == 1 {
        beside
    } else {
        candidates
    };
    let live = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "{configured} does not exist and no php-fpm pool listens on a unix socket: start the pool whose socket it is"
            ));
        }
        many => {
            return Err(format!(
                "{configured} does not exist and {} php-fpm sockets are live ({}): which one serves this site is the operator's call",
                many.len(),
                many.iter()
                    .map(|s| s.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let (file, line, name, args) = retarget(
        i.map,
        up,
        format!("unix:{}", live.path),
        super::PASSES,
        |name, _| {
            let scheme = if name == "proxy_pass" { "http://" } else { "" };
            Ok(vec![format!("{scheme}unix:{}", live.path)])
        },
    )?;
    Ok(Remedy::edit(
        "socket_missing",
        ConfigSyntax::Nginx,
        (server, allowed),
        file.clone(),
        vec![format!("@{line} {name} {}", args.join(" "))],
        format!(
            "{file}:{line} sends requests to {configured}, which does not exist; the running php-fpm ({}) listens on {}: point {name} at it",
            live.owner, live.path
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::remedy;
    use super::super::{LiveSocket, Measured};
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Front, Place, Route, Upstream};

    pub fn map() -> ServiceMap {
        ServiceMap {
            front: Some(Front {
                kind: "nginx".into(),
                pid: 42,
                config: Some("/etc/nginx/nginx.conf".into()),
                config_files: vec!["/etc/nginx/nginx.conf".into(), "/etc/nginx/site".into()],
                ..Front::default()
            }),
            route: Some(Route {
                handler: Some(Place {
                    file: "/etc/nginx/site".into(),
                    line: 12,
                    text: "fastcgi_pass unix:/run/php/php7.4-fpm.sock".into(),
                }),
                ..Route::default()
            }),
            upstreams: vec![Upstream {
                address: "unix:/run/php/php7.4-fpm.sock".into(),
                kind: "unix".into(),
                scheme: "fastcgi".into(),
                source: "/etc/nginx/site:12".into(),
                ..Upstream::default()
            }],
            ..ServiceMap::default()
        }
    }

    fn live(paths: &[&str]) -> Measured {
        Measured {
            php_fpm_sockets: paths
                .iter()
                .map(|p| LiveSocket {
                    path: (*p).into(),
                    owner: "7 php-fpm8.2".into(),
                })
                .collect(),
            ..Measured::default()
        }
    }

    #[test]
    fn the_one_live_socket_replaces_the_missing_one_at_its_line() {
        let m = map();
        let r = remedy("socket_missing", &m, &live(&["/run/php/php8.2-fpm.sock"])).unwrap();
        assert_eq!(r.file, "/etc/nginx/site");
        assert_eq!(
            r.changes,
            ["@12 fastcgi_pass unix:/run/php/php8.2-fpm.sock"]
        );
        assert!(
            r.reason.contains("php7.4-fpm.sock, which does not exist"),
            "{}",
            r.reason
        );
        assert_eq!(r.facts()["remedy.server"], "nginx");
    }

    #[test]
    fn no_or_several_candidates_give_no_remedy() {
        let m = map();
        let none = remedy("socket_missing", &m, &live(&[]));
        assert!(none.unwrap_err().contains("start the pool"));
        let two = remedy("socket_missing", &m, &live(&["/run/a.sock", "/run/b.sock"]));
        assert!(two.unwrap_err().contains("2 php-fpm sockets"));
        // One of several beside the configured socket decides.
        let r = remedy(
            "socket_missing",
            &m,
            &live(&["/run/php/php8.2-fpm.sock", "/srv/other/php8.1-fpm.sock"]),
        )
        .unwrap();
        assert_eq!(
            r.changes,
            ["@12 fastcgi_pass unix:/run/php/php8.2-fpm.sock"]
        );
    }
}
