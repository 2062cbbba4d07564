//! Which Apache virtual host and handler serve a URL, and the logs,
//! worker user and settings in effect there.
//!
//! Virtual host: the `<VirtualHost>`s whose address matches the
//! connection's (an exact IP beats `*`/`_default_`), then `ServerName` /
//! `ServerAlias` (wildcards), else the first of them; none: the main
//! server. Handler: `ProxyPass` inside a matching `<Location>` /
//! `<LocationMatch>`, then the server's `ProxyPass`/`ProxyPassMatch` in
//! order (`!` excludes), then `SetHandler "proxy:…"` in a matching
//! `<Location>`, `<Files>` or `<FilesMatch>` (after `DirectoryIndex`).

use std::net::IpAddr;

use regex::RegexBuilder;

use super::ApacheConfig;
use crate::check::Evidence;
use crate::discovery::directive::{Directive, walk};
use crate::discovery::glob;
use crate::discovery::service_map::{Place, Route, ServiceMap, Upstream};

/// The request as httpd sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub local_ip: Option<IpAddr>,
}

fn place(d: &Directive) -> Place {
    Place {
        file: d.file.display().to_string(),
        line: d.line,
        text: if d.block.is_some() {
            format!("<{}>", d.text())
        } else {
            d.text()
        },
    }
}

/// How well a `<VirtualHost>` address matches: 2 exact IP, 1 wildcard.
fn vhost_rank(arg: &str, ip: Option<IpAddr>, port: u16) -> u8 {
    let (host, p) = if let Some(rest) = arg.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match arg.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (arg, None),
        }
    };
    let port_ok = match p {
        None | Some("*") => true,
        Some(p) => p.parse() == Ok(port),
    };
    if !port_ok {
        return 0;
    }
    match host {
        "*" | "_default_" => 1,
        h => match (h.parse::<IpAddr>(), ip) {
            (Ok(a), Some(ip)) if a == ip => 2,
            (Ok(a), None) if a.is_loopback() => 2,
            (Ok(_), _) => 0,
            (Err(_), _) if h == "localhost" => u8::from(ip.is_none_or(|i| i.is_loopback())) * 2,
            _ => 0,
        },
    }
}

/// ServerName may be `scheme://name:port`; compare the name only.
fn server_name(v: &str) -> String {
    let v = v.split("://").last().unwrap_or(v);
    v.rsplit_once(':')
        .filter(|(_, p)| p.parse::<u16>().is_ok())
        .map_or(v, |(h, _)| h)
        .to_ascii_lowercase()
}

/// Pick the virtual host (or `None` for the main server) and say why.
pub fn select_vhost<'a>(cfg: &'a ApacheConfig, req: &Request) -> (Option<&'a Directive>, String) {
    let vhosts: Vec<(&Directive, u8)> = cfg
        .main
        .iter()
        .filter(|d| d.is("VirtualHost") && d.block.is_some())
        .map(|d| {
            let r = d
                .args
                .iter()
                .map(|a| vhost_rank(a, req.local_ip, req.port))
                .max()
                .unwrap_or(0);
            (d, r)
        })
        .filter(|(_, r)| *r > 0)
        .collect();
    let Some(top) = vhosts.iter().map(|v| v.1).max() else {
        return (
            None,
            "no <VirtualHost> matches the address: the main server answers".into(),
        );
    };
    let cands: Vec<&Directive> = vhosts.iter().filter(|v| v.1 == top).map(|v| v.0).collect();
    let host = req.host.to_ascii_lowercase();
    for v in &cands {
        if let Some(n) = v.last("ServerName").and_then(|d| d.arg(0))
            && server_name(n) == host
        {
            return (Some(v), format!("ServerName {n} matches host {host}"));
        }
        for a in v.all("ServerAlias").flat_map(|d| d.args.iter()) {
            let a = a.to_ascii_lowercase();
            if a == host || (glob::is_pattern(&a) && glob::matches(&a, &host)) {
                return (Some(v), format!("ServerAlias {a} matches host {host}"));
            }
        }
    }
    (
        Some(cands[0]),
        format!(
            "no ServerName/ServerAlias matches {host}: the first virtual host on the address is the default"
        ),
    )
}

/// The last directive called `name` in the vhost, else in the main server.
fn server_level<'a>(
    main: &'a [Directive],
    vhost: Option<&'a Directive>,
    name: &str,
) -> Option<&'a Directive> {
    vhost
        .and_then(|v| v.last(name))
        .or_else(|| main.iter().rev().find(|d| d.is(name)))
}

/// Sections (`<Location>`, ...) of the server that match the path, in order.
fn matching_sections<'a>(
    list: &'a [Directive],
    path: &str,
    file: &str,
    notes: &mut Vec<String>,
) -> Vec<&'a Directive> {
    let mut out = Vec::new();
    for d in list {
        let Some(arg) = d.arg(0) else { continue };
        let hit = if d.is("Location") {
            if let Some(re) = arg.strip_prefix('~') {
                regex_match(re.trim(), path, d, notes)
            } else {
                // httpd matches whole segments: `/app` takes `/app` and
                // `/app/x`, not `/application`.
                path.starts_with(arg)
                    && (arg.ends_with('/')
                        || matches!(path.as_bytes().get(arg.len()), None | Some(b'/')))
            }
        } else if d.is("LocationMatch") {
            regex_match(arg, path, d, notes)
        } else if d.is("Files") {
            if let Some(re) = arg.strip_prefix('~') {
                regex_match(re.trim(), file, d, notes)
            } else {
                glob::matches(arg, file)
            }
        } else if d.is("FilesMatch") {
            regex_match(arg, file, d, notes)
        } else if d.is("Directory") || d.is("DirectoryMatch") {
            // Files sections inside a Directory apply to files under it.
            out.extend(matching_sections(d.children(), path, file, notes));
            continue;
        } else {
            continue;
        };
        if hit {
            out.push(d);
        }
    }
    out
}

fn regex_match(re: &str, s: &str, d: &Directive, notes: &mut Vec<String>) -> bool {
    match RegexBuilder::new(re).size_limit(1 << 20).build() {
        Ok(r) => r.is_match(s),
        Err(e) => {
            notes.push(format!(
                "regex {re:?} at {} could not be evaluated: {e}",
                d.at()
            ));
            false
        }
    }
}

/// What the server-context `RewriteRule`s do with a path (mod_rewrite's
/// translate hook runs before `ProxyPass`'s).
enum Rewrite<'a> {
    /// No rule applies (or the engine is off): `ProxyPass` decides, on
    /// this path (changed by `[PT]` rules).
    Declined(String),
    /// A `[P]` rule: proxied to this URL.
    Proxy(&'a Directive, String),
    /// Rewritten to a local path or redirected: httpd answers itself.
    Local(&'a Directive),
}

/// Substitute `$N` back-references of `caps` into `subst`.
fn backrefs(subst: &str, caps: Option<&regex::Captures<'_>>) -> String {
    let mut out = String::new();
    let mut chars = subst.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$'
            && let Some(d) = chars.peek().and_then(|d| d.to_digit(10))
        {
            chars.next();
            if let Some(m) = caps.and_then(|c| c.get(d as usize)) {
                out.push_str(m.as_str());
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Evaluate the `RewriteRule`s of one server context in order. A rule
/// behind `RewriteCond`s depends on the request at run time: it is noted
/// (with where it would go) and not followed.
fn rewrite<'a>(
    list: &'a [Directive],
    path: &str,
    why: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Rewrite<'a> {
    let on = list
        .iter()
        .rev()
        .find(|d| d.is("RewriteEngine"))
        .and_then(|d| d.arg(0))
        .is_some_and(|a| a.eq_ignore_ascii_case("on"));
    let mut path = path.to_owned();
    if !on {
        return Rewrite::Declined(path);
    }
    let mut conds: Vec<&Directive> = Vec::new();
    for d in list {
        if d.is("RewriteCond") {
            conds.push(d);
            continue;
        }
        if !d.is("RewriteRule") {
            continue;
        }
        let pending = std::mem::take(&mut conds);
        let (Some(pat), Some(subst)) = (d.arg(0), d.arg(1)) else {
            continue;
        };
        let flags: Vec<String> = d
            .arg(2)
            .unwrap_or("")
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|f| f.trim().to_ascii_lowercase())
            .collect();
        let has = |f: &str| {
            flags
                .iter()
                .any(|x| x == f || x.split('=').next() == Some(f))
        };
        let (neg, pat) = pat.strip_prefix('!').map_or((false, pat), |p| (true, p));
        let re = match RegexBuilder::new(pat)
            .case_insensitive(has("nc") || has("nocase"))
            .size_limit(1 << 20)
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!(
                    "RewriteRule regex {pat:?} at {} could not be evaluated: {e}",
                    d.at()
                ));
                continue;
            }
        };
        let caps = re.captures(&path);
        if caps.is_some() == neg {
            continue;
        }
        let target = if subst == "-" {
            path.clone()
        } else {
            backrefs(subst, caps.as_ref())
        };
        if !pending.is_empty() {
            let c: Vec<String> = pending
                .iter()
                .map(|c| format!("{} ({})", c.args.join(" "), c.at()))
                .collect();
            notes.push(format!(
                "RewriteRule at {} matches {path} but applies only when its RewriteCond holds at request time ({}): then it {} {target}; not followed here",
                d.at(),
                c.join("; "),
                if has("p") || has("proxy") { "proxies to" } else { "rewrites to" }
            ));
            continue;
        }
        if has("p") || has("proxy") {
            why.push(format!(
                "RewriteRule {pat} at {} matches {path}: [P] proxies to {target}",
                d.at()
            ));
            return Rewrite::Proxy(d, target);
        }
        if has("pt") || has("passthrough") {
            why.push(format!(
                "RewriteRule {pat} at {} rewrites {path} to {target} and passes it on [PT]",
                d.at()
            ));
            target
                .split('?')
                .next()
                .unwrap_or("/")
                .clone_into(&mut path);
            if has("l") || has("last") || has("end") {
                return Rewrite::Declined(path);
            }
            continue;
        }
        if has("f")
            || has("g")
            || has("r")
            || has("redirect")
            || target.contains("://")
            || has("l")
            || has("last")
            || has("end")
        {
            why.push(format!("RewriteRule {pat} at {} matches {path}: rewritten to {target}, which httpd answers itself", d.at()));
            return Rewrite::Local(d);
        }
        target
            .split('?')
            .next()
            .unwrap_or("/")
            .clone_into(&mut path);
        why.push(format!(
            "RewriteRule {pat} at {} rewrites the path to {path}",
            d.at()
        ));
    }
    if path.starts_with('/') {
        Rewrite::Declined(path)
    } else {
        Rewrite::Declined(format!("/{path}"))
    }
}

/// Map a URL through an evaluated httpd configuration into `m`.
pub fn map(cfg: &ApacheConfig, req: &Request, default_errorlog: Option<&str>, m: &mut ServiceMap) {
    let (vhost, why) = select_vhost(cfg, req);
    let mut notes = Vec::new();
    let mut route = Route::default();
    route.why.push(why);
    let server_list: &[Directive] = vhost.map_or(cfg.main.as_slice(), |v| v.children());
    match vhost {
        Some(v) => {
            route.server_block = Some(place(v));
            let mut text = format!("<VirtualHost {}>", v.args.join(" "));
            for d in v.all("ServerName").chain(v.all("ServerAlias")) {
                text.push(' ');
                text.push_str(&d.text());
                text.push(';');
            }
            m.evidence
                .push(Evidence::new("virtual host", text).at(v.at()));
        }
        None => {
            route.server_block = Some(Place {
                file: cfg.conf_file.display().to_string(),
                line: 1,
                text: "main server".into(),
            });
        }
    }
    let path = req.path.split('?').next().unwrap_or("/").to_owned();
    // DirectoryIndex: `/` is served by the first index file that exists.
    let docroot = server_level(&cfg.main, vhost, "DocumentRoot")
        .and_then(|d| d.arg(0))
        .map(|r| crate::discovery::source::resolve(&cfg.server_root, r));
    let mut file_path = path.clone();
    if path.ends_with('/') {
        let indexes: Vec<String> = server_level(&cfg.main, vhost, "DirectoryIndex")
            .map_or_else(|| vec!["index.html".to_owned()], |d| d.args.clone());
        if let Some(root) = &docroot
            && let Some(ix) = indexes
                .iter()
                .find(|i| root.join(path.trim_start_matches('/')).join(i).exists())
        {
            file_path = format!("{path}{ix}");
            route.why.push(format!("DirectoryIndex serves {file_path}"));
        }
    }
    let file = file_path.rsplit('/').next().unwrap_or("").to_owned();
    // Sections from the main server apply first, the vhost's after (and win).
    let mut sections = matching_sections(&cfg.main, &path, &file, &mut notes);
    if let Some(v) = vhost {
        sections.extend(matching_sections(v.children(), &path, &file, &mut notes));
    }
    let mut handler: Option<(&Directive, String, Option<&Directive>)> = None;
    // 0. mod_rewrite's server-context rules run first: `[P]` proxies, a
    // local rewrite or redirect ends it, `[PT]` hands ProxyPass a new path.
    let mut local_rewrite = false;
    let path = match rewrite(server_list, &path, &mut route.why, &mut notes) {
        Rewrite::Declined(p) => p,
        Rewrite::Proxy(d, url) => {
            handler = Some((d, url, None));
            path
        }
        Rewrite::Local(d) => {
            route.location = Some(place(d));
            local_rewrite = true;
            path
        }
    };
    // 1. ProxyPass inside a matching <Location>: the last such section wins.
    for s in sections
        .iter()
        .rev()
        .filter(|_| handler.is_none() && !local_rewrite)
    {
        if let Some(pp) = s.last("ProxyPass").or_else(|| s.last("ProxyPassMatch")) {
            let url = pp.arg(0).unwrap_or("").to_owned();
            if url != "!" {
                handler = Some((pp, url, Some(s)));
            }
            break;
        }
    }
    // 2. Server-level ProxyPass / ProxyPassMatch, first match in order.
    if handler.is_none() && !local_rewrite {
        for list in [server_list, cfg.main.as_slice()] {
            for d in list
                .iter()
                .filter(|d| d.is("ProxyPass") || d.is("ProxyPassMatch"))
            {
                let (Some(pat), Some(url)) = (d.arg(0), d.arg(1)) else {
                    continue;
                };
                let hit = if d.is("ProxyPass") {
                    path.starts_with(pat)
                } else {
                    regex_match(pat, &path, d, &mut notes)
                };
                if hit {
                    if url != "!" {
                        handler = Some((d, url.to_owned(), None));
                    }
                    break;
                }
            }
            if handler.is_some() || vhost.is_none() {
                break;
            }
        }
    }
    // 3. SetHandler "proxy:..." in a matching section (the last one wins).
    if handler.is_none() && !local_rewrite {
        for s in sections.iter().rev() {
            if let Some(h) = s.last("SetHandler") {
                if let Some(u) = h.arg(0).and_then(|a| a.strip_prefix("proxy:")) {
                    handler = Some((h, u.to_owned(), Some(s)));
                }
                break;
            }
        }
        if handler.is_none()
            && let Some(h) = server_list.iter().rev().find(|d| d.is("SetHandler"))
            && let Some(u) = h.arg(0).and_then(|a| a.strip_prefix("proxy:"))
        {
            handler = Some((h, u.to_owned(), None));
        }
    }
    // Runtime conditions are not evaluated.
    walk(server_list, &mut |d, _| {
        if (d.is("If") || d.is("ElseIf") || d.is("Else"))
            && d.children()
                .iter()
                .any(|c| c.is("SetHandler") || c.is("ProxyPass") || c.is("ProxyPassMatch"))
        {
            notes.push(format!(
                "<{} {}> at {} sets a handler only when its condition holds at request time",
                d.name,
                d.args.join(" "),
                d.at()
            ));
        }
    });
    if let Some((d, url, section)) = &handler {
        if let Some(s) = section {
            route.location = Some(place(s));
            m.evidence
                .push(Evidence::new("location", format!("<{}>", s.text())).at(s.at()));
        } else {
            route.location = Some(place(d));
        }
        route.handler = Some(place(d));
        m.evidence
            .push(Evidence::new("upstream", d.text()).at(d.at()));
        upstreams(cfg, vhost, d, url, m);
    } else {
        if !local_rewrite && let Some(s) = sections.last() {
            route.location = Some(place(s));
        }
        m.unknown(
            "upstream",
            "no ProxyPass or SetHandler \"proxy:...\" applies: httpd serves this path itself",
        );
    }
    for n in notes {
        m.note(n);
    }
    m.route = Some(route);
    logs(cfg, vhost, default_errorlog, m);
    // Worker user.
    for (fact, name) in [("worker_user", "User"), ("worker_group", "Group")] {
        if let Some(d) = cfg.main.iter().rev().find(|d| d.is(name))
            && let Some(v) = d.arg(0)
        {
            if fact == "worker_user" {
                m.worker_user = Some(v.to_owned());
            } else {
                m.worker_group = Some(v.to_owned());
            }
            m.sources.insert(fact.into(), d.at());
        }
    }
    // Settings.
    let timeout = server_level(&cfg.main, vhost, "Timeout");
    match timeout {
        Some(d) => m.setting("timeout", d.args.join(" "), d.at()),
        None => m.setting("timeout", "60", "default (httpd built-in)"),
    }
    if let Some(d) = server_level(&cfg.main, vhost, "ProxyTimeout") {
        m.setting("proxy_timeout", d.args.join(" "), d.at());
    } else {
        let (v, s) = timeout.map_or(("60".to_owned(), "default (Timeout)".to_owned()), |d| {
            (d.args.join(" "), format!("default (Timeout at {})", d.at()))
        });
        m.setting("proxy_timeout", v, s);
    }
    for (name, default) in [
        ("KeepAliveTimeout", "5"),
        ("LimitRequestBody", "0"),
        ("LimitRequestFieldSize", "8190"),
        ("ProxyIOBufferSize", "8192"),
    ] {
        let key = snake(name);
        match server_level(&cfg.main, vhost, name) {
            Some(d) => m.setting(&key, d.args.join(" "), d.at()),
            None => m.setting(&key, default, "default (httpd built-in)"),
        }
    }
    if let Some((d, ..)) = &handler {
        for a in d.args.iter().skip(1) {
            if let Some((k, v)) = a.split_once('=') {
                m.setting(&format!("proxypass_{}", k.to_ascii_lowercase()), v, d.at());
            }
        }
    }
    // Document root and cache.
    if let Some(d) = server_level(&cfg.main, vhost, "DocumentRoot") {
        if let Some(r) = d.arg(0) {
            m.document_root = Some(
                crate::discovery::source::resolve(&cfg.server_root, r)
                    .display()
                    .to_string(),
            );
            m.sources.insert("document_root".into(), d.at());
        }
    } else {
        m.document_root = Some("/var/www/html".into());
        m.sources.insert(
            "document_root".into(),
            "default (httpd built-in on Debian)".into(),
        );
    }
    for d in cfg
        .main
        .iter()
        .chain(server_list)
        .filter(|d| d.is("CacheRoot"))
    {
        if let Some(p) = d.arg(0) {
            m.cache_paths.push(p.to_owned());
            m.sources
                .entry("cache_paths".into())
                .or_insert_with(|| d.at());
        }
    }
}

/// `KeepAliveTimeout` → `keep_alive_timeout`.
fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn logs(
    cfg: &ApacheConfig,
    vhost: Option<&Directive>,
    default_errorlog: Option<&str>,
    m: &mut ServiceMap,
) {
    let root = &cfg.server_root;
    let abs = |p: &str| {
        if p.starts_with('|') || p.starts_with("syslog") || p.starts_with('/') {
            p.to_owned()
        } else {
            root.join(p).display().to_string()
        }
    };
    if let Some(d) = server_level(&cfg.main, vhost, "ErrorLog") {
        if let Some(p) = d.arg(0) {
            m.log("error", &abs(p), &d.at());
        }
    } else {
        let p = default_errorlog.unwrap_or("logs/error_log");
        m.log("error", &abs(p), "default (apache2 -V DEFAULT_ERRORLOG)");
    }
    let customs: Vec<&Directive> = match vhost {
        Some(v) if v.all("CustomLog").next().is_some() || v.all("TransferLog").next().is_some() => {
            v.children()
                .iter()
                .filter(|d| d.is("CustomLog") || d.is("TransferLog"))
                .collect()
        }
        _ => cfg
            .main
            .iter()
            .filter(|d| d.is("CustomLog") || d.is("TransferLog"))
            .collect(),
    };
    if customs.is_empty() {
        m.unknown(
            "access_logs",
            "no CustomLog or TransferLog applies: httpd writes no access log for this server",
        );
    }
    for d in customs {
        let Some(p) = d.arg(0) else { continue };
        m.log("access", &abs(p), &d.at());
        if m.logs.access_format.is_none() {
            let spec = if d.is("TransferLog") { None } else { d.arg(1) };
            resolve_format(cfg, vhost, spec, m);
        }
    }
}

/// A `CustomLog` format: a nickname defined by `LogFormat`, or the string.
fn resolve_format(
    cfg: &ApacheConfig,
    vhost: Option<&Directive>,
    spec: Option<&str>,
    m: &mut ServiceMap,
) {
    let mut formats = cfg
        .main
        .iter()
        .chain(vhost.map_or(&[][..], Directive::children))
        .filter(|d| d.is("LogFormat"));
    match spec {
        Some(s) if s.contains('%') => {
            m.logs.access_format = Some(s.to_owned());
        }
        Some(nick) => {
            if let Some(d) = formats.rfind(|d| d.arg(1) == Some(nick)) {
                m.logs.access_format = d.arg(0).map(str::to_owned);
                m.sources.insert("access_log_format".into(), d.at());
            } else {
                m.unknown(
                    "access_log_format",
                    format!("LogFormat {nick} is not defined"),
                );
            }
            m.logs.access_format_name = Some(nick.to_owned());
        }
        None => {
            // TransferLog uses the last LogFormat without a nickname.
            let d = formats.rfind(|d| d.args.len() == 1);
            m.logs.access_format = Some(
                d.and_then(|d| d.arg(0))
                    .unwrap_or("%h %l %u %t \"%r\" %>s %b")
                    .to_owned(),
            );
        }
    }
}

/// Upstreams behind a ProxyPass URL or a `SetHandler proxy:` target.
fn upstreams(
    cfg: &ApacheConfig,
    vhost: Option<&Directive>,
    d: &Directive,
    url: &str,
    m: &mut ServiceMap,
) {
    // `unix:/path|fcgi://localhost/` : the socket is the address.
    if let Some(rest) = url.strip_prefix("unix:") {
        let (path, inner) = rest.split_once('|').unwrap_or((rest, "http://localhost/"));
        let scheme = scheme_of(inner.split("://").next().unwrap_or("http"));
        m.upstreams.push(Upstream {
            address: format!("unix:{path}"),
            kind: "unix".into(),
            scheme,
            source: d.at(),
            ..Upstream::default()
        });
        return;
    }
    let Some((s, rest)) = url.split_once("://") else {
        m.unknown(
            "upstream",
            format!("cannot read the proxy URL {url:?} at {}", d.at()),
        );
        return;
    };
    let hostport = rest.split('/').next().unwrap_or(rest);
    if s.eq_ignore_ascii_case("balancer") {
        let name = format!("balancer://{hostport}");
        let sections = cfg
            .main
            .iter()
            .chain(vhost.map_or(&[][..], Directive::children))
            .filter(|p| p.is("Proxy") && p.arg(0).is_some_and(|a| a.trim_end_matches('/') == name));
        let mut found = false;
        for p in sections {
            m.evidence
                .push(Evidence::new("balancer", format!("<Proxy {name}>")).at(p.at()));
            for bm in p.all("BalancerMember") {
                let Some(u) = bm.arg(0) else { continue };
                found = true;
                m.evidence
                    .push(Evidence::new("balancer member", bm.text()).at(bm.at()));
                let options: Vec<String> = bm.args[1..].to_vec();
                let backup = options.iter().any(|o| {
                    o.eq_ignore_ascii_case("status=+h")
                        || o.to_ascii_lowercase().starts_with("status=") && o.contains('H')
                });
                let before = m.upstreams.len();
                upstreams(cfg, vhost, bm, u, m);
                for up in &mut m.upstreams[before..] {
                    up.group = Some(name.clone());
                    up.options.clone_from(&options);
                    up.backup = backup;
                }
            }
        }
        if !found {
            m.unknown(
                "upstream",
                format!("{name} has no BalancerMember (no <Proxy {name}> section)"),
            );
        }
        return;
    }
    let scheme = scheme_of(s);
    let default_port = match scheme.as_str() {
        "https" => 443,
        "fastcgi" => 8000, // mod_proxy_fcgi's default
        _ => 80,
    };
    if hostport.contains("${") {
        // A variable neither `Define`d nor in the environment read: the
        // server's own environment decides at start-up.
        m.upstreams.push(Upstream {
            address: hostport.to_owned(),
            kind: "name".into(),
            scheme,
            source: d.at(),
            listener_note: Some("from an environment variable httpd reads at start-up".into()),
            ..Upstream::default()
        });
        return;
    }
    let (address, kind) = crate::discovery::nginx::route::address_kind(hostport, default_port);
    m.upstreams.push(Upstream {
        address,
        kind,
        scheme,
        source: d.at(),
        ..Upstream::default()
    });
}

fn scheme_of(s: &str) -> String {
    match s.to_ascii_lowercase().as_str() {
        "fcgi" => "fastcgi",
        "https" | "wss" | "h2" => "https",
        "uwsgi" => "uwsgi",
        "scgi" => "scgi",
        "ajp" => "ajp",
        _ => "http",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> (tempfile::TempDir, ApacheConfig) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.conf");
        std::fs::write(&f, text).unwrap();
        let c = crate::discovery::apache::parse_config(
            &f,
            d.path(),
            &[],
            std::collections::BTreeMap::new(),
            crate::discovery::source::Limits::default(),
        )
        .unwrap();
        (d, c)
    }

    fn up(c: &ApacheConfig, path: &str) -> (Vec<String>, Route) {
        let mut m = ServiceMap::default();
        let r = Request {
            host: "r.test".into(),
            port: 80,
            path: path.into(),
            local_ip: None,
        };
        map(c, &r, None, &mut m);
        (
            m.upstreams.iter().map(|u| u.address.clone()).collect(),
            m.route.unwrap_or_default(),
        )
    }

    #[test]
    fn rewrite_rules_run_before_proxypass() {
        let (_d, c) = cfg(
            "<VirtualHost *:80>\nServerName r.test\nRewriteEngine on\nRewriteRule ^/api/(.*)$ http://127.0.0.1:9001/v1/$1 [P,L]\nRewriteCond %{HTTP:X} =1\nRewriteRule ^/c/ http://127.0.0.1:9002/ [P]\nRewriteRule ^/old/(.*) /new/$1 [R=301,L]\nRewriteRule ^/pt/(.*) /app/$1 [PT]\nRewriteRule ^/NC/ http://127.0.0.1:9003/ [P,NC]\nProxyPass /api/ http://127.0.0.1:9101/\nProxyPass /c/ http://127.0.0.1:9102/\nProxyPass /app/ http://127.0.0.1:9103/\nProxyPass /new/ http://127.0.0.1:9104/\n</VirtualHost>\n",
        );
        let (u, r) = up(&c, "/api/x");
        assert_eq!(u, ["127.0.0.1:9001"]);
        assert!(
            r.why
                .iter()
                .any(|w| w.contains("[P] proxies to http://127.0.0.1:9001/v1/x")),
            "{:?}",
            r.why
        );
        // Behind a RewriteCond: not followed, ProxyPass decides.
        assert_eq!(up(&c, "/c/x").0, ["127.0.0.1:9102"]);
        // A redirect: httpd answers itself.
        assert!(up(&c, "/old/x").0.is_empty());
        // [PT]: ProxyPass sees the rewritten path.
        assert_eq!(up(&c, "/pt/x").0, ["127.0.0.1:9103"]);
        assert_eq!(up(&c, "/nc/x").0, ["127.0.0.1:9003"]);
        // RewriteEngine off (the default): rules ignored.
        let (_d, c) = cfg(
            "<VirtualHost *:80>\nServerName r.test\nRewriteRule ^/ http://127.0.0.1:9001/ [P]\nProxyPass / http://127.0.0.1:9101/\n</VirtualHost>\n",
        );
        assert_eq!(up(&c, "/x").0, ["127.0.0.1:9101"]);
    }

    #[test]
    fn location_matches_whole_segments() {
        let (_d, c) = cfg(
            "<VirtualHost *:80>\nServerName r.test\n<Location /app>\nProxyPass http://127.0.0.1:9001/\n</Location>\n<Location /dir/>\nProxyPass http://127.0.0.1:9002/\n</Location>\n</VirtualHost>\n",
        );
        assert_eq!(up(&c, "/app").0, ["127.0.0.1:9001"]);
        assert_eq!(up(&c, "/app/x").0, ["127.0.0.1:9001"]);
        assert!(up(&c, "/application").0.is_empty());
        assert_eq!(up(&c, "/dir/x").0, ["127.0.0.1:9002"]);
        assert!(up(&c, "/dir").0.is_empty());
    }
}
