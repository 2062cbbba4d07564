//! IIS logs through the command line, as a user runs it: every line of
//! `tests/fixtures/iis/classify-cases.tsv` through `triage502 logs
//! classify` (one process per line, so no line leans on another), and
//! `logs scan` on a W3C site log whose `#Fields:` header changes mid-file
//! and on an HTTP.sys error log.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_triage502");

fn classify(line: &str) -> serde_json::Value {
    let mut child = Command::new(BIN)
        .args(["logs", "classify", "--format", "jsonl", "-"])
        // No operator signature files from the machine running the tests.
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_else(|| {
        panic!(
            "no verdict for {line}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(first).unwrap()
}

#[test]
fn every_fixture_line_gets_its_cause() {
    let cases = std::fs::read_to_string("tests/fixtures/iis/classify-cases.tsv").unwrap();
    let mut bad = Vec::new();
    let mut n = 0;
    let mut causes = std::collections::BTreeSet::new();
    for raw in cases.lines() {
        if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        }
        let (want, line) = raw.split_once('\t').unwrap();
        n += 1;
        let v = classify(line);
        let got = v["cause"].as_str().unwrap_or("-");
        let role = v["role"].as_str().unwrap_or("-");
        if got != want {
            bad.push(format!(
                "want {want}, got {got} ({role}, {}): {line}",
                v["signature"]
            ));
        }
        // A cause is a primary failure; a harmless line is no failure at all.
        if want != "-" && role != "primary" {
            bad.push(format!("want a primary {want}, got role {role}: {line}"));
        }
        if want == "-" && !matches!(role, "-" | "ignored") {
            bad.push(format!("a harmless line became {role}: {line}"));
        }
        causes.insert(want.to_owned());
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(n >= 30, "only {n} cases");
    for c in [
        "upstream_timeout",
        "upstream_refused",
        "upstream_closed",
        "no_live_upstreams",
        "app_fatal",
        "-",
    ] {
        assert!(causes.contains(c), "no case for {c}");
    }
}

#[test]
fn the_win32_code_decides_the_502_3_cause() {
    let line = |code: u32| {
        format!("2024-03-14 09:22:07 10.0.0.5 GET /a - 80 - 203.0.113.9 - - 502 3 {code} 10")
    };
    for (code, cause) in [
        (12002, "upstream_timeout"),
        (12029, "upstream_refused"),
        (12030, "upstream_closed"),
        (12031, "upstream_closed"),
    ] {
        let v = classify(&line(code));
        assert_eq!(v["cause"], cause, "{code}: {v}");
        assert_eq!(v["format"], "iis", "{v}");
        // W3C times are UTC.
        assert_eq!(v["time"], "2024-03-14T09:22:07Z", "{v}");
        assert_eq!(v["fields"]["path"], "/a", "{v}");
        assert_eq!(v["fields"]["client"], "203.0.113.9", "{v}");
    }
    // A 502.3 with a code no signature knows is a gap, not a guess.
    let v = classify(&line(64));
    assert_eq!(v["cause"], serde_json::Value::Null, "{v}");
    assert_eq!(v["role"], "unmatched", "{v}");
}

#[test]
fn classify_follows_the_fields_header_of_the_stream() {
    // Without its header this line has no 502.3 where the default columns
    // put it; after it, the header decides.
    let header = "#Fields: date time cs-host c-ip cs-method cs-uri-stem sc-status sc-substatus sc-win32-status sc-bytes time-taken";
    let line = "2024-03-14 10:05:00 shop.example.com 203.0.113.10 GET /api/stock 502 3 12031 312 4";
    let alone = classify(line);
    assert_ne!(alone["cause"], "upstream_closed", "{alone}");
    let mut child = Command::new(BIN)
        .args(["logs", "classify", "--format", "jsonl", "-"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{header}\r\n{line}\r\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 2, "{text}");
    assert_eq!(v[0]["cause"], serde_json::Value::Null, "{text}");
    assert_eq!(v[1]["cause"], "upstream_closed", "{text}");
    assert_eq!(v[1]["fields"]["client"], "203.0.113.10", "{text}");
    assert_eq!(v[1]["fields"]["path"], "/api/stock", "{text}");
    // The line is quoted as written, not as rebuilt.
    assert!(
        v[1]["text"].as_str().unwrap().contains("shop.example.com"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "a cause was found");
}

fn scan(args: &[&str]) -> (serde_json::Value, i32) {
    let out = Command::new(BIN)
        .args(["logs", "scan", "--format", "json"])
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("TZ", "Pacific/Auckland") // W3C times are UTC whatever the zone
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out.status.code().unwrap_or(-1))
}

fn cause<'a>(v: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    v["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cause"] == id)
}

#[test]
fn scan_finds_the_502s_of_a_w3c_log_with_their_utc_times() {
    let (v, code) = scan(&["--all", "tests/fixtures/iis/logs/u_ex240314.log"]);
    assert_eq!(code, 1, "{v}");
    let timeout = cause(&v, "upstream_timeout").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(timeout["count"], 2, "{timeout}");
    assert_eq!(timeout["first_seen"], "2024-03-14T09:22:07Z", "{timeout}");
    assert_eq!(timeout["last_seen"], "2024-03-14T09:22:39Z", "{timeout}");
    assert_eq!(timeout["paths"][0]["value"], "/api/orders", "{timeout}");
    let src = timeout["samples"][0]["source"].as_str().unwrap();
    assert!(src.ends_with("u_ex240314.log:8"), "{src}");
    let refused = cause(&v, "upstream_refused").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(refused["count"], 1);
    assert_eq!(refused["first_seen"], "2024-03-14T09:22:08Z");
    // After the second `#Fields:` block the columns differ: still found.
    let closed = cause(&v, "upstream_closed").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(closed["count"], 1);
    assert_eq!(closed["first_seen"], "2024-03-14T10:05:00Z");
    assert_eq!(closed["paths"][0]["value"], "/api/stock");
    let no_live = cause(&v, "no_live_upstreams").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(no_live["count"], 1);
    assert_eq!(no_live["first_seen"], "2024-03-14T10:06:00Z");
    assert_eq!(v["causes"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["files"][0]["first_time"], "2024-03-14T09:00:00Z", "{v}");
}

#[test]
fn scan_window_is_in_utc() {
    let (v, _) = scan(&[
        "--from",
        "2024-03-14T10:00:00Z",
        "--to",
        "2024-03-14T10:30:00Z",
        "tests/fixtures/iis/logs/u_ex240314.log",
    ]);
    let ids: Vec<&str> = v["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cause"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{v}");
    assert!(
        ids.contains(&"upstream_closed") && ids.contains(&"no_live_upstreams"),
        "{v}"
    );
}

#[test]
fn scan_reads_an_httperr_log() {
    let (v, code) = scan(&["--all", "tests/fixtures/iis/logs/httperr1.log"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(cause(&v, "upstream_closed").unwrap()["count"], 1, "{v}");
    assert_eq!(cause(&v, "upstream_refused").unwrap()["count"], 1, "{v}");
    assert_eq!(cause(&v, "upstream_overloaded").unwrap()["count"], 1, "{v}");
    assert_eq!(v["causes"].as_array().unwrap().len(), 3, "{v}");
    // Idle connections and dropped clients are counted as not causes.
    let ignored: u64 = v["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(ignored, 2, "{v}");
}
