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
pub mod no_live_upstreams;
pub mod socket_missing;
pub mod socket_permission;
pub mod upstream_overloaded;
pub mod upstream_refused;
pub mod upstream_timeout;

use std::collections::BTreeMap;

use crate::action_spec::{ConfigSyntax, ServerKind};
use crate::discovery::ServiceMap;

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
        other => Err(format!("no specific remedy is known for `{other}`")),
    }
}

/// `file:line` split (the file may itself hold colons).
pub fn split_at(at: &str) -> Option<(String, u32)> {
    let (f, l) = at.rsplit_once(':')?;
    let line = l.parse::<u32>().ok().filter(|l| *l > 0)?;
    (!f.is_empty()).then(|| (f.to_owned(), line))
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
