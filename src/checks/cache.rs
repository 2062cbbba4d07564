//! `cache`: can the proxy use its cache directories?
//!
//! For each proxy/fastcgi cache path: existence, size and file count, free
//! space and inodes, age of entries, and whether the worker user may read,
//! write and search the directory and its subdirectories (mode bits with the
//! uid, gid and groups from /etc/passwd and /etc/group; ACLs not evaluated),
//! plus search permission on every parent. Invariants: walks at most
//! `max_entries` entries; reads no file content.

use crate::platform::fs::MetadataExt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::permission::{self, Want};
use crate::checks::process;

/// Parameters of the `cache` check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Cache directories (`proxy_cache_path` / `fastcgi_cache_path` values).
    pub paths: Vec<String>,
    /// The proxy's worker user (usually `{{ worker_user }}`; default: the
    /// first of www-data, nginx, apache, http that exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Entries walked at most per path (default 200000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u32>,
    /// Free space or inodes below this percentage is a fault (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_free_percent: Option<f64>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "cache",
    summary: "Proxy/fastcgi cache paths: size, file count, free space and inodes, entry ages, and whether the worker user can read and write them (incl. subdirectories and parents); cache_fault on permission or space problems.",
    example: r#"{ cache = { paths = ["/var/cache/nginx/proxy", "/var/cache/nginx/fastcgi"], user = "{{ worker_user }}" } }"#,
    facts: &["cache.size_bytes", "cache.files", "cache.writable"],
};

const DEFAULT_USERS: &[&str] = &["www-data", "nginx", "apache", "http"];

impl Params {
    pub fn label(&self) -> String {
        format!("cache {}", self.paths.join(", "))
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

struct Walk {
    bytes: u64,
    files: u64,
    oldest: Option<SystemTime>,
    newest: Option<SystemTime>,
    bad_dirs: Vec<String>,
    bad_files: Vec<String>,
    truncated: bool,
}

fn walk(root: &Path, acct: &permission::Account, max: usize) -> Walk {
    let mut w = Walk {
        bytes: 0,
        files: 0,
        oldest: None,
        newest: None,
        bad_dirs: Vec::new(),
        bad_files: Vec::new(),
        truncated: false,
    };
    let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
    let mut seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            seen += 1;
            if seen > max {
                w.truncated = true;
                return w;
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                if !permission::allows(acct, &m, Want::RWX) && w.bad_dirs.len() < 5 {
                    w.bad_dirs.push(format!(
                        "{}: {}",
                        e.path().display(),
                        permission::describe(&m)
                    ));
                }
                if depth < 8 {
                    stack.push((e.path(), depth + 1));
                }
            } else if m.is_file() {
                w.files += 1;
                w.bytes += m.len();
                if let Ok(t) = m.modified() {
                    w.oldest = Some(w.oldest.map_or(t, |o| o.min(t)));
                    w.newest = Some(w.newest.map_or(t, |o| o.max(t)));
                }
                if !permission::allows(acct, &m, Want::R) && w.bad_files.len() < 5 {
                    w.bad_files.push(format!(
                        "{}: {}",
                        e.path().display(),
                        permission::describe(&m)
                    ));
                }
            }
        }
    }
    w
}

#[allow(
    clippy::unused_async,
    reason = "every kind's run is async for the dispatcher"
)]
pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = inspect(p);
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

fn inspect(p: &Params) -> CheckReport {
    let label = p.label();
    let paths: Vec<&String> = p.paths.iter().filter(|s| !s.trim().is_empty()).collect();
    if paths.is_empty() {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no cache path given (the config has no proxy_cache_path/fastcgi_cache_path?)",
        );
    }
    let user = p.user.clone().filter(|u| !u.trim().is_empty()).or_else(|| {
        DEFAULT_USERS
            .iter()
            .find(|u| permission::lookup(u).is_ok())
            .map(|u| (*u).to_owned())
    });
    let acct = match user.as_deref().map(permission::lookup) {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("cannot evaluate access: {e}"),
            );
        }
        None => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                "no worker user given and none of www-data, nginx, apache, http exists",
            );
        }
    };
    let max = p.max_entries.unwrap_or(200_000) as usize;
    let min_free = p.min_free_percent.unwrap_or(5.0);
    let now = SystemTime::now();
    let mut ev = Vec::new();
    let mut faults: Vec<(String, Evidence)> = Vec::new();
    let mut unknown = Vec::new();
    let (mut bytes, mut files) = (0u64, 0u64);
    let mut writable = true;
    for path in paths.iter().take(32) {
        let root = Path::new(path.as_str());
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let e2 = Evidence::new("cache path", format!("{path} does not exist"))
                    .at((*path).clone());
                faults.push((format!("{path} does not exist"), e2.clone()));
                writable = false;
                continue;
            }
            Err(e) => {
                unknown.push(format!("{path}: {e} (run as root)"));
                continue;
            }
        };
        if !meta.is_dir() {
            faults.push((
                format!("{path} is not a directory"),
                Evidence::new("cache path", permission::describe(&meta)).at((*path).clone()),
            ));
            writable = false;
            continue;
        }
        let mut problems = Vec::new();
        for b in permission::blocked_parents(&acct, root) {
            problems.push(b.detail);
        }
        if !permission::allows(&acct, &meta, Want::RWX) {
            problems.push(format!(
                "{} ({}) lacks rwx on {path}: {}",
                acct.name,
                permission::class(&acct, &meta),
                permission::describe(&meta)
            ));
        }
        let w = walk(root, &acct, max);
        for d in &w.bad_dirs {
            problems.push(format!("{} lacks rwx on subdirectory {d}", acct.name));
        }
        for f in &w.bad_files {
            problems.push(format!("{} cannot read cache file {f}", acct.name));
        }
        bytes += w.bytes;
        files += w.files;
        let age = |t: Option<SystemTime>| {
            t.and_then(|t| now.duration_since(t).ok())
                .map_or("-".into(), |d| process::age_text(d.as_secs() as i64))
        };
        let mut text = format!(
            "{path}: {} owned {}, {} files, {:.1} MiB{}, oldest entry {} old, newest {} old",
            permission::mode_text(&meta),
            format_args!(
                "{}:{}",
                permission::user_name(meta.uid()),
                permission::group_name(meta.gid())
            ),
            w.files,
            w.bytes as f64 / 1_048_576.0,
            if w.truncated {
                " (walk stopped at max_entries)"
            } else {
                ""
            },
            age(w.oldest),
            age(w.newest)
        );
        match crate::platform::fs::statvfs(path.as_str()) {
            Ok(s) => {
                let free = if s.blocks > 0 {
                    s.blocks_available as f64 * 100.0 / s.blocks as f64
                } else {
                    100.0
                };
                let ino = if s.files > 0 {
                    s.files_available as f64 * 100.0 / s.files as f64
                } else {
                    100.0
                };
                let _ = write!(text, "; filesystem {free:.1}% free, inodes {ino:.1}% free");
                if free < min_free || (s.files > 0 && ino < min_free) {
                    problems.push(format!("the cache filesystem is nearly full ({free:.1}% space, {ino:.1}% inodes free)"));
                }
            }
            Err(e) => unknown.push(format!("statvfs {path}: {e}")),
        }
        let e = Evidence::new("cache", text).at((*path).clone());
        ev.push(e.clone());
        if !problems.is_empty() {
            writable = false;
            faults.push((problems.join("; "), e));
        }
    }
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact("cache.size_bytes", bytes.to_string())
        .with_fact("cache.files", files.to_string())
        .with_fact("cache.writable", if writable { "yes" } else { "no" });
    for e in &ev {
        r = r.with_evidence(e.clone());
    }
    if !faults.is_empty() {
        let s = faults
            .iter()
            .map(|f| f.0.clone())
            .collect::<Vec<_>>()
            .join("; ");
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
        r = r.diagnose(
            Cause::CacheFault,
            Severity::High,
            s,
            faults.into_iter().map(|f| f.1).collect(),
        );
    } else if !unknown.is_empty() {
        r.outcome = Outcome::Inconclusive;
        r.summary = format!("could not look at: {}", unknown.join("; "));
    } else {
        r.summary = format!(
            "{} may read and write the cache ({files} files, {:.1} MiB) and space is sufficient",
            acct.name,
            bytes as f64 / 1_048_576.0
        );
        let why = r.summary.clone();
        r = r.exclude(Cause::CacheFault, why);
    }
    r
}
