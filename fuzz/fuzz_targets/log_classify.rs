//! Error-log classification on arbitrary bytes. Invariants:
//! - never panics, and the same entry always gets the same verdict;
//! - an entry given a cause contains one of the prefilter's literals (whole-file
//!   scans classify only prefilter candidates, so otherwise `logs scan` would
//!   miss what `logs classify` finds);
//! - a negative control (a client closing first) followed by text with no
//!   signature literal and no digit (so no errno) is never a cause.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage502::logs::{Catalogue, classify_line};

fuzz_target!(|data: &[u8]| {
    let literals = Catalogue::builtin().signature_literals();
    let has_literal = |s: &str| literals.iter().any(|l| s.contains(l.as_str()));
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(64) {
        let verdict = classify_line(line);
        assert_eq!(
            format!("{verdict:?}"),
            format!("{:?}", classify_line(line)),
            "not deterministic: {line:?}"
        );
        if let Some(cause) = verdict.and_then(|c| c.cause) {
            assert!(has_literal(line), "{line:?} -> {cause:?} without a prefilter literal");
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
