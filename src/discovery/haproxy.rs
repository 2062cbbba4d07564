//! HAProxy: find its configuration (`-f` files or directories), parse its
//! sections and map a URL: frontend by `bind`, backend by `use_backend`
//! conditions (ACLs on host and path evaluated where they can be) or
//! `default_backend`, its `server` lines, `log` targets and who receives
//! them, the stats socket, timeouts and the worker user.

pub mod acl;
pub mod parse;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::directive::Directive;
use super::service_map::{Place, Route, ServiceMap, SyslogReceiver, Upstream};
use super::{HostView, front};
use crate::check::Evidence;
use crate::sys;

/// Locate, parse and map an HAProxy front.
pub fn discover(
    map: &mut ServiceMap,
    args: &[String],
    cwd: &Path,
    config_override: Option<PathBuf>,
    local_ip: Option<IpAddr>,
    view: &HostView,
) {
    let (files, how): (Vec<PathBuf>, String) = if let Some(c) = config_override {
        (vec![c], "--var front.config".into())
    } else {
        let f = front::options(args, "-f");
        if f.is_empty() {
            (
                vec![PathBuf::from("/etc/haproxy/haproxy.cfg")],
                "standard path".into(),
            )
        } else {
            (
                f.iter().map(|p| front::absolute(cwd, p)).collect(),
                "command line -f".into(),
            )
        }
    };
    if let Some(fr) = map.front.as_mut() {
        fr.config = files.first().map(|p| p.display().to_string());
        fr.config_source = Some(how.clone());
    }
    map.sources.insert("front.config".into(), how);
    match parse::parse(&files, super::source::Limits::default()) {
        Ok(cfg) => {
            if let Some(fr) = map.front.as_mut() {
                fr.config_files = cfg.files.iter().map(|p| p.display().to_string()).collect();
            }
            let req = acl::Request {
                host: map.target.host.clone(),
                port: map.target.port,
                path: map.target.path.clone(),
                local_ip,
            };
            route(&cfg, &req, map, view);
        }
        Err(e) => super::config_error(map, &e),
    }
}

fn place(d: &Directive) -> Place {
    Place {
        file: d.file.display().to_string(),
        line: d.line,
        text: d.text(),
    }
}

/// A `bind` address: (ip or wildcard, port range, v6).
fn bind_rank(arg: &str, ip: Option<IpAddr>, port: u16) -> u8 {
    arg.split(',')
        .map(|a| {
            let a = a
                .trim_start_matches("ipv4@")
                .trim_start_matches("ipv6@")
                .trim_start_matches("tcp@")
                .trim_start_matches("tcp4@")
                .trim_start_matches("tcp6@");
            let Some((h, p)) = a.rsplit_once(':') else {
                return 0;
            };
            let (lo, hi) = if let Some((l, h)) = p.split_once('-') {
                (l.parse().unwrap_or(0), h.parse().unwrap_or(0))
            } else {
                let v: u16 = p.parse().unwrap_or(0);
                (v, v)
            };
            if port < lo || port > hi {
                return 0;
            }
            let h = h.trim_matches(['[', ']']);
            match (h, ip) {
                ("" | "*" | "0.0.0.0", Some(IpAddr::V4(_))) | ("::" | "", Some(IpAddr::V6(_))) => 1,
                ("::", Some(IpAddr::V4(_))) => 1,
                (_, None) => 1,
                (h, Some(ip)) => {
                    if h.parse::<IpAddr>().ok() == Some(ip)
                        || (h == "localhost" && ip.is_loopback())
                    {
                        2
                    } else {
                        0
                    }
                }
            }
        })
        .max()
        .unwrap_or(0)
}

/// The `defaults` section in effect for a proxy: the last one before it.
fn defaults_for<'a>(cfg: &'a parse::HaproxyConfig, section: &Directive) -> Option<&'a Directive> {
    let idx = cfg.sections.iter().position(|s| std::ptr::eq(s, section))?;
    cfg.sections[..idx].iter().rev().find(|s| s.is("defaults"))
}

/// A keyword's value in a section, else in its defaults.
fn with_defaults<'a>(
    section: &'a Directive,
    defaults: Option<&'a Directive>,
    pred: &dyn Fn(&Directive) -> bool,
) -> Option<&'a Directive> {
    section
        .children()
        .iter()
        .rev()
        .find(|d| pred(d))
        .or_else(|| defaults.and_then(|d| d.children().iter().rev().find(|x| pred(x))))
}

pub fn route(cfg: &parse::HaproxyConfig, req: &acl::Request, m: &mut ServiceMap, view: &HostView) {
    let proxies: Vec<(&Directive, u8)> = cfg
        .sections
        .iter()
        .filter(|s| s.is("frontend") || s.is("listen"))
        .map(|s| {
            let r = s
                .all("bind")
                .filter_map(|b| b.arg(0))
                .map(|a| bind_rank(a, req.local_ip, req.port))
                .max()
                .unwrap_or(0);
            (s, r)
        })
        .filter(|(_, r)| *r > 0)
        .collect();
    let Some(top) = proxies.iter().map(|p| p.1).max() else {
        m.unknown(
            "route",
            format!("no frontend or listen section binds port {}", req.port),
        );
        return;
    };
    let Some(fe) = proxies.iter().find(|p| p.1 == top).map(|p| p.0) else {
        return;
    };
    let fe_defaults = defaults_for(cfg, fe);
    let mut route = Route {
        server_block: Some(place(fe)),
        ..Route::default()
    };
    m.evidence
        .push(Evidence::new("frontend", fe.text()).at(fe.at()));
    for b in fe.all("bind") {
        m.evidence.push(Evidence::new("bind", b.text()).at(b.at()));
    }
    // Backend choice.
    let acls = acl::Acls::of(fe);
    let mut backend_name: Option<(String, &Directive)> = None;
    for d in fe.children().iter().filter(|d| d.is("use_backend")) {
        let Some(name) = d.arg(0) else { continue };
        match acl::condition(&d.args[1..], &acls, req) {
            Ok(true) => {
                route.why.push(format!("{} matches", d.text()));
                backend_name = Some((name.to_owned(), d));
                break;
            }
            Ok(false) => {}
            Err(why) => m.note(format!(
                "{} at {} not evaluated ({why}): assumed not to match",
                d.text(),
                d.at()
            )),
        }
    }
    if backend_name.is_none() {
        if let Some(d) = with_defaults(fe, fe_defaults, &|d| d.is("default_backend")) {
            route
                .why
                .push(format!("no use_backend matches: {}", d.text()));
            backend_name = d.arg(0).map(|n| (n.to_owned(), d));
        }
    }
    let backend: Option<&Directive> = match &backend_name {
        Some((n, _)) => cfg
            .sections
            .iter()
            .find(|s| (s.is("backend") || s.is("listen")) && s.arg(0) == Some(n.as_str())),
        None if fe.is("listen") => Some(fe),
        None => None,
    };
    if let Some((n, d)) = &backend_name {
        route.handler = Some(place(d));
        m.evidence
            .push(Evidence::new("backend choice", d.text()).at(d.at()));
        if backend.is_none() {
            m.unknown(
                "upstream",
                format!("backend {n} (named at {}) is not defined", d.at()),
            );
        }
    }
    match backend {
        Some(be) => {
            route.location = Some(place(be));
            m.evidence
                .push(Evidence::new("backend", be.text()).at(be.at()));
            let be_name = be.arg(0).unwrap_or("").to_owned();
            let be_defaults = defaults_for(cfg, be);
            for s in be.all("server") {
                let Some(addr) = s.arg(1) else { continue };
                m.evidence
                    .push(Evidence::new("server", s.text()).at(s.at()));
                let options: Vec<String> = s.args[2..].to_vec();
                let backup = options.iter().any(|o| o == "backup");
                let (address, kind) = server_address(addr, req.port);
                m.upstreams.push(Upstream {
                    address,
                    kind,
                    scheme: if options.iter().any(|o| o == "ssl") {
                        "https"
                    } else {
                        "http"
                    }
                    .into(),
                    group: Some(be_name.clone()),
                    options,
                    backup,
                    source: s.at(),
                    ..Upstream::default()
                });
            }
            if be.all("server").next().is_none() {
                m.unknown(
                    "upstream",
                    format!("backend {be_name} at {} has no server lines", be.at()),
                );
            }
            for (key, name) in [("timeout_server", "server"), ("timeout_connect", "connect")] {
                if let Some(d) = with_defaults(be, be_defaults, &|d| {
                    d.is("timeout") && d.arg(0) == Some(name)
                }) {
                    m.setting(key, d.arg(1).unwrap_or(""), d.at());
                } else {
                    // HAProxy warns at startup and then never times out.
                    m.setting(
                        key,
                        "none (no timeout)",
                        "default (not set: HAProxy waits forever)",
                    );
                    m.note(format!(
                        "backend {be_name} has no `timeout {name}`: HAProxy waits forever"
                    ));
                }
            }
            // `timeout queue` defaults to `timeout connect`.
            match with_defaults(be, be_defaults, &|d| {
                d.is("timeout") && d.arg(0) == Some("queue")
            }) {
                Some(d) => m.setting("timeout_queue", d.arg(1).unwrap_or(""), d.at()),
                None => {
                    if let Some(c) = m.settings.get("timeout_connect").cloned() {
                        m.setting(
                            "timeout_queue",
                            c.value,
                            format!("default (timeout connect, {})", c.source),
                        );
                    }
                }
            }
            if let Some(d) = with_defaults(be, be_defaults, &|d| d.is("mode")) {
                m.setting("mode", d.arg(0).unwrap_or(""), d.at());
            }
            if let Some(d) = with_defaults(be, be_defaults, &|d| d.is("retries")) {
                m.setting("retries", d.arg(0).unwrap_or(""), d.at());
            }
        }
        None if backend_name.is_none() => m.unknown(
            "upstream",
            format!(
                "frontend {} has no default_backend and no use_backend matched",
                fe.arg(0).unwrap_or("")
            ),
        ),
        None => {}
    }
    if let Some(d) = with_defaults(fe, fe_defaults, &|d| {
        d.is("timeout") && d.arg(0) == Some("client")
    }) {
        m.setting("timeout_client", d.arg(1).unwrap_or(""), d.at());
    }
    if let Some(d) = with_defaults(fe, fe_defaults, &|d| {
        d.is("timeout") && d.arg(0) == Some("http-request")
    }) {
        m.setting("timeout_http_request", d.arg(1).unwrap_or(""), d.at());
    }
    m.route = Some(route);
    // Logs: the frontend's `log` lines, `log global` meaning the global ones.
    let global = cfg.sections.iter().find(|s| s.is("global"));
    let mut targets: Vec<&Directive> = Vec::new();
    let fe_logs: Vec<&Directive> = {
        let own: Vec<&Directive> = fe.all("log").collect();
        if own.is_empty() {
            fe_defaults
                .map(|d| d.all("log").collect())
                .unwrap_or_default()
        } else {
            own
        }
    };
    for l in fe_logs {
        if l.arg(0) == Some("global") {
            targets.extend(
                global
                    .map(|g| g.all("log").collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        } else {
            targets.push(l);
        }
    }
    if targets.is_empty() {
        m.unknown(
            "error_logs",
            "the frontend has no `log` line: HAProxy logs nothing for it",
        );
    }
    for t in targets {
        let Some(target) = t.arg(0) else { continue };
        m.logs.sources.push(super::service_map::LogSource {
            kind: "syslog".into(),
            target: target.to_owned(),
            source: t.at(),
        });
        let r = receiver(target, view);
        for f in &r.files {
            m.log(
                "error",
                f,
                &format!(
                    "{} (opened by {})",
                    t.at(),
                    r.receiver.clone().unwrap_or_default()
                ),
            );
            m.log(
                "access",
                f,
                &format!(
                    "{} (opened by {})",
                    t.at(),
                    r.receiver.clone().unwrap_or_default()
                ),
            );
        }
        if target == "stdout" || target == "stderr" {
            m.note(format!("log {target} at {}: HAProxy logs to its own {target} (journalctl when run by systemd)", t.at()));
        }
        m.logs.syslog.push(r);
    }
    if let Some(opt) = fe
        .children()
        .iter()
        .chain(fe_defaults.map_or(&[][..], Directive::children))
        .find(|d| d.is("option") && matches!(d.arg(0), Some("httplog" | "tcplog")))
    {
        m.logs.access_format_name = opt.arg(0).map(str::to_owned);
        m.sources.insert("access_log_format".into(), opt.at());
    }
    // Global: user, stats socket.
    if let Some(g) = global {
        if let Some(d) = g.last("user") {
            m.worker_user = d.arg(0).map(str::to_owned);
            m.sources.insert("worker_user".into(), d.at());
        }
        if let Some(d) = g.last("group") {
            m.worker_group = d.arg(0).map(str::to_owned);
            m.sources.insert("worker_group".into(), d.at());
        }
        for d in g.all("stats") {
            if d.arg(0) == Some("socket")
                && let Some(p) = d.arg(1)
            {
                let p = p.trim_start_matches("unix@");
                m.stats_socket = Some(p.to_owned());
                m.sources.insert("stats_socket".into(), d.at());
                let listening = view.scan.unix_at(Path::new(p)).is_some();
                if !listening && p.starts_with('/') {
                    m.note(format!("stats socket {p} ({}) has no listener", d.at()));
                }
            }
        }
    }
    if m.worker_user.is_none() {
        m.note("HAProxy has no `user` in global: it runs as the user that started it");
    }
}

/// `server` address forms: `ip:port`, `[v6]:port`, `unix@/p`, `/p`,
/// `ipv4@`, a name, or no port (the frontend's port).
fn server_address(addr: &str, front_port: u16) -> (String, String) {
    let a = addr.trim_start_matches("ipv4@").trim_start_matches("ipv6@");
    if let Some(p) = a.strip_prefix("unix@") {
        return (format!("unix:{p}"), "unix".into());
    }
    if a.starts_with('/') {
        return (format!("unix:{a}"), "unix".into());
    }
    let has_port = a.rsplit_once(':').is_some_and(|(h, p)| {
        !h.ends_with(':') && p.parse::<u16>().is_ok() && (!h.contains(':') || h.starts_with('['))
    });
    if has_port {
        crate::discovery::nginx::route::address_kind(a, front_port)
    } else if a.parse::<IpAddr>().is_ok() {
        crate::discovery::nginx::route::address_kind(&format!("[{a}]"), front_port)
    } else {
        // IPv6 `::1:8080` form.
        match a.rsplit_once(':') {
            Some((h, p)) if h.parse::<IpAddr>().is_ok() && p.parse::<u16>().is_ok() => {
                crate::discovery::nginx::route::address_kind(&format!("[{h}]:{p}"), front_port)
            }
            _ => crate::discovery::nginx::route::address_kind(a, front_port),
        }
    }
}

/// Who receives a syslog target, and which files that process has open.
pub fn receiver(target: &str, view: &HostView) -> SyslogReceiver {
    let mut r = SyslogReceiver {
        target: target.to_owned(),
        ..SyslogReceiver::default()
    };
    let t = target
        .trim_start_matches("udp@")
        .trim_start_matches("udp4@")
        .trim_start_matches("ipv4@");
    let listener = if let Some(p) = t.strip_prefix("unix@").or(t.starts_with('/').then_some(t)) {
        view.scan.unix_at(Path::new(p))
    } else if let Some(sa) = super::upstream::parse_socket_addr(t).or_else(|| {
        // `127.0.0.1` alone means port 514.
        t.parse::<IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, 514))
    }) {
        view.scan.udp_for(sa.ip(), sa.port()).first().copied()
    } else {
        r.note = Some("not a local socket or UDP address".into());
        return r;
    };
    let Some(l) = listener else {
        r.note = Some("nothing on this host receives it: these log lines are lost".into());
        return r;
    };
    let Some(pid) = front::master_of(l, &view.procs).or_else(|| l.pids.first().copied()) else {
        r.note = view
            .scan
            .owner_caveat()
            .or(Some("the receiving process is unknown".into()));
        return r;
    };
    r.receiver = Some(view.label(pid));
    let mut pids: BTreeSet<u32> = l.pids.iter().copied().collect();
    pids.insert(pid);
    for p in pids {
        match sys::open_files(p) {
            Ok(files) => {
                for f in files {
                    let s = f.display().to_string();
                    let is_log = !s.starts_with("/dev/")
                        && !s.starts_with("/proc/")
                        && !s.starts_with("/sys/")
                        && !s.contains(" (deleted)")
                        && std::fs::metadata(&f).is_ok_and(|m| m.is_file());
                    if is_log && !r.files.contains(&s) {
                        r.files.push(s);
                    }
                }
            }
            Err(e) => r.note = Some(e.to_string()),
        }
    }
    r
}
