//! The steps of a hop, each bounded in time:
//!
//! 1. `triage502 --version` on the remote host: installed and the same release (version number,
//!    see [`same_release`]) → use it
//!    (ssh failing here means the host cannot be reached: DNS, refused, timeout, auth, host key,
//!    reported as such).
//! 2. Otherwise, when the copy is allowed: `mktemp -d` there (mode 0700), the static binary
//!    streamed into it over ssh's stdin, its SHA-256 computed there and compared.
//! 3. `run --non-interactive --read-only --format json --url URL --hops N-1 --progress`, its
//!    progress lines streamed as they come, its JSON report parsed.
//! 4. `rm -rf` of the directory and a check that it is gone, whatever happened in 2 and 3.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::quote;
use super::ssh::{Output, Ssh, Unreachable};
use super::target::Target;
use super::{Hop, HopStatus, Ran};
use crate::report::Report;

/// Where the binary to copy comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binary {
    /// `--hop-binary PATH` / `TRIAGE502_HOP_BINARY`; otherwise the running executable, when it
    /// is static.
    pub path: Option<PathBuf>,
}

/// A binary ready to copy: its bytes and their SHA-256.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Binary {
    /// The static build to copy, or why there is none.
    pub fn load(&self) -> Result<Loaded, String> {
        let path = if let Some(p) = &self.path {
            p.clone()
        } else {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot locate the running executable: {e}"))?;
            if let Err(e) = super::elf::check_static_file(&exe) {
                return Err(format!(
                    "{e}; give a static build with --hop-binary PATH (scripts/dist.sh makes one)"
                ));
            }
            exe
        };
        let bytes = super::elf::check_static_file(&path)?;
        let sha256 = hex(&Sha256::digest(&bytes));
        Ok(Loaded {
            path,
            bytes,
            sha256,
        })
    }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// May the hop copy the binary?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copy {
    Allowed,
    /// Not allowed, with why ("--read-only", "declined").
    Forbidden(String),
}

/// Everything a hop needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub ssh: Ssh,
    /// Hops left including this one (`--hops N`: the remote run gets N-1).
    pub hops: u32,
    /// This hop's depth from the first host (1 for this host's upstreams).
    pub depth: u32,
    /// The host the hop is made from (findings here carry this name).
    pub from: String,
    pub binary: Binary,
    pub copy: Copy,
    /// At most this many hops at once.
    pub parallel: usize,
    /// Bound of each short step (version, mktemp, copy, removal).
    pub step_timeout: Duration,
    /// Bound of the remote run.
    pub run_timeout: Duration,
    /// `--since` for the remote run.
    pub since: String,
    /// This binary's version line (`triage502 VERSION`), compared with the remote one.
    pub version: String,
}

impl Plan {
    pub fn new(ssh: Ssh, hops: u32) -> Plan {
        Plan {
            ssh,
            hops,
            depth: 1,
            from: super::this_host(),
            binary: Binary::default(),
            copy: Copy::Allowed,
            parallel: 4,
            step_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(180),
            since: "1h".into(),
            version: format!("triage502 {}", crate::cli::VERSION),
        }
    }

    /// The remote run's argv, with `BIN` the remote binary. The walk there is read-only; whether
    /// it may copy on to a further host follows this run (`TRIAGE502_HOP_REMOTE=copy|no-copy`,
    /// through `env`: an installed build of the same release that predates it ignores it).
    pub fn remote_run(&self, bin: &str, url: &str) -> Vec<String> {
        let mode = if self.copy == Copy::Allowed {
            "TRIAGE502_HOP_REMOTE=copy"
        } else {
            "TRIAGE502_HOP_REMOTE=no-copy"
        };
        let mut v: Vec<String> = [
            "env",
            mode,
            bin,
            "run",
            "--non-interactive",
            "--read-only",
            "--format",
            "json",
            "--progress",
            "--no-journal",
            "--since",
            &self.since,
            "--url",
            url,
            "--hops",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.push(self.hops.saturating_sub(1).to_string());
        v
    }

    /// The exact commands of a hop with a copy, for the consent dialog and the plan (`DIR` stands
    /// for the directory `mktemp -d` makes): make the directory, copy, run the walk there on
    /// `url`, remove the directory.
    pub fn copy_commands(&self, host: &str, url: &str) -> Vec<Vec<String>> {
        let run = quote::command(&self.remote_run("DIR/triage502", url));
        vec![
            self.ssh.argv(host, MKTEMP),
            self.ssh.argv(host, &copy_command("DIR")),
            self.ssh.argv(host, &run),
            self.ssh.argv(host, &remove_command("DIR")),
        ]
    }
}

/// Progress of a hop, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopEvent {
    /// The host (its address).
    pub host: String,
    pub line: String,
}

/// Where progress goes (the TUI's channel, or stderr).
pub type Progress = Arc<dyn Fn(HopEvent) + Send + Sync>;

const MKTEMP: &str = "umask 077 && mktemp -d \"${TMPDIR:-/tmp}/triage502-hop.XXXXXXXX\"";

fn copy_command(dir: &str) -> String {
    let bin = format!("{dir}/triage502");
    format!(
        "umask 077 && cat > {b} && chmod 0700 {b} && sha256sum {b}",
        b = quote::quote(&bin)
    )
}

fn remove_command(dir: &str) -> String {
    format!("rm -rf -- {d} && test ! -e {d}", d = quote::quote(dir))
}

/// Whether two `--version` lines name the same release: `triage502 0.1.0 (commit …, target)`
/// compared on the version number. The commit and the target are how that release was built (a
/// distribution's package of it is built for another target, or from a tarball without git): the
/// report format is the release's.
pub fn same_release(a: &str, b: &str) -> bool {
    let release = |l: &str| {
        let mut w = l.split_whitespace();
        (w.next() == Some("triage502"))
            .then(|| w.next().map(str::to_owned))
            .flatten()
    };
    release(a).is_some() && release(a) == release(b)
}

/// A directory name mktemp could have printed (absolute, no shell-special characters).
fn plausible_dir(s: &str) -> bool {
    s.starts_with('/')
        && s.contains("triage502-hop.")
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
}

fn cap(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

struct Attempt<'a> {
    t: &'a Target,
    plan: &'a Plan,
    progress: Progress,
    hop: Hop,
}

impl Attempt<'_> {
    fn say(&self, line: impl Into<String>) {
        (self.progress)(HopEvent {
            host: self.t.ssh_host.clone(),
            line: line.into(),
        });
    }

    async fn ssh(&mut self, remote: &str, stdin: Option<&[u8]>, limit: Duration) -> Output {
        self.hop
            .commands
            .push(self.plan.ssh.argv(&self.t.ssh_host, remote));
        let progress = self.progress.clone();
        let host = self.t.ssh_host.clone();
        let mut on_line = move |l: &str| {
            progress(HopEvent {
                host: host.clone(),
                line: l.to_owned(),
            });
        };
        self.plan
            .ssh
            .run(&self.t.ssh_host, remote, stdin, limit, &mut on_line)
            .await
    }

    fn unreachable(&mut self, out: &Output) {
        let why = Unreachable::classify(out);
        self.hop.status = HopStatus::Unreachable;
        self.hop.unreachable = Some(why);
        why.describe().clone_into(&mut self.hop.summary);
        self.hop.stderr = cap(out.stderr.trim(), 2000);
    }

    fn failed(&mut self, summary: String, stderr: &str) {
        self.hop.status = HopStatus::Failed;
        self.hop.summary = summary;
        self.hop.stderr = cap(stderr.trim(), 4000);
    }
}

/// Make one hop. Never fails: what went wrong is in the returned [`Hop`] (and the remote report,
/// when there is one, comes with it).
pub async fn hop_one(
    t: &Target,
    plan: &Plan,
    loaded: Option<&Result<Loaded, String>>,
    progress: Progress,
) -> (Hop, Option<Report>) {
    let t0 = Instant::now();
    let mut a = Attempt {
        t,
        plan,
        progress,
        hop: Hop {
            host: t.ssh_host.clone(),
            address: t.ssh_host.clone(),
            upstream: t.upstream.clone(),
            url: t.url.clone(),
            from: plan.from.clone(),
            depth: plan.depth,
            ran: Ran::NotRun,
            status: HopStatus::Failed,
            unreachable: None,
            remote_status: None,
            summary: String::new(),
            first_finding: None,
            findings: 0,
            duration_ms: 0,
            temp_dir: None,
            temp_dir_removed: None,
            commands: Vec::new(),
            stderr: String::new(),
        },
    };
    let report = steps(&mut a, loaded).await;
    a.hop.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    a.say(format!("hop ended: {}", a.hop.summary));
    (a.hop, report)
}

async fn steps(a: &mut Attempt<'_>, loaded: Option<&Result<Loaded, String>>) -> Option<Report> {
    let plan = a.plan;
    a.say(format!("ssh {}: triage502 --version", a.t.ssh_host));
    // Step 1: the version, and the host's own name (findings there carry it).
    let probe = "triage502 --version 2>/dev/null; echo \"host=$(uname -n)\"";
    let out = a.ssh(probe, None, plan.step_timeout).await;
    if out.code != Some(0) {
        a.unreachable(&out);
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let remote_version = text
        .lines()
        .find(|l| l.starts_with("triage502 "))
        .map(str::trim);
    if let Some(name) = text
        .lines()
        .find_map(|l| l.strip_prefix("host="))
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != plan.from)
    {
        // A host with a name of its own (hosts sharing this one's name, such as namespaces or
        // clones, keep their address).
        name.clone_into(&mut a.hop.host);
    }
    if remote_version.is_some_and(|v| same_release(v, &plan.version)) {
        a.hop.ran = Ran::Installed;
        a.say("triage502 of the same version is installed there");
        let argv = plan.remote_run("triage502", &a.t.url);
        return remote_run(a, &argv).await;
    }
    let why_copy = match remote_version {
        Some(v) => format!("{v} is installed there, not {}", plan.version),
        None => "triage502 is not installed there".to_owned(),
    };
    if let super::run::Copy::Forbidden(why) = &plan.copy {
        a.hop.status = HopStatus::Refused;
        a.hop.summary = format!(
            "{why_copy}: the hop needs to copy triage502 there (a reversible action), and {why}"
        );
        return None;
    }
    let bin = match loaded {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            a.failed(
                format!("{why_copy}, and there is no static build to copy: {e}"),
                "",
            );
            return None;
        }
        None => {
            a.failed(format!("{why_copy}, and no binary was loaded to copy"), "");
            return None;
        }
    };
    // Step 2: a private directory, the copy, its checksum there.
    a.say(format!(
        "{why_copy}: copying {} ({} bytes)",
        bin.path.display(),
        bin.bytes.len()
    ));
    let out = a.ssh(MKTEMP, None, plan.step_timeout).await;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.code != Some(0) || !plausible_dir(&dir) {
        if out.code == Some(255) || out.timed_out {
            a.unreachable(&out);
        } else {
            a.failed(
                format!("mktemp -d failed there (printed {dir:?})"),
                &out.stderr,
            );
        }
        return None;
    }
    a.hop.temp_dir = Some(dir.clone());
    let report = copied(a, bin, &dir).await;
    // Step 4, whatever happened: remove the directory and check that it is gone.
    a.say(format!("removing {dir}"));
    let out = a.ssh(&remove_command(&dir), None, plan.step_timeout).await;
    a.hop.temp_dir_removed = Some(out.code == Some(0));
    if out.code != Some(0) {
        a.hop.summary = format!(
            "{}; the temporary directory {dir} could NOT be removed: {}",
            a.hop.summary,
            out.stderr.trim()
        );
    }
    report
}

async fn copied(a: &mut Attempt<'_>, bin: &Loaded, dir: &str) -> Option<Report> {
    let plan = a.plan;
    let remote_bin = format!("{dir}/triage502");
    // Copying ~15 MB over a slow link takes longer than the short steps.
    let limit = plan.step_timeout * 4;
    let out = a.ssh(&copy_command(dir), Some(&bin.bytes), limit).await;
    let got = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    if out.code != Some(0) {
        a.failed(format!("the copy to {remote_bin} failed"), &out.stderr);
        return None;
    }
    if got != bin.sha256 {
        a.failed(
            format!(
                "the copy's SHA-256 differs there ({got}, expected {}): not run",
                bin.sha256
            ),
            &out.stderr,
        );
        return None;
    }
    a.hop.ran = Ran::Copied;
    a.say(format!(
        "copied to {remote_bin}, sha256 {} verified there",
        &got[..12]
    ));
    let argv = plan.remote_run(&remote_bin, &a.t.url);
    remote_run(a, &argv).await
}

async fn remote_run(a: &mut Attempt<'_>, argv: &[String]) -> Option<Report> {
    let plan = a.plan;
    a.say(format!("running {}", quote::command(argv)));
    let out = a.ssh(&quote::command(argv), None, plan.run_timeout).await;
    if out.timed_out {
        a.failed(
            format!(
                "the remote run gave no report within {} s",
                plan.run_timeout.as_secs()
            ),
            &out.stderr,
        );
        return None;
    }
    if out.code == Some(255) && out.stdout.is_empty() {
        a.unreachable(&out);
        return None;
    }
    match serde_json::from_slice::<Report>(&out.stdout) {
        Ok(r) => {
            a.hop.status = HopStatus::Done;
            a.hop.remote_status = Some(r.status);
            a.hop.findings = r
                .findings
                .iter()
                .filter(|f| f.host.is_none() || f.host.as_deref() == r.host.as_deref())
                .count();
            a.hop.first_finding = r.findings.first().map(|f| {
                let cause = &f.cause.info().title;
                format!("{cause}: {}", crate::report::one_line(&f.summary))
            });
            a.hop.summary = match r.status {
                crate::report::Status::Healthy => "healthy: the URL answers there".into(),
                crate::report::Status::Problem => format!(
                    "problem: {}",
                    a.hop.first_finding.clone().unwrap_or_default()
                ),
                crate::report::Status::Inconclusive => {
                    "inconclusive: a failure was seen there but not explained".into()
                }
            };
            Some(r)
        }
        Err(e) => {
            a.failed(
                format!(
                    "the remote run (exit {}) gave no report: {e}",
                    out.code.map_or_else(|| "killed".into(), |c| c.to_string())
                ),
                &out.stderr,
            );
            None
        }
    }
}

/// Hop to every target, at most `plan.parallel` at once, in the targets' order.
pub async fn hop_all(
    targets: &[Target],
    plan: &Plan,
    progress: Progress,
) -> Vec<(Hop, Option<Report>)> {
    let loaded = if plan.copy == Copy::Allowed && !targets.is_empty() {
        let b = plan.binary.clone();
        Some(
            tokio::task::spawn_blocking(move || b.load())
                .await
                .unwrap_or_else(|e| Err(e.to_string())),
        )
    } else {
        None
    };
    let loaded = Arc::new(loaded);
    let plan = Arc::new(plan.clone());
    let gate = Arc::new(tokio::sync::Semaphore::new(plan.parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().cloned().enumerate() {
        let (plan, loaded, gate, progress) =
            (plan.clone(), loaded.clone(), gate.clone(), progress.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (
                i,
                hop_one(&t, &plan, loaded.as_ref().as_ref(), progress).await,
            )
        });
    }
    let mut done: Vec<(usize, (Hop, Option<Report>))> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(x) = r {
            done.push(x);
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, x)| x).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_commands_are_quoted_and_read_only() {
        let plan = Plan::new(Ssh::default(), 2);
        let argv = plan.remote_run(
            "/tmp/triage502-hop.AbC/triage502",
            "http://10.0.0.2:80/a b?x='1'",
        );
        let cmd = quote::command(&argv);
        assert!(cmd.contains("--read-only"));
        assert!(cmd.contains("--hops 1"));
        assert!(
            cmd.starts_with("env TRIAGE502_HOP_REMOTE=copy /tmp/triage502-hop.AbC/triage502 run"),
            "{cmd}"
        );
        assert!(
            cmd.contains("'http://10.0.0.2:80/a b?x='\\''1'\\'''"),
            "{cmd}"
        );
        assert_eq!(
            remove_command("/tmp/triage502-hop.AbC"),
            "rm -rf -- /tmp/triage502-hop.AbC && test ! -e /tmp/triage502-hop.AbC"
        );
        assert!(same_release(
            "triage502 0.1.0 (commit 27c5af2d45d6, x86_64-unknown-linux-musl)",
            "triage502 0.1.0 (commit 52a8543d443a, x86_64-unknown-linux-gnu)"
        ));
        assert!(!same_release(
            "triage502 0.2.0 (commit 27c5af2d45d6, x86_64-unknown-linux-musl)",
            "triage502 0.1.0 (commit 27c5af2d45d6, x86_64-unknown-linux-musl)"
        ));
        assert!(!same_release("triage502", "triage502"));
        assert!(!same_release("other 0.1.0", "other 0.1.0"));
        assert!(plausible_dir("/tmp/triage502-hop.Ab12xY"));
        assert!(!plausible_dir("/tmp/triage502-hop.x; rm -rf /"));
        assert!(!plausible_dir("relative/triage502-hop.x"));
        let copy = plan.copy_commands("web2", "http://10.0.0.12:80/cart");
        assert_eq!(copy.len(), 4);
        assert!(
            copy[1]
                .last()
                .unwrap()
                .starts_with("umask 077 && cat > DIR/triage502")
        );
        let run = copy[2].last().unwrap();
        assert!(
            run.contains("DIR/triage502 run --non-interactive --read-only"),
            "{run}"
        );
        assert!(
            run.ends_with("--url http://10.0.0.12:80/cart --hops 1"),
            "{run}"
        );
        assert!(copy[3].last().unwrap().starts_with("rm -rf -- DIR"));
    }
}
