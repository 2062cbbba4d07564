//! Rolling back a config typo, on the lab's `nginx_config_typo_backup` scenario: a real nginx
//! whose `nginx.conf` was edited minutes ago to proxy to a wrong port (502), with the good
//! version in `nginx.conf.bak`.
//!
//! The default playbook is walked the way the TUI drives it, minus the terminal, with every check
//! run for real from the URL alone: recent_changes finds the edit and its backup, the walk offers
//! the rollback, the plan shows the diff and is confirmed by typing the file's name, the real
//! executor restores the file (keeping a copy), runs `nginx -t` and reloads, verify-after-fix
//! records 502 → 200, and the walk ends resolved at the verify step. Needs root and nginx (the
//! lab's requirements; without them it fails with the install command).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/action_walk.rs"]
mod action_walk;
#[path = "lab/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use triage502::action::{
    ActionSpec, Confirmation, ExecPolicy, Executed, Plan, UndoList, VerifyResult,
};
use triage502::check::CheckContext;
use triage502::engine::{AnswerSource, Effect, Engine, Input, Record};
use triage502::playbook::EndKind;
use triage502::playbook::library::Library;

const SCENARIO: &str = "nginx_config_typo_backup";

/// What the walk did with the rollback.
struct Walk {
    plan: Plan,
    executed: Executed,
    verified: VerifyResult,
    undo: UndoList,
    path: Vec<String>,
}

#[test]
fn the_walk_offers_the_rollback_and_restoring_the_backup_brings_200_back() {
    let mut lab = harness::Lab::start(SCENARIO);
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let conf = lab.dir.join("nginx.conf");
    let backup = lab.dir.join("nginx.conf.bak");
    let broken = std::fs::read_to_string(&conf).unwrap();
    let good = std::fs::read_to_string(&backup).unwrap();
    assert!(broken.contains(&format!("127.0.0.1:{};", lab.var("dead_port"))));
    let (_, nginx_master) = lab
        .masters()
        .into_iter()
        .find(|(name, _)| *name == "nginx")
        .unwrap();
    let workers_before = harness::process::children_of(nginx_master);

    // The non-interactive diagnosis recommends the rollback (and runs nothing).
    let report = harness::diagnose(&lab.url);
    let recommended: Vec<&str> = report["recommended_actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["node"].as_str()).collect())
        .unwrap_or_default();
    assert!(recommended.contains(&"502/rollback"), "{report:#}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), broken);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let walk = rt.block_on(walk_502(&lab.url));

    // The plan: the diff from the typo back to the good port, confirmed by the file's name.
    let detail = walk.plan.detail.clone().unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "-            proxy_pass http://127.0.0.1:{};",
            lab.var("dead_port")
        )) && detail.contains(&format!(
            "+            proxy_pass http://127.0.0.1:{};",
            lab.var("app_port")
        )),
        "{}",
        walk.plan.render()
    );
    assert_eq!(
        walk.plan.confirmation(),
        Confirmation::Type("nginx.conf".into())
    );

    let x = &walk.executed;
    eprintln!(
        "{}\n--- result ---\n{}\n{}\n{}",
        walk.plan.render(),
        x.result.summary,
        x.result.output,
        walk.verified.summary()
    );
    // One line for scripts/lab-summary.sh (run with --nocapture).
    eprintln!(
        "lab-action rollback scenario={SCENARIO} summary={:?} duration_ms={}",
        walk.verified.summary(),
        x.result.duration_ms
    );
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(
        x.result.output.contains("configuration test passed")
            || x.result.summary.contains("configuration test passed"),
        "{:#?}",
        x.result
    );
    assert_eq!(x.result.argv[..2], ["nginx".to_owned(), "-c".to_owned()]);
    assert!(
        x.result
            .argv
            .ends_with(&["-s".to_owned(), "reload".to_owned()])
    );
    // The file is the backup again; the broken version is kept beside it.
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), good);
    let kept: Vec<String> = std::fs::read_dir(&lab.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nginx.conf.triage502-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_to_string(lab.dir.join(&kept[0])).unwrap(),
        broken
    );
    // The reload really happened: the same master, new workers.
    assert!(harness::process::is_alive(nginx_master));
    let workers_after = harness::process::children_of(nginx_master);
    assert!(
        workers_after.iter().all(|w| !workers_before.contains(w)),
        "workers before {workers_before:?}, after {workers_after:?}"
    );
    // Verify-after-fix: 502 before, 200 after.
    let v = &walk.verified;
    assert_eq!(v.before[0].status, Some(502), "{}", v.summary());
    assert!(
        v.after.iter().all(|p| p.status == Some(200)),
        "{}",
        v.summary()
    );
    assert_eq!(harness::client::get(&lab.url).status(), Some(200));
    // The walk confirmed it at its verify step.
    let tail: Vec<&str> = walk
        .path
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["rollback", "verify", "prevent", "fixed"],
        "{:?}",
        walk.path
    );
    // The undo list can put the edited version back.
    assert_eq!(
        walk.undo.entries().len(),
        1,
        "{:?}",
        walk.undo.still_changed()
    );
    assert!(
        matches!(&walk.undo.entries()[0].undo, Some(ActionSpec::Rollback(r)) if r.backup.contains(".triage502-"))
    );
}

/// Walks the default playbook from the URL alone, answering every question with its default,
/// declining every other action, and running the rollback with the operator's confirmation.
async fn walk_502(url: &str) -> Walk {
    let (lib, _) = Library::standard(&[]).unwrap();
    let values = [("url".to_owned(), url.to_owned())].into_iter().collect();
    let mut engine = Engine::start(Arc::new(lib), "502", values).unwrap();
    let mut checks_run = action_walk::Checks::new(CheckContext::last(Duration::from_secs(3600)));
    let mut undo = UndoList::new();
    let mut done = None;
    // Bounded: the default playbook has about forty nodes.
    for _ in 0..100 {
        let input = match engine.effect().clone() {
            Effect::Done(c) => {
                assert_eq!(c.end, Some(EndKind::Resolved), "{c:?}");
                break;
            }
            Effect::Ask { default, .. } => Input::Answer {
                choice: default,
                by: AnswerSource::Default,
            },
            Effect::Inform { .. } => Input::Continue,
            Effect::RunChecks { checks, .. } => checks_run.run(checks).await,
            Effect::Offer(offer) if offer.node == "rollback" => {
                // The lab nginx is no systemd unit: drive it by its own signals.
                let policy = ExecPolicy {
                    systemd: Some(false),
                    ..ExecPolicy::default()
                };
                let plan = action_walk::plan(&engine, &offer, &policy);
                assert!(plan.runnable(), "{}", plan.render());
                assert!(!plan.confirmation().accepts("y"));
                assert!(plan.confirmation().accepts("nginx.conf"));
                let (x, v) = action_walk::execute_verified(&offer, &policy, url, &mut undo).await;
                let input = x.input();
                done = Some((plan, x, v));
                input
            }
            Effect::Offer(_) => Input::ActionDeclined {
                reason: "not this one".into(),
            },
        };
        engine.step(input).unwrap();
    }
    assert!(
        matches!(engine.effect(), Effect::Done(_)),
        "{:?}",
        engine.effect()
    );
    // The trail records the rollback with its result.
    assert!(engine.trail().iter().any(|s| s.node == "rollback"
        && matches!(&s.record, Record::Action { result: Some(r), .. } if r.ok)));
    let path = engine.trail().iter().map(|s| s.node.clone()).collect();
    let (plan, executed, verified) = done.expect("the walk offered the rollback");
    Walk {
        plan,
        executed,
        verified,
        undo,
        path,
    }
}
