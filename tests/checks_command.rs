//! command: exit codes, patterns, timeouts and missing programs.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::time::Duration;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::command::{Params, run};
use triage502::duration::HumanDuration;

fn p(argv: &[&str]) -> Params {
    Params {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        timeout: None,
        expect_exit: None,
        problem_if: vec![],
        ok_if: vec![],
        cause: None,
    }
}

#[tokio::test]
async fn ok_pattern_matches() {
    let mut c = p(&["echo", "pool www: LISTEN 0 511"]);
    c.ok_if = vec!["LISTEN".into()];
    let r = run(&c, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.facts["command.exit"], "0");
    assert!(r.facts["command.match"].contains("LISTEN"));
}

#[tokio::test]
async fn problem_pattern_and_exit_code_are_problems() {
    let mut c = p(&[
        "echo",
        "WARNING: [pool www] server reached pm.max_children setting (5)",
    ]);
    c.problem_if = vec!["reached pm\\.max_children".into()];
    c.cause = Some(Cause::UpstreamOverloaded);
    let r = run(&c, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert_eq!(r.diagnoses[0].cause, Cause::UpstreamOverloaded);
    let r = run(&p(&["false"]), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem);
    assert!(r.summary.contains("exited 1"));
    let mut c = p(&["echo", "nothing here"]);
    c.ok_if = vec!["LISTEN".into()];
    assert_eq!(run(&c, &listeners::ctx()).await.outcome, Outcome::Problem);
}

#[tokio::test]
async fn missing_program_timeout_and_bad_regex_are_inconclusive() {
    let r = run(&p(&["t502-no-such-program"]), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("t502-no-such-program"));
    let mut c = p(&["sleep", "5"]);
    c.timeout = Some(HumanDuration(Duration::from_millis(200)));
    let r = run(&c, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("killed"));
    let mut c = p(&["true"]);
    c.ok_if = vec!["(".into()];
    assert_eq!(
        run(&c, &listeners::ctx()).await.outcome,
        Outcome::Inconclusive
    );
}
