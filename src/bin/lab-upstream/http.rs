//! The toy HTTP app: one thread per connection, one fixed behaviour per process.
//!
//! Invariants: at most `MAX_CONNECTIONS` connections are served at once (more are closed at
//! once), a request head is read up to `MAX_HEAD` bytes with a read timeout, and every delay is
//! bounded by the caller.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::ValueEnum;

use crate::{announce_ready, log_event};

/// Connections served at once; beyond that new ones are closed immediately.
const MAX_CONNECTIONS: usize = 256;
/// Bytes of request head read at most.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the app does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Behaviour {
    /// Answers 200 with a short body.
    Healthy,
    /// Answers 200, but only after `--delay` seconds.
    Slow,
    /// Reads the request, then closes without answering.
    CloseAfterRead,
    /// Answers with a header line that contains a NUL byte.
    NulHeader,
    /// Answers 200 with a `Set-Cookie` header of `--header-size` bytes.
    BigHeader,
    /// Answers bytes that are not HTTP (a protocol banner and binary), then closes.
    Garbage,
    /// Answers 200 and keeps the connection alive, but only for `--idle-timeout` ms: a request
    /// that arrives on a connection idle for longer is read and the connection closed without an
    /// answer. This is what a proxy sees when the app's idle close crosses its next request on
    /// the wire (the keepalive race), made deterministic: a proxy that keeps idle connections
    /// longer than the app reuses one the app has given up on. A probe that holds a connection
    /// idle sees it refused after the timeout the same way.
    Keepalive,
}

/// How the app behaves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub behaviour: Behaviour,
    pub delay: Duration,
    pub header_size: usize,
    /// How long a kept-alive connection may stay idle (`keepalive`).
    pub idle_timeout: Duration,
}

/// Listens on `addr` and serves until killed.
pub fn serve(addr: SocketAddr, settings: &Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    log_event(&format!(
        "listening on {local}, behaviour {:?}",
        settings.behaviour
    ));
    announce_ready(&local.to_string())?;
    let in_flight = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let in_flight = Arc::clone(&in_flight);
        let settings = *settings;
        std::thread::spawn(move || {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            if let Err(e) = handle(stream, &settings, &peer) {
                log_event(&format!("{peer}: {e}"));
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn handle(mut stream: TcpStream, settings: &Settings, peer: &str) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    if settings.behaviour == Behaviour::Keepalive {
        return keep_alive(stream, settings.idle_timeout, peer);
    }
    let head = read_head(&mut stream)?;
    let request_line = head.lines().next().unwrap_or("").to_owned();
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    log_event(&format!(
        "{peer} \"{request_line}\" -> {:?}",
        settings.behaviour
    ));
    match settings.behaviour {
        Behaviour::Healthy => stream.write_all(&ok_response(&path, ""))?,
        Behaviour::Slow => {
            std::thread::sleep(settings.delay);
            stream.write_all(&ok_response(&path, ""))?;
        }
        Behaviour::CloseAfterRead => {
            stream.shutdown(Shutdown::Both)?;
        }
        Behaviour::NulHeader => {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Debug: trace\0id=7\r\n\
                  Content-Length: 3\r\nConnection: close\r\n\r\nok\n",
            )?;
        }
        Behaviour::BigHeader => {
            let cookie = format!(
                "Set-Cookie: session={}; Path=/; HttpOnly\r\n",
                "a".repeat(settings.header_size)
            );
            stream.write_all(&ok_response(&path, &cookie))?;
        }
        Behaviour::Keepalive => unreachable!("served by keep_alive"),
        Behaviour::Garbage => {
            stream.write_all(
                b"\x15\x03\x01\x00\x02\x02\x0a\x00\xff\xfe lab-upstream: not http\r\n",
            )?;
            stream.shutdown(Shutdown::Both)?;
        }
    }
    Ok(())
}

/// Requests a kept-alive connection may carry (bounded).
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;

/// Serves requests on one connection until the client closes it, or a request arrives after the
/// connection was idle for longer than `idle`: that one is read and the connection closed without
/// an answer (the app had given up on it). A connection idle for longer than [`READ_TIMEOUT`]
/// is closed.
fn keep_alive(mut stream: TcpStream, idle: Duration, peer: &str) -> anyhow::Result<()> {
    let mut last_answer: Option<std::time::Instant> = None;
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let head = read_head(&mut stream)?;
        if head.is_empty() {
            return Ok(());
        }
        let request_line = head.lines().next().unwrap_or("").to_owned();
        if let Some(t) = last_answer {
            let waited = t.elapsed();
            if waited > idle {
                log_event(&format!(
                    "{peer} \"{request_line}\" arrived after the connection was idle {} ms, beyond the idle timeout of {} ms: closing without an answer",
                    waited.as_millis(),
                    idle.as_millis()
                ));
                stream.shutdown(Shutdown::Both)?;
                return Ok(());
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
        log_event(&format!(
            "{peer} \"{request_line}\" -> Keepalive (idle timeout {} ms)",
            idle.as_millis()
        ));
        let body = format!("ok {path}\n");
        stream.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nServer: lab-upstream\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\nKeep-Alive: timeout={}\r\n\r\n{body}",
                body.len(),
                idle.as_secs().max(1)
            )
            .as_bytes(),
        )?;
        last_answer = Some(std::time::Instant::now());
    }
    Ok(())
}

/// Reads up to the end of the request head (`\r\n\r\n`), at most `MAX_HEAD` bytes.
fn read_head(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 4096];
    while buf.len() < MAX_HEAD {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn ok_response(path: &str, extra_headers: &str) -> Vec<u8> {
    let body = format!("ok {path}\n");
    format!(
        "HTTP/1.1 200 OK\r\nServer: lab-upstream\r\nContent-Type: text/plain\r\n{extra_headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
