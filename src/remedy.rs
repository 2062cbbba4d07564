//! Remedies: the specific configuration change for a cause the walk found,
//! computed as a pure function of the evidence (the discovered configuration
//! with its `file:line`s, and what the checks measured), with the reason in
//! words and figures. Applying one is the executor's job
//! ([`crate::action::config_edit`]); here nothing is read or written.
//!
//! One file per remedy. Each returns `Err(why)` when the evidence does not
//! single out one change (then the walk falls back to the generic steps).

pub mod dns_failure;
pub mod header_too_big;
pub mod keepalive_race;
pub mod no_live_upstreams;
pub mod socket_missing;
pub mod socket_permission;
pub mod upstream_overloaded;
pub mod upstream_refused;
pub mod upstream_timeout;

use std::collections::BTreeMap;

use crate::action_spec::{ConfigSyntax, ServerKind};
use crate::discovery::ServiceMap;
use crate::discovery::service_map::{Place, Upstream};

/// A unix socket some process listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSocket {
    pub path: String,
    /// `pid comm` of a process holding it.
    pub owner: String,
}

/// A TCP socket some process other than the front server listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveListener {
    pub addr: std::net::SocketAddr,
    /// `pid comm` of a process holding it.
    pub owner: String,
}

/// What the checks measured beyond the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measured {
    /// Unix sockets php-fpm masters or workers listen on.
    pub php_fpm_sockets: Vec<LiveSocket>,
    /// TCP listeners on this host, the front server's own left out.
    pub tcp_listeners: Vec<LiveListener>,
    /// The system's nameservers (from `resolv_conf`), as nginx writes addresses.
    pub nameservers: Vec<String>,
    /// The resolv.conf they were read from.
    pub resolv_conf: String,
    /// A direct probe's time to the upstream's first byte, in ms.
    pub first_byte_ms: Option<u64>,
    /// Bytes of the upstream's response header a direct probe read.
    pub header_bytes: Option<u64>,
    /// `MemAvailable` from `/proc/meminfo`, in bytes.
    pub mem_available: Option<u64>,
    /// Resident memory of each worker of the pool, in bytes.
    pub worker_rss: Vec<u64>,
    /// The nginx `upstream` block the upstream is a server of, as read from its file.
    pub upstream_block: Option<ConfigBlock>,
    /// What a probe holding idle keep-alive connections to the upstream saw.
    pub idle: Option<IdleTimeout>,
    /// Names the upstream's (unresolvable) name may have been meant to be,
    /// each with what it resolved to through nginx's resolver.
    pub name_candidates: Vec<NameCandidate>,
    /// The `set $VAR NAME` directive that gives the upstream's variable its name.
    pub name_set: Option<ConfigDirective>,
}

/// A host name found on this host (the hosts file, the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameCandidate {
    pub name: String,
    /// Where it was found (`/etc/hosts:3`).
    pub from: String,
    /// What nginx's resolver answered for it (empty: no address).
    pub resolved: Vec<String>,
}

/// One directive of the front's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDirective {
    pub file: String,
    pub line: u32,
    pub name: String,
    pub args: Vec<String>,
}

/// A block of the front's configuration, read where discovery found one of its lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigBlock {
    pub file: String,
    /// The line its head starts on.
    pub line: u32,
    /// The head's words (`["upstream", "app"]`).
    pub head: Vec<String>,
    /// Direct children: name, arguments (space-joined), line.
    pub children: Vec<(String, String, u32)>,
}

impl ConfigBlock {
    /// The last direct child called `name` (the one nginx uses): arguments and line.
    pub fn child(&self, name: &str) -> Option<(&str, u32)> {
        self.children
            .iter()
            .rev()
            .find(|c| c.0 == name)
            .map(|c| (c.1.as_str(), c.2))
    }

    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The upstream's idle timeout as a probe bounded it: connections held idle
/// for `answered_ms` were still served; one held idle for `closed_ms` was
/// closed by the upstream (or refused its next request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdleTimeout {
    /// The longest idle time after which a request was still answered.
    pub answered_ms: Option<u64>,
    /// The shortest idle time after which the upstream had given the connection up.
    pub closed_ms: Option<u64>,
    /// The upstream answered `Connection: close`: it keeps no connection alive.
    pub no_keepalive: bool,
    /// The longest idle time the probe waited.
    pub waited_ms: u64,
    /// What each held connection saw, one line each.
    pub detail: Vec<String>,
}

/// Everything a remedy may read.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub map: &'a ServiceMap,
    pub measured: &'a Measured,
}

/// The server an edit is reloaded through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub unit: String,
    pub kind: ServerKind,
    pub config: Option<String>,
    pub pid: Option<u32>,
    /// The master's pid file, preferred over `pid` when known: php-fpm
    /// re-executes on SIGUSR2 and, daemonized, comes back with a new pid.
    pub pid_file: Option<String>,
}

/// A computed remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remedy {
    pub cause: String,
    /// The expert's sentence, with the figures that matter.
    pub reason: String,
    /// A stopgap hides the cause rather than removing it (say so).
    pub stopgap: bool,
    pub file: String,
    pub syntax: ConfigSyntax,
    /// Changes in [`crate::action_spec::Change`] syntax.
    pub changes: Vec<String>,
    /// The server's configuration files (the edit must be in one).
    pub allowed: Vec<String>,
    pub server: Server,
}

impl Remedy {
    /// A remedy that edits `file` (of the server's `allowed` files) with `changes`.
    pub fn edit(
        cause: &str,
        syntax: ConfigSyntax,
        (server, allowed): (Server, Vec<String>),
        file: String,
        changes: Vec<String>,
        reason: String,
    ) -> Remedy {
        Remedy {
            cause: cause.to_owned(),
            reason,
            stopgap: false,
            file,
            syntax,
            changes,
            allowed,
            server,
        }
    }

    /// Say it hides the cause rather than removing it.
    #[must_use]
    pub fn stopgap(self) -> Remedy {
        Remedy {
            stopgap: true,
            ..self
        }
    }

    /// The facts the `remedy` check publishes (lists newline-separated).
    pub fn facts(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("remedy.cause".into(), self.cause.clone());
        f.insert("remedy.reason".into(), self.reason.clone());
        f.insert(
            "remedy.stopgap".into(),
            if self.stopgap { "yes" } else { "no" }.into(),
        );
        f.insert("remedy.file".into(), self.file.clone());
        f.insert(
            "remedy.syntax".into(),
            match self.syntax {
                ConfigSyntax::Nginx => "nginx",
                ConfigSyntax::PhpFpm => "php_fpm",
            }
            .into(),
        );
        f.insert("remedy.changes".into(), self.changes.join("\n"));
        f.insert("remedy.allowed".into(), self.allowed.join("\n"));
        f.insert("remedy.unit".into(), self.server.unit.clone());
        f.insert(
            "remedy.server".into(),
            match self.server.kind {
                ServerKind::Nginx => "nginx",
                ServerKind::Apache => "apache",
                ServerKind::PhpFpm => "php_fpm",
                ServerKind::Haproxy => "haproxy",
                ServerKind::Other => "other",
            }
            .into(),
        );
        if let Some(c) = &self.server.config {
            f.insert("remedy.config".into(), c.clone());
        }
        // Always present (possibly empty) so an action can name them.
        f.insert(
            "remedy.pid".into(),
            match (&self.server.pid_file, self.server.pid) {
                (None, Some(p)) => p.to_string(),
                _ => String::new(),
            },
        );
        f.insert(
            "remedy.pid_file".into(),
            self.server.pid_file.clone().unwrap_or_default(),
        );
        f
    }
}

/// The causes that have a remedy here.
pub const CAUSES: &[&str] = &[
    "socket_missing",
    "upstream_timeout",
    "upstream_overloaded",
    "socket_permission",
    "header_too_big",
    "upstream_refused",
    "no_live_upstreams",
    "dns_failure",
    "upstream_closed",
];

/// The remedy for `cause`, or why there is none.
pub fn compute(cause: &str, i: Inputs<'_>) -> Result<Remedy, String> {
    match cause {
        "socket_missing" => socket_missing::compute(i),
        "upstream_timeout" => upstream_timeout::compute(i),
        "upstream_overloaded" => upstream_overloaded::compute(i),
        "socket_permission" => socket_permission::compute(i),
        "header_too_big" => header_too_big::compute(i),
        "upstream_refused" => upstream_refused::compute(i),
        "no_live_upstreams" => no_live_upstreams::compute(i),
        "dns_failure" => dns_failure::compute(i),
        "upstream_closed" => keepalive_race::compute(i),
        other => Err(format!("no specific remedy is known for `{other}`")),
    }
}

/// `file:line` split (the file may itself hold colons).
pub fn split_at(at: &str) -> Option<(String, u32)> {
    let (f, l) = at.rsplit_once(':')?;
    let line = l.parse::<u32>().ok().filter(|l| *l > 0)?;
    (!f.is_empty()).then(|| (f.to_owned(), line))
}

/// The file a [`Place`] is in (its `file:line` split; the place's file otherwise).
pub fn file_of(p: &Place) -> String {
    split_at(&p.at()).map_or_else(|| p.file.clone(), |(f, _)| f)
}

/// The first upstream that is not a backup.
fn primary_upstream(map: &ServiceMap) -> Result<&Upstream, String> {
    map.upstreams
        .iter()
        .find(|u| !u.backup)
        .ok_or_else(|| "no upstream was found".to_owned())
}

/// The location block that serves the URL.
fn route_location(map: &ServiceMap) -> Result<&Place, String> {
    map.route
        .as_ref()
        .and_then(|r| r.location.as_ref())
        .ok_or_else(|| "the location that serves the URL was not found".to_owned())
}

/// The directive that hands the request on (`proxy_pass ...`).
fn route_handler(map: &ServiceMap) -> Result<&Place, String> {
    map.route
        .as_ref()
        .and_then(|r| r.handler.as_ref())
        .ok_or_else(|| "the directive that hands the request on was not found".to_owned())
}

/// The server block that serves the URL.
fn route_server_block(map: &ServiceMap) -> Result<&Place, String> {
    map.route
        .as_ref()
        .and_then(|r| r.server_block.as_ref())
        .ok_or_else(|| "the server block that serves the URL was not found".to_owned())
}

/// The prefix of nginx's directives for an upstream scheme (`proxy`, `fastcgi`, ...).
fn nginx_prefix(scheme: &str) -> &'static str {
    match scheme {
        "fastcgi" => "fastcgi",
        "uwsgi" => "uwsgi",
        "scgi" => "scgi",
        "grpc" => "grpc",
        _ => "proxy",
    }
}

/// The directives that hand a request on to an upstream address.
pub const PASSES: &[&str] = &[
    "proxy_pass",
    "fastcgi_pass",
    "uwsgi_pass",
    "scgi_pass",
    "grpc_pass",
];

/// Where `up`'s address is written, and that directive with the address
/// replaced: the `server` line of its `upstream` block (`server_addr`, its
/// options kept), or the route's handler when its name is one of `passes`
/// (`handler_args` builds the arguments from the handler's words after its
/// name). Returns `(file, line, name, args)`.
fn retarget(
    map: &ServiceMap,
    up: &Upstream,
    server_addr: String,
    passes: &[&str],
    handler_args: impl FnOnce(&str, Vec<&str>) -> Result<Vec<String>, String>,
) -> Result<(String, u32, String, Vec<String>), String> {
    let (file, line) =
        split_at(&up.source).ok_or_else(|| format!("no file:line for {}", up.address))?;
    if up.group.is_some() {
        let mut a = vec![server_addr];
        a.extend(up.options.iter().cloned());
        return Ok((file, line, "server".to_owned(), a));
    }
    let handler = route_handler(map)?;
    let mut words = handler.text.split_whitespace();
    let name = words.next().unwrap_or_default().to_owned();
    if !passes.contains(&name.as_str()) {
        return Err(format!(
            "`{}` is not a directive this remedy edits",
            handler.text
        ));
    }
    let args = handler_args(&name, words.map(|w| w.trim_end_matches(';')).collect())?;
    Ok((file, line, name, args))
}

/// The front server (nginx only, for now) with its config files.
fn nginx_front(map: &ServiceMap) -> Result<(Server, Vec<String>), String> {
    let f = map
        .front
        .as_ref()
        .ok_or("the front server was not found on this host")?;
    if f.kind != "nginx" {
        return Err(format!(
            "the front server is {}: only nginx configurations are edited so far",
            f.kind
        ));
    }
    if f.config_files.is_empty() {
        return Err("discovery did not list nginx's configuration files".into());
    }
    Ok((
        Server {
            unit: "nginx".into(),
            kind: ServerKind::Nginx,
            config: f.config.clone(),
            pid: Some(f.pid),
            pid_file: None,
        },
        f.config_files.clone(),
    ))
}

/// The php-fpm pool behind the upstream, with the file its `listen` is set in.
fn php_fpm_pool(map: &ServiceMap) -> Result<(Server, String, Vec<String>), String> {
    let p = map
        .php_fpm
        .as_ref()
        .ok_or("no php-fpm pool was found behind the upstream")?;
    let pool = p
        .pool
        .clone()
        .ok_or("the php-fpm pool's name is not known")?;
    let files: Vec<String> = p
        .settings
        .values()
        .filter_map(|s| split_at(&s.source).map(|(f, _)| f))
        .chain(p.config.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok((
        Server {
            unit: "php-fpm".into(),
            kind: ServerKind::PhpFpm,
            config: p.config.clone(),
            pid: Some(p.master_pid),
            pid_file: None,
        },
        pool,
        files,
    ))
}

/// What the remedies' tests build their evidence from.
#[cfg(test)]
pub mod fixture {
    use super::{Inputs, Measured, Remedy};
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Front, Place, Route, Upstream};

    pub const CONF: &str = "/etc/nginx/nginx.conf";

    /// A place in [`CONF`].
    pub fn place(line: u32, text: &str) -> Place {
        Place {
            file: CONF.into(),
            line,
            text: text.into(),
        }
    }

    /// An upstream at `address` (`tcp` unless `unix:`), configured at `CONF:line`.
    pub fn upstream(address: &str, scheme: &str, line: u32) -> Upstream {
        Upstream {
            address: address.into(),
            kind: if address.starts_with("unix:") {
                "unix"
            } else {
                "tcp"
            }
            .into(),
            scheme: scheme.into(),
            source: format!("{CONF}:{line}"),
            ..Upstream::default()
        }
    }

    /// nginx (pid 42, its config [`CONF`]) routing through `route` to `upstreams`.
    pub fn nginx_map(route: Route, upstreams: Vec<Upstream>) -> ServiceMap {
        ServiceMap {
            front: Some(Front {
                kind: "nginx".into(),
                pid: 42,
                config_files: vec![CONF.into()],
                ..Front::default()
            }),
            route: Some(route),
            upstreams,
            ..ServiceMap::default()
        }
    }

    /// [`super::compute`] on `map` and `measured`.
    pub fn remedy(cause: &str, map: &ServiceMap, measured: &Measured) -> Result<Remedy, String> {
        super::compute(cause, Inputs { map, measured })
    }
}
