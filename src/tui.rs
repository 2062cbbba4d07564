//! The interactive wizard: the second front end over the engine and runner.
//!
//! One message type (`app::Msg`) arrives on one channel from four sources
//! (keys and resizes from crossterm's event stream, runner events, a 100 ms
//! tick, and SIGTERM/SIGINT/SIGHUP); one `App::update` handles it; `render`
//! draws a pure view. The loop is generic over the ratatui `Backend` so tests
//! drive the real app on `TestBackend`. Bursts are coalesced: every message
//! waiting is applied before one frame is drawn. Slow work the app asks for
//! (action plans, actions, ticket rendering) runs on tokio tasks that report
//! back on the same channel; so do the Watch screen's probes, on tasks a
//! `watch::Prober` keeps in step with the app (they run only while the
//! Watch screen is open). After the terminal is restored, what is still
//! changed, where the ticket was written and how to resume are printed.

pub mod app;
pub mod clipboard;
pub mod evidence;
pub mod fleet;
pub mod help;
pub mod hop;
pub mod keymap;
pub mod map;
pub mod render;
pub mod search;
pub mod sessions;
pub mod terminal;
pub mod theme;
pub mod watch;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use futures::StreamExt as _;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use crate::check::CheckContext;
use crate::cli::WalkArgs;
use crate::report::Status;
use crate::runner::{Runner, RunnerEvent};
use app::{App, Command, Msg, Setup};

/// Redraw period while anything may change (spinner, elapsed times).
pub const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Run the app until it quits: apply messages, carry out commands, draw.
pub async fn run_loop<B>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    tx: &mpsc::UnboundedSender<Msg>,
    runner: &mut Runner,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    terminal.draw(|f| render::render(app, f))?;
    // Watch probes run only while the Watch screen is open: kept in step
    // with the app after every message; dropping it aborts them.
    let mut prober = watch::Prober::new(tx.clone());
    while !app.quit {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(msg) = next {
            if let Some(cmd) = app.update(msg) {
                carry_out(cmd, runner, tx);
            }
            prober.sync(watch::wanted(app));
            if app.quit {
                break;
            }
            next = rx.try_recv().ok();
        }
        if let Ok((w, h)) = terminal.size().map(|s| (s.width, s.height))
            && (w == 0 || h == 0)
        {
            continue;
        }
        terminal.draw(|f| render::render(app, f))?;
    }
    runner.cancel();
    Ok(())
}

fn carry_out(cmd: Command, runner: &mut Runner, tx: &mpsc::UnboundedSender<Msg>) {
    match cmd {
        Command::Run { batch, checks } => {
            runner.cancel();
            runner.reap();
            runner.spawn_batch(batch, checks);
        }
        Command::Cancel => {
            runner.cancel();
            runner.reap();
        }
        Command::Quit => runner.cancel(),
        Command::Plan {
            seq,
            offer,
            why,
            policy,
        } => {
            let tx = tx.clone();
            tokio::spawn(async move {
                // Plan::new reads the disk (cache sizes, diffs): off the UI thread.
                let plan = tokio::task::spawn_blocking(move || {
                    crate::action::Plan::new(&offer, &why, &policy)
                })
                .await;
                if let Ok(plan) = plan {
                    let _ = tx.send(Msg::Plan(seq, Box::new(plan)));
                }
            });
        }
        Command::Execute {
            spec,
            tier,
            policy,
            url,
        } => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let before = match &url {
                    Some(u) => vec![crate::action::probe(u).await],
                    None => Vec::new(),
                };
                let x = crate::action::execute(&spec, tier, &policy).await;
                let verified = match &url {
                    Some(u) if x.refused.is_none() => Some(
                        crate::action::verify(u, app::VERIFY_PROBES, app::VERIFY_PAUSE, before)
                            .await,
                    ),
                    _ => None,
                };
                let _ = tx.send(Msg::Executed(Box::new(x), verified));
            });
        }
        Command::RenderTicket(path) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let r = tokio::task::spawn_blocking(move || {
                    crate::ticket::render_session(
                        &path,
                        crate::ticket::TicketFormat::Md,
                        false,
                        false,
                    )
                })
                .await;
                let msg = match r {
                    Ok(Ok(r)) => Ok(Box::new(r)),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(Msg::Ticket(msg));
            });
        }
        Command::Clipboard(text) => {
            use std::io::Write as _;
            let mut out = std::io::stdout();
            let _ = out.write_all(clipboard::osc52(&text).as_bytes());
            let _ = out.flush();
        }
        Command::HopTargets { values, url } => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let here = crate::hop::Locality::here().await;
                let (targets, skipped) = crate::hop::targets(&values, &url, &here);
                let _ = tx.send(Msg::HopTargets(targets, skipped));
            });
        }
        Command::Hop { targets, plan } => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let ptx = tx.clone();
                let progress: crate::hop::run::Progress =
                    std::sync::Arc::new(move |e: crate::hop::HopEvent| {
                        let _ = ptx.send(Msg::HopProgress(e));
                    });
                let results = crate::hop::hop_all(&targets, &plan, progress).await;
                let _ = tx.send(Msg::HopDone(results));
            });
        }
        Command::LoadSessions => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let now = jiff::Timestamp::now();
                if let Ok(rows) = tokio::task::spawn_blocking(move || sessions::load(now)).await {
                    let _ = tx.send(Msg::Sessions(rows));
                }
            });
        }
        Command::Resume { id, vars } => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let r = tokio::task::spawn_blocking(move || sessions::resume(&id, &vars))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let _ = tx.send(Msg::Resumed(sessions::Handoff::new(r)));
            });
        }
    }
}

/// Forward runner events into the one message channel.
pub fn forward_runner(
    mut from: mpsc::UnboundedReceiver<RunnerEvent>,
    to: mpsc::UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = from.recv().await {
            if to.send(Msg::Runner(ev)).is_err() {
                break;
            }
        }
    })
}

/// Keys, resizes and wheel events, a tick, and termination signals, as messages (the walk and
/// the fleet view read their input through it).
pub(crate) fn spawn_inputs(tx: &mpsc::UnboundedSender<Msg>) -> anyhow::Result<()> {
    use crossterm::event::{Event, KeyEventKind, MouseEventKind};
    let keys = tx.clone();
    tokio::spawn(async move {
        let mut events = crossterm::event::EventStream::new();
        while let Some(ev) = events.next().await {
            let msg = match ev {
                Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                Ok(Event::Mouse(m))
                    if matches!(
                        m.kind,
                        MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
                    ) =>
                {
                    Msg::Mouse(m)
                }
                Ok(_) => continue,
                // The terminal is gone (e.g. the SSH session dropped): quit.
                Err(_) => Msg::Signal("a terminal read error"),
            };
            if keys.send(msg).is_err() {
                break;
            }
        }
    });
    let ticks = tx.clone();
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(TICK);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            iv.tick().await;
            if ticks.send(Msg::Tick).is_err() {
                break;
            }
        }
    });
    let tx = tx.clone();
    crate::platform::listen_for_termination(move |name| {
        let _ = tx.send(Msg::Signal(name));
    })?;
    Ok(())
}

/// `triage502 [URL]`: run the wizard in this terminal, then print the outcome.
#[allow(clippy::too_many_lines)] // one linear story: set up, run, restore, report
pub fn interactive(url: Option<String>, walk: &WalkArgs) -> anyhow::Result<ExitCode> {
    // Before anything is read or written: is there a terminal to draw on?
    terminal::usable(url.as_deref())?;
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut resumed = None;
    // `--resume` without an id: choose from the saved sessions.
    let pick = walk.resume.as_deref() == Some("");
    let (setup, url, started_at) = if pick {
        let dir = crate::journal::sessions_dir()?;
        if crate::journal::paths_in(&dir, 1).is_empty() {
            return Err(crate::cli::UsageError(format!(
                "no saved session to resume in {}",
                dir.display()
            ))
            .into());
        }
        let setup = Setup {
            library: std::sync::Arc::default(),
            playbook: String::new(),
            vars: walk.vars.clone(),
            read_only: walk.read_only,
            max_tier: walk.max_tier,
            journal: true,
            playbook_file: None,
            since: walk.since,
            ascii: walk.ascii,
            color,
        };
        (setup, None, jiff::Timestamp::now())
    } else if let Some(id) = &walk.resume {
        let overrides = walk.vars.iter().cloned().collect();
        let id = Some(id.as_str()).filter(|i| *i != "latest");
        let (engine, journal, session) = crate::journal::resume_with(id, &overrides)
            .map_err(|e| crate::cli::UsageError(e.to_string()))?;
        let setup = Setup {
            library: engine.library().clone(),
            playbook: session.meta.playbook.clone(),
            vars: walk.vars.clone(),
            read_only: walk.read_only || session.meta.read_only,
            max_tier: walk.max_tier,
            journal: true,
            playbook_file: session.meta.playbook_file.clone(),
            since: walk.since,
            ascii: walk.ascii,
            color,
        };
        let started = session
            .meta
            .started_at
            .parse()
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let url = session.meta.url.clone();
        resumed = Some((engine, journal));
        (setup, url, started)
    } else {
        let (library, playbook) = crate::cli::select_playbook(walk.playbook.as_deref())?;
        // Check --var (and a given URL) before the terminal is taken over.
        let probe_url = url.as_deref().or(Some("http://127.0.0.1/"));
        crate::cli::initial_values(&library, &playbook, probe_url, &walk.vars)?;
        let playbook_file = walk
            .playbook
            .as_deref()
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_file())
            .and_then(|p| std::fs::canonicalize(p).ok());
        let setup = Setup {
            library,
            playbook,
            vars: walk.vars.clone(),
            read_only: walk.read_only,
            max_tier: walk.max_tier,
            journal: true,
            playbook_file,
            since: walk.since,
            ascii: walk.ascii,
            color,
        };
        (setup, url, jiff::Timestamp::now())
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let app = rt.block_on(async move {
        let mut app = App::new(setup, url, started_at);
        // The wizard hops one level: the remote run itself does not hop further unasked.
        app.hop_plan = Some(walk.hop_plan(1));
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Some((engine, journal)) = resumed {
            app.notice = Some(format!(
                "resumed session {} at {}",
                journal.id(),
                crate::journal::position(&engine)
            ));
            app.resume(engine, journal);
            let _ = tx.send(Msg::Begin);
        }
        let (rtx, rrx) = mpsc::unbounded_channel();
        let mut runner = Runner::new(CheckContext::last(walk.since.0), rtx);
        forward_runner(rrx, tx.clone());
        if pick {
            app.sessions = Some(sessions::SessionList::default());
            carry_out(Command::LoadSessions, &mut runner, &tx);
        }
        spawn_inputs(&tx)?;
        let mut guard = terminal::TerminalGuard::new().context("cannot set up the terminal")?;
        let res = run_loop(&mut guard.terminal, &mut app, &mut rx, &tx, &mut runner).await;
        drop(guard);
        res.map(|()| app)
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    // The terminal is restored: now stdout is ours again. After an SSH drop
    // it may be gone: write errors are ignored, never a panic.
    let report = app.report();
    let mut out = std::io::stdout();
    for line in app.undo.still_changed() {
        let _ = writeln!(out, "triage502: still changed: {line}");
    }
    if let Some(p) = &app.ticket_file {
        let _ = writeln!(out, "triage502: ticket written to {}", p.display());
    }
    if let Some(e) = &app.journal_error {
        let _ = writeln!(out, "triage502: warning: {e}");
    }
    let done = app
        .engine
        .as_ref()
        .is_some_and(|e| matches!(e.effect(), crate::engine::Effect::Done(_)));
    if let Some(why) = app
        .notice
        .as_deref()
        .filter(|n| n.starts_with("stopped by"))
    {
        let _ = writeln!(std::io::stderr(), "triage502: {why}");
    }
    let Some(report) = report else {
        let _ = writeln!(out, "triage502: quit before the walk started");
        return Ok(ExitCode::from(1));
    };
    let _ = writeln!(out, "{}", summary_line(&report, done));
    if let Some(j) = &app.journal {
        let _ = writeln!(
            out,
            "triage502: session {id} saved: resume with `triage502 --resume {id}`",
            id = j.id()
        );
    }
    Ok(match report.status {
        Status::Healthy if done => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// One line for the shell after the wizard closed.
pub fn summary_line(report: &crate::report::Report, done: bool) -> String {
    let verdict = match report.status {
        Status::Problem => "problem found",
        Status::Healthy => "healthy: no fault found",
        Status::Inconclusive => "inconclusive",
    };
    let top = report.findings.first().map_or_else(String::new, |f| {
        format!(": {} ({})", f.cause.info().title, f.cause)
    });
    let state = if done { "" } else { " (walk not finished)" };
    format!(
        "triage502: {verdict}{top}{state}; {} finding(s), {} step(s). For the ticket: triage502 run --non-interactive{}",
        report.findings.len(),
        report.path.len(),
        report
            .url
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default()
    )
}
