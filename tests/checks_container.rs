//! The `container` check against the container lab's real incidents (`tests/container_lab/`):
//! for the container at fault in each scenario, the check's verdict, cause and Docker detail.
//! Needs root, the Engine and the lab images, like the container lab.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[allow(dead_code)] // shared with tests/lab: only `get` and statuses are used here
#[path = "lab/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "container_lab/harness.rs"]
mod harness;
#[path = "lab/ports.rs"]
mod ports;

#[allow(dead_code)]
#[path = "container_lab/catalogue.rs"]
mod catalogue;
#[allow(dead_code)]
#[path = "container_lab/docker.rs"]
mod docker;
#[path = "container_lab/scenarios.rs"]
mod scenarios;

use std::time::Duration;

use harness::ContainerLab;
use triage502::cause::Cause;
use triage502::check::{CheckContext, CheckReport, Outcome};
use triage502::checks::container::{Params, run};

/// Brings `name` up and provokes it; returns the lab and the check's report on its culprit
/// container (the app for the healthy controls), dialled on `port`.
fn checked(name: &str, port: &str) -> (ContainerLab, CheckReport) {
    let mut lab = ContainerLab::new(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let reply =
        scenarios::start(&mut lab).unwrap_or_else(|e| panic!("{name}: {e:#}\n{}", lab.dump_logs()));
    lab.assert_expected(&reply);
    let role = lab.spec.culprit.unwrap_or("app");
    let report = check(lab.container(role), port);
    (lab, report)
}

fn check(container: &str, port: &str) -> CheckReport {
    let p = Params {
        container: container.to_string(),
        port: Some(port.to_string()),
        ..Params::default()
    };
    let ctx = CheckContext::last(Duration::from_secs(3600));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run(&p, &ctx))
}

/// The report names the scenario's root cause first, with the catalogue's Docker detail.
fn assert_named(lab: &ContainerLab, r: &CheckReport, cause: Cause) {
    assert_eq!(r.outcome, Outcome::Problem, "{}: {r:#?}", lab.tag);
    let first = &r.diagnoses[0];
    assert_eq!(first.cause, cause, "{}: {r:#?}", lab.tag);
    assert!(
        first
            .summary
            .contains(lab.container(lab.spec.culprit.unwrap())),
        "{}: the summary does not name the container: {}",
        lab.tag,
        first.summary
    );
    if let Some(detail) = lab.spec.detail {
        assert!(
            regex::Regex::new(detail).unwrap().is_match(&first.summary),
            "{}: {:?} does not match {detail}",
            lab.tag,
            first.summary
        );
    }
}

#[test]
fn healthy_app_container_is_ok_and_listens_on_every_address() {
    let (lab, r) = checked("healthy", "app:3000");
    assert_eq!(r.outcome, Outcome::Ok, "{}: {r:#?}", lab.tag);
    assert!(r.diagnoses.is_empty(), "{r:#?}");
    assert_eq!(r.facts["container.listens"], "0.0.0.0:3000");
    assert_eq!(r.facts["container.state"], "running");
    assert_eq!(r.facts["container.health"], "healthy");
    assert_eq!(r.facts["container.image"], "triage502-lab/app:latest");
    assert!(
        r.facts["container.networks"].contains(&format!("{}-net 10.", lab.tag)),
        "{r:#?}"
    );
}

#[test]
fn app_listening_on_its_own_loopback_is_named() {
    let (lab, r) = checked("app_loopback_only", "app:3000");
    assert_named(&lab, &r, Cause::UpstreamRefused);
    assert_eq!(r.facts["container.listens"], "127.0.0.1:3000");
}

#[test]
fn exited_upstream_container_is_named_with_its_exit_code() {
    let (lab, r) = checked("upstream_exited", "app:3000");
    assert_named(&lab, &r, Cause::UpstreamRefused);
    assert_eq!(r.facts["container.exit_code"], "137");
    assert_eq!(r.facts["container.oom_killed"], "false");
    // What the playbook offers the restart on: the same words as the finding.
    assert_eq!(r.facts["container.restart"], r.diagnoses[0].summary);
}

#[test]
fn oom_killed_upstream_container_is_resource_exhaustion() {
    let mut lab = ContainerLab::new("upstream_oom").unwrap();
    let reply = scenarios::start(&mut lab).unwrap();
    lab.assert_expected(&reply);
    let app = lab.container("app").to_string();
    docker::wait_until(Duration::from_secs(10), "the app to stop", || {
        Ok(docker::inspect(&app, "{{.State.Status}}")? == "exited")
    })
    .unwrap();
    let r = check(&app, "app:3000");
    assert_named(&lab, &r, Cause::ResourceExhaustion);
    assert_eq!(r.facts["container.oom_killed"], "true");
    assert!(
        r.diagnoses[0].summary.contains("(code 137, OOMKilled)"),
        "{r:#?}"
    );
}

#[test]
fn restart_loop_is_named_with_its_policy() {
    let (lab, r) = checked("restart_loop", "app:3000");
    assert_named(&lab, &r, Cause::UpstreamRefused);
    assert_eq!(r.facts["container.restart_policy"], "always");
    assert!(
        r.facts["container.restart_count"].parse::<u32>().unwrap() >= 2,
        "{r:#?}"
    );
}

#[test]
fn unhealthy_container_quotes_its_last_probe() {
    let (lab, r) = checked("unhealthy_app", "app:3000");
    assert_named(&lab, &r, Cause::AppFatal);
    assert!(
        r.diagnoses[0].summary.contains("/health answered 500"),
        "{r:#?}"
    );
}

#[test]
fn published_port_without_a_listener_inside() {
    let (lab, r) = checked("host_nginx_published_dead", "3000");
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.diagnoses[0].cause, Cause::UpstreamRefused);
    assert!(
        r.diagnoses[0].summary.starts_with(&format!(
            "nothing listens on port 3000 inside container {}",
            lab.container("app")
        )),
        "{r:#?}"
    );
    assert!(
        r.facts["container.ports"].starts_with("127.0.0.1:"),
        "{r:#?}"
    );
}

#[test]
fn unknown_container_is_inconclusive() {
    let r = check("t502-no-such-container-for-sure", "3000");
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("no container called"), "{}", r.summary);
}

/// Without the Engine's socket: inconclusive, with the reason and the fix. Runs in a child
/// process (the socket comes from `DOCKER_HOST`, which must not change under the other tests).
#[test]
fn without_the_socket_says_what_would_give_access() {
    if std::env::var_os("T502_CHILD").is_some() {
        let r = check("anything", "3000");
        assert_eq!(r.outcome, Outcome::Inconclusive, "{r:#?}");
        assert!(
            r.summary.contains("cannot ask the container engine"),
            "{}",
            r.summary
        );
        assert!(
            r.summary.contains("to let triage502 see it:"),
            "{}",
            r.summary
        );
        println!("child-summary: {}", r.summary);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "without_the_socket_says_what_would_give_access",
            "--nocapture",
        ])
        .env("T502_CHILD", "1")
        .env("DOCKER_HOST", "unix:///nonexistent/triage502/docker.sock")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child-summary: "), "{stdout}");
}
