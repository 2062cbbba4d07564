//! iptables rules a scenario adds, and their guaranteed removal.
//!
//! Invariants: rules only ever match the loopback interface and one lab port; each carries the
//! comment `triage502-lab:<scenario dir name>` so a later run can find and delete rules left by a
//! killed test process; one lab scenario at a time holds the firewall (a lock directory created
//! atomically, across threads and processes; a lock whose owner process is gone is taken over);
//! `Drop` deletes every rule it added, then releases the lock, also when the test panics.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::process;

/// The lock directory shared by all lab processes on this machine; `owner` inside holds the pid.
const LOCK_DIR: &str = "/tmp/triage502-lab/iptables.lock";
/// How long a scenario waits for another one to release the firewall.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Rules added by one scenario; removed on drop.
#[derive(Debug)]
pub struct Firewall {
    rules: Vec<Vec<String>>,
}

impl Firewall {
    /// Takes the lab's firewall lock (waits for another scenario to finish with it).
    pub fn acquire() -> anyhow::Result<Self> {
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let dir = Path::new(LOCK_DIR);
        loop {
            match std::fs::create_dir(dir) {
                Ok(()) => {
                    std::fs::write(dir.join("owner"), std::process::id().to_string())?;
                    return Ok(Self { rules: Vec::new() });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(dir.join("owner"))
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    // An owner that died without Drop (SIGKILL) leaves the lock behind.
                    if owner.is_some_and(|pid| !process::is_alive(pid)) {
                        let _ = std::fs::remove_dir_all(dir);
                        continue;
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("cannot create {LOCK_DIR}")),
            }
            if Instant::now() > deadline {
                bail!("the lab's firewall lock {LOCK_DIR} is still held after {LOCK_TIMEOUT:?}");
            }
            std::thread::sleep(process::POLL * 5);
        }
    }

    /// Drops TCP packets to `port` on `lo`, inbound and outbound, so a connect to it times out.
    pub fn drop_loopback_port(&mut self, port: u16, tag: &str) -> anyhow::Result<()> {
        let comment = format!("triage502-lab:{tag}");
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            let spec: Vec<String> = [
                chain,
                dir,
                "lo",
                "-p",
                "tcp",
                "--dport",
                &port.to_string(),
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "DROP",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            iptables("-I", &spec)?;
            self.rules.push(spec);
        }
        Ok(())
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        for spec in self.rules.drain(..).rev() {
            if let Err(e) = iptables("-D", &spec) {
                eprintln!("lab: could not remove iptables rule {spec:?}: {e:#}");
            }
        }
        let _ = std::fs::remove_dir_all(LOCK_DIR);
    }
}

/// Runs `iptables -w ACTION SPEC...`.
pub fn iptables(action: &str, spec: &[String]) -> anyhow::Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .arg(action)
        .args(spec)
        .output()
        .context("cannot run iptables")?;
    if !out.status.success() {
        bail!(
            "iptables {action} {} failed: {}",
            spec.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes every rule whose comment is `triage502-lab:<tag>` (leftovers of a killed run).
pub fn remove_tagged(tag: &str) {
    let Ok(out) = Command::new("iptables").args(["-w", "-S"]).output() else {
        return;
    };
    let needle = format!("triage502-lab:{tag}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_owned())
            .collect();
        if words.first().map(String::as_str) == Some("-A") && words.contains(&needle) {
            let _ = iptables("-D", &words[1..]);
        }
    }
}
