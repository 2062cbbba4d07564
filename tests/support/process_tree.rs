//! The process tree as the service-action tests watch it: the live
//! children of a master (its workers, from /proc; zombies excluded, so a
//! worker that exited but was not yet reaped does not count) and a bounded
//! wait (15 s, polled every 50 ms) for a condition on them.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The live children of `parent`, from /proc (bounded by the process table).
pub fn children(parent: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 1 && f[1] == parent.to_string() && f[0] != "Z" {
            out.insert(pid);
        }
    }
    out
}

/// Poll `cond` until it holds; fail naming `what` after 15 s.
pub fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
