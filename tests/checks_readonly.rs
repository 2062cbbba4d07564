//! Every check kind, run against one temp tree, changes no file: content,
//! mode and mtime of every entry (files, dirs, the socket) are identical
//! before and after. Runs through `CheckSpec` so each registered kind is
//! covered; a new kind without an entry here fails the test. The config
//! test's nginx sees the cache and temp directories root-owned 0700 (the
//! `cache_fault` state), which `nginx -t` run as root would re-own.
//!
//! And on the lab's `nginx_cache_fault`, a `--read-only` diagnosis leaves the
//! faulty cache directory exactly as it was (it used to repair, and so hide,
//! the fault through `nginx -t`).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/dns_stub.rs"]
mod dns_stub;
#[path = "lab/harness.rs"]
mod harness;
#[path = "support/listeners.rs"]
mod listeners;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use triage502::check::{CheckSpec, KINDS};

#[derive(Debug, PartialEq, Eq)]
struct State {
    content: Option<Vec<u8>>,
    mode: u32,
    uid: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, State> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let content = m.is_file().then(|| std::fs::read(&p).unwrap());
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.insert(
            p,
            State {
                content,
                mode: m.mode(),
                uid: m.uid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            },
        );
    }
    out
}

fn owner_only(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
}

fn spec(toml_text: &str) -> CheckSpec {
    let t: toml::Table =
        toml::from_str(&format!("c = {toml_text}")).unwrap_or_else(|e| panic!("{toml_text}: {e}"));
    t["c"]
        .clone()
        .try_into()
        .unwrap_or_else(|e| panic!("{toml_text}: {e}"))
}

#[tokio::test]
async fn no_check_kind_changes_any_file() {
    listeners::require("nginx", "nginx");
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let r = root.display().to_string();
    // The tree: configs with a backup, a WordPress plugin, a cache, logs, a socket.
    std::fs::create_dir_all(root.join("etc/nginx")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    // The temp dirs and the cache owned by root, owner-only: `nginx -t` run
    // as root would give them to its worker user (`nobody`) and add u+rwx,
    // were it not run in its private mount namespace.
    for t in ["body", "proxy", "fcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(root.join("tmp").join(t)).unwrap();
        owner_only(&root.join("tmp").join(t));
    }
    std::fs::write(
        root.join("etc/nginx/nginx.conf"),
        format!("pid {r}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n access_log off;\n proxy_cache_path {r}/cache levels=1:2 keys_zone=t502ro:1m;\n client_body_temp_path {r}/tmp/body;\n proxy_temp_path {r}/tmp/proxy;\n fastcgi_temp_path {r}/tmp/fcgi;\n uwsgi_temp_path {r}/tmp/uwsgi;\n scgi_temp_path {r}/tmp/scgi;\n server {{ listen 127.0.0.1:18085; }}\n}}\n"),
    )
    .unwrap();
    std::fs::write(root.join("nginx.pid"), "").unwrap();
    std::fs::write(root.join("etc/nginx/nginx.conf.bak"), "events {}\n").unwrap();
    std::fs::create_dir_all(root.join("www/wp-content/plugins/shop")).unwrap();
    std::fs::write(
        root.join("www/wp-content/plugins/shop/shop.php"),
        "<?php\n/* Plugin Name: Shop\nVersion: 1.0 */\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("cache/a/1f")).unwrap();
    std::fs::write(root.join("cache/a/1f/entry"), "cached").unwrap();
    owner_only(&root.join("cache"));
    std::fs::write(
        root.join("access.log"),
        "127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 502 157 \"-\" \"curl\"\n",
    )
    .unwrap();
    std::fs::write(root.join("error.log"), "2026/11/23 10:00:00 [notice] 1#1: signal process started\nPHP Fatal error: x in /srv/wp-content/plugins/shop/shop.php:2\n").unwrap();
    std::fs::write(
        root.join("dpkg.log"),
        "2026-11-23 10:00:00 upgrade nginx:amd64 1 2\n",
    )
    .unwrap();
    let sock = root.join("app.sock");
    let _unix = listeners::unix_reply(&sock, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let http = listeners::start(listeners::Behaviour::Reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    let dns = dns_stub::start().await;
    let _stats = listeners::unix_reply(
        &root.join("stats.sock"),
        b"# pxname,svname,status,check_status,addr\napp,s1,UP,L7OK,\napp,s2,DOWN,L4CON,\n",
    );

    let specs = [
        format!(r#"{{ http = {{ url = "http://{http}/" }} }}"#),
        format!(r#"{{ upstream_probe = {{ address = "unix:{r}/app.sock" }} }}"#),
        format!(r#"{{ pages = {{ url = "http://{http}", paths = ["/a"] }} }}"#),
        format!(r#"{{ dns = {{ name = "ok.test", resolver = "{dns}" }} }}"#),
        format!(r#"{{ tcp = {{ address = "{http}" }} }}"#),
        format!(r#"{{ unix_socket = {{ path = "unix:{r}/app.sock", user = "www-data" }} }}"#),
        format!(r#"{{ listener = {{ address = "unix:{r}/app.sock" }} }}"#),
        r#"{ service = { unit = "nginx", via = "proc" } }"#.to_owned(),
        format!(
            r#"{{ config_test = {{ server = "nginx", config = "{r}/etc/nginx/nginx.conf", prefix = "{r}" }} }}"#
        ),
        format!(
            r#"{{ resources = {{ paths = ["{r}", "{r}/cache"], pids = ["{}"] }} }}"#,
            std::process::id()
        ),
        format!(
            r#"{{ recent_changes = {{ dirs = ["{r}/etc/nginx"], package_logs = ["{r}/dpkg.log"], server_logs = ["{r}/error.log"], plugin_dirs = ["{r}/www/wp-content/plugins"] }} }}"#
        ),
        r#"{ firewall = { address = "127.0.0.1:18085" } }"#.to_owned(),
        format!(r#"{{ plugins = {{ document_root = "{r}/www", fatal_log = "{r}/error.log" }} }}"#),
        format!(r#"{{ cache = {{ paths = ["{r}/cache"], user = "root" }} }}"#),
        format!(r#"{{ command = {{ argv = ["cat", "{r}/dpkg.log"], ok_if = ["upgrade"] }} }}"#),
        format!(r#"{{ discovery = {{ url = "http://{http}/" }} }}"#),
        format!(r#"{{ log_scan = {{ paths = ["{r}/error.log"], since = "24000h" }} }}"#),
        format!(r#"{{ access_log = {{ paths = ["{r}/access.log"], since = "24000h" }} }}"#),
        // Computes an edit from discovery and /proc; it never applies it.
        format!(r#"{{ remedy = {{ cause = "socket_missing", url = "http://{http}/" }} }}"#),
        // Engine API reads only (a name no container has: the lookup itself is what runs).
        r#"{ container = { container = "t502-readonly-no-such-container", port = "3000" } }"#
            .to_owned(),
        // Windows only (`sc query`, `appcmd list`): on Linux the runner answers
        // inconclusive without running anything.
        r#"{ iis_service = { service = "w3svc", app_pool = "DefaultAppPool" } }"#.to_owned(),
        // One request per server and `show stat` on the stats socket, nothing else.
        format!(
            r#"{{ backends = {{ addresses = "{http}\n{refused}", group = "app", path = "/a", stats_socket = "{r}/stats.sock" }} }}"#,
            refused = listeners::closed_port()
        ),
    ];
    let before = snapshot(root);
    let ctx = listeners::ctx();
    let mut kinds = BTreeSet::new();
    for s in &specs {
        let spec = spec(s);
        let report = spec.run(&ctx).await;
        assert_eq!(report.kind, spec.kind());
        eprintln!(
            "{}: {} — {}",
            spec.kind(),
            report.outcome.as_str(),
            report.summary
        );
        kinds.insert(spec.kind());
        let after = snapshot(root);
        for (path, st) in &before {
            assert_eq!(
                after.get(path),
                Some(st),
                "{} changed {}",
                spec.kind(),
                path.display()
            );
        }
        assert_eq!(
            after.len(),
            before.len(),
            "{} created or removed entries: {:?}",
            spec.kind(),
            after
                .keys()
                .filter(|k| !before.contains_key(*k))
                .collect::<Vec<_>>()
        );
    }
    let all: BTreeSet<&str> = KINDS.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, all, "every registered kind must be run here");
}

/// The lab's `nginx_cache_fault` (the proxy cache directory re-owned
/// root:root 0700 after nginx started): `triage502 run --read-only` names
/// `cache_fault` and leaves the directory's owner, mode, mtime and ctime as
/// they were (its config test ran `nginx -t` as root, which used to give the
/// directory back to the worker user).
#[test]
fn read_only_diagnosis_leaves_the_lab_cache_fault_in_place() {
    use std::io::Read as _;
    use std::time::{Duration, Instant};
    let mut lab = harness::Lab::start("nginx_cache_fault");
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let cache = lab.dir.join("cache");
    let stat = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (
            m.uid(),
            m.gid(),
            m.mode() & 0o7777,
            (m.mtime(), m.mtime_nsec()),
            (m.ctime(), m.ctime_nsec()),
        )
    };
    let before = stat(&cache);
    assert_eq!((before.0, before.1, before.2), (0, 0, 0o700), "{before:?}");
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args([
            "run",
            "--non-interactive",
            "--read-only",
            "--format",
            "json",
            "--url",
            &lab.url,
        ])
        .env("XDG_STATE_HOME", state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "triage502 run took over 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    let causes: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["cause"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(causes.first(), Some(&"cache_fault"), "{report:#}");
    assert_eq!(
        stat(&cache),
        before,
        "the diagnosis changed {}",
        cache.display()
    );
    // The config test did run nginx -t, isolated.
    let dump = report.to_string();
    assert!(dump.contains("private mount namespace"), "{report:#}");
}
