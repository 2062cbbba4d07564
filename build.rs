//! Build metadata for `triage502 --version`: the git commit and the target triple.
//!
//! The commit comes from `TRIAGE502_GIT_COMMIT` when set (release builds from a tarball), else
//! from `git rev-parse --short=12 HEAD`, else `unknown`. No network, no shell.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TRIAGE502_GIT_COMMIT");
    for p in [".git/HEAD", ".git/index"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = std::env::var("TRIAGE502_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let c = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (out.status.success() && !c.is_empty()).then_some(c)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=TRIAGE502_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=TRIAGE502_TARGET={target}");
}
