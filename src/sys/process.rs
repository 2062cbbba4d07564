//! One process as `/proc` shows it: parent, name, command line, binary,
//! user, start time, open files.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SysError;

/// A process on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// The kernel's short name (`/proc/PID/comm`, at most 15 bytes).
    pub comm: String,
    /// Arguments as the process shows them now. Servers such as nginx and
    /// php-fpm rewrite their title, so this can be a single string with
    /// spaces (`nginx: master process nginx -c /etc/nginx/nginx.conf`).
    pub cmdline: Vec<String>,
    /// The binary (`/proc/PID/exe`); `None` when unreadable (not root).
    pub exe: Option<PathBuf>,
    /// Effective uid and its name.
    pub uid: u32,
    pub user: Option<String>,
    /// Effective gid and its name.
    pub gid: u32,
    pub group: Option<String>,
    /// Start time, seconds since the Unix epoch.
    pub start_time: Option<u64>,
}

impl Process {
    /// `user` or the uid as a number when the name is unknown.
    pub fn user_or_uid(&self) -> String {
        self.user.clone().unwrap_or_else(|| self.uid.to_string())
    }

    /// `group` or the gid as a number.
    pub fn group_or_gid(&self) -> String {
        self.group.clone().unwrap_or_else(|| self.gid.to_string())
    }

    /// The file name of the binary, else `comm`.
    pub fn program(&self) -> String {
        self.exe
            .as_deref()
            .and_then(Path::file_name)
            .map_or_else(|| self.comm.clone(), |n| n.to_string_lossy().into_owned())
    }

    /// The command line as one string.
    pub fn cmdline_text(&self) -> String {
        self.cmdline.join(" ")
    }
}

/// Every numeric entry of `/proc`, bounded by [`super::MAX_PROCESSES`].
pub fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .take(super::MAX_PROCESSES)
        .collect();
    v.sort_unstable();
    v
}

/// Read one process.
pub fn process(pid: u32) -> Result<Process, SysError> {
    process_with(pid, &super::account::Accounts::load())
}

/// Read one process, naming users and groups from `accounts`.
pub fn process_with(pid: u32, accounts: &super::account::Accounts) -> Result<Process, SysError> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let stat = super::read_text(&base.join("stat"))?;
    let (comm, fields) = parse_stat(&stat).ok_or_else(|| SysError {
        path: base.join("stat"),
        reason: "unexpected format".into(),
        permission: false,
    })?;
    let status = super::read_text(&base.join("status"))?;
    let uid = status_id(&status, "Uid:").unwrap_or(u32::MAX);
    let gid = status_id(&status, "Gid:").unwrap_or(u32::MAX);
    let cmdline = super::read_capped(&base.join("cmdline"), 1024 * 1024)
        .map(|b| parse_cmdline(&b))
        .unwrap_or_default();
    let exe = std::fs::read_link(base.join("exe")).ok().map(|p| {
        // A replaced binary reads `/usr/sbin/nginx (deleted)`.
        let s = p.to_string_lossy();
        s.strip_suffix(" (deleted)")
            .map_or(p.clone(), PathBuf::from)
    });
    let start_time = fields.starttime.and_then(|ticks| {
        let btime = boot_time()?;
        Some(btime + ticks / USER_HZ)
    });
    Ok(Process {
        pid,
        ppid: fields.ppid,
        comm,
        cmdline,
        exe,
        uid,
        user: accounts.user(uid),
        gid,
        group: accounts.group(gid),
        start_time,
    })
}

/// Every readable process (the walk is bounded; vanished ones are skipped).
pub fn processes() -> Vec<Process> {
    let accounts = super::account::Accounts::load();
    pids()
        .into_iter()
        .filter_map(|p| process_with(p, &accounts).ok())
        .collect()
}

/// Paths of the regular files (and other non-socket targets) a process has
/// open, from `/proc/PID/fd`.
pub fn open_files(pid: u32) -> Result<Vec<PathBuf>, SysError> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries = std::fs::read_dir(&dir).map_err(|e| SysError::new(&dir, &e))?;
    let mut out: Vec<PathBuf> = entries
        .take(super::MAX_FDS_PER_PROCESS)
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.is_absolute())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The environment of a process (`/proc/PID/environ`, root or same user).
pub fn environ(pid: u32) -> Result<Vec<(String, String)>, SysError> {
    let path = PathBuf::from(format!("/proc/{pid}/environ"));
    let b = super::read_capped(&path, 1024 * 1024)?;
    Ok(parse_cmdline(&b)
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect())
}

/// `USER_HZ`: the unit of `/proc/PID/stat` times, fixed at 100 by the
/// kernel ABI on every architecture Linux exports to user space.
const USER_HZ: u64 = 100;

fn boot_time() -> Option<u64> {
    let t = super::read_text(Path::new("/proc/stat")).ok()?;
    t.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// What we use from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    pub ppid: u32,
    pub starttime: Option<u64>,
}

/// `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so
/// split at the *last* `)`.
pub fn parse_stat(s: &str) -> Option<(String, StatFields)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let ppid = rest.get(1)?.parse().ok()?;
    let starttime = rest.get(19).and_then(|v| v.parse().ok());
    Some((comm, StatFields { ppid, starttime }))
}

/// NUL-separated arguments; a trailing NUL does not make an empty argument.
pub fn parse_cmdline(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The effective id from a `Uid:`/`Gid:` line of `/proc/PID/status`.
fn status_id(status: &str, key: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parens_in_comm() {
        let s = "42 (a) b) c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        let (comm, f) = parse_stat(s).unwrap();
        assert_eq!(comm, "a) b) c");
        assert_eq!(f.ppid, 7);
        assert_eq!(f.starttime, Some(12345));
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(
            parse_cmdline(b"nginx\0-c\0/etc/nginx.conf\0"),
            vec!["nginx", "-c", "/etc/nginx.conf"]
        );
    }

    // Linux only: reads /proc/self.
    #[cfg(unix)]
    #[test]
    fn reads_ourselves() {
        let me = process(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.exe.is_some());
        assert!(me.start_time.is_some());
        assert!(!me.cmdline.is_empty());
    }
}
