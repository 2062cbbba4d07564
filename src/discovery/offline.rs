//! `triage502 route --config FILE URL...`: explain a configuration offline.
//!
//! No process, no network, no root: the configuration is parsed with the
//! same parsers as `map`, and the route is decided by the same functions
//! (`nginx::route::map`, `apache::route::map`, `haproxy::route`) into a
//! scratch [`ServiceMap`], so a running server's map and the offline route
//! never disagree. On top of that decision this module lists the
//! candidates that were considered and why each lost, and what depends on
//! run time (a `map` on a header, a variable, Lua, an `if`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use regex::RegexBuilder;
use serde::Serialize;

use super::directive::{Directive, walk};
use super::nginx::route::{self as nroute, Modifier};
use super::service_map::{Place, ServiceMap};
use super::source::Limits;
use super::{HostView, apache, haproxy, iis, nginx};

/// Which server's configuration language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Nginx,
    Apache,
    Haproxy,
    // IIS: `applicationHost.config` (with the sites' `web.config` files).
    Iis,
}

/// Output format of `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum RouteFormat {
    #[default]
    Text,
    Json,
}

/// Explain offline which server block / virtual host / frontend, location
/// and upstream of a configuration serve each URL, and why. Reads only the
/// configuration files: no process, no network, no root.
///
/// Exit codes: 0 every URL was routed, 1 some URL has no route (see
/// `unknown`), 2 unusable input (file, URL, flag).
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  triage502 route --config /etc/nginx/nginx.conf https://shop.example.com/api/x\n  triage502 route --config haproxy.cfg --listen 127.0.0.1:80 --header Host=app.test http://127.0.0.1/\n  triage502 route --config site.conf --format json http://a.test/ http://b.test/img.png"
)]
pub struct RouteArgs {
    /// The main configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The server whose configuration it is (detected from the file when not given).
    #[arg(long, value_enum)]
    pub server: Option<ServerKind>,
    /// The local address and port the request arrives on (default: the URL's port, any address;
    /// an IP literal in the URL is taken as the address).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// A request header, e.g. `Host=shop.example.com` (the server name) or one a map/ACL reads
    /// (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = super::cli::parse_var)]
    pub headers: Vec<(String, String)>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RouteFormat::Text)]
    pub format: RouteFormat,
    /// The URLs to explain.
    #[arg(required = true)]
    pub urls: Vec<String>,
}

/// The whole answer of `route`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RouteReport {
    /// The main configuration file.
    pub config: String,
    pub server: ServerKind,
    /// `--server`, or what in the file gave the kind away.
    pub server_source: String,
    /// Every configuration file read (includes expanded).
    pub files: Vec<String>,
    /// The configuration could not be parsed: `file:line[:col]: reason`.
    /// The server would refuse to start with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was left out so the rest could still be explained (after an
    /// `error`): each broken line blanked, or a block closed at the end of
    /// its file, `file:line: reason`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub routes: Vec<Explanation>,
}

/// A block of the configuration.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Block {
    pub file: String,
    pub line: u32,
    /// The header as written (`location ~ \.php$`, `<VirtualHost *:80>`).
    pub text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

impl From<&Place> for Block {
    fn from(p: &Place) -> Self {
        Block {
            file: p.file.clone(),
            line: p.line,
            text: p.text.clone(),
        }
    }
}

impl From<&Directive> for Block {
    fn from(d: &Directive) -> Self {
        Block {
            file: d.file.display().to_string(),
            line: d.line,
            text: d.text(),
        }
    }
}

/// A block considered for the request, and what happened to it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Candidate {
    pub block: Block,
    pub chosen: bool,
    /// Why it was chosen, or why not.
    pub verdict: String,
}

/// One address the request may be sent to.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Target {
    /// As dialled: `127.0.0.1:8080`, `unix:/run/app.sock`, `app.internal:80`.
    pub address: String,
    /// `tcp`, `unix` or `name`.
    pub kind: String,
    pub scheme: String,
    /// The `upstream {}` group / balancer / backend it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    pub backup: bool,
    pub down: bool,
    /// Every option on the server line.
    pub options: Vec<String>,
    /// `file:line`.
    pub source: String,
    /// What is known only at run time about it, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Something only a running server knows, with the alternatives.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RuntimeDependency {
    /// What depends on it (`proxy_pass http://$backend`).
    pub what: String,
    /// `file:line` of what depends on it.
    pub at: String,
    /// Why the answer is not static.
    pub reason: String,
    /// The possible outcomes, each with its condition.
    pub alternatives: Vec<Alternative>,
    /// The alternative the given request headers select, when they decide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Alternative {
    /// The condition (`$http_x_tenant ~^beta`, `default`, `if ($arg_v)`).
    pub when: String,
    /// The value or handler taken then.
    pub value: String,
    /// `file:line`.
    pub at: String,
    /// Where that value leads (resolved through `upstream {}`).
    pub targets: Vec<Target>,
}

/// The route of one URL.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Explanation {
    pub url: String,
    /// The Host the server name is matched against.
    pub host: String,
    /// The local `address:port` the request arrives on (`*:PORT`: any address).
    pub listen: String,
    pub path: String,
    /// server block / VirtualHost / frontend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_block: Option<Block>,
    pub server_candidates: Vec<Candidate>,
    /// location / `<Location>`/ProxyPass / backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Block>,
    pub location_candidates: Vec<Candidate>,
    /// The directive handing the request on (`proxy_pass`, `use_backend`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<Block>,
    /// How the route was chosen, in order.
    pub why: Vec<String>,
    /// The upstream as resolved (empty when the block answers itself).
    pub upstreams: Vec<Target>,
    pub runtime: Vec<RuntimeDependency>,
    /// What could not be decided, and why.
    pub unknown: Vec<String>,
    pub notes: Vec<String>,
}

/// Guess the configuration language from the text.
pub fn detect(text: &str) -> Option<(ServerKind, String)> {
    // IIS: an XML `<configuration>` with IIS sections.
    let head = text.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with('<') {
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            for marker in ["<system.applicationHost", "<webFarms", "<system.webServer"] {
                if l.starts_with(marker) {
                    return Some((
                        ServerKind::Iis,
                        format!("detected: IIS ({} at line {})", &marker[1..], i + 1),
                    ));
                }
            }
        }
    }
    let mut apache = None;
    let mut haproxy = None;
    let mut nginx = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let first = l.split_whitespace().next().unwrap_or("");
        let at = |what: &str| format!("{what} at line {}", i + 1);
        if apache.is_none()
            && (l.starts_with("<VirtualHost")
                || l.starts_with("<Location")
                || l.starts_with("<IfModule")
                || matches!(first, "ServerRoot" | "ProxyPass" | "ServerName" | "Listen"))
        {
            apache = Some(at(first.trim_start_matches('<').trim_end_matches('>')));
        }
        if haproxy.is_none()
            && matches!(first, "frontend" | "backend" | "defaults" | "global")
            && !l.contains('{')
            && !l.ends_with(';')
        {
            haproxy = Some(at(first));
        }
        if nginx.is_none()
            && (l.ends_with(';') || l.ends_with('{'))
            && matches!(
                first,
                "http" | "server" | "location" | "upstream" | "events" | "worker_processes"
            )
        {
            nginx = Some(at(first));
        }
    }
    // The most specific marker wins; nginx last because `server` lines are shared.
    if let Some(w) = apache {
        return Some((ServerKind::Apache, format!("detected: Apache ({w})")));
    }
    if let Some(w) = haproxy {
        return Some((ServerKind::Haproxy, format!("detected: HAProxy ({w})")));
    }
    nginx.map(|w| (ServerKind::Nginx, format!("detected: nginx ({w})")))
}

/// The request as given on the command line.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub local_ip: Option<IpAddr>,
    /// Header names lower case.
    pub headers: BTreeMap<String, String>,
}

impl Request {
    /// Build from a URL, `--listen` and `--header`s.
    pub fn new(
        url: &str,
        listen: Option<&str>,
        headers: &[(String, String)],
    ) -> Result<Request, String> {
        let (t, literal) = super::target(url).map_err(|e| e.to_string())?;
        let headers: BTreeMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let (local_ip, port) = match listen {
            Some(l) => {
                let sa: SocketAddr = l
                    .parse()
                    .map_err(|e| format!("--listen {l:?} is not ADDR:PORT: {e}"))?;
                let ip = (!sa.ip().is_unspecified()).then_some(sa.ip());
                (ip, sa.port())
            }
            None => (literal, t.port),
        };
        let host = headers.get("host").map_or(t.host.clone(), |h| {
            // A Host header may carry a port: it is not part of the name.
            match h.rsplit_once(':') {
                Some((n, p)) if p.parse::<u16>().is_ok() && !n.ends_with(']') => n.to_owned(),
                _ => h.clone(),
            }
        });
        Ok(Request {
            url: url.to_owned(),
            host,
            port,
            path: t.path,
            local_ip,
            headers,
        })
    }

    fn listen_text(&self) -> String {
        match self.local_ip {
            Some(IpAddr::V6(a)) => format!("[{a}]:{}", self.port),
            Some(a) => format!("{a}:{}", self.port),
            None => format!("*:{}", self.port),
        }
    }
}

/// A parsed configuration of any kind.
pub enum Config {
    Nginx(nginx::NginxConfig),
    Apache(Box<apache::ApacheConfig>),
    Haproxy(haproxy::parse::HaproxyConfig),
    Iis(Box<iis::IisConfig>),
}

impl Config {
    /// Parse `file` as `kind`. Relative paths resolve against the file's
    /// directory (nginx's prefix, Apache's ServerRoot).
    pub fn load(file: &Path, kind: ServerKind) -> Result<Config, super::source::ConfigError> {
        // Relative includes resolve against the main file's directory, which
        // must be absolute for that (`--config conf/nginx.conf`).
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let file = abs.as_path();
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        Ok(match kind {
            ServerKind::Nginx => Config::Nginx(nginx::parse(file, &dir, None, Limits::default())?),
            ServerKind::Apache => Config::Apache(Box::new(apache::parse_config(
                file,
                &dir,
                &[],
                BTreeMap::new(),
                Limits::default(),
            )?)),
            ServerKind::Haproxy => Config::Haproxy(haproxy::parse::parse(
                &[file.to_path_buf()],
                Limits::default(),
            )?),
            ServerKind::Iis => Config::Iis(Box::new(iis::load(file)?)),
        })
    }

    pub fn files(&self) -> Vec<String> {
        let f = match self {
            Config::Nginx(c) => &c.files,
            Config::Apache(c) => &c.files,
            Config::Haproxy(c) => &c.files,
            Config::Iis(c) => &c.files,
        };
        f.iter().map(|p| p.display().to_string()).collect()
    }
}

/// The route decision exactly as `map` makes it for a running server.
pub fn decide(cfg: &Config, req: &Request) -> ServiceMap {
    let mut m = ServiceMap {
        url: req.url.clone(),
        ..ServiceMap::default()
    };
    m.target.host.clone_from(&req.host);
    m.target.port = req.port;
    m.target.path.clone_from(&req.path);
    match cfg {
        Config::Nginx(c) => {
            let r = nroute::Request {
                host: &req.host,
                port: req.port,
                path: &req.path,
                local_ip: req.local_ip,
            };
            nroute::map(c, &r, &nroute::Defaults::default(), &mut m);
        }
        Config::Apache(c) => {
            let r = apache::route::Request {
                host: req.host.clone(),
                port: req.port,
                path: req.path.clone(),
                local_ip: req.local_ip,
            };
            apache::route::map(c, &r, None, &mut m);
        }
        Config::Haproxy(c) => {
            let r = haproxy::acl::Request {
                host: req.host.clone(),
                port: req.port,
                path: req.path.clone(),
                local_ip: req.local_ip,
            };
            // An empty host view: nothing on this machine is looked at.
            haproxy::route(c, &r, &mut m, &HostView::default());
        }
        Config::Iis(c) => {
            iis::route::map(c, &iis_request(req), &mut m);
        }
    }
    m
}

/// The request as the IIS route reads it.
fn iis_request(req: &Request) -> iis::route::Request {
    iis::route::Request {
        scheme: if req.url.starts_with("https://") {
            "https".into()
        } else {
            "http".into()
        },
        host: req.host.clone(),
        port: req.port,
        path: req.path.clone(),
        local_ip: req.local_ip,
        headers: req.headers.clone(),
    }
}

/// IIS: every binding and every rewrite rule considered.
fn iis_detail(c: &iis::IisConfig, req: &Request, e: &mut Explanation) {
    let d = iis::route::decide(c, &iis_request(req));
    let block = |p: &Place| Block::from(p);
    e.server_candidates = d
        .site_candidates
        .iter()
        .map(|k| Candidate {
            block: block(&k.at),
            chosen: k.chosen,
            verdict: k.verdict.clone(),
        })
        .collect();
    e.location_candidates = d
        .rule_candidates
        .iter()
        .map(|k| Candidate {
            block: block(&k.at),
            chosen: k.chosen,
            verdict: k.verdict.clone(),
        })
        .collect();
}

/// `map URL --var front.config=FILE` when nothing on this host listens at
/// the URL: the route read from that file, exactly as `route` gives it
/// (the server's kind from `front.kind`, else detected from the file).
pub fn map_from_config(map: &mut ServiceMap, overrides: &BTreeMap<String, String>) {
    // On Windows nothing is seen of the running server (no /proc): IIS's own configuration is
    // where the route is, unless another was named.
    let platform_default;
    let file = match overrides.get("front.config") {
        Some(f) => f,
        None => match crate::platform::default_front_config() {
            Some(p) => {
                platform_default = p.display().to_string();
                map.sources.insert(
                    "front.config".into(),
                    "the platform's web server configuration (IIS's applicationHost.config)".into(),
                );
                &platform_default
            }
            None => return,
        },
    };
    let path = Path::new(file);
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            map.unknown("route", format!("front.config {file}: {e}"));
            return;
        }
    };
    let kind = overrides
        .get("front.kind")
        .and_then(|k| ServerKind::from_str(k, true).ok())
        .or_else(|| detect(&text).map(|d| d.0));
    let Some(kind) = kind else {
        map.unknown(
            "route",
            format!("front.config {file}: not an nginx, Apache, HAProxy or IIS configuration (give front.kind)"),
        );
        return;
    };
    let cfg = match Config::load(path, kind) {
        Ok(c) => c,
        Err(e) => {
            map.unknown("route", format!("front.config {file} does not parse: {e}"));
            return;
        }
    };
    let Ok(req) = Request::new(&map.url, None, &[]) else {
        return;
    };
    let m = decide(&cfg, &req);
    if kind == ServerKind::Iis {
        // The configuration says what the front is (`front.kind` = iis),
        // where it logs and how its farm is set up.
        map.unknown.retain(|u| u.fact != "front.kind");
        map.logs = m.logs.clone();
        map.settings.extend(m.settings.clone());
        if map.document_root.is_none() {
            map.document_root.clone_from(&m.document_root);
        }
        for n in &m.notes {
            map.note(n.clone());
        }
        for u in &m.unknown {
            map.unknown(&u.fact, u.reason.clone());
        }
    }
    map.route = m.route;
    map.upstreams = m.upstreams;
    map.evidence.extend(m.evidence);
    map.note(format!(
        "nothing listens at the URL here: the route and upstreams are read from front.config {file} as `triage502 route --config {file}` gives them"
    ));
}

fn target_of(u: &super::service_map::Upstream) -> Target {
    let weight = u
        .options
        .iter()
        .find_map(|o| {
            o.strip_prefix("weight=")
                .or_else(|| o.strip_prefix("weight "))
        })
        .and_then(|w| w.parse().ok())
        .or_else(|| {
            // HAProxy writes `weight 10` as two words.
            u.options
                .iter()
                .position(|o| o == "weight")
                .and_then(|i| u.options.get(i + 1))
                .and_then(|w| w.parse().ok())
        });
    Target {
        address: u.address.clone(),
        kind: u.kind.clone(),
        scheme: u.scheme.clone(),
        group: u.group.clone(),
        weight,
        backup: u.backup,
        down: u.options.iter().any(|o| o == "down" || o == "disabled"),
        options: u.options.clone(),
        source: u.source.clone(),
        note: u.listener_note.clone(),
    }
}

/// Explain one request.
pub fn explain(cfg: &Config, req: &Request) -> Explanation {
    // nginx: without --listen, a request arrives on an address no server
    // names explicitly (the wildcard listens); the explicit addresses are
    // alternatives shown below.
    let (explicit, wildcard) = match cfg {
        Config::Nginx(c) if req.local_ip.is_none() => nginx_listen_addresses(c, req.port),
        _ => (Vec::new(), false),
    };
    let effective = if !explicit.is_empty() && wildcard {
        Request {
            local_ip: Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            ..req.clone()
        }
    } else {
        req.clone()
    };
    let req = &effective;
    let m = decide(cfg, req);
    let route = m.route.clone().unwrap_or_default();
    let mut e = Explanation {
        url: req.url.clone(),
        host: req.host.clone(),
        listen: req.listen_text(),
        path: req.path.clone(),
        server_block: route.server_block.as_ref().map(Block::from),
        server_candidates: Vec::new(),
        location: route.location.as_ref().map(Block::from),
        location_candidates: Vec::new(),
        handler: route.handler.as_ref().map(Block::from),
        why: route.why.clone(),
        upstreams: m.upstreams.iter().map(target_of).collect(),
        runtime: Vec::new(),
        unknown: m
            .unknown
            .iter()
            .map(|u| format!("{}: {}", u.fact, u.reason))
            .collect(),
        notes: m.notes.clone(),
    };
    match cfg {
        Config::Nginx(c) => nginx_detail(c, req, &m, &mut e),
        Config::Apache(c) => apache_detail(c, req, &mut e),
        Config::Haproxy(c) => haproxy_detail(c, req, &mut e),
        Config::Iis(c) => iis_detail(c, req, &mut e),
    }
    env_dependencies(&mut e);
    if req.local_ip.is_some_and(|ip| ip.is_unspecified()) {
        e.listen = format!("*:{} (an address no server lists explicitly)", req.port);
    }
    if !explicit.is_empty() {
        let mut alternatives = Vec::new();
        for ip in &explicit {
            let r = Request {
                local_ip: Some(*ip),
                ..req.clone()
            };
            let alt = decide(cfg, &r);
            let route = alt.route.clone().unwrap_or_default();
            alternatives.push(Alternative {
                when: format!("arriving on {}", r.listen_text()),
                value: route.server_block.as_ref().map_or_else(
                    || "no server block".to_owned(),
                    |b| format!("{} ({})", b.text, b.at()),
                ),
                at: route.location.as_ref().map_or_else(String::new, Place::at),
                targets: alt.upstreams.iter().map(target_of).collect(),
            });
        }
        e.runtime.push(RuntimeDependency {
            what: format!("listen on port {}", req.port),
            at: String::new(),
            reason: "server blocks listen on specific addresses of this port: which one the connection arrives on decides the candidates (give --listen ADDR:PORT)".into(),
            alternatives,
            selected: None,
        });
    }
    e
}

/// Upstream addresses that still hold a `${VAR}` (Apache: neither
/// `Define`d nor in the environment given; HAProxy: not in the environment
/// this tool runs with): the server's environment at start-up decides.
fn env_dependencies(e: &mut Explanation) {
    let mut seen: Vec<String> = Vec::new();
    for t in &e.upstreams {
        let mut rest = t.address.as_str();
        while let Some(i) = rest.find("${") {
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else { break };
            let name = after[..end].to_owned();
            rest = &after[end + 1..];
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            e.runtime.push(RuntimeDependency {
                what: format!("environment variable ${{{name}}}"),
                at: t.source.clone(),
                reason: format!(
                    "${{{name}}} is not defined in the configuration: the server substitutes it from its own environment when it starts (an unset variable becomes an empty string), so the address is {} with whatever value it has there",
                    t.address
                ),
                alternatives: vec![
                    Alternative {
                        when: format!("${{{name}}} set in the server's environment"),
                        value: t.address.clone(),
                        at: t.source.clone(),
                        targets: vec![t.clone()],
                    },
                    Alternative {
                        when: format!("${{{name}}} unset"),
                        value: t.address.replace(&format!("${{{name}}}"), ""),
                        at: t.source.clone(),
                        targets: Vec::new(),
                    },
                ],
                selected: None,
            });
        }
    }
}

/// Does a `<VirtualHost>` / `bind` address take connections on `port`
/// (any local address: the address itself is checked by the route code)?
fn address_on_port(arg: &str, port: u16) -> bool {
    match arg.rsplit_once(':') {
        Some((_, p)) if !p.contains(']') => p == "*" || p.parse::<u16>() == Ok(port),
        _ => arg.starts_with('*') || arg.starts_with("_default_") || port == 80,
    }
}

/// Apache: the virtual hosts and the server-level `ProxyPass` rules
/// considered (first match in configuration order wins).
fn apache_detail(c: &apache::ApacheConfig, req: &Request, e: &mut Explanation) {
    let host = req.host.to_ascii_lowercase();
    let mut earlier_match = false;
    for v in c
        .main
        .iter()
        .filter(|d| d.is("VirtualHost") && d.block.is_some())
    {
        let chosen = same(v, e.server_block.as_ref());
        let names: Vec<String> = v
            .all("ServerName")
            .chain(v.all("ServerAlias"))
            .flat_map(|d| d.args.iter().cloned())
            .collect();
        let on_port = v.args.iter().any(|a| address_on_port(a, req.port));
        let name_hit = names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            let n = n.split_once("://").map_or(n.as_str(), |x| x.1);
            let n = n.split(':').next().unwrap_or(n);
            n == host || (super::glob::is_pattern(n) && super::glob::matches(n, &host))
        });
        let verdict = if chosen {
            e.why.first().cloned().unwrap_or_else(|| "chosen".into())
        } else if !on_port {
            format!(
                "its address ({}) is not port {}",
                v.args.join(" "),
                req.port
            )
        } else if name_hit && earlier_match {
            "its name matches too, but an earlier virtual host in the file matched first".into()
        } else if name_hit {
            "its name matches, but it is on another address of the port".into()
        } else {
            format!(
                "ServerName/ServerAlias ({}) do not match {host}",
                names.join(" ")
            )
        };
        earlier_match |= chosen && name_hit;
        e.server_candidates.push(Candidate {
            block: Block {
                text: format!("<VirtualHost {}> ({})", v.args.join(" "), names.join(" ")),
                ..Block::from(v)
            },
            chosen,
            verdict,
        });
    }
    let Some(vhost) = c
        .main
        .iter()
        .find(|d| d.is("VirtualHost") && same(d, e.server_block.as_ref()))
    else {
        return;
    };
    apache_if_alternatives(vhost, e);
    let path = req.path.split('?').next().unwrap_or("/").to_owned();
    let mut decided = false;
    for d in vhost
        .children()
        .iter()
        .filter(|d| d.is("ProxyPass") || d.is("ProxyPassMatch"))
    {
        let (Some(pat), Some(url)) = (d.arg(0), d.arg(1)) else {
            continue;
        };
        let chosen = same(d, e.location.as_ref());
        let hit = if d.is("ProxyPass") {
            path.starts_with(pat)
        } else {
            regex::Regex::new(pat).is_ok_and(|r| r.is_match(&path))
        };
        let verdict = match (decided, hit) {
            (true, _) => "not checked: an earlier rule in the file matched first".to_owned(),
            (false, true) if url == "!" => {
                format!("{pat} matches and excludes the path from proxying (`!`)")
            }
            (false, true) => format!("first rule in configuration order that matches {path}"),
            (false, false) => format!("{pat} does not match {path}"),
        };
        decided |= hit;
        e.location_candidates.push(Candidate {
            block: Block::from(d),
            chosen,
            verdict,
        });
    }
    if let Some(l) = &e.location
        && let Some(c) = e.location_candidates.iter().find(|c| c.chosen)
    {
        e.why
            .push(format!("{} ({}): {}", l.text, l.at(), c.verdict));
    } else if let Some(c) = e
        .location_candidates
        .iter()
        .find(|c| c.verdict.contains("excludes"))
    {
        e.why.push(format!(
            "{} ({}): {}",
            c.block.text,
            c.block.at(),
            c.verdict
        ));
    }
}

/// Where a proxy URL written in a handler leads (`unix:/sock|fcgi://…`,
/// `http://host:port/…`).
fn url_target(url: &str, at: &str) -> Target {
    let (address, kind, scheme) = if let Some(rest) = url.strip_prefix("unix:") {
        let (sock, inner) = rest.split_once('|').unwrap_or((rest, "http://"));
        (
            format!("unix:{sock}"),
            "unix",
            inner.split("://").next().unwrap_or("http").to_owned(),
        )
    } else {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let hostport = rest.split('/').next().unwrap_or(rest).to_owned();
        let kind = if hostport
            .rsplit_once(':')
            .map_or(hostport.as_str(), |x| x.0)
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok()
        {
            "tcp"
        } else {
            "name"
        };
        (hostport, kind, scheme.to_owned())
    };
    Target {
        address,
        kind: kind.into(),
        scheme,
        group: None,
        weight: None,
        backup: false,
        down: false,
        options: Vec::new(),
        source: at.to_owned(),
        note: None,
    }
}

/// Apache `<If>`/`<ElseIf>`/`<Else>` sections that set a proxy handler:
/// decided per request at run time, so each is an alternative, with the
/// handler chosen without them as the otherwise-case.
fn apache_if_alternatives(vhost: &Directive, e: &mut Explanation) {
    let mut alternatives = Vec::new();
    let mut first_at = String::new();
    walk(vhost.children(), &mut |d, _| {
        if !(d.is("If") || d.is("ElseIf") || d.is("Else")) {
            return;
        }
        let url = d.children().iter().find_map(|c| {
            if c.is("SetHandler") {
                c.arg(0)
                    .and_then(|a| a.strip_prefix("proxy:"))
                    .map(str::to_owned)
            } else if c.is("ProxyPass") || c.is("ProxyPassMatch") {
                c.arg(1).or(c.arg(0)).map(str::to_owned)
            } else {
                None
            }
        });
        if let Some(url) = url {
            if first_at.is_empty() {
                first_at = d.at();
            }
            alternatives.push(Alternative {
                when: format!("<{} {}> holds", d.name, d.args.join(" ")),
                value: url.clone(),
                at: d.at(),
                targets: vec![url_target(&url, &d.at())],
            });
        }
    });
    if alternatives.is_empty() {
        return;
    }
    alternatives.push(Alternative {
        when: "no condition holds".into(),
        value: e.handler.as_ref().map_or_else(
            || "httpd serves the path itself".to_owned(),
            |h| h.text.clone(),
        ),
        at: e.handler.as_ref().map_or_else(String::new, Block::at),
        targets: e.upstreams.clone(),
    });
    e.runtime.push(RuntimeDependency {
        what: "<If> sections setting a handler".into(),
        at: first_at,
        reason: "an <If> expression is evaluated per request (headers, variables, environment): each condition's handler is an alternative".into(),
        alternatives,
        selected: None,
    });
}

/// HAProxy: the frontends binding the port and each `use_backend` rule
/// evaluated in order.
fn haproxy_detail(c: &haproxy::parse::HaproxyConfig, req: &Request, e: &mut Explanation) {
    for f in c
        .sections
        .iter()
        .filter(|s| s.is("frontend") || s.is("listen"))
    {
        let chosen = same(f, e.server_block.as_ref());
        let binds: Vec<String> = f
            .all("bind")
            .filter_map(|b| b.arg(0))
            .map(str::to_owned)
            .collect();
        let verdict = if chosen {
            format!("binds {}", binds.join(" "))
        } else if binds.iter().any(|b| address_on_port(b, req.port)) {
            format!(
                "binds the port too ({}), on an address that ranks lower or comes later",
                binds.join(" ")
            )
        } else {
            format!("does not bind {} ({})", req.listen_text(), binds.join(" "))
        };
        e.server_candidates.push(Candidate {
            block: Block::from(f),
            chosen,
            verdict,
        });
    }
    let Some(fe) = c.sections.iter().find(|s| same(s, e.server_block.as_ref())) else {
        return;
    };
    let acls = haproxy::acl::Acls::of(fe);
    let areq = haproxy::acl::Request {
        host: req.host.clone(),
        port: req.port,
        path: req.path.clone(),
        local_ip: req.local_ip,
    };
    let mut decided = false;
    let mut unevaluated: Vec<(&Directive, String)> = Vec::new();
    for d in fe
        .children()
        .iter()
        .filter(|d| d.is("use_backend") || d.is("default_backend"))
    {
        let chosen = same(d, e.handler.as_ref());
        let verdict = if d.is("default_backend") {
            if decided {
                "not used: a use_backend rule matched".to_owned()
            } else {
                "no use_backend rule matched: the default".to_owned()
            }
        } else if decided {
            "not checked: an earlier use_backend matched".to_owned()
        } else {
            match haproxy::acl::condition(&d.args[1..], &acls, &areq) {
                Ok(true) => {
                    decided = true;
                    "its condition holds: first use_backend that matches".into()
                }
                Ok(false) => "its condition does not hold".into(),
                Err(why) => {
                    unevaluated.push((d, why.clone()));
                    format!("not evaluated offline ({why}): depends on run time")
                }
            }
        };
        e.location_candidates.push(Candidate {
            block: Block::from(d),
            chosen,
            verdict,
        });
    }
    for (d, why) in unevaluated {
        let name = d.arg(0).unwrap_or("");
        let targets = c
            .sections
            .iter()
            .find(|s| s.is("backend") && s.arg(0) == Some(name))
            .map(|_| {
                let mut m = ServiceMap::default();
                // The same backend-server code as the route: a scratch
                // frontend whose default is this backend.
                let mut children: Vec<Directive> = fe.all("bind").cloned().collect();
                children.push(Directive {
                    name: "default_backend".into(),
                    args: vec![name.to_owned()],
                    block: None,
                    ..d.clone()
                });
                let fake = Directive {
                    block: Some(children),
                    ..fe.clone()
                };
                let mut sections = vec![fake];
                sections.extend(
                    c.sections
                        .iter()
                        .filter(|s| !s.is("frontend") && !s.is("listen"))
                        .cloned(),
                );
                let cfg2 = haproxy::parse::HaproxyConfig {
                    sections,
                    files: c.files.clone(),
                };
                haproxy::route(&cfg2, &areq, &mut m, &HostView::default());
                m.upstreams.iter().map(target_of).collect::<Vec<_>>()
            })
            .unwrap_or_default();
        e.runtime.push(RuntimeDependency {
            what: d.text(),
            at: d.at(),
            reason: format!(
                "the condition cannot be decided from the URL ({why}): taken as not holding above"
            ),
            alternatives: vec![
                Alternative {
                    when: "the condition holds".into(),
                    value: format!("backend {name}"),
                    at: d.at(),
                    targets,
                },
                Alternative {
                    when: "it does not".into(),
                    value: e
                        .location
                        .as_ref()
                        .map_or_else(|| "no backend".into(), |b| b.text.clone()),
                    at: e.location.as_ref().map_or_else(String::new, Block::at),
                    targets: e.upstreams.clone(),
                },
            ],
            selected: None,
        });
    }
    if let Some(h) = &e.handler
        && let Some(d) = fe
            .children()
            .iter()
            .find(|d| d.line == h.line && d.is("use_backend"))
        && let Some(name) = d.arg(0)
        && name.contains("%[")
    {
        e.runtime.push(dynamic_backend(c, d, name));
    }
    if e.why.is_empty() {
        e.why
            .push(format!("{} binds {}", fe.text(), req.listen_text()));
    }
    if e.handler.is_none() && !fe.is("listen") {
        e.why.push(
            "no use_backend matches and there is no default_backend: HAProxy answers 503 itself"
                .into(),
        );
    }
}

/// `use_backend %[...]`: the backend is named at run time; every backend
/// is an alternative (the map's default marked).
fn dynamic_backend(
    c: &haproxy::parse::HaproxyConfig,
    d: &Directive,
    name: &str,
) -> RuntimeDependency {
    let default = name
        .split_once("map")
        .and_then(|(_, rest)| rest.split_once(','))
        .and_then(|(_, rest)| rest.split([')', ']']).next())
        .map(str::to_owned);
    let mut alternatives = Vec::new();
    for be in c.sections.iter().filter(|s| s.is("backend")) {
        let Some(bn) = be.arg(0) else { continue };
        let targets = be
            .all("server")
            .filter_map(|s| {
                let addr = s.arg(1)?;
                let options: Vec<String> = s.args.get(2..).unwrap_or_default().to_vec();
                let (address, kind) = if addr.starts_with('/') || addr.starts_with("unix@") {
                    (format!("unix:{}", addr.trim_start_matches("unix@")), "unix")
                } else {
                    (addr.to_owned(), "tcp")
                };
                Some(target_of(&super::service_map::Upstream {
                    address,
                    kind: kind.into(),
                    scheme: "http".into(),
                    group: Some(bn.to_owned()),
                    backup: options.iter().any(|o| o == "backup"),
                    options,
                    source: s.at(),
                    ..Default::default()
                }))
            })
            .collect();
        alternatives.push(Alternative {
            when: if default.as_deref() == Some(bn) {
                format!("the expression yields {bn} (also the map's default)")
            } else {
                format!("the expression yields {bn}")
            },
            value: format!("backend {bn}"),
            at: be.at(),
            targets,
        });
    }
    RuntimeDependency {
        what: d.text(),
        at: d.at(),
        reason: "the backend name is computed at run time (a sample expression, often a map file lookup): any backend can be the answer".into(),
        alternatives,
        selected: None,
    }
}

/// The explicit addresses nginx listens on at `port`, and whether a
/// wildcard listen exists there too.
fn nginx_listen_addresses(c: &nginx::NginxConfig, port: u16) -> (Vec<IpAddr>, bool) {
    let mut explicit = Vec::new();
    let mut wildcard = false;
    let Some(http) = c.http() else {
        return (explicit, wildcard);
    };
    for s in http.all("server").filter(|d| d.block.is_some()) {
        let mut any = false;
        for l in s
            .all("listen")
            .filter_map(|d| nroute::parse_listen(&d.args))
        {
            any = true;
            if l.unix.is_some() || l.port != port {
                continue;
            }
            match l.addr {
                Some(a) if !explicit.contains(&a) => explicit.push(a),
                Some(_) => {}
                None => wildcard |= !l.v6,
            }
        }
        if !any && port == 80 {
            wildcard = true;
        }
    }
    (explicit, wildcard)
}

fn same(d: &Directive, b: Option<&Block>) -> bool {
    b.is_some_and(|b| b.line == d.line && b.file == d.file.display().to_string())
}

/// nginx: the candidates considered and what depends on run time.
fn nginx_detail(c: &nginx::NginxConfig, req: &Request, m: &ServiceMap, e: &mut Explanation) {
    let Some(http) = c.http() else { return };
    // Servers: which listen on the port, and their names.
    for s in http.all("server").filter(|d| d.block.is_some()) {
        let listens: Vec<nroute::Listen> = {
            let found: Vec<_> = s
                .all("listen")
                .filter_map(|d| nroute::parse_listen(&d.args))
                .collect();
            if found.is_empty() && s.last("listen").is_none() {
                vec![nroute::Listen {
                    addr: None,
                    port: 80,
                    v6: false,
                    unix: None,
                    default: false,
                }]
            } else {
                found
            }
        };
        let on_port = listens.iter().any(|l| {
            l.unix.is_none()
                && l.port == req.port
                && match (l.addr, req.local_ip) {
                    (Some(a), Some(ip)) => a == ip,
                    (None, Some(ip)) => ip.is_ipv6() == l.v6,
                    (_, None) => true,
                }
        });
        let names: Vec<String> = s
            .all("server_name")
            .flat_map(|d| d.args.iter().cloned())
            .collect();
        let chosen = same(s, e.server_block.as_ref());
        let verdict = if chosen {
            e.why.first().cloned().unwrap_or_else(|| "chosen".into())
        } else if !on_port {
            format!(
                "does not listen on {} ({})",
                req.listen_text(),
                s.all("listen")
                    .map(|d| d.args.join(" "))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "listens on the address, but server_name {} loses to the chosen block",
                if names.is_empty() {
                    "\"\"".to_owned()
                } else {
                    names.join(" ")
                }
            )
        };
        e.server_candidates.push(Candidate {
            block: Block {
                text: format!("server (server_name {})", names.join(" ")),
                ..Block::from(s)
            },
            chosen,
            verdict,
        });
    }
    // Locations of the chosen server (and those nested in a matching prefix).
    let Some(server) = http
        .all("server")
        .find(|s| same(s, e.server_block.as_ref()))
    else {
        return;
    };
    // After a try_files fall-through to a URI, the locations were matched
    // again for that URI.
    // (The index module's internal redirect likewise.)
    let fallback = e.why.iter().rev().find_map(|w| {
        w.starts_with("try_files at ")
            .then(|| w.rsplit_once(" falls back to ").map(|x| x.1.to_owned()))
            .flatten()
            .or_else(|| {
                w.split_once("internal redirect to ")
                    .and_then(|x| x.1.split_whitespace().next())
                    .map(str::to_owned)
            })
            .filter(|t| t.starts_with('/'))
    });
    let uri = nroute::normalize_uri(fallback.as_deref().unwrap_or(&req.path));
    let mut stop: Option<String> = None;
    location_candidates(server, &uri, e, &mut stop, 0);
    if let Some(loc) = &e.location {
        let why = e
            .location_candidates
            .iter()
            .find(|c| c.chosen)
            .map(|c| c.verdict.clone());
        let fell = e.why.iter().any(|w| w.contains("try_files"));
        match why {
            Some(w) => e.why.push(format!("{} ({}): {w}", loc.text, loc.at())),
            None if fell => e.why.push(format!(
                "{} ({}) reached through try_files",
                loc.text,
                loc.at()
            )),
            None => {}
        }
    }
    nginx_runtime(c, http, server, req, m, e);
}

/// List the locations of `block` with a verdict each; recurse into the
/// matching prefix as nginx does.
fn location_candidates(
    block: &Directive,
    uri: &str,
    e: &mut Explanation,
    stop: &mut Option<String>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    let locs: Vec<(&Directive, Modifier, String)> = block
        .all("location")
        .filter(|d| d.block.is_some())
        .filter_map(|d| nroute::location_pattern(d).map(|(m, p)| (d, m, p)))
        .collect();
    let exact = locs
        .iter()
        .any(|(_, m, p)| *m == Modifier::Exact && p == uri);
    let longest = locs
        .iter()
        .filter(|(_, m, p)| matches!(m, Modifier::Prefix | Modifier::NoRegex) && uri.starts_with(p))
        .max_by_key(|(_, _, p)| p.len())
        .map(|(d, m, p)| (d.line, m.clone(), p.len()));
    if exact {
        stop.get_or_insert("an exact `=` location matched".into());
    } else if let Some((_, Modifier::NoRegex, _)) = &longest {
        stop.get_or_insert("the longest matching prefix is `^~`".into());
    }
    let mut regex_hit = false;
    let mut recurse: Option<&Directive> = None;
    for (d, m, p) in &locs {
        let chosen = same(d, e.location.as_ref());
        let verdict = match m {
            Modifier::Exact if p == uri => {
                "exact match `=`: wins outright, nothing else is checked".to_owned()
            }
            Modifier::Exact => format!("exact `= {p}` is not {uri}"),
            Modifier::Named => {
                "named location: reached only by try_files/error_page/internal redirects".into()
            }
            Modifier::Prefix | Modifier::NoRegex if uri.starts_with(p.as_str()) => {
                let longest_here = longest.as_ref().is_some_and(|l| l.0 == d.line);
                if longest_here {
                    recurse = Some(d);
                    if *m == Modifier::NoRegex {
                        format!(
                            "longest matching prefix ({} chars) and `^~`: regexes are not checked",
                            p.len()
                        )
                    } else {
                        format!(
                            "longest matching prefix ({} chars), remembered; used only if no regex matches",
                            p.len()
                        )
                    }
                } else {
                    format!(
                        "prefix matches but is shorter ({} chars) than the longest match",
                        p.len()
                    )
                }
            }
            Modifier::Prefix | Modifier::NoRegex => format!("prefix {p} does not match"),
            Modifier::Regex { case_insensitive } => {
                if let Some(why) = stop.as_ref() {
                    format!("regex not checked: {why}")
                } else if regex_hit {
                    "regex not checked: an earlier regex in order already matched".into()
                } else {
                    match RegexBuilder::new(p)
                        .case_insensitive(*case_insensitive)
                        .size_limit(1 << 20)
                        .build()
                    {
                        Ok(re) if re.is_match(uri) => {
                            regex_hit = true;
                            format!(
                                "first regex in order that matches{}: regexes beat prefixes",
                                if *case_insensitive {
                                    " (case-insensitive)"
                                } else {
                                    ""
                                }
                            )
                        }
                        Ok(_) => "regex does not match".into(),
                        Err(err) => format!("regex cannot be evaluated: {err}"),
                    }
                }
            }
        };
        let verdict = if chosen
            || !matches!(m, Modifier::Prefix | Modifier::NoRegex)
            || !verdict.starts_with("longest")
        {
            verdict
        } else {
            format!("{verdict}; a nested location or a regex was taken instead")
        };
        e.location_candidates.push(Candidate {
            block: Block::from(*d),
            chosen,
            verdict,
        });
    }
    if !exact && let Some(d) = recurse {
        location_candidates(d, uri, e, stop, depth + 1);
    }
}

/// Variables in a `*_pass` argument, Lua handlers and conditional passes.
fn nginx_runtime(
    c: &nginx::NginxConfig,
    http: &Directive,
    server: &Directive,
    req: &Request,
    m: &ServiceMap,
    e: &mut Explanation,
) {
    let chain: Vec<&Directive> = e
        .location
        .as_ref()
        .and_then(|b| find_block(server, b))
        .into_iter()
        .collect();
    let levels: Vec<&Directive> = chain.iter().copied().chain([server, http]).collect();
    if let Some(h) = &e.handler {
        let handler = chain.first().and_then(|l| {
            l.children()
                .iter()
                .find(|d| d.line == h.line && d.file.display().to_string() == h.file)
        });
        if let Some(d) = handler
            && let Some(arg) = d.arg(0)
            && arg.contains('$')
            && m.upstreams.iter().any(|u| u.address.contains('$'))
        {
            for var in variables(arg) {
                e.runtime
                    .push(variable_dependency(c, http, &levels, d, &var, req));
            }
        }
    }
    if let Some(tf) = e
        .why
        .iter()
        .find(|w| w.starts_with("try_files at "))
        .cloned()
    {
        e.runtime.push(RuntimeDependency {
            what: "try_files".into(),
            at: tf
                .trim_start_matches("try_files at ")
                .split(' ')
                .next()
                .unwrap_or("")
                .to_owned(),
            reason: "the earlier try_files candidates are served when those files exist under the root: the fall-through shown is what happens when they do not".into(),
            alternatives: Vec::new(),
            selected: None,
        });
    }
    for loc in &chain {
        for d in loc.children() {
            if d.name.contains("_by_lua") {
                e.runtime.push(RuntimeDependency {
                    what: d.name.clone(),
                    at: d.at(),
                    reason: "a Lua handler decides at run time; the static route below may be overridden".into(),
                    alternatives: Vec::new(),
                    selected: None,
                });
            }
            if d.is("if") {
                for p in d
                    .children()
                    .iter()
                    .filter(|x| x.name.ends_with("_pass") || x.is("return") || x.is("rewrite"))
                {
                    let mut alt = Alternative {
                        when: format!("if {}", d.args.join(" ")),
                        value: p.text(),
                        at: p.at(),
                        targets: Vec::new(),
                    };
                    if p.name.ends_with("_pass") {
                        alt.targets = resolve_value(http, &levels, p, p.arg(0).unwrap_or(""));
                    }
                    e.runtime.push(RuntimeDependency {
                        what: format!("if {}", d.args.join(" ")),
                        at: d.at(),
                        reason: "a condition on the request evaluated at run time".into(),
                        alternatives: vec![
                            alt,
                            Alternative {
                                when: "otherwise".into(),
                                value: e.handler.as_ref().map_or_else(
                                    || "the location's own content".to_owned(),
                                    |h| h.text.clone(),
                                ),
                                at: e.handler.as_ref().map_or_else(String::new, Block::at),
                                targets: e.upstreams.clone(),
                            },
                        ],
                        selected: None,
                    });
                }
            }
        }
    }
}

fn find_block<'a>(server: &'a Directive, b: &Block) -> Option<&'a Directive> {
    let mut found = None;
    super::directive::walk(server.children(), &mut |d, _| {
        if found.is_none()
            && d.block.is_some()
            && d.line == b.line
            && d.file.display().to_string() == b.file
        {
            found = Some(d);
        }
    });
    found
}

/// `$name` / `${name}` occurrences.
fn variables(text: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        let (name, len) = if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').unwrap_or(r.len());
            (&r[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if !name.is_empty() && !v.iter().any(|x: &String| x == name) {
            v.push(name.to_owned());
        }
        rest = &after[len.min(after.len())..];
    }
    v
}

/// Where a value leads: through a scratch map of the same `upstreams` code.
fn resolve_value(
    http: &Directive,
    levels: &[&Directive],
    pass: &Directive,
    value: &str,
) -> Vec<Target> {
    let scheme = match pass.name.as_str() {
        "fastcgi_pass" => "fastcgi",
        "uwsgi_pass" => "uwsgi",
        "scgi_pass" => "scgi",
        "grpc_pass" => "grpc",
        _ => "http",
    };
    let d = Directive {
        args: vec![value.to_owned()],
        ..pass.clone()
    };
    let mut m = ServiceMap::default();
    nroute::upstreams(http, levels, &d, scheme, &mut m);
    m.upstreams.iter().map(target_of).collect()
}

/// The value of a request variable nginx derives from the request itself.
fn request_variable(name: &str, req: &Request) -> Option<String> {
    if let Some(h) = name.strip_prefix("http_") {
        return req
            .headers
            .get(&h.replace('_', "-"))
            .cloned()
            .or_else(|| (h == "host").then(|| req.host.clone()));
    }
    match name {
        "host" | "server_name" => Some(req.host.clone()),
        "uri" | "document_uri" => Some(nroute::normalize_uri(&req.path)),
        "request_uri" => Some(req.path.clone()),
        "server_port" => Some(req.port.to_string()),
        _ => None,
    }
}

fn variable_dependency(
    c: &nginx::NginxConfig,
    http: &Directive,
    levels: &[&Directive],
    pass: &Directive,
    var: &str,
    req: &Request,
) -> RuntimeDependency {
    let _ = c;
    let arg = pass.arg(0).unwrap_or("");
    let map_block = http
        .all("map")
        .find(|d| d.block.is_some() && d.arg(1) == Some(&format!("${var}")));
    let Some(mb) = map_block else {
        let reason = if let Some(v) = request_variable(var, req) {
            format!("${var} comes from the request (here {v:?})")
        } else if var.starts_with("http_") {
            format!("${var} is a request header: give it with --header to decide")
        } else {
            format!("${var} is set at run time (not a `map`, no constant `set` in scope)")
        };
        let selected = request_variable(var, req).map(|v| arg.replace(&format!("${var}"), &v));
        return RuntimeDependency {
            what: pass.text(),
            at: pass.at(),
            reason,
            alternatives: Vec::new(),
            selected,
        };
    };
    let source = mb.arg(0).unwrap_or("").to_owned();
    let src_name = source.trim_start_matches('$');
    let value = request_variable(src_name.trim_matches(['{', '}']), req);
    let mut alternatives = Vec::new();
    let mut selected = None;
    let mut regex_hit = None;
    let mut default = None;
    for entry in mb.children() {
        let key = entry.name.clone();
        let Some(val) = entry.arg(0) else { continue };
        if matches!(key.as_str(), "hostnames" | "volatile" | "include") {
            continue;
        }
        let full = arg
            .replace(&format!("${var}"), val)
            .replace(&format!("${{{var}}}"), val);
        let targets = if full.contains('$') {
            Vec::new()
        } else {
            resolve_value(http, levels, pass, &full)
        };
        let when = if key == "default" {
            "default".to_owned()
        } else {
            format!("{source} {}", super::directive::quote(&key))
        };
        // nginx tries the exact keys first, then the regexes in order.
        if key == "default" {
            default = Some(full.clone());
        } else if let Some(v) = &value {
            let is_regex = key.starts_with('~');
            let hit = if let Some(re) = key.strip_prefix("~*") {
                RegexBuilder::new(re)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .is_ok_and(|r| r.is_match(v))
            } else if let Some(re) = key.strip_prefix('~') {
                RegexBuilder::new(re)
                    .size_limit(1 << 20)
                    .build()
                    .is_ok_and(|r| r.is_match(v))
            } else {
                key.strip_prefix('\\').unwrap_or(&key) == v
            };
            if hit && !is_regex && selected.is_none() {
                selected = Some(format!("{full} ({when})"));
            } else if hit && is_regex && regex_hit.is_none() {
                regex_hit = Some(format!("{full} ({when})"));
            }
        }
        alternatives.push(Alternative {
            when,
            value: full,
            at: entry.at(),
            targets,
        });
    }
    if selected.is_none() {
        selected = regex_hit;
    }
    if selected.is_none() && value.is_some() {
        selected = default.map(|d| format!("{d} (default)"));
    }
    RuntimeDependency {
        what: pass.text(),
        at: pass.at(),
        reason: format!(
            "${var} comes from `map {source} ${var}` ({}): {}",
            mb.at(),
            match &value {
                Some(v) => format!("{source} is {v:?} for this request"),
                None => format!("{source} is known only at run time (give it with --header)"),
            }
        ),
        alternatives,
        selected,
    }
}

/// Explain every URL of `args`.
pub fn report(args: &RouteArgs) -> Result<RouteReport, String> {
    // Only the head of the file, size-capped: `--config /dev/zero` must not
    // hang here (the parsers apply their own limits).
    let text = {
        use std::io::Read as _;
        let cap = Limits::default().max_file_bytes;
        let mut buf = Vec::new();
        std::fs::File::open(&args.config)
            .and_then(|f| f.take(cap).read_to_end(&mut buf))
            .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
        String::from_utf8_lossy(&buf).into_owned()
    };
    let (kind, source) = match args.server {
        Some(k) => (k, "--server".to_owned()),
        None => detect(&text).ok_or_else(|| {
            format!(
                "cannot tell which server {} is for: give --server nginx|apache|haproxy|iis",
                args.config.display()
            )
        })?,
    };
    let mut reqs = Vec::new();
    for u in &args.urls {
        reqs.push(Request::new(u, args.listen.as_deref(), &args.headers)?);
    }
    let mut rep = RouteReport {
        config: args.config.display().to_string(),
        server: kind,
        server_source: source,
        files: Vec::new(),
        error: None,
        skipped: Vec::new(),
        routes: Vec::new(),
    };
    match Config::load(&args.config, kind) {
        Ok(cfg) => {
            rep.files = cfg.files();
            rep.routes = reqs.iter().map(|r| explain(&cfg, r)).collect();
        }
        Err(e) => {
            rep.error = Some(e.to_string());
            // The server would refuse this file; the rest is still explained.
            if let Some((cfg, skipped)) = recover(&args.config, kind, e) {
                rep.files = cfg.files();
                rep.skipped = skipped;
                rep.routes = reqs.iter().map(|r| explain(&cfg, r)).collect();
            }
        }
    }
    Ok(rep)
}

/// Most broken places `recover` works around before giving up.
const MAX_RECOVERIES: usize = 32;

/// Load `file` again and again, each time leaving out the place the last
/// error names (in memory, nothing is written): a broken line becomes a
/// comment (the line count stays, so every other `file:line` is right), a
/// block never closed is closed at the end of its file. `None` when the
/// error has no line (a file that cannot be read) or nothing converges.
fn recover(
    file: &Path,
    kind: ServerKind,
    first: super::source::ConfigError,
) -> Option<(Config, Vec<String>)> {
    if kind == ServerKind::Iis {
        // An XML document cannot be repaired line by line: the error stands alone.
        return None;
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let mut patches: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut err = first;
    for _ in 0..MAX_RECOVERIES {
        if err.line == 0 {
            return None;
        }
        let path = err.file.clone();
        let text = match patches.get(&path) {
            Some(t) => t.clone(),
            None => std::fs::read(&path).ok()?,
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        let idx = err.line as usize - 1;
        let opener_never_closed =
            err.message.contains("never closed") || err.message.contains("expecting \"}\"");
        if opener_never_closed {
            let closer = match kind {
                ServerKind::Nginx => "}".to_owned(),
                ServerKind::Apache => {
                    let name = err
                        .message
                        .split("</")
                        .nth(1)
                        .and_then(|r| r.split('>').next())
                        .unwrap_or("")
                        .to_owned();
                    if name.is_empty() {
                        return None;
                    }
                    format!("</{name}>")
                }
                ServerKind::Haproxy | ServerKind::Iis => return None,
            };
            lines.push(closer.clone());
            skipped.push(format!(
                "{}:{}: {} (closed with {closer} at the end of the file)",
                path.display(),
                err.line,
                err.message
            ));
        } else if idx < lines.len() && !lines[idx].starts_with("# (left out by route") {
            skipped.push(format!(
                "{}:{}: {} (line left out: {})",
                path.display(),
                err.line,
                err.message,
                lines[idx].trim()
            ));
            "# (left out by route)".clone_into(&mut lines[idx]);
        } else {
            return None;
        }
        patches.insert(path, lines.join("\n").into_bytes());
        match super::source::with_patched_files(patches.clone(), || Config::load(&abs, kind)) {
            Ok(cfg) => return Some((cfg, skipped)),
            Err(e) => err = e,
        }
    }
    None
}

/// Render the report as text.
pub fn text(rep: &RouteReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "config {} ({:?}, {})",
        rep.config, rep.server, rep.server_source
    );
    if let Some(e) = &rep.error {
        let _ = writeln!(
            s,
            "error: configuration not parseable: {e}\n       the server would refuse to start with it"
        );
    }
    if !rep.skipped.is_empty() {
        let _ = writeln!(s, "the rest is explained without:");
        for k in &rep.skipped {
            let _ = writeln!(s, "  skipped   {k}");
        }
    }
    for r in &rep.routes {
        let _ = writeln!(
            s,
            "\n{}  (host {}, on {}, path {})",
            r.url, r.host, r.listen, r.path
        );
        match &r.server_block {
            Some(b) => {
                let _ = writeln!(s, "  server    {}  {}", b.at(), b.text);
            }
            None => {
                let _ = writeln!(s, "  server    none");
            }
        }
        if let Some(b) = &r.location {
            let _ = writeln!(s, "  location  {}  {}", b.at(), b.text);
        }
        if let Some(b) = &r.handler {
            let _ = writeln!(s, "  handler   {}  {}", b.at(), b.text);
        }
        for w in &r.why {
            let _ = writeln!(s, "  why       {w}");
        }
        for u in &r.upstreams {
            let mut flags = Vec::new();
            if let Some(g) = &u.group {
                flags.push(format!("upstream {g}"));
            }
            if let Some(w) = u.weight {
                flags.push(format!("weight {w}"));
            }
            if u.backup {
                flags.push("backup".into());
            }
            if u.down {
                flags.push("down".into());
            }
            let _ = writeln!(
                s,
                "  upstream  {} {} ({}){}  {}",
                u.scheme,
                u.address,
                u.kind,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", flags.join(", "))
                },
                u.source
            );
            if let Some(n) = &u.note {
                let _ = writeln!(s, "            {n}");
            }
        }
        if !r.server_candidates.is_empty() {
            let _ = writeln!(s, "  server candidates:");
            for c in &r.server_candidates {
                let _ = writeln!(
                    s,
                    "    {} {}  {}: {}",
                    if c.chosen { "*" } else { "-" },
                    c.block.at(),
                    c.block.text,
                    c.verdict
                );
            }
        }
        if !r.location_candidates.is_empty() {
            let _ = writeln!(s, "  location candidates:");
            for c in &r.location_candidates {
                let _ = writeln!(
                    s,
                    "    {} {}  {}: {}",
                    if c.chosen { "*" } else { "-" },
                    c.block.at(),
                    c.block.text,
                    c.verdict
                );
            }
        }
        for d in &r.runtime {
            let at = if d.at.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.at)
            };
            let _ = writeln!(s, "  depends on run time: {}{at}: {}", d.what, d.reason);
            for a in &d.alternatives {
                let to: Vec<String> = a.targets.iter().map(|t| t.address.clone()).collect();
                let _ = writeln!(
                    s,
                    "    when {} -> {}{}  ({})",
                    a.when,
                    a.value,
                    if to.is_empty() {
                        String::new()
                    } else {
                        format!(" = {}", to.join(", "))
                    },
                    a.at
                );
            }
            if let Some(sel) = &d.selected {
                let _ = writeln!(s, "    this request: {sel}");
            }
        }
        for u in &r.unknown {
            let _ = writeln!(s, "  unknown   {u}");
        }
        for n in &r.notes {
            let _ = writeln!(s, "  note      {n}");
        }
    }
    s
}

/// The JSON Schema of `route --format json`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RouteReport)).unwrap_or_default()
}

/// Run `route`.
pub fn run(args: &RouteArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let rep = match report(args) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(ExitCode::from(2));
        }
    };
    match args.format {
        RouteFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &rep).context("writing JSON")?;
            writeln!(out)?;
        }
        RouteFormat::Text => out.write_all(text(&rep).as_bytes())?,
    }
    let routed = rep.error.is_none() && rep.routes.iter().all(|r| r.server_block.is_some());
    Ok(if routed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
