//! Everything that differs between the operating systems, in one place.
//!
//! triage502 is built for Linux (where every check works) and for Windows
//! (`x86_64-pc-windows-gnu`: the engine, playbooks, HTTP/TCP/DNS checks, log
//! analysis, journal, ticket, the TUI and the IIS service checks and actions).
//! What only Linux has — `/proc`, network and mount namespaces, unix sockets,
//! POSIX owners and modes, `statvfs`, signals, the Docker Engine's unix socket,
//! the firewall and sockets tables — is reached through this module only:
//! [`unix`] implements it, [`windows`] answers "not available on this
//! platform" (an `Unsupported` I/O error, or a neutral value where the
//! caller only describes a file). No other module carries a `cfg` for the
//! operating system, apart from tests that cannot run on Windows.
//!
//! The check kinds that need those facilities are listed in
//! [`LINUX_ONLY_KINDS`]; on Windows [`unavailable`] makes the runner answer
//! them `inconclusive` with [`NOT_AVAILABLE`] instead of running them.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// What a check or an action says when this platform cannot do it.
pub const NOT_AVAILABLE: &str = "not available on this platform";

/// Check kinds that read Linux-only sources (`/proc`, namespaces, unix
/// sockets, systemd, the firewall, POSIX owners, the Docker Engine's socket).
pub const LINUX_ONLY_KINDS: &[&str] = &[
    "unix_socket",
    "listener",
    "service",
    "resources",
    "recent_changes",
    "firewall",
    "cache",
    "remedy",
    "container",
];

/// Check kinds that read Windows-only sources (the service control manager, IIS).
pub const WINDOWS_ONLY_KINDS: &[&str] = &["iis_service"];

/// Why a check kind cannot run on this platform, or `None` when it can.
pub fn unavailable(kind: &str) -> Option<String> {
    let other_os = if cfg!(windows) {
        LINUX_ONLY_KINDS
    } else {
        WINDOWS_ONLY_KINDS
    };
    other_os
        .contains(&kind)
        .then(|| format!("{kind}: {NOT_AVAILABLE} ({})", std::env::consts::OS))
}

/// The error of an operation this platform does not have.
pub fn unsupported(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{what}: {NOT_AVAILABLE} ({})", std::env::consts::OS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_the_other_platform_are_unavailable_with_the_reason() {
        let (theirs, ours) = if cfg!(windows) {
            (LINUX_ONLY_KINDS, WINDOWS_ONLY_KINDS)
        } else {
            (WINDOWS_ONLY_KINDS, LINUX_ONLY_KINDS)
        };
        for k in theirs {
            let why = unavailable(k).expect("unavailable");
            assert!(why.contains(NOT_AVAILABLE), "{why}");
        }
        for k in ours.iter().chain(&["http", "tcp", "dns", "log_scan"]) {
            assert_eq!(unavailable(k), None, "{k}");
        }
    }

    #[test]
    fn unsupported_is_an_unsupported_io_error() {
        let e = unsupported("setns");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("setns: not available"));
    }
}
