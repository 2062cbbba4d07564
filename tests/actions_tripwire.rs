//! The tripwire: `run --non-interactive`, `--read-only` and `--max-tier`
//! must never execute an action. Every program an action could call
//! (`systemctl`, `nginx`, `kill`, `rm`, `wp`, `mv`, ...) is replaced on `PATH`
//! by a script that appends its argv to a log; the tests assert the log stays
//! empty and the files stay as they were. Template values full of shell
//! metacharacters must reach the argv unchanged and never be interpreted.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use triage502::action::{
    ActionSpec, ClearCacheAction, CommandAction, ConfigEditAction, ContainerRestartAction,
    ExecPolicy, IsolatePluginsAction, OwnershipAction, PluginAction, PluginOp, RollbackAction,
    ServiceAction, ServiceOp, Tier, execute,
};
use triage502::engine::{Effect, Engine, Input};
use triage502::playbook::library::Library;

const TRIPWIRES: &[&str] = &[
    "systemctl",
    "nginx",
    "kill",
    "rm",
    "wp",
    "mv",
    "cp",
    "find",
    "apachectl",
    "apache2ctl",
    "php-fpm",
    "php-fpm8.2",
    "haproxy",
    "record",
];

/// A hostile value: every shell metacharacter an injection would use.
fn evil(lab: &Path) -> String {
    format!(
        "; rm -rf / $(touch {p}/pwned1) `touch {p}/pwned2` | tee x && echo 'q' \"dq\" * ?\nsecond line; touch {p}/pwned3",
        p = lab.display()
    )
}

/// The file the `config_edit` action would change.
const EDIT_CONF: &str = "server {\n    listen 80;\n}\n";

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("calls.log");
        for name in TRIPWIRES {
            let p = bin.join(name);
            // Only shell builtins: PATH holds nothing but tripwires.
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\nprintf '%s\\0' \"${{0##*/}}\" \"$@\" >> '{}'\nprintf '\\001' >> '{}'\nexit 0\n",
                    log.display(),
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(cache.join("a/b")).unwrap();
        std::fs::write(cache.join("a/b/entry"), "cached").unwrap();
        // Owner-only with no write bit: what the ownership action would "fix".
        std::fs::set_permissions(cache.join("a"), std::fs::Permissions::from_mode(0o500)).unwrap();
        let plugins = dir.path().join("wp/wp-content/plugins");
        std::fs::create_dir_all(plugins.join("evil")).unwrap();
        std::fs::create_dir_all(plugins.join("good")).unwrap();
        std::fs::write(dir.path().join("site.conf"), "new\n").unwrap();
        std::fs::write(dir.path().join("site.conf.bak"), "old\n").unwrap();
        std::fs::write(dir.path().join("edit.conf"), EDIT_CONF).unwrap();
        // A fake container engine: every request on its socket is recorded as a call
        // (`docker-api METHOD PATH`) and answered 404, so nothing can ever be restarted.
        let engine =
            std::os::unix::net::UnixListener::bind(dir.path().join("docker.sock")).unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for conn in engine.incoming() {
                let Ok(mut conn) = conn else { break };
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let line = head.lines().next().unwrap_or("").to_owned();
                let mut words = line.split(' ');
                let mut rec = b"docker-api".to_vec();
                for w in [words.next().unwrap_or(""), words.next().unwrap_or("")] {
                    rec.push(0);
                    rec.extend_from_slice(w.as_bytes());
                }
                rec.push(0);
                rec.push(1);
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&log)
                    .and_then(|mut f| f.write_all(&rec));
                let body = br#"{"message":"No such container (tripwire engine)"}"#;
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                let _ = conn.write_all(body);
            }
        });
        Lab { dir }
    }

    /// `DOCKER_HOST` for the fake engine.
    fn docker_host(&self) -> String {
        format!("unix://{}", self.p("docker.sock").display())
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }

    fn bin(&self) -> PathBuf {
        self.p("bin")
    }

    /// Every recorded call: program name and arguments.
    fn calls(&self) -> Vec<Vec<String>> {
        let Ok(b) = std::fs::read(self.p("calls.log")) else {
            return Vec::new();
        };
        b.split(|c| *c == 1)
            .filter(|c| !c.is_empty())
            .map(|call| {
                call.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }

    /// Nothing was touched: files, plugin dirs, config, no injected files.
    fn assert_untouched(&self) {
        assert_eq!(
            self.calls(),
            Vec::<Vec<String>>::new(),
            "a tripwire was called"
        );
        assert!(self.p("cache/a/b/entry").is_file(), "cache entry deleted");
        assert_eq!(
            std::fs::metadata(self.p("cache/a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o500,
            "cache ownership or mode changed"
        );
        assert!(
            self.p("wp/wp-content/plugins/evil").is_dir(),
            "plugin renamed"
        );
        assert!(
            !self
                .p("wp/wp-content/plugins/evil.disabled-by-triage502")
                .exists()
        );
        assert_eq!(
            std::fs::read_to_string(self.p("site.conf")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_to_string(self.p("edit.conf")).unwrap(),
            EDIT_CONF,
            "config edited"
        );
        let backups = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".triage502-")
            })
            .count();
        assert_eq!(backups, 0, "a backup was written");
        for n in ["pwned1", "pwned2", "pwned3"] {
            assert!(!self.p(n).exists(), "{n}: a metacharacter was interpreted");
        }
    }

    fn playbook(&self) -> PathBuf {
        let path = self.p("tripwire.toml");
        std::fs::write(
            &path,
            r#"
id = "tripwire"
title = "Every action kind, one after the other"
version = "1.0.0"
description = "Offers one action of each kind; used by the tripwire test."
start = "svc"

[[var]]
name = "lab"
prompt = "lab directory"
type = "path"
required = true

[[var]]
name = "evil"
prompt = "a hostile value"
required = true

[[node]]
id = "svc"
title = "Restart nginx"
action = { tier = "disruptive", do = { service = { unit = "nginx", op = "restart", prefix = "{{ lab }}", config = "{{ lab }}/nginx.conf" } } }
next = "fpm"

[[node]]
id = "fpm"
title = "Reload php-fpm"
action = { tier = "disruptive", do = { service = { unit = "php8.2-fpm", op = "reload", pid = "1" } } }
next = "cache"

[[node]]
id = "cache"
title = "Clear the cache"
action = { tier = "destructive", do = { clear_cache = { path = "{{ lab }}/cache", allowed = ["{{ lab }}/cache"] } } }
next = "plugin"

[[node]]
id = "plugin"
title = "Disable a plugin"
action = { tier = "reversible", do = { plugin = { document_root = "{{ lab }}/wp", name = "evil", op = "disable" } } }
next = "isolate"

[[node]]
id = "isolate"
title = "Isolate plugins"
action = { tier = "reversible", do = { isolate_plugins = { document_root = "{{ lab }}/wp", url = "http://127.0.0.1:9/" } } }
next = "rollback"

[[node]]
id = "rollback"
title = "Roll back the config"
action = { tier = "disruptive", do = { rollback = { file = "{{ lab }}/site.conf", backup = "{{ lab }}/site.conf.bak" } } }
next = "own"

[[node]]
id = "own"
title = "Give the cache back to the worker user"
action = { tier = "disruptive", do = { ownership = { path = "{{ lab }}/cache", allowed = ["{{ lab }}/cache"], user = "nobody" } } }
next = "edit"

[[node]]
id = "edit"
title = "Edit the config"
action = { tier = "disruptive", do = { config_edit = { file = "{{ lab }}/edit.conf", changes = ["@2 listen 81"], allowed = ["{{ lab }}/edit.conf"], url = "http://127.0.0.1:9/", service = { unit = "nginx", config = "{{ lab }}/edit.conf" } } } }
next = "cmd"

[[node]]
id = "cmd"
title = "A team's own fix"
action = { tier = "reversible", do = { command = { argv = ["record", "{{ evil }}", "--name={{ evil }}"] } } }
next = "ctr"

[[node]]
id = "ctr"
title = "Restart the app's container"
action = { tier = "disruptive", do = { container_restart = { container = "t502-tripwire-app", url = "http://127.0.0.1:9/" } } }
next = "done"

[[node]]
id = "done"
title = "Done"
end = "resolved"
"#,
        )
        .unwrap();
        path
    }

    /// `triage502 run --non-interactive --format json` with only tripwires on PATH.
    fn run(&self, extra: &[&str]) -> serde_json::Value {
        let pb = self.playbook();
        let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
            .env_clear()
            .env("PATH", self.bin())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", "/nonexistent-triage502-test")
            .env("DOCKER_HOST", self.docker_host())
            .args(["run", "--non-interactive", "--format", "json", "--playbook"])
            .arg(&pb)
            .arg("--var")
            .arg(format!("lab={}", self.dir.path().display()))
            .arg("--var")
            .arg(format!("evil={}", evil(self.dir.path())))
            .args(extra)
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "exit {code:?}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn recommended(report: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    report["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["node"].as_str().unwrap().to_owned(),
                a["why_not_run"].as_str().unwrap().to_owned(),
                a["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn non_interactive_runs_nothing_and_lists_the_exact_commands() {
    let lab = Lab::new();
    let report = lab.run(&[]);
    let rec = recommended(&report);
    assert_eq!(rec.len(), 10, "{rec:#?}");
    for (node, why, _) in &rec {
        assert!(why.contains("non-interactive"), "{node}: {why}");
    }
    let bad = evil(lab.dir.path());
    let cmd = rec.iter().find(|r| r.0 == "tripwire/cmd").unwrap();
    assert_eq!(
        cmd.2,
        ["record".to_owned(), bad.clone(), format!("--name={bad}")]
    );
    lab.assert_untouched();
}

#[test]
fn read_only_runs_nothing_and_says_so() {
    let lab = Lab::new();
    let report = lab.run(&["--read-only"]);
    let rec = recommended(&report);
    assert_eq!(rec.len(), 10);
    for (node, why, _) in &rec {
        assert!(why.contains("read-only"), "{node}: {why}");
    }
    // The config edit is recommended with its diff, ready to apply by hand.
    let edit = report["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "tripwire/edit")
        .unwrap();
    let diff = edit["diff"].as_str().unwrap();
    assert!(
        diff.contains("-    listen 80;") && diff.contains("+    listen 81;"),
        "{diff}"
    );
    // The ownership change is recommended with its exact commands and each entry's change.
    let own = report["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "tripwire/own")
        .unwrap();
    assert_eq!(own["argv"][0], "chown", "{own:#}");
    let preview = own["diff"].as_str().unwrap();
    assert!(
        preview.contains("chown -R -h nobody:")
            && preview.contains("chmod -R u+rwX")
            && preview.contains(&format!("{}: ", lab.s("cache/a")))
            && preview.contains(" 0500 -> "),
        "{preview}"
    );
    lab.assert_untouched();
}

#[test]
fn apply_is_refused_by_read_only_and_capped_by_its_tier() {
    let lab = Lab::new();
    // --read-only wins over --apply: nothing runs.
    let report = lab.run(&["--read-only", "--apply", "destructive"]);
    assert_eq!(recommended(&report).len(), 10);
    assert!(report.get("applied_actions").is_none(), "{report:#}");
    lab.assert_untouched();
    // --apply reversible runs only reversible actions: never the edit.
    let report = lab.run(&["--apply", "reversible", "--max-tier", "reversible"]);
    let applied: Vec<&str> = report["applied_actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["node"].as_str()).collect())
        .unwrap_or_default();
    assert!(!applied.contains(&"edit"), "{applied:?}");
    assert!(!applied.contains(&"own"), "{applied:?}");
    assert!(!applied.contains(&"ctr"), "{applied:?}");
    assert_eq!(
        std::fs::read_to_string(lab.p("edit.conf")).unwrap(),
        EDIT_CONF
    );
    assert_eq!(
        std::fs::metadata(lab.p("cache/a"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o500,
        "the ownership change (disruptive) ran under --apply reversible"
    );
}

#[test]
fn max_tier_runs_nothing_and_names_the_cap() {
    let lab = Lab::new();
    let rec = recommended(&lab.run(&["--max-tier", "reversible"]));
    assert_eq!(rec.len(), 10);
    for (node, why, _) in &rec {
        let capped = ["svc", "fpm", "cache", "rollback", "own", "edit", "ctr"]
            .iter()
            .any(|n| node.ends_with(&format!("/{n}")));
        if capped {
            assert!(why.contains("--max-tier reversible"), "{node}: {why}");
        } else {
            assert!(why.contains("non-interactive"), "{node}: {why}");
        }
    }
    lab.assert_untouched();
}

#[test]
fn a_bad_max_tier_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args([
            "run",
            "--non-interactive",
            "--max-tier",
            "everything",
            "http://127.0.0.1:9/",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tier"));
}

fn every_spec(lab: &Lab) -> Vec<(ActionSpec, Tier)> {
    vec![
        (
            ActionSpec::Service(Box::new(ServiceAction {
                unit: "nginx".into(),
                op: ServiceOp::Restart,
                server: None,
                config: Some(lab.s("nginx.conf")),
                prefix: Some(lab.s("")),
                pid: None,
                pid_file: None,
            })),
            Tier::Disruptive,
        ),
        (
            ActionSpec::ClearCache(ClearCacheAction {
                path: lab.s("cache"),
                allowed: vec![lab.s("cache")],
                worker_user: None,
            }),
            Tier::Destructive,
        ),
        (
            ActionSpec::Plugin(PluginAction {
                document_root: lab.s("wp"),
                name: "evil".into(),
                op: PluginOp::Disable,
            }),
            Tier::Reversible,
        ),
        (
            ActionSpec::IsolatePlugins(IsolatePluginsAction {
                document_root: lab.s("wp"),
                url: "http://127.0.0.1:9/".into(),
                suspects: vec![],
            }),
            Tier::Reversible,
        ),
        (
            ActionSpec::Rollback(RollbackAction {
                file: lab.s("site.conf"),
                backup: lab.s("site.conf.bak"),
                service: None,
            }),
            Tier::Disruptive,
        ),
        (
            ActionSpec::ConfigEdit(Box::new(ConfigEditAction {
                file: lab.s("edit.conf"),
                syntax: None,
                changes: vec!["@2 listen 81".into()],
                allowed: vec![lab.s("edit.conf")],
                service: Box::new(ServiceAction {
                    unit: "nginx".into(),
                    op: ServiceOp::Reload,
                    server: None,
                    config: Some(lab.s("edit.conf")),
                    prefix: None,
                    pid: None,
                    pid_file: None,
                }),
                url: None,
                expect_sha256: None,
                reason: None,
            })),
            Tier::Reversible,
        ),
        (
            ActionSpec::Ownership(OwnershipAction {
                path: lab.s("cache"),
                allowed: vec![lab.s("cache")],
                user: "nobody".into(),
                group: None,
                restore: Vec::new(),
                url: None,
            }),
            Tier::Reversible,
        ),
        (
            ActionSpec::Command(CommandAction {
                argv: vec!["rm".into(), "-rf".into(), lab.s("cache")],
                timeout: None,
            }),
            Tier::Destructive,
        ),
        // Declared reversible: a container restart is still disruptive by its kind.
        (
            ActionSpec::ContainerRestart(ContainerRestartAction {
                container: "t502-tripwire-no-such-container".into(),
                id: None,
                stop_timeout: None,
                url: None,
            }),
            Tier::Reversible,
        ),
    ]
}

/// The container restart, shown before consent: the exact API call on the engine's socket
/// and the operator's `docker restart NAME`, no undo; `--read-only` lists it without a single
/// request to the engine. The positive control: with `--apply disruptive` the (fake) engine
/// is asked, first about the container (404 here, so nothing is restarted).
#[test]
fn the_container_restart_is_listed_with_its_api_call_and_reaches_the_engine_only_when_applied() {
    let lab = Lab::new();
    let report = lab.run(&["--read-only"]);
    let ctr = report["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "tripwire/ctr")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(
        ctr["argv"],
        serde_json::json!(["docker", "restart", "t502-tripwire-app"])
    );
    assert_eq!(ctr["tier"], "disruptive");
    assert!(
        ctr["why_not_run"].as_str().unwrap().contains("read-only"),
        "{ctr:#}"
    );
    lab.assert_untouched();

    let lab = Lab::new();
    let report = lab.run(&["--apply", "disruptive"]);
    let applied = report["applied_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "ctr")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(applied["ok"], false, "{applied:#}");
    assert!(
        applied["summary"]
            .as_str()
            .unwrap()
            .contains("cannot inspect container t502-tripwire-app"),
        "{applied:#}"
    );
    let api: Vec<Vec<String>> = lab
        .calls()
        .into_iter()
        .filter(|c| c[0] == "docker-api")
        .collect();
    assert_eq!(
        api,
        [vec![
            "docker-api".to_owned(),
            "GET".into(),
            "/containers/t502-tripwire-app/json".into()
        ]],
        "only the inspection, never the POST, for a container the engine does not know"
    );
}

#[tokio::test]
async fn the_executor_refuses_under_read_only_even_with_consent() {
    let lab = Lab::new();
    let policy = ExecPolicy {
        read_only: true,
        max_tier: None,
        interactive_consent: true,
        search_path: Some(lab.bin().into_os_string()),
        systemd: None,
    };
    for (spec, tier) in every_spec(&lab) {
        let x = execute(&spec, tier, &policy).await;
        assert!(
            x.refused.as_deref().unwrap().contains("read-only"),
            "{spec:?}"
        );
        assert!(!x.result.ok);
    }
    lab.assert_untouched();
}

#[tokio::test]
async fn the_executor_refuses_above_max_tier_and_without_consent() {
    let lab = Lab::new();
    let capped = ExecPolicy {
        read_only: false,
        max_tier: Some(Tier::Reversible),
        interactive_consent: true,
        search_path: Some(lab.bin().into_os_string()),
        systemd: None,
    };
    for (spec, tier) in every_spec(&lab) {
        if spec.effective_tier(tier) > Tier::Reversible {
            let x = execute(&spec, tier, &capped).await;
            assert!(
                x.refused.as_deref().unwrap().contains("--max-tier"),
                "{spec:?}"
            );
        }
    }
    // A command declared reversible that is really a service restart is still
    // capped by its kind: a service is at least disruptive.
    let sneaky = ActionSpec::Service(Box::new(ServiceAction {
        unit: "nginx".into(),
        op: ServiceOp::Reload,
        server: None,
        config: None,
        prefix: None,
        pid: None,
        pid_file: None,
    }));
    assert!(
        execute(&sneaky, Tier::Reversible, &capped)
            .await
            .refused
            .is_some()
    );
    let no_consent = ExecPolicy {
        interactive_consent: false,
        max_tier: None,
        ..capped
    };
    for (spec, tier) in every_spec(&lab) {
        let x = execute(&spec, tier, &no_consent).await;
        assert!(x.refused.is_some(), "{spec:?}");
    }
    lab.assert_untouched();
}

#[tokio::test]
async fn metacharacters_reach_the_argv_literally_through_the_engine() {
    let lab = Lab::new();
    let pb = lab.playbook();
    let (lib, failures) = Library::standard(std::slice::from_ref(&pb)).unwrap();
    assert!(
        failures.iter().all(|f| !f.name.contains("tripwire")),
        "{failures:?}"
    );
    let bad = evil(lab.dir.path());
    let values = [
        ("lab".to_owned(), lab.dir.path().display().to_string()),
        ("evil".to_owned(), bad.clone()),
    ]
    .into_iter()
    .collect();
    let mut engine = Engine::start(Arc::new(lib), "tripwire", values).unwrap();
    // Decline everything up to the custom command.
    let offer = loop {
        match engine.effect().clone() {
            Effect::Offer(a) if a.node == "cmd" => break a,
            Effect::Offer(_) => {
                engine
                    .step(Input::ActionDeclined {
                        reason: "test".into(),
                    })
                    .unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        offer.argv,
        ["record".to_owned(), bad.clone(), format!("--name={bad}")]
    );
    // The positive control: with consent, the tripwire does record the call,
    // with every byte of the hostile value as one argument.
    let policy = ExecPolicy {
        interactive_consent: true,
        search_path: Some(lab.bin().into_os_string()),
        ..ExecPolicy::default()
    };
    let x = execute(offer.spec.as_ref().unwrap(), offer.tier, &policy).await;
    assert!(x.result.ok, "{:?}", x.result);
    assert_eq!(
        lab.calls(),
        [vec![
            "record".to_owned(),
            bad.clone(),
            format!("--name={bad}")
        ]]
    );
    for n in ["pwned1", "pwned2", "pwned3"] {
        assert!(!lab.p(n).exists(), "{n}: a metacharacter was interpreted");
    }
    engine.step(Input::ActionDone(x.result)).unwrap();
    // The container restart comes last: declined.
    assert!(
        matches!(engine.effect(), Effect::Offer(a) if a.node == "ctr"),
        "{:?}",
        engine.effect()
    );
    engine
        .step(Input::ActionDeclined {
            reason: "test".into(),
        })
        .unwrap();
    assert!(matches!(engine.effect(), Effect::Done(_)));
}

#[tokio::test]
async fn under_systemd_the_config_test_runs_before_systemctl() {
    let lab = Lab::new();
    let spec = ActionSpec::Service(Box::new(ServiceAction {
        unit: "nginx".into(),
        op: ServiceOp::Restart,
        server: None,
        config: None,
        prefix: None,
        pid: None,
        pid_file: None,
    }));
    let policy = ExecPolicy {
        interactive_consent: true,
        search_path: Some(lab.bin().into_os_string()),
        systemd: Some(true),
        ..ExecPolicy::default()
    };
    let x = execute(&spec, Tier::Disruptive, &policy).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert_eq!(
        lab.calls(),
        [
            vec!["nginx".to_owned(), "-t".into()],
            vec!["systemctl".to_owned(), "restart".into(), "nginx".into()],
        ]
    );

    // A failing config test: systemctl is never called.
    let failing = lab.p("failing-bin");
    std::fs::create_dir(&failing).unwrap();
    for name in ["nginx", "systemctl"] {
        let log = lab.p("calls.log");
        std::fs::write(
            failing.join(name),
            format!(
                "#!/bin/sh\nprintf '%s\\0' \"${{0##*/}}\" \"$@\" >> '{l}'\nprintf '\\001' >> '{l}'\necho 'nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/nginx.conf:3' >&2\nexit 1\n",
                l = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(failing.join(name), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    std::fs::remove_file(lab.p("calls.log")).unwrap();
    let policy = ExecPolicy {
        search_path: Some(failing.into_os_string()),
        ..policy
    };
    let x = execute(&spec, Tier::Disruptive, &policy).await;
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("unknown directive"),
        "{}",
        x.result.summary
    );
    assert_eq!(lab.calls(), [vec!["nginx".to_owned(), "-t".into()]]);
}
