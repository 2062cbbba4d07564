//! The transport: the operator's own OpenSSH client, run with an argv (never through a local
//! shell), in batch mode (no password or host-key prompt can block), with the user's own config,
//! agent, `ProxyJump` and `known_hosts`; `--ssh-config FILE` adds `-F FILE`. Every call is
//! bounded in time and killed when the bound passes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// How to reach other hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssh {
    /// The `ssh` program (default: `ssh` from `PATH`).
    pub program: Option<PathBuf>,
    /// `-F FILE`: an ssh config file instead of `~/.ssh/config`.
    pub config: Option<PathBuf>,
    /// `ConnectTimeout`, seconds.
    pub connect_timeout: u32,
}

/// What one ssh call gave back.
#[derive(Debug, Clone)]
pub struct Output {
    /// The remote command's exit status (255: ssh itself failed); None when killed.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

/// Why a host could not be reached, from ssh's own words.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Unreachable {
    Dns,
    Refused,
    Timeout,
    NoRoute,
    Auth,
    HostKey,
    /// ssh is not installed here.
    NoSsh,
    Other,
}

impl Unreachable {
    /// For the finding and the hop line: "ssh refused — sshd down or filtered".
    pub fn describe(self) -> &'static str {
        match self {
            Unreachable::Dns => "ssh: the name does not resolve (DNS)",
            Unreachable::Refused => "ssh refused — sshd down or filtered",
            Unreachable::Timeout => "ssh timed out — host down, or packets dropped",
            Unreachable::NoRoute => "ssh: no route to host",
            Unreachable::Auth => "ssh: authentication refused (no usable key for this user)",
            Unreachable::HostKey => {
                "ssh: host key unknown or changed (known_hosts; BatchMode does not ask)"
            }
            Unreachable::NoSsh => "no ssh client on this host",
            Unreachable::Other => "ssh failed",
        }
    }

    /// Classify a failed call (exit 255, or killed after its time bound).
    pub fn classify(out: &Output) -> Unreachable {
        if out.timed_out {
            return Unreachable::Timeout;
        }
        let e = out.stderr.to_ascii_lowercase();
        if e.starts_with("cannot run") {
            Unreachable::NoSsh
        } else if e.contains("could not resolve hostname")
            || e.contains("name or service not known")
        {
            Unreachable::Dns
        } else if e.contains("connection refused") {
            Unreachable::Refused
        } else if e.contains("timed out") {
            Unreachable::Timeout
        } else if e.contains("no route to host") || e.contains("network is unreachable") {
            Unreachable::NoRoute
        } else if e.contains("host key verification failed")
            || e.contains("remote host identification has changed")
            || e.contains("host key is known")
            || e.contains("no matching host key")
        {
            Unreachable::HostKey
        } else if e.contains("permission denied") || e.contains("too many authentication") {
            Unreachable::Auth
        } else {
            Unreachable::Other
        }
    }
}

impl Ssh {
    /// The exact argv of `ssh HOST REMOTE` (REMOTE is one string for the remote shell, built
    /// with [`super::quote::command`]).
    pub fn argv(&self, host: &str, remote: &str) -> Vec<String> {
        let mut v = vec![
            self.program
                .as_ref()
                .map_or_else(|| "ssh".to_owned(), |p| p.display().to_string()),
        ];
        if let Some(c) = &self.config {
            v.push("-F".into());
            v.push(c.display().to_string());
        }
        v.extend(
            [
                "-o",
                "BatchMode=yes",
                "-o",
                &format!("ConnectTimeout={}", self.connect_timeout.max(1)),
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-T",
                "--",
                host,
                remote,
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        v
    }

    /// Run `ssh HOST REMOTE` with `stdin` fed to it, for at most `limit`; every stderr line goes
    /// to `on_line` as it arrives (the remote run's progress).
    pub async fn run(
        &self,
        host: &str,
        remote: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Output {
        let argv = self.argv(host, remote);
        let t0 = Instant::now();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Output {
                    code: Some(if e.kind() == std::io::ErrorKind::NotFound {
                        127
                    } else {
                        255
                    }),
                    stdout: Vec::new(),
                    stderr: format!("cannot run {}: {e}", argv[0]),
                    elapsed: t0.elapsed(),
                    timed_out: false,
                };
            }
        };
        let mut child_in = child.stdin.take();
        let mut child_out = child.stdout.take().expect("piped stdout");
        let child_err = child.stderr.take().expect("piped stderr");
        let input = stdin.map(<[u8]>::to_vec);
        let work = async {
            let feed = async {
                if let (Some(mut w), Some(data)) = (child_in.take(), input) {
                    // A remote end that stops reading early is reported by its exit status.
                    let _ = w.write_all(&data).await;
                    let _ = w.shutdown().await;
                }
            };
            let read_out = async {
                let mut buf = Vec::new();
                let _ = child_out.read_to_end(&mut buf).await;
                buf
            };
            let read_err = async {
                let mut lines = BufReader::new(child_err).lines();
                let mut all = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    on_line(&l);
                    if all.len() < 64 * 1024 {
                        all.push_str(&l);
                        all.push('\n');
                    }
                }
                all
            };
            let ((), out, err) = tokio::join!(feed, read_out, read_err);
            let status = child.wait().await.ok();
            (status, out, err)
        };
        match tokio::time::timeout(limit, work).await {
            Ok((status, stdout, stderr)) => Output {
                code: status.and_then(|s| s.code()),
                stdout,
                stderr,
                elapsed: t0.elapsed(),
                timed_out: false,
            },
            Err(_) => Output {
                code: None,
                stdout: Vec::new(),
                stderr: format!("no answer within {} s: killed", limit.as_secs()),
                elapsed: t0.elapsed(),
                timed_out: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_batch_mode_with_config_and_ends_options() {
        let s = Ssh {
            program: None,
            config: Some("/lab/ssh_config".into()),
            connect_timeout: 3,
        };
        let v = s.argv("-oProxyCommand=evil", "triage502 --version");
        assert_eq!(v[0], "ssh");
        assert_eq!(&v[1..3], ["-F", "/lab/ssh_config"]);
        assert!(v.contains(&"BatchMode=yes".to_owned()));
        assert!(v.contains(&"ConnectTimeout=3".to_owned()));
        let dd = v.iter().position(|a| a == "--").unwrap();
        assert_eq!(&v[dd + 1..], ["-oProxyCommand=evil", "triage502 --version"]);
    }

    fn out(stderr: &str) -> Output {
        Output {
            code: Some(255),
            stdout: Vec::new(),
            stderr: stderr.into(),
            elapsed: Duration::ZERO,
            timed_out: false,
        }
    }

    #[test]
    fn classifies_ssh_errors() {
        use Unreachable::*;
        for (e, want) in [
            (
                "ssh: connect to host 10.250.20.14 port 22: Connection refused",
                Refused,
            ),
            (
                "ssh: Could not resolve hostname web9: Name or service not known",
                Dns,
            ),
            (
                "ssh: connect to host 10.0.0.1 port 22: Connection timed out",
                Timeout,
            ),
            (
                "ssh: connect to host 10.0.0.1 port 22: No route to host",
                NoRoute,
            ),
            ("root@10.0.0.1: Permission denied (publickey).", Auth),
            (
                "No ED25519 host key is known for web2 and you have requested strict checking.\r\nHost key verification failed.",
                HostKey,
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer",
                Other,
            ),
        ] {
            assert_eq!(Unreachable::classify(&out(e)), want, "{e}");
        }
        let mut t = out("");
        t.timed_out = true;
        assert_eq!(Unreachable::classify(&t), Timeout);
    }

    #[tokio::test]
    async fn a_missing_ssh_program_is_reported_not_raised() {
        let s = Ssh {
            program: Some("/nonexistent/ssh".into()),
            config: None,
            connect_timeout: 1,
        };
        let o = s
            .run("h", "true", None, Duration::from_secs(2), &mut |_| {})
            .await;
        assert_eq!(o.code, Some(127));
        assert!(o.stderr.contains("cannot run"));
    }
}
