//! `remedy`: compute the specific configuration change for a cause the walk
//! found (see [`crate::remedy`]). It maps the serving path again (for the
//! `file:line` of each directive), reads the live php-fpm sockets, the
//! available memory and the pool workers' resident memory from `/proc`, and
//! publishes the change as `remedy.*` facts for a `config_edit` action.
//! Read-only, like every check.
//!
//! Ok with the remedy and its reason; inconclusive with the reason when the
//! evidence does not single out one change (the walk then takes the generic
//! steps).

pub mod idle;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::discovery::{self, HostView};
use crate::duration::HumanDuration;
use crate::remedy::{self, Inputs, LiveListener, LiveSocket, Measured};

/// Parameters of the `remedy` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The cause to remedy: one of [`crate::remedy::CAUSES`]
    /// (`socket_missing`, `upstream_timeout`, `upstream_overloaded`,
    /// `socket_permission`, `header_too_big`, ...).
    pub cause: String,
    /// The failing URL (its serving path is mapped again).
    pub url: String,
    /// A direct probe's time to the upstream's first byte, in ms
    /// (`{{ probe.first_byte_ms }}`), for `upstream_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<String>,
    /// Bytes of the upstream's response header a direct probe read
    /// (`{{ probe.header_bytes }}`), for `header_too_big`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_bytes: Option<String>,
    /// The resolv.conf whose nameservers a `dns_failure` remedy gives nginx
    /// (default `/etc/resolv.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<String>,
    /// The hosts file whose names a `dns_failure` remedy compares a name
    /// that does not resolve with (default `/etc/hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// Facts the operator gave with `--var`, passed to discovery.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    /// How long it may take (default 20s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "remedy",
    summary: "Compute the specific configuration change for a found cause (file:line, the change, the reason with its figures) for a config_edit action.",
    example: r#"{ remedy = { cause = "socket_missing", url = "{{ url }}" } }"#,
    facts: &[
        "remedy.cause",
        "remedy.reason",
        "remedy.stopgap",
        "remedy.file",
        "remedy.syntax",
        "remedy.changes",
        "remedy.allowed",
        "remedy.unit",
        "remedy.server",
        "remedy.config",
        "remedy.pid",
        "remedy.pid_file",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        format!("compute the remedy for {}", self.cause)
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(20), |d| d.0)
    }
}

/// `MemAvailable` from `/proc/meminfo` text, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let kb = l.strip_prefix("MemAvailable:")?.trim().strip_suffix("kB")?;
        kb.trim().parse::<u64>().ok().map(|k| k * 1024)
    })
}

/// `VmRSS` from `/proc/PID/status` text, in bytes.
pub fn vm_rss(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let kb = l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?;
        kb.trim().parse::<u64>().ok().map(|k| k * 1024)
    })
}

/// A small text file (at most 64 KiB read).
fn read_capped(path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// php-fpm's pid file from its `[global]` section (blocking).
fn php_fpm_pid_file(config: &str) -> Option<String> {
    let cfg = discovery::php_fpm::parse(
        std::path::Path::new(config),
        None,
        discovery::source::Limits::default(),
    )
    .ok()?;
    let pid = cfg.global()?.get("pid")?.value.clone();
    (!pid.is_empty()).then(|| cfg.resolve(&pid, "/var"))
}

/// Read what the remedies need from `/proc` (blocking).
fn measure(php_master: Option<u32>, front: Option<u32>) -> Measured {
    let view = HostView::snapshot();
    // The front server's master and workers: never a candidate upstream.
    let is_front = |pid: &u32| {
        front.is_some_and(|f| *pid == f || view.process(*pid).is_some_and(|p| p.ppid == f))
    };
    let mut tcp_listeners: Vec<LiveListener> = view
        .scan
        .listeners
        .iter()
        .filter(|l| l.proto.is_tcp() && !l.pids.iter().any(is_front))
        .filter_map(|l| {
            let addr = std::net::SocketAddr::new(l.addr?, l.port?);
            Some(LiveListener {
                addr,
                owner: l
                    .pids
                    .first()
                    .map_or_else(|| "an unknown process".to_owned(), |p| view.label(*p)),
            })
        })
        .collect();
    tcp_listeners.sort_by_key(|l| l.addr);
    tcp_listeners.dedup_by(|a, b| a.addr == b.addr);
    let is_fpm = |pid: &u32| {
        view.process(*pid)
            .is_some_and(|p| p.comm.starts_with("php-fpm"))
    };
    let mut php_fpm_sockets: Vec<LiveSocket> = view
        .scan
        .listeners
        .iter()
        .filter_map(|l| {
            let path = l.path.as_ref()?.to_string_lossy().into_owned();
            let pid = l.pids.iter().find(|p| is_fpm(p))?;
            (!path.starts_with('@')).then(|| LiveSocket {
                path,
                owner: view.label(*pid),
            })
        })
        .collect();
    php_fpm_sockets.sort_by(|a, b| a.path.cmp(&b.path));
    php_fpm_sockets.dedup_by(|a, b| a.path == b.path);
    let worker_rss = php_master.map_or_else(Vec::new, |m| {
        view.procs
            .iter()
            .filter(|p| p.ppid == m && p.comm.starts_with("php-fpm"))
            .filter_map(|p| {
                std::fs::read_to_string(format!("/proc/{}/status", p.pid))
                    .ok()
                    .and_then(|s| vm_rss(&s))
            })
            .collect()
    });
    Measured {
        php_fpm_sockets,
        tcp_listeners,
        nameservers: Vec::new(),
        resolv_conf: String::new(),
        first_byte_ms: None,
        header_bytes: None,
        mem_available: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| mem_available(&s)),
        worker_rss,
        upstream_block: None,
        idle: None,
        name_candidates: Vec::new(),
        name_set: None,
    }
}

/// The nginx `upstream` block the (first, non-backup) upstream is a server
/// of, read from the file discovery found its `server` line in (blocking).
fn upstream_block(map: &discovery::ServiceMap) -> Option<remedy::ConfigBlock> {
    let up = map
        .upstreams
        .iter()
        .find(|u| !u.backup && u.group.is_some())?;
    let (file, line) = remedy::split_at(&up.source)?;
    let text = read_capped_to(&file, crate::action::rollback::MAX_FILE)?;
    let b = crate::action::config_edit::nginx_block_around(&text, line).ok()?;
    (b.head.first().map(String::as_str) == Some("upstream")).then(|| remedy::ConfigBlock {
        file,
        line: b.line,
        head: b.head,
        children: b
            .children
            .into_iter()
            .map(|d| (d.name, d.args.join(" "), d.line))
            .collect(),
    })
}

/// A text file, at most `cap` bytes read.
fn read_capped_to(path: &str, cap: u64) -> Option<String> {
    use std::io::Read as _;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(cap)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// `(name, file:line)` of each host name in hosts-file text.
pub fn hosts_names(text: &str, file: &str) -> Vec<(String, String)> {
    text.lines()
        .enumerate()
        .flat_map(|(n, l)| {
            let l = l.split('#').next().unwrap_or("");
            let mut w = l.split_whitespace();
            let ip_ok = w
                .next()
                .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
            w.filter(move |_| ip_ok)
                .map(move |name| (name.to_owned(), format!("{file}:{}", n + 1)))
        })
        .collect()
}

/// nginx's resolver address (`127.0.0.1:5353 valid=10s` → 127.0.0.1:5353).
fn resolver_addr(r: &str) -> Option<std::net::SocketAddr> {
    let first = r.split_whitespace().next()?;
    if let Ok(a) = first.parse() {
        return Some(a);
    }
    let ip: std::net::IpAddr = first.trim_matches(['[', ']']).parse().ok()?;
    Some(std::net::SocketAddr::new(ip, 53))
}

/// For a name that does not resolve through nginx's resolver: the `set`
/// directive the handler's variable takes it from, and the names of the
/// hosts file within a typo of it, each asked of nginx's resolver.
async fn typo_evidence(map: &discovery::ServiceMap, hosts: &str, m: &mut Measured) {
    let Some(up) = map.upstreams.iter().find(|u| !u.backup) else {
        return;
    };
    let host = remedy::dns_failure::host_of(&up.address).to_owned();
    // The `set $VAR NAME` in scope of the handler, innermost block first.
    if let Some(h) = map.route.as_ref().and_then(|r| r.handler.as_ref()) {
        if let Some(var) = h
            .text
            .split(['/', ':', ' '])
            .find(|w| w.starts_with('$'))
            .map(str::to_owned)
        {
            let (file, line) = (remedy::file_of(h), h.line);
            m.name_set = tokio::task::spawn_blocking(move || {
                let text = read_capped_to(&file, crate::action::rollback::MAX_FILE)?;
                crate::action::config_edit::nginx_blocks_around(&text, line)
                    .ok()?
                    .into_iter()
                    .find_map(|b| {
                        b.children
                            .into_iter()
                            .rev()
                            .find(|d| d.name == "set" && d.args.first() == Some(&var))
                    })
                    .map(|d| remedy::ConfigDirective {
                        file: file.clone(),
                        line: d.line,
                        name: d.name,
                        args: d.args,
                    })
            })
            .await
            .ok()
            .flatten();
        }
    }
    let Some(resolver) = map.resolver.as_deref().and_then(resolver_addr) else {
        return;
    };
    let names = read_capped(hosts)
        .map(|t| hosts_names(&t, hosts))
        .unwrap_or_default();
    let mut close: Vec<(String, String)> = names
        .into_iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case(&host)
                && remedy::dns_failure::distance(
                    &n.to_ascii_lowercase(),
                    &host.to_ascii_lowercase(),
                ) <= remedy::dns_failure::MAX_TYPO
        })
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.0 == b.0);
    close.truncate(8);
    for (name, from) in close {
        let resolved = match crate::checks::dns::query(resolver, &name, 1, Duration::from_secs(2))
            .await
        {
            crate::checks::dns::Answer::Addresses(a) => a.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        };
        m.name_candidates.push(remedy::NameCandidate {
            name,
            from,
            resolved,
        });
    }
}

/// For the keepalive race: the upstream block, and (only when it keeps
/// connections alive) how long the upstream keeps an idle one, probed from
/// this host.
async fn keepalive_evidence(map: &discovery::ServiceMap, m: &mut Measured) {
    let m2 = map.clone();
    m.upstream_block = tokio::task::spawn_blocking(move || upstream_block(&m2))
        .await
        .ok()
        .flatten();
    if m.upstream_block
        .as_ref()
        .and_then(|b| b.child("keepalive"))
        .is_none()
    {
        return;
    }
    let Some(up) = map
        .upstreams
        .iter()
        .find(|u| !u.backup && u.group.is_some() && u.kind != "unix")
    else {
        return;
    };
    let path = if map.target.path.is_empty() {
        "/"
    } else {
        map.target.path.as_str()
    };
    m.idle = Some(idle::measure(&up.address, &map.target.host, path).await);
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let label = p.label();
    let mut report = match discovery::discover(&p.url, &p.overrides).await {
        Err(e) => CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
        Ok(map) => {
            let master = map.php_fpm.as_ref().map(|f| f.master_pid);
            let front = map.front.as_ref().map(|f| f.pid);
            let measured = tokio::task::spawn_blocking(move || measure(master, front)).await;
            match measured {
                Err(e) => CheckReport::new(
                    DOC.kind,
                    label,
                    Outcome::Inconclusive,
                    format!("reading /proc stopped: {e}"),
                ),
                Ok(mut m) => {
                    m.first_byte_ms = p
                        .first_byte_ms
                        .as_deref()
                        .and_then(|v| v.trim().parse().ok());
                    m.resolv_conf = p
                        .resolv_conf
                        .clone()
                        .filter(|r| !r.trim().is_empty())
                        .unwrap_or_else(|| "/etc/resolv.conf".into());
                    m.nameservers = read_capped(&m.resolv_conf)
                        .map(|t| remedy::dns_failure::nameservers(&t))
                        .unwrap_or_default();
                    m.header_bytes = p
                        .header_bytes
                        .as_deref()
                        .and_then(|v| v.trim().parse().ok());
                    if p.cause == "upstream_closed" {
                        keepalive_evidence(&map, &mut m).await;
                    }
                    if p.cause == "dns_failure" && map.resolver.is_some() {
                        let hosts = p
                            .hosts
                            .clone()
                            .filter(|h| !h.trim().is_empty())
                            .unwrap_or_else(|| "/etc/hosts".into());
                        typo_evidence(&map, &hosts, &mut m).await;
                    }
                    let mut rep = report_of(&p.cause, &map, &m, label);
                    if let Some(i) = &m.idle {
                        rep = rep.with_evidence(Evidence::new(
                            "idle keep-alive connections held from this host",
                            i.detail.join("\n"),
                        ));
                    }
                    rep
                }
            }
        }
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// The report for a computed (or impossible) remedy.
pub fn report_of(
    cause: &str,
    map: &discovery::ServiceMap,
    m: &Measured,
    label: String,
) -> CheckReport {
    match remedy::compute(cause, Inputs { map, measured: m }) {
        Ok(mut r) => {
            if r.server.kind == crate::action_spec::ServerKind::PhpFpm {
                r.server.pid_file = r.server.config.as_deref().and_then(php_fpm_pid_file);
            }
            let mut rep = CheckReport::new(DOC.kind, label, Outcome::Ok, r.reason.clone())
                .with_evidence(Evidence::new("edit", r.changes.join("\n")).at(r.file.clone()));
            if r.stopgap {
                rep = rep.with_evidence(Evidence::new(
                    "stopgap",
                    "this hides the cause rather than removing it",
                ));
            }
            rep.facts = r.facts();
            rep
        }
        Err(why) => CheckReport::new(DOC.kind, label, Outcome::Inconclusive, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_and_resolver_addresses() {
        assert_eq!(
            hosts_names(
                "127.0.0.1 localhost\n# x\n10.0.0.2 app.shop.internal app # y\nbad line\n",
                "/h"
            ),
            [
                ("localhost".to_owned(), "/h:1".to_owned()),
                ("app.shop.internal".to_owned(), "/h:3".to_owned()),
                ("app".to_owned(), "/h:3".to_owned()),
            ]
        );
        assert_eq!(
            resolver_addr("127.0.0.1:5353 valid=10s"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            resolver_addr("127.53.1.2 ipv6=off"),
            Some("127.53.1.2:53".parse().unwrap())
        );
        assert_eq!(resolver_addr("[::1]"), Some("[::1]:53".parse().unwrap()));
    }

    #[test]
    fn proc_figures_parse() {
        assert_eq!(
            mem_available("MemTotal: 100 kB\nMemAvailable:    2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(
            vm_rss("Name: php-fpm\nVmRSS:\t  30720 kB\n"),
            Some(30 * 1024 * 1024)
        );
    }
}
