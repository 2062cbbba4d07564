//! Access-log layouts: a format definition (nginx `log_format`, Apache
//! `LogFormat`, HAProxy `httplog`) compiled into a field extractor.
//!
//! A layout is a list of steps "field, then the literal that ends it"; a line
//! is parsed left to right with one substring search per step, and parsing
//! stops after the last field the summary needs (so referrer and user agent
//! cost nothing). Invariant: parsing never panics and never allocates.

use memchr::memmem::Finder;

use crate::logs::time::{self, Zone};

/// What a field of the format is to the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `[$time_local]` / `%t`: `14/Mar/2024:09:22:07 +0000`.
    TimeLocal,
    /// `$time_iso8601`.
    TimeIso,
    /// `$msec`: `1710408127.512`.
    Msec,
    /// `$request` / `%r`: `GET /path?q HTTP/1.1`.
    Request,
    /// `$request_uri` / `$uri` / `%U`.
    Uri,
    Status,
    /// Response body size (`$body_bytes_sent`, `%b`, `%B`) or total (`$bytes_sent`, `%O`).
    Bytes,
    UpstreamStatus,
    UpstreamAddr,
    Other,
}

#[derive(Debug, Clone)]
struct Step {
    field: Field,
    /// The literal after the field; `None` for the last field (to end of line).
    until: Option<Finder<'static>>,
    until_len: usize,
}

/// A compiled access-log layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub name: String,
    kind: Kind,
    prefix: Vec<u8>,
    steps: Vec<Step>,
    /// Steps after this index are not parsed.
    last_needed: usize,
    pub has_upstream: bool,
    /// The needed steps are nginx `combined`'s (also `main`): [`Layout::record`]
    /// takes the byte-search fast path [`combined`].
    fast: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fields,
    Haproxy,
}

/// One parsed line (borrowed from it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: Option<&'a [u8]>,
    pub time_kind: Option<Field>,
    pub request: Option<&'a [u8]>,
    pub uri: Option<&'a [u8]>,
    pub status: Option<&'a [u8]>,
    pub bytes: Option<&'a [u8]>,
    pub upstream_status: Option<&'a [u8]>,
    pub upstream_addr: Option<&'a [u8]>,
}

/// nginx `combined` (also Apache `combined` with `%b`).
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// nginx.org packages' `main`.
pub const NGINX_MAIN: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;
pub const APACHE_COMBINED: &str = r#"%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\""#;
pub const APACHE_COMMON: &str = r#"%h %l %u %t \"%r\" %>s %O"#;
pub const APACHE_VHOST_COMBINED: &str =
    r#"%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\""#;

/// A format definition that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log format, column {col}: {message}")]
pub struct LayoutError {
    pub col: usize,
    pub message: String,
}

enum Item {
    Lit(Vec<u8>),
    Var(Field),
}

fn nginx_var(name: &str) -> Field {
    match name {
        "time_local" => Field::TimeLocal,
        "time_iso8601" => Field::TimeIso,
        "msec" => Field::Msec,
        "request" => Field::Request,
        "request_uri" | "uri" | "document_uri" => Field::Uri,
        "status" => Field::Status,
        "body_bytes_sent" | "bytes_sent" => Field::Bytes,
        "upstream_status" => Field::UpstreamStatus,
        "upstream_addr" => Field::UpstreamAddr,
        _ => Field::Other,
    }
}

fn parse_nginx(def: &str) -> Result<Vec<Item>, LayoutError> {
    let b = def.as_bytes();
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                let close = def[i..].find('}').ok_or(LayoutError {
                    col: i + 1,
                    message: "`${` without `}`".into(),
                })?;
                (&def[i + 2..i + close], i + close + 1)
            } else {
                let n = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&def[i + 1..i + 1 + n], i + 1 + n)
            };
            if name.is_empty() {
                return Err(LayoutError {
                    col: i + 1,
                    message: "`$` without a variable name".into(),
                });
            }
            if !lit.is_empty() {
                items.push(Item::Lit(std::mem::take(&mut lit)));
            }
            items.push(Item::Var(nginx_var(name)));
            i = next;
        } else {
            lit.push(b[i]);
            i += 1;
        }
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(items)
}

fn parse_apache(def: &str) -> Result<Vec<Item>, LayoutError> {
    // The definition as written in the config: `\"` is a quote.
    let unescaped = def.replace("\\\"", "\"");
    let b = unescaped.as_bytes();
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    let push_lit = |lit: &mut Vec<u8>, items: &mut Vec<Item>| {
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(lit)));
        }
    };
    while i < b.len() {
        if b[i] != b'%' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if b.get(i) == Some(&b'%') {
            lit.push(b'%');
            i += 1;
            continue;
        }
        // modifiers: < > ! digits ,
        while i < b.len() && (b"<>!,".contains(&b[i]) || b[i].is_ascii_digit()) {
            i += 1;
        }
        let mut arg = "";
        if b.get(i) == Some(&b'{') {
            let close = unescaped[i..].find('}').ok_or(LayoutError {
                col: start + 1,
                message: "`%{` without `}`".into(),
            })?;
            arg = &unescaped[i + 1..i + close];
            i += close + 1;
        }
        let Some(&d) = b.get(i) else {
            return Err(LayoutError {
                col: start + 1,
                message: "`%` at the end of the format".into(),
            });
        };
        i += 1;
        push_lit(&mut lit, &mut items);
        match d {
            b't' if arg.is_empty() => {
                items.push(Item::Lit(b"[".to_vec()));
                items.push(Item::Var(Field::TimeLocal));
                lit.push(b']');
            }
            b'r' => items.push(Item::Var(Field::Request)),
            b'U' => items.push(Item::Var(Field::Uri)),
            b's' => items.push(Item::Var(Field::Status)),
            b'b' | b'B' | b'O' => items.push(Item::Var(Field::Bytes)),
            _ => items.push(Item::Var(Field::Other)),
        }
    }
    push_lit(&mut lit, &mut items);
    Ok(items)
}

fn needed(f: Field) -> bool {
    !matches!(f, Field::Other)
}

impl Layout {
    /// Compile a definition: a preset name (`combined`, `main`, `common`,
    /// `vhost_combined`, `haproxy`/`httplog`), an nginx `log_format` string
    /// (with `$vars`) or an Apache `LogFormat` string (with `%` directives).
    pub fn parse(def: &str) -> Result<Layout, LayoutError> {
        let d = def.trim();
        let (name, items) = match d {
            "combined" | "nginx" => ("combined".to_owned(), parse_nginx(NGINX_COMBINED)?),
            "main" => ("main".to_owned(), parse_nginx(NGINX_MAIN)?),
            "common" | "clf" => ("common".to_owned(), parse_apache(APACHE_COMMON)?),
            "apache" | "apache_combined" => {
                ("apache combined".to_owned(), parse_apache(APACHE_COMBINED)?)
            }
            "vhost_combined" => (
                "vhost_combined".to_owned(),
                parse_apache(APACHE_VHOST_COMBINED)?,
            ),
            "haproxy" | "httplog" => {
                return Ok(Layout {
                    name: "haproxy httplog".into(),
                    kind: Kind::Haproxy,
                    prefix: Vec::new(),
                    steps: Vec::new(),
                    last_needed: 0,
                    has_upstream: true,
                    fast: false,
                });
            }
            _ if d.contains('$') => ("custom log_format".to_owned(), parse_nginx(d)?),
            _ if d.contains('%') => ("custom LogFormat".to_owned(), parse_apache(d)?),
            _ => {
                return Err(LayoutError {
                    col: 1,
                    message: format!(
                        "`{d}` is neither a preset (combined, main, common, vhost_combined, haproxy) nor a format with $variables or % directives"
                    ),
                });
            }
        };
        Layout::from_items(name, items)
    }

    fn from_items(name: String, items: Vec<Item>) -> Result<Layout, LayoutError> {
        let mut prefix = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        let mut it = items.into_iter().peekable();
        if let Some(Item::Lit(l)) = it.peek() {
            prefix.clone_from(l);
            it.next();
        }
        while let Some(item) = it.next() {
            match item {
                Item::Var(field) => {
                    let until = match it.peek() {
                        Some(Item::Lit(l)) => Some(l.clone()),
                        Some(Item::Var(_)) => {
                            return Err(LayoutError {
                                col: 1,
                                message:
                                    "two variables with nothing between them cannot be told apart"
                                        .into(),
                            });
                        }
                        None => None,
                    };
                    if until.is_some() {
                        it.next();
                    }
                    steps.push(Step {
                        field,
                        until_len: until.as_ref().map_or(0, Vec::len),
                        until: until.map(|u| Finder::new(&u).into_owned()),
                    });
                }
                Item::Lit(_) => {}
            }
        }
        let last_needed = steps
            .iter()
            .rposition(|s| needed(s.field))
            .ok_or(LayoutError {
                col: 1,
                message: "the format has no $status / %s field".into(),
            })?;
        if !steps.iter().any(|s| s.field == Field::Status) {
            return Err(LayoutError {
                col: 1,
                message: "the format has no $status / %>s field".into(),
            });
        }
        let has_upstream = steps
            .iter()
            .any(|s| matches!(s.field, Field::UpstreamStatus | Field::UpstreamAddr));
        let fast = prefix.is_empty()
            && last_needed + 1 == COMBINED_STEPS.len()
            && steps.iter().zip(COMBINED_STEPS).all(|(s, (field, until))| {
                s.field == field && s.until.as_ref().map(Finder::needle) == Some(until)
            });
        Ok(Layout {
            name,
            kind: Kind::Fields,
            prefix,
            steps,
            last_needed,
            has_upstream,
            fast,
        })
    }

    /// Parse one line; `None` if it does not fit the layout. Equal to
    /// [`Layout::record_general`] on every line (test
    /// `fast_path_equals_general_parser`); nginx `combined`/`main` take the
    /// fast path.
    #[inline]
    pub fn record<'a>(&self, line: &'a [u8]) -> Option<Record<'a>> {
        if self.fast {
            return combined(line);
        }
        self.record_general(line)
    }

    /// Parse one line with the general step walker (any layout).
    #[inline]
    pub fn record_general<'a>(&self, line: &'a [u8]) -> Option<Record<'a>> {
        if self.kind == Kind::Haproxy {
            return haproxy(line);
        }
        let mut rec = Record::default();
        let mut pos = if self.prefix.is_empty() {
            0
        } else {
            if !line.starts_with(&self.prefix) {
                return None;
            }
            self.prefix.len()
        };
        for (i, st) in self.steps.iter().enumerate() {
            if i > self.last_needed {
                break;
            }
            let rest = line.get(pos..)?;
            let (val, next) = match &st.until {
                Some(f) => {
                    let at = if st.until_len == 1 {
                        memchr::memchr(f.needle()[0], rest)?
                    } else {
                        f.find(rest)?
                    };
                    (&rest[..at], pos + at + st.until_len)
                }
                None => (rest, line.len()),
            };
            match st.field {
                Field::TimeLocal | Field::TimeIso | Field::Msec => {
                    rec.time = Some(val);
                    rec.time_kind = Some(st.field);
                }
                Field::Request => rec.request = Some(val),
                Field::Uri => rec.uri = Some(val),
                Field::Status => rec.status = Some(val),
                Field::Bytes => rec.bytes = Some(val),
                Field::UpstreamStatus => rec.upstream_status = Some(val),
                Field::UpstreamAddr => rec.upstream_addr = Some(val),
                Field::Other => {}
            }
            pos = next;
        }
        rec.status.map(|_| rec)
    }
}

/// The needed steps of nginx `combined` / `main`: `$remote_addr - $remote_user
/// [$time_local] "$request" $status $body_bytes_sent "`.
const COMBINED_STEPS: [(Field, &[u8]); 6] = [
    (Field::Other, b" - "),
    (Field::Other, b" ["),
    (Field::TimeLocal, b"] \""),
    (Field::Request, b"\" "),
    (Field::Status, b" "),
    (Field::Bytes, b" \""),
];

/// Start of the first `x y` (two bytes) in `h` at or after `from`, found by
/// searching for the rarer byte `x`.
#[inline]
fn find_pair_by_first(h: &[u8], from: usize, x: u8, y: u8) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr::memchr(x, h.get(at..)?)?;
        if h.get(i + 1) == Some(&y) {
            return Some(i);
        }
        at = i + 1;
    }
}

/// Start of the first `x y z` (three bytes) in `h` at or after `from`, found
/// by searching for the rarer first byte `x`.
#[inline]
#[allow(
    clippy::many_single_char_names,
    reason = "byte positions, in line order"
)]
fn find_triple_by_first(h: &[u8], from: usize, x: u8, y: u8, z: u8) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr::memchr(x, h.get(at..)?)?;
        if h.get(i + 1) == Some(&y) && h.get(i + 2) == Some(&z) {
            return Some(i);
        }
        at = i + 1;
    }
}

/// Start of the first `x y z` (three bytes) in `h` at or after `from`, found
/// by searching for the rarer middle byte `y`.
#[inline]
#[allow(
    clippy::many_single_char_names,
    reason = "byte positions, in line order"
)]
fn find_triple_by_middle(h: &[u8], from: usize, x: u8, y: u8, z: u8) -> Option<usize> {
    let mut at = from + 1;
    loop {
        let i = at + memchr::memchr(y, h.get(at..)?)?;
        if h[i - 1] == x && h.get(i + 1) == Some(&z) {
            return Some(i - 1);
        }
        at = i + 1;
    }
}

/// The first `i` where `at(&h[i..])` holds, by a plain loop (for fields of a
/// few bytes, where a vectorised search costs more than it saves).
#[inline]
fn near(h: &[u8], at: impl Fn(&[u8]) -> bool) -> Option<usize> {
    (0..h.len()).find(|&i| at(&h[i..]))
}

/// The fast path for [`COMBINED_STEPS`]: the same first-occurrence searches
/// as the step walker, each done with `memchr` on the needle's rarest byte
/// (`-`, `[`, `]`, `"`) instead of a substring finder.
#[inline]
#[allow(
    clippy::many_single_char_names,
    reason = "byte positions, in line order"
)]
fn combined(line: &[u8]) -> Option<Record<'_>> {
    let a = find_triple_by_middle(line, 0, b' ', b'-', b' ')?;
    // `$remote_user` is short (mostly `-`): a plain loop beats a call.
    let b = a + 3 + near(line.get(a + 3..)?, |w| w.starts_with(b" ["))?;
    let t0 = b + 2;
    // `$time_local` is 26 bytes wide unless the line is odd.
    let c = match line.get(t0..t0 + 29) {
        Some(w) if w.ends_with(b"] \"") && !w[..26].contains(&b']') => t0 + 26,
        _ => find_triple_by_first(line, t0, b']', b' ', b'"')?,
    };
    let r0 = c + 3;
    let d = find_pair_by_first(line, r0, b'"', b' ')?;
    let s0 = d + 2;
    let e = s0 + near(line.get(s0..)?, |w| w[0] == b' ')?;
    let b0 = e + 1;
    let f = b0 + near(line.get(b0..)?, |w| w.starts_with(b" \""))?;
    Some(Record {
        time: Some(&line[t0..c]),
        time_kind: Some(Field::TimeLocal),
        request: Some(&line[r0..d]),
        uri: None,
        status: Some(&line[s0..e]),
        bytes: Some(&line[b0..f]),
        upstream_status: None,
        upstream_addr: None,
    })
}

/// HAProxy httplog (syslog-wrapped or not): `client:port [date] fe be/srv
/// TR/Tw/Tc/Tr/Ta status bytes reqck resck tsc conns queues "request"`.
fn haproxy(line: &[u8]) -> Option<Record<'_>> {
    let open = memchr::memmem::find(line, b" [")? + 2;
    let close = open + memchr::memchr(b']', &line[open..])?;
    let mut rec = Record {
        time: Some(&line[open..close]),
        time_kind: Some(Field::TimeLocal),
        ..Record::default()
    };
    let mut it = line[close + 1..]
        .split(|c| *c == b' ')
        .filter(|s| !s.is_empty());
    let _fe = it.next()?;
    rec.upstream_addr = it.next();
    let _timers = it.next()?;
    rec.status = it.next();
    rec.bytes = it.next();
    let q = memchr::memchr(b'"', &line[close..]).map(|i| close + i + 1)?;
    let end = memchr::memrchr(b'"', &line[q..]).map_or(line.len(), |i| q + i);
    rec.request = Some(&line[q..end]);
    Some(rec)
}

/// Minute-cached time parsing for access-log timestamps.
#[derive(Debug, Default)]
pub struct Clock {
    key: Vec<u8>,
    minute: i64,
}

impl Clock {
    /// Unix seconds of a record's time.
    #[inline]
    pub fn time(&mut self, rec: &Record<'_>, zone: &mut Zone) -> Option<i64> {
        let t = rec.time?;
        match rec.time_kind? {
            Field::TimeLocal => {
                // `14/Mar/2024:09:22:07 +0000`: the minute is bytes 0..17, seconds 18..20.
                if t.len() >= 20 && t[17] == b':' {
                    let sec = i64::from(t[18].wrapping_sub(b'0')) * 10
                        + i64::from(t[19].wrapping_sub(b'0'));
                    if self.key.len() == t.len()
                        && self.key[..17] == t[..17]
                        && self.key[20..] == t[20..]
                        && (0..=60).contains(&sec)
                    {
                        return Some(self.minute + sec);
                    }
                    let (ts, _) = time::clf(t, zone)?;
                    self.key.clear();
                    self.key.extend_from_slice(t);
                    self.minute = ts - sec;
                    return Some(ts);
                }
                time::clf(t, zone).map(|x| x.0)
            }
            Field::TimeIso => time::iso(t, zone).map(|x| x.0),
            Field::Msec => time::epoch(t),
            _ => None,
        }
    }
}

/// Guess the layout of a file from its first lines.
pub fn detect(sample: &[u8]) -> Option<Layout> {
    let lines: Vec<&[u8]> = sample
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .take(20)
        .collect();
    if lines.is_empty() {
        return None;
    }
    for name in ["main", "combined", "vhost_combined", "common", "haproxy"] {
        let Ok(l) = Layout::parse(name) else { continue };
        let ok = lines
            .iter()
            .filter(|line| {
                l.record(line).is_some_and(|r| {
                    r.status
                        .is_some_and(|s| s.len() == 3 && s.iter().all(u8::is_ascii_digit))
                        && r.time.is_some()
                })
            })
            .count();
        if ok * 10 >= lines.len() * 8 {
            return Some(l);
        }
    }
    None
}

/// The path of a request line or URI: `GET /a/b?x HTTP/1.1` → `/a/b`.
#[inline]
pub fn path_of<'a>(rec: &Record<'a>) -> Option<&'a [u8]> {
    if let Some(u) = rec.uri {
        let end = memchr::memchr2(b'?', b'#', u).unwrap_or(u.len());
        return Some(&u[..end]);
    }
    // The method and the path are short: plain loops.
    let r = rec.request?;
    let sp = r.iter().position(|c| *c == b' ')?;
    let rest = &r[sp + 1..];
    // The path ends at the first `?` or `#` of the URI, which ends at a space.
    let end = rest
        .iter()
        .position(|c| matches!(c, b' ' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_and_custom_formats_parse() {
        let l = Layout::parse("combined").unwrap();
        let line = br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "GET /cart?id=3 HTTP/1.1" 502 157 "-" "curl/8.0""#;
        let r = l.record(line).unwrap();
        assert_eq!(r.status, Some(&b"502"[..]));
        assert_eq!(r.bytes, Some(&b"157"[..]));
        assert_eq!(path_of(&r), Some(&b"/cart"[..]));
        let mut c = Clock::default();
        let mut z = Zone::utc();
        assert_eq!(c.time(&r, &mut z), Some(1_710_408_127));
        let line2 = br#"10.0.0.1 - - [14/Mar/2024:09:22:59 +0000] "GET / HTTP/1.1" 200 10 "-" "x""#;
        assert_eq!(
            c.time(&l.record(line2).unwrap(), &mut z),
            Some(1_710_408_179)
        );

        let custom = Layout::parse(r#"$remote_addr [$time_local] "$request" $status $body_bytes_sent us=$upstream_status ua="$upstream_addr" rt=$request_time"#).unwrap();
        assert!(custom.has_upstream);
        let line = br#"10.0.0.1 [14/Mar/2024:09:22:07 +0000] "GET /api HTTP/1.1" 502 157 us=502 ua="127.0.0.1:8080" rt=0.001"#;
        let r = custom.record(line).unwrap();
        assert_eq!(r.upstream_status, Some(&b"502"[..]));
        assert_eq!(r.upstream_addr, Some(&b"127.0.0.1:8080"[..]));

        let apache =
            Layout::parse(r#"%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\""#)
                .unwrap();
        let line = br#"127.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "GET /x HTTP/1.1" 503 299 "-" "curl/7.88.1""#;
        assert_eq!(apache.record(line).unwrap().status, Some(&b"503"[..]));

        let hap = Layout::parse("haproxy").unwrap();
        let line = br#"Mar 14 09:22:07 lb haproxy[1199]: 10.0.0.1:51234 [14/Mar/2024:09:22:07.123] fe_http be_app/app1 0/0/-1/-1/3003 503 217 - - SC-- 1/1/0/0/3 0/0 "GET /cart HTTP/1.1""#;
        let r = hap.record(line).unwrap();
        assert_eq!(r.status, Some(&b"503"[..]));
        assert_eq!(path_of(&r), Some(&b"/cart"[..]));
        assert_eq!(r.upstream_addr, Some(&b"be_app/app1"[..]));
    }

    /// Odd lines for the fast path: quotes and spaces in paths, `-` sizes,
    /// IPv6 clients, users, missing fields, junk.
    const ODD: &[&[u8]] = &[
        br#"::1 - - [14/Mar/2024:09:22:07 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8""#,
        br#"2001:db8::7 - alice [14/Mar/2024:09:22:07 +0100] "POST /a\"b" c HTTP/1.1" 503 - "-" "x""#,
        br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "GET /x" y"z HTTP/1.1" 504 0 "-" "-""#,
        br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "-" 400 0 "-" "-""#,
        br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "" 400 0 "-" "-""#,
        br#"10.0.0.1 - - - [14/Mar/2024:09:22:07 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#,
        br#"10.0.0.1 - [bob] - [14/Mar/2024:09:22:07 +0000] "GET /] "x HTTP/1.1" 200 1 "-" "-""#,
        br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "GET / HTTP/1.1" 200 1"#,
        br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "GET / HTTP/1.1" 200 1 ""#,
        br#"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] "GET / HTTP/1.1"  200  1  "-""#,
        br#"10.0.0.1 - - [garbage] "GET / HTTP/1.1" 200 1 "-" "-""#,
        br#" - - [] "" 1 2 "#,
        br#"-  - [] "" 1 2 ""#,
        b"10.0.0.1 - - [14/Mar/2024:09:22:07 +0000] \"GET /\xff\xfe HTTP/1.1\" 502 157 \"-\" \"-\"",
        b"",
        b"-",
        b" - ",
        b"\0\0\0 - \0 [\0] \"\0\" \0 \0 \"",
        br#"Mar 14 09:22:07 lb haproxy[1199]: 10.0.0.1:51234 [14/Mar/2024:09:22:07.123] fe be/s 0/0/0/0/1 503 217 - - SC-- 1/1/0/0/3 0/0 "GET /cart HTTP/1.1""#,
        br#"127.0.0.1 - - [14/Mar/2024:09:22:07.123456 +0000] "GET /x HTTP/1.1" 503 299 "-" "curl/7.88.1""#,
    ];

    fn assert_same(layouts: &[Layout], line: &[u8]) {
        for l in layouts {
            assert_eq!(
                l.record(line),
                l.record_general(line),
                "{}: {:?}",
                l.name,
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn fast_path_equals_general_parser() {
        use crate::logs::generate::{Flavor, Spec, generate};
        let layouts: Vec<Layout> = ["combined", "main"]
            .iter()
            .map(|n| Layout::parse(n).unwrap())
            .collect();
        assert!(
            layouts.iter().all(|l| l.fast),
            "combined and main take the fast path"
        );
        for other in ["common", "apache", "vhost_combined", "haproxy"] {
            assert!(!Layout::parse(other).unwrap().fast, "{other}");
        }
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for flavor in [Flavor::Nginx, Flavor::Apache] {
            let mut acc = Vec::new();
            let spec = Spec::new(flavor, 64 << 10, 2 << 20, 1_710_417_600);
            generate(&spec, &mut std::io::sink(), &mut acc).unwrap();
            lines.extend(acc.split(|c| *c == b'\n').map(<[u8]>::to_vec));
        }
        assert!(lines.len() > 10_000);
        let mut parsed = 0;
        for line in &lines {
            assert_same(&layouts, line);
            parsed += usize::from(layouts[0].record(line).is_some());
        }
        assert!(parsed > 10_000, "the generated lines parse");
        // Every prefix and every one-byte change of the odd lines and of a
        // generated line: truncated and corrupted lines take the same path.
        let mut seeds: Vec<Vec<u8>> = ODD.iter().map(|l| l.to_vec()).collect();
        seeds.push(lines[0].clone());
        for seed in &seeds {
            for cut in 0..=seed.len() {
                assert_same(&layouts, &seed[..cut]);
            }
            for i in 0..seed.len() {
                for b in [b' ', b'-', b'"', b'[', b']', b'x', b'\t'] {
                    let mut m = seed.clone();
                    m[i] = b;
                    assert_same(&layouts, &m);
                }
            }
        }
    }

    #[test]
    fn bad_formats_are_rejected_with_a_column() {
        assert!(Layout::parse("$a$b $status").is_err());
        let e = Layout::parse("%h %{Referer").unwrap_err();
        assert_eq!(e.col, 4);
        assert!(Layout::parse("nothing here").is_err());
        assert!(Layout::parse("$remote_addr $body_bytes_sent").is_err());
    }
}
