//! resources on this host: real /proc, statvfs, /dev/kmsg.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use triage502::cause::Cause;
use triage502::check::Outcome;
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
    }
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
