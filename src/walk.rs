//! The non-interactive front end: walk a playbook with the real runner,
//! answering questions from `--answer` or their defaults. Actions do not run
//! (they become recommended next steps, a config edit with its diff), unless
//! `--apply TIER` gave consent up front: then offered actions up to that tier
//! run unattended, through the same executor (pre-flight test, verify, undo)
//! and the URL is verified after each.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::action::{ActionSpec, ExecPolicy, Plan};
use crate::action_spec::Tier;
use crate::check::CheckContext;
use crate::engine::{AnswerSource, Effect, Engine, EngineError, Input, PlannedAction};
use crate::report::Applied;
use crate::runner::{Runner, collect_batch};

/// Probes of the URL after an applied action, and the pause before each.
pub const VERIFY_PROBES: usize = 3;
pub const VERIFY_PAUSE: Duration = Duration::from_millis(700);

/// What an unattended walk did beside the engine's trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    /// Actions run under `--apply`.
    pub applied: Vec<Applied>,
    /// The diffs of offered config edits, keyed by `playbook/node`.
    pub diffs: BTreeMap<String, String>,
}

/// How an unattended walk treats offered actions.
#[derive(Debug, Clone, Default)]
pub struct Unattended {
    /// `--apply TIER`: run offered actions up to this tier.
    pub apply: Option<Tier>,
    /// The failing URL, verified after each applied action.
    pub url: Option<String>,
}

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
    engine: Engine,
    answers: &BTreeMap<String, String>,
    ctx: CheckContext,
    policy: &ExecPolicy,
    observe: &mut dyn FnMut(&Input),
) -> Result<Engine, EngineError> {
    walk_unattended(
        engine,
        answers,
        ctx,
        policy,
        &Unattended::default(),
        observe,
    )
    .await
    .map(|(e, _)| e)
}

/// The diff a config edit would make, or why it cannot be made (read only).
async fn edit_diff(a: &PlannedAction) -> Option<String> {
    if let Some(ActionSpec::Ownership(o)) = &a.spec {
        // Not a file edit: the exact commands and each entry's change.
        let o = o.clone();
        let p = tokio::task::spawn_blocking(move || crate::action::ownership::preview(&o)).await;
        return Some(p.unwrap_or_else(|e| format!("(no preview: {e})\n")));
    }
    let Some(ActionSpec::ConfigEdit(e)) = &a.spec else {
        return None;
    };
    let e = e.clone();
    let p = tokio::task::spawn_blocking(move || crate::action::config_edit::preview(&e)).await;
    Some(match p {
        Ok(Ok(p)) => p.diff,
        Ok(Err(why)) => format!("(no diff: {why})\n"),
        Err(e) => format!("(no diff: {e})\n"),
    })
}

/// Run an offered action the operator consented to with `--apply`.
async fn apply(a: &PlannedAction, policy: &ExecPolicy, url: Option<&str>) -> (Input, Applied) {
    let offer = a.clone();
    let pol = policy.clone();
    let plan = tokio::task::spawn_blocking(move || Plan::new(&offer, "", &pol)).await;
    let (spec, blocked, diff) = match plan {
        Ok(p) => (
            p.spec.clone().or_else(|| a.spec.clone()),
            p.blocked.clone(),
            matches!(
                a.spec,
                Some(ActionSpec::ConfigEdit(_) | ActionSpec::Ownership(_))
            )
            .then(|| p.detail.clone())
            .flatten(),
        ),
        Err(e) => (None, Some(e.to_string()), None),
    };
    let mut applied = Applied {
        node: a.node.clone(),
        title: a.title.clone(),
        tier: a.tier,
        argv: a.argv.clone(),
        diff,
        ok: false,
        summary: String::new(),
        output: String::new(),
        verification: None,
        recovered: false,
        undo: Vec::new(),
    };
    let spec = match (spec, blocked) {
        (Some(s), None) => s,
        (_, b) => {
            let reason = format!(
                "cannot run: {}",
                b.unwrap_or_else(|| "the action has no command".into())
            );
            applied.summary.clone_from(&reason);
            return (Input::ActionDeclined { reason }, applied);
        }
    };
    applied.tier = spec.effective_tier(a.tier);
    let x = crate::action::execute(&spec, a.tier, policy).await;
    applied.argv.clone_from(&x.result.argv);
    applied.ok = x.refused.is_none() && x.result.ok;
    applied.summary.clone_from(&x.result.summary);
    applied.output.clone_from(&x.result.output);
    applied.undo = x
        .undo
        .iter()
        .map(|u| format!("{} (undo: {})", u.what, u.how))
        .collect();
    if x.refused.is_none() {
        if let Some(u) = url {
            let v = crate::action::verify(u, VERIFY_PROBES, VERIFY_PAUSE, Vec::new()).await;
            applied.recovered = v.fixed();
            applied.verification = Some(v);
        }
    }
    (x.input(), applied)
}

/// [`walk_with_policy`], and with `--apply TIER` the offered actions up to
/// that tier run (the flag is the consent; `--read-only` and `--max-tier`
/// still refuse). Returns the engine and what was applied or previewed.
pub async fn walk_unattended(
    mut engine: Engine,
    answers: &BTreeMap<String, String>,
    ctx: CheckContext,
    policy: &ExecPolicy,
    how: &Unattended,
    observe: &mut dyn FnMut(&Input),
) -> Result<(Engine, Walked), EngineError> {
    let policy = ExecPolicy {
        interactive_consent: false,
        ..policy.clone()
    };
    let mut walked = Walked::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut runner = Runner::new(ctx, tx);
    let mut batch = 0u64;
    for _ in 0..MAX_STEPS {
        let input = match engine.effect().clone() {
            Effect::Done(_) => return Ok((engine, walked)),
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
                // --apply TIER is the consent, given up front, for actions up to TIER.
                let consented = ExecPolicy {
                    interactive_consent: true,
                    ..policy.clone()
                };
                match how.apply {
                    Some(max) if tier <= max && consented.refusal(tier).is_none() => {
                        let (input, applied) = apply(&a, &consented, how.url.as_deref()).await;
                        walked.applied.push(applied);
                        input
                    }
                    _ => {
                        if let Some(d) = edit_diff(&a).await {
                            walked.diffs.insert(a.node.clone(), d);
                        }
                        let reason = match (how.apply, policy.refusal(tier)) {
                            (_, Some(r)) if r != NOT_RUN => r,
                            (Some(max), _) => format!(
                                "a {tier} action is above --apply {max}: not run; run it yourself or raise --apply"
                            ),
                            _ => NOT_RUN.into(),
                        };
                        Input::ActionDeclined { reason }
                    }
                }
            }
        };
        engine.step(input.clone())?;
        observe(&input);
    }
    Ok((engine, walked))
}
