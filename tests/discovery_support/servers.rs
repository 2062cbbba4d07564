//! Real servers for discovery tests: nginx, apache2, haproxy and php-fpm
//! from Debian's packages, each started in the foreground with its own
//! configuration in a temp dir, on loopback ports only, and stopped by PID
//! (SIGTERM to its process group, SIGKILL after 5s) when the guard drops —
//! also when the test panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str = "apt-get install -y nginx apache2 haproxy php8.2-fpm";

/// The path of a server binary, or a panic naming the install command.
pub fn require(tool: &str) -> PathBuf {
    which::which(tool)
        .or_else(|_| which::which(format!("/usr/sbin/{tool}")))
        .unwrap_or_else(|_| panic!("{tool} is not installed: run `{INSTALL}` (as root)"))
}

/// A free loopback TCP port (bind :0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port on [::1].
pub fn free_port_v6() -> u16 {
    TcpListener::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server, stopped by PID on drop.
pub struct Server {
    pub name: String,
    pub child: Child,
    pub stderr_file: PathBuf,
}

impl Server {
    /// Start `argv` with stdout/stderr to a file in `dir`.
    pub fn start(name: &str, dir: &Path, argv: &[&str]) -> Server {
        let stderr_file = dir.join(format!("{name}.stderr"));
        let err = std::fs::File::create(&stderr_file).unwrap();
        let out = err.try_clone().unwrap();
        // Its own process group (pgid = the master's pid), so stopping it
        // reaches every worker, even one forked while it shuts down.
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", argv[0]));
        Server {
            name: name.to_owned(),
            child,
            stderr_file,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_file) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Wait until `ready` holds, failing with the server's output if it
    /// exits or takes longer than 15s.
    pub fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) {
        let start = Instant::now();
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{} not ready ({what}) after 15s:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_tcp(&mut self, addr: &str) {
        let a = addr.to_owned();
        self.wait_until(&format!("listening on {addr}"), move || {
            TcpStream::connect(&a).is_ok()
        });
    }

    pub fn wait_unix(&mut self, path: &Path) {
        let p = path.to_path_buf();
        self.wait_until(&format!("listening on {}", path.display()), move || {
            UnixStream::connect(&p).is_ok()
        });
    }

    /// Wait until the master has at least one child (its workers).
    pub fn wait_workers(&mut self) {
        self.wait_children(1);
    }

    /// Wait until the master has `n` children, so none is still being
    /// forked when the guard stops it (a late fork would be orphaned).
    pub fn wait_children(&mut self, n: usize) {
        let pid = self.pid();
        self.wait_until(&format!("{n} workers started"), move || {
            triage502::sys::processes()
                .iter()
                .filter(|p| p.ppid == pid)
                .count()
                >= n
        });
    }
}

impl Drop for Server {
    /// SIGTERM to the server's process group (the master and its workers),
    /// wait up to 5s for the master, then SIGKILL the group.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Workers that outlived the master (or a master that would not stop).
        std::thread::sleep(Duration::from_millis(100));
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start nginx in the foreground with `dir/nginx.conf` (prefix `dir`, its
/// pid file in `dir`). The config must not set `pid` or `daemon` itself.
pub fn nginx(dir: &Path) -> Server {
    let bin = require("nginx");
    Server::start(
        "nginx",
        dir,
        &[
            bin.to_str().unwrap(),
            "-p",
            dir.to_str().unwrap(),
            "-c",
            dir.join("nginx.conf").to_str().unwrap(),
            "-g",
            &format!("pid {}/nginx.pid; daemon off;", dir.display()),
        ],
    )
}

/// Start apache2 in the foreground with `dir/apache2.conf` (ServerRoot `dir`).
pub fn apache2(dir: &Path) -> Server {
    let bin = require("apache2");
    Server::start(
        "apache2",
        dir,
        &[
            bin.to_str().unwrap(),
            "-d",
            dir.to_str().unwrap(),
            "-f",
            dir.join("apache2.conf").to_str().unwrap(),
            "-DFOREGROUND",
        ],
    )
}

/// Start haproxy in the foreground (`-db`) with `cfg`; its output goes to
/// `dir/haproxy.stderr`.
pub fn haproxy(dir: &Path, cfg: &Path) -> Server {
    let bin = require("haproxy");
    Server::start(
        "haproxy",
        dir,
        &[bin.to_str().unwrap(), "-db", "-f", cfg.to_str().unwrap()],
    )
}

/// `GET path` to 127.0.0.1:`port` with `Host: shop.localhost`; the status
/// code, 0 when there was no HTTP answer (15s read timeout).
pub fn http_status(port: u16, path: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: shop.localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Run the `triage502` binary with `args`: (stdout, stderr, exit code; -1
/// when killed by a signal).
pub fn triage502(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

/// Write a file, creating parent directories.
pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A TCP listener held by this test process (an "application").
pub fn app() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

/// A UDP socket held by this test process (a "syslog daemon").
pub fn udp() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = s.local_addr().unwrap().port();
    (s, p)
}

/// A temp dir whose path the server users (www-data, nobody) can traverse,
/// so workers can reach sockets and logs as they would in production.
pub fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("t502-disc-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Start php-fpm with one pool `www` listening on `listen`.
pub fn php_fpm(dir: &Path, listen: &str) -> Server {
    let bin = require("php-fpm8.2");
    let conf = dir.join("php-fpm.conf");
    write(
        &conf,
        &format!(
            "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/logs/php-fpm.log\ndaemonize = no\ninclude = {d}/pool.d/*.conf\n",
            d = dir.display()
        ),
    );
    write(
        &dir.join("pool.d/www.conf"),
        &format!(
            "; the pool behind the socket\n[www]\nuser = www-data\ngroup = www-data\nlisten = {listen}\nlisten.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\npm = static\npm.max_children = 2\nrequest_terminate_timeout = 30s\nslowlog = {d}/logs/php-slow.log\nrequest_slowlog_timeout = 5s\n",
            d = dir.display()
        ),
    );
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let mut s = Server::start(
        "php-fpm",
        dir,
        &[bin.to_str().unwrap(), "-F", "-y", conf.to_str().unwrap()],
    );
    if listen.starts_with('/') {
        s.wait_unix(Path::new(listen));
    } else {
        s.wait_tcp(listen);
    }
    s.wait_children(2); // pm = static, pm.max_children = 2
    s
}

/// Run `map URL --format json` through the library entry point.
pub fn map_json(url: &str, vars: &[(&str, &str)]) -> (serde_json::Value, u8) {
    let args = triage502::discovery::cli::MapArgs {
        url: url.to_owned(),
        format: triage502::discovery::cli::MapFormat::Json,
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let mut out = Vec::new();
    let code = triage502::discovery::cli::run(args, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let code = u8::from(code != std::process::ExitCode::SUCCESS);
    (v, code)
}

/// Run `map URL` (text).
pub fn map_text(url: &str) -> String {
    let args = triage502::discovery::cli::MapArgs {
        url: url.to_owned(),
        format: triage502::discovery::cli::MapFormat::Text,
        vars: Vec::new(),
    };
    let mut out = Vec::new();
    triage502::discovery::cli::run(args, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The line number (1-based) of the first line starting with `needle`
/// (after indentation).
pub fn line_of(path: &Path, needle: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .position(|l| l.trim_start().starts_with(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", path.display())) as u64
        + 1
}
