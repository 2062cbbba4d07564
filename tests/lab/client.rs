//! A plain HTTP/1.1 client over a raw `TcpStream`, for loopback URLs only.
//!
//! The lab needs to see exactly what a front server answers (or that it answers nothing), so it
//! speaks HTTP by hand: one request, `Connection: close`, the response read to EOF. Invariants:
//! refuses any host that is not a loopback address, bounds connect and total time, and reads at
//! most `MAX_RESPONSE` bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest any lab request may take (the slowest scenario answers in about 5 s).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_RESPONSE: usize = 1024 * 1024;

/// What came back for one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A parsed HTTP response.
    Http {
        status: u16,
        head: String,
        body: Vec<u8>,
        elapsed: Duration,
    },
    /// No HTTP response: refused, reset, timed out, or bytes that are not HTTP.
    Failed { error: String, elapsed: Duration },
}

impl Reply {
    /// The HTTP status, if there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Http { status, .. } => Some(*status),
            Reply::Failed { .. } => None,
        }
    }

    /// One line for assertion messages.
    pub fn describe(&self) -> String {
        match self {
            Reply::Http {
                status,
                head,
                elapsed,
                ..
            } => format!(
                "HTTP {status} after {elapsed:?} ({})",
                head.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("server:"))
                    .unwrap_or("no Server header")
            ),
            Reply::Failed { error, elapsed } => {
                format!("no HTTP response after {elapsed:?}: {error}")
            }
        }
    }
}

/// `GET url` with `Host` from the URL. Never panics: failures are a `Reply::Failed`.
pub fn get(url: &str) -> Reply {
    let started = Instant::now();
    match try_get(url, started) {
        Ok(reply) => reply,
        Err(e) => Reply::Failed {
            error: format!("{e:#}"),
            elapsed: started.elapsed(),
        },
    }
}

fn try_get(url: &str, started: Instant) -> anyhow::Result<Reply> {
    let parsed = url::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    if parsed.scheme() != "http" {
        bail!("only http:// URLs: {url}");
    }
    let host = parsed.host_str().context("URL without host")?;
    let port = parsed.port_or_known_default().context("URL without port")?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("the lab only talks to loopback addresses, not {host}"))?;
    if !ip.is_loopback() {
        bail!("the lab only talks to loopback addresses, not {ip}");
    }
    let mut path = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    let addr = SocketAddr::new(ip, port);
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(TOTAL_TIMEOUT))?;
    stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: triage502-lab\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    loop {
        if started.elapsed() > TOTAL_TIMEOUT {
            bail!("no complete response within {TOTAL_TIMEOUT:?}");
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    break;
                }
            }
            // A signal delivered to the test process interrupts the read; that is not an answer.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() => return Err(e).context("read response"),
            Err(_) => break,
        }
    }
    parse(&buf, started.elapsed())
}

fn parse(buf: &[u8], elapsed: Duration) -> anyhow::Result<Reply> {
    if buf.is_empty() {
        bail!("connection closed without a response");
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without a complete header")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        bail!(
            "not an HTTP response: {:?}",
            &status_line.chars().take(80).collect::<String>()
        );
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    Ok(Reply::Http {
        status,
        head,
        body: buf[split + 4..].to_vec(),
        elapsed,
    })
}
