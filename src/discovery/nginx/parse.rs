//! nginx's block syntax into a [`Directive`] tree, with `include` expanded
//! in place (globs sorted, relative paths against the directory of the main
//! configuration file, as nginx's `conf_prefix`).
//!
//! Invariants: included files must hold whole directives (nginx parses them
//! separately too); blocks nest at most [`MAX_BLOCK_DEPTH`] deep so walking
//! the tree cannot overflow the stack; every error names file:line:col.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{Kind, Lexer};
use crate::discovery::directive::Directive;
use crate::discovery::glob;
use crate::discovery::source::{ConfigError, Loader, Site, resolve};

/// Deepest block nesting accepted (real configs stay under 10).
pub const MAX_BLOCK_DEPTH: usize = 64;

/// Parses one configuration and everything it includes.
pub struct Parser<'l> {
    pub loader: &'l mut Loader,
    /// Relative `include` paths resolve against this directory.
    pub conf_dir: PathBuf,
    /// Every `include` seen: the directive and the files it pulled in.
    pub includes: Vec<(String, Vec<PathBuf>)>,
}

impl Parser<'_> {
    /// Parse a file (the main one when `site` is `None`).
    pub fn file(
        &mut self,
        path: &Path,
        site: Option<&Site>,
    ) -> Result<Vec<Directive>, ConfigError> {
        let bytes = self.loader.enter(path, site)?;
        let file: Arc<Path> = Arc::from(path);
        let r = self.bytes(&bytes, &file);
        self.loader.leave();
        r
    }

    /// Parse text that did not come from a file (`nginx -g '...'`).
    pub fn text(&mut self, text: &str, name: &str) -> Result<Vec<Directive>, ConfigError> {
        let file: Arc<Path> = Arc::from(Path::new(name));
        self.bytes(text.as_bytes(), &file)
    }

    fn bytes(&mut self, src: &[u8], file: &Arc<Path>) -> Result<Vec<Directive>, ConfigError> {
        let mut lx = Lexer::new(src);
        let at = |line: u32, col: u32, msg: String| ConfigError::new(file, line, col, msg);
        // Open blocks: the header directive and the children so far.
        let mut stack: Vec<(Directive, u32, Vec<Directive>)> = Vec::new();
        let mut top: Vec<Directive> = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let mut start = (0u32, 0u32);
        loop {
            let t = lx.next_token().map_err(|e| at(e.line, e.col, e.message))?;
            match t.kind {
                Kind::Word(w) => {
                    if words.is_empty() {
                        start = (t.line, t.col);
                    }
                    words.push(w);
                }
                Kind::Semi => {
                    if words.is_empty() {
                        return Err(at(t.line, t.col, "unexpected \";\"".into()));
                    }
                    let d = directive(std::mem::take(&mut words), file, start.0, None);
                    let list = stack.last_mut().map_or(&mut top, |s| &mut s.2);
                    if d.name == "include" {
                        let site = Site {
                            file: file.clone(),
                            line: start.0,
                            col: start.1,
                        };
                        let expanded = self.include(&d, &site)?;
                        list.extend(expanded);
                    } else {
                        list.push(d);
                    }
                }
                Kind::Open => {
                    if words.is_empty() {
                        return Err(at(t.line, t.col, "unexpected \"{\"".into()));
                    }
                    if stack.len() >= MAX_BLOCK_DEPTH {
                        return Err(at(
                            t.line,
                            t.col,
                            format!("blocks nested deeper than {MAX_BLOCK_DEPTH} levels"),
                        ));
                    }
                    if words[0].ends_with("_by_lua_block") {
                        // Lua source, not nginx syntax: kept whole as the argument.
                        let code = lx.lua_block().map_err(|e| at(e.line, e.col, e.message))?;
                        let mut d = directive(std::mem::take(&mut words), file, start.0, None);
                        d.args.push(code);
                        d.block = Some(Vec::new());
                        stack.last_mut().map_or(&mut top, |s| &mut s.2).push(d);
                        continue;
                    }
                    let d = directive(std::mem::take(&mut words), file, start.0, None);
                    stack.push((d, start.1, Vec::new()));
                }
                Kind::Close => {
                    if !words.is_empty() {
                        return Err(at(
                            start.0,
                            start.1,
                            format!(
                                "directive \"{}\" is not terminated by \";\" (found \"}}\" at line {})",
                                words[0], t.line
                            ),
                        ));
                    }
                    let Some((mut d, _, children)) = stack.pop() else {
                        return Err(at(
                            t.line,
                            t.col,
                            "unexpected \"}\": no block is open here".into(),
                        ));
                    };
                    d.block = Some(children);
                    stack.last_mut().map_or(&mut top, |s| &mut s.2).push(d);
                }
                Kind::Eof => {
                    if !words.is_empty() {
                        return Err(at(
                            start.0,
                            start.1,
                            format!(
                                "unexpected end of file: directive \"{}\" is not terminated by \";\"",
                                words[0]
                            ),
                        ));
                    }
                    if let Some((d, col, _)) = stack.pop() {
                        return Err(at(
                            d.line,
                            col,
                            format!(
                                "block \"{}\" opened here is never closed (end of file at line {}, expecting \"}}\")",
                                d.text(),
                                t.line
                            ),
                        ));
                    }
                    return Ok(top);
                }
            }
        }
    }

    fn include(&mut self, d: &Directive, site: &Site) -> Result<Vec<Directive>, ConfigError> {
        let [arg] = d.args.as_slice() else {
            return Err(site.error(format!(
                "\"include\" takes one argument, found {}",
                d.args.len()
            )));
        };
        let path = resolve(&self.conf_dir, arg);
        let files = if glob::is_pattern(arg) {
            glob::expand_in(
                self.loader.root.as_deref(),
                &path,
                self.loader.limits.max_files,
            )
            .map_err(|e| site.error(e))?
        } else {
            vec![path]
        };
        self.includes.push((d.at(), files.clone()));
        let mut out = Vec::new();
        for f in files {
            out.extend(self.file(&f, Some(site))?);
        }
        Ok(out)
    }
}

fn directive(
    mut words: Vec<String>,
    file: &Arc<Path>,
    line: u32,
    block: Option<Vec<Directive>>,
) -> Directive {
    let name = words.remove(0);
    Directive {
        name,
        args: words,
        file: file.clone(),
        line,
        block,
    }
}
