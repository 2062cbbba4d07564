//! triage502: walks an operator through diagnosing a 502 Bad Gateway.
//!
//! The crate is a library with a thin binary. Data flows one way:
//! playbooks are loaded and validated (`playbook`), the pure `engine` walks
//! them and asks for checks, the `runner` runs `checks` concurrently with
//! timeouts and reports back over a channel, and `report` turns the walk into
//! Markdown or JSON. The TUI and the non-interactive mode are two front ends
//! over the same engine and runner.

pub mod action;
pub mod action_spec;
pub mod cause;
pub mod check;
pub mod checks;
pub mod cli;
pub mod discovery;
pub mod docker;
pub mod duration;
pub mod engine;
pub mod firewall;
pub mod fleet;
pub mod hop;
pub mod journal;
pub mod logs;
pub mod platform;
pub mod playbook;
pub mod redact;
pub mod remedy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sys;
pub mod template;
pub mod ticket;
pub mod tui;
pub mod walk;

/// The interactive wizard (the TUI) for `triage502 [URL]` and `run` without
/// `--non-interactive`.
pub fn interactive(
    url: Option<String>,
    walk: &cli::WalkArgs,
) -> anyhow::Result<std::process::ExitCode> {
    tui::interactive(url, walk)
}
