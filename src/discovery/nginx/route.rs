//! Which nginx server block and location serve a URL, and what is in effect
//! there: the upstream, the logs and their format, the worker user, the
//! timeouts and buffers, cache paths, the document root and the resolver.
//!
//! Server selection follows nginx: the connection's local address picks the
//! `listen` (an exact address beats a wildcard), then `server_name`
//! (exact, longest `*.` wildcard, longest `.*` wildcard, first regex in
//! order), else the `default_server`, else the first server on that
//! address. Location selection: exact `=`, longest prefix (`^~` stops
//! there), nested locations of that prefix, regexes in order, the longest
//! prefix. Directives inherit location → server → http → main; the
//! innermost level that sets a directive wins.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use regex::RegexBuilder;

use super::NginxConfig;
use crate::check::Evidence;
use crate::discovery::directive::Directive;
use crate::discovery::service_map::{Place, Route, ServiceMap, Upstream};

/// Compiled-in defaults from `nginx -V`.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub error_log: Option<String>,
    pub access_log: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// The request as the front sees it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    /// The local address the connection arrives on (`None`: any).
    pub local_ip: Option<IpAddr>,
}

/// A parsed `listen` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// `None`: wildcard of the family given by `v6`.
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub v6: bool,
    pub unix: Option<String>,
    pub default: bool,
}

/// Parse `listen`'s arguments (`127.0.0.1:8080 default_server`, `[::1]:80`,
/// `8080`, `*:80`, `unix:/run/x.sock`).
pub fn parse_listen(args: &[String]) -> Option<Listen> {
    let first = args.first()?;
    let default = args
        .iter()
        .skip(1)
        .any(|a| a == "default_server" || a == "default");
    if let Some(path) = first.strip_prefix("unix:") {
        return Some(Listen {
            addr: None,
            port: 0,
            v6: false,
            unix: Some(path.to_owned()),
            default,
        });
    }
    let (host, port) = if let Some(rest) = first.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(80), |p| p.parse().ok())?;
        (h.to_owned(), port)
    } else if let Some((h, p)) = first.rsplit_once(':') {
        (h.to_owned(), p.parse().ok()?)
    } else if let Ok(p) = first.parse::<u16>() {
        ("*".to_owned(), p)
    } else {
        (first.clone(), 80)
    };
    let (addr, v6) = match host.as_str() {
        "*" | "0.0.0.0" => (None, false),
        "::" => (None, true),
        "localhost" => (Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), false),
        h => {
            let ip: IpAddr = h.parse().ok()?;
            (Some(ip), ip.is_ipv6())
        }
    };
    Some(Listen {
        addr,
        port,
        v6,
        unix: None,
        default,
    })
}

/// The `listen`s of a server block (nginx's default is `*:80`).
fn listens(server: &Directive) -> Vec<(Listen, &Directive)> {
    let v: Vec<(Listen, &Directive)> = server
        .all("listen")
        .filter_map(|d| parse_listen(&d.args).map(|l| (l, d)))
        .collect();
    if v.is_empty() && server.last("listen").is_none() {
        return vec![(
            Listen {
                addr: None,
                port: 80,
                v6: false,
                unix: None,
                default: false,
            },
            server,
        )];
    }
    v
}

/// How well a `listen` matches a connection: 2 exact address, 1 wildcard.
fn listen_rank(l: &Listen, ip: Option<IpAddr>, port: u16) -> u8 {
    if l.unix.is_some() || l.port != port {
        return 0;
    }
    match (l.addr, ip) {
        (Some(a), Some(ip)) if a == ip => 2,
        (Some(_), Some(_)) => 0,
        (None, Some(ip)) if ip.is_ipv6() == l.v6 => 1,
        (None, Some(_)) => 0,
        (_, None) => 1,
    }
}

/// The server blocks of `http`.
fn servers(cfg: &NginxConfig) -> Vec<&Directive> {
    cfg.http()
        .map(|h| h.all("server").filter(|d| d.block.is_some()).collect())
        .unwrap_or_default()
}

/// How a server was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerChoice {
    Name(String),
    Default,
    First,
}

/// Pick the server block for a request. Regexes that do not compile are
/// reported in `notes`.
pub fn select_server<'a>(
    cfg: &'a NginxConfig,
    req: &Request<'_>,
    notes: &mut Vec<String>,
) -> Option<(&'a Directive, ServerChoice)> {
    let all = servers(cfg);
    let ranked: Vec<(u8, &Directive, bool)> = all
        .iter()
        .filter_map(|s| {
            let best = listens(s)
                .iter()
                .map(|(l, _)| (listen_rank(l, req.local_ip, req.port), l.default))
                .max_by_key(|(r, _)| *r)?;
            (best.0 > 0).then_some((best.0, *s, best.1))
        })
        .collect();
    let top = ranked.iter().map(|r| r.0).max()?;
    let candidates: Vec<(&Directive, bool)> = ranked
        .iter()
        .filter(|r| r.0 == top)
        .map(|r| (r.1, r.2))
        .collect();
    let host = req.host.trim_end_matches('.').to_ascii_lowercase();
    // 1. exact names
    for (s, _) in &candidates {
        for n in server_names(s) {
            if !n.starts_with('~') && !n.contains('*') && !n.starts_with('.') && n == host {
                return Some((s, ServerChoice::Name(n)));
            }
        }
    }
    // 2. leading wildcard (longest), `.example.com` counts as both forms.
    let mut best: Option<(usize, &Directive, String)> = None;
    for (s, _) in &candidates {
        for n in server_names(s) {
            let suffix = if let Some(rest) = n.strip_prefix("*.") {
                Some((format!(".{rest}"), false))
            } else if n.starts_with('.') {
                Some((n.clone(), true))
            } else {
                None
            };
            if let Some((suf, bare_too)) = suffix {
                let hit = host.ends_with(&suf) || (bare_too && host == suf[1..]);
                if hit && best.as_ref().is_none_or(|b| suf.len() > b.0) {
                    best = Some((suf.len(), s, n.clone()));
                }
            }
        }
    }
    if let Some((_, s, n)) = best {
        return Some((s, ServerChoice::Name(n)));
    }
    // 3. trailing wildcard (longest).
    let mut best: Option<(usize, &Directive, String)> = None;
    for (s, _) in &candidates {
        for n in server_names(s) {
            if let Some(pre) = n.strip_suffix(".*") {
                let pre = format!("{pre}.");
                if host.starts_with(&pre) && best.as_ref().is_none_or(|b| pre.len() > b.0) {
                    best = Some((pre.len(), s, n.clone()));
                }
            }
        }
    }
    if let Some((_, s, n)) = best {
        return Some((s, ServerChoice::Name(n)));
    }
    // 4. regexes in order of appearance.
    for (s, _) in &candidates {
        for n in server_names(s) {
            if let Some(re) = n.strip_prefix('~') {
                match RegexBuilder::new(re)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(r) if r.is_match(&host) => return Some((s, ServerChoice::Name(n))),
                    Ok(_) => {}
                    Err(e) => notes.push(format!(
                        "server_name regex {n:?} at {} could not be evaluated: {e}",
                        s.at()
                    )),
                }
            }
        }
    }
    // 5. default_server, else the first.
    if let Some((s, _)) = candidates.iter().find(|(_, d)| *d) {
        return Some((s, ServerChoice::Default));
    }
    candidates.first().map(|(s, _)| (*s, ServerChoice::First))
}

fn server_names(s: &Directive) -> Vec<String> {
    let v: Vec<String> = s
        .all("server_name")
        .flat_map(|d| d.args.iter().map(|a| a.to_ascii_lowercase()))
        .collect();
    if v.is_empty() { vec![String::new()] } else { v }
}

/// A location's match type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    Exact,
    Prefix,
    NoRegex,
    Regex { case_insensitive: bool },
    Named,
}

/// Parse a location's modifier and pattern (`= /`, `~* \.php$`, `=/x`).
pub fn location_pattern(d: &Directive) -> Option<(Modifier, String)> {
    match d.args.as_slice() {
        [m, p] => {
            let m = match m.as_str() {
                "=" => Modifier::Exact,
                "^~" => Modifier::NoRegex,
                "~" => Modifier::Regex {
                    case_insensitive: false,
                },
                "~*" => Modifier::Regex {
                    case_insensitive: true,
                },
                _ => return None,
            };
            Some((m, p.clone()))
        }
        [p] => {
            if let Some(r) = p.strip_prefix("~*") {
                Some((
                    Modifier::Regex {
                        case_insensitive: true,
                    },
                    r.to_owned(),
                ))
            } else if let Some(r) = p.strip_prefix('~') {
                Some((
                    Modifier::Regex {
                        case_insensitive: false,
                    },
                    r.to_owned(),
                ))
            } else if let Some(r) = p.strip_prefix("^~") {
                Some((Modifier::NoRegex, r.to_owned()))
            } else if let Some(r) = p.strip_prefix('=') {
                Some((Modifier::Exact, r.to_owned()))
            } else if p.starts_with('@') {
                Some((Modifier::Named, p.clone()))
            } else {
                Some((Modifier::Prefix, p.clone()))
            }
        }
        _ => None,
    }
}

/// The location (innermost first, then its parents) that handles `uri`.
pub fn select_location<'a>(
    block: &'a Directive,
    uri: &str,
    notes: &mut Vec<String>,
) -> Vec<&'a Directive> {
    let mut chain = Vec::new();
    select_in(block, uri, notes, &mut chain, 0);
    chain.reverse();
    chain
}

/// Fill `chain` outermost-first; returns whether the match is final
/// (exact, `^~` or regex).
fn select_in<'a>(
    block: &'a Directive,
    uri: &str,
    notes: &mut Vec<String>,
    chain: &mut Vec<&'a Directive>,
    depth: usize,
) -> bool {
    if depth > super::parse::MAX_BLOCK_DEPTH {
        return false;
    }
    let locs: Vec<(&Directive, Modifier, String)> = block
        .all("location")
        .filter(|d| d.block.is_some())
        .filter_map(|d| location_pattern(d).map(|(m, p)| (d, m, p)))
        .collect();
    if let Some((d, ..)) = locs
        .iter()
        .find(|(_, m, p)| *m == Modifier::Exact && p == uri)
    {
        chain.push(d);
        return true;
    }
    let best = locs
        .iter()
        .filter(|(_, m, p)| {
            matches!(m, Modifier::Prefix | Modifier::NoRegex) && uri.starts_with(p.as_str())
        })
        .max_by_key(|(_, _, p)| p.len());
    let mut chosen: Vec<&Directive> = Vec::new();
    if let Some((d, m, _)) = best {
        chosen.push(d);
        let mut inner = Vec::new();
        let fin = select_in(d, uri, notes, &mut inner, depth + 1);
        if fin {
            chain.push(d);
            chain.extend(inner);
            return true;
        }
        chosen.extend(inner);
        if *m == Modifier::NoRegex {
            chain.extend(chosen);
            return true;
        }
    }
    for (d, m, p) in &locs {
        if let Modifier::Regex { case_insensitive } = m {
            match RegexBuilder::new(p)
                .case_insensitive(*case_insensitive)
                .size_limit(1 << 20)
                .build()
            {
                Ok(r) if r.is_match(uri) => {
                    chain.push(d);
                    let mut inner = Vec::new();
                    select_in(d, uri, notes, &mut inner, depth + 1);
                    chain.extend(inner);
                    return true;
                }
                Ok(_) => {}
                Err(e) => notes.push(format!(
                    "location regex {p:?} at {} could not be evaluated: {e}",
                    d.at()
                )),
            }
        }
    }
    chain.extend(chosen);
    false
}

/// The named location `@name` of a server.
fn named_location<'a>(server: &'a Directive, name: &str) -> Option<&'a Directive> {
    server
        .all("location")
        .find(|d| d.args.len() == 1 && d.args[0] == name)
}

/// The `index` module's internal redirect for a URI ending in `/`: the
/// first index file that exists under `root` (an absolute index path is
/// taken as is). When `root` is not on this machine, the first entry and a
/// note that the files decide; when it is and no file exists, `None`
/// (nginx answers 403 or an autoindex listing itself).
fn index_redirect(levels: &[&Directive], uri: &str) -> Option<(String, String)> {
    let index = inherited(levels, "index");
    let names: Vec<String> =
        index.map_or_else(|| vec!["index.html".to_owned()], |d| d.args.clone());
    let at = index.map_or_else(
        || "the default `index index.html`".to_owned(),
        |d| format!("index at {}", d.at()),
    );
    let root = inherited(levels, "root")
        .and_then(|d| d.arg(0))
        .filter(|r| !r.contains('$'))
        .map(std::path::PathBuf::from);
    let on_disk = root.as_ref().filter(|r| r.is_dir());
    for n in names.iter().filter(|n| !n.contains('$')) {
        let next = if n.starts_with('/') {
            n.clone()
        } else {
            format!("{uri}{n}")
        };
        match on_disk {
            Some(r) if !n.starts_with('/') => {
                if r.join(next.trim_start_matches('/')).is_file() {
                    return Some((
                        next.clone(),
                        format!(
                            "{at}: {} exists, internal redirect to {next}",
                            r.join(next.trim_start_matches('/')).display()
                        ),
                    ));
                }
            }
            _ => {
                return Some((
                    next.clone(),
                    format!(
                        "{at}: internal redirect to {next} (when that file exists under the root; the files on disk decide)"
                    ),
                ));
            }
        }
    }
    None
}

/// Directives that hand a request to an upstream, and their scheme.
const PASSES: &[(&str, &str)] = &[
    ("proxy_pass", "http"),
    ("fastcgi_pass", "fastcgi"),
    ("uwsgi_pass", "uwsgi"),
    ("scgi_pass", "scgi"),
    ("grpc_pass", "grpc"),
    ("memcached_pass", "memcached"),
];

/// The nearest value of a directive: innermost level first.
fn inherited<'a>(levels: &[&'a Directive], name: &str) -> Option<&'a Directive> {
    levels.iter().find_map(|l| l.last(name))
}

/// All directives called `name` at the innermost level that has any.
fn inherited_all<'a>(levels: &[&'a Directive], name: &'a str) -> Vec<&'a Directive> {
    for l in levels {
        let v: Vec<&Directive> = l.all(name).collect();
        if !v.is_empty() {
            return v;
        }
    }
    Vec::new()
}

fn place(d: &Directive) -> Place {
    Place {
        file: d.file.display().to_string(),
        line: d.line,
        text: d.text(),
    }
}

/// Settings reported for every route, with nginx's built-in defaults
/// (one memory page is 4k on the platforms we run on).
const SETTINGS: &[(&str, &str)] = &[
    ("proxy_connect_timeout", "60s"),
    ("proxy_read_timeout", "60s"),
    ("proxy_send_timeout", "60s"),
    ("proxy_buffer_size", "4k"),
    ("proxy_buffers", "8 4k"),
    ("proxy_busy_buffers_size", "8k"),
    ("proxy_buffering", "on"),
    ("proxy_next_upstream", "error timeout"),
    ("proxy_intercept_errors", "off"),
    ("fastcgi_connect_timeout", "60s"),
    ("fastcgi_read_timeout", "60s"),
    ("fastcgi_send_timeout", "60s"),
    ("fastcgi_buffer_size", "4k"),
    ("fastcgi_buffers", "8 4k"),
    ("fastcgi_next_upstream", "error timeout"),
    ("uwsgi_read_timeout", "60s"),
    ("scgi_read_timeout", "60s"),
    ("grpc_read_timeout", "60s"),
    ("client_max_body_size", "1m"),
    ("client_header_buffer_size", "1k"),
    ("large_client_header_buffers", "4 8k"),
    ("keepalive_timeout", "75s"),
    ("send_timeout", "60s"),
    ("proxy_cache", "off"),
    ("fastcgi_cache", "off"),
];

/// The `combined` format nginx predefines.
pub const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// Map a URL through an nginx configuration into `m`.
pub fn map(cfg: &NginxConfig, req: &Request<'_>, defaults: &Defaults, m: &mut ServiceMap) {
    let main_block = Directive {
        name: "(main)".into(),
        args: Vec::new(),
        file: std::sync::Arc::from(cfg.conf_file.as_path()),
        line: 0,
        // Only simple main-context directives are inherited (error_log, user):
        // the blocks (http, events) are left out instead of deep-copied.
        block: Some(
            cfg.main
                .iter()
                .filter(|d| d.block.is_none())
                .cloned()
                .collect(),
        ),
    };
    worker_user(cfg, defaults, m);
    let mut notes = Vec::new();
    let Some(http) = cfg.http() else {
        m.unknown(
            "route",
            format!("{} has no http block", cfg.conf_file.display()),
        );
        error_logs(&[&main_block], cfg, defaults, m);
        return;
    };
    let Some((server, choice)) = select_server(cfg, req, &mut notes) else {
        m.unknown(
            "route",
            format!(
                "no server block in {} listens on port {} (a stream{{}} proxy or a listen not parsed?)",
                cfg.conf_file.display(),
                req.port
            ),
        );
        for n in notes {
            m.note(n);
        }
        error_logs(&[http, &main_block], cfg, defaults, m);
        return;
    };
    let mut route = Route {
        server_block: Some(Place {
            text: server_summary(server),
            ..place(server)
        }),
        ..Route::default()
    };
    route.why.push(match &choice {
        ServerChoice::Name(n) => format!("server_name {n} matches host {}", req.host),
        ServerChoice::Default => format!("no server_name matches {}: default_server", req.host),
        ServerChoice::First => format!(
            "no server_name matches {}: first server on the address (the implicit default)",
            req.host
        ),
    });
    m.evidence
        .push(Evidence::new("server block", server_summary(server)).at(server.at()));

    // Location, following try_files fallbacks to the handler (bounded).
    let uri = normalize_uri(req.path);
    let mut chain = select_location(server, &uri, &mut notes);
    let mut cur_uri = uri.clone();
    let mut handler: Option<(&Directive, &str)>;
    let mut hops = 0;
    loop {
        let levels: Vec<&Directive> = chain.iter().copied().chain([server]).collect();
        handler = chain.first().and_then(|loc| {
            PASSES
                .iter()
                .find_map(|(n, scheme)| loc.last(n).map(|d| (d, *scheme)))
        });
        if handler.is_some() || hops >= 3 {
            break;
        }
        let Some(tf) = inherited(&levels, "try_files") else {
            // No try_files: a URI ending in `/` is served by the index
            // module, an internal redirect to the first index file that
            // exists (without the files: the first one, noted).
            if !cur_uri.ends_with('/') || chain.is_empty() {
                break;
            }
            let Some((next, why)) = index_redirect(&levels, &cur_uri) else {
                break;
            };
            hops += 1;
            route.why.push(why);
            chain = select_location(server, &next, &mut notes);
            cur_uri = next;
            continue;
        };
        let Some(last) = tf.args.last() else { break };
        hops += 1;
        if last.starts_with('@') {
            if let Some(named) = named_location(server, last) {
                route
                    .why
                    .push(format!("try_files at {} falls back to {last}", tf.at()));
                chain = vec![named];
                continue;
            }
            break;
        }
        if last.starts_with('/') {
            let next = last.split('?').next().unwrap_or(last);
            if next.contains('$') {
                break;
            }
            route
                .why
                .push(format!("try_files at {} falls back to {next}", tf.at()));
            chain = select_location(server, next, &mut notes);
            next.clone_into(&mut cur_uri);
            continue;
        }
        break;
    }
    if let Some(loc) = chain.first() {
        route.location = Some(place(loc));
        m.evidence
            .push(Evidence::new("location", loc.text()).at(loc.at()));
    } else {
        route.why.push(format!(
            "no location matches {uri}: the server block's own settings apply"
        ));
    }
    for n in notes {
        m.note(n);
    }
    let levels: Vec<&Directive> = chain.iter().copied().chain([server, http]).collect();
    let levels_main: Vec<&Directive> = levels.iter().copied().chain([&main_block]).collect();

    // Conditional handlers inside `if` are noted, not taken.
    for loc in &chain {
        for i in loc.all("if") {
            for (n, _) in PASSES {
                if let Some(d) = i.last(n) {
                    m.note(format!(
                        "{} at {} is inside `if {}`: taken only when that condition holds",
                        d.text(),
                        d.at(),
                        i.args.join(" ")
                    ));
                }
            }
        }
    }

    if let Some((d, scheme)) = handler {
        route.handler = Some(place(d));
        m.evidence
            .push(Evidence::new("upstream", d.text()).at(d.at()));
        upstreams(http, &levels, d, scheme, m);
    } else {
        let what = chain.first().and_then(|l| l.last("return")).map_or_else(
            || "the route serves static files (no *_pass directive)".into(),
            |r| format!("the location answers itself ({} at {})", r.text(), r.at()),
        );
        m.unknown("upstream", what);
    }
    m.route = Some(route);

    // Logs.
    error_logs(&levels_main, cfg, defaults, m);
    access_logs(&levels, http, cfg, defaults, m);

    // Settings.
    for (name, default) in SETTINGS {
        match inherited(&levels, name) {
            Some(d) => m.setting(name, d.args.join(" "), d.at()),
            None => m.setting(name, *default, "default (nginx built-in)"),
        }
    }
    // Cache paths.
    for name in [
        "proxy_cache_path",
        "fastcgi_cache_path",
        "uwsgi_cache_path",
        "scgi_cache_path",
    ] {
        for d in http.all(name) {
            if let Some(p) = d.arg(0) {
                let p = abs(&cfg.prefix, p);
                m.cache_paths.push(p.clone());
                m.sources
                    .entry("cache_paths".into())
                    .or_insert_with(|| d.at());
            }
        }
    }
    // Document root.
    let root = chain
        .iter()
        .find_map(|l| l.last("alias").or_else(|| l.last("root")))
        .or_else(|| inherited(&[server, http], "root"));
    if let Some(d) = root {
        if let Some(p) = d.arg(0) {
            m.document_root = Some(abs(&cfg.prefix, p));
            m.sources.insert("document_root".into(), d.at());
        }
    } else {
        m.document_root = Some(abs(&cfg.prefix, "html"));
        m.sources.insert(
            "document_root".into(),
            "default (root html, relative to the prefix)".into(),
        );
    }
    // Resolver.
    if let Some(d) = inherited(&levels, "resolver") {
        m.resolver = Some(d.args.join(" "));
        m.sources.insert("resolver".into(), d.at());
    }
}

/// `server` with its listen and server_name lines, for evidence.
fn server_summary(server: &Directive) -> String {
    let mut s = String::from("server {");
    for d in server.children() {
        if d.is("listen") || d.is("server_name") {
            s.push(' ');
            s.push_str(&d.text());
            s.push(';');
        }
    }
    s.push_str(" ... }");
    s
}

/// Percent-decode, merge slashes and resolve `.`/`..` as nginx does
/// before matching locations.
pub fn normalize_uri(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8_lossy(&out);
    let mut parts: Vec<&str> = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    let mut r = format!("/{}", parts.join("/"));
    if (s.ends_with('/') || s.ends_with("/.") || s.ends_with("/..")) && r.len() > 1 {
        r.push('/');
    }
    r
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A path made absolute against the prefix, unless it is a special target.
fn abs(prefix: &Path, p: &str) -> String {
    if p.starts_with('/')
        || p == "stderr"
        || p.starts_with("syslog:")
        || p.starts_with("memory:")
        || p.contains('$')
    {
        p.to_owned()
    } else {
        prefix.join(p).display().to_string()
    }
}

fn worker_user(cfg: &NginxConfig, defaults: &Defaults, m: &mut ServiceMap) {
    if let Some(d) = cfg.main_directive("user") {
        let user = d.arg(0).unwrap_or("nobody").to_owned();
        let group = d.arg(1).map_or_else(|| user.clone(), str::to_owned);
        m.worker_user = Some(user);
        m.worker_group = Some(group);
        m.sources.insert("worker_user".into(), d.at());
        m.sources.insert("worker_group".into(), d.at());
    } else {
        m.worker_user = Some(defaults.user.clone().unwrap_or_else(|| "nobody".into()));
        m.worker_group = Some(defaults.group.clone().unwrap_or_else(|| "nogroup".into()));
        m.sources.insert(
            "worker_user".into(),
            "default (no `user` directive: nginx's compiled-in user)".into(),
        );
        m.sources.insert("worker_group".into(), "default".into());
    }
}

fn error_logs(levels: &[&Directive], cfg: &NginxConfig, defaults: &Defaults, m: &mut ServiceMap) {
    let found = inherited_all(levels, "error_log");
    if found.is_empty() {
        let p = defaults
            .error_log
            .clone()
            .unwrap_or_else(|| "logs/error.log".into());
        let p = abs(&cfg.prefix, &p);
        m.log("error", &p, "default (nginx -V --error-log-path)");
        if p == "stderr" {
            m.note("the error log is the master's stderr: under systemd, read it with journalctl -u nginx");
        }
        return;
    }
    for d in found {
        if let Some(p) = d.arg(0) {
            m.log("error", &abs(&cfg.prefix, p), &d.at());
        }
    }
}

fn access_logs(
    levels: &[&Directive],
    http: &Directive,
    cfg: &NginxConfig,
    defaults: &Defaults,
    m: &mut ServiceMap,
) {
    let found = inherited_all(levels, "access_log");
    let mut format_name = None;
    if found.is_empty() {
        let p = defaults
            .access_log
            .clone()
            .unwrap_or_else(|| "logs/access.log".into());
        m.log(
            "access",
            &abs(&cfg.prefix, &p),
            "default (nginx -V --http-log-path)",
        );
        format_name = Some("combined".to_owned());
    }
    for d in &found {
        match d.arg(0) {
            Some("off") => m.note(format!("access_log off at {}", d.at())),
            Some(p) => {
                m.log("access", &abs(&cfg.prefix, p), &d.at());
                let f = d
                    .args
                    .get(1)
                    .filter(|a| !a.contains('='))
                    .cloned()
                    .unwrap_or_else(|| "combined".into());
                format_name.get_or_insert(f);
            }
            None => {}
        }
    }
    if let Some(name) = format_name {
        let def = http
            .all("log_format")
            .find(|d| d.arg(0) == Some(name.as_str()));
        match def {
            Some(d) => {
                let parts: Vec<&str> = d
                    .args
                    .iter()
                    .skip(1)
                    .filter(|a| !a.starts_with("escape="))
                    .map(String::as_str)
                    .collect();
                m.logs.access_format = Some(parts.concat());
                m.sources.insert("access_log_format".into(), d.at());
            }
            None if name == "combined" => {
                m.logs.access_format = Some(COMBINED.into());
                m.sources.insert(
                    "access_log_format".into(),
                    "default (nginx's predefined combined)".into(),
                );
            }
            None => m.unknown(
                "access_log_format",
                format!("log_format {name} is not defined in the http block"),
            ),
        }
        m.logs.access_format_name = Some(name);
    }
}

/// The upstream addresses behind a `*_pass` directive.
pub fn upstreams(
    http: &Directive,
    levels: &[&Directive],
    d: &Directive,
    scheme: &str,
    m: &mut ServiceMap,
) {
    let Some(raw) = d.arg(0) else {
        m.unknown(
            "upstream",
            format!("{} at {} has no address", d.name, d.at()),
        );
        return;
    };
    let (scheme, rest) = split_scheme(d.name.as_str(), scheme, raw);
    // proxy_pass http://unix:/path:/uri
    if let Some(u) = rest.strip_prefix("unix:") {
        let path = u.split(':').next().unwrap_or(u);
        m.upstreams.push(Upstream {
            address: address_kind(&format!("unix:{path}"), 0).0,
            kind: "unix".into(),
            scheme,
            source: d.at(),
            ..Upstream::default()
        });
        return;
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    let mut hostport = hostport.to_owned();
    if hostport.contains('$') {
        // A variable: try a constant `set` in scope, else it is resolved at run time.
        if let Some(v) = constant_set(levels, &hostport) {
            m.note(format!("{} uses a variable set to {v}", d.at()));
            hostport = v;
        } else {
            let resolver = inherited(levels, "resolver");
            m.upstreams.push(Upstream {
                address: hostport.clone(),
                kind: "name".into(),
                scheme: scheme.clone(),
                source: d.at(),
                listener_note: Some(match resolver {
                    Some(r) => format!("a variable resolved at request time with resolver {} ({})", r.args.join(" "), r.at()),
                    None => "a variable resolved at request time, but no resolver is set: nginx can only use upstream groups for it".into(),
                }),
                ..Upstream::default()
            });
            return;
        }
    }
    // An upstream group?
    let group_name = hostport.as_str();
    if let Some(g) = http
        .all("upstream")
        .find(|u| u.arg(0) == Some(group_name) && u.block.is_some())
    {
        m.evidence.push(
            Evidence::new("upstream group", format!("upstream {group_name} {{ ... }}")).at(g.at()),
        );
        for s in g.all("server") {
            let Some(addr) = s.arg(0) else { continue };
            m.evidence
                .push(Evidence::new("upstream server", s.text()).at(s.at()));
            let options: Vec<String> = s.args[1..].to_vec();
            let backup = options.iter().any(|o| o == "backup");
            let (address, kind) = address_kind(addr, 80);
            m.upstreams.push(Upstream {
                address,
                kind,
                scheme: scheme.clone(),
                group: Some(group_name.to_owned()),
                options,
                backup,
                source: s.at(),
                ..Upstream::default()
            });
        }
        for k in ["keepalive", "least_conn", "ip_hash", "hash", "zone"] {
            if let Some(x) = g.last(k) {
                m.note(format!("upstream {group_name}: {} ({})", x.text(), x.at()));
            }
        }
        return;
    }
    let default_port = match scheme.as_str() {
        "https" => 443,
        _ => 80,
    };
    let (address, kind) = address_kind(&hostport, default_port);
    m.upstreams.push(Upstream {
        address,
        kind,
        scheme,
        source: d.at(),
        ..Upstream::default()
    });
}

/// `proxy_pass https://x` → ("https", "x"); `grpc_pass grpcs://x` → ("grpc", "x").
fn split_scheme<'a>(directive: &str, scheme: &str, raw: &'a str) -> (String, &'a str) {
    // `uwsgi_pass unix:///run/x.sock`: a socket path, not a scheme.
    if raw.starts_with("unix:") {
        return (scheme.to_owned(), raw);
    }
    if let Some((s, rest)) = raw.split_once("://") {
        let s = match (directive, s) {
            ("proxy_pass", "https") => "https",
            ("proxy_pass", _) => "http",
            (_, "suwsgi") => "uwsgi",
            ("grpc_pass", "grpcs") => "grpc",
            _ => scheme,
        };
        (s.to_owned(), rest)
    } else {
        (scheme.to_owned(), raw)
    }
}

/// An address as nginx dials it and its kind (`tcp`, `unix`, `name`).
pub fn address_kind(addr: &str, default_port: u16) -> (String, String) {
    if let Some(p) = addr.strip_prefix("unix:") {
        // `unix:///run/x.sock` is the same file as `unix:/run/x.sock`.
        let p = if p.starts_with("//") {
            format!("/{}", p.trim_start_matches('/'))
        } else {
            p.to_owned()
        };
        return (format!("unix:{p}"), "unix".into());
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, after)) => (
                h.to_owned(),
                after
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(default_port),
            ),
            None => (rest.to_owned(), default_port),
        }
    } else if let Some((h, p)) = addr.rsplit_once(':')
        && let Ok(p) = p.parse::<u16>()
    {
        (h.to_owned(), p)
    } else {
        (addr.to_owned(), default_port)
    };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => (format!("[{ip}]:{port}"), "tcp".into()),
        Ok(ip) => (format!("{ip}:{port}"), "tcp".into()),
        Err(_) if host == "localhost" => (format!("{}:{port}", Ipv4Addr::LOCALHOST), "tcp".into()),
        Err(_) => (format!("{host}:{port}"), "name".into()),
    }
}

/// `$var` (or `${var}`) replaced by a constant `set $var value;` in scope.
fn constant_set(levels: &[&Directive], text: &str) -> Option<String> {
    let mut out = text.to_owned();
    for _ in 0..4 {
        let Some(start) = out.find('$') else {
            return Some(out);
        };
        let rest = &out[start + 1..];
        let (name, len) = if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}')?;
            (r[..end].to_owned(), end + 3)
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (rest[..end].to_owned(), end + 1)
        };
        let value = levels.iter().find_map(|l| {
            l.children()
                .iter()
                .rev()
                .find(|d| d.is("set") && d.arg(0) == Some(&format!("${name}")))
                .and_then(|d| d.arg(1))
        })?;
        if value.contains('$') {
            return None;
        }
        out.replace_range(start..start + len, value);
    }
    (!out.contains('$')).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cfg(text: &str) -> NginxConfig {
        let main =
            crate::discovery::nginx::parse_str(text, Path::new("/etc/nginx/nginx.conf")).unwrap();
        NginxConfig {
            main,
            conf_file: PathBuf::from("/etc/nginx/nginx.conf"),
            prefix: PathBuf::from("/usr/share/nginx"),
            files: Vec::new(),
            includes: Vec::new(),
        }
    }

    fn req<'a>(host: &'a str, path: &'a str) -> Request<'a> {
        Request {
            host,
            port: 8080,
            path,
            local_ip: Some("127.0.0.1".parse().unwrap()),
        }
    }

    fn route(c: &NginxConfig, host: &str, path: &str) -> ServiceMap {
        let mut m = ServiceMap::default();
        map(c, &req(host, path), &Defaults::default(), &mut m);
        m
    }

    const SITE: &str = r#"
user www-data;
error_log /var/log/nginx/main-error.log;
http {
    log_format main '$remote_addr [$time_local] "$request" $status '
                    '$upstream_addr $upstream_status';
    access_log /var/log/nginx/access.log main;
    proxy_read_timeout 30s;
    resolver 127.0.0.53 valid=10s;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    upstream app {
        server 127.0.0.1:9001 max_fails=3 fail_timeout=10s;
        server unix:/run/app.sock backup;
    }
    server {
        listen 8080 default_server;
        server_name _;
        return 444;
    }
    server {
        listen 127.0.0.1:8080;
        server_name www.example.test *.example.test ~^(?<sub>.+)\.regex\.test$;
        root /srv/www;
        error_log /var/log/nginx/site-error.log warn;
        location = / { proxy_pass http://app; }
        location / {
            try_files $uri $uri/ /index.php?$args;
        }
        location ^~ /static/ { root /srv/static; }
        location ~* \.(png|jpg)$ { expires 1d; }
        location ~ \.php$ {
            if ($request_method = POST) {
                set $x "{ brace }";
                if ($x) { return 405; }
            }
            fastcgi_pass unix:/run/php/php8.2-fpm.sock;
            fastcgi_read_timeout 120s;
        }
        location /api/ {
            proxy_pass http://127.0.0.1:9002/;
            proxy_read_timeout 5s;
            access_log off;
            location ~ /api/admin { proxy_pass http://[::1]:9003; }
        }
        location /dyn/ {
            set $backend "svc.internal:8443";
            proxy_pass https://$backend;
        }
    }
    server {
        listen 127.0.0.1:8080;
        server_name  .example.org;
        location / { uwsgi_pass 127.0.0.1:3031; }
    }
}
"#;

    #[test]
    fn exact_location_with_upstream_group() {
        let c = cfg(SITE);
        let m = route(&c, "www.example.test", "/");
        let r = m.route.as_ref().unwrap();
        assert_eq!(r.location.as_ref().unwrap().text, "location = /");
        assert_eq!(m.upstreams.len(), 2);
        assert_eq!(m.upstreams[0].address, "127.0.0.1:9001");
        assert_eq!(m.upstreams[0].group.as_deref(), Some("app"));
        assert!(m.upstreams[0].options.contains(&"max_fails=3".to_owned()));
        assert!(m.upstreams[1].backup);
        assert_eq!(m.upstreams[1].kind, "unix");
        assert_eq!(m.logs.error, vec!["/var/log/nginx/site-error.log"]);
        assert_eq!(m.logs.access, vec!["/var/log/nginx/access.log"]);
        assert_eq!(
            m.logs.access_format.as_deref(),
            Some("$remote_addr [$time_local] \"$request\" $status $upstream_addr $upstream_status")
        );
        assert_eq!(m.worker_user.as_deref(), Some("www-data"));
        assert_eq!(m.settings["proxy_read_timeout"].value, "30s");
        assert_eq!(m.resolver.as_deref(), Some("127.0.0.53 valid=10s"));
    }

    #[test]
    fn regex_beats_prefix_and_try_files_falls_back_to_php() {
        let c = cfg(SITE);
        let m = route(&c, "a.example.test", "/blog/post");
        let r = m.route.as_ref().unwrap();
        assert_eq!(r.location.as_ref().unwrap().text, "location ~ \\.php$");
        assert!(r.why.iter().any(|w| w.contains("try_files")), "{:?}", r.why);
        assert_eq!(m.upstreams[0].address, "unix:/run/php/php8.2-fpm.sock");
        assert_eq!(m.upstreams[0].scheme, "fastcgi");
        assert_eq!(m.settings["fastcgi_read_timeout"].value, "120s");
        assert!(m.notes.iter().all(|n| !n.contains("fastcgi_pass")));
    }

    #[test]
    fn no_regex_prefix_stops_regex_search() {
        let c = cfg(SITE);
        let m = route(&c, "www.example.test", "/static/a.png");
        assert_eq!(
            m.route.unwrap().location.unwrap().text,
            "location ^~ /static/"
        );
        assert_eq!(m.document_root.as_deref(), Some("/srv/static"));
        let m = route(&c, "www.example.test", "/img/a.PNG");
        assert_eq!(
            m.route.unwrap().location.unwrap().text,
            "location ~* \\.(png|jpg)$"
        );
    }

    #[test]
    fn nested_regex_inside_prefix_and_ipv6_upstream() {
        let c = cfg(SITE);
        let m = route(&c, "www.example.test", "/api/admin/x");
        assert_eq!(m.upstreams[0].address, "[::1]:9003");
        let m = route(&c, "www.example.test", "/api/users");
        assert_eq!(m.upstreams[0].address, "127.0.0.1:9002");
        assert_eq!(m.settings["proxy_read_timeout"].value, "5s");
        assert!(m.logs.access.is_empty());
    }

    #[test]
    fn server_name_wildcards_regex_and_default() {
        let c = cfg(SITE);
        let mut notes = Vec::new();
        let (s, why) = select_server(&c, &req("x.regex.test", "/"), &mut notes).unwrap();
        assert!(s.line > 20 && matches!(why, ServerChoice::Name(n) if n.starts_with('~')));
        let (s, _) = select_server(&c, &req("example.org", "/"), &mut notes).unwrap();
        assert!(
            s.children()
                .iter()
                .any(|d| d.text() == "server_name .example.org")
        );
        // An address with an exact listen never falls to the wildcard server.
        let (_, why) = select_server(&c, &req("unknown.test", "/"), &mut notes).unwrap();
        assert_eq!(why, ServerChoice::First);
        // Another local address reaches only the wildcard listen: default_server.
        let r = Request {
            local_ip: Some("127.0.0.2".parse().unwrap()),
            ..req("www.example.test", "/")
        };
        let (s, why) = select_server(&c, &r, &mut notes).unwrap();
        assert_eq!(why, ServerChoice::Default);
        assert!(s.last("return").is_some());
    }

    #[test]
    fn variable_upstream_with_constant_set_and_https() {
        let c = cfg(SITE);
        let m = route(&c, "www.example.test", "/dyn/x");
        assert_eq!(m.upstreams[0].address, "svc.internal:8443");
        assert_eq!(m.upstreams[0].kind, "name");
        assert_eq!(m.upstreams[0].scheme, "https");
    }

    #[test]
    fn nested_if_and_map_blocks_parse() {
        let c = cfg(SITE);
        let http = c.http().unwrap();
        let map_block = http.last("map").unwrap();
        assert_eq!(map_block.children().len(), 2);
        assert_eq!(map_block.children()[1].name, "");
        let mut found = false;
        crate::discovery::directive::walk(&c.main, &mut |d, depth| {
            if d.name == "set" && d.arg(1) == Some("{ brace }") {
                found = depth == 4;
            }
        });
        assert!(found, "quoted braces inside nested if");
    }

    #[test]
    fn uri_normalisation() {
        assert_eq!(normalize_uri("/a//b/../c%2Ephp?x=1"), "/a/c.php");
        assert_eq!(normalize_uri("/a/"), "/a/");
        assert_eq!(normalize_uri("/%41%"), "/A%");
    }

    #[test]
    fn listen_forms() {
        let l =
            |s: &str| parse_listen(&s.split(' ').map(str::to_owned).collect::<Vec<_>>()).unwrap();
        assert_eq!(l("8080").port, 8080);
        assert!(l("8080").addr.is_none());
        assert_eq!(
            l("[::1]:8443 ssl default_server").addr,
            Some("::1".parse().unwrap())
        );
        assert!(l("[::1]:8443 ssl default_server").default);
        assert!(l("[::]:80").v6);
        assert_eq!(l("127.0.0.1").port, 80);
        assert_eq!(l("unix:/run/x.sock").unix.as_deref(), Some("/run/x.sock"));
    }

    // Linux only: looks up index files through `/`-separated root paths.
    #[cfg(unix)]
    #[test]
    fn index_redirects_to_the_first_index_file_that_exists() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.html"), "").unwrap();
        let text = format!(
            "http {{ server {{ listen 8080; root {}; index index.php index.html;\n location / {{ }}\n location ~ \\.php$ {{ fastcgi_pass 127.0.0.1:9000; }}\n location = /index.html {{ proxy_pass http://127.0.0.1:9001; }} }} }}",
            d.path().display()
        );
        let c = cfg(&text);
        // index.php does not exist, index.html does: that one.
        let m = route(&c, "x", "/");
        let r = m.route.unwrap();
        assert_eq!(r.location.unwrap().text, "location = /index.html");
        assert!(
            r.why
                .iter()
                .any(|w| w.contains("internal redirect to /index.html")),
            "{:?}",
            r.why
        );
        assert_eq!(m.upstreams[0].address, "127.0.0.1:9001");
        // Neither exists under /sub/: nginx answers itself (403).
        let m = route(&c, "x", "/sub/");
        assert!(m.upstreams.is_empty());
        // A root not on this machine: the first index, and the why says so.
        let c = cfg(
            "http { server { listen 8080; root /nonexistent/r; index index.php;\n location / { }\n location ~ \\.php$ { fastcgi_pass 127.0.0.1:9000; } } }",
        );
        let m = route(&c, "x", "/a/");
        assert_eq!(m.upstreams[0].address, "127.0.0.1:9000");
        assert!(
            m.route
                .unwrap()
                .why
                .iter()
                .any(|w| w.contains("files on disk decide"))
        );
        // try_files comes first: no index redirect then.
        let c = cfg(
            "http { server { listen 8080; index index.php; location / { try_files $uri @x; }\n location @x { proxy_pass http://127.0.0.1:9002; }\n location ~ \\.php$ { fastcgi_pass 127.0.0.1:9000; } } }",
        );
        assert_eq!(route(&c, "x", "/").upstreams[0].address, "127.0.0.1:9002");
    }
}
