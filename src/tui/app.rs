//! The wizard's state and its one `update` function.
//!
//! Invariants: the engine decides, the runner runs, the app only shows and
//! forwards. `update` never blocks and never spawns: it returns a `Command`
//! for the loop to carry out. Every runner event carries its batch number;
//! events of an older batch (cancelled, re-run, walked back) are ignored.
//! Time enters only through `Msg::Tick` (`now`), so tests that send no ticks
//! see fixed durations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;

use crate::action::{ActionSpec, Tier};
use crate::check::{CheckReport, Outcome};
use crate::duration::HumanDuration;
use crate::engine::{AnswerSource, Effect, Engine, Input, PlannedAction, PlannedCheck};
use crate::playbook::library::Library;
use crate::report::Report;
use crate::runner::RunnerEvent;
use crate::tui::keymap::{Action, Screen, keymap};

/// Why a confirmed action was not run (the executor belongs to the actions issue).
pub const NOT_EXECUTED: &str = "not executed: the action executor is not built yet";
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
}

/// What the walk was started with (from the command line).
#[derive(Debug, Clone)]
pub struct Setup {
    pub library: Arc<Library>,
    pub playbook: String,
    pub vars: Vec<(String, String)>,
    pub read_only: bool,
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
            notice: None,
            ticks: 0,
            t0: now,
            now,
            started_at,
            quit: false,
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
            None => {}
        }
        let Some(engine) = &self.engine else {
            return if self.editing_url {
                Screen::UrlPrompt
            } else {
                Screen::Start
            };
        };
        match engine.effect() {
            Effect::RunChecks { .. } | Effect::Inform { .. } => Screen::Step,
            Effect::Ask { .. } => Screen::Question,
            Effect::Offer(a) if self.needs_typing(a) => Screen::ActionTyped,
            Effect::Offer(_) => Screen::Action,
            Effect::Done(_) => Screen::Done,
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
        !self.setup.read_only && a.blocked.is_none() && a.tier > Tier::Reversible
    }

    /// The report of the walk so far.
    pub fn report(&self) -> Option<Report> {
        let e = self.engine.as_ref()?;
        let ms = self.now.saturating_duration_since(self.t0).as_millis() as u64;
        Some(Report::from_engine(
            e,
            self.url.clone(),
            self.started_at,
            ms,
        ))
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
        }
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
        if let Err(e) = engine.step(input) {
            self.notice = Some(format!("internal error (a bug, please report it): {e}"));
            return None;
        }
        self.follow()
    }

    /// Set up the screen for the engine's current effect.
    fn follow(&mut self) -> Option<Command> {
        self.evidence_scroll = 0;
        self.typed.clear();
        let effect = self.engine.as_ref()?.effect().clone();
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
            Effect::Inform { .. } | Effect::Offer(_) | Effect::Done(_) => None,
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
            guard += 1;
            let at_checks = matches!(engine.effect(), Effect::RunChecks { .. });
            if !at_checks || !engine.can_go_back() || guard > crate::walk::MAX_STEPS {
                break;
            }
        }
        self.running.clear();
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

    fn confirm_action(&mut self) -> Option<Command> {
        let a = self.offered()?;
        let reason = if self.setup.read_only {
            READ_ONLY.to_owned()
        } else if let Some(why) = &a.blocked {
            format!("cannot run: {why}")
        } else if a.tier > Tier::Reversible && self.typed != Self::confirm_word(&a) {
            self.notice = Some(format!(
                "type `{}` exactly to confirm, or Esc to decline",
                Self::confirm_word(&a)
            ));
            return None;
        } else {
            NOT_EXECUTED.to_owned()
        };
        self.feed(Input::ActionDeclined { reason })
    }

    /// How far the open view can scroll: about its number of lines, so
    /// scrolling back up never needs presses "past the end".
    fn scroll_limit(&self) -> usize {
        match self.overlay {
            Some(Overlay::Ticket) => self.report().map_or(0, |r| r.to_markdown().lines().count()),
            Some(Overlay::Help) => crate::tui::help::HELP.lines().count(),
            Some(Overlay::Guidance) => self
                .engine
                .as_ref()
                .and_then(Engine::current)
                .map_or(0, |(_, n)| n.guidance.lines().count() + 10),
            Some(Overlay::ConfirmQuit) => 0,
            None => self.engine.as_ref().map_or(0, |e| {
                e.trail()
                    .iter()
                    .rev()
                    .find_map(|s| match &s.record {
                        crate::engine::Record::Checks { reports, .. } => Some(
                            reports
                                .iter()
                                .flat_map(|r| &r.evidence)
                                .map(|e| 1 + e.text.lines().take(200).count())
                                .sum(),
                        ),
                        _ => None,
                    })
                    .unwrap_or(0)
            }),
        }
    }

    fn scroll(&mut self, delta: i32) {
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
                Screen::Action => self.feed(Input::ActionDeclined {
                    reason: if self.setup.read_only {
                        READ_ONLY
                    } else {
                        DECLINED
                    }
                    .into(),
                }),
                Screen::Done => {
                    self.overlay_scroll = 0;
                    self.overlay = Some(Overlay::Ticket);
                    None
                }
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
            Action::Ticket => {
                self.overlay_scroll = 0;
                self.overlay = Some(Overlay::Ticket);
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
                self.overlay = None;
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
            Action::Decline => self.feed(Input::ActionDeclined {
                reason: DECLINED.into(),
            }),
            Action::Type(c) => {
                if self.editing_url && self.engine.is_none() {
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
                if self.editing_url && self.engine.is_none() {
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
