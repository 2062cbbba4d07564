//! One file per check kind. Each exposes `Params` (typed, validated when the
//! playbook loads), `DOC` (for `checks list`) and `async fn run`.

pub mod access_log;
pub mod http;
pub mod log_scan;
pub mod tcp;
