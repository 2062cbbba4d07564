//! `discovery`: map the serving path of the URL on this host and publish
//! it as facts for later nodes (`front.kind`, `upstream`, `error_logs`,
//! `worker_user`, `settings.proxy_read_timeout`, ...).
//!
//! Ok when the front server was found and its route mapped; inconclusive
//! with the reason otherwise (the gateway is not on this host, the config
//! cannot be parsed, permission). Evidence: the configuration lines of the
//! server block, location and upstream, each with `file:line`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{CheckContext, CheckReport, Evidence, KindDoc, Outcome};
use crate::discovery;
use crate::duration::HumanDuration;

/// Parameters of the `discovery` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The URL whose serving path to map.
    pub url: String,
    /// Facts the operator knows better (`error_logs = "/srv/logs/error.log"`,
    /// `front.config = "/opt/nginx/nginx.conf"`); they win over discovery
    /// and are reported as overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    /// How long discovery may take (default 20s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

pub const DOC: KindDoc = KindDoc {
    kind: "discovery",
    summary: "Map the URL's serving path on this host: front server, config, route, upstreams and listeners, logs, worker user, settings.",
    example: r#"{ discovery = { url = "{{ url }}" } }"#,
    facts: discovery::facts::FACTS,
};

impl Params {
    pub fn label(&self) -> String {
        format!("map the serving path of {}", self.url)
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(20), |d| d.0)
    }
}

pub async fn run(p: &Params, _ctx: &CheckContext) -> CheckReport {
    let started = Instant::now();
    let mut report = match discovery::discover(&p.url, &p.overrides).await {
        Ok(map) => report_of(&map, p.label()),
        Err(e) => CheckReport::new(DOC.kind, p.label(), Outcome::Inconclusive, e.to_string()),
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// The check report for a finished map.
pub fn report_of(map: &discovery::ServiceMap, label: String) -> CheckReport {
    let (outcome, summary) = if let Some(g) = &map.gateway {
        (Outcome::Inconclusive, g.clone())
    } else if let (Some(f), true) = (&map.front, map.is_mapped()) {
        let loc = map
            .route
            .as_ref()
            .and_then(|r| r.location.as_ref().or(r.server_block.as_ref()))
            .map(|p| format!(" route {}", p.at()))
            .unwrap_or_default();
        let up = map
            .facts
            .get("upstream")
            .map(|u| format!(" → upstream {u}"))
            .unwrap_or_default();
        (Outcome::Ok, format!("{} (pid {}){loc}{up}", f.kind, f.pid))
    } else {
        let why = map
            .unknown
            .iter()
            .find(|u| matches!(u.fact.as_str(), "route" | "front.kind" | "front.pid"))
            .map_or_else(
                || "the route could not be mapped".to_owned(),
                |u| u.reason.clone(),
            );
        (Outcome::Inconclusive, why)
    };
    let mut r = CheckReport::new(DOC.kind, label, outcome, summary);
    r.unseen.clone_from(&map.unseen);
    if let Some(e) = map.engine.as_ref().filter(|e| e.permission) {
        // Containers on the path, but the Engine may not be asked: their state, health and
        // logs are unseen.
        r = r.unseen(crate::check::Unseen::new(
            format!(
                "the container engine{}",
                e.socket
                    .as_ref()
                    .map(|s| format!(" ({})", s.display()))
                    .unwrap_or_default()
            ),
            e.reason.clone(),
            e.fix.clone(),
        ));
    }
    r.facts = map.facts.clone();
    r.evidence.clone_from(&map.evidence);
    for u in &map.unknown {
        r.evidence.push(Evidence::new(
            "unknown",
            format!("{}: {}", u.fact, u.reason),
        ));
    }
    for (k, o) in &map.overridden {
        r.evidence
            .push(Evidence::new("overridden", format!("{k} = {}", o.value)).at("--var"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_with_no_listener_is_inconclusive_not_local() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let p = Params {
            url: format!("http://127.0.0.1:{port}/"),
            overrides: BTreeMap::new(),
            timeout: None,
        };
        let r = run(&p, &CheckContext::last(Duration::from_secs(60))).await;
        assert_eq!(r.outcome, Outcome::Inconclusive);
        assert!(
            r.summary.contains("the gateway is not on this host"),
            "{}",
            r.summary
        );
        assert_eq!(r.facts["gateway_local"], "no");
    }

    #[tokio::test]
    async fn overrides_are_published_and_marked() {
        let p = Params {
            url: "http://127.0.0.1:1/".into(),
            overrides: [("error_log".to_owned(), "/srv/logs/error.log".to_owned())].into(),
            timeout: None,
        };
        let r = run(&p, &CheckContext::last(Duration::from_secs(60))).await;
        assert_eq!(r.facts["error_logs"], "/srv/logs/error.log");
        assert!(r.evidence.iter().any(|e| e.label == "overridden"));
    }
}
