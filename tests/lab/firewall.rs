//! iptables rules a scenario adds, and their guaranteed removal.
//!
//! Invariants: rules only ever match the loopback interface and one lab port; each carries the
//! comment `triage502-lab:<scenario dir name>` so a later run can find and delete rules left by a
//! killed test process; one lab scenario at a time holds the firewall (an exclusive `flock` on a
//! lock file, across threads and processes); `Drop` deletes every rule it added, then releases the
//! lock, also when the test panics.

use std::fs::{File, OpenOptions};
use std::process::Command;

use anyhow::{Context, bail};

/// The lock file shared by all lab processes on this machine.
const LOCK_PATH: &str = "/tmp/triage502-lab/iptables.lock";

/// Rules added by one scenario; removed on drop.
#[derive(Debug)]
pub struct Firewall {
    lock: File,
    rules: Vec<Vec<String>>,
}

impl Firewall {
    /// Takes the lab's firewall lock (waits for another scenario to finish with it).
    pub fn acquire() -> anyhow::Result<Self> {
        let lock = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(LOCK_PATH)
            .with_context(|| format!("cannot open {LOCK_PATH}"))?;
        lock.lock().context("cannot lock the lab's firewall")?;
        Ok(Self {
            lock,
            rules: Vec::new(),
        })
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
        let _ = self.lock.unlock();
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
        if words.first().map(String::as_str) == Some("-A") && words.iter().any(|w| *w == needle) {
            let _ = iptables("-D", &words[1..]);
        }
    }
}
