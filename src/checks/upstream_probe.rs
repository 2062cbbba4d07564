//! `upstream_probe`: talk to the upstream directly, bypassing the proxy, and
//! report what it really does on the wire.
//!
//! Speaks HTTP/1.1 or FastCGI (a `RESPONDER` request as `cgi-fcgi` sends it)
//! by hand on a raw tokio socket (TCP or unix), so that garbage, a close or a
//! reset before the header, an oversized header and plain silence are all
//! visible instead of being hidden inside an HTTP library's error.
//! Invariants: one request, `GET` only, no request body; at most
//! [`READ_CAP`] bytes are read (plus one read's worth); the whole probe,
//! connect, write and every read, is bounded by `timeout`; the end of the
//! header is searched for incrementally, so a peer sending one byte per
//! segment costs linear time; FastCGI stderr kept is capped at
//! [`STDERR_CAP`]; bytes are shown escaped, never decoded as UTF-8.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::duration::HumanDuration;

/// Parameters of the `upstream_probe` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The upstream as the proxy dials it: `127.0.0.1:9000`, `[::1]:8000`,
    /// `app.internal:8080` or `unix:/run/php/php8.2-fpm.sock`.
    pub address: String,
    /// `http` (default) or `fastcgi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Host header (HTTP) / HTTP_HOST and SERVER_NAME (FastCGI) of the failing
    /// request (default: the host part of `address`, or `localhost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path and query of the failing request (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// FastCGI SCRIPT_FILENAME, as the proxy config sets it (default:
    /// `document_root` followed by the path, or `index.php` for a directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_filename: Option<String>,
    /// FastCGI DOCUMENT_ROOT (default `/var/www/html`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_root: Option<String>,
    /// Largest response header the proxy accepts, in bytes (default 4096,
    /// nginx's `proxy_buffer_size`/`fastcgi_buffer_size` on x86-64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_limit: Option<u32>,
    /// How long to wait for the connection and the response header (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Fastcgi,
}

pub const DOC: KindDoc = KindDoc {
    kind: "upstream_probe",
    summary: "Send one HTTP/1.1 or FastCGI request straight to the upstream (TCP or unix socket) on a raw socket: status, header size, timings, garbage, close/reset before the header, silence.",
    example: r#"{ upstream_probe = { address = "unix:/run/php/php8.2-fpm.sock", protocol = "fastcgi", host = "shop.example.com", path = "/checkout", script_filename = "/var/www/shop/index.php", timeout = "10s" } }"#,
    facts: &[
        "probe.result",
        "probe.status",
        "probe.header_bytes",
        "probe.first_byte_ms",
    ],
};

/// Bytes read at most from the upstream.
pub const READ_CAP: usize = 256 * 1024;
/// FastCGI stderr kept as evidence, at most.
pub const STDERR_CAP: usize = 4096;

impl Params {
    pub fn label(&self) -> String {
        let proto = match self.protocol {
            Some(Protocol::Fastcgi) => "FastCGI",
            _ => "HTTP",
        };
        format!(
            "{proto} request to {} for {}",
            self.address,
            self.path.as_deref().unwrap_or("/")
        )
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0) + Duration::from_secs(1)
    }
    fn io_timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |d| d.0)
    }
    fn limit(&self) -> usize {
        self.header_limit.map_or(4096, |n| n as usize)
    }
    fn host_header(&self) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        if self.address.starts_with("unix:") {
            return "localhost".into();
        }
        self.address.clone()
    }
}

/// A connected byte stream to the upstream, TCP or unix.
pub trait Wire: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Wire for T {}

/// How a connection attempt failed, with the cause it points at.
#[derive(Debug, Clone)]
pub struct ConnectError {
    /// `refused`, `missing`, `denied`, `overloaded`, `timeout`, `unreachable`, `dns`, `error`.
    pub result: &'static str,
    pub cause: Option<Cause>,
    pub text: String,
}

/// Connect to `127.0.0.1:9000`, `host:port` or `unix:/path` within `timeout`.
pub async fn connect(address: &str, timeout: Duration) -> Result<Box<dyn Wire>, ConnectError> {
    let classify = |e: &std::io::Error| -> (&'static str, Option<Cause>) {
        match e.kind() {
            ErrorKind::ConnectionRefused => ("refused", Some(Cause::UpstreamRefused)),
            ErrorKind::NotFound => ("missing", Some(Cause::SocketMissing)),
            ErrorKind::PermissionDenied => ("denied", Some(Cause::SocketPermission)),
            // A unix socket whose listen queue is full answers EAGAIN at once.
            ErrorKind::WouldBlock => ("overloaded", Some(Cause::UpstreamOverloaded)),
            ErrorKind::TimedOut => ("timeout", Some(Cause::UpstreamTimeout)),
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => ("unreachable", None),
            _ => ("error", None),
        }
    };
    let fut = async {
        if let Some(path) = address.strip_prefix("unix:") {
            crate::platform::UnixStream::connect(path)
                .await
                .map(|s| Box::new(s) as Box<dyn Wire>)
        } else {
            tokio::net::TcpStream::connect(address)
                .await
                .map(|s| Box::new(s) as Box<dyn Wire>)
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            let (result, cause) = classify(&e);
            // tokio resolves names inside connect: a lookup failure is not an io kind.
            let dns = !address.starts_with("unix:")
                && e.kind() == ErrorKind::Other
                && e.to_string().to_ascii_lowercase().contains("name");
            if dns {
                return Err(ConnectError {
                    result: "dns",
                    cause: Some(Cause::DnsFailure),
                    text: format!("{address} does not resolve: {e}"),
                });
            }
            Err(ConnectError {
                result,
                cause,
                text: format!("connect to {address}: {e}"),
            })
        }
        Err(_) => Err(ConnectError {
            result: "timeout",
            cause: None,
            text: format!(
                "connect to {address}: no answer within {} (filtered, or the host is down)",
                HumanDuration(timeout)
            ),
        }),
    }
}

/// How reading the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The parser has what it needs.
    Done,
    Eof,
    Reset,
    Timeout,
    Cap,
    Error,
}

/// Bytes as printable text: control bytes and non-ASCII shown as `\xNN`.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// What the upstream sent, as far as the header.
#[derive(Debug, Default)]
struct Answer {
    first_byte_ms: Option<u128>,
    header_ms: Option<u128>,
    /// Bytes of the response header (status line and fields, HTTP; CGI header, FastCGI).
    header_bytes: Option<usize>,
    status: Option<u16>,
    status_line: String,
    raw_head: Vec<u8>,
    /// A protocol violation: (what, excerpt).
    garbage: Option<String>,
    stderr: String,
    /// Header bigger than the limit (size seen so far or complete).
    header_seen: usize,
    /// Every byte read from the wire (FastCGI: record headers and stderr included).
    received: usize,
    /// The write of the request did not finish (the peer does not read).
    write_stalled: bool,
}

/// The end of a header block in `buf`, searching only from `from` (minus the
/// 3 bytes a separator split across reads can start in): callers pass how
/// much they had searched before, so the whole search stays linear.
fn find_header_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let start = from.saturating_sub(3).min(buf.len());
    let hay = &buf[start..];
    memchr::memmem::find(hay, b"\r\n\r\n")
        .map(|i| (start + i, 4))
        .into_iter()
        .chain(memchr::memmem::find(hay, b"\n\n").map(|i| (start + i, 2)))
        .min_by_key(|(i, _)| *i)
}

/// Send the request within the deadline; false when it could not be written
/// (`End::Reset` on an error, `End::Timeout` when the peer never reads).
async fn send(w: &mut Box<dyn Wire>, req: &[u8], deadline: Instant) -> Result<(), End> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, w.write_all(req)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Reset),
        Err(_) => Err(End::Timeout),
    }
}

/// A hint when garbage is a TLS record (handshake or alert): the upstream speaks TLS.
fn tls_hint(buf: &[u8]) -> &'static str {
    if buf.len() >= 3 && matches!(buf[0], 0x15 | 0x16) && buf[1] == 0x03 && buf[2] <= 0x04 {
        " (a TLS record: this upstream speaks TLS, so the proxy must connect with https)"
    } else {
        ""
    }
}

/// Checks an HTTP-style header block for bytes no proxy accepts.
fn header_violation(head: &[u8]) -> Option<String> {
    if let Some(i) = head.iter().position(|&b| b == 0) {
        return Some(format!("NUL byte at offset {i} of the header"));
    }
    head.iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t'))
        .map(|i| format!("control byte 0x{:02x} at offset {i} of the header", head[i]))
}

async fn read_some(
    w: &mut Box<dyn Wire>,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, End> {
    let now = Instant::now();
    if now >= deadline {
        return Err(End::Timeout);
    }
    let mut chunk = vec![0u8; 8192];
    match tokio::time::timeout(deadline - now, w.read(&mut chunk)).await {
        Err(_) => Err(End::Timeout),
        Ok(Ok(0)) => Err(End::Eof),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => Err(End::Reset),
        Ok(Err(_)) => Err(End::Error),
    }
}

async fn http_exchange(
    p: &Params,
    w: &mut Box<dyn Wire>,
    started: Instant,
    deadline: Instant,
) -> (Answer, End) {
    let path = p.path.as_deref().unwrap_or("/");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: triage502/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        p.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    let mut a = Answer::default();
    if let Err(e) = send(w, req.as_bytes(), deadline).await {
        a.write_stalled = e == End::Timeout;
        return (a, e);
    }
    let mut buf = Vec::new();
    let end = loop {
        let searched = buf.len();
        if let Err(e) = read_some(w, &mut buf, deadline).await {
            break e;
        }
        {
            a.first_byte_ms.get_or_insert(started.elapsed().as_millis());
            if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
                a.garbage = Some(format!(
                    "the answer does not start with `HTTP/`: {}{}",
                    escape(&buf, 120),
                    tls_hint(&buf)
                ));
                break End::Done;
            }
            if let Some((i, sep)) = find_header_end(&buf, searched) {
                a.header_ms = Some(started.elapsed().as_millis());
                a.header_bytes = Some(i + sep);
                break End::Done;
            }
            if buf.len() >= READ_CAP {
                break End::Cap;
            }
        }
    };
    a.received = buf.len();
    a.header_seen = a.header_bytes.unwrap_or(buf.len());
    let head_end = a.header_bytes.unwrap_or(buf.len()).min(buf.len());
    a.raw_head = buf[..head_end].to_vec();
    if a.garbage.is_none() && !buf.is_empty() && buf.len() < 5 && !b"HTTP/".starts_with(&buf) {
        a.garbage = Some(format!(
            "the answer does not start with `HTTP/`: {}{}",
            escape(&buf, 120),
            tls_hint(&buf)
        ));
    }
    let line_end = memchr::memchr(b'\n', &a.raw_head).unwrap_or(a.raw_head.len());
    a.status_line = String::from_utf8_lossy(&a.raw_head[..line_end])
        .trim_end()
        .to_owned();
    if a.garbage.is_none() && a.header_bytes.is_some() {
        a.garbage = header_violation(&a.raw_head);
        let mut parts = a.status_line.split_whitespace();
        let proto = parts.next().unwrap_or("");
        match parts.next().and_then(|c| c.parse::<u16>().ok()) {
            Some(c) if (100..600).contains(&c) && proto.starts_with("HTTP/1.") => {
                a.status = Some(c);
            }
            _ if a.garbage.is_none() => {
                a.garbage = Some(format!(
                    "malformed status line `{}`",
                    escape(a.status_line.as_bytes(), 120)
                ));
            }
            _ => {}
        }
    }
    (a, end)
}

fn fcgi_record(kind: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len() as u16;
    let pad = (8 - (content.len() % 8)) % 8;
    let mut r = vec![
        1,
        kind,
        0,
        1,
        (len >> 8) as u8,
        (len & 0xff) as u8,
        pad as u8,
        0,
    ];
    r.extend_from_slice(content);
    r.extend(std::iter::repeat_n(0u8, pad));
    r
}

fn fcgi_len(out: &mut Vec<u8>, n: usize) {
    if n < 128 {
        out.push(n as u8);
    } else {
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// The FastCGI params `cgi-fcgi`/nginx would send for a GET of `path`.
pub fn fcgi_params(p: &Params) -> Vec<(String, String)> {
    let path = p.path.as_deref().unwrap_or("/");
    let (script, query) = path.split_once('?').unwrap_or((path, ""));
    let root = p.document_root.as_deref().unwrap_or("/var/www/html");
    let script_filename = p.script_filename.clone().unwrap_or_else(|| {
        if script.ends_with('/') {
            format!("{}{script}index.php", root.trim_end_matches('/'))
        } else {
            format!("{}{script}", root.trim_end_matches('/'))
        }
    });
    let host = p.host_header();
    let server_name = host.split(':').next().unwrap_or("localhost").to_owned();
    [
        ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
        (
            "SERVER_SOFTWARE",
            format!("triage502/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("REQUEST_METHOD", "GET".to_owned()),
        ("SCRIPT_FILENAME", script_filename),
        ("SCRIPT_NAME", script.to_owned()),
        ("DOCUMENT_URI", script.to_owned()),
        ("REQUEST_URI", path.to_owned()),
        ("QUERY_STRING", query.to_owned()),
        ("DOCUMENT_ROOT", root.to_owned()),
        ("SERVER_PROTOCOL", "HTTP/1.1".to_owned()),
        ("REMOTE_ADDR", "127.0.0.1".to_owned()),
        ("REMOTE_PORT", "0".to_owned()),
        ("SERVER_ADDR", "127.0.0.1".to_owned()),
        ("SERVER_PORT", "80".to_owned()),
        ("SERVER_NAME", server_name),
        ("HTTP_HOST", host),
        (
            "HTTP_USER_AGENT",
            format!("triage502/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("CONTENT_TYPE", String::new()),
        ("CONTENT_LENGTH", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A FastCGI RESPONDER request: BEGIN_REQUEST, PARAMS, empty PARAMS, empty STDIN.
pub fn fcgi_request(params: &[(String, String)]) -> Vec<u8> {
    let mut out = fcgi_record(1, &[0, 1, 0, 0, 0, 0, 0, 0]);
    let mut body = Vec::new();
    for (k, v) in params {
        fcgi_len(&mut body, k.len());
        fcgi_len(&mut body, v.len());
        body.extend_from_slice(k.as_bytes());
        body.extend_from_slice(v.as_bytes());
    }
    for chunk in body.chunks(65535) {
        out.extend(fcgi_record(4, chunk));
    }
    out.extend(fcgi_record(4, &[]));
    out.extend(fcgi_record(5, &[]));
    out
}

#[allow(
    clippy::many_single_char_names,
    reason = "p: params, w: wire, a: answer, h: record header"
)]
async fn fastcgi_exchange(
    p: &Params,
    w: &mut Box<dyn Wire>,
    started: Instant,
    deadline: Instant,
) -> (Answer, End) {
    let mut a = Answer::default();
    if let Err(e) = send(w, &fcgi_request(&fcgi_params(p)), deadline).await {
        a.write_stalled = e == End::Timeout;
        return (a, e);
    }
    let mut buf = Vec::new();
    let mut stdout = Vec::new();
    let mut searched = 0usize;
    let mut pos = 0usize;
    let end = 'outer: loop {
        // Parse every complete record in the buffer.
        while buf.len() >= pos + 8 {
            let h = &buf[pos..pos + 8];
            let (ver, kind) = (h[0], h[1]);
            let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let pad = usize::from(h[6]);
            if ver != 1 || !(1..=11).contains(&kind) {
                a.garbage = Some(format!(
                    "not a FastCGI record (version {ver}, type {kind}) at byte {pos}: {}{}",
                    escape(&buf[pos..], 120),
                    tls_hint(&buf[pos..])
                ));
                break 'outer End::Done;
            }
            if buf.len() < pos + 8 + len + pad {
                break;
            }
            let content = &buf[pos + 8..pos + 8 + len];
            match kind {
                6 => stdout.extend_from_slice(content),
                7 if a.stderr.len() < STDERR_CAP => {
                    let room = STDERR_CAP - a.stderr.len();
                    let text = String::from_utf8_lossy(&content[..content.len().min(room)]);
                    a.stderr.push_str(&text);
                }
                3 => {
                    if a.header_bytes.is_none() {
                        a.header_seen = stdout.len();
                    }
                    break 'outer End::Eof;
                }
                _ => {}
            }
            pos += 8 + len + pad;
            let found = if a.header_bytes.is_none() {
                find_header_end(&stdout, searched)
            } else {
                None
            };
            searched = stdout.len();
            if let Some((i, sep)) = found {
                a.header_ms = Some(started.elapsed().as_millis());
                a.header_bytes = Some(i + sep);
                break 'outer End::Done;
            }
        }
        if buf.len() >= READ_CAP {
            break End::Cap;
        }
        match read_some(w, &mut buf, deadline).await {
            Err(e) => break e,
            Ok(_) => {
                a.first_byte_ms.get_or_insert(started.elapsed().as_millis());
            }
        }
    };
    a.received = buf.len();
    // A short answer that is not even one record header (a TLS alert is 7 bytes).
    if a.garbage.is_none()
        && a.header_bytes.is_none()
        && let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty())
        && (rest[0] != 1 || rest.get(1).is_some_and(|k| !(1..=11).contains(k)))
    {
        a.garbage = Some(format!(
            "not a FastCGI record at byte {pos}: {}{}",
            escape(rest, 120),
            tls_hint(rest)
        ));
    }
    a.header_seen = a.header_bytes.unwrap_or(stdout.len());
    let head_end = a.header_bytes.unwrap_or(stdout.len()).min(stdout.len());
    a.raw_head = stdout[..head_end].to_vec();
    if a.garbage.is_none() && a.header_bytes.is_some() {
        a.garbage = header_violation(&a.raw_head);
        // CGI: `Status: 502 Bad Gateway`, default 200.
        let text = String::from_utf8_lossy(&a.raw_head).into_owned();
        let status = text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("status")
                .then(|| v.trim().to_owned())
        });
        a.status_line = status.clone().map_or_else(
            || "Status: 200 (implicit)".into(),
            |s| format!("Status: {s}"),
        );
        a.status = match status {
            None => Some(200),
            Some(s) => s.split_whitespace().next().and_then(|c| c.parse().ok()),
        };
        if a.status.is_none() && a.garbage.is_none() {
            a.garbage = Some(format!("malformed CGI status `{}`", a.status_line));
        }
    }
    (a, end)
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let started = Instant::now();
    let timeout = p.io_timeout();
    let deadline = started + timeout;
    let proto = p.protocol.unwrap_or(Protocol::Http);
    if !p.address.starts_with("unix:") && !p.address.contains(':') {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            format!("`{}` is neither host:port nor unix:/path", p.address),
        );
    }
    let mut w = match connect(&p.address, timeout).await {
        Ok(w) => w,
        Err(e) => return connect_failed(p, e, started),
    };
    let connect_ms = started.elapsed().as_millis();
    let (a, end) = match proto {
        Protocol::Http => http_exchange(p, &mut w, started, deadline).await,
        Protocol::Fastcgi => fastcgi_exchange(p, &mut w, started, deadline).await,
    };
    drop(w);
    let mut r = judge(p, &a, end, connect_ms);
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

/// The report when the connection could not be made (also used when the
/// proxy's own resolver already said the name does not resolve).
pub fn connect_failed(p: &Params, e: ConnectError, started: Instant) -> CheckReport {
    let label = p.label();
    {
        {
            let mut r = CheckReport::new(DOC.kind, label, Outcome::Problem, e.text.clone())
                .with_fact("probe.result", e.result)
                .with_fact("probe.status", "")
                .with_evidence(Evidence::new("connect", e.text.clone()).at(p.address.clone()));
            if let Some(c) = e.cause {
                let what = match c {
                    Cause::UpstreamRefused => "Nothing accepts connections at the upstream address",
                    Cause::SocketMissing => "The upstream socket does not exist",
                    Cause::SocketPermission => {
                        "Permission denied connecting to the upstream socket"
                    }
                    Cause::UpstreamOverloaded => "The upstream's listen queue is full (EAGAIN)",
                    Cause::DnsFailure => "The upstream host name does not resolve",
                    _ => "The upstream did not accept the connection in time",
                };
                r = r.diagnose(
                    c,
                    Severity::High,
                    format!("{what}: {}", e.text),
                    vec![Evidence::new("connect", e.text).at(p.address.clone())],
                );
            }
            r.duration_ms = started.elapsed().as_millis() as u64;
            r
        }
    }
}

fn judge(p: &Params, a: &Answer, end: End, connect_ms: u128) -> CheckReport {
    let label = p.label();
    let limit = p.limit();
    let timeout = p.io_timeout();
    let timings = format!(
        "connect {connect_ms} ms, first byte {}, header complete {}",
        a.first_byte_ms.map_or("-".into(), |v| format!("{v} ms")),
        a.header_ms.map_or("-".into(), |v| format!("{v} ms"))
    );
    let src = p.address.clone();
    let head_ev = if a.raw_head.is_empty() {
        None
    } else {
        Some(Evidence::new("response header", escape(&a.raw_head, 1500)).at(src.clone()))
    };
    let mut ev = vec![Evidence::new("timings", timings).at(src.clone())];
    ev.extend(head_ev.clone());
    if !a.stderr.is_empty() {
        ev.push(Evidence::new("FastCGI stderr", a.stderr.trim().to_owned()).at(src.clone()));
    }
    let (outcome, result, summary, cause): (Outcome, &str, String, Option<Cause>) = if let Some(g) =
        &a.garbage
    {
        (
            Outcome::Problem,
            "garbage",
            format!("{} sent an invalid response: {g}", p.address),
            Some(Cause::InvalidResponse),
        )
    } else if a.header_seen > limit {
        (
            Outcome::Problem,
            "header_too_big",
            format!(
                "{} sent a response header of {}{} bytes, more than the {limit}-byte buffer",
                p.address,
                a.header_seen,
                if a.header_bytes.is_none() { "+" } else { "" }
            ),
            Some(Cause::HeaderTooBig),
        )
    } else if a.header_bytes.is_none() {
        match end {
            End::Timeout if a.write_stalled => (
                Outcome::Problem,
                "timeout",
                format!(
                    "{} accepted the connection but did not read the request within {}",
                    p.address,
                    HumanDuration(timeout)
                ),
                Some(Cause::UpstreamTimeout),
            ),
            End::Timeout if a.first_byte_ms.is_none() => (
                Outcome::Problem,
                "timeout",
                format!(
                    "{} accepted the connection but sent nothing within {}",
                    p.address,
                    HumanDuration(timeout)
                ),
                Some(Cause::UpstreamTimeout),
            ),
            End::Timeout => (
                Outcome::Problem,
                "timeout",
                if p.protocol == Some(Protocol::Fastcgi) {
                    format!(
                        "{} sent {} bytes ({} of them CGI header on stdout) but no complete header within {}",
                        p.address,
                        a.received,
                        a.header_seen,
                        HumanDuration(timeout)
                    )
                } else {
                    format!(
                        "{} sent {} bytes but no complete response header within {}",
                        p.address,
                        a.received,
                        HumanDuration(timeout)
                    )
                },
                Some(Cause::UpstreamTimeout),
            ),
            End::Reset => (
                Outcome::Problem,
                "reset",
                format!(
                    "{} reset the connection before a response header ({} bytes received)",
                    p.address, a.received
                ),
                Some(Cause::UpstreamClosed),
            ),
            End::Cap => (
                Outcome::Problem,
                "header_too_big",
                format!(
                    "{} sent more than {READ_CAP} bytes without ending the header",
                    p.address
                ),
                Some(Cause::HeaderTooBig),
            ),
            End::Error => (
                Outcome::Inconclusive,
                "error",
                format!("reading from {} failed", p.address),
                None,
            ),
            End::Eof | End::Done => (
                Outcome::Problem,
                "closed",
                format!(
                    "{} closed the connection before a complete response header ({} bytes received)",
                    p.address, a.received
                ),
                Some(Cause::UpstreamClosed),
            ),
        }
    } else {
        let status = a.status.unwrap_or(0);
        let outcome = if status >= 500 {
            Outcome::Problem
        } else {
            Outcome::Ok
        };
        (
            outcome,
            "answered",
            format!(
                "{} answered `{}` ({} header bytes) in {} ms",
                p.address,
                a.status_line,
                a.header_bytes.unwrap_or(0),
                a.header_ms.unwrap_or(0)
            ),
            None,
        )
    };
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary.clone())
        .with_fact("probe.result", result)
        .with_fact(
            "probe.status",
            a.status.map(|s| s.to_string()).unwrap_or_default(),
        )
        .with_fact(
            "probe.header_bytes",
            a.header_bytes.map(|s| s.to_string()).unwrap_or_default(),
        )
        .with_fact(
            "probe.first_byte_ms",
            a.first_byte_ms.map(|s| s.to_string()).unwrap_or_default(),
        );
    for e in &ev {
        r = r.with_evidence(e.clone());
    }
    r = r.exclude(
        Cause::UpstreamRefused,
        format!("{} accepted the connection", p.address),
    );
    if p.address.starts_with("unix:") {
        r = r.exclude(
            Cause::SocketMissing,
            "the socket exists and accepts connections",
        );
        r = r.exclude(
            Cause::SocketPermission,
            "the connection was allowed (as this user)",
        );
    }
    if let Some(c) = cause {
        r = r.diagnose(c, Severity::High, summary, ev);
    } else if result == "answered" {
        r = r
            .exclude(Cause::UpstreamClosed, "the upstream sent a complete header")
            .exclude(
                Cause::UpstreamTimeout,
                format!("the header came in {} ms", a.header_ms.unwrap_or(0)),
            )
            .exclude(Cause::InvalidResponse, "the header is well-formed")
            .exclude(
                Cause::HeaderTooBig,
                format!("{} header bytes ≤ {limit}", a.header_bytes.unwrap_or(0)),
            );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastcgi_request_is_well_formed() {
        let p = Params {
            address: "unix:/x".into(),
            protocol: Some(Protocol::Fastcgi),
            host: Some("shop.example".into()),
            path: Some("/a/b.php?x=1".into()),
            script_filename: None,
            document_root: Some("/srv/www".into()),
            header_limit: None,
            timeout: None,
        };
        let params = fcgi_params(&p);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("SCRIPT_FILENAME"), "/srv/www/a/b.php");
        assert_eq!(get("QUERY_STRING"), "x=1");
        let req = fcgi_request(&params);
        assert_eq!(&req[..8], &[1, 1, 0, 1, 0, 8, 0, 0]);
        assert_eq!(req.len() % 8, 0);
        assert!(req.ends_with(&[1, 5, 0, 1, 0, 0, 0, 0]));
    }

    #[test]
    fn header_end_is_found_across_reads() {
        // The separator split over two reads, searched from where the first stopped.
        let buf = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let split = 23; // inside "\r\n\r\n"
        assert_eq!(find_header_end(&buf[..split], 0), None);
        assert_eq!(find_header_end(buf, split), Some((21, 4)));
        assert_eq!(find_header_end(b"X\n\n", 1), Some((1, 2)));
    }

    #[test]
    fn tls_records_are_recognised() {
        assert!(!tls_hint(b"\x15\x03\x03\x00\x02\x02\x32").is_empty());
        assert!(tls_hint(b"HTTP/1.1").is_empty());
    }

    #[test]
    fn escape_shows_control_bytes() {
        assert_eq!(escape(b"A\0\r\n\xff", 10), "A\\x00\\r\\n\\xff");
    }
}
