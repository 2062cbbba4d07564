//! `triage502 fleet FILES...|DIR`: merge the JSON reports of many hosts into one fleet report.
//!
//! The input is just report files (`run --non-interactive --format json`), whoever collected
//! them: the Ansible role in `contrib/ansible/`, `ssh` in a loop, `pssh -o DIR`. Besides reports,
//! it reads the small records the Ansible role writes for a host it could not reach
//! (`{"triage502_fleet": "unreachable", ...}`) or where no report was made (`"failed"`).
//!
//! A host's name is the report's `host` (what `run` wrote: `TRIAGE502_HOST` or the machine's host
//! name), else the file name without `.json`. Failing hosts are grouped by root cause (the
//! report's first finding, the one the report ranks first); the most common cause, when one cause
//! is shared by more failing hosts than any other (and by two at least), makes the others
//! outliers. A file that cannot be read or is not a report is listed with one message naming
//! it, and the rest still merge. Reports are read leniently (unknown fields and unknown cause ids
//! are kept), so reports of another triage502 version merge too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::Cause;

/// Files larger than this are not reports (a report is a few hundred KiB at most).
const MAX_FILE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Report files, or directories of them (every file directly inside, e.g. the Ansible
    /// role's `triage502-reports/` or `pssh -o DIR`).
    #[arg(required = true, value_name = "FILES...|DIR")]
    pub inputs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: FleetFormat,
    /// Write the fleet report here instead of stdout (with `--tui`: where `w` writes the
    /// fleet ticket).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Open the fleet report full screen in this terminal: the summary, the causes, each host's
    /// own report (Enter) and the fleet ticket (`t`; `w` writes it, `y` copies it).
    #[arg(long, conflicts_with = "format")]
    pub tui: bool,
    /// With `--tui`: ASCII marks and borders only (terminals without line drawing).
    #[arg(long, requires = "tui")]
    pub ascii: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetFormat {
    Md,
    Json,
    Text,
}

/// One host's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Problem,
    Healthy,
    Inconclusive,
}

/// A host that sent a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostLine {
    pub host: String,
    /// The file it came from.
    pub file: String,
    pub status: HostStatus,
    pub url: Option<String>,
    /// The root cause (the report's first finding), as its id; null when none was established.
    pub cause: Option<String>,
    /// That finding's one-line summary.
    pub summary: Option<String>,
    /// Where the finding was established when not on this host (a hop, e.g. `app2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_on: Option<String>,
    /// The first evidence of the finding, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Every cause the report found, in its order.
    #[serde(default)]
    pub causes: Vec<String>,
    pub started_at: Option<String>,
}

/// Failing hosts that share a root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CauseGroup {
    /// The cause id; null for hosts where a failure was seen but no cause established.
    pub cause: Option<String>,
    pub title: String,
    pub hosts: Vec<HostLine>,
}

/// A host without a report: not reached, or the run made none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoReport {
    pub host: String,
    pub file: String,
    /// `unreachable` (the runner could not reach it) or `failed` (no report was made).
    pub kind: String,
    #[serde(default)]
    pub address: Option<String>,
    pub reason: String,
}

/// A file that is not a readable report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unreadable {
    pub file: String,
    pub error: String,
}

/// One ticket for the whole incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetTicket {
    pub title: String,
    /// The ticket in Markdown.
    pub body: String,
}

/// The merged report (`fleet --format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetReport {
    /// Hosts counted: with a report, unreachable or failed (unreadable files are not hosts).
    pub hosts: usize,
    /// Failing hosts grouped by root cause, the largest group first.
    pub failing: Vec<CauseGroup>,
    /// The cause most failing hosts share, when one does (more hosts than any other cause,
    /// and two at least).
    pub majority_cause: Option<String>,
    /// Failing hosts whose cause differs from the majority cause.
    pub outliers: Vec<HostLine>,
    pub healthy: Vec<HostLine>,
    pub unreachable: Vec<NoReport>,
    /// Hosts reached where the run made no report.
    pub failed: Vec<NoReport>,
    pub unreadable: Vec<Unreadable>,
    pub ticket: FleetTicket,
}

impl FleetReport {
    fn failing_count(&self) -> usize {
        self.failing.iter().map(|g| g.hosts.len()).sum()
    }

    /// Whether every host answered healthy and every file was read.
    pub fn all_healthy(&self) -> bool {
        self.failing.is_empty()
            && self.unreachable.is_empty()
            && self.failed.is_empty()
            && self.unreadable.is_empty()
    }
}

/// What the fleet reads of a report: lenient, so other versions merge too.
#[derive(Debug, Deserialize)]
struct ReportView {
    status: HostStatus,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    findings: Vec<FindingView>,
}

#[derive(Debug, Deserialize)]
struct FindingView {
    cause: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    evidence: Vec<EvidenceView>,
}

#[derive(Debug, Deserialize)]
struct EvidenceView {
    #[serde(default)]
    label: String,
    #[serde(default)]
    text: String,
}

/// A record the Ansible role writes instead of a report.
#[derive(Debug, Deserialize)]
struct RecordView {
    triage502_fleet: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    rc: Option<i64>,
}

/// One input file, read.
#[derive(Debug)]
enum Entry {
    Report(HostLine),
    NoReport(NoReport),
    Unreadable(Unreadable),
}

/// The host name a file name stands for: without `.json`, `.unreachable.json`, `.failed.json`.
fn host_from_file(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for suffix in [".unreachable.json", ".failed.json", ".json"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if !stem.is_empty() {
                return stem.to_owned();
            }
        }
    }
    name
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Read one file into an entry; never fails: a bad file becomes [`Entry::Unreadable`].
fn read_entry(path: &Path) -> Entry {
    let file = path.display().to_string();
    let bad = |error: String| {
        Entry::Unreadable(Unreadable {
            file: file.clone(),
            error,
        })
    };
    let text = match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE => {
            return bad(format!(
                "{} bytes: too large for a report (at most {MAX_FILE})",
                m.len()
            ));
        }
        Ok(_) => match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return bad(format!("cannot read: {e}")),
        },
        Err(e) => return bad(format!("cannot read: {e}")),
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return bad("empty: the run wrote no report (see the runner's error output)".into());
    }
    let text = match std::str::from_utf8(&text) {
        Ok(t) => t,
        Err(e) => return bad(format!("not UTF-8 text (byte {})", e.valid_up_to())),
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return bad(format!(
                "not JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ));
        }
    };
    if value.get("triage502_fleet").is_some() {
        let r: RecordView = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => return bad(format!("not a fleet record: {e}")),
        };
        let kind = match r.triage502_fleet.as_str() {
            "unreachable" | "failed" => r.triage502_fleet.clone(),
            other => return bad(format!("unknown fleet record kind `{other}`")),
        };
        let mut reason = one_line(r.reason.as_deref().unwrap_or(""), 400);
        if let Some(rc) = r.rc {
            reason = format!("exit status {rc}: {reason}");
        }
        if reason.is_empty() {
            reason.clone_from(&kind);
        }
        return Entry::NoReport(NoReport {
            host: r
                .host
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(|| host_from_file(path)),
            file,
            kind,
            address: r.address,
            reason,
        });
    }
    let r: ReportView = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return bad(format!("not a triage502 report: {e}")),
    };
    let host = r
        .host
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| host_from_file(path));
    let first = r.findings.first();
    Entry::Report(HostLine {
        established_on: first
            .and_then(|f| f.host.clone())
            .filter(|h| *h != host && !h.is_empty()),
        host,
        file,
        status: r.status,
        url: r.url,
        cause: first.map(|f| f.cause.clone()),
        summary: first.map(|f| one_line(&f.summary, 300)),
        evidence: first.and_then(|f| f.evidence.first()).map(|e| {
            if e.label.is_empty() {
                one_line(&e.text, 200)
            } else {
                format!("{}: {}", e.label, one_line(&e.text, 200))
            }
        }),
        causes: r.findings.iter().map(|f| f.cause.clone()).collect(),
        started_at: r.started_at,
    })
}

/// The files the inputs name: files as given, directories' regular files (not hidden), sorted.
/// A path that does not exist is unusable input.
pub fn collect_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in inputs {
        let meta = std::fs::metadata(p)
            .map_err(|e| crate::cli::UsageError(format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read the directory {}", p.display()))?
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn cause_title(id: Option<&str>) -> String {
    match id {
        None => "a failure was seen but no cause was established".into(),
        Some(id) => id
            .parse::<Cause>()
            .map_or_else(|_| id.to_owned(), |c| c.info().title.clone()),
    }
}

/// Merge read files into the fleet report.
pub fn merge(files: &[PathBuf]) -> FleetReport {
    let mut reports = Vec::new();
    let mut unreachable = Vec::new();
    let mut failed = Vec::new();
    let mut unreadable = Vec::new();
    for f in files {
        match read_entry(f) {
            Entry::Report(h) => reports.push(h),
            Entry::NoReport(n) if n.kind == "failed" => failed.push(n),
            Entry::NoReport(n) => unreachable.push(n),
            Entry::Unreadable(u) => unreadable.push(u),
        }
    }
    reports.sort_by(|a, b| a.host.cmp(&b.host).then(a.file.cmp(&b.file)));
    unreachable.sort_by(|a: &NoReport, b| a.host.cmp(&b.host));
    failed.sort_by(|a: &NoReport, b| a.host.cmp(&b.host));

    let (healthy, failing_hosts): (Vec<HostLine>, Vec<HostLine>) = reports
        .into_iter()
        .partition(|h| h.status == HostStatus::Healthy && h.cause.is_none());
    let mut groups: BTreeMap<Option<String>, Vec<HostLine>> = BTreeMap::new();
    for h in failing_hosts {
        groups.entry(h.cause.clone()).or_default().push(h);
    }
    let mut failing: Vec<CauseGroup> = groups
        .into_iter()
        .map(|(cause, hosts)| CauseGroup {
            title: cause_title(cause.as_deref()),
            cause,
            hosts,
        })
        .collect();
    // The largest group first; an established cause before "unexplained"; then by id.
    failing.sort_by(|a, b| {
        b.hosts
            .len()
            .cmp(&a.hosts.len())
            .then(a.cause.is_none().cmp(&b.cause.is_none()))
            .then(a.cause.cmp(&b.cause))
    });
    let majority_cause = match failing.as_slice() {
        [first, rest @ ..]
            if first.cause.is_some()
                && first.hosts.len() >= 2
                && rest.iter().all(|g| g.hosts.len() < first.hosts.len()) =>
        {
            first.cause.clone()
        }
        _ => None,
    };
    let outliers: Vec<HostLine> = match &majority_cause {
        Some(m) => failing
            .iter()
            .filter(|g| g.cause.as_ref() != Some(m))
            .flat_map(|g| g.hosts.iter().cloned())
            .collect(),
        None => Vec::new(),
    };
    let mut report = FleetReport {
        hosts: healthy.len()
            + failing.iter().map(|g| g.hosts.len()).sum::<usize>()
            + unreachable.len()
            + failed.len(),
        failing,
        majority_cause,
        outliers,
        healthy,
        unreachable,
        failed,
        unreadable,
        ticket: FleetTicket {
            title: String::new(),
            body: String::new(),
        },
    };
    report.ticket = ticket(&report);
    report
}

fn host_list(hosts: &[HostLine]) -> String {
    hosts
        .iter()
        .map(|h| h.host.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one ticket for the whole incident.
fn ticket(r: &FleetReport) -> FleetTicket {
    let failing = r.failing_count();
    let urls: Vec<&str> = {
        let mut v: Vec<&str> = r
            .failing
            .iter()
            .flat_map(|g| &g.hosts)
            .chain(&r.healthy)
            .filter_map(|h| h.url.as_deref())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let title = if failing == 0 {
        if r.unreachable.is_empty() && r.failed.is_empty() {
            format!("No fault found on {}", plural(r.hosts, "host", "hosts"))
        } else {
            format!(
                "No fault found on the hosts reached; {} without a report",
                plural(r.unreachable.len() + r.failed.len(), "host", "hosts")
            )
        }
    } else {
        let main = &r.failing[0];
        let mut t = format!(
            "Gateway errors on {failing} of {} hosts: {} on {}",
            r.hosts,
            main.title,
            host_list(&main.hosts)
        );
        if !r.outliers.is_empty() {
            let _ = write!(
                t,
                "; {} ({})",
                plural(r.outliers.len(), "outlier differs", "outliers differ"),
                host_list(&r.outliers)
            );
        } else if r.failing.len() > 1 {
            let _ = write!(t, "; {} causes in all", r.failing.len());
        }
        t
    };
    let mut b = String::new();
    let _ = writeln!(b, "## {title}\n");
    let _ = writeln!(b, "### Impact\n");
    let _ = writeln!(
        b,
        "- {} failing, {} healthy, {} unreachable, {} without a report, of {} hosts",
        failing,
        r.healthy.len(),
        r.unreachable.len(),
        r.failed.len(),
        r.hosts
    );
    if !urls.is_empty() {
        let _ = writeln!(
            b,
            "- URL{}: {}",
            if urls.len() == 1 { "" } else { "s" },
            urls.join(", ")
        );
    }
    if !r.unreadable.is_empty() {
        let _ = writeln!(
            b,
            "- {} could not be read (listed below); those hosts are not counted",
            plural(r.unreadable.len(), "file", "files")
        );
    }
    if failing > 0 {
        let _ = writeln!(b, "\n### Causes\n");
        for g in &r.failing {
            let id = g
                .cause
                .as_deref()
                .map(|c| format!(" (`{c}`)"))
                .unwrap_or_default();
            let _ = writeln!(
                b,
                "- **{}**{id} on {}: {}",
                g.title,
                plural(g.hosts.len(), "host", "hosts"),
                host_list(&g.hosts)
            );
            for h in &g.hosts {
                let on = h
                    .established_on
                    .as_deref()
                    .map(|o| format!(" (on {o})"))
                    .unwrap_or_default();
                if let Some(s) = &h.summary {
                    let _ = writeln!(b, "  - {}{on}: {s}", h.host);
                } else {
                    let _ = writeln!(b, "  - {}: status {:?}", h.host, h.status);
                }
                if let Some(e) = &h.evidence {
                    let _ = writeln!(b, "    - evidence: `{}`", e.replace('`', "'"));
                }
            }
            if let Some(c) = g.cause.as_deref().and_then(|c| c.parse::<Cause>().ok()) {
                for fix in &c.info().fixes {
                    let _ = writeln!(b, "  - Fix: {fix}");
                }
            }
        }
    }
    if !r.outliers.is_empty() {
        let _ = writeln!(b, "\n### Outliers\n");
        let _ = writeln!(
            b,
            "Most failing hosts show `{}`; these differ and need their own look:\n",
            r.majority_cause.as_deref().unwrap_or_default()
        );
        for h in &r.outliers {
            let _ = writeln!(
                b,
                "- {}: {}",
                h.host,
                h.cause
                    .as_deref()
                    .map_or_else(|| "no cause established".into(), |c| format!("`{c}`"))
            );
        }
    }
    if !r.unreachable.is_empty() || !r.failed.is_empty() {
        let _ = writeln!(b, "\n### Not triaged\n");
        for n in r.unreachable.iter().chain(&r.failed) {
            let addr = n
                .address
                .as_deref()
                .filter(|a| *a != n.host)
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            let what = if n.kind == "failed" {
                "no report"
            } else {
                "unreachable"
            };
            let _ = writeln!(b, "- {}{addr}: {what}: {}", n.host, n.reason);
        }
    }
    if !r.healthy.is_empty() {
        let _ = writeln!(b, "\n### Healthy\n");
        let _ = writeln!(b, "- {}", host_list(&r.healthy));
    }
    if !r.unreadable.is_empty() {
        let _ = writeln!(b, "\n### Unreadable files\n");
        for u in &r.unreadable {
            let _ = writeln!(b, "- {}: {}", u.file, u.error);
        }
    }
    let _ = writeln!(b, "\n### Next steps\n");
    if failing == 0 {
        let _ = writeln!(b, "- No host reached shows a fault.");
    } else if r.failing.len() == 1 && r.failing[0].cause.is_some() {
        let _ = writeln!(
            b,
            "- One cause on every failing host: fix it once, the same way, then re-run the fleet."
        );
    } else {
        let _ = writeln!(
            b,
            "- Fix the most common cause first; look at each outlier on its own \
             (`triage502 ticket` on that host has its full walk)."
        );
    }
    if !r.unreachable.is_empty() {
        let _ = writeln!(
            b,
            "- Reach the unreachable hosts (network, sshd, credentials) and triage them: they may fail too."
        );
    }
    FleetTicket { title, body: b }
}

impl FleetReport {
    /// Markdown: the summary tables, then the ticket.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# triage502 fleet report\n");
        let _ = writeln!(
            s,
            "{} hosts: {} failing, {} healthy, {} unreachable, {} without a report; {} unreadable file{}.\n",
            self.hosts,
            self.failing_count(),
            self.healthy.len(),
            self.unreachable.len(),
            self.failed.len(),
            self.unreadable.len(),
            if self.unreadable.len() == 1 { "" } else { "s" }
        );
        if !self.failing.is_empty() {
            let _ = writeln!(s, "## Failing hosts by cause\n");
            let _ = writeln!(s, "| cause | hosts | count |\n| --- | --- | --- |");
            for g in &self.failing {
                let mut names: Vec<String> = Vec::new();
                for h in &g.hosts {
                    if self.outliers.iter().any(|o| o.file == h.file) {
                        names.push(format!("{} (outlier)", h.host));
                    } else {
                        names.push(h.host.clone());
                    }
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} |",
                    g.cause.as_deref().map_or_else(
                        || "unexplained".to_owned(),
                        |c| format!("`{c}` {}", g.title)
                    ),
                    names.join(", "),
                    g.hosts.len()
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "## Ticket\n");
        let _ = writeln!(s, "{}", self.ticket.body);
        s
    }

    /// Plain text for a terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.ticket.title);
        let _ = writeln!(
            s,
            "{} hosts: {} failing, {} healthy, {} unreachable, {} without a report, {} unreadable file(s)",
            self.hosts,
            self.failing_count(),
            self.healthy.len(),
            self.unreachable.len(),
            self.failed.len(),
            self.unreadable.len()
        );
        for g in &self.failing {
            let _ = writeln!(
                s,
                "\nFAILING  {} [{}]",
                g.title,
                g.cause.as_deref().unwrap_or("unexplained")
            );
            for h in &g.hosts {
                let mark = if self.outliers.iter().any(|o| o.file == h.file) {
                    "  (outlier)"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "  {:<16} {}{mark}",
                    h.host,
                    h.summary.as_deref().unwrap_or("")
                );
            }
        }
        if !self.healthy.is_empty() {
            let _ = writeln!(s, "\nHEALTHY  {}", host_list(&self.healthy));
        }
        for n in &self.unreachable {
            let _ = writeln!(s, "\nUNREACHABLE  {}: {}", n.host, n.reason);
        }
        for n in &self.failed {
            let _ = writeln!(s, "\nNO REPORT  {}: {}", n.host, n.reason);
        }
        for u in &self.unreadable {
            let _ = writeln!(s, "\nUNREADABLE  {}: {}", u.file, u.error);
        }
        s
    }
}

/// The JSON schema of [`FleetReport`].
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FleetReport)).unwrap_or_default()
}

/// `triage502 fleet` (with `--tui`, the full-screen view: `tui::fleet`). Exit status: 0 every host healthy and every file read, 1 a host fails, is
/// unreachable, made no report, or a file is unreadable, 2 a path that does not exist or no file.
pub fn run(args: &FleetArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let files = collect_files(&args.inputs)?;
    if files.is_empty() {
        return Err(crate::cli::UsageError(format!(
            "no report files in {}",
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    if args.tui {
        // Refused before anything is drawn when there is no terminal.
        crate::tui::fleet::usable(&args.inputs)?;
        let report = merge(&files);
        let (report, written) = crate::tui::fleet::run(
            report,
            &args.inputs,
            files.len(),
            args.output.clone(),
            args.ascii,
        )?;
        return Ok(crate::tui::fleet::after(&report, written.as_deref()));
    }
    let report = merge(&files);
    for u in &report.unreadable {
        eprintln!("triage502 fleet: skipped {}: {}", u.file, u.error);
    }
    let text = match args.format {
        FleetFormat::Json => {
            let mut v = serde_json::to_value(&report)?;
            crate::redact::value(&mut v);
            serde_json::to_string_pretty(&v)? + "\n"
        }
        FleetFormat::Md => crate::redact::text(&report.to_markdown()),
        FleetFormat::Text => crate::redact::text(&report.to_text()),
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(if report.all_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_from_files() {
        assert_eq!(host_from_file(Path::new("/r/web1.json")), "web1");
        assert_eq!(
            host_from_file(Path::new("/r/web4.unreachable.json")),
            "web4"
        );
        assert_eq!(host_from_file(Path::new("/r/web5.failed.json")), "web5");
        assert_eq!(
            host_from_file(Path::new("/pssh/web6.example.com")),
            "web6.example.com"
        );
    }

    #[test]
    fn causes_are_titled_and_unknown_ids_kept() {
        assert_eq!(cause_title(Some("not_a_cause_yet")), "not_a_cause_yet");
        assert_ne!(cause_title(Some("upstream_refused")), "upstream_refused");
    }
}
