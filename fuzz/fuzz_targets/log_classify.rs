//! Error-log classification on arbitrary bytes, bare and wrapped. Invariants:
//! - never panics, and the same entry always gets the same verdict;
//! - an entry given a cause contains one of the prefilter's literals (whole-file
//!   scans classify only prefilter candidates, so otherwise `logs scan` would
//!   miss what `logs classify` finds), wrapped ones included;
//! - a negative control (a client closing first) followed by text with no
//!   signature literal and no digit (so no errno) is never a cause;
//! - a line inside any stack of strong wrappers (compose, kubectl, CRI, a
//!   tab-separated stamp, Docker's json-file record; up to 12 deep, chosen
//!   by a hash of the line) gets the cause of the bare line;
//! - the template cache gives the full path's verdict: each line is also
//!   classified under nginx's prefix (another connection number each time, so
//!   templates cached by earlier inputs are met) both ways;
//! - a wrapped line cut anywhere (an unclosed JSON record, half a prefix)
//!   gets a verdict or none, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage502::logs::classify::MAX_ENTRY;
use triage502::logs::time::Zone;
use triage502::logs::{Catalogue, classify_line, format, wrapper};

/// Docker's json-file record around `s` (HTML characters escaped like Go does).
fn docker_json(s: &str) -> String {
    let mut body = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '"' => body.push_str("\\\""),
            '\\' => body.push_str("\\\\"),
            '\n' => body.push_str("\\n"),
            '\r' => body.push_str("\\r"),
            '\t' => body.push_str("\\t"),
            '<' => body.push_str("\\u003c"),
            '>' => body.push_str("\\u003e"),
            '&' => body.push_str("\\u0026"),
            c if (c as u32) < 0x20 => body.push_str(&format!("\\u{:04x}", c as u32)),
            c => body.push(c),
        }
    }
    format!("{{\"log\":\"{body}\\n\",\"stream\":\"stderr\",\"time\":\"2024-03-14T09:22:07.5Z\"}}")
}

/// Wrap `line` in the strong wrappers `plan` names (two bits each), at most
/// two JSON records (the prefilter knows literals escaped twice).
fn wrap(line: &str, plan: u32, depth: u32) -> String {
    let mut v = line.to_owned();
    let mut json = 0;
    for i in 0..depth {
        v = match (plan >> (2 * i)) & 3 {
            0 => format!("web-1  | {v}"),
            1 => format!("[pod/web-5d9/nginx] {v}"),
            2 => format!("2024-03-14T09:22:07.123456789Z stderr F {v}"),
            _ if json < 2 => {
                json += 1;
                docker_json(&v)
            }
            _ => format!("2024-03-14T09:22:07.5Z\t{v}"),
        };
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let literals = Catalogue::builtin().signature_literals();
    let has_literal = |s: &str| literals.iter().any(|l| s.contains(l.as_str()));
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(64) {
        // The wrappers are chosen by the line itself (FNV-1a), so every
        // corpus entry is also tried wrapped.
        let hash = line.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let (plan, depth) = (hash >> 4, hash % 13);
        // Peeling stops at MAX_DEPTH layers and entries are cut at MAX_ENTRY
        // bytes: compare only where neither limit is reached.
        let own = wrapper::unwrap_line(line.as_bytes(), &mut Zone::utc())
            .layers
            .len() as u32;
        let comparable =
            depth > 0 && own + depth < wrapper::MAX_DEPTH as u32 && !line.ends_with('\r');
        let verdict = classify_line(line);
        assert_eq!(
            format!("{verdict:?}"),
            format!("{:?}", classify_line(line)),
            "not deterministic: {line:?}"
        );
        let cause = verdict.as_ref().and_then(|c| c.cause);
        if let Some(cause) = cause {
            assert!(
                has_literal(line),
                "{line:?} -> {cause:?} without a prefilter literal"
            );
        }
        let cat = Catalogue::builtin();
        let full = format!("2024/03/14 09:22:07 [error] 7#7: *{} {line}", hash % 1000);
        let mut z = Zone::utc();
        let head = format::head(full.as_bytes(), &mut z).unwrap_or_else(format::Head::unknown);
        assert_eq!(
            cat.classify(&head, full.as_bytes()),
            cat.classify_uncached(&head, full.as_bytes()),
            "template cache differs: {full:?}"
        );
        // (A trailing CR would be taken off by the JSON record.)
        let wrapped = wrap(line, plan, depth);
        let cut = wrapped.len() * ((hash >> 8) % 101) as usize / 100;
        if wrapped.is_char_boundary(cut) {
            let _ = classify_line(&wrapped[..cut]);
        }
        if comparable && wrapped.len() <= MAX_ENTRY {
            let got = classify_line(&wrapped).and_then(|c| c.cause);
            assert_eq!(got, cause, "{wrapped:?} differs from {line:?}");
            if let Some(c) = got {
                assert!(
                    has_literal(&wrapped),
                    "{wrapped:?} -> {c:?} without a prefilter literal"
                );
            }
        }
    }
    let tail: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    if !has_literal(&tail) {
        let control = format!(
            "2026/11/23 10:00:00 [info] 1#1: *1 client prematurely closed connection{tail}"
        );
        let verdict = classify_line(&control).and_then(|c| c.cause);
        assert!(verdict.is_none(), "{control:?} -> {verdict:?}");
    }
});
