//! `plugins`: WordPress plugins under a document root, and which of them
//! recent fatal errors name.
//!
//! Lists `wp-content/plugins` (directories and single-file plugins) with the
//! name and version from each plugin's header comment and the newest change
//! time of its files; asks wp-cli which are active when it is installed
//! (`wp plugin list --format=json --skip-plugins --skip-themes`, so no plugin
//! code is loaded); finds `wp-content/plugins/NAME/` in fatal-error text or a
//! log's tail. Invariants: at most 500 plugins, 50 PHP files per plugin
//! (first 8 KiB each), 5000 files walked per plugin for change times.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::tool;

/// Parameters of the `plugins` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The site's document root (the directory holding wp-content).
    pub document_root: String,
    /// Text of recent fatal errors to search for plugin paths (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal_text: Option<String>,
    /// A log (PHP or web server error log) whose last 4 MiB are searched for
    /// plugin paths in fatal errors (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal_log: Option<String>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "plugins",
    summary: "WordPress plugins under a document root: name, version, change time; active ones via wp-cli when present; plugins named in recent fatal errors.",
    example: r#"{ plugins = { document_root = "/var/www/html", fatal_log = "/var/log/nginx/error.log" } }"#,
    facts: &["plugins.list", "plugins.implicated", "plugins.recent"],
};

const MAX_PLUGINS: usize = 500;

impl Params {
    pub fn label(&self) -> String {
        format!("WordPress plugins in {}", self.document_root)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// One plugin found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    /// Directory or file name (the slug).
    pub slug: String,
    pub name: String,
    pub version: String,
    pub changed: Option<SystemTime>,
}

fn head(path: &Path) -> String {
    let mut v = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(8192).read_to_end(&mut v);
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// `Plugin Name:` and `Version:` from a plugin header comment.
pub fn header_fields(text: &str) -> Option<(String, String)> {
    let field = |k: &str| {
        text.lines().find_map(|l| {
            let l = l.trim().trim_start_matches(['*', '/', '#']).trim();
            l.strip_prefix(k).map(|v| v.trim().to_owned())
        })
    };
    let name = field("Plugin Name:")?;
    Some((name, field("Version:").unwrap_or_default()))
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    let mut budget = 5000;
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            if budget == 0 {
                return newest;
            }
            budget -= 1;
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() && depth < 6 {
                stack.push((e.path(), depth + 1));
            }
            if let Ok(t) = m.modified()
                && newest.is_none_or(|n| t > n)
            {
                newest = Some(t);
            }
        }
    }
    newest
}

/// Plugins under `plugins_dir`.
pub fn scan(plugins_dir: &Path) -> std::io::Result<Vec<Plugin>> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(plugins_dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries.into_iter().take(MAX_PLUGINS) {
        let slug = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            let mut php: Vec<PathBuf> = std::fs::read_dir(&path)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "php"))
                        .take(50)
                        .collect()
                })
                .unwrap_or_default();
            php.sort();
            // The main file is usually SLUG/SLUG.php: try it first.
            php.sort_by_key(|p| {
                p.file_stem().map(|s| s.to_string_lossy().into_owned()) != Some(slug.clone())
            });
            let Some((name, version)) = php.iter().find_map(|f| header_fields(&head(f))) else {
                continue;
            };
            out.push(Plugin {
                slug,
                name,
                version,
                changed: newest_mtime(&path),
            });
        } else if path.extension().is_some_and(|x| x == "php")
            && let Some((name, version)) = header_fields(&head(&path))
        {
            let changed = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            out.push(Plugin {
                slug,
                name,
                version,
                changed,
            });
        }
    }
    Ok(out)
}

/// Plugin slugs named by `wp-content/plugins/SLUG/` paths in `text`, with the lines.
pub fn implicated(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for l in text.lines().take(200_000) {
        let lower = l.to_ascii_lowercase();
        if !(lower.contains("fatal") || lower.contains("uncaught") || lower.contains("parse error"))
        {
            continue;
        }
        let mut rest = l;
        while let Some(i) = rest.find("wp-content/plugins/") {
            let after = &rest[i + "wp-content/plugins/".len()..];
            let slug: String = after
                .chars()
                .take_while(|c| *c != '/' && *c != '\'' && *c != '"' && !c.is_whitespace())
                .collect();
            if !slug.is_empty() && !out.iter().any(|(s, _)| *s == slug) {
                out.push((
                    slug.trim_end_matches(".php").to_owned(),
                    l.trim().chars().take(400).collect(),
                ));
            }
            rest = after;
        }
        if out.len() >= 50 {
            break;
        }
    }
    out
}

fn tail(path: &str) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let cap = 4u64 << 20;
    if len > cap {
        f.seek(SeekFrom::Start(len - cap))?;
    }
    let mut v = Vec::new();
    f.take(cap).read_to_end(&mut v)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

async fn active_via_wp(root: &str) -> Result<BTreeSet<String>, String> {
    let args: Vec<String> = [
        "plugin",
        "list",
        "--format=json",
        "--skip-plugins",
        "--skip-themes",
        "--allow-root",
        &format!("--path={root}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let o = tool::run("wp", &args, Duration::from_secs(20), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if o.code != Some(0) {
        return Err(format!("`{}` failed: {}", o.argv, o.stderr.trim()));
    }
    let v: serde_json::Value =
        serde_json::from_str(&o.stdout).map_err(|e| format!("wp-cli output is not JSON: {e}"))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p.get("status").and_then(|s| s.as_str()) == Some("active"))
                .filter_map(|p| p.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = inspect(p, ctx).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn inspect(p: &Params, ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let dir = Path::new(&p.document_root).join("wp-content/plugins");
    let plugins = match scan(&dir) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!(
                    "{} does not exist: not a WordPress document root",
                    dir.display()
                ),
            );
        }
        Err(e) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!("cannot read {}: {e}", dir.display()),
            );
        }
    };
    let active = if tool::find("wp").is_ok() {
        Some(active_via_wp(&p.document_root).await)
    } else {
        None
    };
    let from = SystemTime::UNIX_EPOCH
        + Duration::from_secs(ctx.window_from.as_second().max(0) as u64)
        - Duration::from_secs(86400);
    let mut listing = Vec::new();
    let mut recent = Vec::new();
    for pl in &plugins {
        let when = pl
            .changed
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let state = match &active {
            Some(Ok(a)) if a.contains(&pl.slug) => " [active]",
            Some(Ok(_)) => " [inactive]",
            _ => "",
        };
        listing.push(format!(
            "{} {} ({}){state} changed {when}",
            pl.slug, pl.version, pl.name
        ));
        if pl.changed.is_some_and(|t| t >= from) {
            recent.push(pl.slug.clone());
        }
    }
    let mut text = p.fatal_text.clone().unwrap_or_default();
    let mut unread = Vec::new();
    if let Some(log) = p.fatal_log.as_deref().filter(|s| !s.trim().is_empty()) {
        match tail(log) {
            Ok(t) => {
                text.push('\n');
                text.push_str(&t);
            }
            Err(e) => unread.push(format!(
                "cannot read {log}: {e}{}",
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (run as root or add yourself to group adm)"
                } else {
                    ""
                }
            )),
        }
    }
    let named = implicated(&text);
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact("plugins.list", listing.join("\n"))
        .with_fact(
            "plugins.implicated",
            named
                .iter()
                .map(|x| x.0.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .with_fact("plugins.recent", recent.join("\n"))
        .with_evidence(
            Evidence::new(
                "plugins",
                if listing.is_empty() {
                    "none installed".into()
                } else {
                    listing.join("\n")
                },
            )
            .at(dir.display().to_string()),
        );
    match &active {
        Some(Err(e)) => r = r.with_evidence(Evidence::new("wp-cli", e.clone())),
        None => {
            r = r.with_evidence(Evidence::new(
                "wp-cli",
                "not installed: active/inactive state unknown",
            ));
        }
        Some(Ok(_)) => {}
    }
    for u in &unread {
        r = r.with_evidence(Evidence::new("not readable", u.clone()));
    }
    if !named.is_empty() {
        let ev: Vec<Evidence> = named
            .iter()
            .map(|(s, l)| Evidence::new(format!("fatal error in {s}"), l.clone()))
            .collect();
        let s = format!(
            "fatal errors name plugin(s) {}",
            named
                .iter()
                .map(|x| x.0.clone())
                .collect::<Vec<_>>()
                .join(", ")
        );
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
        for e in &ev {
            r = r.with_evidence(e.clone());
        }
        r = r.diagnose(Cause::AppFatal, Severity::High, s, ev);
    } else if !unread.is_empty() && p.fatal_text.is_none() {
        r.outcome = Outcome::Inconclusive;
        r.summary = format!(
            "{} plugin(s) found; the error log could not be searched: {}",
            plugins.len(),
            unread.join("; ")
        );
    } else {
        r.summary = format!(
            "{} plugin(s) found{}; no fatal error names one",
            plugins.len(),
            if recent.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} changed recently ({})",
                    recent.len(),
                    recent.join(", ")
                )
            }
        );
    }
    r
}
