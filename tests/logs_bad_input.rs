//! Bad input (issue 14): lines of any length, binary junk, broken UTF-8,
//! JSON records that are not closed, wrappers nested 10 deep. Each gives a
//! verdict per entry or "not a log line" (no head, no verdict), never a
//! panic, with bounded memory: `logs scan` and `logs classify` run as child
//! processes on the bad files, and the kernel's maximum RSS over those
//! children (getrusage) stays under 64 MiB.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::process::{Command, Stdio};

use triage502::cause::Cause;
use triage502::logs::classify::MAX_ENTRY;
use triage502::logs::reader::{Entries, scan_candidates};
use triage502::logs::time::Zone;
use triage502::logs::{Catalogue, classify_line, format};

const REFUSED: &str = "2024/03/14 09:22:07 [error] 8#8: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: e, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"e\"";

/// Deterministic junk (splitmix64).
fn junk(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// Every entry of `bytes` as `logs classify` reads them; each classified.
fn classify_all(bytes: &[u8]) -> Vec<(usize, Option<Cause>)> {
    let mut it = Entries::new(bytes);
    let mut z = Zone::utc();
    let mut out = Vec::new();
    while let Some(e) = it.next_entry(&mut z).unwrap() {
        assert!(
            e.text.len() <= MAX_ENTRY,
            "an entry of {} bytes",
            e.text.len()
        );
        let c = triage502::logs::classify_with(Catalogue::builtin(), &mut z, &e.text);
        out.push((e.text.len(), c.and_then(|c| c.cause)));
    }
    out
}

#[test]
fn lines_of_any_length_are_cut_not_fatal() {
    for len in [0, 1, 4095, MAX_ENTRY - 1, MAX_ENTRY, MAX_ENTRY + 1, 3 << 20] {
        // A failure line padded to `len` bytes, and the same line after a pad line.
        let mut line = REFUSED.as_bytes().to_vec();
        line.resize(line.len().max(len), b'x');
        let verdicts = classify_all(&line);
        assert_eq!(verdicts.len(), 1, "{len}");
        assert_eq!(verdicts[0].1, Some(Cause::UpstreamRefused), "{len}");
        let mut two = vec![b'y'; len];
        two.push(b'\n');
        two.extend_from_slice(REFUSED.as_bytes());
        let v = classify_all(&two);
        assert_eq!(
            v.last().unwrap().1,
            Some(Cause::UpstreamRefused),
            "{len}: {v:?}"
        );
        // The scanner (prefilter, chunks) finds the failure too.
        let mut found = 0;
        scan_candidates(
            &two[..],
            0,
            Catalogue::builtin(),
            &mut Zone::utc(),
            |f, _| {
                if f.text.starts_with(b"2024/03/14") {
                    found += 1;
                }
            },
        )
        .unwrap();
        assert_eq!(found, 1, "{len}");
    }
}

#[test]
fn binary_junk_is_not_a_log_line() {
    let bytes = junk(2 << 20, 502);
    let verdicts = classify_all(&bytes);
    assert!(!verdicts.is_empty());
    for chunk in bytes.chunks(997) {
        // Junk is no entry head: "not a log line".
        let line: Vec<u8> = chunk
            .iter()
            .map(|b| if *b == b'\n' { b' ' } else { *b })
            .collect();
        if let Some(h) = format::head(&line, &mut Zone::utc()) {
            assert_eq!(h.format, format::Format::Unknown, "{h:?}");
        }
    }
    // A failure line after junk is still found, whole.
    let mut mixed = bytes.clone();
    mixed.push(b'\n');
    mixed.extend_from_slice(REFUSED.as_bytes());
    mixed.push(b'\n');
    mixed.extend_from_slice(&junk(4096, 7));
    let v = classify_all(&mixed);
    assert!(
        v.iter().any(|(_, c)| *c == Some(Cause::UpstreamRefused)),
        "{v:?}"
    );
}

#[test]
fn broken_utf8_keeps_the_verdict() {
    let bad = REFUSED
        .as_bytes()
        .iter()
        .flat_map(|b| {
            if *b == b'/' {
                vec![b'/', 0xff, 0xc3]
            } else {
                vec![*b]
            }
        })
        .collect::<Vec<u8>>();
    let c = triage502::logs::classify_with(Catalogue::builtin(), &mut Zone::utc(), &bad).unwrap();
    assert_eq!(c.cause, Some(Cause::UpstreamRefused));
    // Lone surrogates and truncated sequences in the tail.
    let tail = format!("{REFUSED}, referrer: \"\u{fffd}").into_bytes();
    let mut t = tail.clone();
    t.extend_from_slice(&[0xed, 0xa0, 0x80, 0xe2, 0x82]);
    let c = triage502::logs::classify_with(Catalogue::builtin(), &mut Zone::utc(), &t).unwrap();
    assert_eq!(c.cause, Some(Cause::UpstreamRefused));
}

/// Docker's json-file record around `s` (as Go escapes it), optionally cut short.
fn docker_json(s: &str, closed: bool) -> String {
    let body = s.replace('\\', "\\\\").replace('"', "\\\"");
    if closed {
        format!(
            "{{\"log\":\"{body}\\n\",\"stream\":\"stderr\",\"time\":\"2024-03-14T09:22:07.5Z\"}}"
        )
    } else {
        format!("{{\"log\":\"{body}")
    }
}

#[test]
fn unclosed_json_gives_a_verdict_or_none_never_a_panic() {
    let cut = docker_json(REFUSED, false);
    assert_eq!(
        classify_line(&cut).and_then(|c| c.cause),
        Some(Cause::UpstreamRefused),
        "{cut}"
    );
    // Every prefix of a record, and of a record in a record.
    let twice = docker_json(&docker_json(REFUSED, true), true);
    for end in 0..=twice.len() {
        if twice.is_char_boundary(end) {
            let _ = classify_line(&twice[..end]);
        }
    }
    for s in [
        "{",
        "{\"log\":",
        "{\"log\":\"\\",
        "{\"log\":\"\\u12",
        "{\"log\":\"\\ud800\\u",
        "{\"log\":\"a\",\"time\":\"2024",
    ] {
        assert_eq!(classify_line(s).and_then(|c| c.cause), None, "{s}");
    }
}

#[test]
fn wrappers_nested_ten_deep_give_the_bare_verdict() {
    let bare = classify_line(REFUSED).unwrap();
    let layers: [fn(&str) -> String; 5] = [
        |s| format!("web-1  | {s}"),
        |s| format!("[pod/web-5d9/nginx] {s}"),
        |s| format!("2024-03-14T09:22:07.123456789Z stderr F {s}"),
        |s| format!("2024-03-14T09:22:07.5Z\t{s}"),
        |s| docker_json(s, true),
    ];
    for first in 0..layers.len() {
        let mut line = REFUSED.to_owned();
        let mut json = 0;
        for i in 0..10 {
            let k = (first + i) % layers.len();
            if k == 4 {
                json += 1;
                if json > 2 {
                    line = layers[0](&line);
                    continue;
                }
            }
            line = layers[k](&line);
        }
        let c = classify_line(&line).unwrap_or_else(|| panic!("no verdict: {line}"));
        assert_eq!(c.cause, bare.cause, "{line}");
        assert_eq!(c.fields.client, bare.fields.client, "{line}");
    }
    // Far deeper than peeled: bounded work, no panic.
    let mut line = REFUSED.to_owned();
    for _ in 0..500 {
        line = format!("web-1  | {line}");
    }
    let _ = classify_line(&line);
}

#[test]
fn the_cli_reads_bad_files_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("error.log");
    let mut f = std::fs::File::create(&path).unwrap();
    // 48 MiB with one 24 MiB line, junk, broken JSON, deep wrappers and failures.
    f.write_all(REFUSED.as_bytes()).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(&vec![b'z'; 24 << 20]).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(&junk(16 << 20, 9)).unwrap();
    f.write_all(b"\n").unwrap();
    let mut deep = REFUSED.to_owned();
    for _ in 0..10 {
        deep = format!("web-1  | {deep}");
    }
    for _ in 0..20_000 {
        writeln!(f, "{}\n{}\n{deep}", docker_json(REFUSED, false), REFUSED).unwrap();
    }
    drop(f);
    let bin = env!("CARGO_BIN_EXE_triage502");
    let scan = Command::new(bin)
        .args(["logs", "scan", "--all", "--no-rotated", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(scan.status.code().is_some_and(|c| c <= 1), "{scan:?}");
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    let refused = report["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cause"] == "upstream_refused")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(refused["count"].as_u64().unwrap() >= 60_001, "{refused}");
    let classify = Command::new(bin)
        .args(["logs", "classify", "--format", "jsonl"])
        .arg(&path)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        classify.status.code().is_some_and(|c| c <= 1),
        "{:?}",
        classify.status
    );
    let lines = String::from_utf8_lossy(&classify.stdout);
    let n = lines.lines().count();
    assert!(n >= 60_003, "{n} verdicts");
    let refused = lines
        .lines()
        .filter(|l| l.contains("\"cause\":\"upstream_refused\""))
        .count();
    assert!(refused >= 60_001, "{refused} refused verdicts");
    let kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss() as u64;
    assert!(kib < 64 << 10, "a child peaked at {kib} KiB");
}
