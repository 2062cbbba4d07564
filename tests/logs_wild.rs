//! Real-world log lines (`tests/fixtures/logs/wild.tsv`): lines quoted in
//! public 502/504 incident threads, each with the thread it was seen in and
//! the cause it shows (or `harmless`). Every line is classified; every line
//! is also wrapped in every wrapper operators meet (compose, kubectl, Docker
//! json-file, CRI, shipper stamps, syslog, nested ten deep) and `logs
//! classify`, `logs scan` and the scan API must agree with the bare line.
//!
//! `cargo test --test logs_wild -- --nocapture` prints the share classified.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use triage502::logs::time::Zone;
use triage502::logs::{self, Catalogue, Role, ScanOptions, Window};

const WILD: &str = include_str!("fixtures/logs/wild.tsv");
const CATALOGUE: &str = include_str!("fixtures/logs/catalogue.tsv");

struct Case {
    line_no: usize,
    expected: String,
    source: String,
    text: String,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (i, l) in WILD.lines().enumerate() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut p = l.splitn(3, '\t');
        let (Some(expected), Some(source), Some(text)) = (p.next(), p.next(), p.next()) else {
            panic!("wild.tsv:{} is malformed", i + 1);
        };
        out.push(Case {
            line_no: i + 1,
            expected: expected.to_owned(),
            source: source.to_owned(),
            text: text.replace("\\n", "\n"),
        });
    }
    out
}

/// (cause id or "-", role, alternatives) of one entry.
fn verdict(entry: &str) -> (String, &'static str, Vec<String>) {
    let got = logs::classify_with(Catalogue::builtin(), &mut Zone::utc(), entry.as_bytes());
    let alternatives = got
        .as_ref()
        .map(|c| c.alternatives.iter().map(|a| a.id().to_owned()).collect())
        .unwrap_or_default();
    let cause = got
        .as_ref()
        .and_then(|c| c.cause)
        .map_or("-".to_owned(), |c| c.id().to_owned());
    let role = match got.map(|c| c.role) {
        None => "none",
        Some(Role::Primary) => "primary",
        Some(Role::Secondary) => "secondary",
        Some(Role::Ignored) => "ignored",
        Some(Role::Unmatched) => "unmatched",
    };
    (cause, role, alternatives)
}

/// Right when the line names the cause, or carries it as an alternative
/// (`113: No route to host` is a firewall or an address that is gone; the
/// walk decides with the other evidence).
fn right(c: &Case, got: &(String, &str, Vec<String>)) -> bool {
    if c.expected == "harmless" {
        got.0 == "-"
    } else {
        got.0 == c.expected || got.2.contains(&c.expected)
    }
}

#[test]
fn the_corpus_is_big_and_varied_enough() {
    let cs = cases();
    let failures = cs.iter().filter(|c| c.expected != "harmless").count();
    let harmless = cs.len() - failures;
    let incidents: BTreeSet<&str> = cs.iter().map(|c| c.source.as_str()).collect();
    assert!(failures >= 150, "{failures} failure lines");
    assert!(harmless >= 50, "{harmless} harmless lines");
    assert!(incidents.len() >= 60, "{} incidents", incidents.len());
    for c in &cs {
        assert!(
            c.source.starts_with("https://"),
            "wild.tsv:{} has no source URL",
            c.line_no
        );
        assert!(
            c.expected == "harmless" || c.expected.parse::<triage502::cause::Cause>().is_ok(),
            "wild.tsv:{}: unknown cause {}",
            c.line_no,
            c.expected
        );
    }
}

#[test]
fn every_wild_line_is_classified() {
    let cs = cases();
    let mut wrong = Vec::new();
    let mut by_cause: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in &cs {
        let got = verdict(&c.text);
        let ok = right(c, &got);
        let e = by_cause.entry(c.expected.as_str()).or_default();
        e.1 += 1;
        if ok {
            e.0 += 1;
        } else {
            wrong.push(format!(
                "wild.tsv:{}: want {}, got {}/{}: {}",
                c.line_no, c.expected, got.0, got.1, c.text
            ));
        }
    }
    let failures: Vec<&Case> = cs.iter().filter(|c| c.expected != "harmless").collect();
    let right_failures = failures
        .iter()
        .filter(|c| right(c, &verdict(&c.text)))
        .count();
    let named = failures
        .iter()
        .filter(|c| verdict(&c.text).0 == c.expected)
        .count();
    println!(
        "wild corpus: {right_failures} of {} failure lines classified right ({:.1}%; {named} by the \
         cause itself, the rest by an alternative), {} lines in all",
        failures.len(),
        100.0 * right_failures as f64 / failures.len() as f64,
        cs.len()
    );
    for (cause, (ok, n)) in &by_cause {
        println!("  {cause:<20} {ok}/{n}");
    }
    // No harmless line may be read as a failure, whatever else happens.
    let misread: Vec<&String> = wrong
        .iter()
        .filter(|w| w.contains("want harmless"))
        .collect();
    assert!(
        misread.is_empty(),
        "harmless lines read as failures:\n{misread:#?}"
    );
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The wrappers of the world, applied to one line.
/// A wrapper's name and how it wraps a line.
type Wrapper = (&'static str, fn(&str) -> String);

fn wrappers() -> Vec<Wrapper> {
    fn json(s: &str) -> String {
        let mut v = serde_json::to_string(&format!("{s}\n")).unwrap();
        // Docker's encoder escapes HTML characters too.
        v = v
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        format!("{{\"log\":{v},\"stream\":\"stderr\",\"time\":\"2024-03-14T09:22:07.123456789Z\"}}")
    }
    vec![
        ("compose", |s| format!("web-1  | {s}")),
        ("compose v1 colour", |s| {
            format!("\x1b[36mnginx_1       |\x1b[0m {s}")
        }),
        ("swarm", |s| format!("nginx.1.k3x9p2@node1    | {s}")),
        ("kubectl", |s| format!("[pod/web-5d9c7/nginx] {s}")),
        ("docker --timestamps", |s| {
            format!("2024-03-14T09:22:07.123456789Z {s}")
        }),
        ("shipper tab", |s| {
            format!("2024-03-14T09:22:07.123+01:00\t{s}")
        }),
        ("syslog", |s| format!("Mar  5 21:09:30 web app[812]: {s}")),
        ("syslog de", |s| {
            format!("Mär 14 09:22:07 web app[812]: {s}")
        }),
        ("syslog fr", |s| format!("déc. 14 09:22:07 web app: {s}")),
        ("journald iso", |s| {
            format!("2024-03-14T09:22:07+0100 web app[812]: {s}")
        }),
        ("cri", |s| {
            format!("2024-03-14T09:22:07.123456789Z stderr F {s}")
        }),
        ("docker json", json),
        ("ten deep", |s| {
            let mut v = s.to_owned();
            for i in 0..10 {
                v = match i % 5 {
                    0 => format!("web-1  | {v}"),
                    1 => format!("[pod/a/b] {v}"),
                    2 => format!("2024-03-14T09:22:07.5Z stdout F {v}"),
                    3 => format!("2024-03-14T09:22:07Z\t{v}"),
                    _ => format!("db.1.x@n    | {v}"),
                };
            }
            json(&v)
        }),
    ]
}

/// Every fixture line (single-line entries of the wild corpus and the
/// catalogue), bare. Leading blanks are part of some real lines; the
/// wrappers keep them, so the bare line is the reference.
fn all_single_lines() -> Vec<String> {
    let mut v: Vec<String> = cases()
        .into_iter()
        .map(|c| c.text)
        .filter(|t| !t.contains('\n'))
        .collect();
    for l in CATALOGUE.lines().filter(|l| !l.starts_with('#')) {
        if let Some(t) = l.splitn(3, '\t').nth(2)
            && !t.contains("\\n")
        {
            v.push(t.to_owned());
        }
    }
    v
}

#[test]
fn every_wrapper_gives_the_bare_lines_verdict() {
    let mut bad = Vec::new();
    for line in all_single_lines() {
        let want = verdict(&line);
        for (name, wrap) in wrappers() {
            let got = verdict(&wrap(&line));
            if got != want {
                bad.push(format!("{name}: want {want:?}, got {got:?}: {line}"));
            }
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

/// A line that starts an entry of unknown layout and means nothing: put
/// before every fixture line, so a fixture line without a head of its own
/// joins it (and keeps the "unknown layout" verdict) instead of the line before.
const SEPARATOR: &str = "*0 -";

fn report_causes(r: &triage502::logs::ScanReport) -> BTreeMap<String, (u64, u64)> {
    r.causes
        .iter()
        .map(|c| (c.cause.id().to_owned(), (c.count, c.secondary_count)))
        .collect()
}

fn scan_file(path: &std::path::Path) -> triage502::logs::ScanReport {
    let opts = ScanOptions {
        zone: Zone::utc(),
        follow_rotations: false,
        ..ScanOptions::default()
    };
    logs::scan(&[path.to_path_buf()], &Window::all(), &opts)
}

/// The scan API (what the log checks run) on one wrapped line gives the
/// bare line's cause and role.
#[test]
fn scan_api_gives_each_wrapped_line_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.log");
    let mut bad = Vec::new();
    for line in all_single_lines() {
        let (cause, role, _) = verdict(&line);
        let want: BTreeMap<String, (u64, u64)> = match role {
            _ if cause == "-" => BTreeMap::new(),
            "primary" => [(cause.clone(), (1, 0))].into(),
            _ => [(cause.clone(), (0, 1))].into(),
        };
        for (name, wrap) in wrappers() {
            std::fs::write(&path, format!("{}\n", wrap(&line))).unwrap();
            let got = report_causes(&scan_file(&path));
            if got != want {
                bad.push(format!("{name}: scan {got:?}, want {want:?}: {line}"));
            }
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

/// `logs classify` gives every entry of a wrapped file the bare line's
/// cause, and `logs scan` reports what the scan API reports on that file.
#[test]
fn classify_and_scan_commands_agree_under_every_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    let lines = all_single_lines();
    let bin = env!("CARGO_BIN_EXE_triage502");
    let want: Vec<String> = lines
        .iter()
        .map(|l| verdict(l).0)
        .filter(|c| c != "-")
        .collect();
    let mut bad = Vec::new();
    for (name, wrap) in wrappers() {
        let path = dir.path().join(format!("{}.log", name.replace(' ', "_")));
        let mut text = String::new();
        for l in &lines {
            text.push_str(&wrap(SEPARATOR));
            text.push('\n');
            text.push_str(&wrap(l));
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();

        let out = Command::new(bin)
            .args(["logs", "classify", "--format", "jsonl"])
            .arg(&path)
            .output()
            .unwrap();
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["cause"].as_str().map(str::to_owned)
            })
            .collect();
        if got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            bad.push(format!(
                "{name}: logs classify gave {} causes, want {}; first difference at {first}: {:?} vs {:?}",
                got.len(),
                want.len(),
                got.get(first),
                want.get(first)
            ));
        }

        let api = report_causes(&scan_file(&path));
        let out = Command::new(bin)
            .args(["logs", "scan", "--all", "--no-rotated", "--format", "json"])
            .arg(&path)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let cli: BTreeMap<String, (u64, u64)> = v["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["cause"].as_str().unwrap().to_owned(),
                    (
                        c["count"].as_u64().unwrap(),
                        c["secondary_count"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        if cli != api || api.is_empty() {
            bad.push(format!("{name}: logs scan {cli:?}\n   scan API {api:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn no_harmless_line_is_a_failure_in_any_wrapper() {
    let mut harmless: Vec<String> = cases()
        .into_iter()
        .filter(|c| c.expected == "harmless")
        .map(|c| c.text)
        .collect();
    // The catalogue's negative controls and unrelated lines (its `-` lines
    // with role `secondary` are consequences, not harmless).
    for l in CATALOGUE
        .lines()
        .filter(|l| l.starts_with("-\tignored\t") || l.starts_with("-\tnone\t"))
    {
        if let Some(t) = l.splitn(3, '\t').nth(2) {
            harmless.push(t.replace("\\n", "\n"));
        }
    }
    let mut bad = Vec::new();
    for h in &harmless {
        for (name, wrap) in wrappers() {
            let wrapped: Vec<String> = h.split('\n').map(wrap).collect();
            let (cause, role, _) = verdict(&wrapped.join("\n"));
            if cause != "-" {
                bad.push(format!("{name}: {cause}/{role}: {h}"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Fragments pasted one after another (no server prefix on any of them) are
/// one entry each, for `logs classify` and for scans alike.
#[test]
fn pasted_fragments_are_one_entry_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pasted.log");
    let lines = [
        "upstream timed out (110: Connection timed out) while reading response header from upstream",
        "*7 connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream",
        "503 UR upstream_reset_before_response_started{remote_reset}",
        "WARNING: [pool www] server reached max_children setting (5), consider raising it",
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["logs", "classify", "--format", "jsonl"])
        .arg(&path)
        .output()
        .unwrap();
    let got: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["cause"].as_str().unwrap_or("-").to_owned(),
                v["format"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        "upstream_timeout",
        "socket_permission",
        "upstream_closed",
        "upstream_overloaded",
    ]
    .iter()
    .map(|c| ((*c).to_owned(), "unknown".to_owned()))
    .collect();
    assert_eq!(got, want);
    let rep = report_causes(&scan_file(&path));
    let want: BTreeMap<String, (u64, u64)> = [
        ("upstream_timeout".to_owned(), (1, 0)),
        ("socket_permission".to_owned(), (1, 0)),
        ("upstream_closed".to_owned(), (1, 0)),
        ("upstream_overloaded".to_owned(), (0, 1)),
    ]
    .into();
    assert_eq!(rep, want);
}
