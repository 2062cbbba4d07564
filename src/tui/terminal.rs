//! Terminal lifecycle: whether there is a terminal to draw on, then raw
//! mode, the alternate screen and wheel reporting, always undone.
//!
//! `usable` runs before anything touches the terminal: without a terminal on
//! stdin and stdout, or with `TERM=dumb`, the wizard refuses with one line
//! naming `run --non-interactive`, and the terminal is left as it was.
//! `ratatui::init()` installs a panic hook that restores the terminal; ours
//! wraps it to turn wheel reporting off first. The `TerminalGuard` restores
//! on every other way out (`?`, return, a signal that ends the loop).
//! Restoring twice is harmless.
//!
//! Only button and wheel reports are asked for (modes 1000 and 1006, SGR
//! coordinates), not motion (1003): moving the mouse over an SSH session
//! must not send a stream of reports through a link that is already slow.
//! Selecting text still works with Shift held, as in every mouse-aware app.

use std::io::{IsTerminal as _, Write as _};

use ratatui::DefaultTerminal;

/// Turn wheel (and button) reporting on or off.
#[derive(Debug, Clone, Copy)]
pub struct WheelReports(pub bool);

/// The bytes that switch wheel reporting on: button events (1000) with SGR
/// coordinates (1006).
pub const WHEEL_ON: &str = "\x1b[?1000h\x1b[?1006h";
/// The bytes that switch it off again.
pub const WHEEL_OFF: &str = "\x1b[?1006l\x1b[?1000l";

impl crossterm::Command for WheelReports {
    fn write_ansi(&self, f: &mut impl std::fmt::Write) -> std::fmt::Result {
        f.write_str(if self.0 { WHEEL_ON } else { WHEEL_OFF })
    }

    // A Windows console without ANSI support: crossterm's own mouse capture.
    #[cfg(windows)]
    fn execute_winapi(&self) -> std::io::Result<()> {
        crate::platform::wheel_reports_winapi(self.0)
    }
}

/// Why the wizard cannot run in this terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Standard output is a pipe or a file.
    OutputNotTerminal,
    /// Standard input is closed, a file or a pipe.
    InputNotTerminal,
    /// `TERM=dumb`: no cursor movement.
    DumbTerminal,
}

/// Decide from the facts (separate from reading them, so it is testable).
pub fn check(stdin_tty: bool, stdout_tty: bool, term: Option<&str>) -> Result<(), Unusable> {
    if !stdout_tty {
        return Err(Unusable::OutputNotTerminal);
    }
    if !stdin_tty {
        return Err(Unusable::InputNotTerminal);
    }
    if term == Some("dumb") {
        return Err(Unusable::DumbTerminal);
    }
    Ok(())
}

/// The message for the operator, with the command that works instead.
pub fn explain(why: &Unusable, url: Option<&str>) -> String {
    let url = url.unwrap_or("URL");
    format!(
        "the interactive wizard needs a terminal: {}; without one, run `triage502 run --non-interactive {url}`",
        what(why)
    )
}

/// What is wrong with the terminal, in words (the wizard's and the fleet view's refusals).
pub fn what(why: &Unusable) -> &'static str {
    match why {
        Unusable::OutputNotTerminal => "standard output is not a terminal (a pipe or a file)",
        Unusable::InputNotTerminal => "standard input is not a terminal (closed or redirected)",
        Unusable::DumbTerminal => "TERM=dumb cannot draw it (set TERM, e.g. TERM=xterm)",
    }
}

/// Refuse (a usage error) unless stdin and stdout are terminals and TERM is not dumb.
pub fn usable(url: Option<&str>) -> Result<(), crate::cli::UsageError> {
    let term = std::env::var("TERM").ok();
    check(
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
        term.as_deref(),
    )
    .map_err(|why| crate::cli::UsageError(explain(&why, url)))
}

/// Holds the terminal in raw mode; dropping it restores the terminal.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enter raw mode, the alternate screen and wheel reporting (and
    /// install the panic hook that undoes all three).
    pub fn new() -> std::io::Result<TerminalGuard> {
        let terminal = ratatui::try_init()?;
        let ratatui_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            wheel_off();
            ratatui_hook(info);
        }));
        let guard = TerminalGuard { terminal };
        crossterm::execute!(std::io::stdout(), WheelReports(true))?;
        Ok(guard)
    }
}

fn wheel_off() {
    let mut out = std::io::stdout();
    let _ = out.write_all(WHEEL_OFF.as_bytes());
    let _ = out.flush();
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        wheel_off();
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_is_needed_on_both_ends_and_not_dumb() {
        assert_eq!(check(true, true, Some("xterm-256color")), Ok(()));
        assert_eq!(check(true, true, None), Ok(()));
        assert_eq!(
            check(true, false, Some("xterm")),
            Err(Unusable::OutputNotTerminal)
        );
        assert_eq!(
            check(false, true, Some("xterm")),
            Err(Unusable::InputNotTerminal)
        );
        assert_eq!(check(true, true, Some("dumb")), Err(Unusable::DumbTerminal));
        let m = explain(&Unusable::OutputNotTerminal, Some("http://x/"));
        assert!(m.contains("run --non-interactive http://x/"), "{m}");
    }

    #[test]
    fn wheel_reports_are_switched_off_in_reverse_order() {
        let mut on = String::new();
        crossterm::Command::write_ansi(&WheelReports(true), &mut on).unwrap();
        let mut off = String::new();
        crossterm::Command::write_ansi(&WheelReports(false), &mut off).unwrap();
        assert_eq!(on, "\x1b[?1000h\x1b[?1006h");
        assert_eq!(off, "\x1b[?1006l\x1b[?1000l");
        assert!(!on.contains("1003"), "no motion reports over SSH");
    }
}
