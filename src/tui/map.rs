//! The Map screen (`m`): the serving path client → CDN/LB → front server →
//! route → upstream, from what discovery published (facts and the config
//! lines it quoted with `file:line`), each hop marked from the check reports
//! the session has received so far.
//!
//! Invariants: [`build`] is a pure function of the engine's values and trail
//! plus the reports of the running batch already in; nothing is probed or
//! read here. A hop no report speaks about is `unknown`, never guessed
//! healthy. Every state is a mark *and* a word, so monochrome terminals and
//! `--ascii` lose nothing.
//!
//! ```text
//! +- Map: the serving path of URL (Esc back to the walk) ------------+
//! | Failing hop: upstream 127.0.0.1:9000: connection refused         |
//! | • client    GET http://shop/checkout                             |
//! | │           answered by 127.0.0.1:80                             |
//! | - CDN/LB    not seen  no CDN or load-balancer headers            |
//! | ✓ front     healthy   nginx (pid 812, nginx/1.22.1)              |
//! | │           config /etc/nginx/nginx.conf                         |
//! | ✓ route     healthy   /etc/nginx/sites-enabled/shop:14 location /|
//! | ✗ upstream  FAILING   127.0.0.1:9000 (tcp)                       |
//! | Logs  error /var/log/nginx/error.log                             |
//! +------------------------------------------------------------------+
//! ```

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::check::{CheckReport, Outcome};
use crate::engine::{Engine, Record};
use crate::tui::app::App;
use crate::tui::render::{block, theme};
use crate::tui::theme::{Mark, Theme};

/// Key hints of the map.
pub const HINTS: &str = "↑↓ scroll · w watch the URL · ? help · Esc/m back to the walk";

/// How a hop is doing, judged from the reports received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Failing,
    /// Nothing received says either way yet.
    Unknown,
    /// The hop was looked for and is not there (no CDN headers).
    NotSeen,
}

impl Health {
    pub fn word(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Failing => "FAILING",
            Health::Unknown => "unknown",
            Health::NotSeen => "not seen",
        }
    }

    pub fn mark(self) -> Mark {
        match self {
            Health::Healthy => Mark::Ok,
            Health::Failing => Mark::Problem,
            Health::Unknown => Mark::Inconclusive,
            Health::NotSeen => Mark::Skipped,
        }
    }
}

impl From<Outcome> for Health {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => Health::Healthy,
            Outcome::Problem => Health::Failing,
            Outcome::Inconclusive => Health::Unknown,
        }
    }
}

/// One hop of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// `client`, `CDN/LB`, `front`, `route`, `upstream`.
    pub name: &'static str,
    /// What it is (`nginx (pid 812, nginx/1.22.1)`).
    pub what: String,
    /// `None` for the client, which is not judged.
    pub health: Option<Health>,
    /// Lines under the hop: why it has this state, config `file:line`, listener.
    pub details: Vec<String>,
}

/// The whole path and the logs in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    pub url: String,
    pub hops: Vec<Hop>,
    /// (`error` | `access` | `php-fpm`, path).
    pub logs: Vec<(&'static str, String)>,
    /// The discovery check's own summary.
    pub discovery: String,
}

impl PathMap {
    /// The first hop marked failing, walking from the client.
    pub fn first_failing(&self) -> Option<&Hop> {
        self.hops.iter().find(|h| h.health == Some(Health::Failing))
    }
}

/// Headers that show a CDN, cloud load balancer or caching proxy in front.
const EDGE_HEADERS: &[&str] = &[
    "cf-ray",
    "cf-cache-status",
    "x-amz-cf-id",
    "x-amz-cf-pop",
    "x-amzn-trace-id",
    "x-served-by",
    "x-fastly-request-id",
    "fastly-debug-digest",
    "x-akamai-transformed",
    "akamai-grn",
    "x-azure-ref",
    "x-msedge-ref",
    "x-sucuri-id",
    "x-varnish",
    "x-cache",
    "via",
];

/// `Server:` values of edges (the origin's proxy is not one).
const EDGE_SERVERS: &[&str] = &[
    "cloudflare",
    "akamaighost",
    "cloudfront",
    "awselb",
    "gfe",
    "google frontend",
    "sucuri",
    "varnish",
];

/// The CDN/LB signs in an `http` report's headers evidence (at most 4).
pub fn edge_headers(headers: &str) -> Vec<String> {
    headers
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            let edge = EDGE_HEADERS.contains(&k.as_str())
                || (k == "server"
                    && EDGE_SERVERS
                        .iter()
                        .any(|s| v.to_ascii_lowercase().starts_with(s)));
            edge.then(|| format!("{k}: {}", clip(v, 60)))
        })
        .take(4)
        .collect()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

/// The reports received so far, oldest first: the trail's, then those of
/// the running batch that are already in.
fn received<'a>(engine: &'a Engine, running: &[&'a CheckReport]) -> Vec<&'a CheckReport> {
    let mut v: Vec<&CheckReport> = engine
        .trail()
        .iter()
        .filter_map(|s| match &s.record {
            Record::Checks { reports, .. } => Some(reports.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    v.extend(running.iter().copied());
    v
}

fn latest<'a>(reports: &[&'a CheckReport], kinds: &[&str]) -> Option<&'a CheckReport> {
    reports
        .iter()
        .rev()
        .find(|r| kinds.contains(&r.kind.as_str()))
        .copied()
}

/// The map, or `None` while discovery has not run in this session.
pub fn build(engine: &Engine, running: &[&CheckReport]) -> Option<PathMap> {
    let reports = received(engine, running);
    let disc = latest(&reports, &["discovery"])?;
    // The engine's values hold every fact published so far, with the
    // operator's --var pinned over discovered ones; the running batch's
    // reports are not in them yet.
    let mut facts: BTreeMap<String, String> = engine.values().clone();
    for r in running {
        facts.extend(r.facts.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let fact = |k: &str| {
        facts
            .get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let http = latest(&reports, &["http"]);
    let url = fact("url").unwrap_or_default();
    let hops = vec![
        client_hop(&url, http),
        edge_hop(http, &fact),
        front_hop(disc, http, &fact),
        route_hop(disc, latest(&reports, &["config_test"]), &fact),
        upstream_hop(
            disc,
            latest(
                &reports,
                &["tcp", "unix_socket", "upstream_probe", "backends"],
            ),
            &fact,
        ),
    ];
    let mut logs = Vec::new();
    for (kind, key) in [
        ("error", "error_logs"),
        ("access", "access_logs"),
        ("php-fpm", "php_fpm.error_log"),
    ] {
        for p in fact(key).iter().flat_map(|v| v.lines()).take(8) {
            logs.push((kind, p.trim().to_owned()));
        }
    }
    Some(PathMap {
        url,
        hops,
        logs,
        discovery: disc.summary.clone(),
    })
}

fn client_hop(url: &str, http: Option<&CheckReport>) -> Hop {
    let mut details = Vec::new();
    if let Some(remote) = http
        .and_then(|h| h.facts.get("http.remote"))
        .filter(|r| !r.is_empty())
    {
        details.push(format!("answered from {remote}"));
    }
    Hop {
        name: "client",
        what: format!("GET {url}"),
        health: None,
        details,
    }
}

fn edge_hop(http: Option<&CheckReport>, fact: &dyn Fn(&str) -> Option<String>) -> Hop {
    let elsewhere = fact("gateway_local").as_deref() == Some("no");
    let Some(h) = http else {
        return Hop {
            name: "CDN/LB",
            what: "not probed yet".into(),
            health: Some(Health::Unknown),
            details: Vec::new(),
        };
    };
    let headers = h
        .evidence
        .iter()
        .find(|e| e.label == "headers")
        .map(|e| edge_headers(&e.text))
        .unwrap_or_default();
    let generator = h.facts.get("http.generator").map_or("none", String::as_str);
    let is_edge = matches!(
        generator,
        "cloudflare" | "aws_elb" | "gcp_lb" | "fastly" | "akamai" | "azure"
    );
    let status = h.facts.get("http.status").cloned().unwrap_or_default();
    let gateway_error = h.facts.get("http.gateway_error").map(String::as_str) == Some("yes");
    let (what, health) = if is_edge && gateway_error {
        (
            format!("{generator} generated the {status} itself"),
            Health::Failing,
        )
    } else if is_edge || !headers.is_empty() {
        let who = if is_edge { generator } else { "an edge" };
        (format!("{who} in front relays the answer"), Health::Healthy)
    } else if elsewhere {
        (
            "the URL's port is not served on this host: something in front".into(),
            Health::Unknown,
        )
    } else {
        (
            "no CDN or load-balancer headers in the answer".into(),
            Health::NotSeen,
        )
    };
    Hop {
        name: "CDN/LB",
        what,
        health: Some(health),
        details: headers,
    }
}

fn front_hop(
    disc: &CheckReport,
    http: Option<&CheckReport>,
    fact: &dyn Fn(&str) -> Option<String>,
) -> Hop {
    let mut details = Vec::new();
    let what = if let Some(kind) = fact("front.kind") {
        let extra: Vec<String> = [
            fact("front.pid").map(|p| format!("pid {p}")),
            fact("front.version"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if extra.is_empty() {
            kind
        } else {
            format!("{kind} ({})", extra.join(", "))
        }
    } else {
        details.push(format!("discovery: {}", disc.summary));
        "not found on this host".into()
    };
    let health = match http {
        None => {
            details.insert(0, "not probed yet".into());
            Health::Unknown
        }
        Some(h) => {
            let status = h.facts.get("http.status").filter(|s| !s.is_empty());
            let generator = h.facts.get("http.generator").map_or("", String::as_str);
            let own = h.facts.get("http.gateway_error").map(String::as_str) == Some("yes")
                && fact("front.kind").is_some_and(|k| k == generator);
            match status {
                Some(s) if own => {
                    details.insert(
                        0,
                        format!("answers {s} with its own error page: the hop behind it failed"),
                    );
                    Health::Healthy
                }
                Some(s) => {
                    details.insert(0, format!("answers {s}"));
                    Health::Healthy
                }
                None => {
                    details.insert(0, clip(&h.summary, 200));
                    Health::Failing
                }
            }
        }
    };
    if let Some(c) = fact("front.config") {
        details.push(format!("config {c}"));
    }
    Hop {
        name: "front",
        what,
        health: Some(health),
        details,
    }
}

/// Discovery evidence that names the route (nginx, Apache, HAProxy).
const ROUTE_LABELS: &[&str] = &[
    "server block",
    "virtual host",
    "frontend",
    "bind",
    "location",
    "backend choice",
    "backend",
];

/// Discovery evidence that names the upstream.
const UPSTREAM_LABELS: &[&str] = &["upstream", "balancer", "balancer member", "server"];

fn quoted(disc: &CheckReport, labels: &[&str]) -> Vec<String> {
    disc.evidence
        .iter()
        .filter(|e| labels.contains(&e.label.as_str()))
        .take(6)
        .map(|e| match &e.source {
            Some(at) => format!("{} {at}  {}", e.label, clip(e.text.trim(), 100)),
            None => format!("{}  {}", e.label, clip(e.text.trim(), 100)),
        })
        .collect()
}

fn unknown_reason(disc: &CheckReport, fact: &str) -> Option<String> {
    disc.evidence
        .iter()
        .filter(|e| e.label == "unknown")
        .find_map(|e| e.text.strip_prefix(&format!("{fact}: ")).map(str::to_owned))
}

fn route_hop(
    disc: &CheckReport,
    test: Option<&CheckReport>,
    fact: &dyn Fn(&str) -> Option<String>,
) -> Hop {
    let mut details = quoted(disc, ROUTE_LABELS);
    let what = fact("route.location")
        .or_else(|| fact("route.server_block"))
        .map_or_else(|| "not mapped".to_owned(), |at| format!("matched at {at}"));
    if what == "not mapped"
        && let Some(why) = unknown_reason(disc, "route")
    {
        details.push(why);
    }
    let health = if let Some(t) = test {
        details.insert(0, format!("config test: {}", clip(&t.summary, 200)));
        Health::from(t.outcome)
    } else {
        details.insert(0, "config not tested yet".into());
        Health::Unknown
    };
    Hop {
        name: "route",
        what,
        health: Some(health),
        details,
    }
}

fn upstream_hop(
    disc: &CheckReport,
    probe: Option<&CheckReport>,
    fact: &dyn Fn(&str) -> Option<String>,
) -> Hop {
    let mut details = Vec::new();
    let what = if let Some(u) = fact("upstream") {
        fact("upstream.kind").map_or_else(|| u.clone(), |k| format!("{u} ({k})"))
    } else {
        details.extend(unknown_reason(disc, "upstream"));
        "not known".into()
    };
    let mut what = what;
    let health = if let Some(p) = probe {
        details.push(format!("{}: {}", p.kind, clip(&p.summary, 200)));
        Health::from(p.outcome)
    } else {
        details.push("not probed yet".into());
        Health::Unknown
    };
    details.extend(quoted(disc, UPSTREAM_LABELS));
    if fact("upstream").is_some() {
        match fact("upstream.listener") {
            Some(l) => details.push(format!("listener: {l}")),
            None => details.push("discovery saw no listener for it on this host".into()),
        }
    }
    // A balancer's group: one line per server, its state and HAProxy's health check.
    let table = probe
        .filter(|p| p.kind == crate::checks::backends::DOC.kind)
        .map(crate::checks::backends::table)
        .unwrap_or_default();
    // A group is named by its failing servers, not by the first server it lists (which may be a
    // healthy one).
    if !table.is_empty() {
        what = group_what(&table);
    }
    for (addr, state, health) in table.iter().take(16) {
        let health = if health.is_empty() {
            String::new()
        } else {
            format!("  health check {health}")
        };
        details.push(format!("server {addr:<21} {state:<8}{health}"));
    }
    if table.len() > 16 {
        details.push(format!("… {} more servers", table.len() - 16));
    }
    let others: Vec<String> = fact("upstream.addresses")
        .filter(|_| table.is_empty())
        .iter()
        .flat_map(|a| a.lines().map(str::to_owned).collect::<Vec<_>>())
        .skip(1)
        .take(5)
        .collect();
    if !others.is_empty() {
        details.push(format!("also: {}", others.join(", ")));
    }
    if let Some(c) = fact("log.causes") {
        details.push(format!("error log: {}", c.replace('\n', ", ")));
    }
    Hop {
        name: "upstream",
        what,
        health: Some(health),
        details,
    }
}

/// A balancer group as the map names it: its failing servers first (`2 of 4 servers failing:
/// 10.0.0.12:80 refused, …`; a slow server answers, so it is not failing).
fn group_what(table: &[(String, String, String)]) -> String {
    let failing: Vec<String> = table
        .iter()
        .filter(|(_, state, _)| state != "up" && state != "slow")
        .map(|(addr, state, _)| format!("{addr} {state}"))
        .collect();
    let n = table.len();
    if failing.is_empty() {
        return format!(
            "group of {n} server{}, none failing",
            if n == 1 { "" } else { "s" }
        );
    }
    let more = if failing.len() > 3 {
        format!(", … {} more", failing.len() - 3)
    } else {
        String::new()
    };
    let shown: Vec<&str> = failing.iter().take(3).map(String::as_str).collect();
    format!(
        "{} of {n} servers failing: {}{more}",
        failing.len(),
        shown.join(", ")
    )
}

/// The reports of the running batch already in.
fn running_reports(app: &App) -> Vec<&CheckReport> {
    app.running
        .iter()
        .filter_map(|s| s.report.as_ref())
        .collect()
}

/// Word-wrap `text` into rows of `width`, splitting words longer than a row.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut rows = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let cur_n = cur.chars().count();
            let need = if cur_n == 0 {
                word.len()
            } else {
                cur_n + 1 + word.len()
            };
            if need <= width {
                if cur_n > 0 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                break;
            }
            if cur_n > 0 {
                rows.push(std::mem::take(&mut cur));
                continue;
            }
            let rest = word.split_off(width);
            rows.push(word.iter().collect());
            word = rest;
        }
    }
    if !cur.is_empty() || rows.is_empty() {
        rows.push(cur);
    }
    rows
}

/// Columns before the hop's text: mark, name, state word.
const GUTTER: usize = 22;

/// The map as lines for a width (pure: the render and the scroll limit share it).
pub fn lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let t = theme(app);
    let width = usize::from(width).max(GUTTER + 10);
    let Some(engine) = &app.engine else {
        return not_yet(t, "The walk has not started: Enter starts it.");
    };
    let running = running_reports(app);
    let Some(map) = build(engine, &running) else {
        return not_yet(
            t,
            "The map comes from the step that maps the serving path; continue the walk (Enter) until it has run.",
        );
    };
    let mut out = Vec::new();
    let head = match map.first_failing() {
        Some(h) => Line::from(vec![
            Span::styled("First failing hop: ", t.mark_style(Mark::Problem)),
            Span::styled(
                t.text(&format!("{} {}", h.name, h.what)),
                Style::default().add_modifier(Modifier::BOLD),
            ),
        ]),
        None => Line::styled(
            "No hop is marked failing by the checks received so far.",
            t.dim(),
        ),
    };
    out.push(head);
    let rail = if t.ascii { "|" } else { "│" };
    let n = map.hops.len();
    for (i, hop) in map.hops.iter().enumerate() {
        let (mark, style, word) = match hop.health {
            Some(h) => (t.mark(h.mark()), t.mark_style(h.mark()), h.word()),
            None => (t.mark(Mark::Visited), t.mark_style(Mark::Visited), ""),
        };
        let rows = wrap(&t.text(&hop.what), width - GUTTER);
        for (j, row) in rows.into_iter().enumerate() {
            if j == 0 {
                out.push(Line::from(vec![
                    Span::styled(format!("{mark} "), style),
                    Span::styled(
                        format!("{:<10}", hop.name),
                        Style::default().add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(format!("{word:<10}"), style),
                    Span::raw(row),
                ]));
            } else {
                out.push(Line::raw(format!("{rail}{}{row}", " ".repeat(GUTTER - 1))));
            }
        }
        let last = i + 1 == n;
        for d in &hop.details {
            for row in wrap(&t.text(d), width - GUTTER) {
                let lead = if last { " " } else { rail };
                out.push(Line::from(vec![
                    Span::raw(format!("{lead}{}", " ".repeat(GUTTER - 1))),
                    Span::styled(row, t.dim()),
                ]));
            }
        }
    }
    for l in crate::tui::hop::map_lines(app) {
        for row in wrap(&t.text(&l), width) {
            out.push(Line::styled(row, t.title()));
        }
    }
    if !map.logs.is_empty() {
        out.push(Line::styled("Logs", t.title()));
        for (kind, path) in &map.logs {
            for (j, row) in wrap(&t.text(path), width - 10).into_iter().enumerate() {
                let k = if j == 0 { *kind } else { "" };
                out.push(Line::raw(format!("  {k:<8}{row}")));
            }
        }
    }
    out.push(Line::styled(
        format!("Discovery: {}", t.text(&map.discovery)),
        t.dim(),
    ));
    out
}

fn not_yet(t: Theme, why: &str) -> Vec<Line<'static>> {
    vec![
        Line::styled(
            "Discovery has not run yet: the serving path is not known.",
            t.mark_style(Mark::Inconclusive),
        ),
        Line::raw(why.to_owned()),
        Line::raw(""),
        Line::styled("Esc or m goes back to the walk.", t.dim()),
    ]
}

/// The map over the body, scrollable.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    frame.render_widget(Clear, area);
    let arrow = if t.ascii { "->" } else { "→" };
    let title = format!(
        " Map: client {arrow} CDN/LB {arrow} front {arrow} route {arrow} upstream (Esc closes) "
    );
    let b = block(t, title);
    let inner = b.inner(area);
    let lines = lines(app, inner.width);
    frame.render_widget(
        // Hop lines come wrapped (to keep their indent); the rest wraps here.
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.overlay_scroll, 0))
            .block(b),
        area,
    );
}

/// How far the map scrolls (its number of lines at a typical width).
pub fn scroll_limit(app: &App) -> usize {
    lines(app, 76).len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_group_is_named_by_its_failing_servers() {
        let row = |a: &str, s: &str| (a.to_owned(), s.to_owned(), String::new());
        let t = vec![
            row("10.0.0.11:80", "up"),
            row("10.0.0.12:80", "refused"),
            row("10.0.0.13:80", "slow"),
            row("10.0.0.14:80", "http_5xx"),
        ];
        assert_eq!(
            super::group_what(&t),
            "2 of 4 servers failing: 10.0.0.12:80 refused, 10.0.0.14:80 http_5xx"
        );
        assert_eq!(
            super::group_what(&t[..1]),
            "group of 1 server, none failing"
        );
        let many: Vec<_> = (0..6)
            .map(|i| row(&format!("10.0.1.{i}:80"), "timeout"))
            .collect();
        assert!(super::group_what(&many).ends_with("10.0.1.2:80 timeout, … 3 more"));
    }

    use super::*;

    #[test]
    fn edge_headers_are_recognised_and_origin_servers_are_not() {
        let h = "server: cloudflare\ncf-ray: 8a1b2c3d4e5f-FRA\ncontent-type: text/html\nvia: 1.1 varnish";
        assert_eq!(
            edge_headers(h),
            vec![
                "server: cloudflare",
                "cf-ray: 8a1b2c3d4e5f-FRA",
                "via: 1.1 varnish"
            ]
        );
        assert!(edge_headers("server: nginx/1.22.1\ncontent-length: 157").is_empty());
    }

    #[test]
    fn wrap_splits_long_words_and_keeps_short_lines() {
        assert_eq!(wrap("a b", 10), vec!["a b"]);
        assert_eq!(wrap("abcdefghijkl", 8), vec!["abcdefgh", "ijkl"]);
        assert_eq!(wrap("aaaa bbbb cccc", 9), vec!["aaaa bbbb", "cccc"]);
    }
}
