//! The smallest HTTP/1.1 client the Engine API needs: one `GET` (or, for the restart action
//! only, one body-less `POST`) per connection (`Connection: close`) over a unix socket, the answer read
//! whole under a size cap and a deadline, then parsed (status line and
//! headers with `httparse`, the body by `Content-Length`, `chunked` or to
//! the end of the stream).
//!
//! Every way an answer can be broken (garbage status line, too many headers,
//! a body longer than the cap, a chunk size that is not hex, a chunk cut
//! short, fewer bytes than `Content-Length` promised) is an [`HttpError`],
//! never a panic.

use std::path::Path;
use std::time::Duration;

use crate::platform::UnixStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest status line plus headers accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// Most headers in one answer.
const MAX_HEADERS: usize = 64;

/// A whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Connecting failed (the socket is missing, refused, or not ours to use).
    Connect(std::io::ErrorKind, String),
    /// Reading or writing failed after connecting.
    Io(String),
    /// The deadline passed.
    Timeout(Duration),
    /// The answer is not valid HTTP/1.1, or breaks a limit.
    Protocol(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(_, m) => write!(f, "cannot connect: {m}"),
            HttpError::Io(m) => write!(f, "{m}"),
            HttpError::Timeout(d) => write!(f, "no complete answer within {} ms", d.as_millis()),
            HttpError::Protocol(m) => write!(f, "{m}"),
        }
    }
}

/// `GET path` on the unix socket `socket`, with `Host: docker`.
///
/// `max_body` caps the body (after de-chunking); the raw bytes read are
/// capped at `max_body + MAX_HEAD` plus chunk framing overhead.
pub async fn get(
    socket: &Path,
    path: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Response, HttpError> {
    request(socket, Method::Get, path, timeout, max_body).await
}

/// The two methods this client can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    /// A `POST` without a body (`Content-Length: 0`): only the restart action uses it.
    Post,
}

/// One request without a body; see [`get`].
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Response, HttpError> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HttpError::Protocol(format!(
            "refusing to send a request path with spaces or control characters: {path:?}"
        )));
    }
    let work = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| HttpError::Connect(e.kind(), e.to_string()))?;
        let request = format!(
            "{} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: triage502/{}\r\nAccept: application/json\r\n{}Connection: close\r\n\r\n",
            match method {
                Method::Get => "GET",
                Method::Post => "POST",
            },
            env!("CARGO_PKG_VERSION"),
            match method {
                Method::Get => "",
                Method::Post => "Content-Length: 0\r\n",
            }
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| HttpError::Io(format!("sending the request: {e}")))?;
        // Chunk framing adds a few bytes per chunk; allow a generous margin
        // so a body just under the cap is never refused for its framing.
        let raw_cap = max_body
            .saturating_add(MAX_HEAD)
            .saturating_add(max_body / 8 + 4096);
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| HttpError::Io(format!("reading the answer: {e}")))?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if raw.len() > raw_cap {
                return Err(HttpError::Protocol(format!(
                    "answer larger than {max_body} bytes"
                )));
            }
            // Stop early when the answer is complete (a server that keeps
            // the connection open despite `Connection: close`).
            if let Ok(Some(_)) = parse(&raw, max_body, false) {
                break;
            }
        }
        match parse(&raw, max_body, true)? {
            Some(r) => Ok(r),
            None => Err(HttpError::Protocol("empty answer".to_owned())),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

/// Parse a raw answer. `eof` says the stream ended: an incomplete answer is
/// then an error, otherwise `Ok(None)` (read more).
pub fn parse(raw: &[u8], max_body: usize, eof: bool) -> Result<Option<Response>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if raw.len() > MAX_HEAD {
                return Err(HttpError::Protocol(format!(
                    "status line and headers larger than {MAX_HEAD} bytes"
                )));
            }
            if eof {
                return Err(HttpError::Protocol(if raw.is_empty() {
                    "the connection closed without an answer".to_owned()
                } else {
                    "the answer ended inside its headers".to_owned()
                }));
            }
            return Ok(None);
        }
        Err(e) => return Err(HttpError::Protocol(format!("not an HTTP answer: {e}"))),
    };
    if head_len > MAX_HEAD {
        return Err(HttpError::Protocol(format!(
            "status line and headers larger than {MAX_HEAD} bytes"
        )));
    }
    let status = resp.code.unwrap_or(0);
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let rest = &raw[head_len..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        match dechunk(rest, max_body)? {
            Some(b) => b,
            None if eof => {
                return Err(HttpError::Protocol(
                    "the chunked body was cut short (no final chunk)".to_owned(),
                ));
            }
            None => return Ok(None),
        }
    } else if let Some((_, v)) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = v
            .parse()
            .map_err(|_| HttpError::Protocol(format!("bad Content-Length {v:?}")))?;
        if len > max_body {
            return Err(HttpError::Protocol(format!(
                "answer larger than {max_body} bytes (Content-Length {len})"
            )));
        }
        if rest.len() < len {
            if eof {
                return Err(HttpError::Protocol(format!(
                    "the body was cut short: {} of {len} bytes",
                    rest.len()
                )));
            }
            return Ok(None);
        }
        rest[..len].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else {
        // Delimited by the end of the stream.
        if !eof {
            return Ok(None);
        }
        if rest.len() > max_body {
            return Err(HttpError::Protocol(format!(
                "answer larger than {max_body} bytes"
            )));
        }
        rest.to_vec()
    };
    Ok(Some(Response {
        status,
        headers,
        body,
    }))
}

/// Decode a chunked body. `Ok(None)`: incomplete so far.
fn dechunk(mut data: &[u8], max_body: usize) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = memchr::memmem::find(data, b"\r\n") else {
            if data.len() > 1024 {
                return Err(HttpError::Protocol("chunk size line too long".to_owned()));
            }
            return Ok(None);
        };
        let line = &data[..eol];
        if line.len() > 1024 {
            return Err(HttpError::Protocol("chunk size line too long".to_owned()));
        }
        let size_text = std::str::from_utf8(line)
            .ok()
            .map_or("", |l| l.split(';').next().unwrap_or("").trim());
        let size = usize::from_str_radix(size_text, 16).map_err(|_| {
            HttpError::Protocol(format!(
                "bad chunk size {:?}",
                String::from_utf8_lossy(&line[..line.len().min(40)])
            ))
        })?;
        data = &data[eol + 2..];
        if size == 0 {
            // Trailers are ignored; the answer is complete once the final
            // chunk is seen.
            return Ok(Some(out));
        }
        if out.len().saturating_add(size) > max_body {
            return Err(HttpError::Protocol(format!(
                "answer larger than {max_body} bytes"
            )));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err(HttpError::Protocol(
                "a chunk is not followed by CRLF".to_owned(),
            ));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_body() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\nOK",
            100,
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"OK");
        assert_eq!(r.header("api-version"), Some("1.41"));
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX: y\r\n\r\n";
        let r = parse(raw, 100, true).unwrap().unwrap();
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn truncated_chunk_is_an_error_at_eof_and_partial_before() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert_eq!(parse(raw, 100, false).unwrap(), None);
        let e = parse(raw, 100, true).unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
    }

    #[test]
    fn bad_chunk_size_and_missing_crlf() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
        assert!(
            parse(raw, 100, true)
                .unwrap_err()
                .to_string()
                .contains("bad chunk size")
        );
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n";
        assert!(
            parse(raw, 100, true)
                .unwrap_err()
                .to_string()
                .contains("CRLF")
        );
    }

    #[test]
    fn caps_apply_to_content_length_and_chunks() {
        let e = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 10, true).unwrap_err();
        assert!(e.to_string().contains("larger than 10"), "{e}");
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\n";
        assert!(
            parse(raw, 10, true)
                .unwrap_err()
                .to_string()
                .contains("larger than 10")
        );
        // A chunk size that overflows usize.
        let raw =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffffff\r\n";
        assert!(parse(raw, 10, true).is_err());
    }

    #[test]
    fn short_body_and_garbage() {
        let e = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 10, true).unwrap_err();
        assert!(e.to_string().contains("2 of 5"), "{e}");
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", 10, true).is_err());
        assert!(parse(b"", 10, true).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 10, true).is_err());
    }

    #[test]
    fn eof_delimited_body() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(parse(raw, 10, false).unwrap(), None);
        assert_eq!(parse(raw, 10, true).unwrap().unwrap().body, b"hello");
    }

    #[test]
    fn request_path_is_validated() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(get(
                Path::new("/nonexistent.sock"),
                "/x HTTP/1.1\r\nEvil: 1",
                Duration::from_secs(1),
                10,
            ))
            .unwrap_err();
        assert!(matches!(e, HttpError::Protocol(_)), "{e:?}");
    }
}
