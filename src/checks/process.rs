//! Processes as the checks use them (`service`, `listener`, `resources`):
//! a flat view over `crate::sys::process` with the start time in epoch
//! seconds, lookups by program name, and a compact age for summaries.
//!
//! Invariants: everything comes from `crate::sys` (bounded /proc reads); a
//! process that exits while being read is skipped.

use std::path::Path;

use crate::sys;

/// One process as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// `comm`: the kernel's 15-character name.
    pub name: String,
    /// Command line, arguments joined by spaces (empty for kernel threads).
    pub cmdline: String,
    pub uid: u32,
    /// Start time, seconds since the epoch (None when unknown).
    pub started: Option<i64>,
}

impl From<sys::process::Process> for Proc {
    fn from(p: sys::process::Process) -> Self {
        Proc {
            pid: p.pid,
            ppid: p.ppid,
            cmdline: p.cmdline_text(),
            name: p.comm,
            uid: p.uid,
            started: p.start_time.and_then(|s| i64::try_from(s).ok()),
        }
    }
}

/// Boot time in seconds since the epoch (`btime` of /proc/stat).
pub fn boot_time() -> Option<i64> {
    sys::read_text(Path::new("/proc/stat"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// Read one process; None if it vanished or is unreadable.
pub fn read(pid: u32) -> Option<Proc> {
    sys::process::process(pid).ok().map(Proc::from)
}

/// Every readable process.
pub fn all() -> Vec<Proc> {
    sys::process::processes()
        .into_iter()
        .map(Proc::from)
        .collect()
}

/// Processes whose name or program (argv[0] basename, before a `:` as in
/// `php-fpm: master process`) is `name`.
pub fn by_name(name: &str) -> Vec<Proc> {
    all()
        .into_iter()
        .filter(|p| {
            let argv0 = p.cmdline.split_whitespace().next().unwrap_or("");
            let base = argv0.rsplit('/').next().unwrap_or("").trim_end_matches(':');
            p.name == name || base == name || (name.len() > 15 && name.starts_with(&p.name))
        })
        .collect()
}

/// `3d4h`, `2h05m`, `40s`: a compact age.
pub fn age_text(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{:02}s", s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linux only: reads /proc.
    #[cfg(unix)]
    #[test]
    fn own_process_is_readable_with_start_time() {
        let me = read(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        let now = jiff::Timestamp::now().as_second();
        let started = me.started.unwrap();
        assert!(
            started <= now + 1 && started > now - 3600,
            "{started} vs {now}"
        );
        assert_eq!(age_text(3725), "1h02m");
    }
}
