//! Real loopback listeners on port 0 that misbehave in chosen ways, for the
//! check tests. Each task lives until the test's runtime ends.
#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a listener does with each connection.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Accept, read the request, never answer.
    Silent,
    /// Accept, read the request, reset (RST via SO_LINGER 0).
    Reset,
    /// Accept, read the request, close cleanly without a byte.
    Close,
    /// Answer with these exact bytes, then close.
    Reply(&'static [u8]),
    /// Answer with a valid status line and a 16 KiB header.
    BigHeader,
}

async fn serve_one(mut s: tokio::net::TcpStream, b: Behaviour) {
    let mut buf = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    match b {
        Behaviour::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
        Behaviour::Reset => {
            let _ = s.set_zero_linger();
            drop(s);
        }
        Behaviour::Close => drop(s),
        Behaviour::Reply(bytes) => {
            let _ = s.write_all(bytes).await;
            let _ = s.shutdown().await;
        }
        Behaviour::BigHeader => {
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..256 {
                r.extend_from_slice(format!("X-Filler-{i:03}: {}\r\n", "a".repeat(48)).as_bytes());
            }
            r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            assert!(r.len() > 16 * 1024);
            let _ = s.write_all(&r).await;
            let _ = s.shutdown().await;
        }
    }
}

/// Start a listener on 127.0.0.1:0 with a behaviour; returns `127.0.0.1:PORT`.
pub async fn start(b: Behaviour) -> String {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("local addr").to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve_one(s, b));
        }
    });
    addr
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let a = l.local_addr().expect("local addr").to_string();
    drop(l);
    a
}

/// A unix-socket listener that answers every connection with `bytes`.
pub fn unix_reply(path: &std::path::Path, bytes: &'static [u8]) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::UnixListener::bind(path).expect("bind unix socket");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
                let _ = s.write_all(bytes).await;
                let _ = s.shutdown().await;
            });
        }
    })
}

pub fn ctx() -> triage502::check::CheckContext {
    triage502::check::CheckContext::last(Duration::from_secs(3600))
}

/// Fail with the exact install command when a server binary is missing.
pub fn require(tool: &str, package: &str) -> std::path::PathBuf {
    which::which(tool).unwrap_or_else(|_| {
        panic!("`{tool}` is required by this test: apt-get install -y {package}")
    })
}
