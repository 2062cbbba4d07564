//! Terminal lifecycle: raw mode and the alternate screen, always undone.
//!
//! `ratatui::init()` installs a panic hook that restores the terminal; the
//! `TerminalGuard` restores it on every other way out (`?`, return, a signal
//! that ends the loop). Restoring twice is harmless.

use ratatui::DefaultTerminal;

/// Holds the terminal in raw mode; dropping it restores the terminal.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enter raw mode and the alternate screen (and install the panic hook).
    pub fn new() -> std::io::Result<TerminalGuard> {
        Ok(TerminalGuard {
            terminal: ratatui::try_init()?,
        })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}
