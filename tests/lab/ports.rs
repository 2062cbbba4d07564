//! Loopback port allocation for lab scenarios that run side by side.
//!
//! Ports come from 20000–32767, below Linux's ephemeral range (32768–60999), so other tests that
//! bind port 0 and outgoing connections never take them. Each process starts at an offset derived
//! from its pid and walks forward, so two lab runs on one machine rarely meet; a port is handed out
//! only if 127.0.0.1 and [::1] (TCP) and 127.0.0.1 (UDP) can all bind it right now, and never twice
//! in one process.

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

const FIRST: u32 = 20_000;
const SPAN: u32 = 12_768;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback port that is free now and was not handed out before in this process.
pub fn free_port() -> anyhow::Result<u16> {
    if NEXT.load(Ordering::SeqCst) == u32::MAX {
        let offset = (std::process::id() * 397) % SPAN;
        let _ = NEXT.compare_exchange(u32::MAX, offset, Ordering::SeqCst, Ordering::SeqCst);
    }
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = u16::try_from(FIRST + n % SPAN)?;
        if is_free(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port in {FIRST}..{}", FIRST + SPAN)
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok()
        && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}
