//! The container lab: real nginx, php-fpm and app containers on the machine's Docker Engine fail in
//! the ways containers add to a 502 (see `tests/container_lab/README.md`).
//!
//! Each test brings one scenario up (its own networks and containers, labeled
//! `triage502.lab=container`, named `t502-…`, published on 127.0.0.1 only), provokes it with a plain
//! HTTP client, and asserts the status a client really sees, the real log lines (`docker logs` of the
//! nginx container: nginx writes to stderr there) and the container facts that make it a container
//! incident. Needs root, the Engine (`scripts/lab/docker-daemon.sh`) and the images
//! (`scripts/lab/docker-images.sh`); without them every test fails saying which to run.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[allow(dead_code)] // shared with tests/lab: the container lab reads statuses, not bodies
#[path = "lab/client.rs"]
mod client;
#[path = "container_lab/harness.rs"]
mod harness;
#[path = "lab/ports.rs"]
mod ports;

#[path = "container_lab/catalogue.rs"]
mod catalogue;
#[path = "container_lab/docker.rs"]
mod docker;
#[path = "container_lab/scenarios.rs"]
mod scenarios;

use harness::ContainerLab;

/// Brings `name` up, provokes it, asserts status and proof lines; returns the running lab.
fn scenario(name: &str) -> ContainerLab {
    let mut lab = ContainerLab::new(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let reply =
        scenarios::start(&mut lab).unwrap_or_else(|e| panic!("{name}: {e:#}\n{}", lab.dump_logs()));
    lab.assert_expected(&reply);
    lab
}

/// The listening sockets (`ADDR:PORT` in hex, as in /proc/net/tcp) of `pid`'s network namespace,
/// without Docker's embedded DNS (127.0.0.11, TCP side, on user networks).
fn listeners(pid: &str) -> Vec<String> {
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    tcp.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"0A") && !f[1].starts_with("0B00007F:")).then(|| f[1].to_string())
        })
        .collect()
}

#[test]
fn healthy() {
    let lab = scenario("healthy");
    assert_eq!(lab.inspect("app", "{{.State.Health.Status}}"), "healthy");
}

#[test]
fn app_loopback_only() {
    let lab = scenario("app_loopback_only");
    // The app does listen, but only on its own loopback (127.0.0.1:3000 = 0100007F:0BB8).
    let pid = lab.inspect("app", "{{.State.Pid}}");
    assert_eq!(listeners(&pid), ["0100007F:0BB8"], "{}", lab.tag);
}

#[test]
fn stale_address() {
    let lab = scenario("stale_address");
    let line = lab.log("web");
    let worker = lab.ip("worker");
    let app = lab.ip("app");
    // nginx still dials the address it resolved at start, now the worker's, not the app's.
    assert!(
        line.contains(&format!("http://{worker}:3000/")),
        "{}",
        lab.dump_logs()
    );
    assert!(
        !line.contains(&format!("http://{app}:3000/")),
        "{}",
        lab.dump_logs()
    );
}

#[test]
fn different_networks() {
    let lab = scenario("different_networks");
    let web_nets = lab.inspect(
        "web",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    let app_nets = lab.inspect(
        "app",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert!(
        web_nets
            .split_whitespace()
            .all(|n| !app_nets.split_whitespace().any(|m| m == n)),
        "web {web_nets} and app {app_nets} share a network"
    );
}

#[test]
fn upstream_exited() {
    let lab = scenario("upstream_exited");
    assert_eq!(
        lab.inspect("app", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
}

#[test]
fn upstream_oom() {
    let lab = scenario("upstream_oom");
    docker::wait_until(
        std::time::Duration::from_secs(10),
        "the app to stop",
        || Ok(lab.inspect("app", "{{.State.Status}}") == "exited"),
    )
    .unwrap();
    assert_eq!(
        lab.inspect("app", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137",
        "{}",
        lab.dump_logs()
    );
}

#[test]
fn restart_loop() {
    let lab = scenario("restart_loop");
    let facts = lab.inspect(
        "app",
        "{{.HostConfig.RestartPolicy.Name}} {{.State.ExitCode}}",
    );
    let restarts: u32 = lab.inspect("app", "{{.RestartCount}}").parse().unwrap();
    assert!(restarts >= 2, "{restarts}");
    assert!(facts == "always 3" || facts == "always 0", "{facts}");
}

#[test]
fn unhealthy_app() {
    let lab = scenario("unhealthy_app");
    assert_eq!(lab.inspect("app", "{{.State.Health.Status}}"), "unhealthy");
    let probe = lab.inspect(
        "app",
        "{{with index .State.Health.Log 0}}{{.Output}}{{end}}",
    );
    assert!(probe.contains("/health answered 500"), "{probe}");
}

#[test]
fn php_fpm() {
    scenario("php_fpm");
}

#[test]
fn php_fpm_wrong_port() {
    scenario("php_fpm_wrong_port");
}

#[test]
fn host_nginx_published_dead() {
    let lab = scenario("host_nginx_published_dead");
    // docker-proxy owns the published port; nothing listens inside the container.
    let pid = lab.inspect("app", "{{.State.Pid}}");
    assert!(listeners(&pid).is_empty(), "{:?}", listeners(&pid));
    let host = lab.log("host");
    assert!(!host.contains("Connection refused"), "{host}");
}

#[test]
fn slow_app_504() {
    scenario("slow_app_504");
}

/// Every catalogue scenario has a test above (names are checked, not only counted).
#[test]
fn catalogue_is_covered() {
    let source = include_str!("container_lab.rs");
    let causes = include_str!("../assets/causes.toml");
    for s in catalogue::SCENARIOS {
        assert!(
            source.contains(&format!("fn {}()", s.name)),
            "scenario {} has no test",
            s.name
        );
        assert!(!s.what.is_empty(), "{}: say what is wrong", s.name);
        for proof in s.proof {
            regex::Regex::new(proof.pattern).unwrap();
        }
        if let Some(detail) = s.detail {
            regex::Regex::new(detail).unwrap();
        }
        // Root cause first, every id from the taxonomy; a faulty scenario names its container.
        for cause in s.causes {
            assert!(
                causes.contains(&format!("[{cause}]")),
                "{}: unknown cause {cause}",
                s.name
            );
        }
        assert_eq!(s.causes.is_empty(), s.culprit.is_none(), "{}", s.name);
    }
}
