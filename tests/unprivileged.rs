//! An operator without root: the same lab incident, diagnosed by an unprivileged user
//! (`nobody`, through `setpriv`). The owner of the listening socket is unreadable then (other
//! users' `/proc/PID/fd`), and so are the firewall's rules; the report must begin with what it
//! could not see and how to see it, find the running server's configuration from what it can
//! read, and never lead with a weaker finding than a root run does.
//!
//! Needs root (to bring the lab up and to drop to `nobody`), like the lab itself.

#[path = "lab/harness.rs"]
mod harness;

use std::process::{Command, Stdio};

/// `triage502 run --non-interactive --url URL --format FORMAT` as `nobody`.
fn run_as_nobody(url: &str, format: &str, home: &std::path::Path) -> (String, i32) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_triage502"))
        .args(["run", "--non-interactive", "--url", url, "--format", format])
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux) runs triage502");
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "triage502 as nobody failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn nobody_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod the temp home");
    home
}

#[test]
fn unprivileged_run_says_what_it_could_not_see_and_still_finds_the_cause() {
    let mut lab = harness::Lab::start("nginx_upstream_refused");
    lab.provoke();
    let root = harness::diagnose(&lab.url);
    let root_first = root["findings"][0]["cause"].clone();
    assert_eq!(root_first, "upstream_refused", "root run: {root:#}");

    let home = nobody_home();
    let (json, _) = run_as_nobody(&lab.url, "json", home.path());
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    let unseen: Vec<String> = report["unseen"]
        .as_array()
        .unwrap_or_else(|| panic!("no `unseen` in the unprivileged report: {report:#}"))
        .iter()
        .map(|u| format!("{} | {} | {}", u["what"], u["why"], u["how"]))
        .collect();
    assert!(
        unseen
            .iter()
            .any(|u| u.contains("the process that holds tcp 127.0.0.1:") && u.contains("root")),
        "{unseen:#?}"
    );
    assert!(
        unseen.iter().any(|u| u.contains("the firewall's rules")),
        "{unseen:#?}"
    );
    // The front was found from the master's command line: the lab's own configuration, not
    // /etc/nginx/nginx.conf.
    let map = report["path"]
        .as_array()
        .and_then(|p| p.iter().find(|s| s["node"] == "map"))
        .unwrap_or_else(|| panic!("no map step: {report:#}"));
    let summary = map["detail"]["reports"][0]["summary"]
        .as_str()
        .unwrap_or("");
    assert!(
        summary.contains(&format!("{}/nginx.conf", lab.dir.display())),
        "the unprivileged map did not find the running nginx's -c configuration: {summary}"
    );
    // Not a weaker first finding than root's: the same cause, on direct evidence.
    assert_eq!(report["findings"][0]["cause"], root_first, "{report:#}");
    assert_eq!(report["findings"][0]["basis"], "direct", "{report:#}");

    // The Markdown report begins with what could not be seen, before the findings.
    let (md, _) = run_as_nobody(&lab.url, "md", home.path());
    let not_seen = md.find("## Not seen").unwrap_or_else(|| panic!("{md}"));
    let findings = md.find("## Findings").unwrap_or_else(|| panic!("{md}"));
    assert!(not_seen < findings, "{md}");
    assert!(
        md[not_seen..findings].contains("run triage502 as root (sudo)"),
        "{md}"
    );
}

#[test]
fn unprivileged_run_with_only_weak_evidence_is_inconclusive_not_a_weak_answer() {
    // The upstream is refused, but the error log may not be read and nothing names the front
    // for `nobody`: with its configuration made unreadable too, only circumstantial evidence is
    // left, and the run must say so instead of leading with it.
    let mut lab = harness::Lab::start("nginx_upstream_refused");
    lab.provoke();
    for f in ["nginx.conf", "error.log", "access.log"] {
        let p = lab.dir.join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
        }
    }
    let home = nobody_home();
    let (json, _) = run_as_nobody(&lab.url, "json", home.path());
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    let conf = format!("the configuration {}/nginx.conf", lab.dir.display());
    assert!(
        report["unseen"]
            .as_array()
            .is_some_and(|u| u.iter().any(|x| x["what"] == conf.as_str())),
        "the unreadable configuration is not listed as unseen: {report:#}"
    );
    let first = &report["findings"][0];
    eprintln!(
        "weak-evidence run: status {} first {} ({}) unseen {}",
        report["status"], first["cause"], first["basis"], report["unseen"]
    );
    if first.is_null() {
        assert_ne!(report["status"], "healthy", "{report:#}");
    } else if first["basis"] == "circumstantial" {
        assert_eq!(report["status"], "inconclusive", "{report:#}");
        assert_eq!(report["direct_evidence"], false, "{report:#}");
    } else {
        assert_eq!(first["cause"], "upstream_refused", "{report:#}");
    }
}
