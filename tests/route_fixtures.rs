//! `route`: fixture configurations under tests/fixtures/configs/route/ with
//! answers checked by hand against each server's documented matching rules
//! (nginx: listen address, then exact name, longest leading wildcard,
//! longest trailing wildcard, first regex, default_server/first; locations:
//! `=`, longest prefix, `^~`, nested, regexes in order. Apache: ServerName /
//! ServerAlias, else the first vhost; ProxyPass longest match. HAProxy:
//! use_backend in order, else default_backend), and one test that runs a
//! real nginx on loopback and checks the request lands where `route` says.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "discovery_support/servers.rs"]
mod servers;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use triage502::discovery::offline::{self, Config, Explanation, Request, ServerKind};

const DIR: &str = "tests/fixtures/configs/route";

/// One URL through one fixture, and the hand-checked answer.
struct Case {
    fixture: &'static str,
    listen: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    url: &'static str,
    /// Line of the server block / VirtualHost / frontend.
    server: u32,
    /// Line of the location / ProxyPass / backend (`None`: none).
    location: Option<u32>,
    /// Upstream addresses, in order.
    upstreams: &'static [&'static str],
    /// A run-time dependency's `selected` must contain this.
    selected: Option<&'static str>,
}

const fn c(
    fixture: &'static str,
    url: &'static str,
    server: u32,
    location: Option<u32>,
    upstreams: &'static [&'static str],
) -> Case {
    Case {
        fixture,
        listen: None,
        headers: &[],
        url,
        server,
        location,
        upstreams,
        selected: None,
    }
}

const SHOP: &str = "nginx/shop.conf";
const SHOP_APP: &[&str] = &[
    "127.0.0.1:9101",
    "127.0.0.1:9102",
    "127.0.0.1:9103",
    "127.0.0.1:9104",
];
const LISTENS: &str = "nginx/listens.conf";
const RT: &str = "nginx/runtime.conf";
const AP: &str = "apache/vhosts.conf";
const HA: &str = "haproxy/acls.cfg";
const HAMAP: &str = "haproxy/maps.cfg";
const INC: &str = "nginx/includes/nginx.conf";

fn cases() -> Vec<Case> {
    vec![
        // nginx: exact location wins outright; `return` has no upstream.
        c(
            SHOP,
            "http://shop.example.test:8080/health",
            25,
            Some(29),
            &[],
        ),
        // `/health/x` is not `= /health`: `/`, then try_files falls to @app.
        c(
            SHOP,
            "http://shop.example.test:8080/health/x",
            25,
            Some(33),
            SHOP_APP,
        ),
        // ^~ stops the regex search even for .png.
        c(
            SHOP,
            "http://shop.example.test:8080/static/a.png",
            25,
            Some(36),
            &[],
        ),
        c(
            SHOP,
            "http://shop.example.test:8080/static/x.php",
            25,
            Some(36),
            &[],
        ),
        // ~* is case-insensitive; the first matching regex wins over `/`.
        c(
            SHOP,
            "http://shop.example.test:8080/x/a.CSS",
            25,
            Some(39),
            &[],
        ),
        c(
            SHOP,
            "http://shop.example.test:8080/index.php",
            25,
            Some(42),
            &["unix:/run/php/shop.sock"],
        ),
        // Longest prefix, then its nested regex before the server's regexes.
        c(
            SHOP,
            "http://shop.example.test:8080/api/users",
            25,
            Some(45),
            &["127.0.0.1:9301"],
        ),
        c(
            SHOP,
            "http://shop.example.test:8080/api/v2/x",
            25,
            Some(47),
            &["127.0.0.1:9302"],
        ),
        c(
            SHOP,
            "http://shop.example.test:8080/api/v2/a.php",
            25,
            Some(47),
            &["127.0.0.1:9302"],
        ),
        // Percent-decoding and dot segments before matching.
        c(
            SHOP,
            "http://shop.example.test:8080/x/../api/%75sers",
            25,
            Some(45),
            &["127.0.0.1:9301"],
        ),
        // Exact name beats the wildcard that also matches.
        c(
            SHOP,
            "http://www.shop.example.test:8080/api/x",
            25,
            Some(45),
            &["127.0.0.1:9301"],
        ),
        c(
            SHOP,
            "http://other.example.test:8080/",
            55,
            Some(58),
            &["127.0.0.1:9401"],
        ),
        c(
            SHOP,
            "http://deep.other.example.test:8080/x",
            55,
            Some(58),
            &["127.0.0.1:9401"],
        ),
        c(
            SHOP,
            "http://foo.apps.test:8080/",
            60,
            Some(63),
            &["unix:/run/apps.sock"],
        ),
        c(
            SHOP,
            "http://FOO.apps.test:8080/",
            60,
            Some(63),
            &["unix:/run/apps.sock"],
        ),
        // The regex wants letters only: the default_server answers.
        c(SHOP, "http://9.apps.test:8080/", 20, None, &[]),
        c(SHOP, "http://nope.test:8080/", 20, None, &[]),
        // A map on a header: the alternatives, and the one the header picks.
        Case {
            headers: &[("X-Tenant", "beta")],
            selected: Some("127.0.0.1:9202"),
            ..c(
                SHOP,
                "http://shop.example.test:8080/tenant/a",
                25,
                Some(51),
                &["$tenant_pool"],
            )
        },
        Case {
            headers: &[("X-Tenant", "canary-7")],
            selected: Some("http://shop_app"),
            ..c(
                SHOP,
                "http://shop.example.test:8080/tenant/a",
                25,
                Some(51),
                &["$tenant_pool"],
            )
        },
        Case {
            headers: &[("X-Tenant", "gamma")],
            selected: Some("127.0.0.1:9201 (default)"),
            ..c(
                SHOP,
                "http://shop.example.test:8080/tenant/a",
                25,
                Some(51),
                &["$tenant_pool"],
            )
        },
        // Host header instead of the URL's host.
        Case {
            headers: &[("Host", "other.example.test:8080")],
            ..c(
                SHOP,
                "http://127.0.0.1:8080/",
                55,
                Some(58),
                &["127.0.0.1:9401"],
            )
        },
        // listen: the wildcard address, then each explicit one.
        c(LISTENS, "http://site.test/", 5, Some(8), &["10.0.0.1:8001"]),
        c(
            LISTENS,
            "http://unknown.test/",
            5,
            Some(8),
            &["10.0.0.1:8001"],
        ),
        Case {
            listen: Some("127.0.0.2:80"),
            ..c(
                LISTENS,
                "http://site.test/",
                15,
                Some(18),
                &["10.0.0.3:8003"],
            )
        },
        Case {
            listen: Some("127.0.0.2:80"),
            ..c(
                LISTENS,
                "http://unknown.test/",
                10,
                Some(13),
                &["10.0.0.2:8002"],
            )
        },
        Case {
            listen: Some("127.0.0.1:80"),
            ..c(
                LISTENS,
                "http://internal.test/",
                5,
                Some(8),
                &["10.0.0.1:8001"],
            )
        },
        c(
            LISTENS,
            "http://127.0.0.2/",
            10,
            Some(13),
            &["10.0.0.2:8002"],
        ),
        c(
            LISTENS,
            "http://www.foo.test:8443/",
            20,
            Some(23),
            &["10.0.0.4:50051"],
        ),
        c(
            LISTENS,
            "http://example.org:8443/",
            25,
            Some(28),
            &["unix:/run/uwsgi/app.sock"],
        ),
        // A leading wildcard beats a trailing one.
        c(
            LISTENS,
            "http://www.example.org:8443/",
            25,
            Some(28),
            &["unix:/run/uwsgi/app.sock"],
        ),
        // Run time: `if`, Lua, a header variable.
        c(RT, "http://rt.test/cond/x", 5, Some(8), &["127.0.0.1:7001"]),
        c(RT, "http://rt.test/lua/x", 5, Some(14), &["127.0.0.1:7003"]),
        Case {
            headers: &[("X-Backend", "b1.internal")],
            selected: Some("http://b1.internal:8080"),
            ..c(
                RT,
                "http://rt.test/var/x",
                5,
                Some(18),
                &["$http_x_backend:8080"],
            )
        },
        // Includes relative to the main file (a sorted glob); try_files
        // falling back to a URI that a regex location then takes.
        c(
            INC,
            "http://inc.test/v1/x",
            1,
            Some(4),
            &["127.0.0.1:9701", "[::1]:9702", "unix:/run/api.sock"],
        ),
        c(INC, "http://inc.test/blog", 1, Some(9), &["127.0.0.1:9000"]),
        c(
            INC,
            "http://inc.test/a.php",
            1,
            Some(9),
            &["127.0.0.1:9000"],
        ),
        // HAProxy: a multi-line ACL (OR), a run-time map lookup, `listen`.
        c(
            HAMAP,
            "http://a.test/static/x",
            5,
            Some(12),
            &["127.0.0.1:9801"],
        ),
        c(
            HAMAP,
            "http://a.test/x/y.css",
            5,
            Some(12),
            &["127.0.0.1:9801"],
        ),
        c(
            HAMAP,
            "http://127.0.0.1:9000/",
            16,
            Some(16),
            &["127.0.0.1:9803"],
        ),
        // Apache: ServerName, ServerAlias glob, first vhost as default;
        // ProxyPass longest match, `!`, balancer, SetHandler proxy:unix.
        c(
            AP,
            "http://shop.example.test:8080/api/v2/x",
            8,
            Some(12),
            &["127.0.0.1:9502"],
        ),
        c(
            AP,
            "http://shop.example.test:8080/api/x",
            8,
            Some(13),
            &["127.0.0.1:9501"],
        ),
        c(
            AP,
            "http://a.shop.example.test:8080/app/z",
            8,
            Some(14),
            &["127.0.0.1:9511", "127.0.0.1:9512"],
        ),
        c(AP, "http://shop.example.test:8080/static/x", 8, None, &[]),
        c(AP, "http://zzz.test:8080/", 4, Some(6), &["127.0.0.1:9500"]),
        c(
            AP,
            "http://shop.example.test:8080/x.php",
            8,
            Some(19),
            &["unix:/run/php/shop.sock"],
        ),
        // HAProxy: use_backend in order, default_backend; hdr(host) sees
        // the port the client sends (`shop.example.test:8080`).
        c(
            HA,
            "http://x.test:8080/api/1",
            9,
            Some(17),
            &["127.0.0.1:9601", "127.0.0.1:9602"],
        ),
        c(
            HA,
            "http://x.test:8080/admin",
            9,
            Some(23),
            &["127.0.0.1:9604", "unix:/run/site.sock"],
        ),
        c(
            HA,
            "http://shop.example.test:8080/admin/x",
            9,
            Some(23),
            &["127.0.0.1:9604", "unix:/run/site.sock"],
        ),
        Case {
            headers: &[("Host", "shop.example.test")],
            ..c(
                HA,
                "http://x.test:8080/admin/x",
                9,
                Some(23),
                &["127.0.0.1:9604", "unix:/run/site.sock"],
            )
        },
    ]
}

fn kind(fixture: &str) -> ServerKind {
    let text = std::fs::read_to_string(Path::new(DIR).join(fixture)).unwrap();
    offline::detect(&text).unwrap().0
}

fn run(case: &Case) -> Explanation {
    let path = PathBuf::from(DIR).join(case.fixture);
    let cfg = Config::load(&path, kind(case.fixture)).unwrap();
    let headers: Vec<(String, String)> = case
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let req = Request::new(case.url, case.listen, &headers).unwrap();
    offline::explain(&cfg, &req)
}

#[test]
fn fixture_cases_route_where_the_rules_say() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let e = run(case);
        let got_server = e.server_block.as_ref().map(|b| b.line);
        let got_loc = e.location.as_ref().map(|b| b.line);
        let got_up: Vec<&str> = e.upstreams.iter().map(|u| u.address.as_str()).collect();
        let selected: Vec<&str> = e
            .runtime
            .iter()
            .filter_map(|r| r.selected.as_deref())
            .collect();
        let sel_ok = case
            .selected
            .is_none_or(|want| selected.iter().any(|s| s.contains(want)));
        if got_server != Some(case.server)
            || got_loc != case.location
            || got_up != case.upstreams
            || !sel_ok
        {
            failures.push(format!(
                "{} {} (listen {:?}, headers {:?}): server {got_server:?} location {got_loc:?} upstreams {got_up:?} selected {selected:?}; want server {} location {:?} upstreams {:?} selected {:?}\n{:#?}",
                case.fixture, case.url, case.listen, case.headers, case.server, case.location, case.upstreams, case.selected, e.why
            ));
        }
        // Every route says why, and every candidate list marks the chosen one.
        assert!(!e.why.is_empty(), "{} {}: no why", case.fixture, case.url);
        // (Apache: a SetHandler route chooses no ProxyPass rule at all.)
        let chosen = e.location_candidates.iter().filter(|c| c.chosen).count();
        assert!(chosen <= 1, "{} {}", case.fixture, case.url);
        if case.fixture.starts_with("nginx/") && e.location.is_some() {
            assert_eq!(chosen, 1, "{} {}", case.fixture, case.url);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn candidates_say_why_the_others_lost() {
    let e = run(&c(
        SHOP,
        "http://shop.example.test:8080/static/x.php",
        0,
        None,
        &[],
    ));
    let v = |needle: &str| {
        e.location_candidates
            .iter()
            .find(|c| c.block.text.contains(needle))
            .unwrap()
            .verdict
            .clone()
    };
    assert!(
        v("\\.php$").contains("regex not checked"),
        "{}",
        v("\\.php$")
    );
    assert!(v("^~ /static/").contains("`^~`"));
    assert!(v("/api/").contains("does not match"));
    let chosen: Vec<_> = e.server_candidates.iter().filter(|c| c.chosen).collect();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].block.line, 25);
    // The map's alternatives are listed with what each resolves to.
    let e = run(&c(
        SHOP,
        "http://shop.example.test:8080/tenant/a",
        0,
        None,
        &[],
    ));
    let dep = e
        .runtime
        .iter()
        .find(|r| r.what.contains("$tenant_pool"))
        .unwrap();
    assert_eq!(dep.alternatives.len(), 3);
    assert!(
        dep.selected.is_none(),
        "no header given: nothing is selected"
    );
    let canary = dep
        .alternatives
        .iter()
        .find(|a| a.when.contains("canary"))
        .unwrap();
    assert_eq!(canary.targets.len(), 4);
    assert!(canary.targets.iter().any(|t| t.backup));
    assert!(canary.targets.iter().any(|t| t.down));
    assert_eq!(canary.targets[0].weight, Some(3));
    // Without --listen, the explicit address is an alternative.
    let e = run(&c(LISTENS, "http://site.test/", 0, None, &[]));
    let dep = e
        .runtime
        .iter()
        .find(|r| r.what.starts_with("listen"))
        .unwrap();
    assert!(
        dep.alternatives[0].value.contains("listens.conf:15"),
        "{dep:?}"
    );
    // try_files fall-through depends on the files on disk.
    let e = run(&c(SHOP, "http://shop.example.test:8080/blog", 0, None, &[]));
    assert!(e.runtime.iter().any(|r| r.what == "try_files"));
    // `if` shows both outcomes.
    let e = run(&c(RT, "http://rt.test/cond/x", 0, None, &[]));
    let dep = e.runtime.iter().find(|r| r.what.starts_with("if")).unwrap();
    assert_eq!(dep.alternatives[0].targets[0].address, "127.0.0.1:7002");
    assert_eq!(dep.alternatives[1].targets[0].address, "127.0.0.1:7001");
}

#[test]
fn apache_and_haproxy_candidates() {
    let e = run(&c(
        AP,
        "http://shop.example.test:8080/static/x",
        0,
        None,
        &[],
    ));
    assert!(
        e.why.iter().any(|w| w.contains("excludes the path")),
        "{:?}",
        e.why
    );
    assert!(e.location_candidates[1].verdict.contains("earlier rule"));
    let e = run(&c(AP, "http://zzz.test:8080/", 0, None, &[]));
    assert!(
        e.server_candidates[1]
            .verdict
            .contains("do not match zzz.test")
    );
    let e = run(&c(HA, "http://x.test:8080/api/1", 0, None, &[]));
    let v: Vec<&str> = e
        .location_candidates
        .iter()
        .map(|c| c.verdict.as_str())
        .collect();
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[0].contains("does not hold"));
    assert!(v[1].contains("holds: first"));
    assert!(v[2].contains("not used"));
    assert!(e.location_candidates[1].chosen);
}

#[test]
fn haproxy_backend_from_a_map_lookup_lists_every_backend() {
    let e = run(&c(HAMAP, "http://a.test/other", 0, None, &[]));
    let dep = e.runtime.iter().find(|r| r.what.contains("%[")).unwrap();
    let names: Vec<&str> = dep.alternatives.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(names, ["backend static", "backend be_default"]);
    assert!(dep.alternatives[1].when.contains("default"));
    assert_eq!(dep.alternatives[1].targets[0].address, "127.0.0.1:9802");
    // An ACL on a header other than Host: both outcomes, with their servers.
    let e = run(&c(HAMAP, "http://a.test:8081/x", 0, None, &[]));
    assert_eq!(e.upstreams[0].address, "127.0.0.1:9802");
    let dep = e
        .runtime
        .iter()
        .find(|r| r.what.contains("if beta"))
        .unwrap();
    assert_eq!(dep.alternatives[0].targets[0].address, "127.0.0.1:9801");
    assert_eq!(dep.alternatives[1].targets[0].address, "127.0.0.1:9802");
}

#[test]
fn server_kind_is_detected_from_the_file() {
    assert_eq!(kind(SHOP), ServerKind::Nginx);
    assert_eq!(kind(AP), ServerKind::Apache);
    assert_eq!(kind(HA), ServerKind::Haproxy);
}

#[test]
fn cli_text_json_and_exit_codes() {
    let cfg = format!("{DIR}/{SHOP}");
    let (out, _, code) = servers::triage502(&[
        "route",
        "--config",
        &cfg,
        "http://shop.example.test:8080/api/users",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shop.conf:45  location /api/"), "{out}");
    assert!(out.contains("upstream  http 127.0.0.1:9301"), "{out}");
    let (out, _, code) = servers::triage502(&[
        "route",
        "--config",
        &cfg,
        "--format",
        "json",
        "--header",
        "X-Tenant=beta",
        "http://shop.example.test:8080/tenant/x",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["server"], "nginx");
    assert_eq!(v["routes"][0]["location"]["line"], 51);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("assets/route.schema.json").unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(
        validator.is_valid(&v),
        "the JSON does not match assets/route.schema.json"
    );
    // Unusable input: exit 2.
    let (_, _, code) = servers::triage502(&["route", "--config", "/nonexistent.conf", "http://x/"]);
    assert_eq!(code, 2);
    // A file that does not parse: file:line:col, exit 1.
    let dir = servers::tempdir();
    let bad = dir.path().join("bad.conf");
    servers::write(&bad, "http {\n    server {\n        listen 80\n    }\n}\n");
    let (out, _, code) = servers::triage502(&[
        "route",
        "--config",
        bad.to_str().unwrap(),
        "--server",
        "nginx",
        "http://x/",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.conf:"), "{out}");
}

#[test]
fn schema_in_assets_matches_the_code() {
    let pretty = serde_json::to_string_pretty(&offline::schema()).unwrap() + "\n";
    let path = Path::new("assets/route.schema.json");
    if std::env::var_os("TRIAGE502_WRITE_SCHEMAS").is_some() {
        std::fs::write(path, &pretty).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == pretty,
        "{} is out of date: run `TRIAGE502_WRITE_SCHEMAS=1 cargo test --test route_fixtures schema`",
        path.display()
    );
}

/// A loopback upstream that answers every request with its own port, so
/// the body tells which upstream nginx chose.
fn upstream() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(false).unwrap();
    let h = std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if got.starts_with(b"QUIT") {
                break;
            }
            let body = format!("up {port}\n");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, h)
}

/// Request headers of a live case.
type Headers = &'static [(&'static str, &'static str)];

fn get(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn real_nginx_sends_each_request_where_route_says() {
    let dir = servers::tempdir();
    let d = dir.path();
    std::fs::create_dir_all(d.join("www/sub")).unwrap();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    // The index files nginx's `index` looks for (route checks them too).
    servers::write(&d.join("www/index.php"), "");
    servers::write(&d.join("www/sub/index.php"), "");
    let ups: Vec<(u16, std::thread::JoinHandle<()>)> = (0..9).map(|_| upstream()).collect();
    let port = servers::free_port();
    let mut text = std::fs::read_to_string(format!("{DIR}/nginx/live.conf.in")).unwrap();
    text = text.replace("@DIR@", &d.display().to_string());
    text = text.replace("@PORT@", &port.to_string());
    for (i, (p, _)) in ups.iter().enumerate() {
        text = text.replace(&format!("@U{}@", i + 1), &p.to_string());
    }
    let conf = d.join("nginx.conf");
    servers::write(&conf, &text);
    let cfg = Config::load(&conf, ServerKind::Nginx).unwrap();
    let mut nginx = servers::nginx(d);
    nginx.wait_tcp(&format!("127.0.0.1:{port}"));

    // (host, path, headers)
    let requests: &[(&str, &str, Headers)] = &[
        ("shop.test", "/exact", &[]),
        ("shop.test", "/exact/more", &[]),
        ("shop.test", "/", &[]),
        ("shop.test", "/anything", &[]),
        ("shop.test", "/assets/logo.png", &[]),
        ("shop.test", "/assets/x.php", &[]),
        ("shop.test", "/img/logo.PNG", &[]),
        ("shop.test", "/style.css", &[]),
        ("shop.test", "/index.php", &[]),
        ("shop.test", "/api/users", &[]),
        ("shop.test", "/api/v2/users", &[]),
        ("shop.test", "/api/v2/x.php", &[]),
        ("shop.test", "/api/x.php", &[]),
        ("shop.test", "/a/../api/%75sers", &[]),
        ("www.shop.test", "/api/users", &[]),
        ("a.shop.test", "/", &[]),
        ("b.a.shop.test", "/exact", &[]),
        ("api-42.test", "/", &[]),
        ("API-7.test", "/x", &[]),
        ("api-x.test", "/", &[]),
        ("other.test", "/", &[]),
        ("shop.test", "/tenant/a", &[("X-Tenant", "beta-1")]),
        ("shop.test", "/tenant/a", &[("X-Tenant", "stable")]),
        ("shop.test", "/tenant/a", &[]),
        // index: `/` and `/sub/` go to their index.php, then the regex.
        ("ix.test", "/", &[]),
        ("ix.test", "/sub/", &[]),
        ("ix.test", "/a.php", &[]),
        // map: the exact key `2.5` beats the earlier regex `~^2`.
        ("ix.test", "/ver/x", &[("X-Ver", "2.5")]),
        ("ix.test", "/ver/x", &[("X-Ver", "2.1")]),
        ("ix.test", "/ver/x", &[("X-Ver", "1")]),
        ("ix.test", "/n/x", &[]),
        ("ix.test", "/n/deep/y", &[]),
    ];
    let mut failures = Vec::new();
    for (host, path, headers) in requests {
        let url = format!("http://{host}:{port}{path}");
        let hv: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let req = Request::new(&url, Some(&format!("127.0.0.1:{port}")), &hv).unwrap();
        let e = offline::explain(&cfg, &req);
        // What route says: the one upstream, or the one the headers select.
        // A run-time dependency the request does not decide (the header is
        // absent): route lists the alternatives; nginx must pick one of them.
        let open: Vec<String> = e
            .runtime
            .iter()
            .filter(|r| r.selected.is_none() && !r.alternatives.is_empty())
            .flat_map(|r| r.alternatives.iter().flat_map(|a| a.targets.iter()))
            .map(|t| t.address.clone())
            .collect();
        let said: Vec<String> = if let Some(sel) = e.runtime.iter().find_map(|r| r.selected.clone())
        {
            vec![sel]
        } else if !open.is_empty() {
            open
        } else {
            e.upstreams
                .iter()
                .filter(|u| !u.backup && !u.down)
                .map(|u| u.address.clone())
                .collect()
        };
        let resp = get(port, host, path, headers);
        let landed = resp
            .lines()
            .find_map(|l| l.strip_prefix("up "))
            .map(|p| format!("127.0.0.1:{p}"));
        let ok = match &landed {
            Some(l) if headers.is_empty() && said.len() > 1 => said.iter().any(|s| s == l),
            Some(l) => said.len() == 1 && said[0].contains(l.as_str()),
            None => false,
        };
        if !ok {
            failures.push(format!(
                "{url} {headers:?}: nginx sent it to {landed:?}, route says {said:?} ({:?} / {:?})\n{}",
                e.server_block.as_ref().map(|b| b.line),
                e.location.as_ref().map(|b| &b.text),
                resp.lines().next().unwrap_or("")
            ));
        }
    }
    // `map` of the running server and `route` on its file agree.
    for path in [
        "/exact",
        "/anything",
        "/assets/a.png",
        "/x.css",
        "/index.php",
        "/api/users",
        "/api/v2/x",
        "/tenant/a",
    ] {
        let url = format!("http://shop.localhost:{port}{path}");
        let (m, code) = servers::map_json(&url, &[]);
        assert_eq!(code, 0, "{m}");
        let req = Request::new(&url, Some(&format!("127.0.0.1:{port}")), &[]).unwrap();
        let e = offline::explain(&cfg, &req);
        let line = |v: &serde_json::Value| v["line"].as_u64().map(|l| l as u32);
        assert_eq!(
            line(&m["route"]["server_block"]),
            e.server_block.as_ref().map(|b| b.line),
            "{url}"
        );
        assert_eq!(
            line(&m["route"]["location"]),
            e.location.as_ref().map(|b| b.line),
            "{url}"
        );
        let map_up: Vec<&str> = m["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["address"].as_str().unwrap())
            .collect();
        let route_up: Vec<&str> = e.upstreams.iter().map(|u| u.address.as_str()).collect();
        assert_eq!(map_up, route_up, "{url}");
    }
    drop(nginx);
    for (p, h) in ups {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", p)) {
            let _ = s.write_all(b"QUIT\r\n\r\n");
        }
        let _ = h.join();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(requests.len() >= 32);
}

#[test]
fn real_haproxy_sends_each_request_where_route_says() {
    let dir = servers::tempdir();
    let d = dir.path();
    let ups: Vec<(u16, std::thread::JoinHandle<()>)> = (0..5).map(|_| upstream()).collect();
    let port = servers::free_port();
    let mut text = std::fs::read_to_string(format!("{DIR}/haproxy/live.cfg.in")).unwrap();
    text = text.replace("@PORT@", &port.to_string());
    for (i, (p, _)) in ups.iter().enumerate() {
        text = text.replace(&format!("@U{}@", i + 1), &p.to_string());
    }
    let conf = d.join("haproxy.cfg");
    servers::write(&conf, &text);
    let cfg = Config::load(&conf, ServerKind::Haproxy).unwrap();
    let mut haproxy = servers::haproxy(d, &conf);
    haproxy.wait_tcp(&format!("127.0.0.1:{port}"));
    // (host as the client names it, path); the Host header carries the
    // port, as clients send it for a non-default port.
    let requests: &[(&str, &str)] = &[
        ("shop.test", "/admin/users"),
        ("SHOP.test", "/admin"),
        ("shop.test", "/admin/x.php"),
        ("shop.test", "/index.php"),
        ("other.test", "/a/b.php"),
        ("other.test", "/admin"),
        ("api.test", "/anything"),
        ("api.test", "/x.php"),
        ("other.test", "/v2/42"),
        ("other.test", "/v2/abc"),
        ("shop.test", "/"),
        ("shopping.test", "/admin"),
    ];
    let mut failures = Vec::new();
    for (host, path) in requests {
        let url = format!("http://{host}:{port}{path}");
        let req = Request::new(&url, Some(&format!("127.0.0.1:{port}")), &[]).unwrap();
        let e = offline::explain(&cfg, &req);
        let said: Vec<String> = e
            .upstreams
            .iter()
            .filter(|u| !u.backup && !u.down)
            .map(|u| u.address.clone())
            .collect();
        let resp = get(port, &format!("{host}:{port}"), path, &[]);
        let landed = resp
            .lines()
            .find_map(|l| l.strip_prefix("up "))
            .map(|p| format!("127.0.0.1:{p}"));
        if landed.is_none() || said != [landed.clone().unwrap_or_default()] {
            failures.push(format!(
                "{url}: haproxy sent it to {landed:?}, route says {said:?} ({:?})\n{}",
                e.handler.as_ref().map(|b| &b.text),
                resp.lines().next().unwrap_or("")
            ));
        }
    }
    drop(haproxy);
    for (p, h) in ups {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", p)) {
            let _ = s.write_all(b"QUIT\r\n\r\n");
        }
        let _ = h.join();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn real_apache_sends_each_request_where_route_says() {
    let dir = servers::tempdir();
    let d = dir.path();
    for sub in ["run", "logs", "www"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let ups: Vec<(u16, std::thread::JoinHandle<()>)> = (0..5).map(|_| upstream()).collect();
    let port = servers::free_port();
    let mut text = std::fs::read_to_string(format!("{DIR}/apache/live.conf.in")).unwrap();
    text = text.replace("@DIR@", &d.display().to_string());
    text = text.replace("@PORT@", &port.to_string());
    text = text.replace("@M@", "/usr/lib/apache2/modules");
    for (i, (p, _)) in ups.iter().enumerate() {
        text = text.replace(&format!("@U{}@", i + 1), &p.to_string());
    }
    let conf = d.join("apache2.conf");
    servers::write(&conf, &text);
    let cfg = Config::load(&conf, ServerKind::Apache).unwrap();
    let mut apache = servers::apache2(d);
    apache.wait_tcp(&format!("127.0.0.1:{port}"));
    let requests: &[(&str, &str)] = &[
        ("shop.test", "/api/v2/items"),
        ("shop.test", "/api/items"),
        ("shop.test", "/api/x.php"),
        ("shop.test", "/index.php"),
        ("shop.test", "/static/a.css"),
        ("shop.test", "/"),
        ("www.shop.test", "/cart"),
        ("a.shop.test", "/api/v2/"),
        ("SHOP.test", "/api/v2/x"),
        ("other.test", "/api/items"),
        ("shop.test.evil", "/"),
        // mod_macro virtual hosts.
        ("macro-a.test", "/"),
        ("macro-b.test", "/x"),
        // mod_rewrite [P] before ProxyPass, [PT] into ProxyPass, <Location>.
        ("rw.test", "/api/x"),
        ("rw.test", "/legacy/z"),
        ("rw.test", "/app/z"),
        ("rw.test", "/loc/1"),
        ("rw.test", "/locations"),
        ("rw.test", "/"),
    ];
    // 32 nginx + 12 HAProxy + 19 httpd requests: 63 cases confirmed live.
    assert!(requests.len() >= 19);
    let mut failures = Vec::new();
    for (host, path) in requests {
        let url = format!("http://{host}:{port}{path}");
        let req = Request::new(&url, Some(&format!("127.0.0.1:{port}")), &[]).unwrap();
        let e = offline::explain(&cfg, &req);
        let said: Vec<String> = e.upstreams.iter().map(|u| u.address.clone()).collect();
        let resp = get(port, &format!("{host}:{port}"), path, &[]);
        let landed: Vec<String> = resp
            .lines()
            .find_map(|l| l.strip_prefix("up "))
            .map(|p| format!("127.0.0.1:{p}"))
            .into_iter()
            .collect();
        // No upstream: httpd answers itself (the `!` exclusion), and route says so.
        if said != landed {
            failures.push(format!(
                "{url}: httpd sent it to {landed:?}, route says {said:?} ({:?})\n{}",
                e.location.as_ref().map(|b| &b.text),
                resp.lines().next().unwrap_or("")
            ));
        }
    }
    drop(apache);
    for (p, h) in ups {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", p)) {
            let _ = s.write_all(b"QUIT\r\n\r\n");
        }
        let _ = h.join();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every configuration the project keeps (fixtures, lab scenarios, broken
/// ones), whole and cut short at several points, through `route` with a
/// spread of URLs: no panic, and every route found says why.
#[test]
fn every_project_config_is_explained_without_panicking() {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut walk = vec![
        PathBuf::from("tests/fixtures/configs"),
        PathBuf::from("tests/lab/scenarios"),
    ];
    while let Some(d) = walk.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "conf" || x == "cfg" || x == "in")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 30, "{} files", files.len());
    let urls = [
        "http://localhost/",
        "http://shop.localhost:8080/api/x?y=1",
        "https://127.0.0.1/index.php",
        "http://[::1]:8443/a/../b/%2e%2e/c.png",
        "http://x.test:80//static//a.css",
    ];
    let tmp = servers::tempdir();
    let mut explained = 0;
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        let cuts = [
            text.len(),
            text.len() / 2,
            text.len() / 3,
            text.len() * 3 / 4,
        ];
        for (i, cut) in cuts.iter().enumerate() {
            let mut cut = *cut;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let path = if i == 0 {
                f.clone()
            } else {
                let p = tmp.path().join(format!(
                    "cut{i}-{}",
                    f.file_name().unwrap().to_string_lossy()
                ));
                std::fs::write(&p, &text[..cut]).unwrap();
                p
            };
            for server in [
                None,
                Some(ServerKind::Nginx),
                Some(ServerKind::Apache),
                Some(ServerKind::Haproxy),
            ] {
                let args = offline::RouteArgs {
                    config: path.clone(),
                    server,
                    listen: None,
                    headers: vec![("X-Tenant".into(), "beta".into())],
                    format: offline::RouteFormat::Text,
                    urls: urls.iter().map(|u| (*u).to_owned()).collect(),
                };
                let Ok(rep) = offline::report(&args) else {
                    continue;
                };
                let _ = offline::text(&rep);
                for r in &rep.routes {
                    if r.server_block.is_some() {
                        assert!(
                            !r.why.is_empty(),
                            "{}: {} has no why",
                            path.display(),
                            r.url
                        );
                        explained += 1;
                    }
                }
            }
        }
    }
    assert!(explained > 100, "only {explained} routes explained");
}

/// A case written in a fixture file itself, on a comment line:
/// `#> URL server=LINE loc=LINE|- up=ADDR,ADDR|- [H:Name=Value] [listen=ADDR:PORT]
/// [sel=TEXT] [rt=TEXT] [why=TEXT]` (`+` stands for a space in TEXT): the server block's line, the
/// location/handler's line, the upstream addresses in order, and optionally a
/// selected alternative, a run-time dependency (`what` contains TEXT) and a
/// reason that must be given. Each was checked by hand against the server's
/// documented rules (the comment above it in the file says which).
struct FileCase {
    file: PathBuf,
    line: usize,
    url: String,
    server: Option<u32>,
    location: Option<u32>,
    upstreams: Vec<String>,
    headers: Vec<(String, String)>,
    listen: Option<String>,
    selected: Option<String>,
    runtime: Option<String>,
    why: Option<String>,
}

fn file_cases() -> Vec<FileCase> {
    let mut files = Vec::new();
    let mut walk = vec![PathBuf::from(DIR)];
    while let Some(d) = walk.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk.push(p);
            } else if p.extension().is_some_and(|x| x == "conf" || x == "cfg") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, l) in text.lines().enumerate() {
            let Some(rest) = l.trim_start().strip_prefix("#> ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let mut case = FileCase {
                file: f.clone(),
                line: i + 1,
                url: words.next().unwrap().to_owned(),
                server: None,
                location: None,
                upstreams: Vec::new(),
                headers: Vec::new(),
                listen: None,
                selected: None,
                runtime: None,
                why: None,
            };
            for w in words {
                let (k, v) = w
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}:{}: {w}", f.display(), i + 1));
                let line = |v: &str| (v != "-").then(|| v.parse::<u32>().unwrap());
                match k {
                    "server" => case.server = line(v),
                    "loc" => case.location = line(v),
                    "up" if v != "-" => case.upstreams = v.split(',').map(str::to_owned).collect(),
                    "up" => {}
                    "listen" => case.listen = Some(v.to_owned()),
                    "sel" => case.selected = Some(v.replace('+', " ")),
                    "rt" => case.runtime = Some(v.replace('+', " ")),
                    "why" => case.why = Some(v.replace('+', " ")),
                    h if h.starts_with("H:") => {
                        case.headers.push((h[2..].to_owned(), v.to_owned()));
                    }
                    _ => panic!("{}:{}: unknown key {k}", f.display(), i + 1),
                }
            }
            out.push(case);
        }
    }
    out
}

#[test]
fn cases_written_in_the_fixture_files_route_where_the_rules_say() {
    let cases = file_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(&case.file).unwrap();
        let kind = offline::detect(&text)
            .unwrap_or_else(|| panic!("{}: server kind not detected", case.file.display()))
            .0;
        let cfg = match Config::load(&case.file, kind) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!(
                    "{}:{}: does not load: {e}",
                    case.file.display(),
                    case.line
                ));
                continue;
            }
        };
        let req = Request::new(&case.url, case.listen.as_deref(), &case.headers).unwrap();
        let e = offline::explain(&cfg, &req);
        let got_server = e.server_block.as_ref().map(|b| b.line);
        let got_loc = e.location.as_ref().map(|b| b.line);
        let got_up: Vec<&str> = e.upstreams.iter().map(|u| u.address.as_str()).collect();
        let selected: Vec<&str> = e
            .runtime
            .iter()
            .filter_map(|r| r.selected.as_deref())
            .collect();
        let sel_ok = case
            .selected
            .as_ref()
            .is_none_or(|want| selected.iter().any(|s| s.contains(want.as_str())));
        let rt_ok = case
            .runtime
            .as_ref()
            .is_none_or(|want| e.runtime.iter().any(|r| r.what.contains(want.as_str())));
        let why_ok = case.why.as_ref().is_none_or(|want| {
            e.why
                .iter()
                .chain(&e.notes)
                .any(|w| w.contains(want.as_str()))
        });
        if got_server != case.server
            || got_loc != case.location
            || got_up != case.upstreams
            || !sel_ok
            || !rt_ok
            || !why_ok
        {
            failures.push(format!(
                "{}:{} {}: server {got_server:?} location {got_loc:?} upstreams {got_up:?} selected {selected:?}; want server {:?} location {:?} upstreams {:?} selected {:?} runtime {:?} why {:?}\nwhy: {:#?}\nnotes: {:#?}\nruntime: {:?}",
                case.file.display(),
                case.line,
                case.url,
                case.server,
                case.location,
                case.upstreams,
                case.selected,
                case.runtime,
                case.why,
                e.why,
                e.notes,
                e.runtime.iter().map(|r| &r.what).collect::<Vec<_>>()
            ));
        }
        assert!(
            !e.why.is_empty(),
            "{}:{}: no why",
            case.file.display(),
            case.line
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The bar: at least 150 URL cases over at least 40 configurations
/// (the three live ones included).
#[test]
fn fixture_corpus_is_large_enough() {
    let fc = file_cases();
    let mut configs: std::collections::BTreeSet<PathBuf> =
        fc.iter().map(|c| c.file.clone()).collect();
    for c in cases() {
        configs.insert(PathBuf::from(DIR).join(c.fixture));
    }
    for live in [
        "nginx/live.conf.in",
        "haproxy/live.cfg.in",
        "apache/live.conf.in",
    ] {
        configs.insert(PathBuf::from(DIR).join(live));
    }
    let total = fc.len() + cases().len();
    assert!(configs.len() >= 40, "{} configurations", configs.len());
    assert!(total >= 150, "{total} cases");
}

/// Broken configurations: `route` says the file is invalid with
/// file:line (the server would refuse to start), then explains the rest
/// with what it left out, for each server kind.
#[test]
fn a_broken_block_does_not_lose_the_rest_of_the_file() {
    let dir = servers::tempdir();
    // (file, kind, text, URL, error at, skipped count, upstream of the URL)
    let cases: &[(&str, &str, &str, &str, &str, usize, &str)] = &[
        (
            "nginx.conf",
            "nginx",
            "events { }\nhttp {\n    server {\n        listen 80\n    }\n    server {\n        listen 80;\n        server_name ok.test;\n        location / { proxy_pass http://127.0.0.1:9991; }\n    }\n    server {\n        listen 80;\n        server_name open.test;\n        location / { proxy_pass http://127.0.0.1:9992; }\n",
            "http://open.test/x",
            "nginx.conf:4:",
            3,
            "127.0.0.1:9992",
        ),
        (
            "nginx-include.conf",
            "nginx",
            "events { }\nhttp {\n    include missing/*.conf;\n    include /nonexistent/triage502/site.conf;\n    server {\n        listen 80;\n        server_name inc.test;\n        location / { proxy_pass http://127.0.0.1:9993; }\n    }\n}\n",
            "http://inc.test/",
            "nginx-include.conf:4:",
            1,
            "127.0.0.1:9993",
        ),
        (
            "apache2.conf",
            "apache",
            "Listen 80\n<VirtualHost *:80>\n    ServerName a.test\n    ProxyPass / http://127.0.0.1:9994/\n</Location>\n</VirtualHost>\nUse NoSuchMacro x\n<VirtualHost *:80>\n    ServerName b.test\n    ProxyPass / http://127.0.0.1:9995/\n",
            "http://b.test/",
            "apache2.conf:5:",
            3,
            "127.0.0.1:9995",
        ),
        (
            "haproxy.cfg",
            "haproxy",
            "defaults\n    mode http\nfrontend fe\n    bind *:80\n    use_backend be if { path_beg \"/api }\n    default_backend be\nbackend be\n    server s1 127.0.0.1:9996\n",
            "http://h.test/x",
            "haproxy.cfg:5:",
            1,
            "127.0.0.1:9996",
        ),
    ];
    for (name, kind, text, url, at, skipped, up) in cases {
        let f = dir.path().join(name);
        servers::write(&f, text);
        let (out, err, code) = servers::triage502(&[
            "route",
            "--config",
            f.to_str().unwrap(),
            "--server",
            kind,
            "--format",
            "json",
            url,
        ]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let error = json["error"].as_str().unwrap_or("");
        assert!(error.contains(at), "{name}: error {error:?}, want {at}");
        let sk = json["skipped"].as_array().map_or(0, Vec::len);
        assert_eq!(sk, *skipped, "{name}: {:#}", json["skipped"]);
        let got = json["routes"][0]["upstreams"][0]["address"].as_str();
        assert_eq!(got, Some(*up), "{name}: {:#}", json["routes"][0]);
        // The text says the same, and where.
        let (t, _, _) = servers::triage502(&[
            "route",
            "--config",
            f.to_str().unwrap(),
            "--server",
            kind,
            url,
        ]);
        assert!(
            t.contains("would refuse to start") && t.contains("skipped"),
            "{t}"
        );
    }
}
