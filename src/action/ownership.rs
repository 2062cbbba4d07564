//! Giving a cache or temp directory back to the worker user (the
//! `cache_fault` remedy): the effect of `chown -R -h USER:GROUP PATH` and
//! `chmod -R u+rwX PATH`, done entry by entry in-process so each previous
//! owner and mode is recorded and the undo restores exactly those.
//!
//! Invariants: only a path equal to or inside one of the configured cache
//! or temp paths (resolved; system directories never); symlinks are changed
//! themselves (`lchown`), never followed, and never chmod-ed; the walk is
//! bounded ([`OWNERSHIP_MAX_ENTRIES`], depth [`cache::MAX_DEPTH`]) and a
//! larger tree is refused before anything changes; an undo restores only
//! entries inside the path it names.

use crate::platform::fs::MetadataExt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::cache;
use super::executor::result;
use super::undo::UndoEntry;
use super::{ActionSpec, OWNERSHIP_MAX_ENTRIES, OwnershipAction};
use crate::engine::ActionResult;

/// One entry's owner and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub dir: bool,
    pub symlink: bool,
}

/// `uid`, primary `gid` of `user` from `/etc/passwd`.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// `gid` of `group` from `/etc/group`.
pub fn group_id(group: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&group) && f.len() > 2)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// The mode `chmod u+rwX` gives (X: search on directories only).
pub fn wanted_mode(o: &Owned) -> u32 {
    if o.symlink {
        o.mode
    } else if o.dir {
        o.mode | 0o700
    } else {
        o.mode | 0o600
    }
}

fn owned(p: &Path) -> std::io::Result<Owned> {
    let m = std::fs::symlink_metadata(p)?;
    Ok(Owned {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
        dir: m.file_type().is_dir(),
        symlink: m.file_type().is_symlink(),
    })
}

/// Every entry under `root` (itself first), without following symlinks.
pub fn entries(root: &Path) -> Result<Vec<(PathBuf, Owned)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((p, depth)) = stack.pop() {
        let o = owned(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if o.dir && depth < cache::MAX_DEPTH {
            let rd =
                std::fs::read_dir(&p).map_err(|e| format!("cannot list {}: {e}", p.display()))?;
            for e in rd.flatten() {
                stack.push((e.path(), depth + 1));
            }
        }
        out.push((p, o));
        if out.len() > OWNERSHIP_MAX_ENTRIES {
            return Err(format!(
                "{} holds more than {OWNERSHIP_MAX_ENTRIES} entries: refusing (the undo could not record them all); clear the cache first",
                root.display()
            ));
        }
    }
    Ok(out)
}

/// One entry to change: its path, owner and mode before, `(uid, gid, mode)` after.
pub type EntryChange = (PathBuf, Owned, (u32, u32, u32));

/// The resolved path and the entries the action would change.
pub fn plan(o: &OwnershipAction) -> Result<(PathBuf, Vec<EntryChange>), String> {
    let root = cache::check_allowed(&o.path, &o.allowed)
        .map_err(|e| e.replace("refusing to clear", "refusing to change"))?;
    let (uid, primary) =
        user_ids(&o.user).ok_or_else(|| format!("user {} is not in /etc/passwd", o.user))?;
    let gid = match &o.group {
        Some(g) if !g.is_empty() => {
            group_id(g).ok_or_else(|| format!("group {g} is not in /etc/group"))?
        }
        _ => primary,
    };
    let changes = entries(&root)?
        .into_iter()
        .filter_map(|(p, b)| {
            let after = (uid, gid, wanted_mode(&b));
            ((b.uid, b.gid, b.mode) != after).then_some((p, b, after))
        })
        .collect();
    Ok((root, changes))
}

/// The commands and each entry's change, as text (read only).
pub fn preview(o: &OwnershipAction) -> String {
    match plan(o) {
        Err(e) => format!("(no change: {e})\n"),
        Ok((root, changes)) => {
            let gid = changes.first().map(|c| c.2.1);
            let mut s = format!(
                "chown -R -h {}:{} {}\nchmod -R u+rwX {}\n",
                o.user,
                gid.map_or_else(String::new, |g| g.to_string()),
                root.display(),
                root.display()
            );
            if changes.is_empty() {
                s.push_str("(nothing to change)\n");
            }
            for (p, b, (u, g, m)) in &changes {
                let _ = writeln!(
                    s,
                    "{}: {}:{} {:04o} -> {u}:{g} {m:04o}",
                    p.display(),
                    b.uid,
                    b.gid,
                    b.mode
                );
            }
            s
        }
    }
}

fn set(p: &Path, uid: u32, gid: u32, mode: u32, symlink: bool) -> std::io::Result<()> {
    crate::platform::fs::set_owner_mode(p, uid, gid, (!symlink).then_some(mode))
}

/// `UID:GID MODE PATH` → its parts.
pub fn parse_restore(line: &str) -> Option<(u32, u32, u32, PathBuf)> {
    let (ids, rest) = line.split_once(' ')?;
    let (mode, path) = rest.split_once(' ')?;
    let (u, g) = ids.split_once(':')?;
    Some((
        u.parse().ok()?,
        g.parse().ok()?,
        u32::from_str_radix(mode, 8).ok()?,
        PathBuf::from(path),
    ))
}

/// Run the action (blocking file-system work): give back, or restore.
pub fn run(o: &OwnershipAction) -> (ActionResult, Vec<UndoEntry>) {
    let t0 = Instant::now();
    let argv = ActionSpec::Ownership(o.clone()).argv();
    if !o.restore.is_empty() {
        return (restore(o, argv, t0), Vec::new());
    }
    let (root, changes) = match plan(o) {
        Ok(x) => x,
        Err(e) => return (result(argv, false, String::new(), e, t0), Vec::new()),
    };
    if changes.is_empty() {
        return (
            result(
                argv,
                true,
                String::new(),
                format!(
                    "{} already belongs to {} with owner access: nothing to change",
                    root.display(),
                    o.user
                ),
                t0,
            ),
            Vec::new(),
        );
    }
    let mut out = String::new();
    let mut done: Vec<String> = Vec::new();
    for (p, b, (uid, gid, mode)) in &changes {
        if let Err(e) = set(p, *uid, *gid, *mode, b.symlink) {
            // Put back what was changed so far: all or nothing.
            for line in done.iter().rev() {
                if let Some((u, g, m, q)) = parse_restore(line) {
                    let sl =
                        std::fs::symlink_metadata(&q).is_ok_and(|m| m.file_type().is_symlink());
                    let _ = set(&q, u, g, m, sl);
                }
            }
            return (
                result(
                    argv,
                    false,
                    out,
                    format!(
                        "changing {} failed: {e}; the {} entries changed before were restored",
                        p.display(),
                        done.len()
                    ),
                    t0,
                ),
                Vec::new(),
            );
        }
        let _ = writeln!(
            out,
            "{}: {}:{} {:04o} -> {uid}:{gid} {mode:04o}",
            p.display(),
            b.uid,
            b.gid,
            b.mode
        );
        done.push(format!("{}:{} {:o} {}", b.uid, b.gid, b.mode, p.display()));
    }
    let undo_spec = OwnershipAction {
        path: root.display().to_string(),
        allowed: o.allowed.clone(),
        user: o.user.clone(),
        group: o.group.clone(),
        restore: done.clone(),
        url: None,
    };
    let first = &changes[0];
    let entry = UndoEntry {
        key: format!("ownership:{}", root.display()),
        what: format!(
            "{} entries of {} were given to {} ({} was {}:{} {:04o})",
            done.len(),
            root.display(),
            o.user,
            first.0.display(),
            first.1.uid,
            first.1.gid,
            first.1.mode
        ),
        how: format!(
            "restore each entry's previous owner and mode ({})",
            done.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        ),
        undo: Some(ActionSpec::Ownership(undo_spec)),
    };
    (
        result(
            argv,
            true,
            out,
            format!(
                "gave {} entries of {} to {}",
                done.len(),
                root.display(),
                o.user
            ),
            t0,
        ),
        vec![entry],
    )
}

/// Run the action, then (with a URL, when giving back) verify: the URL must
/// answer [`super::config_edit::VERIFY_PROBES`] times in a row, or every
/// changed entry gets its previous owner and mode back and the result says
/// so (the journal records it, as for a configuration edit's rollback).
#[allow(clippy::many_single_char_names)] // o(wnership), r(esult), x (executed), v(erify): one each
pub async fn apply(o: &OwnershipAction) -> super::executor::Executed {
    let undoing = !o.restore.is_empty();
    let key = format!("ownership:{}", o.path);
    let argv = ActionSpec::Ownership(o.clone()).argv();
    let owned_o = o.clone();
    let (r, undo) = match tokio::task::spawn_blocking(move || run(&owned_o)).await {
        Ok(x) => x,
        Err(e) => {
            return super::executor::Executed::from_result(ActionResult {
                argv,
                ok: false,
                exit_code: None,
                output: String::new(),
                summary: format!("changing the ownership stopped: {e}"),
                duration_ms: 0,
            });
        }
    };
    let mut x = super::executor::Executed::from_result(r);
    if undoing {
        if x.result.ok {
            x.resolved.push(key);
        }
        return x;
    }
    let url = o.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let (Some(url), true, Some(entry)) = (url, x.result.ok, undo.first()) else {
        x.undo = undo;
        return x;
    };
    let v = super::config_edit::verify_in_a_row(url).await;
    let _ = writeln!(x.result.output, "verify: {}", v.summary());
    if super::config_edit::recovered(&v) {
        let _ = write!(
            x.result.summary,
            "; verified: {url} answered {} times in a row",
            super::config_edit::VERIFY_PROBES
        );
        x.undo = undo;
        return x;
    }
    // Not recovered: put every entry back as it was.
    let Some(ActionSpec::Ownership(back)) = entry.undo.clone() else {
        x.undo = undo;
        return x;
    };
    let n = back.restore.len();
    let restored = tokio::task::spawn_blocking(move || run(&back)).await;
    let (ok, how) = match restored {
        Ok((r, _)) => {
            x.result.output.push_str(&r.output);
            (r.ok, r.summary)
        }
        Err(e) => (false, format!("restoring stopped: {e}")),
    };
    x.result.ok = false;
    x.result.summary = format!(
        "rolled back: {url} did not answer {} times in a row after the change ({}); {how}",
        super::config_edit::VERIFY_PROBES,
        v.summary()
    );
    if !ok {
        // Some entries could not be restored: the undo stays listed.
        x.undo = undo;
        let _ = write!(
            x.result.summary,
            " (of {n} entries changed; the undo stays listed)"
        );
    }
    x.result.duration_ms = x.result.duration_ms.max(1);
    x
}

fn restore(o: &OwnershipAction, argv: Vec<String>, t0: Instant) -> ActionResult {
    let root = match cache::check_allowed(&o.path, &o.allowed) {
        Ok(r) => r,
        Err(e) => {
            return result(
                argv,
                false,
                String::new(),
                e.replace("refusing to clear", "refusing to restore"),
                t0,
            );
        }
    };
    let mut out = String::new();
    let mut failed = 0usize;
    for line in &o.restore {
        let Some((uid, gid, mode, path)) = parse_restore(line) else {
            failed += 1;
            let _ = writeln!(out, "not an entry: {line}");
            continue;
        };
        if !path.starts_with(&root) {
            failed += 1;
            let _ = writeln!(
                out,
                "{} is outside {}: left alone",
                path.display(),
                root.display()
            );
            continue;
        }
        let link = std::fs::symlink_metadata(&path).is_ok_and(|md| md.file_type().is_symlink());
        match set(&path, uid, gid, mode, link) {
            Ok(()) => {
                let _ = writeln!(out, "{}: back to {uid}:{gid} {mode:04o}", path.display());
            }
            Err(err) => {
                failed += 1;
                let _ = writeln!(out, "{}: {err}", path.display());
            }
        }
    }
    let n = o.restore.len();
    result(
        argv,
        failed == 0,
        out,
        if failed == 0 {
            format!(
                "restored the previous owner and mode of {n} entries in {}",
                root.display()
            )
        } else {
            format!(
                "{failed} of {n} entries in {} could not be restored",
                root.display()
            )
        },
        t0,
    )
}

// Owners and modes (chown, chmod): Linux only.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_and_restore_lines() {
        let d = Owned {
            uid: 0,
            gid: 0,
            mode: 0o000,
            dir: true,
            symlink: false,
        };
        assert_eq!(wanted_mode(&d), 0o700);
        let f = Owned {
            dir: false,
            mode: 0o044,
            ..d
        };
        assert_eq!(wanted_mode(&f), 0o644);
        assert_eq!(
            parse_restore("0:0 700 /var/cache/nginx/a b"),
            Some((0, 0, 0o700, PathBuf::from("/var/cache/nginx/a b")))
        );
        assert_eq!(parse_restore("x"), None);
    }

    #[test]
    fn a_path_outside_the_configured_ones_is_refused_and_nothing_changes() {
        let t = tempfile::tempdir().unwrap();
        let inside = t.path().join("cache");
        let outside = t.path().join("data");
        std::fs::create_dir(&inside).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o500)).unwrap();
        let o = OwnershipAction {
            path: outside.display().to_string(),
            allowed: vec![inside.display().to_string()],
            user: "root".into(),
            group: None,
            restore: Vec::new(),
            url: None,
        };
        let (r, undo) = run(&o);
        assert!(!r.ok);
        assert!(r.summary.contains("refusing to change"), "{}", r.summary);
        assert!(undo.is_empty());
        assert_eq!(
            std::fs::metadata(&outside).unwrap().permissions().mode() & 0o7777,
            0o500
        );
    }

    /// `DIR/cache` (0500) holding `a/entry` (0400): the owner cannot write them.
    fn owner_only_tree(dir: &Path) -> PathBuf {
        let c = dir.join("cache");
        std::fs::create_dir_all(c.join("a")).unwrap();
        std::fs::write(c.join("a/entry"), "x").unwrap();
        std::fs::set_permissions(c.join("a/entry"), std::fs::Permissions::from_mode(0o400))
            .unwrap();
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o500)).unwrap();
        c
    }

    /// The current user's name (modes are what changes when not root).
    fn me(dir: &Path) -> String {
        let uid = std::fs::metadata(dir).unwrap().uid();
        std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[2] == uid.to_string()).then(|| f[0].to_owned())
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_change_the_url_does_not_recover_from_is_rolled_back() {
        // A loopback server that answers 500 to everything: the verification fails.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            for s in l
                .incoming()
                .take(super::super::config_edit::VERIFY_MAX_PROBES)
            {
                let Ok(mut s) = s else { continue };
                let mut b = [0u8; 2048];
                let _ = s.read(&mut b);
                let _ = s.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let tmp = tempfile::tempdir().unwrap();
        let c = owner_only_tree(tmp.path());
        let give = OwnershipAction {
            path: c.display().to_string(),
            allowed: vec![c.display().to_string()],
            user: me(tmp.path()),
            group: None,
            restore: Vec::new(),
            url: Some(url.clone()),
        };
        let x = apply(&give).await;
        assert!(!x.result.ok, "{:#?}", x.result);
        assert!(
            x.result.summary.starts_with("rolled back: ")
                && x.result.summary.contains(&url)
                && x.result
                    .summary
                    .contains("restored the previous owner and mode of"),
            "{}",
            x.result.summary
        );
        assert!(x.result.output.contains("verify: "), "{}", x.result.output);
        assert!(x.undo.is_empty(), "nothing is left changed: {:?}", x.undo);
        assert_eq!(std::fs::metadata(&c).unwrap().mode() & 0o7777, 0o500);
        assert_eq!(
            std::fs::metadata(c.join("a/entry")).unwrap().mode() & 0o7777,
            0o400
        );
    }

    #[test]
    fn give_back_then_undo_restores_each_mode() {
        // As the running user (root or not), modes are what changes here.
        let tmp = tempfile::tempdir().unwrap();
        let c = owner_only_tree(tmp.path());
        let user = me(tmp.path());
        let give = OwnershipAction {
            path: c.display().to_string(),
            allowed: vec![c.display().to_string()],
            user,
            group: None,
            restore: Vec::new(),
            url: None,
        };
        let (r, undo) = run(&give);
        assert!(r.ok, "{r:?}");
        assert_eq!(std::fs::metadata(&c).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(
            std::fs::metadata(c.join("a/entry")).unwrap().mode() & 0o7777,
            0o600
        );
        let Some(ActionSpec::Ownership(u)) = &undo[0].undo else {
            panic!("{undo:?}")
        };
        let (r2, _) = run(u);
        assert!(r2.ok, "{r2:?}");
        assert_eq!(std::fs::metadata(&c).unwrap().mode() & 0o7777, 0o500);
        assert_eq!(
            std::fs::metadata(c.join("a/entry")).unwrap().mode() & 0o7777,
            0o400
        );
    }
}
