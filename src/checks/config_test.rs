//! `config_test`: ask the server itself whether its configuration is valid
//! (`nginx -t`, `apache2ctl -t` / `apache2 -t -f`, `php-fpm -t`, `haproxy -c`),
//! and summarise the errors as `file:line: message`.
//!
//! Checks never change anything, but the servers' own tests write (observed
//! with nginx 1.22 and php-fpm 8.2): `nginx -t` opens its compiled-in error
//! log before reading the config (and appends errors to it), opens the log
//! files the config names and, when they are missing, creates them, an
//! empty pid file and its temp/cache directories, and, run as root, chowns
//! its temp and cache directories to the worker user (adding u+rwx) — which
//! would repair, and so hide, the very ownership fault being diagnosed;
//! `php-fpm -t` appends its notice to its error_log and creates a missing
//! access.log/slowlog.
//!
//! So nginx and php-fpm run in a private mount namespace ([`tool::Sandbox`])
//! where every directory they may write to — nginx: the `*_temp_path`s and
//! `*_cache_path`s of the parsed config and of `nginx -V`, the directories of
//! the error/access logs and of the pid file; php-fpm: the directories of
//! its error_log, access.log and slowlog — is covered by a tmpfs whose root
//! has the original's owner and mode (so the ownership test sees the same
//! state). A directory holding a file the test reads (configs, includes,
//! certificates) is never covered; the evidence names it, and what nginx may
//! create there. Without CAP_SYS_ADMIN (not root) no namespace can be made:
//! the tool runs as before (it cannot chown then, but may still create a
//! missing log or pid file), and the evidence says so. `apache2ctl -t` and
//! `haproxy -c` are not isolated (`apache2ctl` sources
//! /etc/apache2/envvars). No running server is signalled.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::tool;
use crate::discovery::directive::walk;
use crate::discovery::source::Limits;
use crate::discovery::{nginx, php_fpm};
use crate::duration::HumanDuration;

/// Parameters of the `config_test` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Which server's config: `nginx`, `apache`, `php_fpm` or `haproxy`.
    pub server: Server,
    /// The main config file (default: the server's compiled-in default;
    /// haproxy: /etc/haproxy/haproxy.cfg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// nginx `-p` prefix, or Apache `-d` ServerRoot (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The program to run instead of the default (e.g. `php-fpm8.1`, `/usr/local/sbin/nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Time allowed for the test (default 20s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    Nginx,
    Apache,
    PhpFpm,
    Haproxy,
}

pub const DOC: KindDoc = KindDoc {
    kind: "config_test",
    summary: "Validate a server's config with its own tool (nginx -t, apache2ctl -t / apache2 -t -f, php-fpm -t -y, haproxy -c -f); errors summarised as file:line. nginx and php-fpm run in a private mount namespace whose log, pid, temp and cache dirs are tmpfs copies of the originals' owner and mode, so their writes (new logs, pid file, temp dirs, chown to the worker user) never reach the host. Caveats: without root (no CAP_SYS_ADMIN) or for a dir that also holds a file the test reads, that isolation is skipped (said in the evidence) and a missing log or pid file may be created; apache and haproxy are not isolated.",
    example: r#"{ config_test = { server = "nginx", config = "/etc/nginx/nginx.conf" } }"#,
    facts: &["config_test.result", "config_test.errors"],
};

const PHP_FPM: &[&str] = &[
    "php-fpm",
    "php-fpm8.4",
    "php-fpm8.3",
    "php-fpm8.2",
    "php-fpm8.1",
    "php-fpm8.0",
    "php-fpm7.4",
];

impl Params {
    pub fn label(&self) -> String {
        let s = match self.server {
            Server::Nginx => "nginx",
            Server::Apache => "apache",
            Server::PhpFpm => "php-fpm",
            Server::Haproxy => "haproxy",
        };
        match &self.config {
            Some(c) => format!("{s} config test of {c}"),
            None => format!("{s} config test"),
        }
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(20), |d| d.0) + Duration::from_secs(1)
    }
}

/// The program candidates and arguments for a server.
fn command(p: &Params) -> (Vec<String>, Vec<String>) {
    let mut args: Vec<String> = Vec::new();
    let progs: Vec<String> = match p.server {
        Server::Nginx => {
            args.push("-t".into());
            if let Some(c) = &p.config {
                args.extend(["-c".into(), c.clone()]);
            }
            if let Some(d) = &p.prefix {
                args.extend(["-p".into(), d.clone()]);
            }
            vec!["nginx".into()]
        }
        Server::Apache => {
            args.push("-t".into());
            if p.config.is_some() || p.prefix.is_some() {
                if let Some(c) = &p.config {
                    args.extend(["-f".into(), c.clone()]);
                }
                if let Some(d) = &p.prefix {
                    args.extend(["-d".into(), d.clone()]);
                }
                vec!["apache2".into(), "httpd".into()]
            } else {
                vec!["apache2ctl".into(), "apachectl".into()]
            }
        }
        Server::PhpFpm => {
            args.push("-t".into());
            if let Some(c) = &p.config {
                args.extend(["-y".into(), c.clone()]);
            }
            PHP_FPM.iter().map(|s| (*s).to_owned()).collect()
        }
        Server::Haproxy => {
            args.extend([
                "-c".into(),
                "-f".into(),
                p.config
                    .clone()
                    .unwrap_or_else(|| "/etc/haproxy/haproxy.cfg".into()),
            ]);
            vec!["haproxy".into()]
        }
    };
    match &p.program {
        Some(prog) => (vec![prog.clone()], args),
        None => (progs, args),
    }
}

/// `file:line: message` for every error line of the tool's output.
pub fn summarise_errors(text: &str) -> Vec<String> {
    let loc = regex::Regex::new(r"(?:in |\[|at )(/[^\s:\]]+):(\d+)").ok();
    let apache = regex::Regex::new(r"[Ss]yntax error on line (\d+) of (/[^:\s]+):?").ok();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate().take(5000) {
        let lower = l.to_ascii_lowercase();
        let is_err = lower.contains("[emerg]")
            || lower.contains("[alert]")
            || lower.contains("error")
            || lower.contains("fatal")
            || lower.contains("syntax");
        if !is_err || lower.contains("test failed") || lower.contains("test is successful") {
            continue;
        }
        if let Some(c) = apache.as_ref().and_then(|re| re.captures(l)) {
            let msg = lines.get(i + 1).map_or("", |n| n.trim());
            out.push(format!("{}:{}: {msg}", &c[2], &c[1]));
        } else if let Some(c) = loc.as_ref().and_then(|re| re.captures(l)) {
            let msg = l.trim();
            out.push(format!("{}:{}: {msg}", &c[1], &c[2]));
        } else if !lower.contains("configuration file") || lower.contains("failed") {
            out.push(l.trim().to_owned());
        }
        if out.len() >= 20 {
            break;
        }
    }
    out
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = test(p).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn test(p: &Params) -> CheckReport {
    let label = p.label();
    let (progs, args) = command(p);
    let refs: Vec<&str> = progs.iter().map(String::as_str).collect();
    let (name, path) = match tool::find_any(&refs) {
        Ok(x) => x,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
    };
    if let Some(c) = &p.config
        && !std::path::Path::new(c).exists()
    {
        let s = format!("the config file {c} does not exist");
        return CheckReport::new(DOC.kind, label, Outcome::Problem, s.clone())
            .with_fact("config_test.result", "failed")
            .with_fact("config_test.errors", s.clone())
            .diagnose(Cause::ConfigError, Severity::High, s, Vec::new());
    }
    let timeout = p.timeout.map_or(Duration::from_secs(20), |d| d.0);
    let plan = match p.server {
        Server::Nginx => nginx_plan(p, &path, timeout).await,
        Server::PhpFpm => php_fpm_plan(p, &name),
        Server::Apache | Server::Haproxy => Plan::default(),
    };
    let run = tool::run_path_sandboxed(
        &path,
        &name,
        &args,
        timeout,
        tool::DEFAULT_CAP,
        &plan.sandbox,
    )
    .await;
    let (out, isolation) = match run {
        Ok(o) => o,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
    };
    let iso_ev = plan.evidence(&isolation);
    if out.timed_out {
        return with_isolation(
            CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!(
                    "`{}` did not finish within {}",
                    out.argv,
                    HumanDuration(timeout)
                ),
            ),
            iso_ev,
        );
    }
    let text = out.combined();
    let ev = Evidence::new("output", text.trim().to_owned()).at(out.argv.clone());
    if out.code == Some(0) {
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("[warn]") || l.contains("WARNING") || l.contains("[WARNING]"))
            .take(10)
            .collect();
        let mut s = format!("`{}`: the configuration is valid", out.argv);
        if !warnings.is_empty() {
            let _ = write!(s, " ({} warning(s))", warnings.len());
        }
        let r = CheckReport::new(DOC.kind, label, Outcome::Ok, s)
            .with_fact("config_test.result", "ok")
            .with_fact("config_test.errors", "")
            .with_evidence(ev)
            .exclude(Cause::ConfigError, format!("`{}` succeeded", out.argv));
        return with_isolation(r, iso_ev);
    }
    let errors = summarise_errors(&text);
    let lower = text.to_ascii_lowercase();
    let only_permission = lower.contains("permission denied")
        && errors.iter().all(|e| {
            e.to_ascii_lowercase().contains("permission denied")
                || e.to_ascii_lowercase().contains("could not open")
        });
    if only_permission {
        let r = CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!(
                "`{}` could not read files it needs: permission denied (run as root)",
                out.argv
            ),
        )
        .with_evidence(ev)
        .unseen(crate::check::Unseen::new(
            format!("the configuration test `{}`", out.argv),
            errors.first().map_or("permission denied", String::as_str),
            crate::check::AS_ROOT,
        ));
        return with_isolation(r, iso_ev);
    }
    let first = errors
        .first()
        .cloned()
        .unwrap_or_else(|| text.lines().next().unwrap_or("").to_owned());
    let s = format!("`{}` rejects the configuration: {first}", out.argv);
    let r = CheckReport::new(DOC.kind, label, Outcome::Problem, s.clone())
        .with_fact("config_test.result", "failed")
        .with_fact("config_test.errors", errors.join("\n"))
        .with_evidence(ev.clone())
        .diagnose(Cause::ConfigError, Severity::High, s, vec![ev]);
    with_isolation(r, iso_ev)
}

fn with_isolation(r: CheckReport, ev: Option<Evidence>) -> CheckReport {
    match ev {
        Some(e) => r.with_evidence(e),
        None => r,
    }
}

/// What to hide from the server's test, and what could not be hidden.
#[derive(Debug, Default)]
struct Plan {
    sandbox: tool::Sandbox,
    /// Paths the test may write that stay visible, and why.
    uncovered: Vec<String>,
}

impl Plan {
    /// A path the test may write: a directory it may create or chown
    /// (`dir = true`) or a file it may create or append to.
    fn writes(&mut self, path: &Path, dir: bool, reads: &[PathBuf]) {
        if !path.is_absolute() || path.as_os_str().to_string_lossy().contains('$') {
            return;
        }
        let target = if dir && path.is_dir() {
            path.to_path_buf()
        } else {
            match path.parent() {
                // A missing parent: the test fails to create `path`.
                Some(p) if p.is_dir() => p.to_path_buf(),
                _ => return,
            }
        };
        if target == Path::new("/")
            || ["/proc", "/sys", "/dev"]
                .iter()
                .any(|s| target.starts_with(s))
        {
            if !(target.starts_with("/dev") || target.starts_with("/proc")) {
                self.uncovered.push(format!(
                    "{}: its directory {} is not covered",
                    path.display(),
                    target.display()
                ));
            }
            return;
        }
        if let Some(r) = reads.iter().find(|r| r.starts_with(&target)) {
            self.uncovered.push(format!(
                "{}: its directory {} also holds {}, which the test reads, so it is not covered",
                path.display(),
                target.display(),
                r.display()
            ));
            return;
        }
        if let Err(e) = self.sandbox.cover(&target) {
            self.uncovered.push(format!(
                "{}: cannot cover {}: {e}",
                path.display(),
                target.display()
            ));
        }
    }

    fn evidence(&self, iso: &tool::Isolation) -> Option<Evidence> {
        let mut s = match iso {
            tool::Isolation::None if self.uncovered.is_empty() => return None,
            tool::Isolation::None => String::from("no directory could be isolated"),
            tool::Isolation::Isolated(d) => format!(
                "ran in a private mount namespace; tmpfs over {d} (same owner and mode; nothing written there reaches the host)"
            ),
            tool::Isolation::Unavailable(why) => format!(
                "not isolated ({why}): a missing log or pid file or temp directory may have been created"
            ),
        };
        for u in &self.uncovered {
            let _ = write!(s, "\nnot isolated: {u}");
        }
        Some(Evidence::new("isolation", s))
    }
}

/// `--key=value` pairs of `nginx -V`'s configure arguments.
fn configure_args(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("configure arguments:"))
        .flat_map(str::split_whitespace)
        .filter_map(|a| {
            let (k, v) = a.strip_prefix("--")?.split_once('=')?;
            Some((k.to_owned(), v.trim_matches('\'').to_owned()))
        })
        .collect()
}

const TEMP_PATHS: &[(&str, &str)] = &[
    ("client_body_temp_path", "http-client-body-temp-path"),
    ("proxy_temp_path", "http-proxy-temp-path"),
    ("fastcgi_temp_path", "http-fastcgi-temp-path"),
    ("uwsgi_temp_path", "http-uwsgi-temp-path"),
    ("scgi_temp_path", "http-scgi-temp-path"),
];
const CACHE_PATHS: &[&str] = &[
    "proxy_cache_path",
    "fastcgi_cache_path",
    "uwsgi_cache_path",
    "scgi_cache_path",
];

/// A log argument naming a file (not `stderr`, `off`, `syslog:`, `memory:`).
fn is_log_file(a: &str) -> bool {
    !matches!(a, "stderr" | "off") && !a.starts_with("syslog:") && !a.starts_with("memory:")
}

/// nginx: which directories `nginx -t` may write to.
async fn nginx_plan(p: &Params, exe: &Path, timeout: Duration) -> Plan {
    let mut plan = Plan::default();
    let v = tool::run_path(exe, "nginx", &["-V".into()], timeout, tool::DEFAULT_CAP)
        .await
        .map(|o| configure_args(&o.combined()))
        .unwrap_or_default();
    let get = |k: &str| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone());
    let prefix = PathBuf::from(
        p.prefix
            .clone()
            .or_else(|| get("prefix"))
            .unwrap_or_else(|| "/usr/local/nginx".into()),
    );
    let full = |s: &str| prefix.join(s);
    let conf = p
        .config
        .clone()
        .map(PathBuf::from)
        .or_else(|| get("conf-path").map(|c| full(&c)))
        .unwrap_or_else(|| full("conf/nginx.conf"));
    let parsed = nginx::parse(&conf, &prefix, None, Limits::default()).ok();
    // What the test reads: every config file, and every other path-like
    // argument (certificates, keys, maps), resolved as nginx would.
    let mut reads: Vec<PathBuf> = vec![conf.clone()];
    let written: Vec<&str> = TEMP_PATHS
        .iter()
        .map(|(d, _)| *d)
        .chain(CACHE_PATHS.iter().copied())
        .chain(["error_log", "access_log", "pid"])
        .collect();
    let Some(cfg) = parsed else {
        // Unparsed: only the compiled-in error log, opened before the
        // config is read, is covered (when its directory holds no config).
        if let Some(e) = get("error-log-path").filter(|e| is_log_file(e)) {
            plan.writes(&full(&e), false, &reads);
        }
        return plan;
    };
    reads.extend(cfg.files.iter().cloned());
    walk(&cfg.main, &mut |d, _| {
        if written.contains(&d.name.as_str()) {
            return;
        }
        for a in &d.args {
            if a.contains('/') && !a.contains("://") && !a.starts_with("unix:") {
                reads.push(full(a));
                if let Some(dir) = conf.parent() {
                    reads.push(dir.join(a));
                }
            }
        }
    });
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    walk(&cfg.main, &mut |d, depth| {
        let Some(a0) = d.arg(0) else { return };
        if TEMP_PATHS.iter().any(|(n, _)| *n == d.name) || CACHE_PATHS.contains(&d.name.as_str()) {
            dirs.push(full(a0));
        } else if d.name == "error_log" || d.name == "access_log" {
            if is_log_file(a0) {
                files.push(full(a0));
            }
        } else if d.name == "pid" && depth == 0 {
            files.push(full(a0));
        }
    });
    // The compiled-in paths nginx falls back to (covered even when the
    // config sets its own: harmless, and the defaults apply per context).
    for (_, k) in TEMP_PATHS {
        if let Some(t) = get(k) {
            dirs.push(full(&t));
        }
    }
    for k in ["error-log-path", "http-log-path"] {
        if let Some(f) = get(k).filter(|f| is_log_file(f)) {
            files.push(full(&f));
        }
    }
    if cfg.main_directive("pid").is_none() {
        files.push(full(
            &get("pid-path").unwrap_or_else(|| "logs/nginx.pid".into()),
        ));
    }
    for d in &dirs {
        plan.writes(d, true, &reads);
    }
    for f in &files {
        plan.writes(f, false, &reads);
    }
    plan
}

/// php-fpm: the directories of its error_log, access.log and slowlog.
fn php_fpm_plan(p: &Params, program: &str) -> Plan {
    let mut plan = Plan::default();
    let conf = p.config.clone().map(PathBuf::from).or_else(|| {
        let base = Path::new(program).file_name()?.to_str()?;
        let v = base.strip_prefix("php-fpm")?;
        (!v.is_empty()).then(|| PathBuf::from(format!("/etc/php/{v}/fpm/php-fpm.conf")))
    });
    let Some(conf) = conf else { return plan };
    let Ok(cfg) = php_fpm::parse(&conf, None, Limits::default()) else {
        return plan;
    };
    let mut reads = vec![conf.clone()];
    reads.extend(cfg.files.iter().cloned());
    let mut files = Vec::new();
    let log = cfg
        .global()
        .and_then(|g| g.get("error_log"))
        .map_or_else(|| "log/php-fpm.log".to_owned(), |e| e.value.clone());
    if log != "syslog" {
        files.push(cfg.resolve(&log, "/var"));
    }
    for pool in cfg.pools() {
        for k in ["access.log", "slowlog"] {
            if let Some(e) = pool.get(k) {
                files.push(cfg.resolve(&e.value.replace("$pool", &pool.name), "/var"));
            }
        }
    }
    for f in &files {
        plan.writes(Path::new(f), false, &reads);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_get_file_and_line() {
        let e = summarise_errors(
            "nginx: [emerg] unknown directive \"foo\" in /tmp/x/nginx.conf:12\nnginx: configuration file /tmp/x/nginx.conf test failed\n",
        );
        assert_eq!(
            e,
            vec![
                "/tmp/x/nginx.conf:12: nginx: [emerg] unknown directive \"foo\" in /tmp/x/nginx.conf:12"
            ]
        );
        let e = summarise_errors(
            "AH00526: Syntax error on line 3 of /tmp/a/httpd.conf:\nInvalid command 'Foo', perhaps misspelled\n",
        );
        assert_eq!(
            e,
            vec!["/tmp/a/httpd.conf:3: Invalid command 'Foo', perhaps misspelled"]
        );
        let e = summarise_errors(
            "[ALERT]    (9) : config : parsing [/tmp/h.cfg:3] : unknown keyword 'bogus' in 'global' section\n",
        );
        assert!(e[0].starts_with("/tmp/h.cfg:3: "), "{e:?}");
        let e = summarise_errors(
            "[23-Nov-2026 10:00:00] ERROR: [/tmp/f.conf:4] unknown entry 'bogus'\n",
        );
        assert!(e[0].starts_with("/tmp/f.conf:4: "), "{e:?}");
    }
}
