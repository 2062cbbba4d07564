//! resources on this host: real /proc, statvfs, /dev/kmsg.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use triage502::cause::Cause;
use triage502::check::{Basis, Outcome};
use triage502::checks::resources::{Params, run};

fn p(paths: Vec<String>) -> Params {
    Params {
        paths,
        pids: vec![std::process::id().to_string()],
        processes: vec![],
        min_free_percent: None,
        max_fd_percent: None,
        max_load_per_core: Some(1000.0),
        min_mem_available_percent: None,
        max_ephemeral_percent: None,
        // The path is this test process: OOM kills elsewhere on the host (the lab's noise) are
        // context, not findings.
        path_pids: vec![std::process::id().to_string()],
        logs: vec![],
    }
}

/// Issue 21: a resource past its threshold with no log showing the failure it causes is
/// circumstantial; an error-log line of the path showing it (ENOSPC) makes it direct.
#[tokio::test]
async fn a_shortage_is_direct_only_when_the_logs_show_it() {
    let d = tempfile::tempdir().unwrap();
    let mut params = p(vec![d.path().display().to_string()]);
    params.min_free_percent = Some(100.0);
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.diagnoses[0].cause, Cause::ResourceExhaustion);
    assert_eq!(r.diagnoses[0].basis, Basis::Circumstantial, "{r:#?}");

    let log = d.path().join("error.log");
    let now = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y/%m/%d %H:%M:%S")
        .to_string();
    std::fs::write(
        &log,
        format!("{now} [crit] 7#7: *1 pwrite() \"/var/cache/nginx/x\" failed (28: No space left on device)\n"),
    )
    .unwrap();
    params.logs = vec![log.display().to_string()];
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.diagnoses[0].basis, Basis::Direct, "{r:#?}");
    assert!(
        r.diagnoses[0].summary.contains("logs show it failing"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn healthy_host_is_ok_with_measurements() {
    let d = tempfile::tempdir().unwrap();
    let mut params = p(vec![d.path().display().to_string()]);
    // Independent of how full this machine's disk happens to be.
    params.min_free_percent = Some(0.0);
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    for label in ["load", "memory", "disk", "open files", "tcp", "kernel log"] {
        assert!(
            r.evidence.iter().any(|e| e.label == label),
            "no {label} evidence: {r:#?}"
        );
    }
    assert!(
        r.excluded
            .iter()
            .any(|x| x.cause == Cause::ResourceExhaustion)
    );
}

#[tokio::test]
async fn crossed_threshold_is_resource_exhaustion() {
    let d = tempfile::tempdir().unwrap();
    let mut params = p(vec![d.path().display().to_string()]);
    // No real disk is 100% free: the measured figure crosses this threshold.
    params.min_free_percent = Some(100.0);
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.diagnoses[0].cause, Cause::ResourceExhaustion);
    assert!(
        r.facts["resources.exhausted"].contains("space free"),
        "{}",
        r.facts["resources.exhausted"]
    );
}

#[tokio::test]
async fn unmeasurable_path_is_inconclusive() {
    let r = run(&p(vec!["/t502/does/not/exist".into()]), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive, "{r:?}");
    assert!(r.summary.contains("/t502/does/not/exist"));
}
