//! `no_live_upstreams` after refusals: every server of an `upstream` group
//! failed `max_fails` times within `fail_timeout`, so nginx marked them all
//! unavailable and answers 502 at once ("no live upstreams") without trying
//! any. The fix is the refusal's ([`super::upstream_refused`]) for the one
//! server of the group whose application listens elsewhere; the reason
//! explains `max_fails`/`fail_timeout` and what the next request will do.

use super::upstream_refused;
use super::{Inputs, Remedy};

/// `max_fails` and `fail_timeout` of a server line's options (nginx defaults 1 and 10s).
pub fn fail_settings(options: &[String]) -> (String, String) {
    let get = |k: &str, d: &str| {
        options
            .iter()
            .find_map(|o| o.strip_prefix(k).map(str::to_owned))
            .unwrap_or_else(|| d.to_owned())
    };
    (get("max_fails=", "1"), get("fail_timeout=", "10s"))
}

/// What nginx does with a group whose servers are all marked failed.
pub fn explain(group: &str, servers: &[(String, String, String)]) -> String {
    let each = servers
        .iter()
        .map(|(a, mf, ft)| format!("{a} max_fails={mf} fail_timeout={ft}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ft = servers.first().map_or("10s", |s| s.2.as_str());
    format!(
        "upstream {group} ({each}): a server that fails max_fails times within fail_timeout is skipped for fail_timeout; with all {} skipped, nginx answers 502 \"no live upstreams\" at once, without trying any. Until the refusal is fixed, the next request after {ft} tries a server again, fails, and marks it again; a reload starts new workers that have forgotten the marks, so after the fix the next request goes through",
        servers.len()
    )
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let members: Vec<_> = i
        .map
        .upstreams
        .iter()
        .filter(|u| u.group.is_some() && !u.backup)
        .collect();
    let group = members
        .first()
        .and_then(|u| u.group.clone())
        .ok_or("the upstream is not a group of servers (no `upstream` block)")?;
    let servers: Vec<(String, String, String)> = members
        .iter()
        .map(|u| {
            let (mf, ft) = fail_settings(&u.options);
            (u.address.clone(), mf, ft)
        })
        .collect();
    let why = explain(&group, &servers);
    let mut fixes = Vec::new();
    let mut nots = Vec::new();
    for u in members.iter().filter(|u| u.kind == "tcp") {
        match upstream_refused::compute_for(i, u) {
            Ok(r) => fixes.push(r),
            Err(e) => nots.push(format!("{}: {e}", u.address)),
        }
    }
    match fixes.len() {
        1 => {
            let mut r = fixes.remove(0);
            r.cause = "no_live_upstreams".into();
            r.reason = format!("{}. {why}", r.reason);
            Ok(r)
        }
        0 => Err(format!("{}. {why}", nots.join("; "))),
        n => Err(format!(
            "{n} servers of upstream {group} listen elsewhere: which to point where is the operator's call. {why}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{nginx_map, remedy, upstream};
    use super::super::{LiveListener, Measured};
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Route, Upstream};

    fn map() -> ServiceMap {
        let server = |port: u16, line: u32| Upstream {
            group: Some("shop_backend".into()),
            options: vec!["max_fails=1".into(), "fail_timeout=30s".into()],
            ..upstream(&format!("127.0.0.1:{port}"), "http", line)
        };
        nginx_map(Route::default(), vec![server(3000, 28), server(3001, 29)])
    }

    #[test]
    fn the_one_server_listening_elsewhere_is_fixed_and_the_marks_explained() {
        let m = map();
        let measured = Measured {
            tcp_listeners: vec![LiveListener {
                addr: "[::1]:3001".parse().unwrap(),
                owner: "9 node".into(),
            }],
            ..Measured::default()
        };
        let r = remedy("no_live_upstreams", &m, &measured).unwrap();
        assert_eq!(
            r.changes,
            ["@29 server [::1]:3001 max_fails=1 fail_timeout=30s"]
        );
        assert!(
            r.reason.contains("max_fails=1 fail_timeout=30s"),
            "{}",
            r.reason
        );
        assert!(
            r.reason.contains("after 30s tries a server again"),
            "{}",
            r.reason
        );
        // Nothing listens anywhere: no edit, but the explanation stays.
        let e = remedy("no_live_upstreams", &m, &Measured::default()).unwrap_err();
        assert!(e.contains("no live upstreams"), "{e}");
        assert!(e.contains("start or restart"), "{e}");
    }
}
