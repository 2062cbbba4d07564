//! Response fingerprinting on arbitrary statuses, headers and bodies: never
//! panics, and a 2xx response is never called a gateway error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 600;
    let rest = &data[2..];
    let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let head = String::from_utf8_lossy(&rest[..split]);
    let body = rest.get(split + 1..).unwrap_or_default();
    let headers: Vec<(String, String)> = head
        .lines()
        .take(32)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let f = triage502::checks::http::fingerprint::fingerprint(status, &headers, body);
    if (200..300).contains(&status) {
        assert!(!f.gateway_error, "a {status} is not a gateway error");
    }
});
