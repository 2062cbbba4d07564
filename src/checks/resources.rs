//! `resources`: is the host running out of something the proxy or the app
//! needs? Load against cores, memory and swap, OOM kills in the kernel log,
//! disk space and inodes of given paths, open files of given processes
//! against their limits, TCP TIME_WAIT and ephemeral port use.
//!
//! Sources: /proc/loadavg, /proc/meminfo, /dev/kmsg (read non-blocking, as
//! root) else `journalctl -k` else `dmesg`, statvfs, /proc/PID/limits and
//! /proc/PID/fd, /proc/net/tcp{,6} and /proc/sys/net/ipv4/ip_local_port_range.
//! Invariants: every read is capped and every loop bounded. Evidence is weighed by the failing
//! path (`path_pids`, see [`crate::checks::path`]): an OOM kill in the window of a process on
//! the path (its PID, parent, program or memory cgroup) is direct evidence of
//! `resource_exhaustion`; a kill of anything else is set aside as context, never a finding. A
//! disk, memory, open-files or port figure past its threshold is circumstantial (it could
//! explain the failure) unless the path's error logs (`logs`) show the failure it causes
//! (ENOSPC, EMFILE/ENFILE, ENOMEM, EADDRNOTAVAIL), which makes it direct.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{Aside, CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::checks::path::FailingPath;
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
    /// The failing path's processes: PIDs, or `PID name` as discovery's `upstream.listener`
    /// gives them (`["{{ front.pid }}", "{{ upstream.listener }}"]`). Workers, masters and
    /// children are added. OOM kills count only for these; with none given, every kill in the
    /// window is circumstantial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_pids: Vec<String>,
    /// Error logs of the path, read for the failure a shortage causes ("No space left on
    /// device", "Too many open files", ...): such a line makes the shortage direct evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "resources",
    summary: "Load vs cores, memory/swap, OOM kills in the kernel log, disk space and inodes of paths, open files of processes vs their limits, TCP TIME_WAIT and ephemeral port use. An OOM kill of the failing path (path_pids: its PIDs, programs, memory cgroups) is direct resource_exhaustion, one elsewhere is context; a threshold crossed is circumstantial unless the path's logs show the failure it causes.",
    example: r#"{ resources = { paths = ["/var/log/nginx", "/var/cache/nginx", "/tmp"], processes = ["nginx", "php-fpm8.2"], path_pids = ["{{ front.pid }}", "{{ upstream.listener }}"], logs = ["{{ error_logs }}"] } }"#,
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

/// Why an OOM kill off the path is set aside.
const OFF_PATH: &str = "not on the path: neither its pid, its program nor its memory cgroup is the front's or the upstream's";
/// An OOM kill when the playbook gave no path.
const UNKNOWN_PATH: &str = "the failing path is unknown: it may be unrelated";

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

/// One OOM kill, from the kernel's report lines about one PID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OomKill {
    pub pid: u32,
    /// The killed task's name (`task=` or `Killed process N (comm)`).
    pub comm: String,
    /// Its memory cgroup (`task_memcg=`), when the kernel named it.
    pub memcg: Option<String>,
    /// The cgroup whose limit was hit (`oom_memcg=`); `/` or absent for a host-wide OOM.
    pub oom_memcg: Option<String>,
    /// When, in epoch seconds, when the source has wall-clock times.
    pub at: Option<i64>,
    /// The report lines, as logged.
    pub lines: Vec<String>,
}

impl OomKill {
    /// `perl (pid 4242) at 16:41:07 in /lab/noise`.
    pub fn describe(&self) -> String {
        let at = self
            .at
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map(|t| {
                format!(
                    " at {}",
                    t.to_zoned_datetime(jiff::tz::TimeZone::system())
                        .strftime("%H:%M:%S")
                )
            })
            .unwrap_or_default();
        let cg = self
            .memcg
            .as_deref()
            .map(|c| format!(" in {c}"))
            .unwrap_or_default();
        format!("{} (pid {}){at}{cg}", self.comm, self.pid)
    }
}

/// A leading time: `@EPOCH ` (our /dev/kmsg reading) or journalctl's `-o short-unix`
/// `EPOCH.USEC host kernel: `. Returns the time and the message.
fn split_time(line: &str) -> (Option<i64>, &str) {
    let line = line.trim();
    let Some((first, rest)) = line.split_once(' ') else {
        return (None, line);
    };
    let num = first.strip_prefix('@').unwrap_or(first);
    match num.parse::<f64>() {
        Ok(t) if t > 1e9 => {
            let msg = rest.split_once("kernel: ").map_or(rest, |(_, m)| m);
            (Some(t as i64), msg.trim())
        }
        _ => (None, line),
    }
}

fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.split(',')
        .find_map(|kv| kv.trim().strip_prefix(key))
        .map(|v| v.split_whitespace().next().unwrap_or(v))
}

/// OOM kills in kernel-log text, one per killed PID, in order. Understands
/// `Out of memory: Killed process N (comm)`, `Memory cgroup out of memory: Killed process N
/// (comm)`, the older `Kill process N (comm)` and `oom-kill:constraint=…,oom_memcg=…,
/// task_memcg=…,task=comm,pid=N,…`.
pub fn oom_kills(text: &str) -> Vec<OomKill> {
    let mut out: Vec<OomKill> = Vec::new();
    for raw in text.lines().take(2_000_000) {
        let (at, msg) = split_time(raw);
        let found = if let Some(rest) = msg.split_once("oom-kill:").map(|x| x.1) {
            let pid = field(rest, "pid=").and_then(|p| p.parse().ok());
            pid.map(|pid| OomKill {
                pid,
                comm: field(rest, "task=").unwrap_or("?").to_owned(),
                memcg: field(rest, "task_memcg=").map(str::to_owned),
                oom_memcg: field(rest, "oom_memcg=").map(str::to_owned),
                at,
                lines: Vec::new(),
            })
        } else if let Some(rest) = msg
            .split_once("Killed process ")
            .or_else(|| msg.split_once("Kill process "))
            .map(|x| x.1)
        {
            let mut w = rest.splitn(2, ' ');
            let pid = w.next().and_then(|p| p.parse().ok());
            let comm = w
                .next()
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.split_once(')'))
                .map_or("?", |x| x.0);
            pid.map(|pid| OomKill {
                pid,
                comm: comm.to_owned(),
                at,
                ..OomKill::default()
            })
        } else {
            None
        };
        let Some(k) = found else { continue };
        // Both lines of one kill arrive together: merge them (the same PID within a minute).
        if let Some(e) = out.iter_mut().rev().take(4).find(|e| {
            e.pid == k.pid
                && (e.at.is_none()
                    || k.at.is_none()
                    || (e.at.unwrap_or(0) - k.at.unwrap_or(0)).abs() <= 60)
        }) {
            if e.comm == "?" {
                e.comm = k.comm;
            }
            e.memcg = e.memcg.take().or(k.memcg);
            e.oom_memcg = e.oom_memcg.take().or(k.oom_memcg);
            e.at = e.at.or(k.at);
            e.lines.push(raw.trim().to_owned());
        } else if out.len() < 1000 {
            let mut k = k;
            k.lines.push(raw.trim().to_owned());
            out.push(k);
        }
    }
    out
}

/// The failure a shortage causes, as servers log it: (what ran out, needles).
const SHORTAGE_SIGNS: &[(&str, &[&str])] = &[
    ("disk", &["No space left on device", "(28: "]),
    (
        "open files",
        &[
            "Too many open files",
            "(24: ",
            "(23: ",
            "worker_connections are not enough",
        ],
    ),
    (
        "memory",
        &[
            "Cannot allocate memory",
            "(12: ",
            "Out of memory",
            "Allowed memory size",
        ],
    ),
    ("ports", &["Cannot assign requested address", "(99: "]),
];

/// Lines of the path's logs in the window that show a shortage's failure, by what ran out.
fn shortage_lines(
    logs: &[String],
    from: i64,
) -> (BTreeMap<&'static str, Vec<String>>, Vec<String>) {
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for path in logs
        .iter()
        .flat_map(|l| l.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(32)
    {
        let text = match read_tail(path, CAP) {
            Ok(t) => t,
            Err(e) => {
                unreadable.push(format!("{path}: {e}"));
                continue;
            }
        };
        for line in text.lines() {
            if line_time(line).is_some_and(|t| t < from) {
                continue;
            }
            for (what, needles) in SHORTAGE_SIGNS {
                if needles.iter().any(|n| line.contains(n)) {
                    let v = found.entry(what).or_default();
                    if v.len() < 5 {
                        v.push(format!(
                            "{path}: {}",
                            line.chars().take(300).collect::<String>()
                        ));
                    }
                }
            }
        }
    }
    (found, unreadable)
}

/// The last `cap` bytes of a file.
fn read_tail(path: &str, cap: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > cap {
        f.seek(SeekFrom::Start(len - cap))?;
    }
    let mut v = Vec::new();
    f.take(cap).read_to_end(&mut v)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

/// The time of an nginx (`2026/11/23 10:00:00`), Apache (`[Mon Nov 23 10:00:00.1 2026]`) or
/// php-fpm (`[23-Nov-2026 10:00:00]`) error-log line, local time.
fn line_time(l: &str) -> Option<i64> {
    let civil = if l.len() >= 19 && l.as_bytes().get(4) == Some(&b'/') {
        jiff::civil::DateTime::strptime("%Y/%m/%d %H:%M:%S", l.get(..19)?).ok()?
    } else {
        let inner = l.strip_prefix('[')?.split(']').next()?;
        ["%a %b %d %H:%M:%S%.f %Y", "%d-%b-%Y %H:%M:%S"]
            .iter()
            .find_map(|f| jiff::civil::DateTime::strptime(f, inner).ok())?
    };
    Some(
        civil
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .ok()?
            .timestamp()
            .as_second(),
    )
}

/// Kernel messages since `since` (epoch seconds) from /dev/kmsg, read non-blocking.
fn kmsg_since(since: i64) -> std::io::Result<String> {
    let mut f = crate::platform::fs::open_nonblocking("/dev/kmsg")?;
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
                let at = btime + usec / 1_000_000;
                if at >= since {
                    // `@EPOCH message`: `oom_kills` reads the time back.
                    out.push('@');
                    out.push_str(&at.to_string());
                    out.push(' ');
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
                let args: Vec<String> = [
                    "-k",
                    "--no-pager",
                    "-q",
                    "-o",
                    "short-unix",
                    "--since",
                    since_arg.as_str(),
                ]
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
    // (what ran out, summary, evidence): a measured figure past its threshold.
    let mut exhausted: Vec<(&'static str, String, Evidence)> = Vec::new();
    let mut direct: Vec<(String, Evidence)> = Vec::new();
    let mut asides: Vec<Aside> = Vec::new();
    let path = FailingPath::read(&p.path_pids).await;
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
                exhausted.push((
                    "memory",
                    format!("memory: only {pct:.1}% available"),
                    e.clone(),
                ));
            }
            ev.push(e);
        }
        Err(e) => unknown.push(format!("/proc/meminfo: {e}")),
    }
    // OOM kills in the window, weighed by the failing path.
    let mut kernel_unseen = None;
    match kernel_log(ctx).await {
        Ok((text, src)) => {
            let from = ctx.window_from.as_second();
            let kills: Vec<OomKill> = oom_kills(&text)
                .into_iter()
                .filter(|k| k.at.is_none_or(|t| t >= from))
                .collect();
            oom_count = kills.len();
            if kills.is_empty() {
                ev.push(Evidence::new("kernel log", "no OOM kill in the window").at(src.clone()));
            }
            let mut unrelated = 0usize;
            // Newest first: the asides are capped, and the latest kills matter most.
            for k in kills.iter().rev() {
                let e = Evidence::new("OOM kill", k.lines.join("\n")).at(src.clone());
                if let Some(fp) = &path {
                    if let Some(m) =
                        fp.concerns(Some(k.pid), None, Some(&k.comm), k.memcg.as_deref())
                    {
                        let s = format!("{} was OOM-killed: {}", k.describe(), m.why);
                        if m.certain {
                            direct.push((s, e.clone()));
                        } else {
                            exhausted.push(("memory", s, e.clone()));
                        }
                        ev.push(e);
                    } else {
                        unrelated += 1;
                        if asides.len() < 10 {
                            let seen =
                                format!("an unrelated process {} was OOM-killed", k.describe());
                            let why = format!("{OFF_PATH} ({})", fp.describe());
                            asides.push(Aside::new(seen, why).at(src.clone()));
                        }
                    }
                } else {
                    let s = format!("{} was OOM-killed ({UNKNOWN_PATH})", k.describe());
                    exhausted.push(("memory", s, e.clone()));
                    ev.push(e);
                }
            }
            if !kills.is_empty() {
                ev.push(
                    Evidence::new(
                        "kernel log",
                        format!(
                            "{} OOM kill(s) in the window, {unrelated} of them off the failing path",
                            kills.len()
                        ),
                    )
                    .at(src.clone()),
                );
            }
            if unrelated > asides.len() {
                asides.push(Aside::new(
                    format!("{} more unrelated OOM kill(s)", unrelated - asides.len()),
                    "not on the path",
                ));
            }
        }
        Err(why) => {
            kernel_unseen = Some(crate::check::Unseen::new(
                "the kernel log (OOM kills)",
                why.trim_start_matches("; ").to_owned(),
                format!(
                    "{}, or join group systemd-journal (journalctl -k) or adm",
                    crate::check::AS_ROOT
                ),
            ));
            unknown.push(format!("kernel log unreadable ({why}): run as root or add yourself to group adm/systemd-journal"));
        }
    }
    if let Some(fp) = &path {
        ev.push(Evidence::new(
            "failing path",
            if fp.is_empty() {
                "no process of the path is running".to_owned()
            } else {
                fp.describe()
            },
        ));
        for u in &fp.unknown {
            unknown.push(format!("path: {u}"));
        }
    }
    // Disk space and inodes.
    let paths: Vec<String> = if p.paths.is_empty() {
        vec!["/var/log".into(), "/var/cache".into(), "/tmp".into()]
    } else {
        p.paths.clone()
    };
    for path in paths.iter().filter(|s| !s.trim().is_empty()).take(64) {
        match crate::platform::fs::statvfs(path.as_str()) {
            Ok(s) => {
                let free_pct = if s.blocks > 0 {
                    s.blocks_available as f64 * 100.0 / s.blocks as f64
                } else {
                    100.0
                };
                let ino_pct = if s.files > 0 {
                    s.files_available as f64 * 100.0 / s.files as f64
                } else {
                    100.0
                };
                let e = Evidence::new(
                    "disk",
                    format!(
                        "{path}: {:.1} GiB free of {:.1} GiB ({free_pct:.1}%), inodes {ino_pct:.1}% free",
                        (s.blocks_available * s.fragment_size) as f64 / (1u64 << 30) as f64,
                        (s.blocks * s.fragment_size) as f64 / (1u64 << 30) as f64
                    ),
                )
                .at(format!("statvfs {path}"));
                if free_pct < min_free {
                    exhausted.push((
                        "disk",
                        format!("{path}: {free_pct:.1}% space free"),
                        e.clone(),
                    ));
                }
                if s.files > 0 && ino_pct < min_free {
                    exhausted.push((
                        "disk",
                        format!("{path}: {ino_pct:.1}% inodes free"),
                        e.clone(),
                    ));
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
                        "open files",
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
            exhausted.push((
                "ports",
                format!("ephemeral ports {pct:.0}% used"),
                e.clone(),
            ));
        }
        ev.push(e);
    } else {
        unknown.push("/proc/net/tcp unreadable".into());
    }

    // A shortage is direct evidence only when the path's logs show the failure it causes.
    let (signs, log_unreadable) = shortage_lines(&p.logs, ctx.window_from.as_second());
    unknown.extend(log_unreadable);
    let mut circumstantial: Vec<(String, Evidence)> = Vec::new();
    for (what, s, e) in exhausted {
        match signs.get(what) {
            Some(lines) => {
                direct.push((format!("{s}, and the logs show it failing"), e.clone()));
                direct.push((
                    format!("{what} shortage in the logs"),
                    Evidence::new(format!("{what} shortage"), lines.join("\n")),
                ));
            }
            None => circumstantial.push((s, e)),
        }
    }
    direct.dedup_by(|a, b| a.0 == b.0);

    let label = p.label();
    let all: Vec<&(String, Evidence)> = direct.iter().chain(circumstantial.iter()).collect();
    let mut r = CheckReport::new(DOC.kind, label, Outcome::Ok, String::new())
        .with_fact(
            "resources.exhausted",
            all.iter()
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
    for a in asides.iter().cloned() {
        r = r.aside(a);
    }
    if let Some(u) = kernel_unseen {
        r = r.unseen(u);
    }
    let set_aside = if asides.is_empty() {
        String::new()
    } else {
        format!(" ({oom_count} OOM kill(s) in the window, none on the path: set aside)")
    };
    if !direct.is_empty() {
        let s = direct
            .iter()
            .map(|x| x.0.clone())
            .collect::<Vec<_>>()
            .join("; ");
        r.outcome = Outcome::Problem;
        r.summary = format!("resources exhausted on the failing path: {s}");
        let mut evidence: Vec<Evidence> = direct.into_iter().map(|x| x.1).collect();
        evidence.extend(circumstantial.into_iter().map(|x| x.1));
        r = r.diagnose(Cause::ResourceExhaustion, Severity::Critical, s, evidence);
    } else if !circumstantial.is_empty() {
        let s = circumstantial
            .iter()
            .map(|x| x.0.clone())
            .collect::<Vec<_>>()
            .join("; ");
        r.outcome = Outcome::Problem;
        r.summary = format!("near a limit, but no log shows it failing: {s}{set_aside}");
        r = r
            .diagnose(
                Cause::ResourceExhaustion,
                Severity::Medium,
                format!(
                    "{s} (circumstantial: no log of the path shows the failure it would cause)"
                ),
                circumstantial.into_iter().map(|x| x.1).collect(),
            )
            .circumstantial();
    } else if !notes.is_empty() {
        r.outcome = Outcome::Problem;
        r.summary = format!("{}{set_aside}", notes.join("; "));
    } else if !unknown.is_empty() {
        r.outcome = Outcome::Inconclusive;
        r.summary = format!(
            "no limit crossed in what could be read, but not checked: {}{set_aside}",
            unknown.join("; ")
        );
    } else {
        // The same words whether or not kills elsewhere were set aside: those are context.
        r.summary = "no resource limit is close: memory, disk, inodes, open files, ports and OOM log are fine".into();
        r = r.exclude(
            Cause::ResourceExhaustion,
            "every measured resource is below its threshold",
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lines_of_a_memcg_kill_are_one_event_with_its_cgroup() {
        let t = "@1764750000 Memory cgroup out of memory: Killed process 4242 (perl) total-vm:270000kB, anon-rss:60000kB\n\
                 @1764750000 oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/lab/noise,task_memcg=/lab/noise,task=perl,pid=4242,uid=0\n\
                 @1764750100 Out of memory: Killed process 77 (php-fpm8.2) total-vm:1kB\n";
        let k = oom_kills(t);
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k[0].pid, 4242);
        assert_eq!(k[0].comm, "perl");
        assert_eq!(k[0].memcg.as_deref(), Some("/lab/noise"));
        assert_eq!(k[0].at, Some(1_764_750_000));
        assert_eq!(k[0].lines.len(), 2);
        assert_eq!(k[1].comm, "php-fpm8.2");
        assert_eq!(k[1].memcg, None);
    }

    #[test]
    fn journal_short_unix_lines_carry_their_time() {
        let t =
            "1764750000.123456 host kernel: Out of memory: Killed process 9 (python3) total-vm:1kB";
        let k = oom_kills(t);
        assert_eq!(k[0].at, Some(1_764_750_000));
        assert_eq!(k[0].comm, "python3");
    }

    #[test]
    fn server_log_times_are_read() {
        assert!(
            line_time("2026/11/23 10:00:00 [crit] 1#1: x (28: No space left on device)").is_some()
        );
        assert!(line_time("[23-Nov-2026 10:00:00] WARNING: x").is_some());
    }
}
