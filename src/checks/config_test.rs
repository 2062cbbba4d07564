//! `config_test`: ask the server itself whether its configuration is valid
//! (`nginx -t`, `apache2ctl -t` / `apache2 -t -f`, `php-fpm -t`, `haproxy -c`),
//! and summarise the errors as `file:line: message`.
//!
//! Read-only in intent: the user-supplied config is used as-is. Caveats
//! (documented in `checks list`, observed with nginx 1.22 and php-fpm 8.2):
//! `nginx -t` opens the log files the config names and, when they are
//! missing, creates them, an empty pid file and its temp directories (an
//! existing pid file is opened without truncation and left unchanged), and,
//! run as root, chowns its temp directories to the worker user (a no-op on a
//! working install, where they already belong to it);
//! `php-fpm -t` appends its "test is successful" notice to its error_log;
//! `apache2ctl -t` sources /etc/apache2/envvars. No running server is
//! signalled.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::tool;
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
    summary: "Validate a server's config with its own tool (nginx -t, apache2ctl -t / apache2 -t -f, php-fpm -t -y, haproxy -c -f); errors summarised as file:line. Caveats: nginx -t creates missing log files, an empty pid file and temp dirs, and (as root) chowns its temp dirs to the worker user; php-fpm -t appends a notice to its error_log.",
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
    let out = match tool::run_path(&path, &name, &args, timeout, tool::DEFAULT_CAP).await {
        Ok(o) => o,
        Err(e) => return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string()),
    };
    if out.timed_out {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!(
                "`{}` did not finish within {}",
                out.argv,
                HumanDuration(timeout)
            ),
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
        return CheckReport::new(DOC.kind, label, Outcome::Ok, s)
            .with_fact("config_test.result", "ok")
            .with_fact("config_test.errors", "")
            .with_evidence(ev)
            .exclude(Cause::ConfigError, format!("`{}` succeeded", out.argv));
    }
    let errors = summarise_errors(&text);
    let lower = text.to_ascii_lowercase();
    let only_permission = lower.contains("permission denied")
        && errors.iter().all(|e| {
            e.to_ascii_lowercase().contains("permission denied")
                || e.to_ascii_lowercase().contains("could not open")
        });
    if only_permission {
        return CheckReport::new(
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
    }
    let first = errors
        .first()
        .cloned()
        .unwrap_or_else(|| text.lines().next().unwrap_or("").to_owned());
    let s = format!("`{}` rejects the configuration: {first}", out.argv);
    CheckReport::new(DOC.kind, label, Outcome::Problem, s.clone())
        .with_fact("config_test.result", "failed")
        .with_fact("config_test.errors", errors.join("\n"))
        .with_evidence(ev.clone())
        .diagnose(Cause::ConfigError, Severity::High, s, vec![ev])
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
