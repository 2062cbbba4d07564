//! Reload or restart a service: through systemd when it is running, else the
//! server's own control (`nginx -s reload`, `apachectl graceful`,
//! `kill -USR2` for php-fpm, `haproxy -sf`). This file only resolves the exact
//! steps; [`super::executor`] runs them after the pre-flight config test.

use std::path::Path;

use super::policy::ExecPolicy;
use super::{ServerKind, ServiceAction, ServiceOp};

/// A pid file or pid param longer than this is not a pid.
const PID_FILE_CAP: u64 = 64;

/// One step of a service operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run this argv.
    Command(Vec<String>),
    /// Wait (bounded) for this process to exit.
    WaitExit(u32),
}

impl Step {
    /// How the step reads in a plan.
    pub fn display(&self) -> String {
        match self {
            Step::Command(a) => super::shell_quote(a),
            Step::WaitExit(p) => format!("(wait for process {p} to exit)"),
        }
    }
}

/// Is systemd the init system (`/run/systemd/system` exists)?
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The server kind: the `server` param, or a guess from the unit name.
pub fn kind(s: &ServiceAction) -> ServerKind {
    s.server_kind()
}

/// Is `pid` a live (not zombie) process?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn parse_pid(s: &str) -> Option<u32> {
    s.trim().parse::<u32>().ok().filter(|p| *p > 1)
}

/// The master pid from the `pid` param or the pid file, if readable.
pub fn master_pid(s: &ServiceAction) -> Option<u32> {
    if let Some(p) = s.pid.as_deref().and_then(parse_pid) {
        return Some(p);
    }
    let f = s.pid_file.as_deref()?;
    let meta = std::fs::metadata(f).ok()?;
    if !meta.is_file() || meta.len() > PID_FILE_CAP {
        return None;
    }
    parse_pid(&std::fs::read_to_string(f).ok()?)
}

/// The master pid when it is running.
pub fn running_pid(s: &ServiceAction) -> Option<u32> {
    master_pid(s).filter(|p| alive(*p))
}

fn nginx_base(s: &ServiceAction) -> Vec<String> {
    let mut v = vec!["nginx".to_owned()];
    if let Some(p) = &s.prefix {
        v.extend(["-p".to_owned(), p.clone()]);
    }
    if let Some(c) = &s.config {
        v.extend(["-c".to_owned(), c.clone()]);
    }
    v
}

/// `apachectl` or Debian's `apache2ctl`, whichever is installed.
pub fn apache_ctl(policy: &ExecPolicy) -> String {
    if policy.find("apachectl").is_some() || policy.find("apache2ctl").is_none() {
        "apachectl".into()
    } else {
        "apache2ctl".into()
    }
}

fn apache_base(s: &ServiceAction, policy: &ExecPolicy) -> Vec<String> {
    let mut v = vec![apache_ctl(policy)];
    if let Some(c) = &s.config {
        v.extend(["-f".to_owned(), c.clone()]);
    }
    v
}

/// The php-fpm binary: `php-fpm`, or the versioned name derived from the
/// unit (`php8.2-fpm` → `php-fpm8.2`), or the newest installed version.
pub fn php_fpm_binary(s: &ServiceAction, policy: &ExecPolicy) -> String {
    let mut names = vec!["php-fpm".to_owned()];
    if let Some(v) = s
        .unit
        .strip_prefix("php")
        .and_then(|r| r.strip_suffix("-fpm").or(r.strip_suffix("-fpm.service")))
    {
        names.push(format!("php-fpm{v}"));
    }
    for major in [8, 7] {
        for minor in (0..=4).rev() {
            names.push(format!("php-fpm{major}.{minor}"));
        }
    }
    names
        .iter()
        .find(|n| policy.find(n).is_some())
        .cloned()
        .unwrap_or_else(|| "php-fpm".into())
}

fn php_fpm_base(s: &ServiceAction, policy: &ExecPolicy) -> Vec<String> {
    let mut v = vec![php_fpm_binary(s, policy)];
    if let Some(c) = &s.config {
        v.extend(["-y".to_owned(), c.clone()]);
    }
    v
}

fn haproxy_config(s: &ServiceAction) -> String {
    s.config
        .clone()
        .unwrap_or_else(|| "/etc/haproxy/haproxy.cfg".into())
}

/// The config test for this service, or `None` when none is known.
pub fn config_test(s: &ServiceAction, policy: &ExecPolicy) -> Option<Vec<String>> {
    Some(match kind(s) {
        ServerKind::Nginx => {
            let mut v = nginx_base(s);
            v.push("-t".into());
            v
        }
        ServerKind::Apache => {
            let mut v = apache_base(s, policy);
            v.push("-t".into());
            v
        }
        ServerKind::PhpFpm => {
            let mut v = php_fpm_base(s, policy);
            v.push("-t".into());
            v
        }
        ServerKind::Haproxy => vec![
            "haproxy".into(),
            "-c".into(),
            "-f".into(),
            haproxy_config(s),
        ],
        ServerKind::Other => return None,
    })
}

/// The steps of the operation on this host, or why it cannot be done.
pub fn steps(s: &ServiceAction, policy: &ExecPolicy) -> Result<Vec<Step>, String> {
    if policy.systemd() {
        return Ok(vec![Step::Command(vec![
            "systemctl".into(),
            s.op.to_string(),
            s.unit.clone(),
        ])]);
    }
    let running = running_pid(s);
    let cmd = |mut base: Vec<String>, extra: &[&str]| {
        base.extend(extra.iter().map(|x| (*x).to_owned()));
        Step::Command(base)
    };
    match (kind(s), s.op) {
        (ServerKind::Nginx, ServiceOp::Reload) => Ok(vec![cmd(nginx_base(s), &["-s", "reload"])]),
        (ServerKind::Nginx, ServiceOp::Restart) => Ok(match running {
            Some(pid) => vec![
                cmd(nginx_base(s), &["-s", "stop"]),
                Step::WaitExit(pid),
                cmd(nginx_base(s), &[]),
            ],
            None => vec![cmd(nginx_base(s), &[])],
        }),
        (ServerKind::Apache, op) => Ok(vec![cmd(
            apache_base(s, policy),
            &[
                "-k",
                match op {
                    ServiceOp::Reload => "graceful",
                    ServiceOp::Restart => "restart",
                },
            ],
        )]),
        (ServerKind::PhpFpm, op) => match (running, op) {
            (Some(pid), ServiceOp::Reload) => Ok(vec![Step::Command(vec![
                "kill".into(),
                "-USR2".into(),
                pid.to_string(),
            ])]),
            // A real restart: SIGUSR2 re-executes the master but hands its
            // listening sockets over, so socket owner and mode (`listen.*`)
            // only change when it stops (SIGQUIT: finish requests) and starts.
            (Some(pid), ServiceOp::Restart) => Ok(vec![
                Step::Command(vec!["kill".into(), "-QUIT".into(), pid.to_string()]),
                Step::WaitExit(pid),
                cmd(php_fpm_base(s, policy), &[]),
            ]),
            (None, ServiceOp::Restart) => Ok(vec![cmd(php_fpm_base(s, policy), &[])]),
            (None, ServiceOp::Reload) => Err(format!(
                "the php-fpm master of {} is not running (or give `pid`/`pid_file`); a reload needs it: restart instead",
                s.unit
            )),
        },
        (ServerKind::Haproxy, op) => {
            let Some(pid_file) = &s.pid_file else {
                return Err(
                    "haproxy without systemd needs `pid_file` to hand over to the new process"
                        .into(),
                );
            };
            let mut base = vec![
                "haproxy".to_owned(),
                "-D".into(),
                "-f".into(),
                haproxy_config(s),
                "-p".into(),
                pid_file.clone(),
            ];
            if let Some(pid) = running {
                base.push(
                    match op {
                        ServiceOp::Reload => "-sf",
                        ServiceOp::Restart => "-st",
                    }
                    .into(),
                );
                base.push(pid.to_string());
            }
            Ok(vec![Step::Command(base)])
        }
        (ServerKind::Other, _) => Err(format!(
            "systemd is not running and `{}` is not a server triage502 knows how to signal (set `server`)",
            s.unit
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(unit: &str, op: ServiceOp) -> ServiceAction {
        ServiceAction {
            unit: unit.into(),
            op,
            server: None,
            config: None,
            prefix: None,
            pid: None,
            pid_file: None,
        }
    }

    #[test]
    fn kinds_are_guessed_from_units() {
        assert_eq!(kind(&svc("nginx", ServiceOp::Reload)), ServerKind::Nginx);
        assert_eq!(
            kind(&svc("php8.2-fpm", ServiceOp::Reload)),
            ServerKind::PhpFpm
        );
        assert_eq!(kind(&svc("apache2", ServiceOp::Reload)), ServerKind::Apache);
        assert_eq!(kind(&svc("shop-app", ServiceOp::Reload)), ServerKind::Other);
    }

    // Linux only: reads /proc/PID/stat to see the master alive.
    #[cfg(unix)]
    #[test]
    fn php_fpm_reload_signals_the_master() {
        let mut s = svc("php8.2-fpm", ServiceOp::Reload);
        s.pid = Some(std::process::id().to_string());
        let no_systemd = ExecPolicy {
            systemd: Some(false),
            ..ExecPolicy::default()
        };
        assert_eq!(
            steps(&s, &no_systemd).unwrap(),
            vec![Step::Command(vec![
                "kill".into(),
                "-USR2".into(),
                std::process::id().to_string()
            ])]
        );
    }

    #[test]
    fn systemd_units_go_through_systemctl() {
        let systemd = ExecPolicy {
            systemd: Some(true),
            ..ExecPolicy::default()
        };
        assert_eq!(
            steps(&svc("shop-app", ServiceOp::Restart), &systemd).unwrap(),
            vec![Step::Command(vec![
                "systemctl".into(),
                "restart".into(),
                "shop-app".into()
            ])]
        );
        let signals = ExecPolicy {
            systemd: Some(false),
            ..ExecPolicy::default()
        };
        assert!(steps(&svc("shop-app", ServiceOp::Restart), &signals).is_err());
    }

    #[test]
    fn nginx_config_test_carries_prefix_and_config() {
        let mut s = svc("nginx", ServiceOp::Restart);
        s.prefix = Some("/p".into());
        s.config = Some("/p/n.conf".into());
        assert_eq!(
            config_test(&s, &ExecPolicy::default()).unwrap(),
            ["nginx", "-p", "/p", "-c", "/p/n.conf", "-t"]
        );
        assert!(config_test(&svc("app", ServiceOp::Restart), &ExecPolicy::default()).is_none());
    }
}
