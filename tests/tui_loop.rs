//! The real event loop (`run_loop`) on `TestBackend` with the real runner:
//! Enter starts the walk, real checks run against loopback (a server that
//! answers 502 from "nginx", and a closed port), the results arrive over the
//! one message channel, the loop draws, `t` opens the ticket, and a signal
//! message ends the loop. And the Watch screen's probe task: it really
//! probes a loopback server that turns from 502 to 200, its samples arrive
//! over the same channel, and leaving the screen stops the probing.

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

/// A loopback HTTP server answering `502` to its first `failing` requests
/// and `200` after; counts every request it read.
async fn flapping_server(failing: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        for _ in 0..1000 {
            let Ok((mut c, _)) = l.accept().await else {
                break;
            };
            let mut buf = [0u8; 4096];
            if c.read(&mut buf).await.unwrap_or(0) == 0 {
                continue;
            }
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let answer: &[u8] = if n < failing {
                b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            };
            let _ = c.write_all(answer).await;
        }
    });
    (format!("http://{addr}/"), hits)
}

fn key(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// The app on the `tuitest` playbook (tests/tui_walk.toml) for `url`, as
/// `triage502 URL` would start it.
fn walk_app(url: String) -> App {
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
        max_tier: None,
        journal: false,
        playbook_file: None,
        since: HumanDuration(Duration::from_secs(600)),
        ascii: false,
        color: true,
    };
    App::new(setup, Some(url), jiff::Timestamp::now())
}

/// Run the real loop on an 80×24 `TestBackend` until a message ends it
/// (bounded: 30 s); the terminal as last drawn.
async fn run_to_end(
    app: &mut App,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    tx: &mpsc::UnboundedSender<Msg>,
    runner: &mut Runner,
) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        run_loop(&mut term, app, rx, tx, runner),
    )
    .await
    .expect("the loop ended")
    .unwrap();
    term
}

/// The drawn screen's text, cell by cell.
fn screen(term: &Terminal<TestBackend>) -> String {
    term.backend()
        .buffer()
        .content()
        .iter()
        .map(ratatui::buffer::Cell::symbol)
        .collect()
}

#[tokio::test]
async fn the_loop_runs_real_checks_and_draws_their_results() {
    let (url, _) = flapping_server(usize::MAX).await; // 502, always
    let mut app = walk_app(url.clone());
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
    let term = run_to_end(&mut app, &mut rx, &tx, &mut runner).await;

    let engine = app.engine.as_ref().unwrap();
    let Record::Checks { reports, .. } = &engine.trail()[0].record else {
        panic!("the first step must be the checks")
    };
    assert_eq!(reports[0].outcome, Outcome::Problem, "{:?}", reports[0]);
    assert!(reports[0].summary.contains("502"), "{}", reports[0].summary);
    assert_eq!(reports[1].outcome, Outcome::Problem, "{:?}", reports[1]);
    let screen = screen(&term);
    assert!(screen.contains("Ticket preview"), "{screen}");
    assert!(screen.contains("## Findings"), "{screen}");
    assert!(app.quit);
}

#[tokio::test]
async fn watch_probes_a_real_server_over_the_channel_and_stops_when_left() {
    use std::sync::atomic::Ordering;
    let (url, hits) = flapping_server(3).await;
    let mut app = walk_app(url);
    // Probe fast so the test is short; `+`/`-` only step between 1s and 60s.
    app.watch.interval = Duration::from_millis(100);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (rtx, _rrx) = mpsc::unbounded_channel::<RunnerEvent>();
    let mut runner = Runner::new(CheckContext::last(Duration::from_secs(600)), rtx);
    // From the start screen (no walk, so only the watch talks to the
    // server): open the watch, let it see the 502s turn into 200s, leave it,
    // and count what reaches the server afterwards.
    let drive = tx.clone();
    let counter = hits.clone();
    let script = tokio::spawn(async move {
        drive.send(key(KeyCode::Char('w'))).unwrap();
        let t0 = std::time::Instant::now();
        while counter.load(Ordering::SeqCst) < 8 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the watch did not probe"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drive.send(key(KeyCode::Esc)).unwrap();
        // A request already on the wire when Esc arrives may still land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let left = counter.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let later = counter.load(Ordering::SeqCst);
        drive.send(Msg::Signal("SIGTERM")).unwrap();
        (left, later)
    });
    let term = run_to_end(&mut app, &mut rx, &tx, &mut runner).await;
    let (left, later) = script.await.unwrap();
    assert_eq!(
        left, later,
        "probes went on for 1 s after the watch was left (10 intervals)"
    );
    let statuses: Vec<Option<u16>> = app.watch.samples.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses[..3],
        [Some(502); 3],
        "the first answers were the server's 502s: {statuses:?}"
    );
    assert!(
        statuses.len() >= 6 && statuses[3..].iter().all(|s| *s == Some(200)),
        "{statuses:?}"
    );
    assert!(
        matches!(
            app.watch.verdict(),
            triage502::tui::watch::Verdict::Recovered(_)
        ),
        "{:?}",
        app.watch.verdict()
    );
    assert!(app.engine.is_none(), "the watch never started the walk");
    let screen = screen(&term);
    assert!(screen.contains("Start: diagnose a 502"), "{screen}");
}
