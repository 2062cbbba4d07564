//! The hop in the multi-host lab (`scripts/lab/hosts.sh`): a balancer in the root namespace
//! (nginx, an upstream group hashed on the request URI) in front of four web hosts, each nginx proxying to an app on
//! its own loopback (`lab-upstream`). On web2 the app is stopped, so web2's nginx answers 502
//! (`upstream_refused`) and the balancer passes it on for the URIs that hash to web2; web4 serves
//! but its sshd is stopped. On the balancer, `run --non-interactive --hops 2 --format json` must name web2
//! and its cause with `host` on the finding, show web1 and web3 healthy, report web4 as
//! unreachable over ssh, and leave no temporary directory on any host.
//!
//! Root only (network namespaces, sshd); skips with a message otherwise. The copied binary is the
//! static musl build: `TRIAGE502_HOP_BINARY`, or
//! `cargo build --target x86_64-unknown-linux-musl --bin triage502` (the test says so when it is
//! missing). Every step is bounded in time; the lab is removed afterwards, also on failure.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NET: u32 = 20;
const HOSTS: [&str; 4] = ["web1", "web2", "web3", "web4"];
/// The balancer is the root namespace (bridged traffic between namespaces meets the host's
/// FORWARD policy, e.g. Docker's DROP; root ↔ namespace does not).
const LB: &str = "10.250.20.1:18020";

/// The address of web host `i` (1-based, as hosts.sh numbers them).
fn addr(i: usize) -> String {
    format!("10.250.{NET}.{}", 10 + i)
}

fn ns(name: &str) -> String {
    format!("t5h{NET}-{name}")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skip(why: &str) -> bool {
    eprintln!("SKIPPED hops_lab: {why}");
    true
}

fn missing_requirement() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").map_or(1, |m| m.uid()) != 0 {
        return Some("needs root (network namespaces, sshd)".into());
    }
    for bin in [
        "/usr/sbin/sshd",
        "/usr/bin/ssh",
        "/usr/sbin/nginx",
        "/usr/sbin/ip",
        "/usr/bin/ssh-keygen",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is missing (apt-get install openssh-server nginx iproute2)"
            ));
        }
    }
    None
}

fn hop_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRIAGE502_HOP_BINARY") {
        return Some(PathBuf::from(p));
    }
    let p = root().join("target/x86_64-unknown-linux-musl/debug/triage502");
    p.is_file().then_some(p)
}

/// The lab: removed on drop (servers by pid, then the namespaces and the bridge).
struct Lab {
    state: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn hosts_sh(args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(root().join("scripts/lab/hosts.sh"))
            .args(args)
            .output()
            .expect("hosts.sh")
    }

    fn spawn_in(&mut self, host: &str, argv: &[&str]) -> u32 {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns(host)]).args(argv);
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in namespace");
        let pid = child.id();
        self.children.push(child);
        pid
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        let state = self.state.display().to_string();
        let _ = Lab::hosts_sh(&["down", &state]);
    }
}

fn nginx_conf(dir: &Path, listen: &str, upstream_block: &str, pass: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         {upstream_block}\n  server {{\n    listen {listen};\n    location / {{\n      proxy_pass {pass};\n    }}\n  }}\n}}\n"
    );
    let p = dir.join("nginx.conf");
    std::fs::write(&p, conf).unwrap();
    p
}

/// GET `path` from `hostport`; the status code (0 when there is no answer).
fn get(hostport: &str, path: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect_timeout(&hostport.parse().unwrap(), Duration::from_secs(2))
    else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: shop.lab\r\nConnection: close\r\n\r\n"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hop_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/tmp")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("triage502-hop."))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn hop_names_the_broken_web_host() {
    if let Some(why) = missing_requirement() {
        skip(&why);
        return;
    }
    let Some(bin) = hop_binary() else {
        skip(
            "no static build to copy: set TRIAGE502_HOP_BINARY or run \
             `cargo build --target x86_64-unknown-linux-musl --bin triage502`",
        );
        return;
    };
    let state = PathBuf::from(format!("/tmp/triage502-hops-lab-{NET}"));
    let mut lab = Lab {
        state: state.clone(),
        children: Vec::new(),
    };
    // A previous run that was killed leaves its lab behind: remove it first.
    let s = state.display().to_string();
    let _ = Lab::hosts_sh(&["down", &s]);
    let _ = std::fs::remove_dir_all(&state);
    let mut up = vec!["up", &s];
    let net = NET.to_string();
    up.push(&net);
    up.extend(HOSTS);
    let out = Lab::hosts_sh(&up);
    assert!(
        out.status.success(),
        "hosts.sh up: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let upstream_bin = env!("CARGO_BIN_EXE_lab-upstream");
    for (i, h) in HOSTS.iter().enumerate().map(|(i, h)| (i + 1, h)) {
        if *h != "web2" {
            lab.spawn_in(
                h,
                &[
                    upstream_bin,
                    "http",
                    "--listen",
                    "127.0.0.1:9000",
                    "--behaviour",
                    "healthy",
                ],
            );
            let ready = lab.children.last_mut().unwrap().stdout.take().unwrap();
            let mut line = String::new();
            BufReader::new(ready).read_line(&mut line).unwrap();
            assert!(line.starts_with("ready"), "lab-upstream on {h}: {line}");
        }
        let conf = nginx_conf(
            &state.join(h).join("nginx"),
            &format!("{}:80", addr(i)),
            "",
            "http://127.0.0.1:9000",
        );
        lab.spawn_in(
            h,
            &[
                "/usr/sbin/nginx",
                "-e",
                &state.join(h).join("nginx/stderr.log").display().to_string(),
                "-c",
                &conf.display().to_string(),
            ],
        );
    }
    let group = format!(
        "  upstream app {{\n    hash $request_uri;\n{}  }}\n",
        (1..=HOSTS.len()).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "    server {}:80;", addr(i));
            s
        })
    );
    let lb_conf = nginx_conf(&state.join("lb/nginx"), LB, &group, "http://app");
    let balancer = Command::new("/usr/sbin/nginx")
        .arg("-e")
        .arg(state.join("lb/nginx/stderr.log"))
        .arg("-c")
        .arg(&lb_conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(balancer);
    let web = |i: usize| format!("{}:80", addr(i));
    wait_for("the balancer", Duration::from_secs(10), || {
        get(LB, "/") != 0
    });
    for i in 1..=HOSTS.len() {
        wait_for(
            &format!("nginx on {}", addr(i)),
            Duration::from_secs(10),
            || get(&web(i), "/") != 0,
        );
    }
    assert_eq!(
        get(&web(2), "/x"),
        502,
        "web2's nginx answers 502 (its app is stopped)"
    );
    assert_eq!(get(&web(1), "/x"), 200, "web1 is healthy");
    let out = Lab::hosts_sh(&["sshd-stop", &s, "web4"]);
    assert!(out.status.success());

    // A URI the balancer sends to web2 (and one it does not, as a control).
    let paths: Vec<String> = (0..64).map(|n| format!("/shop/item/{n}")).collect();
    let failing = paths
        .iter()
        .find(|p| get(LB, p) == 502)
        .expect("a URI that hashes to web2");
    assert!(
        paths.iter().any(|p| get(LB, p) == 200),
        "other URIs are served"
    );
    let url = format!("http://{LB}{failing}");

    let before = hop_dirs();
    let xdg = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args([
            "run",
            "--non-interactive",
            "--hops",
            "2",
            "--format",
            "json",
            "--since",
            "10m",
        ])
        .arg("--ssh-config")
        .arg(state.join("ssh_config"))
        .arg("--hop-binary")
        .arg(&bin)
        .args(["--url", &url])
        .env("XDG_STATE_HOME", xdg.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut b = String::new();
        let _ = so.read_to_string(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = String::new();
        let _ = se.read_to_string(&mut b);
        b
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(240) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the run with --hops 2 took over 240 s: {}",
                err_t.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    eprintln!(
        "--- stderr of the run ({} ms)\n{stderr}",
        t0.elapsed().as_millis()
    );
    assert_eq!(status.code(), Some(1), "a problem was found: {stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    // Every finding says where it was established; web2's cause is among them.
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["host"].is_string()),
        "{findings:#?}"
    );
    let web2 = addr(2);
    let on_web2: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["host"] == web2.as_str())
        .collect();
    assert!(
        on_web2.iter().any(|f| f["cause"] == "upstream_refused"),
        "web2's refused app is named with host {web2}: {findings:#?}"
    );
    for healthy in [addr(1), addr(3)] {
        assert!(
            findings.iter().all(|f| f["host"] != healthy.as_str()),
            "healthy {healthy} is blamed: {findings:#?}"
        );
    }
    assert_eq!(report["status"], "problem");

    let hops = report["hops"].as_array().expect("a hops section");
    let hop = |a: &str| {
        hops.iter()
            .find(|h| h["address"] == a)
            .unwrap_or_else(|| panic!("no hop to {a}: {hops:#?}"))
    };
    for i in [1, 3] {
        let h = hop(&addr(i));
        assert_eq!(h["status"], "done", "{h:#?}");
        assert_eq!(h["remote_status"], "healthy", "{h:#?}");
        assert_eq!(h["ran"], "copied");
        assert_eq!(h["temp_dir_removed"], true);
    }
    let h2 = hop(&web2);
    assert_eq!(h2["status"], "done");
    assert_eq!(h2["remote_status"], "problem");
    assert_eq!(h2["ran"], "copied");
    assert_eq!(h2["depth"], 1);
    assert!(
        h2["first_finding"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refuse"),
        "{h2:#?}"
    );
    assert_eq!(h2["temp_dir_removed"], true);
    let dir = h2["temp_dir"].as_str().unwrap();
    assert!(
        !Path::new(dir).exists(),
        "web2's temp dir {dir} is gone (the filesystem is shared)"
    );
    let cmds: Vec<String> = h2["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        cmds.iter()
            .all(|c| c.contains("BatchMode=yes") && c.contains("ssh_config")),
        "{cmds:#?}"
    );
    assert!(
        cmds.iter().any(|c| c.contains("--read-only")),
        "the remote run is read-only"
    );

    let h4 = hop(&addr(4));
    assert_eq!(h4["status"], "unreachable");
    assert_eq!(h4["unreachable"], "refused");
    assert!(
        h4["summary"].as_str().unwrap().contains("ssh refused"),
        "{h4:#?}"
    );
    assert!(
        h4["stderr"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{h4:#?}"
    );
    assert!(
        report["unseen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["what"].as_str().unwrap().contains(&addr(4))),
        "the unreachable host bounds what the report can say"
    );
    assert_eq!(hops.len(), 4, "one hop per web host: {hops:#?}");

    // Nothing is left on any host: no temp dir, and the remote runs wrote no journal.
    assert_eq!(hop_dirs(), before, "a hop temp dir was left behind");
    let journals: Vec<_> = std::fs::read_dir(xdg.path().join("triage502/sessions"))
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert_eq!(
        journals.len(),
        1,
        "only the balancer's own session is journalled"
    );
    // The progress of the remote runs was streamed.
    assert!(
        stderr.contains(&format!("triage502: hop {web2}: progress:")),
        "{stderr}"
    );
}
