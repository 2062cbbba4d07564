//! What this host is running, read straight from `/proc` (no `ss`, no `ps`).
//!
//! Listening sockets come from `/proc/net/{tcp,tcp6,udp,udp6,unix}`; their
//! owners from the `socket:[inode]` links in `/proc/PID/fd`; processes from
//! `/proc/PID/{stat,status,cmdline,exe}`; names of users and groups from
//! `/etc/passwd` and `/etc/group`.
//!
//! Invariants: nothing here writes anything; every read is size-capped and
//! every walk over `/proc` is bounded. A process that vanishes mid-scan is
//! skipped; one that cannot be read (not root) is *reported* with the reason,
//! never silently dropped, so callers can say "run as root" instead of
//! guessing.

pub mod account;
pub mod cgroup;
pub mod net;
pub mod netns;
pub mod process;

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use account::{group_name, user_name};
pub use net::{Listener, ListenerScan, Proto, listeners, local_addresses};
pub use process::{Process, open_files, process, processes};

/// Largest `/proc` or `/etc` file read (the biggest, `/proc/net/unix` on a
/// busy host, stays far below this).
pub const MAX_PROC_FILE: u64 = 16 * 1024 * 1024;

/// Most processes looked at in one walk of `/proc` (Linux's default
/// `pid_max` is 4 194 304 but real hosts run thousands).
pub const MAX_PROCESSES: usize = 100_000;

/// Most descriptors looked at per process.
pub const MAX_FDS_PER_PROCESS: usize = 1_000_000;

/// A `/proc` read that failed, with what failed and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SysError {
    pub path: PathBuf,
    pub reason: String,
    /// True when the failure was EACCES/EPERM: running as root would help.
    pub permission: bool,
}

impl SysError {
    pub fn new(path: &Path, e: &io::Error) -> Self {
        let permission = e.kind() == io::ErrorKind::PermissionDenied;
        let reason = if permission {
            "permission denied (run as root)".to_owned()
        } else {
            e.to_string()
        };
        SysError {
            path: path.to_path_buf(),
            reason,
            permission,
        }
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for SysError {}

/// Read a whole file, refusing more than `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, SysError> {
    let f = std::fs::File::open(path).map_err(|e| SysError::new(path, &e))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SysError::new(path, &e))?;
    if buf.len() as u64 > cap {
        return Err(SysError {
            path: path.to_path_buf(),
            reason: format!("larger than {cap} bytes"),
            permission: false,
        });
    }
    Ok(buf)
}

/// Read a small text file (lossy UTF-8), capped at [`MAX_PROC_FILE`].
pub fn read_text(path: &Path) -> Result<String, SysError> {
    read_capped(path, MAX_PROC_FILE).map(|b| String::from_utf8_lossy(&b).into_owned())
}
