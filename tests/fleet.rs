//! `triage502 fleet` on hand-made report files: grouping by cause, the outlier, healthy and
//! unreachable hosts, a host named only by its file, and corrupt files that are reported by name
//! without stopping the merge. The hand-made reports are held to `assets/report.schema.json`, so
//! they are reports `run --format json` could have written.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

#[path = "support/fleet_fixtures.rs"]
mod fleet_fixtures;
use fleet_fixtures::{fixture_dir, report, write};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage502"));
    c.env("NO_COLOR", "1").env_remove("TRIAGE502_HOST");
    c
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
