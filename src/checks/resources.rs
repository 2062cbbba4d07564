//! `resources`: is the host running out of something the proxy or the app
//! needs? Load against cores, memory and swap, OOM kills in the kernel log,
//! disk space and inodes of given paths, open files of given processes
//! against their limits, TCP TIME_WAIT and ephemeral port use.
//!
//! Sources: /proc/loadavg, /proc/meminfo, /dev/kmsg (read non-blocking, as
//! root) else `journalctl -k` else `dmesg`, statvfs, /proc/PID/limits and
//! /proc/PID/fd, /proc/net/tcp{,6} and /proc/sys/net/ipv4/ip_local_port_range.
//! Invariants: every read is capped and every loop bounded; a threshold
//! crossed gives `resource_exhaustion` with the measured figure as evidence.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::{process, tool};

/// Parameters of the `resources` check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Paths whose filesystem space and inodes are checked (log, cache, temp
    /// dirs; default: /var/log, /var/cache, /tmp).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// PIDs whose open files are compared with their limit (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<String>,
    /// Process names whose PIDs are added to `pids`, e.g. `nginx`, `php-fpm8.2` (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// Free space or free inodes below this percentage is exhaustion (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_free_percent: Option<f64>,
    /// Open files above this percentage of the soft limit is exhaustion (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fd_percent: Option<f64>,
    /// Load average (1 min) per core above this is reported as a problem (default 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_load_per_core: Option<f64>,
    /// MemAvailable below this percentage of MemTotal is exhaustion (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_mem_available_percent: Option<f64>,
    /// Ephemeral ports in use above this percentage of the range is exhaustion (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ephemeral_percent: Option<f64>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "resources",
    summary: "Load vs cores, memory/swap, OOM kills in the kernel log, disk space and inodes of paths, open files of processes vs their limits, TCP TIME_WAIT and ephemeral port use; resource_exhaustion when a threshold is crossed.",
    example: r#"{ resources = { paths = ["/var/log/nginx", "/var/cache/nginx", "/tmp"], processes = ["nginx", "php-fpm8.2"] } }"#,
    facts: &[
        "resources.exhausted",
        "resources.oom_kills",
        "resources.time_wait",
    ],
};

const CAP: u64 = 8 << 20;

impl Params {
    pub fn label(&self) -> String {
        "host resources".into()
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(15)
    }
}

fn read_capped(path: &str, cap: u64) -> std::io::Result<String> {
    let mut v = Vec::new();
    std::fs::File::open(path)?.take(cap).read_to_end(&mut v)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

/// `MemTotal` etc. in kB.
fn meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_owned(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// OOM-kill lines in kernel-log text.
pub fn oom_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.contains("Out of memory: Kill")
                || l.contains("oom-kill:")
                || l.contains("Killed process")
                || l.contains("invoked oom-killer")
        })
        .map(|l| l.trim().to_owned())
        .take(50)
        .collect()
}

/// Kernel messages since `since` (epoch seconds) from /dev/kmsg, read non-blocking.
fn kmsg_since(since: i64) -> std::io::Result<String> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open("/dev/kmsg")?;
    let btime = process::boot_time().unwrap_or(0);
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    // One record per read; bounded by the record count and EAGAIN at the end.
    for _ in 0..200_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                let (head, msg) = rec.split_once(';').unwrap_or(("", &rec));
                let usec: i64 = head
                    .split(',')
                    .nth(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if btime + usec / 1_000_000 >= since {
                    out.push_str(msg.lines().next().unwrap_or(""));
                    out.push('\n');
                    if out.len() > CAP as usize {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // EPIPE: a record was overwritten while reading; keep going.
            Err(e) if e.raw_os_error() == Some(32) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

async fn kernel_log(ctx: &CheckContext) -> Result<(String, String), String> {
    let since = ctx.window_from.as_second();
    match kmsg_since(since) {
        Ok(t) => Ok((t, "/dev/kmsg".into())),
        Err(e) => {
            let mut why = format!("/dev/kmsg: {e}");
            let since_arg = ctx
                .window_from
                .strftime("%Y-%m-%d %H:%M:%S UTC")
                .to_string();
            if tool::find("journalctl").is_ok() {
                let args: Vec<String> = ["-k", "--no-pager", "-q", "--since", since_arg.as_str()]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                if let Ok(o) =
                    tool::run("journalctl", &args, Duration::from_secs(5), CAP as usize).await
                    && o.code == Some(0)
                {
                    return Ok((o.stdout, o.argv));
                }
                why.push_str("; journalctl -k failed");
            }
            if tool::find("dmesg").is_ok() {
                if let Ok(o) = tool::run("dmesg", &[], Duration::from_secs(5), CAP as usize).await
                    && o.code == Some(0)
                {
                    return Ok((
                        o.stdout,
                        "dmesg (whole buffer: no timestamps compared)".into(),
                    ));
                }
                why.push_str("; dmesg not permitted");
            }
            Err(why)
        }
    }
}

/// Local ports in use in /proc/net/tcp text, and the TIME_WAIT count.
fn tcp_ports(text: &str, range: (u16, u16)) -> (usize, usize) {
    let mut in_range = 0;
    let mut tw = 0;
    for l in text.lines().skip(1).take(1_000_000) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        if f[3] == "06" {
            tw += 1;
        }
        if f[3] != "0A"
            && let Some(port) = f[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            && port >= range.0
            && port <= range.1
        {
            in_range += 1;
        }
    }
    (in_range, tw)
}

fn fd_usage(pid: u32) -> Result<(usize, u64), String> {
    let limits = read_capped(&format!("/proc/{pid}/limits"), 65536)
        .map_err(|e| format!("/proc/{pid}/limits: {e}"))?;
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no `Max open files` in /proc/{pid}/limits"))?;
    let n = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| {
            format!(
                "/proc/{pid}/fd: {e}{}",
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (run as root)"
                } else {
                    ""
                }
            )
        })?
        .take(10_000_000)
        .count();
    Ok((n, soft))
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = measure(p, ctx).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn measure(p: &Params, ctx: &CheckContext) -> CheckReport {
    let min_free = p.min_free_percent.unwrap_or(5.0);
    let max_fd = p.max_fd_percent.unwrap_or(90.0);
    let mut ev = Vec::new();
    let mut exhausted: Vec<(String, Evidence)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut oom_count = 0usize;
    let mut time_wait = String::new();

    // Load.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    match read_capped("/proc/loadavg", 4096) {
        Ok(t) => {
            let l1: f64 = t
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            let e = Evidence::new(
                "load",
                format!(
                    "load average {} on {cores} core(s)",
                    t.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
                ),
            )
            .at("/proc/loadavg");
            if l1 / cores as f64 > p.max_load_per_core.unwrap_or(2.0) {
                notes.push(format!("load {l1} is high for {cores} core(s)"));
            }
            ev.push(e);
        }
        Err(e) => unknown.push(format!("/proc/loadavg: {e}")),
    }
    // Memory.
    match read_capped("/proc/meminfo", 65536) {
        Ok(t) => {
            let m = meminfo(&t);
            let total = m.get("MemTotal").copied().unwrap_or(0);
            let avail = m.get("MemAvailable").copied().unwrap_or(0);
            let st = m.get("SwapTotal").copied().unwrap_or(0);
            let sf = m.get("SwapFree").copied().unwrap_or(0);
            let pct = if total > 0 {
                avail as f64 * 100.0 / total as f64
            } else {
                100.0
            };
            let e = Evidence::new(
                "memory",
                format!(
                    "available {} of {} MiB ({pct:.1}%), swap free {} of {} MiB",
                    avail / 1024,
                    total / 1024,
                    sf / 1024,
                    st / 1024
                ),
            )
            .at("/proc/meminfo");
            if pct < p.min_mem_available_percent.unwrap_or(5.0) {
                exhausted.push((format!("memory: only {pct:.1}% available"), e.clone()));
            }
            ev.push(e);
        }
        Err(e) => unknown.push(format!("/proc/meminfo: {e}")),
    }
    // OOM kills in the window.
    match kernel_log(ctx).await {
        Ok((text, src)) => {
            let lines = oom_lines(&text);
            oom_count = lines.iter().filter(|l| l.contains("Killed process") || l.contains("oom-kill:")).count();
            if lines.is_empty() {
                ev.push(Evidence::new("kernel log", "no OOM kill in the window").at(src));
            } else {
                let e = Evidence::new("OOM kills", lines.join("\n")).at(src);
                exhausted.push((format!("{oom_count} OOM kill(s) in the kernel log"), e.clone()));
                ev.push(e);
            }
        }
        Err(why) => unknown.push(format!("kernel log unreadable ({why}): run as root or add yourself to group adm/systemd-journal")),
    }
    // Disk space and inodes.
    let paths: Vec<String> = if p.paths.is_empty() {
        vec!["/var/log".into(), "/var/cache".into(), "/tmp".into()]
    } else {
        p.paths.clone()
    };
    for path in paths.iter().filter(|s| !s.trim().is_empty()).take(64) {
        match rustix::fs::statvfs(path.as_str()) {
            Ok(s) => {
                let free_pct = if s.f_blocks > 0 {
                    s.f_bavail as f64 * 100.0 / s.f_blocks as f64
                } else {
                    100.0
                };
                let ino_pct = if s.f_files > 0 {
                    s.f_favail as f64 * 100.0 / s.f_files as f64
                } else {
                    100.0
                };
                let e = Evidence::new(
                    "disk",
                    format!(
                        "{path}: {:.1} GiB free of {:.1} GiB ({free_pct:.1}%), inodes {ino_pct:.1}% free",
                        (s.f_bavail * s.f_frsize) as f64 / (1u64 << 30) as f64,
                        (s.f_blocks * s.f_frsize) as f64 / (1u64 << 30) as f64
                    ),
                )
                .at(format!("statvfs {path}"));
                if free_pct < min_free {
                    exhausted.push((format!("{path}: {free_pct:.1}% space free"), e.clone()));
                }
                if s.f_files > 0 && ino_pct < min_free {
                    exhausted.push((format!("{path}: {ino_pct:.1}% inodes free"), e.clone()));
                }
                ev.push(e);
            }
            Err(e) => unknown.push(format!("statvfs {path}: {e}")),
        }
    }
    // Open files.
    let mut pids: Vec<u32> = Vec::new();
    for s in p.pids.iter().filter(|s| !s.trim().is_empty()) {
        match s.trim().parse() {
            Ok(n) => pids.push(n),
            Err(_) => unknown.push(format!("`{s}` is not a PID")),
        }
    }
    for name in p.processes.iter().filter(|s| !s.trim().is_empty()) {
        let found = process::by_name(name);
        if found.is_empty() {
            unknown.push(format!("no process named `{name}`"));
        }
        pids.extend(found.iter().map(|p| p.pid));
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids.into_iter().take(256) {
        match fd_usage(pid) {
            Ok((n, soft)) => {
                let pct = if soft > 0 {
                    n as f64 * 100.0 / soft as f64
                } else {
                    0.0
                };
                let e = Evidence::new(
                    "open files",
                    format!("pid {pid}: {n} open of {soft} allowed ({pct:.1}%)"),
                )
                .at(format!("/proc/{pid}/fd"));
                if pct > max_fd {
                    exhausted.push((
                        format!("pid {pid} uses {pct:.0}% of its open-file limit"),
                        e.clone(),
                    ));
                }
                ev.push(e);
            }
            Err(e) => unknown.push(e),
        }
    }
    // TCP states and ephemeral ports.
    let range = read_capped("/proc/sys/net/ipv4/ip_local_port_range", 256)
        .ok()
        .and_then(|t| {
            let mut w = t.split_whitespace().map(|s| s.parse::<u16>().ok());
            Some((w.next()??, w.next()??))
        })
        .unwrap_or((32768, 60999));
    let mut used = 0;
    let mut tw = 0;
    let mut read_tcp = false;
    for t in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = read_capped(t, 256 << 20) {
            read_tcp = true;
            let (u, w) = tcp_ports(&text, range);
            used += u;
            tw += w;
        }
    }
    if read_tcp {
        let size = usize::from(range.1.saturating_sub(range.0)) + 1;
        let pct = used as f64 * 100.0 / size as f64;
        time_wait = tw.to_string();
        let e = Evidence::new(
            "tcp",
            format!("{tw} sockets in TIME_WAIT; {used} sockets on ephemeral ports {}-{} ({pct:.1}% of the range)", range.0, range.1),
        )
        .at("/proc/net/tcp");
        if pct > p.max_ephemeral_percent.unwrap_or(80.0) {
            exhausted.push((format!("ephemeral ports {pct:.0}% used"), e.clone()));
        }
        ev.push(e);
    } else {
        unknown.push("/proc/net/tcp unreadable".into());
    }

    let label = p.label();
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact(
            "resources.exhausted",
            exhausted
                .iter()
                .map(|x| x.0.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .with_fact("resources.oom_kills", oom_count.to_string())
        .with_fact("resources.time_wait", time_wait);
    for e in ev {
        r = r.with_evidence(e);
    }
    for u in &unknown {
        r = r.with_evidence(Evidence::new("not checked", u.clone()));
    }
    if !exhausted.is_empty() {
        let s = exhausted
            .iter()
            .map(|x| x.0.clone())
            .collect::<Vec<_>>()
            .join("; ");
        r.outcome = Outcome::Problem;
        r.summary = format!("resources exhausted: {s}");
        r = r.diagnose(
            Cause::ResourceExhaustion,
            Severity::High,
            s,
            exhausted.into_iter().map(|x| x.1).collect(),
        );
    } else if !notes.is_empty() {
        r.outcome = Outcome::Problem;
        r.summary = notes.join("; ");
    } else if !unknown.is_empty() {
        r.outcome = Outcome::Inconclusive;
        r.summary = format!(
            "no limit crossed in what could be read, but not checked: {}",
            unknown.join("; ")
        );
    } else {
        r.summary = "no resource limit is close: memory, disk, inodes, open files, ports and OOM log are fine".into();
        r = r.exclude(
            Cause::ResourceExhaustion,
            "every measured resource is below its threshold",
        );
    }
    r
}
