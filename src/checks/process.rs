//! Processes from /proc: pid, name, command line, user and start time.
//!
//! A minimal reader for the checks (`service`, `listener`, `resources`);
//! the discovery work keeps a fuller one under `src/sys/`. Invariants: at most
//! [`MAX_PROCS`] processes are read, each file capped; a process that exits
//! while being read is skipped; start times use USER_HZ = 100, the fixed unit
//! of /proc/PID/stat on Linux.

use std::path::Path;

/// Processes read at most.
pub const MAX_PROCS: usize = 8192;
const USER_HZ: u64 = 100;

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

fn read_capped(path: &Path, cap: u64) -> Option<String> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(cap)
        .read_to_end(&mut v)
        .ok()?;
    Some(String::from_utf8_lossy(&v).into_owned())
}

/// Boot time in seconds since the epoch (`btime` of /proc/stat).
pub fn boot_time() -> Option<i64> {
    read_capped(Path::new("/proc/stat"), 1 << 20)?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// Read one process; None if it vanished or is unreadable.
pub fn read(pid: u32, btime: Option<i64>) -> Option<Proc> {
    let base = Path::new("/proc").join(pid.to_string());
    let stat = read_capped(&base.join("stat"), 4096)?;
    // `pid (comm) state ppid …`: comm may contain spaces and parentheses.
    let close = stat.rfind(')')?;
    let name = stat[stat.find('(')? + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let start_ticks: Option<u64> = rest.get(19).and_then(|s| s.parse().ok());
    let started = match (btime, start_ticks) {
        (Some(b), Some(t)) => Some(b + (t / USER_HZ) as i64),
        _ => None,
    };
    let cmdline = read_capped(&base.join("cmdline"), 8192)
        .unwrap_or_default()
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let uid = read_capped(&base.join("status"), 16384)?
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })?;
    Some(Proc {
        pid,
        ppid,
        name,
        cmdline,
        uid,
        started,
    })
}

/// Every process id under /proc (at most [`MAX_PROCS`]).
pub fn pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .take(MAX_PROCS)
        .collect()
}

/// Every readable process.
pub fn all() -> Vec<Proc> {
    let b = boot_time();
    pids().into_iter().filter_map(|p| read(p, b)).collect()
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

    #[test]
    fn own_process_is_readable_with_start_time() {
        let me = read(std::process::id(), boot_time()).unwrap();
        assert_eq!(me.pid, std::process::id());
        let now = jiff::Timestamp::now().as_second();
        let started = me.started.unwrap();
        assert!(
            started <= now + 1 && started > now - 3600,
            "{started} vs {now}"
        );
    }
}
