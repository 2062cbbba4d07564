//! `scan`: the error logs of an incident window, classified and summarised.
//!
//! Per file: the window is located by seeking ([`super::window`]), rotated
//! files are followed while the window reaches back into them, and only
//! prefilter candidates are classified. Results are aggregated per cause with
//! bounded memory (top lists capped, three samples). Correlation
//! ([`super::correlate`]) runs at the end: an nginx `upstream prematurely
//! closed` within ±2 s of a php-fpm timeout kill is a timeout, next to an OOM
//! kill a resource exhaustion, and next to a worker crash a crash (an app
//! fault when it is one page only); EACCES says SELinux on TCP, socket
//! permissions on a unix socket.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::catalogue::Catalogue;
use super::classify::{Classification, Role};
use super::correlate::{Close, Correlation, Correlator, Quote};
use super::input;
use super::reader::{self, Found};
use super::rotation;
use super::split;
use super::time::{self, Zone};
use super::window::{self, SLACK};
use crate::cause::Cause;

/// The incident window in Unix seconds; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Window {
    /// Everything in the files.
    pub fn all() -> Self {
        Window::default()
    }

    /// The last `d` up to now.
    pub fn last(d: std::time::Duration) -> Self {
        let now = jiff::Timestamp::now().as_second();
        Window {
            from: Some(now - d.as_secs() as i64),
            to: None,
        }
    }

    pub fn between(from: jiff::Timestamp, to: jiff::Timestamp) -> Self {
        Window {
            from: Some(from.as_second()),
            to: Some(to.as_second()),
        }
    }

    /// Does the window hold this time? An entry without a time is only in an unbounded window.
    pub fn contains(&self, ts: Option<i64>) -> bool {
        match ts {
            Some(t) => self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t <= e),
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Window", 2)?;
        st.serialize_field("from", &self.from.map(time::rfc3339))?;
        st.serialize_field("to", &self.to.map(time::rfc3339))?;
        st.end()
    }
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions<'a> {
    pub catalogue: &'a Catalogue,
    pub zone: Zone,
    /// Read `error.log.1`, `error.log.2.gz` when the window reaches back into them.
    pub follow_rotations: bool,
    /// Samples kept per cause.
    pub samples: usize,
}

impl Default for ScanOptions<'static> {
    fn default() -> Self {
        ScanOptions {
            catalogue: Catalogue::builtin(),
            zone: Zone::system(),
            follow_rotations: true,
            samples: 3,
        }
    }
}

/// A value and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    pub value: String,
    pub count: u64,
}

/// A log entry quoted as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// The entry (query strings redacted, capped at 2 KiB).
    pub text: String,
    /// `file:line` (or `file@byte OFFSET` deep in a large file).
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Everything about one cause in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CauseSummary {
    pub cause: Cause,
    /// `primary` when the proxy itself logged failures of this cause;
    /// `secondary` when only consequences or backend-side lines point at it.
    pub role: Role,
    /// Entries that are failures of this cause (primary).
    pub count: u64,
    /// Consequences and backend-side corroboration attributed to it.
    pub secondary_count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub upstreams: Vec<Ranked>,
    pub paths: Vec<Ranked>,
    pub clients: Vec<Ranked>,
    /// Unix sockets named by the entries.
    pub sockets: Vec<Ranked>,
    pub signatures: Vec<Ranked>,
    pub samples: Vec<Sample>,
}

/// One file read (or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    pub path: String,
    pub size: u64,
    /// Where reading started and how much was read.
    pub start: u64,
    pub bytes_read: u64,
    pub candidates: u64,
    pub probes: u32,
    pub first_time: Option<String>,
    /// A rotation of an operand (`error.log.1`), read because the window reaches into it.
    pub rotated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was not read because the file changed while it was read (grew,
    /// was truncated or rotated); the rest of the report stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
    /// The file exists but may not be read (run as root or join group adm).
    pub permission_denied: bool,
}

/// Lines that mention upstream trouble but matched no signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Unmatched {
    pub count: u64,
    pub samples: Vec<Sample>,
}

/// The result of [`scan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    pub window: Window,
    pub files: Vec<FileReport>,
    /// Ranked: primary causes by count, then secondary ones.
    pub causes: Vec<CauseSummary>,
    pub unmatched: Unmatched,
    /// Negative controls seen (not causes), by signature.
    pub ignored: Vec<Ranked>,
    /// Consequences with no primary failure before them, by signature.
    pub consequences: Vec<Ranked>,
    /// What correlation decided, with the backend lines that decided it.
    pub correlations: Vec<Correlation<Sample>>,
    /// What correlation could not decide (missing backend logs, events over the cap).
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
}

impl ScanReport {
    /// The highest-ranked cause.
    pub fn top_cause(&self) -> Option<Cause> {
        self.causes.first().map(|c| c.cause)
    }

    /// Did any file fail to open?
    pub fn unreadable(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.error.is_some())
    }
}

/// Distinct keys a top list tracks before it counts only known ones.
const TOP_CAP: usize = 10_000;
/// Entries shown in each top list.
const TOP_SHOWN: usize = 5;
/// Premature closes held for correlation (beyond: counted as `upstream_closed`).
const PENDING_CAP: usize = 200_000;
/// How long a primary failure explains the consequences after it.
const INHERIT_SECS: i64 = 60;

/// Counts per value (FxHash: the keys are log text, not attacker-chosen
/// table sizes, and the map is capped at [`TOP_CAP`]).
#[derive(Debug, Default, Clone)]
struct Top(rustc_hash::FxHashMap<String, u64>);

impl Top {
    fn add(&mut self, v: Option<&str>) {
        let Some(v) = v else { return };
        if let Some(n) = self.0.get_mut(v) {
            *n += 1;
        } else if self.0.len() < TOP_CAP {
            self.0.insert(v.to_owned(), 1);
        }
    }
    fn ranked(&self, n: usize) -> Vec<Ranked> {
        let mut v: Vec<Ranked> = self
            .0
            .iter()
            .map(|(k, c)| Ranked {
                value: k.clone(),
                count: *c,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(n);
        v
    }
}

#[derive(Debug, Default)]
struct CauseAgg {
    count: u64,
    secondary: u64,
    first: Option<i64>,
    last: Option<i64>,
    upstreams: Top,
    paths: Top,
    clients: Top,
    sockets: Top,
    signatures: Top,
    samples: Vec<RawSample>,
}

#[derive(Debug, Clone)]
struct RawSample {
    text: String,
    file: usize,
    offset: u64,
    ts: Option<i64>,
    signature: Option<String>,
}

#[derive(Debug, Clone)]
struct Pending {
    ts: Option<i64>,
    path: Option<String>,
    upstream: Option<String>,
    client: Option<String>,
    socket: Option<String>,
    signature: String,
    sample: Option<RawSample>,
}

struct Agg<'a> {
    cat: &'a Catalogue,
    samples: usize,
    causes: BTreeMap<Cause, CauseAgg>,
    unmatched: Unmatched,
    unmatched_raw: Vec<RawSample>,
    ignored: Top,
    consequences: Top,
    last_primary: Option<(Cause, i64)>,
    pending: Vec<Pending>,
    corr: Correlator,
    correlations: Vec<Correlation<Quote>>,
}

/// The peer of an nginx `upstream:` value, without the request URI:
/// `http://127.0.0.1:8080/cart` → `http://127.0.0.1:8080`,
/// `fastcgi://unix:/run/php/php8.2-fpm.sock:` stays as it is.
pub fn peer_of(upstream: &str) -> &str {
    if let Some(u) = upstream.find("unix:") {
        return match upstream[u + 5..].find(':') {
            Some(c) => &upstream[..=u + 5 + c],
            None => upstream,
        };
    }
    match upstream.find("://") {
        Some(s) => match upstream[s + 3..].find('/') {
            Some(p) => &upstream[..s + 3 + p],
            None => upstream,
        },
        None => upstream,
    }
}

/// Redact query strings (tokens, e-mail addresses) and cap the text.
pub fn redact(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(&text[..text.len().min(2048)]);
    let mut out = String::with_capacity(s.len());
    let mut rest: &str = &s;
    while let Some(q) = rest.find('?') {
        let (before, after) = rest.split_at(q);
        out.push_str(before);
        let end = after.find([' ', '"', '\n']).unwrap_or(after.len());
        if after[..end].contains('=') {
            out.push_str("?[redacted]");
        } else {
            out.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl<'a> Agg<'a> {
    fn new(cat: &'a Catalogue, samples: usize) -> Self {
        Agg {
            cat,
            samples,
            causes: BTreeMap::new(),
            unmatched: Unmatched::default(),
            unmatched_raw: Vec::new(),
            ignored: Top::default(),
            consequences: Top::default(),
            last_primary: None,
            pending: Vec::new(),
            corr: Correlator::default(),
            correlations: Vec::new(),
        }
    }

    fn add(&mut self, file: usize, offset: u64, ts: Option<i64>, c: &Classification, text: &[u8]) {
        let sig = c.signature(self.cat);
        let sig_id = sig.map(|s| s.id.clone());
        let raw = |cat_samples: usize, have: usize| {
            (have < cat_samples).then(|| RawSample {
                text: redact(text),
                file,
                offset,
                ts,
                signature: sig_id.clone(),
            })
        };
        self.corr.observe(file, offset, ts, c, sig, || redact(text));
        match c.role {
            Role::Ignored => self.ignored.add(sig_id.as_deref()),
            Role::Unmatched => {
                self.unmatched.count += 1;
                if let Some(s) = raw(5, self.unmatched_raw.len()) {
                    self.unmatched_raw.push(s);
                }
            }
            Role::Secondary => {
                let inherited = self
                    .last_primary
                    .filter(|(_, t)| ts.is_none_or(|ts| ts - t <= INHERIT_SECS))
                    .map(|(c, _)| c);
                // A consequence follows the failure before it; its own cause
                // (what it means alone) only when there is none.
                let cause = if sig.is_some_and(|s| s.inherit) {
                    inherited.or(c.cause)
                } else {
                    c.cause.or(inherited)
                };
                match cause {
                    Some(cause) => {
                        let n = self.samples;
                        let a = self.causes.entry(cause).or_default();
                        a.secondary += 1;
                        touch(a, ts);
                        a.signatures.add(sig_id.as_deref());
                        if a.count == 0
                            && let Some(s) = raw(n, a.samples.len())
                        {
                            a.samples.push(s);
                        }
                    }
                    None => self.consequences.add(sig_id.as_deref()),
                }
            }
            Role::Primary => {
                let Some(cause) = c.cause else { return };
                if let Some(t) = ts {
                    self.last_primary = Some((cause, t));
                }
                let f = &c.fields;
                let closes = sig.is_some_and(|s| s.has_tag("premature_close"));
                if closes && cause == Cause::UpstreamClosed && self.pending.len() < PENDING_CAP {
                    let keep = self.pending.len() < 50;
                    self.pending.push(Pending {
                        ts,
                        path: f.path.clone(),
                        upstream: f.upstream.clone(),
                        client: f.client.clone(),
                        socket: f.socket.clone(),
                        signature: sig_id.clone().unwrap_or_default(),
                        sample: if keep { raw(1, 0) } else { None },
                    });
                    return;
                }
                let n = self.samples;
                let a = self.causes.entry(cause).or_default();
                if a.count == 0 {
                    // Primary evidence replaces samples of mere consequences.
                    a.samples.clear();
                }
                a.count += 1;
                touch(a, ts);
                a.upstreams.add(f.upstream.as_deref().map(peer_of));
                a.paths.add(f.path.as_deref());
                a.clients.add(f.client.as_deref());
                a.sockets.add(f.socket.as_deref());
                a.signatures.add(sig_id.as_deref());
                if let Some(s) = raw(n, a.samples.len()) {
                    a.samples.push(s);
                }
            }
        }
    }

    /// Decide the pending premature closes by what the backend logged next to them.
    fn correlate(&mut self) -> Vec<String> {
        let pending = std::mem::take(&mut self.pending);
        let closes: Vec<Close<'_>> = pending
            .iter()
            .map(|p| Close {
                ts: p.ts,
                path: p.path.as_deref(),
            })
            .collect();
        let d = self.corr.decide(&closes);
        drop(closes);
        let notes = d.notes;
        self.correlations = d.correlations;
        let decided = d.causes.into_iter().zip(pending);
        let n = self.samples;
        for (cause, p) in decided {
            let a = self.causes.entry(cause).or_default();
            if a.count == 0 {
                a.samples.clear();
            }
            a.count += 1;
            touch(a, p.ts);
            a.upstreams.add(p.upstream.as_deref().map(peer_of));
            a.paths.add(p.path.as_deref());
            a.clients.add(p.client.as_deref());
            a.sockets.add(p.socket.as_deref());
            a.signatures.add(Some(&p.signature));
            if a.samples.len() < n
                && let Some(s) = p.sample
            {
                a.samples.push(s);
            }
        }
        // Crash lines that turned out to be one page's fault belong to app_fatal,
        // unless the proxy also saw closes it could not explain.
        let crash_is_app = self.correlations.iter().any(|k| k.cause == Cause::AppFatal);
        if crash_is_app
            && self
                .causes
                .get(&Cause::UpstreamClosed)
                .is_some_and(|a| a.count == 0)
            && let Some(from) = self.causes.remove(&Cause::UpstreamClosed)
        {
            let a = self.causes.entry(Cause::AppFatal).or_default();
            a.secondary += from.secondary;
            touch(a, from.first);
            touch(a, from.last);
            for (sig, n) in from.signatures.0 {
                *a.signatures.0.entry(sig).or_insert(0) += n;
            }
        }
        notes
    }
}

fn touch(a: &mut CauseAgg, ts: Option<i64>) {
    if let Some(t) = ts {
        a.first = Some(a.first.map_or(t, |f| f.min(t)));
        a.last = Some(a.last.map_or(t, |l| l.max(t)));
    }
}

/// Read at most this much of one decompressed rotation.
const GZ_CAP: u64 = 16 << 30;
/// Offsets up to this are turned into line numbers (counting newlines costs a read).
const LINE_NUMBER_LIMIT: u64 = 32 << 20;

/// Scan error logs for the window. Never fails: unreadable files are reported in `files`.
pub fn scan(files: &[PathBuf], window: &Window, opts: &ScanOptions<'_>) -> ScanReport {
    let started = Instant::now();
    let mut zone = opts.zone.clone();
    let mut agg = Agg::new(opts.catalogue, opts.samples);
    let mut reports: Vec<FileReport> = Vec::new();
    for operand in files {
        let chain = if opts.follow_rotations {
            rotation::chain(operand)
        } else {
            vec![operand.clone()]
        };
        for (i, path) in chain.iter().enumerate() {
            let idx = reports.len();
            let (rep, first) = scan_file(path, idx, i > 0, window, &mut zone, &mut agg);
            reports.push(rep);
            // Older rotations matter only while the window reaches before this file's start.
            let reaches_back = match (window.from, first) {
                (None, _) => true,
                (Some(from), Some(first)) => first > from,
                (Some(_), None) => false,
            };
            if !reaches_back {
                break;
            }
        }
    }
    let notes = agg.correlate();
    let sources = resolve_sources(&reports, &agg);
    let src = |s: &RawSample| -> Sample {
        Sample {
            text: s.text.clone(),
            source: sources
                .get(&(s.file, s.offset))
                .cloned()
                .unwrap_or_default(),
            time: s.ts.map(time::rfc3339),
            signature: s.signature.clone(),
        }
    };
    let mut causes: Vec<CauseSummary> = agg
        .causes
        .iter()
        .map(|(cause, a)| CauseSummary {
            cause: *cause,
            role: if a.count > 0 && !cause.is_secondary() {
                Role::Primary
            } else {
                Role::Secondary
            },
            count: a.count,
            secondary_count: a.secondary,
            first_seen: a.first.map(time::rfc3339),
            last_seen: a.last.map(time::rfc3339),
            upstreams: a.upstreams.ranked(TOP_SHOWN),
            paths: a.paths.ranked(TOP_SHOWN),
            clients: a.clients.ranked(TOP_SHOWN),
            sockets: a.sockets.ranked(TOP_SHOWN),
            signatures: a.signatures.ranked(TOP_SHOWN),
            samples: a.samples.iter().map(src).collect(),
        })
        .collect();
    causes.sort_by(|a, b| {
        let ka = (a.role == Role::Primary, a.count, a.secondary_count);
        let kb = (b.role == Role::Primary, b.count, b.secondary_count);
        kb.cmp(&ka)
            .then_with(|| a.first_seen.cmp(&b.first_seen))
            .then_with(|| a.cause.cmp(&b.cause))
    });
    let correlations = agg
        .correlations
        .iter()
        .map(|c| Correlation {
            cause: c.cause,
            kind: c.kind,
            entries: c.entries,
            pids: c.pids.clone(),
            peers: c.peers.clone(),
            explanation: c.explanation.clone(),
            evidence: c
                .evidence
                .iter()
                .map(|q| Sample {
                    text: q.text.clone(),
                    source: sources
                        .get(&(q.file, q.offset))
                        .cloned()
                        .unwrap_or_default(),
                    time: q.ts.map(time::rfc3339),
                    signature: q.signature.clone(),
                })
                .collect(),
        })
        .collect();
    let unmatched = Unmatched {
        count: agg.unmatched.count,
        samples: agg.unmatched_raw.iter().map(src).collect(),
    };
    ScanReport {
        window: *window,
        files: reports,
        causes,
        unmatched,
        ignored: agg.ignored.ranked(50),
        consequences: agg.consequences.ranked(50),
        correlations,
        notes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// `file:line` for every sample, counting lines only in the first
/// [`LINE_NUMBER_LIMIT`] bytes; deeper samples get `file@byte N`.
fn resolve_sources(files: &[FileReport], agg: &Agg<'_>) -> HashMap<(usize, u64), String> {
    let mut want: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let all = agg
        .causes
        .values()
        .flat_map(|a| a.samples.iter())
        .chain(agg.unmatched_raw.iter())
        .chain(agg.pending.iter().filter_map(|p| p.sample.as_ref()));
    for s in all {
        want.entry(s.file).or_default().push(s.offset);
    }
    for q in agg.corr.quotes() {
        want.entry(q.file).or_default().push(q.offset);
    }
    let mut out = HashMap::new();
    for (file, mut offs) in want {
        offs.sort_unstable();
        offs.dedup();
        let path = &files[file].path;
        let gz = rotation::is_gz(Path::new(path));
        let max = offs.last().copied().unwrap_or(0);
        // A file that changed while read keeps exact byte offsets: its lines
        // would be counted in what the path holds now, not in what was read.
        let lines = if !gz && max <= LINE_NUMBER_LIMIT && files[file].unread.is_none() {
            line_numbers(Path::new(path), &offs).ok()
        } else {
            None
        };
        for (i, off) in offs.iter().enumerate() {
            let s = match &lines {
                Some(l) => format!("{path}:{}", l[i]),
                None if gz => format!("{path}@byte {off} (decompressed)"),
                None => format!("{path}@byte {off}"),
            };
            out.insert((file, *off), s);
        }
    }
    out
}

/// 1-based line numbers of sorted offsets.
fn line_numbers(path: &Path, offsets: &[u64]) -> io::Result<Vec<u64>> {
    let mut f = input::open(path)?.file;
    let mut buf = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(offsets.len());
    let (mut pos, mut line) = (0u64, 1u64);
    let mut next = 0;
    while next < offsets.len() {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        while next < offsets.len() && offsets[next] < pos + n as u64 {
            let upto = (offsets[next] - pos) as usize;
            out.push(line + memchr::memchr_iter(b'\n', &chunk[..upto]).count() as u64);
            next += 1;
        }
        line += memchr::memchr_iter(b'\n', chunk).count() as u64;
        pos += n as u64;
    }
    while out.len() < offsets.len() {
        out.push(line);
    }
    Ok(out)
}

fn open_error(path: &Path, e: &io::Error, rotated: bool) -> FileReport {
    let denied = e.kind() == io::ErrorKind::PermissionDenied;
    FileReport {
        path: path.display().to_string(),
        size: 0,
        start: 0,
        bytes_read: 0,
        candidates: 0,
        probes: 0,
        first_time: None,
        rotated,
        unread: None,
        error: Some(if denied {
            format!(
                "{}: permission denied (run as root or add yourself to group adm)",
                path.display()
            )
        } else if e.kind() == io::ErrorKind::InvalidInput {
            input::refusal(e) // names the path and what it is
        } else {
            format!("{}: {e}", path.display())
        }),
        permission_denied: denied,
    }
}

/// Scan one file; returns its report and its first entry time.
fn scan_file(
    path: &Path,
    idx: usize,
    rotated: bool,
    window: &Window,
    zone: &mut Zone,
    agg: &mut Agg<'_>,
) -> (FileReport, Option<i64>) {
    let opened = match input::open(path) {
        Ok(o) => o,
        Err(e) => return (open_error(path, &e, rotated), None),
    };
    let size = opened.size;
    let mut rep = FileReport {
        path: path.display().to_string(),
        size,
        start: 0,
        bytes_read: 0,
        candidates: 0,
        probes: 0,
        first_time: None,
        rotated,
        error: None,
        unread: None,
        permission_denied: false,
    };
    let f = &opened.file;
    let cat = agg.cat;
    let mut on = |found: Found<'_>, z: &mut Zone| {
        let ts = found.head.as_ref().and_then(|h| h.ts);
        if !window.contains(ts) {
            return;
        }
        // A headless entry (a fragment, a bare message) is only in an
        // unbounded window, where it is classified as `logs classify` does.
        let head = found.head.unwrap_or_else(super::format::Head::unknown);
        let _ = z;
        if let Some(c) = cat.classify(&head, found.text) {
            agg.add(idx, found.offset, ts, &c, found.text);
        }
    };
    if rotation::is_gz(path) {
        let gz = flate2::read::MultiGzDecoder::new(io::BufReader::new(f)).take(GZ_CAP);
        let mut first = None;
        let mut on_gz = |found: Found<'_>, z: &mut Zone| {
            if first.is_none() {
                first = found.head.as_ref().and_then(|h| h.ts);
            }
            on(found, z);
        };
        match reader::scan_candidates(gz, 0, cat, zone, &mut on_gz) {
            Ok(st) => {
                rep.bytes_read = st.bytes;
                rep.candidates = st.candidates;
            }
            Err(e) => rep.error = Some(format!("{}: {e}", path.display())),
        }
        rep.unread = opened.changes(size, size);
        // The first *candidate* time is a lower bound good enough to decide on older rotations.
        rep.first_time = first.map(time::rfc3339);
        return (rep, first.or(Some(i64::MIN)));
    }
    // An IIS W3C log: its `#Fields:` header decides the columns, so it is
    // read in order with the header in effect (see `scan_w3c`).
    let mut start_bytes = [0u8; 64];
    let n = read_prefix(f, &mut start_bytes);
    if super::w3c::sniff(&start_bytes[..n]) {
        let first = scan_w3c(f, size, idx, window, agg, &mut rep);
        rep.unread = opened.changes(rep.bytes_read, size);
        return (rep, first);
    }
    let mut search = window::Search::default();
    let first = window::first_time(f, size, zone, &window::error_time)
        .ok()
        .flatten();
    rep.first_time = first.map(time::rfc3339);
    let start = match window.from {
        Some(from) if size > 0 => {
            window::bounds(f, size, from, zone, &mut search, &window::error_time).map_or(0, |b| b.0)
        }
        _ => 0,
    };
    let end = match window.to {
        Some(to) if size > 0 => window::bounds(
            f,
            size,
            to + 2 * SLACK,
            zone,
            &mut search,
            &window::error_time,
        )
        .map_or(size, |b| (b.1 + (64 << 10)).min(size)),
        _ => size,
    };
    rep.start = start;
    rep.probes = search.probes;
    if end > start {
        // Bounded by the size seen at open: a file growing or rotated
        // (renamed) while we read is read as it was. Every core classifies a
        // part; the verdicts arrive in file order.
        let mut add = |h: split::Hit<'_>| agg.add(idx, h.offset, h.ts, h.class, h.text);
        match split::classify_range(f, start, end, cat, window, zone, &mut add) {
            Ok(st) => {
                rep.bytes_read = st.bytes;
                rep.candidates = st.candidates;
                rep.unread = opened.changes(start + st.bytes, end);
            }
            Err(e) => rep.error = Some(format!("{}: {e}", path.display())),
        }
    }
    (rep, first)
}

/// The first bytes of a file (fewer when it is shorter).
fn read_prefix(f: &std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    let mut r = f;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// An IIS W3C log read line by line from its start (IIS starts a new file
/// every day by default, so there is no need to seek): each `#Fields:`
/// directive sets the columns of the lines after it, every data line is
/// classified in the default column order ([`super::w3c::Tracker`]) and
/// quoted as written. Returns the first entry time.
fn scan_w3c(
    f: &std::fs::File,
    size: u64,
    idx: usize,
    window: &Window,
    agg: &mut Agg<'_>,
    rep: &mut FileReport,
) -> Option<i64> {
    use std::io::Seek as _;
    let mut file = f;
    if let Err(e) = file.seek(io::SeekFrom::Start(0)) {
        rep.error = Some(format!("{}: {e}", rep.path));
        return None;
    }
    let mut r = io::BufReader::with_capacity(1 << 16, file.take(size));
    let mut tracker = super::w3c::Tracker::default();
    let mut zone = Zone::utc();
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut first = None;
    let cat = agg.cat;
    loop {
        match reader::read_capped_line(&mut r, &mut line) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                rep.error = Some(format!("{}: {e}", rep.path));
                break;
            }
        }
        let at = offset;
        offset += line.len() as u64;
        let mut text: &[u8] = &line;
        while let [rest @ .., b'\n' | b'\r'] = text {
            text = rest;
        }
        let head = super::format::head(text, &mut zone);
        let view = tracker.view(head.as_ref(), text);
        let ts = head.as_ref().and_then(|h| h.ts);
        if first.is_none() {
            first = ts;
        }
        if !window.contains(ts) {
            continue;
        }
        let Some(head) = head else { continue };
        if let Some(c) = cat.classify(&head, &view) {
            rep.candidates += 1;
            agg.add(idx, at, ts, &c, text);
        }
    }
    rep.bytes_read = offset;
    rep.first_time = first.map(time::rfc3339);
    first
}

/// One-paragraph-per-cause text for terminals.
pub fn render_text(r: &ScanReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let w = |t: Option<i64>| t.map_or_else(|| "…".to_owned(), time::rfc3339);
    let _ = writeln!(s, "window: {} → {}", w(r.window.from), w(r.window.to));
    for f in &r.files {
        if let Some(e) = &f.error {
            let _ = writeln!(s, "file: {e}");
        } else {
            let _ = writeln!(
                s,
                "file: {} ({} bytes, read {} from offset {}{})",
                f.path,
                f.size,
                f.bytes_read,
                f.start,
                if f.rotated { ", rotated" } else { "" }
            );
            if let Some(u) = &f.unread {
                let _ = writeln!(s, "  not read: the file {u}");
            }
        }
    }
    if r.causes.is_empty() {
        let _ = writeln!(s, "\nno upstream failure found in the window");
    }
    for c in &r.causes {
        let _ = writeln!(
            s,
            "\n{} [{}]: {} entries{} (first {}, last {})",
            c.cause,
            match c.role {
                Role::Primary => "primary",
                _ => "secondary",
            },
            c.count,
            if c.secondary_count > 0 {
                format!(" + {} related", c.secondary_count)
            } else {
                String::new()
            },
            c.first_seen.as_deref().unwrap_or("?"),
            c.last_seen.as_deref().unwrap_or("?")
        );
        let _ = writeln!(s, "  {}", c.cause.info().title);
        for (label, list) in [
            ("upstreams", &c.upstreams),
            ("sockets", &c.sockets),
            ("paths", &c.paths),
            ("clients", &c.clients),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list
                    .iter()
                    .map(|r| format!("{} ({})", r.value, r.count))
                    .collect();
                let _ = writeln!(s, "  {label}: {}", items.join(", "));
            }
        }
        for smp in &c.samples {
            let first = smp.text.lines().next().unwrap_or("");
            let _ = writeln!(s, "  > {first}\n    at {}", smp.source);
        }
    }
    for c in &r.correlations {
        let _ = writeln!(
            s,
            "\ncorrelation → {} ({}): {}",
            c.cause, c.kind, c.explanation
        );
        for smp in &c.evidence {
            let first = smp.text.lines().next().unwrap_or("");
            let _ = writeln!(s, "  > {first}\n    at {}", smp.source);
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "\nnote: {n}");
    }
    if r.unmatched.count > 0 {
        let _ = writeln!(
            s,
            "\n{} error lines mention upstreams but match no signature:",
            r.unmatched.count
        );
        for smp in &r.unmatched.samples {
            let _ = writeln!(
                s,
                "  > {}\n    at {}",
                smp.text.lines().next().unwrap_or(""),
                smp.source
            );
        }
    }
    if !r.ignored.is_empty() {
        let items: Vec<String> = r
            .ignored
            .iter()
            .map(|r| format!("{} ({})", r.value, r.count))
            .collect();
        let _ = writeln!(s, "\nnot causes (negative controls): {}", items.join(", "));
    }
    s
}
