//! `container`: what the Docker Engine and the kernel say about one container on the path.
//!
//! Reads (never changes) the container through the Engine API (`crate::docker`, read-only calls
//! over its unix socket): state, exit code, `OOMKilled`, restart count and policy, health and its
//! last probe, created/started time and image, published ports, networks; and, while it runs,
//! what its main process really listens on, from `/proc/PID/net/tcp*` (that file shows the
//! process's own network namespace) parsed by `crate::sys::net`. Docker's embedded DNS
//! (127.0.0.11) is left out of the listeners.
//!
//! Invariants: without the Engine the check is inconclusive, with the reason and the one command
//! that would give access; a container that runs, listens where the proxy dials and is not
//! unhealthy is `ok` (a recent recreate alone is evidence, never a finding); the container's
//! name and the Docker detail are in every diagnosis summary.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::docker::{ContainerInspect, Docker, DockerError};
use crate::sys::net::{self, Listener, Proto};

/// Parameters of the `container` check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The container's name or id (e.g. `{{ upstream.container }}`).
    pub container: String,
    /// The port the proxy dials inside the container (`3000`, or `app:3000`, `10.0.0.4:3000`):
    /// when given, its listeners are compared with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The proxy's error logs as this host reads them (`["{{ error_logs }}"]`): the address
    /// nginx really dials (`upstream: "http://IP:PORT/"` in its newest error line) is compared
    /// with `resolved`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// What the upstream's name resolves to now from the proxy's vantage
    /// (`["{{ upstream.resolved }}"]`, resolved in the front's network namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<String>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "container",
    summary: "A container on the path, from the Docker Engine API (read-only): state, exit code, OOMKilled, restarts and policy, health and its last probe, created/started and image, ports, networks; and what its process listens on inside its own network namespace (/proc/PID/net/tcp*).",
    example: r#"{ container = { container = "{{ upstream.container }}", port = "{{ upstream }}" } }"#,
    facts: &[
        "container.name",
        "container.id",
        "container.state",
        "container.exit_code",
        "container.oom_killed",
        "container.restart_count",
        "container.restart_policy",
        "container.health",
        "container.image",
        "container.created",
        "container.started",
        "container.networks",
        "container.ports",
        "container.listens",
        "container.stale_address",
        "container.restart",
    ],
};

impl Params {
    pub fn label(&self) -> String {
        format!("container {}", self.container)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// The upstream's host name as the proxy writes it (`app` of `app:3000`), if it is a name.
    fn dialled_host(&self) -> Option<String> {
        let p = self.port.as_deref()?.trim();
        let p = p.rsplit_once("://").map_or(p, |(_, rest)| rest);
        let p = p.split('/').next().unwrap_or(p);
        let (h, _) = crate::discovery::container::split_host_port(p, "http")?;
        (h.parse::<std::net::IpAddr>().is_err() && !h.is_empty()).then_some(h)
    }

    /// The port the proxy dials, from `port` (`3000`, `host:3000`, `[::1]:3000`).
    fn dialled_port(&self) -> Option<u16> {
        let p = self.port.as_deref()?.trim();
        let p = p.rsplit_once("://").map_or(p, |(_, rest)| rest);
        let p = p.split('/').next().unwrap_or(p);
        p.rsplit(':').next()?.parse().ok()
    }
}

pub async fn run(p: &Params, ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut r = look(p, ctx).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn look(p: &Params, ctx: &CheckContext) -> CheckReport {
    let label = p.label();
    let name = p.container.trim();
    if name.is_empty() {
        return CheckReport::new(
            DOC.kind,
            label,
            Outcome::Inconclusive,
            "no container given (the map found none on this path)",
        );
    }
    let docker = match Docker::from_env() {
        Ok(d) => d,
        Err(u) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!(
                    "cannot ask the container engine about {name}: {}; to let triage502 see it: {}",
                    u.reason, u.fix
                ),
            );
        }
    };
    let c = match docker.inspect(name).await {
        Ok(c) => c,
        Err(DockerError::Unavailable(u)) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!(
                    "cannot ask the container engine about {name}: {}; to let triage502 see it: {}",
                    u.reason, u.fix
                ),
            );
        }
        Err(DockerError::Status { status: 404, .. }) => {
            return CheckReport::new(
                DOC.kind,
                label,
                Outcome::Inconclusive,
                format!(
                    "no container called {name} (it may have been removed or recreated under another name)"
                ),
            );
        }
        Err(e) => {
            return CheckReport::new(DOC.kind, label, Outcome::Inconclusive, e.to_string());
        }
    };
    let now = jiff::Timestamp::now();
    let listens = c.pid().map(listeners_of);
    let mut r = judge(p, &c, listens, now, ctx);
    // nginx resolves a name in `proxy_pass` once, at start: after a recreate it keeps dialing
    // the old address. Only for a running container that itself looks fine here.
    if c.state.running
        && r.diagnoses.is_empty()
        && !p.logs.is_empty()
        && !p.resolved.is_empty()
        && let Some(port) = p.dialled_port()
        && let Some(d) = newest_dialed(&p.logs, port, ctx)
    {
        let resolved: Vec<IpAddr> = p
            .resolved
            .iter()
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let own = container_ips(&c);
        if !resolved.is_empty() && !resolved.contains(&d.addr) && !own.contains(&d.addr) {
            let holder = docker.containers().await.ok().and_then(|cs| {
                let text = d.addr.to_string();
                cs.into_iter().find(|x| {
                    x.network_settings
                        .networks
                        .values()
                        .any(|e| e.ip_address == text || e.global_ipv6_address == text)
                })
            });
            let holder = holder.map(|h| (h.name().to_owned(), h.state.clone()));
            r = stale_address(r, p, &c, &d, &resolved, holder, now);
        }
    }
    r
}

/// The address the proxy dialed in its newest error line within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialed {
    pub addr: IpAddr,
    pub port: u16,
    /// The line (client addresses masked), and the file it is in.
    pub line: String,
    pub file: String,
}

/// Most of one log read from its end.
const LOG_TAIL: u64 = 4 * 1024 * 1024;

/// The newest `upstream: "SCHEME://IP:PORT..."` on `port` in `files` (Docker's json-file
/// records and other wrappers peeled), within the incident window; lines without a time count.
pub fn newest_dialed(files: &[String], port: u16, ctx: &CheckContext) -> Option<Dialed> {
    use std::io::{Read, Seek, SeekFrom};
    let re = regex::Regex::new(
        r#"upstream: "(?:https?|fastcgi|uwsgi|scgi|grpcs?)://\[?([0-9A-Fa-f:.]+?)\]?:(\d+)"#,
    )
    .ok()?;
    let (from, to) = (ctx.window_from.as_second(), ctx.window_to.as_second() + 60);
    let mut best: Option<((i64, usize, usize), Dialed)> = None;
    for (fi, f) in files.iter().enumerate() {
        let Ok(mut file) = std::fs::File::open(f) else {
            continue;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len > LOG_TAIL && file.seek(SeekFrom::Start(len - LOG_TAIL)).is_err() {
            continue;
        }
        let mut buf = Vec::new();
        if file.take(LOG_TAIL).read_to_end(&mut buf).is_err() {
            continue;
        }
        let mut zone = crate::logs::time::Zone::utc();
        for (i, raw) in buf.split(|b| *b == b'\n').enumerate() {
            let u = crate::logs::wrapper::unwrap_line(raw, &mut zone);
            let text = String::from_utf8_lossy(&u.text);
            let Some(m) = re.captures(&text) else {
                continue;
            };
            let (Ok(addr), Ok(p)) = (m[1].parse::<IpAddr>(), m[2].parse::<u16>()) else {
                continue;
            };
            let ts =
                u.ts.or_else(|| crate::logs::time::nginx(&u.text, &mut zone).map(|(t, _)| t));
            if p != port || ts.is_some_and(|t| t < from || t > to) {
                continue;
            }
            // Newest by time; for equal times (or none), the later line.
            let key = (ts.unwrap_or(i64::MIN), fi, i);
            if best.as_ref().is_none_or(|(k, _)| key >= *k) {
                best = Some((
                    key,
                    Dialed {
                        addr,
                        port: p,
                        line: crate::logs::scan::redact(text.trim_end().as_bytes()),
                        file: f.clone(),
                    },
                ));
            }
        }
    }
    best.map(|(_, d)| d)
}

/// Every address of the container on its networks.
fn container_ips(c: &ContainerInspect) -> Vec<IpAddr> {
    c.network_settings
        .networks
        .values()
        .flat_map(|e| [&e.ip_address, &e.global_ipv6_address])
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The finding when the proxy dials an address that is no longer the upstream's: nginx
/// resolved the name once at start and the container was recreated with a new address
/// (`holder`: who has the dialed address now, name and state). Pure.
pub fn stale_address(
    mut r: CheckReport,
    p: &Params,
    c: &ContainerInspect,
    d: &Dialed,
    resolved: &[IpAddr],
    holder: Option<(String, String)>,
    now: jiff::Timestamp,
) -> CheckReport {
    let name = c.short_name().to_string();
    let host = p.dialled_host().unwrap_or_else(|| name.clone());
    let dialed = endpoint_of(d.addr, d.port);
    let now_at: Vec<String> = resolved.iter().map(ToString::to_string).collect();
    let created = ago(&c.created, now).unwrap_or_else(|| c.created.clone());
    let holder_text = match holder {
        Some((holder, state)) => {
            format!("{} belongs to container {holder} ({state}) now", d.addr)
        }
        None => format!("{} belongs to no container now", d.addr),
    };
    let detail = format!(
        "nginx dials {dialed}, the address {host} had when nginx resolved it at start; {host} is container {name} now, created {created} at {}, and {holder_text}: reload nginx so it resolves {host} again (or use `resolver 127.0.0.11` with a variable in proxy_pass)",
        now_at.join(", ")
    );
    let log_ev = Evidence::new("the address nginx dials", d.line.clone()).at(d.file.clone());
    let res_ev = Evidence::new(
        "what the name resolves to now",
        format!("{host} → {} (from the proxy's vantage)", now_at.join(", ")),
    );
    r.excluded.retain(|e| e.cause != Cause::UpstreamRefused);
    r.outcome = Outcome::Problem;
    r.summary.clone_from(&detail);
    r = r
        .with_fact("container.stale_address", dialed)
        .with_evidence(log_ev.clone())
        .with_evidence(res_ev.clone());
    r.diagnose(
        Cause::UpstreamRefused,
        Severity::High,
        detail,
        vec![log_ev, res_ev],
    )
}

fn endpoint_of(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(a) => format!("[{a}]:{port}"),
        IpAddr::V4(a) => format!("{a}:{port}"),
    }
}

/// The TCP listeners of `pid`'s network namespace (Docker's embedded DNS left out), or why they
/// could not be read.
pub fn listeners_of(pid: u32) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (file, proto) in [("tcp", Proto::Tcp), ("tcp6", Proto::Tcp6)] {
        let path = format!("/proc/{pid}/net/{file}");
        match std::fs::read_to_string(&path) {
            Ok(text) => out.extend(net::parse_inet(&text, proto)),
            Err(e) => errors.push(format!("{path}: {e}")),
        }
    }
    if errors.len() == 2 {
        return Err(errors.join("; "));
    }
    out.retain(|l| l.addr != Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11))));
    Ok(out)
}

fn endpoint(l: &Listener) -> String {
    match (l.addr, l.port) {
        (Some(std::net::IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
        _ => "?".into(),
    }
}

/// "2 minutes ago", from an RFC 3339 time the Engine gave.
fn ago(time: &str, now: jiff::Timestamp) -> Option<String> {
    let t: jiff::Timestamp = time.parse().ok()?;
    // The Engine's zero time (never started/finished).
    if t.as_second() <= 0 {
        return None;
    }
    let secs = now.duration_since(t).as_secs().max(0);
    Some(match secs {
        0..=89 => format!("{secs} s ago"),
        90..=5399 => format!("{} minutes ago", (secs + 30) / 60),
        5400..=129_599 => format!("{} hours ago", (secs + 1800) / 3600),
        _ => format!("{} days ago", (secs + 43_200) / 86_400),
    })
}

/// The verdict on an inspected container (pure: the Engine's answer, the listeners, the time).
pub fn judge(
    p: &Params,
    c: &ContainerInspect,
    listens: Option<Result<Vec<Listener>, String>>,
    now: jiff::Timestamp,
    ctx: &CheckContext,
) -> CheckReport {
    let name = c.short_name().to_string();
    let st = &c.state;
    let source = format!("docker inspect {name}");
    let policy = if c.host_config.restart_policy.name.is_empty() {
        "no".to_string()
    } else {
        c.host_config.restart_policy.name.clone()
    };
    let networks: Vec<String> = c
        .network_settings
        .networks
        .iter()
        .map(|(n, e)| {
            if e.ip_address.is_empty() {
                n.clone()
            } else {
                format!("{n} {}", e.ip_address)
            }
        })
        .collect();
    let ports: Vec<String> = c
        .host_config
        .port_bindings
        .iter()
        .flat_map(|(inside, b)| {
            b.iter().flatten().map(move |b| {
                let ip = if b.host_ip.is_empty() {
                    "0.0.0.0"
                } else {
                    &b.host_ip
                };
                format!("{ip}:{} -> {inside}", b.host_port)
            })
        })
        .collect();
    let health = st
        .health
        .as_ref()
        .map(|h| h.status.clone())
        .unwrap_or_default();
    let created_ago = ago(&c.created, now);
    let started_ago = ago(&st.started_at, now);
    let finished_ago = ago(&st.finished_at, now);

    let mut r = CheckReport::new(DOC.kind, p.label(), Outcome::Ok, String::new())
        .with_fact("container.name", &name)
        .with_fact("container.id", c.short_id())
        .with_fact("container.state", &st.status)
        .with_fact("container.exit_code", st.exit_code.to_string())
        .with_fact("container.oom_killed", st.oom_killed.to_string())
        .with_fact("container.restart_count", c.restart_count.to_string())
        .with_fact("container.restart_policy", &policy)
        .with_fact("container.image", &c.config.image)
        .with_fact("container.created", &c.created)
        .with_fact("container.started", &st.started_at)
        .with_fact("container.networks", networks.join(", "))
        .with_fact("container.ports", ports.join(", "));
    if !health.is_empty() {
        r = r.with_fact("container.health", &health);
    }
    let state_line = format!(
        "{name} ({}): {}{}, exit code {}, OOMKilled {}, restarts {} (policy {policy}){}",
        c.short_id(),
        st.status,
        started_ago
            .as_ref()
            .map(|a| format!(", started {a}"))
            .unwrap_or_default(),
        st.exit_code,
        st.oom_killed,
        c.restart_count,
        if health.is_empty() {
            String::new()
        } else {
            format!(", health {health}")
        }
    );
    let state_ev = Evidence::new("container state", state_line).at(source.clone());
    let image_ev = Evidence::new(
        "image and creation",
        format!(
            "image {} ({}), created {}{}",
            c.config.image,
            &c.image.get(..19).unwrap_or(&c.image),
            c.created,
            created_ago
                .as_ref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        ),
    )
    .at(source.clone());
    let net_ev = Evidence::new(
        "networks and ports",
        format!(
            "networks: {}; published: {}",
            if networks.is_empty() {
                "none".into()
            } else {
                networks.join(", ")
            },
            if ports.is_empty() {
                "none".into()
            } else {
                ports.join(", ")
            }
        ),
    )
    .at(source.clone());
    r = r
        .with_evidence(state_ev.clone())
        .with_evidence(image_ev.clone())
        .with_evidence(net_ev);
    let recent = c
        .created
        .parse::<jiff::Timestamp>()
        .is_ok_and(|t| t >= ctx.window_from);
    let recent_note = if recent {
        created_ago
            .as_ref()
            .map(|a| format!("; created {a}, within the incident window"))
            .unwrap_or_default()
    } else {
        String::new()
    };

    // Not running: the container itself is the fault.
    if st.status == "exited" || st.status == "dead" || st.status == "created" {
        let when = finished_ago
            .as_ref()
            .map(|a| format!(" {a}"))
            .unwrap_or_default();
        let (cause, detail) = if st.oom_killed {
            (
                Cause::ResourceExhaustion,
                format!(
                    "container {name} exited (code {}, OOMKilled){when}",
                    st.exit_code
                ),
            )
        } else {
            (
                Cause::UpstreamRefused,
                format!(
                    "container {name} {} (code {}){when}",
                    st.status, st.exit_code
                ),
            )
        };
        let detail = format!("{detail}{recent_note}");
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&detail);
        r = r.with_fact("container.restart", &detail);
        return r.diagnose(cause, Severity::High, detail, vec![state_ev, image_ev]);
    }
    if st.status == "restarting" || (st.restarting && c.restart_count > 0) {
        let detail = format!(
            "container {name} is restarting in a loop ({} restarts, policy {policy}, last exit code {})",
            c.restart_count, st.exit_code
        );
        r.outcome = Outcome::Problem;
        r.summary.clone_from(&detail);
        r = r.with_fact("container.restart", &detail);
        let cause = if st.oom_killed {
            Cause::ResourceExhaustion
        } else {
            Cause::UpstreamRefused
        };
        return r.diagnose(cause, Severity::High, detail, vec![state_ev]);
    }

    let mut problems: Vec<String> = Vec::new();
    // Running again after restarts within the last minutes: a loop caught between two exits.
    let restarted_lately = st
        .started_at
        .parse::<jiff::Timestamp>()
        .is_ok_and(|t| now.duration_since(t).as_secs() < 120);
    if c.restart_count >= 2 && restarted_lately {
        let detail = format!(
            "container {name} is restarting in a loop ({} restarts, policy {policy}, last exit code {}, started {})",
            c.restart_count,
            st.exit_code,
            started_ago.as_deref().unwrap_or("just now")
        );
        problems.push(detail.clone());
        r = r.with_fact("container.restart", &detail).diagnose(
            Cause::UpstreamRefused,
            Severity::High,
            detail,
            vec![state_ev.clone()],
        );
    }
    // Running: what does it listen on, inside its own namespace?
    match listens {
        Some(Ok(ls)) => {
            let eps: Vec<String> = ls.iter().map(endpoint).collect();
            r = r.with_fact("container.listens", eps.join(", "));
            let pid = c.pid().unwrap_or_default();
            let lev = Evidence::new(
                "listening inside the container",
                if eps.is_empty() {
                    "no TCP listener".to_string()
                } else {
                    eps.join(", ")
                },
            )
            .at(format!("/proc/{pid}/net/tcp, /proc/{pid}/net/tcp6"));
            r = r.with_evidence(lev.clone());
            if let Some(dialled) = p.dialled_port() {
                // Dialled through a port this container publishes: docker-proxy (or the DNAT
                // rule) takes the connection; what matters is the container's port behind it.
                let published = c
                    .network_settings
                    .published()
                    .into_iter()
                    .find(|(_, proto, _, hp)| *hp == dialled && proto == "tcp");
                let port = published.as_ref().map_or(dialled, |(cp, ..)| *cp);
                let on_port: Vec<&Listener> = ls.iter().filter(|l| l.port == Some(port)).collect();
                let reachable = on_port
                    .iter()
                    .any(|l| l.addr.is_some_and(|a| !a.is_loopback()));
                if on_port.is_empty() {
                    let detail = format!(
                        "nothing listens on port {port} inside container {name} (it listens on {}){recent_note}",
                        if eps.is_empty() {
                            "nothing".into()
                        } else {
                            eps.join(", ")
                        }
                    );
                    problems.push(detail.clone());
                    if let Some((cp, _, hip, hp)) = &published {
                        // docker-proxy accepts, fails to reach the container, and closes: the
                        // proxy in front sees a reset or a premature close, never a refusal.
                        let host = if hip.is_empty() {
                            "0.0.0.0"
                        } else {
                            hip.as_str()
                        };
                        let detail = format!(
                            "{detail}; port {host}:{hp} is published to its port {cp}, so docker-proxy accepts the connection and then closes it (a reset or premature close in the proxy's log, not a refusal)"
                        );
                        r = r.diagnose(Cause::UpstreamClosed, Severity::High, detail, vec![lev]);
                    } else {
                        r = r.diagnose(Cause::UpstreamRefused, Severity::High, detail, vec![lev]);
                    }
                } else if !reachable {
                    let only: Vec<String> = on_port.iter().map(|l| endpoint(l)).collect();
                    let detail = format!(
                        "app listens only on {} inside container {name}: other containers (the proxy) are refused",
                        only.join(", ")
                    );
                    problems.push(detail.clone());
                    r = r.diagnose(Cause::UpstreamRefused, Severity::High, detail, vec![lev]);
                }
            }
        }
        Some(Err(e)) => {
            r = r.with_evidence(Evidence::new(
                "listening inside the container",
                format!("unreadable: {e}"),
            ));
        }
        None => {}
    }
    if health == "unhealthy" {
        let h = st.health.as_ref();
        let last = h
            .and_then(|h| h.log.last())
            .map(|l| l.output.trim().to_string())
            .unwrap_or_default();
        let detail = format!(
            "container {name} is unhealthy ({} failed probes in a row; last probe: {})",
            h.map_or(0, |h| h.failing_streak),
            if last.is_empty() { "no output" } else { &last }
        );
        problems.push(detail.clone());
        r = r.with_fact("container.restart", &detail).diagnose(
            Cause::AppFatal,
            Severity::Medium,
            detail,
            vec![state_ev.clone()],
        );
    }
    if problems.is_empty() {
        r.summary = format!(
            "container {name} is {}{}{}",
            st.status,
            started_ago
                .map(|a| format!(" (started {a})"))
                .unwrap_or_default(),
            r.facts
                .get("container.listens")
                .map(|l| format!(", listens on {l}"))
                .unwrap_or_default()
        );
        r = r.exclude(
            Cause::UpstreamRefused,
            format!("container {name} runs and listens where the proxy dials"),
        );
    } else {
        r.outcome = Outcome::Problem;
        r.summary = problems.join("; ");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(json: &str) -> ContainerInspect {
        serde_json::from_str(json).unwrap()
    }

    fn ctx() -> CheckContext {
        CheckContext::last(Duration::from_secs(3600))
    }

    fn now() -> jiff::Timestamp {
        "2026-12-03T11:00:00Z".parse().unwrap()
    }

    #[test]
    fn oom_killed_exit_names_the_container_and_when() {
        let c = inspect(
            r#"{"Id":"0123456789abcdef","Name":"/shop-app","Created":"2026-12-03T10:00:00Z",
            "State":{"Status":"exited","OOMKilled":true,"ExitCode":137,"Pid":0,
            "StartedAt":"2026-12-03T10:00:01Z","FinishedAt":"2026-12-03T10:58:00Z"},
            "Config":{"Image":"shop-app:2"},"HostConfig":{"RestartPolicy":{"Name":""}}}"#,
        );
        let p = Params {
            container: "shop-app".into(),
            port: Some("app:3000".into()),
            ..Params::default()
        };
        let r = judge(&p, &c, None, now(), &ctx());
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.diagnoses[0].cause, Cause::ResourceExhaustion);
        assert_eq!(
            r.diagnoses[0].summary,
            "container shop-app exited (code 137, OOMKilled) 2 minutes ago"
        );
        assert_eq!(r.facts["container.restart_policy"], "no");
    }

    #[test]
    fn loopback_only_listener_is_refused_from_the_proxy() {
        let c = inspect(
            r#"{"Id":"0123456789abcdef","Name":"/shop-app","Created":"2026-12-03T10:00:00Z",
            "State":{"Status":"running","Running":true,"Pid":4242,"StartedAt":"2026-12-03T10:00:01Z"},
            "Config":{"Image":"shop-app:2"}}"#,
        );
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0 100 0 0 10 0\n";
        let ls = net::parse_inet(tcp, Proto::Tcp);
        let p = Params {
            container: "shop-app".into(),
            port: Some("app:3000".into()),
            ..Params::default()
        };
        let r = judge(&p, &c, Some(Ok(ls)), now(), &ctx());
        assert_eq!(r.outcome, Outcome::Problem);
        assert_eq!(r.diagnoses[0].cause, Cause::UpstreamRefused);
        assert!(
            r.diagnoses[0]
                .summary
                .starts_with("app listens only on 127.0.0.1:3000 inside container shop-app"),
            "{}",
            r.diagnoses[0].summary
        );
        assert_eq!(r.facts["container.listens"], "127.0.0.1:3000");
    }

    #[test]
    fn the_address_nginx_dials_from_its_docker_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("abc-json.log");
        let line = |t: &str, ip: &str| {
            format!(
                r#"{{"log":"2026/12/03 10:59:{t} [error] 29#29: *3 connect() failed (111: Connection refused) while connecting to upstream, client: 10.1.0.1, server: , request: \"GET / HTTP/1.1\", upstream: \"http://{ip}:3000/\", host: \"127.0.0.1:8080\"\n","stream":"stderr","time":"2026-12-03T10:59:{t}.5Z"}}"#
            )
        };
        std::fs::write(
            &log,
            [
                line("00", "10.1.0.9"),
                line("30", "10.1.0.2"),
                r#"{"log":"10.1.0.1 - - [03/Dec/2026:10:59:31 +0000] \"GET / HTTP/1.1\" 502 157\n","stream":"stdout","time":"2026-12-03T10:59:31Z"}"#.into(),
            ]
            .join("\n"),
        )
        .unwrap();
        let mut ctx = ctx();
        ctx.window_from = "2026-12-03T10:00:00Z".parse().unwrap();
        ctx.window_to = now();
        let files = vec![log.display().to_string()];
        let d = newest_dialed(&files, 3000, &ctx).unwrap();
        assert_eq!(d.addr.to_string(), "10.1.0.2");
        assert!(d.line.contains("connect() failed (111"), "{}", d.line);
        assert_eq!(newest_dialed(&files, 4000, &ctx), None);
        // Outside the window: nothing.
        ctx.window_from = "2026-12-03T11:30:00Z".parse().unwrap();
        ctx.window_to = "2026-12-03T12:00:00Z".parse().unwrap();
        assert_eq!(newest_dialed(&files, 3000, &ctx), None);
    }

    #[test]
    fn a_stale_address_names_the_recreated_container_and_the_remedy() {
        let c = inspect(
            r#"{"Id":"0123456789abcdef","Name":"/shop-app","Created":"2026-12-03T10:59:20Z",
            "State":{"Status":"running","Running":true,"Pid":4242,"StartedAt":"2026-12-03T10:59:21Z"},
            "Config":{"Image":"shop-app:2"},
            "NetworkSettings":{"Networks":{"shop":{"IPAddress":"10.1.0.3"}}}}"#,
        );
        let p = Params {
            container: "shop-app".into(),
            port: Some("app:3000".into()),
            ..Params::default()
        };
        let d = Dialed {
            addr: "10.1.0.2".parse().unwrap(),
            port: 3000,
            line: "connect() failed".into(),
            file: "/var/lib/docker/containers/x/x-json.log".into(),
        };
        let r = judge(&p, &c, None, now(), &ctx()).exclude(Cause::UpstreamRefused, "x");
        let r = stale_address(
            r,
            &p,
            &c,
            &d,
            &["10.1.0.3".parse().unwrap()],
            Some(("shop-worker".into(), "running".into())),
            now(),
        );
        assert_eq!(r.outcome, Outcome::Problem);
        assert!(r.excluded.is_empty());
        assert_eq!(r.diagnoses[0].cause, Cause::UpstreamRefused);
        assert_eq!(
            r.diagnoses[0].summary,
            "nginx dials 10.1.0.2:3000, the address app had when nginx resolved it at start; app is container shop-app now, created 40 s ago at 10.1.0.3, and 10.1.0.2 belongs to container shop-worker (running) now: reload nginx so it resolves app again (or use `resolver 127.0.0.11` with a variable in proxy_pass)"
        );
        assert_eq!(r.facts["container.stale_address"], "10.1.0.2:3000");
    }

    #[test]
    fn port_parsing() {
        for (given, want) in [
            ("3000", Some(3000)),
            ("app:3000", Some(3000)),
            ("http://app:3000/", Some(3000)),
            ("[::1]:80", Some(80)),
            ("app", None),
        ] {
            let p = Params {
                container: "x".into(),
                port: Some(given.into()),
                ..Params::default()
            };
            assert_eq!(p.dialled_port(), want, "{given}");
        }
    }
}
