//! The front server: which process accepts the URL's connections, what it
//! is, and where its configuration lives (command line first, then the
//! binary's compiled-in defaults, then the standard paths).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys::{Listener, Process};

/// The kinds of front servers we recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Apache,
    Haproxy,
    Caddy,
    Envoy,
    Traefik,
    PhpFpm,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Apache => "apache",
            Kind::Haproxy => "haproxy",
            Kind::Caddy => "caddy",
            Kind::Envoy => "envoy",
            Kind::Traefik => "traefik",
            Kind::PhpFpm => "php-fpm",
            Kind::Other => "other",
        }
    }

    /// Parse a kind name (for `--var front.kind=...`).
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "nginx" => Kind::Nginx,
            "apache" | "apache2" | "httpd" => Kind::Apache,
            "haproxy" => Kind::Haproxy,
            "caddy" => Kind::Caddy,
            "envoy" => Kind::Envoy,
            "traefik" => Kind::Traefik,
            "php-fpm" => Kind::PhpFpm,
            _ => return None,
        })
    }
}

/// What a process is, from its binary name, `comm` and title.
pub fn kind_of(p: &Process) -> Kind {
    let names = [
        p.program(),
        p.comm.clone(),
        p.cmdline.first().cloned().unwrap_or_default(),
    ];
    for n in &names {
        let n = Path::new(n.split_whitespace().next().unwrap_or(""))
            .file_name()
            .map(|f| f.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let n = n.trim_end_matches(':');
        if n.starts_with("nginx") || n == "openresty" {
            return Kind::Nginx;
        }
        if n.starts_with("apache2") || n.starts_with("httpd") {
            return Kind::Apache;
        }
        if n.starts_with("haproxy") {
            return Kind::Haproxy;
        }
        if n.starts_with("caddy") {
            return Kind::Caddy;
        }
        if n.starts_with("envoy") {
            return Kind::Envoy;
        }
        if n.starts_with("traefik") {
            return Kind::Traefik;
        }
        if n.starts_with("php-fpm") {
            return Kind::PhpFpm;
        }
    }
    Kind::Other
}

/// Of the processes sharing a listening socket (a master and its
/// workers), the master: the one whose parent does not hold it too.
pub fn master_of(l: &Listener, procs: &[Process]) -> Option<u32> {
    let holders: Vec<&Process> = procs.iter().filter(|p| l.pids.contains(&p.pid)).collect();
    holders
        .iter()
        .find(|p| !l.pids.contains(&p.ppid))
        .or(holders.first())
        .map(|p| p.pid)
        .or_else(|| l.pids.first().copied())
}

/// The arguments of a process, undoing title rewriting: nginx shows
/// `nginx: master process /usr/sbin/nginx -c /etc/x.conf` as one string.
pub fn arguments(p: &Process) -> Vec<String> {
    if p.cmdline.len() == 1 {
        let t = &p.cmdline[0];
        let t = t
            .strip_prefix("nginx: master process ")
            .unwrap_or(t.as_str());
        return t.split_whitespace().map(str::to_owned).collect();
    }
    p.cmdline.clone()
}

/// The value of a short option (`-c FILE` or `-cFILE`), last one wins.
pub fn option(args: &[String], flag: &str) -> Option<String> {
    let mut found = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == flag {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix(flag)
            && !v.is_empty()
            && flag.len() == 2
            && !flag.starts_with("--")
        {
            found = Some(v.to_owned());
        } else if let Some(v) = a.strip_prefix(&format!("{flag}="))
            && flag.starts_with("--")
        {
            found = Some(v.to_owned());
        }
    }
    found
}

/// Every value of a repeatable option (`-f a -f b`, `-D X`).
pub fn options(args: &[String], flag: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == flag {
            if let Some(x) = it.next() {
                v.push(x.clone());
            }
        } else if let Some(x) = a.strip_prefix(flag)
            && !x.is_empty()
            && flag.len() == 2
        {
            v.push(x.to_owned());
        }
    }
    v
}

/// nginx's `-g` value: the words after `-g` up to the one ending in `;`
/// (the title joined argv with spaces, so the value spans words).
pub fn nginx_globals(args: &[String]) -> Option<String> {
    let i = args.iter().position(|a| a == "-g")?;
    let out: Vec<&str> = args[i + 1..]
        .iter()
        .take_while(|a| !(a.len() == 2 && a.starts_with('-')))
        .map(String::as_str)
        .collect();
    Some(out.join(" "))
}

/// The working directory of a process (relative `-p`/`-d`/`-f` resolve there).
pub fn cwd(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Make `p` absolute against `base`.
pub fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// What `nginx -V` says.
#[derive(Debug, Clone, Default)]
pub struct NginxBuild {
    pub version: Option<String>,
    pub prefix: Option<String>,
    pub conf_path: Option<String>,
    pub error_log_path: Option<String>,
    pub http_log_path: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Parse `nginx -V` output (it prints to stderr).
pub fn parse_nginx_v(text: &str) -> NginxBuild {
    let mut b = NginxBuild::default();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("nginx version: ") {
            b.version = Some(v.trim().to_owned());
        }
        if let Some(args) = line.strip_prefix("configure arguments:") {
            for a in args.split_whitespace() {
                let set = |k: &str, slot: &mut Option<String>| {
                    if let Some(v) = a.strip_prefix(k) {
                        *slot = Some(v.trim_matches('\'').to_owned());
                    }
                };
                set("--prefix=", &mut b.prefix);
                set("--conf-path=", &mut b.conf_path);
                set("--error-log-path=", &mut b.error_log_path);
                set("--http-log-path=", &mut b.http_log_path);
                set("--user=", &mut b.user);
                set("--group=", &mut b.group);
            }
        }
    }
    b
}

/// What `apache2 -V` says.
#[derive(Debug, Clone, Default)]
pub struct ApacheBuild {
    pub version: Option<String>,
    pub httpd_root: Option<String>,
    pub server_config_file: Option<String>,
    pub default_errorlog: Option<String>,
}

/// Parse `apache2 -V` / `httpd -V` output.
pub fn parse_apache_v(text: &str) -> ApacheBuild {
    let mut b = ApacheBuild::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("Server version:") {
            b.version = Some(v.trim().to_owned());
        }
        let define = |k: &str| {
            line.strip_prefix("-D ")
                .and_then(|r| r.strip_prefix(k))
                .and_then(|r| r.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_owned())
        };
        if let Some(v) = define("HTTPD_ROOT") {
            b.httpd_root = Some(v);
        }
        if let Some(v) = define("SERVER_CONFIG_FILE") {
            b.server_config_file = Some(v);
        }
        if let Some(v) = define("DEFAULT_ERRORLOG") {
            b.default_errorlog = Some(v);
        }
    }
    b
}

/// Run a binary with a fixed argv (never a shell), a timeout, and the
/// child killed if we stop waiting; returns stdout and stderr together.
pub async fn tool_output(exe: &Path, args: &[&str]) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(5), cmd.output())
        .await
        .map_err(|_| {
            format!(
                "{} {} did not finish within 5s",
                exe.display(),
                args.join(" ")
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    // Cap what we keep: these outputs are a few KiB.
    s.truncate(64 * 1024);
    Ok(s)
}

/// The binary to ask for build information: the process's own (when
/// `/proc/PID/exe` is readable), else the tool found on `PATH`.
pub fn binary(p: &Process, names: &[&str]) -> Option<PathBuf> {
    if let Some(e) = &p.exe
        && e.exists()
    {
        return Some(e.clone());
    }
    names.iter().find_map(|n| which::which(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_with(cmd: &[&str]) -> Process {
        Process {
            pid: 10,
            ppid: 1,
            comm: "nginx".into(),
            cmdline: cmd.iter().map(|s| (*s).to_owned()).collect(),
            exe: None,
            uid: 0,
            user: Some("root".into()),
            gid: 0,
            group: Some("root".into()),
            start_time: None,
        }
    }

    #[test]
    fn nginx_title_is_split_back_into_arguments() {
        let p = proc_with(&[
            "nginx: master process /usr/sbin/nginx -p /tmp/x -c /tmp/x/n.conf -g pid /tmp/x/n.pid; daemon off;",
        ]);
        let a = arguments(&p);
        assert_eq!(option(&a, "-c").as_deref(), Some("/tmp/x/n.conf"));
        assert_eq!(option(&a, "-p").as_deref(), Some("/tmp/x"));
        assert_eq!(
            nginx_globals(&a).as_deref(),
            Some("pid /tmp/x/n.pid; daemon off;")
        );
        assert_eq!(kind_of(&p), Kind::Nginx);
    }

    #[test]
    fn repeated_and_attached_options() {
        let a: Vec<String> = ["haproxy", "-f", "a.cfg", "-f", "dir", "-Dx"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(options(&a, "-f"), vec!["a.cfg", "dir"]);
        assert_eq!(option(&a, "-D").as_deref(), Some("x"));
    }

    #[test]
    fn nginx_v_and_apache_v() {
        let n = parse_nginx_v(
            "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --error-log-path=stderr\n",
        );
        assert_eq!(n.version.as_deref(), Some("nginx/1.22.1"));
        assert_eq!(n.conf_path.as_deref(), Some("/etc/nginx/nginx.conf"));
        assert_eq!(n.error_log_path.as_deref(), Some("stderr"));
        let a = parse_apache_v(
            "Server version: Apache/2.4.62 (Debian)\n -D HTTPD_ROOT=\"/etc/apache2\"\n -D SERVER_CONFIG_FILE=\"apache2.conf\"\n",
        );
        assert_eq!(a.httpd_root.as_deref(), Some("/etc/apache2"));
        assert_eq!(a.server_config_file.as_deref(), Some("apache2.conf"));
        assert_eq!(a.version.as_deref(), Some("Apache/2.4.62 (Debian)"));
    }
}
