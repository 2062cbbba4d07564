//! The Linux (unix) side of [`crate::platform`]: thin wrappers over std's
//! unix extensions and rustix, so the rest of the crate names no OS API.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// Files: owners, modes, identities, positional reads, private creation.
pub mod fs {
    use std::fs::{File, Metadata, OpenOptions};
    use std::io;
    use std::path::Path;

    pub use std::os::unix::fs::{
        DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt, lchown,
        symlink,
    };

    /// What identifies a file across paths: (device, inode).
    pub type FileId = (u64, u64);

    /// The identity of the file `meta` describes (`path` names it).
    pub fn file_id(_path: &Path, meta: &Metadata) -> FileId {
        (meta.dev(), meta.ino())
    }

    /// Give `p` to `uid:gid` (never following a symbolic link) and, when
    /// given, set its permission bits.
    pub fn set_owner_mode(p: &Path, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<()> {
        lchown(p, Some(uid), Some(gid))?;
        if let Some(mode) = mode {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }

    /// Restrict an open file to its owner (mode 0600).
    pub fn set_private(f: &File) -> io::Result<()> {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
    }

    /// Open `path` for reading without blocking on a FIFO with no writer
    /// (`O_NONBLOCK`) and without making a terminal our controlling one
    /// (`O_NOCTTY`).
    pub fn open_read_nonblocking(path: &Path) -> io::Result<File> {
        use rustix::fs::OFlags;
        OpenOptions::new()
            .read(true)
            .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
            .open(path)
    }

    /// Back to blocking reads on a file opened by [`open_read_nonblocking`].
    pub fn set_blocking(f: &File) -> io::Result<()> {
        let fl = rustix::fs::fcntl_getfl(f)?;
        rustix::fs::fcntl_setfl(f, fl - rustix::fs::OFlags::NONBLOCK)?;
        Ok(())
    }

    /// Is standard input a character or block device other than `/dev/null`?
    pub fn stdin_is_device() -> io::Result<bool> {
        let st = rustix::fs::fstat(io::stdin())?;
        let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
        let device = matches!(
            ft,
            rustix::fs::FileType::CharacterDevice | rustix::fs::FileType::BlockDevice
        );
        let is_null = std::fs::metadata("/dev/null").is_ok_and(|m| m.rdev() == st.st_rdev);
        Ok(device && !is_null)
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

    /// `statvfs(2)` of `path`.
    pub fn statvfs(path: &str) -> io::Result<FsStats> {
        let s = rustix::fs::statvfs(path)?;
        Ok(FsStats {
            fragment_size: s.f_frsize,
            blocks: s.f_blocks,
            blocks_available: s.f_bavail,
            files: s.f_files,
            files_available: s.f_favail,
        })
    }

    /// Make a FIFO (tests of the log opener).
    pub fn mkfifo(path: &Path) -> io::Result<()> {
        rustix::fs::mkfifoat(rustix::fs::CWD, path, rustix::fs::Mode::from(0o600))?;
        Ok(())
    }

    /// Open a file for reading without blocking (`/dev/kmsg`: EAGAIN at the end).
    pub fn open_nonblocking(path: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
    }
}

/// Where per-user configuration lives when `XDG_CONFIG_HOME` is not set: `~/.config`.
pub fn config_home() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
}

/// Where per-user state lives when `XDG_STATE_HOME` is not set: `~/.local/state`.
pub fn state_home() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/state"))
}

/// The configuration of the web server this platform ships: none on Linux (discovery finds the
/// running server's configuration from the process instead).
pub fn default_front_config() -> Option<std::path::PathBuf> {
    None
}

/// The machine's host name (`/proc/sys/kernel/hostname`, else `/etc/hostname`).
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
}

/// A path as the C string a system call takes.
pub fn c_path(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt as _;
    Ok(CString::new(p.as_os_str().as_bytes())?)
}

/// Move the calling thread into the network namespace `ns` (an open
/// `/proc/PID/ns/net` or `/run/netns/NAME`). The error says whether root
/// would help (`EPERM`/`EACCES`).
pub fn enter_netns(ns: &std::fs::File) -> Result<(), (io::Error, bool)> {
    use std::os::fd::AsFd as _;
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| {
        let perm = e == rustix::io::Errno::PERM || e == rustix::io::Errno::ACCESS;
        (e.into(), perm)
    })
}

/// On the calling (dedicated) thread: its own mount namespace, `/` made
/// recursively private, and a tmpfs on each `(target, options)`. The
/// namespace is per thread (`unshare(CLONE_NEWNS)` also unshares the
/// thread's fs struct), so the rest of the process keeps the host's view.
pub fn enter_private_mounts(mounts: &[(CString, CString)]) -> io::Result<()> {
    use rustix::mount::{MountFlags, MountPropagationFlags, mount, mount_change};
    use rustix::thread::UnshareFlags;
    // `unshare` is deprecated in favour of an `unsafe` variant because of
    // `CLONE_FILES`; this crate forbids unsafe code and only `CLONE_NEWNS`
    // is asked for, on a thread that shares no descriptors table.
    #[allow(deprecated, reason = "CLONE_NEWNS only; see above")]
    rustix::thread::unshare(UnshareFlags::NEWNS)?;
    mount_change(
        c"/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    for (target, data) in mounts {
        mount(
            c"tmpfs",
            target.as_c_str(),
            c"tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            Some(data.as_c_str()),
        )?;
    }
    Ok(())
}

/// Did [`enter_private_mounts`] fail only because the namespace may not be
/// made here (`EPERM`: no CAP_SYS_ADMIN), so the tool may run unisolated?
pub fn private_mounts_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error())
}

/// A stream socket in the filesystem (`unix:` upstreams, the Docker Engine).
pub type UnixStream = tokio::net::UnixStream;

/// Is this process root (uid 0)?
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The signals that end the wizard (the terminal hung up, `kill`, Ctrl-C),
/// by name; `on_signal` is called once per signal received.
pub fn listen_for_termination(
    on_signal: impl Fn(&'static str) + Clone + Send + 'static,
) -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
    ] {
        let mut s = signal(kind)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen for {name}: {e}")))?;
        let on_signal = on_signal.clone();
        tokio::spawn(async move {
            if s.recv().await.is_some() {
                on_signal(name);
            }
        });
    }
    Ok(())
}
