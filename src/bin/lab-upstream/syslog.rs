//! A syslog receiver: a unix datagram socket whose messages are appended to a file.
//!
//! It stands in for rsyslog in the lab (no system daemon is used): HAProxy logs to the socket, and
//! the file reads like rsyslog's traditional format, `Mmm dd hh:mm:ss HOST tag[pid]: message`.
//! Invariants: the file stays open for the process's life (as a discovery tool sees in
//! /proc/PID/fd), each datagram is at most 64 KiB, and the socket is world-writable because the
//! sender drops its privileges after start.

use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use crate::{announce_ready, log_event};

/// Listens on `socket` and appends to `file` until killed.
pub fn serve(socket: &Path, file: &Path) -> anyhow::Result<()> {
    let mut out = OpenOptions::new().create(true).append(true).open(file)?;
    let receiver = UnixDatagram::bind(socket)?;
    std::fs::set_permissions(socket, Permissions::from_mode(0o666))?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_owned(), |h| h.trim().to_owned());
    log_event(&format!(
        "syslog receiver on {} writing {}",
        socket.display(),
        file.display()
    ));
    announce_ready(&socket.display().to_string())?;
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let Ok(n) = receiver.recv(&mut buf) else {
            continue;
        };
        let line = to_file_format(&String::from_utf8_lossy(&buf[..n]), &host);
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
}

/// `<PRI>Mmm dd hh:mm:ss tag[pid]: msg` becomes `Mmm dd hh:mm:ss HOST tag[pid]: msg\n`.
fn to_file_format(datagram: &str, host: &str) -> String {
    let msg = datagram.trim_end_matches(['\n', '\r', '\0']);
    let msg = match msg.strip_prefix('<').and_then(|m| m.split_once('>')) {
        Some((pri, rest)) if pri.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => msg,
    };
    // The RFC 3164 timestamp is 15 characters: "Nov 23 20:05:01".
    match (msg.get(..15), msg.get(15..)) {
        (Some(stamp), Some(rest)) if rest.starts_with(' ') => format!("{stamp} {host}{rest}\n"),
        _ => format!("{msg}\n"),
    }
}
