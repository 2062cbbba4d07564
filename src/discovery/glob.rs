//! Shell-style file globs for `include` directives (`*`, `?`, `[a-z]`,
//! `[!x]`), in any path component, matches sorted as glob(3) sorts them.
//!
//! Invariant: the walk is bounded by `max` matches and never follows more
//! directory levels than the pattern has components.

use std::path::{Component, Path, PathBuf};

/// Does the text contain glob metacharacters?
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expand an absolute pattern to the existing paths it names, sorted.
/// Names starting with `.` only match a pattern that starts with `.`.
pub fn expand(pattern: &Path, max: usize) -> Result<Vec<PathBuf>, String> {
    expand_in(None, pattern, max)
}

/// [`expand`] for a process whose root is `root` (`/proc/PID/root`): the
/// paths returned are as that process sees them.
pub fn expand_in(root: Option<&Path>, pattern: &Path, max: usize) -> Result<Vec<PathBuf>, String> {
    let host = |p: &Path| match root {
        Some(r) => super::source::in_root(r, p),
        None => p.to_path_buf(),
    };
    let mut current = vec![PathBuf::from("/")];
    let comps: Vec<Component<'_>> = pattern.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let part = match comp {
            Component::RootDir | Component::Prefix(_) => continue,
            Component::CurDir => continue,
            Component::ParentDir => {
                current = current.into_iter().map(|p| p.join("..")).collect();
                continue;
            }
            Component::Normal(s) => s.to_string_lossy().into_owned(),
        };
        let mut next = Vec::new();
        for dir in &current {
            if is_pattern(&part) {
                let Ok(entries) = std::fs::read_dir(host(dir)) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| matches(&part, n))
                    .collect();
                names.sort();
                for n in names {
                    let p = dir.join(n);
                    if last || host(&p).is_dir() {
                        next.push(p);
                    }
                    if next.len() > max {
                        return Err(format!(
                            "{} matches more than {max} files",
                            pattern.display()
                        ));
                    }
                }
            } else {
                let p = dir.join(&part);
                if host(&p).exists() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    Ok(current)
}

/// Does `name` match the one-component pattern `pat`?
pub fn matches(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

/// Iterative wildcard matching with one backtrack point for `*` (linear
/// in practice, never exponential).
fn match_from(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, len)) = class(&p[pi..], n[ni])
                        && ok
                    {
                        pi += len;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against a `[...]` class at the start of `p`: (matched, length).
/// An unterminated `[` is not a class (returns `None`).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*.conf", "a.conf"));
        assert!(!matches("*.conf", "a.conf.bak"));
        assert!(!matches("*.conf", ".hidden.conf"));
        assert!(matches("site-?.conf", "site-1.conf"));
        assert!(matches("[a-c]*", "beta"));
        assert!(!matches("[!a-c]*", "beta"));
        assert!(matches("*a*b*c", "xxaxxbxxc"));
        assert!(!matches("*a*b*c", "xxaxxbxx"));
    }

    // Linux only: include globs are `/`-separated paths of Linux servers' configurations.
    #[cfg(unix)]
    #[test]
    fn expands_in_directories_sorted() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.conf", "a.conf", "c.txt"] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        std::fs::create_dir(d.path().join("sub1")).unwrap();
        std::fs::write(d.path().join("sub1/x.conf"), "").unwrap();
        let got = expand(&d.path().join("*.conf"), 100).unwrap();
        assert_eq!(got, vec![d.path().join("a.conf"), d.path().join("b.conf")]);
        let got = expand(&d.path().join("sub*/*.conf"), 100).unwrap();
        assert_eq!(got, vec![d.path().join("sub1/x.conf")]);
        assert!(expand(&d.path().join("*"), 1).is_err());
    }
}
