//! recent_changes on temp config trees: backup diffs, git diffs, package logs, notices.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::time::{Duration, SystemTime};

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::recent_changes::{Params, run};

fn p(dirs: Vec<String>, package_logs: Vec<String>) -> Params {
    Params {
        dirs,
        lookback: None,
        package_logs,
        server_logs: vec![],
        plugin_dirs: vec![],
        path_pids: vec![],
        packages: vec![],
        dpkg_info: None,
    }
}

/// Issue 21: with the failing path known, only upgrades/removals of packages providing what the
/// path runs count (here: this test process's executable, listed in a temp dpkg file list);
/// installs and other packages' upgrades are one context note, and the change is circumstantial.
#[tokio::test]
async fn only_path_packages_count_and_installs_are_context() {
    let d = tempfile::tempdir().unwrap();
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let info = d.path().join("info");
    std::fs::create_dir(&info).unwrap();
    std::fs::write(
        info.join("lab-server:amd64.list"),
        format!("/.\n{}\n", exe.display()),
    )
    .unwrap();
    std::fs::write(info.join("libapr1:amd64.list"), "/usr/lib/libapr-1.so.0\n").unwrap();
    let now = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let log = d.path().join("dpkg.log");
    std::fs::write(
        &log,
        format!(
            "{now} install iptables:amd64 <none> 1.8.9-2\n\
             {now} upgrade libapr1:amd64 1.7.2-3 1.7.2-3+deb12u1\n\
             {now} upgrade lab-server:amd64 1.0 1.1\n"
        ),
    )
    .unwrap();
    let mut params = p(
        vec![d.path().join("none").display().to_string()],
        vec![log.display().to_string()],
    );
    let etc = d.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    params.dirs = vec![etc.display().to_string()];
    params.path_pids = vec![std::process::id().to_string()];
    params.dpkg_info = Some(info.display().to_string());
    let r = run(&params, &listeners::ctx()).await;
    let pk = &r.facts["changes.packages"];
    assert!(pk.contains("lab-server"), "{r:#?}");
    assert!(!pk.contains("libapr1") && !pk.contains("iptables"), "{pk}");
    let d0 = r
        .diagnoses
        .iter()
        .find(|x| x.cause == Cause::RecentChange)
        .expect("a recent change");
    assert_eq!(d0.basis, triage502::check::Basis::Circumstantial);
    assert!(
        r.context.iter().any(|a| a
            .seen
            .starts_with("2 unrelated package event(s) (iptables, libapr1)")),
        "{:#?}",
        r.context
    );

    // Only unrelated events: no finding, one context note.
    std::fs::write(
        &log,
        format!("{now} install iptables:amd64 <none> 1.8.9-2\n{now} upgrade libapr1:amd64 1 2\n"),
    )
    .unwrap();
    let r = run(&params, &listeners::ctx()).await;
    assert!(r.diagnoses.is_empty(), "{r:#?}");
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert_eq!(r.context.len(), 1, "{:#?}", r.context);
}

fn age(path: &std::path::Path, days: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86400))
        .unwrap();
}

#[tokio::test]
async fn changed_config_with_backup_gives_a_diff_and_the_backup_fact() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("nginx.conf");
    let bak = d.path().join("nginx.conf.bak");
    std::fs::write(&bak, "upstream app {\n  server 127.0.0.1:8080;\n}\n").unwrap();
    std::fs::write(&conf, "upstream app {\n  server 127.0.0.1:8081;\n}\n").unwrap();
    age(&bak, 30);
    let empty = d.path().join("dpkg.log");
    std::fs::write(&empty, "").unwrap();
    age(&empty, 30);
    let r = run(
        &p(
            vec![d.path().display().to_string()],
            vec![empty.display().to_string()],
        ),
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.diagnoses[0].cause, Cause::RecentChange);
    assert_eq!(r.facts["changes.files"], conf.display().to_string());
    assert_eq!(r.facts["changes.backup"], bak.display().to_string());
    let diff = r.diagnoses[0]
        .evidence
        .iter()
        .map(|e| e.text.clone())
        .collect::<String>();
    assert!(
        diff.contains("-  server 127.0.0.1:8080;") && diff.contains("+  server 127.0.0.1:8081;"),
        "{diff}"
    );
}

#[tokio::test]
async fn git_work_tree_is_diffed_with_git() {
    let d = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let s = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(d.path())
            .args(args)
            .output()
            .unwrap();
        assert!(s.status.success(), "{s:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(d.path().join("site.conf"), "proxy_read_timeout 60s;\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    std::fs::write(d.path().join("site.conf"), "proxy_read_timeout 1s;\n").unwrap();
    let r = run(
        &p(
            vec![d.path().display().to_string()],
            vec!["/t502/none".into()],
        ),
        &listeners::ctx(),
    )
    .await;
    let ev = r
        .evidence
        .iter()
        .find(|e| e.label == "changed file")
        .unwrap();
    assert!(ev.text.contains("+proxy_read_timeout 1s;"), "{}", ev.text);
}

#[tokio::test]
async fn package_upgrade_and_reload_notice_are_found() {
    let d = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system());
    let dpkg = d.path().join("dpkg.log");
    std::fs::write(&dpkg, format!("{} upgrade php8.2-fpm:amd64 8.2.1 8.2.2\n2001-01-01 00:00:00 install old:amd64 <none> 1\n", now.strftime("%Y-%m-%d %H:%M:%S"))).unwrap();
    let err = d.path().join("error.log");
    std::fs::write(
        &err,
        format!(
            "{} [notice] 1#1: signal process started\n",
            now.strftime("%Y/%m/%d %H:%M:%S")
        ),
    )
    .unwrap();
    let conf = d.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let mut params = p(
        vec![conf.display().to_string()],
        vec![dpkg.display().to_string()],
    );
    params.server_logs = vec![err.display().to_string()];
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.facts["changes.packages"].lines().count(), 1);
    assert!(r.facts["changes.restarts"].contains("signal process started"));
}

#[tokio::test]
async fn old_files_only_is_ok() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("nginx.conf");
    std::fs::write(&f, "x").unwrap();
    age(&f, 10);
    let r = run(
        &p(
            vec![d.path().display().to_string()],
            vec!["/t502/none".into()],
        ),
        &listeners::ctx(),
    )
    .await;
    // The package log given does not exist: reported, but the dir was looked at.
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert!(r.excluded.iter().any(|x| x.cause == Cause::RecentChange));
}

#[tokio::test]
async fn nothing_readable_is_inconclusive() {
    let r = run(
        &p(vec!["/t502/absent".into()], vec!["/t502/absent.log".into()]),
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:?}");
}

/// The default playbook passes the running server's config file (`{{ front.config }}`), not a
/// dir: the file is looked at by itself, and a backup beside it gives both rollback facts.
#[tokio::test]
async fn a_config_file_is_looked_at_by_itself_with_the_backup_facts() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("nginx.conf");
    let bak = d.path().join("nginx.conf.bak");
    let other = d.path().join("mime.types");
    std::fs::write(&bak, "server 127.0.0.1:8080;\n").unwrap();
    std::fs::write(&conf, "server 127.0.0.1:8081;\n").unwrap();
    std::fs::write(&other, "types {}\n").unwrap();
    age(&bak, 30);
    let empty = d.path().join("dpkg.log");
    std::fs::write(&empty, "").unwrap();
    age(&empty, 30);
    let r = run(
        &p(
            vec![conf.display().to_string()],
            vec![empty.display().to_string()],
        ),
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.facts["changes.files"], conf.display().to_string());
    assert_eq!(r.facts["changes.backup"], bak.display().to_string());
    assert_eq!(r.facts["changes.backup_of"], conf.display().to_string());
    assert!(
        r.evidence.iter().all(|e| e.label != "not readable"),
        "{r:#?}"
    );

    // An old config file is no change, and no backup fact is published.
    age(&conf, 30);
    let r = run(
        &p(
            vec![conf.display().to_string()],
            vec![empty.display().to_string()],
        ),
        &listeners::ctx(),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert_eq!(r.facts["changes.backup"], "");
    assert_eq!(r.facts["changes.backup_of"], "");
}
