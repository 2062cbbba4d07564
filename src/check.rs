//! What a check is: typed parameters in, data out.
//!
//! A check never changes anything on the host. It returns a [`CheckReport`]
//! whose outcome is an *answer* ("the upstream refused the connection" is a
//! `problem`), not a Rust error; only a check that could not look at all is
//! `inconclusive`, with the reason and the remedy. Each kind lives in its own
//! file under `checks/`; this module is the one place that lists them.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cause::{Cause, Severity};
use crate::checks;

/// The verdict of one check (or of a node's checks together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Looked, and found nothing wrong.
    Ok,
    /// Looked, and found the fault the check is about.
    Problem,
    /// Could not tell (no permission, tool missing, value unknown, timed out).
    Inconclusive,
}

impl Outcome {
    /// The outcome of several checks run together: any problem wins, then
    /// any inconclusive; all ok is ok. No checks at all is ok.
    pub fn combine(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        outcomes
            .into_iter()
            .fold(Outcome::Ok, |acc, o| match (acc, o) {
                (Outcome::Problem, _) | (_, Outcome::Problem) => Outcome::Problem,
                (Outcome::Inconclusive, _) | (_, Outcome::Inconclusive) => Outcome::Inconclusive,
                _ => Outcome::Ok,
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Problem => "problem",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// One piece of proof: a log line, a probe result, a config line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What this is, e.g. "response", "error log line", "listener".
    pub label: String,
    /// The observed text, quoted as it was seen (redacted where needed).
    pub text: String,
    /// Where it came from: `file:line`, a URL, a command, `/proc/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Evidence {
    pub fn new(label: impl Into<String>, text: impl Into<String>) -> Self {
        Evidence {
            label: label.into(),
            text: text.into(),
            source: None,
        }
    }

    #[must_use]
    pub fn at(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// How directly a piece of evidence shows the failing hop.
///
/// `direct`: the failure itself, seen on the failing path (the proxy's own error lines for
/// this upstream, a probe from the proxy's vantage point that reproduces the failure, a
/// configuration test that fails). `circumstantial`: something that *could* explain the
/// failure (a rule that could match, a resource near a threshold, a change in time) but does
/// not show it happening. Reports rank direct findings first and never promote a
/// circumstantial one to the top when direct evidence is missing; they say so instead.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    #[default]
    Direct,
    Circumstantial,
}

impl Basis {
    pub fn is_direct(self) -> bool {
        self == Basis::Direct
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Direct => "direct",
            Basis::Circumstantial => "circumstantial",
        }
    }

    /// The stronger of two: what a cause's finding becomes when both kinds are seen.
    #[must_use]
    pub fn strongest(self, other: Basis) -> Basis {
        self.min(other)
    }
}

/// A cause the check itself recognised in what it saw (a classified log
/// line, a refused connection, an edge error page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnosis {
    pub cause: Cause,
    pub severity: Severity,
    pub summary: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Direct evidence of the failing hop, or circumstantial (could explain it).
    #[serde(default, skip_serializing_if = "is_direct")]
    pub basis: Basis,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_direct(b: &Basis) -> bool {
    b.is_direct()
}

/// Something a check saw that does not concern the failing path: an unrelated process
/// OOM-killed, an unrelated package upgraded, a firewall rule no packet of this path
/// reaches. It is shown as context ("seen, set aside") with the reason, never as a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Aside {
    /// What was seen, one line (e.g. "OOM kill of python3 (pid 4242) at 16:41").
    pub seen: String,
    /// Why it was set aside (e.g. "its memory cgroup /docker/ab12 is not on the path").
    pub why: String,
    /// Where it came from: `file:line`, a command, `/proc/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Aside {
    pub fn new(seen: impl Into<String>, why: impl Into<String>) -> Self {
        Aside {
            seen: seen.into(),
            why: why.into(),
            source: None,
        }
    }

    #[must_use]
    pub fn at(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// Something a check could not look at (a log it may not read, the owner of a socket, the
/// firewall's rules), why, and the one thing that would let it. An unprivileged run lists
/// these first: what it could not see bounds what its findings can say.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct Unseen {
    /// What could not be seen (e.g. "the error log /var/log/nginx/error.log").
    pub what: String,
    /// Why (e.g. "permission denied").
    pub why: String,
    /// What would let triage502 see it (e.g. "run as root (sudo), or join group adm").
    pub how: String,
}

impl Unseen {
    pub fn new(what: impl Into<String>, why: impl Into<String>, how: impl Into<String>) -> Self {
        Unseen {
            what: what.into(),
            why: why.into(),
            how: how.into(),
        }
    }
}

/// How to see what only root can see, in the operator's words.
pub const AS_ROOT: &str = "run triage502 as root (sudo)";

/// A cause the check looked for and can exclude, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exclusion {
    pub cause: Cause,
    pub reason: String,
}

/// Everything one check run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckReport {
    /// The check kind, e.g. `http`.
    pub kind: String,
    /// What was checked, e.g. `GET http://127.0.0.1:8080/`.
    pub label: String,
    pub outcome: Outcome,
    /// One line an operator understands.
    pub summary: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Values for later nodes (`upstream`, `error_logs`, `worker_user`, ...).
    #[serde(default)]
    pub facts: BTreeMap<String, String>,
    #[serde(default)]
    pub diagnoses: Vec<Diagnosis>,
    #[serde(default)]
    pub excluded: Vec<Exclusion>,
    /// What was seen off the failing path, set aside with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<Aside>,
    /// What the check could not look at, and what would let it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseen: Vec<Unseen>,
    pub duration_ms: u64,
}

impl CheckReport {
    /// A report with no evidence yet; checks fill in the rest.
    pub fn new(
        kind: &str,
        label: impl Into<String>,
        outcome: Outcome,
        summary: impl Into<String>,
    ) -> Self {
        CheckReport {
            kind: kind.to_owned(),
            label: label.into(),
            outcome,
            summary: summary.into(),
            evidence: Vec::new(),
            facts: BTreeMap::new(),
            diagnoses: Vec::new(),
            excluded: Vec::new(),
            context: Vec::new(),
            unseen: Vec::new(),
            duration_ms: 0,
        }
    }

    #[must_use]
    pub fn with_evidence(mut self, e: Evidence) -> Self {
        self.evidence.push(e);
        self
    }

    #[must_use]
    pub fn with_fact(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.facts.insert(k.into(), v.into());
        self
    }

    #[must_use]
    pub fn diagnose(
        mut self,
        cause: Cause,
        severity: Severity,
        summary: impl Into<String>,
        evidence: Vec<Evidence>,
    ) -> Self {
        self.diagnoses.push(Diagnosis {
            cause,
            severity,
            summary: summary.into(),
            evidence,
            basis: Basis::Direct,
        });
        self
    }

    /// Marks the last diagnosis as circumstantial: it could explain the failure but does not
    /// show it happening on the failing path.
    #[must_use]
    pub fn circumstantial(mut self) -> Self {
        if let Some(d) = self.diagnoses.last_mut() {
            d.basis = Basis::Circumstantial;
        }
        self
    }

    /// Records something seen off the failing path, with why it was set aside.
    #[must_use]
    pub fn aside(mut self, a: Aside) -> Self {
        self.context.push(a);
        self
    }

    /// Records something the check could not look at.
    #[must_use]
    pub fn unseen(mut self, u: Unseen) -> Self {
        if !self.unseen.contains(&u) {
            self.unseen.push(u);
        }
        self
    }

    #[must_use]
    pub fn exclude(mut self, cause: Cause, reason: impl Into<String>) -> Self {
        self.excluded.push(Exclusion {
            cause,
            reason: reason.into(),
        });
        self
    }
}

/// What a check may use besides its own parameters.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The incident window: log checks look at `[from, to]`.
    pub window_from: jiff::Timestamp,
    pub window_to: jiff::Timestamp,
    /// Where network probes (tcp, http, dns, unix_socket, upstream_probe)
    /// look from: this host, or the front's container namespace once
    /// discovery found the front in a container.
    pub vantage: crate::sys::netns::Vantage,
    /// `host:port` authorities that are the client's side of the path (the
    /// URL, the published port): an `http` check on them stays on the host.
    pub client_side: Vec<String>,
}

impl CheckContext {
    /// A window ending now and reaching back `since`.
    pub fn last(since: Duration) -> Self {
        let now = jiff::Timestamp::now();
        let back =
            jiff::SignedDuration::try_from(since).unwrap_or(jiff::SignedDuration::from_hours(1));
        CheckContext {
            window_from: now.checked_sub(back).unwrap_or(now),
            window_to: now,
            vantage: crate::sys::netns::Vantage::Host,
            client_side: Vec::new(),
        }
    }

    /// The same context with probes looking from `vantage`.
    #[must_use]
    pub fn from_vantage(
        mut self,
        vantage: crate::sys::netns::Vantage,
        client_side: Vec<String>,
    ) -> Self {
        self.vantage = vantage;
        self.client_side = client_side;
        self
    }
}

/// Static documentation of a check kind, for `checks list` and validation.
#[derive(Debug, Clone, Copy)]
pub struct KindDoc {
    pub kind: &'static str,
    pub summary: &'static str,
    /// A TOML example of the kind inside a node's `checks` list.
    pub example: &'static str,
    /// Facts the kind may publish for later nodes' templates.
    pub facts: &'static [&'static str],
}

/// A check as written in a playbook: the kind is the key, the table its params
/// (`{ http = { url = "{{ url }}" } }`). Unknown kinds and params are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckSpec {
    Http(checks::http::Params),
    UpstreamProbe(checks::upstream_probe::Params),
    Pages(checks::pages::Params),
    Dns(checks::dns::Params),
    Tcp(checks::tcp::Params),
    UnixSocket(checks::unix_socket::Params),
    Listener(checks::listener::Params),
    Service(checks::service::Params),
    ConfigTest(checks::config_test::Params),
    Resources(checks::resources::Params),
    RecentChanges(checks::recent_changes::Params),
    Firewall(checks::firewall::Params),
    Plugins(checks::plugins::Params),
    Cache(checks::cache::Params),
    Command(checks::command::Params),
    Discovery(checks::discovery::Params),
    LogScan(checks::log_scan::Params),
    AccessLog(checks::access_log::Params),
    Remedy(checks::remedy::Params),
    Container(checks::container::Params),
    IisService(checks::iis_service::Params),
    Backends(checks::backends::Params),
}

/// Documentation of every kind, in the order `checks list` prints them.
pub const KINDS: &[KindDoc] = &[
    checks::http::DOC,
    checks::upstream_probe::DOC,
    checks::pages::DOC,
    checks::dns::DOC,
    checks::tcp::DOC,
    checks::unix_socket::DOC,
    checks::listener::DOC,
    checks::service::DOC,
    checks::config_test::DOC,
    checks::resources::DOC,
    checks::recent_changes::DOC,
    checks::firewall::DOC,
    checks::plugins::DOC,
    checks::cache::DOC,
    checks::command::DOC,
    checks::discovery::DOC,
    checks::log_scan::DOC,
    checks::access_log::DOC,
    checks::remedy::DOC,
    checks::container::DOC,
    checks::iis_service::DOC,
    checks::backends::DOC,
];

/// Upper bound on any check's own timeout: a check never holds the operator longer.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => checks::http::DOC.kind,
            CheckSpec::UpstreamProbe(_) => checks::upstream_probe::DOC.kind,
            CheckSpec::Pages(_) => checks::pages::DOC.kind,
            CheckSpec::Dns(_) => checks::dns::DOC.kind,
            CheckSpec::Tcp(_) => checks::tcp::DOC.kind,
            CheckSpec::UnixSocket(_) => checks::unix_socket::DOC.kind,
            CheckSpec::Listener(_) => checks::listener::DOC.kind,
            CheckSpec::Service(_) => checks::service::DOC.kind,
            CheckSpec::ConfigTest(_) => checks::config_test::DOC.kind,
            CheckSpec::Resources(_) => checks::resources::DOC.kind,
            CheckSpec::RecentChanges(_) => checks::recent_changes::DOC.kind,
            CheckSpec::Firewall(_) => checks::firewall::DOC.kind,
            CheckSpec::Plugins(_) => checks::plugins::DOC.kind,
            CheckSpec::Cache(_) => checks::cache::DOC.kind,
            CheckSpec::Command(_) => checks::command::DOC.kind,
            CheckSpec::Discovery(_) => checks::discovery::DOC.kind,
            CheckSpec::LogScan(_) => checks::log_scan::DOC.kind,
            CheckSpec::AccessLog(_) => checks::access_log::DOC.kind,
            CheckSpec::Remedy(_) => checks::remedy::DOC.kind,
            CheckSpec::Container(_) => checks::container::DOC.kind,
            CheckSpec::IisService(_) => checks::iis_service::DOC.kind,
            CheckSpec::Backends(_) => checks::backends::DOC.kind,
        }
    }

    /// A short description of what this instance checks.
    pub fn label(&self) -> String {
        match self {
            CheckSpec::Http(p) => p.label(),
            CheckSpec::UpstreamProbe(p) => p.label(),
            CheckSpec::Pages(p) => p.label(),
            CheckSpec::Dns(p) => p.label(),
            CheckSpec::Tcp(p) => p.label(),
            CheckSpec::UnixSocket(p) => p.label(),
            CheckSpec::Listener(p) => p.label(),
            CheckSpec::Service(p) => p.label(),
            CheckSpec::ConfigTest(p) => p.label(),
            CheckSpec::Resources(p) => p.label(),
            CheckSpec::RecentChanges(p) => p.label(),
            CheckSpec::Firewall(p) => p.label(),
            CheckSpec::Plugins(p) => p.label(),
            CheckSpec::Cache(p) => p.label(),
            CheckSpec::Command(p) => p.label(),
            CheckSpec::Discovery(p) => p.label(),
            CheckSpec::LogScan(p) => p.label(),
            CheckSpec::AccessLog(p) => p.label(),
            CheckSpec::Remedy(p) => p.label(),
            CheckSpec::Container(p) => p.label(),
            CheckSpec::IisService(p) => p.label(),
            CheckSpec::Backends(p) => p.label(),
        }
    }

    /// How long the runner lets it run (its own limit, capped at [`MAX_TIMEOUT`]).
    pub fn timeout(&self) -> Duration {
        let t = match self {
            CheckSpec::Http(p) => p.timeout(),
            CheckSpec::UpstreamProbe(p) => p.timeout(),
            CheckSpec::Pages(p) => p.timeout(),
            CheckSpec::Dns(p) => p.timeout(),
            CheckSpec::Tcp(p) => p.timeout(),
            CheckSpec::UnixSocket(p) => p.timeout(),
            CheckSpec::Listener(p) => p.timeout(),
            CheckSpec::Service(p) => p.timeout(),
            CheckSpec::ConfigTest(p) => p.timeout(),
            CheckSpec::Resources(p) => p.timeout(),
            CheckSpec::RecentChanges(p) => p.timeout(),
            CheckSpec::Firewall(p) => p.timeout(),
            CheckSpec::Plugins(p) => p.timeout(),
            CheckSpec::Cache(p) => p.timeout(),
            CheckSpec::Command(p) => p.timeout(),
            CheckSpec::Discovery(p) => p.timeout(),
            CheckSpec::LogScan(p) => p.timeout(),
            CheckSpec::AccessLog(p) => p.timeout(),
            CheckSpec::Remedy(p) => p.timeout(),
            CheckSpec::Container(p) => p.timeout(),
            CheckSpec::IisService(p) => p.timeout(),
            CheckSpec::Backends(p) => p.timeout(),
        };
        t.min(MAX_TIMEOUT)
    }

    /// Run the check. Never panics on bad input; never mutates the host.
    pub async fn run(&self, ctx: &CheckContext) -> CheckReport {
        if let Some(why) = crate::platform::unavailable(self.kind()) {
            return CheckReport::new(self.kind(), self.label(), Outcome::Inconclusive, why);
        }
        if !ctx.vantage.is_host() && self.probes_from_vantage(ctx) {
            return self.run_from_vantage(ctx).await;
        }
        self.run_here(ctx).await
    }

    /// Does this check probe the network from the proxy's point of view?
    /// The `http` check of the URL itself is the client's view and stays
    /// on the host.
    fn probes_from_vantage(&self, ctx: &CheckContext) -> bool {
        match self {
            // Names are resolved first with the proxy's resolver (see
            // `run_from_vantage`); a unix socket lives in the proxy's mount
            // namespace, not its network one.
            CheckSpec::Tcp(_) => true,
            // Every server from the balancer's namespace. A server given by name resolves with
            // this host's resolver there; the evidence names the address each probe dialled.
            CheckSpec::Backends(_) => true,
            CheckSpec::UpstreamProbe(p) => !p.address.starts_with("unix:"),
            // Only address literals: the system resolver would read this
            // host's resolv.conf from inside the container's namespace.
            CheckSpec::Http(p) => url::Url::parse(&p.url).is_ok_and(|u| {
                let authority = format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or(0)
                );
                !matches!(u.host(), Some(url::Host::Domain(_)))
                    && !ctx.client_side.contains(&authority)
            }),
            _ => false,
        }
    }

    /// Run this check inside the vantage's network namespace (a dedicated
    /// thread, see [`crate::sys::netns`]). Host names are resolved first
    /// the way the proxy resolves them (its `/etc/hosts`, its nameserver
    /// from its namespace); the evidence says where the check looked from.
    async fn run_from_vantage(&self, ctx: &CheckContext) -> CheckReport {
        use crate::sys::netns::{self, Vantage};
        let vantage = ctx.vantage.clone();
        let Vantage::Netns { pid, .. } = vantage else {
            return self.run_here(ctx).await;
        };
        let mut spec = self.clone();
        let mut notes = Vec::new();
        let address = match &mut spec {
            CheckSpec::Tcp(p) => Some(&mut p.address),
            CheckSpec::UpstreamProbe(p) => Some(&mut p.address),
            _ => None,
        };
        if let Some(address) = address
            && !address.starts_with("unix:")
            && let Some((host, port)) =
                crate::discovery::container::split_host_port(address, "http")
            && host.parse::<std::net::IpAddr>().is_err()
        {
            let r = netns::resolve_in(Some(pid), &host, Duration::from_secs(2)).await;
            match (r.addresses.first(), &r.error) {
                (Some(ip), _) => {
                    let ep = match ip {
                        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
                        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
                    };
                    notes.push(Evidence::new(
                        "name resolved by the proxy's resolver",
                        format!(
                            "{host} → {} ({})",
                            r.addresses
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", "),
                            r.source
                        ),
                    ));
                    *address = ep;
                    if let CheckSpec::UpstreamProbe(p) = &mut spec
                        && p.host.is_none()
                    {
                        p.host = Some(host.clone());
                    }
                }
                (None, err) => {
                    // The check would ask this host's resolver from inside
                    // the container: answer with the proxy's own resolver.
                    let text = format!(
                        "{host} does not resolve {}: {}",
                        vantage.describe(),
                        err.as_deref().unwrap_or("no address")
                    );
                    let evidence =
                        Evidence::new("name resolved by the proxy's resolver", text.clone())
                            .at(r.source.clone());
                    let mut report = match &spec {
                        CheckSpec::UpstreamProbe(p) => checks::upstream_probe::connect_failed(
                            p,
                            checks::upstream_probe::ConnectError {
                                result: "dns",
                                cause: Some(Cause::DnsFailure),
                                text,
                            },
                            std::time::Instant::now(),
                        ),
                        _ => CheckReport::new(self.kind(), self.label(), Outcome::Problem, text)
                            .with_fact("tcp.result", "dns"),
                    };
                    report.evidence.insert(
                        0,
                        Evidence::new("looked", vantage.describe())
                            .at(format!("/proc/{pid}/ns/net")),
                    );
                    report.evidence.insert(1, evidence);
                    report.facts.insert("vantage".into(), vantage.fact());
                    return report;
                }
            }
        }
        let mut inner = ctx.clone();
        inner.vantage = Vantage::Host;
        let run = spec.clone();
        let result = vantage
            .run(move || async move { run.run_here(&inner).await })
            .await;
        let mut report = match result {
            Ok(r) => r,
            Err(e) => CheckReport::new(
                self.kind(),
                self.label(),
                Outcome::Inconclusive,
                format!("not run {}: {e}", vantage.describe()),
            ),
        };
        report.evidence.insert(
            0,
            Evidence::new("looked", vantage.describe()).at(format!("/proc/{pid}/ns/net")),
        );
        for (i, n) in notes.into_iter().enumerate() {
            report.evidence.insert(1 + i, n);
        }
        report.facts.insert("vantage".into(), vantage.fact());
        report
    }

    async fn run_here(&self, ctx: &CheckContext) -> CheckReport {
        match self {
            CheckSpec::Http(p) => checks::http::run(p, ctx).await,
            CheckSpec::UpstreamProbe(p) => checks::upstream_probe::run(p, ctx).await,
            CheckSpec::Pages(p) => checks::pages::run(p, ctx).await,
            CheckSpec::Dns(p) => checks::dns::run(p, ctx).await,
            CheckSpec::Tcp(p) => checks::tcp::run(p, ctx).await,
            CheckSpec::UnixSocket(p) => checks::unix_socket::run(p, ctx).await,
            CheckSpec::Listener(p) => checks::listener::run(p, ctx).await,
            CheckSpec::Service(p) => checks::service::run(p, ctx).await,
            CheckSpec::ConfigTest(p) => checks::config_test::run(p, ctx).await,
            CheckSpec::Resources(p) => checks::resources::run(p, ctx).await,
            CheckSpec::RecentChanges(p) => checks::recent_changes::run(p, ctx).await,
            CheckSpec::Firewall(p) => checks::firewall::run(p, ctx).await,
            CheckSpec::Plugins(p) => checks::plugins::run(p, ctx).await,
            CheckSpec::Cache(p) => checks::cache::run(p, ctx).await,
            CheckSpec::Command(p) => checks::command::run(p, ctx).await,
            CheckSpec::Discovery(p) => checks::discovery::run(p, ctx).await,
            CheckSpec::LogScan(p) => checks::log_scan::run(p, ctx).await,
            CheckSpec::AccessLog(p) => checks::access_log::run(p, ctx).await,
            CheckSpec::Remedy(p) => checks::remedy::run(p, ctx).await,
            CheckSpec::Container(p) => checks::container::run(p, ctx).await,
            CheckSpec::IisService(p) => checks::iis_service::run(p, ctx).await,
            CheckSpec::Backends(p) => checks::backends::run(p, ctx).await,
        }
    }

    /// The documentation entry of a kind name, if it exists.
    pub fn doc(kind: &str) -> Option<&'static KindDoc> {
        KINDS.iter().find(|d| d.kind == kind)
    }
}

/// Every fact name some check kind can publish.
pub fn known_facts() -> impl Iterator<Item = &'static str> {
    KINDS.iter().flat_map(|d| d.facts.iter().copied())
}

/// One parameter of a kind, as documented by its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDoc {
    pub name: String,
    pub ty: String,
    pub required: bool,
    pub description: String,
    /// From the schema's `default`, else from "(default …)" in the description.
    pub default: Option<String>,
}

fn schema_type(v: &serde_json::Value, defs: &serde_json::Value, depth: u8) -> String {
    use serde_json::Value;
    if depth > 6 {
        return "value".into();
    }
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or("");
        if name == "Duration" {
            return "duration".into();
        }
        return defs
            .get(name)
            .map_or_else(|| name.to_owned(), |d| schema_type(d, defs, depth + 1));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = v.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| schema_type(a, defs, depth + 1))
                .collect();
            return parts.join(" | ");
        }
    }
    if let Some(e) = v.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|x| {
                x.as_str()
                    .map_or_else(|| x.to_string(), |s| format!("\"{s}\""))
            })
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(c) = v.get("const") {
        return c.to_string();
    }
    let ty = match v.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("value")
            .to_owned(),
        _ => "value".into(),
    };
    match ty.as_str() {
        "array" => format!(
            "list of {}",
            v.get("items")
                .map_or_else(|| "value".into(), |i| schema_type(i, defs, depth + 1))
        ),
        "object" if v.get("properties").is_some() => "table".into(),
        "object" => "table".into(),
        _ => ty,
    }
}

/// The default a doc comment states as "(default X)" or "(default: X)",
/// up to the closing parenthesis or a `;`.
fn default_in(description: &str) -> Option<String> {
    let i = description.find("(default")?;
    let rest = &description[i + 1..];
    let mut depth = 1;
    let mut end = rest.len();
    for (j, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = j;
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = rest["default".len()..end].trim_start_matches(':').trim();
    let inner = inner.split(';').next().unwrap_or(inner).trim();
    (!inner.is_empty()).then(|| inner.to_owned())
}

/// The parameters of every kind, from the JSON schema of [`CheckSpec`].
pub fn params_docs() -> BTreeMap<String, Vec<ParamDoc>> {
    use serde_json::Value;
    let schema = serde_json::to_value(schemars::schema_for!(CheckSpec)).unwrap_or(Value::Null);
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    let variants = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in variants {
        let Some((kind, inner)) = v
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|o| o.iter().next().map(|(k, x)| (k.clone(), x.clone())))
        else {
            continue;
        };
        let params = inner
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| defs.get(r.rsplit('/').next().unwrap_or("")))
            .cloned()
            .unwrap_or(inner);
        let required: Vec<&str> = params
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut docs = Vec::new();
        if let Some(props) = params.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                let description = p
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let default = p
                    .get("default")
                    .filter(|d| !d.is_null())
                    .map(ToString::to_string)
                    .or_else(|| default_in(&description));
                docs.push(ParamDoc {
                    name: name.clone(),
                    ty: schema_type(p, &defs, 0),
                    required: required.contains(&name.as_str()),
                    description,
                    default,
                });
            }
        }
        // Required first, then in schema (declaration) order.
        docs.sort_by_key(|d| !d.required);
        out.insert(kind, docs);
    }
    out
}

/// The text of `triage502 checks list`: every kind with its summary,
/// parameters (name, type, description, default) and an example.
pub fn checks_list_text() -> String {
    use std::fmt::Write as _;
    let docs = params_docs();
    let mut s = String::new();
    for k in KINDS {
        let _ = writeln!(s, "{}\n  {}", k.kind, k.summary);
        let _ = writeln!(s, "  params:");
        for p in docs.get(k.kind).map(Vec::as_slice).unwrap_or_default() {
            let mut tags = Vec::new();
            if p.required {
                tags.push("required".to_owned());
            }
            if let Some(d) = &p.default {
                tags.push(format!("default {d}"));
            }
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!(" ({})", tags.join(", "))
            };
            let _ = writeln!(
                s,
                "    {}: {}{tags}\n        {}",
                p.name, p.ty, p.description
            );
        }
        if !k.facts.is_empty() {
            let _ = writeln!(s, "  facts: {}", k.facts.join(", "));
        }
        let _ = writeln!(s, "  example: checks = [{}]\n", k.example);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_prefers_problem_then_inconclusive() {
        use Outcome::{Inconclusive as I, Ok as O, Problem as P};
        assert_eq!(Outcome::combine([O, I, P]), P);
        assert_eq!(Outcome::combine([O, I]), I);
        assert_eq!(Outcome::combine([O, O]), O);
        assert_eq!(Outcome::combine([]), O);
    }

    #[test]
    fn checks_list_shows_every_kind_with_params_and_example() {
        let text = checks_list_text();
        let docs = params_docs();
        for k in KINDS {
            assert!(
                text.contains(&format!("{}\n  ", k.kind)),
                "{} missing",
                k.kind
            );
            assert!(text.contains(k.example), "example of {} missing", k.kind);
            let params = &docs[k.kind];
            assert!(!params.is_empty(), "{} has no params", k.kind);
            for p in params {
                assert!(
                    !p.description.is_empty(),
                    "{}.{} has no doc comment",
                    k.kind,
                    p.name
                );
                assert!(text.contains(&format!("    {}: {}", p.name, p.ty)));
            }
        }
        let http = &docs["http"];
        let timeout = http.iter().find(|p| p.name == "timeout").unwrap();
        assert_eq!(timeout.ty, "duration");
        assert_eq!(timeout.default.as_deref(), Some("10s"));
        assert!(http.iter().find(|p| p.name == "url").unwrap().required);
    }

    #[test]
    fn every_kind_example_parses_as_a_spec() {
        for d in KINDS {
            let v: CheckSpec = toml::from_str::<toml::Table>(&format!("c = {}", d.example))
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t["c"]
                        .clone()
                        .try_into()
                        .map_err(|e: toml::de::Error| e.to_string())
                })
                .unwrap_or_else(|e| panic!("example of {} does not parse: {e}", d.kind));
            assert_eq!(v.kind(), d.kind);
        }
    }
}
