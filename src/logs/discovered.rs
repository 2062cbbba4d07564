//! The error logs of a URL, as discovery finds them: `logs scan --url`.
//!
//! Discovery ([`crate::discovery::discover`]) maps the URL to the front
//! server on this host, its configuration and the logs in effect for the
//! route (nginx/Apache `error_log`/`ErrorLog`, the files HAProxy's syslog
//! receiver writes) and, behind a php-fpm upstream, the pool's error log.
//! This module only picks from that map; it parses nothing itself.
//!
//! Invariants: only absolute file paths are returned (`stderr`, `syslog:…`,
//! paths with variables are reported as skipped, with the reason); each comes
//! with the place that named it (`file:line`); no logs is an error that says
//! what discovery saw instead, never an empty scan.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::discovery::ServiceMap;

/// One log file discovery named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundLog {
    pub path: PathBuf,
    /// `front` (the web server or load balancer at the URL) or `php-fpm`.
    pub role: &'static str,
    /// Where discovery found it (`/etc/nginx/nginx.conf:12`, `default …`).
    pub source: String,
}

/// What `--url` scanned, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovered {
    pub url: String,
    /// The front server (`nginx pid 1234`), when one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub front: Option<String>,
    pub logs: Vec<FoundLog>,
    /// Log targets that are not files (`stderr`, `syslog:…`), with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Discovery found no error log to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("discovery found no error log for {url}: {reason}")]
pub struct NoLogs {
    pub url: String,
    pub reason: String,
}

/// Is this log target a file we can read (not `stderr`, `syslog:…`, `memory:…`, a variable)?
fn is_file_target(t: &str) -> bool {
    t.starts_with('/') && !t.contains('$')
}

/// Pick the error logs out of a discovery map.
pub fn error_logs(map: &ServiceMap) -> Result<Discovered, NoLogs> {
    let sources: BTreeMap<&str, &str> = map
        .logs
        .sources
        .iter()
        .filter(|s| s.kind == "error")
        .map(|s| (s.target.as_str(), s.source.as_str()))
        .collect();
    let mut logs: Vec<FoundLog> = Vec::new();
    let mut skipped = Vec::new();
    for t in &map.logs.error {
        if is_file_target(t) {
            logs.push(FoundLog {
                path: PathBuf::from(t),
                role: "front",
                source: sources
                    .get(t.as_str())
                    .copied()
                    .unwrap_or("discovery")
                    .to_owned(),
            });
        } else {
            skipped.push(format!(
                "{t}: not a file (read it with journalctl or where that target ends up)"
            ));
        }
    }
    if let Some(p) = map.php_fpm.as_ref().and_then(|p| p.error_log.as_deref()) {
        if is_file_target(p) {
            if !logs.iter().any(|l| l.path.as_os_str() == p) {
                logs.push(FoundLog {
                    path: PathBuf::from(p),
                    role: "php-fpm",
                    source: map
                        .sources
                        .get("php_fpm.error_log")
                        .cloned()
                        .unwrap_or_else(|| "php-fpm configuration".to_owned()),
                });
            }
        } else {
            skipped.push(format!("php-fpm error_log {p}: not a file"));
        }
    }
    let front = map
        .front
        .as_ref()
        .map(|f| format!("{} pid {}", f.kind, f.pid));
    if logs.is_empty() {
        let mut why: Vec<String> = Vec::new();
        if !map.gateway_local {
            why.push(format!(
                "nothing on this host listens for it{}",
                map.gateway
                    .as_deref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default()
            ));
        } else if let Some(f) = &front {
            why.push(format!("the front server is {f}"));
        }
        why.extend(
            map.unknown
                .iter()
                .filter(|u| u.fact == "error_logs" || u.fact.starts_with("front"))
                .map(|u| format!("{}: {}", u.fact, u.reason)),
        );
        why.extend(skipped.iter().cloned());
        // Discovery's own remarks about where the logs go (HAProxy `log stdout`, nginx stderr).
        why.extend(
            map.notes
                .iter()
                .filter(|n| n.contains(" log") || n.starts_with("log "))
                .cloned(),
        );
        if why.is_empty() {
            why.push("its configuration names no error log".to_owned());
        }
        return Err(NoLogs {
            url: map.url.clone(),
            reason: format!(
                "{}; give the files instead (`triage502 logs scan FILE…`) or `--var error_logs=PATH`",
                why.join("; ")
            ),
        });
    }
    Ok(Discovered {
        url: map.url.clone(),
        front,
        logs,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::service_map::{Front, LogSource, PhpFpm, Unknown};

    #[test]
    fn front_and_php_fpm_logs_with_their_sources_and_special_targets_skipped() {
        let mut map = ServiceMap {
            url: "http://127.0.0.1:8080/".into(),
            gateway_local: true,
            front: Some(Front {
                kind: "nginx".into(),
                pid: 42,
                ..Front::default()
            }),
            ..ServiceMap::default()
        };
        map.logs.error = vec!["/var/log/nginx/error.log".into(), "stderr".into()];
        map.logs.sources.push(LogSource {
            kind: "error".into(),
            target: "/var/log/nginx/error.log".into(),
            source: "/etc/nginx/nginx.conf:7".into(),
        });
        map.php_fpm = Some(PhpFpm {
            error_log: Some("/var/log/php8.2-fpm.log".into()),
            ..PhpFpm::default()
        });
        let d = error_logs(&map).unwrap();
        assert_eq!(d.front.as_deref(), Some("nginx pid 42"));
        assert_eq!(d.logs.len(), 2);
        assert_eq!(d.logs[0].source, "/etc/nginx/nginx.conf:7");
        assert_eq!(d.logs[1].role, "php-fpm");
        assert_eq!(d.skipped.len(), 1);
    }

    #[test]
    fn no_logs_says_what_discovery_saw() {
        let map = ServiceMap {
            url: "http://shop.example/".into(),
            ..ServiceMap::default()
        };
        let e = error_logs(&map).unwrap_err();
        assert!(
            e.to_string().contains("nothing on this host listens"),
            "{e}"
        );
        let mut map = ServiceMap {
            url: "http://127.0.0.1:8080/".into(),
            gateway_local: true,
            ..ServiceMap::default()
        };
        map.logs.error = vec!["syslog:server=unix:/dev/log".into()];
        map.unknown.push(Unknown {
            fact: "error_logs".into(),
            reason: "no error log found in the configuration".into(),
        });
        let e = error_logs(&map).unwrap_err().to_string();
        assert!(e.contains("syslog:server=unix:/dev/log: not a file"), "{e}");
        assert!(e.contains("error_logs: no error log found"), "{e}");
    }
}
