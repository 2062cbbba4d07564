//! Access-log layouts and records on arbitrary input: the first line is a
//! `log_format`/`LogFormat` definition, the rest are lines to parse. Never
//! panics; a parsed record's fields are slices of the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage502::logs::access::layout::Layout;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let def = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let rest = parts.next().unwrap_or_default();
    for layout in [Layout::parse(&def).ok(), Layout::parse("combined").ok()].into_iter().flatten() {
        for line in rest.split(|b| *b == b'\n').take(64) {
            let _ = layout.record(line);
        }
    }
});
