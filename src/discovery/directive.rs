//! The tree every configuration parser produces: directives with their
//! arguments, children for block directives, and the file and line each one
//! came from (so every fact can name its source).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// One directive (`proxy_pass http://app;`, `<VirtualHost *:80>`, `server
/// app 127.0.0.1:8080 check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub file: Arc<Path>,
    pub line: u32,
    /// `Some` for blocks (`server { }`, `<Location>`), even empty ones.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// `file:line`.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// Is this directive called `name` (ASCII case-insensitive: Apache's
    /// and HAProxy's keywords are; nginx's are always lower case)?
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }

    /// The children of a block (empty for a simple directive).
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }

    /// Children called `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        self.children().iter().filter(move |d| d.is(name))
    }

    /// The last child called `name` (nginx and Apache: the last one wins
    /// where a directive may appear once).
    pub fn last(&self, name: &str) -> Option<&Directive> {
        self.children().iter().rev().find(|d| d.is(name))
    }

    /// The directive as written on one line, blocks shown as `{ ... }`.
    pub fn text(&self) -> String {
        let mut s = self.name.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(a));
        }
        s
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Quote an argument when it would not read back as one word.
pub fn quote(a: &str) -> String {
    if a.is_empty()
        || a.contains(|c: char| {
            c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'' | '#')
        })
    {
        format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        a.to_owned()
    }
}

/// Walk every directive depth-first (bounded by the tree, which is finite).
pub fn walk<'a>(list: &'a [Directive], f: &mut dyn FnMut(&'a Directive, usize)) {
    fn go<'a>(list: &'a [Directive], depth: usize, f: &mut dyn FnMut(&'a Directive, usize)) {
        for d in list {
            f(d, depth);
            if let Some(b) = &d.block {
                go(b, depth + 1, f);
            }
        }
    }
    go(list, 0, f);
}
