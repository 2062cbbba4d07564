//! Isolating the plugin that breaks a page, half at a time: disable all
//! candidates (the suspects, or every enabled plugin), re-probe; then
//! re-enable half of the remaining suspects and re-probe, keeping the half
//! that brought the error back, until one plugin is left. That plugin stays
//! disabled; every other is re-enabled and checked. Bounded by
//! [`MAX_PROBES`] probes; whatever is still disabled is reported so the
//! undo list can show it.

use std::time::Instant;

use super::plugin::{self, Switched};
use super::policy::ExecPolicy;
use super::verify::{Probe, probe};
use super::{IsolatePluginsAction, PluginAction, PluginOp};

/// At most this many probes in one isolation.
pub const MAX_PROBES: usize = 64;

/// What the isolation found and left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    pub ok: bool,
    /// The plugin(s) whose enabling brings the error back.
    pub culprits: Vec<String>,
    /// Plugins left disabled (the culprits, or more if it stopped early).
    pub still_disabled: Vec<String>,
    /// Each step and the probe after it.
    pub log: Vec<String>,
    pub summary: String,
    pub probes: usize,
    pub duration_ms: u64,
    /// The commands that switched plugins, in order.
    pub commands: Vec<Vec<String>>,
}

struct Run<'a> {
    a: &'a IsolatePluginsAction,
    policy: &'a ExecPolicy,
    disabled: Vec<String>,
    log: Vec<String>,
    probes: usize,
    commands: Vec<Vec<String>>,
}

impl Run<'_> {
    async fn probe(&mut self, what: &str) -> Result<Probe, String> {
        if self.probes >= MAX_PROBES {
            return Err(format!("stopped after {MAX_PROBES} probes"));
        }
        self.probes += 1;
        let p = probe(&self.a.url).await;
        self.log.push(format!("{what} → {}", p.describe()));
        Ok(p)
    }

    async fn switch(&mut self, names: &[String], op: PluginOp) -> Result<(), String> {
        for n in names {
            let s: Switched = plugin::apply(
                &PluginAction {
                    document_root: self.a.document_root.clone(),
                    name: n.clone(),
                    op,
                },
                self.policy,
            )
            .await;
            self.commands.push(s.argv.clone());
            if !s.ok {
                self.log.push(s.summary.clone());
                return Err(s.summary);
            }
            match op {
                PluginOp::Disable => {
                    if !self.disabled.contains(n) {
                        self.disabled.push(n.clone());
                    }
                }
                PluginOp::Enable => self.disabled.retain(|d| d != n),
            }
        }
        Ok(())
    }

    /// Bisect `suspects` (all disabled, everything else enabled and the page
    /// answering). Returns the culprit and the groups never tested enabled.
    async fn bisect(
        &mut self,
        mut suspects: Vec<String>,
    ) -> Result<(String, Vec<Vec<String>>), String> {
        let mut untested = Vec::new();
        // Bounded: `suspects` halves each round.
        while suspects.len() > 1 {
            let rest = suspects.split_off(suspects.len() / 2);
            let half = suspects;
            self.switch(&half, PluginOp::Enable).await?;
            let p = self
                .probe(&format!("re-enabled {}", half.join(", ")))
                .await?;
            if p.answers() {
                suspects = rest;
            } else {
                self.switch(&half, PluginOp::Disable).await?;
                untested.push(rest);
                suspects = half;
            }
        }
        let culprit = suspects.pop().ok_or_else(|| "no suspect left".to_owned())?;
        Ok((culprit, untested))
    }
}

/// Find the plugin that makes `a.url` fail.
pub async fn isolate(a: &IsolatePluginsAction, policy: &ExecPolicy) -> Isolation {
    let t0 = Instant::now();
    let mut r = Run {
        a,
        policy,
        disabled: Vec::new(),
        log: Vec::new(),
        probes: 0,
        commands: Vec::new(),
    };
    let result = run(&mut r).await;
    let (ok, culprits, summary) = match result {
        Ok((culprits, summary)) => (!culprits.is_empty(), culprits, summary),
        Err(e) => (false, Vec::new(), e),
    };
    Isolation {
        ok,
        culprits,
        still_disabled: r.disabled.clone(),
        log: r.log,
        summary,
        probes: r.probes,
        duration_ms: t0.elapsed().as_millis() as u64,
        commands: r.commands,
    }
}

async fn run(r: &mut Run<'_>) -> Result<(Vec<String>, String), String> {
    let enabled = plugin::list_enabled(&r.a.document_root, r.policy).await?;
    let candidates: Vec<String> = if r.a.suspects.is_empty() {
        enabled
    } else {
        for s in &r.a.suspects {
            plugin::validate_name(s)?;
        }
        r.a.suspects
            .iter()
            .filter(|s| enabled.contains(s))
            .cloned()
            .collect()
    };
    if candidates.is_empty() {
        return Err("no enabled plugin to isolate".into());
    }
    let before = r.probe("before").await?;
    if before.answers() {
        return Err(format!(
            "{} already answers ({}): nothing to isolate",
            r.a.url,
            before.describe()
        ));
    }
    r.switch(&candidates, PluginOp::Disable).await?;
    let p = r
        .probe(&format!(
            "disabled {} plugin(s): {}",
            candidates.len(),
            candidates.join(", ")
        ))
        .await?;
    if !p.answers() {
        let all = candidates.clone();
        r.switch(&all, PluginOp::Enable).await?;
        return Ok((
            Vec::new(),
            format!(
                "{} still fails with {} disabled: not one of these plugins (all re-enabled)",
                r.a.url,
                candidates.join(", ")
            ),
        ));
    }
    let (culprit, mut untested) = r.bisect(candidates).await?;
    let mut culprits = vec![culprit.clone()];
    // Groups set aside while bisecting: enable each, and look one by one
    // at any that brings the error back (a second faulty plugin).
    // Usually they are all innocent: one probe with all of them back.
    let all: Vec<String> = untested.iter().flatten().cloned().collect();
    if !all.is_empty() {
        r.switch(&all, PluginOp::Enable).await?;
        let p = r.probe(&format!("re-enabled {}", all.join(", "))).await?;
        if p.answers() {
            untested.clear();
        } else {
            r.switch(&all, PluginOp::Disable).await?;
        }
    }
    for group in untested {
        r.switch(&group, PluginOp::Enable).await?;
        let p = r.probe(&format!("re-enabled {}", group.join(", "))).await?;
        if p.answers() {
            continue;
        }
        r.switch(&group, PluginOp::Disable).await?;
        for n in group {
            r.switch(std::slice::from_ref(&n), PluginOp::Enable).await?;
            let p = r.probe(&format!("re-enabled {n}")).await?;
            if !p.answers() {
                r.switch(std::slice::from_ref(&n), PluginOp::Disable)
                    .await?;
                culprits.push(n);
            }
        }
    }
    // Proof for the ticket: with the culprit enabled the error returns.
    r.switch(std::slice::from_ref(&culprit), PluginOp::Enable)
        .await?;
    let with = r.probe(&format!("confirm: re-enabled {culprit}")).await?;
    r.switch(std::slice::from_ref(&culprit), PluginOp::Disable)
        .await?;
    let without = r
        .probe(&format!("confirm: disabled {culprit} again"))
        .await?;
    if with.answers() || !without.answers() {
        return Ok((
            Vec::new(),
            format!(
                "inconclusive: with {culprit} enabled {}, disabled {}; still disabled: {}",
                with.describe(),
                without.describe(),
                r.disabled.join(", ")
            ),
        ));
    }
    Ok((
        culprits.clone(),
        format!(
            "faulty plugin: {} ({} with it enabled, {} without); the others are enabled again",
            culprits.join(", "),
            with.describe(),
            without.describe()
        ),
    ))
}
