//! Which layout a line is in, detected per line, and what its header says.
//!
//! [`head`] decides whether a physical line *starts an entry* (it carries a
//! timestamp or a known header) and returns the server, time, level, pid and
//! where the message begins. A line for which it returns `None` is a
//! continuation of the entry before it (FastCGI stderr stack traces, slow-log
//! backtraces). [`fields`] then pulls the request fields out of a whole entry.
//! Everything works on bytes; invalid UTF-8 never stops parsing.

use memchr::memmem;
use serde::Serialize;

use super::time::{self, Zone};
use super::wrapper;

/// The detected layout of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Nginx,
    Apache,
    PhpFpm,
    PhpFpmSlow,
    Haproxy,
    Caddy,
    /// IIS: a W3C extended log line (site log or HTTP.sys error log) or a
    /// W3C directive (`#Fields:`), see [`super::w3c`].
    Iis,
    Audit,
    /// A syslog / journal line (RFC 3164 or RFC 3339 prefix, `host prog[pid]:`).
    Syslog,
    /// `dmesg` without `-T`: seconds since boot, no absolute time.
    Dmesg,
    /// Any other line with an ISO 8601 timestamp at its start.
    Iso,
    /// No layout recognised: a message without its server's prefix (a
    /// fragment pasted from the middle of a line), or a wrapper's content.
    Unknown,
}

/// Severity as written by the server, normalised to syslog names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

impl Level {
    pub fn parse(b: &[u8]) -> Option<Level> {
        Some(match b {
            b"emerg" | b"EMERG" | b"emergency" => Level::Emerg,
            b"alert" | b"ALERT" => Level::Alert,
            b"crit" | b"CRIT" | b"CRITICAL" | b"critical" | b"fatal" | b"FATAL" => Level::Crit,
            b"error" | b"ERROR" | b"err" => Level::Error,
            b"warn" | b"WARN" | b"WARNING" | b"warning" => Level::Warn,
            b"notice" | b"NOTICE" => Level::Notice,
            b"info" | b"INFO" => Level::Info,
            b"debug" | b"DEBUG" => Level::Debug,
            _ if b.starts_with(b"trace") => Level::Debug,
            _ => return None,
        })
    }

    /// At least `error`: worth reporting when nothing matched it.
    pub fn is_error(self) -> bool {
        self <= Level::Error
    }
}

/// What the first line of an entry says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub format: Format,
    /// Unix seconds, when the layout has an absolute time.
    pub ts: Option<i64>,
    pub level: Option<Level>,
    pub pid: Option<u32>,
    /// The program name of a syslog line (`haproxy`, `kernel`, `php-fpm`).
    pub program: Option<String>,
}

impl Head {
    /// Can lines without a head follow it as its continuation (a stack
    /// trace after an nginx or php-fpm line)? Not after a bare fragment
    /// (unknown layout, no time): pasted fragments are entries of their own.
    pub fn anchors(&self) -> bool {
        self.format != Format::Unknown || self.ts.is_some()
    }

    /// The head of an entry whose layout is not recognised (no time, no level).
    pub fn unknown() -> Head {
        Head {
            format: Format::Unknown,
            ts: None,
            level: None,
            pid: None,
            program: None,
        }
    }

    /// The server a signature's `server` key names: nginx, apache, php-fpm,
    /// haproxy, caddy, kernel, audit, systemd, or the syslog program.
    pub fn server(&self) -> &str {
        match self.format {
            Format::Nginx => "nginx",
            Format::Apache => "apache",
            Format::PhpFpm | Format::PhpFpmSlow => "php-fpm",
            Format::Haproxy => "haproxy",
            Format::Caddy => "caddy",
            Format::Iis => "iis",
            Format::Audit => "audit",
            Format::Dmesg => "kernel",
            Format::Unknown => "any",
            Format::Syslog | Format::Iso => match self.program.as_deref() {
                Some(p) if p.starts_with("php") && p.contains("fpm") => "php-fpm",
                Some(p) if p.starts_with("apache") || p.starts_with("httpd") => "apache",
                // A program no signature names (an app, a shipper) says nothing
                // about the layout of its message.
                Some(p) if super::catalogue::SERVERS.contains(&p) => p,
                _ => "any",
            },
        }
    }
}

fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    let end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    std::str::from_utf8(b.get(..end)?).ok()?.parse().ok()
}

/// Fast test used at chunk boundaries and by the multi-line joiner: does this
/// line start an entry? Same answer as `head(line).is_some()`.
pub fn starts_entry(line: &[u8], z: &mut Zone) -> bool {
    head(line, z).is_some()
}

/// Detect the layout of a line that starts an entry; `None` for a continuation line.
///
/// Wrappers ([`super::wrapper`]) are looked through: the head is the one of
/// the line inside, with the wrapper's time when that line has none.
pub fn head(line: &[u8], z: &mut Zone) -> Option<Head> {
    head_at(line, z, 0)
}

fn head_at(line: &[u8], z: &mut Zone, depth: usize) -> Option<Head> {
    if depth < wrapper::MAX_DEPTH
        && let Some(layer) = wrapper::peel(line)
    {
        let inner = layer.inner(line);
        if let Some(mut h) = head_at(inner, z, depth + 1) {
            if h.ts.is_none() {
                h.ts = layer.ts(line, z);
            }
            return Some(h);
        }
        if layer.strong {
            // A wrapper around something that is no entry head: with its own
            // time it starts an entry of unknown layout, without one it is a
            // continuation (a wrapped stack trace line).
            let ts = layer.ts(line, z)?;
            return Some(Head {
                format: Format::Unknown,
                ts: Some(ts),
                level: level_word(inner),
                pid: None,
                program: None,
            });
        }
    }
    plain_head(line, z)
}

/// nginx's message prefix without its date: `[error] 12#12: ` or `*5 `.
fn nginx_fragment(line: &[u8]) -> Option<Head> {
    let (level, rest) = if line.first() == Some(&b'[') {
        let close = memchr::memchr(b']', line.get(..line.len().min(10))?)?;
        let level = Level::parse(&line[1..close])?;
        (Some(level), line.get(close + 1..)?.strip_prefix(b" ")?)
    } else {
        (None, line)
    };
    let digits = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let pid = if level.is_some() {
        let n = digits(rest);
        if n == 0 || byte(rest, n) != b'#' {
            return None;
        }
        let t = digits(&rest[n + 1..]);
        if t == 0 || byte(rest, n + 1 + t) != b':' {
            return None;
        }
        parse_u32(rest)
    } else {
        let n = digits(rest.strip_prefix(b"*")?);
        if n == 0 || byte(rest, n + 1) != b' ' {
            return None;
        }
        None
    };
    Some(Head {
        format: Format::Unknown,
        ts: None,
        level,
        pid,
        program: None,
    })
}

fn plain_head(line: &[u8], z: &mut Zone) -> Option<Head> {
    let first = *line.first()?;
    match first {
        b'0'..=b'9' => digit_head(line, z),
        b'[' => bracket_head(line, z).or_else(|| nginx_fragment(line)),
        b'*' => nginx_fragment(line),
        b'#' if super::w3c::is_directive(line) => Some(super::w3c::directive_head(line)),
        b'{' => json_head(line),
        b't' if line.starts_with(b"type=") => audit_head(line),
        b'A'..=b'Z' => {
            let (ts, used) = time::syslog(line, z)?;
            Some(syslog_rest(line, used, Some(ts)))
        }
        _ => None,
    }
}

fn digit_head(line: &[u8], z: &mut Zone) -> Option<Head> {
    if let Some((ts, _)) = time::nginx(line, z) {
        // `YYYY/MM/DD HH:MM:SS [level] PID#TID: `
        let rest = line.get(20..).unwrap_or_default();
        let (level, pid) = if rest.first() == Some(&b'[') {
            let close = memchr::memchr(b']', rest)?;
            let level = Level::parse(&rest[1..close]);
            let pid = rest.get(close + 2..).and_then(parse_u32);
            (level, pid)
        } else {
            (None, None)
        };
        return Some(Head {
            format: Format::Nginx,
            ts: Some(ts),
            level,
            pid,
            program: None,
        });
    }
    // IIS W3C lines are UTC whatever the zone, and have no syslog tag.
    if let Some(h) = super::w3c::data_head(line) {
        return Some(h);
    }
    if let Some((ts, used)) = time::iso(line, z) {
        return Some(syslog_rest(line, used, Some(ts)));
    }
    // HAProxy logging to stdout without syslog: `IP:PORT [14/Mar/2024:09:22:07.123] ...`
    let sp = memchr::memchr(b' ', line)?;
    if byte(line, sp + 1) == b'['
        && let Some((ts, _)) = time::clf(line.get(sp + 2..)?, z)
    {
        return Some(Head {
            format: Format::Haproxy,
            ts: Some(ts),
            level: None,
            pid: None,
            program: Some("haproxy".into()),
        });
    }
    None
}

/// After a syslog/ISO timestamp: `host prog[pid]: msg` (journal/rsyslog), or
/// anything else (generic ISO line with an optional level word).
fn syslog_rest(line: &[u8], used: usize, ts: Option<i64>) -> Head {
    let rest = line.get(used..).unwrap_or_default();
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    // `host program[pid]: ` or `host program: `
    if let Some(sp) = memchr::memchr(b' ', rest) {
        let tail = &rest[sp + 1..];
        if let Some(colon) = memmem::find(tail, b": ") {
            let tag = &tail[..colon];
            if !tag.is_empty() && !tag.contains(&b' ') {
                let (name, pid) = match memchr::memchr(b'[', tag) {
                    Some(b) => (&tag[..b], parse_u32(&tag[b + 1..])),
                    None => (tag, None),
                };
                let program = String::from_utf8_lossy(name).into_owned();
                let format = if program == "haproxy" {
                    Format::Haproxy
                } else {
                    Format::Syslog
                };
                let msg = &tail[colon + 2..];
                let level = level_word(msg);
                return Head {
                    format,
                    ts,
                    level,
                    pid,
                    program: Some(program),
                };
            }
        }
    }
    Head {
        format: Format::Iso,
        ts,
        level: level_word(rest),
        pid: None,
        program: None,
    }
}

/// A leading `[error]`, `ERROR`, `level=error` style word.
fn level_word(msg: &[u8]) -> Option<Level> {
    let m = msg.strip_prefix(b"[").unwrap_or(msg);
    let m = m.strip_prefix(b"level=").unwrap_or(m);
    let end = m
        .iter()
        .position(|c| !c.is_ascii_alphabetic())
        .unwrap_or(m.len());
    Level::parse(&m[..end])
}

fn bracket_head(line: &[u8], z: &mut Zone) -> Option<Head> {
    let inner = line.get(1..)?;
    // php-fpm `[14-Mar-2024 09:22:07] LEVEL: ` and its slow log `[..]  [pool www] pid N`
    if let Some((ts, used)) = time::fpm(inner, z) {
        let rest = inner.get(used + 1..).unwrap_or_default();
        if rest.starts_with(b"  [pool ") {
            let pid = memmem::find(rest, b"] pid ").and_then(|i| parse_u32(&rest[i + 6..]));
            return Some(Head {
                format: Format::PhpFpmSlow,
                ts: Some(ts),
                level: None,
                pid,
                program: None,
            });
        }
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        let colon = memchr::memchr(b':', rest).unwrap_or(0);
        let level = Level::parse(&rest[..colon]);
        // `WARNING: [pool www] child 31245, ...`: the child pid is the one that matters.
        let pid = memmem::find(rest, b"child ").and_then(|i| parse_u32(&rest[i + 6..]));
        return Some(Head {
            format: Format::PhpFpm,
            ts: Some(ts),
            level,
            pid,
            program: None,
        });
    }
    // Apache `[Thu Mar 14 ...]` or the ISO ErrorLogFormat `[2024-03-14 09:22:07.1 +0200]`.
    let parsed = time::apache(inner, z).or_else(|| time::iso(inner, z));
    if let Some((ts, used)) = parsed {
        let rest = inner.get(used..).unwrap_or_default();
        let rest = rest.strip_prefix(b"] ").unwrap_or(rest);
        let (level, pid) = apache_module_level_pid(rest);
        return Some(Head {
            format: Format::Apache,
            ts: Some(ts),
            level,
            pid,
            program: None,
        });
    }
    // dmesg `[12345.678901] text` (no absolute time) or `dmesg -T` `[Thu Mar 14 09:22:07 2024]`
    if inner.first().is_some_and(u8::is_ascii_whitespace)
        || inner.first().is_some_and(u8::is_ascii_digit)
    {
        let close = memchr::memchr(b']', inner)?;
        let stamp = inner[..close].trim_ascii();
        if !stamp.is_empty()
            && stamp.iter().all(|c| c.is_ascii_digit() || *c == b'.')
            && stamp.contains(&b'.')
        {
            return Some(Head {
                format: Format::Dmesg,
                ts: None,
                level: None,
                pid: None,
                program: Some("kernel".into()),
            });
        }
    }
    None
}

/// `[proxy:error] [pid 123:tid 456] ` → (level, pid).
fn apache_module_level_pid(rest: &[u8]) -> (Option<Level>, Option<u32>) {
    if rest.first() != Some(&b'[') {
        return (None, None);
    }
    let Some(close) = memchr::memchr(b']', rest) else {
        return (None, None);
    };
    let ml = &rest[1..close];
    let level = match memchr::memrchr(b':', ml) {
        Some(c) => Level::parse(&ml[c + 1..]),
        None => Level::parse(ml),
    };
    let pid = rest
        .get(close + 1..)
        .and_then(|r| memmem::find(r, b"[pid ").map(|i| &r[i + 5..]))
        .and_then(parse_u32);
    (level, pid)
}

fn json_head(line: &[u8]) -> Option<Head> {
    // Caddy: {"level":"error","ts":1710408067.512,"logger":"http.log.error",...}
    let ts_at = memmem::find(line, b"\"ts\":")?;
    let v = &line[ts_at + 5..];
    let ts = if v.first() == Some(&b'"') {
        let end = memchr::memchr(b'"', &v[1..])?;
        std::str::from_utf8(&v[1..=end])
            .ok()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(jiff::Timestamp::as_second)
    } else {
        time::epoch(v)
    };
    let level = memmem::find(line, b"\"level\":\"").and_then(|i| {
        let l = &line[i + 9..];
        let end = memchr::memchr(b'"', l)?;
        Level::parse(&l[..end])
    });
    Some(Head {
        format: Format::Caddy,
        ts,
        level,
        pid: None,
        program: None,
    })
}

fn audit_head(line: &[u8]) -> Option<Head> {
    let at = memmem::find(line, b"msg=audit(")?;
    let ts = time::epoch(&line[at + 10..])?;
    let pid = memmem::find(line, b" pid=").and_then(|i| parse_u32(&line[i + 5..]));
    Some(Head {
        format: Format::Audit,
        ts: Some(ts),
        level: None,
        pid,
        program: Some("audit".into()),
    })
}

/// Request fields a signature or the layout provides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The request path without its query string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// nginx's ` while ACTION`: the phase of the upstream exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// nginx connection number `*CONN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The backend process (php-fpm child, gunicorn worker, killed process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl Fields {
    /// Is the failing peer a unix socket?
    pub fn is_unix(&self) -> bool {
        self.socket.is_some()
            || self
                .upstream
                .as_deref()
                .is_some_and(|u| u.contains("unix:") || u.contains("httpd-UDS"))
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The path of a request line `GET /a/b?c HTTP/1.1` or of a URI.
pub fn request_path(req: &str) -> Option<String> {
    let mut it = req.split(' ');
    let first = it.next()?;
    let uri = if first.starts_with('/') || first.contains("://") {
        first
    } else {
        it.next()?
    };
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    if uri.is_empty() {
        None
    } else {
        Some(uri.to_owned())
    }
}

/// The fixed fields of an entry, by layout (signature captures come later and win).
pub fn fields(head: &Head, entry: &[u8]) -> Fields {
    match head.format {
        Format::Nginx => nginx_fields(entry),
        Format::Apache => apache_fields(entry),
        Format::Caddy => caddy_fields(entry),
        // A fragment of an nginx line still carries its tail.
        Format::Unknown | Format::Iso | Format::Syslog
            if memmem::find(entry, b", client: ").is_some()
                || memmem::find(entry, b", upstream: \"").is_some() =>
        {
            nginx_fields(entry)
        }
        _ => Fields::default(),
    }
}

/// Tail key places remembered per line by [`nginx_fields`].
const TAIL_PLACES: usize = 16;

const NGINX_KEYS: [(&[u8], bool); 7] = [
    (b", referrer: \"", true),
    (b", host: \"", true),
    (b", upstream: \"", true),
    (b", subrequest: \"", true),
    (b", request: \"", true),
    (b", server: ", false),
    (b", client: ", false),
];

/// Searchers built once (a per-call `rfind` builds its searcher every time).
static NGINX_FINDERS: std::sync::LazyLock<Vec<memmem::FinderRev<'static>>> =
    std::sync::LazyLock::new(|| {
        NGINX_KEYS
            .iter()
            .map(|(k, _)| memmem::FinderRev::new(*k))
            .collect()
    });
static WHILE: std::sync::LazyLock<memmem::FinderRev<'static>> =
    std::sync::LazyLock::new(|| memmem::FinderRev::new(b" while "));
static CONN: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b": *"));

/// Split the nginx tail from the right on its fixed keys.
fn nginx_fields(entry: &[u8]) -> Fields {
    nginx_fields_with(entry, TAIL_PLACES)
}

/// [`nginx_fields`] remembering at most `cap` (≤ [`TAIL_PLACES`]) key places
/// (0: every key searched from the end, the reference the tests compare with).
fn nginx_fields_with(entry: &[u8], cap: usize) -> Fields {
    let mut f = Fields::default();
    // The tail is on the entry's last physical line (FastCGI stderr spans lines).
    let last = memchr::memrchr(b'\n', entry).map_or(entry, |i| &entry[i + 1..]);
    let mut end = last.len();
    let rest = last;
    // Where each key starts, in one pass over the commas (at most
    // `TAIL_PLACES`; a line with more is searched key by key from its end).
    let mut places = [(0usize, 0u8); TAIL_PLACES];
    let mut n = 0;
    let mut overflow = false;
    for c in memchr::memchr_iter(b',', last) {
        if let Some(k) = NGINX_KEYS
            .iter()
            .position(|(k, _)| last[c..].starts_with(k))
        {
            if n == cap.min(TAIL_PLACES) {
                overflow = true;
                break;
            }
            places[n] = (c, k as u8);
            n += 1;
        }
    }
    for (i, (key, quoted)) in NGINX_KEYS.into_iter().enumerate() {
        // The last place of the key that ends before `end` (as `rfind` in
        // `rest[..end]` finds it).
        let found = if overflow {
            NGINX_FINDERS[i].rfind(&rest[..end])
        } else {
            places[..n]
                .iter()
                .rev()
                .find(|(at, k)| usize::from(*k) == i && at + key.len() <= end)
                .map(|(at, _)| *at)
        };
        if let Some(at) = found {
            let mut v = &rest[at + key.len()..end];
            if quoted {
                v = v.strip_suffix(b"\"").unwrap_or(v);
            }
            let val = lossy(v);
            match key {
                b", host: \"" => f.host = Some(val),
                b", upstream: \"" => f.upstream = Some(val),
                b", request: \"" => {
                    f.path = request_path(&val);
                    f.request = Some(val);
                }
                b", client: " => f.client = Some(val),
                _ => {}
            }
            end = at;
        }
    }
    let head_part = &last[..end];
    if let Some(w) = WHILE.rfind(head_part) {
        f.action = Some(lossy(&head_part[w + 7..]));
    }
    // `*CONN` after `PID#TID: `
    if let Some(i) = CONN.find(entry) {
        let digits = &entry[i + 3..];
        let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        f.conn = std::str::from_utf8(&digits[..n])
            .ok()
            .and_then(|s| s.parse().ok());
    }
    f.errno = first_errno(entry, b'(', b": ");
    f
}

/// `(NNN: ` (nginx) or `(NNN)` (Apache APR status) → errno when it is a real errno.
fn first_errno(entry: &[u8], open: u8, after: &[u8]) -> Option<u32> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(open, &entry[from..]) {
        let at = from + i + 1;
        let n = entry[at..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n > 0 && n <= 4 && entry[at + n..].starts_with(after) {
            return parse_u32(&entry[at..]);
        }
        from = at;
    }
    None
}

fn apache_fields(entry: &[u8]) -> Fields {
    let mut f = Fields::default();
    for key in [&b"[client "[..], b"[remote "] {
        if let Some(i) = memmem::find(entry, key) {
            let v = &entry[i + key.len()..];
            if let Some(end) = memchr::memchr(b']', v) {
                f.client = Some(lossy(&v[..end]));
                break;
            }
        }
    }
    // APR status `(111)Connection refused: `: real errnos are small numbers; APR's own are 70000+.
    if let Some(i) = memmem::find(entry, b"] (") {
        let v = &entry[i + 3..];
        let n = v.iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 && v.get(n) == Some(&b')') {
            f.errno = parse_u32(v).filter(|e| *e < 4096);
        }
    }
    if let Some(i) = memmem::find(entry, b" returned by ") {
        let v = &entry[i + 13..];
        let end = v
            .iter()
            .position(|c| *c == b',' || *c == b' ' || *c == b'\n')
            .unwrap_or(v.len());
        f.path = request_path(&lossy(&v[..end]));
    }
    if let Some(i) = memmem::find(entry, b"Unix domain socket ") {
        let v = &entry[i + 19..];
        let end = memchr::memchr(b' ', v).unwrap_or(v.len());
        f.socket = Some(lossy(&v[..end]));
    } else if let Some(i) = memmem::find(entry, b"attempt to connect to ") {
        let v = &entry[i + 22..];
        let end = memchr::memchr(b' ', v).unwrap_or(v.len());
        f.upstream = Some(lossy(&v[..end]));
    } else if let Some(i) = memmem::find(entry, b"to backend: ") {
        let v = &entry[i + 12..];
        let end = v
            .iter()
            .position(|c| *c == b',' || *c == b' ' || *c == b'\n')
            .unwrap_or(v.len());
        f.upstream = Some(lossy(&v[..end]));
    }
    f
}

fn caddy_fields(entry: &[u8]) -> Fields {
    let mut f = Fields::default();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(entry) else {
        return f;
    };
    let req = &v["request"];
    f.client = req["remote_ip"]
        .as_str()
        .or_else(|| req["client_ip"].as_str())
        .map(str::to_owned);
    f.host = req["host"].as_str().map(str::to_owned);
    if let Some(uri) = req["uri"].as_str() {
        f.path = request_path(uri);
        let method = req["method"].as_str().unwrap_or("GET");
        f.request = Some(format!("{method} {uri}"));
    }
    f.status = v["status"].as_u64().and_then(|s| u16::try_from(s).ok());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_tail_equals_the_key_by_key_search() {
        let base = "2024/03/14 09:22:07 [error] 1#1: *5 upstream timed out (110: Connection timed out) while reading response header from upstream";
        let tails = [
            ", client: 10.0.0.1, server: e, request: \"GET /a HTTP/1.1\", upstream: \"http://127.0.0.1:8080/a\", host: \"e\"",
            ", client: 10.0.0.1, server: e, request: \"GET /?q=, host: \"x\", upstream: \"y HTTP/1.1\", host: \"e\", referrer: \"r\"",
            ", client: 1.1.1.1, client: 2.2.2.2, server: , request: \"GET /, server: a HTTP/1.1\"",
            ", host: \"only\"",
            ", upstream: \"",
            ", client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , client: , host: \"h\"",
            "",
            "\n  continued, client: 3.3.3.3, host: \"z\"",
        ];
        for t in tails {
            let line = format!("{base}{t}");
            let fast = nginx_fields(line.as_bytes());
            let reference = nginx_fields_with(line.as_bytes(), 0);
            assert_eq!(fast, reference, "{line}");
        }
    }

    fn h(line: &str) -> Option<Head> {
        head(line.as_bytes(), &mut Zone::utc())
    }

    #[test]
    fn detects_each_layout() {
        let cases = [
            ("2024/03/14 09:22:07 [error] 12#12: *5 x", Format::Nginx),
            (
                "[Thu Mar 14 09:22:07.123456 2024] [proxy:error] [pid 7:tid 8] x",
                Format::Apache,
            ),
            (
                "[2025-07-22 15:45:51.323610 +0200] [proxy:error] [pid 7] x",
                Format::Apache,
            ),
            (
                "[14-Mar-2024 09:22:07] WARNING: [pool www] child 3 exited",
                Format::PhpFpm,
            ),
            (
                "[14-Mar-2024 09:22:07]  [pool www] pid 31245",
                Format::PhpFpmSlow,
            ),
            (
                "Mar 14 09:22:07 lb haproxy[99]: 127.0.0.1:5 [14/Mar/2024:09:22:07.1] fe be/s",
                Format::Haproxy,
            ),
            (
                "{\"level\":\"error\",\"ts\":1710408127.5,\"logger\":\"http.log.error\"}",
                Format::Caddy,
            ),
            (
                "type=AVC msg=audit(1710408127.512:4821): avc:  denied",
                Format::Audit,
            ),
            (
                "2024-03-14T09:22:07+00:00 host kernel: Out of memory",
                Format::Syslog,
            ),
            (
                "[12345.678901] php-fpm8.2[1]: segfault at 10",
                Format::Dmesg,
            ),
            ("2024-03-14 09:22:07,123 ERROR something", Format::Iso),
        ];
        for (line, want) in cases {
            let got = h(line).unwrap_or_else(|| panic!("no head for {line}"));
            assert_eq!(got.format, want, "{line}");
        }
        for cont in [
            "Stack trace:",
            "#0 /var/www/x.php(3): f()",
            "PHP message: PHP Fatal",
            "[0x00007f] f() /x.php:3",
            "  thrown in",
        ] {
            assert!(h(cont).is_none(), "{cont} is a continuation");
        }
    }

    #[test]
    fn nginx_tail_fields() {
        let line = b"2024/03/14 09:22:07 [error] 12#12: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: example.com, request: \"GET /cart?x=1 HTTP/1.1\", upstream: \"http://127.0.0.1:8080/cart\", host: \"example.com\", referrer: \"https://e/\"";
        let hd = head(line, &mut Zone::utc()).unwrap();
        assert_eq!(hd.level, Some(Level::Error));
        assert_eq!(hd.pid, Some(12));
        let f = fields(&hd, line);
        assert_eq!(f.errno, Some(111));
        assert_eq!(f.client.as_deref(), Some("10.0.0.1"));
        assert_eq!(f.path.as_deref(), Some("/cart"));
        assert_eq!(f.upstream.as_deref(), Some("http://127.0.0.1:8080/cart"));
        assert_eq!(f.host.as_deref(), Some("example.com"));
        assert_eq!(f.action.as_deref(), Some("connecting to upstream"));
        assert_eq!(f.conn, Some(5));
    }
}
