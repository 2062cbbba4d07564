//! The non-interactive front end: walk a playbook with the real runner,
//! answering questions from `--answer` or their defaults and never running
//! actions (they become recommended next steps).

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use crate::action::ExecPolicy;
use crate::check::CheckContext;
use crate::engine::{AnswerSource, Effect, Engine, EngineError, Input};
use crate::runner::{Runner, collect_batch};

/// At most this many inputs in one unattended walk (a guard on top of the
/// engine's per-node visit limit).
pub const MAX_STEPS: usize = 1_000;

/// Why non-interactive mode did not run an action (defined with the specs,
/// so the policy does not depend on this front end).
pub use crate::action_spec::NOT_RUN;

/// Walk until the engine is done. `answers` maps question node ids to choice ids.
pub async fn walk(
    engine: Engine,
    answers: &BTreeMap<String, String>,
    ctx: CheckContext,
) -> Result<Engine, EngineError> {
    walk_with_policy(
        engine,
        answers,
        ctx,
        &ExecPolicy::non_interactive(false, None),
        &mut |_| {},
    )
    .await
}

/// [`walk`] under the session's `--read-only`/`--max-tier`, telling `observe`
/// every input the engine accepted (the journal). The reason an action is
/// listed as not run names the rule that stopped it. No action is ever
/// executed here, whatever `policy` says.
pub async fn walk_with_policy(
    mut engine: Engine,
    answers: &BTreeMap<String, String>,
    ctx: CheckContext,
    policy: &ExecPolicy,
    observe: &mut dyn FnMut(&Input),
) -> Result<Engine, EngineError> {
    let policy = ExecPolicy {
        interactive_consent: false,
        ..policy.clone()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut runner = Runner::new(ctx, tx);
    let mut batch = 0u64;
    for _ in 0..MAX_STEPS {
        let input = match engine.effect().clone() {
            Effect::Done(_) => return Ok(engine),
            Effect::RunChecks { checks, .. } => {
                batch += 1;
                let n = checks.len();
                runner.spawn_batch(batch, checks);
                let reports = collect_batch(&mut rx, batch, n).await;
                runner.reap();
                Input::ChecksDone(reports)
            }
            Effect::Ask { node, default, .. } => match answers.get(&node) {
                Some(c) => Input::Answer {
                    choice: c.clone(),
                    by: AnswerSource::Flag,
                },
                None => Input::Answer {
                    choice: default,
                    by: AnswerSource::Default,
                },
            },
            Effect::Inform { .. } => Input::Continue,
            Effect::Offer(a) => {
                let tier = a.spec.as_ref().map_or(a.tier, |s| s.effective_tier(a.tier));
                Input::ActionDeclined {
                    reason: policy.refusal(tier).unwrap_or_else(|| NOT_RUN.into()),
                }
            }
        };
        engine.step(input.clone())?;
        observe(&input);
    }
    Ok(engine)
}
