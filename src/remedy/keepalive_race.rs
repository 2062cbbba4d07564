//! `upstream_closed` with upstream keepalive: the keepalive race. nginx keeps
//! idle connections to the upstream (`keepalive N` in the `upstream` block)
//! for `keepalive_timeout` (60 s by default), the application drops idle
//! connections sooner; a request nginx sends on a connection the application
//! is giving up on fails with "upstream prematurely closed connection" or
//! "recv() failed (104: Connection reset by peer)", intermittently (a 502 for
//! a request nginx may not retry).
//!
//! Recognised when the upstream is a server of an `upstream` block with
//! `keepalive`, and a probe that held idle keep-alive connections to the
//! upstream saw it give one up sooner than nginx's `keepalive_timeout`.
//! Remedy: set the block's `keepalive_timeout` below the longest idle time
//! the upstream was seen to still serve, so nginx closes first.

use super::{Inputs, Remedy, nginx_front};
use crate::action_spec::ConfigSyntax;

/// nginx's `keepalive_timeout` in an `upstream` block when none is set.
pub const DEFAULT_KEEPALIVE_TIMEOUT_MS: u64 = 60_000;

/// Below the longest idle time the upstream still served: a quarter less
/// (at least 100 ms less), rounded down to a multiple of 100 ms, at least 100 ms.
pub fn new_timeout_ms(answered_ms: u64) -> u64 {
    let below = answered_ms.saturating_sub((answered_ms / 4).max(100));
    (below / 100 * 100).max(100)
}

/// `1500ms`, `2s`: how nginx reads it back.
pub fn nginx_time(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A figure in seconds for the reason (`0.75 s`, `2 s`).
fn secs(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        let s = format!("{:.3}", ms as f64 / 1000.0);
        format!("{} s", s.trim_end_matches('0'))
    }
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, allowed) = nginx_front(i.map)?;
    let up = i
        .map
        .upstreams
        .iter()
        .find(|u| !u.backup && u.group.is_some())
        .ok_or(
            "the upstream is not a server of an `upstream` block: nginx keeps no idle connections to it, so the premature closes are the application's own (see its log)",
        )?;
    let group = up.group.clone().unwrap_or_default();
    let block = i
        .measured
        .upstream_block
        .as_ref()
        .ok_or_else(|| format!("the `upstream {group}` block could not be read"))?;
    let Some((keepalive, _)) = block.child("keepalive") else {
        return Err(format!(
            "upstream {group} ({}) has no `keepalive`: nginx opens a new connection per request, so no idle close can race a request; the premature closes are the application's own (see its log)",
            block.at()
        ));
    };
    let (current_ms, current) = match block.child("keepalive_timeout") {
        Some((v, line)) => (
            super::upstream_timeout::parse_ms(v)
                .ok_or_else(|| format!("`keepalive_timeout {v}` is not an nginx time"))?,
            format!("{v} ({}:{line})", block.file),
        ),
        None => (
            DEFAULT_KEEPALIVE_TIMEOUT_MS,
            format!("{} (the default)", secs(DEFAULT_KEEPALIVE_TIMEOUT_MS)),
        ),
    };
    let idle = i
        .measured
        .idle
        .as_ref()
        .ok_or("the upstream's idle timeout was not measured")?;
    if idle.no_keepalive {
        return Err(format!(
            "{} answers `Connection: close`: it keeps no connection alive, so nginx never reuses one; the premature closes are something else",
            up.address
        ));
    }
    let Some(closed) = idle.closed_ms else {
        return Err(format!(
            "{} still answered on connections held idle for {}: its idle timeout is longer than the probe waits; if nginx's keepalive_timeout ({current}) is longer still, measure it by hand",
            up.address,
            secs(idle.waited_ms)
        ));
    };
    let Some(answered) = idle.answered_ms else {
        return Err(format!(
            "{} gave up a connection idle for only {}: too soon to keep any; remove `keepalive {keepalive}` from upstream {group} ({}) by hand",
            up.address,
            secs(closed),
            block.at()
        ));
    };
    if current_ms <= answered {
        return Err(format!(
            "nginx's keepalive_timeout {current} is already within the idle time {} still serves ({}): nginx closes first; the premature closes are not the keepalive race",
            up.address,
            secs(answered)
        ));
    }
    let new = new_timeout_ms(answered);
    if new >= answered {
        return Err(format!(
            "{} gives idle connections up after {} already: too soon to keep any; remove `keepalive {keepalive}` from upstream {group} ({}) by hand",
            up.address,
            secs(answered),
            block.at()
        ));
    }
    let value = nginx_time(new);
    Ok(Remedy::edit(
        "upstream_closed",
        ConfigSyntax::Nginx,
        (server, allowed),
        block.file.clone(),
        vec![format!("@{}+ keepalive_timeout {value}", block.line)],
        format!(
            "the keepalive race: upstream {group} ({}) keeps up to {keepalive} idle connections to {} for {current}, but {} gives idle connections up after {} to {} (a probe held keep-alive connections idle: still answered after {}, given up after {}), so nginx sends some requests on connections the application is closing: set `keepalive_timeout {value}` in the upstream block, below {}: the longest idle time seen served minus a quarter (at least 100 ms), rounded down to 100 ms",
            block.at(),
            up.address,
            up.address,
            secs(answered),
            secs(closed),
            secs(answered),
            secs(closed),
            secs(answered),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{CONF, nginx_map, remedy, upstream};
    use super::super::{ConfigBlock, IdleTimeout, Measured};
    use super::*;
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Route, Upstream};

    fn map() -> ServiceMap {
        nginx_map(
            Route::default(),
            vec![Upstream {
                group: Some("app".into()),
                ..upstream("127.0.0.1:3000", "http", 21)
            }],
        )
    }

    fn block(children: &[(&str, &str, u32)]) -> ConfigBlock {
        ConfigBlock {
            file: CONF.into(),
            line: 20,
            head: vec!["upstream".into(), "app".into()],
            children: children
                .iter()
                .map(|(n, a, l)| ((*n).to_owned(), (*a).to_owned(), *l))
                .collect(),
        }
    }

    fn measured(b: ConfigBlock, answered: Option<u64>, closed: Option<u64>) -> Measured {
        Measured {
            upstream_block: Some(b),
            idle: Some(IdleTimeout {
                answered_ms: answered,
                closed_ms: closed,
                no_keepalive: false,
                waited_ms: 4_500,
                detail: Vec::new(),
            }),
            ..Measured::default()
        }
    }

    #[test]
    fn keepalive_longer_than_the_apps_idle_timeout_is_cut_below_it() {
        let m = map();
        let b = block(&[("server", "127.0.0.1:3000", 21), ("keepalive", "4", 22)]);
        let me = measured(b, Some(750), Some(1_250));
        let r = remedy("upstream_closed", &m, &me).unwrap();
        assert_eq!(r.changes, ["@20+ keepalive_timeout 500ms"]);
        assert!(
            r.reason.contains("for 60 s (the default)")
                && r.reason.contains("after 0.75 s to 1.25 s"),
            "{}",
            r.reason
        );
        assert!(!r.stopgap);
    }

    #[test]
    fn no_race_without_keepalive_or_when_nginx_closes_first() {
        let m = map();
        let without = measured(
            block(&[("server", "127.0.0.1:3000", 21)]),
            Some(750),
            Some(1_250),
        );
        let e = remedy("upstream_closed", &m, &without).unwrap_err();
        assert!(e.contains("has no `keepalive`"), "{e}");
        let short = measured(
            block(&[("keepalive", "4", 22), ("keepalive_timeout", "500ms", 23)]),
            Some(750),
            Some(1_250),
        );
        let e = remedy("upstream_closed", &m, &short).unwrap_err();
        assert!(e.contains("nginx closes first"), "{e}");
        let patient = measured(block(&[("keepalive", "4", 22)]), Some(4_500), None);
        let e = remedy("upstream_closed", &m, &patient).unwrap_err();
        assert!(e.contains("longer than the probe waits"), "{e}");
    }

    #[test]
    fn figures() {
        assert_eq!(new_timeout_ms(750), 500);
        assert_eq!(new_timeout_ms(4_500), 3_300);
        assert_eq!(new_timeout_ms(250), 100);
        assert_eq!(new_timeout_ms(50), 100);
        assert_eq!(nginx_time(2_000), "2s");
        assert_eq!(nginx_time(500), "500ms");
        assert_eq!(secs(750), "0.75 s");
    }
}
