//! Reading entries out of a byte stream with bounded memory.
//!
//! [`scan_candidates`] reads a stream in fixed chunks, runs the literal
//! prefilter over each chunk and hands out only the entries that contain a
//! literal: the cost is one pass of a SIMD substring search, not a parse of
//! every line. [`Entries`] yields every entry of a stream (the `classify`
//! command). Both join continuation lines (no timestamp) to the entry before,
//! cap entries at [`MAX_ENTRY`] bytes and 256 lines, accept a last line with
//! no newline, and never hold more than one chunk plus one entry in memory.

use std::io::{self, BufRead, Read};

use super::catalogue::Catalogue;
use super::classify::MAX_ENTRY;
use super::format::{self, Head};
use super::time::Zone;

/// Bytes read per chunk.
pub const CHUNK: usize = 1 << 20;
/// Continuation lines joined to one entry at most.
pub const MAX_LINES: usize = 256;

/// An entry found in a stream.
#[derive(Debug)]
pub struct Found<'a> {
    pub text: &'a [u8],
    /// Offset of the entry's first byte in the stream (plus the caller's base).
    pub offset: u64,
    pub head: Option<Head>,
}

fn trim_eol(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

/// Read until `buf` is full or the stream ends; returns bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Statistics of one pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassStats {
    pub bytes: u64,
    pub candidates: u64,
}

/// Scan `r` (whose first byte is at stream offset `base`) and call `on` for
/// each entry that contains a prefilter literal.
pub fn scan_candidates(
    mut r: impl Read,
    base: u64,
    cat: &Catalogue,
    zone: &mut Zone,
    mut on: impl FnMut(Found<'_>, &mut Zone),
) -> io::Result<PassStats> {
    let mut buf = vec![0u8; CHUNK + MAX_ENTRY];
    let mut carry = 0usize;
    let mut consumed = base;
    let mut stats = PassStats::default();
    loop {
        let n = fill(&mut r, &mut buf[carry..carry + CHUNK])?;
        let filled = carry + n;
        stats.bytes += n as u64;
        if filled == 0 {
            break;
        }
        let eof = n == 0;
        let mut cut = if eof {
            filled
        } else {
            boundary(&buf[..filled], zone)
        };
        if filled - cut > MAX_ENTRY {
            cut = filled; // an over-long line: split it rather than grow the buffer
        }
        process(&buf[..cut], consumed, cat, zone, &mut on, &mut stats);
        consumed += cut as u64;
        buf.copy_within(cut..filled, 0);
        carry = filled - cut;
        if eof {
            break;
        }
    }
    Ok(stats)
}

/// Where to cut a full chunk so that no entry is split: the start of the last
/// entry head among the final lines (that entry moves to the next chunk).
fn boundary(data: &[u8], zone: &mut Zone) -> usize {
    let Some(last_nl) = memchr::memrchr(b'\n', data) else {
        return data.len(); // one line longer than a chunk: split it
    };
    let mut line_start = last_nl + 1; // the incomplete tail starts here
    let floor = data.len().saturating_sub(MAX_ENTRY);
    let mut lines = 0;
    while line_start > floor && lines < MAX_LINES {
        // the line before `line_start`
        let prev_end = line_start - 1;
        let prev_start = memchr::memrchr(b'\n', &data[..prev_end]).map_or(0, |i| i + 1);
        if format::starts_entry(&data[prev_start..prev_end], zone) {
            return if prev_start == 0 {
                last_nl + 1
            } else {
                prev_start
            };
        }
        if prev_start == 0 {
            break;
        }
        line_start = prev_start;
        lines += 1;
    }
    last_nl + 1
}

fn line_end(data: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &data[from..]).map_or(data.len(), |i| from + i)
}

fn process(
    data: &[u8],
    base: u64,
    cat: &Catalogue,
    zone: &mut Zone,
    on: &mut impl FnMut(Found<'_>, &mut Zone),
    stats: &mut PassStats,
) {
    let mut pos = 0usize;
    let mut hits = cat.prefilter.scan(data);
    while pos < data.len() {
        let Some(hit) = hits.next(pos) else {
            break;
        };
        let ls = memchr::memrchr(b'\n', &data[pos..hit]).map_or(pos, |i| pos + i + 1);
        // Walk back to the entry's head line (bounded; never before `pos`).
        let mut hs = ls;
        let mut head = format::head(&data[hs..line_end(data, hs)], zone);
        let mut back = 0;
        while head.is_none() && hs > pos && back < MAX_LINES {
            let prev_start =
                memchr::memrchr(b'\n', &data[pos..hs - 1]).map_or(pos, |i| pos + i + 1);
            hs = prev_start;
            head = format::head(&data[hs..line_end(data, hs)], zone);
            back += 1;
        }
        if head.is_none() || (hs != ls && !head.as_ref().is_some_and(Head::anchors)) {
            // No head, or a bare fragment before it: the hit line stands alone.
            hs = ls;
            head = None;
        }
        // Walk forward over continuation lines (a headless line is an entry
        // of its own: pasted fragments, as `Joiner` does).
        let mut end = line_end(data, hit);
        let mut lines = 0;
        while head.as_ref().is_some_and(Head::anchors)
            && end < data.len()
            && lines < MAX_LINES
            && end - hs < MAX_ENTRY
        {
            let next = end + 1;
            let ne = line_end(data, next);
            if next >= data.len() || format::starts_entry(&data[next..ne], zone) {
                break;
            }
            end = ne;
            lines += 1;
        }
        stats.candidates += 1;
        let text = trim_eol(&data[hs..end.min(hs + MAX_ENTRY)]);
        on(
            Found {
                text,
                offset: base + hs as u64,
                head,
            },
            zone,
        );
        pos = end + 1;
    }
}

/// One complete entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub text: Vec<u8>,
    /// 1-based line number of its first line.
    pub line: u64,
}

/// Joins physical lines into entries: a line that does not start an entry
/// belongs to the one before (capped at [`MAX_LINES`] lines, [`MAX_ENTRY`] bytes).
#[derive(Debug, Default)]
pub struct Joiner {
    pending: Vec<u8>,
    pending_lines: usize,
    pending_line_no: u64,
    line_no: u64,
    /// Does the pending entry start with a head? Lines after a headless
    /// first line (pasted fragments) are entries of their own.
    pending_headed: bool,
}

impl Joiner {
    /// Add one physical line (with or without its newline); returns the
    /// entry it completed, if any.
    pub fn push(&mut self, line: &[u8], zone: &mut Zone) -> Option<Entry> {
        self.line_no += 1;
        let line = &line[..line.len().min(MAX_ENTRY)];
        let head = format::head(trim_eol(line), zone);
        let starts = head.is_some();
        if starts
            || !self.pending_headed
            || self.pending.is_empty()
            || self.pending_lines >= MAX_LINES
        {
            let done = self.flush();
            self.pending_headed = head.as_ref().is_some_and(Head::anchors);
            self.pending.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                self.pending.push(b'\n');
            }
            self.pending_lines = 1;
            self.pending_line_no = self.line_no;
            done
        } else {
            if self.pending.len() + line.len() <= MAX_ENTRY {
                self.pending.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    self.pending.push(b'\n');
                }
            }
            self.pending_lines += 1;
            None
        }
    }

    /// The pending entry, if any (when input pauses or ends).
    pub fn flush(&mut self) -> Option<Entry> {
        if self.pending.is_empty() {
            return None;
        }
        let text = trim_eol(&self.pending).to_vec();
        self.pending.clear();
        self.pending_lines = 0;
        Some(Entry {
            text,
            line: self.pending_line_no,
        })
    }
}

/// Read one physical line, capped at [`MAX_ENTRY`] bytes (the rest of an
/// over-long line is skipped). `Ok(false)` at end of input.
pub fn read_capped_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<bool> {
    out.clear();
    let n = r
        .by_ref()
        .take(MAX_ENTRY as u64 + 1)
        .read_until(b'\n', out)?;
    if n == 0 {
        return Ok(false);
    }
    if !out.ends_with(b"\n") && out.len() > MAX_ENTRY {
        let mut skip = Vec::new();
        loop {
            skip.clear();
            let k = r.by_ref().take(1 << 20).read_until(b'\n', &mut skip)?;
            if k == 0 || skip.ends_with(b"\n") {
                break;
            }
        }
        out.truncate(MAX_ENTRY);
    }
    Ok(true)
}

/// Every entry of a line stream (for files; live streams use [`Joiner`]
/// directly so a pause can flush).
pub struct Entries<R> {
    reader: R,
    joiner: Joiner,
    line: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Entries<R> {
    pub fn new(reader: R) -> Self {
        Entries {
            reader,
            joiner: Joiner::default(),
            line: Vec::new(),
            done: false,
        }
    }

    /// The next complete entry; `None` at end of input.
    pub fn next_entry(&mut self, zone: &mut Zone) -> io::Result<Option<Entry>> {
        while !self.done {
            if !read_capped_line(&mut self.reader, &mut self.line)? {
                self.done = true;
                break;
            }
            if let Some(e) = self.joiner.push(&self.line, zone) {
                return Ok(Some(e));
            }
        }
        Ok(self.joiner.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FASTCGI: &str = "2024/03/14 09:22:07 [error] 1#1: *201 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: x in /var/www/a.php:42\nStack trace:\n#0 {main}\n  thrown in /var/www/a.php on line 42\" while reading response header from upstream, client: 10.0.0.1, server: e, request: \"GET /shop HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"e\"\n";

    #[test]
    fn multi_line_entries_are_joined_and_found() {
        let noise = "2024/03/14 09:22:06 [warn] 1#1: *1 limiting requests, excess: 10.5 by zone \"one\", client: 1.2.3.4\n";
        let text = format!("{noise}{FASTCGI}{noise}");
        let mut found = Vec::new();
        let stats = scan_candidates(
            text.as_bytes(),
            0,
            Catalogue::builtin(),
            &mut Zone::utc(),
            |f, _| found.push((f.offset, String::from_utf8_lossy(f.text).into_owned())),
        )
        .unwrap();
        assert_eq!(stats.bytes, text.len() as u64);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, noise.len() as u64);
        assert!(found[0].1.ends_with("host: \"e\""), "{}", found[0].1);
        assert_eq!(found[0].1.lines().count(), 4);

        let mut it = Entries::new(text.as_bytes());
        let mut z = Zone::utc();
        let mut n = Vec::new();
        while let Some(e) = it.next_entry(&mut z).unwrap() {
            n.push((e.line, e.text.split(|c| *c == b'\n').count()));
        }
        assert_eq!(n, vec![(1, 1), (2, 4), (6, 1)]);
    }

    #[test]
    fn entries_across_chunk_boundaries_are_whole_and_counted_once() {
        let line = "2024/03/14 09:22:07 [error] 1#1: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: e, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"e\"\n";
        let mut text = String::new();
        let mut want = 0;
        while text.len() < 3 * CHUNK + 1000 {
            text.push_str(line);
            want += 1;
            if want % 7 == 0 {
                text.push_str(FASTCGI);
            }
        }
        // A truncated last line with no newline still counts.
        text.push_str(line.trim_end());
        want += 1;
        let (mut n, mut fc) = (0, 0);
        scan_candidates(
            text.as_bytes(),
            0,
            Catalogue::builtin(),
            &mut Zone::utc(),
            |f, _| {
                if f.text.starts_with(b"2024") && memchr::memmem::find(f.text, b"FastCGI").is_some()
                {
                    assert!(f.text.ends_with(b"host: \"e\""), "split FastCGI entry");
                    fc += 1;
                } else {
                    assert!(f.text.ends_with(b"host: \"e\""), "split entry");
                    n += 1;
                }
            },
        )
        .unwrap();
        assert_eq!(n, want);
        assert_eq!(fc, (want - 1) / 7);
    }

    #[test]
    fn invalid_utf8_and_huge_lines_do_not_stop_the_scan() {
        let mut text = b"2024/03/14 09:22:07 [error] 1#1: *5 \xff\xfe garbage ".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 * CHUNK));
        text.extend_from_slice(b"\n2024/03/14 09:22:08 [error] 1#1: *6 no live upstreams while connecting to upstream, client: 1.1.1.1, server: e, request: \"GET / HTTP/1.1\", upstream: \"http://backend/\", host: \"e\"\n");
        let mut hits = 0;
        scan_candidates(
            &text[..],
            0,
            Catalogue::builtin(),
            &mut Zone::utc(),
            |f, _| {
                if memchr::memmem::find(f.text, b"no live upstreams").is_some() {
                    hits += 1;
                }
            },
        )
        .unwrap();
        assert_eq!(hits, 1);
    }
}
