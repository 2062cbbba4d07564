//! Correlation: what the backend and the kernel logged next to a proxy-side
//! failure decides what that failure means.
//!
//! * A premature close (`upstream prematurely closed`, `recv() failed (104)`,
//!   Apache AH01102/AH01075 with a reset or EOF) is a **timeout** when php-fpm
//!   killed the worker for `request_terminate_timeout` (or gunicorn for its
//!   `timeout`) within ±[`NEAR_SECS`] of it; an **OOM kill** when the kernel
//!   (or systemd) reports one; a **crash** when the worker died on SIGSEGV and
//!   friends — an application fault when every such close is on one page.
//!   Backend lines about the same process are joined by pid first (php-fpm's
//!   child pid = the kernel's `Killed process PID` = the segfault pid), so a
//!   `SIGKILL` exit is an OOM kill only when nothing says it was a timeout.
//!   One worker serves one request: closes at the same second are matched to
//!   different dead workers while there are any.
//! * `(13: Permission denied)` while connecting: on a TCP peer it is a MAC
//!   policy (SELinux `httpd_can_network_connect`, AppArmor), on a unix socket
//!   the socket's owner/group/mode or a parent directory (§2.3, §2.11); AVC
//!   denials in an audit log scanned alongside confirm either.
//!
//! Invariants: observation is bounded ([`EVENT_CAP`], [`QUOTE_CAP`], a capped
//! peer table) and happens only for classified entries, never per line;
//! deciding is a pure function of what was observed, run once after the scan,
//! with a bounded look at the events near each close.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::catalogue::Signature;
use super::classify::{Classification, Role};
use crate::cause::Cause;

/// How far apart (seconds) a proxy entry and a backend line may be to belong together.
pub const NEAR_SECS: i64 = 2;
/// Backend lines of one pid further apart than this are different processes (pids are reused).
const SAME_PID_SECS: i64 = 120;
/// Backend events kept (beyond: not correlated, and a note says so).
pub const EVENT_CAP: usize = 100_000;
/// Backend lines quoted as evidence, per kind of event.
pub const QUOTE_CAP: usize = 3;
/// Distinct EACCES peers tracked.
const PEER_CAP: usize = 1_000;
/// Events looked at around one close.
const NEAR_SCAN_CAP: usize = 64;

/// What a backend line says happened to a worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Died on a fatal signal (SIGSEGV, SIGBUS, …), a segfault, or a non-zero exit.
    Crash,
    /// Killed with SIGKILL, and no line says why.
    Killed,
    /// Killed by the kernel's (or a cgroup's) OOM killer.
    Oom,
    /// Killed by its manager for running too long (`request_terminate_timeout`, gunicorn `timeout`).
    Timeout,
}

impl Kind {
    fn of(sig: &Signature, cause: Option<Cause>) -> Option<Kind> {
        if sig.has_tag("worker_timeout") {
            Some(Kind::Timeout)
        } else if sig.has_tag("oom_kill") {
            Some(Kind::Oom)
        } else if sig.has_tag("worker_killed") {
            Some(Kind::Killed)
        } else if sig.has_tag("worker_crash") {
            // Older user catalogues tag OOM lines as crashes: their cause tells.
            Some(if cause == Some(Cause::ResourceExhaustion) {
                Kind::Oom
            } else {
                Kind::Crash
            })
        } else {
            None
        }
    }

    /// What a close explained by this kind is counted as (a crash on one page
    /// becomes `app_fatal` later).
    pub fn cause(self) -> Cause {
        match self {
            Kind::Timeout => Cause::UpstreamTimeout,
            Kind::Oom | Kind::Killed => Cause::ResourceExhaustion,
            Kind::Crash => Cause::UpstreamClosed,
        }
    }

    /// When several backend events are near one close, the stronger explains it:
    /// a timeout kill is the reason a worker died, not a crash (§2.4).
    fn weight(self) -> u8 {
        match self {
            Kind::Timeout => 3,
            Kind::Oom => 2,
            Kind::Killed => 1,
            Kind::Crash => 0,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Kind::Timeout => "timeout_kill",
            Kind::Oom => "oom_kill",
            Kind::Killed => "worker_killed",
            Kind::Crash => "worker_crash",
        }
    }
}

/// A log entry kept as evidence; the scan turns it into a sample with `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub text: String,
    /// Index of the file in the scan's file list.
    pub file: usize,
    pub offset: u64,
    pub ts: Option<i64>,
    pub signature: Option<String>,
}

#[derive(Debug, Clone)]
struct Event {
    ts: i64,
    pid: Option<u32>,
    kind: Kind,
    /// The request path the backend names (php-fpm's `request: "GET /x"`).
    path: Option<String>,
    quote: Option<usize>,
}

/// EACCES while connecting, per peer.
#[derive(Debug, Clone, Default)]
struct Denied {
    count: u64,
    server: String,
}

/// What the scan saw that correlation needs. Fed by [`Correlator::observe`].
#[derive(Debug, Default)]
pub struct Correlator {
    events: Vec<Event>,
    dropped_events: u64,
    quotes: Vec<Quote>,
    quotes_per_kind: BTreeMap<Kind, usize>,
    /// (unix socket?, peer) → EACCES entries.
    denied: BTreeMap<(bool, String), Denied>,
    /// AVC denials: (for a unix socket?, quote).
    avc: Vec<(bool, Option<usize>)>,
    avc_count: [u64; 2],
}

/// One decision correlation made, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correlation<S> {
    /// The cause the entries were counted as (or that the evidence points at).
    pub cause: Cause,
    /// `timeout_kill`, `oom_kill`, `worker_killed`, `worker_crash`,
    /// `eacces_tcp` (SELinux/AppArmor) or `eacces_unix` (socket permissions).
    pub kind: &'static str,
    /// Proxy entries this explains.
    pub entries: u64,
    /// Backend processes involved (php-fpm children, killed pids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// Upstream peers or sockets concerned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// In words, with the next step.
    pub explanation: String,
    /// The backend, kernel or audit lines that decided it.
    pub evidence: Vec<S>,
}

/// A close awaiting a decision: its time and request path.
#[derive(Debug, Clone, Copy)]
pub struct Close<'a> {
    pub ts: Option<i64>,
    pub path: Option<&'a str>,
}

/// The outcome of [`Correlator::decide`].
#[derive(Debug, Clone)]
pub struct Decided {
    /// The cause of each close, in input order.
    pub causes: Vec<Cause>,
    pub correlations: Vec<Correlation<Quote>>,
    /// Remarks that decided nothing (missing backend logs, dropped events).
    pub notes: Vec<String>,
}

/// A group of backend events about one process (or one pid-less line).
#[derive(Debug, Clone)]
struct Group {
    kind: Kind,
    pid: Option<u32>,
    path: Option<String>,
    quotes: Vec<usize>,
    /// The backend's SIGKILL exit and the kernel's OOM kill name this pid.
    confirmed: bool,
}

impl Correlator {
    /// Look at one classified entry (called for every classification, not per line).
    pub fn observe(
        &mut self,
        file: usize,
        offset: u64,
        ts: Option<i64>,
        c: &Classification,
        sig: Option<&Signature>,
        text: impl FnOnce() -> String,
    ) {
        let Some(sig) = sig else { return };
        // EACCES on a connect (the errno table made it one of these two), not
        // on a cache file or a temp dir (`open() … (13: …)` is cache_fault).
        let connect_denied = matches!(
            c.cause,
            Some(Cause::FirewallBlocked | Cause::SocketPermission)
        );
        if c.role == Role::Primary && c.fields.errno == Some(13) && connect_denied {
            let unix = c.fields.is_unix();
            let peer = c
                .fields
                .socket
                .clone()
                .or_else(|| {
                    c.fields
                        .upstream
                        .as_deref()
                        .map(|u| super::scan::peer_of(u).to_owned())
                })
                .unwrap_or_else(|| "?".to_owned());
            let key = (unix, peer);
            if self.denied.len() < PEER_CAP || self.denied.contains_key(&key) {
                let d = self.denied.entry(key).or_default();
                d.count += 1;
                if d.server.is_empty() {
                    d.server.clone_from(&sig.server);
                }
            }
            return;
        }
        if sig.has_tag("mac_denial") {
            let unix = c.cause == Some(Cause::SocketPermission);
            self.avc_count[usize::from(unix)] += 1;
            let q = (self.avc.len() < QUOTE_CAP).then(|| self.quote(file, offset, ts, sig, text));
            if q.is_some() {
                self.avc.push((unix, q));
            }
            return;
        }
        let (Some(kind), Some(t)) = (Kind::of(sig, c.cause), ts) else {
            return;
        };
        if self.events.len() >= EVENT_CAP {
            self.dropped_events += 1;
            return;
        }
        let n = self.quotes_per_kind.entry(kind).or_default();
        let quote = if *n < QUOTE_CAP * 4 {
            *n += 1;
            Some(self.quote(file, offset, ts, sig, text))
        } else {
            None
        };
        self.events.push(Event {
            ts: t,
            pid: c.fields.pid,
            kind,
            path: c.fields.path.clone(),
            quote,
        });
    }

    fn quote(
        &mut self,
        file: usize,
        offset: u64,
        ts: Option<i64>,
        sig: &Signature,
        text: impl FnOnce() -> String,
    ) -> usize {
        self.quotes.push(Quote {
            text: text(),
            file,
            offset,
            ts,
            signature: Some(sig.id.clone()),
        });
        self.quotes.len() - 1
    }

    /// Every quote kept (for the scan to resolve `file:line`).
    pub fn quotes(&self) -> &[Quote] {
        &self.quotes
    }

    /// Join backend events of one process: same pid, close in time.
    fn groups(&self) -> (Vec<Group>, Vec<(i64, usize)>) {
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by_key(|&i| {
            (
                self.events[i].pid.is_none(),
                self.events[i].pid,
                self.events[i].ts,
            )
        });
        let mut groups: Vec<Group> = Vec::new();
        let mut index: Vec<(i64, usize)> = Vec::with_capacity(self.events.len());
        let mut last: Option<(u32, i64)> = None;
        for i in order {
            let e = &self.events[i];
            let join = matches!((last, e.pid), (Some((p, t)), Some(q)) if p == q && e.ts - t <= SAME_PID_SECS);
            if !join {
                groups.push(Group {
                    kind: e.kind,
                    pid: e.pid,
                    path: None,
                    quotes: Vec::new(),
                    confirmed: false,
                });
            }
            let gi = groups.len() - 1;
            let g = &mut groups[gi];
            // The manager's SIGKILL exit and the kernel's OOM line about one pid: two logs agree.
            g.confirmed |= matches!(
                (g.kind, e.kind),
                (Kind::Oom, Kind::Killed) | (Kind::Killed, Kind::Oom)
            );
            if e.kind.weight() > g.kind.weight() {
                g.kind = e.kind;
            }
            if g.path.is_none() {
                g.path.clone_from(&e.path);
            }
            if let Some(q) = e.quote {
                g.quotes.push(q);
            }
            index.push((e.ts, gi));
            last = e.pid.map(|p| (p, e.ts));
        }
        index.sort_unstable();
        (groups, index)
    }

    /// Decide each close; also report what EACCES and AVC lines point at.
    pub fn decide(&self, closes: &[Close<'_>]) -> Decided {
        let (groups, index) = self.groups();
        let mut chosen: Vec<Option<usize>> = Vec::with_capacity(closes.len());
        let mut used = vec![false; groups.len()];
        for c in closes {
            let g =
                c.ts.and_then(|t| best_group(t, c.path, &groups, &index, &used));
            if let Some(g) = g {
                used[g] = true;
            }
            chosen.push(g);
        }
        // A crash on one page only is an application fault on that page.
        let crash_paths: BTreeSet<&str> = closes
            .iter()
            .zip(&chosen)
            .filter(|(_, g)| g.is_some_and(|g| groups[g].kind == Kind::Crash))
            .filter_map(|(c, _)| c.path)
            .collect();
        let closed_paths: BTreeSet<&str> = closes
            .iter()
            .zip(&chosen)
            .filter(|(_, g)| g.is_none_or(|g| groups[g].kind == Kind::Crash))
            .filter_map(|(c, _)| c.path)
            .collect();
        let one_page = crash_paths.len() == 1 && closed_paths.len() == 1;
        let causes: Vec<Cause> = chosen
            .iter()
            .map(|g| match g.map(|g| groups[g].kind) {
                Some(Kind::Crash) if one_page => Cause::AppFatal,
                Some(k) => k.cause(),
                None => Cause::UpstreamClosed,
            })
            .collect();

        let mut correlations = Vec::new();
        for kind in [Kind::Timeout, Kind::Oom, Kind::Killed, Kind::Crash] {
            let used: Vec<usize> = chosen
                .iter()
                .filter_map(|g| *g)
                .filter(|g| groups[*g].kind == kind)
                .collect();
            if used.is_empty() {
                continue;
            }
            let distinct: BTreeSet<usize> = used.iter().copied().collect();
            let pids: Vec<u32> = distinct
                .iter()
                .filter_map(|g| groups[*g].pid)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .take(10)
                .collect();
            let confirmed = distinct.iter().filter(|g| groups[**g].confirmed).count();
            let evidence: Vec<Quote> = distinct
                .iter()
                .flat_map(|g| groups[*g].quotes.iter())
                .take(QUOTE_CAP)
                .map(|q| self.quotes[*q].clone())
                .collect();
            let n = used.len() as u64;
            let pid_text = if pids.is_empty() {
                String::new()
            } else {
                format!(
                    " (pid {})",
                    pids.iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let (cause, explanation) = match kind {
                Kind::Timeout => (
                    Cause::UpstreamTimeout,
                    format!(
                        "{n} premature close(s) of the upstream connection are within ±{NEAR_SECS}s of a backend timeout kill{pid_text} (php-fpm `execution timed out … terminating` / gunicorn WORKER TIMEOUT): the backend's own time limit (request_terminate_timeout) killed the request, so these 502s are upstream_timeout, not a crash. Raise request_terminate_timeout or make the page faster."
                    ),
                ),
                Kind::Oom => (
                    Cause::ResourceExhaustion,
                    format!(
                        "{n} premature close(s) coincide with an OOM kill{pid_text}{}: the kernel killed the backend process for memory, so these are resource_exhaustion, not an application crash.",
                        if confirmed > 0 {
                            " (the backend's SIGKILL exit and the kernel's `Killed process` name the same pid)"
                        } else {
                            ""
                        }
                    ),
                ),
                Kind::Killed => (
                    Cause::ResourceExhaustion,
                    format!(
                        "{n} premature close(s) coincide with a backend worker killed by SIGKILL{pid_text}, with no timeout line for that pid: usually the OOM killer — give the kernel log (kern.log, `journalctl -k`) to confirm."
                    ),
                ),
                Kind::Crash => {
                    let page = crash_paths.iter().next().copied().unwrap_or("");
                    if one_page {
                        (
                            Cause::AppFatal,
                            format!(
                                "{n} premature close(s) coincide with backend worker crashes{pid_text} (SIGSEGV/segfault), all on one page ({page}) while no other page fails this way: an application fault on that page (app_fatal)."
                            ),
                        )
                    } else {
                        (
                            Cause::UpstreamClosed,
                            format!(
                                "{n} premature close(s) coincide with backend worker crashes{pid_text} (SIGSEGV/segfault) on {} page(s): the backend crashes (upstream_closed); look for a core dump or a faulty extension.",
                                closed_paths.len()
                            ),
                        )
                    }
                }
            };
            correlations.push(Correlation {
                cause,
                kind: kind.id(),
                entries: n,
                pids,
                peers: Vec::new(),
                explanation,
                evidence,
            });
        }
        correlations.extend(self.denials());

        let mut notes = Vec::new();
        let unexplained = chosen.iter().filter(|g| g.is_none()).count();
        if unexplained > 0 && self.events.is_empty() {
            notes.push(format!(
                "{unexplained} premature close(s) have no backend-side line to explain them: scan the php-fpm log and the kernel log (kern.log) together with the error log to tell a timeout kill from a crash or an OOM kill"
            ));
        }
        if self.dropped_events > 0 {
            notes.push(format!(
                "{} backend events beyond the first {EVENT_CAP} were not correlated",
                self.dropped_events
            ));
        }
        Decided {
            causes,
            correlations,
            notes,
        }
    }

    /// EACCES while connecting: SELinux on TCP, socket permissions on a unix socket.
    fn denials(&self) -> Vec<Correlation<Quote>> {
        let mut out = Vec::new();
        for unix in [false, true] {
            let peers: Vec<(&String, &Denied)> = self
                .denied
                .iter()
                .filter(|((u, _), _)| *u == unix)
                .map(|((_, p), d)| (p, d))
                .collect();
            if peers.is_empty() {
                continue;
            }
            let n: u64 = peers.iter().map(|(_, d)| d.count).sum();
            let names: Vec<String> = peers.iter().take(5).map(|(p, _)| (*p).clone()).collect();
            let avc = self.avc_count[usize::from(unix)];
            let evidence: Vec<Quote> = self
                .avc
                .iter()
                .filter(|(u, _)| *u == unix)
                .filter_map(|(_, q)| q.map(|q| self.quotes[q].clone()))
                .collect();
            let list = names.join(", ");
            let c = if unix {
                let first = names.first().map_or("SOCKET", String::as_str);
                Correlation {
                    cause: Cause::SocketPermission,
                    kind: "eacces_unix",
                    entries: n,
                    pids: Vec::new(),
                    peers: names.clone(),
                    explanation: format!(
                        "{n} connection(s) to the unix socket {list} failed with (13: Permission denied): the web server's worker user may not open the socket — its owner, group or mode (php-fpm listen.owner / listen.group / listen.mode) or a parent directory without +x. Check `ls -l {first}` and `namei -l {first}`.{}",
                        if avc > 0 {
                            format!(
                                " {avc} SELinux AVC denial(s) for a socket were logged too: the socket's SELinux context also blocks it (`ls -Z {first}`, restorecon)."
                            )
                        } else {
                            String::new()
                        }
                    ),
                    evidence,
                }
            } else {
                let haproxy = peers.iter().any(|(_, d)| d.server == "haproxy");
                let boolean = if haproxy {
                    "haproxy_connect_any"
                } else {
                    "httpd_can_network_connect"
                };
                let comm = match peers.first().map(|(_, d)| d.server.as_str()) {
                    Some("apache") => "httpd",
                    Some("haproxy") => "haproxy",
                    _ => "nginx",
                };
                Correlation {
                    cause: Cause::FirewallBlocked,
                    kind: "eacces_tcp",
                    entries: n,
                    pids: Vec::new(),
                    peers: names.clone(),
                    explanation: format!(
                        "{n} connection(s) to the TCP upstream {list} failed with (13: Permission denied): on a TCP peer no file permission is involved — a MAC policy forbids the web server to connect out, almost always SELinux (boolean {boolean}) or AppArmor. {}Check `getenforce` and `ausearch -m AVC -c {comm}`; the fix is `setsebool -P {boolean} 1`.",
                        if avc > 0 {
                            format!(
                                "Confirmed by {avc} AVC name_connect denial(s) in the audit log. "
                            )
                        } else {
                            String::new()
                        }
                    ),
                    evidence,
                }
            };
            out.push(c);
        }
        out
    }
}

/// The backend group that best explains a close at `t` on `path`.
fn best_group(
    t: i64,
    path: Option<&str>,
    groups: &[Group],
    index: &[(i64, usize)],
    used: &[bool],
) -> Option<usize> {
    let from = index.partition_point(|(ts, _)| *ts < t - NEAR_SECS);
    index[from..]
        .iter()
        .take_while(|(ts, _)| *ts <= t + NEAR_SECS)
        .take(NEAR_SCAN_CAP)
        .max_by_key(|(ts, g)| {
            let grp = &groups[*g];
            // A backend line naming the same path is the best witness; one
            // naming another path (a front controller rewrites it) the weakest.
            let path_score = match (path, grp.path.as_deref()) {
                (Some(a), Some(b)) if a == b => 2u8,
                (Some(_), Some(_)) => 0,
                _ => 1,
            };
            // One process serves one request: a worker already matched to a
            // close explains another only when no other worker died near it.
            let fresh = !used[*g] || grp.pid.is_none();
            (
                path_score,
                fresh,
                grp.kind.weight(),
                -(ts - t).abs(),
                std::cmp::Reverse(*g),
            )
        })
        .map(|(_, g)| *g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Catalogue, time::Zone};

    fn feed(c: &mut Correlator, lines: &[&str]) {
        let cat = Catalogue::builtin();
        let mut z = Zone::utc();
        for (i, l) in lines.iter().enumerate() {
            let head = crate::logs::format::head(l.as_bytes(), &mut z).expect("a head");
            if let Some(cl) = cat.classify(&head, l.as_bytes()) {
                let sig = cl.signature(cat);
                c.observe(0, i as u64, head.ts, &cl, sig, || (*l).to_owned());
            }
        }
    }

    const T: i64 = 1_710_408_127; // 2024-03-14T09:22:07Z

    #[test]
    fn timeout_kill_outranks_a_crash_at_the_same_second() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 31245, script '/var/www/html/report.php' (request: \"GET /report.php\") execution timed out (1.004 sec), terminating",
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 31246 exited on signal 11 (SIGSEGV - core dumped) after 3.1 seconds from start",
            ],
        );
        let d = c.decide(&[Close {
            ts: Some(T),
            path: Some("/report.php"),
        }]);
        assert_eq!(d.causes, vec![Cause::UpstreamTimeout]);
        assert_eq!(d.correlations[0].kind, "timeout_kill");
        assert_eq!(d.correlations[0].pids, vec![31245]);
    }

    #[test]
    fn the_path_named_by_the_backend_picks_the_crash_for_another_page() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 31245, script '/var/www/html/report.php' (request: \"GET /report.php\") execution timed out (1.004 sec), terminating",
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 31246 exited on signal 11 (SIGSEGV - core dumped) after 3.1 seconds from start",
            ],
        );
        let d = c.decide(&[
            Close {
                ts: Some(T),
                path: Some("/report.php"),
            },
            Close {
                ts: Some(T),
                path: Some("/crash.php"),
            },
        ]);
        assert_eq!(d.causes, vec![Cause::UpstreamTimeout, Cause::AppFatal]);
    }

    #[test]
    fn closes_at_one_second_are_matched_to_different_dead_workers() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 497 exited on signal 11 (SIGSEGV) after 0.395254 seconds from start",
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 508 exited on signal 11 (SIGSEGV) after 0.095806 seconds from start",
            ],
        );
        let close = Close {
            ts: Some(T),
            path: Some("/checkout.php"),
        };
        let d = c.decide(&[close, close, close]);
        assert_eq!(d.causes, vec![Cause::AppFatal; 3]);
        assert_eq!(d.correlations[0].pids, vec![497, 508]);
    }

    #[test]
    fn a_sigkill_after_a_timeout_kill_of_the_same_pid_is_the_timeout_not_oom() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "[14-Mar-2024 09:22:05] WARNING: [pool www] child 700, script '/var/www/a.php' (request: \"GET /a.php\") execution timed out (30.0 sec), terminating",
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 700 exited on signal 9 (SIGKILL) after 40.1 seconds from start",
            ],
        );
        let d = c.decide(&[Close {
            ts: Some(T),
            path: Some("/b"),
        }]);
        assert_eq!(d.causes, vec![Cause::UpstreamTimeout]);
    }

    #[test]
    fn sigkill_joined_with_the_kernel_oom_line_by_pid_is_a_confirmed_oom() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                // The kernel line is 30 s off (kern.log clock), the pid joins it.
                "2024-03-14T09:21:37+00:00 web kernel: Out of memory: Killed process 4121 (php-fpm8.2) total-vm:1837452kB, anon-rss:1520440kB, file-rss:2140kB",
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 4121 exited on signal 9 (SIGKILL) after 88.120442 seconds from start",
            ],
        );
        let d = c.decide(&[Close {
            ts: Some(T),
            path: Some("/"),
        }]);
        assert_eq!(d.causes, vec![Cause::ResourceExhaustion]);
        assert_eq!(d.correlations[0].kind, "oom_kill");
        assert!(d.correlations[0].explanation.contains("same pid"));
        assert_eq!(d.correlations[0].evidence.len(), 2);
    }

    #[test]
    fn a_lone_sigkill_is_only_probably_oom() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 4121 exited on signal 9 (SIGKILL) after 88.120442 seconds from start",
            ],
        );
        let d = c.decide(&[Close {
            ts: Some(T + 1),
            path: None,
        }]);
        assert_eq!(d.causes, vec![Cause::ResourceExhaustion]);
        assert_eq!(d.correlations[0].kind, "worker_killed");
    }

    #[test]
    fn far_events_explain_nothing_and_a_note_says_which_logs_to_add() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "[14-Mar-2024 09:22:00] WARNING: [pool www] child 1 exited on signal 11 (SIGSEGV) after 1 seconds from start",
            ],
        );
        let d = c.decide(&[Close {
            ts: Some(T),
            path: None,
        }]);
        assert_eq!(d.causes, vec![Cause::UpstreamClosed]);
        assert!(d.correlations.is_empty());
        let d = Correlator::default().decide(&[Close {
            ts: Some(T),
            path: None,
        }]);
        assert!(d.notes[0].contains("php-fpm log"), "{:?}", d.notes);
    }

    #[test]
    fn eacces_on_tcp_points_at_selinux_and_on_a_socket_at_its_permissions() {
        let mut c = Correlator::default();
        feed(
            &mut c,
            &[
                "2024/03/14 09:22:07 [crit] 1234#1234: *44 connect() to 127.0.0.1:8080 failed (13: Permission denied) while connecting to upstream, client: 10.0.0.1, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"example.com\"",
                "type=AVC msg=audit(1710408127.512:4821): avc:  denied  { name_connect } for  pid=2117 comm=\"nginx\" dest=8080 scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:http_cache_port_t:s0 tclass=tcp_socket permissive=0",
                "2024/03/14 09:22:07 [crit] 1234#1234: *43 connect() to unix:/var/run/php-fpm/www.sock failed (13: Permission denied) while connecting to upstream, client: 10.0.0.1, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/var/run/php-fpm/www.sock:\", host: \"example.com\"",
            ],
        );
        // EACCES on a cache file is not a connect: no SELinux advice for it.
        feed(
            &mut c,
            &[
                "2024/03/14 09:22:07 [crit] 1234#1234: *90 open() \"/var/lib/nginx/tmp/proxy/1/00/0000000001\" failed (13: Permission denied) while reading upstream, client: 10.0.0.1, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"example.com\"",
            ],
        );
        let d = c.decide(&[]);
        assert_eq!(d.correlations.len(), 2, "{:#?}", d.correlations);
        let tcp = &d.correlations[0];
        assert_eq!(
            (tcp.cause, tcp.kind, tcp.entries),
            (Cause::FirewallBlocked, "eacces_tcp", 1)
        );
        assert!(tcp.explanation.contains("httpd_can_network_connect"));
        assert!(tcp.explanation.contains("Confirmed by 1 AVC"));
        assert_eq!(tcp.peers, vec!["127.0.0.1:8080".to_owned()]);
        assert_eq!(tcp.evidence.len(), 1);
        let unix = &d.correlations[1];
        assert_eq!(
            (unix.cause, unix.kind),
            (Cause::SocketPermission, "eacces_unix")
        );
        assert!(unix.explanation.contains("listen.owner"));
        assert!(!unix.explanation.contains("SELinux"));
        assert_eq!(unix.peers, vec!["/var/run/php-fpm/www.sock".to_owned()]);
    }
}
