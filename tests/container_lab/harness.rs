//! `ContainerLab`: one running container scenario (its network(s), containers, published port and,
//! for the host-nginx scenario, a host nginx), torn down in `Drop` by its run label.
//!
//! Invariants: every object is created with the labels of `docker.rs` plus
//! `triage502.lab.run=<tag>` (unique per scenario instance), published on 127.0.0.1 only, on a port
//! from the bare-host lab's allocator (free now, never twice in a process); a scenario's files live
//! in `/tmp/triage502-container-lab/<tag>/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use super::catalogue::{self, Scenario};
use super::docker::{self, LAB_LABEL, PREFIX};
use super::{client, ports};

/// Parent of every scenario dir.
pub const ROOT: &str = "/tmp/triage502-container-lab";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One running scenario.
pub struct ContainerLab {
    pub spec: &'static Scenario,
    /// `t502-<scenario>-<pid>-<n>`: the prefix of every container and network name.
    pub tag: String,
    pub dir: PathBuf,
    /// The port published (or, for the host nginx, listened on) at 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT/...`, the failing URL.
    pub url: String,
    /// Role (`web`, `app`, `php`, ...) → container name.
    pub containers: BTreeMap<String, String>,
    host_nginx: Option<Child>,
}

impl ContainerLab {
    /// Creates the scenario's dir and allocates its port; nothing runs yet.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        docker::engine_ready()?;
        docker::clean_orphans_once();
        let spec = catalogue::find(name);
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!(
            "{PREFIX}{}-{}-{n}",
            name.replace('_', "-"),
            std::process::id()
        );
        let dir = PathBuf::from(ROOT).join(&tag);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = ports::free_port()?;
        Ok(Self {
            spec,
            url: format!("http://127.0.0.1:{port}/"),
            tag,
            dir,
            port,
            containers: BTreeMap::new(),
            host_nginx: None,
        })
    }

    fn labels(&self) -> Vec<String> {
        vec![
            LAB_LABEL.to_string(),
            format!("triage502.lab.scenario={}", self.spec.name),
            format!("triage502.lab.pid={}", std::process::id()),
            format!("triage502.lab.run={}", self.tag),
        ]
    }

    fn label_args(&self) -> Vec<String> {
        self.labels()
            .into_iter()
            .flat_map(|l| ["--label".to_string(), l])
            .collect()
    }

    /// Creates network `<tag>-<suffix>`; returns its name.
    pub fn network(&self, suffix: &str) -> anyhow::Result<String> {
        let name = format!("{}-{suffix}", self.tag);
        let mut args = vec!["network".to_string(), "create".to_string()];
        args.extend(self.label_args());
        args.push(name.clone());
        docker::docker(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(name)
    }

    /// `docker run -d` container `<tag>-<role>` with the lab's labels, `extra` options and
    /// `image` + `cmd`; returns its name.
    pub fn run(
        &mut self,
        role: &str,
        extra: &[&str],
        image: &str,
        cmd: &[&str],
    ) -> anyhow::Result<String> {
        let name = format!("{}-{role}", self.tag);
        let mut args = vec![
            "run".to_string(),
            "-d".to_string(),
            "--name".to_string(),
            name.clone(),
        ];
        args.extend(self.label_args());
        args.extend(extra.iter().map(ToString::to_string));
        args.push(format!("triage502-lab/{image}:latest"));
        args.extend(cmd.iter().map(ToString::to_string));
        docker::docker(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.containers.insert(role.to_string(), name.clone());
        Ok(name)
    }

    /// The container name of `role`.
    pub fn container(&self, role: &str) -> &str {
        self.containers
            .get(role)
            .unwrap_or_else(|| panic!("{}: no container {role}", self.tag))
    }

    /// Writes `site` as the nginx container's `/etc/nginx/conf.d/default.conf` (bind-mounted
    /// read-only) and starts it on `networks[0]` (then connects the others), published at
    /// 127.0.0.1:PORT.
    pub fn nginx(&mut self, site: &str, networks: &[&str]) -> anyhow::Result<String> {
        let conf = self.dir.join("default.conf");
        std::fs::write(&conf, site)?;
        let mount = format!("{}:/etc/nginx/conf.d/default.conf:ro", conf.display());
        let publish = format!("127.0.0.1:{}:80", self.port);
        let name = self.run(
            "web",
            &[
                "--network",
                networks[0],
                "--network-alias",
                "web",
                "-p",
                &publish,
                "-v",
                &mount,
            ],
            "nginx",
            &[],
        )?;
        for net in &networks[1..] {
            docker::docker(&["network", "connect", net, &name])?;
        }
        self.wait_http()?;
        Ok(name)
    }

    /// Starts a host nginx (as the bare-host lab runs it) on 127.0.0.1:PORT with `site` inside its
    /// `http {}`; its error log is `dir/error.log`.
    pub fn host_nginx(&mut self, site: &str) -> anyhow::Result<()> {
        let dir = self.dir.display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser www-data;\n\
             pid {dir}/nginx.pid;\nerror_log {dir}/error.log notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {dir}/access.log;\n  client_body_temp_path {dir}/tmp;\n\
             proxy_temp_path {dir}/tmp;\n  fastcgi_temp_path {dir}/tmp;\n  uwsgi_temp_path {dir}/tmp;\n\
             scgi_temp_path {dir}/tmp;\n{site}\n}}\n"
        );
        std::fs::create_dir_all(self.dir.join("tmp"))?;
        std::fs::write(self.dir.join("nginx.conf"), conf)?;
        let child = Command::new("/usr/sbin/nginx")
            .args([
                "-p",
                &dir,
                "-c",
                &format!("{dir}/nginx.conf"),
                "-e",
                &format!("{dir}/error.log"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the host nginx (apt-get install nginx)")?;
        self.host_nginx = Some(child);
        self.wait_http()
    }

    /// Waits until 127.0.0.1:PORT answers HTTP at all (any status), up to 10 s.
    fn wait_http(&mut self) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/triage502-lab-ready", self.port);
        let mut last = String::new();
        let waited = docker::wait_until(Duration::from_secs(10), "the front to answer", || {
            let reply = client::get(&url);
            last = reply.describe();
            Ok(reply.status().is_some())
        });
        if let Some(child) = self.host_nginx.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("the host nginx exited ({status}): {}", self.log("host"));
            }
        }
        waited.with_context(|| {
            format!(
                "{}: last try: {last}; logs:\n{}",
                self.tag,
                self.dump_logs()
            )
        })
    }

    /// A scenario log: `host` is the host nginx's error log, any other name a role's `docker logs`.
    pub fn log(&self, name: &str) -> String {
        if name == "host" {
            return std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        }
        match self.containers.get(name) {
            Some(c) => docker::logs(c),
            None => String::new(),
        }
    }

    /// Every log, for failure messages.
    pub fn dump_logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<&str> = self.containers.keys().map(String::as_str).collect();
        if self.host_nginx.is_some() {
            names.push("host");
        }
        for name in names {
            let _ = writeln!(out, "--- {name}\n{}", self.log(name));
        }
        out
    }

    /// The first line of log `name` matching `pattern`, waiting up to 5 s for it.
    pub fn wait_for_line(&self, name: &str, pattern: &str) -> anyhow::Result<String> {
        let re = regex::Regex::new(pattern)?;
        let mut found = None;
        docker::wait_until(Duration::from_secs(5), pattern, || {
            found = self
                .log(name)
                .lines()
                .find(|l| re.is_match(l))
                .map(str::to_string);
            Ok(found.is_some())
        })
        .with_context(|| {
            format!(
                "{}: no line of {name} matches {pattern}:\n{}",
                self.tag,
                self.dump_logs()
            )
        })?;
        Ok(found.unwrap_or_default())
    }

    /// The status a client on 127.0.0.1 sees for the failing URL.
    pub fn get(&self) -> client::Reply {
        client::get(&self.url)
    }

    /// Asserts the catalogue's status and proof lines on what `reply` was; returns the lines.
    pub fn assert_expected(&self, reply: &client::Reply) -> Vec<String> {
        let status = reply.status();
        assert!(
            status == self.spec.status
                || status.is_some_and(|s| self.spec.also_status.contains(&s)),
            "{}: expected {:?} (or {:?}), got {}\n{}",
            self.tag,
            self.spec.status,
            self.spec.also_status,
            reply.describe(),
            self.dump_logs()
        );
        let mut lines = Vec::new();
        for proof in self.spec.proof {
            match self.wait_for_line(proof.log, proof.pattern) {
                Ok(line) => lines.push(line),
                Err(e) => panic!("{e:#}"),
            }
        }
        if let Ok(file) = std::env::var("TRIAGE502_LAB_RECORD") {
            use std::io::Write;
            let line = serde_json::json!({
                "scenario": self.spec.name, "seen": reply.describe(), "lines": lines,
            });
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
            {
                let _ = writeln!(f, "{line}");
            }
        }
        lines
    }

    /// `docker inspect -f FORMAT` of `role`'s container.
    pub fn inspect(&self, role: &str, format: &str) -> String {
        docker::inspect(self.container(role), format)
            .unwrap_or_else(|e| panic!("{}: {e:#}", self.tag))
    }

    /// `role`'s address on its (first) network.
    pub fn ip(&self, role: &str) -> String {
        self.inspect(
            role,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        )
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
    }
}

impl Drop for ContainerLab {
    fn drop(&mut self) {
        if let Some(mut child) = self.host_nginx.take() {
            // SIGTERM to the master (it stops its workers), bounded wait, then SIGKILL.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = docker::wait_until(Duration::from_secs(3), "the host nginx to stop", || {
                Ok(child.try_wait()?.is_some())
            });
            let _ = child.kill();
            let _ = child.wait();
        }
        docker::remove_labeled(&[LAB_LABEL, &format!("triage502.lab.run={}", self.tag)]);
        if std::env::var_os("TRIAGE502_LAB_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
