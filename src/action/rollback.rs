//! Rolling back a config change: find a backup beside the file (`.bak`,
//! `.orig`, `~`), show what restoring it would change (a unified diff), and
//! restore it keeping a copy of the current file (`FILE.triage502-<time>`).
//! Invariants: reads are capped at [`MAX_FILE`]; the restored file keeps its
//! inode, owner and mode (contents are rewritten in place).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Config files larger than this are not diffed or restored.
pub const MAX_FILE: u64 = 8 * 1024 * 1024;
/// A diff longer than this many lines is cut.
pub const MAX_DIFF_LINES: usize = 400;

/// Backups of `file` that exist: `FILE.bak`, `FILE.orig`, `FILE~`.
pub fn find_backups(file: &str) -> Vec<PathBuf> {
    [".bak", ".orig", "~"]
        .iter()
        .map(|s| PathBuf::from(format!("{file}{s}")))
        .filter(|p| p.is_file())
        .collect()
}

fn read_capped(p: &Path) -> Result<String, String> {
    let m = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    if !m.is_file() {
        return Err(format!("{} is not a regular file", p.display()));
    }
    if m.len() > MAX_FILE {
        return Err(format!("{} is larger than {MAX_FILE} bytes", p.display()));
    }
    let b = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// The change restoring `backup` over `file` makes, as a unified diff.
pub fn diff(file: &str, backup: &str) -> Result<String, String> {
    let cur = read_capped(Path::new(file))?;
    let old = read_capped(Path::new(backup))?;
    if cur == old {
        return Ok(String::new());
    }
    let d = similar::TextDiff::from_lines(&cur, &old);
    let text = d
        .unified_diff()
        .context_radius(3)
        .header(&format!("{file} (current)"), &format!("{backup} (backup)"))
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    let cut = lines.len() > MAX_DIFF_LINES;
    lines.truncate(MAX_DIFF_LINES);
    let mut out = lines.join("\n");
    out.push('\n');
    if cut {
        let _ = writeln!(out, "[diff cut at {MAX_DIFF_LINES} lines]");
    }
    Ok(out)
}

/// Where the current file is kept before a restore.
pub fn saved_copy_path(file: &str) -> String {
    let ts = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    format!("{file}.triage502-{ts}")
}

/// Copy `file` to `saved`, then write `backup`'s contents into `file`.
pub fn restore(file: &str, backup: &str, saved: &str) -> Result<(), String> {
    read_capped(Path::new(file))?;
    let old = read_capped(Path::new(backup))?;
    if Path::new(saved).exists() {
        return Err(format!("{saved} already exists"));
    }
    std::fs::copy(file, saved).map_err(|e| format!("cannot keep a copy in {saved}: {e}"))?;
    std::fs::write(file, old.as_bytes()).map_err(|e| format!("cannot write {file}: {e}"))
}

/// Put the kept copy back (after a failed config test).
pub fn put_back(file: &str, saved: &str) -> Result<(), String> {
    let b = std::fs::read(saved).map_err(|e| format!("cannot read {saved}: {e}"))?;
    std::fs::write(file, b).map_err(|e| format!("cannot write {file}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_found_diffed_and_restored_with_a_copy() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("site.conf");
        let fs = f.display().to_string();
        std::fs::write(&f, "listen 80;\nproxy_pass http://127.0.0.1:9O00;\n").unwrap();
        std::fs::write(
            format!("{fs}.bak"),
            "listen 80;\nproxy_pass http://127.0.0.1:9000;\n",
        )
        .unwrap();
        let b = find_backups(&fs);
        assert_eq!(b, [PathBuf::from(format!("{fs}.bak"))]);
        let d = diff(&fs, &format!("{fs}.bak")).unwrap();
        assert!(d.contains("-proxy_pass http://127.0.0.1:9O00;"), "{d}");
        assert!(d.contains("+proxy_pass http://127.0.0.1:9000;"), "{d}");
        let saved = saved_copy_path(&fs);
        restore(&fs, &format!("{fs}.bak"), &saved).unwrap();
        assert!(std::fs::read_to_string(&f).unwrap().contains(":9000;"));
        assert!(std::fs::read_to_string(&saved).unwrap().contains(":9O00;"));
        put_back(&fs, &saved).unwrap();
        assert!(std::fs::read_to_string(&f).unwrap().contains(":9O00;"));
    }
}
