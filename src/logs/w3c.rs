//! IIS logs in the W3C extended format: the site logs (`u_ex*.log`) and the
//! HTTP.sys error logs (`HTTPERR\httperr*.log`).
//!
//! A W3C file says what its columns are in a `#Fields:` directive, which may
//! come again mid-file with other columns (IIS writes a new header block
//! whenever the service restarts or the logged fields change). The built-in
//! signatures (`server = "iis"` in `assets/signatures.toml`) are written
//! against IIS's default columns ([`DEFAULT_FIELDS`]); a line logged under
//! another `#Fields:` list is rebuilt in the default order first
//! ([`Layout::normalise`]), a column the file does not log becoming `-`.
//! HTTP.sys error lines are matched on their reason phrase, which is
//! distinctive wherever it sits, so they are never rebuilt.
//!
//! W3C times are UTC, whatever the server's zone.

use std::borrow::Cow;

use super::format::{Format, Head, Level};
use super::time::{self, Zone};

/// The columns IIS logs by default (IIS 7 and later), in order.
pub const DEFAULT_FIELDS: [&str; 15] = [
    "date",
    "time",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(User-Agent)",
    "cs(Referer)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "time-taken",
];

/// The directives a W3C file may carry (`#Software: Microsoft Internet Information Services 10.0`).
const DIRECTIVES: [&[u8]; 7] = [
    b"#Software:",
    b"#Version:",
    b"#Date:",
    b"#Fields:",
    b"#Remark:",
    b"#Start-Date:",
    b"#End-Date:",
];

/// Is this line a W3C directive (`#Fields: ...`)? PHP stack-trace lines
/// (`#0 /var/www/...`) are not.
pub fn is_directive(line: &[u8]) -> bool {
    line.first() == Some(&b'#') && DIRECTIVES.iter().any(|d| line.starts_with(d))
}

/// The head of a directive line: an IIS entry with the `#Date:` time, if any.
pub fn directive_head(line: &[u8]) -> Head {
    let ts = line
        .strip_prefix(b"#Date: ")
        .or_else(|| line.strip_prefix(b"#Start-Date: "))
        .and_then(|d| time::iso(d, &mut Zone::utc()))
        .map(|(t, _)| t);
    Head {
        format: Format::Iis,
        ts,
        level: None,
        pid: None,
        program: Some("iis".into()),
    }
}

/// The level a data line's status implies: the default layout's
/// `sc-status` column, else the first three-digit status-like token followed
/// by a number (the substatus of a site log, the site id of HTTP.sys; a port
/// is followed by an address or a user name instead).
fn status_level(tokens: &[&[u8]]) -> Option<Level> {
    let status = |t: &[u8]| {
        t.len() == 3 && t.iter().all(u8::is_ascii_digit) && (b'1'..=b'5').contains(&t[0])
    };
    let number = |t: &[u8]| !t.is_empty() && t.iter().all(u8::is_ascii_digit);
    let st = if tokens.len() == DEFAULT_FIELDS.len() - 2 && status(tokens[9]) {
        Some(tokens[9])
    } else {
        tokens
            .windows(2)
            .find(|w| status(w[0]) && number(w[1]))
            .map(|w| w[0])
    }?;
    Some(match st[0] {
        b'5' => Level::Error,
        b'4' => Level::Warn,
        _ => Level::Info,
    })
}

/// The head of a W3C data line: `YYYY-MM-DD HH:MM:SS` (UTC, no fraction, no
/// zone) then at least seven space-separated fields. W3C never quotes and
/// replaces spaces inside a field with `+`, so a line with quotes, `: ` (a
/// syslog tag, prose) or a level word first is another ISO-stamped log.
pub fn data_head(line: &[u8]) -> Option<Head> {
    if line.len() < 21 || line.get(19) != Some(&b' ') {
        return None;
    }
    let (ts, used) = time::iso(line, &mut Zone::utc())?;
    if used != 19 {
        return None;
    }
    let rest = trim_cr(&line[20..]);
    if rest.contains(&b'"') || memchr::memmem::find(rest, b": ").is_some() {
        return None;
    }
    let tokens: Vec<&[u8]> = rest.split(|b| *b == b' ').collect();
    if tokens.len() < 7 || tokens.iter().any(|t| t.is_empty()) {
        return None;
    }
    let first = tokens[0];
    if first.starts_with(b"[") || Level::parse(first).is_some() {
        return None;
    }
    Some(Head {
        format: Format::Iis,
        ts: Some(ts),
        level: status_level(&tokens),
        pid: None,
        program: Some("iis".into()),
    })
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// The columns a `#Fields:` directive declares, and how to rebuild a line
/// of them in the default order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub fields: Vec<String>,
    /// For each default column, where it is in this layout; `None` when the
    /// layout is the default one (or an HTTP.sys error log, never rebuilt).
    order: Option<Vec<Option<usize>>>,
}

impl Layout {
    /// Parse `#Fields: date time ...`; `None` for any other line.
    pub fn parse(line: &[u8]) -> Option<Layout> {
        let rest = trim_cr(line.strip_prefix(b"#Fields:")?);
        let fields: Vec<String> = String::from_utf8_lossy(rest)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if fields.is_empty() {
            return None;
        }
        let is_default = fields.iter().map(String::as_str).eq(DEFAULT_FIELDS);
        let httperr = fields.iter().any(|f| f == "s-reason");
        let has_status = fields.iter().any(|f| f == "sc-status");
        let order = (!is_default && !httperr && has_status).then(|| {
            DEFAULT_FIELDS
                .iter()
                .map(|d| fields.iter().position(|f| f.eq_ignore_ascii_case(d)))
                .collect()
        });
        Some(Layout { fields, order })
    }

    /// Is this the layout of an HTTP.sys error log?
    pub fn is_httperr(&self) -> bool {
        self.fields.iter().any(|f| f == "s-reason")
    }

    /// The line in the default column order (borrowed when nothing moves).
    /// A line whose field count does not match the layout is left as it is.
    pub fn normalise<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(order) = &self.order else {
            return Cow::Borrowed(line);
        };
        let body = trim_cr(line);
        let tokens: Vec<&[u8]> = body.split(|b| *b == b' ').collect();
        if tokens.len() != self.fields.len() {
            return Cow::Borrowed(line);
        }
        let mut out = Vec::with_capacity(body.len() + 16);
        for (i, at) in order.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            match at.and_then(|j| tokens.get(j)) {
                Some(t) => out.extend_from_slice(t),
                None => out.push(b'-'),
            }
        }
        Cow::Owned(out)
    }
}

/// The `#Fields:` state of a stream read in order: feed every entry, get
/// back the text to classify.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    layout: Option<Layout>,
}

impl Tracker {
    /// The text to classify for `entry` (its first line decides): a
    /// `#Fields:` line updates the layout, a data line is rebuilt in the
    /// default order when the layout differs.
    pub fn view<'a>(&mut self, head: Option<&Head>, entry: &'a [u8]) -> Cow<'a, [u8]> {
        if let Some(l) = Layout::parse(entry) {
            self.layout = Some(l);
            return Cow::Borrowed(entry);
        }
        match (&self.layout, head) {
            (Some(l), Some(h)) if h.format == Format::Iis && h.ts.is_some() => l.normalise(entry),
            _ => Cow::Borrowed(entry),
        }
    }

    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }
}

/// Does the start of a file say it is a W3C log (`#Software:`, `#Version:`
/// or `#Fields:` on its first line)?
pub fn sniff(start: &[u8]) -> bool {
    let start = start.strip_prefix(b"\xef\xbb\xbf").unwrap_or(start);
    is_directive(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "2024-03-14 09:22:07 10.0.0.5 GET /api/orders id=7 443 - 203.0.113.9 Mozilla/5.0 - 502 3 12002 30015";

    #[test]
    fn data_lines_and_directives_are_heads() {
        let h = data_head(LINE.as_bytes()).expect("a W3C line");
        assert_eq!(h.format, Format::Iis);
        assert_eq!(h.level, Some(Level::Error));
        // UTC: 2024-03-14T09:22:07Z
        assert_eq!(h.ts, Some(1_710_408_127));
        assert!(is_directive(b"#Fields: date time"));
        assert!(!is_directive(b"#0 /var/www/x.php(3): f()"));
        assert_eq!(
            directive_head(b"#Date: 2024-03-14 09:00:00").ts,
            Some(1_710_406_800)
        );
        for not in [
            "2024-03-14 09:22:07,123 ERROR something",
            "2024-03-14 09:22:07 host kernel: Out of memory: Killed process 1",
            "2024-03-14 09:22:07.123 [error] x y z a b c d",
        ] {
            assert!(data_head(not.as_bytes()).is_none(), "{not}");
        }
    }

    #[test]
    fn a_custom_fields_line_is_rebuilt_in_the_default_order() {
        let l = Layout::parse(b"#Fields: date time cs-host c-ip cs-method cs-uri-stem sc-status sc-substatus sc-win32-status time-taken\r").unwrap();
        let got = l
            .normalise(b"2024-03-14 09:22:07 shop.example 203.0.113.9 POST /cart 502 3 12029 15\r");
        assert_eq!(
            String::from_utf8_lossy(&got),
            "2024-03-14 09:22:07 - POST /cart - - - 203.0.113.9 - - 502 3 12029 15"
        );
        let d = Layout::parse(format!("#Fields: {}", DEFAULT_FIELDS.join(" ")).as_bytes()).unwrap();
        assert!(matches!(d.normalise(LINE.as_bytes()), Cow::Borrowed(_)));
        let e = Layout::parse(b"#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason s-queuename").unwrap();
        assert!(e.is_httperr());
    }

    #[test]
    fn the_tracker_follows_a_header_that_changes_mid_file() {
        let mut t = Tracker::default();
        let h1 = b"#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-substatus sc-win32-status time-taken";
        let l1 = b"2024-03-14 09:22:07 203.0.113.9 GET /a 502 4 0 1";
        let mut z = Zone::utc();
        assert!(matches!(t.view(None, h1), Cow::Borrowed(_)));
        let hd = super::super::format::head(l1, &mut z);
        let v = t.view(hd.as_ref(), l1);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "2024-03-14 09:22:07 - GET /a - - - 203.0.113.9 - - 502 4 0 1"
        );
        let h2 = format!("#Fields: {}", DEFAULT_FIELDS.join(" "));
        t.view(None, h2.as_bytes());
        let hd = super::super::format::head(LINE.as_bytes(), &mut z);
        assert!(matches!(
            t.view(hd.as_ref(), LINE.as_bytes()),
            Cow::Borrowed(_)
        ));
    }
}
