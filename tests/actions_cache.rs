//! Clearing a real cache directory: entries go, the directory, its owner and
//! its mode stay; symlinks are never followed out of it; a path that is not
//! a configured cache path is refused; a cache written to meanwhile is fine.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use triage502::action::{ActionSpec, ClearCacheAction, ExecPolicy, Plan, Tier, UndoList, execute};
use triage502::engine::PlannedAction;

fn consent() -> ExecPolicy {
    ExecPolicy {
        interactive_consent: true,
        ..ExecPolicy::default()
    }
}

fn fill(cache: &Path) {
    for (i, level) in ["a/0f", "a/1e", "b/77"].iter().enumerate() {
        let d = cache.join(level);
        std::fs::create_dir_all(&d).unwrap();
        for j in 0..5 {
            std::fs::write(d.join(format!("entry{i}{j}")), vec![b'x'; 1000]).unwrap();
        }
    }
}

fn offer(spec: &ActionSpec) -> PlannedAction {
    PlannedAction {
        node: "cache".into(),
        title: "Clear the cache".into(),
        tier: Tier::Destructive,
        argv: spec.argv(),
        description: spec.describe(),
        spec: Some(spec.clone()),
        undo: None,
        blocked: None,
    }
}

#[tokio::test]
async fn entries_go_and_the_directory_owner_and_mode_stay() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("proxy_cache");
    std::fs::create_dir(&cache).unwrap();
    fill(&cache);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o750)).unwrap();
    // Owned by the worker user, as nginx's cache is (we run as root in CI).
    std::os::unix::fs::chown(&cache, Some(33), Some(33)).unwrap();
    // Outside the cache: must survive, even through symlinks inside it.
    let outside = t.path().join("precious");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("data"), "keep me").unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("a/link-to-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("data"), cache.join("link-to-file")).unwrap();

    let spec = ActionSpec::ClearCache(ClearCacheAction {
        path: cache.display().to_string(),
        allowed: vec![cache.display().to_string()],
        worker_user: Some("www-data".into()),
    });
    let plan = Plan::new(&offer(&spec), "a corrupt cache", &consent());
    assert!(plan.blocked.is_none(), "{:?}", plan.blocked);
    let affects = plan.affects.join("\n");
    assert!(affects.contains("17 files"), "{affects}");
    // 15 entries of 1000 bytes plus two symlinks (their own size, not their targets').
    assert!(
        affects.contains(" 14.") && affects.contains("KiB"),
        "{affects}"
    );
    assert!(affects.contains("mode 0750"), "{affects}");
    assert!(plan.undo.contains("cannot be undone"));
    assert_eq!(
        plan.confirmation(),
        triage502::action::Confirmation::Type("proxy_cache".into())
    );

    let x = execute(&spec, Tier::Destructive, &consent()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(
        x.result.summary.contains("deleted 17 cache files"),
        "{}",
        x.result.summary
    );
    assert!(x.result.summary.contains("owner and mode are kept"));
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    let m = std::fs::metadata(&cache).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (33, 33, 0o750));
    assert_eq!(
        std::fs::read_to_string(outside.join("data")).unwrap(),
        "keep me"
    );
    let mut u = UndoList::new();
    u.apply(&x);
    assert!(u.is_empty(), "nothing to undo: it cannot be undone");
}

#[tokio::test]
async fn a_path_outside_the_configured_caches_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let other = t.path().join("www");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("index.html"), "site").unwrap();
    for path in [
        other.display().to_string(),
        format!("{}/../www", cache.display()),
        "/".to_owned(),
    ] {
        let spec = ActionSpec::ClearCache(ClearCacheAction {
            path: path.clone(),
            allowed: vec![cache.display().to_string()],
            worker_user: None,
        });
        let plan = Plan::new(&offer(&spec), "", &consent());
        assert!(plan.blocked.is_some(), "{path}");
        let x = execute(&spec, Tier::Destructive, &consent()).await;
        assert!(!x.result.ok, "{path}");
        assert!(
            x.result.summary.contains("refusing"),
            "{}",
            x.result.summary
        );
    }
    // No cache path found by discovery: nothing may be cleared.
    let spec = ActionSpec::ClearCache(ClearCacheAction {
        path: cache.display().to_string(),
        allowed: vec![],
        worker_user: None,
    });
    assert!(
        !execute(&spec, Tier::Destructive, &consent())
            .await
            .result
            .ok
    );
    assert!(other.join("index.html").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_works_while_the_server_writes_entries() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    fill(&cache);
    let writer_dir = cache.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // A bounded writer standing in for the server refilling its cache.
    let writer = std::thread::spawn(move || {
        for i in 0..2_000 {
            if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let d = writer_dir.join(format!("w/{:02x}", i % 7));
            let _ = std::fs::create_dir_all(&d);
            let _ = std::fs::write(d.join(format!("new{i}")), b"fresh");
        }
    });
    let spec = ActionSpec::ClearCache(ClearCacheAction {
        path: cache.display().to_string(),
        allowed: vec![t.path().display().to_string()],
        worker_user: None,
    });
    let x = execute(&spec, Tier::Destructive, &consent()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(cache.is_dir());
    assert!(!cache.join("a").exists(), "old entries are gone");
}
