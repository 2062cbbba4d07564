//! Marks, borders and colours, with the `--ascii` and `NO_COLOR` variants.
//!
//! Only the 16 named ANSI colours are used (never RGB), and every meaning
//! carried by colour is also carried by a mark or a word, so monochrome
//! terminals lose nothing.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

use crate::check::Outcome;

/// How a visited step is marked in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Ok,
    Problem,
    Inconclusive,
    /// Declined action, routed past, or cut short.
    Skipped,
    /// Answered, read or called.
    Visited,
    /// The step the walk is at.
    Current,
}

impl From<Outcome> for Mark {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => Mark::Ok,
            Outcome::Problem => Mark::Problem,
            Outcome::Inconclusive => Mark::Inconclusive,
        }
    }
}

/// ASCII borders for terminals without line drawing.
pub const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

const SPIN_UNICODE: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];
const SPIN_ASCII: [&str; 4] = ["|", "/", "-", "\\"];

/// The look of the wizard.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub ascii: bool,
    pub color: bool,
}

impl Theme {
    pub fn mark(self, m: Mark) -> &'static str {
        match (self.ascii, m) {
            (false, Mark::Ok) => "✓",
            (false, Mark::Problem) => "✗",
            (false, Mark::Inconclusive) => "?",
            (false, Mark::Skipped) => "-",
            (false, Mark::Visited) => "•",
            (false, Mark::Current) => "▸",
            (true, Mark::Ok) => "+",
            (true, Mark::Problem) => "x",
            (true, Mark::Inconclusive) => "?",
            (true, Mark::Skipped) => "-",
            (true, Mark::Visited) => "*",
            (true, Mark::Current) => ">",
        }
    }

    pub fn mark_style(self, m: Mark) -> Style {
        let c = match m {
            Mark::Ok => Color::Green,
            Mark::Problem => Color::Red,
            Mark::Inconclusive => Color::Yellow,
            Mark::Skipped | Mark::Visited => Color::Gray,
            Mark::Current => Color::Cyan,
        };
        let base = self.fg(c);
        match m {
            Mark::Problem | Mark::Current => base.add_modifier(Modifier::BOLD),
            _ => base,
        }
    }

    pub fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn border(self) -> border::Set<'static> {
        if self.ascii {
            ASCII_BORDER
        } else {
            border::ROUNDED
        }
    }

    pub fn spinner(self, tick: u64) -> &'static str {
        if self.ascii {
            SPIN_ASCII[(tick % SPIN_ASCII.len() as u64) as usize]
        } else {
            SPIN_UNICODE[(tick % SPIN_UNICODE.len() as u64) as usize]
        }
    }

    pub fn dot(self) -> &'static str {
        if self.ascii { "-" } else { "·" }
    }

    /// Text from outside (reports, configs, URLs) as this theme can draw
    /// it: under `--ascii`, arrows and ellipses spelled out and any other
    /// non-ASCII character shown as `?`.
    pub fn text(self, s: &str) -> String {
        if !self.ascii || s.is_ascii() {
            return s.to_owned();
        }
        s.replace('→', "->")
            .replace('…', "...")
            .replace('·', "-")
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect()
    }
}
