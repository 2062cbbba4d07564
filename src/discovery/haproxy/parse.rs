//! HAProxy's configuration: lines of words (`"…"` with `\` escapes and
//! `${VAR}` from the environment (kept as written when unset here), `'…'` literal, `\` escapes outside
//! quotes, `#` comments) grouped into sections that start with a section
//! keyword. `-f` may name directories: their `*.cfg` files load in order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::discovery::directive::Directive;
use crate::discovery::glob;
use crate::discovery::source::{ConfigError, Limits, Loader, line_col};

/// Keywords that open a section.
pub const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "crt-store",
    "traces",
    "log-forward",
];

/// The parsed sections, in file order.
#[derive(Debug, Clone, Default)]
pub struct HaproxyConfig {
    pub sections: Vec<Directive>,
    pub files: Vec<PathBuf>,
}

/// Parse every `-f` path (files, or directories of `*.cfg`).
pub fn parse(paths: &[PathBuf], limits: Limits) -> Result<HaproxyConfig, ConfigError> {
    let mut loader = Loader::new(limits);
    let mut cfg = HaproxyConfig::default();
    for p in paths {
        let files = if p.is_dir() {
            glob::expand(&p.join("*.cfg"), limits.max_files)
                .map_err(|e| ConfigError::new(p, 0, 0, e))?
        } else {
            vec![p.clone()]
        };
        for f in files {
            let bytes = loader.enter(&f, None)?;
            let file: Arc<Path> = Arc::from(f.as_path());
            let r = parse_text(&bytes, &file, &mut cfg.sections);
            loader.leave();
            r?;
        }
    }
    cfg.files = loader.files;
    Ok(cfg)
}

/// Parse one file's lines into `sections`.
pub fn parse_text(
    src: &[u8],
    file: &Arc<Path>,
    sections: &mut Vec<Directive>,
) -> Result<(), ConfigError> {
    let text = std::str::from_utf8(src).map_err(|e| {
        let (l, c) = line_col(src, e.valid_up_to());
        ConfigError::new(
            file,
            l,
            c,
            format!("invalid UTF-8 (byte 0x{:02X})", src[e.valid_up_to()]),
        )
    })?;
    // A new file starts outside any section (as HAProxy does).
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let w = words(line).map_err(|(col, m)| ConfigError::new(file, n, col, m))?;
        let Some(first) = w.first() else { continue };
        if SECTIONS.contains(&first.as_str()) {
            sections.push(Directive {
                name: first.clone(),
                args: w[1..].to_vec(),
                file: file.clone(),
                line: n,
                block: Some(Vec::new()),
            });
            in_section = true;
            continue;
        }
        let col = (line.len() - line.trim_start().len()) as u32 + 1;
        if !in_section {
            return Err(ConfigError::new(
                file,
                n,
                col,
                format!("unknown keyword {first:?} out of any section"),
            ));
        }
        if let Some(block) = sections.last_mut().and_then(|s| s.block.as_mut()) {
            block.push(Directive {
                name: first.clone(),
                args: w[1..].to_vec(),
                file: file.clone(),
                line: n,
                block: None,
            });
        }
    }
    Ok(())
}

/// Split a line into words; errors carry the 1-based column.
pub fn words(line: &str) -> Result<Vec<String>, (u32, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => break,
            ' ' | '\t' => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
                have = true;
            }
            '\'' => {
                have = true;
                let mut closed = false;
                for (_, n) in chars.by_ref() {
                    if n == '\'' {
                        closed = true;
                        break;
                    }
                    cur.push(n);
                }
                if !closed {
                    return Err((i as u32 + 1, "unterminated single quote".into()));
                }
            }
            '"' => {
                have = true;
                let mut closed = false;
                while let Some((_, n)) = chars.next() {
                    match n {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                cur.push(e);
                            }
                        }
                        '$' if chars.peek().is_some_and(|(_, c)| *c == '{') => {
                            chars.next();
                            let mut name = String::new();
                            for (_, x) in chars.by_ref() {
                                if x == '}' {
                                    break;
                                }
                                name.push(x);
                            }
                            // Unset here: kept as written, since the
                            // server's own environment decides (the
                            // route says so) rather than ours.
                            if let Ok(v) = std::env::var(&name) {
                                cur.push_str(&v);
                            } else {
                                cur.push_str("${");
                                cur.push_str(&name);
                                cur.push('}');
                            }
                        }
                        _ => cur.push(n),
                    }
                }
                if !closed {
                    return Err((i as u32 + 1, "unterminated double quote".into()));
                }
            }
            _ => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_quotes_and_comments() {
        let mut s = Vec::new();
        parse_text(
            b"global\n  log /dev/log local0 # c\n  stats socket /run/h.sock mode 660\nfrontend web\n  bind 127.0.0.1:80\n  http-request return status 200 content-type text/plain string \"a # b\"\n  use_backend api if { path_beg /api }\n",
            &Arc::from(Path::new("/h.cfg")),
            &mut s,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].children()[0].args, vec!["/dev/log", "local0"]);
        assert_eq!(s[1].children()[1].args.last().unwrap(), "a # b");
        assert_eq!(s[1].children()[2].line, 7);
    }

    #[test]
    fn keyword_outside_section_is_located() {
        let mut s = Vec::new();
        let e = parse_text(b"\n  bind :80\n", &Arc::from(Path::new("/h.cfg")), &mut s).unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
        let e = parse_text(
            b"global\n log \"x\n",
            &Arc::from(Path::new("/h.cfg")),
            &mut s,
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (2, 6));
    }
}
