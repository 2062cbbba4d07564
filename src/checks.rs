//! One file per check kind. Each exposes `Params` (typed, validated when the
//! playbook loads), `DOC` (for `checks list`) and `async fn run`.
//! `permission`, `process` and `tool` are shared helpers, not kinds.

pub mod access_log;
pub mod backends;
pub mod cache;
pub mod command;
pub mod config_test;
pub mod container;
pub mod discovery;
pub mod dns;
pub mod firewall;
pub mod http;
pub mod iis_service;
pub mod listener;
pub mod log_scan;
pub mod pages;
pub mod path;
pub mod permission;
pub mod plugins;
pub mod process;
pub mod recent_changes;
pub mod remedy;
pub mod resources;
pub mod service;
pub mod tcp;
pub mod tool;
pub mod unix_socket;
pub mod upstream_probe;
