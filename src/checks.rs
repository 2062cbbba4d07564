//! One file per check kind. Each exposes `Params` (typed, validated when the
//! playbook loads), `DOC` (for `checks list`) and `async fn run`.
//! `permission` and `tool` are shared helpers, not kinds.

pub mod dns;
pub mod http;
pub mod permission;
pub mod tcp;
pub mod tool;
pub mod unix_socket;
pub mod upstream_probe;
