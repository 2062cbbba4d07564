//! Clearing a cache directory: only a path discovery found in the config
//! (`allowed`), measured first (files, bytes), then its *entries* deleted.
//! Invariants: the directory itself, its mode and its ownership are kept;
//! symlinks are removed, never followed; entries that vanish or appear while
//! the server runs are tolerated; every walk is bounded.

use crate::platform::fs::MetadataExt;
use std::io;
use std::path::{Path, PathBuf};

/// The walk stops counting after this many entries (the count is then a lower bound).
pub const MAX_ENTRIES: u64 = 2_000_000;
/// Deeper directories are not descended into when measuring.
pub const MAX_DEPTH: usize = 32;

/// What a cache directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheSize {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// The walk hit [`MAX_ENTRIES`] or [`MAX_DEPTH`]: the figures are lower bounds.
    pub truncated: bool,
}

impl CacheSize {
    /// "1234 files, 5.6 MiB".
    pub fn describe(&self) -> String {
        format!(
            "{}{} files in {} directories, {}",
            if self.truncated { "at least " } else { "" },
            self.files,
            self.dirs,
            human_bytes(self.bytes)
        )
    }
}

/// `1536` → "1.5 KiB".
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Directories never cleared, even when a (mistaken or overridden)
/// `allowed` list names them: the system's own trees and the usual homes of
/// data and sites.
const NEVER: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/www",
    "/var/cache",
];
/// Trees nothing under which is ever a cache to clear.
const NEVER_UNDER: &[&str] = &[
    "/boot", "/dev", "/etc", "/proc", "/sys", "/usr/bin", "/usr/lib",
];

/// Why `p` (resolved) must never be cleared, if so.
pub fn system_path(p: &Path) -> Option<String> {
    if NEVER.iter().any(|n| p == Path::new(n)) {
        return Some("a system directory, not a cache".into());
    }
    NEVER_UNDER
        .iter()
        .find(|n| p.starts_with(n))
        .map(|n| format!("inside {n}"))
}

/// Check that `path` is a real directory equal to or inside one of the
/// `allowed` cache paths (both resolved), and return it resolved.
pub fn check_allowed(path: &str, allowed: &[String]) -> Result<PathBuf, String> {
    if allowed.is_empty() {
        return Err(format!(
            "refusing to clear {path}: discovery found no cache path in the config to allow it"
        ));
    }
    let p = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve {path}: {e}"))?;
    if !p.is_dir() {
        return Err(format!("{} is not a directory", p.display()));
    }
    if let Some(why) = system_path(&p) {
        return Err(format!("refusing to clear {}: {why}", p.display()));
    }
    for a in allowed {
        if let Ok(a) = std::fs::canonicalize(a) {
            // An allowed entry that is a system directory authorises nothing.
            if system_path(&a).is_none() && p.starts_with(&a) {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "refusing to clear {path}: it is not one of the cache paths found in the config ({})",
        allowed.join(", ")
    ))
}

/// Count the files and bytes under `dir` without following symlinks.
pub fn measure(dir: &Path) -> io::Result<CacheSize> {
    let mut size = CacheSize::default();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut seen = 0u64;
    while let Some((d, depth)) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if d == dir => return Err(e),
            // Vanished or unreadable while the server runs: skip.
            Err(_) => continue,
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                size.truncated = true;
                return Ok(size);
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                size.dirs += 1;
                if depth + 1 < MAX_DEPTH {
                    stack.push((e.path(), depth + 1));
                } else {
                    size.truncated = true;
                }
            } else {
                size.files += 1;
                size.bytes += m.len();
            }
        }
    }
    Ok(size)
}

/// The owner, group and mode of `dir`, for the plan ("owner 33:33 mode 0700").
pub fn ownership(dir: &Path) -> io::Result<(u32, u32, u32)> {
    let m = std::fs::metadata(dir)?;
    Ok((m.uid(), m.gid(), m.mode() & 0o7777))
}

/// The uid of a user from /etc/passwd (capped read), if known.
pub fn user_uid(name: &str) -> Option<u32> {
    let meta = std::fs::metadata("/etc/passwd").ok()?;
    if meta.len() > 4 * 1024 * 1024 {
        return None;
    }
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// What clearing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleared {
    pub before: CacheSize,
    pub after: CacheSize,
    /// Entries that could not be removed, with the reason (at most 20 kept).
    pub errors: Vec<String>,
}

/// Delete every entry of `dir` (already checked by [`check_allowed`]).
/// Subdirectories go with `remove_dir_all`, which never follows symlinks;
/// symlinks and files are unlinked themselves.
pub fn clear(dir: &Path) -> io::Result<Cleared> {
    let before = measure(dir)?;
    let mut errors = Vec::new();
    let mut count = 0u64;
    for e in std::fs::read_dir(dir)?.flatten() {
        count += 1;
        if count > MAX_ENTRIES {
            errors.push(format!("stopped after {MAX_ENTRIES} entries"));
            break;
        }
        let p = e.path();
        let Ok(m) = p.symlink_metadata() else {
            continue;
        };
        let r = if m.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => {}
            // Removed by the server meanwhile, or refilled by it while we
            // emptied it: the cache is live, both are fine.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
                ) => {}
            Err(e) => {
                if errors.len() < 20 {
                    errors.push(format!("{}: {e}", p.display()));
                }
            }
        }
    }
    let after = measure(dir)?;
    Ok(Cleared {
        before,
        after,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Symbolic links need privileges on Windows; the cache actions are Linux-only.
    #[cfg(unix)]
    #[test]
    fn paths_outside_the_configured_caches_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let other = t.path().join("other");
        std::fs::create_dir_all(cache.join("a")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let allowed = vec![cache.display().to_string()];
        assert!(check_allowed(&cache.join("a").display().to_string(), &allowed).is_ok());
        let e = check_allowed(&other.display().to_string(), &allowed).unwrap_err();
        assert!(e.contains("not one of the cache paths"), "{e}");
        // A symlink inside the cache pointing out of it resolves outside: refused.
        std::os::unix::fs::symlink(&other, cache.join("escape")).unwrap();
        assert!(check_allowed(&cache.join("escape").display().to_string(), &allowed).is_err());
        for sys in ["/", "/etc", "/usr", "/var/lib"] {
            let e = check_allowed(sys, &[sys.to_owned()]).unwrap_err();
            assert!(e.contains("refusing"), "{e}");
        }
        assert!(check_allowed("/etc/nginx", &["/etc".to_owned()]).is_err());
        let dotdot = format!("{}/../other", cache.display());
        assert!(check_allowed(&dotdot, &allowed).is_err());
        assert!(check_allowed(&cache.display().to_string(), &[]).is_err());
    }

    #[test]
    fn bytes_read_humanly() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
