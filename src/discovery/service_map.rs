//! The map of the serving path for one URL: what discovery found, where
//! each fact came from, what it could not find and why, and which facts the
//! operator overrode. Serialized as the JSON of `triage502 map --format json`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::Evidence;

/// The whole serving path for a URL on this host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceMap {
    pub url: String,
    pub target: Target,
    /// Does a process on this host listen on the URL's port?
    pub gateway_local: bool,
    /// When the gateway is elsewhere: what we can say about where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub front: Option<Front>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    pub upstreams: Vec<Upstream>,
    pub logs: Logs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_group: Option<String>,
    /// Timeouts, buffers and other settings in effect for the route.
    pub settings: BTreeMap<String, Setting>,
    pub cache_paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub php_fpm: Option<PhpFpm>,
    /// The configuration lines that decide the route (server block,
    /// location, upstream), each with `file:line`.
    pub evidence: Vec<Evidence>,
    /// Flat facts for playbooks (`front.kind`, `upstream`, `error_logs`, ...),
    /// overrides applied.
    pub facts: BTreeMap<String, String>,
    /// Where each fact came from: `file:line`, a command, `/proc/...`.
    pub sources: BTreeMap<String, String>,
    /// Facts that could not be found, with the reason.
    pub unknown: Vec<Unknown>,
    /// What discovery could not look at for lack of privilege, and what would let it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unseen: Vec<crate::check::Unseen>,
    /// Facts given with `--var`, with what discovery had found.
    pub overridden: BTreeMap<String, Overridden>,
    /// Remarks worth reading (unevaluated conditions, caveats).
    pub notes: Vec<String>,
    /// The published port the URL reaches a container through
    /// (`docker-proxy`, a DNAT rule or the Engine's port map).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,
    /// Where the probes of this path run from: this host, or the network
    /// namespace of the front's container.
    pub vantage: crate::sys::netns::Vantage,
    /// What the container engine could not tell, and how to let it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::docker::Unavailable>,
}

/// A container on the path.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ContainerRef {
    pub name: String,
    pub id: String,
    pub image: String,
    /// `running`, `exited`, `restarting` ...
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_service: Option<String>,
    /// Networks it is attached to.
    pub networks: Vec<String>,
    /// The address on the path (the one the previous hop dials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Host PID of its first process, when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// A port published from the host to a container.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Published {
    /// `127.0.0.1:8080` (or `0.0.0.0:8080`).
    pub host: String,
    /// `172.18.0.3:80`.
    pub container: String,
    pub proto: String,
    /// How it was found: `docker-proxy (pid N)`, `iptables DNAT rule`, ...
    pub via: String,
    /// The `docker-proxy` process, when one carries the traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_pid: Option<u32>,
}

/// The URL broken down, and what its host resolves to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Target {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    /// Addresses the host resolves to (`localhost` and `*.localhost` are
    /// loopback without asking DNS, per RFC 6761).
    pub addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_error: Option<String>,
    /// The local address:port the front accepts this URL on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_endpoint: Option<String>,
}

/// The process that accepts the URL's connections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Front {
    /// nginx, apache, haproxy, caddy, envoy, traefik, php-fpm or other.
    pub kind: String,
    pub pid: u32,
    pub comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    pub user: String,
    pub command_line: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The main configuration file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// How the configuration file was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_source: Option<String>,
    /// Every configuration file read.
    pub config_files: Vec<String>,
    /// The listening socket (`tcp 127.0.0.1:8080`).
    pub listener: String,
    /// The container it runs in (its pid is then a host PID inside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
}

/// A configuration block and where it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Place {
    pub file: String,
    pub line: u32,
    /// The block's header as written (`location ~ \.php$`).
    pub text: String,
}

impl Place {
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Which block of the configuration handles the URL.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Route {
    /// nginx server block, Apache virtual host, HAProxy frontend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_block: Option<Place>,
    /// nginx location, Apache `<Location>`/`ProxyPass`, HAProxy backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Place>,
    /// The directive that hands the request on (`proxy_pass http://app`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<Place>,
    /// How the route was chosen (default server, try_files fallback, ...).
    pub why: Vec<String>,
    /// The server whose configuration decided the route, when it is not
    /// the front process found on this host (`iis` from an
    /// applicationHost.config read offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// One address the front sends requests to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Upstream {
    /// As the proxy dials it: `127.0.0.1:8080`, `unix:/run/php/x.sock`,
    /// `app.internal:8080`.
    pub address: String,
    /// `tcp`, `unix` or `name` (a host name, or a variable resolved at run time).
    pub kind: String,
    /// http, https, fastcgi, uwsgi, scgi, grpc, memcached.
    pub scheme: String,
    /// The `upstream`/balancer/backend group it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Options on the server line (`max_fails=3`, `backup`, `check`).
    pub options: Vec<String>,
    pub backup: bool,
    /// Where it is configured (`file:line`).
    pub source: String,
    /// Is the address on this host? `None` when unknown (a name that did
    /// not resolve, a variable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    /// `pid comm` of the process listening there; `None` when nothing does
    /// (or when it cannot be known: see `listener_note`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_pid: Option<u32>,
    /// Why there is no listener, or what is known about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_note: Option<String>,
    /// What a name resolved to for the front (inside its container).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<String>,
    /// How: `/etc/hosts`, `dns 127.0.0.11:53 from container shop-web`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_from: Option<String>,
    /// The container that owns the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
}

/// Logs in effect for the route.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Logs {
    /// Error log paths (or `stderr`, `syslog:...`).
    pub error: Vec<String>,
    /// Access log paths.
    pub access: Vec<String>,
    /// The access log's format name and definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_format_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_format: Option<String>,
    /// Each log directive and its `file:line` (or "default").
    pub sources: Vec<LogSource>,
    /// Where syslog-style targets end up (HAProxy `log`).
    pub syslog: Vec<SyslogReceiver>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LogSource {
    /// `error`, `access` or `syslog`.
    pub kind: String,
    pub target: String,
    pub source: String,
}

/// A syslog target and the process receiving it, with its open log files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyslogReceiver {
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A setting's value and where it was set ("default" when built in).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub source: String,
}

/// php-fpm behind an upstream address.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhpFpm {
    pub master_pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Pool settings (`listen`, `listen.owner`, `pm.max_children`, ...).
    pub settings: BTreeMap<String, Setting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowlog: Option<String>,
}

/// A fact that could not be found, and why.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Unknown {
    pub fact: String,
    pub reason: String,
}

/// A fact set with `--var`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Overridden {
    pub value: String,
    /// What discovery had found, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered: Option<String>,
}

impl ServiceMap {
    /// Record that `fact` is unknown (once per fact).
    pub fn unknown(&mut self, fact: &str, reason: impl Into<String>) {
        if !self.unknown.iter().any(|u| u.fact == fact) {
            self.unknown.push(Unknown {
                fact: fact.to_owned(),
                reason: reason.into(),
            });
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let n = note.into();
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    pub fn setting(&mut self, name: &str, value: impl Into<String>, source: impl Into<String>) {
        self.settings.insert(
            name.to_owned(),
            Setting {
                value: value.into(),
                source: source.into(),
            },
        );
    }

    /// Add a log path once, with its source.
    pub fn log(&mut self, kind: &str, target: &str, source: &str) {
        let list = if kind == "error" {
            &mut self.logs.error
        } else {
            &mut self.logs.access
        };
        if !list.iter().any(|t| t == target) {
            list.push(target.to_owned());
        }
        self.logs.sources.push(LogSource {
            kind: kind.to_owned(),
            target: target.to_owned(),
            source: source.to_owned(),
        });
    }

    /// Was the front found and its route mapped?
    pub fn is_mapped(&self) -> bool {
        self.front.is_some() && self.route.is_some()
    }
}
