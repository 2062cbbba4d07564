//! The Windows side of [`crate::platform`]: the same names as the unix side.
//! What Windows has no equivalent for (namespaces, unix sockets, POSIX
//! owners and modes, `statvfs`) answers an `Unsupported` error saying
//! "not available on this platform"; the check kinds built on them never run
//! here (see [`super::unavailable`]), so the neutral values below (no owner,
//! a mode derived from the read-only attribute) only ever describe a file.

use std::ffi::CString;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::unsupported;

/// Files: owners, modes, identities, positional reads, private creation.
pub mod fs {
    use std::fs::{File, Metadata};
    use std::io;
    use std::path::{Path, PathBuf};

    use super::unsupported;

    /// The owner id reported for every file: Windows has ACLs, not POSIX
    /// owners (the conventional "nobody" id, never 0).
    pub const NO_OWNER: u32 = u32::MAX;

    /// POSIX-style metadata, as far as Windows has it.
    pub trait MetadataExt {
        /// [`NO_OWNER`].
        fn uid(&self) -> u32;
        /// [`NO_OWNER`].
        fn gid(&self) -> u32;
        /// Permission bits from the read-only attribute: 0o444 or 0o644
        /// (directories 0o555 or 0o755).
        fn mode(&self) -> u32;
        /// 0: identities come from [`file_id`].
        fn dev(&self) -> u64;
        /// 0: identities come from [`file_id`].
        fn ino(&self) -> u64;
    }

    impl MetadataExt for Metadata {
        fn uid(&self) -> u32 {
            NO_OWNER
        }
        fn gid(&self) -> u32 {
            NO_OWNER
        }
        fn mode(&self) -> u32 {
            let write = if self.permissions().readonly() {
                0
            } else {
                0o200
            };
            let exec = if self.is_dir() { 0o111 } else { 0 };
            0o444 | write | exec
        }
        fn dev(&self) -> u64 {
            0
        }
        fn ino(&self) -> u64 {
            0
        }
    }

    /// Windows has no FIFOs, sockets or devices in the file namespace.
    pub trait FileTypeExt {
        fn is_fifo(&self) -> bool;
        fn is_socket(&self) -> bool;
        fn is_char_device(&self) -> bool;
        fn is_block_device(&self) -> bool;
    }

    impl FileTypeExt for std::fs::FileType {
        fn is_fifo(&self) -> bool {
            false
        }
        fn is_socket(&self) -> bool {
            false
        }
        fn is_char_device(&self) -> bool {
            false
        }
        fn is_block_device(&self) -> bool {
            false
        }
    }

    /// Creation modes: files and directories inherit the ACL of their
    /// parent (under the user's profile, private to the user).
    pub trait DirBuilderExt {
        fn mode(&mut self, mode: u32) -> &mut Self;
    }

    impl DirBuilderExt for std::fs::DirBuilder {
        fn mode(&mut self, _mode: u32) -> &mut Self {
            self
        }
    }

    /// See [`DirBuilderExt`].
    pub trait OpenOptionsExt {
        fn mode(&mut self, mode: u32) -> &mut Self;
    }

    impl OpenOptionsExt for std::fs::OpenOptions {
        fn mode(&mut self, _mode: u32) -> &mut Self {
            self
        }
    }

    /// The permission bits of [`MetadataExt::mode`].
    pub trait PermissionsExt {
        fn mode(&self) -> u32;
    }

    impl PermissionsExt for std::fs::Permissions {
        fn mode(&self) -> u32 {
            if self.readonly() { 0o444 } else { 0o644 }
        }
    }

    /// Positional reads (`ReadFile` with an offset).
    pub trait FileExt {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    }

    impl FileExt for File {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            std::os::windows::fs::FileExt::seek_read(self, buf, offset)
        }
    }

    /// Owners cannot be given away on Windows (no POSIX owners and modes).
    pub fn set_owner_mode(_p: &Path, _uid: u32, _gid: u32, _mode: Option<u32>) -> io::Result<()> {
        Err(unsupported("chown/chmod"))
    }

    /// What identifies a file across paths: its canonical path (links
    /// resolved) and its creation time (a rotation makes a new file).
    pub type FileId = (PathBuf, Option<std::time::SystemTime>);

    /// The identity of the file `meta` describes (`path` names it).
    pub fn file_id(path: &Path, meta: &Metadata) -> FileId {
        (
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            meta.created().ok(),
        )
    }

    /// Files are private through the ACL they inherit from the user's profile.
    pub fn set_private(_f: &File) -> io::Result<()> {
        Ok(())
    }

    /// Windows opens never wait for a writer: a plain open.
    pub fn open_read_nonblocking(path: &Path) -> io::Result<File> {
        File::open(path)
    }

    /// Nothing to undo after [`open_read_nonblocking`].
    pub fn set_blocking(_f: &File) -> io::Result<()> {
        Ok(())
    }

    /// Windows has no `/dev/zero`-like devices to pipe in by mistake.
    pub fn stdin_is_device() -> io::Result<bool> {
        Ok(false)
    }

    /// Free space of the filesystem holding `path`.
    #[derive(Debug, Clone, Copy)]
    pub struct FsStats {
        /// The unit of `blocks` and `blocks_available`, in bytes.
        pub fragment_size: u64,
        pub blocks: u64,
        pub blocks_available: u64,
        pub files: u64,
        pub files_available: u64,
    }

    /// No `statvfs` (the checks that use it are Linux-only).
    pub fn statvfs(_path: &str) -> io::Result<FsStats> {
        Err(unsupported("statvfs"))
    }

    /// No FIFOs.
    pub fn mkfifo(_path: &Path) -> io::Result<()> {
        Err(unsupported("mkfifo"))
    }

    /// No kernel ring buffer device.
    pub fn open_nonblocking(path: &str) -> io::Result<File> {
        Err(unsupported(path))
    }
}

/// Where per-user configuration lives when `XDG_CONFIG_HOME` is not set: `%APPDATA%`.
pub fn config_home() -> Option<std::path::PathBuf> {
    std::env::var_os("APPDATA")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// Where per-user state lives when `XDG_STATE_HOME` is not set: `%LOCALAPPDATA%`.
pub fn state_home() -> Option<std::path::PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// The configuration of the web server this platform ships: IIS's
/// `%windir%\System32\inetsrv\config\applicationHost.config`, when it exists.
pub fn default_front_config() -> Option<std::path::PathBuf> {
    let windir = std::env::var_os("windir")
        .or_else(|| std::env::var_os("SystemRoot"))
        .filter(|v| !v.is_empty())?;
    let p = std::path::Path::new(&windir).join(r"System32\inetsrv\config\applicationHost.config");
    p.is_file().then_some(p)
}

/// The machine's name (`%COMPUTERNAME%`).
pub fn host_name() -> Option<String> {
    std::env::var("COMPUTERNAME")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A path as a C string (UTF-8 bytes).
pub fn c_path(p: &Path) -> io::Result<CString> {
    let s = p
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"))?;
    Ok(CString::new(s)?)
}

/// No network namespaces.
pub fn enter_netns(_ns: &std::fs::File) -> Result<(), (io::Error, bool)> {
    Err((unsupported("network namespaces"), false))
}

/// No mount namespaces.
pub fn enter_private_mounts(_mounts: &[(CString, CString)]) -> io::Result<()> {
    Err(unsupported("private mount namespaces"))
}

/// [`enter_private_mounts`] is never possible here: run unisolated.
pub fn private_mounts_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
}

/// Unix sockets are not offered (`unix:` upstreams and the Docker Engine's
/// socket are Linux paths): connecting fails with "not available".
#[derive(Debug)]
pub struct UnixStream(std::convert::Infallible);

impl UnixStream {
    #[allow(
        clippy::unused_async,
        reason = "the signature of tokio's UnixStream::connect, which the callers await"
    )]
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        Err(unsupported(&format!(
            "unix socket {}",
            path.as_ref().display()
        )))
    }
}

impl tokio::io::AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

impl tokio::io::AsyncWrite for UnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0 {}
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

/// There is no uid 0; administrators are not detected.
pub fn is_root() -> bool {
    false
}

/// The console events that end the wizard (Ctrl-C, Ctrl-Break, the window
/// closed), by name; `on_signal` is called once per event received.
pub fn listen_for_termination(
    on_signal: impl Fn(&'static str) + Clone + Send + 'static,
) -> io::Result<()> {
    use tokio::signal::windows;
    let mut c = windows::ctrl_c()?;
    let mut b = windows::ctrl_break()?;
    let mut x = windows::ctrl_close()?;
    let f = on_signal.clone();
    tokio::spawn(async move {
        if c.recv().await.is_some() {
            f("Ctrl-C");
        }
    });
    let f = on_signal.clone();
    tokio::spawn(async move {
        if b.recv().await.is_some() {
            f("Ctrl-Break");
        }
    });
    tokio::spawn(async move {
        if x.recv().await.is_some() {
            on_signal("the console closing");
        }
    });
    Ok(())
}

/// Wheel reporting on a Windows console without ANSI support (the TUI's
/// `WheelReports` command): crossterm's mouse capture.
pub fn wheel_reports_winapi(on: bool) -> io::Result<()> {
    use crossterm::Command as _;
    if on {
        crossterm::event::EnableMouseCapture.execute_winapi()
    } else {
        crossterm::event::DisableMouseCapture.execute_winapi()
    }
}
