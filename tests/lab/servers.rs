//! Starting each kind of server a scenario runs, the way its Debian package would.
//!
//! nginx (`nginx -p DIR/ -c DIR/nginx.conf`, daemon with a pid file), apache2
//! (`apache2 -d DIR -f DIR/apache2.conf -k start`), php-fpm (`php-fpmX.Y -y DIR/php-fpm.conf -p DIR`),
//! haproxy (`haproxy -W -D -f DIR/haproxy.cfg -p DIR/run/haproxy.pid`, logging to a syslog
//! receiver), toy upstreams (`lab-upstream`), a TLS upstream (`openssl s_server`) and a DNS stub.
//! Invariants: each start waits until the server really listens (read from /proc/net, no probe
//! request that would pollute its logs) and registers the process for teardown before it can fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::process::{self, START_TIMEOUT};
use super::requirements::tools;
use super::{RunningScenario, template};

impl RunningScenario {
    /// Renders `tests/lab/scenarios/<template>/` into the scenario dir.
    pub fn render(&mut self, template_name: &str) -> anyhow::Result<()> {
        template::render_tree(
            &template::scenarios_root().join(template_name),
            &self.dir,
            &self.vars,
        )
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn path_str(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Starts nginx with `DIR/nginx.conf` and waits for it to listen on the front port.
    pub fn start_nginx(&mut self) -> anyhow::Result<()> {
        self.start_nginx_on("front_port")?;
        self.logs.insert("error", self.path("logs/error.log"));
        self.logs.insert("access", self.path("logs/access.log"));
        Ok(())
    }

    /// Starts nginx as the origin behind a load balancer, listening on the `app_port`; its logs
    /// are `origin-error` and `origin-access`.
    pub fn start_origin_nginx(&mut self) -> anyhow::Result<()> {
        self.start_nginx_on("app_port")?;
        self.logs
            .insert("origin-error", self.path("logs/error.log"));
        self.logs
            .insert("origin-access", self.path("logs/access.log"));
        Ok(())
    }

    fn start_nginx_on(&mut self, port_var: &str) -> anyhow::Result<()> {
        let nginx = tools().nginx.display().to_string();
        let prefix = format!("{}/", self.dir.display());
        let conf = self.path_str("nginx.conf");
        let daemon = process::start_daemon(
            "nginx",
            &[&nginx, "-p", &prefix, "-c", &conf],
            &self.path("run/nginx.pid"),
            &self.dir,
        )?;
        self.daemons.push(daemon);
        wait_listening(self.port(port_var), "nginx")
    }

    /// `nginx -s reload` with the same `-p`/`-c`, then waits until the old workers are replaced.
    pub fn reload_nginx(&mut self) -> anyhow::Result<()> {
        let master = self
            .daemons
            .iter()
            .find(|d| d.name == "nginx")
            .context("no nginx running")?
            .pid;
        let before = process::children_of(master);
        let out = self.nginx_signal("reload")?;
        if !out.status.success() {
            bail!(
                "nginx -s reload failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let now = process::children_of(master);
            if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nginx did not replace its workers within {START_TIMEOUT:?} after reload");
            }
            std::thread::sleep(process::POLL);
        }
    }

    /// Sends `nginx -s reload` for a config that nginx will reject; returns once the master has
    /// logged its `[emerg]` (the old workers keep serving).
    pub fn reload_nginx_expecting_rejection(&mut self) -> anyhow::Result<()> {
        let out = self.nginx_signal("reload")?;
        ensure!(
            !out.status.success(),
            "nginx accepted a config it should reject"
        );
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.log("error").contains("[emerg]") {
            if Instant::now() > deadline {
                bail!("nginx logged no [emerg] for the broken config");
            }
            std::thread::sleep(process::POLL);
        }
        Ok(())
    }

    /// Runs `nginx -e DIR/logs/error.log -p DIR/ -c DIR/nginx.conf -s SIGNAL`. Debian builds nginx
    /// with `--error-log-path=stderr`, so without `-e` the signal process's own lines (`signal
    /// process started`, or the `[emerg]` of a config it cannot parse) would go to the caller's
    /// stderr (the journal under systemd); `-e` sends them to the site's error log, where an
    /// nginx.org build writes them.
    fn nginx_signal(&self, signal: &str) -> anyhow::Result<std::process::Output> {
        Ok(Command::new(&tools().nginx)
            .args(["-e", &self.path_str("logs/error.log")])
            .args(["-p", &format!("{}/", self.dir.display())])
            .args(["-c", &self.path_str("nginx.conf"), "-s", signal])
            .output()?)
    }

    /// Stops the front nginx (for a scenario where the front server is down).
    pub fn stop_nginx(&mut self) {
        if let Some(i) = self.daemons.iter().position(|d| d.name == "nginx") {
            let d = self.daemons.remove(i);
            d.stop();
        }
    }

    /// Starts apache2 with `DIR/apache2.conf` and waits for it to listen on the front port.
    pub fn start_apache(&mut self) -> anyhow::Result<()> {
        let apache = tools().apache2.display().to_string();
        let dir = self.dir.display().to_string();
        let conf = self.path_str("apache2.conf");
        let daemon = process::start_daemon(
            "apache2",
            &[&apache, "-d", &dir, "-f", &conf, "-k", "start"],
            &self.path("run/apache2.pid"),
            &self.dir,
        )?;
        self.daemons.push(daemon);
        self.logs.insert("error", self.path("logs/error.log"));
        self.logs.insert("access", self.path("logs/access.log"));
        wait_listening(self.port("front_port"), "apache2")
    }

    /// Starts php-fpm with `DIR/php-fpm.conf` and waits for its socket `DIR/run/php8.2-fpm.sock`.
    pub fn start_php_fpm(&mut self) -> anyhow::Result<()> {
        let fpm = tools().php_fpm.display().to_string();
        let conf = self.path_str("php-fpm.conf");
        let dir = self.dir.display().to_string();
        let daemon = process::start_daemon(
            "php-fpm",
            &[&fpm, "-y", &conf, "-p", &dir],
            &self.path("run/php-fpm.pid"),
            &self.dir,
        )?;
        self.daemons.push(daemon);
        self.logs
            .insert("php-fpm", self.path("logs/php8.2-fpm.log"));
        wait_path(&self.path("run/php8.2-fpm.sock"), "php-fpm socket")
    }

    /// Starts the syslog receiver, then haproxy with `DIR/haproxy.cfg`.
    pub fn start_haproxy(&mut self) -> anyhow::Result<()> {
        let upstream = env!("CARGO_BIN_EXE_lab-upstream");
        let socket = self.path_str("run/log.sock");
        let file = self.path_str("logs/haproxy.log");
        let syslog = process::start_child(
            "syslog",
            &[upstream, "syslog", "--socket", &socket, "--file", &file],
            &self.path("logs/syslog-receiver.log"),
            &self.dir,
            true,
        )?;
        self.children.push(syslog);
        self.logs.insert("haproxy", PathBuf::from(&file));
        let haproxy = tools().haproxy.display().to_string();
        let conf = self.path_str("haproxy.cfg");
        let pid_file = self.path_str("run/haproxy.pid");
        let daemon = process::start_daemon(
            "haproxy",
            &[&haproxy, "-W", "-D", "-f", &conf, "-p", &pid_file],
            Path::new(&pid_file),
            &self.dir,
        )?;
        self.daemons.push(daemon);
        wait_listening(self.port("front_port"), "haproxy")
    }

    /// Starts a toy HTTP app (`lab-upstream http`) on `listen` with `behaviour`; its log is `app`.
    pub fn start_app(
        &mut self,
        listen: &str,
        behaviour: &str,
        extra: &[&str],
    ) -> anyhow::Result<()> {
        let upstream = env!("CARGO_BIN_EXE_lab-upstream");
        let mut argv = vec![
            upstream,
            "http",
            "--listen",
            listen,
            "--behaviour",
            behaviour,
        ];
        argv.extend_from_slice(extra);
        let log = self.path("logs/app.log");
        let child = process::start_child("app", &argv, &log, &self.dir, true)?;
        self.children.push(child);
        self.logs.insert("app", log);
        Ok(())
    }

    /// Starts the DNS stub (`lab-upstream dns-nxdomain`) on 127.0.0.1:`dns_port`; its log is `dns`.
    pub fn start_dns_stub(&mut self) -> anyhow::Result<()> {
        let upstream = env!("CARGO_BIN_EXE_lab-upstream");
        let listen = format!("127.0.0.1:{}", self.var("dns_port"));
        let log = self.path("logs/dns.log");
        let child = process::start_child(
            "dns",
            &[upstream, "dns-nxdomain", "--listen", &listen],
            &log,
            &self.dir,
            true,
        )?;
        self.children.push(child);
        self.logs.insert("dns", log);
        Ok(())
    }

    /// Starts a resolving DNS stub (`lab-upstream dns-hosts`) on port 53 of a loopback address of
    /// its own (127.53.X.Y from `front_port`), answering `name` with 127.0.0.1, and writes
    /// `DIR/resolv.conf` naming it (a system resolver for this site only); its log is `dns`.
    pub fn start_dns_resolver(&mut self, name: &str) -> anyhow::Result<String> {
        let upstream = env!("CARGO_BIN_EXE_lab-upstream");
        let port: u16 = self.var("front_port").parse()?;
        let ip = format!("127.53.{}.{}", port >> 8, (port & 0xff).max(1));
        let listen = format!("{ip}:53");
        let host = format!("{name}=127.0.0.1");
        let log = self.path("logs/dns.log");
        let child = process::start_child(
            "dns",
            &[upstream, "dns-hosts", "--listen", &listen, "--host", &host],
            &log,
            &self.dir,
            true,
        )?;
        self.children.push(child);
        self.logs.insert("dns", log);
        std::fs::write(self.path("resolv.conf"), format!("nameserver {ip}\n"))?;
        Ok(ip)
    }

    /// Starts a resolving DNS stub (`lab-upstream dns-hosts`) on 127.0.0.1:`dns_port` answering
    /// `name` with 127.0.0.1 (NXDOMAIN for any other name); its log is `dns`.
    pub fn start_dns_hosts(&mut self, name: &str) -> anyhow::Result<()> {
        let upstream = env!("CARGO_BIN_EXE_lab-upstream");
        let listen = format!("127.0.0.1:{}", self.var("dns_port"));
        let host = format!("{name}=127.0.0.1");
        let log = self.path("logs/dns.log");
        let child = process::start_child(
            "dns",
            &[upstream, "dns-hosts", "--listen", &listen, "--host", &host],
            &log,
            &self.dir,
            true,
        )?;
        self.children.push(child);
        self.logs.insert("dns", log);
        Ok(())
    }

    /// Generates a self-signed upstream certificate (and an unrelated "trusted" CA) in `DIR/tls/`
    /// and starts `openssl s_server` with it on 127.0.0.1:`app_port`; its log is `app`.
    pub fn start_tls_app(&mut self) -> anyhow::Result<()> {
        let openssl = tools().openssl.display().to_string();
        template::make_dir(&self.path("tls"))?;
        for (name, subject) in [
            ("upstream", "/CN=app.shop.internal"),
            ("trusted-ca", "/CN=triage502 lab internal CA"),
        ] {
            let key = self.path_str(&format!("tls/{name}.key"));
            let crt = self.path_str(&format!("tls/{name}.crt"));
            let out = Command::new(&openssl)
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                ])
                .args([
                    "-keyout", &key, "-out", &crt, "-days", "2", "-subj", subject,
                ])
                .output()?;
            if !out.status.success() {
                bail!(
                    "openssl req failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let accept = format!("127.0.0.1:{}", self.var("app_port"));
        let log = self.path("logs/app.log");
        let child = process::start_child(
            "tls-app",
            &[
                &openssl,
                "s_server",
                "-accept",
                &accept,
                "-cert",
                &self.path_str("tls/upstream.crt"),
                "-key",
                &self.path_str("tls/upstream.key"),
                "-www",
            ],
            &log,
            &self.dir,
            false,
        )?;
        self.children.push(child);
        self.logs.insert("app", log);
        wait_listening(self.port("app_port"), "openssl s_server")
    }

    /// Drops loopback TCP to `port` with iptables (holding the lab's firewall lock).
    pub fn block_port(&mut self, port: u16) -> anyhow::Result<()> {
        let mut fw = super::firewall::Firewall::acquire()?;
        let tag = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("scenario dir name")?
            .to_owned();
        let added = fw.drop_loopback_port(port, &tag);
        self.firewall = Some(fw);
        added
    }
}

/// Waits until something listens on TCP `port` on a loopback address (from /proc/net/tcp{,6}).
pub fn wait_listening(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !is_listening(port) {
        if Instant::now() > deadline {
            bail!("{what} does not listen on port {port} after {START_TIMEOUT:?}");
        }
        std::thread::sleep(process::POLL);
    }
    Ok(())
}

/// Whether a TCP socket is in LISTEN state on `port` (any address).
pub fn is_listening(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&needle) && f[3] == "0A"
            })
        })
    })
}

/// Waits until `path` exists.
fn wait_path(path: &Path, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !path.exists() {
        if Instant::now() > deadline {
            bail!(
                "{what} {} did not appear within {START_TIMEOUT:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
