//! Error-log classification on arbitrary lines: never panics, and a
//! negative-control line (a client closing first) never yields a cause.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(64) {
        let _ = triage502::logs::classify_line(line);
    }
    let control = format!("2026/11/23 10:00:00 [info] 1#1: *1 client prematurely closed connection{}", text.lines().next().unwrap_or(""));
    if let Some(c) = triage502::logs::classify_line(&control) {
        assert!(c.cause.is_none() || text.contains("upstream") || text.contains("connect"), "{control:?} -> {:?}", c.cause);
    }
});
