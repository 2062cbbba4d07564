//! Wrappers: what container runtimes, orchestrators and log shippers put
//! around a server's own line, peeled before the line is classified.
//!
//! A wrapper is one of: Docker's json-file record (`{"log":"…\n","stream":
//! "stderr","time":"…"}`, JSON-unescaped), the CRI layout of Kubernetes node
//! logs (`TIME stderr F …`), a `docker compose logs` / `docker service logs`
//! prefix (`web-1  | `, `nginx.1.x@node    | `, colours included), a
//! `kubectl logs --prefix` prefix (`[pod/x/container] `), a shipper timestamp
//! followed by a tab, an RFC 3339 timestamp followed by a space (`docker logs
//! --timestamps`, shippers), a syslog/journald prefix (`Mar  5 21:09:30 host
//! prog[pid]: `, month names in several locales), a `host prog[pid]: ` tag
//! after a journald ISO time, and leading indentation.
//!
//! *Strong* wrappers (the JSON record, CRI, compose, kubectl with a `/`, the
//! tab-separated stamp) are always peeled: nothing else looks like them.
//! *Weak* ones (a bare timestamp, syslog, a bare `[name] `, indentation) are
//! peeled only when what is inside is itself a recognised line, so a plain
//! syslog or ISO-stamped line keeps its own layout.
//!
//! Invariants: at most [`MAX_DEPTH`] layers are peeled; peeling never reads
//! past the line, never panics, and allocates only for the JSON record (whose
//! string is unescaped, and taken as far as it goes when it is not closed).

use std::borrow::Cow;
use std::cell::RefCell;

use super::format;
use super::time::{self, Zone};

/// Most layers peeled off one line.
pub const MAX_DEPTH: usize = 16;

/// Which wrapper a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DockerJson,
    Cri,
    Compose,
    Kubectl,
    TabStamp,
    Stamp,
    Syslog,
    HostTag,
    Indent,
}

/// Where a layer's time is.
#[derive(Debug, Clone)]
enum Stamp {
    None,
    /// An ISO 8601 / RFC 3339 time at this range of the line.
    Iso(usize, usize),
    /// Unix seconds at this range.
    Epoch(usize, usize),
    /// `Mmm dd HH:MM:SS`, normalised to English month names.
    Syslog([u8; 15]),
}

#[derive(Debug, Clone)]
enum Inner {
    Range(usize, usize),
    Owned(Vec<u8>),
}

/// One wrapper found at the start of a line.
#[derive(Debug, Clone)]
pub struct Layer {
    pub kind: Kind,
    /// Peeled whatever is inside.
    pub strong: bool,
    inner: Inner,
    stamp: Stamp,
}

impl Layer {
    /// What the wrapper holds (`line` is the line it was found in).
    pub fn inner<'l>(&'l self, line: &'l [u8]) -> &'l [u8] {
        match &self.inner {
            Inner::Range(s, e) => line.get(*s..*e).unwrap_or_default(),
            Inner::Owned(v) => v,
        }
    }

    /// The wrapper's own time, when it carries one.
    pub fn ts(&self, line: &[u8], z: &mut Zone) -> Option<i64> {
        match &self.stamp {
            Stamp::None => None,
            Stamp::Iso(s, e) => time::iso(line.get(*s..*e)?, z).map(|t| t.0),
            Stamp::Epoch(s, e) => time::epoch(line.get(*s..*e)?),
            Stamp::Syslog(b) => time::syslog(b, z).map(|t| t.0),
        }
    }

    fn take_inner(self, line: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
        match self.inner {
            Inner::Owned(v) => Cow::Owned(v),
            Inner::Range(s, e) => match line {
                Cow::Borrowed(b) => Cow::Borrowed(b.get(s..e).unwrap_or_default()),
                Cow::Owned(mut v) => {
                    v.truncate(e.min(v.len()));
                    v.drain(..s.min(v.len()));
                    Cow::Owned(v)
                }
            },
        }
    }
}

fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

fn layer(kind: Kind, strong: bool, inner: Inner, stamp: Stamp) -> Layer {
    Layer {
        kind,
        strong,
        inner,
        stamp,
    }
}

/// The outermost wrapper of `line`, if it starts with one.
pub fn peel(line: &[u8]) -> Option<Layer> {
    match *line.first()? {
        b'{' => docker_json(line),
        b'0'..=b'9' => cri(line).or_else(|| stamped(line)),
        b'[' => kubectl(line),
        b' ' | b'\t' => indent(line),
        b'\x1b' => compose(line),
        b'a'..=b'z' | b'A'..=b'Z' | 0x80..=0xff => compose(line)
            .or_else(|| syslog(line))
            .or_else(|| host_tag(line)),
        _ => None,
    }
}

/// Length of an ISO 8601 time at the start of `b`: `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±hh[:]mm]`.
fn iso_len(b: &[u8]) -> Option<usize> {
    let digit = |i: usize| byte(b, i).is_ascii_digit();
    let shape = (0..4).all(digit)
        && byte(b, 4) == b'-'
        && digit(5)
        && digit(6)
        && byte(b, 7) == b'-'
        && digit(8)
        && digit(9)
        && matches!(byte(b, 10), b'T' | b' ')
        && digit(11)
        && digit(12)
        && byte(b, 13) == b':'
        && digit(14)
        && digit(15)
        && byte(b, 16) == b':'
        && digit(17)
        && digit(18);
    if !shape {
        return None;
    }
    let mut i = 19;
    if matches!(byte(b, i), b'.' | b',') {
        i += 1;
        while byte(b, i).is_ascii_digit() {
            i += 1;
        }
    }
    match byte(b, i) {
        b'Z' => i += 1,
        b'+' | b'-' if (1..3).all(|k| byte(b, i + k).is_ascii_digit()) => {
            i += 3;
            if byte(b, i) == b':' {
                i += 1;
            }
            while byte(b, i).is_ascii_digit() {
                i += 1;
            }
        }
        _ => {}
    }
    Some(i)
}

/// CRI: `2024-03-14T09:22:07.123456789Z stderr F message`.
fn cri(line: &[u8]) -> Option<Layer> {
    let n = iso_len(line)?;
    let rest = line.get(n..)?;
    if !rest.starts_with(b" stdout ") && !rest.starts_with(b" stderr ") {
        return None;
    }
    let stream = 8;
    let tag = byte(rest, stream);
    if !matches!(tag, b'F' | b'P') || !matches!(byte(rest, stream + 1), b' ' | 0) {
        return None;
    }
    let start = (n + stream + 2).min(line.len());
    Some(layer(
        Kind::Cri,
        true,
        Inner::Range(start, line.len()),
        Stamp::Iso(0, n),
    ))
}

/// A timestamp then a tab (strong), or an RFC 3339 time then a space (weak:
/// `docker logs --timestamps`, shippers; an ISO line of its own stays one).
fn stamped(line: &[u8]) -> Option<Layer> {
    if let Some(n) = iso_len(line) {
        return match byte(line, n) {
            b'\t' => Some(layer(
                Kind::TabStamp,
                true,
                Inner::Range(n + 1, line.len()),
                Stamp::Iso(0, n),
            )),
            b' ' if byte(line, 10) == b'T' => Some(layer(
                Kind::Stamp,
                false,
                Inner::Range(n + 1, line.len()),
                Stamp::Iso(0, n),
            )),
            _ => None,
        };
    }
    // Unix seconds (with a fraction) then a tab.
    let d = line.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(9..=10).contains(&d) {
        return None;
    }
    let mut n = d;
    if byte(line, n) == b'.' {
        n += 1;
        while byte(line, n).is_ascii_digit() {
            n += 1;
        }
    }
    (byte(line, n) == b'\t').then(|| Layer {
        kind: Kind::TabStamp,
        strong: true,
        inner: Inner::Range(n + 1, line.len()),
        stamp: Stamp::Epoch(0, d),
    })
}

/// Skip ANSI SGR sequences (`ESC [ … m`) at `i`.
fn skip_ansi(b: &[u8], mut i: usize) -> usize {
    while byte(b, i) == 0x1b && byte(b, i + 1) == b'[' {
        let mut j = i + 2;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') {
            j += 1;
        }
        if byte(b, j) != b'm' {
            break;
        }
        i = j + 1;
    }
    i
}

fn name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'@')
}

/// `docker compose logs`: `web-1  | msg`, v1 `web_1  | `, swarm `svc.1.id@node    | `.
fn compose(line: &[u8]) -> Option<Layer> {
    let mut i = skip_ansi(line, 0);
    let start = i;
    if !byte(line, i).is_ascii_alphanumeric() {
        return None;
    }
    while i < line.len() && i - start <= 128 && name_byte(line[i]) {
        i += 1;
    }
    if i - start > 128 || byte(line, i) != b' ' {
        return None;
    }
    while byte(line, i) == b' ' {
        i += 1;
    }
    i = skip_ansi(line, i);
    if byte(line, i) != b'|' {
        return None;
    }
    i = skip_ansi(line, i + 1);
    if byte(line, i) == b' ' {
        i += 1;
    } else if i < line.len() {
        return None;
    }
    Some(layer(
        Kind::Compose,
        true,
        Inner::Range(i, line.len()),
        Stamp::None,
    ))
}

/// `kubectl logs --prefix`: `[pod/name/container] msg` (strong); a bare
/// `[name] ` (older kubectl, stern) is weak.
fn kubectl(line: &[u8]) -> Option<Layer> {
    let close = memchr::memchr(b']', line.get(..line.len().min(300))?)?;
    let name = &line[1..close];
    let ok = !name.is_empty()
        && name.iter().any(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/' | b':'));
    if !ok || !matches!(byte(line, close + 1), b' ' | 0) {
        return None;
    }
    let strong = name.contains(&b'/');
    let start = (close + 2).min(line.len());
    Some(layer(
        Kind::Kubectl,
        strong,
        Inner::Range(start, line.len()),
        Stamp::None,
    ))
}

/// Leading blanks (pasted lines, indented quotes).
fn indent(line: &[u8]) -> Option<Layer> {
    let n = line
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    if n >= line.len() {
        return None;
    }
    Some(layer(
        Kind::Indent,
        false,
        Inner::Range(n, line.len()),
        Stamp::None,
    ))
}

/// Month names of the locales syslog daemons and journald print (lower case,
/// trailing dot dropped), to 1..12.
fn month_any(tok: &[u8]) -> Option<usize> {
    const NAMES: [&[&str]; 12] = [
        &["jan", "janv", "ene", "gen", "jän", "sty", "led"],
        &["feb", "févr", "fév", "fev", "fevr", "lut", "úno"],
        &["mar", "mär", "mars", "marz", "mrz", "mär"],
        &["apr", "avr", "abr", "kwi", "dub"],
        &["may", "mai", "mei", "mag", "maj", "kvě"],
        &["jun", "juin", "giu", "cze", "čvn"],
        &["jul", "juil", "lug", "lip", "čvc"],
        &["aug", "août", "ago", "sie", "srp"],
        &["sep", "sept", "set", "wrz", "zář"],
        &["oct", "okt", "ott", "out", "paź", "říj"],
        &["nov", "lis", "noi"],
        &["dec", "déc", "dez", "dic", "dís", "gru", "pro"],
    ];
    let t = tok.strip_suffix(b".").unwrap_or(tok);
    let lower = String::from_utf8_lossy(t).to_lowercase();
    NAMES
        .iter()
        .position(|names| names.contains(&lower.as_str()))
        .map(|i| i + 1)
}

/// syslog / journald `Mmm dd HH:MM:SS host prog[pid]: msg`, in any locale.
fn syslog(line: &[u8]) -> Option<Layer> {
    let sp = memchr::memchr(b' ', line.get(..line.len().min(12))?)?;
    let tok = &line[..sp];
    if tok.is_empty() || tok.iter().any(|c| c.is_ascii_digit() || *c == b':') {
        return None;
    }
    let mo = month_any(tok)?;
    let mut i = sp;
    while byte(line, i) == b' ' {
        i += 1;
    }
    let dstart = i;
    while byte(line, i).is_ascii_digit() {
        i += 1;
    }
    let dlen = i - dstart;
    if !(1..=2).contains(&dlen) || byte(line, i) != b' ' {
        return None;
    }
    let t = i + 1;
    let hms = line.get(t..t + 8)?;
    if hms[2] != b':' || hms[5] != b':' || byte(line, t + 8) != b' ' {
        return None;
    }
    // host, then `prog[pid]:` or `prog:`
    let rest_at = t + 9;
    let rest = line.get(rest_at..)?;
    let hsp = memchr::memchr(b' ', rest)?;
    let tag = &rest[hsp + 1..];
    let colon = memchr::memmem::find(tag.get(..tag.len().min(256))?, b": ")
        .or_else(|| tag.ends_with(b":").then(|| tag.len() - 1))?;
    if colon == 0 || tag[..colon].contains(&b' ') {
        return None;
    }
    let start = (rest_at + hsp + 1 + colon + 2).min(line.len());
    let mut stamp = *b"Jan 01 00:00:00";
    const EN: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    stamp[..3].copy_from_slice(EN[mo - 1]);
    let day = &line[dstart..dstart + dlen];
    if dlen == 1 {
        stamp[4] = b' ';
        stamp[5] = day[0];
    } else {
        stamp[4..6].copy_from_slice(day);
    }
    stamp[7..15].copy_from_slice(hms);
    Some(layer(
        Kind::Syslog,
        false,
        Inner::Range(start, line.len()),
        Stamp::Syslog(stamp),
    ))
}

/// `host prog[pid]: msg` (after a journald ISO time was peeled).
fn host_tag(line: &[u8]) -> Option<Layer> {
    let hsp = memchr::memchr(b' ', line.get(..line.len().min(256))?)?;
    let tag = &line[hsp + 1..];
    let colon = memchr::memmem::find(tag.get(..tag.len().min(256))?, b": ")?;
    if hsp == 0 || colon == 0 || tag[..colon].contains(&b' ') || line[..hsp].contains(&b':') {
        return None;
    }
    Some(layer(
        Kind::HostTag,
        false,
        Inner::Range(hsp + 1 + colon + 2, line.len()),
        Stamp::None,
    ))
}

/// Docker json-file: `{"log":"…","stream":"stderr","time":"…"}`.
fn docker_json(line: &[u8]) -> Option<Layer> {
    let rest = line.strip_prefix(b"{\"log\":")?;
    let lead = rest.iter().take_while(|c| **c == b' ').count();
    let rest = rest.get(lead..)?.strip_prefix(b"\"")?;
    let (mut text, used) = json_string(rest);
    while text.last().is_some_and(|c| matches!(c, b'\n' | b'\r')) {
        text.pop();
    }
    let after_at = 7 + lead + 1 + used;
    let after = line.get(after_at..).unwrap_or_default();
    let stamp = memchr::memmem::find(after, b"\"time\":\"")
        .and_then(|i| {
            let s = after_at + i + 8;
            let e = memchr::memchr(b'"', line.get(s..)?).map(|n| s + n)?;
            Some(Stamp::Iso(s, e))
        })
        .unwrap_or(Stamp::None);
    Some(layer(Kind::DockerJson, true, Inner::Owned(text), stamp))
}

/// Unescape a JSON string body up to its closing quote (or the end of the
/// input when it is not closed). Returns the bytes and how many were read.
fn json_string(b: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return (out, i + 1),
            b'\\' => {
                let Some(&e) = b.get(i + 1) else {
                    return (out, b.len());
                };
                i += 2;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let (c, used) = json_u(b, i);
                        i += used;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    other => out.push(other),
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, b.len())
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// `XXXX` after `\u` at `at` (a surrogate pair takes a second `\uXXXX`).
fn json_u(b: &[u8], at: usize) -> (char, usize) {
    let Some(hi) = hex4(b, at) else {
        return (char::REPLACEMENT_CHARACTER, 0);
    };
    if (0xD800..0xDC00).contains(&hi)
        && b.get(at + 4..at + 6) == Some(b"\\u")
        && let Some(lo) = hex4(b, at + 6)
        && (0xDC00..0xE000).contains(&lo)
    {
        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return (char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER), 10);
    }
    (char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER), 4)
}

/// A line with its wrappers peeled.
#[derive(Debug, Clone)]
pub struct Unwrapped<'a> {
    pub text: Cow<'a, [u8]>,
    /// The innermost wrapper time.
    pub ts: Option<i64>,
    pub layers: Vec<Kind>,
}

/// Should `layer` (found on `line`) be peeled? Strong ones always; weak ones
/// when what is inside starts an entry or is itself wrapped.
fn worth_peeling(layer: &Layer, line: &[u8], z: &mut Zone) -> bool {
    if layer.strong {
        return true;
    }
    let inner = layer.inner(line);
    format::head(inner, z).is_some() || peel(inner).is_some_and(|l| l.strong)
}

/// Peel every wrapper off one physical line (at most [`MAX_DEPTH`]).
pub fn unwrap_line<'a>(line: &'a [u8], z: &mut Zone) -> Unwrapped<'a> {
    let mut cur: Cow<'a, [u8]> = Cow::Borrowed(line);
    let mut ts = None;
    let mut layers = Vec::new();
    for _ in 0..MAX_DEPTH {
        let Some(l) = peel(&cur) else { break };
        if !worth_peeling(&l, &cur, z) {
            break;
        }
        if let Some(t) = l.ts(&cur, z) {
            ts = Some(t);
        }
        layers.push(l.kind);
        cur = l.take_inner(cur);
    }
    Unwrapped {
        text: cur,
        ts,
        layers,
    }
}

/// The physical lines of an entry (memchr, not a byte loop).
fn lines(entry: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', entry).chain(std::iter::once(entry.len()));
    std::iter::from_fn(move || {
        let end = ends.next()?;
        let l = &entry[start..end];
        start = end + 1;
        Some(l)
    })
}

thread_local! {
    static ZONE: RefCell<Zone> = RefCell::new(Zone::utc());
}

/// Every physical line of an entry unwrapped, joined again with `\n`
/// (borrowed when no line carries a wrapper).
pub fn unwrap_entry(entry: &[u8]) -> Cow<'_, [u8]> {
    // Most entries are one line with no wrapper: one cheap look at its start.
    let wrapped = match memchr::memchr(b'\n', entry) {
        None => peel(entry).is_some(),
        Some(_) => lines(entry).any(|l| peel(l).is_some()),
    };
    if !wrapped {
        return Cow::Borrowed(entry);
    }
    ZONE.with(|z| {
        let z = &mut z.borrow_mut();
        let mut out = Vec::with_capacity(entry.len());
        let mut changed = false;
        for (i, l) in lines(entry).enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let u = unwrap_line(l, z);
            changed |= !u.layers.is_empty();
            out.extend_from_slice(&u.text);
        }
        if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(entry)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(s: &str) -> (String, Vec<Kind>) {
        let u = unwrap_line(s.as_bytes(), &mut Zone::utc());
        (String::from_utf8_lossy(&u.text).into_owned(), u.layers)
    }

    const NGINX: &str = "2024/03/14 09:22:07 [error] 8#8: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: e, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"e\"";

    #[test]
    fn each_wrapper_is_peeled() {
        let esc = NGINX.replace('"', "\\\"");
        let cases = [
            (format!("web-1  | {NGINX}"), Kind::Compose),
            (format!("nginx.1.abc@node1    | {NGINX}"), Kind::Compose),
            (format!("\x1b[36mweb_1  |\x1b[0m {NGINX}"), Kind::Compose),
            (format!("[pod/web-5d9/nginx] {NGINX}"), Kind::Kubectl),
            (
                format!("2024-03-14T09:22:07.123456789Z {NGINX}"),
                Kind::Stamp,
            ),
            (format!("2024-03-14T09:22:07.123Z\t{NGINX}"), Kind::TabStamp),
            (format!("1710408127.512\t{NGINX}"), Kind::TabStamp),
            (
                format!("Mar  5 21:09:30 web nginx[12]: {NGINX}"),
                Kind::Syslog,
            ),
            (format!("Mär  5 21:09:30 web nginx: {NGINX}"), Kind::Syslog),
            (format!("déc. 15 21:09:30 web nginx: {NGINX}"), Kind::Syslog),
            (
                format!("2024-03-14T09:22:07.5Z stderr F {NGINX}"),
                Kind::Cri,
            ),
            (
                format!(
                    "{{\"log\":\"{esc}\\n\",\"stream\":\"stderr\",\"time\":\"2024-03-14T09:22:07.1Z\"}}"
                ),
                Kind::DockerJson,
            ),
            (format!("\t {NGINX}"), Kind::Indent),
        ];
        for (line, kind) in cases {
            let (text, layers) = un(&line);
            assert_eq!(text, NGINX, "{line}");
            assert_eq!(layers.first(), Some(&kind), "{line}");
        }
    }

    #[test]
    fn weak_wrappers_stay_when_the_inside_is_not_a_line() {
        for line in [
            "Mar 14 09:22:07 web kernel: Out of memory: Killed process 4121 (php-fpm8.2)",
            "2024-03-14T09:22:07Z ERR Unable to reach the origin service",
            "[WARNING]  (301) : Server be/s1 is DOWN, reason: Layer4 timeout",
            "  thrown in /var/www/html/x.php on line 3",
        ] {
            let (text, layers) = un(line);
            assert_eq!(text, line);
            assert!(layers.is_empty(), "{line}: {layers:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_and_keeps_the_wrapper_time() {
        let mut line = "upstream timed out (110: Connection timed out) while reading response header from upstream".to_owned();
        for _ in 0..40 {
            line = format!("web-1  | {line}");
        }
        let line = format!("2024-03-14T09:22:07Z stdout F {line}");
        let u = unwrap_line(line.as_bytes(), &mut Zone::utc());
        assert_eq!(u.layers.len(), MAX_DEPTH);
        assert_eq!(u.ts, Some(1_710_408_127));
    }

    #[test]
    fn broken_json_and_junk_do_not_panic() {
        for line in [
            "{\"log\":\"abc\\",
            "{\"log\":\"\\ud800\\u12",
            "{\"log\":",
            "{\"log\":\"x\",\"time\":\"2024",
            "\x1b[",
            "web |",
            "[",
            "[]",
            "Mar 5",
            "2024-03-14T09:22:07",
            "\u{ff}\u{fe} | x",
        ] {
            let _ = un(line);
        }
        assert_eq!(un("{\"log\":\"a\\\"b\\u003cNOSRV\\u003e").0, "a\"b<NOSRV>");
    }
}
