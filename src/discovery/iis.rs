//! IIS: `applicationHost.config` + `web.config` ([`config`]) and the route
//! of a URL through sites, URL Rewrite rules and ARR farms ([`route`]).
//! Pure code: it reads files only, so it is tested on any platform.

pub mod config;
pub mod route;

pub use config::{IisConfig, load};
