//! triage502: walks an operator through diagnosing a 502 Bad Gateway.
//!
//! The crate is a library with a thin binary. Data flows one way:
//! playbooks are loaded and validated (`playbook`), the pure `engine` walks
//! them and asks for checks, the `runner` runs `checks` concurrently with
//! timeouts and reports back over a channel, and `report` turns the walk into
//! Markdown or JSON. The TUI and the non-interactive mode are two front ends
//! over the same engine and runner.

pub mod action;
pub mod cause;
pub mod check;
pub mod checks;
pub mod duration;
pub mod engine;
pub mod logs;
pub mod playbook;
pub mod template;
