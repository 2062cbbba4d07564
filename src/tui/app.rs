//! The wizard's state and its one `update` function.
//!
//! Invariants: the engine decides, the runner runs, the app only shows and
//! forwards. `update` never spawns and never waits on a child, the network
//! or a large read: it returns a `Command` for the loop to carry out (checks,
//! building an action's plan, running a confirmed action and its
//! verify-after-fix, rendering the ticket). The only I/O it does itself is
//! small and local: one journal line per event (appended and fsynced, so a
//! crash loses at most the event in flight) and writing the ticket file on `w`.
//! An action runs only after `Plan::confirmation()` accepted the operator's
//! input, under an `ExecPolicy` with this session's `--read-only`/`--max-tier`
//! (the executor checks the policy again). Every input the engine accepts is
//! journalled; so are Back, notes and the End of the walk. Every runner event carries its batch number;
//! events of an older batch (cancelled, re-run, walked back) are ignored.
//! Time enters only through `Msg::Tick` (`now`), so tests that send no ticks
//! see fixed durations.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;

use crate::action::{
    ActionSpec, Confirmation, ExecPolicy, Executed, Plan, Tier, UndoList, VerifyResult,
};
use crate::check::{CheckReport, Outcome};
use crate::duration::HumanDuration;
use crate::engine::{AnswerSource, Effect, Engine, Input, PlannedAction, PlannedCheck};
use crate::journal::Journal;
use crate::playbook::library::Library;
use crate::report::Report;
use crate::runner::RunnerEvent;
use crate::ticket::Rendered;
use crate::tui::evidence;
use crate::tui::keymap::{Action, Beneath, Screen, keymap};
use crate::tui::search::{self, Search, SearchOp};
use crate::tui::sessions::{Handoff, Resumed, Row, SessionList};
use crate::tui::watch::{Watch, WatchEvent};

/// Why an action was refused under `--read-only`.
pub const READ_ONLY: &str = "refused: running read-only (--read-only)";
/// Why an action was declined by the operator.
pub const DECLINED: &str = "declined by the operator";
/// The summary of a check stopped with Esc.
pub const CANCELLED: &str = "cancelled by the operator";

/// Everything the loop feeds the app, on one channel.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Runner(RunnerEvent),
    Tick,
    /// SIGTERM, SIGINT or SIGHUP: quit now (named for the exit message).
    Signal(&'static str),
    /// Follow the engine's current effect (sent once after a resume).
    Begin,
    /// The confirmation dialog's content for offer number `.0`.
    Plan(u64, Box<Plan>),
    /// A confirmed action ran (or was refused), with verify-after-fix.
    Executed(Box<Executed>, Option<VerifyResult>),
    /// The ticket preview rendered from the journal.
    Ticket(Result<Box<Rendered>, String>),
    /// A probe (or access-log) result of the Watch screen.
    Watch(WatchEvent),
    /// A mouse event (only the wheel is used).
    Mouse(crossterm::event::MouseEvent),
    /// The saved sessions for the `--resume` list.
    Sessions(Vec<Row>),
    /// The session chosen from the list, opened (or why it could not be).
    Resumed(Handoff),
    /// The failing path's upstreams on other hosts (and the ones set aside).
    HopTargets(Vec<crate::hop::Target>, Vec<crate::hop::target::Skipped>),
    /// A line of a hop's progress.
    HopProgress(crate::hop::HopEvent),
    /// Every hop ended.
    HopDone(Vec<(crate::hop::Hop, Option<Report>)>),
}

/// What the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Cancel whatever runs, then run this batch.
    Run {
        batch: u64,
        checks: Vec<PlannedCheck>,
    },
    /// Abort the running checks.
    Cancel,
    /// Leave the loop.
    Quit,
    /// Build the plan of an offer off the UI thread (it reads the disk).
    Plan {
        seq: u64,
        offer: Box<PlannedAction>,
        why: String,
        policy: ExecPolicy,
    },
    /// Run a confirmed action on a task, then re-probe `url`.
    Execute {
        spec: Box<ActionSpec>,
        tier: Tier,
        policy: ExecPolicy,
        url: Option<String>,
    },
    /// Render the ticket from this journal.
    RenderTicket(PathBuf),
    /// Copy this text to the clipboard (OSC 52).
    Clipboard(String),
    /// Read the saved sessions for the `--resume` list.
    LoadSessions,
    /// Resume session `id` (journal reopened, walk rebuilt) off the UI thread.
    Resume {
        id: String,
        vars: Vec<(String, String)>,
    },
    /// Find the upstreams of the failing path that are on other hosts (reads Docker's networks).
    HopTargets {
        values: crate::template::Values,
        url: String,
    },
    /// Hop to these hosts over ssh (the operator said yes).
    Hop {
        targets: Vec<crate::hop::Target>,
        plan: Box<crate::hop::Plan>,
    },
}

/// Rows of a plan's diff the action dialog shows at once (it fits 80x24).
pub const DIFF_ROWS: usize = 6;

/// The lines of a diff the action dialog shows: the `---`/`+++` header is
/// left out (the dialog names the file).
pub fn diff_rows(d: &str) -> Vec<&str> {
    d.lines()
        .skip_while(|l| l.starts_with("--- ") || l.starts_with("+++ "))
        .collect()
}

/// Lines one wheel notch scrolls.
pub const WHEEL_LINES: i32 = 3;

/// Probes after a fix, and the pause between them.
pub const VERIFY_PROBES: usize = 3;
/// The pause between verify probes.
pub const VERIFY_PAUSE: Duration = Duration::from_secs(2);

/// What the walk was started with (from the command line).
#[derive(Debug, Clone)]
pub struct Setup {
    pub library: Arc<Library>,
    pub playbook: String,
    pub vars: Vec<(String, String)>,
    pub read_only: bool,
    /// `--max-tier`.
    pub max_tier: Option<Tier>,
    /// Write a session journal (off in tests that must not touch the state dir).
    pub journal: bool,
    /// The playbook file given with `--playbook FILE` (journalled for resume).
    pub playbook_file: Option<PathBuf>,
    pub since: HumanDuration,
    pub ascii: bool,
    /// False under `NO_COLOR`.
    pub color: bool,
}

/// A check of the running batch.
#[derive(Debug, Clone)]
pub struct Slot {
    pub kind: &'static str,
    pub label: String,
    pub timeout: Duration,
    pub started: Instant,
    pub report: Option<CheckReport>,
}

/// Windows drawn over the current screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Guidance,
    Ticket,
    ConfirmQuit,
    /// The note field.
    Note,
    /// The result of the action that just ran.
    ActionResult,
    /// The serving path, hop by hop (`m`).
    Map,
    /// The URL re-probed over time (`w`); probing runs only while it is open.
    Watch,
    /// "Continue on the upstream's host over ssh?", then the hops' progress and results.
    Hop,
}

/// The whole state of the wizard.
#[derive(Debug)]
pub struct App {
    pub setup: Setup,
    /// The URL, once given and valid.
    pub url: Option<String>,
    /// The URL field on the start screen (when no URL was given).
    pub url_input: String,
    /// Why `url_input` is not a valid URL yet.
    pub url_error: Option<String>,
    /// Waiting for the URL to be typed.
    pub editing_url: bool,
    pub engine: Option<Engine>,
    /// The batch whose results are awaited, with its checks.
    pub batch: u64,
    pub running: Vec<Slot>,
    pub overlay: Option<Overlay>,
    /// Highlighted choice of the current question.
    pub selected: usize,
    /// Text typed to confirm a disruptive or destructive action.
    pub typed: String,
    pub evidence_scroll: u16,
    pub overlay_scroll: u16,
    /// One line telling the operator what just happened.
    pub notice: Option<String>,
    pub ticks: u64,
    pub t0: Instant,
    pub now: Instant,
    pub started_at: jiff::Timestamp,
    pub quit: bool,
    /// The session journal (none when journalling is off or failed).
    pub journal: Option<Journal>,
    /// Why the session is not journalled, when it should be.
    pub journal_error: Option<String>,
    /// The End event was written for the current Done.
    pub ended: bool,
    /// Offers seen so far (plans of older offers are ignored).
    pub offer_seq: u64,
    /// The plan of the current offer, once built.
    pub plan: Option<Plan>,
    /// First line of the plan's diff shown in the action dialog (↑/↓ scroll it).
    pub plan_scroll: u16,
    /// A confirmed action is running since.
    pub executing: Option<Instant>,
    /// The last action's outcome and verify-after-fix.
    pub last_action: Option<(Executed, Option<VerifyResult>)>,
    /// What this session still has changed.
    pub undo: UndoList,
    /// The note being typed.
    pub note_input: String,
    /// The ticket preview (or why it could not be rendered).
    pub ticket: Option<Result<Rendered, String>>,
    /// Where the ticket was written with `w`.
    pub ticket_file: Option<PathBuf>,
    /// The Watch screen's samples and settings.
    pub watch: Watch,
    /// The `/` search in the evidence, while active.
    pub search: Option<Search>,
    /// The saved sessions to choose from (`--resume` without an id).
    pub sessions: Option<SessionList>,
    /// How to hop to an upstream's host (none: the wizard does not offer it).
    pub hop_plan: Option<crate::hop::Plan>,
    /// The hop offered at the end of the walk, and its outcome.
    pub hop: Option<crate::tui::hop::HopView>,
}

impl App {
    pub fn new(setup: Setup, url: Option<String>, started_at: jiff::Timestamp) -> App {
        let now = Instant::now();
        let needs_url = url.is_none()
            && setup
                .library
                .get(&setup.playbook)
                .is_some_and(|p| p.var("url").is_some());
        let mut app = App {
            setup,
            url,
            url_input: String::new(),
            url_error: None,
            editing_url: needs_url,
            engine: None,
            batch: 0,
            running: Vec::new(),
            overlay: None,
            selected: 0,
            typed: String::new(),
            evidence_scroll: 0,
            overlay_scroll: 0,
            plan_scroll: 0,
            notice: None,
            ticks: 0,
            t0: now,
            now,
            started_at,
            quit: false,
            journal: None,
            journal_error: None,
            ended: false,
            offer_seq: 0,
            plan: None,
            executing: None,
            last_action: None,
            undo: UndoList::new(),
            note_input: String::new(),
            ticket: None,
            ticket_file: None,
            watch: Watch::default(),
            search: None,
            sessions: None,
            hop_plan: None,
            hop: None,
        };
        if app.editing_url {
            app.url_error = app.validate_url("");
        }
        app
    }

    /// The screen keys are interpreted for.
    pub fn screen(&self) -> Screen {
        match self.overlay {
            Some(Overlay::Help) => return Screen::Help,
            Some(Overlay::Guidance) => return Screen::Guidance,
            Some(Overlay::Ticket) => return Screen::Ticket,
            Some(Overlay::ConfirmQuit) => return Screen::ConfirmQuit,
            Some(Overlay::Note) => return Screen::Note,
            Some(Overlay::ActionResult) => return Screen::ActionResult,
            Some(Overlay::Map) => return Screen::Map,
            Some(Overlay::Watch) => return Screen::Watch,
            Some(Overlay::Hop) => return Screen::Hop,
            None => {}
        }
        if self.executing.is_some() {
            return Screen::Executing;
        }
        let Some(engine) = &self.engine else {
            return if self.sessions.is_some() {
                Screen::Sessions
            } else if self.editing_url {
                Screen::UrlPrompt
            } else {
                Screen::Start
            };
        };
        let screen = match engine.effect() {
            Effect::RunChecks { .. } | Effect::Inform { .. } => Screen::Step,
            Effect::Ask { .. } => Screen::Question,
            Effect::Offer(a) if self.needs_typing(a) => Screen::ActionTyped,
            Effect::Offer(_) => Screen::Action,
            Effect::Done(_) => Screen::Done,
        };
        match (&self.search, Beneath::of(screen)) {
            (Some(s), Some(_)) if s.editing => Screen::SearchInput,
            (Some(_), Some(b)) => Screen::Searched(b),
            _ => screen,
        }
    }

    /// Are checks running now?
    pub fn is_running(&self) -> bool {
        self.running.iter().any(|s| s.report.is_none())
    }

    /// The word to type to confirm a disruptive or destructive action:
    /// the unit for a service, the program for a command.
    pub fn confirm_word(a: &PlannedAction) -> String {
        match &a.spec {
            Some(ActionSpec::Service(s)) => s.unit.clone(),
            _ => a.argv.first().map_or_else(String::new, |p| {
                p.rsplit('/').next().unwrap_or(p).to_owned()
            }),
        }
    }

    fn needs_typing(&self, a: &PlannedAction) -> bool {
        match &self.plan {
            Some(p) => p.runnable() && matches!(p.confirmation(), Confirmation::Type(_)),
            None => !self.setup.read_only && a.blocked.is_none() && a.tier > Tier::Reversible,
        }
    }

    /// The policy confirmed actions run under.
    pub fn policy(&self) -> ExecPolicy {
        ExecPolicy {
            read_only: self.setup.read_only,
            max_tier: self.setup.max_tier,
            interactive_consent: true,
            ..ExecPolicy::default()
        }
    }

    /// Continue a resumed session: the engine and its reopened journal.
    pub fn resume(&mut self, engine: Engine, journal: Journal) {
        self.editing_url = false;
        self.engine = Some(engine);
        self.ended = matches!(
            self.engine.as_ref().map(Engine::effect),
            Some(Effect::Done(_))
        );
        self.journal = Some(journal);
    }

    /// Start journalling the walk that just started.
    fn open_journal(&mut self) {
        if !self.setup.journal {
            return;
        }
        let Some(engine) = &self.engine else { return };
        let mut meta = crate::journal::meta_for(engine, self.url.clone(), self.setup.read_only);
        meta.playbook_file.clone_from(&self.setup.playbook_file);
        match Journal::create(meta) {
            Ok(j) => self.journal = Some(j),
            Err(e) => {
                self.journal_error = Some(format!("this session is not journalled: {e}"));
                self.notice.clone_from(&self.journal_error);
            }
        }
    }

    /// Append to the journal; a failure stops journalling and says so.
    fn journal_with(
        &mut self,
        f: impl FnOnce(&mut Journal) -> Result<(), crate::journal::JournalError>,
    ) {
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = f(j)
        {
            self.journal_error = Some(format!("journal write failed, journalling stopped: {e}"));
            self.notice.clone_from(&self.journal_error);
            self.journal = None;
        }
    }

    /// The report of the walk so far.
    pub fn report(&self) -> Option<Report> {
        let e = self.engine.as_ref()?;
        let ms = self.now.saturating_duration_since(self.t0).as_millis() as u64;
        let mut r = Report::from_engine(e, self.url.clone(), self.started_at, ms);
        if let Some(h) = self.hop.as_ref().filter(|h| !h.results.is_empty()) {
            r.merge_hops(h.results.clone());
        }
        Some(r)
    }

    /// Apply one message.
    pub fn update(&mut self, msg: Msg) -> Option<Command> {
        match msg {
            Msg::Key(key) => {
                let action = keymap(self.screen(), key)?;
                self.notice = None;
                self.apply(action)
            }
            Msg::Resize(..) => None,
            Msg::Tick => {
                self.ticks = self.ticks.wrapping_add(1);
                self.now = Instant::now();
                None
            }
            Msg::Runner(ev) => self.runner_event(ev),
            Msg::Signal(name) => {
                self.notice = Some(format!("stopped by {name}"));
                self.quit = true;
                Some(Command::Quit)
            }
            Msg::Begin => self.follow(),
            Msg::Plan(seq, plan) => {
                if seq == self.offer_seq && matches!(self.screen_effect(), Some(Effect::Offer(_))) {
                    self.plan = Some(*plan);
                    self.plan_scroll = 0;
                }
                None
            }
            Msg::Executed(mut x, verified) => {
                self.executing = None;
                self.undo.apply(&x);
                // Journal the before/after with the result, so the ticket can say what helped.
                if let (Some(v), None) = (&verified, &x.refused) {
                    x.result.summary =
                        format!("{}; verify-after-fix: {}", x.result.summary, v.summary());
                }
                let input = x.input();
                self.last_action = Some((*x, verified));
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::ActionResult);
                self.feed(input)
            }
            Msg::Ticket(r) => {
                if self.overlay == Some(Overlay::Ticket) {
                    self.ticket = Some(r.map(|b| *b));
                }
                None
            }
            Msg::Watch(ev) => {
                if self.overlay == Some(Overlay::Watch) {
                    self.watch.apply(ev);
                }
                None
            }
            Msg::Mouse(m) => {
                use crossterm::event::MouseEventKind as M;
                let up = match m.kind {
                    M::ScrollUp => true,
                    M::ScrollDown => false,
                    _ => return None,
                };
                let action = crate::tui::keymap::wheel(self.screen(), up)?;
                self.apply(action)
            }
            Msg::Sessions(rows) => {
                if let Some(l) = self.sessions.as_mut() {
                    l.selected = 0;
                    l.rows = Some(rows);
                }
                None
            }
            Msg::Resumed(handoff) => self.resumed(handoff.take()?),
            Msg::HopTargets(targets, skipped) => {
                let plan = self.hop_plan.clone()?;
                if targets.is_empty() || self.hop.is_some() {
                    return None;
                }
                self.hop = Some(crate::tui::hop::HopView::new(targets, skipped, plan));
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::Hop);
                None
            }
            Msg::HopProgress(e) => {
                if let Some(h) = self.hop.as_mut() {
                    h.progress(&e.host, &e.line);
                }
                None
            }
            Msg::HopDone(results) => {
                let h = self.hop.as_mut()?;
                h.phase = crate::tui::hop::Phase::Done;
                h.results = results;
                // Journal each hop with the findings established there (the ticket's hop
                // section), and the copy with its removal.
                let mut merged = self.report()?;
                merged.findings.retain(|f| f.host != merged.host);
                let events: Vec<crate::journal::Event> = merged
                    .hops
                    .iter()
                    .map(|hop| crate::journal::Event::Hop {
                        hop: Box::new(hop.clone()),
                        findings: merged
                            .findings
                            .iter()
                            .filter(|f| f.host.as_deref() == Some(hop.host.as_str()))
                            .cloned()
                            .collect(),
                    })
                    .collect();
                for ev in events {
                    self.journal_with(|j| j.append(&ev));
                }
                self.notice = Some(
                    "hop done: remote findings in the report, the ticket (t) and the map (m)"
                        .into(),
                );
                None
            }
        }
    }

    /// Continue the session chosen from the list: its setup, URL and walk.
    fn resumed(&mut self, r: Result<Resumed, String>) -> Option<Command> {
        let Resumed {
            engine,
            journal,
            session,
        } = match r {
            Ok(r) => r,
            Err(e) => {
                self.notice = Some(e);
                if let Some(l) = self.sessions.as_mut() {
                    l.taking = false;
                }
                return None;
            }
        };
        let meta = session.meta;
        self.setup.library = engine.library().clone();
        self.setup.playbook = meta.playbook;
        self.setup.read_only |= meta.read_only;
        self.setup.playbook_file = meta.playbook_file;
        self.url = meta.url;
        self.started_at = meta.started_at.parse().unwrap_or(self.started_at);
        self.notice = Some(format!(
            "resumed session {} at {}",
            journal.id(),
            crate::journal::position(&engine)
        ));
        self.sessions = None;
        self.resume(engine, journal);
        self.follow()
    }

    /// A `/` search key: move the evidence to the current match.
    fn search_key(&mut self, op: SearchOp) {
        let lines = self
            .engine
            .as_ref()
            .map(evidence::lines)
            .unwrap_or_default();
        if let Some(line) = search::apply(&mut self.search, op, &lines) {
            // One line of context above the match.
            self.evidence_scroll = u16::try_from(line.saturating_sub(1)).unwrap_or(u16::MAX);
        }
    }

    fn screen_effect(&self) -> Option<&Effect> {
        self.engine.as_ref().map(Engine::effect)
    }

    fn runner_event(&mut self, ev: RunnerEvent) -> Option<Command> {
        match ev {
            RunnerEvent::Started {
                batch,
                index,
                timeout,
                ..
            } if batch == self.batch => {
                if let Some(s) = self.running.get_mut(index) {
                    s.timeout = timeout;
                }
                None
            }
            RunnerEvent::Finished {
                batch,
                index,
                report,
            } if batch == self.batch => {
                if let Some(s) = self.running.get_mut(index) {
                    s.report.get_or_insert(report);
                }
                if self.running.is_empty() || self.is_running() {
                    return None;
                }
                let reports = std::mem::take(&mut self.running)
                    .into_iter()
                    .filter_map(|s| s.report)
                    .collect();
                self.feed(Input::ChecksDone(reports))
            }
            RunnerEvent::Started { .. } | RunnerEvent::Finished { .. } => None,
        }
    }

    /// Feed the engine and follow its new effect.
    fn feed(&mut self, input: Input) -> Option<Command> {
        let engine = self.engine.as_mut()?;
        let journalled = self.journal.is_some().then(|| input.clone());
        if let Err(e) = engine.step(input) {
            self.notice = Some(format!("internal error (a bug, please report it): {e}"));
            return None;
        }
        if let Some(input) = journalled {
            self.journal_with(|j| j.input(&input));
        }
        self.follow()
    }

    /// Set up the screen for the engine's current effect.
    fn follow(&mut self) -> Option<Command> {
        self.evidence_scroll = 0;
        // The evidence searched is gone: so is the search.
        self.search = None;
        self.typed.clear();
        self.plan = None;
        let effect = self.engine.as_ref()?.effect().clone();
        let offer_hop = matches!(effect, Effect::Done(_))
            && self.hop_plan.is_some()
            && self.hop.is_none()
            && self
                .engine
                .as_ref()
                .is_some_and(|e| crate::report::status(e) != crate::report::Status::Healthy);
        if matches!(effect, Effect::Done(_)) && !self.ended {
            self.ended = true;
            if let Some(engine) = self.engine.take() {
                self.journal_with(|j| j.end(&engine));
                self.engine = Some(engine);
            }
        }
        match effect {
            Effect::RunChecks { checks, .. } => {
                self.batch += 1;
                self.running = checks
                    .iter()
                    .map(|c| Slot {
                        kind: c.kind,
                        label: c.label.clone(),
                        timeout: c
                            .spec
                            .as_ref()
                            .map_or(Duration::ZERO, crate::check::CheckSpec::timeout),
                        started: self.now,
                        report: None,
                    })
                    .collect();
                Some(Command::Run {
                    batch: self.batch,
                    checks,
                })
            }
            Effect::Ask {
                choices, default, ..
            } => {
                self.selected = choices.iter().position(|c| c.0 == default).unwrap_or(0);
                None
            }
            Effect::Offer(offer) => {
                self.offer_seq += 1;
                let why = self
                    .engine
                    .as_ref()
                    .map(Engine::guidance)
                    .unwrap_or_default();
                Some(Command::Plan {
                    seq: self.offer_seq,
                    offer: Box::new(offer),
                    why,
                    policy: self.policy(),
                })
            }
            Effect::Done(_) if offer_hop => Some(Command::HopTargets {
                values: self.engine.as_ref()?.values().clone(),
                url: self.url.clone().unwrap_or_default(),
            }),
            Effect::Inform { .. } | Effect::Done(_) => None,
        }
    }

    fn begin(&mut self) -> Option<Command> {
        let s = &self.setup;
        let values =
            match crate::cli::initial_values(&s.library, &s.playbook, self.url.as_deref(), &s.vars)
            {
                Ok(v) => v,
                Err(e) => {
                    self.notice = Some(format!("{e:#}"));
                    return None;
                }
            };
        match Engine::start(s.library.clone(), &s.playbook, values) {
            Ok(e) => {
                self.engine = Some(e);
                self.open_journal();
                self.follow()
            }
            Err(e) => {
                self.notice = Some(format!("cannot start: {e}"));
                None
            }
        }
    }

    fn validate_url(&self, text: &str) -> Option<String> {
        if text.is_empty() {
            return Some("type the failing URL, e.g. https://shop.example.com/checkout".into());
        }
        let var = self
            .setup
            .library
            .get(&self.setup.playbook)
            .and_then(|p| p.var("url"));
        match var {
            Some(v) => v.validate(text).err(),
            None => url::Url::parse(text).err().map(|e| e.to_string()),
        }
    }

    fn cancel_slots(&mut self) -> Vec<CheckReport> {
        self.running
            .iter_mut()
            .map(|s| {
                s.report
                    .get_or_insert_with(|| {
                        CheckReport::new(s.kind, s.label.clone(), Outcome::Inconclusive, CANCELLED)
                    })
                    .clone()
            })
            .collect()
    }

    /// Undo back to the previous step the operator saw (check results are
    /// undone with the step that led to them).
    fn back(&mut self) -> Option<Command> {
        let engine = self.engine.as_mut()?;
        if !engine.can_go_back() {
            self.notice = Some("this is the first step".into());
            return None;
        }
        let mut guard = 0;
        loop {
            if let Err(e) = engine.back() {
                self.notice = Some(format!("cannot go back: {e}"));
                return None;
            }
            if let Some(j) = self.journal.as_mut()
                && let Err(e) = j.back()
            {
                self.journal_error =
                    Some(format!("journal write failed, journalling stopped: {e}"));
                self.journal = None;
            }
            guard += 1;
            let at_checks = matches!(engine.effect(), Effect::RunChecks { .. });
            if !at_checks || !engine.can_go_back() || guard > crate::walk::MAX_STEPS {
                break;
            }
        }
        self.running.clear();
        self.ended = false;
        let cmd = self.follow();
        Some(cmd.unwrap_or(Command::Cancel))
    }

    fn rerun(&mut self) -> Option<Command> {
        let engine = self.engine.as_mut()?;
        if self.running.iter().any(|s| s.report.is_none()) {
            return self.follow();
        }
        let last_was_checks = matches!(engine.inputs().last(), Some(Input::ChecksDone(_)));
        if !last_was_checks {
            self.notice = Some("no checks to re-run at this step".into());
            return None;
        }
        if let Err(e) = engine.back() {
            self.notice = Some(format!("cannot re-run: {e}"));
            return None;
        }
        self.ended = false;
        self.journal_with(Journal::back);
        self.follow()
    }

    fn choose(&mut self, i: usize) -> Option<Command> {
        let Some(Effect::Ask { choices, .. }) = self.engine.as_ref().map(Engine::effect) else {
            return None;
        };
        let Some((id, _)) = choices.get(i) else {
            self.notice = Some(format!("there is no choice {}", i + 1));
            return None;
        };
        let choice = id.clone();
        self.feed(Input::Answer {
            choice,
            by: AnswerSource::Operator,
        })
    }

    fn offered(&self) -> Option<PlannedAction> {
        match self.engine.as_ref().map(Engine::effect) {
            Some(Effect::Offer(a)) => Some(a.clone()),
            _ => None,
        }
    }

    /// Why the offer cannot run in this session, if it cannot.
    pub fn refusal(&self, a: &PlannedAction) -> Option<String> {
        if let Some(p) = &self.plan {
            if let Some(r) = &p.refused {
                return Some(format!("refused: {r}"));
            }
            if let Some(b) = &p.blocked {
                return Some(format!("cannot run: {b}"));
            }
            return None;
        }
        if self.setup.read_only {
            return Some(READ_ONLY.to_owned());
        }
        a.blocked.as_ref().map(|b| format!("cannot run: {b}"))
    }

    fn confirm_action(&mut self) -> Option<Command> {
        let a = self.offered()?;
        if let Some(reason) = self.refusal(&a) {
            return self.feed(Input::ActionDeclined { reason });
        }
        let Some(plan) = &self.plan else {
            self.notice = Some("still preparing the action's details; a moment".into());
            return None;
        };
        let input = match plan.confirmation() {
            Confirmation::Yes => "y".to_owned(),
            Confirmation::Type(_) => self.typed.clone(),
        };
        if !plan.confirmation().accepts(&input) {
            self.notice = Some(format!("{} (Esc declines)", plan.confirmation().prompt()));
            return None;
        }
        // The plan's spec is pinned to what the dialog showed (a config
        // edit's file hash), so what runs is what was consented to.
        let Some(spec) = plan.spec.clone().or_else(|| a.spec.clone()) else {
            return self.feed(Input::ActionDeclined {
                reason: "cannot run: the action has no command".into(),
            });
        };
        self.executing = Some(self.now);
        self.typed.clear();
        Some(Command::Execute {
            spec: Box::new(spec),
            tier: a.tier,
            policy: self.policy(),
            url: self.url.clone(),
        })
    }

    /// Decline the offer: with the policy's reason when it may not run.
    fn decline(&mut self) -> Option<Command> {
        let a = self.offered()?;
        let reason = self.refusal(&a).unwrap_or_else(|| DECLINED.to_owned());
        self.feed(Input::ActionDeclined { reason })
    }

    /// Save the typed note to the journal at the current node.
    fn save_note(&mut self) -> Option<Command> {
        let text = self.note_input.trim().to_owned();
        self.overlay = None;
        self.note_input.clear();
        if text.is_empty() {
            return None;
        }
        let node = self
            .engine
            .as_ref()
            .and_then(Engine::current)
            .map(|(_, n)| n.id.clone());
        if self.journal.is_none() {
            self.notice = Some("note not saved: this session is not journalled".into());
            return None;
        }
        self.journal_with(|j| j.note(&text, node.as_deref()));
        if self.journal.is_some() {
            self.notice = Some("note saved to the journal (it goes into the ticket)".into());
        }
        None
    }

    fn open_ticket(&mut self) -> Option<Command> {
        self.overlay_scroll = 0;
        self.overlay = Some(Overlay::Ticket);
        self.ticket = None;
        self.journal
            .as_ref()
            .map(|j| Command::RenderTicket(j.path().to_owned()))
    }

    /// The ticket text shown in the preview.
    pub fn ticket_text(&self) -> String {
        match &self.ticket {
            Some(Ok(r)) => r.text.clone(),
            Some(Err(e)) => format!("The ticket could not be rendered: {e}"),
            None if self.journal.is_some() => "Rendering the ticket from the journal...".into(),
            None => self.report().map_or_else(
                || "The walk has not started.".to_owned(),
                |r| crate::redact::text(&r.to_markdown()),
            ),
        }
    }

    fn write_ticket(&mut self) {
        let Some(Ok(r)) = &self.ticket else {
            self.notice = Some("no ticket to write yet".into());
            return;
        };
        let Some(j) = &self.journal else { return };
        let path = j.path().with_extension("ticket.md");
        match std::fs::write(&path, &r.text) {
            Ok(()) => {
                self.notice = Some(format!("ticket written to {}", path.display()));
                self.ticket_file = Some(path);
            }
            Err(e) => self.notice = Some(format!("cannot write {}: {e}", path.display())),
        }
    }

    /// How far the open view can scroll: about its number of lines, so
    /// scrolling back up never needs presses "past the end".
    fn scroll_limit(&self) -> usize {
        match self.overlay {
            // The preview wraps its lines: count the rows they take at 80 columns (a long
            // ticket's end, e.g. its Hops section, stays reachable).
            Some(Overlay::Ticket) => {
                self.ticket_text()
                    .lines()
                    .map(|l| l.chars().count().div_ceil(70).max(1))
                    .sum::<usize>()
                    + 2
            }
            Some(Overlay::ActionResult) => self
                .last_action
                .as_ref()
                .map_or(0, |(x, _)| x.result.output.lines().count() + 12),
            Some(Overlay::Note) => 0,
            Some(Overlay::Help) => crate::tui::help::HELP.lines().count(),
            Some(Overlay::Guidance) => self
                .engine
                .as_ref()
                .and_then(Engine::current)
                .map_or(0, |(_, n)| n.guidance.lines().count() + 10),
            Some(Overlay::ConfirmQuit | Overlay::Watch) => 0,
            Some(Overlay::Map) => crate::tui::map::scroll_limit(self),
            Some(Overlay::Hop) => crate::tui::hop::scroll_limit(self),
            None => self.engine.as_ref().map_or(0, |e| evidence::lines(e).len()),
        }
    }

    fn scroll(&mut self, delta: i32) {
        // On an action with a diff, the arrows scroll the diff.
        if self.overlay.is_none() && matches!(self.screen_effect(), Some(Effect::Offer(_))) {
            if let Some(n) = self
                .plan
                .as_ref()
                .and_then(|p| p.detail.as_ref())
                .map(|d| diff_rows(d).len())
            {
                let max = i32::try_from(n.saturating_sub(DIFF_ROWS)).unwrap_or(i32::MAX);
                let max = max.min(i32::from(u16::MAX));
                self.plan_scroll =
                    (i32::from(self.plan_scroll) + delta).clamp(0, max.max(0)) as u16;
                return;
            }
        }
        let limit = i32::try_from(self.scroll_limit().saturating_sub(1)).unwrap_or(i32::MAX);
        let target = if self.overlay.is_some() {
            &mut self.overlay_scroll
        } else {
            &mut self.evidence_scroll
        };
        let max = limit.min(i32::from(u16::MAX));
        *target = (i32::from(*target) + delta).clamp(0, max.max(0)) as u16;
    }

    fn apply(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::Continue => match self.screen() {
                Screen::UrlPrompt => {
                    let text = self.url_input.trim().to_owned();
                    self.url_error = self.validate_url(&text);
                    if self.url_error.is_some() {
                        return None;
                    }
                    self.url = Some(text);
                    self.editing_url = false;
                    self.begin()
                }
                Screen::Start => self.begin(),
                Screen::Step if self.is_running() => {
                    self.notice = Some("checks are still running (Esc cancels them)".into());
                    None
                }
                Screen::Step => self.feed(Input::Continue),
                Screen::Question => self.choose(self.selected),
                Screen::Action => self.decline(),
                Screen::Done => self.open_ticket(),
                Screen::Note => self.save_note(),
                _ => None,
            },
            Action::Back => self.back(),
            Action::Rerun => self.rerun(),
            Action::CancelChecks => {
                if !self.is_running() {
                    return None;
                }
                let reports = self.cancel_slots();
                self.running.clear();
                self.notice = Some("checks cancelled; recorded as inconclusive".into());
                let next = self.feed(Input::ChecksDone(reports));
                Some(next.unwrap_or(Command::Cancel))
            }
            Action::Choose(i) => self.choose(i),
            Action::SelectPrev => {
                self.selected = self.selected.saturating_sub(1);
                None
            }
            Action::SelectNext => {
                if let Some(Effect::Ask { choices, .. }) = self.engine.as_ref().map(Engine::effect)
                {
                    self.selected = (self.selected + 1).min(choices.len().saturating_sub(1));
                }
                None
            }
            Action::ScrollUp => {
                self.scroll(-1);
                None
            }
            Action::ScrollDown => {
                self.scroll(1);
                None
            }
            Action::PageUp => {
                self.scroll(-10);
                None
            }
            Action::PageDown => {
                self.scroll(10);
                None
            }
            Action::WheelUp => {
                self.scroll(-WHEEL_LINES);
                None
            }
            Action::WheelDown => {
                self.scroll(WHEEL_LINES);
                None
            }
            Action::Search(op) => {
                self.search_key(op);
                None
            }
            Action::Pick(op) => {
                let id = self.sessions.as_mut()?.apply(op)?;
                self.notice = Some(format!("opening session {id}..."));
                Some(Command::Resume {
                    id,
                    vars: self.setup.vars.clone(),
                })
            }
            Action::Ticket => self.open_ticket(),
            Action::Note => {
                self.note_input.clear();
                self.overlay = Some(Overlay::Note);
                None
            }
            Action::WriteTicket => {
                self.write_ticket();
                None
            }
            Action::CopyTicket => {
                if let Some(Ok(r)) = &self.ticket {
                    self.notice = Some(
                        "ticket sent to the clipboard (OSC 52; the terminal must allow it)".into(),
                    );
                    return Some(Command::Clipboard(r.text.clone()));
                }
                self.notice = Some("no ticket to copy yet".into());
                None
            }
            Action::Help => {
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::Help);
                None
            }
            Action::Guidance => {
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::Guidance);
                None
            }
            Action::Close => {
                if self.overlay == Some(Overlay::Hop)
                    && let Some(h) = self.hop.as_mut()
                    && h.phase == crate::tui::hop::Phase::Asking
                {
                    h.phase = crate::tui::hop::Phase::Declined;
                    self.notice = Some("hop not made: h offers it again".into());
                }
                self.overlay = None;
                None
            }
            Action::HopYes => {
                let h = self.hop.as_mut()?;
                if h.phase != crate::tui::hop::Phase::Asking {
                    return None;
                }
                h.phase = crate::tui::hop::Phase::Running;
                self.overlay_scroll = 0;
                Some(Command::Hop {
                    targets: h.targets.clone(),
                    plan: Box::new(h.plan.clone()),
                })
            }
            Action::OpenHop => {
                let h = self.hop.as_mut()?;
                if h.phase == crate::tui::hop::Phase::Declined {
                    h.phase = crate::tui::hop::Phase::Asking;
                }
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::Hop);
                None
            }
            Action::Map => {
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::Map);
                None
            }
            Action::Watch => {
                if self.url.is_none() {
                    self.notice = Some("no URL to watch in this session".into());
                    return None;
                }
                self.watch.open(self.url.clone(), self.engine.as_ref());
                self.overlay = Some(Overlay::Watch);
                None
            }
            Action::WatchSlower => {
                self.watch.slower();
                None
            }
            Action::WatchFaster => {
                self.watch.faster();
                None
            }
            Action::Quit => {
                self.overlay = Some(Overlay::ConfirmQuit);
                None
            }
            Action::ConfirmQuit => {
                self.quit = true;
                Some(Command::Quit)
            }
            Action::ConfirmAction => self.confirm_action(),
            Action::Decline => self.decline(),
            Action::Type(c) => {
                if self.overlay == Some(Overlay::Note) {
                    if self.note_input.len() < 4096 {
                        self.note_input.push(c);
                    }
                } else if self.editing_url && self.engine.is_none() {
                    if self.url_input.len() < 2048 {
                        self.url_input.push(c);
                    }
                    self.url_error = self.validate_url(self.url_input.trim());
                } else if self.typed.len() < 256 {
                    self.typed.push(c);
                }
                None
            }
            Action::Erase => {
                if self.overlay == Some(Overlay::Note) {
                    self.note_input.pop();
                } else if self.editing_url && self.engine.is_none() {
                    self.url_input.pop();
                    self.url_error = self.validate_url(self.url_input.trim());
                } else {
                    self.typed.pop();
                }
                None
            }
        }
    }
}
