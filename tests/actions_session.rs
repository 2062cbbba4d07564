//! A whole session the way the TUI drives it, minus the terminal: a lab
//! incident (front nginx proxying to a stopped upstream nginx → 502), the
//! engine offers the restart, the plan is shown and confirmed by typing the
//! unit, the executor runs it, verify-after-fix records 502 → 200, the
//! engine is told, and the walk ends resolved with the fix in its trail.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/action_walk.rs"]
mod action_walk;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use triage502::action::service::alive;
use triage502::action::{Confirmation, ExecPolicy, UndoList, probe};
use triage502::check::CheckContext;
use triage502::engine::{Effect, Engine, Record};
use triage502::playbook::EndKind;
use triage502::playbook::library::Library;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn nginx_config(dir: &Path, daemon: bool, port: u16, location: &str) -> String {
    let d = dir.display();
    format!(
        "daemon {};\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ {location} }}\n  }}\n}}\n",
        if daemon { "on" } else { "off" },
    )
}

/// Stop what this test started, by pid.
struct Cleanup {
    front: Option<Child>,
    upstream_pid_file: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut pids: Vec<u32> = self.front.as_ref().map(Child::id).into_iter().collect();
        if let Some(p) = std::fs::read_to_string(&self.upstream_pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            pids.push(p);
        }
        for pid in pids {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            let t = Instant::now();
            while alive(pid) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(mut c) = self.front.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const PLAYBOOK: &str = r#"
id = "lab-restart"
title = "Lab: restart a stopped upstream"
version = "1.0.0"
description = "The front proxy answers 502 because its upstream is down."
start = "probe"

[[var]]
name = "url"
prompt = "Which URL fails?"
type = "url"
required = true

[[var]]
name = "upstream_prefix"
prompt = "The upstream nginx prefix"
type = "path"
required = true

[[node]]
id = "probe"
title = "Request the failing URL"
checks = [{ http = { url = "{{ url }}", timeout = "5s" } }]
on = { ok = "healthy", problem = "restart", inconclusive = "restart" }

[[node]]
id = "restart"
title = "Restart the upstream"
guidance = "The upstream refuses connections: start it again (after its config test)."
action = { tier = "disruptive", do = { service = { unit = "nginx", op = "restart", prefix = "{{ upstream_prefix }}", config = "{{ upstream_prefix }}/nginx.conf", pid_file = "{{ upstream_prefix }}/nginx.pid" } } }
on = { done = "verify", failed = "escalate", declined = "escalate" }

[[node]]
id = "verify"
title = "Request it again"
checks = [{ http = { url = "{{ url }}", timeout = "5s" } }]
on = { ok = "healthy", problem = "escalate", inconclusive = "escalate" }

[[node]]
id = "healthy"
title = "It answers"
end = "resolved"

[[node]]
id = "escalate"
title = "Hand over"
end = "escalate"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_the_stopped_upstream_and_verify_200() {
    assert!(
        which::which("nginx").is_ok(),
        "nginx is required for this test: apt-get install -y nginx"
    );
    let t = tempfile::tempdir().unwrap();
    let front_dir = t.path().join("front");
    let up_dir = t.path().join("upstream");
    std::fs::create_dir_all(&front_dir).unwrap();
    std::fs::create_dir_all(&up_dir).unwrap();
    let (front_port, up_port) = (free_port(), free_port());
    std::fs::write(
        front_dir.join("nginx.conf"),
        nginx_config(
            &front_dir,
            false,
            front_port,
            &format!("proxy_pass http://127.0.0.1:{up_port}; proxy_connect_timeout 2s;"),
        ),
    )
    .unwrap();
    std::fs::write(
        up_dir.join("nginx.conf"),
        nginx_config(&up_dir, true, up_port, "return 200 \"shop\\n\";"),
    )
    .unwrap();
    let front = Command::new("nginx")
        .arg("-p")
        .arg(&front_dir)
        .arg("-c")
        .arg(front_dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _cleanup = Cleanup {
        front: Some(front),
        upstream_pid_file: up_dir.join("nginx.pid"),
    };
    let url = format!("http://127.0.0.1:{front_port}/checkout");
    let t0 = Instant::now();
    while probe(&url).await.status != Some(502) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "front nginx never answered 502"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pb = t.path().join("lab.toml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let (lib, _) = Library::standard(std::slice::from_ref(&pb)).unwrap();
    let values = [
        ("url".to_owned(), url.clone()),
        ("upstream_prefix".to_owned(), up_dir.display().to_string()),
    ]
    .into_iter()
    .collect();
    let mut engine = Engine::start(Arc::new(lib), "lab-restart", values).unwrap();
    let mut checks_run = action_walk::Checks::new(CheckContext::last(Duration::from_secs(600)));
    let mut undo = UndoList::new();
    let mut verified = None;
    for _ in 0..20 {
        let input = match engine.effect().clone() {
            Effect::Done(c) => {
                assert_eq!(c.end, Some(EndKind::Resolved), "{c:?}");
                break;
            }
            Effect::RunChecks { checks, .. } => checks_run.run(checks).await,
            Effect::Offer(offer) => {
                // Drive the lab nginx by its signals even where systemd runs.
                let policy = ExecPolicy {
                    systemd: Some(false),
                    ..ExecPolicy::default()
                };
                let plan = action_walk::plan(&engine, &offer, &policy);
                assert!(plan.runnable(), "{}", plan.render());
                assert_eq!(plan.confirmation(), Confirmation::Type("nginx".into()));
                assert!(!plan.confirmation().accepts("y"));
                // The operator types the unit name.
                assert!(plan.confirmation().accepts("nginx"));
                let (x, v) = action_walk::execute_verified(&offer, &policy, &url, &mut undo).await;
                assert!(x.result.ok, "{:#?}", x.result);
                verified = Some(v);
                x.input()
            }
            other => panic!("unexpected {other:?}"),
        };
        engine.step(input).unwrap();
    }
    assert!(matches!(engine.effect(), Effect::Done(_)));
    let v = verified.unwrap();
    assert_eq!(v.before[0].status, Some(502));
    assert!(v.fixed(), "{}", v.summary());
    assert!(v.after.iter().all(|p| p.status == Some(200)));
    // The trail records the action with its argv and result.
    let action = engine
        .trail()
        .iter()
        .find_map(|s| match &s.record {
            Record::Action { result, argv, .. } => Some((argv.clone(), result.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(action.0[0], "nginx");
    assert!(
        action
            .1
            .unwrap()
            .summary
            .contains("configuration test passed")
    );
    assert!(undo.is_empty(), "a restart leaves nothing to undo");
}
