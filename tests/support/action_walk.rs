//! What the action tests share when they walk a playbook the way the TUI
//! drives it, minus the terminal: running each batch of checks for real, the
//! plan of an offered action as the TUI shows it, and running a confirmed
//! action followed by verify-after-fix. Invariant: every batch is collected
//! in full and its tasks reaped before the next batch starts.

#![allow(dead_code)]

use std::time::Duration;

use tokio::sync::mpsc;
use triage502::action::{
    ExecPolicy, Executed, Plan, UndoList, VerifyResult, execute, probe, verify,
};
use triage502::check::CheckContext;
use triage502::engine::{Engine, Input, PlannedAction, PlannedCheck};
use triage502::runner::{Runner, RunnerEvent, collect_batch};

/// Runs the engine's check batches, numbered from 1, on a real runner.
pub struct Checks {
    runner: Runner,
    rx: mpsc::UnboundedReceiver<RunnerEvent>,
    batch: u64,
}

impl Checks {
    pub fn new(ctx: CheckContext) -> Checks {
        let (tx, rx) = mpsc::unbounded_channel();
        Checks {
            runner: Runner::new(ctx, tx),
            rx,
            batch: 0,
        }
    }

    /// Run one batch to the end; the input that hands its reports to the engine.
    pub async fn run(&mut self, checks: Vec<PlannedCheck>) -> Input {
        self.batch += 1;
        let n = checks.len();
        self.runner.spawn_batch(self.batch, checks);
        let reports = collect_batch(&mut self.rx, self.batch, n).await;
        self.runner.reap();
        Input::ChecksDone(reports)
    }
}

/// The plan the TUI shows for `offer`, with the current node's guidance as its reason.
pub fn plan(engine: &Engine, offer: &PlannedAction, policy: &ExecPolicy) -> Plan {
    let why = engine
        .current()
        .map(|(_, n)| n.guidance.clone())
        .unwrap_or_default();
    Plan::new(offer, &why, policy)
}

/// The operator confirmed `offer`: probe `url`, execute it under `policy`
/// with interactive consent, record it in `undo`, then verify (3 probes,
/// 300ms apart) against the probe taken before.
pub async fn execute_verified(
    offer: &PlannedAction,
    policy: &ExecPolicy,
    url: &str,
    undo: &mut UndoList,
) -> (Executed, VerifyResult) {
    let before = probe(url).await;
    let consented = ExecPolicy {
        interactive_consent: true,
        ..policy.clone()
    };
    let x = execute(offer.spec.as_ref().unwrap(), offer.tier, &consented).await;
    undo.apply(&x);
    let v = verify(url, 3, Duration::from_millis(300), vec![before]).await;
    (x, v)
}
