//! unix_socket against real temp sockets with chosen modes and owners.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::unix_socket::{Params, run};

fn params(path: &Path, user: &str) -> Params {
    Params {
        path: format!("unix:{}", path.display()),
        user: Some(user.into()),
        timeout: None,
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn ids(user: &str) -> (u32, u32) {
    let a = triage502::checks::permission::lookup(user).unwrap();
    (a.uid, a.gid)
}

#[tokio::test]
async fn socket_owned_by_worker_is_ok() {
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o755);
    let sock = d.path().join("app.sock");
    let _l = tokio::net::UnixListener::bind(&sock).unwrap();
    let (uid, gid) = ids("www-data");
    std::os::unix::fs::chown(&sock, Some(uid), Some(gid)).unwrap();
    chmod(&sock, 0o660);
    let r = run(&params(&sock, "www-data"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["socket.owner"], "www-data:www-data");
    assert_eq!(r.facts["socket.mode"], "0660");
    assert_eq!(r.facts["socket.user_can_connect"], "yes");
}

#[tokio::test]
async fn mode_that_excludes_the_worker_is_socket_permission() {
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o755);
    let sock = d.path().join("app.sock");
    let _l = tokio::net::UnixListener::bind(&sock).unwrap();
    let (uid, gid) = ids("nobody");
    std::os::unix::fs::chown(&sock, Some(uid), Some(gid)).unwrap();
    chmod(&sock, 0o660);
    let r = run(&params(&sock, "www-data"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert_eq!(r.diagnoses[0].cause, Cause::SocketPermission);
    assert!(r.summary.contains("lacks write"), "{}", r.summary);
}

#[tokio::test]
async fn parent_without_search_permission_is_socket_permission() {
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o755);
    let dir = d.path().join("private");
    std::fs::create_dir(&dir).unwrap();
    let sock = dir.join("app.sock");
    let _l = tokio::net::UnixListener::bind(&sock).unwrap();
    chmod(&sock, 0o666);
    chmod(&dir, 0o700);
    let r = run(&params(&sock, "www-data"), &listeners::ctx()).await;
    assert_eq!(r.diagnoses[0].cause, Cause::SocketPermission, "{r:?}");
    assert!(r.summary.contains("search (x)"), "{}", r.summary);
}

#[tokio::test]
async fn missing_socket_is_socket_missing() {
    let d = tempfile::tempdir().unwrap();
    let r = run(
        &params(&d.path().join("gone/php8.2-fpm.sock"), "www-data"),
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.diagnoses[0].cause, Cause::SocketMissing);
    assert!(r.summary.contains("does not exist"));
}

#[tokio::test]
async fn stale_socket_file_is_upstream_refused() {
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o755);
    let sock = d.path().join("stale.sock");
    // Bind then drop the listener: the file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    chmod(&sock, 0o666);
    let r = run(&params(&sock, "www-data"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert_eq!(r.diagnoses[0].cause, Cause::UpstreamRefused);
    assert_eq!(r.facts["socket.connect"], "refused");
}

#[tokio::test]
async fn unknown_worker_user_is_inconclusive() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("app.sock");
    let _l = tokio::net::UnixListener::bind(&sock).unwrap();
    let r = run(&params(&sock, "t502-no-such-user"), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:?}");
    assert!(r.summary.contains("t502-no-such-user"));
}
