//! A DNS stub on UDP that answers NXDOMAIN (RCODE 3) to every well-formed query.
//!
//! Invariants: reads datagrams of at most 512 bytes, answers only queries with exactly one
//! question, copies the id, opcode, RD bit and question back, and never answers anything else.

use std::net::{SocketAddr, UdpSocket};

use crate::{announce_ready, log_event};

/// RCODE for "name does not exist".
const NXDOMAIN: u8 = 3;

/// Listens on `addr` and answers until killed.
pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(addr)?;
    let local = socket.local_addr()?;
    log_event(&format!(
        "dns stub listening on udp {local}, answers NXDOMAIN"
    ));
    announce_ready(&local.to_string())?;
    let mut buf = [0_u8; 512];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some((reply, name)) = nxdomain_reply(&buf[..n]) else {
            log_event(&format!("{peer}: ignored a malformed query of {n} bytes"));
            continue;
        };
        log_event(&format!("{peer}: query {name} -> NXDOMAIN"));
        // A lost reply is what UDP does anyway; the resolver retries.
        let _ = socket.send_to(&reply, peer);
    }
}

/// Builds the NXDOMAIN answer to `query`, with the queried name for the log.
fn nxdomain_reply(query: &[u8]) -> Option<(Vec<u8>, String)> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    if qdcount != 1 {
        return None;
    }
    // Walk the question name (labels only, no compression in a query), then QTYPE and QCLASS.
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = query.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += len;
    }
    let question_end = pos + 4;
    if query.len() < question_end {
        return None;
    }
    let mut reply = Vec::with_capacity(question_end);
    reply.extend_from_slice(&query[0..2]); // id
    let opcode_rd = query[2] & 0x79; // opcode and RD
    reply.push(0x80 | opcode_rd); // QR=1
    reply.push(0x80 | NXDOMAIN); // RA=1, RCODE
    reply.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1, AN=NS=AR=0
    reply.extend_from_slice(&query[12..question_end]);
    Some((reply, labels.join(".")))
}
