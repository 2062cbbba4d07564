//! The message *template* of an nginx error line, and a bounded per-thread
//! cache from template to the signature that decided it.
//!
//! During an incident the error log is mostly the same few messages with
//! another client, request, upstream, worker and connection number. The
//! template of an nginx line is what stays: its level, its message (the text
//! between `*CONN ` and the `, client: ` tail, byte for byte, errno and
//! module codes included), the keys of its tail in order and the scheme of
//! its upstream; the time, the pid and tid, the connection number and the
//! tail's values are taken out.
//!
//! [`super::catalogue::Catalogue::classify`] remembers, per template, which
//! signature matched first; the next line of the same template runs that
//! signature's regex only (its captures give this line's fields, errno and
//! cause, exactly as the full path does) instead of the literal automaton
//! and every candidate's regex. Invariants that keep the verdicts identical
//! to the uncached path (tested on the generators' logs and every fixture):
//! - only single-line nginx entries with no wrapper and a well-formed prefix
//!   and tail have a template; everything else takes the full path;
//! - a tail value that contains a catalogue literal (a request for
//!   `/no live upstreams`) gives no template: literals decide the candidates;
//! - a cached signature whose regex does not match the line falls back to
//!   the full path (no verdict is ever guessed);
//! - lines the full path gives no signature (nothing, or an unmatched gap)
//!   are never cached.
//!
//! Memory: at most [`CAP`] templates of at most [`MAX_TEMPLATE`] bytes and
//! [`CLEAN_CAP`] tail values of at most 256 bytes per thread (under 7 MiB
//! at worst); a full cache is emptied and starts again.

use std::cell::RefCell;
use std::sync::LazyLock;

use memchr::memmem;
use rustc_hash::{FxHashMap, FxHashSet};

use super::catalogue::Catalogue;
use super::format::{Format, Head};

/// Templates held per thread.
pub const CAP: usize = 4096;
/// Tail values known to hold no catalogue literal, per thread.
pub const CLEAN_CAP: usize = 8192;
/// Longest tail value remembered (longer ones are searched every time).
const CLEAN_VALUE: usize = 256;
/// Longer entries are classified without a template.
pub const MAX_TEMPLATE: usize = 1024;

/// The keys of nginx's error-line tail, in the order nginx writes them.
const TAIL_KEYS: [&[u8]; 7] = [
    b", client: ",
    b", server: ",
    b", request: \"",
    b", subrequest: \"",
    b", upstream: \"",
    b", host: \"",
    b", referrer: \"",
];
const UPSTREAM_KEY: usize = 4;

static CLIENT: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(TAIL_KEYS[0]));
static COMMA: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b", "));

fn digits(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count())
}

/// The key of `tail[at..]`, if one starts there.
fn key_at(tail: &[u8], at: usize) -> Option<usize> {
    let rest = tail.get(at..)?;
    TAIL_KEYS.iter().position(|k| rest.starts_with(k))
}

/// Write the template of `entry` into `out`; `false` when it has none (see
/// the module invariants).
pub fn template(cat: &Catalogue, head: &Head, entry: &[u8], out: &mut Vec<u8>) -> bool {
    template_with(cat, head, entry, out, &mut FxHashSet::default())
}

/// [`template`], remembering in `clean` the tail values found free of
/// literals (clients, hosts and requests repeat: the automaton runs once per
/// distinct value).
fn template_with(
    cat: &Catalogue,
    head: &Head,
    entry: &[u8],
    out: &mut Vec<u8>,
    clean: &mut FxHashSet<Box<[u8]>>,
) -> bool {
    template_spans(cat, head, entry, out, clean).is_some()
}

/// [`template_with`], giving the message's span in `entry` (the part kept
/// byte for byte: after `*CONN `, before the tail) when there is a template.
fn template_spans(
    cat: &Catalogue,
    head: &Head,
    entry: &[u8],
    out: &mut Vec<u8>,
    clean: &mut FxHashSet<Box<[u8]>>,
) -> Option<(usize, usize)> {
    out.clear();
    if head.format != Format::Nginx
        || entry.len() > MAX_TEMPLATE
        || memchr::memchr(b'\n', entry).is_some()
    {
        return None;
    }
    // `YYYY/MM/DD HH:MM:SS [level] PID#TID: *CONN message`
    let open = memchr::memchr(b'[', &entry[..entry.len().min(32)])?;
    let close = memchr::memchr(b']', &entry[open..entry.len().min(open + 12)])?;
    let close = open + close;
    out.extend(
        entry[..open]
            .iter()
            .map(|c| if c.is_ascii_digit() { b'0' } else { *c }),
    );
    out.extend_from_slice(&entry[open..=close]);
    let mut p = close + 1;
    if entry.get(p) != Some(&b' ') {
        return None;
    }
    p += 1;
    let n = digits(entry, p);
    if n == 0 || entry.get(p + n) != Some(&b'#') {
        return None;
    }
    p += n + 1;
    let n = digits(entry, p);
    if n == 0 || !entry[p + n..].starts_with(b": ") {
        return None;
    }
    p += n + 2;
    out.extend_from_slice(b" 0#0: ");
    if entry.get(p) == Some(&b'*') {
        let n = digits(entry, p + 1);
        if n == 0 || entry.get(p + 1 + n) != Some(&b' ') {
            return None;
        }
        p += n + 2;
        out.extend_from_slice(b"*0 ");
    }
    let rest = &entry[p..];
    let tail_at = CLIENT.find(rest).unwrap_or(rest.len());
    out.extend_from_slice(&rest[..tail_at]);
    let tail = &rest[tail_at..];
    let mut at = 0;
    while at < tail.len() {
        let k = key_at(tail, at)?;
        let key = TAIL_KEYS[k];
        out.push(0);
        out.push(k as u8);
        let from = at + key.len();
        // The value ends where the next key starts (or at the end).
        let mut end = tail.len();
        let mut search = from;
        while let Some(c) = COMMA.find(&tail[search..]) {
            if key_at(tail, search + c).is_some() {
                end = search + c;
                break;
            }
            search += c + 1;
        }
        let value = &tail[from..end];
        if key.ends_with(b"\"") && !value.ends_with(b"\"") {
            return None;
        }
        if !clean.contains(value) {
            if cat.literals.is_match(value) {
                return None;
            }
            if value.len() <= CLEAN_VALUE {
                if clean.len() >= CLEAN_CAP {
                    clean.clear();
                }
                clean.insert(value.into());
            }
        }
        if k == UPSTREAM_KEY {
            // The scheme and a unix socket decide causes; the rest is a value.
            if let Some(s) = memmem::find(value, b"://") {
                out.extend_from_slice(&value[..s]);
            }
            if memmem::find(value, b"unix:").is_some() {
                out.extend_from_slice(b"unix:");
            }
        }
        at = end;
    }
    Some((p, p + tail_at))
}

/// What a template remembers: the signature that decided it, and its
/// captures when they all lie in the message (the same for every line of the
/// template), so that a line of it needs a match test, not a capture search.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub sig: u32,
    pub captures: Option<std::rc::Rc<Captured>>,
}

/// The named captures of a signature's match (by name), and the errno the
/// match text implies (`None` when the match reaches outside the message, so
/// that it may differ from line to line), taken from the first line of a
/// template.
#[derive(Debug, Default)]
pub struct Captured {
    pub values: Vec<(&'static str, String)>,
    pub implied_errno: Implied,
}

/// The errno a remembered match implies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Implied {
    /// The match reached outside the message: it may differ from line to line.
    #[default]
    Unknown,
    /// The same for every line of the template (`None`: it implies none).
    Known(Option<u32>),
}

impl Captured {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Per-thread templates of one catalogue.
#[derive(Default)]
struct Cache {
    catalogue: u64,
    map: FxHashMap<Box<[u8]>, Remembered>,
    clean: FxHashSet<Box<[u8]>>,
    buf: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The template of `entry` built in the thread's buffer, then `f` with the
/// message's span and what is cached for it (`Some((span, None))`: a
/// template not cached yet; `None`: no template). `f` returns what to
/// remember, if anything.
pub fn with_cached<R>(
    cat: &Catalogue,
    head: &Head,
    entry: &[u8],
    f: impl FnOnce(Option<((usize, usize), Option<Remembered>)>) -> (R, Option<Remembered>),
) -> R {
    CACHE.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return f(None).0;
        };
        let c = &mut *c;
        if c.catalogue != cat.id {
            c.map.clear();
            c.clean.clear();
            c.catalogue = cat.id;
        }
        let mut buf = std::mem::take(&mut c.buf);
        let span = template_spans(cat, head, entry, &mut buf, &mut c.clean);
        let (r, remember) = if let Some(span) = span {
            let hit = c.map.get(buf.as_slice()).cloned();
            let (r, remember) = f(Some((span, hit)));
            (r, remember)
        } else {
            (f(None).0, None)
        };
        if let Some(s) = remember {
            if c.map.len() >= CAP {
                c.map.clear();
            }
            c.map.insert(buf.as_slice().into(), s);
        }
        c.buf = buf;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format;
    use crate::logs::time::Zone;

    fn t(line: &str) -> Option<String> {
        let cat = Catalogue::builtin();
        let head = format::head(line.as_bytes(), &mut Zone::utc())?;
        let mut out = Vec::new();
        template(cat, &head, line.as_bytes(), &mut out)
            .then(|| String::from_utf8_lossy(&out).replace('\0', "|"))
    }

    #[test]
    fn variable_parts_are_taken_out_and_the_message_stays() {
        let a = "2024/03/14 09:22:07 [error] 1201#1201: *5 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.1, server: e, request: \"GET /a HTTP/1.1\", upstream: \"http://127.0.0.1:8080/a\", host: \"e\"";
        let b = "2024/03/15 10:01:00 [error] 7#7: *99812 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.9, server: shop, request: \"POST /cart?x=1 HTTP/1.1\", upstream: \"http://10.0.3.11:9000/cart\", host: \"shop\"";
        assert_eq!(t(a), t(b));
        assert!(t(a).unwrap().contains("(110: Connection timed out)"));
        // Another errno, another scheme, a referrer: other templates.
        assert_ne!(t(a), t(&a.replace("(110:", "(111:")));
        assert_ne!(t(a), t(&a.replace("http://127", "fastcgi://127")));
        assert_ne!(t(a), t(&format!("{a}, referrer: \"x\"")));
        // A literal in a value, a continuation, another layout: no template.
        assert_eq!(t(&a.replace("GET /a", "GET /no live upstreams")), None);
        assert_eq!(t(&format!("{a}\n  next")), None);
        assert_eq!(
            t("[Thu Mar 14 09:22:07.1 2024] [proxy:error] [pid 1] AH00898: x"),
            None
        );
    }
}
