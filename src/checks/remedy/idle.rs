//! How long an HTTP upstream keeps an idle keep-alive connection: a few
//! connections are opened side by side, each sends one request, reads the
//! whole answer, then stays idle for its own wait (watching for the
//! upstream's close) and sends a second request. An upstream that closed the
//! connection, or refuses the second request without an answer, has given
//! up on it by then; one that answers has not.
//!
//! Bounded: the longest wait is [`WAITS_MS`]'s last, each read and connect
//! has a timeout, answers are read up to [`MAX_ANSWER`] bytes. Two plain GET
//! requests per connection, as the proxy would send them.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::remedy::IdleTimeout;

/// How long each connection is held idle, side by side.
pub const WAITS_MS: &[u64] = &[250, 500, 750, 1_250, 2_000, 3_000, 4_500];
/// Connecting, and reading an answer, may take this long.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of one answer read at most.
const MAX_ANSWER: usize = 256 * 1024;

/// What one held connection saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// The second request was answered after the wait.
    Answered,
    /// The upstream closed the idle connection after `ms`.
    ClosedIdle(u64),
    /// The upstream took the second request and closed without answering.
    Refused,
    /// The first answer said `Connection: close`.
    NoKeepalive,
    Failed(String),
}

fn request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: triage502 (idle keep-alive probe)\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// Where the answer in `buf` ends, once its head is complete: `Ok(Some(end))`,
/// `Ok(None)` for more bytes, `Err` when it cannot be known.
fn answer_end(buf: &[u8]) -> Result<Option<(usize, bool)>, String> {
    let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
    if !head.starts_with("http/1.") {
        return Err("the answer is not HTTP/1.x".into());
    }
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix(':'))
            .map(str::trim)
    };
    let close = header("connection").is_some_and(|v| v.contains("close"))
        || head.starts_with("http/1.0")
            && !header("connection").is_some_and(|v| v.contains("keep-alive"));
    let body = h + 4;
    if let Some(len) = header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("Content-Length `{len}` is not a number"))?;
        return Ok((buf.len() >= body + len).then_some((body + len, close)));
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(buf[body..]
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")
            .map(|p| (body + p + 5, close)));
    }
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "204" || status == "304" {
        return Ok(Some((body, close)));
    }
    if close {
        return Ok(Some((buf.len(), true)));
    }
    Err("the answer has neither Content-Length nor chunked encoding".into())
}

/// Read one whole answer; `Ok(None)` when the upstream closed before any byte.
async fn read_answer(s: &mut TcpStream) -> Result<Option<bool>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Err(_) => return Err(format!("no whole answer within {} s", IO_TIMEOUT.as_secs())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) if buf.is_empty() => {
                return if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) {
                    Ok(None)
                } else {
                    Err(e.to_string())
                };
            }
            Ok(Err(e)) => return Err(e.to_string()),
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("the upstream closed in the middle of its answer".into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((_, close)) = answer_end(&buf)? {
            return Ok(Some(close));
        }
        if buf.len() > MAX_ANSWER {
            return Err(format!("the answer is longer than {MAX_ANSWER} bytes"));
        }
    }
}

async fn hold(addr: &str, host: &str, path: &str, wait: Duration) -> Held {
    let mut s = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Held::Failed(format!("connect: {e}")),
        Err(_) => return Held::Failed("connect timed out".into()),
    };
    let req = request(host, path);
    if let Err(e) = s.write_all(&req).await {
        return Held::Failed(format!("sending the first request: {e}"));
    }
    match read_answer(&mut s).await {
        Ok(Some(false)) => {}
        Ok(Some(true)) => return Held::NoKeepalive,
        Ok(None) => return Held::Failed("the first request got no answer".into()),
        Err(e) => return Held::Failed(format!("the first answer: {e}")),
    }
    let idle_since = Instant::now();
    let mut b = [0u8; 1];
    match tokio::time::timeout(wait, s.read(&mut b)).await {
        Err(_) => {}
        Ok(Ok(0) | Err(_)) => {
            return Held::ClosedIdle(idle_since.elapsed().as_millis() as u64);
        }
        Ok(Ok(_)) => return Held::Failed("the upstream sent bytes nobody asked for".into()),
    }
    if s.write_all(&req).await.is_err() {
        return Held::Refused;
    }
    match read_answer(&mut s).await {
        Ok(Some(_)) => Held::Answered,
        Ok(None) => Held::Refused,
        Err(e) => Held::Failed(format!("the second answer: {e}")),
    }
}

/// Hold connections to `addr` idle for each of [`WAITS_MS`] (side by side).
pub async fn measure(addr: &str, host: &str, path: &str) -> IdleTimeout {
    let tasks: Vec<_> = WAITS_MS
        .iter()
        .map(|&w| {
            let (a, h, p) = (addr.to_owned(), host.to_owned(), path.to_owned());
            tokio::spawn(async move { (w, hold(&a, &h, &p, Duration::from_millis(w)).await) })
        })
        .collect();
    let mut out = IdleTimeout {
        waited_ms: WAITS_MS.last().copied().unwrap_or(0),
        ..IdleTimeout::default()
    };
    for t in tasks {
        let Ok((w, held)) = t.await else { continue };
        let line = match &held {
            Held::Answered => {
                out.answered_ms = out.answered_ms.max(Some(w));
                format!("held idle {w} ms: the next request was answered")
            }
            Held::ClosedIdle(ms) => {
                out.closed_ms = Some(out.closed_ms.map_or(*ms, |c| c.min(*ms)));
                format!("held idle for {w} ms: the upstream closed it after {ms} ms")
            }
            Held::Refused => {
                out.closed_ms = Some(out.closed_ms.map_or(w, |c| c.min(w)));
                format!("held idle {w} ms: the next request was closed without an answer")
            }
            Held::NoKeepalive => {
                out.no_keepalive = true;
                format!("held idle {w} ms: the first answer said Connection: close")
            }
            Held::Failed(e) => format!("held idle {w} ms: {e}"),
        };
        out.detail.push(line);
    }
    // An answer after a longer wait than a close: the close was not the idle timeout.
    if let (Some(a), Some(c)) = (out.answered_ms, out.closed_ms) {
        if a >= c {
            out.detail.push(format!(
                "answered after {a} ms idle but given up after {c} ms: the closes are not an idle timeout"
            ));
            out.closed_ms = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_an_answer_ends() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
        assert_eq!(answer_end(a), Ok(Some((a.len(), false))));
        assert_eq!(answer_end(&a[..a.len() - 1]), Ok(None));
        let c = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(answer_end(c), Ok(Some((c.len(), true))));
        let ch = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(answer_end(ch), Ok(Some((ch.len(), false))));
        assert!(answer_end(b"SSH-2.0\r\n\r\n").is_err());
    }

    /// A loopback app that serves one request per connection idle for less
    /// than 600 ms, and refuses (closes on) a later one.
    #[tokio::test]
    async fn an_upstream_that_drops_idle_connections_is_bounded() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for s in l.incoming().take(WAITS_MS.len()) {
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut last = None::<Instant>;
                    let mut b = [0u8; 4096];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 {
                            break;
                        }
                        if last.is_some_and(|t: Instant| t.elapsed() > Duration::from_millis(600)) {
                            break;
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
                        last = Some(Instant::now());
                    }
                });
            }
        });
        let m = measure(&addr, "t", "/").await;
        assert_eq!(m.answered_ms, Some(500), "{m:?}");
        assert_eq!(m.closed_ms, Some(750), "{m:?}");
        assert!(!m.no_keepalive);
    }
}
