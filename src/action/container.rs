//! Restart a container (`disruptive`): `POST /containers/ID/restart?t=N` on the container
//! engine's unix socket, what `docker restart NAME` does; then wait until it runs again and
//! request the failing URL until it answers (both bounded).
//!
//! Invariants: the container is inspected first (it must exist, and an id given must be the
//! named container); the only write is [`crate::docker::restart_container`]; nothing runs
//! through a shell or inside the container. There is no undo: a restart cannot be taken back
//! (nothing is deleted; what the container held only in memory is lost), and the plan says so.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::ContainerRestartAction;
use crate::docker::{ContainerInspect, Docker, restart_container, restart_endpoint};
use crate::engine::ActionResult;

/// How long the container may take to run again after the restart call returned.
pub const RUNNING_WAIT: Duration = Duration::from_secs(30);
/// How long the URL may take to answer below 500 once the container runs.
pub const URL_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(300);

/// The API call as the dialog shows it and the executor sends it.
pub fn api_call(c: &ContainerRestartAction, socket: &Path) -> String {
    format!(
        "POST {} on {} (the container engine's API)",
        restart_endpoint(c.target(), c.stop_timeout()),
        socket.display()
    )
}

/// What the plan says about the container: what the restart does to it.
pub fn affects(c: &ContainerRestartAction) -> String {
    format!(
        "container {}: its processes are stopped (SIGTERM, SIGKILL after {} s) and started again with the same image, configuration, networks and volumes; requests to it fail meanwhile",
        c.container,
        c.stop_timeout()
    )
}

/// Why it cannot run at all (before asking the engine anything).
pub fn blocked(c: &ContainerRestartAction) -> Option<String> {
    if c.container.trim().is_empty() {
        return Some("no container given (the map found none on this path)".into());
    }
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    if !id_ok(c.target()) {
        return Some(format!("`{}` is not a container name or id", c.target()));
    }
    None
}

/// One line of the container's state.
pub fn state_line(i: &ContainerInspect) -> String {
    let st = &i.state;
    let mut s = format!(
        "{} ({}): {}, exit code {}, OOMKilled {}, restarts {}",
        i.short_name(),
        i.short_id(),
        st.status,
        st.exit_code,
        st.oom_killed,
        i.restart_count
    );
    if let Some(h) = st.health.as_ref().filter(|h| !h.status.is_empty()) {
        let _ = write!(s, ", health {}", h.status);
    }
    if !st.started_at.is_empty() && !st.started_at.starts_with("0001-") {
        let _ = write!(s, ", started {}", st.started_at);
    }
    s
}

fn done(argv: Vec<String>, ok: bool, output: String, summary: String, t0: Instant) -> ActionResult {
    ActionResult {
        argv,
        ok,
        exit_code: None,
        output,
        summary,
        duration_ms: t0.elapsed().as_millis() as u64,
    }
}

/// Restart the container, wait until it runs, then until the URL answers (bounded).
pub async fn restart(c: &ContainerRestartAction) -> ActionResult {
    let t0 = Instant::now();
    let mut out = String::new();
    let name = c.container.trim().to_owned();
    let equivalent = super::ActionSpec::ContainerRestart(c.clone()).argv();
    if let Some(b) = blocked(c) {
        return done(equivalent, false, out, b, t0);
    }
    let docker = match Docker::from_env() {
        Ok(d) => d,
        Err(u) => {
            return done(
                equivalent,
                false,
                out,
                format!("cannot reach the container engine: {}; {}", u.reason, u.fix),
                t0,
            );
        }
    };
    let target = c.target().to_owned();
    let endpoint = restart_endpoint(&target, c.stop_timeout());
    let argv = vec![
        "POST".to_owned(),
        format!("unix://{}{endpoint}", docker.socket.display()),
    ];
    // Before: it exists, and an id given is the container the operator confirmed by name.
    let before = match docker.inspect(&target).await {
        Ok(i) => i,
        Err(e) => {
            return done(
                argv,
                false,
                out,
                format!("cannot inspect container {name} before restarting it: {e}"),
                t0,
            );
        }
    };
    if before.short_name() != name && !before.id.starts_with(&name) {
        return done(
            argv,
            false,
            out,
            format!(
                "{target} is container {}, not {name}: not restarted (was it recreated since the plan was shown?)",
                before.short_name()
            ),
            t0,
        );
    }
    let _ = writeln!(out, "before: {}", state_line(&before));
    let _ = writeln!(out, "$ {}", api_call(c, &docker.socket));
    if let Err(e) = restart_container(&docker.socket, &target, c.stop_timeout()).await {
        let _ = writeln!(out, "failed: {e}");
        return done(
            argv,
            false,
            out,
            format!("the engine did not restart container {name}: {e}"),
            t0,
        );
    }
    let _ = writeln!(out, "the engine answered: restarted");
    // Until it runs (a container that exits at once is a finding, not a success).
    let waited = Instant::now();
    let mut after = None;
    while waited.elapsed() < RUNNING_WAIT {
        if let Ok(i) = docker.inspect(&target).await {
            let running = i.state.running && !i.state.restarting;
            after = Some(i);
            if running {
                break;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let Some(after) = after else {
        return done(
            argv,
            false,
            out,
            format!("container {name} was restarted, but the engine no longer answers about it"),
            t0,
        );
    };
    let _ = writeln!(out, "after: {}", state_line(&after));
    if !after.state.running || after.state.restarting {
        return done(
            argv,
            false,
            out,
            format!(
                "container {name} was restarted but does not keep running ({}, exit code {}): read `docker logs {name}` for why",
                after.state.status, after.state.exit_code
            ),
            t0,
        );
    }
    let Some(url) = c.url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return done(
            argv,
            true,
            out,
            format!("container {name} restarted and runs"),
            t0,
        );
    };
    // The app needs a moment to listen after its container starts.
    let waited = Instant::now();
    let mut last = None;
    while waited.elapsed() < URL_WAIT {
        let p = super::verify::probe(url).await;
        let answers = p.answers();
        let _ = writeln!(out, "GET {url}: {}", p.describe());
        last = Some(p);
        if answers {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let recovered = last.as_ref().is_some_and(super::Probe::answers);
    let summary = match &last {
        Some(p) if recovered => {
            format!(
                "container {name} restarted and runs; {url} answers {}",
                p.describe()
            )
        }
        Some(p) => format!(
            "container {name} restarted and runs, but {url} still fails ({}) after {} s",
            p.describe(),
            URL_WAIT.as_secs()
        ),
        None => format!("container {name} restarted and runs; {url} was not requested"),
    };
    done(argv, recovered, out, summary, t0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(container: &str, id: Option<&str>) -> ContainerRestartAction {
        ContainerRestartAction {
            container: container.into(),
            id: id.map(Into::into),
            stop_timeout: None,
            url: None,
        }
    }

    #[test]
    fn the_call_names_the_id_and_the_operator_gets_docker_restart() {
        let a = action("shop-app", Some("0123456789abcdef"));
        assert_eq!(
            api_call(&a, Path::new("/var/run/docker.sock")),
            "POST /containers/0123456789abcdef/restart?t=10 on /var/run/docker.sock (the container engine's API)"
        );
        assert_eq!(
            super::super::ActionSpec::ContainerRestart(a.clone()).argv(),
            ["docker", "restart", "shop-app"]
        );
        assert_eq!(blocked(&a), None);
        let named = action("shop-app", Some("  "));
        assert_eq!(named.target(), "shop-app");
    }

    #[test]
    fn no_container_or_a_hostile_name_is_blocked() {
        assert!(blocked(&action("", None)).is_some());
        assert!(blocked(&action("x/../../containers/y", None)).is_some());
        assert!(blocked(&action("a b", None)).is_some());
    }
}
