//! config_test with the real nginx, apache2, php-fpm and haproxy on temp configs.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use std::path::Path;

use triage502::cause::Cause;
use triage502::check::{CheckReport, Outcome};
use triage502::checks::config_test::{Params, Server, run};

async fn test(server: Server, config: &Path, prefix: Option<&Path>) -> CheckReport {
    let p = Params {
        server,
        config: Some(config.display().to_string()),
        prefix: prefix.map(|d| d.display().to_string()),
        program: None,
        timeout: None,
    };
    run(&p, &listeners::ctx()).await
}

fn nginx_conf(d: &Path, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let c = d.join("nginx.conf");
    std::fs::write(
        &c,
        format!(
            "pid {d}/nginx.pid;\nerror_log stderr;\n{extra}\nevents {{}}\nhttp {{\n access_log off;\n client_body_temp_path {d}/tmp/body;\n proxy_temp_path {d}/tmp/proxy;\n fastcgi_temp_path {d}/tmp/fcgi;\n uwsgi_temp_path {d}/tmp/uwsgi;\n scgi_temp_path {d}/tmp/scgi;\n server {{ listen 127.0.0.1:18081; }}\n}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    c
}

#[tokio::test]
async fn nginx_valid_and_invalid() {
    listeners::require("nginx", "nginx");
    let d = tempfile::tempdir().unwrap();
    let c = nginx_conf(d.path(), "");
    let r = test(Server::Nginx, &c, Some(d.path())).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let c = nginx_conf(d.path(), "bogus_directive on;");
    let r = test(Server::Nginx, &c, Some(d.path())).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert_eq!(r.diagnoses[0].cause, Cause::ConfigError);
    assert!(
        r.facts["config_test.errors"].starts_with(&format!("{}:3: ", c.display())),
        "{}",
        r.facts["config_test.errors"]
    );
}

#[tokio::test]
async fn apache_valid_and_invalid() {
    listeners::require("apache2", "apache2");
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("httpd.conf");
    let base = format!(
        "ServerRoot \"{d}\"\nListen 127.0.0.1:18082\nLoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\nLoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\nErrorLog {d}/error.log\nPidFile {d}/httpd.pid\nServerName localhost\n",
        d = d.path().display()
    );
    std::fs::write(&c, &base).unwrap();
    assert_eq!(
        test(Server::Apache, &c, Some(d.path())).await.outcome,
        Outcome::Ok
    );
    std::fs::write(&c, format!("{base}ProxyPassBogus / http://127.0.0.1:9/\n")).unwrap();
    let r = test(Server::Apache, &c, Some(d.path())).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert!(
        r.facts["config_test.errors"].starts_with(&format!(
            "{}:8: Invalid command 'ProxyPassBogus'",
            c.display()
        )),
        "{}",
        r.facts["config_test.errors"]
    );
}

#[tokio::test]
async fn php_fpm_valid_and_invalid() {
    listeners::require("php-fpm8.2", "php8.2-fpm");
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("fpm.conf");
    let base = format!(
        "[global]\nerror_log = /proc/self/fd/2\n[www]\nuser = www-data\ngroup = www-data\nlisten = {}/fpm.sock\npm = static\npm.max_children = 1\n",
        d.path().display()
    );
    std::fs::write(&c, &base).unwrap();
    assert_eq!(test(Server::PhpFpm, &c, None).await.outcome, Outcome::Ok);
    std::fs::write(&c, format!("{base}bogus = 1\n")).unwrap();
    let r = test(Server::PhpFpm, &c, None).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert!(
        r.facts["config_test.errors"].starts_with(&format!("{}:9: ", c.display())),
        "{}",
        r.facts["config_test.errors"]
    );
}

#[tokio::test]
async fn haproxy_valid_and_invalid() {
    listeners::require("haproxy", "haproxy");
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("h.cfg");
    let body = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\nfrontend f\n  bind 127.0.0.1:18083\n  default_backend b\nbackend b\n  server s1 127.0.0.1:18084\n";
    std::fs::write(&c, format!("global\n  maxconn 100\n{body}")).unwrap();
    assert_eq!(test(Server::Haproxy, &c, None).await.outcome, Outcome::Ok);
    std::fs::write(&c, format!("global\n  bogus_keyword\n{body}")).unwrap();
    let r = test(Server::Haproxy, &c, None).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert!(
        r.facts["config_test.errors"].starts_with(&format!("{}:2: ", c.display())),
        "{}",
        r.facts["config_test.errors"]
    );
}

#[tokio::test]
async fn missing_program_is_inconclusive_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let p = Params {
        server: Server::Nginx,
        config: None,
        prefix: None,
        program: Some("t502-nginx-missing".into()),
        timeout: None,
    };
    let r = run(&p, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("t502-nginx-missing"), "{}", r.summary);
    let r = test(Server::Nginx, &d.path().join("absent.conf"), None).await;
    assert_eq!(r.outcome, Outcome::Problem);
}

/// Owner, group, mode, mtime and content of every entry under `root`.
fn snapshot(root: &Path) -> std::collections::BTreeMap<std::path::PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        let content = if m.is_file() {
            String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
        } else {
            String::new()
        };
        out.insert(
            p,
            format!(
                "{}:{} {:o} {}.{} {content:?}",
                m.uid(),
                m.gid(),
                m.mode(),
                m.mtime(),
                m.mtime_nsec()
            ),
        );
    }
    out
}

fn mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The `nginx_cache_fault` state: cache and temp directories owned by root,
/// 0700, which `nginx -t` run as root would give to the worker user; log
/// files, the pid file and one temp dir missing, which it would create.
fn cache_fault_tree(d: &Path, extra: &str) -> std::path::PathBuf {
    for sub in [
        "conf",
        "cache",
        "tmp/body",
        "tmp/proxy",
        "tmp/fcgi",
        "tmp/uwsgi",
        "logs",
        "run",
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    for sub in ["cache", "tmp/body", "tmp/proxy", "tmp/fcgi", "tmp/uwsgi"] {
        mode(&d.join(sub), 0o700);
    }
    std::fs::write(d.join("logs/old.log"), "kept\n").unwrap();
    let c = d.join("conf/nginx.conf");
    std::fs::write(
        &c,
        format!(
            "pid {d}/run/nginx.pid;\nerror_log {d}/logs/error.log;\n{extra}\nevents {{}}\nhttp {{\n access_log {d}/logs/access.log;\n proxy_cache_path {d}/cache levels=1:2 keys_zone=t502cfg:1m;\n client_body_temp_path {d}/tmp/body;\n proxy_temp_path {d}/tmp/proxy;\n fastcgi_temp_path {d}/tmp/fcgi;\n uwsgi_temp_path {d}/tmp/uwsgi;\n scgi_temp_path {d}/tmp/scgi;\n server {{ listen 127.0.0.1:18086; location / {{ proxy_cache t502cfg; proxy_pass http://127.0.0.1:9; }} }}\n}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    c
}

/// Issue: `nginx -t` as root re-owned the faulty cache directory and so hid
/// the fault. Run in its private mount namespace, it changes nothing.
#[tokio::test]
async fn nginx_test_as_root_changes_nothing_in_the_cache_fault_state() {
    listeners::require("nginx", "nginx");
    assert_eq!(
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap(),
        0,
        "this test needs root (nginx -t only chowns as root)"
    );
    let d = tempfile::tempdir().unwrap();
    let c = cache_fault_tree(d.path(), "");
    let before = snapshot(d.path());
    let r = test(Server::Nginx, &c, Some(d.path())).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(snapshot(d.path()), before);
    for absent in [
        "logs/error.log",
        "logs/access.log",
        "run/nginx.pid",
        "tmp/scgi",
    ] {
        assert!(!d.path().join(absent).exists(), "{absent} was created");
    }
    let iso = r
        .evidence
        .iter()
        .find(|e| e.label == "isolation")
        .unwrap_or_else(|| panic!("no isolation evidence: {r:?}"));
    eprintln!("{}", iso.text);
    for covered in ["cache", "tmp", "logs", "run"] {
        assert!(
            iso.text
                .contains(&format!("{} (", d.path().join(covered).display())),
            "{covered}: {}",
            iso.text
        );
    }
    assert!(!iso.text.contains("not isolated"), "{}", iso.text);

    // An invalid config: the same verdict and error as before, and again
    // nothing changed (nginx appends its [emerg] to the default error log).
    let c = cache_fault_tree(d.path(), "bogus_directive on;");
    let before = snapshot(d.path());
    let r = test(Server::Nginx, &c, Some(d.path())).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:?}");
    assert!(
        r.facts["config_test.errors"].starts_with(&format!("{}:3: ", c.display())),
        "{}",
        r.facts["config_test.errors"]
    );
    assert_eq!(snapshot(d.path()), before);
}

/// A log directory that also holds the configuration is never covered (the
/// test must read it); the evidence says what stays exposed.
#[tokio::test]
async fn a_log_dir_holding_the_config_is_not_covered_and_said_so() {
    listeners::require("nginx", "nginx");
    let d = tempfile::tempdir().unwrap();
    let c = nginx_conf(d.path(), "");
    let r = test(Server::Nginx, &c, Some(d.path())).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let iso = r.evidence.iter().find(|e| e.label == "isolation").unwrap();
    assert!(
        iso.text.contains(&format!(
            "{}/nginx.pid: its directory {} also holds {}",
            d.path().display(),
            d.path().display(),
            c.display()
        )),
        "{}",
        iso.text
    );
    assert!(
        iso.text
            .contains(&format!("{} (", d.path().join("tmp").display())),
        "{}",
        iso.text
    );
}

/// php-fpm -t appends a notice to its error_log and creates a missing
/// access.log: in its private namespace neither reaches the host.
#[tokio::test]
async fn php_fpm_test_leaves_its_logs_unchanged() {
    listeners::require("php-fpm8.2", "php8.2-fpm");
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("conf")).unwrap();
    std::fs::create_dir_all(d.path().join("log")).unwrap();
    std::fs::write(d.path().join("log/fpm.log"), "[old] line\n").unwrap();
    let c = d.path().join("conf/fpm.conf");
    std::fs::write(
        &c,
        format!(
            "[global]\nerror_log = {d}/log/fpm.log\n[www]\nuser = www-data\ngroup = www-data\nlisten = {d}/fpm.sock\npm = static\npm.max_children = 1\naccess.log = {d}/log/$pool.access.log\nslowlog = {d}/log/slow.log\nrequest_slowlog_timeout = 5s\n",
            d = d.path().display()
        ),
    )
    .unwrap();
    let before = snapshot(d.path());
    let r = test(Server::PhpFpm, &c, None).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(snapshot(d.path()), before);
    assert_eq!(
        std::fs::read_to_string(d.path().join("log/fpm.log")).unwrap(),
        "[old] line\n"
    );
    assert!(!d.path().join("log/www.access.log").exists());
    assert!(!d.path().join("log/slow.log").exists());
    let iso = r.evidence.iter().find(|e| e.label == "isolation").unwrap();
    assert!(
        iso.text
            .contains(&format!("{} (", d.path().join("log").display())),
        "{}",
        iso.text
    );
}
