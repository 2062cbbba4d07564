//! Starting and stopping the lab's processes, always by pid.
//!
//! Two kinds: a `Daemon` (nginx, apache2, php-fpm, haproxy) forks away from its launcher and
//! leaves its master pid in a pid file; a `Child` (toy upstreams, `openssl s_server`) stays our
//! child. Invariants: every pid the lab starts is appended to `DIR/lab-pids` before anything else
//! can fail, so a later run can clean up after a killed test process; stopping sends SIGTERM to the
//! recorded pid, waits a bounded time, then SIGKILLs the master and every process of its session
//! (its workers) that is still alive. Nothing is ever looked up or killed by name.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a launcher or a readiness wait may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause between polls.
pub const POLL: Duration = Duration::from_millis(20);

/// A server that daemonized itself; its master pid came from its pid file.
#[derive(Debug)]
pub struct Daemon {
    pub name: String,
    pub pid: u32,
}

/// A process the lab keeps as its child.
#[derive(Debug)]
pub struct Child {
    pub name: String,
    pub child: std::process::Child,
}

/// Runs a launcher that daemonizes (`nginx`, `apache2 -k start`, `php-fpm`, `haproxy -D`), waits
/// for it to exit 0, then reads the master pid from `pid_file`.
pub fn start_daemon(
    name: &str,
    argv: &[&str],
    pid_file: &Path,
    dir: &Path,
) -> anyhow::Result<Daemon> {
    let startup_log = dir.join("logs").join(format!("{name}.startup.log"));
    let out = File::create(&startup_log)?;
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    let status = wait_child(&mut child, START_TIMEOUT)?
        .with_context(|| format!("{name} launcher did not return within {START_TIMEOUT:?}"))?;
    let pid = poll_pid_file(pid_file, START_TIMEOUT);
    if let Some(pid) = pid {
        record_pid(dir, pid)?;
    }
    let log = std::fs::read_to_string(&startup_log).unwrap_or_default();
    if !status.success() {
        bail!(
            "{name} failed to start ({status}): {}\n{log}",
            argv.join(" ")
        );
    }
    let pid = pid.with_context(|| {
        format!(
            "{name} wrote no pid to {} within {START_TIMEOUT:?}\n{log}",
            pid_file.display()
        )
    })?;
    Ok(Daemon {
        name: name.to_owned(),
        pid,
    })
}

/// Spawns `argv` as our child with stdout piped and stderr appended to `log`; when
/// `wait_ready_line` is set, waits for the child's `ready …` line on stdout.
pub fn start_child(
    name: &str,
    argv: &[&str],
    log: &Path,
    dir: &Path,
    wait_ready_line: bool,
) -> anyhow::Result<Child> {
    let err = OpenOptions::new().create(true).append(true).open(log)?;
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(if wait_ready_line {
            Stdio::piped()
        } else {
            Stdio::from(err.try_clone()?)
        })
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    record_pid(dir, child.id())?;
    let mut guard = Child {
        name: name.to_owned(),
        child,
    };
    if wait_ready_line {
        let stdout = guard.child.stdout.take().context("child stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if line.starts_with("ready ") => {}
            Ok(line) => bail!(
                "{name} did not start: {:?}; its log:\n{}",
                line.trim(),
                std::fs::read_to_string(log).unwrap_or_default()
            ),
            Err(_) => bail!("{name} was not ready within {START_TIMEOUT:?}"),
        }
    }
    Ok(guard)
}

impl Daemon {
    /// Stops the daemon: SIGTERM to the master, then SIGKILL to what is left of its session.
    pub fn stop(&self) {
        let session = session_members(self.pid);
        signal(self.pid, "TERM");
        if !wait_gone(&[self.pid], STOP_GRACE) {
            signal(self.pid, "KILL");
        }
        // Workers normally exit with their master; any that linger are ours and get SIGKILL.
        let left: Vec<u32> = session.into_iter().filter(|p| is_alive(*p)).collect();
        for pid in &left {
            signal(*pid, "KILL");
        }
        wait_gone(&left, STOP_GRACE);
    }
}

impl Child {
    /// Stops the child: SIGTERM, a bounded wait, then SIGKILL; always reaped.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal(self.child.id(), "TERM");
        if !matches!(wait_child(&mut self.child, STOP_GRACE), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal with `kill(1)` (fixed argv; the lab forbids unsafe code, so no libc call).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` is a live process (a zombie counts as gone).
pub fn is_alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z" && state != "X"))
}

/// Waits until none of `pids` is alive; false on timeout.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pids.iter().any(|p| is_alive(*p)) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// The pids whose session id is `sid` (a daemon's master called setsid, so these are its
/// workers and helpers).
pub fn session_members(sid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid).is_some_and(|f| f.get(3).and_then(|s| s.parse().ok()) == Some(sid))
        })
        .collect()
}

/// Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, …
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Children of `pid` (e.g. nginx workers, to see a reload replace them).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            is_alive(*p)
                && stat_fields(*p)
                    .is_some_and(|f| f.get(1).and_then(|s| s.parse().ok()) == Some(pid))
        })
        .collect()
}

fn wait_child(
    child: &mut std::process::Child,
    timeout: Duration,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

fn poll_pid_file(path: &Path, timeout: Duration) -> Option<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|p| is_alive(*p))
        {
            return Some(pid);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Appends `pid` to `DIR/lab-pids`, the list a later run uses to clean up after a killed test.
fn record_pid(dir: &Path, pid: u32) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(pids_file(dir))?;
    writeln!(f, "{pid}")?;
    Ok(())
}

/// Where a scenario dir lists the pids it started.
pub fn pids_file(dir: &Path) -> PathBuf {
    dir.join("lab-pids")
}
