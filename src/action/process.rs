//! Running one child process: a fixed argv (never a shell), `kill_on_drop`,
//! a timeout, stdin closed, and stdout/stderr each capped at [`OUTPUT_CAP`]
//! bytes (the rest is drained and dropped so the child never blocks).

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::policy::ExecPolicy;

/// At most this many bytes of each of stdout and stderr are kept.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// After the child exits, how long its output pipes may stay open (a daemon
/// it started may hold them).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What one command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub argv: Vec<String>,
    /// Exit status 0.
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// stdout then stderr, capped, lossy UTF-8.
    pub output: String,
    /// Why it did not run or did not finish (not found, timeout, signal).
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl Run {
    /// `$ argv` and the output, for a journal.
    pub fn transcript(&self) -> String {
        let mut s = format!("$ {}\n", super::shell_quote(&self.argv));
        s.push_str(&self.output);
        if !self.output.is_empty() && !self.output.ends_with('\n') {
            s.push('\n');
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "({e})");
        }
        s
    }

    /// The first lines of output, for a one-line summary.
    pub fn head(&self, lines: usize) -> String {
        let h: Vec<&str> = self
            .output
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(lines)
            .collect();
        if h.is_empty() {
            self.error.clone().unwrap_or_default()
        } else {
            h.join("; ")
        }
    }
}

async fn read_capped<R: AsyncRead + Unpin>(mut r: R) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    // Bounded by the child: it ends at EOF; the caller stops waiting after a timeout.
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// Run `argv` with `timeout`. The program is looked up on the policy's search path.
pub async fn run(argv: &[String], timeout: Duration, policy: &ExecPolicy) -> Run {
    let t0 = Instant::now();
    let mut out = Run {
        argv: argv.to_vec(),
        ok: false,
        exit_code: None,
        output: String::new(),
        error: None,
        duration_ms: 0,
    };
    let Some(program) = argv.first() else {
        out.error = Some("empty command".into());
        return out;
    };
    let Some(path) = policy.find(program) else {
        out.error = Some(format!("`{program}` is not installed (not found on PATH)"));
        return out;
    };
    let mut cmd = tokio::process::Command::new(path);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = &policy.search_path {
        cmd.env("PATH", p);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("cannot start `{program}`: {e}"));
            return out;
        }
    };
    let so = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let se = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            out.ok = status.success();
            out.exit_code = status.code();
            if status.code().is_none() {
                out.error = Some("killed by a signal".into());
            }
        }
        Ok(Err(e)) => out.error = Some(format!("waiting for `{program}`: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            out.error = Some(format!(
                "timed out after {}s and was killed",
                timeout.as_secs()
            ));
        }
    }
    let mut text = String::new();
    for (task, name) in [(so, "stdout"), (se, "stderr")] {
        let Some(task) = task else { continue };
        let abort = task.abort_handle();
        if let Ok(Ok((bytes, truncated))) = tokio::time::timeout(DRAIN_GRACE, task).await {
            text.push_str(&String::from_utf8_lossy(&bytes));
            if truncated {
                let _ = write!(text, "\n[{name} cut at {OUTPUT_CAP} bytes]\n");
            }
        } else {
            abort.abort();
        }
    }
    out.output = text;
    out.duration_ms = t0.elapsed().as_millis() as u64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    // Linux only: runs Unix tools (head, /dev/zero).
    #[cfg(unix)]
    #[tokio::test]
    async fn output_is_capped_and_the_child_finishes() {
        let r = run(
            &args(&["head", "-c", "200000", "/dev/zero"]),
            Duration::from_secs(10),
            &ExecPolicy::default(),
        )
        .await;
        assert!(r.ok, "{r:?}");
        assert!(r.output.len() < OUTPUT_CAP + 100);
        assert!(r.output.contains("cut at"));
    }

    // Linux only: runs the Unix `sleep`.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_slow_child_is_killed_at_the_timeout() {
        let r = run(
            &args(&["sleep", "30"]),
            Duration::from_millis(300),
            &ExecPolicy::default(),
        )
        .await;
        assert!(!r.ok);
        assert!(r.error.unwrap().contains("timed out"));
        assert!(r.duration_ms < 5_000);
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let r = run(
            &args(&["no-such-tool-triage502"]),
            Duration::from_secs(1),
            &ExecPolicy::default(),
        )
        .await;
        assert!(r.error.unwrap().contains("no-such-tool-triage502"));
    }
}
