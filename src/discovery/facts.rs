//! The flat facts a playbook reads (`front.kind`, `upstream`,
//! `error_logs`, `settings.proxy_read_timeout`, ...), their sources, the
//! facts that stayed unknown, and the operator's `--var` overrides.
//!
//! List-valued facts are newline-separated. An override replaces the
//! discovered value, is listed in `overridden` with what was discovered,
//! and removes the fact from `unknown`.

use std::collections::BTreeMap;

use super::service_map::{Overridden, ServiceMap};

/// Every fact name discovery publishes (settings add `settings.<name>`).
pub const FACTS: &[&str] = &[
    "gateway_local",
    "front.kind",
    "front.pid",
    "front.config",
    "front.version",
    "route.server_block",
    "route.location",
    "route.server",
    "upstream",
    "upstream.kind",
    "upstream.addresses",
    "upstream.socket",
    "upstream.group",
    "upstream.servers",
    "upstream.listener",
    "upstream.scheme",
    "error_logs",
    "access_logs",
    "access_log_format",
    "worker_user",
    "worker_group",
    "cache_paths",
    "document_root",
    "resolver",
    "stats_socket",
    "php_fpm.config",
    "php_fpm.pool",
    "php_fpm.error_log",
    "php_fpm.slowlog",
    "php_fpm.listen",
    "php_fpm.listen.owner",
    "php_fpm.listen.group",
    "php_fpm.listen.mode",
    "php_fpm.pm",
    "php_fpm.pm.max_children",
    "php_fpm.request_terminate_timeout",
    "php_fpm.user",
    "php_fpm.group",
    "php_fpm.pm.max_requests",
    "php_fpm.request_slowlog_timeout",
    "settings.proxy_read_timeout",
    "settings.proxy_connect_timeout",
    "settings.proxy_send_timeout",
    "settings.proxy_buffer_size",
    "settings.proxy_buffers",
    "settings.proxy_busy_buffers_size",
    "settings.proxy_next_upstream",
    "settings.fastcgi_read_timeout",
    "settings.fastcgi_connect_timeout",
    "settings.fastcgi_buffer_size",
    "settings.fastcgi_buffers",
    "settings.client_max_body_size",
    "settings.large_client_header_buffers",
    "settings.proxy_cache",
    "settings.fastcgi_cache",
    "settings.timeout",
    "settings.proxy_timeout",
    "settings.timeout_server",
    "settings.timeout_connect",
    "settings.timeout_queue",
    "settings.timeout_client",
    // Containers (see `container::facts`).
    "vantage",
    "vantage.description",
    "vantage.pid",
    "vantage.client",
    "front.container",
    "front.container.id",
    "front.container.image",
    "front.container.state",
    "front.container.networks",
    "front.container.ip",
    "front.container.pid",
    "front.container.compose_project",
    "front.container.compose_service",
    "upstream.container",
    "upstream.container.id",
    "upstream.container.image",
    "upstream.container.state",
    "upstream.container.networks",
    "upstream.container.ip",
    "upstream.container.pid",
    "upstream.container.compose_project",
    "upstream.container.compose_service",
    "upstream.resolved",
    "published",
    "published.container",
    "published.via",
    "engine.unavailable",
    "engine.fix",
];

/// Short names accepted in `--var` for the facts they stand for.
const ALIASES: &[(&str, &str)] = &[
    ("error_log", "error_logs"),
    ("access_log", "access_logs"),
    ("config", "front.config"),
    ("user", "worker_user"),
    ("group", "worker_group"),
    ("root", "document_root"),
];

/// Overrides with aliases mapped to fact names.
pub fn normalize_overrides(o: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    o.iter()
        .map(|(k, v)| {
            let k = ALIASES
                .iter()
                .find(|(a, _)| a == k)
                .map_or(k.as_str(), |(_, f)| f);
            (k.to_owned(), v.clone())
        })
        .collect()
}

/// Flatten the map into facts, then apply overrides.
pub fn finish(map: &mut ServiceMap, overrides: &BTreeMap<String, String>) {
    let mut f = BTreeMap::new();
    let mut src: BTreeMap<String, String> = BTreeMap::new();
    f.insert(
        "gateway_local".to_owned(),
        if map.gateway_local { "yes" } else { "no" }.to_owned(),
    );
    if let Some(fr) = &map.front {
        f.insert("front.kind".into(), fr.kind.clone());
        f.insert("front.pid".into(), fr.pid.to_string());
        if let Some(c) = &fr.config {
            f.insert("front.config".into(), c.clone());
        }
        if let Some(v) = &fr.version {
            f.insert("front.version".into(), v.clone());
        }
    }
    if let Some(r) = &map.route {
        if let Some(k) = &r.server {
            // The route was read from a configuration (`front.config`), not
            // from a front process: its server is the front (`iis`).
            f.insert("route.server".into(), k.clone());
            if map.front.is_none() {
                f.insert("front.kind".into(), k.clone());
                src.insert(
                    "front.kind".into(),
                    "the configuration the route was read from (front.config)".into(),
                );
            }
        }
        if let Some(s) = &r.server_block {
            f.insert("route.server_block".into(), s.at());
        }
        if let Some(l) = &r.location {
            f.insert("route.location".into(), l.at());
        }
    }
    let first = map
        .upstreams
        .iter()
        .find(|u| !u.backup)
        .or(map.upstreams.first());
    if let Some(u) = first {
        f.insert("upstream".into(), u.address.clone());
        f.insert("upstream.kind".into(), u.kind.clone());
        f.insert("upstream.scheme".into(), u.scheme.clone());
        f.insert(
            "upstream.listener".into(),
            u.listener.clone().unwrap_or_default(),
        );
        if let Some(p) = u.address.strip_prefix("unix:") {
            f.insert("upstream.socket".into(), p.to_owned());
        }
        if let Some(g) = &u.group {
            f.insert("upstream.group".into(), g.clone());
        }
        src.insert("upstream".into(), u.source.clone());
        let addrs: Vec<&str> = map.upstreams.iter().map(|u| u.address.as_str()).collect();
        f.insert("upstream.addresses".into(), addrs.join("\n"));
        // A balancer's group of several servers: the walk probes every one (`backends`).
        if u.group.is_some() && map.upstreams.len() >= 2 {
            f.insert("upstream.servers".into(), map.upstreams.len().to_string());
        }
    }
    if !map.logs.error.is_empty() {
        f.insert("error_logs".into(), map.logs.error.join("\n"));
    }
    if !map.logs.access.is_empty() {
        f.insert("access_logs".into(), map.logs.access.join("\n"));
    }
    for s in &map.logs.sources {
        let key = if s.kind == "error" {
            "error_logs"
        } else {
            "access_logs"
        };
        src.entry(key.into()).or_insert_with(|| s.source.clone());
    }
    if let Some(fmt) = &map.logs.access_format {
        f.insert("access_log_format".into(), fmt.clone());
    }
    if let Some(u) = &map.worker_user {
        f.insert("worker_user".into(), u.clone());
    }
    if let Some(g) = &map.worker_group {
        f.insert("worker_group".into(), g.clone());
    }
    if !map.cache_paths.is_empty() {
        f.insert("cache_paths".into(), map.cache_paths.join("\n"));
    }
    if let Some(d) = &map.document_root {
        f.insert("document_root".into(), d.clone());
    }
    if let Some(r) = &map.resolver {
        f.insert("resolver".into(), r.clone());
    }
    if let Some(s) = &map.stats_socket {
        f.insert("stats_socket".into(), s.clone());
    }
    if let Some(p) = &map.php_fpm {
        if let Some(c) = &p.config {
            f.insert("php_fpm.config".into(), c.clone());
        }
        if let Some(c) = &p.pool {
            f.insert("php_fpm.pool".into(), c.clone());
        }
        if let Some(c) = &p.error_log {
            f.insert("php_fpm.error_log".into(), c.clone());
        }
        if let Some(c) = &p.slowlog {
            f.insert("php_fpm.slowlog".into(), c.clone());
        }
        for (k, s) in &p.settings {
            f.insert(format!("php_fpm.{k}"), s.value.clone());
            src.insert(format!("php_fpm.{k}"), s.source.clone());
        }
    }
    for (k, s) in &map.settings {
        f.insert(format!("settings.{k}"), s.value.clone());
        src.insert(format!("settings.{k}"), s.source.clone());
    }
    super::container::facts(map, &mut f);
    for (k, v) in src {
        map.sources.entry(k).or_insert(v);
    }
    if map.front.is_some() {
        for (fact, reason) in [
            ("upstream", "no upstream found for the route"),
            ("error_logs", "no error log found in the configuration"),
            ("worker_user", "no worker user found"),
        ] {
            if !f.contains_key(fact) && !map.unknown.iter().any(|u| u.fact == fact) {
                map.unknown(fact, reason);
            }
        }
    }
    for (k, v) in overrides {
        let discovered = f.insert(k.clone(), v.clone());
        map.overridden.insert(
            k.clone(),
            Overridden {
                value: v.clone(),
                discovered,
            },
        );
        map.sources
            .insert(k.clone(), "--var (operator override)".into());
        map.unknown.retain(|u| &u.fact != k);
        let list = || v.lines().map(str::to_owned).collect::<Vec<_>>();
        match k.as_str() {
            "error_logs" => map.logs.error = list(),
            "access_logs" => map.logs.access = list(),
            "worker_user" => map.worker_user = Some(v.clone()),
            "worker_group" => map.worker_group = Some(v.clone()),
            "document_root" => map.document_root = Some(v.clone()),
            "access_log_format" => map.logs.access_format = Some(v.clone()),
            _ => {}
        }
    }
    map.facts = f;
}
