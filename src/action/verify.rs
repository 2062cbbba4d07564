//! Verify-after-fix: re-probe the original failing URL a few times, a few
//! seconds apart, and keep before/after (status, latency) for the ticket.
//! Bounded: at most [`MAX_PROBES`] probes, each with [`PROBE_TIMEOUT`],
//! pauses capped at [`MAX_PAUSE`]; redirects are not followed.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// At most this many probes in one verification.
pub const MAX_PROBES: usize = 20;
/// Longest pause between probes.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);
/// One probe's time limit.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// One request to the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Probe {
    /// HTTP status, or `None` when no response came.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why no response came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Probe {
    /// A response below 500 (the page answers; 4xx is the app's own answer).
    pub fn answers(&self) -> bool {
        self.status.is_some_and(|s| s < 500)
    }

    /// "200 in 12 ms" or "no response (connection refused) after 3 ms".
    pub fn describe(&self) -> String {
        match (self.status, &self.error) {
            (Some(s), _) => format!("{s} in {} ms", self.latency_ms),
            (None, Some(e)) => format!("no response ({e}) after {} ms", self.latency_ms),
            (None, None) => format!("no response after {} ms", self.latency_ms),
        }
    }
}

/// Before and after a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifyResult {
    pub url: String,
    /// Probes from before the action (as the caller recorded them).
    pub before: Vec<Probe>,
    pub after: Vec<Probe>,
}

impl VerifyResult {
    /// Every probe after the fix got an answer below 500.
    pub fn fixed(&self) -> bool {
        !self.after.is_empty() && self.after.iter().all(Probe::answers)
    }

    /// One line for the ticket.
    pub fn summary(&self) -> String {
        let list = |v: &[Probe]| v.iter().map(Probe::describe).collect::<Vec<_>>().join(", ");
        format!(
            "{}: before [{}], after [{}]: {}",
            self.url,
            list(&self.before),
            list(&self.after),
            if self.fixed() {
                "the URL answers again"
            } else {
                "still failing"
            }
        )
    }
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROBE_TIMEOUT)
        .user_agent(concat!("triage502/", env!("CARGO_PKG_VERSION"), " verify"))
        .build()
        .map_err(|e| e.to_string())
}

async fn probe_with(c: &reqwest::Client, url: &str) -> Probe {
    let t0 = Instant::now();
    let r = c.get(url).send().await;
    let latency_ms = t0.elapsed().as_millis() as u64;
    match r {
        Ok(resp) => Probe {
            status: Some(resp.status().as_u16()),
            latency_ms,
            error: None,
        },
        Err(e) => Probe {
            status: None,
            latency_ms,
            error: Some(error_text(&e)),
        },
    }
}

fn error_text(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    // Bounded by the error chain's depth (a handful of links).
    for _ in 0..8 {
        let Some(x) = src else { break };
        s = format!("{s}: {x}");
        src = x.source();
    }
    s
}

/// GET `url` once.
pub async fn probe(url: &str) -> Probe {
    match client() {
        Ok(c) => probe_with(&c, url).await,
        Err(e) => Probe {
            status: None,
            latency_ms: 0,
            error: Some(e),
        },
    }
}

/// Probe `url` `n` times (at most [`MAX_PROBES`]), each after a `pause` (at
/// most [`MAX_PAUSE`]), after a fix; `before` are the probes from before it.
pub async fn verify(url: &str, n: usize, pause: Duration, before: Vec<Probe>) -> VerifyResult {
    let n = n.clamp(1, MAX_PROBES);
    let pause = pause.min(MAX_PAUSE);
    let mut after = Vec::with_capacity(n);
    let c = client();
    for _ in 0..n {
        // The first probe waits too: a reload hands over to new workers
        // asynchronously, and the old ones may answer for a moment.
        tokio::time::sleep(pause).await;
        after.push(match &c {
            Ok(c) => probe_with(c, url).await,
            Err(e) => Probe {
                status: None,
                latency_ms: 0,
                error: Some(e.clone()),
            },
        });
    }
    VerifyResult {
        url: url.to_owned(),
        before,
        after,
    }
}
