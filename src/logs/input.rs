//! Opening a log file without trusting what the path names.
//!
//! [`open`] never blocks and never starts an endless read: the path is opened
//! non-blocking (so a FIFO with no writer returns at once instead of waiting
//! for one), then `fstat` on the open descriptor decides — only a regular
//! file is read; a FIFO, a device (`/dev/zero`, `/dev/urandom`), a socket or
//! a directory is refused with a message that names what it is. Checking the
//! descriptor, not the path, leaves no window for a swap between check and open.
//!
//! [`Opened::changes`] tells, after a read, what the file did meanwhile
//! (grew, shrank, was replaced by a rotation), so a report can say what it
//! did not read instead of silently reading a moving target.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::platform::fs::{FileId, FileTypeExt, file_id};

/// A regular file opened for reading, with what it looked like at open.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    /// Size at open: reads stop here (a growing file is read as it was).
    pub size: u64,
    path: PathBuf,
    id: FileId,
}

/// What kind of non-regular file a path is, in words.
fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading if it is a regular file. The error of a
/// non-regular file has kind `InvalidInput` and says what the path is.
pub fn open(path: &Path) -> io::Result<Opened> {
    // O_NONBLOCK: opening a FIFO does not wait for a writer; O_NOCTTY: a
    // terminal device named as a log never becomes our controlling terminal.
    let file = crate::platform::fs::open_read_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind(meta.file_type())
            ),
        ));
    }
    // Back to blocking reads (no effect on a regular file on Linux, but
    // nothing below should ever see EAGAIN).
    crate::platform::fs::set_blocking(&file)?;
    Ok(Opened {
        file,
        size: meta.len(),
        path: path.to_path_buf(),
        id: file_id(path, &meta),
    })
}

/// The message for a log path [`open`] refused, with what to do instead.
pub fn refusal(e: &io::Error) -> String {
    format!(
        "{e}: give the log file itself (to classify a stream, pipe it into `triage502 logs classify -`)"
    )
}

/// Refuse a standard input that would be read forever for nothing: a
/// character or block device that is neither a terminal (typed or pasted
/// lines) nor `/dev/null` (empty), such as `/dev/zero` or `/dev/urandom`.
/// Pipes, files and sockets are streams and are read as they come.
pub fn check_stdin() -> io::Result<()> {
    use std::io::IsTerminal;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Ok(());
    }
    if crate::platform::fs::stdin_is_device()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "standard input is a device (such as /dev/zero or /dev/urandom), not a log stream: pipe a log into it or name a log file",
        ));
    }
    Ok(())
}

impl Opened {
    /// What happened to the file while it was read, when that left
    /// something unread: `read_to` is the offset the read reached and
    /// `wanted_to` where it meant to stop. `None` when nothing changed.
    pub fn changes(&self, read_to: u64, wanted_to: u64) -> Option<String> {
        let mut notes = Vec::new();
        let now = self.file.metadata().map_or(self.size, |m| m.len());
        if read_to < wanted_to {
            notes.push(format!(
                "shrank while being read (truncated?): {} of the {} bytes meant to be read were not there",
                wanted_to - read_to,
                wanted_to
            ));
        }
        if now > self.size {
            notes.push(format!(
                "grew by {} bytes while being read; entries written after the scan started were not read (run again to include them)",
                now - self.size
            ));
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if file_id(&self.path, &m) == self.id => {}
            Ok(_) => notes.push(format!(
                "was replaced while being read (rotated?): the file as opened was read; the new {} was not",
                self.path.display()
            )),
            Err(_) => notes.push(
                "was renamed or removed while being read (rotated?): the file as opened was read"
                    .to_owned(),
            ),
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linux only: FIFOs and /dev devices.
    #[cfg(unix)]
    #[test]
    fn fifo_and_devices_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("error.log");
        crate::platform::fs::mkfifo(&fifo).unwrap();
        let e = open(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("is a FIFO (named pipe)"), "{e}");
        let e = open(Path::new("/dev/zero")).unwrap_err();
        assert!(
            e.to_string().contains("/dev/zero is a character device"),
            "{e}"
        );
        let e = open(d.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn growth_truncation_and_replacement_are_told() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("error.log");
        std::fs::write(&p, "0123456789").unwrap();
        let o = open(&p).unwrap();
        assert_eq!(o.size, 10);
        assert_eq!(o.changes(10, 10), None);
        std::fs::write(&p, "0123456789abc").unwrap(); // same inode, longer
        assert!(o.changes(10, 10).unwrap().contains("grew by 3 bytes"));
        assert!(o.changes(4, 10).unwrap().contains("6 of the 10 bytes"));
        std::fs::rename(&p, d.path().join("error.log.1")).unwrap();
        std::fs::write(&p, "new").unwrap();
        assert!(o.changes(10, 10).unwrap().contains("was replaced"));
    }
}
