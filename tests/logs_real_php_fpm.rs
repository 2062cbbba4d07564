//! The correlation, proved on real servers: nginx in front of php-fpm 8.2
//! (configs in a temp dir, loopback port, a unix socket). A pool with
//! `request_terminate_timeout = 1s` kills a script that sleeps, so php-fpm
//! logs `execution timed out … terminating` and nginx `upstream prematurely
//! closed …`: `logs scan` must call it upstream_timeout, not a crash — both
//! given the two files and given only the URL (`--url`, the logs found by
//! discovery). A page whose script segfaults the worker is an application
//! fault on that page. A URL nobody serves is a clear error.
//!
//! Needs nginx and php-fpm8.2; fails with the install command when missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "discovery_support/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use servers::{Server, free_port, http_status, require, triage502, write};
use triage502::cause::Cause;
use triage502::logs::{self, ScanOptions, Window};

/// nginx → php-fpm over a unix socket; php-fpm kills requests after 1 s.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
    _fpm: Server,
    _nginx: Server,
}

impl Site {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn log(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }
}

fn site() -> Site {
    let fpm = require("php-fpm8.2");
    let dir = servers::tempdir();
    let d = dir.path();
    let sock = d.join("php.sock");
    write(
        &d.join("www/sleep.php"),
        "<?php\nsleep(5);\necho \"slow\\n\";\n",
    );
    write(&d.join("www/ok.php"), "<?php\necho \"ok\\n\";\n");
    // The lab's buggy plugin: recursion through array_map (C code) overflows
    // the C stack, so the worker dies with SIGSEGV before PHP's memory limit.
    write(
        &d.join("www/checkout.php"),
        "<?php\nfunction total(array $i) { return array_sum(array_map('total', [$i])); }\necho total([19.99, 5.00]);\n",
    );
    write(
        &d.join("php-fpm.conf"),
        &format!(
            "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/logs/php-fpm.log\ndaemonize = no\n\n[www]\nuser = www-data\ngroup = www-data\nlisten = {sock}\nlisten.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\npm = static\npm.max_children = 2\nrequest_terminate_timeout = 1s\ncatch_workers_output = yes\n",
            d = d.display(),
            sock = sock.display()
        ),
    );
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let mut f = Server::start(
        "php-fpm",
        d,
        &[
            fpm.to_str().unwrap(),
            "-F",
            "-y",
            d.join("php-fpm.conf").to_str().unwrap(),
        ],
    );
    f.wait_unix(&sock);
    f.wait_children(2);
    let port = free_port();
    write(
        &d.join("nginx.conf"),
        &format!(
            r"user www-data;
worker_processes 1;
error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/logs/access.log combined;
    client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name shop.localhost;
        root {d}/www;
        location ~ \.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{sock};
            fastcgi_read_timeout 30s;
        }}
    }}
}}
",
            d = d.display(),
            sock = sock.display()
        ),
    );
    let mut n = servers::nginx(d);
    n.wait_tcp(&format!("127.0.0.1:{port}"));
    n.wait_workers();
    Site {
        dir,
        port,
        _fpm: f,
        _nginx: n,
    }
}

/// Wait (bounded) until `path`'s text holds `n` lines containing `needle`:
/// php-fpm's master writes its log asynchronously.
fn wait_lines(path: &Path, needle: &str, n: usize) {
    for _ in 0..100 {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if t.lines().filter(|l| l.contains(needle)).count() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{} never had {n} lines with {needle:?}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

#[test]
fn request_terminate_timeout_behind_nginx_is_a_timeout_not_a_crash() {
    let site = site();
    assert_eq!(
        http_status(site.port, "/ok.php"),
        200,
        "{}",
        site.log("logs/error.log")
    );
    let statuses: Vec<u16> = (0..2)
        .map(|_| http_status(site.port, "/sleep.php"))
        .collect();
    // php-fpm kills the worker: nginx sees the connection close before a header.
    assert_eq!(statuses, vec![502, 502], "{}", site.log("logs/error.log"));
    wait_lines(&site.path("logs/php-fpm.log"), "execution timed out", 2);
    wait_lines(&site.path("logs/error.log"), "upstream", 2);
    let fpm_log = site.log("logs/php-fpm.log");
    let nginx_log = site.log("logs/error.log");
    let both = format!("--- error.log\n{nginx_log}--- php-fpm.log\n{fpm_log}");

    // The library, given both files.
    let w = Window::last(Duration::from_secs(600));
    let files = [site.path("logs/error.log"), site.path("logs/php-fpm.log")];
    let r = logs::scan(&files, &w, &ScanOptions::default());
    assert_eq!(
        r.top_cause(),
        Some(Cause::UpstreamTimeout),
        "{both}\n{r:#?}"
    );
    let timeout = r
        .causes
        .iter()
        .find(|c| c.cause == Cause::UpstreamTimeout)
        .unwrap();
    assert_eq!(timeout.count, 2, "{both}");
    assert_eq!(timeout.paths[0].value, "/sleep.php");
    assert!(
        r.causes.iter().all(|c| c.cause != Cause::UpstreamClosed),
        "{both}\n{r:#?}"
    );
    let k = &r.correlations[0];
    assert_eq!((k.kind, k.entries), ("timeout_kill", 2), "{both}");
    assert_eq!(k.pids.len(), 2, "two workers were killed: {both}");
    assert!(k.evidence[0].text.contains("execution timed out"));
    assert_eq!(r.unmatched.count, 0, "{both}");

    // The nginx log alone cannot tell: premature closes, and a note asking for the php-fpm log.
    let alone = logs::scan(&files[..1], &w, &ScanOptions::default());
    assert_eq!(alone.top_cause(), Some(Cause::UpstreamClosed), "{both}");
    assert!(alone.notes.iter().any(|n| n.contains("php-fpm log")));

    // The binary, given only the URL: discovery finds nginx's error log and
    // the php-fpm pool's log behind the socket.
    let url = format!("http://127.0.0.1:{}/sleep.php", site.port);
    let (json, err, code) = triage502(&[
        "logs", "scan", "--url", &url, "--since", "10m", "--format", "json",
    ]);
    assert_eq!(code, 1, "{err}\n{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let found: Vec<(&str, &str)> = v["discovered"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["role"].as_str().unwrap()))
        .collect();
    let error_log = site.path("logs/error.log").display().to_string();
    let fpm_path = site.path("logs/php-fpm.log").display().to_string();
    assert_eq!(
        found,
        vec![
            (error_log.as_str(), "front"),
            (fpm_path.as_str(), "php-fpm")
        ],
        "{json}"
    );
    assert!(
        v["discovered"]["logs"][0]["source"]
            .as_str()
            .unwrap()
            .contains("nginx.conf:3"),
        "{json}"
    );
    assert_eq!(v["causes"][0]["cause"], "upstream_timeout", "{json}");
    assert_eq!(v["causes"][0]["count"], 2, "{json}");
    assert_eq!(v["correlations"][0]["kind"], "timeout_kill", "{json}");

    let (text, _, code) = triage502(&["logs", "scan", "--url", &url, "--since", "10m"]);
    assert_eq!(code, 1);
    assert!(text.contains("found by discovery"), "{text}");
    assert!(text.contains(&format!("{fpm_path} [php-fpm]")), "{text}");
    assert!(
        text.contains("correlation → upstream_timeout (timeout_kill)"),
        "{text}"
    );
}

#[test]
fn a_url_no_local_server_answers_is_a_clear_error() {
    let port = free_port(); // nothing listens here
    let url = format!("http://127.0.0.1:{port}/");
    let (out, err, code) = triage502(&["logs", "scan", "--url", &url]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!("discovery found no error log for {url}")),
        "{err}"
    );
    assert!(err.contains("nothing on this host listens"), "{err}");
    assert!(err.contains("logs scan FILE"), "{err}");
    // FILEs and --url are one or the other.
    let (_, err, code) = triage502(&["logs", "scan", "--url", &url, "/var/log/nginx/error.log"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_worker_segfault_on_one_page_is_an_app_fault() {
    let site = site();
    let statuses: Vec<u16> = ["/checkout.php", "/ok.php", "/checkout.php"]
        .iter()
        .map(|p| http_status(site.port, p))
        .collect();
    assert_eq!(
        statuses,
        vec![502, 200, 502],
        "{}",
        site.log("logs/error.log")
    );
    wait_lines(&site.path("logs/php-fpm.log"), "exited on signal 11", 2);
    let both = format!(
        "--- error.log\n{}--- php-fpm.log\n{}",
        site.log("logs/error.log"),
        site.log("logs/php-fpm.log")
    );
    let w = Window::last(Duration::from_secs(600));
    let files = [site.path("logs/error.log"), site.path("logs/php-fpm.log")];
    let r = logs::scan(&files, &w, &ScanOptions::default());
    assert_eq!(r.top_cause(), Some(Cause::AppFatal), "{both}\n{r:#?}");
    let app = &r.causes[0];
    assert_eq!(app.count, 2, "{both}");
    assert_eq!(app.paths[0].value, "/checkout.php");
    assert_eq!(app.secondary_count, 2, "the two SIGSEGV exits: {both}");
    let k = &r.correlations[0];
    assert_eq!(
        (k.kind, k.entries, k.pids.len()),
        ("worker_crash", 2, 2),
        "{both}"
    );
    assert!(
        k.evidence[0].text.contains("exited on signal 11 (SIGSEGV"),
        "{both}"
    );
    assert!(
        r.causes.iter().all(|c| c.cause != Cause::UpstreamTimeout),
        "{both}"
    );
}
