//! Keys to actions: the one place that decides what a key means on a screen.
//!
//! `keymap` is a single `match` over (screen, key); the app never inspects
//! raw keys. Screens with a text field take printable characters as text, so
//! there `q` and `?` type letters and Ctrl-C / Esc / F1 do the rest. While a
//! search is active (`Screen::Searched`) only `n`, `N`, `/` and Esc change
//! meaning; every other key means what it means on the screen beneath.
//! `wheel` maps the mouse wheel; every view it scrolls also scrolls by key.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::search::SearchOp;
use crate::tui::sessions::PickOp;

/// What the operator is looking at, as far as keys are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Start screen with the URL field being typed.
    UrlPrompt,
    /// Start screen with everything given: Enter begins.
    Start,
    /// The main screen: checks running or guidance shown.
    Step,
    /// A question with numbered choices.
    Question,
    /// A reversible action offer (or any offer under --read-only).
    Action,
    /// A disruptive or destructive offer: confirmed by typing its name.
    ActionTyped,
    /// The walk ended.
    Done,
    /// The `?` overlay.
    Help,
    /// The ticket (report) preview overlay.
    Ticket,
    /// The current step's whole guidance, over the screen.
    Guidance,
    /// "Quit triage502?"
    ConfirmQuit,
    /// The note field.
    Note,
    /// A confirmed action is running.
    Executing,
    /// The result of the action that just ran.
    ActionResult,
    /// The serving path (`m`).
    Map,
    /// The URL re-probed over time (`w`).
    Watch,
    /// `/`: the search query being typed (on the hints line).
    SearchInput,
    /// A search with its matches highlighted, over the screen beneath.
    Searched(Beneath),
    /// `--resume` without an id: the saved sessions to choose from.
    Sessions,
    /// "Continue on the upstream's host over ssh?", its progress and results.
    Hop,
}

/// The screens a search can be active on (they show the evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beneath {
    Step,
    Question,
    Done,
}

impl Beneath {
    /// The screen itself, for its keys.
    pub fn screen(self) -> Screen {
        match self {
            Beneath::Step => Screen::Step,
            Beneath::Question => Screen::Question,
            Beneath::Done => Screen::Done,
        }
    }

    /// The screen a search can be active on, if `s` is one.
    pub fn of(s: Screen) -> Option<Beneath> {
        match s {
            Screen::Step => Some(Beneath::Step),
            Screen::Question => Some(Beneath::Question),
            Screen::Done => Some(Beneath::Done),
            _ => None,
        }
    }
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Go on: start the walk, continue past guidance, take the highlighted
    /// choice, submit typed text, open the ticket when the walk is done.
    Continue,
    /// Undo the last step (engine back), skipping over check results.
    Back,
    /// Run the checks of this step again.
    Rerun,
    /// Stop the checks running now; they are recorded as inconclusive.
    CancelChecks,
    /// Pick choice N (0-based) of the question.
    Choose(usize),
    /// Move the question highlight up.
    SelectPrev,
    /// Move the question highlight down.
    SelectNext,
    /// Scroll the evidence or the open window up one line.
    ScrollUp,
    /// Scroll down one line.
    ScrollDown,
    /// Scroll up one page.
    PageUp,
    /// Scroll down one page.
    PageDown,
    /// Open the ticket preview.
    Ticket,
    /// Open the help.
    Help,
    /// Show the current step's whole guidance.
    Guidance,
    /// Close the open window (help, ticket, quit question).
    Close,
    /// Ask whether to quit.
    Quit,
    /// Yes, quit now.
    ConfirmQuit,
    /// Confirm a reversible action.
    ConfirmAction,
    /// Decline the offered action.
    Decline,
    /// Type a character into the text field.
    Type(char),
    /// Delete the last character of the text field.
    Erase,
    /// Open the note field.
    Note,
    /// Write the ticket preview to a file.
    WriteTicket,
    /// Copy the ticket to the clipboard (OSC 52).
    CopyTicket,
    /// Show the serving path, hop by hop.
    Map,
    /// Re-probe the URL over time (probing stops when the screen is left).
    Watch,
    /// Probe less often (`+`).
    WatchSlower,
    /// Probe more often (`-`).
    WatchFaster,
    /// Mouse wheel up: scroll the evidence or the open window a few lines.
    WheelUp,
    /// Mouse wheel down.
    WheelDown,
    /// Search the evidence: open, type, keep, next/previous match, clear.
    Search(SearchOp),
    /// Move in or take from the list of saved sessions.
    Pick(PickOp),
    /// Yes, hop to the upstream's host over ssh.
    HopYes,
    /// Show the hop dialog again (`h` when the walk ended).
    OpenHop,
}

/// The action for `key` on `screen`, if any.
pub fn keymap(screen: Screen, key: KeyEvent) -> Option<Action> {
    use Action as A;
    use KeyCode as K;
    use Screen as S;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match (screen, key.code) {
        (S::ConfirmQuit, K::Char('y' | 'Y' | 'q' | 'c')) => Some(A::ConfirmQuit),
        (S::ConfirmQuit, K::Char('n' | 'N') | K::Esc) => Some(A::Close),
        (_, K::Char('c')) if ctrl => Some(A::Quit),
        (S::Executing, _) => None,
        (S::SearchInput, K::Enter) => Some(A::Search(SearchOp::Accept)),
        (S::SearchInput, K::Backspace) => Some(A::Search(SearchOp::Erase)),
        (S::SearchInput, K::Esc) => Some(A::Search(SearchOp::Clear)),
        (S::SearchInput, K::Char(c)) => Some(A::Search(SearchOp::Type(c))),
        (S::SearchInput, _) => None,
        (S::Searched(_), K::Char('n')) => Some(A::Search(SearchOp::Next)),
        (S::Searched(_), K::Char('N')) => Some(A::Search(SearchOp::Prev)),
        (S::Searched(_), K::Esc) => Some(A::Search(SearchOp::Clear)),
        (S::Searched(beneath), _) => keymap(beneath.screen(), key),
        (S::Sessions, K::Up | K::Char('k')) => Some(A::Pick(PickOp::Prev)),
        (S::Sessions, K::Down | K::Char('j')) => Some(A::Pick(PickOp::Next)),
        (S::Sessions, K::Char(d @ '1'..='9')) => {
            Some(A::Pick(PickOp::Select(d as usize - '1' as usize)))
        }
        (S::Sessions, K::Enter) => Some(A::Pick(PickOp::Take)),
        (S::Sessions, K::Esc) => Some(A::Quit),
        (S::Note, K::Enter) => Some(A::Continue),
        (S::Note, K::Backspace) => Some(A::Erase),
        (S::Note, K::Esc) => Some(A::Close),
        (S::Note, K::Char(c)) => Some(A::Type(c)),
        (S::Note, _) => None,
        (S::ActionResult, K::Esc | K::Enter | K::Char('q')) => Some(A::Close),
        (S::Hop, K::Char('y' | 'Y')) => Some(A::HopYes),
        (S::Hop, K::Esc | K::Enter | K::Char('n' | 'N' | 'q' | 'h')) => Some(A::Close),
        (S::Hop, K::Up | K::Char('k')) => Some(A::ScrollUp),
        (S::Hop, K::Down | K::Char('j')) => Some(A::ScrollDown),
        (S::Hop, _) => None,
        (S::Done, K::Char('h')) => Some(A::OpenHop),
        (S::Ticket, K::Char('w')) => Some(A::WriteTicket),
        (S::Ticket, K::Char('y')) => Some(A::CopyTicket),
        (S::UrlPrompt, K::Enter) => Some(A::Continue),
        (S::UrlPrompt, K::Backspace) => Some(A::Erase),
        (S::UrlPrompt | S::ActionTyped, K::Char(c)) => Some(A::Type(c)),
        (S::UrlPrompt, K::Esc) => Some(A::Quit),
        (S::UrlPrompt | S::ActionTyped, K::F(1)) => Some(A::Help),
        (S::ActionTyped, K::Enter) => Some(A::ConfirmAction),
        (S::ActionTyped, K::Backspace) => Some(A::Erase),
        (S::ActionTyped, K::Esc) => Some(A::Decline),
        // Arrows scroll a config edit's diff while its name is typed.
        (S::ActionTyped, K::Up) => Some(A::ScrollUp),
        (S::ActionTyped, K::Down) => Some(A::ScrollDown),
        (S::Help | S::Ticket | S::Guidance, K::Esc | K::Char('q' | '?')) => Some(A::Close),
        (S::Ticket, K::Char('t')) | (S::Guidance, K::Char('g')) => Some(A::Close),
        (S::Help | S::Ticket | S::Guidance | S::ActionResult, K::Up | K::Char('k')) => {
            Some(A::ScrollUp)
        }
        (S::Help | S::Ticket | S::Guidance | S::ActionResult, K::Down | K::Char('j')) => {
            Some(A::ScrollDown)
        }
        (S::Help | S::Ticket | S::Guidance | S::ActionResult, K::PageUp) => Some(A::PageUp),
        (S::Help | S::Ticket | S::Guidance | S::ActionResult, K::PageDown | K::Char(' ')) => {
            Some(A::PageDown)
        }
        (S::Help | S::Ticket | S::Guidance | S::ActionResult, _) => None,
        (S::Question, K::Char(d @ '1'..='9')) => Some(A::Choose(d as usize - '1' as usize)),
        (S::Question, K::Up) => Some(A::SelectPrev),
        (S::Question, K::Down) => Some(A::SelectNext),
        (S::Action, K::Char('y' | 'Y')) => Some(A::ConfirmAction),
        (S::Action, K::Char('n' | 'N') | K::Esc) => Some(A::Decline),
        (S::Start | S::Step | S::Question | S::Action | S::Done, K::Enter) => Some(A::Continue),
        (S::Step | S::Question | S::Action | S::Done, K::Backspace | K::Char('b')) => Some(A::Back),
        (S::Step | S::Question | S::Action | S::Done, K::Char('r')) => Some(A::Rerun),
        (S::Step, K::Esc) => Some(A::CancelChecks),
        (S::Step | S::Done | S::Action, K::Up | K::Char('k')) => Some(A::ScrollUp),
        (S::Step | S::Done | S::Action, K::Down | K::Char('j')) => Some(A::ScrollDown),
        (S::Step | S::Question | S::Done | S::Action, K::PageUp) => Some(A::PageUp),
        (S::Step | S::Question | S::Done | S::Action, K::PageDown) => Some(A::PageDown),
        (S::Step | S::Question | S::Action | S::Done, K::Char('t')) => Some(A::Ticket),
        (S::Step | S::Question | S::Action | S::Done, K::Char('g')) => Some(A::Guidance),
        (S::Step | S::Question | S::Done, K::Char('n')) => Some(A::Note),
        (S::Map, K::Esc | K::Char('q' | 'm')) | (S::Watch, K::Esc | K::Char('q' | 'w')) => {
            Some(A::Close)
        }
        (S::Start | S::Step | S::Question | S::Action | S::Done | S::Watch, K::Char('m')) => {
            Some(A::Map)
        }
        (S::Start | S::Step | S::Question | S::Action | S::Done | S::Map, K::Char('w')) => {
            Some(A::Watch)
        }
        (S::Map, K::Up | K::Char('k')) => Some(A::ScrollUp),
        (S::Map, K::Down | K::Char('j')) => Some(A::ScrollDown),
        (S::Map, K::PageUp) => Some(A::PageUp),
        (S::Map, K::PageDown | K::Char(' ')) => Some(A::PageDown),
        (S::Watch, K::Char('+' | '=')) => Some(A::WatchSlower),
        (S::Watch, K::Char('-' | '_')) => Some(A::WatchFaster),
        (S::Step | S::Question | S::Done, K::Char('/')) => Some(A::Search(SearchOp::Open)),
        (_, K::Char('?') | K::F(1)) => Some(A::Help),
        (_, K::Char('q')) => Some(A::Quit),
        _ => None,
    }
}

/// The action for a mouse wheel notch on `screen` (`up` away from the user).
pub fn wheel(screen: Screen, up: bool) -> Option<Action> {
    use Screen as S;
    match (screen, up) {
        (S::Sessions, true) => Some(Action::Pick(PickOp::Prev)),
        (S::Sessions, false) => Some(Action::Pick(PickOp::Next)),
        (
            S::Step
            | S::Question
            | S::Action
            | S::Done
            | S::Searched(_)
            | S::Help
            | S::Ticket
            | S::Guidance
            | S::ActionResult
            | S::Map,
            true,
        ) => Some(Action::WheelUp),
        (
            S::Step
            | S::Question
            | S::Action
            | S::Done
            | S::Searched(_)
            | S::Help
            | S::Ticket
            | S::Guidance
            | S::ActionResult
            | S::Map,
            false,
        ) => Some(Action::WheelDown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn text_fields_take_letters_that_are_keys_elsewhere() {
        assert_eq!(
            keymap(Screen::UrlPrompt, k(KeyCode::Char('q'))),
            Some(Action::Type('q'))
        );
        assert_eq!(
            keymap(Screen::Step, k(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap(
                Screen::UrlPrompt,
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(Action::Quit)
        );
    }

    #[test]
    fn number_keys_pick_choices_only_on_questions() {
        assert_eq!(
            keymap(Screen::Question, k(KeyCode::Char('2'))),
            Some(Action::Choose(1))
        );
        assert_eq!(keymap(Screen::Step, k(KeyCode::Char('2'))), None);
    }

    #[test]
    fn esc_cancels_checks_on_the_step_screen_and_closes_windows() {
        assert_eq!(
            keymap(Screen::Step, k(KeyCode::Esc)),
            Some(Action::CancelChecks)
        );
        assert_eq!(keymap(Screen::Help, k(KeyCode::Esc)), Some(Action::Close));
        assert_eq!(
            keymap(Screen::ConfirmQuit, k(KeyCode::Char('y'))),
            Some(Action::ConfirmQuit)
        );
    }

    #[test]
    fn search_keys_override_only_n_shift_n_slash_and_esc() {
        let on = Screen::Searched(Beneath::Step);
        assert_eq!(
            keymap(on, k(KeyCode::Char('n'))),
            Some(Action::Search(SearchOp::Next))
        );
        assert_eq!(
            keymap(on, k(KeyCode::Char('N'))),
            Some(Action::Search(SearchOp::Prev))
        );
        assert_eq!(
            keymap(on, k(KeyCode::Esc)),
            Some(Action::Search(SearchOp::Clear))
        );
        assert_eq!(
            keymap(on, k(KeyCode::Char('/'))),
            Some(Action::Search(SearchOp::Open))
        );
        // Everything else keeps its meaning on the screen beneath.
        assert_eq!(keymap(on, k(KeyCode::Enter)), Some(Action::Continue));
        assert_eq!(keymap(on, k(KeyCode::Char('t'))), Some(Action::Ticket));
        assert_eq!(
            keymap(Screen::Searched(Beneath::Question), k(KeyCode::Char('2'))),
            Some(Action::Choose(1))
        );
        // Without a search `n` is still the note.
        assert_eq!(
            keymap(Screen::Step, k(KeyCode::Char('n'))),
            Some(Action::Note)
        );
    }

    #[test]
    fn the_query_field_takes_every_letter() {
        for c in ['q', 'n', '?', 'b', 'r', '/'] {
            assert_eq!(
                keymap(Screen::SearchInput, k(KeyCode::Char(c))),
                Some(Action::Search(SearchOp::Type(c)))
            );
        }
        assert_eq!(
            keymap(Screen::SearchInput, k(KeyCode::Esc)),
            Some(Action::Search(SearchOp::Clear))
        );
    }

    #[test]
    fn session_list_keys() {
        assert_eq!(
            keymap(Screen::Sessions, k(KeyCode::Char('3'))),
            Some(Action::Pick(PickOp::Select(2)))
        );
        assert_eq!(
            keymap(Screen::Sessions, k(KeyCode::Enter)),
            Some(Action::Pick(PickOp::Take))
        );
        assert_eq!(
            keymap(Screen::Sessions, k(KeyCode::Down)),
            Some(Action::Pick(PickOp::Next))
        );
    }

    #[test]
    fn the_wheel_scrolls_views_that_keys_scroll() {
        assert_eq!(wheel(Screen::Step, false), Some(Action::WheelDown));
        assert_eq!(wheel(Screen::Help, true), Some(Action::WheelUp));
        assert_eq!(wheel(Screen::Ticket, false), Some(Action::WheelDown));
        assert_eq!(wheel(Screen::UrlPrompt, false), None);
        assert_eq!(wheel(Screen::ConfirmQuit, true), None);
    }
}
