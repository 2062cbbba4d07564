//! Discovery through containers: from the URL's published port to the
//! container behind it, the front server inside, its configuration read
//! through `/proc/PID/root`, and upstreams resolved the way that server
//! resolves them (from its network namespace) and matched to the
//! containers that own the addresses.
//!
//! The published port leads to its container through, in order:
//! `docker-proxy`'s arguments (`/proc/PID/cmdline`: `-host-ip -host-port
//! -container-ip -container-port`), the NAT rules (`iptables-save -t nat`,
//! else `nft list ruleset`: DNAT to `IP:PORT`), and the Engine's port map.
//! The Engine (read-only, [`crate::docker`]) names the container; without
//! it, the map says what it could not see and the command that would let it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::front::{self, Kind};
use super::service_map::{ContainerRef, Front, Published, ServiceMap, Upstream};
use super::{Build, HostView, endpoint};
use crate::docker::{ContainerInspect, ContainerSummary, Docker};
use crate::sys::netns::{self, Vantage};

/// A published port: host side and container side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    pub proto: String,
    /// `None`: every address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

impl PortMap {
    fn host_text(&self) -> String {
        match self.host_ip {
            Some(ip) => endpoint(ip, self.host_port),
            None => format!("*:{}", self.host_port),
        }
    }

    fn serves(&self, addrs: &[IpAddr], port: u16) -> bool {
        self.host_port == port
            && (self.host_ip.is_none_or(|h| h.is_unspecified())
                || addrs.is_empty()
                || addrs.iter().any(|a| Some(*a) == self.host_ip))
    }
}

/// `docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 8080
/// -container-ip 172.18.0.3 -container-port 80`.
pub fn parse_docker_proxy(argv: &[String]) -> Option<PortMap> {
    let prog = argv.first()?;
    if Path::new(prog)
        .file_name()
        .is_none_or(|n| n != "docker-proxy")
    {
        return None;
    }
    let get = |flag: &str| {
        argv.iter()
            .position(|a| a == flag || a == &format!("-{flag}"))
            .and_then(|i| argv.get(i + 1))
            .map(String::as_str)
            .or_else(|| {
                argv.iter().find_map(|a| {
                    a.strip_prefix(flag)
                        .or_else(|| a.strip_prefix(&format!("-{flag}")))
                        .and_then(|r| r.strip_prefix('='))
                })
            })
    };
    let host_ip = get("-host-ip").and_then(|s| s.parse().ok());
    Some(PortMap {
        proto: get("-proto").unwrap_or("tcp").to_owned(),
        host_ip,
        host_port: get("-host-port")?.parse().ok()?,
        container_ip: get("-container-ip")?.parse().ok()?,
        container_port: get("-container-port")?.parse().ok()?,
    })
}

/// DNAT rules in `iptables-save -t nat` output:
/// `-A DOCKER -d 127.0.0.1/32 ! -i br-1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.3:80`.
pub fn parse_iptables_dnat(text: &str) -> Vec<PortMap> {
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.starts_with("-A ") || !line.contains("-j DNAT") {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            w.iter()
                .position(|x| *x == flag)
                .and_then(|i| w.get(i + 1))
                .copied()
        };
        let negated = |flag: &str| {
            w.iter()
                .position(|x| *x == flag)
                .is_some_and(|i| i > 0 && w[i - 1] == "!")
        };
        let Some(port) = after("--dport").and_then(|p| p.parse().ok()) else {
            continue;
        };
        let Some(dest) = after("--to-destination").and_then(parse_dest) else {
            continue;
        };
        let host_ip = if negated("-d") {
            None
        } else {
            after("-d")
                .and_then(|d| d.split('/').next())
                .and_then(|d| d.parse().ok())
        };
        out.push(PortMap {
            proto: after("-p").unwrap_or("tcp").to_owned(),
            host_ip,
            host_port: port,
            container_ip: dest.0,
            container_port: dest.1.unwrap_or(port),
        });
    }
    out
}

/// DNAT rules in `nft list ruleset` output:
/// `ip daddr 127.0.0.1 tcp dport 8080 ... dnat to 172.18.0.3:80`.
pub fn parse_nft_dnat(text: &str) -> Vec<PortMap> {
    let mut out = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(d) = w.iter().position(|x| *x == "dnat") else {
            continue;
        };
        let dest = w
            .get(d + 1)
            .filter(|x| **x == "to")
            .and_then(|_| w.get(d + 2))
            .or_else(|| w.get(d + 3))
            .and_then(|t| parse_dest(t));
        let Some(dest) = dest else { continue };
        let Some(dp) = w.iter().position(|x| *x == "dport") else {
            continue;
        };
        let Some(port) = w.get(dp + 1).and_then(|p| p.parse().ok()) else {
            continue;
        };
        let proto = if dp > 0 { w[dp - 1] } else { "tcp" };
        let host_ip = w
            .iter()
            .position(|x| *x == "daddr")
            .filter(|&i| w.get(i + 1) != Some(&"!="))
            .and_then(|i| w.get(i + 1))
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok());
        out.push(PortMap {
            proto: proto.to_owned(),
            host_ip,
            host_port: port,
            container_ip: dest.0,
            container_port: dest.1.unwrap_or(port),
        });
    }
    out
}

fn parse_dest(t: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    if let Some((ip, port)) = t.rsplit_once(':')
        && let (Ok(ip), Ok(port)) = (ip.parse(), port.parse())
    {
        return Some((ip, Some(port)));
    }
    t.parse().ok().map(|ip| (ip, None))
}

/// Every container, with its inspection, from the Engine.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub containers: Vec<ContainerSummary>,
    pub inspected: BTreeMap<String, ContainerInspect>,
}

impl Engine {
    /// Ask the Engine (read-only). `Err`: why it could not be asked.
    pub async fn load(docker: &Docker) -> Result<Engine, crate::docker::DockerError> {
        let containers = docker.containers().await?;
        let mut inspected = BTreeMap::new();
        // Stopped ones too: their aliases name the upstream nginx can no longer resolve.
        for c in containers.iter().take(200) {
            if let Ok(i) = docker.inspect(&c.id).await {
                inspected.insert(c.id.clone(), i);
            }
        }
        Ok(Engine {
            containers,
            inspected,
        })
    }

    /// The container with `ip` on one of its networks.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&ContainerSummary> {
        let text = ip.to_string();
        self.containers.iter().find(|c| {
            c.network_settings
                .networks
                .values()
                .any(|e| e.ip_address == text || e.global_ipv6_address == text)
        })
    }

    /// A container that is not running (exited, restarting, created) whose name, network alias
    /// or compose service is `host`, on one of `networks`: Docker's DNS does not answer for a
    /// stopped container, so this is who `host` was.
    pub fn not_running_named(&self, host: &str, networks: &[String]) -> Option<&ContainerSummary> {
        self.containers
            .iter()
            .find(|c| c.state != "running" && self.answers_to(c, host, networks))
    }

    /// The container `host` names on one of `networks`, in any state (a stopped one first):
    /// in a restart loop, Docker's DNS may not answer at the instant the Engine lists the
    /// container running again.
    pub fn named(&self, host: &str, networks: &[String]) -> Option<&ContainerSummary> {
        self.not_running_named(host, networks).or_else(|| {
            self.containers
                .iter()
                .find(|c| self.answers_to(c, host, networks))
        })
    }

    /// Is `c` on one of `networks`, under the name, compose service or alias `host`?
    fn answers_to(&self, c: &ContainerSummary, host: &str, networks: &[String]) -> bool {
        c.network_settings
            .networks
            .keys()
            .any(|n| networks.contains(n))
            && (c.name() == host
                || self.inspected.get(&c.id).is_some_and(|i| {
                    i.compose_service() == Some(host)
                        || i.network_settings.networks.iter().any(|(n, e)| {
                            networks.contains(n)
                                && (e.aliases.iter().any(|a| a == host)
                                    || e.dns_names.iter().any(|a| a == host))
                        })
                }))
    }

    /// Published ports from the Engine's port map.
    pub fn port_maps(&self) -> Vec<(PortMap, String)> {
        let mut out = Vec::new();
        for c in &self.containers {
            let Some(ip) = c
                .network_settings
                .networks
                .values()
                .find_map(|e| e.ip_address.parse::<IpAddr>().ok())
            else {
                continue;
            };
            for p in c.ports.iter().filter(|p| p.public_port != 0) {
                out.push((
                    PortMap {
                        proto: p.proto.clone(),
                        host_ip: p.ip.parse().ok(),
                        host_port: p.public_port,
                        container_ip: ip,
                        container_port: p.private_port,
                    },
                    c.id.clone(),
                ));
            }
        }
        out
    }

    /// Is `ip` a gateway of one of the containers' networks (the host as
    /// a container sees it)?
    pub fn is_gateway(&self, ip: IpAddr) -> bool {
        let text = ip.to_string();
        self.containers.iter().any(|c| {
            c.network_settings
                .networks
                .values()
                .any(|e| e.gateway == text)
        })
    }

    /// The [`ContainerRef`] of a container, with `ip` as its address on the path.
    pub fn reference(&self, c: &ContainerSummary, ip: Option<IpAddr>) -> ContainerRef {
        let inspect = self.inspected.get(&c.id);
        ContainerRef {
            name: c.name().to_owned(),
            id: c.id.clone(),
            image: inspect
                .map(|i| i.config.image.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| c.image.clone()),
            state: c.state.clone(),
            compose_project: c.labels.get("com.docker.compose.project").cloned(),
            compose_service: c.labels.get("com.docker.compose.service").cloned(),
            networks: c.network_settings.networks.keys().cloned().collect(),
            ip: ip.map(|i| i.to_string()),
            pid: inspect.and_then(ContainerInspect::pid),
        }
    }
}

/// Port maps for `port` from the host's own view: `docker-proxy` processes,
/// then NAT rules.
pub async fn published_ports(
    view: &HostView,
) -> (Vec<(PortMap, String, Option<u32>)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for p in &view.procs {
        if let Some(m) = parse_docker_proxy(&p.cmdline) {
            out.push((m, format!("docker-proxy (pid {})", p.pid), Some(p.pid)));
        }
    }
    for (tool, args, parse) in [
        (
            "iptables-save",
            &["-t", "nat"][..],
            parse_iptables_dnat as fn(&str) -> Vec<PortMap>,
        ),
        ("nft", &["list", "ruleset"][..], parse_nft_dnat),
    ] {
        let Ok(bin) = which::which(tool) else {
            continue;
        };
        match front::tool_output(&bin, args).await {
            Ok(text) => {
                let rules = parse(&text);
                let how = format!("a DNAT rule ({} {})", tool, args.join(" "));
                let found = !rules.is_empty();
                out.extend(rules.into_iter().map(|m| (m, how.clone(), None)));
                if found {
                    break;
                }
            }
            Err(e) => notes.push(format!("{tool}: {e}")),
        }
    }
    (out, notes)
}

/// When the URL's port is published to a container (a `docker-proxy`
/// listener, or no listener and a DNAT rule or Engine port map), map the
/// path through that container and return `true`.
pub async fn discover_published(
    map: &mut ServiceMap,
    view: &HostView,
    addrs: &[IpAddr],
    listener_pid: Option<u32>,
    overrides: &BTreeMap<String, String>,
) -> bool {
    let port = map.target.port;
    // Only when the listener is docker-proxy, or nothing listens.
    if let Some(pid) = listener_pid
        && view
            .process(pid)
            .is_none_or(|p| parse_docker_proxy(&p.cmdline).is_none())
    {
        return false;
    }
    let (mut maps, notes) = published_ports(view).await;
    let engine = match Docker::from_env() {
        Ok(d) => match Engine::load(&d).await {
            Ok(e) => Some(e),
            Err(e) => {
                if let Some(u) = e.unavailable() {
                    map.engine = Some(u.clone());
                } else {
                    map.note(format!("the container engine: {e}"));
                }
                None
            }
        },
        Err(u) => {
            map.engine = Some(u);
            None
        }
    };
    if let Some(e) = &engine {
        maps.extend(
            e.port_maps()
                .into_iter()
                .map(|(m, _)| (m, "the engine's port map".to_owned(), None)),
        );
    }
    // Prefer the docker-proxy holding the listener.
    let pick = maps
        .iter()
        .find(|(m, _, p)| p.is_some() && *p == listener_pid && m.host_port == port)
        .or_else(|| maps.iter().find(|(m, _, _)| m.serves(addrs, port)))
        .cloned();
    let Some((pm, via, proxy_pid)) = pick else {
        if listener_pid.is_some() {
            for n in notes {
                map.note(n);
            }
        }
        return false;
    };
    map.gateway_local = true;
    map.gateway = None;
    map.published = Some(Published {
        host: pm.host_text(),
        container: endpoint(pm.container_ip, pm.container_port),
        proto: pm.proto.clone(),
        via: via.clone(),
        proxy_pid,
    });
    map.target.local_endpoint = Some(pm.host_text());
    map.sources.insert("published".into(), via.clone());
    let cref = if let Some(engine) = &engine {
        let Some(summary) = engine.by_ip(pm.container_ip) else {
            map.unknown(
                "front.container",
                format!(
                    "no container has the address {} any more (port {port} is published there by {via}: the container was removed or recreated with another address)",
                    pm.container_ip
                ),
            );
            return true;
        };
        map.sources.insert(
            "front.container".into(),
            format!("GET /containers/json (address {})", pm.container_ip),
        );
        engine.reference(summary, Some(pm.container_ip))
    } else {
        // Without the engine: the network namespace that owns the address,
        // from /proc alone; the container is named by its hostname (Docker
        // sets it to the short id).
        let why = map
            .engine
            .as_ref()
            .map_or_else(|| "unknown error".to_owned(), ToString::to_string);
        let Some(pid) = pid_owning(view, pm.container_ip) else {
            if netns::netns_id(1).is_none() {
                // Not root: other users' /proc/PID/ns/net cannot be read, so the namespace
                // that owns the address (the container) cannot be found from /proc either.
                let u = crate::check::Unseen::new(
                    format!(
                        "the network namespaces of the containers (which one has {})",
                        pm.container_ip
                    ),
                    "permission denied on /proc/PID/ns/net of processes that are not yours",
                    crate::check::AS_ROOT,
                );
                if !map.unseen.contains(&u) {
                    map.unseen.push(u);
                }
            }
            map.unknown(
                "front.container",
                format!(
                    "port {port} is published to {} ({via}), but no namespace on this host has that address and the container engine cannot be asked: {why}",
                    endpoint(pm.container_ip, pm.container_port),
                ),
            );
            return true;
        };
        let hostname = crate::sys::read_text(Path::new(&format!("/proc/{pid}/root/etc/hostname")))
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        map.sources.insert(
            "front.container".into(),
            format!(
                "/proc/{pid}/net/fib_trie has {} and /proc/{pid}/root/etc/hostname (the engine cannot be asked: {why})",
                pm.container_ip
            ),
        );
        ContainerRef {
            name: hostname.clone(),
            id: hostname,
            state: "running".into(),
            ip: Some(pm.container_ip.to_string()),
            pid: Some(pid),
            ..ContainerRef::default()
        }
    };
    let Some(cpid) = cref.pid else {
        map.unknown(
            "front.pid",
            format!(
                "container {} is {} (no process runs in it)",
                cref.name, cref.state
            ),
        );
        map.front = Some(Front {
            kind: "other".into(),
            listener: format!("tcp {}", endpoint(pm.container_ip, pm.container_port)),
            container: Some(cref),
            ..Front::default()
        });
        return true;
    };
    // The front server: the first nginx/apache/haproxy master among the
    // container's processes (its first process and descendants).
    let procs = descendants(view, cpid);
    let master = procs
        .iter()
        .filter_map(|pid| view.process(*pid))
        .find(|p| {
            let k = front::kind_of(p);
            matches!(k, Kind::Nginx | Kind::Apache | Kind::Haproxy)
                && view
                    .process(p.ppid)
                    .is_none_or(|pp| front::kind_of(pp) != k)
        })
        .or_else(|| view.process(cpid))
        .cloned();
    let Some(proc_) = master else {
        map.unknown(
            "front.pid",
            format!("process {cpid} of container {} cannot be read", cref.name),
        );
        return true;
    };
    let kind = overrides
        .get("front.kind")
        .and_then(|k| Kind::parse(k))
        .unwrap_or_else(|| front::kind_of(&proc_));
    let cname = cref.name.clone();
    let cid = cref.id.clone();
    map.front = Some(Front {
        kind: kind.as_str().to_owned(),
        pid: proc_.pid,
        comm: proc_.comm.clone(),
        exe: proc_.exe.as_ref().map(|e| e.display().to_string()),
        user: proc_.user_or_uid(),
        command_line: proc_.cmdline_text(),
        listener: format!(
            "tcp {} in container {cname}",
            endpoint(pm.container_ip, pm.container_port)
        ),
        container: Some(cref),
        ..Front::default()
    });
    map.sources.insert(
        "front.pid".into(),
        format!(
            "container {cname} (State.Pid {cpid}) and its processes in /proc: {}",
            proc_.program()
        ),
    );
    map.vantage = Vantage::Netns {
        pid: proc_.pid,
        container: Some(cname.clone()),
    };
    let root = PathBuf::from(format!("/proc/{}/root", proc_.pid));
    if std::fs::read_dir(&root).is_err() {
        map.unknown(
            "front.config",
            format!(
                "cannot read the filesystem of container {cname} through {} (run as root)",
                root.display()
            ),
        );
    }
    // nginx -V is not run: that would execute the container's binary on
    // this host. The Debian packages and the official images agree on
    // /etc/nginx/nginx.conf; `-c` on the command line wins.
    let build = Build {
        source: format!("inside container {cname}"),
        nginx: front::NginxBuild {
            prefix: Some("/etc/nginx".into()),
            conf_path: Some("/etc/nginx/nginx.conf".into()),
            ..front::NginxBuild::default()
        },
        ..Build::default()
    };
    let ov = overrides.clone();
    let cip = pm.container_ip;
    let cport = pm.container_port;
    let view2 = view.clone();
    let mut m = std::mem::take(map);
    let mapped = tokio::task::spawn_blocking(move || {
        let args = front::arguments(&proc_);
        let cwd = PathBuf::from("/");
        let config_override = ov.get("front.config").map(PathBuf::from);
        match kind {
            Kind::Nginx => super::map_nginx_at(
                &mut m,
                &args,
                &cwd,
                &build,
                config_override,
                Some(cip),
                cport,
                Some(&root),
            ),
            other => m.unknown(
                "route",
                format!(
                    "{} in a container: its configuration is not parsed yet; give the route and upstream with --var",
                    other.as_str()
                ),
            ),
        }
        super::observed_workers(&mut m, &proc_, &view2);
        m
    })
    .await;
    match mapped {
        Ok(m) => *map = m,
        Err(e) => map.unknown("route", format!("discovery failed internally: {e}")),
    }
    if let Some(f) = map.front.as_mut()
        && let Some(c) = &f.config
    {
        if f.config_source
            .as_deref()
            .is_some_and(|s| s.ends_with("(--conf-path)"))
        {
            f.config_source = Some(format!(
                "the usual path inside container {cname} (nginx -V is not run for a containerized server)"
            ));
        }
        map.sources.insert(
            "front.config".into(),
            format!(
                "{c} inside container {cname} (read through /proc/{}/root)",
                f.pid
            ),
        );
    }
    upstreams_from_container(map, engine.as_ref(), view).await;
    let log_path = engine
        .as_ref()
        .and_then(|e| e.inspected.get(&cid))
        .filter(|i| {
            i.host_config.log_config.driver.is_empty()
                || i.host_config.log_config.driver == "json-file"
        })
        .map(|i| i.log_path.clone())
        .filter(|p| !p.is_empty());
    if let Some(pid) = map.front.as_ref().map(|f| f.pid) {
        logs_on_host(map, pid, &cname, log_path.as_deref());
    }
    true
}

/// Where a log target of the front server inside container `cname` (process `pid`) can be read
/// from this host: `/dev/stderr`, `/dev/stdout` (or a file that links to them, as in the official
/// nginx image) → Docker's json-file log `log_path`; any other absolute path → the same file
/// through `/proc/PID/root`. `None`: not readable as a file from here (no json-file log).
pub fn host_log_target(target: &str, pid: u32, log_path: Option<&str>) -> Option<String> {
    const STD: &[&str] = &["stderr", "stdout", "/dev/stderr", "/dev/stdout"];
    let std_stream = |t: &str| {
        STD.contains(&t) || t.starts_with("/proc/self/fd/") || t == "/dev/fd/1" || t == "/dev/fd/2"
    };
    if std_stream(target) {
        return log_path.map(str::to_owned);
    }
    if !target.starts_with('/') || target.contains('$') {
        return None;
    }
    let inside = format!("/proc/{pid}/root{target}");
    if let Ok(link) = std::fs::read_link(&inside)
        && std_stream(&link.to_string_lossy())
    {
        return log_path.map(str::to_owned);
    }
    Some(inside)
}

/// Rewrites the map's error and access logs of a containerized front to paths this host reads,
/// keeping where each came from (the directive inside the container).
fn logs_on_host(map: &mut ServiceMap, pid: u32, cname: &str, log_path: Option<&str>) {
    let mut sources = Vec::new();
    for (kind, list) in [
        ("error", &mut map.logs.error),
        ("access", &mut map.logs.access),
    ] {
        for t in list.iter_mut() {
            let Some(host) = host_log_target(t, pid, log_path) else {
                continue;
            };
            let directive = map
                .logs
                .sources
                .iter()
                .find(|s| s.kind == kind && s.target == *t)
                .map_or_else(|| "default".to_owned(), |s| s.source.clone());
            let how = if Some(host.as_str()) == log_path {
                format!(
                    "{t} inside container {cname} ({directive}) is the container's output: Docker's json-file log"
                )
            } else {
                format!("{t} inside container {cname} ({directive})")
            };
            sources.push(crate::discovery::service_map::LogSource {
                kind: kind.to_owned(),
                target: host.clone(),
                source: how,
            });
            *t = host;
        }
        list.dedup();
    }
    map.logs.sources.extend(sources);
}

/// A process in the network namespace (other than this host's) that owns
/// `ip` (`/proc/PID/net/fib_trie`), looking at one process per namespace.
pub fn pid_owning(view: &HostView, ip: IpAddr) -> Option<u32> {
    let host_ns = netns::netns_id(1);
    let mut seen = std::collections::BTreeSet::new();
    for p in view.procs.iter().take(crate::sys::MAX_PROCESSES) {
        let Some(ns) = netns::netns_id(p.pid) else {
            continue;
        };
        if Some(&ns) == host_ns.as_ref() || !seen.insert(ns.clone()) {
            continue;
        }
        let Ok(trie) = crate::sys::read_text(Path::new(&format!("/proc/{}/net/fib_trie", p.pid)))
        else {
            continue;
        };
        if crate::sys::net::parse_fib_trie_local(&trie).contains(&ip) {
            // The namespace's first process: the lowest pid in it.
            let pid = view
                .procs
                .iter()
                .filter(|q| netns::netns_id(q.pid).as_ref() == Some(&ns))
                .map(|q| q.pid)
                .min()
                .unwrap_or(p.pid);
            return Some(pid);
        }
    }
    None
}

/// `pid` and its descendants (host PIDs), breadth first.
pub fn descendants(view: &HostView, pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 10_000 {
        let parent = out[i];
        out.extend(
            view.procs
                .iter()
                .filter(|p| p.ppid == parent && p.pid != parent)
                .map(|p| p.pid),
        );
        i += 1;
    }
    out
}

/// Resolve each upstream from the front's namespace and name its container.
async fn upstreams_from_container(map: &mut ServiceMap, engine: Option<&Engine>, view: &HostView) {
    let Vantage::Netns { pid, container } = map.vantage.clone() else {
        return;
    };
    let cname = container.unwrap_or_default();
    let front_networks: Vec<String> = map
        .front
        .as_ref()
        .and_then(|f| f.container.as_ref())
        .and_then(|fc| engine?.containers.iter().find(|c| c.id == fc.id))
        .map(|c| c.network_settings.networks.keys().cloned().collect())
        .unwrap_or_default();
    for u in &mut map.upstreams {
        if u.kind == "unix" || u.address.contains('$') {
            u.listener_note.get_or_insert_with(|| {
                format!("inside container {cname}: not probed from the host")
            });
            continue;
        }
        let Some((host, port)) = split_host_port(&u.address, &u.scheme) else {
            u.listener_note = Some(format!("cannot parse {} as host:port", u.address));
            continue;
        };
        let res = netns::resolve_in(Some(pid), &host, Duration::from_secs(2)).await;
        u.resolved = res.addresses.iter().map(ToString::to_string).collect();
        u.resolved_from = Some(if res.source.starts_with("dns") {
            format!("{} from container {cname}", res.source)
        } else {
            format!("{} inside container {cname}", res.source)
        });
        if let Some(e) = &res.error {
            u.listener_note = Some(format!(
                "{host} does not resolve from container {cname}: {e}"
            ));
            if let Some(engine) = engine
                && let Some(c) = engine.named(&host, &front_networks)
            {
                let r = engine.reference(c, None);
                u.listener_note = Some(format!(
                    "{host} does not resolve from container {cname}: {e}; container {} ({host} on their network) is {}, and Docker's DNS does not answer for a container that is not running (or between two restarts)",
                    r.name, c.state
                ));
                u.local = Some(false);
                u.container = Some(r);
            }
            continue;
        }
        let Some(ip) = res.addresses.first().copied() else {
            continue;
        };
        if ip.is_loopback() {
            u.listener_note = Some(format!(
                "{} is container {cname}'s own loopback, not this host's",
                endpoint(ip, port)
            ));
            u.local = Some(false);
            continue;
        }
        if let Some(engine) = engine
            && let Some(c) = engine.by_ip(ip)
        {
            let r = engine.reference(c, Some(ip));
            u.local = Some(false);
            container_listener(u, &r, ip, port, view);
            u.container = Some(r);
        } else if engine.is_some_and(|e| e.is_gateway(ip)) || view.local.contains(&ip) {
            u.local = Some(true);
            match view.scan.tcp_for(ip, port).first() {
                Some(l) => {
                    let owner = front::master_of(l, &view.procs);
                    u.listener_pid = owner;
                    u.listener = owner.map(|p| view.label(p));
                    u.listener_note = Some(format!(
                        "{} is this host (seen from container {cname} as its gateway)",
                        endpoint(ip, port)
                    ));
                }
                None => {
                    u.listener_note = Some(format!(
                        "{} is this host, and nothing on this host listens on port {port} there",
                        endpoint(ip, port)
                    ));
                }
            }
        } else if engine.is_none()
            && let Some(owner) = pid_owning(view, ip)
        {
            // Without the engine: the namespace that has the address, named
            // by its hostname (Docker's short id).
            let hostname =
                crate::sys::read_text(Path::new(&format!("/proc/{owner}/root/etc/hostname")))
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_default();
            let r = ContainerRef {
                name: hostname.clone(),
                id: hostname,
                state: "running".into(),
                ip: Some(ip.to_string()),
                pid: Some(owner),
                ..ContainerRef::default()
            };
            u.local = Some(false);
            container_listener(u, &r, ip, port, view);
            u.container = Some(r);
        } else if engine.is_none() {
            u.listener_note = Some(format!(
                "{} is in no namespace on this host, and the container engine cannot be asked",
                endpoint(ip, port)
            ));
        } else if let Some(engine) = engine
            && let Some(c) = engine.not_running_named(&host, &front_networks)
        {
            // A container between two restarts (or just stopped): Docker's DNS answered a
            // moment ago, the Engine lists it without an address now.
            let r = engine.reference(c, None);
            u.listener_note = Some(format!(
                "{} is no container's address at the moment; container {} ({host} on their network) is {}",
                endpoint(ip, port),
                r.name,
                c.state
            ));
            u.local = Some(false);
            u.container = Some(r);
        } else {
            u.listener_note = Some(format!(
                "{} is no container's address and not this host",
                endpoint(ip, port)
            ));
        }
    }
}

/// Who listens on `ip:port` inside container `c` (its own
/// `/proc/PID/net/tcp*`, the sockets' owners among its processes).
fn container_listener(u: &mut Upstream, c: &ContainerRef, ip: IpAddr, port: u16, view: &HostView) {
    let Some(pid) = c.pid else {
        u.listener_note = Some(format!(
            "{} is container {}, which is {} (no process runs in it)",
            endpoint(ip, port),
            c.name,
            c.state
        ));
        return;
    };
    let mut all = Vec::new();
    for (file, proto) in [
        ("tcp", crate::sys::Proto::Tcp),
        ("tcp6", crate::sys::Proto::Tcp6),
    ] {
        if let Ok(text) = crate::sys::read_text(Path::new(&format!("/proc/{pid}/net/{file}"))) {
            all.extend(crate::sys::net::parse_inet(&text, proto));
        }
    }
    if let Some(l) = all.iter().find(|l| l.accepts(ip, port)) {
        let owner = descendants(view, pid).into_iter().find(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd")).is_ok_and(|d| {
                d.flatten().take(crate::sys::MAX_FDS_PER_PROCESS).any(|e| {
                    std::fs::read_link(e.path())
                        .ok()
                        .and_then(|t| crate::sys::net::socket_inode(&t))
                        == Some(l.inode)
                })
            })
        });
        u.listener_pid = owner;
        u.listener = Some(match owner {
            Some(p) => format!("{} in container {}", view.label(p), c.name),
            None => format!("a socket on port {port} in container {}", c.name),
        });
        u.listener_note = Some(format!(
            "{} is container {} ({}); seen in /proc/{pid}/net/tcp",
            endpoint(ip, port),
            c.name,
            c.state
        ));
        return;
    }
    let on_port: Vec<String> = all
        .iter()
        .filter(|l| l.port == Some(port))
        .filter_map(|l| l.addr.map(|a| endpoint(a, port)))
        .collect();
    u.listener_note = Some(if on_port.is_empty() {
        format!(
            "nothing listens on port {port} in container {} ({}; /proc/{pid}/net/tcp)",
            c.name, c.state
        )
    } else {
        format!(
            "container {} listens on port {port} only on {} (/proc/{pid}/net/tcp): not reachable at {}",
            c.name,
            on_port.join(", "),
            endpoint(ip, port)
        )
    });
}

/// `app:3000` → (`app`, 3000); the scheme's default port when absent.
pub fn split_host_port(address: &str, scheme: &str) -> Option<(String, u16)> {
    if let Ok(sa) = address.parse::<SocketAddr>() {
        return Some((sa.ip().to_string(), sa.port()));
    }
    match address.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            Some((h.trim_matches(['[', ']']).to_owned(), p.parse().ok()?))
        }
        _ => Some((
            address.trim_matches(['[', ']']).to_owned(),
            if scheme == "https" { 443 } else { 80 },
        )),
    }
}

/// A host front proxying to a published port: name the container behind
/// each upstream held by `docker-proxy`.
pub async fn upstreams_through_published(map: &mut ServiceMap, view: &HostView) {
    let proxied: Vec<(usize, PortMap)> = map
        .upstreams
        .iter()
        .enumerate()
        .filter_map(|(i, u)| {
            let p = view.process(u.listener_pid?)?;
            Some((i, parse_docker_proxy(&p.cmdline)?))
        })
        .collect();
    if proxied.is_empty() {
        return;
    }
    let engine = match Docker::from_env() {
        Ok(d) => Engine::load(&d).await.map_err(|e| {
            e.unavailable()
                .cloned()
                .unwrap_or(crate::docker::Unavailable {
                    socket: Some(d.socket.clone()),
                    reason: e.to_string(),
                    fix: "sudo systemctl status docker".into(),
                    permission: false,
                })
        }),
        Err(u) => Err(u),
    };
    for (i, pm) in proxied {
        let u = &mut map.upstreams[i];
        let behind = endpoint(pm.container_ip, pm.container_port);
        match &engine {
            Ok(e) => match e.by_ip(pm.container_ip) {
                Some(c) => {
                    let r = e.reference(c, Some(pm.container_ip));
                    u.listener_note = Some(format!(
                        "a published port: docker-proxy forwards it to container {} {behind}",
                        r.name
                    ));
                    u.container = Some(r);
                }
                None => {
                    u.listener_note = Some(format!(
                        "a published port: docker-proxy forwards it to {behind}, which no container has any more"
                    ));
                }
            },
            Err(un) => {
                u.listener_note = Some(format!(
                    "a published port: docker-proxy forwards it to {behind} (the container engine cannot be asked: {un})"
                ));
            }
        }
    }
    if let Err(u) = engine {
        map.engine.get_or_insert(u);
    }
}

/// Flat facts for playbooks: `front.container`, `upstream.container`, `vantage` ...
pub fn facts(map: &ServiceMap, f: &mut BTreeMap<String, String>) {
    f.insert("vantage".into(), map.vantage.fact());
    f.insert("vantage.description".into(), map.vantage.describe());
    if let Vantage::Netns { pid, .. } = &map.vantage {
        f.insert("vantage.pid".into(), pid.to_string());
        // The URL itself is probed from the client's side (this host).
        f.insert(
            "vantage.client".into(),
            format!("{}:{}", map.target.host, map.target.port),
        );
    }
    let mut put = |prefix: &str, c: &ContainerRef| {
        f.insert(prefix.to_owned(), c.name.clone());
        f.insert(format!("{prefix}.id"), c.id.clone());
        f.insert(format!("{prefix}.image"), c.image.clone());
        f.insert(format!("{prefix}.state"), c.state.clone());
        f.insert(format!("{prefix}.networks"), c.networks.join("\n"));
        if let Some(ip) = &c.ip {
            f.insert(format!("{prefix}.ip"), ip.clone());
        }
        if let Some(p) = c.pid {
            f.insert(format!("{prefix}.pid"), p.to_string());
        }
        if let Some(p) = &c.compose_project {
            f.insert(format!("{prefix}.compose_project"), p.clone());
        }
        if let Some(s) = &c.compose_service {
            f.insert(format!("{prefix}.compose_service"), s.clone());
        }
    };
    if let Some(c) = map.front.as_ref().and_then(|f| f.container.as_ref()) {
        put("front.container", c);
    }
    let first = map
        .upstreams
        .iter()
        .find(|u| !u.backup)
        .or(map.upstreams.first());
    if let Some(u) = first {
        if let Some(c) = &u.container {
            put("upstream.container", c);
        }
        if !u.resolved.is_empty() {
            f.insert("upstream.resolved".into(), u.resolved.join("\n"));
        }
    }
    if let Some(p) = &map.published {
        f.insert("published".into(), p.host.clone());
        f.insert("published.container".into(), p.container.clone());
        f.insert("published.via".into(), p.via.clone());
    }
    if let Some(e) = &map.engine {
        f.insert("engine.unavailable".into(), e.reason.clone());
        f.insert("engine.fix".into(), e.fix.clone());
    }
}

/// The hop of one upstream as the text map shows it: `app:3000 = container shop-app 172.18.0.4`.
pub fn upstream_hop(u: &Upstream) -> Option<String> {
    let c = u.container.as_ref()?;
    Some(format!(
        "{} = container {}{}",
        u.address,
        c.name,
        c.ip.as_deref().map(|i| format!(" {i}")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn docker_proxy_arguments() {
        let m = parse_docker_proxy(&argv(
            "/usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 8080 -container-ip 172.18.0.3 -container-port 80",
        ))
        .unwrap();
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((m.host_port, m.container_port), (8080, 80));
        assert_eq!(m.container_ip, "172.18.0.3".parse::<IpAddr>().unwrap());
        assert!(m.serves(&["127.0.0.1".parse().unwrap()], 8080));
        assert!(!m.serves(&["10.0.0.1".parse().unwrap()], 8080));
        // The `--flag=value` form and IPv6.
        let m = parse_docker_proxy(&argv(
            "docker-proxy --proto=tcp --host-ip=:: --host-port=443 --container-ip=fd00::3 --container-port=8443",
        ))
        .unwrap();
        assert_eq!(m.host_port, 443);
        assert!(
            m.serves(&["10.0.0.1".parse().unwrap()], 443),
            "a wildcard serves any address"
        );
        assert!(parse_docker_proxy(&argv("/usr/bin/nginx -g daemon off;")).is_none());
        assert!(parse_docker_proxy(&argv("docker-proxy -host-port x")).is_none());
        assert!(parse_docker_proxy(&[]).is_none());
    }

    #[test]
    fn iptables_dnat_rules() {
        let text = "*nat\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A DOCKER -i br-1 -j RETURN\n-A DOCKER -d 127.0.0.1/32 ! -i br-5a -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.3:80\n-A DOCKER ! -i docker0 -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.17.0.2:9000\n-A DOCKER -p tcp --dport 1 -j DNAT --to-destination garbage\nCOMMIT\n";
        let m = parse_iptables_dnat(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(m[0].container_ip, "172.18.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(m[1].host_ip, None);
        assert_eq!(m[1].container_port, 9000);
    }

    #[test]
    fn nft_dnat_rules() {
        let text = "table ip nat {\n chain DOCKER {\n  iifname != \"br-5a\" ip daddr 127.0.0.1 tcp dport 8080 counter packets 0 bytes 0 dnat to 172.18.0.3:80\n  meta l4proto tcp tcp dport 9000 dnat ip to 172.17.0.2\n  tcp dport x dnat to 1.2.3.4:5\n }\n}\n";
        let m = parse_nft_dnat(text);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].host_port, 8080);
        assert_eq!(m[0].container_port, 80);
        assert_eq!(m[0].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(m[1].container_ip, "172.17.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(m[1].container_port, 9000);
    }

    #[test]
    fn container_log_targets_as_this_host_reads_them() {
        let json = "/var/lib/docker/containers/ab/ab-json.log";
        for t in ["stderr", "/dev/stderr", "/dev/stdout", "/proc/self/fd/2"] {
            assert_eq!(
                host_log_target(t, 42, Some(json)).as_deref(),
                Some(json),
                "{t}"
            );
            // Another log driver: the container's output is not a file here.
            assert_eq!(host_log_target(t, 42, None), None, "{t}");
        }
        assert_eq!(
            host_log_target("/var/log/app/error.log", 42, Some(json)).as_deref(),
            Some("/proc/42/root/var/log/app/error.log")
        );
        assert_eq!(
            host_log_target("syslog:server=unix:/dev/log", 42, Some(json)),
            None
        );
        assert_eq!(host_log_target("/var/log/$host.log", 42, Some(json)), None);
    }

    #[test]
    fn host_and_port_of_upstreams() {
        assert_eq!(
            split_host_port("app:3000", "http"),
            Some(("app".into(), 3000))
        );
        assert_eq!(split_host_port("app", "http"), Some(("app".into(), 80)));
        assert_eq!(
            split_host_port("[::1]:81", "http"),
            Some(("::1".into(), 81))
        );
        assert_eq!(split_host_port("app:x", "http"), None);
    }
}
