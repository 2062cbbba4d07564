//! service: /proc lookups against real processes, systemd through a fake
//! `systemctl` on PATH (systemd does not run here), and missing tools.
//!
//! Tests that need a different PATH re-run themselves in a child process
//! (the test binary with `--exact NAME`) with PATH set, since changing the
//! environment of this multi-threaded process is not allowed.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::service::{Params, Via, run};

const CHILD: &str = "T502_CHILD_TEST";

/// Run test `name` of this binary again with PATH = `path`; true in the child.
fn in_child_with_path(name: &str, path: &Path) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("PATH", path)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

fn p(unit: &str, via: Via) -> Params {
    Params {
        unit: unit.into(),
        process: None,
        via: Some(via),
        recent: None,
        timeout: None,
    }
}

fn fake_systemctl_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let since = hour_ago.strftime("%a %Y-%m-%d %H:%M:%S UTC").to_string();
    let script = format!(
        "#!/bin/sh\n# fake systemctl: `systemctl show UNIT …`\ncase \"$2\" in\n\
php8.2-fpm) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nNRestarts=0\\nExecMainStatus=0\\nMainPID=4242\\nActiveEnterTimestamp={since}\\n' ;;\n\
crashy) printf 'LoadState=loaded\\nActiveState=activating\\nSubState=auto-restart\\nNRestarts=5\\nExecMainStatus=255\\nMainPID=0\\nActiveEnterTimestamp=\\n' ;;\n\
*) printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\n' ;;\nesac\n"
    );
    let f = d.path().join("systemctl");
    std::fs::write(&f, script).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[tokio::test]
async fn systemd_unit_states_via_fake_systemctl() {
    let dir = if std::env::var_os(CHILD).is_none() {
        Some(fake_systemctl_dir())
    } else {
        None
    };
    if !in_child_with_path(
        "systemd_unit_states_via_fake_systemctl",
        dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path()),
    ) {
        return;
    }
    let r = run(&p("php8.2-fpm", Via::Systemd), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert_eq!(r.facts["service.state"], "active/running");
    assert_eq!(r.facts["service.pid"], "4242");
    assert!(
        r.facts["service.uptime"].starts_with("1h") || r.facts["service.uptime"].starts_with("59m"),
        "{}",
        r.facts["service.uptime"]
    );
    assert_eq!(r.facts["service.restarted_recently"], "no");
    let r = run(&p("crashy", Via::Systemd), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.facts["service.restarts"], "5");
    assert!(r.summary.contains("exit status 255"), "{}", r.summary);
    assert_eq!(r.diagnoses[0].cause, Cause::UpstreamRefused);
    let r = run(&p("ghost", Via::Systemd), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
}

#[tokio::test]
async fn missing_tools_make_checks_inconclusive_naming_them() {
    let empty = if std::env::var_os(CHILD).is_none() {
        Some(tempfile::tempdir().unwrap())
    } else {
        None
    };
    if !in_child_with_path(
        "missing_tools_make_checks_inconclusive_naming_them",
        empty
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path()),
    ) {
        return;
    }
    let ctx = listeners::ctx();
    let r = run(&p("nginx", Via::Systemd), &ctx).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("systemctl"), "{}", r.summary);

    use triage502::checks::{command, config_test, firewall};
    let r = config_test::run(
        &config_test::Params {
            server: config_test::Server::Nginx,
            config: None,
            prefix: None,
            program: None,
            timeout: None,
        },
        &ctx,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("`nginx`"), "{}", r.summary);
    let r = config_test::run(
        &config_test::Params {
            server: config_test::Server::PhpFpm,
            config: None,
            prefix: None,
            program: None,
            timeout: None,
        },
        &ctx,
    )
    .await;
    assert!(r.summary.contains("php-fpm8.2"), "{}", r.summary);
    let r = firewall::run(
        &firewall::Params {
            address: "127.0.0.1:9000".into(),
            netns: None,
            probe: true,
        },
        &ctx,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(
        r.summary.contains("iptables-save") && r.summary.contains("nft"),
        "{}",
        r.summary
    );
    let r = command::run(
        &command::Params {
            argv: vec!["ss".into(), "-ltn".into()],
            timeout: None,
            expect_exit: None,
            problem_if: vec![],
            ok_if: vec![],
            cause: None,
        },
        &ctx,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("`ss`"), "{}", r.summary);
}

#[tokio::test]
async fn running_process_is_found_in_proc() {
    let mut child = tokio::process::Command::new("sleep")
        .arg("30")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut params = p("sleep.service", Via::Proc);
    params.recent = Some(triage502::duration::HumanDuration(
        std::time::Duration::from_secs(600),
    ));
    let r = run(&params, &listeners::ctx()).await;
    child.kill().await.unwrap();
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    assert_eq!(r.facts["service.state"], "running");
    assert!(
        r.evidence[0].text.contains(&format!("pid {pid}")),
        "{:?}",
        r.evidence
    );
}

#[tokio::test]
async fn absent_process_is_a_problem() {
    let r = run(&p("t502-absent-daemon", Via::Proc), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.facts["service.state"], "absent");
}
