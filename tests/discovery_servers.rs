//! Discovery against real servers: nginx, apache2, haproxy and php-fpm
//! started from Debian's packages with their own configurations in temp
//! dirs on loopback ports. From the URL alone, `map` must find the config,
//! the route, the upstream, the logs and the worker user.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "discovery_support/servers.rs"]
mod servers;

use std::path::Path;

use serde_json::Value;
use servers::{
    Server, app, free_port, free_port_v6, line_of, map_json, map_text, require, udp, write,
};

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| s(x).to_owned())
        .collect()
}

/// nginx with includes (relative glob), several server blocks, regex and
/// `^~` locations, an upstream group, a php-fpm unix socket, a variable
/// upstream with a resolver, and a server on [::1].
struct NginxSite {
    dir: tempfile::TempDir,
    port: u16,
    port6: u16,
    app_port: u16,
    dead_port: u16,
    _app: std::net::TcpListener,
    _fpm: Server,
    nginx: Server,
}

fn nginx_site() -> NginxSite {
    let dir = servers::tempdir();
    let d = dir.path();
    let (app_l, app_port) = app();
    let backup_port = free_port();
    let dead_port = free_port();
    let port = free_port();
    let port6 = free_port_v6();
    let sock = d.join("php.sock");
    let fpm = servers::php_fpm(d, sock.to_str().unwrap());
    write(
        &d.join("nginx.conf"),
        &format!(
            r#"# main configuration
user www-data;
worker_processes 1;
error_log {d}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format upstreamlog '$remote_addr [$time_local] "$request" $status '
                           'upstream=$upstream_addr us=$upstream_status rt=$request_time';
    access_log {d}/logs/access.log upstreamlog;
    proxy_read_timeout 33s;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=pages:1m;
    include conf.d/*.conf;
}}
"#,
            d = d.display()
        ),
    );
    write(
        &d.join("conf.d/00-upstreams.conf"),
        &format!(
            "upstream app_pool {{\n    server 127.0.0.1:{app_port} max_fails=2 fail_timeout=5s;\n    server 127.0.0.1:{backup_port} backup;\n}}\nmap $http_x_tenant $tenant_backend {{\n    default \"127.0.0.1:{app_port}\";\n    ~^beta \"127.0.0.1:{backup_port}\";\n}}\n"
        ),
    );
    write(
        &d.join("conf.d/10-sites.conf"),
        &format!(
            r#"server {{
    listen 127.0.0.1:{port} default_server;
    server_name _;
    return 404;
}}
server {{
    listen 127.0.0.1:{port};
    server_name shop.localhost *.shop.localhost;
    root {d}/www;
    error_log {d}/logs/shop-error.log;
    access_log {d}/logs/shop-access.log upstreamlog;
    location / {{
        proxy_pass http://app_pool;
        proxy_cache pages;
    }}
    location ~ \.php$ {{
        if ($request_method = POST) {{
            set $post "{{ quoted braces }}";
        }}
        fastcgi_pass unix:{sock};
        fastcgi_read_timeout 90s;
        fastcgi_buffer_size 32k;
        fastcgi_buffers 16 16k;
    }}
    location ^~ /static/ {{
        root {d}/static;
    }}
    location /tenant/ {{
        resolver 127.0.0.1 valid=30s;
        proxy_pass http://$tenant_backend;
    }}
}}
server {{
    listen 127.0.0.1:{port};
    server_name ~^blog\d*\.localhost$;
    location / {{
        proxy_pass http://127.0.0.1:{dead_port};
        proxy_connect_timeout 2s;
    }}
}}
server {{
    listen [::1]:{port6};
    server_name v6.localhost;
    location /api/ {{
        proxy_pass http://127.0.0.1:{app_port}/;
    }}
}}
"#,
            d = d.display(),
            sock = sock.display()
        ),
    );
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let mut n = servers::nginx(d);
    n.wait_tcp(&format!("127.0.0.1:{port}"));
    n.wait_tcp(&format!("[::1]:{port6}"));
    n.wait_children(3); // 1 worker, the cache manager and the cache loader
    NginxSite {
        dir,
        port,
        port6,
        app_port,
        dead_port,
        _app: app_l,
        _fpm: fpm,
        nginx: n,
    }
}

#[test]
fn nginx_route_upstream_group_logs_and_worker_from_the_url_alone() {
    let site = nginx_site();
    let d = site.dir.path();
    let sites = d.join("conf.d/10-sites.conf");
    let (m, code) = map_json(&format!("http://shop.localhost:{}/cart", site.port), &[]);
    assert_eq!(code, 0, "{m:#}");
    assert_eq!(s(&m["front"]["kind"]), "nginx");
    assert_eq!(
        m["front"]["pid"].as_u64().unwrap(),
        u64::from(site.nginx.pid())
    );
    assert_eq!(
        s(&m["front"]["config"]),
        d.join("nginx.conf").to_str().unwrap()
    );
    assert!(s(&m["front"]["version"]).starts_with("nginx/"));
    let sb = &m["route"]["server_block"];
    assert_eq!(s(&sb["file"]), sites.to_str().unwrap());
    assert_eq!(sb["line"].as_u64().unwrap(), 6);
    let loc = &m["route"]["location"];
    assert_eq!(s(&loc["file"]), sites.to_str().unwrap());
    assert_eq!(
        loc["line"].as_u64().unwrap(),
        line_of(&sites, "location / {")
    );
    let ups = m["upstreams"].as_array().unwrap();
    assert_eq!(ups.len(), 2);
    assert_eq!(
        s(&ups[0]["address"]),
        format!("127.0.0.1:{}", site.app_port)
    );
    assert_eq!(s(&ups[0]["kind"]), "tcp");
    assert_eq!(s(&ups[0]["group"]), "app_pool");
    assert!(
        s(&ups[0]["listener"]).starts_with(&format!("{} ", std::process::id())),
        "{}",
        ups[0]
    );
    assert!(strings(&ups[0]["options"]).contains(&"max_fails=2".to_owned()));
    assert!(ups[1]["backup"].as_bool().unwrap());
    assert!(ups[1].get("listener").is_none());
    assert!(s(&ups[1]["listener_note"]).contains("nothing listens"));
    assert_eq!(
        strings(&m["logs"]["error"]),
        vec![format!("{}/logs/shop-error.log", d.display())]
    );
    assert_eq!(
        strings(&m["logs"]["access"]),
        vec![format!("{}/logs/shop-access.log", d.display())]
    );
    assert!(s(&m["logs"]["access_format"]).contains("upstream=$upstream_addr"));
    assert_eq!(s(&m["worker_user"]), "www-data");
    assert_eq!(s(&m["settings"]["proxy_read_timeout"]["value"]), "33s");
    let conf = d.join("nginx.conf");
    assert_eq!(
        s(&m["settings"]["proxy_read_timeout"]["source"]),
        format!(
            "{}:{}",
            conf.display(),
            line_of(&conf, "proxy_read_timeout")
        )
    );
    assert_eq!(
        strings(&m["cache_paths"]),
        vec![format!("{}/cache", d.display())]
    );
    assert_eq!(s(&m["document_root"]), format!("{}/www", d.display()));
    let f = &m["facts"];
    assert_eq!(s(&f["upstream"]), format!("127.0.0.1:{}", site.app_port));
    assert_eq!(s(&f["upstream.group"]), "app_pool");
    assert_eq!(s(&f["upstream.scheme"]), "http");
    assert_eq!(s(&f["gateway_local"]), "yes");
    assert_eq!(
        s(&f["route.location"]),
        format!("{}:{}", sites.display(), line_of(&sites, "location / {"))
    );
}

#[test]
fn nginx_regex_location_to_php_fpm_pool_over_a_unix_socket() {
    let site = nginx_site();
    let d = site.dir.path();
    let (m, code) = map_json(
        &format!("http://www.shop.localhost:{}/index.php?x=1", site.port),
        &[],
    );
    assert_eq!(code, 0, "{m:#}");
    assert_eq!(s(&m["route"]["location"]["text"]), "location ~ \\.php$");
    let sock = d.join("php.sock");
    assert_eq!(
        s(&m["upstreams"][0]["address"]),
        format!("unix:{}", sock.display())
    );
    assert_eq!(s(&m["upstreams"][0]["kind"]), "unix");
    assert!(
        s(&m["upstreams"][0]["listener"]).contains("php-fpm"),
        "{:#}",
        m["upstreams"]
    );
    let f = &m["facts"];
    assert_eq!(s(&f["upstream.socket"]), sock.to_str().unwrap());
    assert_eq!(s(&f["upstream.scheme"]), "fastcgi");
    assert_eq!(
        s(&f["php_fpm.config"]),
        d.join("php-fpm.conf").to_str().unwrap()
    );
    assert_eq!(s(&f["php_fpm.pool"]), "www");
    assert_eq!(
        s(&f["php_fpm.error_log"]),
        format!("{}/logs/php-fpm.log", d.display())
    );
    assert_eq!(s(&f["php_fpm.listen.mode"]), "0660");
    assert_eq!(s(&f["php_fpm.pm.max_children"]), "2");
    assert_eq!(s(&f["settings.fastcgi_read_timeout"]), "90s");
    assert_eq!(s(&f["settings.fastcgi_buffer_size"]), "32k");
    assert!(
        s(&m["sources"]["php_fpm.pool"]).starts_with(d.join("pool.d/www.conf").to_str().unwrap())
    );
}

#[test]
fn nginx_regex_server_name_dead_upstream_and_default_server() {
    let site = nginx_site();
    let (m, _) = map_json(&format!("http://blog7.localhost:{}/", site.port), &[]);
    assert_eq!(
        s(&m["upstreams"][0]["address"]),
        format!("127.0.0.1:{}", site.dead_port)
    );
    assert_eq!(s(&m["facts"]["upstream.listener"]), "");
    assert!(s(&m["upstreams"][0]["listener_note"]).contains("refused"));
    assert_eq!(s(&m["settings"]["proxy_connect_timeout"]["value"]), "2s");
    // The main error_log applies where the server sets none.
    assert_eq!(
        strings(&m["logs"]["error"]),
        vec![format!("{}/logs/error.log", site.dir.path().display())]
    );
    let (m, code) = map_json(&format!("http://127.0.0.1:{}/", site.port), &[]);
    assert_eq!(
        code, 0,
        "the route is mapped even though it has no upstream"
    );
    assert!(
        m["route"]["why"][0]
            .as_str()
            .unwrap()
            .contains("default_server")
    );
    assert!(
        m["unknown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["fact"] == "upstream")
    );
}

#[test]
fn nginx_variable_upstream_with_resolver_and_ipv6_front() {
    let site = nginx_site();
    let (m, _) = map_json(
        &format!("http://shop.localhost:{}/tenant/a", site.port),
        &[],
    );
    assert_eq!(s(&m["upstreams"][0]["kind"]), "name");
    assert_eq!(s(&m["upstreams"][0]["address"]), "$tenant_backend");
    assert_eq!(s(&m["facts"]["resolver"]), "127.0.0.1 valid=30s");
    assert!(s(&m["upstreams"][0]["listener_note"]).contains("resolver 127.0.0.1"));
    let (m, code) = map_json(&format!("http://[::1]:{}/api/x", site.port6), &[]);
    assert_eq!(code, 0, "{m:#}");
    assert_eq!(
        s(&m["target"]["local_endpoint"]),
        format!("[::1]:{}", site.port6)
    );
    assert!(s(&m["front"]["listener"]).contains("[::1]"));
    assert_eq!(
        s(&m["upstreams"][0]["address"]),
        format!("127.0.0.1:{}", site.app_port)
    );
    assert!(m["upstreams"][0]["listener"].is_string());
}

#[test]
fn nginx_text_map_and_overrides() {
    let site = nginx_site();
    let t = map_text(&format!("http://shop.localhost:{}/", site.port));
    assert!(t.contains("client → front nginx (pid"), "{t}");
    assert!(t.contains("→ upstream 127.0.0.1:"), "{t}");
    assert!(t.contains("worker    www-data"), "{t}");
    let (m, _) = map_json(
        &format!("http://shop.localhost:{}/", site.port),
        &[
            ("error_log", "/srv/logs/error.log"),
            ("worker_user", "nginx"),
        ],
    );
    assert_eq!(strings(&m["logs"]["error"]), vec!["/srv/logs/error.log"]);
    assert_eq!(s(&m["facts"]["error_logs"]), "/srv/logs/error.log");
    assert_eq!(s(&m["overridden"]["worker_user"]["discovered"]), "www-data");
    assert_eq!(
        s(&m["overridden"]["error_logs"]["value"]),
        "/srv/logs/error.log"
    );
}

#[test]
fn no_listener_means_the_gateway_is_not_on_this_host() {
    let port = free_port();
    let (m, code) = map_json(&format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!(code, 0);
    assert_eq!(m["gateway_local"], false);
    assert!(
        s(&m["gateway"]).contains("the gateway is not on this host"),
        "{m:#}"
    );
    assert!(
        s(&m["gateway"]).contains("it is down"),
        "a local address: the front may be down"
    );
    let t = map_text(&format!("http://127.0.0.1:{port}/"));
    assert!(t.contains("the gateway is not on this host"), "{t}");
}

#[test]
fn a_broken_config_gives_file_line_not_a_crash() {
    let port = free_port();
    let site = nginx_site();
    let d = site.dir.path();
    // The running nginx's config on disk gets broken after start (an edit in progress).
    write(
        &d.join("conf.d/20-broken.conf"),
        "server {\n    listen 127.0.0.1:1;\n    location / {\n        proxy_pass \"http://x;\n    }\n",
    );
    let (m, code) = map_json(&format!("http://shop.localhost:{}/", site.port), &[]);
    assert_eq!(code, 1);
    let unknown = m["unknown"].as_array().unwrap();
    let route = unknown.iter().find(|u| u["fact"] == "route").unwrap();
    let expected = format!(
        "{}:4:20: unterminated double-quoted string",
        d.join("conf.d/20-broken.conf").display()
    );
    assert!(s(&route["reason"]).contains(&expected), "{route}");
    let _ = port;
    let _ = Path::new("/");
}

/// Apache with Define/${VAR}, IncludeOptional globs, two virtual hosts,
/// ProxyPass, a balancer, <Location>, <FilesMatch> with SetHandler to
/// php-fpm over a unix socket, and an <If> section.
#[test]
fn apache_vhosts_proxypass_balancer_and_php_fpm_handler() {
    let dir = servers::tempdir();
    let d = dir.path();
    let (_app, app_port) = app();
    let backup_port = free_port();
    let port = free_port();
    let sock = d.join("php.sock");
    let _fpm = servers::php_fpm(d, sock.to_str().unwrap());
    let m = "/usr/lib/apache2/modules";
    write(
        &d.join("apache2.conf"),
        &format!(
            r#"ServerRoot {d}
Define LOGDIR {d}/logs
PidFile {d}/run/apache2.pid
DefaultRuntimeDir {d}/run
Mutex file:{d}/run default
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule proxy_module {m}/mod_proxy.so
LoadModule proxy_http_module {m}/mod_proxy_http.so
LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so
LoadModule slotmem_shm_module {m}/mod_slotmem_shm.so
LoadModule proxy_balancer_module {m}/mod_proxy_balancer.so
LoadModule lbmethod_byrequests_module {m}/mod_lbmethod_byrequests.so
LoadModule dir_module {m}/mod_dir.so
User www-data
Group www-data
ServerName localhost
Listen 127.0.0.1:{port}
StartServers 2
Timeout 45
ErrorLog ${{LOGDIR}}/error.log
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{{Referer}}i\" \"%{{User-Agent}}i\"" combined
LogFormat "%h %t \"%r\" %>s %D" timed
CustomLog ${{LOGDIR}}/access.log combined
<IfModule !mod_proxy.c>
    ProxyTimeout 999
</IfModule>
IncludeOptional sites/*.conf
IncludeOptional missing/*.conf
"#,
            d = d.display()
        ),
    );
    write(
        &d.join("sites/10-shop.conf"),
        &format!(
            r#"<VirtualHost 127.0.0.1:{port}>
    ServerName shop.localhost
    ServerAlias *.shop.localhost
    DocumentRoot {d}/www
    DirectoryIndex index.php index.html
    ErrorLog ${{LOGDIR}}/shop-error.log
    CustomLog ${{LOGDIR}}/shop-access.log timed
    ProxyTimeout 7
    ProxyPass /api/ http://127.0.0.1:{app_port}/ timeout=12
    <Proxy balancer://pool>
        BalancerMember http://127.0.0.1:{app_port}
        BalancerMember http://127.0.0.1:{backup_port} status=+H
    </Proxy>
    ProxyPass /lb/ balancer://pool/
    <FilesMatch \.php$>
        SetHandler "proxy:unix:{sock}|fcgi://localhost"
    </FilesMatch>
    <If "%{{QUERY_STRING}} =~ /debug/">
        SetHandler "proxy:fcgi://127.0.0.1:9"
    </If>
</VirtualHost>
"#,
            d = d.display(),
            sock = sock.display()
        ),
    );
    write(
        &d.join("sites/20-blog.conf"),
        &format!(
            "<VirtualHost 127.0.0.1:{port}>\n    ServerName blog.localhost\n    <Location /app>\n        ProxyPass http://127.0.0.1:{backup_port}/\n    </Location>\n</VirtualHost>\n"
        ),
    );
    write(&d.join("www/index.php"), "<?php echo 'ok';\n");
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::create_dir_all(d.join("run")).unwrap();
    let mut a = servers::apache2(d);
    a.wait_tcp(&format!("127.0.0.1:{port}"));
    a.wait_children(2); // StartServers 2
    let shop = d.join("sites/10-shop.conf");

    let (m, code) = map_json(&format!("http://shop.localhost:{port}/api/orders"), &[]);
    assert_eq!(code, 0, "{m:#}");
    assert_eq!(s(&m["front"]["kind"]), "apache");
    assert_eq!(m["front"]["pid"].as_u64().unwrap(), u64::from(a.pid()));
    assert_eq!(
        s(&m["front"]["config"]),
        d.join("apache2.conf").to_str().unwrap()
    );
    assert!(s(&m["front"]["version"]).starts_with("Apache/2.4"));
    assert_eq!(
        s(&m["route"]["server_block"]["file"]),
        shop.to_str().unwrap()
    );
    assert_eq!(m["route"]["server_block"]["line"], 1);
    assert_eq!(
        m["route"]["location"]["line"].as_u64().unwrap(),
        line_of(&shop, "ProxyPass /api/")
    );
    assert_eq!(
        s(&m["upstreams"][0]["address"]),
        format!("127.0.0.1:{app_port}")
    );
    assert!(s(&m["upstreams"][0]["listener"]).starts_with(&format!("{} ", std::process::id())));
    assert_eq!(
        strings(&m["logs"]["error"]),
        vec![format!("{}/logs/shop-error.log", d.display())]
    );
    assert_eq!(
        strings(&m["logs"]["access"]),
        vec![format!("{}/logs/shop-access.log", d.display())]
    );
    assert_eq!(s(&m["logs"]["access_format"]), "%h %t \"%r\" %>s %D");
    assert_eq!(s(&m["worker_user"]), "www-data");
    assert_eq!(s(&m["settings"]["proxy_timeout"]["value"]), "7");
    assert_eq!(s(&m["settings"]["proxypass_timeout"]["value"]), "12");
    assert_eq!(s(&m["settings"]["timeout"]["value"]), "45");
    assert!(
        m["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| s(n).contains("<If")),
        "{:#}",
        m["notes"]
    );

    let (m, _) = map_json(&format!("http://x.shop.localhost:{port}/lb/a"), &[]);
    assert_eq!(s(&m["facts"]["upstream.group"]), "balancer://pool");
    assert_eq!(m["upstreams"].as_array().unwrap().len(), 2);
    assert!(m["upstreams"][1]["backup"].as_bool().unwrap());

    let (m, _) = map_json(&format!("http://shop.localhost:{port}/"), &[]);
    assert_eq!(s(&m["route"]["location"]["text"]), "<FilesMatch \\.php$>");
    assert_eq!(
        s(&m["facts"]["upstream"]),
        format!("unix:{}", sock.display())
    );
    assert_eq!(s(&m["facts"]["upstream.scheme"]), "fastcgi");
    assert_eq!(s(&m["facts"]["php_fpm.pool"]), "www");
    assert!(s(&m["facts"]["upstream.listener"]).contains("php-fpm"));

    let (m, _) = map_json(&format!("http://blog.localhost:{port}/app/x"), &[]);
    assert_eq!(s(&m["route"]["location"]["text"]), "<Location /app>");
    assert_eq!(
        s(&m["facts"]["upstream"]),
        format!("127.0.0.1:{backup_port}")
    );
    assert_eq!(s(&m["facts"]["upstream.listener"]), "");
    // The blog vhost has no logs of its own: the main server's apply.
    assert_eq!(
        strings(&m["logs"]["error"]),
        vec![format!("{}/logs/error.log", d.display())]
    );
    assert_eq!(s(&m["settings"]["proxy_timeout"]["value"]), "45");
}

/// HAProxy: frontend ACLs on path and host, backends with check/backup,
/// a unix-socket server, `log global` to a UDP syslog receiver whose open
/// log file is found, the stats socket and timeouts.
#[test]
fn haproxy_acls_backends_syslog_receiver_and_stats_socket() {
    let dir = servers::tempdir();
    let d = dir.path();
    let (_app, app_port) = app();
    let backup_port = free_port();
    let port = free_port();
    let (_syslog, syslog_port) = udp();
    let syslog_file = d.join("haproxy-syslog.log");
    let _held = std::fs::File::create(&syslog_file).unwrap();
    let cfg = d.join("haproxy.cfg");
    write(
        &cfg,
        &format!(
            r"global
    log 127.0.0.1:{syslog_port} local0
    stats socket {d}/admin.sock mode 600 level admin
    user nobody
    group nogroup

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 7s

frontend web
    bind 127.0.0.1:{port}
    acl is_api path_beg /api
    acl is_shop hdr_dom(host) -i shop.localhost
    use_backend api if is_api
    use_backend shop if is_shop !is_api
    default_backend static

backend api
    timeout server 3s
    server a1 127.0.0.1:{app_port} check
    server a2 127.0.0.1:{backup_port} check backup

backend shop
    server s1 unix@{d}/shop.sock

backend static
    server st 127.0.0.1:{backup_port}
",
            d = d.display()
        ),
    );
    let mut h = servers::haproxy(d, &cfg);
    h.wait_tcp(&format!("127.0.0.1:{port}"));
    h.wait_unix(&d.join("admin.sock"));

    let (m, code) = map_json(&format!("http://shop.localhost:{port}/api/v1"), &[]);
    assert_eq!(code, 0, "{m:#}");
    assert_eq!(s(&m["front"]["kind"]), "haproxy");
    assert_eq!(s(&m["front"]["config"]), cfg.to_str().unwrap());
    assert_eq!(
        m["route"]["server_block"]["line"].as_u64().unwrap(),
        line_of(&cfg, "frontend web")
    );
    assert_eq!(
        m["route"]["location"]["line"].as_u64().unwrap(),
        line_of(&cfg, "backend api")
    );
    assert_eq!(s(&m["facts"]["upstream"]), format!("127.0.0.1:{app_port}"));
    assert_eq!(s(&m["facts"]["upstream.group"]), "api");
    assert!(strings(&m["upstreams"][0]["options"]).contains(&"check".to_owned()));
    assert!(m["upstreams"][1]["backup"].as_bool().unwrap());
    assert_eq!(s(&m["settings"]["timeout_server"]["value"]), "3s");
    assert_eq!(s(&m["settings"]["timeout_connect"]["value"]), "2s");
    assert_eq!(s(&m["stats_socket"]), format!("{}/admin.sock", d.display()));
    assert!(
        !m["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| s(n).contains("has no listener")),
        "the renamed stats socket is found: {:#}",
        m["notes"]
    );
    assert_eq!(s(&m["settings"]["timeout_queue"]["value"]), "2s");
    assert_eq!(s(&m["worker_user"]), "nobody");
    let rx = &m["logs"]["syslog"][0];
    assert!(
        s(&rx["receiver"]).starts_with(&format!("{} ", std::process::id())),
        "{rx}"
    );
    assert!(
        strings(&rx["files"]).contains(&syslog_file.display().to_string()),
        "{rx}"
    );
    assert!(strings(&m["logs"]["error"]).contains(&syslog_file.display().to_string()));
    assert_eq!(s(&m["logs"]["access_format_name"]), "httplog");

    let (m, _) = map_json(&format!("http://shop.localhost:{port}/cart"), &[]);
    assert_eq!(
        s(&m["facts"]["upstream"]),
        format!("unix:{}/shop.sock", d.display())
    );
    assert_eq!(s(&m["facts"]["upstream.kind"]), "unix");
    assert!(s(&m["upstreams"][0]["listener_note"]).contains("no socket file"));
    assert_eq!(s(&m["settings"]["timeout_server"]["value"]), "7s");

    let (m, _) = map_json(&format!("http://other.localhost:{port}/"), &[]);
    assert_eq!(s(&m["facts"]["upstream.group"]), "static");
}

/// The `discovery` check kind publishes the playbook's fact names and the
/// deciding config lines as evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_kind_publishes_facts_and_config_evidence() {
    let site = tokio::task::spawn_blocking(nginx_site).await.unwrap();
    let spec: triage502::check::CheckSpec = toml::from_str::<toml::Table>(&format!(
        "c = {{ discovery = {{ url = \"http://shop.localhost:{}/index.php\", overrides = {{ access_log = \"/srv/a.log\" }} }} }}",
        site.port
    ))
    .unwrap()["c"]
        .clone()
        .try_into()
        .unwrap();
    let ctx = triage502::check::CheckContext::last(std::time::Duration::from_secs(3600));
    let r = spec.run(&ctx).await;
    assert_eq!(r.outcome, triage502::check::Outcome::Ok, "{r:#?}");
    let d = site.dir.path();
    for (k, v) in [
        ("front.kind", "nginx".to_owned()),
        ("front.pid", site.nginx.pid().to_string()),
        ("front.config", d.join("nginx.conf").display().to_string()),
        ("upstream", format!("unix:{}/php.sock", d.display())),
        ("upstream.kind", "unix".into()),
        ("upstream.socket", format!("{}/php.sock", d.display())),
        ("upstream.scheme", "fastcgi".into()),
        ("error_logs", format!("{}/logs/shop-error.log", d.display())),
        ("access_logs", "/srv/a.log".into()),
        ("worker_user", "www-data".into()),
        ("worker_group", "www-data".into()),
        ("document_root", format!("{}/www", d.display())),
        ("php_fpm.pool", "www".into()),
        ("gateway_local", "yes".into()),
        ("settings.proxy_read_timeout", "33s".into()),
    ] {
        assert_eq!(r.facts.get(k), Some(&v), "fact {k}");
    }
    assert!(r.facts["front.version"].starts_with("nginx/"));
    assert!(r.facts["route.location"].ends_with(&format!(
        ":{}",
        line_of(&d.join("conf.d/10-sites.conf"), "location ~ \\.php$")
    )));
    let sites = d.join("conf.d/10-sites.conf").display().to_string();
    assert!(
        r.evidence.iter().any(
            |e| e.label == "server block" && e.source.as_deref() == Some(&format!("{sites}:6"))
        )
    );
    assert!(
        r.evidence
            .iter()
            .any(|e| e.label == "upstream" && e.text.starts_with("fastcgi_pass unix:"))
    );
    assert!(
        r.evidence
            .iter()
            .any(|e| e.label == "overridden" && e.text == "access_logs = /srv/a.log")
    );
    for f in r.facts.keys() {
        assert!(
            triage502::check::known_facts().any(|k| k == f)
                || f.starts_with("settings.")
                || f.starts_with("php_fpm.")
                || f == "route.server_block",
            "fact {f} is not documented in the kind's DOC"
        );
    }
}

/// Run by `without_root_the_map_says_what_needs_root` as user nobody:
/// maps `T502_PROBE_URL` and prints the JSON between markers.
#[test]
#[ignore = "run as nobody by without_root_the_map_says_what_needs_root"]
fn probe_map_from_env() {
    let url = std::env::var("T502_PROBE_URL").unwrap();
    let (m, _) = map_json(&url, &[]);
    println!("T502-BEGIN{m}T502-END");
}

/// Not root: the listener is seen in /proc/net/tcp, but nginx's
/// /proc/PID/fd is not readable, so the front is unknown and the map says
/// why ("run as root") instead of guessing.
#[test]
fn without_root_the_map_says_what_needs_root() {
    let runuser = require("runuser");
    let site = nginx_site();
    let me = std::env::current_exe().unwrap();
    let out = std::process::Command::new(runuser)
        .args(["-u", "nobody", "--"])
        .arg(&me)
        .args([
            "--ignored",
            "--exact",
            "probe_map_from_env",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "T502_PROBE_URL",
            format!("http://shop.localhost:{}/", site.port),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json = text
        .split("T502-BEGIN")
        .nth(1)
        .and_then(|t| t.split("T502-END").next())
        .unwrap_or_else(|| {
            panic!(
                "no map printed: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let m: Value = serde_json::from_str(json).unwrap();
    assert_eq!(m["gateway_local"], true, "{m:#}");
    assert!(
        m.get("gateway").is_none(),
        "not 'elsewhere': it is here, just unreadable"
    );
    // The socket's owner is unreadable, and the map says so, with how to see it ...
    let unseen = m["unseen"]
        .as_array()
        .unwrap_or_else(|| panic!("no unseen: {m:#}"));
    let owner = unseen
        .iter()
        .find(|u| s(&u["what"]) == format!("the process that holds tcp 127.0.0.1:{}", site.port))
        .unwrap_or_else(|| panic!("{unseen:#?}"));
    assert!(
        s(&owner["why"]).contains("could not be inspected"),
        "{owner:#}"
    );
    assert!(s(&owner["how"]).contains("root"), "{owner:#}");
    // ... but the front is found from what nobody can read: the master's command line and
    // its configuration, which is the only one listening on the port.
    assert_eq!(s(&m["front"]["kind"]), "nginx", "{m:#}");
    assert_eq!(m["front"]["pid"], site.nginx.pid(), "{m:#}");
    assert!(
        s(&m["sources"]["front.pid"]).starts_with("inferred"),
        "{m:#}"
    );
    assert!(
        m["unknown"]
            .as_array()
            .is_none_or(|u| !u.iter().any(|x| x["fact"] == "front.pid")),
        "{m:#}"
    );
}

/// The URL's host points at another address (a CDN, a load balancer) but
/// the origin listens here on the same port: map it by pinning, and say so.
/// (TEST-NET-2 addresses: nothing is sent anywhere, discovery only reads.)
#[test]
fn a_host_pointing_elsewhere_is_pinned_to_the_local_origin() {
    let site = nginx_site();
    let (m, code) = map_json(&format!("http://198.51.100.7:{}/", site.port), &[]);
    assert_eq!(code, 0, "{m:#}");
    assert_eq!(s(&m["front"]["kind"]), "nginx");
    assert_eq!(
        s(&m["target"]["local_endpoint"]),
        format!("127.0.0.1:{}", site.port)
    );
    assert!(
        m["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| s(n).contains("pinning the host")),
        "{:#}",
        m["notes"]
    );
    let t = map_text(&format!("http://198.51.100.7:{}/", site.port));
    assert!(t.contains("client → (CDN/LB?) → front nginx"), "{t}");
    // Another port with no local listener: the gateway is elsewhere.
    let port = free_port();
    let (m, _) = map_json(&format!("http://198.51.100.7:{port}/"), &[]);
    assert!(
        s(&m["gateway"]).contains("resolves to 198.51.100.7, which is another host"),
        "{m:#}"
    );
}

/// The real binary: `triage502 map URL --format json`, only the URL given.
#[test]
fn the_binary_maps_from_the_url_alone() {
    let site = nginx_site();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args([
            "map",
            &format!("http://shop.localhost:{}/cart", site.port),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = site.dir.path();
    assert_eq!(
        s(&m["front"]["config"]),
        d.join("nginx.conf").to_str().unwrap()
    );
    assert_eq!(
        s(&m["route"]["server_block"]["file"]),
        d.join("conf.d/10-sites.conf").to_str().unwrap()
    );
    assert_eq!(
        s(&m["facts"]["upstream"]),
        format!("127.0.0.1:{}", site.app_port)
    );
    assert_eq!(
        strings(&m["logs"]["error"]),
        vec![format!("{}/logs/shop-error.log", d.display())]
    );
    assert_eq!(s(&m["worker_user"]), "www-data");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["map", "ftp://x/"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "an unusable URL is exit 2");
}
