//! `triage502 fleet` on hand-made report files: grouping by cause, the outlier, healthy and
//! unreachable hosts, a host named only by its file, and corrupt files that are reported by name
//! without stopping the merge. The hand-made reports are held to `assets/report.schema.json`, so
//! they are reports `run --format json` could have written.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage502"));
    c.env("NO_COLOR", "1").env_remove("TRIAGE502_HOST");
    c
}

/// A report as `run --non-interactive --format json` writes it.
fn report(host: Option<&str>, url: &str, status: &str, findings: &[(&str, &str, &str)]) -> Value {
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

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn fixture_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
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
    d
}

#[test]
fn hand_made_reports_follow_the_report_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string("assets/report.schema.json").unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let d = fixture_dir();
    for name in ["web1.json", "web3.json", "web5.json", "web6.json"] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(d.path().join(name)).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn fleet_json_groups_by_cause_and_names_the_outlier_and_the_bad_files() {
    let d = fixture_dir();
    let out = bin()
        .args(["fleet", "--format", "json"])
        .arg(d.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(v["hosts"], 6, "{v:#}");
    let groups = v["failing"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v:#}");
    assert_eq!(groups[0]["cause"], "upstream_refused");
    let names = |a: &Value| -> Vec<String> {
        a.as_array()
            .unwrap()
            .iter()
            .map(|h| h["host"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&groups[0]["hosts"]), ["web1", "web2", "web3"]);
    assert_eq!(groups[1]["cause"], "upstream_timeout");
    assert_eq!(names(&groups[1]["hosts"]), ["web5"]);
    assert_eq!(
        groups[1]["hosts"][0]["causes"],
        json!(["upstream_timeout", "upstream_overloaded"])
    );
    assert_eq!(v["majority_cause"], "upstream_refused");
    assert_eq!(names(&v["outliers"]), ["web5"]);
    assert_eq!(names(&v["healthy"]), ["web6"]);
    assert_eq!(names(&v["unreachable"]), ["web4"]);
    assert!(
        v["unreachable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Connection refused")
    );

    // Each bad file once, by name, with what is wrong; never a panic.
    let bad: Vec<(String, String)> = v["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                Path::new(u["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                u["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0].0, "web7.json");
    assert!(bad[0].1.starts_with("not JSON (line"), "{bad:?}");
    assert_eq!(bad[1].0, "web8.json");
    assert!(bad[1].1.starts_with("not JSON"), "{bad:?}");
    assert_eq!(bad[2].0, "web9");
    assert!(bad[2].1.starts_with("empty"), "{bad:?}");
    for name in ["web7.json", "web8.json", "web9"] {
        assert_eq!(
            stderr.matches(name).count(),
            1,
            "one message naming {name}: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    let title = v["ticket"]["title"].as_str().unwrap();
    assert!(title.contains("4 of 6 hosts"), "{title}");
    assert!(
        title.contains("web1, web2, web3") && title.contains("web5"),
        "{title}"
    );
    let body = v["ticket"]["body"].as_str().unwrap();
    for want in [
        "### Causes",
        "### Outliers",
        "### Not triaged",
        "web4",
        "### Healthy",
        "web7.json",
    ] {
        assert!(body.contains(want), "ticket lacks {want}:\n{body}");
    }
}

#[test]
fn fleet_markdown_and_text_from_files_given_one_by_one() {
    let d = fixture_dir();
    let p = d.path();
    let md = bin()
        .args(["fleet"])
        .args([
            p.join("web1.json"),
            p.join("web5.json"),
            p.join("web6.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(md.status.code(), Some(1));
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.starts_with("# triage502 fleet report"), "{md}");
    assert!(md.contains("| `upstream_refused`"), "{md}");
    assert!(md.contains("## Ticket"), "{md}");
    // Two failing hosts with different causes: no majority, so no outlier.
    assert!(!md.contains("(outlier)"), "{md}");
    assert!(!md.contains("### Outliers"), "{md}");

    let text = bin()
        .args(["fleet", "--format", "text"])
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("FAILING"), "{text}");
    assert!(
        text.contains("web5") && text.contains("(outlier)"),
        "{text}"
    );
    assert!(text.contains("UNREACHABLE  web4"), "{text}");
    assert!(text.contains("HEALTHY  web6"), "{text}");
    assert!(!text.contains("**") && !text.contains("| ---"), "{text}");
}

#[test]
fn fleet_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.json",
        &report(Some("a"), "http://x/", "healthy", &[]),
    );
    let ok = bin().arg("fleet").arg(d.path()).output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let missing = bin()
        .args(["fleet", "/nonexistent/triage502-reports"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/triage502-reports"));

    let empty = tempfile::tempdir().unwrap();
    let none = bin().arg("fleet").arg(empty.path()).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no report files"));
}
