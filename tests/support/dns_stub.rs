//! A loopback DNS stub (UDP on 127.0.0.1:0) answering by name:
//! `ok.test` → A 127.0.0.9 and AAAA ::9, `v4only.test` → A only,
//! `nx.test` → NXDOMAIN, `fail.test` → SERVFAIL, `silent.test` → no reply.
#![allow(dead_code)]

use tokio::net::UdpSocket;

fn qname(msg: &[u8]) -> (String, usize) {
    let mut pos = 12;
    let mut labels = Vec::new();
    while pos < msg.len() && msg[pos] != 0 {
        let l = usize::from(msg[pos]);
        labels.push(String::from_utf8_lossy(&msg[pos + 1..pos + 1 + l]).into_owned());
        pos += 1 + l;
    }
    (labels.join("."), pos + 1)
}

fn reply(q: &[u8]) -> Option<Vec<u8>> {
    let (name, end) = qname(q);
    let qtype = u16::from_be_bytes([q[end], q[end + 1]]);
    let question = &q[12..end + 4];
    let mut r = q[..2].to_vec();
    let rcode = match name.as_str() {
        "nx.test" => 3,
        "fail.test" => 2,
        "silent.test" => return None,
        _ => 0,
    };
    let answers: Vec<Vec<u8>> = match (name.as_str(), qtype) {
        ("ok.test" | "v4only.test", 1) => vec![vec![127, 0, 0, 9]],
        ("ok.test", 28) => {
            let mut a = vec![0u8; 16];
            a[15] = 9;
            vec![a]
        }
        _ => Vec::new(),
    };
    r.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1, 0, answers.len() as u8, 0, 0, 0, 0]);
    r.extend_from_slice(question);
    for a in answers {
        r.extend_from_slice(&[0xc0, 12]);
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 30, 0, a.len() as u8]);
        r.extend_from_slice(&a);
    }
    Some(r)
}

/// Start the stub; returns its `127.0.0.1:PORT`.
pub async fn start() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let addr = s.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            if let Some(r) = reply(&buf[..n]) {
                let _ = s.send_to(&r, from).await;
            }
        }
    });
    addr
}
