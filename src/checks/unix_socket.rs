//! `unix_socket`: can the proxy's worker user reach the upstream's unix socket?
//!
//! Checks that the path exists and is a socket, shows owner, group and mode,
//! evaluates whether the worker user may connect (write permission on the
//! socket plus search permission on every parent directory, from the uid,
//! gid and groups in /etc/passwd and /etc/group), then attempts a connection.
//! Missing, denied and refused (a stale socket file nobody listens on) are
//! distinct diagnoses. Invariant: the connection is closed without sending a
//! byte; nothing on disk is touched. ACLs and LSM policy are not evaluated.

use crate::platform::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::permission::{self, Want};
use crate::checks::upstream_probe;
use crate::duration::HumanDuration;

/// Parameters of the `unix_socket` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The socket path, with or without the `unix:` prefix nginx uses.
    pub path: String,
    /// The user whose access is evaluated: the proxy's worker user (usually
    /// `{{ worker_user }}` from discovery). Default: the first of www-data,
    /// nginx, apache, http that exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Connect timeout (default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "unix_socket",
    summary: "Check a unix socket: exists, is a socket, owner/group/mode, whether the worker user may connect (incl. search permission on every parent directory), and a connect attempt: missing vs denied vs refused (stale).",
    example: r#"{ unix_socket = { path = "unix:/run/php/php8.2-fpm.sock", user = "{{ worker_user }}" } }"#,
    facts: &[
        "socket.exists",
        "socket.owner",
        "socket.mode",
        "socket.user_can_connect",
        "socket.connect",
    ],
};

const DEFAULT_USERS: &[&str] = &["www-data", "nginx", "apache", "http"];

impl Params {
    pub fn label(&self) -> String {
        format!("unix socket {}", self.socket_path().display())
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(3), |d| d.0) + Duration::from_secs(1)
    }
    fn socket_path(&self) -> PathBuf {
        PathBuf::from(self.path.strip_prefix("unix:").unwrap_or(&self.path))
    }
}

fn nearest_existing_parent(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|d| !d.as_os_str().is_empty() && d.exists())
        .map(Path::to_path_buf)
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let started = Instant::now();
    let path = p.socket_path();
    let shown = path.display().to_string();
    let mut r = check(p, &path, &shown, label).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn check(p: &Params, path: &Path, shown: &str, label: String) -> CheckReport {
    if !path.is_absolute() {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("`{}` is not an absolute socket path", p.path),
        );
    }
    let meta = match std::fs::symlink_metadata(path).and_then(|m| {
        if m.file_type().is_symlink() {
            std::fs::metadata(path)
        } else {
            Ok(m)
        }
    }) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = nearest_existing_parent(path);
            let dir_note = match (&parent, path.parent()) {
                (Some(found), Some(want)) if found != want => format!(
                    "; even its directory {} does not exist (the service that creates it is not running, or the path names another version)",
                    want.display()
                ),
                _ => String::new(),
            };
            let summary = format!("{shown} does not exist{dir_note}");
            let ev = Evidence::new("stat", format!("{shown}: No such file or directory"))
                .at(shown.to_owned());
            return CheckReport::new(DOC.kind, label, Outcome::Problem, summary.clone())
                .with_fact("socket.exists", "no")
                .with_fact("socket.connect", "missing")
                .with_evidence(ev.clone())
                .diagnose(Cause::SocketMissing, Severity::High, summary, vec![ev]);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!(
                    "cannot look at {shown}: permission denied (run as root to see the socket and its directories)"
                ),
            );
        }
        Err(e) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("cannot stat {shown}: {e}"),
            );
        }
    };
    let owner = format!(
        "{}:{}",
        permission::user_name(meta.uid()),
        permission::group_name(meta.gid())
    );
    let mode = format!("{:04o}", meta.mode() & 0o7777);
    let mut r = CheckReport::new(DOC.kind, label.clone(), Outcome::Ok, String::new())
        .with_fact("socket.exists", "yes")
        .with_fact("socket.owner", owner.clone())
        .with_fact("socket.mode", mode.clone())
        .with_evidence(
            Evidence::new(
                "socket",
                format!("{shown}: {}", permission::describe(&meta)),
            )
            .at(shown.to_owned()),
        )
        .exclude(Cause::SocketMissing, format!("{shown} exists"));
    if !meta.file_type().is_socket() {
        let summary = format!(
            "{shown} exists but is not a socket ({}): connecting to it is refused",
            permission::mode_text(&meta)
        );
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&summary);
        return r.with_fact("socket.connect", "refused").diagnose(
            Cause::UpstreamRefused,
            Severity::High,
            summary,
            Vec::new(),
        );
    }
    // Permission of the worker user.
    let user = p.user.clone().filter(|u| !u.trim().is_empty()).or_else(|| {
        DEFAULT_USERS
            .iter()
            .find(|u| permission::lookup(u).is_ok())
            .map(|u| (*u).to_owned())
    });
    let mut perm_problem: Option<(String, Vec<Evidence>)> = None;
    let mut perm_unknown: Option<String> = None;
    match user.as_deref().map(permission::lookup) {
        Some(Ok(acct)) => {
            let mut ev = Vec::new();
            for b in permission::blocked_parents(&acct, path) {
                ev.push(
                    Evidence::new("parent directory", b.detail).at(b.dir.display().to_string()),
                );
            }
            if !permission::allows(&acct, &meta, Want::W) {
                ev.push(
                    Evidence::new(
                        "socket mode",
                        format!(
                            "{} ({}) lacks write permission on {shown}: {}",
                            acct.name,
                            permission::class(&acct, &meta),
                            permission::describe(&meta)
                        ),
                    )
                    .at(shown.to_owned()),
                );
            }
            if ev.is_empty() {
                r = r
                    .with_fact("socket.user_can_connect", "yes")
                    .with_evidence(Evidence::new(
                        "permission",
                        format!("{} may connect: write on the socket and search on every parent directory (mode bits; ACLs not evaluated)", acct.name),
                    ))
                    .exclude(Cause::SocketPermission, format!("{} has write on the socket and search on every parent", acct.name));
            } else {
                r = r.with_fact("socket.user_can_connect", "no");
                perm_problem = Some((acct.name, ev));
            }
        }
        Some(Err(e)) => {
            r = r.with_fact("socket.user_can_connect", "unknown");
            perm_unknown = Some(e);
        }
        None => {
            r = r.with_fact("socket.user_can_connect", "unknown");
            perm_unknown = Some(
                "no worker user given and none of www-data, nginx, apache, http exists".into(),
            );
        }
    }
    // The connect attempt (as the user running triage502).
    let t = p.timeout.map_or(Duration::from_secs(3), |d| d.0);
    let connect = match upstream_probe::connect(&format!("unix:{shown}"), t).await {
        Ok(s) => {
            drop(s);
            r = r
                .with_fact("socket.connect", "accepted")
                .with_evidence(
                    Evidence::new("connect", format!("connection to {shown} accepted"))
                        .at(shown.to_owned()),
                )
                .exclude(
                    Cause::UpstreamRefused,
                    format!("{shown} accepts connections"),
                );
            None
        }
        Err(e) => {
            r = r
                .with_fact("socket.connect", e.result)
                .with_evidence(Evidence::new("connect", e.text.clone()).at(shown.to_owned()));
            Some(e)
        }
    };
    let mut problems = Vec::new();
    if let Some((user, ev)) = perm_problem {
        let s = format!(
            "{user} may not connect to {shown}: {}",
            ev.iter()
                .map(|e| e.text.clone())
                .collect::<Vec<_>>()
                .join("; ")
        );
        problems.push(s.clone());
        r = r.diagnose(Cause::SocketPermission, Severity::High, s, ev);
    }
    if let Some(e) = &connect {
        let (cause, s) = match e.result {
            "refused" => (
                Some(Cause::UpstreamRefused),
                format!(
                    "{shown} exists but nothing listens on it (stale socket file: the service died or was restarted elsewhere)"
                ),
            ),
            "denied" => (
                Some(Cause::SocketPermission),
                format!("connecting to {shown} was denied: {}", e.text),
            ),
            "overloaded" => (
                Some(Cause::UpstreamOverloaded),
                format!("{shown}: the listen queue is full (EAGAIN)"),
            ),
            _ => (None, e.text.clone()),
        };
        problems.push(s.clone());
        if let Some(c) = cause
            && !r.diagnoses.iter().any(|d| d.cause == c)
        {
            r = r.diagnose(
                c,
                Severity::High,
                s,
                vec![Evidence::new("connect", e.text.clone()).at(shown.to_owned())],
            );
        }
    }
    if !problems.is_empty() {
        r.outcome = if r.diagnoses.is_empty() {
            Outcome::Inconclusive
        } else {
            Outcome::Problem
        };
        r.summary = problems.join("; ");
    } else if let Some(why) = perm_unknown {
        r.outcome = Outcome::Inconclusive;
        r.summary = format!(
            "{shown} ({owner} {mode}) accepts connections, but the worker user's access is unknown: {why}"
        );
    } else {
        r.summary = format!(
            "{shown} ({owner} {mode}) accepts connections and {} may connect",
            user.unwrap_or_default()
        );
    }
    r
}
