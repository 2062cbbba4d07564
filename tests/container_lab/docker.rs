//! The `docker` command line, as the container lab drives it (argv items, never a shell), and the
//! cleanup of what the lab created.
//!
//! Invariants: every container and network the lab creates carries the labels
//! `triage502.lab=container`, `triage502.lab.scenario=<name>` and `triage502.lab.pid=<test pid>`,
//! and its name starts with `t502-`; cleanup removes only objects with those labels: a scenario's
//! own in its `Drop`, and, once per process, those whose test process is gone (a killed run).

use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The label every lab object carries.
pub const LAB_LABEL: &str = "triage502.lab=container";
/// Prefix of every lab object's name.
pub const PREFIX: &str = "t502-";

/// Runs `docker ARGS`, returning its output whatever the status.
pub fn raw(args: &[&str]) -> anyhow::Result<Output> {
    Command::new("docker")
        .args(args)
        .output()
        .with_context(|| format!("running docker {}", args.join(" ")))
}

/// Runs `docker ARGS`; an error carries its stderr. Returns stdout, trimmed.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = raw(args)?;
    if !out.status.success() {
        bail!(
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker inspect -f FORMAT NAME`.
pub fn inspect(name: &str, format: &str) -> anyhow::Result<String> {
    docker(&["inspect", "-f", format, name])
}

/// Both streams of `docker logs NAME` (nginx writes its error log to stderr, access log to
/// stdout), stdout first.
pub fn logs(name: &str) -> String {
    match raw(&["logs", name]) {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("(docker logs {name}: {e:#})"),
    }
}

/// Whether the Engine answers; otherwise the reason and what to run.
pub fn engine_ready() -> anyhow::Result<()> {
    let out = raw(&["info", "--format", "{{.ServerVersion}}"])
        .context("the docker client is missing (apt-get install docker.io)")?;
    if !out.status.success() {
        bail!(
            "no Docker Engine answers ({}); run: sudo bash scripts/lab/docker-daemon.sh",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    for image in ["nginx", "php-fpm", "app"] {
        if raw(&["image", "inspect", &format!("triage502-lab/{image}:latest")])?
            .status
            .success()
        {
            continue;
        }
        bail!(
            "image triage502-lab/{image} is missing; run: sudo bash scripts/lab/docker-images.sh"
        );
    }
    Ok(())
}

/// Waits until `cond` holds, checking every 100 ms, up to `limit`.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if cond()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes every container, then every network, carrying all of `labels` (`KEY=VALUE`).
pub fn remove_labeled(labels: &[&str]) {
    let filters: Vec<String> = labels.iter().map(|l| format!("label={l}")).collect();
    let with_filters = |base: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = base.iter().map(ToString::to_string).collect();
        for f in &filters {
            args.extend(["--filter".to_string(), f.clone()]);
        }
        args
    };
    let ps = with_filters(&["ps", "-aq"]);
    if let Ok(ids) = docker(&ps.iter().map(String::as_str).collect::<Vec<_>>()) {
        let mut rm = vec!["rm", "-f", "-v"];
        rm.extend(ids.split_whitespace());
        if rm.len() > 3 {
            let _ = raw(&rm);
        }
    }
    let nets = with_filters(&["network", "ls", "-q"]);
    if let Ok(ids) = docker(&nets.iter().map(String::as_str).collect::<Vec<_>>()) {
        for id in ids.split_whitespace() {
            let _ = raw(&["network", "rm", id]);
        }
    }
}

/// The `triage502.lab.pid` labels of lab objects (containers and networks).
fn owner_pids() -> Vec<String> {
    let label = format!("label={LAB_LABEL}");
    let format = "{{.Label \"triage502.lab.pid\"}}";
    let mut pids = Vec::new();
    for base in [&["ps", "-a"][..], &["network", "ls"][..]] {
        let mut args = base.to_vec();
        args.extend(["--filter", &label, "--format", format]);
        if let Ok(out) = docker(&args) {
            pids.extend(out.split_whitespace().map(str::to_string));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Once per process: removes the lab objects of test processes that no longer run.
pub fn clean_orphans_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for pid in owner_pids() {
            let alive = pid
                .parse::<u32>()
                .is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                remove_labeled(&[LAB_LABEL, &format!("triage502.lab.pid={pid}")]);
            }
        }
    });
}
