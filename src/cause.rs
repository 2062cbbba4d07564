//! The fixed cause taxonomy shared by playbooks, reports, tickets and JSON.
//!
//! The ids are the contract (`../shared/docs/signatures.md`); their titles,
//! explanations and fixes are data in `assets/causes.toml`, so wording can be
//! improved without touching code. A test keeps both lists in step.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every root cause the product can name. Serialised as its snake_case id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    UpstreamRefused,
    SocketMissing,
    SocketPermission,
    UpstreamTimeout,
    UpstreamClosed,
    InvalidResponse,
    HeaderTooBig,
    AppFatal,
    UpstreamOverloaded,
    NoLiveUpstreams,
    DnsFailure,
    TlsUpstream,
    FirewallBlocked,
    ResourceExhaustion,
    CacheFault,
    ConfigError,
    EdgeError,
    FrontendDown,
    RecentChange,
}

impl Cause {
    /// All causes, in taxonomy order.
    pub const ALL: [Cause; 19] = [
        Cause::UpstreamRefused,
        Cause::SocketMissing,
        Cause::SocketPermission,
        Cause::UpstreamTimeout,
        Cause::UpstreamClosed,
        Cause::InvalidResponse,
        Cause::HeaderTooBig,
        Cause::AppFatal,
        Cause::UpstreamOverloaded,
        Cause::NoLiveUpstreams,
        Cause::DnsFailure,
        Cause::TlsUpstream,
        Cause::FirewallBlocked,
        Cause::ResourceExhaustion,
        Cause::CacheFault,
        Cause::ConfigError,
        Cause::EdgeError,
        Cause::FrontendDown,
        Cause::RecentChange,
    ];

    /// The stable id used in playbooks, JSON and tickets.
    pub fn id(self) -> &'static str {
        match self {
            Cause::UpstreamRefused => "upstream_refused",
            Cause::SocketMissing => "socket_missing",
            Cause::SocketPermission => "socket_permission",
            Cause::UpstreamTimeout => "upstream_timeout",
            Cause::UpstreamClosed => "upstream_closed",
            Cause::InvalidResponse => "invalid_response",
            Cause::HeaderTooBig => "header_too_big",
            Cause::AppFatal => "app_fatal",
            Cause::UpstreamOverloaded => "upstream_overloaded",
            Cause::NoLiveUpstreams => "no_live_upstreams",
            Cause::DnsFailure => "dns_failure",
            Cause::TlsUpstream => "tls_upstream",
            Cause::FirewallBlocked => "firewall_blocked",
            Cause::ResourceExhaustion => "resource_exhaustion",
            Cause::CacheFault => "cache_fault",
            Cause::ConfigError => "config_error",
            Cause::EdgeError => "edge_error",
            Cause::FrontendDown => "frontend_down",
            Cause::RecentChange => "recent_change",
        }
    }

    /// A consequence or contributing factor rather than a root cause: ranked
    /// after root causes (`no_live_upstreams` follows the refusals that
    /// marked the peers failed; `recent_change` explains, but is not, a fault).
    pub fn is_secondary(self) -> bool {
        matches!(self, Cause::NoLiveUpstreams | Cause::RecentChange)
    }

    /// Title, explanation and fixes from `assets/causes.toml`.
    pub fn info(self) -> &'static CauseInfo {
        let all = catalogue();
        // The test `every_cause_has_info` proves every id is in the asset.
        &all[self.id()]
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The error for a string that is not a cause id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cause id `{0}`")]
pub struct UnknownCause(pub String);

impl FromStr for Cause {
    type Err = UnknownCause;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cause::ALL
            .into_iter()
            .find(|c| c.id() == s)
            .ok_or_else(|| UnknownCause(s.to_owned()))
    }
}

/// Human text about one cause, loaded from `assets/causes.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseInfo {
    pub title: String,
    pub explanation: String,
    pub fixes: Vec<String>,
}

const CAUSES_TOML: &str = include_str!("../assets/causes.toml");

fn catalogue() -> &'static BTreeMap<String, CauseInfo> {
    static CAT: OnceLock<BTreeMap<String, CauseInfo>> = OnceLock::new();
    CAT.get_or_init(|| {
        // The asset is compiled in and checked by `every_cause_has_info`;
        // a broken asset is a build defect, not an operator error.
        #[allow(clippy::expect_used)]
        toml::from_str(CAUSES_TOML).expect("assets/causes.toml is valid (tested)")
    })
}

/// How bad a finding is; orders findings in reports.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_info_and_round_trips() {
        let cat = catalogue();
        for c in Cause::ALL {
            assert!(cat.contains_key(c.id()), "causes.toml lacks {c}");
            assert!(!c.info().fixes.is_empty(), "{c} has no fixes");
            assert_eq!(c.id().parse::<Cause>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.id()));
        }
        assert_eq!(cat.len(), Cause::ALL.len(), "causes.toml has extra ids");
    }

    #[test]
    fn ids_match_the_signatures_catalogue_table() {
        // The taxonomy table in shared/docs is the contract; keep a copy of its ids here.
        let ids = "upstream_refused socket_missing socket_permission upstream_timeout \
                   upstream_closed invalid_response header_too_big app_fatal upstream_overloaded \
                   no_live_upstreams dns_failure tls_upstream firewall_blocked resource_exhaustion \
                   cache_fault config_error edge_error frontend_down recent_change";
        let ours: Vec<&str> = Cause::ALL.iter().map(|c| c.id()).collect();
        assert_eq!(ours, ids.split_whitespace().collect::<Vec<_>>());
    }
}
