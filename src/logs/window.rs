//! Finding the incident window in a file by seeking, not reading.
//!
//! A probe reads one small block at an offset and returns the time of the
//! first entry that starts after it. [`locate`] gallops back from the end of
//! the file (256 KiB, 1 MiB, 4 MiB, ...) until it passes the target time,
//! then bisects: a one-hour window costs about twenty 64 KiB reads whatever
//! the file size. Logs are nearly sorted (interleaved workers, Apache's
//! request-start times): the search aims [`SLACK`] seconds early and every
//! entry is still filtered by its own time, so slight disorder loses nothing.
//! A region without timestamps makes the search keep the earlier bound.

use crate::platform::fs::FileExt;
use std::fs::File;
use std::io;

use super::format;
use super::time::Zone;

/// Bytes read per probe.
const PROBE: usize = 64 * 1024;
/// How far a probe looks for a timestamped line before giving up.
const PROBE_MAX: u64 = 1 << 20;
/// Seconds of disorder tolerated between neighbouring entries.
pub const SLACK: i64 = 120;

/// How a layout tells the time of a line (`None`: no time, or not an entry start).
pub type TimeOf<'a> = &'a dyn Fn(&[u8], &mut Zone) -> Option<i64>;

/// The time of an error-log line (any detected layout).
pub fn error_time(line: &[u8], zone: &mut Zone) -> Option<i64> {
    format::head(line, zone).and_then(|h| h.ts)
}

/// The first entry start at or after `off` that has a timestamp: (offset, unix secs).
pub fn probe(
    f: &File,
    size: u64,
    off: u64,
    zone: &mut Zone,
    ts_of: TimeOf<'_>,
) -> io::Result<Option<(u64, i64)>> {
    let mut buf = vec![0u8; PROBE];
    let mut at = off;
    let mut skip_partial = off > 0;
    while at < size && at < off + PROBE_MAX {
        let want = PROBE.min((size - at) as usize);
        let n = read_at_full(f, &mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        let mut pos = 0;
        if skip_partial {
            // The byte before `at` decides whether we start mid-line.
            let mut prev = [0u8; 1];
            let starts_line =
                at == 0 || (read_at_full(f, &mut prev, at - 1)? == 1 && prev[0] == b'\n');
            if !starts_line {
                let Some(i) = memchr::memchr(b'\n', data) else {
                    at += n as u64;
                    continue;
                };
                pos = i + 1;
            }
            skip_partial = false;
        }
        while pos < n {
            let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else {
                break;
            };
            let line = &data[pos..pos + nl];
            if let Some(ts) = ts_of(line, zone) {
                return Ok(Some((at + pos as u64, ts)));
            }
            pos += nl + 1;
        }
        if pos == 0 {
            // No newline in a whole block: skip it.
            at += n as u64;
            skip_partial = true;
        } else {
            at += pos as u64;
        }
    }
    Ok(None)
}

fn read_at_full(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Statistics of a search, for the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Search {
    pub probes: u32,
}

/// An offset at a line start from which every entry with time ≥ `target`
/// follows (given near-sorted times). 0 when the file starts inside the window.
pub fn locate(
    f: &File,
    size: u64,
    target: i64,
    zone: &mut Zone,
    s: &mut Search,
) -> io::Result<u64> {
    Ok(bounds(f, size, target, zone, s, &error_time)?.0)
}

/// (`start`, `hi`): `start` is a line start before every entry with time ≥
/// `target - SLACK`; from `hi` on, probes saw times ≥ that (so an end bound
/// for a window ending at `target - SLACK`).
pub fn bounds(
    f: &File,
    size: u64,
    target: i64,
    zone: &mut Zone,
    s: &mut Search,
    ts_of: TimeOf<'_>,
) -> io::Result<(u64, u64)> {
    let target = target - SLACK;
    if size == 0 {
        return Ok((0, 0));
    }
    // Gallop back from the end until a probe lands before the target.
    let mut step: u64 = 256 * 1024;
    let mut hi = size;
    let lo;
    loop {
        let at = size.saturating_sub(step);
        s.probes += 1;
        match probe(f, size, at, zone, ts_of)? {
            Some((_, ts)) if ts < target => {
                lo = at;
                break;
            }
            _ if at == 0 => return Ok((0, hi)),
            Some(_) => {
                hi = at;
            }
            None => {}
        }
        step = step.saturating_mul(4);
    }
    // Bisect [lo, hi): lo is before the target, hi at or after it.
    let (mut lo, mut hi) = (lo, hi);
    while hi - lo > PROBE as u64 {
        let mid = lo + (hi - lo) / 2;
        s.probes += 1;
        match probe(f, size, mid, zone, ts_of)? {
            Some((_, ts)) if ts < target => lo = mid,
            Some(_) => hi = mid,
            // No timestamp found after mid: keep the earlier bound (read more, miss nothing).
            None => hi = mid,
        }
    }
    // Start at the line containing `lo` (its time is before the target).
    Ok((line_start_before(f, lo)?, hi))
}

/// The start of the line containing `off`.
fn line_start_before(f: &File, off: u64) -> io::Result<u64> {
    if off == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; PROBE];
    let mut end = off;
    while end > 0 {
        let start = end.saturating_sub(PROBE as u64);
        let n = read_at_full(f, &mut buf[..(end - start) as usize], start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The time of the first timestamped entry of a file (to decide whether the
/// window reaches back into the previous rotation).
pub fn first_time(
    f: &File,
    size: u64,
    zone: &mut Zone,
    ts_of: TimeOf<'_>,
) -> io::Result<Option<i64>> {
    Ok(probe(f, size, 0, zone, ts_of)?.map(|(_, t)| t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn locate_finds_the_window_in_a_large_sorted_file() {
        let mut f = tempfile::tempfile().unwrap();
        let mut z = Zone::utc();
        let t0 = 1_710_000_000;
        let mut offsets = Vec::new();
        let mut off = 0u64;
        let mut w = io::BufWriter::new(&mut f);
        for i in 0..200_000i64 {
            let t = t0 + i * 3; // one line every 3 s, about a week
            let dt = z.civil(t);
            let line = format!(
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02} [warn] 1#1: *{i} some noise line\n",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            );
            offsets.push((off, t));
            off += line.len() as u64;
            w.write_all(line.as_bytes()).unwrap();
        }
        drop(w);
        let size = off;
        for target in [t0 + 599_000 - 3600, t0 + 300_000, t0 - 10, t0 + 10_000_000] {
            let mut s = Search::default();
            let at = locate(&f, size, target, &mut z, &mut s).unwrap();
            // Every line with t >= target is at or after `at`.
            let first_in = offsets
                .iter()
                .find(|(_, t)| *t >= target)
                .map_or(size, |p| p.0);
            assert!(at <= first_in, "target {target}: {at} > {first_in}");
            // And we do not start much earlier than needed.
            let slack_bytes = (SLACK as u64 / 3 + 2) * 60 + 2 * PROBE as u64;
            assert!(
                first_in - at <= slack_bytes,
                "read too much: {}",
                first_in - at
            );
            assert!(s.probes < 40, "{} probes", s.probes);
        }
    }
}
