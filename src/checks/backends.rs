//! `backends`: probe every server of a balancer's group (an nginx `upstream {}` block, an HAProxy
//! `backend`) from the balancer's vantage point, and read HAProxy's own health-check verdict.
//!
//! Each server gets the failing request, one `GET` as [`upstream_probe`] sends it (TCP connect,
//! then HTTP/1.1 on a raw socket), all of them at once with a bound on how many run together and
//! on how long each may take. Every server ends in one state: `up`, `slow` (answered, after the
//! `slow` threshold), `http_5xx`, `refused`, `timeout`, or what else the probe saw (`closed`,
//! `reset`, `garbage`, ...). With HAProxy's `stats socket`, `show stat` (a read-only command) adds
//! each server's health-check state (`UP`, `DOWN`, `MAINT`) and last check result.
//!
//! Which servers fail decides the verdict: none is `ok`; some or all is `problem`, with the
//! diagnosis of each failing state (a refused server is `upstream_refused`) naming the servers.
//! The facts of one probe (`probe.*`) are those of the first failing server, or of the first
//! server when none fails, so later nodes read them as after a single `upstream_probe`.
//! Nothing is changed anywhere: connections, one request each, one read-only stats command.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome, Unseen};
use crate::checks::upstream_probe;
use crate::duration::HumanDuration;

/// Parameters of the `backends` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The servers, as the balancer dials them, one per line or separated by spaces or commas
    /// (discovery's `upstream.addresses`).
    pub addresses: String,
    /// The group's name: the nginx `upstream` block or the HAProxy `backend` (`upstream.group`);
    /// selects the rows of `show stat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Host header of the failing request (default: each server's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path and query of the failing request (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// HAProxy's `stats socket` (a unix socket path, or `ipv4@ADDR:PORT`); `show stat` is read
    /// from it when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_socket: Option<String>,
    /// An answer slower than this makes a server `slow` (default 2s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<HumanDuration>,
    /// How long each server may take to connect and send its response header (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "backends",
    summary: "Probe every server of a balancer's group (nginx upstream, HAProxy backend) in parallel from the balancer's vantage, one bounded request each: up, slow, http_5xx, refused, timeout; with HAProxy's stats socket, each server's health-check state from `show stat`.",
    example: r#"{ backends = { addresses = "{{ upstream.addresses }}", group = "{{ upstream.group }}", host = "{{ url.host }}", path = "{{ url.path }}", stats_socket = "{{ stats_socket }}", timeout = "5s" } }"#,
    facts: &[
        "backends.total",
        "backends.up",
        "backends.failing",
        "backends.states",
        "probe.result",
        "probe.status",
        "probe.header_bytes",
        "probe.first_byte_ms",
    ],
};

/// Servers probed at most (a larger group is cut, and the report says so).
pub const MAX_BACKENDS: usize = 64;
/// Probes in flight at once.
pub const PARALLEL: usize = 16;
/// Bytes of `show stat` read at most.
const STATS_CAP: usize = 1024 * 1024;

impl Params {
    pub fn label(&self) -> String {
        let n = self.servers().len();
        match &self.group {
            Some(g) if !g.is_empty() => format!(
                "every server of {g} ({n}) for {}",
                self.path.as_deref().unwrap_or("/")
            ),
            _ => format!(
                "{n} balanced server{} for {}",
                if n == 1 { "" } else { "s" },
                self.path.as_deref().unwrap_or("/")
            ),
        }
    }

    pub fn timeout(&self) -> Duration {
        // Every probe is bounded by `per_server`, the stats read by 3 s; the batches of
        // PARALLEL run one after another.
        let batches = self
            .servers()
            .len()
            .clamp(1, MAX_BACKENDS)
            .div_ceil(PARALLEL) as u32;
        self.per_server() * batches + Duration::from_secs(5)
    }

    fn per_server(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(5), |d| d.0)
    }

    fn slow_after(&self) -> Duration {
        self.slow.map_or(Duration::from_secs(2), |d| d.0)
    }

    /// The servers, in order, without repeats.
    pub fn servers(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in self
            .addresses
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !v.iter().any(|x| x == s) {
                v.push(s.to_owned());
            }
        }
        v
    }
}

/// One server's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub address: String,
    /// `up`, `slow`, `http_5xx`, `refused`, `timeout`, or the probe's result (`closed`, ...).
    pub state: String,
    /// The probe's one-line summary.
    pub detail: String,
    /// HAProxy's health-check state, e.g. `DOWN (L4CON: Connection refused)`.
    pub health: Option<String>,
    pub cause: Option<Cause>,
    pub facts: BTreeMap<String, String>,
}

impl Backend {
    pub fn fails(&self) -> bool {
        !matches!(self.state.as_str(), "up" | "slow")
    }
}

/// The state a probe report stands for.
fn state_of(r: &CheckReport, slow_after: Duration) -> String {
    let result = r.facts.get("probe.result").map_or("", String::as_str);
    match result {
        "answered" => {
            let status: u16 = r
                .facts
                .get("probe.status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let ms: u128 = r
                .facts
                .get("probe.first_byte_ms")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if status >= 500 {
                "http_5xx".into()
            } else if ms > slow_after.as_millis() {
                "slow".into()
            } else {
                "up".into()
            }
        }
        "" => "error".into(),
        other => other.to_owned(),
    }
}

/// One row of `show stat` for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    pub proxy: String,
    pub server: String,
    pub addr: Option<String>,
    pub status: String,
    pub check_status: Option<String>,
    pub check_desc: Option<String>,
}

impl StatRow {
    /// `DOWN (L4CON: Connection refused)`, `UP (L7OK)`, `no check`.
    pub fn describe(&self) -> String {
        match (&self.check_status, &self.check_desc) {
            (Some(s), Some(d)) if !d.is_empty() => format!("{} ({s}: {d})", self.status),
            (Some(s), _) if !s.is_empty() => format!("{} ({s})", self.status),
            _ => self.status.clone(),
        }
    }
}

/// Parse `show stat` CSV: the server rows (not FRONTEND/BACKEND), by the header's column names.
pub fn parse_show_stat(text: &str) -> Vec<StatRow> {
    let mut lines = text.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
        return Vec::new();
    };
    // `last_chk` holds the check's own words ("Connection refused", "HTTP status check
    // returned code <500>"); `check_desc` the generic ones ("Layer4 connection problem").
    let (cs, lc, cd, ad) = (
        col("check_status"),
        col("last_chk"),
        col("check_desc"),
        col("addr"),
    );
    let mut rows = Vec::new();
    for l in lines.take(10_000) {
        let f: Vec<&str> = l.split(',').collect();
        let get = |i: Option<usize>| {
            i.and_then(|i| f.get(i))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let (Some(proxy), Some(server), Some(status)) =
            (get(Some(px)), get(Some(sv)), get(Some(st)))
        else {
            continue;
        };
        if server == "FRONTEND" || server == "BACKEND" {
            continue;
        }
        rows.push(StatRow {
            proxy,
            server,
            addr: get(ad),
            status,
            check_status: get(cs).map(|s| s.trim_start_matches('*').to_owned()),
            check_desc: get(lc).or_else(|| get(cd)),
        });
    }
    rows
}

/// Send `show stat` to the stats socket and read the answer (bounded).
async fn show_stat(socket: &str, timeout: Duration) -> Result<String, String> {
    async fn talk<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut s: S,
    ) -> std::io::Result<Vec<u8>> {
        s.write_all(b"show stat\n").await?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 || out.len() + n > STATS_CAP {
                out.extend_from_slice(&buf[..n.min(STATS_CAP.saturating_sub(out.len()))]);
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }
    let fut = async {
        if let Some(tcp) = socket
            .strip_prefix("ipv4@")
            .or_else(|| socket.strip_prefix("ipv6@"))
        {
            talk(tokio::net::TcpStream::connect(tcp).await?).await
        } else {
            let path = socket.strip_prefix("unix@").unwrap_or(socket);
            talk(crate::platform::UnixStream::connect(path).await?).await
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}", HumanDuration(timeout))),
    }
}

/// `10.0.0.1:80` and `10.0.0.1:80` match; so do `[::1]:80` and `::1:80` (HAProxy's form).
fn same_address(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace(['[', ']'], "");
    norm(a) == norm(b)
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let label = p.label();
    let mut servers = p.servers();
    if servers.is_empty() {
        let mut r = CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no server address to probe (the group's servers are unknown)",
        );
        r.duration_ms = started.elapsed().as_millis() as u64;
        return r;
    }
    let cut = servers.len().saturating_sub(MAX_BACKENDS);
    servers.truncate(MAX_BACKENDS);

    // Every server at once, PARALLEL at a time, each bounded by its own timeout.
    let mut states: Vec<Option<(CheckReport, String)>> = vec![None; servers.len()];
    for (batch_no, batch) in servers.chunks(PARALLEL).enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for (i, addr) in batch.iter().enumerate() {
            let probe = upstream_probe::Params {
                address: addr.clone(),
                protocol: None,
                host: p.host.clone().filter(|h| !h.is_empty()),
                path: p.path.clone().filter(|h| !h.is_empty()),
                script_filename: None,
                document_root: None,
                header_limit: None,
                timeout: Some(HumanDuration(p.per_server())),
            };
            let ctx = ctx.clone();
            let slow = p.slow_after();
            let idx = batch_no * PARALLEL + i;
            set.spawn(async move {
                let r = upstream_probe::run(&probe, &ctx).await;
                let state = state_of(&r, slow);
                (idx, r, state)
            });
        }
        while let Some(j) = set.join_next().await {
            if let Ok((idx, r, state)) = j {
                states[idx] = Some((r, state));
            }
        }
    }

    // HAProxy's own view, when its stats socket is known.
    let mut stats: Vec<StatRow> = Vec::new();
    let mut stats_note: Option<Evidence> = None;
    let mut unseen: Option<Unseen> = None;
    if let Some(sock) = p.stats_socket.as_deref().filter(|s| !s.is_empty()) {
        match show_stat(sock, Duration::from_secs(3)).await {
            Ok(text) => {
                let all = parse_show_stat(&text);
                let group = p.group.as_deref().filter(|g| !g.is_empty());
                stats = all
                    .into_iter()
                    .filter(|r| group.is_none_or(|g| r.proxy == g))
                    .collect();
                stats_note = Some(
                    Evidence::new(
                        "HAProxy show stat",
                        format!(
                            "{} server row{}{}",
                            stats.len(),
                            if stats.len() == 1 { "" } else { "s" },
                            group
                                .map(|g| format!(" of backend {g}"))
                                .unwrap_or_default()
                        ),
                    )
                    .at(format!("{sock} (show stat)")),
                );
            }
            Err(e) => {
                if e.to_ascii_lowercase().contains("permission denied") {
                    unseen = Some(Unseen::new(
                        format!("HAProxy's health checks (stats socket {sock})"),
                        "permission denied",
                        crate::check::AS_ROOT,
                    ));
                }
                stats_note = Some(
                    Evidence::new("HAProxy show stat", format!("not read: {e}"))
                        .at(sock.to_owned()),
                );
            }
        }
    }

    // A stats socket below level `operator` hides the servers' addresses: then the rows of the
    // backend are matched to the servers by their order in the configuration (both are in it),
    // when the counts agree, and the evidence says so.
    let by_position = p.group.as_deref().is_some_and(|g| !g.is_empty())
        && !stats.is_empty()
        && stats.len() == servers.len()
        && stats.iter().all(|r| r.addr.is_none());
    if by_position && let Some(e) = stats_note.as_mut() {
        e.text.push_str(
            "; the socket's level hides server addresses, so rows are matched to the servers \
             by their order in the backend",
        );
    }
    let mut backends: Vec<Backend> = Vec::new();
    for (i, (addr, s)) in servers.iter().zip(states).enumerate() {
        let (report, state) = s.unwrap_or_else(|| {
            (
                CheckReport::new(
                    upstream_probe::DOC.kind,
                    addr.clone(),
                    Outcome::Inconclusive,
                    format!("the probe of {addr} did not finish"),
                ),
                "error".into(),
            )
        });
        let health = stats
            .iter()
            .find(|r| r.addr.as_deref().is_some_and(|a| same_address(a, addr)))
            .or_else(|| by_position.then(|| stats.get(i)).flatten())
            .map(|r| format!("{}: {}", r.server, r.describe()));
        backends.push(Backend {
            address: addr.clone(),
            // A server error passes through the balancer as it is: the state says so, but no
            // cause of the taxonomy is established by it alone.
            cause: report.diagnoses.first().map(|d| d.cause),
            detail: report.summary.clone(),
            state,
            health,
            facts: report.facts,
        });
    }
    report(p, label, &backends, cut, stats_note, unseen, started)
}

fn report(
    p: &Params,
    label: String,
    backends: &[Backend],
    cut: usize,
    stats_note: Option<Evidence>,
    unseen: Option<Unseen>,
    started: Instant,
) -> CheckReport {
    let total = backends.len();
    let failing: Vec<&Backend> = backends.iter().filter(|b| b.fails()).collect();
    let up = backends.iter().filter(|b| b.state == "up").count();
    let slow = backends.iter().filter(|b| b.state == "slow").count();
    let group = p
        .group
        .as_deref()
        .filter(|g| !g.is_empty())
        .map(|g| format!(" of {g}"))
        .unwrap_or_default();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for b in backends {
        *counts.entry(b.state.as_str()).or_default() += 1;
    }
    let tally = counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (outcome, summary) = if failing.is_empty() {
        (
            Outcome::Ok,
            format!("all {total} servers{group} answer ({tally})"),
        )
    } else {
        (
            Outcome::Problem,
            format!(
                "{} of {total} servers{group} fail ({tally}): {}",
                failing.len(),
                failing
                    .iter()
                    .map(|b| format!("{} {}", b.address, b.state))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary);
    for b in backends {
        let mut text = format!("{}: {}", b.state, b.detail);
        if let Some(h) = &b.health {
            let _ = write!(text, "; health check {h}");
        }
        r = r.with_evidence(Evidence::new(format!("backend {}", b.address), text));
    }
    if let Some(e) = stats_note {
        r = r.with_evidence(e);
    }
    if cut > 0 {
        r = r.with_evidence(Evidence::new(
            "not probed",
            format!("{cut} more servers (at most {MAX_BACKENDS} are probed)"),
        ));
    }
    if let Some(u) = unseen {
        r = r.unseen(u);
    }
    // One diagnosis per cause, naming its servers.
    let mut by_cause: BTreeMap<Cause, Vec<&Backend>> = BTreeMap::new();
    for b in &failing {
        if let Some(c) = b.cause {
            by_cause.entry(c).or_default().push(b);
        }
    }
    for (cause, bs) in &by_cause {
        let names = bs
            .iter()
            .map(|b| b.address.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let what = match bs[0].state.as_str() {
            "refused" => "refuse connections",
            "timeout" => "do not answer in time",
            "http_5xx" => "answer with a server error",
            "closed" | "reset" => "close the connection before answering",
            _ => "fail",
        };
        let severity = if bs.len() == total {
            Severity::Critical
        } else {
            Severity::High
        };
        let scope = if bs.len() == total {
            format!("every server{group}")
        } else {
            format!("{} of {total} servers{group}", bs.len())
        };
        let evidence = bs
            .iter()
            .map(|b| Evidence::new(format!("backend {}", b.address), b.detail.clone()))
            .collect();
        r = r.diagnose(
            *cause,
            severity,
            format!("{scope} {what}: {names}"),
            evidence,
        );
    }
    // The facts of one probe, as after a single upstream_probe: the first failing server's.
    let pick = failing.first().copied().or(backends.first());
    if let Some(b) = pick {
        for k in DOC.facts.iter().filter(|k| k.starts_with("probe.")) {
            r = r.with_fact(*k, b.facts.get(*k).cloned().unwrap_or_default());
        }
    }
    r = r
        .with_fact("backends.total", total.to_string())
        .with_fact("backends.up", (up + slow).to_string())
        .with_fact(
            "backends.failing",
            failing
                .iter()
                .map(|b| b.address.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .with_fact(
            "backends.states",
            backends
                .iter()
                .map(|b| {
                    format!(
                        "{}\t{}\t{}",
                        b.address,
                        b.state,
                        b.health.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

/// The per-backend table of a `backends` report, from its `backends.states` fact: rows of
/// (address, state, health check).
pub fn table(r: &CheckReport) -> Vec<(String, String, String)> {
    r.facts
        .get("backends.states")
        .map(|s| {
            s.lines()
                .filter_map(|l| {
                    let mut f = l.split('\t');
                    Some((
                        f.next()?.to_owned(),
                        f.next()?.to_owned(),
                        f.next().unwrap_or("").to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo\n\
fe,FRONTEND,,,0,1,2000,1,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,0,0,0,0,0,0,,0,1,1,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,\n\
app,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,10,0,,1,3,1,,0,,2,0,,0,L7OK,200,1,0,0,0,0,0,0,,,,0,0,0,,,,,-1,OK,,0,0,0,0,,,,Layer7 check passed,,2,3,4,,,,127.0.0.1:8081,,http,,\n\
app,web2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,9,9,,1,3,2,,0,,2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Connection refused,,2,3,0,,,,127.0.0.1:8082,,http,,\n\
app,BACKEND,0,0,0,0,200,0,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,10,0,,1,3,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,\n";

    #[test]
    fn show_stat_rows_by_column_name() {
        let rows = parse_show_stat(STAT);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].server, "web1");
        assert_eq!(rows[0].addr.as_deref(), Some("127.0.0.1:8081"));
        assert_eq!(rows[0].describe(), "UP (L7OK: OK)");
        assert_eq!(rows[1].describe(), "DOWN (L4CON: Connection refused)");
        assert!(parse_show_stat("Unknown command\n").is_empty());
    }

    #[test]
    fn servers_split_and_deduplicated() {
        let p = Params {
            addresses: "10.0.0.1:80\n10.0.0.2:80, 10.0.0.1:80 [::1]:80".into(),
            group: None,
            host: None,
            path: None,
            stats_socket: None,
            slow: None,
            timeout: None,
        };
        assert_eq!(p.servers(), ["10.0.0.1:80", "10.0.0.2:80", "[::1]:80"]);
        assert!(same_address("[::1]:80", "::1:80"));
    }
}
