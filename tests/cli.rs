//! The real binary, run as an operator or a script would.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage502"));
    // Only the shipped playbooks: no user directories.
    c.env("XDG_CONFIG_HOME", "/nonexistent-triage502-test");
    c.env(
        "XDG_STATE_HOME",
        std::env::temp_dir().join("triage502-cli-test-state"),
    );
    c
}

/// A loopback HTTP server answering every request with `status`, until the test ends.
fn serve(status: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/")
}

fn dead_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn assert_matches_report_schema(v: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("assets/report.schema.json").unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match its schema: {errors:?}"
    );
}

#[test]
fn a_502_is_a_problem_with_a_schema_valid_report_and_exit_1() {
    let url = serve("502 Bad Gateway");
    let out = bin()
        .args([
            "run",
            "--non-interactive",
            "--format",
            "json",
            &url,
            "--var",
        ])
        .arg(format!("upstream={}", dead_port()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_matches_report_schema(&v);
    assert_eq!(v["status"], "problem");
    assert_eq!(v["findings"][0]["cause"], "upstream_refused");
    assert_eq!(v["path"][0]["node"], "symptom");
    assert_eq!(v["path"][0]["outcome"], "problem");
    assert_eq!(v["url"], url.as_str());
    assert!(v["duration_ms"].is_u64());
}

#[test]
fn a_healthy_site_reports_healthy_and_exits_0() {
    let url = serve("200 OK");
    let out = bin()
        .args([
            "run",
            "--non-interactive",
            "--format",
            "json",
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_matches_report_schema(&v);
    assert_eq!(v["status"], "healthy");
    assert_eq!(
        v["findings"].as_array().unwrap().len(),
        0,
        "nothing invented: {v}"
    );
    assert_eq!(v["ruled_out"][0]["cause"], "frontend_down");
}

#[test]
fn a_dead_front_server_is_frontend_down() {
    let url = format!("http://{}/", dead_port());
    let out = bin()
        .args(["run", "--non-interactive", "--format", "json", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["findings"][0]["cause"], "frontend_down");
}

#[test]
fn markdown_report_goes_to_the_output_file() {
    let url = serve("200 OK");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.md");
    let out = bin()
        .args(["run", "--non-interactive", &url, "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let md = std::fs::read_to_string(&path).unwrap();
    assert!(md.starts_with("# triage502 report: healthy"), "{md}");
}

#[test]
fn bad_input_exits_2_with_one_clear_message() {
    let cases: &[&[&str]] = &[
        &["run", "--non-interactive", "not-a-url"],
        &[
            "run",
            "--non-interactive",
            "http://127.0.0.1:1/",
            "--playbook",
            "nope",
        ],
        &[
            "run",
            "--non-interactive",
            "http://127.0.0.1:1/",
            "--var",
            "novalue",
        ],
        &[
            "run",
            "--non-interactive",
            "http://127.0.0.1:1/",
            "--since",
            "soon",
        ],
        &["run", "--non-interactive"],
        &["--no-such-flag"],
    ];
    for args in cases {
        let out = bin().args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} gave no message");
    }
}

#[test]
fn validate_exit_codes() {
    let ok = bin()
        .args([
            "playbook",
            "validate",
            "playbooks/502.toml",
            "playbooks/cdn.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let bad = bin()
        .args([
            "playbook",
            "validate",
            "tests/fixtures/playbooks/cycle.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains(
            "tests/fixtures/playbooks/cycle.toml:7:6: error: no end is reachable from node `a`"
        ),
        "{text}"
    );
}

#[test]
fn mermaid_graph_draws_every_node_and_edge() {
    let out = bin()
        .args(["playbook", "graph", "502", "--format", "mermaid"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("flowchart TD\n"));
    let src = std::fs::read_to_string("playbooks/502.toml").unwrap();
    let table: toml::Table = toml::from_str(&src).unwrap();
    for node in table["node"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap();
        assert!(
            text.contains(&format!("    {id}["))
                || text.contains(&format!("    {id}{{"))
                || text.contains(&format!("    {id}(")),
            "node {id} missing"
        );
    }
    assert!(text.contains("symptom -->|problem| map"), "{text}");
    let dot = bin()
        .args(["playbook", "graph", "playbooks/502.toml", "--format", "dot"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&dot.stdout).starts_with("digraph \"502\""));
}

#[test]
fn playbook_list_test_and_checks_list() {
    let list = bin().args(["playbook", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    for id in ["502", "cdn", "php-fpm", "wordpress"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} not listed: {text}"
        );
    }
    let t = bin().args(["playbook", "test"]).output().unwrap();
    assert_eq!(
        t.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&t.stdout)
    );
    let checks = bin().args(["checks", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&checks.stdout);
    assert!(
        text.contains("http\n") && text.contains("url: string (required)"),
        "{text}"
    );
    assert!(
        text.contains("tcp\n") && text.contains("{ tcp = { address ="),
        "{text}"
    );
}

#[test]
fn completions_and_man_page() {
    let c = bin().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&c.stdout).contains("triage502"));
    let m = bin().args(["man"]).output().unwrap();
    assert!(String::from_utf8_lossy(&m.stdout).contains(".TH triage502"));
}
