//! Loading configuration files safely: size caps, include depth and count,
//! cycle detection, regular files only, and the [`ConfigError`] every parser
//! returns (`file:line:col: message`).
//!
//! Invariant: whatever the input (a cycle of includes, `/dev/zero`, a FIFO,
//! a 10 GB file, a glob matching a million files), loading ends quickly
//! with an error naming the place that caused it.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

/// A configuration that cannot be read, with the place that says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, line: u32, col: u32, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Bounds on what one configuration may pull in.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file.
    pub max_file_bytes: u64,
    /// All files together.
    pub max_total_bytes: u64,
    /// Nesting of includes.
    pub max_depth: usize,
    /// Number of files read.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 8 * 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_depth: 32,
            max_files: 4096,
        }
    }
}

/// Where an include was asked for (the error is reported there).
#[derive(Debug, Clone)]
pub struct Site {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl Site {
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.file, self.line, self.col, message)
    }
}

/// Reads files for one parse, enforcing [`Limits`] and refusing cycles.
#[derive(Debug)]
pub struct Loader {
    pub limits: Limits,
    total: u64,
    count: usize,
    /// Files being read (outermost first) and their (device, inode).
    stack: Vec<(PathBuf, crate::platform::fs::FileId)>,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    /// Read paths inside this root (`/proc/PID/root` of a containerized
    /// server): paths stay as the server sees them, in errors and `files`.
    pub root: Option<PathBuf>,
}

thread_local! {
    /// Files read from memory instead of disk (see [`with_patched_files`]).
    static PATCHED: std::cell::RefCell<std::collections::BTreeMap<PathBuf, Vec<u8>>> =
        const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
}

/// Run `f` with these files read as the given bytes instead of from disk
/// (on this thread only): `route` explains the rest of a configuration
/// after blanking a broken line, without writing anything.
pub fn with_patched_files<R>(
    patches: std::collections::BTreeMap<PathBuf, Vec<u8>>,
    f: impl FnOnce() -> R,
) -> R {
    let old = PATCHED.with(|p| p.replace(patches));
    let r = f();
    PATCHED.with(|p| p.replace(old));
    r
}

impl Loader {
    pub fn new(limits: Limits) -> Self {
        Loader {
            limits,
            total: 0,
            count: 0,
            stack: Vec::new(),
            files: Vec::new(),
            root: None,
        }
    }

    /// A loader reading inside `root` (see [`Loader::root`]).
    pub fn in_root(limits: Limits, root: Option<PathBuf>) -> Self {
        Loader {
            root,
            ..Loader::new(limits)
        }
    }

    /// Where `path` (as the server sees it) is on this host.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(r) => in_root(r, path),
            None => path.to_path_buf(),
        }
    }

    /// Open `path` for parsing (pushing it on the include stack; call
    /// [`Loader::leave`] when done). `site` is the include that asked for
    /// it, or `None` for the main file.
    pub fn enter(&mut self, path: &Path, site: Option<&Site>) -> Result<Vec<u8>, ConfigError> {
        let fail = |msg: String| match site {
            Some(s) => s.error(msg),
            None => ConfigError::new(path, 0, 0, msg),
        };
        if self.stack.len() >= self.limits.max_depth {
            return Err(fail(format!(
                "includes nested deeper than {} levels (at {})",
                self.limits.max_depth,
                path.display()
            )));
        }
        if self.count >= self.limits.max_files {
            return Err(fail(format!(
                "more than {} files included",
                self.limits.max_files
            )));
        }
        // A file is identified by (device, inode): one stat instead of
        // canonicalizing every path component, and hard links count too.
        let host = self.host_path(path);
        let meta = std::fs::metadata(&host)
            .map_err(|e| fail(format!("cannot open {}: {}", path.display(), io_reason(&e))))?;
        let id = crate::platform::fs::file_id(&host, &meta);
        if let Some(pos) = self.stack.iter().position(|(_, i)| *i == id) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(p, _)| p.display().to_string())
                .chain(std::iter::once(path.display().to_string()))
                .collect();
            return Err(fail(format!("include cycle: {}", chain.join(" -> "))));
        }
        if !meta.is_file() {
            return Err(fail(format!(
                "{} is not a regular file (a device, FIFO or directory cannot be a config file)",
                path.display()
            )));
        }
        let cap = self
            .limits
            .max_file_bytes
            .min(self.limits.max_total_bytes.saturating_sub(self.total));
        let mut buf = Vec::new();
        if let Some(p) = PATCHED.with(|p| p.borrow().get(path).cloned()) {
            buf = p;
        } else {
            let f = std::fs::File::open(&host)
                .map_err(|e| fail(format!("cannot open {}: {}", path.display(), io_reason(&e))))?;
            f.take(cap + 1)
                .read_to_end(&mut buf)
                .map_err(|e| fail(format!("cannot read {}: {}", path.display(), io_reason(&e))))?;
        }
        if buf.len() as u64 > cap {
            return Err(fail(format!(
                "{} is larger than {} bytes (file cap {}, total cap {})",
                path.display(),
                cap,
                self.limits.max_file_bytes,
                self.limits.max_total_bytes
            )));
        }
        self.total += buf.len() as u64;
        self.count += 1;
        self.stack.push((path.to_path_buf(), id));
        self.files.push(path.to_path_buf());
        Ok(buf)
    }

    /// Done with the file most recently entered.
    pub fn leave(&mut self) {
        self.stack.pop();
    }
}

/// `path` as seen by a process whose root directory is `root`
/// (`/proc/PID/root`), as a path on this host: symbolic links are followed
/// component by component and an absolute target restarts at `root`, never
/// at the host's `/` (the kernel would resolve it against ours). `..` never
/// climbs above `root`. At most 40 links are followed; past that, the path
/// is returned as it stands (the open then fails with the kernel's error).
pub fn in_root(root: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&resolved);
        host.push(&name);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && links < 40 => {
                links += 1;
                let Ok(target) = std::fs::read_link(&host) else {
                    resolved.push(name);
                    continue;
                };
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(name),
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&resolved);
    host
}

/// An I/O error as an operator reads it.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied (run as root)".into(),
        std::io::ErrorKind::NotFound => "no such file".into(),
        _ => e.to_string(),
    }
}

/// 1-based line and column of byte `pos` in `text`.
pub fn line_col(text: &[u8], pos: usize) -> (u32, u32) {
    let before = &text[..pos.min(text.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = before.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
    (line as u32, col as u32)
}

/// `path` made absolute against `base` (no filesystem access).
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

// Symbolic links inside a container's root (`/proc/PID/root`): Linux only.
#[cfg(test)]
#[cfg(unix)]
mod root_tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root_even_through_absolute_links() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc/nginx/sites-available")).unwrap();
        std::fs::create_dir_all(root.join("etc/nginx/sites-enabled")).unwrap();
        std::fs::write(root.join("etc/nginx/sites-available/shop"), "server {}").unwrap();
        std::os::unix::fs::symlink(
            "/etc/nginx/sites-available/shop",
            root.join("etc/nginx/sites-enabled/shop"),
        )
        .unwrap();
        std::os::unix::fs::symlink("../../..", root.join("etc/nginx/up")).unwrap();
        assert_eq!(
            in_root(root, Path::new("/etc/nginx/sites-enabled/shop")),
            root.join("etc/nginx/sites-available/shop")
        );
        // `..` and relative links never climb above the root.
        assert_eq!(
            in_root(root, Path::new("/../../etc/passwd")),
            root.join("etc/passwd")
        );
        assert_eq!(in_root(root, Path::new("/etc/nginx/up/x")), root.join("x"));
        // A link loop stops.
        std::os::unix::fs::symlink("/loop", root.join("loop")).unwrap();
        let _ = in_root(root, Path::new("/loop/x"));
        let mut l = Loader::in_root(Limits::default(), Some(root.to_path_buf()));
        let text = l
            .enter(Path::new("/etc/nginx/sites-enabled/shop"), None)
            .unwrap();
        assert_eq!(text, b"server {}");
        assert_eq!(
            l.files,
            vec![PathBuf::from("/etc/nginx/sites-enabled/shop")]
        );
        let e = l
            .enter(Path::new("/etc/nginx/none.conf"), None)
            .unwrap_err();
        assert_eq!(e.file, PathBuf::from("/etc/nginx/none.conf"));
    }
}
