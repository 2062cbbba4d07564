//! The one place that spawns checks.
//!
//! A batch of planned checks runs concurrently on a `JoinSet`, each under its
//! own timeout; every result is sent as owned data over a channel, so the TUI
//! and the non-interactive mode consume the same stream. Dropping or
//! cancelling the runner aborts probes still in flight (the operator moved
//! on). A panic inside a check is caught and reported as an inconclusive
//! result that names the bug, never taking the program down.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::check::{CheckContext, CheckReport, Outcome};
use crate::duration::HumanDuration;
use crate::engine::PlannedCheck;
use crate::sys::netns::Vantage;

/// Extra time the runner grants beyond a check's own timeout before cutting it off.
pub const GRACE: Duration = Duration::from_secs(2);

/// Progress of a batch, as owned messages.
#[derive(Debug, Clone)]
pub enum RunnerEvent {
    Started {
        batch: u64,
        index: usize,
        kind: &'static str,
        label: String,
        timeout: Duration,
    },
    Finished {
        batch: u64,
        index: usize,
        report: CheckReport,
    },
}

/// Spawns batches of checks and reports over a channel.
pub struct Runner {
    set: JoinSet<()>,
    tx: mpsc::UnboundedSender<RunnerEvent>,
    ctx: Arc<CheckContext>,
    /// The vantage the last `discovery` report found (the front's
    /// container), applied to the batches started after it.
    found_vantage: Arc<std::sync::Mutex<Option<FoundVantage>>>,
}

/// A vantage and the client-side authorities that stay on the host.
type FoundVantage = (Vantage, Vec<String>);

/// The vantage a `discovery` report names: `vantage = netns:PID`, with the
/// client-side authorities (the URL and the published port).
pub fn vantage_of(report: &CheckReport) -> Option<(Vantage, Vec<String>)> {
    if report.kind != "discovery" {
        return None;
    }
    let v = report.facts.get("vantage")?;
    let vantage = match v.strip_prefix("netns:") {
        Some(pid) => Vantage::Netns {
            pid: pid.parse().ok()?,
            container: report.facts.get("front.container").cloned(),
        },
        None => Vantage::Host,
    };
    let client: Vec<String> = ["vantage.client", "published"]
        .iter()
        .filter_map(|k| report.facts.get(*k).cloned())
        .collect();
    Some((vantage, client))
}

impl Runner {
    pub fn new(ctx: CheckContext, tx: mpsc::UnboundedSender<RunnerEvent>) -> Self {
        Runner {
            set: JoinSet::new(),
            tx,
            ctx: Arc::new(ctx),
            found_vantage: Arc::default(),
        }
    }

    pub fn context(&self) -> &CheckContext {
        &self.ctx
    }

    /// Start every check of a batch; results arrive as `Finished` events.
    pub fn spawn_batch(&mut self, batch: u64, checks: Vec<PlannedCheck>) {
        // The window ends now, not when the walk started: lines the incident
        // (and our own probes) write during the walk belong to it.
        let now = jiff::Timestamp::now();
        if now > self.ctx.window_to {
            let mut ctx = (*self.ctx).clone();
            ctx.window_to = now;
            self.ctx = Arc::new(ctx);
        }
        let found = self
            .found_vantage
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        if let Some((vantage, client)) = found
            && (vantage != self.ctx.vantage || client != self.ctx.client_side)
        {
            let ctx = (*self.ctx).clone().from_vantage(vantage, client);
            self.ctx = Arc::new(ctx);
        }
        for (index, planned) in checks.into_iter().enumerate() {
            let tx = self.tx.clone();
            let ctx = self.ctx.clone();
            let found_vantage = self.found_vantage.clone();
            let timeout = planned
                .spec
                .as_ref()
                .map_or(Duration::ZERO, crate::check::CheckSpec::timeout);
            let _ = tx.send(RunnerEvent::Started {
                batch,
                index,
                kind: planned.kind,
                label: planned.label.clone(),
                timeout,
            });
            self.set.spawn(async move {
                let report = run_one(planned, &ctx, timeout).await;
                if let Some(v) = vantage_of(&report)
                    && let Ok(mut g) = found_vantage.lock()
                {
                    *g = Some(v);
                }
                let _ = tx.send(RunnerEvent::Finished {
                    batch,
                    index,
                    report,
                });
            });
        }
    }

    /// Abort every check still running (their results never arrive).
    pub fn cancel(&mut self) {
        self.set.abort_all();
    }

    /// Reap finished tasks (keeps the set small in long sessions).
    pub fn reap(&mut self) {
        while self.set.try_join_next().is_some() {}
    }
}

async fn run_one(planned: PlannedCheck, ctx: &CheckContext, timeout: Duration) -> CheckReport {
    let started = Instant::now();
    let spec = match planned.spec {
        Ok(s) => s,
        Err(reason) => {
            return CheckReport::new(
                planned.kind,
                planned.label,
                Outcome::Inconclusive,
                format!("not run: {reason}"),
            );
        }
    };
    let fut = AssertUnwindSafe(spec.run(ctx)).catch_unwind();
    let mut report = match tokio::time::timeout(timeout + GRACE, fut).await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            CheckReport::new(
                spec.kind(),
                spec.label(),
                Outcome::Inconclusive,
                format!(
                    "internal error in the `{}` check (a bug, please report it): {what}",
                    spec.kind()
                ),
            )
        }
        Err(_) => CheckReport::new(
            spec.kind(),
            spec.label(),
            Outcome::Inconclusive,
            format!(
                "gave no result within {}; stopped",
                HumanDuration(timeout + GRACE)
            ),
        ),
    };
    if report.duration_ms == 0 {
        report.duration_ms = started.elapsed().as_millis() as u64;
    }
    report
}

/// Wait for all `n` results of `batch` from the channel, in check order.
pub async fn collect_batch(
    rx: &mut mpsc::UnboundedReceiver<RunnerEvent>,
    batch: u64,
    n: usize,
) -> Vec<CheckReport> {
    let mut out: Vec<Option<CheckReport>> = vec![None; n];
    let mut left = n;
    while left > 0 {
        let Some(ev) = rx.recv().await else { break };
        if let RunnerEvent::Finished {
            batch: b,
            index,
            report,
        } = ev
        {
            if b == batch && index < n && out[index].is_none() {
                out[index] = Some(report);
                left -= 1;
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                CheckReport::new(
                    "runner",
                    format!("check {i}"),
                    Outcome::Inconclusive,
                    "the runner stopped before this check finished",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckSpec;
    use crate::checks::tcp;

    #[tokio::test]
    async fn unrunnable_checks_report_inconclusive_with_the_reason() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = Runner::new(CheckContext::last(Duration::from_secs(60)), tx);
        r.spawn_batch(
            7,
            vec![PlannedCheck {
                kind: "tcp",
                label: "x".into(),
                spec: Err("no value for `upstream`".into()),
            }],
        );
        let reports = collect_batch(&mut rx, 7, 1).await;
        assert_eq!(reports[0].outcome, Outcome::Inconclusive);
        assert!(reports[0].summary.contains("upstream"));
    }

    #[tokio::test]
    async fn results_come_back_in_check_order() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().to_string();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = Runner::new(CheckContext::last(Duration::from_secs(60)), tx);
        let spec = |a: &str| {
            let s = CheckSpec::Tcp(tcp::Params {
                address: a.into(),
                timeout: None,
            });
            PlannedCheck {
                kind: s.kind(),
                label: s.label(),
                spec: Ok(s),
            }
        };
        // A closed port: refused is a problem (an address without a port is
        // inconclusive since the tcp kind treats it as bad input).
        let closed = {
            let c = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            c.local_addr().unwrap().to_string()
        };
        r.spawn_batch(1, vec![spec(&closed), spec(&open)]);
        let reports = collect_batch(&mut rx, 1, 2).await;
        assert_eq!(reports[0].outcome, Outcome::Problem);
        assert!(reports[0].label.contains(&closed));
        assert_eq!(reports[1].outcome, Outcome::Ok);
    }
}
