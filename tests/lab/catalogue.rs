//! The lab's scenarios as data: what each one breaks, what a client sees, which cause it is, and
//! the real log lines that prove it.
//!
//! Invariants: names are unique and match a directory under `tests/lab/scenarios/`; `causes[0]` is
//! the root cause (later ids must also be found); a scenario without causes is healthy; every
//! proof is a regex that must match a line of the named log after the scenario is provoked.
//! Statuses and log lines were recorded from real runs (`tests/lab/README.md`).

/// The front server a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Nginx,
    Apache,
    Haproxy,
}

/// A log line that must appear: `log` names a file of the running scenario (see
/// `RunningScenario::log_path`), `pattern` is a Rust regex.
#[derive(Debug, Clone, Copy)]
pub struct Proof {
    pub log: &'static str,
    pub pattern: &'static str,
}

/// One incident the lab can produce.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub front: Front,
    /// What is wrong, in one line.
    pub what: &'static str,
    /// The status a client gets for `path`; `None` means no HTTP response at all.
    pub status: Option<u16>,
    /// Cause ids from the taxonomy, root cause first; empty for a healthy site.
    pub causes: &'static [&'static str],
    /// The failing path (the URL given to the diagnosis).
    pub path: &'static str,
    /// Other paths that must answer 200 (page-specific failures).
    pub healthy_paths: &'static [&'static str],
    pub proof: &'static [Proof],
}

const fn p(log: &'static str, pattern: &'static str) -> Proof {
    Proof { log, pattern }
}

/// Every scenario, in the order of the README table.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "nginx_upstream_refused",
        front: Front::Nginx,
        what: "proxy_pass to a port where nothing listens",
        status: Some(502),
        causes: &["upstream_refused"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] \d+#\d+: \*\d+ connect\(\) failed \(111: Connection refused\) while connecting to upstream, .*upstream: .http://127\.0\.0\.1:\d+/",
        )],
    },
    Scenario {
        name: "nginx_socket_missing",
        front: Front::Nginx,
        what: "fastcgi_pass to php7.4-fpm.sock while php-fpm listens on php8.2-fpm.sock",
        status: Some(502),
        causes: &["socket_missing"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[(crit|error)\] .*connect\(\) to unix:\S+/php7\.4-fpm\.sock failed \(2: No such file or directory\) while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_socket_permission",
        front: Front::Nginx,
        what: "php-fpm socket www-data:www-data 0660, nginx workers run as nobody",
        status: Some(502),
        causes: &["socket_permission"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[crit\] .*connect\(\) to unix:\S+/php8\.2-fpm\.sock failed \(13: Permission denied\) while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_upstream_timeout",
        front: Front::Nginx,
        what: "the app answers after 5 s, proxy_read_timeout 1s",
        status: Some(504),
        causes: &["upstream_timeout"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream timed out \(110: Connection timed out\) while reading response header from upstream",
        )],
    },
    Scenario {
        name: "nginx_upstream_closed",
        front: Front::Nginx,
        what: "the app reads the request and closes without answering",
        status: Some(502),
        causes: &["upstream_closed"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream prematurely closed connection while reading response header from upstream",
        )],
    },
    Scenario {
        name: "nginx_invalid_response",
        front: Front::Nginx,
        what: "the app sends a response header line containing a NUL byte",
        status: Some(502),
        causes: &["invalid_response"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream sent invalid header: .* while reading response header from upstream",
        )],
    },
    Scenario {
        name: "nginx_header_too_big",
        front: Front::Nginx,
        what: "the app sends a 16 KiB Set-Cookie, default proxy_buffer_size",
        status: Some(502),
        causes: &["header_too_big"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream sent too big header while reading response header from upstream",
        )],
    },
    Scenario {
        name: "nginx_app_fatal_segv",
        front: Front::Nginx,
        what: "/shop/checkout runs a plugin whose unbounded recursion segfaults the php-fpm worker; / answers 200",
        status: Some(502),
        causes: &["app_fatal"],
        path: "/shop/checkout",
        healthy_paths: &["/", "/static/logo.txt"],
        proof: &[
            p(
                "error",
                r#"\[error\] .*(recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed).* while reading response header from upstream, .*request: "GET /shop/checkout"#,
            ),
            p(
                "php-fpm",
                r"WARNING: \[pool www\] child \d+ exited on signal 11 \(SIGSEGV",
            ),
        ],
    },
    Scenario {
        name: "nginx_app_fatal_undefined",
        front: Front::Nginx,
        what: "/shop/checkout runs a plugin that calls an undefined PHP function; / answers 200",
        status: Some(500),
        causes: &["app_fatal"],
        path: "/shop/checkout",
        healthy_paths: &["/", "/static/logo.txt"],
        proof: &[
            p(
                "error",
                r#"\[error\] .*FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function \w+\(\) in \S+/wp-content/plugins/\S+"#,
            ),
            p(
                "php-fpm",
                r#"child \d+ said into stderr: "NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function"#,
            ),
        ],
    },
    Scenario {
        name: "nginx_plugin_fault",
        front: Front::Nginx,
        what: "a WordPress-like site with six plugins; one (lab-order-notes) segfaults the php-fpm worker on /shop/checkout; / answers 200",
        status: Some(502),
        causes: &["app_fatal"],
        path: "/shop/checkout",
        healthy_paths: &["/", "/static/logo.txt"],
        proof: &[
            p(
                "error",
                r#"\[error\] .*(recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed).* while reading response header from upstream, .*request: "GET /shop/checkout"#,
            ),
            p(
                "php-fpm",
                r"WARNING: \[pool www\] child \d+ exited on signal 11 \(SIGSEGV",
            ),
        ],
    },
    Scenario {
        name: "nginx_upstream_overloaded",
        front: Front::Nginx,
        what: "php-fpm pm=dynamic, max_children=1, listen.backlog=1, saturated by 6 slow clients",
        status: Some(502),
        causes: &["upstream_overloaded"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "error",
                r"\[error\] .*connect\(\) to unix:\S+/php8\.2-fpm\.sock failed \(11: Resource temporarily unavailable\) while connecting to upstream",
            ),
            p(
                "php-fpm",
                r"WARNING: \[pool www\] server reached pm\.max_children setting \(1\), consider raising it",
            ),
        ],
    },
    Scenario {
        name: "nginx_no_live_upstreams",
        front: Front::Nginx,
        what: "an upstream group of two dead servers with max_fails=1",
        status: Some(502),
        causes: &["upstream_refused", "no_live_upstreams"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "error",
                r"\[error\] .*connect\(\) failed \(111: Connection refused\) while connecting to upstream",
            ),
            p(
                "error",
                r"\[error\] .*no live upstreams while connecting to upstream, .*upstream: .http://shop_backend/",
            ),
        ],
    },
    Scenario {
        name: "nginx_dns_failure",
        front: Front::Nginx,
        what: "proxy_pass with a variable; the resolver (a loopback stub) answers NXDOMAIN",
        status: Some(502),
        causes: &["dns_failure"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*app\.shop\.internal could not be resolved \(3: Host not found\)",
        )],
    },
    Scenario {
        name: "nginx_recent_change",
        front: Front::Nginx,
        what: "the site config got a port typo minutes ago (.bak kept) and nginx was reloaded; the app still runs on the old port",
        status: Some(502),
        causes: &["upstream_refused", "recent_change"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p("error", r"\[notice\] \d+#\d+: signal process started"),
            p(
                "error",
                r"\[error\] .*connect\(\) failed \(111: Connection refused\) while connecting to upstream",
            ),
        ],
    },
    Scenario {
        name: "nginx_config_typo_backup",
        front: Front::Nginx,
        what: "nginx.conf was edited minutes ago with a wrong upstream port (nginx.conf.bak holds the good one) and nginx was reloaded",
        status: Some(502),
        causes: &["upstream_refused", "recent_change"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p("error", r"\[notice\] \d+#\d+: signal process started"),
            p(
                "error",
                r"\[error\] .*connect\(\) failed \(111: Connection refused\) while connecting to upstream",
            ),
        ],
    },
    Scenario {
        name: "nginx_cache_fault",
        front: Front::Nginx,
        what: "the proxy cache directory was re-owned root:root 0700 after start",
        status: Some(500),
        causes: &["cache_fault"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r#"\[crit\] .*open\(\) "\S+/cache/\S+" failed \(13: Permission denied\)"#,
        )],
    },
    Scenario {
        name: "nginx_firewall_blocked",
        front: Front::Nginx,
        what: "the app is healthy; iptables DROPs loopback packets to its port",
        status: Some(504),
        causes: &["firewall_blocked"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream timed out \(110: Connection timed out\) while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_firewall_ufw_user_drop",
        front: Front::Nginx,
        what: "the app is healthy; ufw-like user chains (ufw-user-output/-input, jumped to for lo only) DROP its port",
        status: Some(504),
        causes: &["firewall_blocked"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream timed out \(110: Connection timed out\) while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_firewall_nft_output",
        front: Front::Nginx,
        what: "the app is healthy; an nftables inet table's output chain drops its port on lo",
        status: Some(504),
        causes: &["firewall_blocked"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream timed out \(110: Connection timed out\) while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_tls_upstream",
        front: Front::Nginx,
        what: "proxy_pass https:// to a self-signed upstream with proxy_ssl_verify on",
        status: Some(502),
        causes: &["tls_upstream"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*upstream SSL certificate verify error: \(18:self-signed certificate\) while SSL handshaking to upstream",
        )],
    },
    Scenario {
        name: "nginx_resource_exhaustion",
        front: Front::Nginx,
        what: "worker_connections 3: no connection slot is left for the upstream",
        status: Some(500),
        causes: &["resource_exhaustion"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[alert\] .*3 worker_connections are not enough while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_upstream_oom",
        front: Front::Nginx,
        what: "php-fpm runs in a memory cgroup of 96 MiB; every page allocates 512 MiB, so the kernel OOM-kills the worker serving it",
        status: Some(502),
        causes: &["resource_exhaustion"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p("php-fpm", r"child \d+ exited on signal 9 \(SIGKILL\)"),
            p(
                "error",
                r"\[error\] .*(recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed).* while reading response header from upstream",
            ),
        ],
    },
    Scenario {
        name: "nginx_config_error",
        front: Front::Nginx,
        what: "the site config was fixed to the app's new port but has a syntax error: the reload failed and nginx still proxies to the old, dead port",
        status: Some(502),
        causes: &["config_error", "upstream_refused"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "error",
                r"\[emerg\] \d+#\d+: .* in \S+/sites-enabled/shop\.conf:\d+",
            ),
            p(
                "error",
                r"\[error\] .*connect\(\) failed \(111: Connection refused\) while connecting to upstream",
            ),
        ],
    },
    Scenario {
        name: "nginx_ipv6_only_app",
        front: Front::Nginx,
        what: "the app listens on [::1] only while nginx proxies to 127.0.0.1",
        status: Some(502),
        causes: &["upstream_refused"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*connect\(\) failed \(111: Connection refused\) while connecting to upstream",
        )],
    },
    Scenario {
        name: "nginx_frontend_down",
        front: Front::Nginx,
        what: "nginx was stopped: nothing listens at the URL",
        status: None,
        causes: &["frontend_down"],
        path: "/",
        healthy_paths: &[],
        proof: &[],
    },
    Scenario {
        name: "nginx_healthy",
        front: Front::Nginx,
        what: "nothing wrong",
        status: Some(200),
        causes: &[],
        path: "/",
        healthy_paths: &[],
        proof: &[],
    },
    Scenario {
        name: "apache_upstream_refused",
        front: Front::Apache,
        what: "ProxyPass to a port where nothing listens",
        status: Some(503),
        causes: &["upstream_refused"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "error",
                r"\[proxy:error\] .*\(111\)Connection refused: AH00957: (?i:http): attempt to connect to 127\.0\.0\.1:\d+ \(\S+\) failed",
            ),
            p(
                "error",
                r"\[proxy_http:error\] .*AH01114: HTTP: failed to make connection to backend: 127\.0\.0\.1",
            ),
        ],
    },
    Scenario {
        name: "apache_invalid_response",
        front: Front::Apache,
        what: "the app sends a header line containing a NUL byte",
        status: Some(502),
        causes: &["invalid_response"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[proxy_http:warn\] .*\(22\)Invalid argument: \[client \S+\] AH10404: Error reading headers from backend",
        )],
    },
    Scenario {
        name: "apache_upstream_timeout",
        front: Front::Apache,
        what: "the app answers after 5 s, ProxyTimeout 2",
        status: Some(502),
        causes: &["upstream_timeout"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "error",
                r"\[proxy_http:error\] .*\(70007\)The timeout specified has expired: .*AH01102: error reading status line from remote server 127\.0\.0\.1:\d+",
            ),
            p(
                "error",
                r"\[proxy:error\] .*AH00898: Error reading from remote server returned by /",
            ),
        ],
    },
    Scenario {
        name: "apache_socket_missing",
        front: Front::Apache,
        what: "mod_proxy_fcgi to php7.4-fpm.sock while php-fpm listens on php8.2-fpm.sock",
        status: Some(503),
        causes: &["socket_missing"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\(2\)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket \S+/php7\.4-fpm\.sock \(\S+\) failed",
        )],
    },
    Scenario {
        name: "haproxy_upstream_refused",
        front: Front::Haproxy,
        what: "one health-checked server, nothing listening",
        status: Some(503),
        causes: &["upstream_refused"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "haproxy",
                r#"haproxy\[\d+\]: Server be_app/app1 is DOWN, reason: Layer4 connection problem, info: "Connection refused""#,
            ),
            p(
                "haproxy",
                r#"haproxy\[\d+\]: \S+ \[[^\]]+\] fe_shop be_app/\S+ .* 503 \d+ - - SC-- .*"GET / HTTP/1\.1""#,
            ),
        ],
    },
    Scenario {
        name: "haproxy_invalid_response",
        front: Front::Haproxy,
        what: "the app answers bytes that are not HTTP",
        status: Some(502),
        causes: &["invalid_response"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "haproxy",
            r#"haproxy\[\d+\]: \S+ \[[^\]]+\] fe_shop be_app/app1 .* 502 \d+ - - PH-- .*"GET / HTTP/1\.1""#,
        )],
    },
    Scenario {
        name: "haproxy_edge_error",
        front: Front::Haproxy,
        what: "the load balancer's health check asks the origin for /healthz, which a deploy removed: the LB answers 503 while the origin serves / with 200",
        status: Some(503),
        causes: &["edge_error"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "haproxy",
                r#"haproxy\[\d+\]: Server be_origin/origin1 is DOWN, reason: Layer7 wrong status, code: 404, info: "Not Found""#,
            ),
            p(
                "haproxy",
                r#"haproxy\[\d+\]: \S+ \[[^\]]+\] fe_shop be_origin/<NOSRV> .* 503 \d+ - - SC-- .*"GET / HTTP/1\.1""#,
            ),
            p("origin-access", r#""GET /healthz HTTP/1\.[01]" 404 "#),
        ],
    },
    Scenario {
        name: "nginx_cache_fault_tree",
        front: Front::Nginx,
        what: "the whole proxy cache tree was re-owned root:root, owner-only (a careless chown -R and chmod -R go-rwx) after start",
        status: Some(500),
        causes: &["cache_fault"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r#"\[crit\] .*open\(\) "\S+/cache/\S+" failed \(13: Permission denied\)"#,
        )],
    },
    Scenario {
        name: "nginx_dns_no_resolver",
        front: Front::Nginx,
        what: "proxy_pass with a variable and no resolver; the site's system resolver (a loopback stub) knows the name",
        status: Some(502),
        causes: &["dns_failure"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*no resolver defined to resolve app\.shop\.internal",
        )],
    },
    Scenario {
        name: "nginx_keepalive_race",
        front: Front::Nginx,
        what: "upstream keepalive 4 with the default keepalive_timeout 60s; the app gives idle connections up after 1 s, so a request on a connection idle longer fails",
        status: Some(502),
        causes: &["upstream_closed"],
        path: "/",
        healthy_paths: &[],
        proof: &[
            p(
                "error",
                r"\[error\] .*upstream prematurely closed connection while reading response header from upstream",
            ),
            p(
                "app",
                r"beyond the idle timeout of 1000 ms: closing without an answer",
            ),
        ],
    },
    Scenario {
        name: "nginx_dns_typo",
        front: Front::Nginx,
        what: "proxy_pass with a variable set to app.shop.internl (a typo); nginx's resolver (a loopback stub) knows app.shop.internal",
        status: Some(502),
        causes: &["dns_failure"],
        path: "/",
        healthy_paths: &[],
        proof: &[p(
            "error",
            r"\[error\] .*app\.shop\.internl could not be resolved \(3: Host not found\)",
        )],
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}
