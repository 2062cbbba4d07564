//! The noise of a real host, put on the lab machine so every scenario is diagnosed on a host that
//! looks real (issue 21): firewall chains like ufw's and fail2ban's, and a real OOM kill of an
//! unrelated process in its own memory cgroup during the lab's window. Docker with its chains is
//! already there (the suite starts dockerd).
//!
//! Package events: the diagnosis is given only the URL, so it reads the host's own
//! `/var/log/dpkg.log`, which on a test machine already holds real unrelated events (the suite
//! installs the servers, iptables, libapr, Docker minutes before the lab runs, and the image's
//! upgrades). Nothing is appended to it: it is the host's record of what dpkg did, lines made up
//! for a test would mislead whoever reads it later and could not be removed safely while apt may
//! be writing. Synthetic unrelated upgrades are tested against a temp dpkg log and file lists
//! (`tests/checks_recent_changes.rs`, through the check's `package_logs` and `dpkg_info`).
//!
//! Invariants: every rule matches loopback only and changes no verdict (the chains are jumped to
//! only for `-i lo`/`-o lo`, appended after every other rule, where the built-in policy is
//! ACCEPT: the loopback ACCEPT they hold is what the policy would do anyway; fail2ban's REJECT is
//! for 192.0.2.10, a documentation address that never sends on `lo`); each rule carries the
//! comment [`TAG`], and a chain of that name without it (a real ufw or fail2ban) is left alone.
//! They are set up once per test process, idempotently, and left in place (harmless) for the
//! next process; [`remove_firewall`] deletes them. The OOM kill happens once per test process,
//! in a child memory cgroup made for it (removed afterwards), to a `perl` that allocates past
//! the cgroup's limit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::firewall::iptables;
use super::process;

/// The comment on every rule this module adds.
pub const TAG: &str = "triage502-lab-noise";
/// Memory limit of the noise cgroup, and what the noise process allocates past it.
const NOISE_LIMIT: u64 = 32 << 20;
const NOISE_ALLOC_MIB: u64 = 256;

/// What the noise did in this process, for tests that assert it shows up as context.
#[derive(Debug, Clone)]
pub struct Noise {
    /// The OOM-killed noise process: (pid, comm).
    pub oom_killed: (u32, String),
    /// Its memory cgroup as `/proc/PID/cgroup` and the kernel name it.
    pub oom_cgroup: String,
}

/// Puts the noise on the host, once per test process; returns what it did.
pub fn ensure() -> anyhow::Result<Noise> {
    static NOISE: OnceLock<Result<Noise, String>> = OnceLock::new();
    NOISE
        .get_or_init(|| {
            firewall().map_err(|e| format!("{e:#}"))?;
            unrelated_oom_kill().map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("lab noise: {e}"))
}

/// A noise chain: its name, the built-in chain that jumps to it, the interface match of the
/// jump, and the rules inside.
type Chain = (
    &'static str,
    &'static str,
    [&'static str; 2],
    Vec<Vec<&'static str>>,
);

/// The noise chains.
fn chains() -> Vec<Chain> {
    vec![
        (
            "ufw-before-input",
            "INPUT",
            ["-i", "lo"],
            vec![
                vec!["-i", "lo", "-j", "ACCEPT"],
                // ufw's default incoming policy, for what is not loopback (never reached: only
                // loopback jumps here).
                vec!["-j", "DROP"],
            ],
        ),
        (
            "ufw-before-output",
            "OUTPUT",
            ["-o", "lo"],
            vec![vec!["-o", "lo", "-j", "ACCEPT"], vec!["-j", "DROP"]],
        ),
        (
            "f2b-sshd",
            "INPUT",
            ["-i", "lo"],
            vec![
                vec![
                    "-s",
                    "192.0.2.10/32",
                    "-j",
                    "REJECT",
                    "--reject-with",
                    "icmp-port-unreachable",
                ],
                vec!["-j", "RETURN"],
            ],
        ),
    ]
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn tagged(mut v: Vec<String>) -> Vec<String> {
    let at = v.iter().position(|w| w == "-j").unwrap_or(v.len());
    let comment = owned(&["-m", "comment", "--comment", TAG]);
    v.splice(at..at, comment);
    v
}

fn chain_text(chain: &str) -> Option<String> {
    let out = Command::new("iptables")
        .args(["-w", "-S", chain])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// ufw- and fail2ban-like chains, jumped to from loopback only (idempotent).
pub fn firewall() -> anyhow::Result<()> {
    // One lab process at a time edits the noise chains.
    super::template::make_dir(Path::new(super::stale::LAB_ROOT))?;
    let _lock = super::firewall::Firewall::acquire()?;
    for (chain, builtin, iface, rules) in chains() {
        match chain_text(chain) {
            Some(text) if !text.contains(TAG) && text.lines().count() > 1 => {
                // A real ufw or fail2ban chain: the noise is already real here.
                continue;
            }
            Some(_) => iptables("-F", &[chain.to_owned()])?,
            None => iptables("-N", &[chain.to_owned()])?,
        }
        for r in &rules {
            let mut spec = vec![chain.to_owned()];
            spec.extend(tagged(owned(r)));
            iptables("-A", &spec)?;
        }
        let mut jump = vec![builtin.to_owned(), iface[0].to_owned(), iface[1].to_owned()];
        if chain == "f2b-sshd" {
            jump.extend(owned(&["-p", "tcp", "--dport", "22"]));
        }
        jump.extend(tagged(owned(&["-j", chain])));
        if iptables("-C", &jump).is_err() {
            iptables("-A", &jump)?;
        }
    }
    Ok(())
}

/// Deletes the noise rules and chains (those carrying [`TAG`]).
pub fn remove_firewall() {
    let Ok(out) = Command::new("iptables").args(["-w", "-S"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_owned())
            .collect();
        if words.first().map(String::as_str) == Some("-A") && words.iter().any(|w| w == TAG) {
            let _ = iptables("-D", &words[1..]);
        }
    }
    for (chain, ..) in chains() {
        if chain_text(chain).is_some_and(|t| t.contains(TAG) || t.lines().count() <= 1) {
            let _ = iptables("-F", &[chain.to_owned()]);
            let _ = iptables("-X", &[chain.to_owned()]);
        }
    }
}

/// A memory cgroup made by the lab, removed on drop (once its processes are gone).
#[derive(Debug)]
pub struct MemCgroup {
    /// The directory under `/sys/fs/cgroup`.
    pub dir: PathBuf,
    /// The path as `/proc/PID/cgroup` (and the kernel's OOM report) names it.
    pub name: String,
}

/// The cgroup v2 mount when it has the memory controller, else the v1 memory hierarchy.
fn hierarchy() -> anyhow::Result<(PathBuf, String, bool)> {
    let v2 = Path::new("/sys/fs/cgroup");
    if std::fs::read_to_string(v2.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
    {
        // The root is exempt from the no-internal-processes rule: a lab parent under it.
        let parent = v2.join("triage502-lab");
        if !parent.is_dir() {
            std::fs::create_dir(&parent).context("mkdir /sys/fs/cgroup/triage502-lab")?;
        }
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory")
            .context("enable memory under /sys/fs/cgroup/triage502-lab")?;
        return Ok((parent, "/triage502-lab".into(), true));
    }
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").is_file() {
        // Under this process's own memory cgroup.
        let own = std::fs::read_to_string("/proc/self/cgroup")?
            .lines()
            .find_map(|l| {
                let mut p = l.splitn(3, ':');
                let (_, c, path) = (p.next()?, p.next()?, p.next()?);
                c.split(',').any(|x| x == "memory").then(|| path.to_owned())
            })
            .context("no memory line in /proc/self/cgroup")?;
        let own = own.trim_end_matches('/').to_owned();
        return Ok((v1.join(own.trim_start_matches('/')), own, false));
    }
    bail!("no memory cgroup controller on this host (neither cgroup v2 nor v1)")
}

impl MemCgroup {
    /// A child memory cgroup `name` limited to `limit` bytes, without swap.
    pub fn create(name: &str, limit: u64) -> anyhow::Result<Self> {
        let (parent, parent_name, v2) = hierarchy()?;
        let dir = parent.join(name);
        if !dir.is_dir() {
            std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        }
        if v2 {
            std::fs::write(dir.join("memory.max"), limit.to_string())?;
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        } else {
            std::fs::write(dir.join("memory.limit_in_bytes"), limit.to_string())?;
            let _ = std::fs::write(dir.join("memory.swappiness"), "0");
        }
        Ok(Self {
            dir,
            name: format!("{parent_name}/{name}"),
        })
    }

    /// Moves a process into the cgroup.
    pub fn add(&self, pid: u32) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("move {pid} into {}", self.dir.display()))
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // Processes stopped a moment ago may still be exiting.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(process::POLL);
        }
    }
}

/// A `perl` in its own small memory cgroup allocates past the limit and is OOM-killed by the
/// kernel, for real.
pub fn unrelated_oom_kill() -> anyhow::Result<Noise> {
    let cg = MemCgroup::create(
        &format!("triage502-lab-noise-{}", std::process::id()),
        NOISE_LIMIT,
    )?;
    let script = format!(
        "<STDIN>; my $x = 'x' x ({NOISE_ALLOC_MIB} * 1024 * 1024); print length($x), qq(\\n);"
    );
    let mut child = Command::new("perl")
        .args(["-e", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run perl (the noise process)")?;
    let pid = child.id();
    let moved = cg.add(pid);
    if let Err(e) = moved {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    // Go: it allocates only once it is inside the cgroup.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"go\n");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the noise process {pid} was not OOM-killed within 30 s");
        }
        std::thread::sleep(process::POLL);
    };
    use std::os::unix::process::ExitStatusExt;
    if status.signal() != Some(9) {
        bail!("the noise process {pid} ended with {status}, not by the OOM killer's SIGKILL");
    }
    Ok(Noise {
        oom_killed: (pid, "perl".into()),
        oom_cgroup: cg.name.clone(),
    })
}
