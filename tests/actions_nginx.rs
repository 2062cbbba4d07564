//! Service actions against a real nginx in a temp prefix on a loopback port:
//! a reload replaces the workers; a broken config is refused before anything
//! is signalled; a stopped nginx is started and verified; a config change is
//! rolled back (with a kept copy, a config test and a reload).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/process_tree.rs"]
mod process_tree;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use process_tree::{children, wait_for};
use triage502::action::{
    ActionSpec, ExecPolicy, Plan, RollbackAction, ServiceAction, ServiceOp, Tier, UndoList,
    execute, probe, verify,
};
use triage502::engine::PlannedAction;

fn nginx_bin() -> PathBuf {
    which::which("nginx")
        .unwrap_or_else(|_| panic!("nginx is required for this test: apt-get install -y nginx"))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An nginx prefix: config, pid file, logs and temp paths all inside `dir`.
struct Lab {
    dir: tempfile::TempDir,
    port: u16,
    /// The master when the test runs nginx in the foreground (`daemon off`).
    child: Option<Child>,
}

impl Lab {
    fn new() -> Lab {
        nginx_bin();
        Lab {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        }
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("nginx.pid")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn config(&self, daemon: bool, body: &str) -> String {
        let d = self.dir.path().display();
        format!(
            "daemon {};\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{};\n    {body}\n  }}\n}}\n",
            if daemon { "on" } else { "off" },
            self.port
        )
    }

    fn service(&self, op: ServiceOp) -> ServiceAction {
        ServiceAction {
            unit: "nginx".into(),
            op,
            server: None,
            config: Some(self.conf_path().display().to_string()),
            prefix: Some(self.dir.path().display().to_string()),
            pid: None,
            pid_file: Some(self.pid_file().display().to_string()),
        }
    }

    /// Run nginx in the foreground as our child.
    fn start_foreground(&mut self, body: &str) -> u32 {
        write(&self.conf_path(), &self.config(false, body));
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.conf_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.child = Some(child);
        wait_for(|| children(pid).len() == 2, "nginx workers");
        wait_for(|| status_of(&self.url()).is_some(), "nginx answering");
        pid
    }

    fn pid_from_file(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop only the nginx this test started, by its pid.
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .or_else(|| self.pid_from_file());
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            let t = Instant::now();
            while alive(pid) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn alive(pid: u32) -> bool {
    triage502::action::service::alive(pid)
}

/// A blocking GET, for waits outside the runtime.
fn status_of(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let u = url::Url::parse(url).unwrap();
    let addr = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .get(9..12)?
        .parse()
        .ok()
}

/// Consent given; the servers are driven by their own signals even on a
/// host where systemd runs (their units are not these test instances).
fn consent() -> ExecPolicy {
    ExecPolicy {
        interactive_consent: true,
        systemd: Some(false),
        ..ExecPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_replaces_the_workers_after_the_config_test() {
    let mut lab = Lab::new();
    let master = lab.start_foreground("location / { return 200 \"ok\\n\"; }");
    let before = children(master);
    let spec = ActionSpec::Service(Box::new(lab.service(ServiceOp::Reload)));
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(x.result.output.contains(" -t\n"), "{}", x.result.output);
    assert!(x.result.output.contains("-s reload"), "{}", x.result.output);
    assert!(x.result.summary.contains("configuration test passed"));
    wait_for(
        || {
            let now = children(master);
            now.len() == 2 && now.is_disjoint(&before)
        },
        "new worker pids after the reload",
    );
    assert!(alive(master), "the master survives a reload");
    assert_eq!(status_of(&lab.url()), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_is_refused_before_anything_is_signalled() {
    let mut lab = Lab::new();
    let master = lab.start_foreground("location / { return 200 \"ok\\n\"; }");
    let before = children(master);
    write(
        &lab.conf_path(),
        &lab.config(false, "location / { bogus_directive on; }"),
    );
    let svc = lab.service(ServiceOp::Restart);
    // The dialog shows the config test as the first command.
    let spec = ActionSpec::Service(Box::new(svc));
    let offer = PlannedAction {
        node: "restart".into(),
        title: "Restart nginx".into(),
        tier: Tier::Disruptive,
        argv: spec.argv(),
        description: spec.describe(),
        spec: Some(spec.clone()),
        undo: None,
        blocked: None,
    };
    let plan = Plan::new(&offer, "a restart clears hung workers", &consent());
    assert!(plan.commands[0].contains("-t"), "{:?}", plan.commands);
    assert!(plan.commands[1].contains("-s stop"), "{:?}", plan.commands);

    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(!x.result.ok);
    assert!(
        x.result
            .summary
            .contains("configuration test failed, refusing to restart nginx"),
        "{}",
        x.result.summary
    );
    assert!(
        x.result.summary.contains("bogus_directive"),
        "{}",
        x.result.summary
    );
    assert_eq!(x.result.argv.last().map(String::as_str), Some("-t"));
    assert!(!x.result.output.contains("-s stop"), "{}", x.result.output);
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(master));
    assert_eq!(children(master), before, "nothing was signalled");
    assert_eq!(status_of(&lab.url()), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_nginx_is_started_verified_and_restarted() {
    let lab = Lab::new();
    write(
        &lab.conf_path(),
        &lab.config(true, "location / { return 200 \"ok\\n\"; }"),
    );
    let before = probe(&lab.url()).await;
    assert!(before.status.is_none(), "{before:?}");
    let spec = ActionSpec::Service(Box::new(lab.service(ServiceOp::Restart)));
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    let v = verify(&lab.url(), 3, Duration::from_millis(200), vec![before]).await;
    assert!(v.fixed(), "{}", v.summary());
    assert_eq!(v.after.len(), 3);
    assert!(v.after.iter().all(|p| p.status == Some(200)));
    assert!(v.summary().contains("the URL answers again"));
    let first = lab.pid_from_file().unwrap();

    // Running now: a restart stops it, waits, and starts a new master.
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(x.result.output.contains("-s stop"), "{}", x.result.output);
    assert!(!alive(first));
    let second = lab.pid_from_file().unwrap();
    assert_ne!(first, second);
    let v = verify(&lab.url(), 2, Duration::from_millis(100), vec![]).await;
    assert!(v.fixed(), "{}", v.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_is_rolled_back_with_a_copy_a_test_and_a_reload() {
    let mut lab = Lab::new();
    lab.start_foreground("location / { return 502; }");
    assert_eq!(status_of(&lab.url()), Some(502));
    let backup = lab.dir.path().join("nginx.conf.bak");
    write(
        &backup,
        &lab.config(false, "location / { return 200 \"ok\\n\"; }"),
    );
    let file = lab.conf_path().display().to_string();
    assert_eq!(
        triage502::action::rollback::find_backups(&file),
        std::slice::from_ref(&backup)
    );
    let spec = ActionSpec::Rollback(RollbackAction {
        file: file.clone(),
        backup: backup.display().to_string(),
        service: Some(Box::new(lab.service(ServiceOp::Reload))),
    });
    let offer = PlannedAction {
        node: "rollback".into(),
        title: "Roll back".into(),
        tier: Tier::Disruptive,
        argv: spec.argv(),
        description: spec.describe(),
        spec: Some(spec.clone()),
        undo: None,
        blocked: None,
    };
    let plan = Plan::new(&offer, "", &consent());
    let diff = plan.detail.clone().unwrap();
    assert!(diff.contains("-    location / { return 502; }"), "{diff}");
    assert!(diff.contains("+    location / { return 200"), "{diff}");
    assert_eq!(
        plan.confirmation(),
        triage502::action::Confirmation::Type("nginx.conf".into())
    );

    let before = probe(&lab.url()).await;
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    let v = verify(&lab.url(), 3, Duration::from_millis(300), vec![before]).await;
    assert!(v.fixed(), "{}", v.summary());
    assert_eq!(v.before[0].status, Some(502));
    // The previous version is kept beside the file.
    let kept: Vec<_> = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("nginx.conf.triage502-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(
        std::fs::read_to_string(kept[0].path())
            .unwrap()
            .contains("return 502")
    );
    let mut undo = UndoList::new();
    undo.apply(&x);
    assert_eq!(undo.still_changed().len(), 1);
    assert!(undo.still_changed()[0].contains("is restored from"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_fails_the_config_test_is_put_back() {
    let mut lab = Lab::new();
    lab.start_foreground("location / { return 200 \"ok\\n\"; }");
    let current = std::fs::read_to_string(lab.conf_path()).unwrap();
    let backup = lab.dir.path().join("nginx.conf.orig");
    write(&backup, "events {\n  this is not nginx\n");
    let spec = ActionSpec::Rollback(RollbackAction {
        file: lab.conf_path().display().to_string(),
        backup: backup.display().to_string(),
        service: Some(Box::new(lab.service(ServiceOp::Reload))),
    });
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("configuration test failed"),
        "{}",
        x.result.summary
    );
    assert!(
        x.result.summary.contains("was put back"),
        "{}",
        x.result.summary
    );
    assert_eq!(std::fs::read_to_string(lab.conf_path()).unwrap(), current);
    assert!(x.undo.is_empty());
    assert_eq!(status_of(&lab.url()), Some(200));
}
