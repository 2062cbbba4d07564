//! The real event loop (`run_loop`) on `TestBackend` with the real runner:
//! Enter starts the walk, real checks run against loopback (a server that
//! answers 502 from "nginx", and a closed port), the results arrive over the
//! one message channel, the loop draws, `t` opens the ticket, and a signal
//! message ends the loop.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use triage502::check::{CheckContext, Outcome};
use triage502::duration::HumanDuration;
use triage502::engine::Record;
use triage502::playbook::library::{Library, Origin, Source};
use triage502::runner::{Runner, RunnerEvent};
use triage502::tui::app::{App, Msg, Setup};
use triage502::tui::run_loop;

async fn bad_gateway_server() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..1000 {
            let Ok((mut c, _)) = l.accept().await else {
                break;
            };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    format!("http://{addr}/")
}

fn key(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

#[tokio::test]
async fn the_loop_runs_real_checks_and_draws_their_results() {
    let url = bad_gateway_server().await;
    let (lib, failures) = Library::from_sources(vec![Source {
        origin: Origin::Embedded("tui_walk.toml"),
        text: include_str!("tui_walk.toml").into(),
    }]);
    assert!(failures.is_empty());
    let setup = Setup {
        library: Arc::new(lib),
        playbook: "tuitest".into(),
        vars: vec![],
        read_only: false,
        since: HumanDuration(Duration::from_secs(600)),
        ascii: false,
        color: true,
    };
    let mut app = App::new(setup, Some(url.clone()), jiff::Timestamp::now());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (rtx, mut rrx) = mpsc::unbounded_channel::<RunnerEvent>();
    let mut runner = Runner::new(CheckContext::last(Duration::from_secs(600)), rtx);
    // Forward runner events like the app does; once both checks are in,
    // open the ticket, give the loop a moment to draw it, then stop.
    let fwd = tx.clone();
    tokio::spawn(async move {
        let mut finished = 0;
        while let Some(ev) = rrx.recv().await {
            let done = matches!(ev, RunnerEvent::Finished { .. });
            let _ = fwd.send(Msg::Runner(ev));
            finished += usize::from(done);
            if finished == 2 {
                let _ = fwd.send(key(KeyCode::Char('t')));
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = fwd.send(Msg::Signal("SIGTERM"));
            }
        }
    });
    tx.send(key(KeyCode::Enter)).unwrap();
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        run_loop(&mut term, &mut app, &mut rx, &mut runner),
    )
    .await
    .expect("the loop ended")
    .unwrap();

    let engine = app.engine.as_ref().unwrap();
    let Record::Checks { reports, .. } = &engine.trail()[0].record else {
        panic!("the first step must be the checks")
    };
    assert_eq!(reports[0].outcome, Outcome::Problem, "{:?}", reports[0]);
    assert!(reports[0].summary.contains("502"), "{}", reports[0].summary);
    assert_eq!(reports[1].outcome, Outcome::Problem, "{:?}", reports[1]);
    let screen: String = term
        .backend()
        .buffer()
        .content()
        .iter()
        .map(ratatui::buffer::Cell::symbol)
        .collect();
    assert!(screen.contains("Ticket preview"), "{screen}");
    assert!(screen.contains("## Findings"), "{screen}");
    assert!(app.quit);
}
