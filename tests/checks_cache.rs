//! cache on temp dirs with chosen owners and modes.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::cache::{Params, run};

fn own(p: &Path, user: &str, mode: u32) {
    let a = triage502::checks::permission::lookup(user).unwrap();
    std::os::unix::fs::chown(p, Some(a.uid), Some(a.gid)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = d.path().join("proxy");
    std::fs::create_dir_all(c.join("a/1f")).unwrap();
    std::fs::write(c.join("a/1f/0123456789abcdef"), vec![b'x'; 4096]).unwrap();
    for p in [c.clone(), c.join("a"), c.join("a/1f")] {
        own(&p, "www-data", 0o700);
    }
    own(&c.join("a/1f/0123456789abcdef"), "www-data", 0o600);
    (d, c)
}

fn p(path: &Path, user: &str) -> Params {
    Params {
        paths: vec![path.display().to_string()],
        user: Some(user.into()),
        max_entries: None,
        min_free_percent: None,
    }
}

#[tokio::test]
async fn worker_owned_cache_is_ok_with_size() {
    let (_d, c) = tree();
    let mut params = p(&c, "www-data");
    // Independent of how full this machine's disk happens to be.
    params.min_free_percent = Some(0.0);
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert_eq!(r.facts["cache.files"], "1");
    assert_eq!(r.facts["cache.size_bytes"], "4096");
    assert_eq!(r.facts["cache.writable"], "yes");
}

#[tokio::test]
async fn subdirectory_owned_by_root_is_cache_fault() {
    let (_d, c) = tree();
    own(&c.join("a/1f"), "root", 0o700);
    let r = run(&p(&c, "www-data"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.diagnoses[0].cause, Cause::CacheFault);
    assert!(r.summary.contains("a/1f"), "{}", r.summary);
    assert_eq!(r.facts["cache.writable"], "no");
}

#[tokio::test]
async fn unknown_user_is_inconclusive() {
    let (_d, c) = tree();
    let r = run(&p(&c, "t502-nobody-here"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}
