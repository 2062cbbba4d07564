//! How long discovery's parsers take on a large site, printed as a table.
//!
//! Generates (in a temp dir) an nginx configuration of `SITES` server blocks
//! spread over `SITES` include files, each with several locations and an
//! upstream group, plus an Apache configuration of as many virtual hosts,
//! then times parsing (includes, globs, tokenizing) and routing one URL.
//!
//! Run: `cargo bench --bench discovery_parse` (optional argument: the number
//! of sites, default 500).

#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use triage502::discovery::ServiceMap;
use triage502::discovery::apache;
use triage502::discovery::nginx::{self, route};
use triage502::discovery::source::Limits;

/// Timed runs per row (`cargo bench`); a smoke run under `cargo test`
/// (no `--bench` argument) does 3 runs on 20 sites.
fn runs() -> usize {
    if benching() { 30 } else { 3 }
}

fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn nginx_site(dir: &Path, sites: usize) -> usize {
    std::fs::create_dir_all(dir.join("sites")).unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        "user www-data;\nworker_processes auto;\nerror_log /var/log/nginx/error.log;\nevents { worker_connections 1024; }\nhttp {\n    log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n                    '$status $body_bytes_sent \"$http_referer\" $upstream_addr';\n    access_log /var/log/nginx/access.log main;\n    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n    include sites/*.conf;\n}\n",
    )
    .unwrap();
    let mut bytes = 0;
    for i in 0..sites {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"# site {i}: generated
upstream app{i} {{
    server 10.0.{a}.{b}:8080 max_fails=3 fail_timeout=10s;
    server 10.0.{a}.{b}:8081 backup;
    keepalive 16;
}}
server {{
    listen 80;
    listen [::]:80;
    server_name site{i}.example.com www.site{i}.example.com;
    root /srv/www/site{i}/public;
    index index.php index.html;
    access_log /var/log/nginx/site{i}.access.log main;
    error_log /var/log/nginx/site{i}.error.log warn;
    client_max_body_size 64m;
    location = /favicon.ico {{ access_log off; log_not_found off; }}
    location ^~ /static/ {{ expires 30d; add_header Cache-Control "public, max-age=2592000"; }}
    location / {{
        try_files $uri $uri/ /index.php?$args;
    }}
    location ~* \.(?:css|js|png|jpe?g|gif|svg|woff2?)$ {{ expires 7d; }}
    location ~ \.php$ {{
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_pass unix:/run/php/site{i}.sock;
        fastcgi_read_timeout 120s;
        fastcgi_buffer_size 32k;
        fastcgi_buffers 16 16k;
    }}
    location /api/ {{
        proxy_pass http://app{i};
        proxy_set_header Host $host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 30s;
        if ($request_method = OPTIONS) {{ return 204; }}
    }}
}}
"#,
            a = i / 250,
            b = i % 250
        );
        bytes += s.len();
        std::fs::write(dir.join(format!("sites/{i:04}.conf")), s).unwrap();
    }
    std::fs::write(
        dir.join("fastcgi_params"),
        "fastcgi_param QUERY_STRING $query_string;\nfastcgi_param REQUEST_METHOD $request_method;\nfastcgi_param CONTENT_TYPE $content_type;\n",
    )
    .unwrap();
    bytes
}

fn apache_site(dir: &Path, sites: usize) -> usize {
    std::fs::create_dir_all(dir.join("sites")).unwrap();
    std::fs::write(
        dir.join("apache2.conf"),
        "User www-data\nGroup www-data\nLoadModule proxy_module modules/mod_proxy.so\nErrorLog /var/log/apache2/error.log\nLogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\n<IfModule proxy_module>\n    ProxyTimeout 60\n</IfModule>\nIncludeOptional sites/*.conf\n",
    )
    .unwrap();
    let mut bytes = 0;
    for i in 0..sites {
        let s = format!(
            "<VirtualHost *:80>\n    ServerName site{i}.example.com\n    ServerAlias *.site{i}.example.com\n    DocumentRoot /srv/www/site{i}\n    ErrorLog /var/log/apache2/site{i}-error.log\n    CustomLog /var/log/apache2/site{i}-access.log common\n    ProxyPass /api/ http://127.0.0.1:{port}/ timeout=30\n    <FilesMatch \\.php$>\n        SetHandler \"proxy:unix:/run/php/site{i}.sock|fcgi://localhost\"\n    </FilesMatch>\n    <Location /admin>\n        Require ip 10.0.0.0/8\n    </Location>\n</VirtualHost>\n",
            port = 8000 + i
        );
        bytes += s.len();
        std::fs::write(dir.join(format!("sites/{i:04}.conf")), s).unwrap();
    }
    bytes
}

/// Run `f` [`runs`] times after one warm-up; (min, median, max).
fn time(mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    f(); // warm the page cache
    let runs = runs();
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[0], v[runs / 2], v[runs - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let sites: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching() { 500 } else { 20 });
    let dir = tempfile::tempdir().unwrap();
    let ng = dir.path().join("nginx");
    let ap = dir.path().join("apache");
    let ng_bytes = nginx_site(&ng, sites);
    let ap_bytes = apache_site(&ap, sites);
    let conf = ng.join("nginx.conf");

    let cfg = nginx::parse(&conf, &ng, None, Limits::default()).unwrap();
    let servers = cfg.http().unwrap().all("server").count();
    assert_eq!(servers, sites);
    let nginx_parse = time(|| {
        let c = nginx::parse(&conf, &ng, None, Limits::default()).unwrap();
        assert_eq!(c.files.len(), 2 * sites + 1);
    });
    // The same text in memory (includes inlined): parsing without file I/O.
    let mut text = String::from("http {\n");
    for i in 0..sites {
        let site = std::fs::read_to_string(ng.join(format!("sites/{i:04}.conf"))).unwrap();
        text.push_str(&site.replace(
            "include fastcgi_params;",
            "fastcgi_param QUERY_STRING $query_string;",
        ));
    }
    text.push_str("}\n");
    let nginx_text = time(|| {
        let main = nginx::parse_str(&text, &conf).unwrap();
        assert_eq!(main[0].all("server").count(), sites);
    });
    let host = format!("site{}.example.com", sites / 2);
    let nginx_route = time(|| {
        let mut m = ServiceMap::default();
        let req = route::Request {
            host: &host,
            port: 80,
            path: "/api/users",
            local_ip: Some("127.0.0.1".parse().unwrap()),
        };
        route::map(&cfg, &req, &route::Defaults::default(), &mut m);
        assert_eq!(
            m.upstreams.len(),
            2,
            "{:?} {:?} {:?}",
            m.route,
            m.upstreams,
            m.unknown
        );
    });
    let ap_conf = ap.join("apache2.conf");
    let apache_parse = time(|| {
        let c =
            apache::parse_config(&ap_conf, &ap, &[], BTreeMap::new(), Limits::default()).unwrap();
        assert_eq!(c.main.iter().filter(|d| d.is("VirtualHost")).count(), sites);
    });

    println!(
        "discovery parse benchmark: {sites} sites, {} runs each, warm page cache",
        runs()
    );
    println!("| what | input | min ms | median ms | max ms |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let row = |what: &str, input: String, (a, b, c): (Duration, Duration, Duration)| {
        println!("| {what} | {input} | {} | {} | {} |", ms(a), ms(b), ms(c));
    };
    row(
        "nginx parse (tokenize, includes, glob)",
        format!(
            "{servers} server blocks, {} files read, {} KiB",
            2 * sites + 1,
            ng_bytes / 1024
        ),
        nginx_parse,
    );
    row(
        "nginx parse, same text in memory (no file I/O)",
        format!("{servers} server blocks, {} KiB", text.len() / 1024),
        nginx_text,
    );
    row(
        "nginx route one URL (server, location, upstream, logs)",
        format!("{servers} server blocks"),
        nginx_route,
    );
    row(
        "apache parse (sections, IncludeOptional, IfModule)",
        format!(
            "{sites} virtual hosts in {} files, {} KiB",
            sites + 1,
            ap_bytes / 1024
        ),
        apache_parse,
    );
}
