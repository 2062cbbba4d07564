//! A DNS stub on UDP that answers NXDOMAIN (RCODE 3) to every well-formed query, or (`hosts`)
//! an A record for the names it was given and NXDOMAIN for the rest (no AAAA: an empty answer).
//!
//! Invariants: reads datagrams of at most 512 bytes, answers only queries with exactly one
//! question, copies the id, opcode, RD bit and question back, and never answers anything else.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use crate::{announce_ready, log_event};

/// RCODE for "name does not exist".
const NXDOMAIN: u8 = 3;

/// Listens on `addr` and answers until killed.
pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    serve_hosts(addr, &[])
}

/// Listens on `addr`; answers A queries for the names in `hosts` (case-insensitive), an empty
/// NOERROR for their other types, NXDOMAIN for every other name.
pub fn serve_hosts(addr: SocketAddr, hosts: &[(String, Ipv4Addr)]) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(addr)?;
    let local = socket.local_addr()?;
    log_event(&format!(
        "dns stub listening on udp {local}, answers {}NXDOMAIN",
        hosts
            .iter()
            .map(|(n, ip)| format!("{n} A {ip}, otherwise "))
            .collect::<Vec<_>>()
            .concat()
    ));
    announce_ready(&local.to_string())?;
    let mut buf = [0_u8; 512];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some((mut reply, name)) = nxdomain_reply(&buf[..n]) else {
            log_event(&format!("{peer}: ignored a malformed query of {n} bytes"));
            continue;
        };
        let qtype = u16::from_be_bytes([reply[reply.len() - 4], reply[reply.len() - 3]]);
        match hosts.iter().find(|(h, _)| h.eq_ignore_ascii_case(&name)) {
            Some((_, ip)) => {
                reply[3] &= 0xf0; // RCODE 0
                if qtype == 1 {
                    reply[7] = 1; // ANCOUNT 1
                    // Name: a pointer to the question (offset 12); A, IN, TTL 30, 4 bytes.
                    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                    reply.extend_from_slice(&ip.octets());
                    log_event(&format!("{peer}: query {name} A -> {ip}"));
                } else {
                    log_event(&format!("{peer}: query {name} type {qtype} -> no data"));
                }
            }
            None => log_event(&format!("{peer}: query {name} -> NXDOMAIN")),
        }
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
