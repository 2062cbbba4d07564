//! Firewall rules a scenario adds (iptables, ufw-like chains, an nftables table), and their
//! guaranteed removal.
//!
//! Invariants: rules only ever match the loopback interface and one lab port; each carries the
//! comment `triage502-lab:<scenario dir name>` so a later run can find and delete rules left by a
//! killed test process; the ufw-like user chains are created only when absent (a host running ufw
//! fails the scenario instead of having its chains touched) and deleted once empty; the nftables
//! table `inet triage502_lab` belongs to the lab alone; one lab scenario at a time holds the
//! firewall (a lock directory created atomically, across threads and processes; a lock whose
//! owner process is gone is taken over); `Drop` deletes every rule, chain and table it added,
//! then releases the lock, also when the test panics.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::process;

/// The lock directory shared by all lab processes on this machine; `owner` inside holds the pid.
const LOCK_DIR: &str = "/tmp/triage502-lab/iptables.lock";
/// How long a scenario waits for another one to release the firewall.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Rules added by one scenario; removed on drop.
#[derive(Debug)]
pub struct Firewall {
    rules: Vec<Vec<String>>,
    /// iptables chains created (deleted after their rules).
    chains: Vec<String>,
    /// nftables tables created (`inet NAME`).
    nft_tables: Vec<String>,
}

/// The ufw-like chains the `nginx_firewall_ufw_user_drop` scenario creates (ufw's own names for
/// its user rules; the lab noise owns the `ufw-before-*` ones).
pub const LAB_CHAINS: &[&str] = &["ufw-user-output", "ufw-user-input"];

/// The nftables table the `nginx_firewall_nft_output` scenario creates.
pub const LAB_NFT_TABLE: &str = "triage502_lab";

impl Firewall {
    /// Takes the lab's firewall lock (waits for another scenario to finish with it).
    pub fn acquire() -> anyhow::Result<Self> {
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let dir = Path::new(LOCK_DIR);
        loop {
            match std::fs::create_dir(dir) {
                Ok(()) => {
                    std::fs::write(dir.join("owner"), std::process::id().to_string())?;
                    return Ok(Self {
                        rules: Vec::new(),
                        chains: Vec::new(),
                        nft_tables: Vec::new(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(dir.join("owner"))
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    // An owner that died without Drop (SIGKILL) leaves the lock behind.
                    if owner.is_some_and(|pid| !process::is_alive(pid)) {
                        let _ = std::fs::remove_dir_all(dir);
                        continue;
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("cannot create {LOCK_DIR}")),
            }
            if Instant::now() > deadline {
                bail!("the lab's firewall lock {LOCK_DIR} is still held after {LOCK_TIMEOUT:?}");
            }
            std::thread::sleep(process::POLL * 5);
        }
    }

    /// Drops TCP packets to `port` on `lo`, inbound and outbound, so a connect to it times out.
    pub fn drop_loopback_port(&mut self, port: u16, tag: &str) -> anyhow::Result<()> {
        let comment = format!("triage502-lab:{tag}");
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            let spec: Vec<String> = [
                chain,
                dir,
                "lo",
                "-p",
                "tcp",
                "--dport",
                &port.to_string(),
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "DROP",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            iptables("-I", &spec)?;
            self.rules.push(spec);
        }
        Ok(())
    }

    /// ufw-like user chains for loopback only: `OUTPUT -o lo → ufw-user-output` and `INPUT -i lo
    /// → ufw-user-input`, jumped to first (before the lab noise's `ufw-before-*` chains, whose
    /// loopback ACCEPT would end the walk), each dropping TCP to `port` the way `ufw deny
    /// PORT/tcp` rules sit in ufw's user chains. Fails if the chains exist already (real ufw).
    pub fn ufw_user_drop(&mut self, port: u16, tag: &str) -> anyhow::Result<()> {
        let comment = format!("triage502-lab:{tag}");
        for chain in LAB_CHAINS {
            iptables("-N", &[(*chain).to_owned()]).with_context(|| {
                format!("chain {chain} exists already (is ufw running?): the lab will not touch it")
            })?;
            self.chains.push((*chain).to_owned());
        }
        let port = port.to_string();
        let tagged = |words: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = words.iter().map(|s| (*s).to_owned()).collect();
            let j = v.iter().position(|w| w == "-j").unwrap_or(v.len());
            v.splice(
                j..j,
                ["-m", "comment", "--comment", &comment].map(str::to_owned),
            );
            v
        };
        for chain in LAB_CHAINS {
            let spec = tagged(&[
                chain, "-p", "tcp", "-m", "tcp", "--dport", &port, "-j", "DROP",
            ]);
            iptables("-A", &spec)?;
            self.rules.push(spec);
        }
        for (builtin, dir, chain) in [
            ("OUTPUT", "-o", LAB_CHAINS[0]),
            ("INPUT", "-i", LAB_CHAINS[1]),
        ] {
            let spec = tagged(&[builtin, dir, "lo", "-j", chain]);
            iptables("-I", &spec)?;
            self.rules.push(spec);
        }
        Ok(())
    }

    /// An nftables table `inet triage502_lab` with an output base chain that drops TCP to
    /// `port` on `lo` (the rule's comment is the tag).
    pub fn nft_output_drop(&mut self, port: u16, tag: &str) -> anyhow::Result<()> {
        nft(&["add", "table", "inet", LAB_NFT_TABLE])?;
        self.nft_tables.push(LAB_NFT_TABLE.to_owned());
        nft(&[
            "add",
            "chain",
            "inet",
            LAB_NFT_TABLE,
            "output",
            "{ type filter hook output priority 0; policy accept; }",
        ])?;
        nft(&[
            "add",
            "rule",
            "inet",
            LAB_NFT_TABLE,
            "output",
            "oifname",
            "lo",
            "tcp",
            "dport",
            &port.to_string(),
            "counter",
            "drop",
            "comment",
            &format!("\"triage502-lab:{tag}\""),
        ])
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        for spec in self.rules.drain(..).rev() {
            if let Err(e) = iptables("-D", &spec) {
                eprintln!("lab: could not remove iptables rule {spec:?}: {e:#}");
            }
        }
        for chain in self.chains.drain(..).rev() {
            if let Err(e) = iptables("-X", std::slice::from_ref(&chain)) {
                eprintln!("lab: could not remove iptables chain {chain}: {e:#}");
            }
        }
        for table in self.nft_tables.drain(..) {
            if let Err(e) = nft(&["delete", "table", "inet", &table]) {
                eprintln!("lab: could not remove nftables table inet {table}: {e:#}");
            }
        }
        let _ = std::fs::remove_dir_all(LOCK_DIR);
    }
}

/// Runs `iptables -w ACTION SPEC...`.
pub fn iptables(action: &str, spec: &[String]) -> anyhow::Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .arg(action)
        .args(spec)
        .output()
        .context("cannot run iptables")?;
    if !out.status.success() {
        bail!(
            "iptables {action} {} failed: {}",
            spec.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `nft ARGS...`.
pub fn nft(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("nft")
        .args(args)
        .output()
        .context("cannot run nft")?;
    if !out.status.success() {
        bail!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes every rule whose comment is `triage502-lab:<tag>` (leftovers of a killed run), the
/// lab's ufw-like chains once empty and unreferenced, and the lab's nftables table when it
/// carries the tag.
pub fn remove_tagged(tag: &str) {
    let Ok(out) = Command::new("iptables").args(["-w", "-S"]).output() else {
        return;
    };
    let needle = format!("triage502-lab:{tag}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_owned())
            .collect();
        if words.first().map(String::as_str) == Some("-A") && words.contains(&needle) {
            let _ = iptables("-D", &words[1..]);
        }
    }
    for chain in LAB_CHAINS {
        let empty = Command::new("iptables")
            .args(["-w", "-S", chain])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).lines().count() == 1
            });
        if empty {
            let _ = iptables("-X", &[(*chain).to_owned()]);
        }
    }
    if let Ok(out) = Command::new("nft")
        .args(["list", "table", "inet", LAB_NFT_TABLE])
        .output()
        && String::from_utf8_lossy(&out.stdout).contains(&needle)
    {
        let _ = nft(&["delete", "table", "inet", LAB_NFT_TABLE]);
    }
}

impl super::RunningScenario {
    fn tag(&self) -> anyhow::Result<String> {
        Ok(self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("scenario dir name")?
            .to_owned())
    }

    /// Drops loopback TCP to `port` in ufw-like user chains (holding the lab's firewall lock).
    pub fn block_port_ufw(&mut self, port: u16) -> anyhow::Result<()> {
        let mut fw = Firewall::acquire()?;
        let tag = self.tag()?;
        let added = fw.ufw_user_drop(port, &tag);
        self.firewall = Some(fw);
        added
    }

    /// Drops loopback TCP to `port` in an nftables `inet` output chain (holding the lock).
    pub fn block_port_nft(&mut self, port: u16) -> anyhow::Result<()> {
        let mut fw = Firewall::acquire()?;
        let tag = self.tag()?;
        let added = fw.nft_output_drop(port, &tag);
        self.firewall = Some(fw);
        added
    }
}
