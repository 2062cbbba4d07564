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

/// `triage502 ARGS` with a 90 s bound; returns stdout parsed as JSON (panics with stderr if not).
fn triage_json(args: &[&str]) -> serde_json::Value {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run the triage502 binary");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("triage502 {args:?} took longer than 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "triage502 {args:?} did not print JSON ({e}); exit {status}; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    })
}

/// Scenarios whose diagnosis does not yet meet the catalogue, with why: their test asserts only
/// that the catalogue's causes are all found (not which comes first, nor the Docker detail) and
/// prints a `lab-gap` line. Shrink this list; never grow it to make a test pass.
const DIAGNOSIS_GAPS: &[(&str, &str)] = &[];

/// The diagnosis of the running scenario, as an operator gets it from the URL alone:
/// `triage502 run --non-interactive --url URL --format json` names the catalogue's cause first,
/// with the Docker detail (the culprit container's name) in that finding's summary; a healthy
/// control is `healthy` with no finding. Prints one `lab-result` line (scripts/lab-summary.sh).
fn diagnosis(lab: &ContainerLab) -> serde_json::Value {
    let name = lab.spec.name;
    let report = triage_json(&[
        "run",
        "--non-interactive",
        "--url",
        &lab.url,
        "--format",
        "json",
    ]);
    let causes: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["cause"].as_str()).collect())
        .unwrap_or_default();
    eprintln!(
        "lab-result {name} expected={} got={} duration_ms={} all={} context={}",
        lab.spec.causes.first().copied().unwrap_or("healthy"),
        causes.first().copied().unwrap_or("healthy"),
        report["duration_ms"],
        causes.join(","),
        report["context"].as_array().map_or(0, Vec::len)
    );
    if lab.spec.causes.is_empty() {
        assert_eq!(report["status"], "healthy", "{name}: {report:#}");
        assert!(causes.is_empty(), "{name}: invented {causes:?}");
        return report;
    }
    if let Some((_, why)) = DIAGNOSIS_GAPS.iter().find(|(n, _)| *n == name) {
        eprintln!("lab-gap {name}: {why}");
        for c in lab.spec.causes {
            assert!(
                causes.contains(c),
                "{name}: {c} missing from {causes:?}\n{report:#}"
            );
        }
        return report;
    }
    assert_eq!(
        causes.first(),
        lab.spec.causes.first(),
        "{name}: {report:#}"
    );
    for c in lab.spec.causes {
        assert!(
            causes.contains(c),
            "{name}: {c} missing from {causes:?}\n{report:#}"
        );
    }
    // The Docker detail, where the catalogue names one: the culprit container in the summary.
    let Some(detail) = lab.spec.detail else {
        return report;
    };
    let summary = report["findings"][0]["summary"].as_str().unwrap_or("");
    let culprit = lab.container(lab.spec.culprit.unwrap());
    assert!(
        summary.contains(culprit),
        "{name}: the first finding does not name container {culprit}: {summary}\n{report:#}"
    );
    assert!(
        regex::Regex::new(detail).unwrap().is_match(summary),
        "{name}: the first finding lacks /{detail}/: {summary}"
    );
    report
}

/// `triage502 map URL --format json`: the front's container and the upstream's container (name
/// and id), the configuration file as seen inside the front container, and the namespace the
/// probes ran from. `upstream` is the role whose container the map must match the upstream to
/// (`None` where no container owns the address nginx dials).
fn map(lab: &ContainerLab, upstream: Option<&str>) -> serde_json::Value {
    let name = lab.spec.name;
    let m = triage_json(&["map", &lab.url, "--format", "json"]);
    let id = |role: &str| lab.inspect(role, "{{.Id}}");
    if lab.containers.contains_key("web") {
        let web = lab.container("web");
        assert_eq!(m["front"]["container"]["name"], web, "{name}: {m:#}");
        assert_eq!(m["front"]["container"]["id"], id("web").as_str(), "{name}");
        assert_eq!(
            m["front"]["config"], "/etc/nginx/nginx.conf",
            "{name}: {m:#}"
        );
        assert_eq!(
            m["route"]["location"]["file"], "/etc/nginx/conf.d/default.conf",
            "{name}: the route's file as nginx sees it inside its container: {m:#}"
        );
        assert_eq!(m["vantage"]["kind"], "netns", "{name}: {m:#}");
        assert_eq!(m["vantage"]["container"], web, "{name}: {m:#}");
        assert_eq!(m["vantage"]["pid"], m["front"]["pid"], "{name}");
    } else {
        // The host nginx: its own configuration, probes from this host.
        assert!(m["front"]["container"].is_null(), "{name}: {m:#}");
        let conf = lab.dir.join("nginx.conf");
        assert_eq!(
            m["front"]["config"],
            conf.display().to_string(),
            "{name}: {m:#}"
        );
    }
    if let Some(role) = upstream {
        let up = m["upstreams"]
            .as_array()
            .and_then(|u| u.iter().find(|u| !u["container"].is_null()))
            .unwrap_or_else(|| panic!("{name}: no upstream matched to a container: {m:#}"));
        assert_eq!(
            up["container"]["name"],
            lab.container(role),
            "{name}: {m:#}"
        );
        assert_eq!(up["container"]["id"], id(role).as_str(), "{name}: {m:#}");
    }
    m
}

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
    map(&lab, Some("app"));
    diagnosis(&lab);
}

#[test]
fn app_loopback_only() {
    let lab = scenario("app_loopback_only");
    // The app does listen, but only on its own loopback (127.0.0.1:3000 = 0100007F:0BB8).
    let pid = lab.inspect("app", "{{.State.Pid}}");
    assert_eq!(listeners(&pid), ["0100007F:0BB8"], "{}", lab.tag);
    map(&lab, Some("app"));
    diagnosis(&lab);
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
    map(&lab, Some("app"));
    diagnosis(&lab);
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
    map(&lab, None);
    diagnosis(&lab);
}

#[test]
fn upstream_exited() {
    let lab = scenario("upstream_exited");
    assert_eq!(
        lab.inspect("app", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    map(&lab, Some("app"));
    diagnosis(&lab);
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
    map(&lab, Some("app"));
    diagnosis(&lab);
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
    map(&lab, None);
    diagnosis(&lab);
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
    map(&lab, Some("app"));
    diagnosis(&lab);
}

#[test]
fn php_fpm() {
    let lab = scenario("php_fpm");
    map(&lab, Some("php"));
    diagnosis(&lab);
}

#[test]
fn php_fpm_wrong_port() {
    let lab = scenario("php_fpm_wrong_port");
    map(&lab, Some("php"));
    diagnosis(&lab);
}

#[test]
fn host_nginx_published_dead() {
    let lab = scenario("host_nginx_published_dead");
    // docker-proxy owns the published port; nothing listens inside the container.
    let pid = lab.inspect("app", "{{.State.Pid}}");
    assert!(listeners(&pid).is_empty(), "{:?}", listeners(&pid));
    let host = lab.log("host");
    assert!(!host.contains("Connection refused"), "{host}");
    map(&lab, Some("app"));
    diagnosis(&lab);
}

#[test]
fn slow_app_504() {
    let lab = scenario("slow_app_504");
    map(&lab, Some("app"));
    diagnosis(&lab);
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

/// The restart round trip on the exited app container: `run --non-interactive --apply
/// disruptive` restarts it through the Engine API (the exact call in the transcript), the
/// container runs again, the URL answers 200, and the report says the URL recovered; the
/// action has no undo. Without `--apply` the same run only lists `docker restart NAME`.
#[test]
fn restart_exited_container_round_trip() {
    let lab = scenario("upstream_exited");
    let app = lab.container("app").to_owned();
    let state = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--non-interactive",
            "--url",
            &lab.url,
            "--format",
            "json",
        ];
        args.extend(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
            .args(&args)
            .env("XDG_STATE_HOME", state.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    // Offered, not run: the operator's command in the recommendations.
    let listed = run(&[]);
    let rec = listed["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "502/restart_container")
        .unwrap_or_else(|| panic!("the restart is not offered: {listed:#}"));
    assert_eq!(
        rec["argv"],
        serde_json::json!(["docker", "restart", app.as_str()])
    );
    assert_eq!(rec["tier"], "disruptive");
    assert_eq!(
        lab.inspect("app", "{{.State.Status}}"),
        "exited",
        "a run without --apply restarted the container"
    );
    // Applied: the Engine restarts it, the URL answers again.
    let report = run(&["--apply", "disruptive"]);
    let applied = report["applied_actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["node"] == "restart_container"))
        .unwrap_or_else(|| panic!("the restart was not applied: {report:#}"));
    eprintln!(
        "restart {}: {}\n{}",
        lab.tag, applied["summary"], applied["output"]
    );
    assert_eq!(applied["ok"], true, "{applied:#}");
    assert_eq!(applied["recovered"], true, "{applied:#}");
    let id = lab.inspect("app", "{{.Id}}");
    assert_eq!(applied["argv"][0], "POST", "{applied:#}");
    assert!(
        applied["argv"][1]
            .as_str()
            .unwrap()
            .ends_with(&format!("/containers/{id}/restart?t=10")),
        "{applied:#}"
    );
    let output = applied["output"].as_str().unwrap();
    assert!(
        output.contains("before: ") && output.contains(": exited, exit code 137"),
        "{output}"
    );
    assert!(
        output.contains("after: ") && output.contains(": running"),
        "{output}"
    );
    assert!(
        applied["undo"].as_array().unwrap().is_empty(),
        "{applied:#}"
    );
    assert_eq!(lab.inspect("app", "{{.State.Status}}"), "running");
    assert_eq!(lab.get().status(), Some(200), "{}", lab.dump_logs());
    assert_eq!(report["end"], "resolved", "{report:#}");
}

/// An unprivileged run (`nobody`, no `docker` group) on a container incident: the report begins
/// with what it could not see (the Docker socket, the containers' namespaces and filesystems) and
/// how to see it, and its first finding is not a weaker one than root's: the same cause on direct
/// evidence, or no finding at all.
#[test]
fn unprivileged_container_run() {
    unprivileged_run("app_loopback_only");
}

/// The same on the exited app container (nginx in its container answers 504): as `nobody`
/// neither the Engine nor the containers' namespaces can be seen.
#[test]
fn unprivileged_container_run_exited() {
    unprivileged_run("upstream_exited");
}

fn unprivileged_run(name: &str) {
    let lab = scenario(name);
    let root = diagnosis(&lab);
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_triage502"))
        .args([
            "run",
            "--non-interactive",
            "--url",
            &lab.url,
            "--format",
            "json",
        ])
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setpriv (util-linux) runs triage502");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON as nobody ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let unseen: Vec<String> = report["unseen"]
        .as_array()
        .unwrap_or_else(|| panic!("no `unseen` in the unprivileged report: {report:#}"))
        .iter()
        .map(|u| format!("{} | {} | {}", u["what"], u["why"], u["how"]))
        .collect();
    eprintln!(
        "unprivileged {}: status {} first {} (basis {}); root's first {}; unseen {unseen:#?}",
        lab.tag,
        report["status"],
        report["findings"][0]["cause"],
        report["findings"][0]["basis"],
        root["findings"][0]["cause"]
    );
    // It begins with the Docker socket and the namespaces (either order), each with its remedy.
    let head: Vec<String> = unseen.iter().take(2).map(|u| u.to_lowercase()).collect();
    assert!(
        head.iter()
            .any(|u| u.contains("docker.sock") && u.contains("usermod -ag docker")),
        "the report does not begin with the Docker socket and how to see it: {unseen:#?}"
    );
    assert!(
        head.iter()
            .any(|u| u.contains("network namespaces") && u.contains("sudo")),
        "the report does not begin with the namespaces and how to see them: {unseen:#?}"
    );
    // Not a weaker first finding: the same cause on direct evidence, or, where only
    // circumstantial evidence is left, an inconclusive run that says so (as on bare hosts).
    match report["findings"].as_array().and_then(|f| f.first()) {
        None => assert_ne!(report["status"], "healthy", "{report:#}"),
        Some(f) if f["basis"] == "circumstantial" => {
            assert_eq!(report["status"], "inconclusive", "{report:#}");
            assert_eq!(report["direct_evidence"], false, "{report:#}");
        }
        Some(f) => {
            assert_eq!(f["cause"], root["findings"][0]["cause"], "{report:#}");
            assert_eq!(
                f.get("basis").and_then(|b| b.as_str()).unwrap_or("direct"),
                "direct",
                "{report:#}"
            );
        }
    }
}
