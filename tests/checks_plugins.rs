//! plugins on a temp WordPress tree.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "support/listeners.rs"]
mod listeners;

use triage502::cause::Cause;
use triage502::check::Outcome;
use triage502::checks::plugins::{Params, run};

fn site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let pl = d.path().join("wp-content/plugins");
    std::fs::create_dir_all(pl.join("woo-fancy")).unwrap();
    std::fs::write(
        pl.join("woo-fancy/woo-fancy.php"),
        "<?php\n/**\n * Plugin Name: Woo Fancy Checkout\n * Version: 2.4.1\n */\n",
    )
    .unwrap();
    std::fs::create_dir_all(pl.join("akismet")).unwrap();
    std::fs::write(
        pl.join("akismet/akismet.php"),
        "<?php\n/*\nPlugin Name: Akismet Anti-spam\nVersion: 5.3\n*/\n",
    )
    .unwrap();
    std::fs::write(
        pl.join("hello.php"),
        "<?php\n/*\nPlugin Name: Hello Dolly\nVersion: 1.7.2\n*/\n",
    )
    .unwrap();
    std::fs::write(pl.join("index.php"), "<?php // Silence is golden.\n").unwrap();
    d
}

fn p(root: &std::path::Path) -> Params {
    Params {
        document_root: root.display().to_string(),
        fatal_text: None,
        fatal_log: None,
    }
}

#[tokio::test]
async fn plugins_are_listed_with_versions() {
    let d = site();
    let r = run(&p(d.path()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:#?}");
    let list = &r.facts["plugins.list"];
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(
        list.contains("woo-fancy 2.4.1 (Woo Fancy Checkout)"),
        "{list}"
    );
    assert!(r.facts["plugins.recent"].contains("akismet"));
}

#[tokio::test]
async fn plugin_named_in_a_fatal_error_is_app_fatal() {
    let d = site();
    let log = d.path().join("error.log");
    std::fs::write(&log, "2026/11/23 10:00:00 [error] 7#7: *1 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function wc_get_cart() in /var/www/html/wp-content/plugins/woo-fancy/includes/cart.php:42\n").unwrap();
    let mut params = p(d.path());
    params.fatal_log = Some(log.display().to_string());
    let r = run(&params, &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Problem, "{r:#?}");
    assert_eq!(r.facts["plugins.implicated"], "woo-fancy");
    assert_eq!(r.diagnoses[0].cause, Cause::AppFatal);
}

#[tokio::test]
async fn not_a_wordpress_root_is_inconclusive() {
    let d = tempfile::tempdir().unwrap();
    let r = run(&p(d.path()), &listeners::ctx()).await;
    assert_eq!(r.outcome, Outcome::Inconclusive);
    assert!(r.summary.contains("not a WordPress"));
}
