//! Loopback servers that misbehave the way broken or hostile front servers
//! and upstreams do, for the hardening tests (issue 10).
//!
//! Each server binds 127.0.0.1:0 and runs on its own thread and runtime, so
//! sync tests that wait on a child process and async tests can both use it;
//! dropping the [`Server`] stops it and closes every connection it holds.
//! A server speaks FastCGI when the client's first record is a FastCGI
//! `BEGIN_REQUEST`, HTTP otherwise, so one server serves both probe modes.
//! Invariants: loopback only; every connection ends within [`CONN_LIFE`];
//! at most [`MAX_CONNS`] connections are served at once.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

/// Longest a connection is kept, whatever it does.
pub const CONN_LIFE: Duration = Duration::from_secs(60);
/// Connections served at once per server.
pub const MAX_CONNS: usize = 64;
/// Size of the huge header line.
pub const HUGE: usize = 1024 * 1024;

/// What a server does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// A well-formed response, sent one byte a second.
    Drip,
    /// A status line, then header fields forever (FastCGI: with stderr records between them).
    EndlessHeaders,
    /// A single 1 MiB header field, then a complete small response.
    HugeHeader,
    /// A 502 with no length, whose body never ends.
    EndlessBody,
    /// Bytes that are not UTF-8 in the reason phrase, header values and body.
    InvalidUtf8,
    /// An SSH banner where a status line belongs.
    NotHttp,
    /// The client expects TLS (https://): the port answers plain HTTP text.
    PlainOnTlsPort,
    /// A real TLS server (rustls, self-signed): plain HTTP or FastCGI gets TLS records back.
    TlsOnPlainPort,
    /// Accepts, then never reads nor writes.
    NeverRead,
    /// `/` → `/a` → `/b` → `/a` …, 302 each (FastCGI: a 302 to `/a`).
    RedirectLoop,
    /// A 302 to an address off loopback (TEST-NET-1), which must never be followed.
    RedirectAway,
}

impl Hostile {
    pub const ALL: [Hostile; 11] = [
        Hostile::Drip,
        Hostile::EndlessHeaders,
        Hostile::HugeHeader,
        Hostile::EndlessBody,
        Hostile::InvalidUtf8,
        Hostile::NotHttp,
        Hostile::PlainOnTlsPort,
        Hostile::TlsOnPlainPort,
        Hostile::NeverRead,
        Hostile::RedirectLoop,
        Hostile::RedirectAway,
    ];

    /// A short stable name, for test output and the docs table.
    pub fn name(self) -> &'static str {
        match self {
            Hostile::Drip => "drip 1 B/s",
            Hostile::EndlessHeaders => "endless headers",
            Hostile::HugeHeader => "1 MiB header",
            Hostile::EndlessBody => "endless body",
            Hostile::InvalidUtf8 => "invalid UTF-8",
            Hostile::NotHttp => "not HTTP (SSH banner)",
            Hostile::PlainOnTlsPort => "TLS port answers plain",
            Hostile::TlsOnPlainPort => "plain port answers TLS",
            Hostile::NeverRead => "accepts, never reads",
            Hostile::RedirectLoop => "redirect loop",
            Hostile::RedirectAway => "redirect off loopback",
        }
    }

    /// The scheme a client uses to reach this server in the scenario.
    pub fn scheme(self) -> &'static str {
        if self == Hostile::PlainOnTlsPort {
            "https"
        } else {
            "http"
        }
    }
}

/// Where the redirect-away server points: TEST-NET-1, never routed.
pub const AWAY: &str = "http://192.0.2.1/elsewhere";

/// A running server; dropping it stops the server and its connections.
pub struct Server {
    pub hostile: Hostile,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The URL a client uses in this scenario (`https` for [`Hostile::PlainOnTlsPort`]).
    pub fn url(&self) -> String {
        format!("{}://{}/", self.hostile.scheme(), self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start a hostile server on 127.0.0.1:0.
pub fn start(hostile: Hostile) -> Server {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("local addr").to_string();
    let (tx, rx) = oneshot::channel::<()>();
    let tls = (hostile == Hostile::TlsOnPlainPort).then(tls_acceptor);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = TcpListener::from_std(std_listener).expect("tokio listener");
            let slots = Arc::new(Semaphore::new(MAX_CONNS));
            let accept = async {
                loop {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let Ok((s, _)) = l.accept().await else {
                        return;
                    };
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(CONN_LIFE, serve(s, hostile, tls)).await;
                        drop(permit);
                    });
                }
            };
            tokio::select! {
                () = accept => {}
                _ = rx => {}
            }
        });
        // Dropping the runtime drops every connection task: sockets close.
        rt.shutdown_timeout(Duration::from_millis(100));
    });
    Server {
        hostile,
        addr,
        stop: Some(tx),
        thread: Some(thread),
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let cert = std::fs::read(format!("{dir}/localhost.cert.der")).expect("test cert");
    let key = std::fs::read(format!("{dir}/localhost.key.der")).expect("test key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A FastCGI record of `kind` for request 1 (content at most 65535 bytes).
pub fn fcgi(kind: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() <= 65535);
    let len = content.len() as u16;
    let mut r = vec![1, kind, 0, 1, (len >> 8) as u8, (len & 0xff) as u8, 0, 0];
    r.extend_from_slice(content);
    r
}

/// FastCGI STDOUT records carrying `bytes`, then END_REQUEST.
fn fcgi_stdout(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in bytes.chunks(32 * 1024) {
        out.extend(fcgi(6, c));
    }
    out.extend(fcgi(6, &[]));
    out.extend(fcgi(3, &[0, 0, 0, 0, 0, 0, 0, 0]));
    out
}

/// Read what the client sent first (briefly); empty when it sent nothing.
async fn first_read<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut buf = vec![0u8; 16 * 1024];
    match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
        Ok(Ok(n)) => {
            buf.truncate(n);
            buf
        }
        _ => Vec::new(),
    }
}

fn request_path(req: &[u8]) -> String {
    let line = req.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned()
}

async fn serve(mut s: TcpStream, hostile: Hostile, tls: Option<tokio_rustls::TlsAcceptor>) {
    if hostile == Hostile::NeverRead {
        tokio::time::sleep(CONN_LIFE).await;
        drop(s);
        return;
    }
    if let Some(acceptor) = tls {
        // A real handshake: a TLS client gets a certificate (self-signed, so
        // it refuses it); a plain client gets rustls's alert and a close.
        if let Ok(mut t) = acceptor.accept(s).await {
            let _ = first_read(&mut t).await;
            let _ = t
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
            let _ = t.shutdown().await;
        }
        return;
    }
    let req = first_read(&mut s).await;
    let fastcgi = req.len() >= 2 && req[0] == 1 && req[1] == 1;
    answer(&mut s, hostile, fastcgi, &request_path(&req)).await;
}

async fn answer<S: AsyncWrite + Unpin>(s: &mut S, hostile: Hostile, fastcgi: bool, path: &str) {
    match hostile {
        Hostile::Drip => {
            let bytes = if fastcgi {
                fcgi_stdout(b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok")
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec()
            };
            for b in bytes {
                if s.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Hostile::EndlessHeaders => {
            if !fastcgi && s.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                return;
            }
            for i in 0u64.. {
                let line = format!("X-Endless-{i}: {}\r\n", "a".repeat(48));
                let chunk = if fastcgi {
                    let mut c = fcgi(6, line.as_bytes());
                    c.extend(fcgi(7, format!("PHP Notice: line {i}\n").as_bytes()));
                    c
                } else {
                    line.into_bytes()
                };
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        Hostile::HugeHeader => {
            let mut head = if fastcgi {
                b"Status: 200 OK\r\n".to_vec()
            } else {
                b"HTTP/1.1 200 OK\r\n".to_vec()
            };
            head.extend_from_slice(b"X-Huge: ");
            head.extend(std::iter::repeat_n(b'h', HUGE));
            head.extend_from_slice(b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let bytes = if fastcgi { fcgi_stdout(&head) } else { head };
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        Hostile::EndlessBody => {
            let head: &[u8] = if fastcgi {
                b"Status: 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n"
            } else {
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
            };
            let first = if fastcgi {
                fcgi(6, head)
            } else {
                head.to_vec()
            };
            if s.write_all(&first).await.is_err() {
                return;
            }
            let body = "<p>endless</p>\n".repeat(1000);
            let chunk = if fastcgi {
                fcgi(6, body.as_bytes())
            } else {
                body.into_bytes()
            };
            while s.write_all(&chunk).await.is_ok() {}
        }
        Hostile::InvalidUtf8 => {
            let body: &[u8] = b"<html>\xff\xfe\x00 bad \xc3\x28 gateway \xed\xa0\x80</html>";
            let mut head = if fastcgi {
                b"Status: 502 Bad \xffGateway\r\n".to_vec()
            } else {
                b"HTTP/1.1 502 Bad \xffGateway\r\n".to_vec()
            };
            head.extend_from_slice(b"Server: ngi\xfe\xffnx\r\nX-Bin: \x80\x81\xc3\x28\r\n");
            head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            head.extend_from_slice(body);
            let bytes = if fastcgi { fcgi_stdout(&head) } else { head };
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        Hostile::NotHttp => {
            // An SSH server: its banner, then it waits for the client's.
            let _ = s
                .write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
                .await;
            tokio::time::sleep(CONN_LIFE).await;
        }
        Hostile::PlainOnTlsPort => {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nConnection: close\r\n\r\nthis port speaks plain HTTP.\r\n\r\n")
                .await;
            let _ = s.shutdown().await;
        }
        Hostile::RedirectLoop => {
            let next = if path == "/a" { "/b" } else { "/a" };
            let bytes = if fastcgi {
                fcgi_stdout(format!("Status: 302 Found\r\nLocation: {next}\r\n\r\n").as_bytes())
            } else {
                format!("HTTP/1.1 302 Found\r\nLocation: {next}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
            };
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        Hostile::RedirectAway => {
            let bytes = if fastcgi {
                fcgi_stdout(format!("Status: 302 Found\r\nLocation: {AWAY}\r\n\r\n").as_bytes())
            } else {
                format!("HTTP/1.1 302 Found\r\nLocation: {AWAY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
            };
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        // Handled before reading, in `serve`.
        Hostile::NeverRead | Hostile::TlsOnPlainPort => {}
    }
}
