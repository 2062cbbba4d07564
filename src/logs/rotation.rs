//! Rotated siblings of a log file (`error.log.1`, `error.log.2.gz`), newest first.
//!
//! logrotate's default naming: `NAME.1` (often left uncompressed by
//! `delaycompress`), then `NAME.N.gz`. The list is bounded ([`MAX_ROTATIONS`]).

use std::path::{Path, PathBuf};

/// Older files looked at, at most.
pub const MAX_ROTATIONS: usize = 20;

/// `path` followed by its existing rotations, newest first.
pub fn chain(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    let name = path.as_os_str().to_string_lossy().into_owned();
    for n in 1..=MAX_ROTATIONS {
        let plain = PathBuf::from(format!("{name}.{n}"));
        let gz = PathBuf::from(format!("{name}.{n}.gz"));
        if plain.is_file() {
            out.push(plain);
        } else if gz.is_file() {
            out.push(gz);
        } else {
            break;
        }
    }
    out
}

/// Is this a gzip file (by name)?
pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_then_gz_rotations_and_stops_at_a_gap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("error.log");
        for f in [
            "error.log",
            "error.log.1",
            "error.log.2.gz",
            "error.log.4.gz",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let c = chain(&p);
        let names: Vec<_> = c
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["error.log", "error.log.1", "error.log.2.gz"]);
        assert!(is_gz(&c[2]));
    }
}
