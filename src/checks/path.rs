//! The failing path as processes: the front server (master and workers) and the upstream's
//! process or pool (php-fpm master and children, the app listening on the upstream address),
//! with their executables and memory cgroups. Checks use it to weigh what they see: an OOM kill,
//! a package upgrade or a restart concerns the incident only when it touches one of these.
//!
//! Built from seeds a playbook passes as params (`path_pids = ["{{ front.pid }}",
//! "{{ upstream.listener }}"]`): each seed is a PID, optionally followed by a name (discovery's
//! `upstream.listener` is `PID comm`), or several of them on lines. A seed that is a worker pulls
//! in its master (the parent running the same program); every seed pulls in its descendants.
//! Invariants: read-only (one `/proc` walk); bounded ([`MAX_MEMBERS`], [`MAX_DEPTH`]); an empty
//! or unknown seed is skipped, never guessed; the root cgroup `/` is never used to match, since
//! it would put every process of a host without cgroups on the path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::sys;

/// Most processes a path holds (a pool with thousands of children is capped).
pub const MAX_MEMBERS: usize = 4096;
/// How many generations below a seed are followed.
pub const MAX_DEPTH: usize = 4;

/// One process on the failing path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pid: u32,
    pub ppid: u32,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// `/proc/PID/exe`, when readable.
    pub exe: Option<PathBuf>,
    /// The memory cgroup (`/proc/PID/cgroup`), when readable.
    pub cgroup: Option<String>,
}

/// The processes of the failing path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailingPath {
    pub members: Vec<Member>,
    /// Seeds that could not be used, with why.
    pub unknown: Vec<String>,
}

/// Why an event concerns the path, and how surely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub why: String,
    /// By PID, parent or memory cgroup: certain. By program name alone: another instance of
    /// the same program (another pool, a container) cannot be told apart.
    pub certain: bool,
}

fn sure(why: String) -> Reason {
    Reason { why, certain: true }
}

/// The PIDs named by the seeds: the first word of each non-empty line that is a number.
pub fn seed_pids(seeds: &[String]) -> (Vec<u32>, Vec<String>) {
    let mut pids = Vec::new();
    let mut bad = Vec::new();
    for line in seeds.iter().flat_map(|s| s.lines()) {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        match first.parse::<u32>() {
            Ok(p) if p > 1 => pids.push(p),
            _ => bad.push(format!("`{}` does not start with a PID", line.trim())),
        }
    }
    pids.sort_unstable();
    pids.dedup();
    (pids, bad)
}

impl FailingPath {
    /// The path of a check's `path_pids` parameter, read off the async runtime's threads;
    /// `None` when the parameter names no process.
    pub async fn read(path_pids: &[String]) -> Option<FailingPath> {
        if path_pids.iter().all(|s| s.trim().is_empty()) {
            return None;
        }
        let seeds = path_pids.to_vec();
        Some(
            tokio::task::spawn_blocking(move || FailingPath::from_seeds(&seeds))
                .await
                .unwrap_or_default(),
        )
    }

    /// Reads `/proc` and builds the path from the seeds.
    pub fn from_seeds(seeds: &[String]) -> Self {
        let (pids, bad) = seed_pids(seeds);
        if pids.is_empty() {
            return FailingPath {
                members: Vec::new(),
                unknown: bad,
            };
        }
        let procs = sys::processes();
        let mut path = Self::from_processes(&pids, &procs, |pid| {
            sys::cgroup::memory_cgroup(pid).ok().flatten()
        });
        path.unknown.extend(bad);
        path
    }

    /// The path among `procs` (pure: `cgroup_of` gives each member's memory cgroup).
    pub fn from_processes(
        seeds: &[u32],
        procs: &[sys::Process],
        cgroup_of: impl Fn(u32) -> Option<String>,
    ) -> Self {
        let by_pid: BTreeMap<u32, &sys::Process> = procs.iter().map(|p| (p.pid, p)).collect();
        let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for p in procs {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut set: BTreeSet<u32> = BTreeSet::new();
        let mut unknown = Vec::new();
        for &seed in seeds {
            let Some(p) = by_pid.get(&seed) else {
                unknown.push(format!("process {seed} is gone or unreadable"));
                continue;
            };
            // A worker pulls in its master: the parent running the same program.
            let mut top = seed;
            if let Some(parent) = by_pid.get(&p.ppid)
                && p.ppid > 1
                && same_program(parent, p)
            {
                top = parent.pid;
            }
            let mut frontier = vec![top];
            set.insert(top);
            for _ in 0..MAX_DEPTH {
                let mut next = Vec::new();
                for pid in frontier {
                    for &c in children.get(&pid).map_or(&[][..], Vec::as_slice) {
                        if set.len() < MAX_MEMBERS && set.insert(c) {
                            next.push(c);
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
        }
        let members = set
            .into_iter()
            .filter_map(|pid| by_pid.get(&pid))
            .map(|p| Member {
                pid: p.pid,
                ppid: p.ppid,
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                cgroup: cgroup_of(p.pid),
            })
            .collect();
        FailingPath { members, unknown }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn pids(&self) -> BTreeSet<u32> {
        self.members.iter().map(|m| m.pid).collect()
    }

    /// Program names on the path (`nginx`, `php-fpm8.2`).
    pub fn comms(&self) -> BTreeSet<String> {
        self.members.iter().map(|m| m.comm.clone()).collect()
    }

    /// Memory cgroups on the path (never the root `/`).
    pub fn cgroups(&self) -> BTreeSet<String> {
        self.members
            .iter()
            .filter_map(|m| m.cgroup.clone())
            .filter(|c| c != "/")
            .collect()
    }

    /// Executables on the path (`/usr/sbin/nginx`).
    pub fn exes(&self) -> BTreeSet<PathBuf> {
        self.members.iter().filter_map(|m| m.exe.clone()).collect()
    }

    /// `nginx (pid 10, 11, 12) in /system.slice/nginx.service, php-fpm8.2 (pid 20, 21) in …`.
    pub fn describe(&self) -> String {
        let mut by: BTreeMap<&str, (Vec<u32>, BTreeSet<&str>)> = BTreeMap::new();
        for m in &self.members {
            let e = by.entry(m.comm.as_str()).or_default();
            e.0.push(m.pid);
            if let Some(c) = &m.cgroup {
                e.1.insert(c.as_str());
            }
        }
        by.iter()
            .map(|(c, (pids, cgs))| {
                let list: Vec<String> = pids.iter().take(8).map(ToString::to_string).collect();
                let more = if pids.len() > 8 { ", …" } else { "" };
                let cg = if cgs.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", cgs.iter().copied().collect::<Vec<_>>().join(", "))
                };
                format!("{c} (pid {}{more}){cg}", list.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether a process seen in an event (a kill, a crash) belongs to the path, and why.
    ///
    /// The PID or its parent on the path, or its memory cgroup one of the path's, count for
    /// sure. The program name counts as uncertain, unless the event names a memory cgroup that is not the path's
    /// while the path's cgroups are known: that is another instance of the same program (in a
    /// container, another site's pool), not this path.
    pub fn concerns(
        &self,
        pid: Option<u32>,
        ppid: Option<u32>,
        comm: Option<&str>,
        cgroup: Option<&str>,
    ) -> Option<Reason> {
        let pids = self.pids();
        if let Some(p) = pid.filter(|p| pids.contains(p)) {
            return Some(sure(format!("pid {p} is on the path")));
        }
        if let Some(p) = ppid.filter(|p| pids.contains(p)) {
            return Some(sure(format!("its parent {p} is on the path")));
        }
        let cgroups = self.cgroups();
        if let Some(c) = cgroup.filter(|c| cgroups.contains(*c)) {
            return Some(sure(format!("its memory cgroup {c} is the path's")));
        }
        let other_cgroup = cgroup.is_some_and(|c| c != "/") && !cgroups.is_empty();
        if let Some(c) = comm.filter(|c| !other_cgroup && self.comms().contains(*c)) {
            return Some(Reason {
                why: format!(
                    "{c} is a program on the path (the kernel did not name its cgroup: it may be another instance)"
                ),
                certain: false,
            });
        }
        None
    }
}

/// Same program: same executable when both are readable, else the same `comm`.
fn same_program(a: &sys::Process, b: &sys::Process) -> bool {
    match (&a.exe, &b.exe) {
        (Some(x), Some(y)) => x == y,
        _ => a.comm == b.comm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(pid: u32, ppid: u32, comm: &str) -> sys::Process {
        sys::Process {
            pid,
            ppid,
            comm: comm.into(),
            cmdline: vec![],
            exe: Some(PathBuf::from(format!("/usr/sbin/{comm}"))),
            uid: 0,
            user: None,
            gid: 0,
            group: None,
            start_time: None,
        }
    }

    fn host() -> Vec<sys::Process> {
        vec![
            proc_(1, 0, "init"),
            proc_(10, 1, "nginx"),
            proc_(11, 10, "nginx"),
            proc_(12, 10, "nginx"),
            proc_(20, 1, "php-fpm8.2"),
            proc_(21, 20, "php-fpm8.2"),
            proc_(30, 1, "python3"),
        ]
    }

    #[allow(clippy::unnecessary_wraps, reason = "the shape `from_processes` takes")]
    fn cg(pid: u32) -> Option<String> {
        Some(match pid {
            20 | 21 => "/system.slice/php8.2-fpm.service".into(),
            30 => "/docker/ab12".into(),
            _ => "/system.slice/nginx.service".into(),
        })
    }

    #[test]
    fn a_worker_seed_pulls_in_its_master_and_siblings() {
        let p = FailingPath::from_processes(&[11, 21], &host(), cg);
        assert_eq!(p.pids(), [10, 11, 12, 20, 21].into());
        assert!(!p.pids().contains(&30));
    }

    #[test]
    fn seeds_are_pids_with_an_optional_name() {
        let (pids, bad) = seed_pids(&["10".into(), "20 php-fpm8.2".into(), String::new()]);
        assert_eq!(pids, vec![10, 20]);
        assert!(bad.is_empty());
        let (pids, bad) = seed_pids(&["nginx".into()]);
        assert!(pids.is_empty());
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn kills_are_weighed_by_pid_cgroup_and_program() {
        let p = FailingPath::from_processes(&[10, 20], &host(), cg);
        assert!(
            p.concerns(
                Some(99),
                None,
                Some("php-fpm8.2"),
                Some("/system.slice/php8.2-fpm.service")
            )
            .is_some()
        );
        assert!(
            p.concerns(Some(30), None, Some("python3"), Some("/docker/ab12"))
                .is_none()
        );
        // The same program in another container is not this path.
        assert!(
            p.concerns(Some(77), None, Some("nginx"), Some("/docker/cd34"))
                .is_none()
        );
        // No cgroup named: the program name makes it possible, not certain.
        assert!(
            !p.concerns(Some(77), None, Some("nginx"), None)
                .expect("same program")
                .certain
        );
    }
}
