//! `lab-upstream`: the toy upstreams of the incident lab (`tests/lab/`).
//!
//! Real app servers cannot be told to misbehave on cue, so the lab runs this small program for the
//! behaviours it needs: an HTTP app that is healthy, slow, closes after reading, sends a NUL byte
//! or a 16 KiB header, keeps connections alive only briefly, or answers bytes that are not HTTP; a DNS stub that answers NXDOMAIN; and a
//! syslog receiver that writes HAProxy's log to a file, as rsyslog would.
//!
//! Invariants: it binds only the address it is given (the lab passes loopback addresses only),
//! prints `ready <address>` on stdout once it listens, logs one line per event on stderr, and
//! bounds everything it does (connections in flight, bytes read, delays). It is stopped by the
//! lab with SIGTERM to its pid.

mod dns;
mod http;
// The syslog receiver listens on a unix datagram socket (Linux labs only).
#[cfg(unix)]
mod syslog;
#[cfg(not(unix))]
mod syslog {
    pub fn serve(_socket: &std::path::Path, _file: &std::path::Path) -> anyhow::Result<()> {
        anyhow::bail!(
            "the syslog receiver needs a unix datagram socket: not available on this platform"
        )
    }
}

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Toy upstreams for the triage502 incident lab. Loopback use only.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// An HTTP/1.x app with one fixed behaviour.
    Http {
        /// Address to listen on, e.g. `127.0.0.1:8080` or `[::1]:8080`.
        #[arg(long)]
        listen: SocketAddr,
        /// What the app does with each request.
        #[arg(long, value_enum)]
        behaviour: http::Behaviour,
        /// Seconds to wait before answering (`slow`).
        #[arg(long, default_value_t = 5)]
        delay: u64,
        /// Size in bytes of the `Set-Cookie` value (`big-header`).
        #[arg(long, default_value_t = 16 * 1024)]
        header_size: usize,
        /// Milliseconds a kept-alive connection may stay idle (`keepalive`).
        #[arg(long, default_value_t = 1000)]
        idle_timeout: u64,
    },
    /// A DNS server on UDP that answers NXDOMAIN to every query.
    DnsNxdomain {
        /// Address to listen on, e.g. `127.0.0.1:5353`.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// A DNS server on UDP that answers A records for the given names, NXDOMAIN for the rest.
    DnsHosts {
        /// Address to listen on, e.g. `127.53.0.1:53`.
        #[arg(long)]
        listen: SocketAddr,
        /// `NAME=IPV4`, repeatable.
        #[arg(long)]
        host: Vec<String>,
    },
    /// A syslog receiver on a unix datagram socket that appends each message to a file.
    Syslog {
        /// Path of the unix datagram socket to create.
        #[arg(long)]
        socket: PathBuf,
        /// Log file to append to (kept open, like rsyslog does).
        #[arg(long)]
        file: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Http {
            listen,
            behaviour,
            delay,
            header_size,
            idle_timeout,
        } => http::serve(
            listen,
            &http::Settings {
                behaviour,
                delay: std::time::Duration::from_secs(delay.min(3600)),
                header_size: header_size.min(1024 * 1024),
                idle_timeout: std::time::Duration::from_millis(idle_timeout.min(600_000)),
            },
        ),
        Mode::DnsNxdomain { listen } => dns::serve(listen),
        Mode::DnsHosts { listen, host } => {
            let hosts = host
                .iter()
                .map(|h| {
                    let (n, ip) = h
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("`{h}` is not NAME=IPV4"))?;
                    Ok((n.to_owned(), ip.parse()?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            dns::serve_hosts(listen, &hosts)
        }
        Mode::Syslog { socket, file } => syslog::serve(&socket, &file),
    }
}

/// Tells the lab the listener is up: one line on stdout, flushed.
fn announce_ready(what: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {what}")?;
    out.flush()?;
    Ok(())
}

/// One event on stderr with a timestamp, so the lab's app log reads like a real one.
fn log_event(message: &str) {
    eprintln!(
        "{} lab-upstream[{}]: {message}",
        jiff::Timestamp::now(),
        std::process::id()
    );
}
