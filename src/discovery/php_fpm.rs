//! php-fpm: its ini-style configuration (main file plus `include`d pool
//! files), the pool behind a socket or port, and its master process.
//!
//! Syntax: `[section]` headers, `key = value` (quoted values keep `;`),
//! `;` comments, `include = glob`, `$pool` and `${ENV}` in values.
//! Relative paths resolve against the prefix (`-p`), else php-fpm's
//! compiled prefix `/usr` for includes and `/var` for logs (Debian's build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::Evidence;
use crate::discovery::HostView;
use crate::discovery::glob;
use crate::discovery::service_map::{PhpFpm, ServiceMap, Setting};
use crate::discovery::source::{ConfigError, Limits, Loader, Site};
use crate::sys::Process;

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub file: Arc<Path>,
    pub line: u32,
}

impl Entry {
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// A `[name]` section (`global` or a pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub file: Arc<Path>,
    pub line: u32,
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value of `key` in this section.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// A parsed php-fpm configuration.
#[derive(Debug, Clone, Default)]
pub struct FpmConfig {
    pub sections: Vec<Section>,
    pub files: Vec<PathBuf>,
    pub prefix: Option<PathBuf>,
}

impl FpmConfig {
    pub fn global(&self) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == "global")
    }

    pub fn pools(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| s.name != "global")
    }

    /// The pool whose `listen` is `address` (`unix:/path` or `ip:port`).
    pub fn pool_for(&self, address: &str) -> Option<&Section> {
        self.pools().find(|p| {
            p.get("listen")
                .is_some_and(|l| listen_matches(&self.resolve(&l.value, "/usr"), address))
        })
    }

    /// A path made absolute against the prefix (or `fallback`).
    pub fn resolve(&self, value: &str, fallback: &str) -> String {
        if value.starts_with('/')
            || !value.contains('/') && value.parse::<u16>().is_ok()
            || value.contains(':')
        {
            return value.to_owned();
        }
        let base = self
            .prefix
            .clone()
            .unwrap_or_else(|| PathBuf::from(fallback));
        base.join(value).display().to_string()
    }
}

/// Does a pool's `listen` value accept connections for `address`?
pub fn listen_matches(listen: &str, address: &str) -> bool {
    if let Some(path) = address.strip_prefix("unix:") {
        return listen == path;
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host = host.trim_matches(['[', ']']);
    if let Ok(p) = listen.parse::<u16>() {
        return port.parse() == Ok(p);
    }
    let Some((lh, lp)) = listen.rsplit_once(':') else {
        return false;
    };
    let lh = lh.trim_matches(['[', ']']);
    lp == port
        && (lh == host
            || lh == "0.0.0.0"
            || lh == "::"
            || lh == "*"
            || (lh == "localhost" && (host == "127.0.0.1" || host == "::1")))
}

/// Parse a php-fpm configuration and its includes.
pub fn parse(conf: &Path, prefix: Option<&Path>, limits: Limits) -> Result<FpmConfig, ConfigError> {
    let mut loader = Loader::new(limits);
    let mut cfg = FpmConfig {
        prefix: prefix.map(Path::to_path_buf),
        ..FpmConfig::default()
    };
    let mut current = "global".to_owned();
    parse_file(&mut loader, conf, None, &mut cfg, &mut current)?;
    cfg.files = loader.files;
    Ok(cfg)
}

fn parse_file(
    loader: &mut Loader,
    path: &Path,
    site: Option<&Site>,
    cfg: &mut FpmConfig,
    current: &mut String,
) -> Result<(), ConfigError> {
    let bytes = loader.enter(path, site)?;
    let file: Arc<Path> = Arc::from(path);
    let text = String::from_utf8(bytes).map_err(|e| {
        let (l, c) = crate::discovery::source::line_col(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError::new(path, l, c, "invalid UTF-8")
    })?;
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(ConfigError::new(
                    path,
                    line,
                    1,
                    format!("section header {t:?} has no closing ]"),
                ));
            };
            name.trim().clone_into(current);
            cfg.sections.push(Section {
                name: current.clone(),
                file: file.clone(),
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            return Err(ConfigError::new(
                path,
                line,
                1,
                format!("expected `key = value`, found {t:?}"),
            ));
        };
        let key = k.trim().to_owned();
        let value = unquote(v.trim(), path, line)?;
        let value = value.replace(
            "$pool",
            if current == "global" {
                ""
            } else {
                current.as_str()
            },
        );
        if key == "include" {
            let site = Site {
                file: file.clone(),
                line,
                col: 1,
            };
            let pattern = PathBuf::from(cfg.resolve(&value, "/usr"));
            let files = if glob::is_pattern(&value) {
                glob::expand(&pattern, loader.limits.max_files).map_err(|e| site.error(e))?
            } else {
                vec![pattern]
            };
            for f in files {
                parse_file(loader, &f, Some(&site), cfg, current)?;
            }
            continue;
        }
        if cfg.sections.last().is_none_or(|s| s.name != *current) {
            cfg.sections.push(Section {
                name: current.clone(),
                file: file.clone(),
                line,
                entries: Vec::new(),
            });
        }
        if let Some(s) = cfg.sections.last_mut() {
            s.entries.push(Entry {
                key,
                value,
                file: file.clone(),
                line,
            });
        }
    }
    loader.leave();
    Ok(())
}

/// `"a;b"` → `a;b`; `x ; comment` → `x`.
fn unquote(v: &str, path: &Path, line: u32) -> Result<String, ConfigError> {
    if let Some(rest) = v.strip_prefix('"') {
        let end = rest
            .find('"')
            .ok_or_else(|| ConfigError::new(path, line, 1, "unterminated quoted value"))?;
        return Ok(rest[..end].to_owned());
    }
    Ok(v.split(';').next().unwrap_or("").trim().to_owned())
}

/// The php-fpm master above a process holding the socket.
pub fn master(pid: u32, view: &HostView) -> Option<&Process> {
    let mut p = view.process(pid)?;
    for _ in 0..8 {
        match view.process(p.ppid) {
            Some(parent)
                if crate::discovery::front::kind_of(parent)
                    == crate::discovery::front::Kind::PhpFpm =>
            {
                p = parent;
            }
            _ => break,
        }
    }
    Some(p)
}

/// The configuration file of a php-fpm master: its title
/// (`php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)`), `-y` /
/// `--fpm-config`, else the standard path for the binary's version.
pub fn config_of(p: &Process) -> Option<(PathBuf, String)> {
    let title = p.cmdline_text();
    if let Some(start) = title.find("master process (")
        && let Some(end) = title[start..].find(')')
    {
        let path = &title[start + "master process (".len()..start + end];
        return Some((
            PathBuf::from(path),
            format!("/proc/{}/cmdline (process title)", p.pid),
        ));
    }
    let args = &p.cmdline;
    if let Some(c) = crate::discovery::front::option(args, "-y")
        .or_else(|| crate::discovery::front::option(args, "--fpm-config"))
    {
        return Some((PathBuf::from(c), "command line -y".into()));
    }
    let version = p.program().trim_start_matches("php-fpm").to_owned();
    if !version.is_empty() {
        let c = PathBuf::from(format!("/etc/php/{version}/fpm/php-fpm.conf"));
        if c.exists() {
            return Some((c, "standard path for the binary's version".into()));
        }
    }
    let found = glob::expand(Path::new("/etc/php/*/fpm/php-fpm.conf"), 16).ok()?;
    found
        .into_iter()
        .next()
        .map(|c| (c, "standard path".into()))
}

/// Pool settings reported, with php-fpm's defaults.
const POOL_SETTINGS: &[(&str, Option<&str>)] = &[
    ("listen", None),
    ("listen.owner", None),
    ("listen.group", None),
    ("listen.mode", Some("0660")),
    ("listen.backlog", Some("511")),
    ("listen.allowed_clients", None),
    ("user", None),
    ("group", None),
    ("pm", None),
    ("pm.max_children", None),
    ("pm.start_servers", None),
    ("pm.min_spare_servers", None),
    ("pm.max_spare_servers", None),
    ("pm.max_requests", Some("0")),
    ("request_terminate_timeout", Some("0")),
    ("request_slowlog_timeout", Some("0")),
    ("slowlog", None),
    ("catch_workers_output", Some("no")),
    ("php_admin_value[error_log]", None),
];

/// Describe the php-fpm pool listening at `address` into `map.php_fpm`.
pub fn describe(map: &mut ServiceMap, listener_pid: u32, address: &str, view: &HostView) {
    let Some(master) = master(listener_pid, view) else {
        map.unknown(
            "php_fpm.config",
            format!("process {listener_pid} cannot be read (run as root)"),
        );
        return;
    };
    let mut out = PhpFpm {
        master_pid: master.pid,
        ..PhpFpm::default()
    };
    let Some((conf, how)) = config_of(master) else {
        map.unknown(
            "php_fpm.config",
            "no -y in the command line and no /etc/php/*/fpm/php-fpm.conf",
        );
        map.php_fpm = Some(out);
        return;
    };
    out.config = Some(conf.display().to_string());
    out.config_source = Some(how.clone());
    map.sources.insert("php_fpm.config".into(), how);
    let prefix = crate::discovery::front::option(&master.cmdline, "-p").map(PathBuf::from);
    let cfg = match parse(&conf, prefix.as_deref(), Limits::default()) {
        Ok(c) => c,
        Err(e) => {
            map.unknown(
                "php_fpm.pool",
                format!("php-fpm configuration not parseable: {e}"),
            );
            map.php_fpm = Some(out);
            return;
        }
    };
    if let Some(g) = cfg.global() {
        if let Some(e) = g.get("error_log") {
            out.error_log = Some(cfg.resolve(&e.value, "/var"));
            map.sources.insert("php_fpm.error_log".into(), e.at());
        }
    }
    if out.error_log.is_none() {
        out.error_log = Some(cfg.resolve("log/php-fpm.log", "/var"));
        map.sources.insert(
            "php_fpm.error_log".into(),
            "default (log/php-fpm.log under the prefix)".into(),
        );
    }
    match cfg.pool_for(address) {
        Some(pool) => {
            out.pool = Some(pool.name.clone());
            map.sources.insert(
                "php_fpm.pool".into(),
                format!("{}:{}", pool.file.display(), pool.line),
            );
            let mut settings = BTreeMap::new();
            for (k, default) in POOL_SETTINGS {
                match pool.get(k) {
                    Some(e) => {
                        settings.insert(
                            (*k).to_owned(),
                            Setting {
                                value: e.value.clone(),
                                source: e.at(),
                            },
                        );
                    }
                    None => {
                        if let Some(d) = default {
                            settings.insert(
                                (*k).to_owned(),
                                Setting {
                                    value: (*d).to_owned(),
                                    source: "default (php-fpm built-in)".into(),
                                },
                            );
                        }
                    }
                }
            }
            // listen.owner/group default to the pool's user/group.
            for (k, from) in [("listen.owner", "user"), ("listen.group", "group")] {
                if !settings.contains_key(k)
                    && let Some(e) = pool.get(from)
                {
                    settings.insert(
                        k.to_owned(),
                        Setting {
                            value: e.value.clone(),
                            source: format!("default (the pool's {from}, {})", e.at()),
                        },
                    );
                }
            }
            if let Some(e) = pool.get("slowlog") {
                out.slowlog = Some(cfg.resolve(&e.value, "/var"));
            }
            if let Some(l) = pool.get("listen") {
                map.evidence.push(
                    Evidence::new(
                        "php-fpm pool",
                        format!("[{}] listen = {}", pool.name, l.value),
                    )
                    .at(l.at()),
                );
            }
            out.settings = settings;
        }
        None => map.unknown(
            "php_fpm.pool",
            format!("no pool in {} listens on {address}", conf.display()),
        ),
    }
    map.php_fpm = Some(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linux only: include globs are `/`-separated paths.
    #[cfg(unix)]
    #[test]
    fn pools_from_includes_with_quotes_and_comments() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("pool.d")).unwrap();
        std::fs::write(
            d.path().join("fpm.conf"),
            format!(
                "[global]\nerror_log = /var/log/fpm.log ; trailing\ninclude={}/pool.d/*.conf\n",
                d.path().display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.path().join("pool.d/www.conf"),
            "; comment\n[www]\nuser = www-data\nlisten = /run/php/$pool.sock\nlisten.mode = \"0660\"\npm = dynamic\npm.max_children = 5\n",
        )
        .unwrap();
        let cfg = parse(&d.path().join("fpm.conf"), None, Limits::default()).unwrap();
        assert_eq!(
            cfg.global().unwrap().get("error_log").unwrap().value,
            "/var/log/fpm.log"
        );
        let p = cfg.pool_for("unix:/run/php/www.sock").unwrap();
        assert_eq!(p.name, "www");
        assert_eq!(p.get("pm.max_children").unwrap().value, "5");
        assert_eq!(p.get("listen.mode").unwrap().value, "0660");
        assert_eq!(p.get("user").unwrap().line, 3);
    }

    #[test]
    fn tcp_listen_forms() {
        assert!(listen_matches("9000", "127.0.0.1:9000"));
        assert!(listen_matches("127.0.0.1:9000", "127.0.0.1:9000"));
        assert!(listen_matches("[::1]:9000", "[::1]:9000"));
        assert!(!listen_matches("127.0.0.1:9001", "127.0.0.1:9000"));
        assert!(listen_matches("/run/x.sock", "unix:/run/x.sock"));
    }

    #[test]
    fn bad_section_is_a_located_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f.conf"), "[global]\n[www\n").unwrap();
        let e = parse(&d.path().join("f.conf"), None, Limits::default()).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
