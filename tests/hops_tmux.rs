//! The hop in the real TUI, in tmux at 80x24, on the multi-host lab (`scripts/lab/hosts.sh`): a
//! balancer in the root namespace in front of four web hosts, web2's app stopped (its nginx
//! answers 502), web4's sshd stopped. The operator walks the balancer's failing URL to the end;
//! the wizard asks "Continue on … over ssh?" and shows the exact ssh commands of the copy before
//! anything runs on the web hosts (no ssh login, no temp dir while it asks); `y` hops, the remote
//! progress streams in, the results name web2 and its cause, web1 and web3 healthy and web4
//! unreachable with ssh's reason; the ticket (`t`) has the Hops section and the map (`m`) the
//! remote hops; no `/tmp/triage502-hop.*` remains. Declining (`n`) runs nothing remote.
//!
//! Root only (network namespaces, sshd) with tmux; the copied binary is the static build
//! (`TRIAGE502_HOP_BINARY`, see `hops_lab.rs`). Skips with a message when something is missing.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

#[path = "hops/lab.rs"]
mod lab;
#[path = "support/tmux.rs"]
mod tmux;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab::{Lab, hop_binary, hop_dirs, missing_requirement, web_farm};
use tmux::{BIN, Session, flowed};

fn requirements() -> Option<PathBuf> {
    if let Some(why) = missing_requirement() {
        eprintln!("SKIPPED hops_tmux: {why}");
        return None;
    }
    if which::which("tmux").is_err() {
        eprintln!("SKIPPED hops_tmux: tmux is missing (apt-get install tmux)");
        return None;
    }
    let bin = hop_binary();
    if bin.is_none() {
        eprintln!("SKIPPED hops_tmux: {}", lab::NO_HOP_BINARY);
    }
    bin
}

/// The ssh logins each web host's sshd accepted so far (its log, `LogLevel INFO`).
fn logins(lab: &Lab) -> Vec<(String, usize)> {
    lab::FARM
        .iter()
        .map(|h| {
            let log =
                std::fs::read_to_string(lab.state.join(h).join("sshd.log")).unwrap_or_default();
            ((*h).to_owned(), log.matches("Accepted publickey").count())
        })
        .collect()
}

/// Processes whose command line names a hop's temp dir (a remote run of a copied binary).
fn hop_processes() -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("/triage502-hop.") {
            v.push(cmd);
        }
    }
    v
}

/// Start the wizard on the balancer's URL with the lab's ssh config and walk (Enter on the
/// defaults) until the hop offer; the offer's screen.
fn walk_to_offer(sess: &Session, lab: &Lab, bin: &Path, url: &str) -> String {
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&format!(
        "{BIN} --since 10m --ssh-config {} --hop-binary {} {url}",
        lab.ssh_config().display(),
        bin.display()
    ));
    sess.wait("the start screen", |s| s.contains("Enter start"));
    sess.send("Enter");
    for _ in 0..90 {
        std::thread::sleep(Duration::from_millis(400));
        let s = sess.screen();
        assert!(s.lines().count() <= 24, "{s}");
        if s.contains("over ssh?") {
            return s;
        }
        assert!(
            !s.contains("Done: "),
            "the walk ended without offering the hop:\n{s}"
        );
        if !s.contains("checks running") {
            sess.send("Enter");
        }
    }
    panic!("no hop offer:\n{}", sess.screen());
}

/// While the offer asks, nothing has run on any web host: no login since the lab came up, no
/// temp dir, no remote run. Checked twice, a second apart.
fn assert_nothing_remote(lab: &Lab, logins_before: &[(String, usize)], dirs_before: &[PathBuf]) {
    for _ in 0..2 {
        assert_eq!(logins(lab), logins_before, "an ssh login happened before y");
        assert_eq!(hop_dirs(), dirs_before, "a hop temp dir exists before y");
        assert!(hop_processes().is_empty(), "{:?}", hop_processes());
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Scroll the open view down until `pred` holds on the screen (at most 40 presses); the screen.
fn scroll_until(sess: &Session, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut s = sess.screen();
    for _ in 0..40 {
        if pred(&s) {
            return s;
        }
        sess.send("Down");
        std::thread::sleep(Duration::from_millis(150));
        s = sess.screen();
    }
    assert!(pred(&s), "{what} never showed:\n{s}");
    s
}

/// Page down the open view until `pred` holds (at most 30 pages); the screen.
fn page_until(sess: &Session, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut s = sess.screen();
    for _ in 0..30 {
        if pred(&s) {
            return s;
        }
        sess.send("PageDown");
        std::thread::sleep(Duration::from_millis(200));
        s = sess.screen();
    }
    assert!(pred(&s), "{what} never showed:\n{s}");
    s
}

#[test]
fn the_wizard_asks_then_hops_to_the_web_hosts() {
    let _one = lab::one_at_a_time();
    let Some(bin) = requirements() else { return };
    let (lab, url) = web_farm(21);
    let addr = |h: &str| lab.addr(h);
    let logins_before = logins(&lab);
    let dirs_before = hop_dirs();
    let sess = Session::new("hops-yes");
    let offer = walk_to_offer(&sess, &lab, &bin, &url);
    eprintln!("{offer}");
    let text = flowed(&offer);
    // The question, each web host's URL as that host sees it, and the exact ssh of the copy.
    assert!(
        text.contains("Continue on 4 upstream hosts over ssh?"),
        "{offer}"
    );
    let path = &url[url.find("/shop").unwrap()..];
    for h in lab::FARM {
        assert!(
            text.contains(&format!("{a}:80 http://{a}:80{path}", a = addr(h))),
            "{h} is not offered:\n{offer}"
        );
    }
    let cfg = lab.ssh_config().display().to_string();
    assert!(
        text.contains(&format!(
            "$ ssh -F {cfg} -o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -T -- {}",
            addr("web1")
        )),
        "the ssh command is not shown whole:\n{offer}"
    );
    assert!(
        text.contains(r#"1. umask 077 && mktemp -d "${TMPDIR:-/tmp}/triage502-hop.XXXXXXXX""#),
        "{offer}"
    );
    // The rest of the copy is a scroll away; y hop is the dialog's last line.
    let rest = scroll_until(&sess, "the end of the offer", |s| {
        s.contains("y hop · n / Esc not now")
    });
    let rest_text = flowed(&rest);
    eprintln!("{rest}");
    assert!(
        rest_text.contains("2. umask 077 && cat > DIR/triage502 && chmod 0700 DIR/triage502 && sha256sum DIR/triage502"),
        "{rest}"
    );
    // The walk there, exactly as it will run: read-only, on the upstream's URL as web1 sees it.
    assert!(
        rest_text.contains(
            "3. env TRIAGE502_HOP_REMOTE=copy DIR/triage502 run --non-interactive --read-only"
        ),
        "{rest}"
    );
    assert!(
        rest_text.contains("4. rm -rf -- DIR && test ! -e DIR"),
        "{rest}"
    );
    assert_nothing_remote(&lab, &logins_before, &dirs_before);

    sess.send("y");
    // The progress streams while the hops run (the dialog follows the newest line).
    let t0 = Instant::now();
    let mut running_seen = None;
    let done = loop {
        let s = sess.screen();
        if s.contains("Hop results") {
            break s;
        }
        if running_seen.is_none() && s.contains("(running)") && s.contains(": progress: ") {
            running_seen = Some(s.clone());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the hops did not end:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let running = running_seen.unwrap_or_else(|| panic!("no streamed progress seen:\n{done}"));
    eprintln!("{running}");
    // (The "Progress:" heading scrolls away once the newest lines fill the dialog.)
    assert!(
        running.contains("Hop to 4 upstream hosts (running)"),
        "{running}"
    );
    eprintln!("{done}");
    let text = flowed(&done);
    let web2 = addr("web2");
    assert!(
        text.contains(&format!(
            "on web2 ({web2}): The upstream refuses connections"
        )),
        "web2's cause is not named:\n{done}"
    );
    for h in ["web1", "web3"] {
        assert!(
            text.contains(&format!(
                "{h} ({}): healthy: the URL answers there",
                addr(h)
            )),
            "{h} is not shown healthy:\n{done}"
        );
    }
    let web4 = addr("web4");
    assert!(
        text.contains(&format!("{web4}: ssh refused — sshd down or filtered ssh said: ssh: connect to host {web4} port 22: Connection refused")),
        "web4 is not shown unreachable with ssh's reason:\n{done}"
    );
    assert_eq!(
        text.matches("temp dir /tmp/triage502-hop.").count(),
        3,
        "{done}"
    );
    assert_eq!(text.matches(": removed").count(), 3, "{done}");
    assert!(
        done.contains("hop done: remote findings in the report, the ticket (t) and the map (m)"),
        "{done}"
    );
    assert_eq!(hop_dirs(), dirs_before, "a hop temp dir was left behind");
    assert!(hop_processes().is_empty(), "{:?}", hop_processes());

    // The ticket has the Hops section.
    sess.send("Escape");
    sess.wait("the end screen", |s| s.contains("Done: "));
    sess.send("t");
    sess.wait("the ticket", |s| s.contains("Ticket"));
    sess.wait("the rendered ticket", |s| {
        s.contains("Masked before export")
    });
    // The finding established on web2 names it, then the Hops section lists every hop.
    page_until(&sess, "web2's finding in the ticket", |s| {
        flowed(s).contains("on web2: **The upstream refuses connections**")
    });
    let ticket = page_until(&sess, "the ticket's hop section", |s| {
        s.contains("## Hops (the upstreams' hosts, over ssh)")
    });
    eprintln!("{ticket}");
    let ticket = flowed(&ticket);
    assert!(
        ticket.contains(&format!(
            "- on web2 ({web2}): The upstream refuses connections"
        )),
        "{ticket}"
    );
    assert!(
        ticket.contains("(a copied static triage502; /tmp/triage502-hop."),
        "{ticket}"
    );
    sess.send("Escape");
    sess.wait("the end screen", |s| {
        s.contains("Done: ") && !s.contains("Ticket preview")
    });
    // The map draws the remote hops.
    sess.send("m");
    let first = sess.wait("the map", |s| s.contains("Map: client"));
    eprintln!("{first}");
    // The balancer's group is named by its failing server, not by the first server it lists.
    let web2_5xx = format!("{web2}:80 http_5xx");
    let first_line = first
        .lines()
        .find(|l| l.contains("First failing hop"))
        .unwrap_or_else(|| panic!("no failing hop on the map:\n{first}"));
    assert!(
        first_line.contains("1 of 4 servers failing") && flowed(&first).contains(&web2_5xx),
        "{first}"
    );
    let map = page_until(&sess, "the remote hops on the map", |s| s.contains("(ssh)"));
    eprintln!("{map}");
    let map = flowed(&map);
    assert!(
        map.contains(&format!(
            "→ web2 ({web2}) {web2}:80 (ssh) → problem: The upstream refuses connections"
        )),
        "{map}"
    );
    assert!(
        map.contains(&format!("→ {web4} {web4}:80 (ssh) → ssh refused")),
        "{map}"
    );
    sess.send("Escape");
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    sess.assert_sane_terminal();
    assert_eq!(hop_dirs(), dirs_before, "a hop temp dir was left behind");
}

#[test]
fn declining_the_hop_runs_nothing_remote() {
    let _one = lab::one_at_a_time();
    let Some(bin) = requirements() else { return };
    let (lab, url) = web_farm(22);
    let logins_before = logins(&lab);
    let dirs_before = hop_dirs();
    let sess = Session::new("hops-no");
    walk_to_offer(&sess, &lab, &bin, &url);
    sess.send("n");
    let done = sess.wait("the end screen, the hop declined", |s| {
        s.contains("Done: ") && s.contains("hop not made: h offers it again")
    });
    eprintln!("{done}");
    assert_nothing_remote(&lab, &logins_before, &dirs_before);
    // h offers it again; Esc declines again, and still nothing ran there.
    sess.send("h");
    sess.wait("the offer again", |s| {
        s.contains("Continue on 4 upstream hosts over ssh?")
    });
    sess.send("Escape");
    sess.wait("the end screen", |s| s.contains("Done: "));
    assert_nothing_remote(&lab, &logins_before, &dirs_before);
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    sess.assert_sane_terminal();
    assert_nothing_remote(&lab, &logins_before, &dirs_before);
}
