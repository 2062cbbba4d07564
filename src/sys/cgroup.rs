//! Memory cgroups of processes, from `/proc/PID/cgroup`.
//!
//! cgroup v2 lists one line `0::/path`; cgroup v1 (and hybrid hosts) list one line per
//! hierarchy, `N:memory:/path` for the memory controller. The memory cgroup is what the kernel
//! names as `oom_memcg`/`task_memcg` in an OOM report, so it is the one returned here: the v1
//! memory line when there is one, else the v2 line.
//! Invariants: read-only, one capped read per process.

use std::path::Path;

use super::{SysError, read_text};

/// The memory cgroup in `/proc/PID/cgroup` text, e.g. `/system.slice/php8.2-fpm.service`.
pub fn memory_cgroup_of(text: &str) -> Option<String> {
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some(path.trim().to_owned());
        }
        if controllers.is_empty() {
            unified = Some(path.trim().to_owned());
        }
    }
    unified
}

/// The memory cgroup of a running process.
pub fn memory_cgroup(pid: u32) -> Result<Option<String>, SysError> {
    let text = read_text(Path::new(&format!("/proc/{pid}/cgroup")))?;
    Ok(memory_cgroup_of(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_single_line() {
        assert_eq!(
            memory_cgroup_of("0::/system.slice/php8.2-fpm.service\n").as_deref(),
            Some("/system.slice/php8.2-fpm.service")
        );
    }

    #[test]
    fn v1_memory_line_wins_over_the_unified_one() {
        let t = "9:name=systemd:/\n4:memory:/process_api/49af\n1:cpu,cpuacct:/\n0::/\n";
        assert_eq!(memory_cgroup_of(t).as_deref(), Some("/process_api/49af"));
    }

    // Linux only: reads /proc/self/cgroup.
    #[cfg(unix)]
    #[test]
    fn own_process_has_one() {
        assert!(
            memory_cgroup(std::process::id())
                .expect("own cgroup")
                .is_some()
        );
    }
}
