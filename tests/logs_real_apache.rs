//! The catalogue and the correlation against a real Apache 2.4 on loopback
//! (config in a temp dir, started in the foreground): mod_proxy_http to a
//! closed port (AH00957 + AH01114, 503), mod_proxy_fcgi to a dead php-fpm
//! socket (a socket file nobody listens on: `(111)` AH02454) and to a socket
//! the worker user may not open (`(13)` AH02454: socket permissions, not
//! SELinux). Its error log is then scanned by the library and, from the URL
//! alone, by `triage502 logs scan --url`.
//!
//! Needs apache2; fails with the install command when missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "discovery_support/servers.rs"]
mod servers;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use servers::{free_port, http_status, triage502, write};
use triage502::cause::Cause;
use triage502::logs::{self, ScanOptions, Window};

/// A unix socket file nobody listens on (bound, then the listener dropped), with `mode`.
fn dead_socket(path: &Path, mode: u32) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn real_apache_refused_dead_fcgi_socket_and_socket_permission_are_classified() {
    let dir = servers::tempdir();
    let d = dir.path();
    let port = free_port();
    let dead = free_port(); // nothing listens here
    let modules = "/usr/lib/apache2/modules";
    dead_socket(&d.join("dead-fpm.sock"), 0o777);
    dead_socket(&d.join("locked-fpm.sock"), 0o600); // root's; the children run as www-data
    write(
        &d.join("apache2.conf"),
        &format!(
            r#"ServerRoot {d}
PidFile {d}/run/apache2.pid
DefaultRuntimeDir {d}/run
Mutex file:{d}/run default
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
LoadModule proxy_fcgi_module {modules}/mod_proxy_fcgi.so
User www-data
Group www-data
ServerName localhost
Listen 127.0.0.1:{port}
StartServers 1
ErrorLog {d}/logs/error.log
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{{Referer}}i\" \"%{{User-Agent}}i\"" combined
CustomLog {d}/logs/access.log combined
# Each unix-socket backend needs its own fcgi:// name: mod_proxy keys workers by it.
<VirtualHost 127.0.0.1:{port}>
    ServerName shop.localhost
    ProxyPass /app/ http://127.0.0.1:{dead}/
    ProxyPass /php/ unix:{d}/dead-fpm.sock|fcgi://dead-fpm/
    ProxyPass /locked/ unix:{d}/locked-fpm.sock|fcgi://locked-fpm/
</VirtualHost>
"#,
            d = d.display()
        ),
    );
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::create_dir_all(d.join("run")).unwrap();
    let mut server = servers::apache2(d);
    server.wait_tcp(&format!("127.0.0.1:{port}"));
    server.wait_workers();

    let mut statuses = Vec::new();
    for p in ["/app/cart", "/php/index.php", "/locked/index.php"] {
        for _ in 0..2 {
            statuses.push(http_status(port, p));
        }
    }
    // Apache answers 503, not 502, when it cannot connect (§1.3.2).
    assert_eq!(statuses, vec![503; 6]);
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(d.join("logs/error.log")).unwrap();

    let w = Window::last(Duration::from_secs(600));
    let r = logs::scan(&[d.join("logs/error.log")], &w, &ScanOptions::default());
    let find = |c: Cause| {
        r.causes
            .iter()
            .find(|s| s.cause == c)
            .unwrap_or_else(|| panic!("{c} not found in:\n{text}\n{r:#?}"))
    };
    // Two AH00957 to the closed TCP port, two (111) AH02454 to the dead socket;
    // each request's AH01114/AH01079 is its consequence, not another failure.
    let refused = find(Cause::UpstreamRefused);
    assert_eq!((refused.count, refused.secondary_count), (4, 4), "{text}");
    assert_eq!(refused.upstreams[0].value, format!("127.0.0.1:{dead}"));
    assert_eq!(refused.upstreams[0].count, 2);
    assert!(
        refused.sockets[0].value.ends_with("/dead-fpm.sock"),
        "{r:#?}"
    );
    assert_eq!(refused.sockets[0].count, 2);
    // (13) on a unix socket: the socket's permissions, never SELinux.
    let perm = find(Cause::SocketPermission);
    assert_eq!((perm.count, perm.secondary_count), (2, 2), "{text}");
    assert!(perm.sockets[0].value.ends_with("/locked-fpm.sock"));
    assert!(
        r.causes.iter().all(|c| c.cause != Cause::FirewallBlocked),
        "{r:#?}"
    );
    assert_eq!(r.causes.len(), 2, "{r:#?}");
    let eacces = &r.correlations[0];
    assert_eq!((eacces.kind, eacces.entries), ("eacces_unix", 2), "{r:#?}");
    assert!(eacces.explanation.contains("listen.mode"));
    assert_eq!(r.unmatched.count, 0, "{text}");
    assert!(r.consequences.is_empty(), "{r:#?}");

    let access = logs::access::summarise(&[d.join("logs/access.log")], None, &w).unwrap();
    assert_eq!(access.requests, 6);
    assert_eq!(access.by_status.get(&503), Some(&6), "{access:#?}");

    // From the URL alone: discovery finds Apache's ErrorLog.
    let url = format!("http://127.0.0.1:{port}/app/cart");
    let (json, err, code) = triage502(&[
        "logs", "scan", "--url", &url, "--since", "10m", "--format", "json",
    ]);
    assert_eq!(code, 1, "{json}{err}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["discovered"]["logs"][0]["path"],
        d.join("logs/error.log").display().to_string(),
        "{json}"
    );
    assert_eq!(
        v["discovered"]["front"].as_str().unwrap().split(' ').next(),
        Some("apache")
    );
    assert_eq!(v["causes"][0]["cause"], "upstream_refused", "{json}");
    assert_eq!(v["causes"][0]["count"], 4, "{json}");
}
