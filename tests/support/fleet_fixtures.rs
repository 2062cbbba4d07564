//! The fleet fixtures: a directory of hand-made report files as `run --non-interactive --format
//! json` writes them (three hosts refused, one outlier with two causes, one healthy), a record
//! of an unreachable host, and three corrupt files. Shared by `tests/fleet.rs` (the CLI) and
//! `tests/fleet_tui.rs` (the full-screen view).
#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::Path;

use serde_json::{Value, json};

/// A report as `run --non-interactive --format json` writes it.
pub fn report(
    host: Option<&str>,
    url: &str,
    status: &str,
    findings: &[(&str, &str, &str)],
) -> Value {
    let findings: Vec<Value> = findings
        .iter()
        .map(|(cause, summary, evidence)| {
            json!({
                "cause": cause,
                "severity": "high",
                "summary": summary,
                "evidence": [{"label": "error log line", "text": evidence, "source": "/var/log/nginx/error.log:12"}],
                "node": "502/probe_upstream",
                "basis": "direct"
            })
        })
        .collect();
    let mut v = json!({
        "status": status,
        "url": url,
        "playbook": {"id": "502", "version": "1.4.0"},
        "started_at": "2026-12-03T14:10:00Z",
        "duration_ms": 812,
        "findings": findings,
        "direct_evidence": !findings.is_empty(),
        "ruled_out": [],
        "context": [],
        "path": [],
        "end": if status == "healthy" { json!("resolved") } else { json!("escalate") },
        "recommended_actions": []
    });
    if let Some(h) = host {
        v["host"] = json!(h);
    }
    v
}

pub fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

pub fn fixture_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_fixtures(d.path());
    d
}

/// Write the fixtures into `p` (an existing directory).
pub fn write_fixtures(p: &Path) {
    let refused = |host| {
        report(
            Some(host),
            "http://shop.lab.test/",
            "problem",
            &[(
                "upstream_refused",
                "The upstream 127.0.0.1:9000 refuses connections",
                "connect() failed (111: Connection refused) while connecting to upstream",
            )],
        )
    };
    write(p, "web1.json", &refused("web1"));
    write(p, "web2.json", &refused("web2"));
    // Named by its file: the report has no `host` (an older triage502).
    write(p, "web3.json", &{
        let mut r = refused("x");
        r.as_object_mut().unwrap().remove("host");
        r
    });
    write(
        p,
        "web5.json",
        &report(
            Some("web5"),
            "http://shop.lab.test/",
            "problem",
            &[
                (
                    "upstream_timeout",
                    "The upstream 127.0.0.1:9000 did not answer within 60 s",
                    "upstream timed out (110: Connection timed out) while reading response header from upstream",
                ),
                (
                    "upstream_overloaded",
                    "pool www is saturated",
                    "server reached pm.max_children",
                ),
            ],
        ),
    );
    write(
        p,
        "web6.json",
        &report(Some("web6"), "http://shop.lab.test/", "healthy", &[]),
    );
    write(
        p,
        "web4.unreachable.json",
        &json!({
            "triage502_fleet": "unreachable",
            "host": "web4",
            "address": "10.0.0.14",
            "url": "http://shop.lab.test/",
            "reason": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.14 port 22: Connection refused"
        }),
    );
    // Corrupt: a report cut short (a full disk), not JSON at all, and empty (pssh, failed ssh).
    let whole = serde_json::to_string_pretty(&refused("web7")).unwrap();
    std::fs::write(p.join("web7.json"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(p.join("web8.json"), "Permission denied (publickey).\n").unwrap();
    std::fs::write(p.join("web9"), "").unwrap();
    // Hidden files are not inputs.
    std::fs::write(p.join(".notes"), "not a report").unwrap();
}
