//! `recent_changes`: what changed shortly before the errors began?
//!
//! Files under the given config dirs (or given config files) modified in the window (with a unified
//! diff against a `.bak`/`.orig`/`~`/`.dpkg-old`/`.save` copy, or `git diff`
//! when the dir is in a git work tree), package installs and upgrades from
//! the dpkg/apt/dnf/yum logs, service restarts and reloads (the journal when
//! readable, or the servers' own `[notice]` lines), and plugin directories.
//! The window is `[window_from - lookback, window_to]`. `changes.backup` is
//! the first backup found of a changed file and `changes.backup_of` that file
//! (what a rollback restores).
//!
//! Weighed by the failing path (`path_pids`, see [`crate::checks::path`]): a package event
//! counts only when it upgrades or removes a package that provides a file the path's processes
//! run (`/proc/PID/exe` and `/proc/PID/maps` mapped to packages through
//! `/var/lib/dpkg/info/*.list`: the server, PHP and its extensions, libc, openssl) or one the
//! operator names (`packages`); a fresh install is not a change to something that worked. A
//! journal restart counts only for a unit or program of the path. Everything else is one
//! context note ("37 unrelated package events (libapr1, iptables, ...)"). A recent change is
//! circumstantial evidence: it could explain a failure, it does not show one.
//! Invariants: walks at most [`MAX_ENTRIES`] entries and [`MAX_DEPTH`] levels;
//! reads at most 1 MiB per file for diffs and the last 8 MiB of each log;
//! `git` runs with `--no-optional-locks` so it never refreshes the index.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{Aside, CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::path::FailingPath;
use crate::checks::tool;
use crate::duration::HumanDuration;

/// Parameters of the `recent_changes` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Config dirs to look in, or config files to look at by themselves (default:
    /// /etc/nginx, /etc/apache2, /etc/httpd, /etc/php, /etc/haproxy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<String>,
    /// How far before the incident window a change still counts (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<HumanDuration>,
    /// Package manager logs (default: /var/log/dpkg.log, /var/log/apt/history.log,
    /// /var/log/dnf.log, /var/log/yum.log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub package_logs: Vec<String>,
    /// Server error logs scanned for restart/reload notices (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_logs: Vec<String>,
    /// Plugin directories whose entries' change times are listed, e.g.
    /// `/var/www/html/wp-content/plugins` (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugin_dirs: Vec<String>,
    /// The failing path's processes: PIDs, or `PID name` as discovery's `upstream.listener`
    /// gives them (`["{{ front.pid }}", "{{ upstream.listener }}"]`). Package events and
    /// restarts count only for these; with none given, every upgrade and removal counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_pids: Vec<String>,
    /// Packages that count whatever the path runs (the app's runtime, a library the operator
    /// suspects), e.g. `python3.11`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Where dpkg keeps its `*.list` files (default /var/lib/dpkg/info).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpkg_info: Option<String>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "recent_changes",
    summary: "What changed before the errors began: config files (with a diff against a .bak/.orig/~ copy or git), upgrades/removals of the packages the failing path runs (path_pids, dpkg file lists; other package events and installs are context), service restarts/reloads (journal or the servers' notices), plugin dirs. A change is circumstantial evidence.",
    example: r#"{ recent_changes = { dirs = ["/etc/nginx", "/etc/php/8.2"], lookback = "24h", server_logs = ["{{ error_logs }}"], plugin_dirs = ["/var/www/html/wp-content/plugins"], path_pids = ["{{ front.pid }}", "{{ upstream.listener }}"] } }"#,
    facts: &[
        "changes.files",
        "changes.backup",
        "changes.backup_of",
        "changes.packages",
        "changes.restarts",
    ],
};

pub const MAX_ENTRIES: usize = 50_000;
pub const MAX_DEPTH: usize = 10;
const FILE_CAP: u64 = 1 << 20;
const LOG_TAIL: u64 = 8 << 20;
const BACKUP_SUFFIXES: &[&str] = &[
    ".bak",
    ".orig",
    "~",
    ".dpkg-old",
    ".dpkg-dist",
    ".save",
    ".old",
];

impl Params {
    pub fn label(&self) -> String {
        "recent changes".into()
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

fn read_file(path: &Path) -> std::io::Result<String> {
    let mut v = Vec::new();
    std::fs::File::open(path)?
        .take(FILE_CAP)
        .read_to_end(&mut v)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

/// The last `LOG_TAIL` bytes of a log.
fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > LOG_TAIL {
        f.seek(SeekFrom::Start(len - LOG_TAIL))?;
    }
    let mut v = Vec::new();
    f.take(LOG_TAIL).read_to_end(&mut v)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

fn is_backup(name: &str) -> bool {
    BACKUP_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Files changed in `[from, to]` under `root` (not following symlinks).
fn changed_files(
    root: &Path,
    from: SystemTime,
    to: SystemTime,
    budget: &mut usize,
) -> Vec<(PathBuf, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            if *budget == 0 {
                return out;
            }
            *budget -= 1;
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            if m.is_dir() {
                if depth < MAX_DEPTH && name != ".git" {
                    stack.push((e.path(), depth + 1));
                }
            } else if let Ok(t) = m.modified()
                && t >= from
                && t <= to
                && !is_backup(&name)
            {
                out.push((e.path(), t));
            }
        }
    }
    out.sort();
    out
}

fn backup_of(file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?.to_string_lossy().into_owned();
    BACKUP_SUFFIXES
        .iter()
        .map(|s| file.with_file_name(format!("{name}{s}")))
        .find(|p| p.is_file())
}

/// A unified diff of two texts, at most 200 lines.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let d = similar::TextDiff::from_lines(old, new);
    let text = d
        .unified_diff()
        .context_radius(2)
        .header(old_name, new_name)
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() > 200 {
        format!(
            "{}\n… ({} more lines)",
            lines[..200].join("\n"),
            lines.len() - 200
        )
    } else {
        text
    }
}

fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take(32)
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

async fn git_diff(root: &Path, file: &Path) -> Option<String> {
    let args: Vec<String> = vec![
        "--no-optional-locks".into(),
        "-C".into(),
        root.display().to_string(),
        "diff".into(),
        "--no-color".into(),
        "--no-ext-diff".into(),
        "HEAD".into(),
        "--".into(),
        file.display().to_string(),
    ];
    let o = tool::run("git", &args, Duration::from_secs(10), 256 * 1024)
        .await
        .ok()?;
    (o.code == Some(0) && !o.stdout.trim().is_empty()).then(|| {
        let lines: Vec<&str> = o.stdout.lines().take(200).collect();
        lines.join("\n")
    })
}

fn ts(t: &str) -> Option<i64> {
    // `2026-11-23 10:00:00` or `2026-11-23T10:00:00` (local time), or with an offset/Z.
    let t = t.trim();
    if let Ok(x) = t.parse::<jiff::Timestamp>() {
        return Some(x.as_second());
    }
    let dt: jiff::civil::DateTime = t.replacen(' ', "T", 1).parse().ok()?;
    Some(
        dt.to_zoned_datetime(jiff::tz::TimeZone::system())
            .ok()?
            .timestamp()
            .as_second(),
    )
}

/// Package events in the window from dpkg, apt history, dnf and yum logs.
pub fn package_events(text: &str, from: i64, to: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut apt_start: Option<i64> = None;
    for l in text.lines() {
        if out.len() >= 100 {
            break;
        }
        // dpkg.log: `2026-11-23 10:00:00 upgrade nginx:amd64 1.22.1-9 1.22.1-9+deb12u1`
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() >= 4 && matches!(w[2], "install" | "upgrade" | "remove" | "purge") {
            if let Some(t) = ts(&format!("{} {}", w[0], w[1]))
                && t >= from
                && t <= to
            {
                out.push(l.trim().to_owned());
            }
            continue;
        }
        // apt history: `Start-Date: 2026-11-23  10:00:00` then `Upgrade: …`
        if let Some(rest) = l.strip_prefix("Start-Date:") {
            apt_start = ts(&rest.split_whitespace().collect::<Vec<_>>().join(" "));
            continue;
        }
        if let Some(t) = apt_start
            && t >= from
            && t <= to
            && ["Install:", "Upgrade:", "Remove:", "Purge:"]
                .iter()
                .any(|k| l.starts_with(k))
        {
            let line: String = l.chars().take(400).collect();
            out.push(format!("apt {line}"));
            continue;
        }
        // dnf.log: `2026-11-23T10:00:00+0000 INFO Upgraded: …` / yum.log `Nov 23 10:00:00 Updated: …`
        if (l.contains("Upgraded:")
            || l.contains("Installed:")
            || l.contains("Updated:")
            || l.contains("Erased:"))
            && let Some(first) = w.first()
            && let Some(t) = ts(&first.replace("+0000", "Z"))
            && t >= from
            && t <= to
        {
            out.push(l.trim().to_owned());
        }
    }
    out
}

/// What a package event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PackageAction {
    Install,
    Upgrade,
    Remove,
}

/// One package event of a package manager log line (an apt line can name several packages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEvent {
    /// The package name without architecture or version (`libssl3`).
    pub package: String,
    pub action: PackageAction,
    /// The log line it came from (as [`package_events`] returns it).
    pub line: String,
}

fn action_of(word: &str) -> Option<PackageAction> {
    match word.trim_end_matches(':') {
        "install" | "Install" | "Installed" | "Reinstall" => Some(PackageAction::Install),
        "upgrade" | "Upgrade" | "Upgraded" | "Updated" | "Downgrade" | "Downgraded" => {
            Some(PackageAction::Upgrade)
        }
        "remove" | "purge" | "Remove" | "Purge" | "Erased" | "Removed" => {
            Some(PackageAction::Remove)
        }
        _ => None,
    }
}

/// `nginx:amd64` → `nginx`; `nginx-1.22.1-9.el9.x86_64` → `nginx` (dnf/yum: the name ends
/// before the first `-` followed by a digit); a dpkg list file name `libc6:amd64` → `libc6`.
fn package_name(word: &str) -> String {
    let w = word.trim_matches(|c: char| c == ',' || c == '(' || c == ')');
    // dpkg and apt name `name:arch`, and their names may hold `-1.2` (libsigc++-2.0-0v5).
    if let Some((name, _arch)) = w.split_once(':') {
        return name.to_owned();
    }
    let b = w.as_bytes();
    for i in 0..b.len().saturating_sub(1) {
        if b[i] == b'-' && b[i + 1].is_ascii_digit() && w.contains('.') {
            return w[..i].to_owned();
        }
    }
    w.to_owned()
}

/// The packages and actions of lines returned by [`package_events`].
pub fn parse_package_events(lines: &[String]) -> Vec<PackageEvent> {
    let mut out = Vec::new();
    for l in lines {
        let w: Vec<&str> = l.split_whitespace().collect();
        // dpkg: `DATE TIME ACTION NAME:ARCH OLD NEW`
        if w.len() >= 4
            && let Some(a) = action_of(w[2])
            && w[2].chars().all(|c| c.is_ascii_lowercase())
        {
            out.push(PackageEvent {
                package: package_name(w[3]),
                action: a,
                line: l.clone(),
            });
            continue;
        }
        // apt: `apt Upgrade: a:amd64 (1, 2), b:amd64 (3, 4)`
        if let Some(rest) = l.strip_prefix("apt ")
            && let Some((k, list)) = rest.split_once(':')
            && let Some(a) = action_of(k)
        {
            let mut depth = 0i32;
            let mut name = String::new();
            for c in list.chars().chain(std::iter::once(',')) {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        let n = name.split_whitespace().next().unwrap_or("");
                        if !n.is_empty() {
                            out.push(PackageEvent {
                                package: package_name(n),
                                action: a,
                                line: l.clone(),
                            });
                        }
                        name.clear();
                    }
                    c if depth == 0 => name.push(c),
                    _ => {}
                }
            }
            continue;
        }
        // dnf/yum: `… Upgraded: nginx-1.22.1-9.el9.x86_64`
        if let Some(i) = w
            .iter()
            .position(|x| action_of(x).is_some() && x.ends_with(':'))
        {
            if let (Some(a), Some(n)) = (action_of(w[i]), w.get(i + 1)) {
                out.push(PackageEvent {
                    package: package_name(n),
                    action: a,
                    line: l.clone(),
                });
            }
        }
    }
    out
}

/// `/usr/lib/x86_64-linux-gnu/libc.so.6` and its merged-/usr twin `/lib/…` (dpkg lists the
/// path the package shipped, which may be either).
fn usr_merge_twins(p: &str) -> Vec<String> {
    let mut v = vec![p.to_owned()];
    for top in ["/lib", "/bin", "/sbin", "/lib64", "/lib32"] {
        if let Some(rest) = p.strip_prefix("/usr").filter(|r| r.starts_with(top)) {
            v.push(rest.to_owned());
        } else if p.starts_with(&format!("{top}/")) {
            v.push(format!("/usr{p}"));
        }
    }
    v
}

/// Files the path's processes run: executables and everything mapped from a file.
fn path_files(fp: &FailingPath) -> std::collections::BTreeSet<String> {
    let mut files = std::collections::BTreeSet::new();
    for e in fp.exes() {
        files.extend(usr_merge_twins(&e.display().to_string()));
    }
    let mut seen_exe = std::collections::BTreeSet::new();
    for m in fp.members.iter().take(64) {
        // Workers of one program map the same files, except for late dlopen()s: read each
        // program's first two processes.
        let key = m.exe.clone().unwrap_or_default();
        let n = seen_exe.iter().filter(|(k, _)| *k == key).count();
        if n >= 2 {
            continue;
        }
        seen_exe.insert((key, m.pid));
        let Ok(text) = crate::sys::read_text(Path::new(&format!("/proc/{}/maps", m.pid))) else {
            continue;
        };
        for line in text.lines().take(100_000) {
            if let Some(f) = line
                .split_whitespace()
                .nth(5)
                .filter(|f| f.starts_with('/'))
            {
                files.extend(usr_merge_twins(f));
            }
        }
    }
    files
}

/// Packages (dpkg) owning any of `files`, from the `*.list` files in `info_dir`.
pub fn packages_owning(
    info_dir: &Path,
    files: &std::collections::BTreeSet<String>,
) -> std::io::Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(info_dir)?
        .filter_map(Result::ok)
        .take(50_000)
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pkg) = name.strip_suffix(".list") else {
            continue;
        };
        let Ok(text) = read_file_capped(&e.path(), 8 << 20) else {
            continue;
        };
        if text.lines().any(|l| files.contains(l)) {
            out.insert(package_name(pkg));
        }
    }
    Ok(out)
}

fn read_file_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    let mut v = Vec::new();
    std::fs::File::open(path)?.take(cap).read_to_end(&mut v)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

/// systemd units of the path, from its memory cgroups (`/system.slice/nginx.service`).
fn path_units(fp: &FailingPath) -> Vec<String> {
    fp.cgroups()
        .iter()
        .filter_map(|c| c.rsplit('/').find(|p| p.ends_with(".service")))
        .map(str::to_owned)
        .collect()
}

/// Restart/reload notices of nginx, Apache, php-fpm and HAProxy.
pub fn restart_lines(text: &str) -> Vec<String> {
    const MARKS: &[&str] = &[
        "signal process started",
        "reconfiguring",
        "start worker processes",
        "resuming normal operations",
        "caught SIGTERM, shutting down",
        "SIGHUP received",
        "SIGUSR1 received",
        "Graceful restart requested",
        "ready to handle connections",
        "Reloading PHP",
        "exiting, bye-bye",
        "Proxy started",
        "Stopping proxies",
        "Started ",
        "Stopped ",
        "Reloaded ",
        "Reloading ",
    ];
    text.lines()
        .filter(|l| MARKS.iter().any(|m| l.contains(m)))
        .map(|l| l.trim().chars().take(300).collect())
        .collect()
}

/// The timestamp of an nginx/php-fpm/Apache/journal log line, if it has one.
fn line_time(l: &str) -> Option<i64> {
    // nginx: `2026/11/23 10:00:00 [notice] …`
    if l.len() >= 19 && l.as_bytes().get(4) == Some(&b'/') {
        return ts(&l[..19].replace('/', "-"));
    }
    // Apache: `[Mon Nov 23 10:00:00.123456 2026] …`, php-fpm: `[23-Nov-2026 10:00:00] …`
    if let Some(inner) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
        for fmt in ["%a %b %d %H:%M:%S%.f %Y", "%d-%b-%Y %H:%M:%S"] {
            if let Ok(dt) = jiff::civil::DateTime::strptime(fmt, inner) {
                return Some(
                    dt.to_zoned_datetime(jiff::tz::TimeZone::system())
                        .ok()?
                        .timestamp()
                        .as_second(),
                );
            }
        }
    }
    // journal short-iso: `2026-11-23T10:00:00+0000 host unit[pid]: …`
    l.split_whitespace()
        .next()
        .and_then(|w| ts(w).or_else(|| ts(&w.replace("+0000", "Z"))))
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = look(p, ctx).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn look(p: &Params, ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let lookback = p.lookback.map_or(Duration::from_secs(86400), |d| d.0);
    let from_s = ctx.window_from.as_second() - lookback.as_secs() as i64;
    let to_s = ctx.window_to.as_second() + 60;
    let to_sys = |s: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(s.max(0) as u64);
    let (from, to) = (to_sys(from_s), to_sys(to_s));
    let dirs: Vec<String> = if p.dirs.is_empty() {
        [
            "/etc/nginx",
            "/etc/apache2",
            "/etc/httpd",
            "/etc/php",
            "/etc/haproxy",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    } else {
        p.dirs
            .iter()
            .filter(|d| !d.trim().is_empty())
            .cloned()
            .collect()
    };
    let mut looked = 0usize;
    let mut unreadable = Vec::new();
    let mut ev = Vec::new();
    let mut files = Vec::new();
    let mut first_backup = String::new();
    let mut backup_of_file = String::new();
    let mut budget = MAX_ENTRIES;
    for d in &dirs {
        let root = Path::new(d);
        // A config file (`{{ front.config }}`) is looked at by itself.
        let changed = if root.is_file() {
            looked += 1;
            std::fs::metadata(root)
                .and_then(|m| m.modified())
                .ok()
                .filter(|t| *t >= from && *t <= to)
                .map(|t| vec![(root.to_path_buf(), t)])
                .unwrap_or_default()
        } else {
            match std::fs::read_dir(root) {
                Ok(_) => looked += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && p.dirs.is_empty() => {
                    continue;
                }
                Err(e) => {
                    unreadable.push(format!("{d}: {e}"));
                    continue;
                }
            }
            changed_files(root, from, to, &mut budget)
        };
        let repo = git_root(root);
        for (f, t) in changed.into_iter().take(200) {
            if files.contains(&f.display().to_string()) {
                continue;
            }
            let when = jiff::Timestamp::try_from(t)
                .map(|x| x.to_string())
                .unwrap_or_default();
            files.push(f.display().to_string());
            let diff = if let Some(b) = backup_of(&f) {
                if first_backup.is_empty() {
                    first_backup = b.display().to_string();
                    backup_of_file = f.display().to_string();
                }
                match (read_file(&b), read_file(&f)) {
                    (Ok(old), Ok(new)) => Some(unified_diff(
                        &old,
                        &new,
                        &b.display().to_string(),
                        &f.display().to_string(),
                    )),
                    (Err(e), _) | (_, Err(e)) => Some(format!("cannot read for a diff: {e}")),
                }
            } else if let Some(root) = &repo {
                git_diff(root, &f).await
            } else {
                None
            };
            let text = match diff {
                Some(d) => format!("{} modified {when}\n{d}", f.display()),
                None => format!(
                    "{} modified {when} (no backup copy or git history to diff against)",
                    f.display()
                ),
            };
            ev.push(Evidence::new("changed file", text).at(f.display().to_string()));
        }
    }
    // Packages.
    let pkg_logs: Vec<String> = if p.package_logs.is_empty() {
        [
            "/var/log/dpkg.log",
            "/var/log/apt/history.log",
            "/var/log/dnf.log",
            "/var/log/yum.log",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    } else {
        p.package_logs.clone()
    };
    let path = FailingPath::read(&p.path_pids).await;
    // The packages that provide what the path runs.
    let mut path_packages: std::collections::BTreeSet<String> = p
        .packages
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(fp) = &path {
        let info = PathBuf::from(p.dpkg_info.as_deref().unwrap_or("/var/lib/dpkg/info"));
        let fp2 = fp.clone();
        let owned = tokio::task::spawn_blocking(move || {
            let files = path_files(&fp2);
            packages_owning(&info, &files)
        })
        .await;
        match owned {
            Ok(Ok(pkgs)) => path_packages.extend(pkgs),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(Err(e)) => unreadable.push(format!("dpkg file lists: {e}")),
            Err(e) => unreadable.push(format!("dpkg file lists: {e}")),
        }
        ev.push(Evidence::new(
            "failing path",
            format!(
                "{}; packages providing it: {}",
                if fp.is_empty() {
                    "no process of the path is running".to_owned()
                } else {
                    fp.describe()
                },
                if path_packages.is_empty() {
                    "none found".to_owned()
                } else {
                    path_packages.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        ));
    }
    let mut packages = Vec::new();
    let mut unrelated: Vec<PackageEvent> = Vec::new();
    for l in pkg_logs.iter().filter(|s| !s.trim().is_empty()) {
        match read_tail(Path::new(l)) {
            Ok(t) => {
                looked += 1;
                let lines = package_events(&t, from_s, to_s);
                let mut counted = Vec::new();
                for e in parse_package_events(&lines) {
                    let on_path = path.is_none() || path_packages.contains(&e.package);
                    if e.action != PackageAction::Install && on_path {
                        if !counted.contains(&e.line) {
                            counted.push(e.line.clone());
                        }
                    } else {
                        unrelated.push(e);
                    }
                }
                if !counted.is_empty() {
                    ev.push(Evidence::new("packages", counted.join("\n")).at(l.clone()));
                }
                packages.extend(counted);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && p.package_logs.is_empty() => {}
            Err(e) => unreadable.push(format!("{l}: {e}")),
        }
    }
    let mut asides = Vec::new();
    if !unrelated.is_empty() {
        let installs = unrelated
            .iter()
            .filter(|e| e.action == PackageAction::Install)
            .count();
        let mut names: Vec<&str> = Vec::new();
        for e in &unrelated {
            if !names.contains(&e.package.as_str()) {
                names.push(&e.package);
            }
        }
        let shown: Vec<&str> = names.iter().take(6).copied().collect();
        asides.push(Aside::new(
            format!(
                "{} unrelated package event(s) ({}{}): {installs} install(s), {} upgrade(s) or removal(s)",
                unrelated.len(),
                shown.join(", "),
                if names.len() > shown.len() { ", ..." } else { "" },
                unrelated.len() - installs
            ),
            match &path {
                Some(_) => "a fresh install changes nothing that worked, and the upgrades and removals are of packages that provide nothing the failing path runs".to_owned(),
                None => "fresh installs change nothing that worked".to_owned(),
            },
        ));
    }
    // Restarts: server logs, then the journal.
    let mut restarts = Vec::new();
    for l in p.server_logs.iter().filter(|s| !s.trim().is_empty()) {
        match read_tail(Path::new(l)) {
            Ok(t) => {
                looked += 1;
                let lines: Vec<String> = restart_lines(&t)
                    .into_iter()
                    .filter(|x| line_time(x).is_none_or(|t| t >= from_s && t <= to_s))
                    .take(50)
                    .collect();
                if !lines.is_empty() {
                    ev.push(Evidence::new("restarts", lines.join("\n")).at(l.clone()));
                }
                restarts.extend(lines);
            }
            Err(e) => unreadable.push(format!(
                "{l}: {e}{}",
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (run as root or add yourself to group adm)"
                } else {
                    ""
                }
            )),
        }
    }
    if std::path::Path::new("/run/systemd/system").is_dir() && tool::find("journalctl").is_ok() {
        let since = jiff::Timestamp::from_second(from_s)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let args: Vec<String> = [
            "--no-pager",
            "-q",
            "-o",
            "short-iso",
            "--since",
            since.as_str(),
            "_PID=1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Ok(o) = tool::run("journalctl", &args, Duration::from_secs(10), 2 << 20).await
            && o.code == Some(0)
        {
            looked += 1;
            let all = restart_lines(&o.stdout);
            let (lines, other): (Vec<String>, Vec<String>) = match &path {
                Some(fp) => {
                    let units = path_units(fp);
                    let comms = fp.comms();
                    all.into_iter().partition(|l| {
                        units
                            .iter()
                            .any(|u| l.contains(u.trim_end_matches(".service")))
                            || comms.iter().any(|c| l.contains(c.as_str()))
                    })
                }
                None => (all, Vec::new()),
            };
            let lines: Vec<String> = lines.into_iter().take(50).collect();
            if !other.is_empty() {
                asides.push(
                    Aside::new(
                        format!("{} restart(s) of other units", other.len()),
                        "no unit or program of the failing path",
                    )
                    .at(o.argv.clone()),
                );
            }
            if !lines.is_empty() {
                ev.push(Evidence::new("restarts", lines.join("\n")).at(o.argv));
            }
            restarts.extend(lines);
        }
    }
    // Plugin dirs: entries whose mtime is in the window.
    for d in p.plugin_dirs.iter().filter(|s| !s.trim().is_empty()) {
        match std::fs::read_dir(d) {
            Ok(rd) => {
                looked += 1;
                let mut changed = Vec::new();
                for e in rd.filter_map(Result::ok).take(5000) {
                    if let Ok(m) = e.metadata()
                        && let Ok(t) = m.modified()
                        && t >= from
                        && t <= to
                    {
                        changed.push(e.path().display().to_string());
                    }
                }
                changed.sort();
                if !changed.is_empty() {
                    ev.push(Evidence::new("plugins changed", changed.join("\n")).at(d.clone()));
                    files.extend(changed);
                }
            }
            Err(e) => unreadable.push(format!("{d}: {e}")),
        }
    }
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact("changes.files", files.join("\n"))
        .with_fact("changes.backup", first_backup)
        .with_fact("changes.backup_of", backup_of_file)
        .with_fact("changes.packages", packages.join("\n"))
        .with_fact("changes.restarts", restarts.join("\n"));
    for u in &unreadable {
        r = r.with_evidence(Evidence::new("not readable", u.clone()));
    }
    for a in asides {
        r = r.aside(a);
    }
    let n = files.len() + packages.len() + restarts.len();
    if n > 0 {
        let mut parts = Vec::new();
        if !files.is_empty() {
            parts.push(format!(
                "{} file(s) changed ({})",
                files.len(),
                files.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !packages.is_empty() {
            parts.push(format!(
                "{} package upgrade(s)/removal(s) of what the path runs",
                packages.len()
            ));
        }
        if !restarts.is_empty() {
            parts.push(format!("{} restart/reload notice(s)", restarts.len()));
        }
        let s = format!("changes before the errors: {}", parts.join("; "));
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&s);
        for e in &ev {
            r = r.with_evidence(e.clone());
        }
        // A change in time could explain a failure; it does not show one.
        r = r
            .diagnose(Cause::RecentChange, Severity::Medium, s, ev)
            .circumstantial();
    } else if looked == 0 {
        r.outcome = Outcome::Inconclusive;
        r.summary = if unreadable.is_empty() {
            "none of the config dirs or logs exist here".into()
        } else {
            format!("could not look: {}", unreadable.join("; "))
        };
    } else {
        r.summary = format!(
            "no change found in the {} window before the errors",
            HumanDuration(lookback)
        );
        let set_aside = !r.context.is_empty();
        r = r.exclude(
            Cause::RecentChange,
            if set_aside {
                "no change to the failing path in the window (what changed elsewhere is set aside)"
            } else {
                "no config, package, restart or plugin change in the window"
            },
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_and_apt_events_in_the_window() {
        let t = "2026-11-23 10:00:00 upgrade nginx:amd64 1.22.1-9 1.22.1-9+deb12u1\n2020-01-01 10:00:00 install x:amd64 <none> 1\nStart-Date: 2026-11-23  10:05:00\nUpgrade: php8.2-fpm:amd64 (8.2.1, 8.2.2)\n";
        let from = ts("2026-11-23 00:00:00").unwrap();
        let ev = package_events(t, from, from + 86400);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(ev[1].starts_with("apt Upgrade: php8.2-fpm"));
    }

    #[test]
    fn package_events_are_parsed_per_package() {
        let lines: Vec<String> = vec![
            "2026-12-03 07:39:44 upgrade libssl3:amd64 3.0.19-1~deb12u2 3.0.22-1~deb12u2".into(),
            "2026-12-03 07:40:00 install iptables:amd64 <none> 1.8.9-2".into(),
            "apt Upgrade: php8.2-fpm:amd64 (8.2.1, 8.2.2), libsigc++-2.0-0v5:amd64 (2.12.0-1, 2.12.1-1)".into(),
            "2026-11-23T10:00:00+0000 INFO Upgraded: nginx-1.22.1-9.el9.x86_64".into(),
        ];
        let ev = parse_package_events(&lines);
        let got: Vec<(&str, PackageAction)> =
            ev.iter().map(|e| (e.package.as_str(), e.action)).collect();
        assert_eq!(
            got,
            vec![
                ("libssl3", PackageAction::Upgrade),
                ("iptables", PackageAction::Install),
                ("php8.2-fpm", PackageAction::Upgrade),
                ("libsigc++-2.0-0v5", PackageAction::Upgrade),
                ("nginx", PackageAction::Upgrade),
            ]
        );
    }

    #[test]
    fn merged_usr_paths_have_twins() {
        assert!(
            usr_merge_twins("/usr/lib/x86_64-linux-gnu/libc.so.6")
                .contains(&"/lib/x86_64-linux-gnu/libc.so.6".to_owned())
        );
        assert!(usr_merge_twins("/sbin/x").contains(&"/usr/sbin/x".to_owned()));
    }

    #[test]
    fn nginx_reload_notice_is_a_restart() {
        let l = "2026/11/23 10:00:00 [notice] 123#123: signal process started";
        assert_eq!(restart_lines(l).len(), 1);
        assert!(line_time(l).is_some());
    }
}
