//! Remedies applied as configuration edits on the lab's real incidents.
//!
//! For each remedy with a lab scenario (`nginx_socket_missing`: fastcgi_pass names php7.4's
//! socket while php-fpm 8.2 listens on its own; `nginx_upstream_timeout`: the app answers after
//! 5 s with `proxy_read_timeout 1s`; ...; `nginx_keepalive_race`: nginx keeps idle upstream
//! connections 60 s, the app 1 s; `nginx_dns_typo`: the upstream name has a typo), the real
//! binary walks the incident from the URL alone:
//! - with `--read-only` it prints the edit's diff as the recommended step and changes nothing;
//! - with `--apply disruptive` it edits the file at the directive discovery found, config-tests,
//!   reloads, verifies (the URL answers 200 three times), and journals it;
//! - the undo (the backup restored, tested, reloaded) brings the original file back byte for
//!   byte, and the 502/504 returns.
//!
//! The keepalive race shows only on a request sent on a connection idle past the app's timeout:
//! before each walk and after the undo a request leaves a kept-alive connection and the test
//! waits past the timeout (deterministic); after the fix three requests, each after such a wait,
//! answer 200.
//!
//! Bad input, on the same real nginx through the library's executor: the file changed between
//! the preview and the apply (refused, nothing written), a config test failing after the edit
//! and a verification that does not recover (both rolled back, the file restored byte for
//! byte). Needs root, nginx and php-fpm (the lab's requirements).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "lab/harness.rs"]
mod harness;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use triage502::action::{
    ActionSpec, ConfigEditAction, ExecPolicy, Plan, RollbackAction, ServiceAction, ServiceOp, Tier,
    execute,
};
use triage502::engine::{Input, PlannedAction};

/// One run of the binary: its JSON report and stderr.
struct Run {
    report: serde_json::Value,
    stderr: String,
}

fn triage502(args: &[&str], state: &Path) -> Run {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(args)
        .env("XDG_STATE_HOME", state)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("triage502 {args:?} took longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdout = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n--- stderr ---\n{stderr}"));
    Run { report, stderr }
}

fn statuses(url: &str, n: usize) -> Vec<Option<u16>> {
    (0..n).map(|_| harness::client::get(url).status()).collect()
}

fn backups_of(conf: &Path) -> Vec<PathBuf> {
    let name = conf.file_name().unwrap().to_string_lossy().into_owned();
    let mut v: Vec<PathBuf> = std::fs::read_dir(conf.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.triage502-"))
        })
        .collect();
    v.sort();
    v
}

fn nginx_service(lab: &harness::RunningScenario, conf: &Path) -> ServiceAction {
    let (_, pid) = lab
        .masters()
        .into_iter()
        .find(|(n, _)| *n == "nginx")
        .unwrap();
    ServiceAction {
        unit: "nginx".into(),
        op: ServiceOp::Reload,
        server: None,
        config: Some(conf.display().to_string()),
        prefix: None,
        pid: Some(pid.to_string()),
        pid_file: None,
    }
}

fn policy() -> ExecPolicy {
    ExecPolicy {
        interactive_consent: true,
        systemd: Some(false),
        ..ExecPolicy::default()
    }
}

/// php-fpm daemonized re-executes on SIGUSR2 and comes back under a new pid
/// (a restart too); the lab only knows the first. On drop, the master named
/// by the pid file now is stopped by that pid when it is not the first.
struct FpmMaster {
    pid_file: PathBuf,
    first: Option<u32>,
}

impl FpmMaster {
    fn new(lab: &harness::RunningScenario) -> FpmMaster {
        let pid_file = lab.dir.join("run/php-fpm.pid");
        let first = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        FpmMaster { pid_file, first }
    }
}

impl Drop for FpmMaster {
    fn drop(&mut self) {
        let now: Option<u32> = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if let Some(pid) = now.filter(|p| Some(*p) != self.first) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

/// The facts the `remedy` check published in a report's path.
fn remedy_facts(report: &serde_json::Value) -> serde_json::Value {
    report["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["node"].as_str().unwrap().starts_with("remedy_"))
        .find_map(|p| {
            p["detail"]["reports"]
                .as_array()
                .and_then(|r| r.first())
                .map(|r| r["facts"].clone())
        })
        .unwrap_or_else(|| panic!("no remedy was computed: {report:#}"))
}

/// The whole story for one scenario: read-only diff, unattended apply, undo.
/// `failing`: the status that returns after the undo (`None` when the failure
/// shows only under load, as for an overloaded pool).
fn remedy_round_trip(
    scenario: &str,
    file: &str,
    expect_minus: &str,
    expect_plus: &str,
    failing: Option<u16>,
) {
    remedy_round_trip_with(scenario, file, expect_minus, expect_plus, failing, &[]);
}

/// [`remedy_round_trip`] with `--var NAME=VALUE` items; a value `{{ dir }}/...` is
/// rendered with the lab's directory.
fn remedy_round_trip_with(
    scenario: &str,
    file: &str,
    expect_minus: &str,
    expect_plus: &str,
    failing: Option<u16>,
    vars: &[&str],
) {
    let mut lab = harness::Lab::start(scenario);
    let vars: Vec<String> = vars
        .iter()
        .map(|v| v.replace("{{ dir }}", &lab.dir.display().to_string()))
        .collect();
    let mut extra: Vec<&str> = Vec::new();
    for v in &vars {
        extra.push("--var");
        extra.push(v);
    }
    // Declared after the lab, dropped before it: stops a php-fpm master the
    // reload or restart left under a new pid (the lab stops the pids it started).
    let _fpm = FpmMaster::new(&lab);
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let conf = lab.dir.join(file);
    let original = std::fs::read(&conf).unwrap();
    let state = tempfile::tempdir().unwrap();
    let url = lab.url.clone();
    // The keepalive race shows on a request sent on a connection idle past the app's timeout.
    let race = scenario == "nginx_keepalive_race";

    // --read-only: the diff is the recommended step; nothing changes.
    if race {
        prime_race(&url);
    }
    let ro = triage502(
        &[
            &[
                "run",
                "--non-interactive",
                "--read-only",
                "--format",
                "json",
                "--url",
                &url,
            ],
            extra.as_slice(),
        ]
        .concat(),
        state.path(),
    );
    let rec = ro.report["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "502/remedy_apply")
        .unwrap_or_else(|| panic!("no remedy offered: {:#}", ro.report));
    let diff = rec["diff"].as_str().unwrap();
    assert!(
        diff.contains(expect_minus) && diff.contains(expect_plus),
        "{diff}"
    );
    assert!(rec["why_not_run"].as_str().unwrap().contains("read-only"));
    assert_eq!(
        std::fs::read(&conf).unwrap(),
        original,
        "read-only changed the file"
    );
    assert!(backups_of(&conf).is_empty());

    // --apply disruptive: edited, tested, reloaded, verified; journalled.
    if race {
        prime_race(&url);
    }
    let ap = triage502(
        &[
            &[
                "run",
                "--non-interactive",
                "--apply",
                "disruptive",
                "--format",
                "json",
                "--url",
                &url,
            ],
            extra.as_slice(),
        ]
        .concat(),
        state.path(),
    );
    let applied = ap.report["applied_actions"].as_array().unwrap();
    assert_eq!(applied.len(), 1, "{:#}", ap.report);
    let a = &applied[0];
    eprintln!(
        "lab-action config_edit scenario={scenario} summary={:?}\n{}",
        a["summary"],
        a["output"].as_str().unwrap_or_default()
    );
    assert_eq!(a["ok"], true, "{a:#}");
    assert_eq!(a["recovered"], true, "{a:#}");
    assert!(a["diff"].as_str().unwrap().contains(expect_plus), "{a:#}");
    let after = a["verification"]["after"].as_array().unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|p| p["status"] == 200), "{a:#}");
    assert_eq!(ap.report["end"], "resolved", "{:#}", ap.report);
    assert_eq!(statuses(&url, 3), [Some(200); 3]);
    if race {
        // Across the idle window: nginx now closes its idle connection first.
        for _ in 0..3 {
            std::thread::sleep(RACE_WAIT);
            assert_eq!(statuses(&url, 1), [Some(200)], "the race is still there");
        }
    }
    let edited = std::fs::read(&conf).unwrap();
    assert_ne!(edited, original);
    let backups = backups_of(&conf);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read(&backups[0]).unwrap(), original);
    // The journal holds the edit's result.
    let journal = ap
        .stderr
        .lines()
        .find_map(|l| l.split(" journalled in ").nth(1))
        .unwrap_or_else(|| panic!("no journal: {}", ap.stderr));
    let j = std::fs::read_to_string(journal.trim()).unwrap();
    assert!(j.contains("edited ") && j.contains("verified"), "{j}");

    // The undo the report lists: restore the backup, test, reload.
    assert!(
        a["undo"][0].as_str().unwrap().contains(".triage502-"),
        "{a:#}"
    );
    let facts = remedy_facts(&ap.report);
    assert_eq!(facts["remedy.file"], conf.display().to_string());
    let how = a["undo"][0].as_str().unwrap();
    let service = ServiceAction {
        unit: facts["remedy.unit"].as_str().unwrap().into(),
        op: if how.ends_with("and restart)") {
            ServiceOp::Restart
        } else {
            ServiceOp::Reload
        },
        server: None,
        config: facts["remedy.config"].as_str().map(str::to_owned),
        prefix: None,
        pid: facts["remedy.pid"].as_str().map(str::to_owned),
        pid_file: facts["remedy.pid_file"].as_str().map(str::to_owned),
    };
    let undo = ActionSpec::Rollback(RollbackAction {
        file: conf.display().to_string(),
        backup: backups[0].display().to_string(),
        service: Some(Box::new(service)),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let x = rt.block_on(execute(&undo, Tier::Disruptive, &policy()));
    assert!(x.result.ok, "{:#?}", x.result);
    assert_eq!(
        std::fs::read(&conf).unwrap(),
        original,
        "not restored byte for byte"
    );
    if let Some(f) = failing {
        std::thread::sleep(Duration::from_millis(500));
        if race {
            prime_race(&url);
        }
        assert_eq!(statuses(&url, 1), [Some(f)]);
    }
}

/// Past the keepalive-race app's idle timeout (1 s).
const RACE_WAIT: Duration = Duration::from_millis(1_400);

/// Leaves nginx one kept-alive connection idle past the app's idle timeout: requests until one
/// answers 200 (each failure drops a stale connection), then waits. nginx reuses its most
/// recently used idle connection first, so the next request through it meets the race.
fn prime_race(url: &str) {
    for _ in 0..8 {
        if statuses(url, 1) == [Some(200)] {
            std::thread::sleep(RACE_WAIT);
            return;
        }
    }
    panic!("{url} never answered 200 to leave a kept-alive connection");
}

#[test]
fn socket_missing_points_fastcgi_pass_at_the_live_socket_and_undo_restores_it() {
    remedy_round_trip(
        "nginx_socket_missing",
        "nginx.conf",
        "-            fastcgi_pass unix:",
        "php8.2-fpm.sock;",
        Some(502),
    );
}

#[test]
fn upstream_timeout_raises_the_location_timeout_and_undo_restores_it() {
    remedy_round_trip(
        "nginx_upstream_timeout",
        "nginx.conf",
        "-            proxy_read_timeout 1s;",
        // The app answers after 5 s: 5 s measured + a 5 s margin, rounded up.
        "+            proxy_read_timeout 1",
        Some(504),
    );
}

#[test]
fn socket_permission_gives_the_socket_to_the_proxy_user_and_undo_restores_it() {
    remedy_round_trip(
        "nginx_socket_permission",
        "php-fpm.conf",
        "-listen.owner = www-data",
        "+listen.owner = nobody",
        Some(502),
    );
}

#[test]
fn upstream_overloaded_raises_max_children_within_memory_and_undo_restores_it() {
    // The pool fails only under load (pm.max_children = 1): the remedy is verified at rest
    // and undone byte for byte; the 502 returning needs the load again, not asserted here.
    remedy_round_trip(
        "nginx_upstream_overloaded",
        "php-fpm.conf",
        "-pm.max_children = 1",
        "+pm.max_children = 5",
        None,
    );
}

#[test]
fn header_too_big_sizes_the_buffer_from_the_measured_header_and_undo_restores_it() {
    // The app sends a 16 KiB Set-Cookie (about 16.5 KB of header): × 1.25, next power of two.
    remedy_round_trip(
        "nginx_header_too_big",
        "nginx.conf",
        "         location / {",
        "+            proxy_buffer_size 32k;",
        Some(502),
    );
}

#[test]
fn upstream_refused_points_proxy_pass_at_the_app_on_ipv6_loopback_and_undo_restores_it() {
    // The app binds [::1]:PORT only; nginx dials 127.0.0.1:PORT.
    remedy_round_trip(
        "nginx_ipv6_only_app",
        "nginx.conf",
        "-            proxy_pass http://127.0.0.1:",
        "+            proxy_pass http://[::1]:",
        Some(502),
    );
}

#[test]
fn no_live_upstreams_after_refusals_explains_max_fails_and_offers_no_blind_edit() {
    // Both servers of the group are dead (nothing listens anywhere near): no edit is
    // offered, the remedy check says why and what nginx's marks do to the next request.
    let mut lab = harness::Lab::start("nginx_no_live_upstreams");
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let conf = lab.dir.join("nginx.conf");
    let original = std::fs::read(&conf).unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = triage502(
        &[
            "run",
            "--non-interactive",
            "--apply",
            "disruptive",
            "--format",
            "json",
            "--url",
            &lab.url,
        ],
        state.path(),
    );
    let step = run.report["path"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"] == "remedy_upstream_refused")
        .unwrap_or_else(|| panic!("the refusal's remedy was not looked for: {:#}", run.report));
    let summary = step["detail"]["reports"][0]["summary"].as_str().unwrap();
    eprintln!("{summary}");
    assert!(
        summary.contains("max_fails=1 fail_timeout=30s")
            && summary.contains("no live upstreams")
            && summary.contains("start or restart"),
        "{summary}"
    );
    assert!(
        run.report["applied_actions"]
            .as_array()
            .is_none_or(|a| a.iter().all(|x| x["node"] != "502/remedy_apply")),
        "{:#}",
        run.report
    );
    assert_eq!(std::fs::read(&conf).unwrap(), original);
}

#[test]
fn dns_failure_adds_the_system_resolver_nginx_lacks_and_undo_restores_it() {
    // proxy_pass http://$backend:PORT with no resolver; the site's resolv.conf names a
    // loopback stub (never the host's real resolver) that knows app.shop.internal.
    remedy_round_trip_with(
        "nginx_dns_no_resolver",
        "nginx.conf",
        "         server_name shop.lab.test;",
        "+        resolver 127.53.",
        Some(502),
        &["resolv_conf={{ dir }}/resolv.conf"],
    );
}

#[test]
fn dns_typo_corrects_the_name_to_the_one_close_resolvable_name_and_undo_restores_it() {
    // set $backend "app.shop.internl" with a resolver (a loopback stub) that knows
    // app.shop.internal, which the site's hosts file lists (the lab never touches /etc/hosts).
    remedy_round_trip_with(
        "nginx_dns_typo",
        "nginx.conf",
        "-        set $backend \"app.shop.internl\";",
        "+        set $backend app.shop.internal;",
        Some(502),
        &["hosts={{ dir }}/hosts"],
    );
}

#[test]
fn keepalive_race_cuts_the_upstream_keepalive_timeout_below_the_apps_and_undo_restores_it() {
    // upstream app { keepalive 4; } with the default 60 s keepalive_timeout; the app gives idle
    // connections up after 1 s. The probe bounds it (answered after 750 ms idle, given up after
    // 1250 ms): keepalive_timeout 500ms.
    remedy_round_trip(
        "nginx_keepalive_race",
        "nginx.conf",
        "     upstream app {",
        "+        keepalive_timeout 500ms;",
        Some(502),
    );
}

/// The 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1
}

fn edit(lab: &harness::RunningScenario, conf: &Path, change: String) -> ConfigEditAction {
    ConfigEditAction {
        file: conf.display().to_string(),
        syntax: None,
        changes: vec![change],
        allowed: vec![conf.display().to_string()],
        service: Box::new(nginx_service(lab, conf)),
        url: Some(lab.url.clone()),
        expect_sha256: None,
        reason: None,
    }
}

fn offer(e: &ConfigEditAction) -> PlannedAction {
    let spec = ActionSpec::ConfigEdit(Box::new(e.clone()));
    PlannedAction {
        node: "remedy_apply".into(),
        title: "Apply the remedy".into(),
        tier: Tier::Disruptive,
        argv: spec.argv(),
        description: spec.describe(),
        spec: Some(spec),
        undo: None,
        blocked: None,
    }
}

#[test]
fn bad_input_is_refused_or_rolled_back_and_the_file_restored_byte_for_byte() {
    let mut lab = harness::Lab::start("nginx_socket_missing");
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let conf = lab.dir.join("nginx.conf");
    let original = std::fs::read(&conf).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fcgi = line_of(&text, "    fastcgi_pass unix:");
    let live = format!("unix:{}/run/php8.2-fpm.sock", lab.dir.display());

    // 1. The file changed between the diff shown and the apply: refused, nothing written.
    let good = edit(&lab, &conf, format!("@{fcgi} fastcgi_pass {live}"));
    let plan = Plan::new(&offer(&good), "", &policy());
    assert!(plan.runnable(), "{}", plan.render());
    assert!(plan.detail.as_deref().unwrap().contains("php8.2-fpm.sock"));
    let pinned = plan.spec.clone().unwrap();
    let touched = format!("{text}# edited by someone else meanwhile\n");
    std::fs::write(&conf, &touched).unwrap();
    let x = rt.block_on(execute(&pinned, Tier::Disruptive, &policy()));
    assert!(!x.result.ok);
    assert!(
        x.result
            .summary
            .contains("changed since its diff was shown"),
        "{}",
        x.result.summary
    );
    assert!(matches!(x.input(), Input::ActionDone(r) if !r.ok));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), touched);
    assert!(
        backups_of(&conf).is_empty(),
        "a refused edit wrote a backup"
    );
    std::fs::write(&conf, &original).unwrap();

    // 2. The config test fails after the edit: restored byte for byte, no reload.
    let wc = line_of(&text, "    worker_connections ");
    let broken = edit(&lab, &conf, format!("@{wc} worker_connections many"));
    let x = rt.block_on(execute(
        &ActionSpec::ConfigEdit(Box::new(broken)),
        Tier::Disruptive,
        &policy(),
    ));
    eprintln!("{}\n{}", x.result.summary, x.result.output);
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("rolled back")
            && x.result.summary.contains("configuration test failed"),
        "{}",
        x.result.summary
    );
    assert!(x.undo.is_empty());
    assert_eq!(
        std::fs::read(&conf).unwrap(),
        original,
        "not restored byte for byte"
    );
    assert!(
        backups_of(&conf).is_empty(),
        "the backup of a restored file stays"
    );
    assert_eq!(statuses(&lab.url, 1), [Some(502)]);

    // 3. The verification does not recover: rolled back and reloaded.
    let nope = format!("unix:{}/run/nope.sock", lab.dir.display());
    let wrong = edit(&lab, &conf, format!("@{fcgi} fastcgi_pass {nope}"));
    let x = rt.block_on(execute(
        &ActionSpec::ConfigEdit(Box::new(wrong)),
        Tier::Disruptive,
        &policy(),
    ));
    eprintln!("{}\n{}", x.result.summary, x.result.output);
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("did not answer 3 times in a row")
            && x.result.summary.contains("restored byte for byte"),
        "{}",
        x.result.summary
    );
    assert!(x.undo.is_empty());
    assert_eq!(
        std::fs::read(&conf).unwrap(),
        original,
        "not restored byte for byte"
    );
    assert_eq!(statuses(&lab.url, 1), [Some(502)]);

    // 4. A file outside the running server's configuration is refused.
    let other = lab.dir.join("other.conf");
    std::fs::write(&other, "server {\n    listen 80;\n}\n").unwrap();
    let mut outside = edit(&lab, &other, "@2 listen 81".into());
    outside.allowed = vec![conf.display().to_string()];
    let x = rt.block_on(execute(
        &ActionSpec::ConfigEdit(Box::new(outside)),
        Tier::Disruptive,
        &policy(),
    ));
    assert!(
        x.result
            .summary
            .contains("not one of the running server's configuration files"),
        "{}",
        x.result.summary
    );
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "server {\n    listen 80;\n}\n"
    );
}
