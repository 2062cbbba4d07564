//! The incident lab harness: brings one scenario up on this machine and tears it down.
//!
//! `Lab::start(name)` renders the scenario's real config files from `tests/lab/scenarios/<name>/`
//! into a fresh dir under `/tmp/triage502-lab/`, starts real Debian servers (nginx, apache2,
//! php-fpm, haproxy: masters as root, workers as www-data or nobody) and toy upstreams
//! (`lab-upstream`) on loopback ports, and breaks what the scenario breaks. `provoke()` makes the
//! requests that trigger the incident. Dropping the `RunningScenario` stops every process it
//! started by pid, removes its iptables rules and its dir, also when a test panics.
//!
//! Invariants: loopback only; ports never collide between scenarios running side by side; a
//! missing server or a non-root run fails with the install command (`requirements`); each
//! server's command line names its config file, and every log path in a config is absolute, so a
//! tool that knows only the URL can find them from the running processes.

#![allow(
    dead_code,
    unused_imports,
    reason = "the harness is shared by several test targets; each uses part of it"
)]

pub mod catalogue;
pub mod client;
pub mod firewall;
pub mod load;
pub mod noise;
pub mod ports;
pub mod process;
pub mod requirements;
pub mod servers;
pub mod setup;
pub mod stale;
pub mod template;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

pub use catalogue::{Front, Proof, SCENARIOS, Scenario};
pub use client::Reply;

/// How long a proof line may take to reach its log (php-fpm's master and the syslog receiver
/// write asynchronously).
const PROOF_WAIT: Duration = Duration::from_secs(5);

/// Entry point: starts scenarios.
pub struct Lab;

impl Lab {
    /// Starts the scenario `name`; panics with the reason (and the install command when the
    /// machine lacks something). Whatever was started is cleaned up before the panic unwinds.
    pub fn start(name: &str) -> RunningScenario {
        match Self::try_start(name) {
            Ok(s) => s,
            Err(e) => panic!("lab scenario {name} did not start: {e:#}"),
        }
    }

    /// Starts the scenario `name`.
    pub fn try_start(name: &str) -> anyhow::Result<RunningScenario> {
        requirements::tools();
        let spec = catalogue::find(name).with_context(|| format!("no lab scenario {name}"))?;
        stale::clean_once();
        // Every scenario is diagnosed on a host that looks real (issue 21).
        noise::ensure()?;
        let mut running = RunningScenario::new(spec)?;
        setup::bring_up(&mut running)?;
        Ok(running)
    }
}

/// What a client saw when the scenario was provoked.
#[derive(Debug)]
pub struct Observed {
    /// The reply for the scenario's failing URL.
    pub reply: Reply,
    /// Replies for the paths that must stay healthy.
    pub controls: Vec<(String, Reply)>,
}

/// One scenario, up and running. Dropping it tears everything down.
pub struct RunningScenario {
    pub spec: &'static Scenario,
    /// The failing URL, the only input the diagnosis gets.
    pub url: String,
    /// `http://127.0.0.1:PORT`, the front server.
    pub base: String,
    /// The scenario's temp dir (configs, logs, sockets, pid files).
    pub dir: PathBuf,
    /// Template values: `dir`, ports, ….
    pub vars: BTreeMap<String, String>,
    /// Named log files: `error`, `access`, `php-fpm`, `app`, `haproxy`, `dns`.
    pub logs: BTreeMap<&'static str, PathBuf>,
    pub(crate) daemons: Vec<process::Daemon>,
    pub(crate) children: Vec<process::Child>,
    pub(crate) firewall: Option<firewall::Firewall>,
    pub(crate) load: Option<load::Load>,
    /// Memory cgroups the scenario made (removed after its processes are stopped).
    pub(crate) cgroups: Vec<noise::MemCgroup>,
}

impl RunningScenario {
    fn new(spec: &'static Scenario) -> anyhow::Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        template::make_dir(Path::new(stale::LAB_ROOT))?;
        let dir = Path::new(stale::LAB_ROOT).join(format!(
            "{}-{}-{}",
            spec.name,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let mut running = Self {
            spec,
            url: String::new(),
            base: String::new(),
            dir: dir.clone(),
            vars: BTreeMap::new(),
            logs: BTreeMap::new(),
            daemons: Vec::new(),
            children: Vec::new(),
            firewall: None,
            load: None,
            cgroups: Vec::new(),
        };
        for sub in ["", "logs", "run", "tmp"] {
            template::make_dir(&dir.join(sub))?;
        }
        let front = ports::free_port()?;
        running.base = format!("http://127.0.0.1:{front}");
        running.url = format!("{}{}", running.base, spec.path);
        let mut vars = BTreeMap::new();
        vars.insert("dir".to_owned(), dir.display().to_string());
        vars.insert("front_port".to_owned(), front.to_string());
        for name in ["app_port", "dead_port", "dead_port2", "dns_port"] {
            vars.insert(name.to_owned(), ports::free_port()?.to_string());
        }
        running.vars = vars;
        Ok(running)
    }

    /// A template value (`dir`, `front_port`, `app_port`, …); panics on an unknown name.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("no lab variable {name}"))
    }

    /// A port variable as a number.
    pub fn port(&self, name: &str) -> u16 {
        self.var(name)
            .parse()
            .unwrap_or_else(|_| panic!("lab variable {name} is not a port"))
    }

    /// Path of the named log (`error`, `access`, `php-fpm`, `app`, `haproxy`, `dns`).
    pub fn log_path(&self, name: &str) -> &Path {
        self.logs
            .get(name)
            .unwrap_or_else(|| panic!("scenario {} has no log named {name}", self.spec.name))
    }

    /// The named log's current content (lossy UTF-8; NUL bytes kept).
    pub fn log(&self, name: &str) -> String {
        std::fs::read(self.log_path(name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Every pid the scenario started and that still runs: masters, their workers, children.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for d in &self.daemons {
            pids.extend(process::session_members(d.pid));
        }
        pids.extend(self.children.iter().map(|c| c.child.id()));
        pids.retain(|p| process::is_alive(*p));
        pids
    }

    /// Each daemon the scenario started, by name, with its master pid.
    pub fn masters(&self) -> Vec<(&str, u32)> {
        self.daemons
            .iter()
            .map(|d| (d.name.as_str(), d.pid))
            .collect()
    }

    /// Makes the requests that trigger the incident and returns what the client saw.
    pub fn provoke(&mut self) -> Observed {
        setup::provoke(self)
    }

    /// Asserts that `seen` is the scenario's expected status and that every proof line is in its
    /// log (waiting up to 5 s for asynchronous writers). Panics with the logs on a mismatch.
    pub fn assert_expected(&self, seen: &Observed) {
        let spec = self.spec;
        assert_eq!(
            seen.reply.status(),
            spec.status,
            "{}: {} gave {}, expected {:?}\n{}",
            spec.name,
            self.url,
            seen.reply.describe(),
            spec.status,
            self.dump_logs()
        );
        if spec.status.is_none() {
            let port = self.port("front_port");
            assert!(
                !servers::is_listening(port),
                "{}: something listens on the front port {port}",
                spec.name
            );
        }
        for (path, reply) in &seen.controls {
            assert_eq!(
                reply.status(),
                Some(200),
                "{}: control page {path} should answer 200 but gave {}\n{}",
                spec.name,
                reply.describe(),
                self.dump_logs()
            );
        }
        let mut lines = Vec::new();
        for proof in spec.proof {
            match self.wait_for_line(proof) {
                Ok(line) => lines.push((proof.log, line)),
                Err(e) => panic!("{}: {e}\n{}", spec.name, self.dump_logs()),
            }
        }
        self.record(seen, &lines);
        if spec.causes.is_empty() {
            let error_log = self.log("error");
            let bad: Vec<&str> = error_log
                .lines()
                .filter(|l| {
                    ["[error]", "[crit]", "[alert]", "[emerg]"]
                        .iter()
                        .any(|lvl| l.contains(lvl))
                })
                .collect();
            assert!(
                bad.is_empty(),
                "{}: a healthy site logged errors:\n{}",
                spec.name,
                bad.join("\n")
            );
        }
    }

    /// With `TRIAGE502_LAB_RECORD=FILE`, appends what was seen (status and the proving log lines)
    /// as one JSON line to FILE: the source of the README's table of real runs.
    fn record(&self, seen: &Observed, lines: &[(&str, String)]) {
        let Some(file) = std::env::var_os("TRIAGE502_LAB_RECORD") else {
            return;
        };
        let entry = serde_json::json!({
            "scenario": self.spec.name,
            "url": self.url,
            "seen": seen.reply.describe(),
            "controls": seen.controls.iter().map(|(p, r)| format!("{p}: {}", r.describe())).collect::<Vec<_>>(),
            "lines": lines.iter().map(|(log, line)| serde_json::json!({"log": log, "line": line})).collect::<Vec<_>>(),
        });
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "{entry}")
            });
        if let Err(e) = appended {
            eprintln!("lab: cannot record to {}: {e}", file.to_string_lossy());
        }
    }

    /// The first line of `proof.log` matching `proof.pattern`, waiting up to 5 s.
    pub fn wait_for_line(&self, proof: &Proof) -> anyhow::Result<String> {
        let re = regex::Regex::new(proof.pattern)
            .with_context(|| format!("bad proof pattern {:?}", proof.pattern))?;
        let deadline = Instant::now() + PROOF_WAIT;
        loop {
            let text = self.log(proof.log);
            if let Some(line) = text.lines().find(|l| re.is_match(l)) {
                return Ok(line.to_owned());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "no line of the {} log ({}) matches {:?}",
                    proof.log,
                    self.log_path(proof.log).display(),
                    proof.pattern
                );
            }
            std::thread::sleep(process::POLL * 5);
        }
    }

    /// Every log of the scenario, for failure messages.
    pub fn dump_logs(&self) -> String {
        let mut out = String::new();
        for (name, path) in &self.logs {
            let _ = writeln!(out, "--- {name} log {} ---", path.display());
            let text = self.log(name);
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for RunningScenario {
    fn drop(&mut self) {
        // The load first, so no request races the shutdown.
        self.load.take();
        for d in self.daemons.drain(..).rev() {
            d.stop();
        }
        for mut c in self.children.drain(..).rev() {
            c.stop();
        }
        self.firewall.take();
        self.cgroups.clear();
        if std::env::var_os("TRIAGE502_LAB_KEEP").is_some() {
            eprintln!("lab: kept {} for inspection", self.dir.display());
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("lab: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// The longest a diagnosis may take (the slowest scenario is bounded by its 5 s timeouts).
pub const DIAGNOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the built `triage502 run --non-interactive --url URL --format json` (nothing else: the
/// diagnosis gets only the URL) and parses its stdout. Panics if the binary cannot run, exceeds
/// `DIAGNOSE_TIMEOUT`, or prints something that is not JSON; the exit code (0, 1 or 2 by
/// contract) is not judged here.
pub fn diagnose(url: &str) -> serde_json::Value {
    diagnose_session(url).0
}

/// [`diagnose`], also returning the id of the journalled session (from the
/// `triage502: session ID journalled in PATH` line on stderr), for `triage502 ticket ID`.
pub fn diagnose_session(url: &str) -> (serde_json::Value, Option<String>) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["run", "--non-interactive", "--url", url, "--format", "json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run the triage502 binary");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + DIAGNOSE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for triage502") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("triage502 run for {url} took longer than {DIAGNOSE_TIMEOUT:?}");
        }
        std::thread::sleep(process::POLL);
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let session = String::from_utf8_lossy(&stderr).lines().find_map(|l| {
        l.strip_prefix("triage502: session ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned)
    });
    let report = serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!(
            "triage502 run for {url} did not print JSON ({e}); exit {status}; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )
    });
    (report, session)
}

/// `triage502 ticket SESSION --format md`: the rendered ticket of a journalled session.
pub fn ticket(session: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["ticket", session, "--format", "md"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cannot run triage502 ticket");
    assert!(
        out.status.success(),
        "triage502 ticket {session} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
