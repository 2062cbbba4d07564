//! Discovery: from a URL alone to the whole serving path on this host.
//!
//! Given only the failing URL, find the process that accepts its
//! connections (`/proc`, no `ss`), that server's configuration (command
//! line, compiled-in defaults, standard paths), the route for the URL
//! (server block / virtual host / frontend, then location), the upstreams
//! and who listens on them, the logs in effect, the worker user, the
//! timeouts and buffers, cache paths and document root, and php-fpm's pool
//! behind a socket. The result is a [`ServiceMap`].
//!
//! Invariants: nothing is guessed. Every fact records its source
//! (`file:line`, a command, `/proc/...`); a fact that cannot be found is
//! listed in `unknown` with the reason (permission, not running, not
//! parseable). Operator overrides (`--var`) win and are listed as such.
//! Discovery only reads: files (size-capped), `/proc`, and the output of
//! `nginx -V`/`apache2 -V`/`haproxy -v` (fixed argv, timeout, killed on drop).

pub mod apache;
pub mod cli;
pub mod container;
pub mod directive;
pub mod facts;
pub mod front;
pub mod glob;
pub mod haproxy;
pub mod iis;
pub mod nginx;
pub mod offline;
pub mod php_fpm;
pub mod render;
pub mod service_map;
pub mod source;
mod unprivileged;
pub mod upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use service_map::ServiceMap;

use crate::sys::{self, Listener, ListenerScan, Process};
use front::Kind;
use service_map::{Front, Target};
use source::Limits;

/// Input that discovery cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
}

/// What the host looks like right now (one `/proc` snapshot).
#[derive(Debug, Clone, Default)]
pub struct HostView {
    pub scan: ListenerScan,
    pub procs: Vec<Process>,
    pub local: BTreeSet<IpAddr>,
}

impl HostView {
    /// Take a snapshot (blocking: walks `/proc`).
    pub fn snapshot() -> Self {
        HostView {
            scan: sys::listeners(),
            procs: sys::processes(),
            local: sys::local_addresses(),
        }
    }

    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.procs.iter().find(|p| p.pid == pid)
    }

    /// `pid comm` of a process.
    pub fn label(&self, pid: u32) -> String {
        self.process(pid)
            .map_or_else(|| pid.to_string(), |p| format!("{pid} {}", p.comm))
    }
}

/// Parse the URL into a [`Target`] (scheme defaults to `http://`).
pub fn target(url: &str) -> Result<(Target, Option<IpAddr>), DiscoveryError> {
    let bad = |reason: String| DiscoveryError::Url {
        url: url.to_owned(),
        reason,
    };
    let text = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let u = url::Url::parse(&text).map_err(|e| bad(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!("scheme {} is not http or https", u.scheme())));
    }
    let (host, literal) = match u.host() {
        Some(url::Host::Domain(d)) => (d.to_owned(), None),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
        None => return Err(bad("no host".into())),
    };
    let port = u
        .port_or_known_default()
        .ok_or_else(|| bad("no port".into()))?;
    let mut path = u.path().to_owned();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok((
        Target {
            scheme: u.scheme().to_owned(),
            host,
            port,
            path,
            ..Target::default()
        },
        literal,
    ))
}

/// Resolve a host: IP literals as they are, `localhost` and `*.localhost`
/// to loopback without DNS (RFC 6761 §6.3), anything else with the
/// system resolver.
pub fn resolve(host: &str, literal: Option<IpAddr>, port: u16) -> Result<Vec<IpAddr>, String> {
    if let Some(ip) = literal {
        return Ok(vec![ip]);
    }
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    let mut v: Vec<IpAddr> = (h.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .map(|s| s.ip())
        .collect();
    v.dedup();
    Ok(v)
}

/// Discover the serving path of `url`. `overrides` are `--var` values
/// (fact name → value); `front.config`, `front.kind` and `front.pid` also
/// steer discovery itself.
pub async fn discover(
    url: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<ServiceMap, DiscoveryError> {
    let (mut target, literal) = target(url)?;
    let overrides = facts::normalize_overrides(overrides);
    let (host, port) = (target.host.clone(), target.port);
    let resolved = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || resolve(&host, literal, port)),
    )
    .await;
    let resolved = match resolved {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("resolver task failed: {e}")),
        Err(_) => Err("name resolution did not finish within 5s".into()),
    };
    match &resolved {
        Ok(a) => target.addresses = a.iter().map(ToString::to_string).collect(),
        Err(e) => target.resolve_error = Some(e.clone()),
    }
    let view = tokio::task::spawn_blocking(HostView::snapshot)
        .await
        .unwrap_or_default();
    let mut map = ServiceMap {
        url: url.to_owned(),
        target,
        ..ServiceMap::default()
    };
    for e in &view.scan.errors {
        map.note(e.to_string());
    }
    let addrs = resolved.unwrap_or_default();
    let found = find_front(&view, &addrs, map.target.port, &overrides, &mut map);
    // A port published to a container: docker-proxy holds it, or a DNAT
    // rule with no listener at all.
    if !overrides.contains_key("front.pid")
        && container::discover_published(
            &mut map,
            &view,
            &addrs,
            found.as_ref().map(|(_, pid)| *pid),
            &overrides,
        )
        .await
    {
        map.unknown
            .retain(|u| u.fact != "front.pid" || map.front.is_none());
        facts::finish(&mut map, &overrides);
        return Ok(map);
    }
    let found = match found {
        Some(f) => Some(f),
        None => unprivileged::infer_front(&view, &overrides, &mut map).await,
    };
    let Some((listener, pid)) = found else {
        gateway_elsewhere(&mut map, &addrs, &view);
        // The server is down but its configuration was named: `route`'s answer.
        offline::map_from_config(&mut map, &overrides);
        facts::finish(&mut map, &overrides);
        return Ok(map);
    };
    map.gateway_local = true;
    let Some(proc_) = view.process(pid).cloned() else {
        map.unknown(
            "front.kind",
            format!("process {pid} holds the listener but cannot be read (run as root)"),
        );
        facts::finish(&mut map, &overrides);
        return Ok(map);
    };
    let kind = overrides
        .get("front.kind")
        .and_then(|k| Kind::parse(k))
        .unwrap_or_else(|| front::kind_of(&proc_));
    map.front = Some(Front {
        kind: kind.as_str().to_owned(),
        pid,
        comm: proc_.comm.clone(),
        exe: proc_.exe.as_ref().map(|e| e.display().to_string()),
        user: proc_.user_or_uid(),
        command_line: proc_.cmdline_text(),
        listener: listener.to_string(),
        ..Front::default()
    });
    map.sources.insert(
        "front.kind".into(),
        format!("/proc/{pid}/exe, comm and cmdline ({})", proc_.program()),
    );
    // Unless it was inferred without root (the owner of the socket unreadable).
    map.sources.entry("front.pid".into()).or_insert_with(|| {
        format!(
            "/proc/net/{} inode {} held by /proc/{pid}/fd",
            if listener.proto == sys::Proto::Tcp6 {
                "tcp6"
            } else {
                "tcp"
            },
            listener.inode
        )
    });
    // Build information from the binary (async: a child process).
    let build = build_info(kind, &proc_).await;
    let ov = overrides.clone();
    let (mut map, view) = tokio::task::spawn_blocking(move || {
        map_front(&mut map, kind, &proc_, &listener, &build, &view, &ov);
        upstream::resolve_listeners(&mut map, &view);
        (map, view)
    })
    .await
    .unwrap_or_else(|e| {
        let mut m = ServiceMap {
            url: url.to_owned(),
            ..ServiceMap::default()
        };
        m.unknown("route", format!("discovery failed internally: {e}"));
        (m, HostView::default())
    });
    // A host front proxying to a port published to a container.
    container::upstreams_through_published(&mut map, &view).await;
    facts::finish(&mut map, &overrides);
    Ok(map)
}

/// The listener for the URL and the master process holding it.
fn find_front(
    view: &HostView,
    addrs: &[IpAddr],
    port: u16,
    overrides: &BTreeMap<String, String>,
    map: &mut ServiceMap,
) -> Option<(Listener, u32)> {
    let mut listener: Option<&Listener> = None;
    for ip in addrs {
        if let Some(l) = view.scan.tcp_for(*ip, port).first() {
            map.target.local_endpoint = Some(endpoint(*ip, port));
            listener = Some(l);
            break;
        }
    }
    if listener.is_none() {
        // The name points elsewhere (a CDN, a load balancer) but the origin
        // may still be here: pin the host to a local listener on the port.
        let on_port = view.scan.tcp_on_port(port);
        let pick = on_port
            .iter()
            .find(|l| l.addr.is_some_and(|a| a.is_loopback()))
            .or_else(|| on_port.iter().find(|l| l.is_wildcard()))
            .or(on_port.first())
            .copied();
        if let Some(l) = pick {
            let ip = match l.addr {
                Some(a) if a.is_unspecified() && a.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                Some(a) => a,
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            map.target.local_endpoint = Some(endpoint(ip, port));
            map.note(format!(
                "{} resolves to {}, not to a local listener; mapping the origin here by pinning the host to {} (the gateway in front of it may be a CDN or load balancer)",
                map.target.host,
                if map.target.addresses.is_empty() { "nothing".to_owned() } else { map.target.addresses.join(", ") },
                endpoint(ip, port)
            ));
            listener = Some(l);
        }
    }
    let l = listener?.clone();
    let pid = overrides
        .get("front.pid")
        .and_then(|p| p.parse().ok())
        .or_else(|| front::master_of(&l, &view.procs));
    if let Some(pid) = pid {
        Some((l, pid))
    } else {
        map.gateway_local = true;
        map.unknown(
            "front.pid",
            format!(
                "{l} is listening but its process is unknown: {}",
                view.scan
                    .owner_caveat()
                    .unwrap_or_else(|| "no process holds the socket".into())
            ),
        );
        None
    }
}

fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(a) => format!("[{a}]:{port}"),
        IpAddr::V4(a) => format!("{a}:{port}"),
    }
}

/// Nothing here listens on the URL's port: say so and where the host points.
fn gateway_elsewhere(map: &mut ServiceMap, addrs: &[IpAddr], view: &HostView) {
    if map.unknown.iter().any(|u| u.fact == "front.pid") {
        return;
    }
    map.gateway_local = false;
    let port = map.target.port;
    let local: Vec<String> = addrs
        .iter()
        .filter(|a| sys::net::is_local(**a, &view.local))
        .map(ToString::to_string)
        .collect();
    let where_ = match (&map.target.resolve_error, addrs.is_empty()) {
        (Some(e), _) => format!("{} does not resolve here ({e})", map.target.host),
        (None, true) => format!("{} resolves to no address", map.target.host),
        (None, false) if local.is_empty() => format!(
            "{} resolves to {}, which is another host (a CDN, a load balancer or another server answers for it)",
            map.target.host,
            map.target.addresses.join(", ")
        ),
        (None, false) => format!(
            "{} resolves to {} on this host, but nothing accepts connections there: if the front server should run here, it is down",
            map.target.host,
            local.join(", ")
        ),
    };
    map.gateway = Some(format!(
        "the gateway is not on this host: nothing here listens on port {port}; {where_}"
    ));
    if let Some(c) = view.scan.owner_caveat() {
        map.note(c);
    }
    map.unknown(
        "front.kind",
        "nothing on this host listens on the URL's port",
    );
}

/// Build information of the front's binary.
#[derive(Debug, Clone, Default)]
pub struct Build {
    pub nginx: front::NginxBuild,
    pub apache: front::ApacheBuild,
    pub version: Option<String>,
    /// The command that produced it, or why it could not run.
    pub source: String,
}

async fn build_info(kind: Kind, p: &Process) -> Build {
    let (names, args): (&[&str], &[&str]) = match kind {
        Kind::Nginx => (&["nginx"], &["-V"]),
        Kind::Apache => (&["apache2", "httpd"], &["-V"]),
        Kind::Haproxy => (&["haproxy"], &["-v"]),
        _ => return Build::default(),
    };
    let Some(bin) = front::binary(p, names) else {
        return Build {
            source: format!("{} not found (exe unreadable and not on PATH)", names[0]),
            ..Build::default()
        };
    };
    let source = format!("{} {}", bin.display(), args.join(" "));
    match front::tool_output(&bin, args).await {
        Ok(out) => {
            let mut b = Build {
                source,
                ..Build::default()
            };
            match kind {
                Kind::Nginx => {
                    b.nginx = front::parse_nginx_v(&out);
                    b.version.clone_from(&b.nginx.version);
                }
                Kind::Apache => {
                    b.apache = front::parse_apache_v(&out);
                    b.version.clone_from(&b.apache.version);
                }
                _ => {
                    b.version = out
                        .lines()
                        .next()
                        .map(|l| l.split(" - ").next().unwrap_or(l).trim().to_owned());
                }
            }
            b
        }
        Err(e) => Build {
            source: e,
            ..Build::default()
        },
    }
}

/// Parse the front's configuration and map the route (blocking).
fn map_front(
    map: &mut ServiceMap,
    kind: Kind,
    p: &Process,
    listener: &Listener,
    build: &Build,
    view: &HostView,
    overrides: &BTreeMap<String, String>,
) {
    if let Some(f) = map.front.as_mut() {
        f.version.clone_from(&build.version);
    }
    if build.version.is_some() {
        map.sources
            .insert("front.version".into(), build.source.clone());
    } else if matches!(kind, Kind::Nginx | Kind::Apache | Kind::Haproxy) {
        map.unknown("front.version", build.source.clone());
    }
    let local_ip = map
        .target
        .local_endpoint
        .as_deref()
        .and_then(|e| e.rsplit_once(':'))
        .and_then(|(ip, _)| ip.trim_matches(['[', ']']).parse().ok())
        .or(listener.addr);
    let args = front::arguments(p);
    let cwd = front::cwd(p.pid).unwrap_or_else(|| PathBuf::from("/"));
    let config_override = overrides.get("front.config").map(PathBuf::from);
    match kind {
        Kind::Nginx => map_nginx(map, &args, &cwd, build, config_override, local_ip),
        Kind::Apache => apache::discover(map, p, &args, &cwd, build, config_override, local_ip),
        Kind::Haproxy => haproxy::discover(map, &args, &cwd, config_override, local_ip, view),
        other => {
            let cfg = front::option(&args, "--config")
                .or_else(|| front::option(&args, "-c"))
                .or_else(|| front::option(&args, "--configFile"));
            if let (Some(c), Some(f)) = (&cfg, map.front.as_mut()) {
                f.config = Some(front::absolute(&cwd, c).display().to_string());
                f.config_source = Some("command line".into());
            }
            map.unknown(
                "route",
                format!(
                    "{} configurations are not parsed: the route, upstreams and logs must be given with --var",
                    other.as_str()
                ),
            );
        }
    }
    observed_workers(map, p, view);
}

fn map_nginx(
    map: &mut ServiceMap,
    args: &[String],
    cwd: &Path,
    build: &Build,
    config_override: Option<PathBuf>,
    local_ip: Option<IpAddr>,
) {
    let port = map.target.port;
    map_nginx_at(map, args, cwd, build, config_override, local_ip, port, None);
}

/// [`map_nginx`] for a request arriving on `local_ip:port`, with the
/// configuration read inside `root` (`/proc/PID/root` of a containerized
/// nginx; paths stay as nginx sees them).
#[allow(clippy::too_many_arguments)]
fn map_nginx_at(
    map: &mut ServiceMap,
    args: &[String],
    cwd: &Path,
    build: &Build,
    config_override: Option<PathBuf>,
    local_ip: Option<IpAddr>,
    port: u16,
    root: Option<&Path>,
) {
    let b = &build.nginx;
    let (prefix, prefix_src) = match front::option(args, "-p") {
        Some(p) => (front::absolute(cwd, &p), "command line -p"),
        None => match &b.prefix {
            Some(p) => (PathBuf::from(p), "nginx -V --prefix"),
            None => (PathBuf::from("/usr/local/nginx"), "nginx's default prefix"),
        },
    };
    let (conf, how) = if let Some(c) = config_override {
        (c, "--var front.config".to_owned())
    } else if let Some(c) = front::option(args, "-c") {
        // nginx resolves a relative -c against the prefix.
        (front::absolute(&prefix, &c), "command line -c".to_owned())
    } else if let Some(c) = &b.conf_path {
        (
            front::absolute(&prefix, c),
            format!("{} (--conf-path)", build.source),
        )
    } else {
        (
            prefix.join("conf/nginx.conf"),
            format!("default under the prefix ({prefix_src})"),
        )
    };
    if let Some(f) = map.front.as_mut() {
        f.config = Some(conf.display().to_string());
        f.config_source = Some(how.clone());
    }
    map.sources.insert("front.config".into(), how);
    let globals = front::nginx_globals(args);
    match nginx::parse_in(root, &conf, &prefix, globals.as_deref(), Limits::default()) {
        Ok(cfg) => {
            if let Some(f) = map.front.as_mut() {
                f.config_files = cfg.files.iter().map(|p| p.display().to_string()).collect();
            }
            let req = nginx::route::Request {
                host: &map.target.host.clone(),
                port,
                path: &map.target.path.clone(),
                local_ip,
            };
            let defaults = nginx::route::Defaults {
                error_log: b.error_log_path.clone(),
                access_log: b.http_log_path.clone(),
                user: b.user.clone(),
                group: b.group.clone(),
            };
            nginx::route::map(&cfg, &req, &defaults, map);
        }
        Err(e) => config_error(map, &e),
    }
}

/// A configuration that could not be parsed: every config-derived fact is
/// unknown for this reason.
pub fn config_error(map: &mut ServiceMap, e: &source::ConfigError) {
    if e.message.to_ascii_lowercase().contains("permission denied") {
        let u = crate::check::Unseen::new(
            format!("the configuration {}", e.file.display()),
            "permission denied",
            crate::check::AS_ROOT,
        );
        if !map.unseen.contains(&u) {
            map.unseen.push(u);
        }
    }
    let reason = format!("configuration not parseable: {e}");
    map.note(reason.clone());
    for f in [
        "route",
        "upstream",
        "error_logs",
        "access_logs",
        "worker_user",
    ] {
        map.unknown(f, reason.clone());
    }
}

/// The user the workers really run as (children of the master), which
/// wins over the configuration (a non-root master cannot switch users).
fn observed_workers(map: &mut ServiceMap, master: &Process, view: &HostView) {
    let kind = front::kind_of(master);
    let workers: Vec<&Process> = view
        .procs
        .iter()
        .filter(|c| c.ppid == master.pid && front::kind_of(c) == kind)
        .collect();
    let Some(w) = workers.first() else { return };
    let user = w.user_or_uid();
    let group = w.group_or_gid();
    if map.worker_user.as_deref().is_some_and(|u| u != user) {
        map.note(format!(
            "the configuration says workers run as {}, but worker {} runs as {user}",
            map.worker_user.clone().unwrap_or_default(),
            w.pid
        ));
    }
    map.worker_user = Some(user);
    map.worker_group = Some(group);
    let configured = map
        .sources
        .get("worker_user")
        .map(|s| format!("; configured at {s}"))
        .unwrap_or_default();
    map.sources.insert(
        "worker_user".into(),
        format!(
            "/proc/{}/status (worker of {}){configured}",
            w.pid, master.pid
        ),
    );
    map.sources.insert(
        "worker_group".into(),
        format!("/proc/{}/status (worker of {})", w.pid, master.pid),
    );
}
