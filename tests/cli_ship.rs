//! What a shipped binary promises on the command line: `--version` names the version, the
//! commit and the target; a reader that goes away (`triage502 ... | head`) ends every
//! subcommand quietly with the status a shell reports for SIGPIPE.

use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_triage502"))
}

#[test]
fn version_names_version_commit_and_target() {
    let out = bin().arg("--version").output().expect("run --version");
    assert!(out.status.success());
    let v = String::from_utf8(out.stdout).expect("utf-8");
    let expected_prefix = format!("triage502 {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(v.starts_with(&expected_prefix), "{v}");
    let inner = v
        .trim()
        .strip_prefix(&expected_prefix)
        .and_then(|r| r.strip_suffix(')'))
        .expect("ends with )");
    let (commit, target) = inner.split_once(", ").expect("commit, target");
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit:?}"
    );
    assert!(target.contains("-linux-"), "target {target:?}");
}

/// Runs a command whose stdout is a pipe nobody reads any more: the read end is closed before
/// the command writes, so its first write fails with EPIPE, whatever the output's size.
fn with_reader_gone(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = rustix::pipe::pipe().expect("pipe");
    drop(reader);
    let writer = std::fs::File::from(writer);
    let out = bin()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly_for_every_kind_of_output() {
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["playbook", "schema"],
        &["checks", "list"],
        &["playbook", "graph", "502"],
        &["playbook", "list"],
    ] {
        let (code, stderr) = with_reader_gone(args);
        assert_eq!(
            code,
            Some(141),
            "{args:?}: exit {code:?}, stderr {stderr:?}"
        );
        assert!(stderr.is_empty(), "{args:?} printed: {stderr}");
    }
}

#[test]
fn a_reader_that_stays_gets_everything_and_success() {
    let out = bin().args(["checks", "list"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("firewall"));
}
