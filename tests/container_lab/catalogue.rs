//! The container lab's scenarios as data: what each one breaks, what a client on 127.0.0.1 sees,
//! which cause from the taxonomy (`assets/causes.toml`) the diagnosis must name first, and the real
//! log lines that prove it.
//!
//! Invariants: names are unique and each has a setup in `scenarios.rs`; `causes[0]` is the root
//! cause (later ids must also be found); a scenario without causes is healthy; every proof is a
//! regex that must match a line of the named log (`web`: `docker logs` of the nginx container, where
//! nginx writes its error log to stderr; `app`/`php`: `docker logs` of that container; `host`: the
//! error log of the host nginx). Statuses and lines were recorded from real runs on Docker 20.10
//! (tests/container_lab/README.md has the table).

/// A log line that must appear.
#[derive(Debug, Clone, Copy)]
pub struct Proof {
    pub log: &'static str,
    pub pattern: &'static str,
}

/// One container incident.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// What is wrong, in one line.
    pub what: &'static str,
    /// The status a client on 127.0.0.1 gets; `None` means no HTTP response.
    pub status: Option<u16>,
    /// Other statuses the same incident really gives, depending on the instant (a restart loop:
    /// refused or unresolvable gives 502, an address cached while the container is down 504).
    pub also_status: &'static [u16],
    /// Cause ids from the taxonomy, root cause first; empty for a healthy site.
    pub causes: &'static [&'static str],
    /// The role of the container at fault (`app`, `php`, `web`), for the container check.
    pub culprit: Option<&'static str>,
    /// What the Docker detail of the finding must say (a regex over the finding's summary).
    pub detail: Option<&'static str>,
    pub proof: &'static [Proof],
}

const fn p(log: &'static str, pattern: &'static str) -> Proof {
    Proof { log, pattern }
}

const REFUSED: &str = r#"\[error\] \d+#\d+: \*\d+ connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: [\d.]+, .*upstream: "http://10\.[\d.]+:3000/""#;

/// Every scenario, in the order of the README table.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "healthy",
        what: "nginx container -> app container on a user network (control)",
        status: Some(200),
        also_status: &[],
        causes: &[],
        culprit: None,
        detail: None,
        proof: &[p(
            "web",
            r#""GET / HTTP/1\.1" 200 \d+ .*upstream=10\.[\d.]+:3000 us=200"#,
        )],
    },
    Scenario {
        name: "app_loopback_only",
        what: "the app listens on 127.0.0.1:3000 inside its container; nginx dials its bridge address",
        status: Some(502),
        also_status: &[],
        causes: &["upstream_refused"],
        culprit: Some("app"),
        detail: Some(r"listens only on 127\.0\.0\.1:3000 inside container t502-"),
        proof: &[p("web", REFUSED)],
    },
    Scenario {
        name: "stale_address",
        what: "nginx resolved app at start; app recreated after another container took its old address",
        status: Some(502),
        also_status: &[],
        causes: &["upstream_refused"],
        culprit: Some("app"),
        detail: Some(r"created .* ago"),
        proof: &[p("web", REFUSED)],
    },
    Scenario {
        name: "different_networks",
        what: "nginx (resolver 127.0.0.11 + variable) and app on different networks: app does not resolve",
        status: Some(502),
        also_status: &[],
        causes: &["dns_failure"],
        culprit: Some("app"),
        detail: None,
        proof: &[p(
            "web",
            r"\[error\] \d+#\d+: \*\d+ app could not be resolved \(3: Host not found\)",
        )],
    },
    Scenario {
        name: "upstream_exited",
        what: "the app container was stopped; nginx still dials the address it resolved at start",
        // No container has the address any more: no ARP answer, so the connect times out
        // (proxy_connect_timeout 3s here; 60 s by default), and nginx answers 504, not 502.
        status: Some(504),
        also_status: &[],
        causes: &["upstream_refused"],
        culprit: Some("app"),
        detail: Some(r"container t502-\S+ exited \(code 137\)"),
        proof: &[p(
            "web",
            r#"\[error\] \d+#\d+: \*\d+ upstream timed out \(110: Connection timed out\) while connecting to upstream, .*upstream: "http://10\.[\d.]+:3000/""#,
        )],
    },
    Scenario {
        name: "upstream_oom",
        what: "the app allocates on each request under a 64 MiB memory limit: the kernel kills it mid-request",
        status: Some(502),
        also_status: &[],
        causes: &["resource_exhaustion", "upstream_closed"],
        culprit: Some("app"),
        detail: Some(r"OOMKilled"),
        proof: &[p(
            "web",
            r"\[error\] \d+#\d+: \*\d+ upstream prematurely closed connection while reading response header from upstream",
        )],
    },
    Scenario {
        name: "restart_loop",
        what: "the app exits at start (code 3) under --restart always; nginx resolves per request",
        status: Some(502),
        also_status: &[504],
        causes: &["upstream_refused"],
        culprit: Some("app"),
        detail: Some(r"restart"),
        proof: &[p(
            "web",
            // Which one depends on the instant: the name missing, its address refusing or not
            // answering ARP (111, 113) while the container is down between two restarts.
            r"\[error\] \d+#\d+: \*\d+ (app could not be resolved \(\d+: [^)]+\)|connect\(\) failed \((111|113): [^)]+\)|upstream timed out \(110: Connection timed out\) while connecting to upstream)",
        )],
    },
    Scenario {
        name: "unhealthy_app",
        what: "the app answers 500 on /health and / (HEALTHCHECK failing); nginx passes the 500 on",
        status: Some(500),
        also_status: &[],
        causes: &["app_fatal"],
        culprit: Some("app"),
        detail: Some(r"unhealthy"),
        proof: &[p(
            "web",
            r#""GET / HTTP/1\.1" 500 \d+ .*upstream=10\.[\d.]+:3000 us=500"#,
        )],
    },
    Scenario {
        name: "php_fpm",
        what: "nginx container -> php-fpm container (fastcgi_pass php:9000) (control)",
        status: Some(200),
        also_status: &[],
        causes: &[],
        culprit: None,
        detail: None,
        proof: &[p(
            "web",
            r#""GET /index\.php HTTP/1\.1" 200 .*upstream=10\.[\d.]+:9000"#,
        )],
    },
    Scenario {
        name: "php_fpm_wrong_port",
        what: "fastcgi_pass php:9001 while the php-fpm container listens on 9000",
        status: Some(502),
        also_status: &[],
        causes: &["upstream_refused"],
        culprit: Some("php"),
        detail: Some(
            r"nothing listens on port 9001 inside container t502-\S+ \(it listens on [^)]*:9000",
        ),
        proof: &[p(
            "web",
            r#"\[error\] \d+#\d+: \*\d+ connect\(\) failed \(111: Connection refused\) while connecting to upstream, .*upstream: "fastcgi://10\.[\d.]+:9001""#,
        )],
    },
    Scenario {
        name: "host_nginx_published_dead",
        what: "host nginx -> 127.0.0.1:PORT published by a container whose process does not listen",
        // docker-proxy accepts the connection, fails to reach the container, and closes it: nginx
        // sees a close before any header, never a refusal.
        status: Some(502),
        also_status: &[],
        causes: &["upstream_closed"],
        culprit: Some("app"),
        detail: None,
        proof: &[p(
            "host",
            r#"\[error\] \d+#\d+: \*\d+ (upstream prematurely closed connection|recv\(\) failed \(104: Connection reset by peer\)) while reading response header from upstream, .*upstream: "http://127\.0\.0\.1:\d+/""#,
        )],
    },
    Scenario {
        name: "slow_app_504",
        what: "the app answers after 5 s; nginx's proxy_read_timeout is 2 s",
        status: Some(504),
        also_status: &[],
        causes: &["upstream_timeout"],
        culprit: Some("app"),
        detail: None,
        proof: &[p(
            "web",
            r"\[error\] \d+#\d+: \*\d+ upstream timed out \(110: Connection timed out\) while reading response header from upstream",
        )],
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> &'static Scenario {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no container lab scenario {name}"))
}
