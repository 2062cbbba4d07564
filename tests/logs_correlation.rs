//! Correlation decides the cause where one log alone cannot: an nginx
//! premature close next to a php-fpm timeout kill is a timeout, next to a
//! SIGSEGV a crash (an app fault when one page only), next to a kernel OOM
//! kill a resource exhaustion; `(13: Permission denied)` on a TCP upstream is
//! SELinux, on a unix socket the socket's permissions.
//!
//! The fixtures (tests/fixtures/logs/correlation/) are written from the real
//! message strings of shared/docs/signatures.md, each in its server's layout,
//! and scanned together (nginx error log + php-fpm log + kern.log + audit.log)
//! by the library, by the real binary (text and JSON) and by the `log_scan`
//! check.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use triage502::cause::Cause;
use triage502::logs::scan::{CauseSummary, ScanReport};
use triage502::logs::time::Zone;
use triage502::logs::{self, ScanOptions, Window};

fn fixture(dir: &str, files: &[&str]) -> Vec<PathBuf> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs/correlation");
    files.iter().map(|f| base.join(dir).join(f)).collect()
}

fn scan(files: &[PathBuf]) -> ScanReport {
    let opts = ScanOptions {
        zone: Zone::utc(),
        ..ScanOptions::default()
    };
    logs::scan(files, &Window::all(), &opts)
}

fn cause(r: &ScanReport, c: Cause) -> &CauseSummary {
    r.causes
        .iter()
        .find(|s| s.cause == c)
        .unwrap_or_else(|| panic!("{c} missing: {r:#?}"))
}

/// `triage502 logs scan --all --format FORMAT FILES…` with the logs' zone (UTC).
fn binary(files: &[PathBuf], format: &str) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["logs", "scan", "--all", "--format", format])
        .args(files)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn premature_closes_next_to_php_fpm_timeout_kills_are_timeouts() {
    let files = fixture("timeout", &["error.log", "php8.2-fpm.log"]);
    let r = scan(&files);
    let t = cause(&r, Cause::UpstreamTimeout);
    // Three closes on /report.php within ±2 s of three `execution timed out … terminating`.
    assert_eq!(t.count, 3, "{r:#?}");
    assert_eq!(t.secondary_count, 3, "the three php-fpm kills");
    assert_eq!(t.paths[0].value, "/report.php");
    assert_eq!(t.paths[0].count, 3);
    // The close on /cart has no backend line near it: it stays upstream_closed.
    let c = cause(&r, Cause::UpstreamClosed);
    assert_eq!(c.count, 1);
    assert_eq!(c.paths[0].value, "/cart");
    assert_eq!(r.top_cause(), Some(Cause::UpstreamTimeout));

    let k = &r.correlations[0];
    assert_eq!(
        (k.cause, k.kind, k.entries),
        (Cause::UpstreamTimeout, "timeout_kill", 3)
    );
    assert_eq!(k.pids, vec![31245, 31246, 31301]);
    assert!(
        k.explanation.contains("request_terminate_timeout"),
        "{}",
        k.explanation
    );
    assert_eq!(k.evidence.len(), 3);
    assert!(k.evidence[0].text.contains("execution timed out"));
    assert!(
        k.evidence[0].source.ends_with("php8.2-fpm.log:3"),
        "{:?}",
        k.evidence[0]
    );
    assert_eq!(r.correlations.len(), 1, "{:#?}", r.correlations);
}

#[test]
fn without_the_backend_log_the_same_closes_stay_closes_and_a_note_asks_for_it() {
    let files = fixture("timeout", &["error.log"]);
    let r = scan(&files);
    assert_eq!(cause(&r, Cause::UpstreamClosed).count, 4);
    assert!(r.causes.iter().all(|c| c.cause != Cause::UpstreamTimeout));
    assert!(r.correlations.is_empty());
    assert!(
        r.notes.iter().any(|n| n.contains("php-fpm log")),
        "{:?}",
        r.notes
    );
}

#[test]
fn segfaults_on_one_page_are_an_app_fault_and_an_oom_kill_joined_by_pid_is_resource_exhaustion() {
    let files = fixture("crash_oom", &["error.log", "php8.2-fpm.log", "kern.log"]);
    let r = scan(&files);
    let app = cause(&r, Cause::AppFatal);
    assert_eq!(app.count, 2, "{r:#?}");
    assert_eq!(app.paths[0].value, "/shop/checkout");
    // The two php-fpm SIGSEGV exits and the two kernel segfaults are its evidence, not another cause.
    assert_eq!(app.secondary_count, 4);
    assert!(
        r.causes.iter().all(|c| c.cause != Cause::UpstreamClosed),
        "{r:#?}"
    );
    let oom = cause(&r, Cause::ResourceExhaustion);
    assert_eq!(oom.count, 1);
    assert_eq!(oom.paths[0].value, "/admin/import");

    let crash = r
        .correlations
        .iter()
        .find(|k| k.kind == "worker_crash")
        .unwrap();
    assert_eq!(crash.cause, Cause::AppFatal);
    assert_eq!(crash.entries, 2);
    // php-fpm's child pid and the kernel's segfault pid are one process each.
    assert_eq!(crash.pids, vec![28711, 28790]);
    assert!(crash.explanation.contains("/shop/checkout"));
    let k = r
        .correlations
        .iter()
        .find(|k| k.kind == "oom_kill")
        .unwrap();
    assert_eq!((k.cause, k.entries), (Cause::ResourceExhaustion, 1));
    assert_eq!(k.pids, vec![4121]);
    assert!(k.explanation.contains("same pid"), "{}", k.explanation);
    let sources: Vec<&str> = k.evidence.iter().map(|e| e.source.as_str()).collect();
    assert!(
        sources.iter().any(|s| s.ends_with("kern.log:4")),
        "{sources:?}"
    );
    assert!(
        sources.iter().any(|s| s.ends_with("php8.2-fpm.log:4")),
        "{sources:?}"
    );
}

#[test]
fn eacces_on_tcp_is_selinux_and_on_a_unix_socket_its_permissions() {
    let files = fixture("eacces", &["error.log", "audit.log", "apache_error.log"]);
    let r = scan(&files);
    let fw = cause(&r, Cause::FirewallBlocked);
    assert_eq!(fw.count, 2);
    let sp = cause(&r, Cause::SocketPermission);
    assert_eq!(
        sp.count, 2,
        "nginx on www.sock, Apache on php8.2-fpm.sock: {r:#?}"
    );

    let tcp = r
        .correlations
        .iter()
        .find(|k| k.kind == "eacces_tcp")
        .unwrap();
    assert_eq!((tcp.cause, tcp.entries), (Cause::FirewallBlocked, 2));
    assert_eq!(tcp.peers, vec!["127.0.0.1:8080".to_owned()]);
    assert!(
        tcp.explanation
            .contains("setsebool -P httpd_can_network_connect 1")
    );
    assert!(
        tcp.explanation.contains("Confirmed by 2 AVC"),
        "{}",
        tcp.explanation
    );
    assert!(
        tcp.evidence[0].source.ends_with("audit.log:1"),
        "{:?}",
        tcp.evidence
    );
    let unix = r
        .correlations
        .iter()
        .find(|k| k.kind == "eacces_unix")
        .unwrap();
    assert_eq!((unix.cause, unix.entries), (Cause::SocketPermission, 2));
    assert_eq!(
        unix.peers,
        vec![
            "/run/php/php8.2-fpm.sock".to_owned(),
            "/var/run/php-fpm/www.sock".to_owned()
        ]
    );
    assert!(unix.explanation.contains("listen.mode"));
    assert!(!unix.explanation.contains("setsebool"));
}

#[test]
fn the_binary_shows_correlations_in_json_and_text() {
    let files = fixture("crash_oom", &["error.log", "php8.2-fpm.log", "kern.log"]);
    let (json, code) = binary(&files, "json");
    assert_eq!(code, 1, "causes found: exit 1");
    let v: Value = serde_json::from_str(&json).unwrap();
    let kinds: Vec<&str> = v["correlations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["oom_kill", "worker_crash"]);
    let oom = &v["correlations"][0];
    assert_eq!(oom["cause"], "resource_exhaustion");
    assert_eq!(oom["entries"], 1);
    assert_eq!(oom["pids"][0], 4121);
    assert!(
        oom["evidence"][0]["source"]
            .as_str()
            .unwrap()
            .contains("kern.log:"),
        "{oom:#}"
    );
    let causes: Vec<(&str, u64)> = v["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "primary")
        .map(|c| (c["cause"].as_str().unwrap(), c["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(causes, vec![("app_fatal", 2), ("resource_exhaustion", 1)]);

    let files = fixture("timeout", &["error.log", "php8.2-fpm.log"]);
    let (text, code) = binary(&files, "text");
    assert_eq!(code, 1);
    assert!(
        text.contains("correlation → upstream_timeout (timeout_kill): 3 premature close(s)"),
        "{text}"
    );
    assert!(text.contains("execution timed out"), "{text}");
    assert!(text.contains("php8.2-fpm.log:3"), "{text}");
}

#[test]
fn the_log_scan_check_attaches_the_correlation_to_its_diagnosis() {
    let files = fixture("timeout", &["error.log", "php8.2-fpm.log"]);
    let r = scan(&files);
    let rep = triage502::checks::log_scan::summarise(&r, "scan".to_owned());
    let d = rep
        .diagnoses
        .iter()
        .find(|d| d.cause == Cause::UpstreamTimeout)
        .unwrap();
    assert!(
        d.summary.contains("correlated: timeout_kill"),
        "{}",
        d.summary
    );
    let labels: Vec<&str> = d.evidence.iter().map(|e| e.label.as_str()).collect();
    assert!(labels.contains(&"correlation"), "{labels:?}");
    let backend = d
        .evidence
        .iter()
        .find(|e| e.label == "backend log line")
        .unwrap();
    assert!(backend.text.contains("execution timed out"));
    assert!(
        backend
            .source
            .as_deref()
            .unwrap()
            .ends_with("php8.2-fpm.log:3")
    );
    assert_eq!(rep.facts["log.top_cause"], "upstream_timeout");

    let files = fixture("eacces", &["error.log", "audit.log"]);
    let r = scan(&files);
    let rep = triage502::checks::log_scan::summarise(&r, "scan".to_owned());
    let d = rep
        .diagnoses
        .iter()
        .find(|d| d.cause == Cause::FirewallBlocked)
        .unwrap();
    assert!(
        d.evidence
            .iter()
            .any(|e| e.text.contains("httpd_can_network_connect")),
        "{d:#?}"
    );
}
