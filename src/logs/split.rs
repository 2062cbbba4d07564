//! Classifying one error-log byte range on every available core, with the
//! verdicts handed out in file order.
//!
//! [`classify_range`] cuts `[start, end)` into contiguous parts at entry
//! heads (never inside a multi-line entry), classifies the first part on the
//! calling thread and the others on scoped threads, and calls `on` for every
//! classified entry in file order: the aggregate (counts, first and last
//! seen, samples, their order) is the one a single pass gives.
//!
//! Invariants: each part is read with positional reads (no shared file
//! offset) in [`reader::CHUNK`] chunks; later parts buffer their verdicts in
//! batches of at most [`BATCH_BYTES`] through channels of [`BATCH_QUEUE`]
//! batches, so memory stays bounded whatever the file size (a part whose
//! queue is full waits). Negative-control verdicts of untagged signatures
//! (the bulk of a noisy log) are buffered as per-signature counts, not as
//! entries: they only add to a count, whatever their position.

use crate::platform::fs::FileExt;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::sync::mpsc;

use super::catalogue::Catalogue;
use super::classify::{Classification, Role};
use super::format::{self, Fields};
use super::reader::{self, Found, PassStats};
use super::scan::Window;
use super::time::Zone;

/// Smallest part worth a thread.
pub const MIN_PART: u64 = 4 << 20;
/// Threads used at most.
pub const MAX_PARTS: usize = 8;
/// Bytes of buffered verdicts (entry texts and fields) per batch.
pub const BATCH_BYTES: usize = 512 << 10;
/// Batches a part may have waiting.
pub const BATCH_QUEUE: usize = 16;
/// How far past a cut point an entry head is looked for.
const HEAD_SEARCH: u64 = 1 << 20;

/// One classified entry.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// Byte offset of the entry in the file.
    pub offset: u64,
    pub ts: Option<i64>,
    pub class: &'a Classification,
    pub text: &'a [u8],
}

/// A byte range read with positional reads (threads share the `File`).
pub(crate) struct RangeReader<'f> {
    pub(crate) f: &'f File,
    pub(crate) pos: u64,
    pub(crate) end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.f.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Parts the machine can work on at once.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Cut points: `start`, entry heads near each `k/n` of the range, `end`.
fn cuts(f: &File, start: u64, end: u64, parts: usize, zone: &mut Zone) -> Vec<u64> {
    let mut out = vec![start];
    let len = end - start;
    for k in 1..parts {
        let target = start + len / parts as u64 * k as u64;
        if let Ok(Some(at)) = head_at_or_after(f, target, end, zone)
            && at > *out.last().unwrap_or(&start)
            && at < end
        {
            out.push(at);
        }
    }
    out.push(end);
    out
}

/// The first line start at or after `from` that starts an entry.
fn head_at_or_after(f: &File, from: u64, end: u64, zone: &mut Zone) -> io::Result<Option<u64>> {
    let limit = end.min(from.saturating_add(HEAD_SEARCH));
    let mut buf = vec![0u8; 64 << 10];
    // Start on a line boundary: just after the first newline at or after `from - 1`.
    let mut at = from.saturating_sub(1);
    let mut on_line_start = from == 0;
    while at < limit {
        let want = buf.len().min((limit - at) as usize);
        let n = f.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        let mut pos = 0;
        if !on_line_start {
            if let Some(i) = memchr::memchr(b'\n', data) {
                pos = i + 1;
                on_line_start = true;
            } else {
                at += n as u64;
                continue;
            }
        }
        while pos < n {
            let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else {
                break; // an incomplete line: read again from its start
            };
            if format::starts_entry(&data[pos..pos + nl], zone) {
                return Ok(Some(at + pos as u64));
            }
            pos += nl + 1;
        }
        if pos == 0 {
            return Ok(None); // one line longer than the buffer: give up on this cut
        }
        at += pos as u64;
    }
    Ok(None)
}

/// A verdict as buffered by a later part (hits far outnumber the runs of
/// ignored counts, so the size difference is the common case, not waste).
#[allow(clippy::large_enum_variant, reason = "Hit is the common variant")]
enum Item {
    Hit {
        offset: u64,
        ts: Option<i64>,
        class: Classification,
        text: Vec<u8>,
    },
    /// Untagged negative controls since the item before: signature → (count, last offset, last time).
    Ignored(BTreeMap<usize, (u64, u64, Option<i64>)>),
}

fn hit_size(c: &Classification, text: &[u8]) -> usize {
    let f = &c.fields;
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    std::mem::size_of::<Item>()
        + text.len()
        + s(&f.upstream)
        + s(&f.socket)
        + s(&f.client)
        + s(&f.request)
        + s(&f.path)
        + s(&f.host)
        + s(&f.action)
}

/// Classify one entry the prefilter found: `None` outside the window or
/// when no signature (nor the unmatched markers) applies.
fn verdict(
    cat: &Catalogue,
    window: &Window,
    found: &Found<'_>,
) -> Option<(Option<i64>, Classification)> {
    let ts = found.head.as_ref().and_then(|h| h.ts);
    if !window.contains(ts) {
        return None;
    }
    // A headless entry is only in an unbounded window (see `Window::contains`).
    let unknown = super::format::Head::unknown();
    let head = found.head.as_ref().unwrap_or(&unknown);
    cat.classify(head, found.text).map(|c| (ts, c))
}

/// Classify the entries of `[start, end)` of `f` and call `on` for each, in
/// file order, using up to [`MAX_PARTS`] threads.
pub fn classify_range(
    f: &File,
    start: u64,
    end: u64,
    cat: &Catalogue,
    window: &Window,
    zone: &mut Zone,
    on: &mut dyn FnMut(Hit<'_>),
) -> io::Result<PassStats> {
    let parts = cores()
        .min(MAX_PARTS)
        .min(((end.saturating_sub(start)) / MIN_PART).max(1) as usize);
    classify_parts(f, start, end, parts, cat, window, zone, on)
}

/// [`classify_range`] with a given number of parts (tests compare 1 with many).
#[allow(clippy::too_many_arguments, reason = "the scan's whole context")]
pub fn classify_parts(
    f: &File,
    start: u64,
    end: u64,
    parts: usize,
    cat: &Catalogue,
    window: &Window,
    zone: &mut Zone,
    on: &mut dyn FnMut(Hit<'_>),
) -> io::Result<PassStats> {
    let cuts = if parts > 1 {
        cuts(f, start, end, parts, zone)
    } else {
        vec![start, end]
    };
    let first = |zone: &mut Zone, on: &mut dyn FnMut(Hit<'_>)| {
        let r = RangeReader {
            f,
            pos: cuts[0],
            end: cuts[1],
        };
        reader::scan_candidates(r, cuts[0], cat, zone, |found, _| {
            if let Some((ts, class)) = verdict(cat, window, &found) {
                on(Hit {
                    offset: found.offset,
                    ts,
                    class: &class,
                    text: found.text,
                });
            }
        })
    };
    if cuts.len() <= 2 {
        return first(zone, on);
    }
    std::thread::scope(|s| {
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for w in cuts[1..].windows(2) {
            let (a, b) = (w[0], w[1]);
            let (tx, rx) = mpsc::sync_channel::<Vec<Item>>(BATCH_QUEUE);
            let mut z = zone.clone();
            queues.push(rx);
            workers.push(s.spawn(move || later_part(f, a, b, cat, window, &mut z, &tx)));
        }
        let mut stats = first(zone, on)?;
        let mut failed = None;
        for (rx, worker) in queues.into_iter().zip(workers) {
            for batch in rx {
                deliver(batch, on);
            }
            match worker.join() {
                Ok(Ok(st)) => {
                    stats.bytes += st.bytes;
                    stats.candidates += st.candidates;
                }
                Ok(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Err(_) => {
                    failed.get_or_insert(io::Error::other("a scanning thread panicked"));
                }
            }
            if failed.is_some() {
                // Later parts would leave a hole: stop at the first failure.
                break;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    })
}

/// A later part: classify and send batches of verdicts.
#[allow(
    clippy::many_single_char_names,
    reason = "f, a, b: the file and its range"
)]
fn later_part(
    f: &File,
    a: u64,
    b: u64,
    cat: &Catalogue,
    window: &Window,
    zone: &mut Zone,
    tx: &mpsc::SyncSender<Vec<Item>>,
) -> io::Result<PassStats> {
    let mut batch: Vec<Item> = Vec::new();
    let mut bytes = 0usize;
    let mut ignored: BTreeMap<usize, (u64, u64, Option<i64>)> = BTreeMap::new();
    let mut closed = false;
    let r = RangeReader { f, pos: a, end: b };
    let st = reader::scan_candidates(r, a, cat, zone, |found, _| {
        if closed {
            return;
        }
        let Some((ts, class)) = verdict(cat, window, &found) else {
            return;
        };
        if class.role == Role::Ignored
            && let Some(sig) = class.signature
            && cat.signatures.get(sig).is_some_and(|s| s.tags.is_empty())
        {
            let e = ignored.entry(sig).or_insert((0, 0, None));
            e.0 += 1;
            e.1 = found.offset;
            e.2 = ts;
            return;
        }
        if !ignored.is_empty() {
            batch.push(Item::Ignored(std::mem::take(&mut ignored)));
        }
        bytes += hit_size(&class, found.text);
        batch.push(Item::Hit {
            offset: found.offset,
            ts,
            class,
            text: found.text.to_vec(),
        });
        if bytes >= BATCH_BYTES {
            bytes = 0;
            // The receiver hangs up only when the scan stopped early.
            closed = tx.send(std::mem::take(&mut batch)).is_err();
        }
    })?;
    if !ignored.is_empty() {
        batch.push(Item::Ignored(ignored));
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(st)
}

fn deliver(batch: Vec<Item>, on: &mut dyn FnMut(Hit<'_>)) {
    for item in batch {
        match item {
            Item::Hit {
                offset,
                ts,
                class,
                text,
            } => on(Hit {
                offset,
                ts,
                class: &class,
                text: &text,
            }),
            Item::Ignored(counts) => {
                for (sig, (n, offset, ts)) in counts {
                    let class = Classification {
                        role: Role::Ignored,
                        cause: None,
                        signature: Some(sig),
                        fields: Fields::default(),
                        alternatives: Vec::new(),
                    };
                    for _ in 0..n {
                        on(Hit {
                            offset,
                            ts,
                            class: &class,
                            text: &[],
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::generate::{Flavor, Spec, generate_files};

    /// Everything `on` saw: the non-ignored verdicts in order, and the
    /// negative controls counted per signature.
    type Seen = (
        Vec<(u64, Option<i64>, Classification, Vec<u8>)>,
        BTreeMap<usize, u64>,
    );

    fn collect(path: &std::path::Path, parts: usize, window: &Window) -> (Seen, PassStats) {
        let f = File::open(path).unwrap();
        let size = f.metadata().unwrap().len();
        let mut seen: Seen = (Vec::new(), BTreeMap::new());
        let cat = Catalogue::builtin();
        let st = classify_parts(
            &f,
            0,
            size,
            parts,
            cat,
            window,
            &mut Zone::utc(),
            &mut |h| {
                if h.class.role == Role::Ignored {
                    *seen.1.entry(h.class.signature.unwrap()).or_default() += 1;
                } else {
                    seen.0
                        .push((h.offset, h.ts, h.class.clone(), h.text.to_vec()));
                }
            },
        )
        .unwrap();
        (seen, st)
    }

    #[test]
    fn parallel_parts_equal_one_pass_on_generated_logs() {
        let dir = tempfile::tempdir().unwrap();
        let end: jiff::Timestamp = "2024-03-14T12:00:00Z".parse().unwrap();
        for flavor in [Flavor::Nginx, Flavor::Apache] {
            let spec = Spec::new(flavor, 6 << 20, 64 << 10, end.as_second());
            generate_files(&spec, dir.path()).unwrap();
            let name = match flavor {
                Flavor::Nginx => "nginx",
                Flavor::Apache => "apache",
            };
            let path = dir.path().join(format!("{name}-error.log"));
            let size = std::fs::metadata(&path).unwrap().len();
            for window in [
                Window::all(),
                Window {
                    from: Some(end.as_second() - 3 * 86_400),
                    to: Some(end.as_second() - 86_400),
                },
            ] {
                let (one, st1) = collect(&path, 1, &window);
                assert!(
                    !one.0.is_empty() && !one.1.is_empty(),
                    "{name}: nothing found"
                );
                for parts in [2, 3, 7] {
                    let (many, st) = collect(&path, parts, &window);
                    assert_eq!(one.0.len(), many.0.len(), "{name} in {parts} parts");
                    assert!(one.0 == many.0, "{name} in {parts} parts: verdicts differ");
                    assert_eq!(one.1, many.1, "{name} in {parts} parts: ignored counts");
                    assert_eq!((st.bytes, st.candidates), (st1.bytes, st1.candidates));
                    assert_eq!(st.bytes, size);
                }
            }
        }
    }

    #[test]
    fn cuts_land_on_entry_heads_inside_the_range() {
        let text = "2024/03/14 09:22:07 [error] 1#1: *1 FastCGI sent in stderr: \"a\nStack trace:\n#0 {main}\" while reading response header from upstream, client: 1.1.1.1\n";
        let mut f = tempfile::tempfile().unwrap();
        for _ in 0..2000 {
            std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        }
        let size = f.metadata().unwrap().len();
        let cuts = cuts(&f, 0, size, 4, &mut Zone::utc());
        assert_eq!(cuts.len(), 5, "{cuts:?}");
        for c in &cuts[..4] {
            assert_eq!(c % text.len() as u64, 0, "cut {c} is not an entry head");
        }
    }
}
