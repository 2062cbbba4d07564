//! Running an external read-only tool: fixed argv, no shell, a timeout, capped output.
//!
//! Invariants: the program is located with `which` first, so a missing tool is
//! reported by name (and the check becomes inconclusive); the child is killed
//! when the future is dropped (`kill_on_drop`) or when the timeout passes; at
//! most `cap` bytes of each stream are kept, the rest is drained and counted.
//!
//! A server's own test tool (`nginx -t`, `php-fpm -t`) writes as a side effect
//! (creates log files and temp dirs, chowns them). [`Sandbox`] runs such a
//! tool in a private mount namespace where each directory it may write to is
//! covered by a fresh tmpfs whose root has the original's owner and mode: the
//! tool sees the same ownership state and its writes vanish with the child.

use crate::platform::fs::MetadataExt;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes kept of each output stream by default.
pub const DEFAULT_CAP: usize = 256 * 1024;

/// What a finished (or timed-out) child produced.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// The argv as run, for evidence (`nginx -t -c /etc/nginx/nginx.conf`).
    pub argv: String,
    /// Exit code; `None` when killed by a signal or by our timeout.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Some output beyond the cap was dropped.
    pub truncated: bool,
    /// The timeout passed and the child was killed.
    pub timed_out: bool,
}

impl ToolOutput {
    /// stdout and stderr together, stderr first (tools print diagnostics there).
    pub fn combined(&self) -> String {
        let mut s = self.stderr.clone();
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&self.stdout);
        s
    }
}

/// Why a tool could not be run at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    #[error("`{0}` is not installed (not found on PATH)")]
    Missing(String),
    #[error("cannot start `{0}`: {1}")]
    Spawn(String, String),
}

/// Locate a program on PATH (or accept an absolute/relative path as given).
pub fn find(program: &str) -> Result<PathBuf, ToolError> {
    which::which(program).map_err(|_| ToolError::Missing(program.to_owned()))
}

/// The first of several alternative programs that is installed.
pub fn find_any(programs: &[&str]) -> Result<(String, PathBuf), ToolError> {
    for p in programs {
        if let Ok(path) = find(p) {
            return Ok(((*p).to_owned(), path));
        }
    }
    Err(ToolError::Missing(programs.join(" / ")))
}

fn quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Render an argv for display, quoted the way a shell user would read it.
pub fn display_argv(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn read_capped<R: AsyncRead + Unpin>(r: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut r) = r else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 8192];
    let mut truncated = false;
    // Bounded by the caller's timeout: the child is killed when it passes.
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    truncated = true;
                }
            }
        }
    }
    (kept, truncated)
}

/// Run `program args…` with no stdin, a timeout and capped output.
pub async fn run(
    program: &str,
    args: &[String],
    timeout: Duration,
    cap: usize,
) -> Result<ToolOutput, ToolError> {
    let path = find(program)?;
    run_path(&path, program, args, timeout, cap).await
}

/// A directory the child sees as an empty tmpfs owned and moded like the
/// original (which stays untouched underneath).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateDir {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
}

/// Directories to hide from a tool behind private tmpfs mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    pub private_dirs: Vec<PrivateDir>,
}

impl Sandbox {
    /// Cover the existing directory `dir` (recorded with its current owner
    /// and mode). A directory under one already covered is dropped (the
    /// ancestor's tmpfs hides it); an ancestor replaces its descendants.
    pub fn cover(&mut self, dir: &Path) -> std::io::Result<()> {
        let m = std::fs::metadata(dir)?;
        if !m.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        if self.private_dirs.iter().any(|d| dir.starts_with(&d.path)) {
            return Ok(());
        }
        self.private_dirs.retain(|d| !d.path.starts_with(dir));
        self.private_dirs.push(PrivateDir {
            path: dir.to_path_buf(),
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.private_dirs.is_empty()
    }

    /// The covered directories, for evidence (`/var/lib/nginx (0:0 0700)`).
    pub fn describe(&self) -> String {
        self.private_dirs
            .iter()
            .map(|d| format!("{} ({}:{} {:04o})", d.path.display(), d.uid, d.gid, d.mode))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The mount targets and tmpfs options as C strings.
    fn prepared(&self) -> std::io::Result<Vec<(CString, CString)>> {
        self.private_dirs
            .iter()
            .map(|d| {
                let path = crate::platform::c_path(&d.path)?;
                let data = CString::new(format!(
                    "mode={:04o},uid={},gid={},size=64m,nr_inodes=4096",
                    d.mode, d.uid, d.gid
                ))?;
                Ok((path, data))
            })
            .collect()
    }
}

/// How a sandboxed run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// Nothing needed covering (or no sandbox was asked for).
    None,
    /// The child ran in a private mount namespace with these covered.
    Isolated(String),
    /// The namespace could not be made (no CAP_SYS_ADMIN: not root, or a
    /// confined container); the child ran unisolated. The reason.
    Unavailable(String),
}

/// Like [`run`] with an already located program.
pub async fn run_path(
    path: &std::path::Path,
    shown: &str,
    args: &[String],
    timeout: Duration,
    cap: usize,
) -> Result<ToolOutput, ToolError> {
    run_inner(path, shown, args, timeout, cap, None)
        .await
        .map_err(|e| spawn_error(shown, &e))
}

fn spawn_error(shown: &str, e: &std::io::Error) -> ToolError {
    ToolError::Spawn(shown.to_owned(), e.to_string())
}

/// [`run_path`] inside `sandbox`: a private mount namespace (`/` made
/// recursively private, so nothing propagates back to the host) with every
/// covered directory behind its own tmpfs. When the namespace cannot be
/// created (`EPERM`: no CAP_SYS_ADMIN, so the tool cannot chown either),
/// the tool runs unisolated and [`Isolation::Unavailable`] says why; any
/// other setup failure is an error (the tool is not run).
pub async fn run_path_sandboxed(
    path: &std::path::Path,
    shown: &str,
    args: &[String],
    timeout: Duration,
    cap: usize,
    sandbox: &Sandbox,
) -> Result<(ToolOutput, Isolation), ToolError> {
    if sandbox.is_empty() {
        return Ok((
            run_path(path, shown, args, timeout, cap).await?,
            Isolation::None,
        ));
    }
    let prepared = sandbox
        .prepared()
        .map_err(|e| ToolError::Spawn(shown.to_owned(), e.to_string()))?;
    match run_inner(path, shown, args, timeout, cap, Some(prepared)).await {
        Ok(o) => Ok((o, Isolation::Isolated(sandbox.describe()))),
        Err(e) if crate::platform::private_mounts_refused(&e) => {
            let o = run_path(path, shown, args, timeout, cap).await?;
            Ok((
                o,
                Isolation::Unavailable(format!("cannot create a private mount namespace: {e}")),
            ))
        }
        Err(e) => Err(spawn_error(shown, &e)),
    }
}

/// Spawn `cmd` from a fresh OS thread that first enters the sandbox: the
/// child inherits that thread's mount namespace. The thread ends right after
/// the spawn (never a pooled thread, which would keep the private view).
async fn spawn_in_sandbox(
    mut cmd: tokio::process::Command,
    mounts: Vec<(CString, CString)>,
) -> std::io::Result<tokio::process::Child> {
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("t502-sandbox".into())
        .spawn(move || {
            let _rt = handle.enter();
            let r = crate::platform::enter_private_mounts(&mounts).and_then(|()| cmd.spawn());
            let _ = tx.send(r);
        })?;
    rx.await
        .unwrap_or_else(|_| Err(std::io::Error::other("the sandbox thread ended early")))
}

async fn run_inner(
    path: &std::path::Path,
    shown: &str,
    args: &[String],
    timeout: Duration,
    cap: usize,
    mounts: Option<Vec<(CString, CString)>>,
) -> std::io::Result<ToolOutput> {
    let argv = display_argv(shown, args);
    let mut cmd = tokio::process::Command::new(path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .kill_on_drop(true);
    let mut child = match mounts {
        Some(m) => spawn_in_sandbox(cmd, m).await?,
        None => cmd.spawn()?,
    };
    let out = child.stdout.take();
    let err = child.stderr.take();
    let work = async {
        let ((o, ot), (e, et)) = tokio::join!(read_capped(out, cap), read_capped(err, cap));
        let status = child.wait().await;
        (o, ot, e, et, status)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((o, ot, e, et, status)) => Ok(ToolOutput {
            argv,
            code: status.ok().and_then(|s| s.code()),
            stdout: String::from_utf8_lossy(&o).into_owned(),
            stderr: String::from_utf8_lossy(&e).into_owned(),
            truncated: ot || et,
            timed_out: false,
        }),
        // Dropping `work` drops the child, which kills it (kill_on_drop).
        Err(_) => Ok(ToolOutput {
            argv,
            code: None,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            timed_out: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_tool_is_named() {
        let e = run("t502-no-such-tool", &[], Duration::from_secs(1), 100)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("t502-no-such-tool"));
    }

    // Linux only: runs Unix tools.
    #[cfg(unix)]
    #[tokio::test]
    async fn output_is_capped_and_timeout_kills() {
        let o = run(
            "head",
            &["-c".into(), "100000".into(), "/dev/zero".into()],
            Duration::from_secs(5),
            1000,
        )
        .await
        .unwrap();
        assert_eq!(o.stdout.len(), 1000);
        assert!(o.truncated);
        let o = run("sleep", &["5".into()], Duration::from_millis(200), 10)
            .await
            .unwrap();
        assert!(o.timed_out);
    }

    #[test]
    fn a_covered_ancestor_hides_its_descendants() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        let mut s = Sandbox::default();
        s.cover(&a.join("b")).unwrap();
        s.cover(&a).unwrap();
        s.cover(&a.join("b")).unwrap();
        assert_eq!(s.private_dirs.len(), 1);
        assert_eq!(s.private_dirs[0].path, a);
        assert!(s.cover(&d.path().join("missing")).is_err());
        std::fs::write(d.path().join("f"), "").unwrap();
        assert!(s.cover(&d.path().join("f")).is_err());
    }

    #[test]
    fn argv_is_quoted_for_display() {
        assert_eq!(
            display_argv("nginx", &["-t".into(), "-c".into(), "/a b".into()]),
            "nginx -t -c '/a b'"
        );
    }
}
