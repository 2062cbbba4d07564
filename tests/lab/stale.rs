//! Cleanup of what a killed lab run left behind (a test process that got SIGKILL runs no `Drop`).
//!
//! Every scenario dir is `/tmp/triage502-lab/<scenario>-<test pid>-<n>`. Once per process, before
//! the first scenario starts, each dir whose test process is gone is cleaned: the pids it recorded
//! in `lab-pids` are stopped, but only if they are still ours (their command line names the dir or
//! their working directory is the dir), its tagged iptables rules are deleted, and the dir removed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use super::{firewall, process};

/// Parent of every scenario dir.
pub const LAB_ROOT: &str = "/tmp/triage502-lab";

/// Cleans leftovers once per process.
pub fn clean_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(clean_orphans);
}

/// Cleans every scenario dir whose test process is gone.
pub fn clean_orphans() {
    let Ok(entries) = std::fs::read_dir(LAB_ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.is_dir() && owner_is_gone(&dir) {
            clean(&dir);
        }
    }
}

/// Whether the test process that made `dir` no longer runs.
fn owner_is_gone(dir: &Path) -> bool {
    let Some(pid) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit('-').nth(1))
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    !process::is_alive(pid)
}

fn clean(dir: &Path) {
    let dir_str = dir.display().to_string();
    let pids: Vec<u32> = std::fs::read_to_string(process::pids_file(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd: Option<PathBuf> = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        if process::is_alive(pid) && (cmdline.contains(&dir_str) || cwd.as_deref() == Some(dir)) {
            let daemon = process::Daemon {
                name: format!("leftover {pid}"),
                pid,
            };
            daemon.stop();
        }
    }
    if let Some(tag) = dir.file_name().and_then(|n| n.to_str()) {
        firewall::remove_tagged(tag);
    }
    let _ = std::fs::remove_dir_all(dir);
}
