//! Plugin bisection against the lab's plugin scenario (`nginx_plugin_fault`): real nginx → real
//! php-fpm on loopback, a WordPress-like document root with six plugins, one of which segfaults
//! the php-fpm worker on `/shop/checkout` (a genuine 502), while `/` answers 200.
//!
//! One test walks the whole incident the way the TUI drives it, minus the terminal: the
//! non-interactive diagnosis (given only the URL) names an application crash; then the
//! `wordpress` playbook offers `isolate_plugins`, the plan is confirmed with `y`, the real
//! executor bisects by renaming plugin directories (wp-cli is not installed here), verify-after-
//! fix records 502 → 200, the journal records the action and the undo list keeps the one plugin
//! left disabled. Needs root, nginx and php-fpm (the lab's requirements; without them it fails
//! with the install command).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/action_walk.rs"]
mod action_walk;
#[path = "lab/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use triage502::action::plugin::{self, DISABLED_SUFFIX, Method};
use triage502::action::{ActionSpec, Confirmation, ExecPolicy, Tier, UndoList};
use triage502::check::CheckContext;
use triage502::engine::{AnswerSource, Effect, Engine, Input};
use triage502::journal::{self, Journal};
use triage502::playbook::EndKind;
use triage502::playbook::library::Library;

const SCENARIO: &str = "nginx_plugin_fault";
const FAULTY: &str = "lab-order-notes";
const PLUGINS: &[&str] = &[
    "lab-analytics",
    "lab-contact-form",
    "lab-order-notes",
    "lab-seo-meta",
    "lab-shipping-rates",
    "lab-wishlist",
];

/// The plugins whose directory carries its own name (enabled), sorted (`.keep` is no plugin).
fn enabled(root: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("wp-content/plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.ends_with(DISABLED_SUFFIX))
        .collect();
    v.sort();
    v
}

/// The plugins the PHP front controller really loaded for `url` (it lists them in a comment).
fn loaded_by_php(url: &str) -> Vec<String> {
    let reply = harness::client::get(url);
    let harness::Reply::Http { status, body, .. } = &reply else {
        panic!("{url}: {}", reply.describe());
    };
    assert_eq!(*status, 200, "{url}: {}", reply.describe());
    let body = String::from_utf8_lossy(body);
    let list = body
        .lines()
        .find_map(|l| l.strip_prefix("<!-- active plugins: "))
        .and_then(|l| l.strip_suffix(" -->"))
        .unwrap_or_else(|| panic!("{url} lists no active plugins:\n{body}"));
    let mut v: Vec<String> = list
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn bisection_names_the_plugin_that_crashes_php_fpm() {
    let mut lab = harness::Lab::start(SCENARIO);
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let root = lab.dir.join("www");
    let url = lab.url.clone();
    assert_eq!(enabled(&root), PLUGINS, "every plugin starts enabled");
    assert_eq!(loaded_by_php(&format!("{}/", lab.base)), PLUGINS);

    // (a) The default playbook, non-interactive, from the URL alone: an application crash.
    let report = harness::diagnose(&url);
    let causes: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["cause"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(causes.first(), Some(&"app_fatal"), "{report:#}");

    // (b) The wordpress playbook's isolate_plugins node, through the real executor.
    let policy = ExecPolicy::default();
    assert_eq!(
        plugin::method(&policy),
        Method::Rename,
        "wp-cli is on PATH: this test exercises the rename path it replaces"
    );
    let journal_dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (walk, journal_path) = rt.block_on(walk_wordpress(
        &url,
        &root.display().to_string(),
        &policy,
        journal_dir.path(),
    ));

    let x = &walk.executed;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(
        x.result
            .summary
            .starts_with(&format!("faulty plugin: {FAULTY} (502")),
        "{}",
        x.result.summary
    );
    eprintln!("isolation steps:\n{}", x.result.output);
    // One line for scripts/lab-summary.sh (run with --nocapture).
    eprintln!(
        "lab-action isolate_plugins scenario={SCENARIO} summary={:?} probes={} duration_ms={}",
        x.result.summary,
        x.result
            .output
            .lines()
            .filter(|l| l.contains(" → "))
            .count(),
        x.result.duration_ms
    );
    // Half at a time: far fewer probes than one per plugin and step.
    let probes = x
        .result
        .output
        .lines()
        .filter(|l| l.contains(" → "))
        .count();
    assert!(probes <= 8, "{probes} probes:\n{}", x.result.output);
    // The rename path ran: every switch is the `mv` of one plugin directory.
    assert_eq!(x.result.argv[0], "mv", "{:?}", x.result.argv);
    let expected: Vec<&str> = PLUGINS.iter().copied().filter(|p| *p != FAULTY).collect();
    assert_eq!(enabled(&root), expected);
    assert!(
        root.join(format!(
            "wp-content/plugins/{FAULTY}{DISABLED_SUFFIX}/{FAULTY}.php"
        ))
        .is_file()
    );
    // php-fpm really loads the five others again, on the page that failed and on the home page.
    assert_eq!(loaded_by_php(&url), expected);
    assert_eq!(loaded_by_php(&format!("{}/", lab.base)), expected);
    // Verify-after-fix: 502 before, 200 after.
    let v = &walk.verified;
    assert_eq!(v.before[0].status, Some(502), "{}", v.summary());
    assert!(
        v.after.iter().all(|p| p.status == Some(200)),
        "{}",
        v.summary()
    );
    // The crash is real: php-fpm logged a SIGSEGV per probe with the faulty plugin enabled
    // (before, the bisection's failing probes, and its confirmation).
    let segfaults = lab
        .log("php-fpm")
        .matches("exited on signal 11 (SIGSEGV")
        .count();
    assert!(
        segfaults >= 3,
        "{segfaults} SIGSEGV lines\n{}",
        lab.dump_logs()
    );

    // (c) The undo list keeps the disabled plugin, with the action that re-enables it.
    assert_eq!(
        walk.undo.still_changed().len(),
        1,
        "{:?}",
        walk.undo.still_changed()
    );
    let entry = &walk.undo.entries()[0];
    assert!(
        entry.what == format!("plugin {FAULTY} is still disabled"),
        "{}",
        entry.what
    );
    assert!(entry.how.starts_with("mv "), "{}", entry.how);
    assert!(matches!(&entry.undo, Some(ActionSpec::Plugin(p)) if p.name == FAULTY));
    // …and the journal holds the action's result with the culprit and the before/after.
    let session = journal::load(&journal_path).unwrap();
    let done: Vec<String> = session
        .inputs()
        .into_iter()
        .filter_map(|i| match i {
            Input::ActionDone(r) => Some(r.summary),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(
        done[0].contains(&format!("faulty plugin: {FAULTY}")),
        "{}",
        done[0]
    );
    assert!(done[0].contains("the URL answers again"), "{}", done[0]);
    assert_eq!(
        session.end().map(|(_, end)| end),
        Some(Some(EndKind::Resolved))
    );
}

/// What the walk did.
struct Walk {
    executed: triage502::action::Executed,
    verified: triage502::action::VerifyResult,
    undo: UndoList,
}

/// Walks the `wordpress` playbook as the TUI does: answers "yes, WordPress", confirms the
/// offered isolation with `y`, executes it, verifies, journals every input.
async fn walk_wordpress(
    url: &str,
    document_root: &str,
    policy: &ExecPolicy,
    journal_dir: &std::path::Path,
) -> (Walk, std::path::PathBuf) {
    let (lib, _) = Library::standard(&[]).unwrap();
    let values: BTreeMap<String, String> = [
        ("url".to_owned(), url.to_owned()),
        ("document_root".to_owned(), document_root.to_owned()),
    ]
    .into_iter()
    .collect();
    let mut engine =
        Engine::start(Arc::new(lib), "wordpress", values.into_iter().collect()).unwrap();
    let mut journal = Journal::create_in(
        journal_dir,
        &mut journal::meta_for(&engine, Some(url.to_owned()), false),
    )
    .unwrap();
    let mut checks_run = action_walk::Checks::new(CheckContext::last(Duration::from_secs(600)));
    let mut undo = UndoList::new();
    let mut done = None;
    // Bounded: the wordpress playbook has six nodes.
    for _ in 0..20 {
        let input = match engine.effect().clone() {
            Effect::Done(c) => {
                assert_eq!(c.end, Some(EndKind::Resolved), "{c:?}");
                break;
            }
            Effect::Ask { node, .. } => {
                assert_eq!(node, "is_wordpress");
                Input::Answer {
                    choice: "yes".into(),
                    by: AnswerSource::Operator,
                }
            }
            Effect::RunChecks { checks, .. } => checks_run.run(checks).await,
            Effect::Offer(offer) => {
                assert!(matches!(offer.spec, Some(ActionSpec::IsolatePlugins(_))));
                assert_eq!(offer.tier, Tier::Reversible);
                let plan = action_walk::plan(&engine, &offer, policy);
                assert!(plan.runnable(), "{}", plan.render());
                assert_eq!(plan.confirmation(), Confirmation::Yes);
                assert!(plan.confirmation().accepts("y"));
                let (mut x, v) =
                    action_walk::execute_verified(&offer, policy, url, &mut undo).await;
                // As the TUI does: the before/after goes into the journaled result.
                x.result.summary =
                    format!("{}; verify-after-fix: {}", x.result.summary, v.summary());
                let input = x.input();
                done = Some((x, v));
                input
            }
            Effect::Inform { .. } => Input::Continue,
        };
        engine.step(input.clone()).unwrap();
        journal.input(&input).unwrap();
    }
    assert!(
        matches!(engine.effect(), Effect::Done(_)),
        "{:?}",
        engine.effect()
    );
    journal.end(&engine).unwrap();
    let (executed, verified) = done.expect("the isolation was offered and run");
    (
        Walk {
            executed,
            verified,
            undo,
        },
        journal.path().to_path_buf(),
    )
}
