//! nginx: parse its configuration (a real tokenizer and block parser, not
//! regexes over lines) and find what serves a URL.
//!
//! `lexer` and `parse` turn files into a [`Directive`] tree with includes
//! expanded; `route` picks the server block and location for a URL and
//! reads the upstream, logs and settings in effect there.

pub mod lexer;
pub mod parse;
pub mod route;

use std::path::{Path, PathBuf};

use super::directive::Directive;
use super::source::{ConfigError, Limits, Loader};

/// A parsed nginx configuration.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    /// The main context (includes expanded).
    pub main: Vec<Directive>,
    /// The main file.
    pub conf_file: PathBuf,
    /// The prefix (`-p`): relative log and root paths resolve against it.
    pub prefix: PathBuf,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    /// `include` directives and the files each pulled in.
    pub includes: Vec<(String, Vec<PathBuf>)>,
}

impl NginxConfig {
    /// The `http` block, if any.
    pub fn http(&self) -> Option<&Directive> {
        self.main
            .iter()
            .find(|d| d.name == "http" && d.block.is_some())
    }

    /// A main-context directive (the last wins).
    pub fn main_directive(&self, name: &str) -> Option<&Directive> {
        self.main.iter().rev().find(|d| d.name == name)
    }
}

/// Parse `conf_file` and its includes. `globals` is the text of `-g`
/// (directives added to the main context). `prefix` is nginx's `-p`.
pub fn parse(
    conf_file: &Path,
    prefix: &Path,
    globals: Option<&str>,
    limits: Limits,
) -> Result<NginxConfig, ConfigError> {
    parse_in(None, conf_file, prefix, globals, limits)
}

/// [`parse`] for an nginx whose root directory is `root` (`/proc/PID/root`
/// of a containerized nginx): includes resolve inside that filesystem and
/// every path stays as nginx sees it.
pub fn parse_in(
    root: Option<&Path>,
    conf_file: &Path,
    prefix: &Path,
    globals: Option<&str>,
    limits: Limits,
) -> Result<NginxConfig, ConfigError> {
    let mut loader = Loader::in_root(limits, root.map(Path::to_path_buf));
    let conf_dir = conf_file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut p = parse::Parser {
        loader: &mut loader,
        conf_dir,
        includes: Vec::new(),
    };
    let mut main = p.file(conf_file, None)?;
    if let Some(g) = globals {
        main.extend(p.text(g, "(command line -g)")?);
    }
    let includes = std::mem::take(&mut p.includes);
    Ok(NginxConfig {
        main,
        conf_file: conf_file.to_path_buf(),
        prefix: prefix.to_path_buf(),
        files: loader.files,
        includes,
    })
}

/// Parse configuration text held in memory (tests, `-t` style checks).
pub fn parse_str(text: &str, name: &Path) -> Result<Vec<Directive>, ConfigError> {
    let mut loader = Loader::new(Limits::default());
    let mut p = parse::Parser {
        loader: &mut loader,
        conf_dir: name.parent().unwrap_or(Path::new("/")).to_path_buf(),
        includes: Vec::new(),
    };
    p.text(text, &name.to_string_lossy())
}
