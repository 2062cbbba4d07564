//! The `cache_fault` remedy on the lab's real incident (`nginx_cache_fault_tree`: the whole proxy
//! cache tree re-owned root:root, owner-only, after nginx started; every request answers 500):
//! the real binary walks it from the URL alone:
//! - with `--read-only` it prints the exact commands and each entry's change, and changes nothing;
//! - with `--apply disruptive` it gives the configured cache path back to the worker user, and the
//!   URL answers 200 three times (`recovered`);
//! - the undo (each entry's recorded owner and mode restored) brings back the broken tree, and the
//!   500 returns.
//!
//! The whole tree is compared, its top directory included: the diagnosis's config test
//! (`nginx -t`, which as root creates and re-owns nginx's paths) runs in a mount-namespace
//! sandbox (`config_test`), so it cannot give the top directory back behind the action's back.
//! Only entries nginx itself adds while serving (what the walk's own requests cache) are left
//! out of the comparison.
//!
//! Needs root and nginx (the lab's requirements).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "lab/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use triage502::action::{ActionSpec, ExecPolicy, OwnershipAction, Tier, execute};

fn triage502(args: &[&str], state: &Path) -> serde_json::Value {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(args)
        .env("XDG_STATE_HOME", state)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("triage502 {args:?} took longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdout = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The entries of `before` as they are now.
fn same_entries(
    root: &Path,
    before: &BTreeMap<PathBuf, (u32, u32, u32)>,
) -> BTreeMap<PathBuf, (u32, u32, u32)> {
    tree(root)
        .into_iter()
        .filter(|(p, _)| before.contains_key(p))
        .collect()
}

/// Owner and mode of `root` and of every entry below it.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.insert(p.clone(), owner_mode(&p));
    }
    out
}

#[test]
fn cache_fault_gives_the_cache_back_to_the_worker_user_and_undo_restores_owner_and_mode() {
    let mut lab = harness::Lab::start("nginx_cache_fault_tree");
    let seen = lab.provoke();
    lab.assert_expected(&seen);
    let cache = lab.dir.join("cache");
    let broken = tree(&cache);
    assert!(!broken.is_empty());
    assert!(
        broken.values().all(|(u, g, _)| (*u, *g) == (0, 0)),
        "{broken:?}"
    );
    let state = tempfile::tempdir().unwrap();
    let url = lab.url.clone();

    // --read-only: the commands and each entry's change are the recommended step.
    let ro = triage502(
        &[
            "run",
            "--non-interactive",
            "--read-only",
            "--format",
            "json",
            "--url",
            &url,
        ],
        state.path(),
    );
    let rec = ro["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["node"] == "502/cache_fault_fix")
        .unwrap_or_else(|| panic!("no ownership fix offered: {ro:#}"));
    let preview = rec["diff"].as_str().unwrap();
    eprintln!("{preview}");
    assert!(
        preview.contains("chown -R -h www-data:") && preview.contains("chmod -R u+rwX"),
        "{preview}"
    );
    let (sub, _) = broken.iter().next().unwrap();
    assert!(
        preview.contains(&format!("{}: 0:0 0700 -> ", sub.display())),
        "{preview}"
    );
    assert!(rec["why_not_run"].as_str().unwrap().contains("read-only"));
    // nginx itself may cache what the walk's own requests fetched (new entries, its own):
    // every entry that was there is as it was.
    assert_eq!(
        same_entries(&cache, &broken),
        broken,
        "read-only changed the cache"
    );

    // --apply disruptive: given back, verified.
    let ap = triage502(
        &[
            "run",
            "--non-interactive",
            "--apply",
            "disruptive",
            "--format",
            "json",
            "--url",
            &url,
        ],
        state.path(),
    );
    let applied = ap["applied_actions"].as_array().unwrap();
    assert_eq!(applied.len(), 1, "{ap:#}");
    let a = &applied[0];
    eprintln!(
        "lab-action ownership summary={:?}\n{}",
        a["summary"],
        a["output"].as_str().unwrap_or_default()
    );
    assert_eq!(a["ok"], true, "{a:#}");
    assert_eq!(a["recovered"], true, "{a:#}");
    assert_eq!(a["argv"][0], "chown", "{a:#}");
    let after = a["verification"]["after"].as_array().unwrap();
    assert!(
        after.len() >= 3 && after.iter().all(|p| p["status"] == 200),
        "{a:#}"
    );
    assert_eq!(ap["end"], "resolved", "{ap:#}");
    for _ in 0..3 {
        assert_eq!(harness::client::get(&url).status(), Some(200));
    }
    let www = owner_mode(&cache).0;
    assert_ne!(www, 0, "still root's");
    assert!(
        tree(&cache)
            .values()
            .all(|(u, _, m)| *u == www && m & 0o600 == 0o600)
    );

    // The undo: each changed entry's recorded owner and mode, from the action's record.
    let restore: Vec<String> = a["output"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (path, change) = l.rsplit_once(": ")?;
            let (before, _) = change.split_once(" -> ")?;
            let (ids, mode) = before.split_once(' ')?;
            Some(format!("{ids} {} {path}", mode.trim_start_matches('0')))
        })
        .collect();
    assert!(!restore.is_empty(), "{a:#}");
    let undo = ActionSpec::Ownership(OwnershipAction {
        path: cache.display().to_string(),
        allowed: vec![cache.display().to_string()],
        user: "www-data".into(),
        group: None,
        restore,
        url: None,
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let x = rt.block_on(execute(
        &undo,
        Tier::Disruptive,
        &ExecPolicy {
            interactive_consent: true,
            ..ExecPolicy::default()
        },
    ));
    assert!(x.result.ok, "{:#?}", x.result);
    assert_eq!(same_entries(&cache, &broken), broken, "not restored");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(harness::client::get(&url).status(), Some(500));
}
