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
