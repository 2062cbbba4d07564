//! Apache httpd: find its configuration (`-d`, `-f`, `-D`, compiled-in
//! `HTTPD_ROOT`/`SERVER_CONFIG_FILE`, Debian's envvars), parse it and map
//! a URL through virtual hosts, `ProxyPass`, `<Location>` and
//! `SetHandler "proxy:…"`.

pub mod parse;
pub mod route;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::directive::Directive;
use super::source::{ConfigError, Limits, Loader};
use super::{Build, ServiceMap, front};
use crate::sys::Process;

/// A parsed, evaluated httpd configuration.
#[derive(Debug, Clone)]
pub struct ApacheConfig {
    pub main: Vec<Directive>,
    pub conf_file: PathBuf,
    /// `ServerRoot` in effect at the end of the configuration.
    pub server_root: PathBuf,
    pub files: Vec<PathBuf>,
    pub context: parse::Context,
}

/// Parse `conf_file` with `server_root`, `-D` defines and an environment.
pub fn parse_config(
    conf_file: &Path,
    server_root: &Path,
    defines: &[String],
    env: BTreeMap<String, String>,
    limits: Limits,
) -> Result<ApacheConfig, ConfigError> {
    let mut loader = Loader::new(limits);
    let mut ctx = parse::Context {
        server_root: server_root.to_path_buf(),
        env,
        ..parse::Context::default()
    };
    for d in defines {
        ctx.defines.insert(d.clone(), String::new());
    }
    let main = parse::load(&mut loader, conf_file, None, &mut ctx)?;
    Ok(ApacheConfig {
        main,
        conf_file: conf_file.to_path_buf(),
        server_root: ctx.server_root.clone(),
        files: loader.files,
        context: ctx,
    })
}

/// The `Listen` ports of a configuration (conditional sections as evaluated by the parser).
fn listen_ports(dirs: &[Directive], out: &mut Vec<(u16, String)>) {
    for d in dirs {
        if d.is("Listen")
            && let Some(a) = d.arg(0)
            && let Some(port) = a.rsplit(':').next().and_then(|p| p.parse().ok())
        {
            out.push((port, d.at()));
        }
        listen_ports(d.children(), out);
    }
}

/// An httpd whose `Listen`s do not include the URL's port is not the one that serves it
/// (recorded as the unknown `front.listen`; a configuration without any `Listen` says nothing).
fn listen_check(main: &[Directive], map: &mut ServiceMap) {
    let mut ports = Vec::new();
    listen_ports(main, &mut ports);
    if !ports.is_empty() && !ports.iter().any(|(p, _)| *p == map.target.port) {
        let listed: Vec<String> = ports.iter().map(|(p, at)| format!("{p} ({at})")).collect();
        map.unknown(
            "front.listen",
            format!(
                "no Listen for port {}: {}",
                map.target.port,
                listed.join(", ")
            ),
        );
    }
}

/// Locate, parse and map an Apache front.
pub fn discover(
    map: &mut ServiceMap,
    p: &Process,
    args: &[String],
    cwd: &Path,
    build: &Build,
    config_override: Option<PathBuf>,
    local_ip: Option<IpAddr>,
) {
    let b = &build.apache;
    let (root, root_src) = match front::option(args, "-d") {
        Some(d) => (front::absolute(cwd, &d), "command line -d".to_owned()),
        None => match &b.httpd_root {
            Some(r) => (PathBuf::from(r), format!("{} (HTTPD_ROOT)", build.source)),
            None => (PathBuf::from("/etc/apache2"), "standard path".to_owned()),
        },
    };
    let (conf, how) = if let Some(c) = config_override {
        (c, "--var front.config".to_owned())
    } else if let Some(f) = front::option(args, "-f") {
        (front::absolute(&root, &f), "command line -f".to_owned())
    } else if let Some(f) = &b.server_config_file {
        (
            front::absolute(&root, f),
            format!("{} (SERVER_CONFIG_FILE under {root_src})", build.source),
        )
    } else {
        let c = ["apache2.conf", "conf/httpd.conf", "httpd.conf"]
            .iter()
            .map(|n| root.join(n))
            .find(|p| p.exists())
            .unwrap_or_else(|| root.join("apache2.conf"));
        (c, "standard path".to_owned())
    };
    if let Some(f) = map.front.as_mut() {
        f.config = Some(conf.display().to_string());
        f.config_source = Some(how.clone());
    }
    map.sources.insert("front.config".into(), how);
    // Environment: the process's own (apache2ctl exported Debian's envvars),
    // else the envvars file beside the configuration.
    let mut env: BTreeMap<String, String> = crate::sys::process::environ(p.pid)
        .map(|v| v.into_iter().collect())
        .unwrap_or_default();
    if !env.keys().any(|k| k.starts_with("APACHE_")) {
        let envvars = root.join("envvars");
        if let Ok(t) = crate::sys::read_text(&envvars) {
            for (k, v) in parse::parse_envvars(&t) {
                env.entry(k).or_insert(v);
            }
            map.note(format!("variables from {}", envvars.display()));
        }
    }
    let defines = front::options(args, "-D");
    match parse_config(&conf, &root, &defines, env, Limits::default()) {
        Ok(cfg) => {
            if let Some(f) = map.front.as_mut() {
                f.config_files = cfg.files.iter().map(|p| p.display().to_string()).collect();
            }
            for u in &cfg.context.undefined {
                map.note(format!("config variable {u} is not defined"));
            }
            for n in &cfg.context.notes {
                map.note(n.clone());
            }
            listen_check(&cfg.main, map);
            let req = route::Request {
                host: map.target.host.clone(),
                port: map.target.port,
                path: map.target.path.clone(),
                local_ip,
            };
            route::map(&cfg, &req, b.default_errorlog.as_deref(), map);
        }
        Err(e) => super::config_error(map, &e),
    }
}
