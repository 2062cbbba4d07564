//! Who may do what on a path: accounts from /etc/passwd and /etc/group, and
//! the classic owner/group/other mode-bit rules, including search (x) on every
//! parent directory.
//!
//! Invariants: only reads the two account files (capped at 4 MiB each) and
//! `lstat`/`stat` results; never changes anything. ACLs and capabilities are
//! not evaluated (said so in evidence by the callers); root may read and
//! write anything and search any directory, as the kernel allows it.

use crate::platform::fs::MetadataExt;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

const ACCOUNT_FILE_CAP: u64 = 4 * 1024 * 1024;

/// A user with the groups the kernel would give its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Primary group plus supplementary groups from /etc/group.
    pub groups: Vec<u32>,
}

fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(ACCOUNT_FILE_CAP)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// The name of a uid from /etc/passwd (the number itself when unknown).
pub fn user_name(uid: u32) -> String {
    read_capped(Path::new("/etc/passwd"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// The name of a gid from /etc/group (the number itself when unknown).
pub fn group_name(gid: u32) -> String {
    read_capped(Path::new("/etc/group"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse() == Ok(gid)).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| gid.to_string())
}

/// Look a user up by name or numeric uid in /etc/passwd and /etc/group.
pub fn lookup(user: &str) -> Result<Account, String> {
    let passwd = read_capped(Path::new("/etc/passwd"))
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    let (name, uid, gid) = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some((f[0].to_owned(), f[2].parse().ok()?, f[3].parse().ok()?))
        })
        .find(|(n, u, _): &(String, u32, u32)| n == user || user.parse() == Ok(*u))
        .ok_or_else(|| format!("user `{user}` is not in /etc/passwd"))?;
    let mut groups = vec![gid];
    if let Ok(group) = read_capped(Path::new("/etc/group")) {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                continue;
            }
            if f[3].split(',').any(|m| m.trim() == name)
                && let Ok(g) = f[2].parse()
                && !groups.contains(&g)
            {
                groups.push(g);
            }
        }
    }
    Ok(Account {
        name,
        uid,
        gid,
        groups,
    })
}

/// Access wanted on a path, as the `rwx` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Want {
    pub const R: Want = Want {
        read: true,
        write: false,
        exec: false,
    };
    pub const W: Want = Want {
        read: false,
        write: true,
        exec: false,
    };
    pub const X: Want = Want {
        read: false,
        write: false,
        exec: true,
    };
    pub const RWX: Want = Want {
        read: true,
        write: true,
        exec: true,
    };
}

/// Which class of the mode applies to the account: owner, group or other.
pub fn class(acct: &Account, meta: &Metadata) -> &'static str {
    if acct.uid == meta.uid() {
        "owner"
    } else if acct.groups.contains(&meta.gid()) {
        "group"
    } else {
        "other"
    }
}

/// Whether `acct` gets `want` on a file with this metadata (mode bits only).
pub fn allows(acct: &Account, meta: &Metadata, want: Want) -> bool {
    let mode = meta.mode();
    if acct.uid == 0 {
        // CAP_DAC_OVERRIDE: everything except executing a file with no x bit at all.
        return !want.exec || meta.is_dir() || mode & 0o111 != 0;
    }
    let bits = match class(acct, meta) {
        "owner" => (mode >> 6) & 7,
        "group" => (mode >> 3) & 7,
        _ => mode & 7,
    };
    (!want.read || bits & 4 != 0) && (!want.write || bits & 2 != 0) && (!want.exec || bits & 1 != 0)
}

/// `rwxr-x---` style text of a mode, with the file type letter.
pub fn mode_text(meta: &Metadata) -> String {
    use crate::platform::fs::FileTypeExt;
    let ft = meta.file_type();
    let t = if ft.is_dir() {
        'd'
    } else if ft.is_socket() {
        's'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_fifo() {
        'p'
    } else {
        '-'
    };
    let m = meta.mode();
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let b = (m >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    format!("{s} ({:04o})", m & 0o7777)
}

/// `owner:group mode` of a path, for evidence.
pub fn describe(meta: &Metadata) -> String {
    format!(
        "{}:{} {}",
        user_name(meta.uid()),
        group_name(meta.gid()),
        mode_text(meta)
    )
}

/// A parent directory that blocks the account from reaching a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub dir: PathBuf,
    pub detail: String,
}

/// Every ancestor directory of `path` the account cannot search (x), in order
/// from the root. Unreadable metadata is reported as blocking too.
pub fn blocked_parents(acct: &Account, path: &Path) -> Vec<Blocked> {
    let mut out = Vec::new();
    let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
    dirs.reverse();
    // Bounded by the path's depth.
    for dir in dirs {
        if dir.as_os_str().is_empty() {
            continue;
        }
        match std::fs::metadata(dir) {
            Ok(m) if !allows(acct, &m, Want::X) => out.push(Blocked {
                dir: dir.to_path_buf(),
                detail: format!(
                    "{} lacks search (x) permission for {} ({}): {}",
                    dir.display(),
                    acct.name,
                    class(acct, &m),
                    describe(&m)
                ),
            }),
            Ok(_) => {}
            Err(e) => out.push(Blocked {
                dir: dir.to_path_buf(),
                detail: format!("cannot stat {}: {e}", dir.display()),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // POSIX modes and the `nobody` account: Linux only (Windows has ACLs).
    #[cfg(unix)]
    #[test]
    fn nobody_needs_x_on_every_parent() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let inner = d.path().join("a");
        std::fs::create_dir(&inner).unwrap();
        let f = inner.join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
        let nobody = lookup("nobody").unwrap();
        let b = blocked_parents(&nobody, &f);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].dir, inner);
        let root = lookup("root").unwrap();
        assert!(blocked_parents(&root, &f).is_empty());
    }

    #[test]
    fn unknown_user_is_an_error() {
        assert!(
            lookup("t502-no-such-user")
                .unwrap_err()
                .contains("t502-no-such-user")
        );
        assert_eq!(lookup("0").unwrap().name, "root");
    }
}
