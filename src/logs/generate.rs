//! A generator of realistic nginx and Apache error and access logs, for
//! benchmarks and the ground-truth test (`examples/gen_logs.rs` is its CLI).
//!
//! Seven days (configurable) of traffic at a rate chosen to reach the
//! requested sizes, with background noise the classifier must ignore
//! (404 `open()` failures, rate limiting, client TLS errors, buffered
//! responses, `client denied`), isolated sporadic upstream timeouts, and a
//! burst of upstream failures in the last minutes:
//! - nginx: the upstream refuses (`connect() failed (111…)`, then
//!   `upstream server temporarily disabled` and `no live upstreams` while the
//!   peer is marked down): every request fails with 502 — site-wide;
//! - Apache: the php-fpm worker resets on `/checkout` only (`AH01067` +
//!   `(104)… AH01075`): 503 on that page — page-specific.
//!
//! The generator records, for the window `[end - window, end]`, exactly what
//! it wrote: entries per cause, onset, top failing paths and scope
//! ([`Truth`]). Output is deterministic for a seed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::time::Zone;

/// Which server's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    Nginx,
    Apache,
}

/// How failures are spread over the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Background noise, sporadic timeouts, and a burst of refusals in the
    /// last 20 minutes at the access log's request rate (about 13% of the
    /// error lines are candidates of failures or negative controls).
    Light,
    /// The same background, and a 30-minute incident ending 5 minutes before
    /// the end at [`Spec::incident_per_min`] failure lines a minute of mixed
    /// causes (timeouts, refusals, premature closes, `no live upstreams`)
    /// from several workers to several upstreams. nginx only.
    Dense,
}

/// Failure lines a minute in the dense profile's incident, for a 1 GiB error log.
pub const DENSE_PER_MIN: f64 = 3500.0;
/// Length of the dense profile's incident.
pub const DENSE_SECS: i64 = 30 * 60;
/// How long before the end the dense incident stops.
pub const DENSE_QUIET_SECS: i64 = 5 * 60;
/// Average bytes of one dense failure line (with its newline), to keep the
/// file on its size budget.
const DENSE_LINE_BYTES: f64 = 330.0;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub flavor: Flavor,
    /// Approximate sizes of the error and access logs.
    pub error_bytes: u64,
    pub access_bytes: u64,
    /// Unix seconds of the last entry.
    pub end: i64,
    pub days: i64,
    /// How long before `end` the burst starts.
    pub burst_secs: i64,
    /// The ground-truth window is `[end - window_secs, end]`.
    pub window_secs: i64,
    pub seed: u64,
    pub profile: Profile,
    /// Failure lines a minute during the dense incident.
    pub incident_per_min: f64,
}

impl Spec {
    pub fn new(flavor: Flavor, error_bytes: u64, access_bytes: u64, end: i64) -> Self {
        Spec {
            flavor,
            error_bytes,
            access_bytes,
            end,
            days: 7,
            burst_secs: 20 * 60,
            window_secs: 3600,
            seed: 502,
            profile: Profile::Light,
            incident_per_min: DENSE_PER_MIN,
        }
    }

    /// The failure-dense profile: [`DENSE_PER_MIN`] failure lines a minute for
    /// a 1 GiB error log, scaled down with smaller sizes (so that small test
    /// logs stay mostly background, as the big one does).
    pub fn dense(error_bytes: u64, access_bytes: u64, end: i64) -> Self {
        let mut s = Spec::new(Flavor::Nginx, error_bytes, access_bytes, end);
        s.profile = Profile::Dense;
        s.incident_per_min = DENSE_PER_MIN * (error_bytes as f64 / f64::from(1u32 << 30)).min(1.0);
        s
    }
}

/// A failing path in the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthPath {
    pub path: String,
    pub count: u64,
    pub share: f64,
}

/// What was written into the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub flavor: Flavor,
    pub window_from: String,
    pub window_to: String,
    /// Primary entries per cause id in the window.
    pub causes: BTreeMap<String, u64>,
    /// Secondary entries that carry their own cause (e.g. `no_live_upstreams`).
    pub secondary: BTreeMap<String, u64>,
    pub requests: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub gateway_errors: u64,
    pub onset: Option<String>,
    pub ongoing: bool,
    pub top_failing_paths: Vec<TruthPath>,
    pub scope: String,
    pub error_log_bytes: u64,
    pub access_log_bytes: u64,
}

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

const PAGES: &[(&str, u32)] = &[
    ("/", 30),
    ("/cart", 8),
    ("/checkout", 4),
    ("/api/products", 10),
    ("/api/cart", 6),
    ("/login", 4),
    ("/search", 6),
    ("/static/app.js", 12),
    ("/static/style.css", 12),
    ("/favicon.ico", 5),
    ("/blog", 3),
    ("/contact", 2),
];
const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/7.88.1",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn pick_path(r: &mut Rng, checkout_boost: bool) -> String {
    if checkout_boost && r.chance(0.2) {
        return "/checkout".into();
    }
    if r.chance(0.15) {
        return format!("/product/{}", r.below(400));
    }
    let total: u32 = PAGES.iter().map(|p| p.1).sum();
    let mut x = r.below(u64::from(total)) as u32;
    for (p, w) in PAGES {
        if x < *w {
            return (*p).to_owned();
        }
        x -= w;
    }
    "/".into()
}

fn ip(r: &mut Rng) -> String {
    format!("203.0.{}.{}", r.below(4) + 113, r.below(250) + 2)
}

struct Out<'a, E: Write, A: Write> {
    zone: Zone,
    err: &'a mut E,
    acc: &'a mut A,
    err_bytes: u64,
    acc_bytes: u64,
    conn: u64,
}

impl<E: Write, A: Write> Out<'_, E, A> {
    fn nginx_time(&self, t: i64) -> String {
        let d = self.zone.civil(t);
        format!(
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    }
    fn apache_time(&self, t: i64, micros: u64) -> String {
        let d = self.zone.civil(t);
        format!(
            "{} {} {:02} {:02}:{:02}:{:02}.{micros:06} {}",
            DAYS[d.weekday().to_monday_zero_offset() as usize],
            MONTHS[d.month() as usize - 1],
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            d.year()
        )
    }
}

/// Access logs are written in UTC with an explicit +0000 offset.
fn clf_time(t: i64) -> String {
    let d = Zone::utc().civil(t);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        d.day(),
        MONTHS[d.month() as usize - 1],
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

impl<E: Write, A: Write> Out<'_, E, A> {
    fn error(&mut self, line: &str) -> io::Result<()> {
        self.err.write_all(line.as_bytes())?;
        self.err.write_all(b"\n")?;
        self.err_bytes += line.len() as u64 + 1;
        Ok(())
    }
    fn access(&mut self, line: &str) -> io::Result<()> {
        self.acc.write_all(line.as_bytes())?;
        self.acc.write_all(b"\n")?;
        self.acc_bytes += line.len() as u64 + 1;
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    causes: BTreeMap<String, u64>,
    secondary: BTreeMap<String, u64>,
    by_status: BTreeMap<u16, u64>,
    paths: BTreeMap<String, (u64, u64)>,
    requests: u64,
    first_burst_error: Option<i64>,
    last_error: Option<i64>,
    newest: Option<i64>,
}

impl Tally {
    /// One request in the window.
    fn request(&mut self, ts: i64, path: &str, status: u16, burst: bool) {
        self.requests += 1;
        *self.by_status.entry(status).or_default() += 1;
        let gw = (502..=504).contains(&status);
        let e = self.paths.entry(path.to_owned()).or_default();
        e.0 += 1;
        e.1 += u64::from(gw);
        self.newest = Some(ts);
        if gw {
            self.last_error = Some(ts);
            if burst && self.first_burst_error.is_none() {
                self.first_burst_error = Some(ts);
            }
        }
    }
}

/// Workers of the dense incident's nginx (its master's children).
const DENSE_WORKERS: u64 = 4;
/// Upstream peers of the dense incident.
const DENSE_PEERS: &[&str] = &[
    "10.0.3.11:8080",
    "10.0.3.12:8080",
    "10.0.3.13:8080",
    "10.0.3.14:8080",
    "10.0.3.15:9000",
];

/// One failure of the dense incident: its error line and its access line.
/// Returns the error-log bytes written.
fn dense_failure<E: Write, A: Write>(
    o: &mut Out<'_, E, A>,
    r: &mut Rng,
    ts: i64,
    pid: u64,
    tally: &mut Tally,
    in_win: bool,
) -> io::Result<u64> {
    let before = o.err_bytes;
    o.conn += 1 + r.below(3);
    let conn = o.conn;
    let worker = pid + 1 + r.below(DENSE_WORKERS);
    let client = ip(r);
    let mut path = pick_path(r, false);
    if r.chance(0.3) {
        path = format!("/api/orders/{}?page={}", r.below(100_000), r.below(9) + 1);
    }
    let method = if r.chance(0.2) { "POST" } else { "GET" };
    let peer = DENSE_PEERS[r.below(DENSE_PEERS.len() as u64) as usize];
    let t0 = o.nginx_time(ts);
    let referrer = if r.chance(0.3) {
        ", referrer: \"https://shop.example.com/cart\""
    } else {
        ""
    };
    let tail = format!(
        "client: {client}, server: shop.example.com, request: \"{method} {path} HTTP/1.1\""
    );
    let x = r.below(100);
    let (line, status, cause, secondary) = match x {
        0..=34 => (
            format!(
                "{t0} [error] {worker}#{worker}: *{conn} upstream timed out (110: Connection timed out) while reading response header from upstream, {tail}, upstream: \"http://{peer}{path}\", host: \"shop.example.com\"{referrer}"
            ),
            504,
            "upstream_timeout",
            false,
        ),
        35..=64 => (
            format!(
                "{t0} [error] {worker}#{worker}: *{conn} connect() failed (111: Connection refused) while connecting to upstream, {tail}, upstream: \"http://{peer}{path}\", host: \"shop.example.com\"{referrer}"
            ),
            502,
            "upstream_refused",
            false,
        ),
        65..=84 => (
            format!(
                "{t0} [error] {worker}#{worker}: *{conn} upstream prematurely closed connection while reading response header from upstream, {tail}, upstream: \"http://{peer}{path}\", host: \"shop.example.com\"{referrer}"
            ),
            502,
            "upstream_closed",
            false,
        ),
        _ => (
            format!(
                "{t0} [error] {worker}#{worker}: *{conn} no live upstreams while connecting to upstream, {tail}, upstream: \"http://app_backend{path}\", host: \"shop.example.com\"{referrer}"
            ),
            502,
            "no_live_upstreams",
            true,
        ),
    };
    o.error(&line)?;
    let ua = UAS[r.below(UAS.len() as u64) as usize];
    o.access(&format!(
        "{client} - - [{}] \"{method} {path} HTTP/1.1\" {status} {} \"https://shop.example.com/\" \"{ua}\"",
        clf_time(ts),
        if status == 504 { 167 } else { 157 }
    ))?;
    if in_win {
        let m = if secondary {
            &mut tally.secondary
        } else {
            &mut tally.causes
        };
        *m.entry(cause.into()).or_default() += 1;
        let page = path.split('?').next().unwrap_or(&path);
        tally.request(ts, page, status, true);
    }
    Ok(o.err_bytes - before)
}

/// Generate both logs; returns the truth for the window.
#[allow(
    clippy::many_single_char_names,
    reason = "r (rng), t (time), o (output) are used on every line"
)]
pub fn generate(spec: &Spec, err: &mut impl Write, acc: &mut impl Write) -> io::Result<Truth> {
    let dense = spec.profile == Profile::Dense;
    if dense && spec.flavor != Flavor::Nginx {
        return Err(io::Error::other("the dense profile writes nginx logs only"));
    }
    let mut r = Rng(spec.seed ^ 0x5eed);
    let start = spec.end - spec.days * 86_400;
    let span = (spec.end - start) as f64;
    // The dense profile has its incident instead of the light burst.
    let burst_start = if dense {
        i64::MAX
    } else {
        spec.end - spec.burst_secs
    };
    let inc_to = spec.end - DENSE_QUIET_SECS;
    let inc_from = inc_to - DENSE_SECS;
    let fail_rate = spec.incident_per_min / 60.0;
    let mut next_fail = if dense && fail_rate > 0.0 {
        inc_from as f64
    } else {
        f64::INFINITY
    };
    // Background keeps its own budget: the incident's lines come on top of
    // an error log shrunk by their expected size.
    let incident_expected = if dense {
        spec.incident_per_min * (DENSE_SECS / 60) as f64 * DENSE_LINE_BYTES
    } else {
        0.0
    };
    let noise_total = (spec.error_bytes as f64 - incident_expected).max(0.0);
    let mut incident_bytes = 0u64;
    let quiet_from = if dense { inc_from } else { burst_start };
    let win_from = spec.end - spec.window_secs;
    let in_win = |t: i64| t >= win_from && t <= spec.end;
    // About 190 bytes per access line.
    let rate = (spec.access_bytes as f64 / 190.0 / span).max(1.0 / 120.0);
    let mut o = Out {
        zone: Zone::system(),
        err,
        acc,
        err_bytes: 0,
        acc_bytes: 0,
        conn: 1000,
    };
    let mut tally = Tally::default();
    let mut t = start as f64;
    let mut next_sporadic = start as f64 + 1800.0;
    let mut disabled_until = i64::MIN;
    let pid = 2201 + r.below(100);
    while t < spec.end as f64 {
        let burst = t >= burst_start as f64;
        let r_now = if burst { rate.max(1.0) } else { rate };
        // Exponential gaps, capped so the burst has no long holes.
        let gap = (-(1.0 - r.unit()).ln() / r_now).min(if burst { 20.0 } else { 3600.0 });
        t += gap;
        let ts = t.floor() as i64;
        if ts > spec.end {
            break;
        }
        // The dense incident's failures up to now, each with its own request.
        while next_fail <= t && next_fail < inc_to as f64 {
            let fts = next_fail.floor() as i64;
            incident_bytes += dense_failure(&mut o, &mut r, fts, pid, &mut tally, in_win(fts))?;
            next_fail += -(1.0 - r.unit()).ln() / fail_rate;
        }
        // Error-log noise keeps the error log on its size budget.
        let budget = (noise_total * (t - start as f64) / span) as u64;
        let mut guard = 0;
        while o.err_bytes - incident_bytes < budget && guard < 10_000 {
            noise(spec.flavor, &mut o, &mut r, ts, pid)?;
            guard += 1;
        }
        let path = pick_path(&mut r, burst && spec.flavor == Flavor::Apache);
        let client = ip(&mut r);
        let ua = UAS[r.below(UAS.len() as u64) as usize];
        o.conn += 1;
        let conn = o.conn;
        let sporadic = !burst && t >= next_sporadic;
        if sporadic {
            next_sporadic = t + 2400.0 + r.unit() * 3000.0;
            if next_sporadic > (quiet_from.saturating_sub(900)) as f64 {
                next_sporadic = f64::INFINITY;
            }
        }
        let (status, size): (u16, u64) = match spec.flavor {
            Flavor::Nginx if burst => {
                if ts < disabled_until {
                    let line = format!(
                        "{} [error] {pid}#{pid}: *{conn} no live upstreams while connecting to upstream, client: {client}, server: shop.example.com, request: \"GET {path} HTTP/1.1\", upstream: \"http://app_backend{path}\", host: \"shop.example.com\"",
                        o.nginx_time(ts)
                    );
                    o.error(&line)?;
                    if in_win(ts) {
                        *tally
                            .secondary
                            .entry("no_live_upstreams".into())
                            .or_default() += 1;
                    }
                } else {
                    let t0 = o.nginx_time(ts);
                    o.error(&format!(
                        "{t0} [error] {pid}#{pid}: *{conn} connect() failed (111: Connection refused) while connecting to upstream, client: {client}, server: shop.example.com, request: \"GET {path} HTTP/1.1\", upstream: \"http://127.0.0.1:8080{path}\", host: \"shop.example.com\""
                    ))?;
                    o.error(&format!(
                        "{t0} [warn] {pid}#{pid}: *{conn} upstream server temporarily disabled while connecting to upstream, client: {client}, server: shop.example.com, request: \"GET {path} HTTP/1.1\", upstream: \"http://127.0.0.1:8080{path}\", host: \"shop.example.com\""
                    ))?;
                    disabled_until = ts + 10;
                    if in_win(ts) {
                        *tally.causes.entry("upstream_refused".into()).or_default() += 1;
                    }
                }
                (502, if ua.contains("Chrome") { 559 } else { 157 })
            }
            Flavor::Apache if burst && path == "/checkout" => {
                let port = 40000 + r.below(20000);
                let tm = o.apache_time(ts, r.below(1_000_000));
                o.error(&format!(
                    "[{tm}] [proxy_fcgi:error] [pid {pid}:tid {}] [client {client}:{port}] AH01067: Failed to read FastCGI header, referer: https://shop.example.com/cart",
                    pid + 1
                ))?;
                o.error(&format!(
                    "[{tm}] [proxy_fcgi:error] [pid {pid}:tid {}] (104)Connection reset by peer: [client {client}:{port}] AH01075: Error dispatching request to : , referer: https://shop.example.com/cart",
                    pid + 1
                ))?;
                if in_win(ts) {
                    *tally.causes.entry("upstream_closed".into()).or_default() += 1;
                }
                (503, 299)
            }
            Flavor::Nginx if sporadic => {
                o.error(&format!(
                    "{} [error] {pid}#{pid}: *{conn} upstream timed out (110: Connection timed out) while reading response header from upstream, client: {client}, server: shop.example.com, request: \"GET {path} HTTP/1.1\", upstream: \"http://127.0.0.1:8080{path}\", host: \"shop.example.com\"",
                    o.nginx_time(ts)
                ))?;
                if in_win(ts) {
                    *tally.causes.entry("upstream_timeout".into()).or_default() += 1;
                }
                (504, if ua.contains("Chrome") { 569 } else { 167 })
            }
            Flavor::Apache if sporadic => {
                let port = 40000 + r.below(20000);
                let tm = o.apache_time(ts, r.below(1_000_000));
                o.error(&format!(
                    "[{tm}] [proxy_http:error] [pid {pid}:tid {}] (70007)The timeout specified has expired: [client {client}:{port}] AH01102: error reading status line from remote server 127.0.0.1:8080",
                    pid + 2
                ))?;
                o.error(&format!(
                    "[{tm}] [proxy:error] [pid {pid}:tid {}] [client {client}:{port}] AH00898: Error reading from remote server returned by {path}",
                    pid + 2
                ))?;
                if in_win(ts) {
                    *tally.causes.entry("upstream_timeout".into()).or_default() += 1;
                }
                (502, 486)
            }
            _ => {
                let x = r.below(1000);
                if path == "/favicon.ico" && x < 300 {
                    (404, 153)
                } else if x < 60 {
                    (304, 0)
                } else if x < 75 {
                    (301, 169)
                } else {
                    (200, 300 + r.below(40_000))
                }
            }
        };
        let line = format!(
            "{client} - - [{}] \"GET {path} HTTP/1.1\" {status} {size} \"https://shop.example.com/\" \"{ua}\"",
            clf_time(ts)
        );
        o.access(&line)?;
        if in_win(ts) {
            tally.request(ts, &path, status, burst);
        }
    }
    o.err.flush()?;
    o.acc.flush()?;
    let gateway_errors: u64 = tally
        .by_status
        .iter()
        .filter(|(s, _)| (502..=504).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let mut failing: Vec<TruthPath> = tally
        .paths
        .iter()
        .filter(|(_, (_, e))| *e > 0)
        .map(|(p, (n, e))| TruthPath {
            path: p.clone(),
            count: *e,
            share: *e as f64 / *n as f64,
        })
        .collect();
    failing.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.path.cmp(&b.path)));
    failing.truncate(10);
    let rfc = super::time::rfc3339;
    Ok(Truth {
        flavor: spec.flavor,
        window_from: rfc(win_from),
        window_to: rfc(spec.end),
        causes: tally.causes,
        secondary: tally.secondary,
        requests: tally.requests,
        by_status: tally.by_status,
        gateway_errors,
        onset: tally.first_burst_error.map(rfc),
        ongoing: matches!((tally.last_error, tally.newest), (Some(l), Some(n)) if n - l <= 120),
        top_failing_paths: failing,
        scope: match spec.flavor {
            Flavor::Nginx => "site_wide".into(),
            Flavor::Apache => "page_specific".into(),
        },
        error_log_bytes: o.err_bytes,
        access_log_bytes: o.acc_bytes,
    })
}

fn noise<E: Write, A: Write>(
    flavor: Flavor,
    o: &mut Out<'_, E, A>,
    r: &mut Rng,
    ts: i64,
    pid: u64,
) -> io::Result<()> {
    o.conn += 1;
    let conn = o.conn;
    let client = ip(r);
    let x = r.below(100);
    let line = match flavor {
        Flavor::Nginx => {
            let t0 = o.nginx_time(ts);
            match x {
                0..=44 => format!(
                    "{t0} [error] {pid}#{pid}: *{conn} open() \"/var/www/html/wp-content/uploads/{}.jpg\" failed (2: No such file or directory), client: {client}, server: shop.example.com, request: \"GET /wp-content/uploads/{}.jpg HTTP/1.1\", host: \"shop.example.com\"",
                    r.below(9000),
                    r.below(9000)
                ),
                45..=74 => format!(
                    "{t0} [warn] {pid}#{pid}: *{conn} limiting requests, excess: {}.{:03} by zone \"perip\", client: {client}, server: shop.example.com, request: \"GET /search?q={} HTTP/1.1\", host: \"shop.example.com\"",
                    r.below(20),
                    r.below(1000),
                    r.below(100_000)
                ),
                75..=86 => format!(
                    "{t0} [error] {pid}#{pid}: *{conn} access forbidden by rule, client: {client}, server: shop.example.com, request: \"GET /.env HTTP/1.1\", host: \"shop.example.com\""
                ),
                87..=94 => format!(
                    "{t0} [crit] {pid}#{pid}: *{conn} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: {client}, server: 0.0.0.0:443"
                ),
                95..=97 => format!(
                    "{t0} [warn] {pid}#{pid}: *{conn} an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{}/00/00000{} while reading upstream, client: {client}, server: shop.example.com, request: \"GET /export.csv HTTP/1.1\", upstream: \"http://127.0.0.1:8080/export.csv\", host: \"shop.example.com\"",
                    r.below(10),
                    r.below(100_000)
                ),
                _ => format!(
                    "{t0} [info] {pid}#{pid}: *{conn} client prematurely closed connection while reading client request line, client: {client}, server: shop.example.com"
                ),
            }
        }
        Flavor::Apache => {
            let tm = o.apache_time(ts, r.below(1_000_000));
            let port = 40000 + r.below(20000);
            match x {
                0..=39 => format!(
                    "[{tm}] [authz_core:error] [pid {pid}:tid {}] [client {client}:{port}] AH01630: client denied by server configuration: /var/www/html/.git",
                    pid + 3
                ),
                40..=69 => format!(
                    "[{tm}] [core:info] [pid {pid}:tid {}] [client {client}:{port}] AH00128: File does not exist: /var/www/html/wp-content/uploads/{}.jpg",
                    pid + 3,
                    r.below(9000)
                ),
                70..=89 => format!(
                    "[{tm}] [autoindex:error] [pid {pid}:tid {}] [client {client}:{port}] AH01276: Cannot serve directory /var/www/html/assets/: No matching DirectoryIndex (index.php,index.html) found, and server-generated directory index forbidden by Options directive",
                    pid + 3
                ),
                _ => format!(
                    "[{tm}] [proxy_fcgi:error] [pid {pid}:tid {}] [client {client}:{port}] AH01071: Got error 'Primary script unknown'",
                    pid + 3
                ),
            }
        }
    };
    o.error(&line)
}

/// Write `<flavor>-error.log`, `<flavor>-access.log` and `<flavor>-truth.json` into `dir`.
pub fn generate_files(spec: &Spec, dir: &Path) -> io::Result<Truth> {
    let name = match spec.flavor {
        Flavor::Nginx => "nginx",
        Flavor::Apache => "apache",
    };
    let mut err = io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(dir.join(format!("{name}-error.log")))?,
    );
    let mut acc = io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(dir.join(format!("{name}-access.log")))?,
    );
    let truth = generate(spec, &mut err, &mut acc)?;
    let json = serde_json::to_string_pretty(&truth).map_err(io::Error::other)?;
    std::fs::write(dir.join(format!("{name}-truth.json")), json)?;
    Ok(truth)
}
