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
//!
//! A file's range is read on every core ([`fold_parts`]); the summary always
//! equals one pass over the file in order (parts that cannot be merged
//! exactly are read again in one pass).

pub mod layout;

use crate::platform::fs::FileExt;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::input;
use super::scan::Window;
use super::split::{self, RangeReader};
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
/// Tally longer than this are read in pieces of this size.
pub const LINE_PIECE: usize = 1 << 20;
/// Distinct upstream addresses counted.
pub const ADDR_CAP: usize = 10_000;

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

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Episode {
    start: i64,
    last: i64,
    count: u64,
}

/// The episode state machine over gateway-error times, in file order.
///
/// A later part of a split range (see [`Episodes::later`]) does not know the
/// episode it continues, so it keeps its *head* apart: the errors before its
/// first local gap of [`EPISODE_GAP`]. Each of them is less than the gap
/// after the newest one before it, so in one pass they all join whatever
/// episode the head's first error joins; they fold to a count, a min and a
/// max. At the first local gap (`synced`) the part starts a fresh machine,
/// which equals the single pass when that pass also breaks there (checked
/// in [`Episodes::then`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Episodes {
    cur: Episode,
    last: Option<Episode>,
    later: bool,
    head: Option<Episode>,
    head_first: i64,
    synced: Option<i64>,
}

impl Episodes {
    /// The machine of a later part.
    fn later() -> Self {
        Episodes {
            later: true,
            ..Episodes::default()
        }
    }

    #[inline]
    fn step(&mut self, ts: i64) {
        if self.later && self.synced.is_none() {
            match &mut self.head {
                None => {
                    self.head = Some(Episode {
                        start: ts,
                        last: ts,
                        count: 1,
                    });
                    self.head_first = ts;
                    return;
                }
                Some(h) if ts - h.last < EPISODE_GAP => {
                    h.count += 1;
                    h.start = h.start.min(ts);
                    h.last = h.last.max(ts);
                    return;
                }
                Some(_) => self.synced = Some(ts),
            }
        }
        let e = &mut self.cur;
        if e.count > 0 && ts - e.last < EPISODE_GAP {
            e.count += 1;
            e.start = e.start.min(ts);
            e.last = e.last.max(ts);
        } else {
            if e.count >= EPISODE_MIN {
                self.last = Some(*e);
            }
            *e = Episode {
                start: ts,
                last: ts,
                count: 1,
            };
        }
    }

    /// This (single-pass) machine after the errors of the later part `p`;
    /// `None` when the result would not equal one pass (timestamps out of
    /// order across the cut: the single pass would not break where `p` did).
    fn then(&self, p: &Episodes) -> Option<Episodes> {
        let mut s = *self;
        let Some(h) = p.head else {
            return Some(s);
        };
        s.step(p.head_first);
        s.cur.count += h.count - 1;
        s.cur.start = s.cur.start.min(h.start);
        s.cur.last = s.cur.last.max(h.last);
        if let Some(t) = p.synced {
            if t - s.cur.last < EPISODE_GAP {
                return None;
            }
            if s.cur.count >= EPISODE_MIN {
                s.last = Some(s.cur);
            }
            s.cur = p.cur;
            if p.last.is_some() {
                s.last = p.last;
            }
        }
        Some(s)
    }

    fn final_episode(&self) -> Option<Episode> {
        if self.cur.count >= EPISODE_MIN {
            Some(self.cur)
        } else {
            self.last
        }
    }
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
    /// The minute of the previous request and whether it is in `minutes`
    /// (its counts wait in `minute_counts` until the minute changes).
    minute: Option<(i64, bool)>,
    minute_counts: [u64; 4],
    paths: FxHashMap<Box<[u8]>, PathStat>,
    episodes: Episodes,
    newest: Option<i64>,
    last_error: Option<i64>,
    up_status: FxHashMap<Box<[u8]>, u64>,
    up_addr: FxHashMap<Box<[u8]>, u64>,
    pages: ErrorPages,
}

impl Acc {
    /// The accumulator of a later part of a split range.
    fn later() -> Self {
        Acc {
            episodes: Episodes::later(),
            ..Acc::new()
        }
    }

    fn new() -> Self {
        Acc {
            requests: 0,
            by_status: Box::new([0; 1000]),
            minutes: BTreeMap::new(),
            minute: None,
            minute_counts: [0; 4],
            paths: FxHashMap::default(),
            episodes: Episodes::default(),
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
        if self.minute.is_none_or(|(m, _)| m != minute) {
            self.flush_minute();
            // Admitted as in a map capped at its first sight.
            let kept = self.minutes.len() < SERIES_CAP || self.minutes.contains_key(&minute);
            if kept {
                self.minutes.entry(minute).or_default();
            }
            self.minute = Some((minute, kept));
        }
        self.minute_counts[0] += 1;
        if gw {
            self.minute_counts[(status - 501) as usize] += 1;
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

    /// Add the pending counts of the current minute to the series.
    fn flush_minute(&mut self) {
        let counts = std::mem::take(&mut self.minute_counts);
        if let Some((m, true)) = self.minute
            && let Some(c) = self.minutes.get_mut(&m)
        {
            for (a, b) in c.iter_mut().zip(counts) {
                *a += b;
            }
        }
    }

    fn gateway(&mut self, ts: i64, status: u16, rec: &Record<'_>) {
        self.last_error = Some(self.last_error.map_or(ts, |l| l.max(ts)));
        self.episodes.step(ts);
        if let Some(u) = rec.upstream_status.filter(|u| *u != b"-") {
            *self.up_status.entry(u.into()).or_default() += 1;
        }
        if let Some(a) = rec.upstream_addr.filter(|u| *u != b"-") {
            if let Some(n) = self.up_addr.get_mut(a) {
                *n += 1;
            } else if self.up_addr.len() < ADDR_CAP {
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

    /// Merge the accumulator of the later part `p` (read after everything
    /// in `self`), if the result equals one pass over both; otherwise leave
    /// `self` unchanged and return false. Counts add; the capped maps merge
    /// only while their union fits the cap (so no key was refused in one
    /// pass either); the episodes as [`Episodes::then`].
    fn merge(&mut self, mut p: Acc) -> bool {
        self.flush_minute();
        p.flush_minute();
        let Some(episodes) = self.episodes.then(&p.episodes) else {
            return false;
        };
        let new_minutes = p
            .minutes
            .keys()
            .filter(|k| !self.minutes.contains_key(k))
            .count();
        let new_paths = p
            .paths
            .keys()
            .filter(|k| !self.paths.contains_key(*k))
            .count();
        let new_addrs = p
            .up_addr
            .keys()
            .filter(|k| !self.up_addr.contains_key(*k))
            .count();
        if self.minutes.len() + new_minutes > SERIES_CAP
            || self.paths.len() + new_paths > PATH_CAP
            || self.up_addr.len() + new_addrs > ADDR_CAP
        {
            return false;
        }
        self.episodes = episodes;
        self.requests += p.requests;
        for (a, b) in self.by_status.iter_mut().zip(p.by_status.iter()) {
            *a += b;
        }
        for (m, c) in p.minutes {
            let e = self.minutes.entry(m).or_default();
            for (a, b) in e.iter_mut().zip(c) {
                *a += b;
            }
        }
        // The next request starts a new minute (looked up again).
        self.minute = None;
        for (k, s) in p.paths {
            let e = self.paths.entry(k).or_default();
            e.requests += s.requests;
            e.errors += s.errors;
        }
        self.newest = max_opt(self.newest, p.newest);
        self.last_error = max_opt(self.last_error, p.last_error);
        for (k, n) in p.up_status {
            *self.up_status.entry(k).or_default() += n;
        }
        for (k, n) in p.up_addr {
            *self.up_addr.entry(k).or_default() += n;
        }
        self.pages.proxy_generated += p.pages.proxy_generated;
        self.pages.passed_through += p.pages.passed_through;
        true
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
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
    Ok(finish(&mut acc, window, reports, started))
}

fn finish(
    acc: &mut Acc,
    window: &Window,
    files: Vec<AccessFile>,
    started: Instant,
) -> AccessSummary {
    acc.flush_minute();
    let gateway_errors: u64 = acc.by_status[502..=504].iter().sum();
    let by_status: BTreeMap<u16, u64> = acc
        .by_status
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| (s as u16, *n))
        .collect();
    let episode = acc.episodes.final_episode();
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
    let f = &opened.file;
    rep.size = size;
    let detected;
    let layout = if let Some(l) = given {
        l
    } else {
        let mut head = vec![0u8; 64 * 1024];
        let n = crate::platform::fs::FileExt::read_at(f, &mut head, 0).unwrap_or(0);
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
    if end <= start {
        return rep;
    }
    let (lines, read) = fold_range(f, start, end, layout, window, zone, acc);
    rep.lines = lines.lines;
    rep.malformed = lines.malformed;
    match read {
        Ok(()) => {
            rep.bytes_read = lines.bytes;
            rep.unread = opened.changes(start + lines.bytes, end);
        }
        Err(e) => rep.error = Some(format!("{}: {e}", path.display())),
    }
    rep
}

/// Line counts of a byte range.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    lines: u64,
    malformed: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.lines += o.lines;
        self.malformed += o.malformed;
        self.bytes += o.bytes;
    }
}

/// Read `[a, b)` (from a line start) into `acc`.
#[allow(clippy::too_many_arguments, reason = "the summary's whole context")]
#[allow(
    clippy::many_single_char_names,
    reason = "f, a, b: the file and its range"
)]
fn fold_part(
    f: &File,
    a: u64,
    b: u64,
    layout: &Layout,
    window: &Window,
    zone: &mut Zone,
    acc: &mut Acc,
    lines: &mut Tally,
) -> io::Result<()> {
    let mut clock = Clock::default();
    let r = RangeReader { f, pos: a, end: b };
    let n = for_each_line(r, |line| {
        lines.lines += 1;
        let Some(rec) = layout.record(line) else {
            lines.malformed += 1;
            return;
        };
        let Some(ts) = clock.time(&rec, zone) else {
            lines.malformed += 1;
            return;
        };
        if window.contains(Some(ts)) {
            acc.add(ts, &rec);
        }
    })?;
    lines.bytes += n;
    Ok(())
}

/// Read `[start, end)` into `acc`, split across the cores.
fn fold_range(
    f: &File,
    start: u64,
    end: u64,
    layout: &Layout,
    window: &Window,
    zone: &mut Zone,
    acc: &mut Acc,
) -> (Tally, io::Result<()>) {
    let parts = split::cores()
        .min(split::MAX_PARTS)
        .min(((end.saturating_sub(start)) / split::MIN_PART).max(1) as usize);
    fold_parts(f, start, end, parts, layout, window, zone, acc)
}

/// [`fold_range`] with a given number of parts (tests compare 1 with many).
///
/// The parts start at line starts; the first is read on the calling thread
/// into `acc`, the others on scoped threads into their own accumulators,
/// merged in file order by [`Acc::merge`]. A part that cannot be merged
/// exactly (a cap reached, timestamps out of order across a cut) is read
/// again, with everything after it, in one pass: the result always equals
/// one pass over the range.
#[allow(clippy::too_many_arguments, reason = "the summary's whole context")]
#[allow(
    clippy::many_single_char_names,
    reason = "f, a, b: the file and its range"
)]
fn fold_parts(
    f: &File,
    start: u64,
    end: u64,
    parts: usize,
    layout: &Layout,
    window: &Window,
    zone: &mut Zone,
    acc: &mut Acc,
) -> (Tally, io::Result<()>) {
    let cuts = if parts > 1 {
        line_cuts(f, start, end, parts)
    } else {
        vec![start, end]
    };
    let mut lines = Tally::default();
    if cuts.len() <= 2 {
        let r = fold_part(f, start, end, layout, window, zone, acc, &mut lines);
        return (lines, r);
    }
    std::thread::scope(|s| {
        let workers: Vec<_> = cuts[1..]
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0], w[1]);
                let mut z = zone.clone();
                s.spawn(move || {
                    let mut part = Acc::later();
                    let mut pl = Tally::default();
                    let r = fold_part(f, a, b, layout, window, &mut z, &mut part, &mut pl);
                    (part, pl, r)
                })
            })
            .collect();
        let first = fold_part(f, cuts[0], cuts[1], layout, window, zone, acc, &mut lines);
        if first.is_err() {
            return (lines, first);
        }
        for (i, w) in workers.into_iter().enumerate() {
            let Ok((part, pl, r)) = w.join() else {
                return (
                    lines,
                    Err(io::Error::other("an access-log thread panicked")),
                );
            };
            if !acc.merge(part) {
                let r = fold_part(f, cuts[i + 1], end, layout, window, zone, acc, &mut lines);
                return (lines, r);
            }
            lines.add(pl);
            if r.is_err() {
                return (lines, r);
            }
        }
        (lines, Ok(()))
    })
}

/// Cut points: `start`, the line start after the first newline at or after
/// each `k/parts` of the range (skipped when none is within 1 MiB), `end`.
fn line_cuts(f: &File, start: u64, end: u64, parts: usize) -> Vec<u64> {
    const SEARCH: u64 = 1 << 20;
    let mut out = vec![start];
    let len = end - start;
    let mut buf = vec![0u8; 64 << 10];
    for k in 1..parts {
        let target = start + len / parts as u64 * k as u64;
        let mut at = target.saturating_sub(1).max(start);
        let limit = end.min(at.saturating_add(SEARCH));
        let mut found = None;
        while at < limit && found.is_none() {
            let want = buf.len().min((limit - at) as usize);
            let Ok(n) = f.read_at(&mut buf[..want], at) else {
                break;
            };
            if n == 0 {
                break;
            }
            match memchr::memchr(b'\n', &buf[..n]) {
                Some(i) => found = Some(at + i as u64 + 1),
                None => at += n as u64,
            }
        }
        if let Some(c) = found
            && c > *out.last().unwrap_or(&start)
            && c < end
        {
            out.push(c);
        }
    }
    out.push(end);
    out
}

/// Call `on` for every line (without its newline and a `\r` before it) of a
/// stream, read in 1 MiB chunks. A line longer than [`LINE_PIECE`] is handed
/// over in pieces of that size from its start (the same pieces wherever the
/// reading started, so parts of a split range see what one pass sees).
/// Returns bytes read.
pub fn for_each_line(mut r: impl Read, mut on: impl FnMut(&[u8])) -> io::Result<u64> {
    const CHUNK: usize = LINE_PIECE;
    let mut buf = vec![0u8; 2 * CHUNK];
    let mut carry = 0;
    let mut total = 0u64;
    // Pieces of the current line were handed over already.
    let mut cut = false;
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
            if line.len() <= CHUNK {
                if !(cut && line.is_empty()) {
                    on(line);
                }
            } else {
                line.chunks(CHUNK).for_each(&mut on);
            }
            cut = false;
            pos = nl + 1;
        }
        if eof {
            if pos < filled {
                on(&data[pos..filled]);
            }
            break;
        }
        while filled - pos > CHUNK {
            on(&data[pos..pos + CHUNK]);
            pos += CHUNK;
            cut = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::generate::{Flavor, Spec, generate};

    /// One pass over the sequence.
    fn one_pass(ts: &[i64]) -> Episodes {
        let mut e = Episodes::default();
        for t in ts {
            e.step(*t);
        }
        e
    }

    #[test]
    fn split_episodes_equal_one_pass_or_say_so() {
        // A small deterministic generator: mostly increasing times with
        // jitter, gaps around EPISODE_GAP, and some out-of-order times.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut exact = 0;
        for round in 0..3000 {
            let len = 1 + rnd(40) as usize;
            let mut t = 1_000_000i64;
            let mut ts = Vec::new();
            for _ in 0..len {
                t += match rnd(4) {
                    0 => EPISODE_GAP - 1 + rnd(3) as i64,
                    1 => rnd(2 * EPISODE_GAP as u64) as i64,
                    _ => rnd(30) as i64,
                };
                let jitter = if round % 3 == 0 {
                    rnd(2 * EPISODE_GAP as u64) as i64 - EPISODE_GAP
                } else {
                    0
                };
                ts.push(t + jitter);
            }
            let want = one_pass(&ts);
            let cuts: Vec<usize> = (0..rnd(4)).map(|_| rnd(len as u64 + 1) as usize).collect();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut got = Some(Episodes::default());
            let mut from = 0;
            for c in cuts.iter().copied().chain([len]) {
                let mut p = Episodes::later();
                for t in &ts[from..c] {
                    p.step(*t);
                }
                got = got.and_then(|g| g.then(&p));
                from = c;
            }
            match got {
                Some(g) => {
                    assert_eq!(g.final_episode(), want.final_episode(), "{ts:?} {cuts:?}");
                    assert_eq!((g.cur, g.last), (want.cur, want.last), "{ts:?} {cuts:?}");
                    exact += 1;
                }
                // Refused only when times go backwards.
                None => assert!(ts.windows(2).any(|w| w[1] < w[0]), "{ts:?} {cuts:?}"),
            }
        }
        assert!(exact > 2000);
    }

    fn summary_in_parts(path: &Path, parts: usize, window: &Window) -> AccessSummary {
        let layout = Layout::parse("combined").unwrap();
        let f = File::open(path).unwrap();
        let size = f.metadata().unwrap().len();
        let mut acc = Acc::new();
        let (lines, r) = fold_parts(
            &f,
            0,
            size,
            parts,
            &layout,
            window,
            &mut Zone::utc(),
            &mut acc,
        );
        r.unwrap();
        assert_eq!(lines.bytes, size);
        let file = AccessFile {
            path: String::new(),
            layout: None,
            size,
            start: 0,
            bytes_read: lines.bytes,
            lines: lines.lines,
            malformed: lines.malformed,
            error: None,
            unread: None,
            permission_denied: false,
        };
        let mut s = finish(&mut acc, window, vec![file], Instant::now());
        s.elapsed_ms = 0;
        s
    }

    #[test]
    fn parallel_parts_equal_one_pass_on_generated_logs() {
        let dir = tempfile::tempdir().unwrap();
        let end = 1_710_417_600;
        let spec = Spec::new(Flavor::Nginx, 64 << 10, 6 << 20, end);
        let path = dir.path().join("access.log");
        let mut acc = Vec::new();
        generate(&spec, &mut std::io::sink(), &mut acc).unwrap();
        // Odd lines too: junk, a long line, a CRLF line, times out of order.
        acc.extend_from_slice(b"junk\n\n");
        acc.extend(std::iter::repeat_n(b'x', 3 << 20));
        acc.extend_from_slice(b"\n10.0.0.9 - - [14/Mar/2024:08:00:00 +0000] \"GET /old HTTP/1.1\" 502 157 \"-\" \"-\"\r\n");
        acc.extend_from_slice(
            b"10.0.0.9 - - [14/Mar/2024:12:00:00 +0000] \"GET /new HTTP/1.1\" 504 167 \"-\" \"-\"",
        );
        std::fs::write(&path, &acc).unwrap();
        for window in [
            Window::default(),
            Window {
                from: Some(end - 3600),
                to: Some(end),
            },
        ] {
            let one = summary_in_parts(&path, 1, &window);
            assert!(one.gateway_errors > 0 && one.onset.is_some());
            for parts in [2, 3, 5, 8] {
                assert_eq!(
                    summary_in_parts(&path, parts, &window),
                    one,
                    "{parts} parts"
                );
            }
        }
    }

    #[test]
    fn long_lines_are_cut_the_same_wherever_reading_starts() {
        let mut data = Vec::new();
        data.extend(std::iter::repeat_n(b'a', LINE_PIECE * 2 + 5));
        data.extend_from_slice(b"\r\nshort\n");
        data.extend(std::iter::repeat_n(b'b', LINE_PIECE));
        data.extend_from_slice(b"\n\n");
        data.extend(std::iter::repeat_n(b'c', LINE_PIECE + 1));
        // Short lines before move the 1 MiB read boundaries.
        let pieces = |shift: usize| {
            let mut input = b"p\n".repeat(shift);
            input.extend_from_slice(&data);
            let mut out = Vec::new();
            for_each_line(&input[..], |l| out.push((l.len(), l.first().copied()))).unwrap();
            out.split_off(shift)
        };
        let want = vec![
            (LINE_PIECE, Some(b'a')),
            (LINE_PIECE, Some(b'a')),
            (5, Some(b'a')),
            (5, Some(b's')),
            (LINE_PIECE, Some(b'b')),
            (0, None),
            (LINE_PIECE, Some(b'c')),
            (1, Some(b'c')),
        ];
        for shift in [0, 1, 1000, 200_000, 349_525] {
            assert_eq!(pieces(shift), want, "{shift}");
        }
    }
}
