//! The incident lab: real nginx, apache2, php-fpm and haproxy fail on this machine in every way
//! the cause taxonomy describes (see `tests/lab/README.md`).
//!
//! Each test brings one scenario up on loopback ports, provokes it with a plain HTTP client, and
//! asserts the status a client really sees and the real log lines that prove the cause. Needs root
//! and the servers; without them every test fails with the install command. Scenarios run side by
//! side (`cargo test --test lab`).

#[path = "lab/harness.rs"]
mod harness;

use harness::{Lab, SCENARIOS};

/// Brings `name` up, provokes it, and checks status and log lines against the catalogue.
fn scenario(name: &str) {
    let mut lab = Lab::start(name);
    let seen = lab.provoke();
    lab.assert_expected(&seen);
}

/// Brings `name` up, provokes it, and checks that `triage502 run` given only the URL names the
/// scenario's root cause first and every other listed cause among its findings.
fn diagnosis(name: &str) {
    let mut lab = Lab::start(name);
    lab.provoke();
    let spec = lab.spec;
    let report = harness::diagnose(&lab.url);
    let causes: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["cause"].as_str()).collect())
        .unwrap_or_default();
    // One line per scenario for scripts/lab-summary.sh (run with --nocapture).
    eprintln!(
        "lab-result {name} expected={} got={} duration_ms={} all={} context={}",
        spec.causes.first().copied().unwrap_or("healthy"),
        causes.first().copied().unwrap_or("healthy"),
        report["duration_ms"],
        causes.join(","),
        report["context"].as_array().map_or(0, Vec::len)
    );
    if name == "nginx_upstream_oom" {
        // The kernel's own OOM report of the upstream's worker, matched to the path by the
        // resources check (besides php-fpm's SIGKILL lines the log scan correlates).
        assert!(
            report["path"]
                .to_string()
                .contains("resources exhausted on the failing path: php-fpm"),
            "{name}: the resources check did not put the OOM kill on the path: {report:#}"
        );
    }
    if spec.causes.is_empty() {
        assert_eq!(report["status"], "healthy", "{name}: {report:#}");
        assert!(causes.is_empty(), "{name}: invented {causes:?}");
    } else {
        assert_eq!(causes.first(), spec.causes.first(), "{name}: {report:#}");
        if let Some(path) = firewall_path(name) {
            // The firewall finding names the deciding rule and its chain path, confirmed by a probe.
            let first = &report["findings"][0];
            let summary = first["summary"].as_str().unwrap_or("");
            assert!(
                summary.contains(path),
                "{name}: chain path {path:?} missing: {summary}"
            );
            let rule = format!("dport {}", lab.var("app_port"));
            assert!(
                summary.contains(&rule),
                "{name}: the rule ({rule}) is not quoted: {summary}"
            );
            assert_eq!(
                first
                    .get("basis")
                    .and_then(|b| b.as_str())
                    .unwrap_or("direct"),
                "direct",
                "{name}: {first:#}"
            );
        }
        for c in spec.causes {
            assert!(
                causes.contains(c),
                "{name}: {c} missing from {causes:?}\n{report:#}"
            );
        }
    }
}

/// The chain path the firewall scenarios' finding must name.
fn firewall_path(name: &str) -> Option<&'static str> {
    match name {
        "nginx_firewall_blocked" => Some("ip filter: OUTPUT"),
        "nginx_firewall_ufw_user_drop" => Some("ip filter: OUTPUT → ufw-user-output"),
        "nginx_firewall_nft_output" => Some("inet triage502_lab: output"),
        _ => None,
    }
}

/// One `#[test]` per scenario, so they run in parallel and fail one by one.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                scenario(stringify!($name));
            }
        )*

        /// The diagnosis from the URL alone names each scenario's cause first (and the healthy site
        /// gets no finding): `triage502 run --non-interactive --format json` with discovery,
        /// checks and log analysis, against the scenario's real servers.
        mod diagnosis {
            $(
                #[test]
                fn $name() {
                    super::diagnosis(stringify!($name));
                }
            )*
        }

        /// Every scenario of the catalogue has a test above (and no test names a missing one).
        #[test]
        fn every_catalogue_scenario_has_a_test() {
            let tested = [$(stringify!($name)),*];
            let catalogued: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            assert_eq!(tested.as_slice(), catalogued.as_slice());
        }
    };
}

scenarios!(
    nginx_upstream_refused,
    nginx_socket_missing,
    nginx_socket_permission,
    nginx_upstream_timeout,
    nginx_upstream_closed,
    nginx_invalid_response,
    nginx_header_too_big,
    nginx_app_fatal_segv,
    nginx_app_fatal_undefined,
    nginx_plugin_fault,
    nginx_upstream_overloaded,
    nginx_no_live_upstreams,
    nginx_dns_failure,
    nginx_recent_change,
    nginx_config_typo_backup,
    nginx_cache_fault,
    nginx_firewall_blocked,
    nginx_firewall_ufw_user_drop,
    nginx_firewall_nft_output,
    nginx_tls_upstream,
    nginx_resource_exhaustion,
    nginx_upstream_oom,
    nginx_config_error,
    nginx_ipv6_only_app,
    nginx_frontend_down,
    nginx_healthy,
    apache_upstream_refused,
    apache_invalid_response,
    apache_upstream_timeout,
    apache_socket_missing,
    haproxy_upstream_refused,
    haproxy_invalid_response,
    haproxy_edge_error,
    nginx_cache_fault_tree,
    nginx_dns_no_resolver,
    nginx_keepalive_race,
    nginx_dns_typo,
);

/// Issue 21: on a host with real noise (an unrelated process OOM-killed in its own memory cgroup
/// during the window, unrelated package events in the dpkg log), a refused upstream is named
/// first, and the noise shows up as context in the JSON report and in the ticket's "Context
/// (seen, set aside)" section, never as a finding.
#[test]
fn unrelated_noise_is_context_not_a_finding() {
    let noise = harness::noise::ensure().expect("lab noise");
    let (pid, comm) = noise.oom_killed.clone();
    let mut lab = Lab::start("nginx_upstream_refused");
    lab.provoke();
    let (report, session) = harness::diagnose_session(&lab.url);
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let kill = format!("{comm} (pid {pid})");
    let text = |v: &serde_json::Value| v.to_string();
    for f in &findings {
        assert!(
            !text(f).contains(&kill),
            "the unrelated OOM kill of {kill} became a finding: {f:#}"
        );
    }
    let context: Vec<String> = report["context"]
        .as_array()
        .map(|c| c.iter().map(text).collect())
        .unwrap_or_default();
    assert!(
        context
            .iter()
            .any(|c| c.contains(&kill) && c.contains(&noise.oom_cgroup)),
        "no context note for the OOM kill of {kill} in {}: {context:#?}",
        noise.oom_cgroup
    );
    // The host's dpkg log holds unrelated package events (the suite installs packages minutes
    // before the lab); when it has any in the last day, they are one context note.
    let day_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let dpkg = std::fs::read_to_string("/var/log/dpkg.log").unwrap_or_default();
    let recent_installs = dpkg
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("install"))
        .filter(|l| {
            l.get(..19)
                .and_then(|t| {
                    t.replacen(' ', "T", 1)
                        .parse::<jiff::civil::DateTime>()
                        .ok()
                })
                .and_then(|t| t.to_zoned_datetime(jiff::tz::TimeZone::system()).ok())
                .is_some_and(|t| t.timestamp() >= day_ago)
        })
        .count();
    if recent_installs > 0 {
        assert!(
            context
                .iter()
                .any(|c| c.contains("unrelated package event")),
            "{recent_installs} package install(s) in the last day, but no context note: {context:#?}"
        );
        for f in &findings {
            assert!(
                f["cause"] != "recent_change" || !text(f).contains(" install "),
                "a fresh install became a recent change: {f:#}"
            );
        }
    }
    let session = session.expect("the run journals a session");
    let ticket = harness::ticket(&session);
    let section = ticket
        .split("## Context (seen, set aside)")
        .nth(1)
        .unwrap_or_else(|| panic!("no context section in the ticket:\n{ticket}"));
    let section = section.split("\n## ").next().unwrap_or(section);
    assert!(
        section.contains(&kill),
        "the ticket's context section does not mention {kill}:\n{section}"
    );
    if recent_installs > 0 {
        assert!(
            section.contains("unrelated package event"),
            "the ticket's context section lacks the package events:\n{section}"
        );
    }
    // Last, as it also needs the firewall evaluation (the noise chains are not on this path).
    assert_eq!(
        findings.first().and_then(|f| f["cause"].as_str()),
        Some("upstream_refused"),
        "{report:#}"
    );
}

/// The firewall scenario leaves no iptables rule behind, even though its test drops everything
/// while the rule is in place.
#[test]
fn firewall_rules_are_removed_on_drop() {
    let lab = Lab::start("nginx_firewall_blocked");
    let tag = lab
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("scenario dir name")
        .to_owned();
    let rules = || {
        let out = std::process::Command::new("iptables")
            .args(["-w", "-S"])
            .output()
            .expect("iptables -S");
        String::from_utf8_lossy(&out.stdout)
            .matches(tag.as_str())
            .count()
    };
    assert_eq!(
        rules(),
        2,
        "the scenario adds one INPUT and one OUTPUT rule"
    );
    let pids = lab.pids();
    let dir = lab.dir.clone();
    drop(lab);
    assert_eq!(rules(), 0, "rules tagged {tag} left behind");
    assert!(!dir.exists(), "{} left behind", dir.display());
    let alive: Vec<u32> = pids
        .into_iter()
        .filter(|p| harness::process::is_alive(*p))
        .collect();
    assert!(alive.is_empty(), "processes left running: {alive:?}");
}

/// A panicking test still tears its scenario down: processes stopped, dir removed.
#[test]
fn a_panicking_test_cleans_up() {
    let record: std::sync::Arc<std::sync::Mutex<(Vec<u32>, std::path::PathBuf)>> =
        std::sync::Arc::default();
    let inside = std::sync::Arc::clone(&record);
    let result = std::thread::spawn(move || {
        let lab = Lab::start("nginx_healthy");
        *inside.lock().expect("record") = (lab.pids(), lab.dir.clone());
        panic!("deliberate panic with a running scenario");
    })
    .join();
    assert!(result.is_err(), "the thread should have panicked");
    let (pids, dir) = record.lock().expect("record").clone();
    assert!(!pids.is_empty(), "the scenario ran processes");
    let alive: Vec<u32> = pids
        .into_iter()
        .filter(|p| harness::process::is_alive(*p))
        .collect();
    assert!(alive.is_empty(), "processes left running: {alive:?}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Masters run as root and their workers as an unprivileged user, like packaged services.
#[test]
fn masters_run_as_root_and_workers_unprivileged() {
    let uid = |pid: u32| -> Option<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|u| u.parse().ok())
            })
    };
    let expected_workers = [
        ("nginx_socket_permission", "nginx", 65534), // nobody
        ("nginx_socket_permission", "php-fpm", 33),  // www-data
        ("apache_upstream_refused", "apache2", 33),
        ("haproxy_invalid_response", "haproxy", 65534),
    ];
    for (scenario, daemon, worker_uid) in expected_workers {
        let lab = Lab::start(scenario);
        let (_, master) = lab
            .masters()
            .into_iter()
            .find(|(name, _)| *name == daemon)
            .unwrap_or_else(|| panic!("{scenario} runs no {daemon}"));
        assert_eq!(
            uid(master),
            Some(0),
            "{scenario}: {daemon} master {master} is not root"
        );
        // A worker is forked as root and drops privileges a moment later, and
        // servers replace workers at will: wait (bounded) until every live
        // worker has dropped to the expected user.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let workers: Vec<(u32, Option<u32>)> = harness::process::session_members(master)
                .into_iter()
                .filter(|p| *p != master && harness::process::is_alive(*p))
                .map(|p| (p, uid(p)))
                .filter(|(_, u)| u.is_some())
                .collect();
            if !workers.is_empty() && workers.iter().all(|(_, u)| *u == Some(worker_uid)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{scenario}: {daemon} workers (pid, uid) {workers:?}, expected uid {worker_uid}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// A scenario dir left by a test process that was killed (no `Drop` ran) is cleaned by the next
/// run: its recorded processes are stopped by pid and the dir is removed.
#[test]
fn leftovers_of_a_killed_run_are_cleaned() {
    // A pid that is certainly gone: a child that has exited and been reaped.
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = gone.id();
    gone.wait().expect("reap true");
    let dir =
        std::path::Path::new(harness::stale::LAB_ROOT).join(format!("killed_run-{dead_pid}-0"));
    std::fs::create_dir_all(dir.join("logs")).expect("leftover dir");
    let port = harness::ports::free_port().expect("port");
    let leftover = harness::process::start_child(
        "leftover app",
        &[
            env!("CARGO_BIN_EXE_lab-upstream"),
            "http",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--behaviour",
            "healthy",
        ],
        &dir.join("logs/app.log"),
        &dir,
        true,
    )
    .expect("leftover app");
    let pid = leftover.child.id();
    // Forget the handle as a killed test process would (its Drop never runs).
    std::mem::forget(leftover);
    harness::stale::clean_orphans();
    assert!(harness::process::wait_gone(
        &[pid],
        std::time::Duration::from_secs(5)
    ));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The ufw-like and nftables firewall scenarios leave no chain, rule or table behind.
#[test]
fn ufw_and_nft_lab_rules_are_removed_on_drop() {
    let listed = |argv: &[&str]| {
        let out = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .expect("list rules");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let lab = Lab::start("nginx_firewall_ufw_user_drop");
    assert!(listed(&["iptables", "-w", "-S"]).contains("-N ufw-user-output"));
    drop(lab);
    let after = listed(&["iptables", "-w", "-S"]);
    assert!(
        !after.contains("ufw-user-output") && !after.contains("ufw-user-input"),
        "{after}"
    );
    let lab = Lab::start("nginx_firewall_nft_output");
    assert!(listed(&["nft", "list", "tables"]).contains("inet triage502_lab"));
    drop(lab);
    let after = listed(&["nft", "list", "tables"]);
    assert!(!after.contains("triage502_lab"), "{after}");
}
