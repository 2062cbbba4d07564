//! Service actions against real php-fpm, HAProxy and Apache on loopback
//! ports with configs in temp dirs: php-fpm reloads by `kill -USR2` (its
//! workers change), HAProxy is started and reloaded with `-sf` (a new
//! process takes over), and a broken config of each is refused before any
//! signal.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/process_tree.rs"]
mod process_tree;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use process_tree::{children, wait_for};
use triage502::action::service::alive;
use triage502::action::{
    ActionSpec, ExecPolicy, ServerKind, ServiceAction, ServiceOp, Tier, execute, verify,
};

fn need(tool: &str, package: &str) {
    assert!(
        which::which(tool).is_ok(),
        "{tool} is required for this test: apt-get install -y {package}"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
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

/// Stop a process this test started (directly or through the executor), by pid.
fn stop(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let t = Instant::now();
    while alive(pid) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            stop(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn php_fpm() -> String {
    let found = ["php-fpm8.2", "php-fpm"]
        .iter()
        .find(|b| which::which(b).is_ok());
    let Some(b) = found else {
        panic!("php-fpm is required for this test: apt-get install -y php-fpm");
    };
    (*b).to_owned()
}

fn fpm_config(dir: &Path, port: u16, pool_extra: &str) -> String {
    let d = dir.display();
    format!(
        "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/php-fpm.log\ndaemonize = no\n\n\
         [www]\nuser = www-data\ngroup = www-data\nlisten = 127.0.0.1:{port}\npm = static\npm.max_children = 2\n{pool_extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_fpm_reloads_by_usr2_and_its_workers_change() {
    let bin = php_fpm();
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("php-fpm.conf");
    std::fs::write(&conf, fpm_config(t.path(), free_port(), "")).unwrap();
    let child = Command::new(&bin)
        .arg("-F")
        .arg("-y")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let master = child.id();
    let _guard = Guard(Some(child));
    wait_for(|| children(master).len() == 2, "php-fpm workers");
    let before = children(master);
    let spec = ActionSpec::Service(Box::new(ServiceAction {
        unit: "php8.2-fpm".into(),
        op: ServiceOp::Reload,
        server: None,
        config: Some(conf.display().to_string()),
        prefix: None,
        pid: Some(master.to_string()),
        pid_file: None,
    }));
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert_eq!(x.result.argv, ["kill", "-USR2", &master.to_string()]);
    assert!(x.result.output.contains(" -t\n"), "{}", x.result.output);
    wait_for(
        || {
            let now = children(master);
            now.len() == 2 && now.is_disjoint(&before)
        },
        "new php-fpm workers after USR2",
    );
    assert!(alive(master));

    // A broken pool: refused, nothing signalled.
    std::fs::write(
        &conf,
        fpm_config(t.path(), free_port(), "pm.bogus_setting = 3\npm = nonsense"),
    )
    .unwrap();
    let now = children(master);
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("configuration test failed"),
        "{}",
        x.result.summary
    );
    assert!(!x.result.output.contains("USR2"), "{}", x.result.output);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(children(master), now);
}

fn haproxy_config(port: u16, extra: &str) -> String {
    format!(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  http-request return status 200 content-type text/plain string ok\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_is_started_then_reloaded_by_a_new_process() {
    need("haproxy", "haproxy");
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = t.path().join("haproxy.cfg");
    let pid_file = t.path().join("haproxy.pid");
    std::fs::write(&conf, haproxy_config(port, "")).unwrap();
    let svc = |op| ServiceAction {
        unit: "haproxy".into(),
        op,
        server: Some(ServerKind::Haproxy),
        config: Some(conf.display().to_string()),
        prefix: None,
        pid: None,
        pid_file: Some(pid_file.display().to_string()),
    };
    let read_pid =
        || -> Option<u32> { std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok() };
    let url = format!("http://127.0.0.1:{port}/");
    let x = execute(
        &ActionSpec::Service(Box::new(svc(ServiceOp::Restart))),
        Tier::Disruptive,
        &consent(),
    )
    .await;
    let first = read_pid();
    struct Stop(Option<u32>);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Some(p) = self.0 {
                stop(p);
            }
        }
    }
    let mut guard = Stop(first);
    assert!(x.result.ok, "{:#?}", x.result);
    let first = first.unwrap();
    assert!(
        verify(&url, 2, Duration::from_millis(200), vec![])
            .await
            .fixed()
    );

    let x = execute(
        &ActionSpec::Service(Box::new(svc(ServiceOp::Reload))),
        Tier::Disruptive,
        &consent(),
    )
    .await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(
        x.result.argv.contains(&"-sf".to_owned()),
        "{:?}",
        x.result.argv
    );
    let second = read_pid().unwrap();
    guard.0 = Some(second);
    assert_ne!(first, second);
    wait_for(|| !alive(first), "the old haproxy to finish");
    assert!(
        verify(&url, 2, Duration::from_millis(200), vec![])
            .await
            .fixed()
    );

    // A broken config is refused; the running one keeps serving.
    std::fs::write(&conf, haproxy_config(port, "  bogus_keyword here\n")).unwrap();
    let x = execute(
        &ActionSpec::Service(Box::new(svc(ServiceOp::Restart))),
        Tier::Disruptive,
        &consent(),
    )
    .await;
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("refusing to restart haproxy"),
        "{}",
        x.result.summary
    );
    assert!(
        x.result.output.contains("bogus_keyword"),
        "{}",
        x.result.output
    );
    assert!(alive(second));
    assert_eq!(read_pid(), Some(second));
}

#[tokio::test]
async fn apache_with_a_broken_config_is_refused() {
    need("apache2ctl", "apache2");
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("httpd.conf");
    std::fs::write(
        &conf,
        format!(
            "ServerRoot {}\nListen 127.0.0.1:{}\nBogusDirective on\n",
            t.path().display(),
            free_port()
        ),
    )
    .unwrap();
    let spec = ActionSpec::Service(Box::new(ServiceAction {
        unit: "apache2".into(),
        op: ServiceOp::Restart,
        server: None,
        config: Some(conf.display().to_string()),
        prefix: None,
        pid: None,
        pid_file: None,
    }));
    let x = execute(&spec, Tier::Disruptive, &consent()).await;
    assert!(!x.result.ok);
    assert!(
        x.result
            .summary
            .contains("configuration test failed, refusing to restart apache2"),
        "{}",
        x.result.summary
    );
    assert_eq!(x.result.argv.last().map(String::as_str), Some("-t"));
    assert!(
        !x.result.output.contains("-k restart"),
        "{}",
        x.result.output
    );
}
