//! Access-log summary of the incident window: requests and statuses, the
//! 502/503/504 series per minute, when the gateway errors began (onset) and
//! whether they continue, the failing paths with their share of that path's
//! requests, and whether failures are site-wide or page-specific.
//!
//! Definitions (stable, tested against the generator's ground truth):
//! - a *gateway error* is a 502, 503 or 504;
//! - an *episode* is a run of gateway errors each less than [`EPISODE_GAP`]
//!   after the one before; episodes with fewer than [`EPISODE_MIN`] errors
//!   are sporadic. `onset` is the first error of the last non-sporadic
//!   episode; `ongoing` is true when its last error is within
//!   [`ONGOING_SECS`] of the newest request in the window;
//! - `scope` (over the window): `none` without gateway errors; `page_specific` when at most
//!   [`PAGE_SPECIFIC_MAX_PATHS`] paths hold ≥ 90% of the errors and the rest
//!   of the site fails under 5%; otherwise `site_wide`.
//!
//! Memory is bounded: per-path counts are capped at [`PATH_CAP`] distinct
//! paths, the series at [`SERIES_CAP`] minutes.

pub mod layout;

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::input;
use super::scan::Window;
use super::time::{self, Zone};
use super::window;
use layout::{Clock, Record, path_of};
pub use layout::{Layout, LayoutError};

/// Largest gap inside one episode of gateway errors.
pub const EPISODE_GAP: i64 = 300;
/// Fewer errors than this in an episode are sporadic.
pub const EPISODE_MIN: u64 = 3;
/// The last error within this of the newest request means "still failing".
pub const ONGOING_SECS: i64 = 120;
/// A page-specific failure concentrates on at most this many paths.
pub const PAGE_SPECIFIC_MAX_PATHS: usize = 3;
/// Distinct paths counted.
pub const PATH_CAP: usize = 200_000;
/// Minutes kept in the series.
pub const SERIES_CAP: usize = 20_160;

/// Where the failures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    SiteWide,
    PageSpecific,
    None,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SiteWide => "site_wide",
            Scope::PageSpecific => "page_specific",
            Scope::None => "none",
        }
    }
}

/// One minute of the series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minute {
    pub minute: String,
    pub requests: u64,
    #[serde(rename = "502")]
    pub s502: u64,
    #[serde(rename = "503")]
    pub s503: u64,
    #[serde(rename = "504")]
    pub s504: u64,
}

/// A failing path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingPath {
    pub path: String,
    /// Gateway errors on this path.
    pub count: u64,
    /// Errors ÷ requests to this path.
    pub share: f64,
    pub requests: u64,
}

/// A value and its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counted {
    pub value: String,
    pub count: u64,
}

/// Who produced the error pages, judged by their size (signatures §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ErrorPages {
    /// Sizes of the proxy's own error page (nginx 502/503/504 templates, HAProxy).
    pub proxy_generated: u64,
    /// Other sizes: most likely passed through from the upstream (or a custom error_page).
    pub passed_through: u64,
}

/// One access file read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessFile {
    pub path: String,
    pub layout: Option<String>,
    pub size: u64,
    pub start: u64,
    pub bytes_read: u64,
    pub lines: u64,
    pub malformed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was not read because the file changed while it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
    pub permission_denied: bool,
}

/// The result of [`summarise`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessSummary {
    pub window: Window,
    pub files: Vec<AccessFile>,
    pub requests: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub gateway_errors: u64,
    /// Gateway errors ÷ requests.
    pub error_rate: f64,
    pub per_minute: Vec<Minute>,
    pub onset: Option<String>,
    pub ongoing: bool,
    pub last_error: Option<String>,
    pub top_failing_paths: Vec<FailingPath>,
    pub scope: Scope,
    /// `$upstream_status` of the gateway errors, when the format has it.
    pub upstream_status: Vec<Counted>,
    /// `$upstream_addr` (or HAProxy backend/server) of the gateway errors.
    pub upstream_addr: Vec<Counted>,
    pub error_pages: ErrorPages,
    pub elapsed_ms: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct PathStat {
    requests: u64,
    errors: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Episode {
    start: i64,
    last: i64,
    count: u64,
}

/// Error-page sizes of the proxies (nginx with/without version and MSIE padding, HAProxy).
fn proxy_page(status: u16, bytes: u64) -> bool {
    match status {
        502 => matches!(bytes, 150 | 157 | 173 | 552 | 559 | 575 | 107 | 122),
        503 => matches!(bytes, 190 | 197 | 213 | 592 | 599 | 615 | 162 | 217),
        504 => matches!(bytes, 160 | 167 | 183 | 562 | 569 | 585 | 92 | 132 | 194),
        _ => false,
    }
}

#[inline]
fn num(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

struct Acc {
    requests: u64,
    by_status: Box<[u64; 1000]>,
    minutes: BTreeMap<i64, [u64; 4]>,
    paths: FxHashMap<Box<[u8]>, PathStat>,
    /// Gateway error times, kept only while they may still be the final episode.
    episode: Episode,
    last_episode: Option<Episode>,
    newest: Option<i64>,
    last_error: Option<i64>,
    up_status: FxHashMap<Box<[u8]>, u64>,
    up_addr: FxHashMap<Box<[u8]>, u64>,
    pages: ErrorPages,
}

impl Acc {
    fn new() -> Self {
        Acc {
            requests: 0,
            by_status: Box::new([0; 1000]),
            minutes: BTreeMap::new(),
            paths: FxHashMap::default(),
            episode: Episode::default(),
            last_episode: None,
            newest: None,
            last_error: None,
            up_status: FxHashMap::default(),
            up_addr: FxHashMap::default(),
            pages: ErrorPages::default(),
        }
    }

    #[inline]
    fn add(&mut self, ts: i64, rec: &Record<'_>) {
        let Some(status) = rec.status.and_then(num).filter(|s| *s < 1000) else {
            return;
        };
        let status = status as u16;
        self.requests += 1;
        self.by_status[status as usize] += 1;
        self.newest = Some(self.newest.map_or(ts, |n| n.max(ts)));
        let gw = (502..=504).contains(&status);
        let minute = ts.div_euclid(60) * 60;
        if self.minutes.len() < SERIES_CAP || self.minutes.contains_key(&minute) {
            let m = self.minutes.entry(minute).or_default();
            m[0] += 1;
            if gw {
                m[(status - 501) as usize] += 1;
            }
        }
        if let Some(p) = path_of(rec) {
            if let Some(st) = self.paths.get_mut(p) {
                st.requests += 1;
                st.errors += u64::from(gw);
            } else if self.paths.len() < PATH_CAP {
                self.paths.insert(
                    p.into(),
                    PathStat {
                        requests: 1,
                        errors: u64::from(gw),
                    },
                );
            }
        }
        if gw {
            self.gateway(ts, status, rec);
        }
    }

    fn gateway(&mut self, ts: i64, status: u16, rec: &Record<'_>) {
        self.last_error = Some(self.last_error.map_or(ts, |l| l.max(ts)));
        let e = &mut self.episode;
        if e.count > 0 && ts - e.last < EPISODE_GAP {
            e.count += 1;
            e.start = e.start.min(ts);
            e.last = e.last.max(ts);
        } else {
            if e.count >= EPISODE_MIN {
                self.last_episode = Some(*e);
            }
            *e = Episode {
                start: ts,
                last: ts,
                count: 1,
            };
        }
        if let Some(u) = rec.upstream_status.filter(|u| *u != b"-") {
            *self.up_status.entry(u.into()).or_default() += 1;
        }
        if let Some(a) = rec.upstream_addr.filter(|u| *u != b"-") {
            if let Some(n) = self.up_addr.get_mut(a) {
                *n += 1;
            } else if self.up_addr.len() < 10_000 {
                self.up_addr.insert(a.into(), 1);
            }
        }
        if let Some(b) = rec.bytes.and_then(num) {
            if proxy_page(status, b) {
                self.pages.proxy_generated += 1;
            } else {
                self.pages.passed_through += 1;
            }
        }
    }

    fn final_episode(&self) -> Option<Episode> {
        if self.episode.count >= EPISODE_MIN {
            Some(self.episode)
        } else {
            self.last_episode
        }
    }
}

fn top(m: &FxHashMap<Box<[u8]>, u64>, n: usize) -> Vec<Counted> {
    let mut v: Vec<Counted> = m
        .iter()
        .map(|(k, c)| Counted {
            value: String::from_utf8_lossy(k).into_owned(),
            count: *c,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(n);
    v
}

/// Summarise access logs for the window. `format`: a preset name, an nginx
/// `log_format` or Apache `LogFormat` string; `None` detects it per file.
pub fn summarise(
    files: &[PathBuf],
    format: Option<&str>,
    window: &Window,
) -> Result<AccessSummary, LayoutError> {
    summarise_with(files, format, window, &mut Zone::system())
}

/// [`summarise`] with an explicit time zone (tests, generated logs).
pub fn summarise_with(
    files: &[PathBuf],
    format: Option<&str>,
    window: &Window,
    zone: &mut Zone,
) -> Result<AccessSummary, LayoutError> {
    let started = Instant::now();
    let given = format.map(Layout::parse).transpose()?;
    let mut acc = Acc::new();
    let mut reports = Vec::new();
    for path in files {
        reports.push(summarise_file(path, given.as_ref(), window, zone, &mut acc));
    }
    Ok(finish(&acc, window, reports, started))
}

fn finish(acc: &Acc, window: &Window, files: Vec<AccessFile>, started: Instant) -> AccessSummary {
    let gateway_errors: u64 = acc.by_status[502..=504].iter().sum();
    let by_status: BTreeMap<u16, u64> = acc
        .by_status
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| (s as u16, *n))
        .collect();
    let episode = acc.final_episode();
    let mut failing: Vec<FailingPath> = acc
        .paths
        .iter()
        .filter(|(_, s)| s.errors > 0)
        .map(|(p, s)| FailingPath {
            path: String::from_utf8_lossy(p).into_owned(),
            count: s.errors,
            share: s.errors as f64 / s.requests as f64,
            requests: s.requests,
        })
        .collect();
    failing.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.path.cmp(&b.path)));
    let scope = scope_of(&failing, acc.requests, gateway_errors);
    failing.truncate(10);
    let per_minute = series(&acc.minutes);
    let ongoing = match (episode, acc.newest) {
        (Some(e), Some(n)) => n - e.last <= ONGOING_SECS,
        _ => false,
    };
    AccessSummary {
        window: *window,
        files,
        requests: acc.requests,
        by_status,
        gateway_errors,
        error_rate: if acc.requests == 0 {
            0.0
        } else {
            gateway_errors as f64 / acc.requests as f64
        },
        per_minute,
        onset: episode.map(|e| time::rfc3339(e.start)),
        ongoing,
        last_error: acc.last_error.map(time::rfc3339),
        top_failing_paths: failing,
        scope,
        upstream_status: top(&acc.up_status, 10),
        upstream_addr: top(&acc.up_addr, 10),
        error_pages: acc.pages,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

fn scope_of(failing: &[FailingPath], requests: u64, errors: u64) -> Scope {
    if errors == 0 {
        return Scope::None;
    }
    let top: u64 = failing
        .iter()
        .take(PAGE_SPECIFIC_MAX_PATHS)
        .map(|p| p.count)
        .sum();
    let top_requests: u64 = failing
        .iter()
        .take(PAGE_SPECIFIC_MAX_PATHS)
        .map(|p| p.requests)
        .sum();
    let rest_errors = errors - top;
    let rest_requests = requests.saturating_sub(top_requests);
    let concentrated = top * 10 >= errors * 9;
    let rest_healthy = rest_requests == 0 || (rest_errors as f64) < 0.05 * rest_requests as f64;
    // A site where nearly every path fails is site-wide even with few paths.
    if concentrated && rest_healthy && rest_requests > 0 {
        Scope::PageSpecific
    } else {
        Scope::SiteWide
    }
}

fn series(minutes: &BTreeMap<i64, [u64; 4]>) -> Vec<Minute> {
    let (Some(first), Some(last)) = (minutes.keys().next(), minutes.keys().next_back()) else {
        return Vec::new();
    };
    let span = ((last - first) / 60 + 1) as usize;
    let start = if span > SERIES_CAP {
        last - (SERIES_CAP as i64 - 1) * 60
    } else {
        *first
    };
    let mut out = Vec::new();
    let mut m = start;
    while m <= *last {
        let c = minutes.get(&m).copied().unwrap_or_default();
        out.push(Minute {
            minute: time::rfc3339(m),
            requests: c[0],
            s502: c[1],
            s503: c[2],
            s504: c[3],
        });
        m += 60;
    }
    out
}

fn summarise_file(
    path: &Path,
    given: Option<&Layout>,
    window: &Window,
    zone: &mut Zone,
    acc: &mut Acc,
) -> AccessFile {
    let mut rep = AccessFile {
        path: path.display().to_string(),
        layout: None,
        size: 0,
        start: 0,
        bytes_read: 0,
        lines: 0,
        malformed: 0,
        error: None,
        unread: None,
        permission_denied: false,
    };
    let opened = match input::open(path) {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            rep.error = Some(input::refusal(&e));
            return rep;
        }
        Err(e) => {
            rep.permission_denied = e.kind() == io::ErrorKind::PermissionDenied;
            rep.error = Some(if rep.permission_denied {
                format!(
                    "{}: permission denied (run as root or add yourself to group adm)",
                    path.display()
                )
            } else {
                format!("{}: {e}", path.display())
            });
            return rep;
        }
    };
    let size = opened.size;
    let mut f = &opened.file;
    rep.size = size;
    let detected;
    let layout = if let Some(l) = given {
        l
    } else {
        let mut head = vec![0u8; 64 * 1024];
        let n = std::os::unix::fs::FileExt::read_at(f, &mut head, 0).unwrap_or(0);
        if let Some(l) = layout::detect(&head[..n]) {
            detected = l;
            &detected
        } else {
            {
                rep.error = Some(format!(
                    "{}: access-log format not recognised; give it with --log-format (a log_format / LogFormat string)",
                    path.display()
                ));
                return rep;
            }
        }
    };
    rep.layout = Some(layout.name.clone());
    let ts_of = |line: &[u8], z: &mut Zone| -> Option<i64> {
        let r = layout.record(line)?;
        Clock::default().time(&r, z)
    };
    let mut search = window::Search::default();
    let start = match window.from {
        Some(from) if size > 0 => {
            window::bounds(f, size, from, zone, &mut search, &ts_of).map_or(0, |b| b.0)
        }
        _ => 0,
    };
    let end = match window.to {
        Some(to) if size > 0 => {
            window::bounds(f, size, to + 2 * window::SLACK, zone, &mut search, &ts_of)
                .map_or(size, |b| (b.1 + (64 << 10)).min(size))
        }
        _ => size,
    };
    rep.start = start;
    if end <= start || f.seek(SeekFrom::Start(start)).is_err() {
        return rep;
    }
    let mut clock = Clock::default();
    let r = (&mut f).take(end - start);
    match for_each_line(r, |line| {
        rep.lines += 1;
        let Some(rec) = layout.record(line) else {
            rep.malformed += 1;
            return;
        };
        let Some(ts) = clock.time(&rec, zone) else {
            rep.malformed += 1;
            return;
        };
        if window.contains(Some(ts)) {
            acc.add(ts, &rec);
        }
    }) {
        Ok(n) => {
            rep.bytes_read = n;
            rep.unread = opened.changes(start + n, end);
        }
        Err(e) => rep.error = Some(format!("{}: {e}", path.display())),
    }
    rep
}

/// Call `on` for every line (without its newline) of a stream, in 1 MiB
/// chunks; a line longer than a chunk is cut. Returns bytes read.
pub fn for_each_line(mut r: impl Read, mut on: impl FnMut(&[u8])) -> io::Result<u64> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; 2 * CHUNK];
    let mut carry = 0;
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < CHUNK {
            match r.read(&mut buf[carry + n..carry + CHUNK]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
        let filled = carry + n;
        if filled == 0 {
            break;
        }
        let eof = n == 0;
        let data = &buf[..filled];
        let mut pos = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            let line = &data[pos..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            on(line);
            pos = nl + 1;
        }
        if eof {
            if pos < filled {
                on(&data[pos..filled]);
            }
            break;
        }
        if filled - pos >= CHUNK {
            on(&data[pos..filled]);
            pos = filled;
        }
        buf.copy_within(pos..filled, 0);
        carry = filled - pos;
    }
    Ok(total)
}

/// Text rendering for terminals.
pub fn render_text(s: &AccessSummary) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for f in &s.files {
        if let Some(e) = &f.error {
            let _ = writeln!(o, "file: {e}");
        } else {
            let _ = writeln!(
                o,
                "file: {} ({}, {} lines read, {} not parsed)",
                f.path,
                f.layout.as_deref().unwrap_or("?"),
                f.lines,
                f.malformed
            );
            if let Some(u) = &f.unread {
                let _ = writeln!(o, "  not read: the file {u}");
            }
        }
    }
    let _ = writeln!(
        o,
        "requests: {}   gateway errors (502/503/504): {} ({:.2}%)",
        s.requests,
        s.gateway_errors,
        s.error_rate * 100.0
    );
    let st: Vec<String> = s
        .by_status
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let _ = writeln!(o, "by status: {}", st.join(", "));
    match &s.onset {
        Some(on) => {
            let _ = writeln!(
                o,
                "onset: {on} ({})",
                if s.ongoing {
                    "still failing"
                } else {
                    "stopped"
                }
            );
        }
        None => {
            let _ = writeln!(o, "onset: none (no sustained burst of gateway errors)");
        }
    }
    let _ = writeln!(o, "scope: {}", s.scope.as_str());
    if !s.top_failing_paths.is_empty() {
        let _ = writeln!(o, "failing paths:");
        for p in &s.top_failing_paths {
            let _ = writeln!(
                o,
                "  {:>7}  {:>5.1}% of {:>7}  {}",
                p.count,
                p.share * 100.0,
                p.requests,
                p.path
            );
        }
    }
    if s.error_pages.proxy_generated + s.error_pages.passed_through > 0 {
        let _ = writeln!(
            o,
            "error pages: {} sized like the proxy's own page, {} other sizes (passed through from the upstream or a custom error_page)",
            s.error_pages.proxy_generated, s.error_pages.passed_through
        );
    }
    for (label, list) in [
        ("upstream status", &s.upstream_status),
        ("upstream addr", &s.upstream_addr),
    ] {
        if !list.is_empty() {
            let v: Vec<String> = list
                .iter()
                .map(|c| format!("{} ({})", c.value, c.count))
                .collect();
            let _ = writeln!(o, "{label}: {}", v.join(", "));
        }
    }
    let recent: Vec<&Minute> = s
        .per_minute
        .iter()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if !recent.is_empty() {
        let _ = writeln!(o, "last minutes (requests / 502 / 503 / 504):");
        for m in recent {
            let _ = writeln!(
                o,
                "  {}  {:>6} {:>5} {:>5} {:>5}",
                m.minute, m.requests, m.s502, m.s503, m.s504
            );
        }
    }
    o
}
