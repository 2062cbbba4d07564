//! The hop in the multi-host lab (`scripts/lab/hosts.sh`): a balancer in the root namespace
//! (nginx, an upstream group hashed on the request URI) in front of four web hosts, each nginx proxying to an app on
//! its own loopback (`lab-upstream`). On web2 the app is stopped, so web2's nginx answers 502
//! (`upstream_refused`) and the balancer passes it on for the URIs that hash to web2; web4 serves
//! but its sshd is stopped. On the balancer, `run --non-interactive --hops 2 --format json` must name web2
//! and its cause with `host` on the finding, show web1 and web3 healthy, report web4 as
//! unreachable over ssh, and leave no temporary directory on any host (NET 20). Each lab host has
//! its own hostname, so findings and hops name `web2`, not its address.
//!
//! Also two hops deep (NET 23: balancer → web → app, app's own app stopped; `--hops 2` names app's
//! cause with host `app`, `--hops 1` stops at web and says the hop to app was not made), and a
//! host where the same triage502 is installed (NET 24: it runs there, nothing is copied).
//! The remote runs must understand this build's hop options: give a static build of the same
//! source (`scripts/dist.sh`).
//!
//! Root only (network namespaces, sshd); skips with a message otherwise. The copied binary is the
//! static musl build: `TRIAGE502_HOP_BINARY`, or
//! `cargo build --target x86_64-unknown-linux-musl --bin triage502` (the test says so when it is
//! missing). Every step is bounded in time; the lab is removed afterwards, also on failure.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

#[path = "hops/lab.rs"]
mod lab;

use std::path::Path;

use lab::{hop_binary, hop_dirs, missing_requirement, web_farm};

const NET: u32 = 20;

fn skip(why: &str) -> bool {
    eprintln!("SKIPPED hops_lab: {why}");
    true
}

#[test]
fn hop_names_the_broken_web_host() {
    let _one = lab::one_at_a_time();
    if let Some(why) = missing_requirement() {
        skip(&why);
        return;
    }
    let Some(bin) = hop_binary() else {
        skip(lab::NO_HOP_BINARY);
        return;
    };
    let (lab, url) = web_farm(NET);
    let addr = |i: usize| lab.addr(&format!("web{i}"));

    let before = hop_dirs();
    let xdg = tempfile::tempdir().unwrap();
    let (code, report, stderr) = lab::run_hops_in(&lab, &bin, 2, &url, xdg.path());
    assert_eq!(code, Some(1), "a problem was found: {stderr}");

    // Every finding says where it was established; web2's cause is among them.
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["host"].is_string()),
        "{findings:#?}"
    );
    // Each lab host has a hostname of its own (hosts.sh): findings name it, not its address.
    let web2 = addr(2);
    let on_web2: Vec<&serde_json::Value> =
        findings.iter().filter(|f| f["host"] == "web2").collect();
    assert!(
        on_web2.iter().any(|f| f["cause"] == "upstream_refused"),
        "web2's refused app is named with host web2: {findings:#?}"
    );
    for healthy in ["web1", "web3", addr(1).as_str(), addr(3).as_str()] {
        assert!(
            findings.iter().all(|f| f["host"] != healthy),
            "healthy {healthy} is blamed: {findings:#?}"
        );
    }
    assert_eq!(report["status"], "problem");

    let hops = report["hops"].as_array().expect("a hops section");
    let hop = |a: &str| {
        hops.iter()
            .find(|h| h["address"] == a)
            .unwrap_or_else(|| panic!("no hop to {a}: {hops:#?}"))
    };
    for i in [1, 3] {
        let h = hop(&addr(i));
        assert_eq!(h["host"], format!("web{i}"), "{h:#?}");
        assert_eq!(h["status"], "done", "{h:#?}");
        assert_eq!(h["remote_status"], "healthy", "{h:#?}");
        assert_eq!(h["ran"], "copied");
        assert_eq!(h["temp_dir_removed"], true);
    }
    let h2 = hop(&web2);
    assert_eq!(h2["host"], "web2");
    assert_eq!(h2["status"], "done");
    assert_eq!(h2["remote_status"], "problem");
    assert_eq!(h2["ran"], "copied");
    assert_eq!(h2["depth"], 1);
    assert!(
        h2["first_finding"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refuse"),
        "{h2:#?}"
    );
    assert_eq!(h2["temp_dir_removed"], true);
    let dir = h2["temp_dir"].as_str().unwrap();
    assert!(
        !Path::new(dir).exists(),
        "web2's temp dir {dir} is gone (the filesystem is shared)"
    );
    let cmds: Vec<String> = h2["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        cmds.iter()
            .all(|c| c.contains("BatchMode=yes") && c.contains("ssh_config")),
        "{cmds:#?}"
    );
    assert!(
        cmds.iter().any(|c| c.contains("--read-only")),
        "the remote run is read-only"
    );

    let h4 = hop(&addr(4));
    assert_eq!(h4["status"], "unreachable");
    assert_eq!(h4["unreachable"], "refused");
    assert!(
        h4["summary"].as_str().unwrap().contains("ssh refused"),
        "{h4:#?}"
    );
    assert!(
        h4["stderr"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{h4:#?}"
    );
    assert!(
        report["unseen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["what"].as_str().unwrap().contains(&addr(4))),
        "the unreachable host bounds what the report can say"
    );
    assert_eq!(hops.len(), 4, "one hop per web host: {hops:#?}");

    // Nothing is left on any host: no temp dir, and the remote runs wrote no journal.
    assert_eq!(hop_dirs(), before, "a hop temp dir was left behind");
    let journals: Vec<_> = std::fs::read_dir(xdg.path().join("triage502/sessions"))
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert_eq!(
        journals.len(),
        1,
        "only the balancer's own session is journalled"
    );
    // The progress of the remote runs was streamed.
    assert!(
        stderr.contains(&format!("triage502: hop {web2}: progress:")),
        "{stderr}"
    );
}

/// balancer (root namespace) → web (nginx) → app (a third host: nginx there in front of an app
/// that is stopped). With `--hops 2` the report names app's cause with host `app`, and the hops
/// list both levels; with `--hops 1` the walk stops at web and says a further hop was not made.
#[test]
fn two_hops_deep_to_the_app_host() {
    let _one = lab::one_at_a_time();
    if let Some(why) = missing_requirement() {
        skip(&why);
        return;
    }
    let Some(bin) = hop_binary() else {
        skip(lab::NO_HOP_BINARY);
        return;
    };
    let mut lab = lab::Lab::up(23, &["web", "app"], &[]);
    // web reaches app over a direct link (bridged namespace-to-namespace traffic is dropped by
    // the host's FORWARD policy).
    lab.link("web", "app");
    let (web, app) = (lab.addr("web"), lab.addr("app"));
    lab.nginx(
        Some("app"),
        &format!("{app}:9000"),
        "",
        "http://127.0.0.1:9001",
    );
    lab.nginx(
        Some("web"),
        &format!("{web}:80"),
        "",
        &format!("http://{app}:9000"),
    );
    let lb = format!("{}:18023", lab.gateway());
    lab.nginx(None, &lb, "", &format!("http://{web}:80"));
    assert_eq!(lab::get(&lb, "/cart"), 502, "the chain fails");
    let url = format!("http://{lb}/cart");
    let before = hop_dirs();

    let (code, report, _) = lab::run_hops(&lab, &bin, 2, &url);
    assert_eq!(code, Some(1), "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["host"] == "app" && f["cause"] == "upstream_refused"),
        "app's stopped app is named with host app: {findings:#?}"
    );
    let hops = report["hops"].as_array().expect("a hops section");
    let to = |a: &str| {
        hops.iter()
            .find(|h| h["address"] == a)
            .unwrap_or_else(|| panic!("no hop to {a}: {hops:#?}"))
    };
    let h1 = to(&web);
    assert_eq!(h1["host"], "web", "{h1:#?}");
    assert_eq!(h1["depth"], 1, "{h1:#?}");
    assert_eq!(h1["status"], "done", "{h1:#?}");
    let h2 = to(&app);
    assert_eq!(h2["host"], "app", "{h2:#?}");
    assert_eq!(h2["depth"], 2, "{h2:#?}");
    assert_eq!(h2["from"], "web", "{h2:#?}");
    assert_eq!(h2["status"], "done", "{h2:#?}");
    assert_eq!(h2["remote_status"], "problem", "{h2:#?}");
    assert_eq!(h2["temp_dir_removed"], true, "{h2:#?}");
    assert_eq!(hop_dirs(), before, "a hop temp dir was left behind");

    let (code, report, _) = lab::run_hops(&lab, &bin, 1, &url);
    assert_eq!(code, Some(1), "{report:#}");
    let hops = report["hops"].as_array().expect("a hops section");
    assert_eq!(hops.len(), 1, "one level only: {hops:#?}");
    assert_eq!(hops[0]["host"], "web");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["host"] != "app"),
        "nothing was established on app"
    );
    let unseen = report["unseen"].as_array().unwrap();
    assert!(
        unseen.iter().any(|u| {
            let w = u["what"].as_str().unwrap_or_default();
            w.starts_with("on web:") && w.contains(&app)
        }),
        "the further hop to {app} is said not made: {unseen:#?}"
    );
    assert_eq!(hop_dirs(), before, "a hop temp dir was left behind");
}

/// A host where the same triage502 is installed (in the PATH of its ssh sessions only:
/// `hosts.sh up --path`): the hop runs it there, copies nothing and makes no temp dir.
#[test]
fn an_installed_triage502_runs_without_a_copy() {
    let _one = lab::one_at_a_time();
    if let Some(why) = missing_requirement() {
        skip(&why);
        return;
    }
    let Some(bin) = hop_binary() else {
        skip(lab::NO_HOP_BINARY);
        return;
    };
    let installed = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, installed.path().join("triage502")).unwrap();
    let path = format!("web1={}", installed.path().display());
    let mut lab = lab::Lab::up(24, &["web1"], &["--path", &path]);
    let web = lab.addr("web1");
    lab.nginx(
        Some("web1"),
        &format!("{web}:80"),
        "",
        "http://127.0.0.1:9000",
    );
    let lb = format!("{}:18024", lab.gateway());
    lab.nginx(None, &lb, "", &format!("http://{web}:80"));
    let url = format!("http://{lb}/cart");
    let before = hop_dirs();
    let (code, report, stderr) = lab::run_hops(&lab, &bin, 1, &url);
    assert_eq!(code, Some(1), "{report:#}");
    let h = &report["hops"][0];
    assert_eq!(h["host"], "web1", "{h:#?}");
    assert_eq!(h["ran"], "installed", "{h:#?}");
    assert_eq!(h["status"], "done", "{h:#?}");
    assert!(h.get("temp_dir").is_none(), "{h:#?}");
    let cmds = h["commands"].to_string();
    assert!(
        !cmds.contains("mktemp") && !cmds.contains("cat >"),
        "nothing is copied: {cmds}"
    );
    assert!(
        stderr.contains("triage502 of the same version is installed there"),
        "{stderr}"
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["host"] == "web1" && f["cause"] == "upstream_refused"),
        "{report:#}"
    );
    assert_eq!(hop_dirs(), before, "nothing was copied");
}
