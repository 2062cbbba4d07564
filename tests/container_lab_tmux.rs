//! The real binary in tmux at 80x24 on the container lab's real `upstream_exited` incident (the
//! app container stopped, exit 137; nginx in its own container answers 504): the operator reads
//! the finding that names the app's container, is offered the restart with the exact Engine API
//! call and `docker restart NAME` in the dialog, types the container's name to confirm, and the
//! walk reaches "Resolved" with the URL answering 200 again.
//!
//! Needs root, tmux, the Engine (`scripts/lab/docker-daemon.sh`) and the lab images
//! (`scripts/lab/docker-images.sh`).

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

#[allow(dead_code)] // shared with tests/lab: the container lab reads statuses, not bodies
#[path = "lab/client.rs"]
mod client;
#[path = "container_lab/harness.rs"]
mod harness;
#[path = "lab/ports.rs"]
mod ports;

#[allow(dead_code)] // the harness reads the status and proof lines; the diagnosis is on screen
#[path = "container_lab/catalogue.rs"]
mod catalogue;
#[path = "container_lab/docker.rs"]
mod docker;
#[path = "container_lab/scenarios.rs"]
mod scenarios;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::Duration;

use tmux::{BIN, Session, flowed, tmux};

#[test]
fn exited_app_container_is_restarted_from_the_dialog_and_resolved() {
    let mut lab = harness::ContainerLab::new("upstream_exited").unwrap();
    let reply = scenarios::start(&mut lab).unwrap_or_else(|e| panic!("{e:#}\n{}", lab.dump_logs()));
    lab.assert_expected(&reply);
    let app = lab.container("app").to_owned();
    let id = lab.inspect("app", "{{.Id}}");
    let sess = Session::new("ctr-restart");
    sess.wait("the shell prompt", |s| s.contains('$'));
    sess.type_line(&format!("{BIN} {}", lab.url));
    sess.wait("the start screen", |s| s.contains("Enter start"));
    sess.send("Enter");
    // Enter through checks and questions (defaults) until the restart's dialog.
    let mut dialog = None;
    for _ in 0..90 {
        let s = sess.screen();
        assert!(s.lines().count() <= 24, "{s}");
        if s.contains("Action: Restart the upstream's container")
            && s.contains("type the name + Enter to confirm")
        {
            dialog = Some(s);
            break;
        }
        assert!(
            !s.contains("Done: "),
            "the walk ended without offering the restart:\n{s}"
        );
        if !s.contains("checks running") && !s.contains("Action: ") {
            sess.send("Enter");
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let dialog = dialog.unwrap_or_else(|| panic!("no restart dialog:\n{}", sess.screen()));
    eprintln!("{dialog}");
    let text = flowed(&dialog);
    // Under the dialog, the first finding names the exited container.
    assert!(
        text.contains(&format!(
            "1. The upstream refuses connections [high] container {app} exited (code 137)"
        )),
        "the first finding does not name the exited container {app}:\n{dialog}\n{text}"
    );
    assert!(text.contains("Tier: disruptive"), "{text}");
    // The exact Engine API call (the container's id wraps inside the box) and the operator's
    // own command are in the dialog.
    assert!(
        text.contains(&format!(
            "Runs exactly (no shell): POST /containers/{}",
            &id[..30]
        )) && text.contains(&format!(
            "{}/restart?t=10 on /var/run/docker.sock",
            &id[40..]
        )),
        "the Engine API call is not in the dialog:\n{dialog}"
    );
    assert!(
        text.contains(&format!("the same by hand: docker restart {app}")),
        "no `docker restart {app}` in the dialog:\n{dialog}"
    );
    tmux(&["send-keys", "-t", &sess.name, "-l", &app]);
    sess.send("Enter");
    let result = sess.wait("the action result with the URL answering", |s| {
        s.contains("Action result") && s.contains("after:  200")
    });
    eprintln!("{result}");
    sess.send("Escape");
    let done = sess.walk_to_done();
    assert!(done.contains("Resolved"), "{done}");
    assert_eq!(lab.inspect("app", "{{.State.Status}}"), "running");
    assert_eq!(lab.get().status(), Some(200));
    sess.send("q");
    sess.wait("the quit question", |s| s.contains("Quit triage502?"));
    sess.send("y");
    sess.assert_sane_terminal();
}
