//! The map as text for a terminal: the path from the client to the
//! upstream's listener, then the logs, the key settings, what is unknown
//! and what was overridden.
//!
//! ```text
//! client → [CDN/LB?] → front nginx (pid, version) → server block → location
//!        → upstream(s) → listener or none
//! ```

use std::fmt::Write as _;

use super::service_map::ServiceMap;

/// Settings shown in the text view (all are in the JSON).
const KEY_SETTINGS: &[&str] = &[
    "proxy_connect_timeout",
    "proxy_read_timeout",
    "proxy_buffer_size",
    "fastcgi_read_timeout",
    "fastcgi_buffer_size",
    "client_max_body_size",
    "proxy_timeout",
    "timeout",
    "timeout_connect",
    "timeout_server",
];

/// Render the map as plain text (no colour: it goes to tickets too).
pub fn text(m: &ServiceMap) -> String {
    let mut s = String::new();
    let t = &m.target;
    let _ = writeln!(s, "map of {}", m.url);
    let addrs = if t.addresses.is_empty() {
        t.resolve_error
            .clone()
            .unwrap_or_else(|| "no address".into())
    } else {
        t.addresses.join(", ")
    };
    let _ = writeln!(s, "  host {} resolves to {addrs}", t.host);
    if let Some(g) = &m.gateway {
        let _ = writeln!(s, "\nclient → ? {g}");
    }
    if let Some(path) = container_path(m) {
        let _ = writeln!(s, "\n{path}");
    }
    if let Some(f) = &m.front {
        let cdn = if m.notes.iter().any(|n| n.contains("pinning the host")) {
            "(CDN/LB?) → "
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "\nclient → {cdn}front {} (pid {}, {}, user {}) on {}",
            f.kind,
            f.pid,
            f.version.as_deref().unwrap_or("version unknown"),
            f.user,
            f.listener
        );
        if let Some(c) = &f.config {
            let _ = writeln!(
                s,
                "  config    {c} ({})",
                f.config_source.as_deref().unwrap_or("?")
            );
        }
    }
    if let Some(r) = &m.route {
        if let Some(b) = &r.server_block {
            let _ = writeln!(s, "  → server  {}  {}", b.at(), b.text);
        }
        if let Some(l) = &r.location {
            let _ = writeln!(s, "  → route   {}  {}", l.at(), l.text);
        }
        if let Some(h) = &r.handler {
            let _ = writeln!(s, "  → handler {}  {}", h.at(), h.text);
        }
        for w in &r.why {
            let _ = writeln!(s, "            ({w})");
        }
    }
    for u in &m.upstreams {
        let group = u
            .group
            .as_deref()
            .map(|g| format!(" in {g}"))
            .unwrap_or_default();
        let opts = if u.options.is_empty() {
            String::new()
        } else {
            format!(" [{}]", u.options.join(" "))
        };
        let listener = match (&u.listener, &u.listener_note) {
            (Some(l), _) => format!("listener {l}"),
            (None, Some(n)) => format!("no listener: {n}"),
            (None, None) => "listener unknown".into(),
        };
        let container = u
            .container
            .as_ref()
            .map(|c| format!(" = container {} ({})", c.name, c.state))
            .unwrap_or_default();
        let resolved = match (&u.resolved_from, u.resolved.is_empty()) {
            (Some(from), false) => format!(" [resolved to {} by {from}]", u.resolved.join(", ")),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  → upstream {} ({}, {}){group}{opts}{resolved}{container} → {listener}",
            u.address, u.kind, u.scheme
        );
    }
    if m.front.is_some() || !m.vantage.is_host() {
        let _ = writeln!(s, "  probes    {}", m.vantage.describe());
    }
    if let Some(e) = &m.engine {
        let _ = writeln!(
            s,
            "  containers not visible: {} (to see them: {})",
            e.reason, e.fix
        );
    }
    if let Some(p) = &m.php_fpm {
        let _ = writeln!(
            s,
            "    php-fpm master {} config {} pool {}",
            p.master_pid,
            p.config.as_deref().unwrap_or("?"),
            p.pool.as_deref().unwrap_or("?")
        );
        for k in [
            "listen.owner",
            "listen.group",
            "listen.mode",
            "pm",
            "pm.max_children",
            "request_terminate_timeout",
        ] {
            if let Some(v) = p.settings.get(k) {
                let _ = writeln!(s, "      {k} = {} ({})", v.value, v.source);
            }
        }
    }
    if !m.logs.error.is_empty() || !m.logs.access.is_empty() {
        let _ = writeln!(s, "\nlogs");
        for l in &m.logs.sources {
            let _ = writeln!(s, "  {:<7}{}  ({})", l.kind, l.target, l.source);
        }
        if let (Some(n), Some(f)) = (&m.logs.access_format_name, &m.logs.access_format) {
            let _ = writeln!(s, "  format {n}: {f}");
        }
        for r in &m.logs.syslog {
            let _ = writeln!(
                s,
                "  syslog {} → {} {}",
                r.target,
                r.receiver.as_deref().unwrap_or("no receiver"),
                r.files.join(", ")
            );
        }
        if let Some(p) = m.php_fpm.as_ref().and_then(|p| p.error_log.as_ref()) {
            let _ = writeln!(s, "  php-fpm {p}");
        }
    }
    if let Some(u) = &m.worker_user {
        let _ = writeln!(
            s,
            "\nworker    {u}:{} ({})",
            m.worker_group.as_deref().unwrap_or("?"),
            m.sources.get("worker_user").map_or("?", String::as_str)
        );
    }
    if let Some(d) = &m.document_root {
        let _ = writeln!(s, "root      {d}");
    }
    if let Some(r) = &m.resolver {
        let _ = writeln!(s, "resolver  {r}");
    }
    if let Some(r) = &m.stats_socket {
        let _ = writeln!(s, "stats     {r}");
    }
    if !m.cache_paths.is_empty() {
        let _ = writeln!(s, "cache     {}", m.cache_paths.join(", "));
    }
    let shown: Vec<String> = KEY_SETTINGS
        .iter()
        .filter_map(|k| m.settings.get(*k).map(|v| (k, v)))
        .map(|(k, v)| {
            let d = if v.source.starts_with("default") {
                " (default)"
            } else {
                ""
            };
            format!("{k} {}{d}", v.value)
        })
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(s, "settings  {}", shown.join(", "));
    }
    if !m.overridden.is_empty() {
        let _ = writeln!(s, "\noverridden");
        for (k, o) in &m.overridden {
            let _ = writeln!(
                s,
                "  {k} = {} (discovered: {})",
                o.value.replace('\n', ", "),
                o.discovered
                    .as_deref()
                    .unwrap_or("nothing")
                    .replace('\n', ", ")
            );
        }
    }
    if !m.unknown.is_empty() {
        let _ = writeln!(s, "\nunknown");
        for u in &m.unknown {
            let _ = writeln!(s, "  {}: {}", u.fact, u.reason);
        }
    }
    if !m.notes.is_empty() {
        let _ = writeln!(s, "\nnotes");
        for n in &m.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    s
}

/// The one-line path through containers:
/// `client → 127.0.0.1:8080 (docker-proxy) → container shop-web (nginx) 172.18.0.3:80 → location / → app:3000 = container shop-app 172.18.0.4`.
pub fn container_path(m: &ServiceMap) -> Option<String> {
    let fc = m.front.as_ref().and_then(|f| f.container.as_ref());
    let uc = m.upstreams.iter().any(|u| u.container.is_some());
    if fc.is_none() && !uc && m.published.is_none() {
        return None;
    }
    let mut hops = vec!["client".to_owned()];
    if let Some(p) = &m.published {
        let via = if p.proxy_pid.is_some() {
            "docker-proxy"
        } else {
            "DNAT"
        };
        hops.push(format!("{} ({via})", p.host));
    }
    if let Some(f) = &m.front {
        match &f.container {
            Some(c) => hops.push(format!(
                "container {} ({}){}",
                c.name,
                f.kind,
                m.published
                    .as_ref()
                    .map(|p| format!(" {}", p.container))
                    .unwrap_or_default()
            )),
            None => hops.push(format!("{} (pid {})", f.kind, f.pid)),
        }
    }
    if let Some(l) = m.route.as_ref().and_then(|r| r.location.as_ref()) {
        hops.push(l.text.clone());
    }
    if let Some(u) = m
        .upstreams
        .iter()
        .find(|u| !u.backup)
        .or(m.upstreams.first())
    {
        hops.push(super::container::upstream_hop(u).unwrap_or_else(|| u.address.clone()));
    }
    Some(hops.join(" → "))
}
