//! Running an external read-only tool: fixed argv, no shell, a timeout, capped output.
//!
//! Invariants: the program is located with `which` first, so a missing tool is
//! reported by name (and the check becomes inconclusive); the child is killed
//! when the future is dropped (`kill_on_drop`) or when the timeout passes; at
//! most `cap` bytes of each stream are kept, the rest is drained and counted.

use std::path::PathBuf;
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

/// Like [`run`] with an already located program.
pub async fn run_path(
    path: &std::path::Path,
    shown: &str,
    args: &[String],
    timeout: Duration,
    cap: usize,
) -> Result<ToolOutput, ToolError> {
    let argv = display_argv(shown, args);
    let mut child = tokio::process::Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ToolError::Spawn(shown.to_owned(), e.to_string()))?;
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
    fn argv_is_quoted_for_display() {
        assert_eq!(
            display_argv("nginx", &["-t".into(), "-c".into(), "/a b".into()]),
            "nginx -t -c '/a b'"
        );
    }
}
