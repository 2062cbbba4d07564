//! The multi-host lab of the hop tests (`scripts/lab/hosts.sh`), shared by `hops_lab.rs` and
//! `hops_tmux.rs`: hosts as network namespaces with their own sshd, servers started inside them,
//! and the usual web farm: a balancer in the root namespace (nginx, an upstream group hashed on
//! the request URI) in front of four web hosts, each nginx proxying to an app on its own loopback
//! (`lab-upstream`). On web2 the app is stopped, so web2's nginx answers 502 (`upstream_refused`);
//! web4 serves but its sshd is stopped.
//!
//! Everything the lab starts is stopped on drop (servers by pid, then `hosts.sh down`), also
//! when a test fails.
#![allow(dead_code, reason = "each test file uses part of it")]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FARM: [&str; 4] = ["web1", "web2", "web3", "web4"];

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lab tests of one file run one at a time: the temp dirs and the processes they look for
/// are machine-wide (`/tmp/triage502-hop.*`).
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why the lab cannot run here (not root, a program missing), or None.
pub fn missing_requirement() -> Option<String> {
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
        "/usr/bin/unshare",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is missing (apt-get install openssh-server nginx iproute2 util-linux)"
            ));
        }
    }
    None
}

/// The static build a hop copies: `TRIAGE502_HOP_BINARY`, or the musl debug build.
pub fn hop_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRIAGE502_HOP_BINARY") {
        return Some(PathBuf::from(p));
    }
    let p = root().join("target/x86_64-unknown-linux-musl/debug/triage502");
    p.is_file().then_some(p)
}

pub const NO_HOP_BINARY: &str = "no static build to copy: set TRIAGE502_HOP_BINARY (e.g. to \
     target/x86_64-unknown-linux-musl/dist/triage502 of scripts/dist.sh) or run \
     `cargo build --target x86_64-unknown-linux-musl --bin triage502`";

/// The `/tmp/triage502-hop.*` directories that exist now.
pub fn hop_dirs() -> Vec<PathBuf> {
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

/// GET `path` from `hostport`; the status code (0 when there is no answer).
pub fn get(hostport: &str, path: &str) -> u16 {
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

pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lab: removed on drop (servers by pid, then the namespaces and the bridge).
pub struct Lab {
    pub net: u32,
    pub state: PathBuf,
    pub hosts: Vec<String>,
    children: Vec<Child>,
}

impl Lab {
    pub fn hosts_sh(args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(root().join("scripts/lab/hosts.sh"))
            .args(args)
            .output()
            .expect("hosts.sh")
    }

    /// `hosts.sh up` of `hosts` on NET (a lab a killed run left behind is removed first);
    /// `extra` are options given before the names (`--path NAME=DIR`, ...).
    pub fn up(net: u32, hosts: &[&str], extra: &[&str]) -> Lab {
        let state = PathBuf::from(format!("/tmp/triage502-hops-lab-{net}"));
        let s = state.display().to_string();
        let _ = Lab::hosts_sh(&["down", &s]);
        let _ = std::fs::remove_dir_all(&state);
        let lab = Lab {
            net,
            state,
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            children: Vec::new(),
        };
        let net_s = net.to_string();
        let mut args = vec!["up", &s, &net_s];
        args.extend(extra);
        args.extend(hosts);
        let out = Lab::hosts_sh(&args);
        assert!(
            out.status.success(),
            "hosts.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    pub fn state_str(&self) -> String {
        self.state.display().to_string()
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.state.join("ssh_config")
    }

    /// The address of `host` (10.250.NET.(10+i), i its 1-based place).
    pub fn addr(&self, host: &str) -> String {
        let i = self
            .hosts
            .iter()
            .position(|h| h == host)
            .unwrap_or_else(|| panic!("no host {host} in the lab"));
        format!("10.250.{}.{}", self.net, 11 + i)
    }

    pub fn ns(&self, host: &str) -> String {
        format!("t5h{}-{host}", self.net)
    }

    /// The root namespace's address on the lab's bridge.
    pub fn gateway(&self) -> String {
        format!("10.250.{}.1", self.net)
    }

    /// A direct link between two hosts (`hosts.sh link`).
    pub fn link(&self, a: &str, b: &str) {
        let out = Lab::hosts_sh(&["link", &self.state_str(), a, b]);
        assert!(
            out.status.success(),
            "link {a} {b}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn sshd_stop(&self, host: &str) {
        let out = Lab::hosts_sh(&["sshd-stop", &self.state_str(), host]);
        assert!(
            out.status.success(),
            "sshd-stop {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn_in(&mut self, host: &str, argv: &[&str]) -> &mut Child {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)]).args(argv);
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in namespace");
        self.children.push(child);
        self.children.last_mut().unwrap()
    }

    /// A healthy `lab-upstream` app on `host`, listening on `listen`; returns once it is ready.
    pub fn app(&mut self, host: &str, listen: &str) {
        let upstream_bin = env!("CARGO_BIN_EXE_lab-upstream");
        let child = self.spawn_in(
            host,
            &[
                upstream_bin,
                "http",
                "--listen",
                listen,
                "--behaviour",
                "healthy",
            ],
        );
        let ready = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(ready).read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "lab-upstream on {host}: {line}");
    }

    /// nginx on `host` (None: the root namespace) listening on `listen`, proxying `/` to `pass`
    /// with `upstream_block` in `http {}`; its files under STATE/HOST/nginx.
    pub fn nginx(&mut self, host: Option<&str>, listen: &str, upstream_block: &str, pass: &str) {
        let dir = self.state.join(host.unwrap_or("lb")).join("nginx");
        let conf = nginx_conf(&dir, listen, upstream_block, pass);
        let stderr = dir.join("stderr.log").display().to_string();
        let conf = conf.display().to_string();
        let argv = ["/usr/sbin/nginx", "-e", &stderr, "-c", &conf];
        if let Some(h) = host {
            self.spawn_in(h, &argv);
        } else {
            let child = Command::new(argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.children.push(child);
        }
        wait_for(
            &format!("nginx on {listen}"),
            Duration::from_secs(10),
            || get(listen, "/") != 0,
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        let _ = Lab::hosts_sh(&["down", &self.state_str()]);
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

/// `triage502 run --non-interactive --hops N --format json` on `url` with the lab's ssh config
/// and `bin` to copy, bounded; (exit code, the JSON report, stderr).
pub fn run_hops(
    lab: &Lab,
    bin: &Path,
    hops: u32,
    url: &str,
) -> (Option<i32>, serde_json::Value, String) {
    let xdg = tempfile::tempdir().unwrap();
    run_hops_in(lab, bin, hops, url, xdg.path())
}

/// [`run_hops`] with `xdg` as the run's `XDG_STATE_HOME` (where its journal goes).
pub fn run_hops_in(
    lab: &Lab,
    bin: &Path,
    hops: u32,
    url: &str,
    xdg: &Path,
) -> (Option<i32>, serde_json::Value, String) {
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args([
            "run",
            "--non-interactive",
            "--format",
            "json",
            "--since",
            "10m",
        ])
        .args(["--hops", &hops.to_string()])
        .arg("--ssh-config")
        .arg(lab.ssh_config())
        .arg("--hop-binary")
        .arg(bin)
        .args(["--url", url])
        .env("XDG_STATE_HOME", xdg)
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
        if t0.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the run with --hops {hops} took over 300 s: {}",
                err_t.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    eprintln!(
        "--- stderr of the run with --hops {hops} ({} ms)\n{stderr}",
        t0.elapsed().as_millis()
    );
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (status.code(), report, stderr)
}

/// The web farm on NET: web1..web4 behind a balancer at 10.250.NET.1:18000+NET in the root
/// namespace (bridged traffic between namespaces meets the host's FORWARD policy, e.g. Docker's
/// DROP; root ↔ namespace does not). web2's app is stopped, web4's sshd is stopped. Returns the
/// lab and a balancer URL that fails (its URI hashes to web2).
pub fn web_farm(net: u32) -> (Lab, String) {
    let mut lab = Lab::up(net, &FARM, &[]);
    for h in FARM {
        if h != "web2" {
            lab.app(h, "127.0.0.1:9000");
        }
        let listen = format!("{}:80", lab.addr(h));
        lab.nginx(Some(h), &listen, "", "http://127.0.0.1:9000");
    }
    let group = format!(
        "  upstream app {{\n    hash $request_uri;\n{}  }}\n",
        FARM.iter().fold(String::new(), |mut s, h| {
            let _ = writeln!(s, "    server {}:80;", lab.addr(h));
            s
        })
    );
    let lb = format!("{}:{}", lab.gateway(), 18000 + net);
    lab.nginx(None, &lb, &group, "http://app");
    let web = |h: &str| format!("{}:80", lab.addr(h));
    assert_eq!(
        get(&web("web2"), "/x"),
        502,
        "web2's nginx answers 502 (its app is stopped)"
    );
    assert_eq!(get(&web("web1"), "/x"), 200, "web1 is healthy");
    lab.sshd_stop("web4");

    // A URI the balancer sends to web2 (and one it does not, as a control).
    let paths: Vec<String> = (0..64).map(|n| format!("/shop/item/{n}")).collect();
    let failing = paths
        .iter()
        .find(|p| get(&lb, p) == 502)
        .expect("a URI that hashes to web2");
    assert!(
        paths.iter().any(|p| get(&lb, p) == 200),
        "other URIs are served"
    );
    let url = format!("http://{lb}{failing}");
    (lab, url)
}
