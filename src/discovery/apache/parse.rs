//! Apache httpd configuration: lines (with `\` continuations) into a
//! [`Directive`] tree of `<Section>`s, then evaluation in file order of
//! what httpd decides while reading: `Define`/`UnDefine` and `${VAR}`,
//! `<IfDefine>`, `<IfModule>` (from `LoadModule` and the built-in
//! modules), `<IfFile>`, `ServerRoot`, and `Include`/`IncludeOptional`
//! with globs relative to `ServerRoot`.
//!
//! Runtime conditions (`<If>`, `<ElseIf>`, `<Else>`) are kept as sections:
//! they cannot be decided without a request, and the router notes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::discovery::directive::Directive;
use crate::discovery::glob;
use crate::discovery::source::{ConfigError, Loader, Site, line_col, resolve};

/// Modules compiled into Debian's (and upstream's default) httpd binary.
pub const BUILTIN_MODULES: &[&str] = &[
    "core_module",
    "core.c",
    "so_module",
    "mod_so.c",
    "watchdog_module",
    "mod_watchdog.c",
    "http_module",
    "http_core.c",
    "log_config_module",
    "mod_log_config.c",
    "logio_module",
    "mod_logio.c",
    "version_module",
    "mod_version.c",
    "unixd_module",
    "mod_unixd.c",
];

/// Deepest section nesting accepted.
pub const MAX_SECTION_DEPTH: usize = 64;

/// State while evaluating: what httpd knows at this point of the file.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub server_root: PathBuf,
    /// `Define`d names and `-D` from the command line.
    pub defines: BTreeMap<String, String>,
    /// Environment (the process's, or Debian's envvars).
    pub env: BTreeMap<String, String>,
    /// Module identifiers and source names loaded so far.
    pub modules: BTreeSet<String>,
    /// Variables that were used but never defined, with where.
    pub undefined: Vec<String>,
    /// `Include` patterns that matched nothing.
    pub notes: Vec<String>,
    /// `<Macro NAME $param…>` definitions (mod_macro; names are
    /// case-insensitive): parameters and the unevaluated body.
    pub macros: BTreeMap<String, (Vec<String>, Vec<Directive>)>,
    /// `Use` expansions so far (bounded: a macro using others twice at
    /// every level would otherwise grow exponentially).
    pub macro_uses: usize,
}

/// Most `Use` expansions evaluated in one configuration.
pub const MAX_MACRO_USES: usize = 1000;

/// A macro body with each parameter replaced by its value, in names and
/// arguments (mod_macro substitutes the parameter's text as written, so
/// `$port` does not replace `${port}`; longest names first so `$host` does
/// not eat `$hostname`).
fn expand_macro(body: &[Directive], params: &[String], values: &[String]) -> Vec<Directive> {
    let mut order: Vec<usize> = (0..params.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(params[*i].len()));
    let sub = |s: &str| {
        let mut out = s.to_owned();
        for &i in &order {
            let v = values.get(i).map_or("", String::as_str);
            out = out.replace(params[i].as_str(), v);
        }
        out
    };
    body.iter()
        .map(|d| Directive {
            name: sub(&d.name),
            args: d.args.iter().map(|a| sub(a)).collect(),
            file: d.file.clone(),
            line: d.line,
            block: d.block.as_ref().map(|b| expand_macro(b, params, values)),
        })
        .collect()
}

/// Split one logical line into words: whitespace separated, `"…"` and
/// `'…'` quoted with `\` escaping the quote.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else {
            return Ok(out);
        };
        let mut w = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(ch) = chars.next() {
                if ch == '\\' && chars.peek().is_some_and(|n| *n == c || *n == '\\') {
                    if let Some(n) = chars.next() {
                        w.push(n);
                    }
                } else if ch == c {
                    closed = true;
                    break;
                } else {
                    w.push(ch);
                }
            }
            if !closed {
                return Err(format!("unterminated {c}quoted{c} argument"));
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                chars.next();
            }
        }
        out.push(w);
    }
}

/// Parse one file's structure (no evaluation).
pub fn parse_structure(src: &[u8], file: &Arc<Path>) -> Result<Vec<Directive>, ConfigError> {
    let text = std::str::from_utf8(src).map_err(|e| {
        let (l, c) = line_col(src, e.valid_up_to());
        ConfigError::new(
            file,
            l,
            c,
            format!("invalid UTF-8 (byte 0x{:02X})", src[e.valid_up_to()]),
        )
    })?;
    if let Some(pos) = memchr::memchr(0, src) {
        let (l, c) = line_col(src, pos);
        return Err(ConfigError::new(
            file,
            l,
            c,
            "NUL byte: this is not a text configuration file",
        ));
    }
    let mut stack: Vec<(Directive, Vec<Directive>)> = Vec::new();
    let mut top: Vec<Directive> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, first)) = lines.next() {
        let line_no = i as u32 + 1;
        let mut logical = first.to_owned();
        // `\` at the end of a line continues it.
        while logical.trim_end().ends_with('\\') {
            let t = logical.trim_end();
            logical = t[..t.len() - 1].to_owned();
            match lines.next() {
                Some((_, next)) => logical.push_str(next),
                None => break,
            }
        }
        let t = logical.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let col = (logical.len() - logical.trim_start().len()) as u32 + 1;
        let err = |m: String| ConfigError::new(file, line_no, col, m);
        if let Some(rest) = t.strip_prefix("</") {
            let name = rest.trim_end_matches('>').trim();
            let Some((open, children)) = stack.pop() else {
                return Err(err(format!("</{name}> without matching <{name}> section")));
            };
            if !open.name.eq_ignore_ascii_case(name) {
                return Err(err(format!(
                    "</{name}> closes <{}> opened at line {}",
                    open.name, open.line
                )));
            }
            let mut d = open;
            d.block = Some(children);
            stack.last_mut().map_or(&mut top, |s| &mut s.1).push(d);
            continue;
        }
        if let Some(rest) = t.strip_prefix('<') {
            let Some(inner) = rest.strip_suffix('>') else {
                return Err(err(format!(
                    "section <{} is missing its closing '>'",
                    rest.split_whitespace().next().unwrap_or("")
                )));
            };
            if stack.len() >= MAX_SECTION_DEPTH {
                return Err(err(format!(
                    "sections nested deeper than {MAX_SECTION_DEPTH} levels"
                )));
            }
            let mut w = words(inner).map_err(&err)?;
            if w.is_empty() {
                return Err(err("empty section <>".into()));
            }
            let name = w.remove(0);
            stack.push((
                Directive {
                    name,
                    args: w,
                    file: file.clone(),
                    line: line_no,
                    block: None,
                },
                Vec::new(),
            ));
            continue;
        }
        let mut w = words(t).map_err(&err)?;
        let name = w.remove(0);
        stack
            .last_mut()
            .map_or(&mut top, |s| &mut s.1)
            .push(Directive {
                name,
                args: w,
                file: file.clone(),
                line: line_no,
                block: None,
            });
    }
    if let Some((open, _)) = stack.pop() {
        return Err(ConfigError::new(
            file,
            open.line,
            1,
            format!(
                "<{}> section opened here is never closed (expected </{}>)",
                open.name, open.name
            ),
        ));
    }
    Ok(top)
}

/// Replace `${VAR}` from defines, then the environment. Unknown variables
/// stay as written and are recorded.
pub fn substitute(s: &str, ctx: &mut Context, at: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = &after[..end];
        if let Some(v) = ctx.defines.get(name).or_else(|| ctx.env.get(name)) {
            out.push_str(v);
        } else {
            ctx.undefined.push(format!("${{{name}}} at {at}"));
            out.push_str(&rest[i..i + 3 + end]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Parse `path` and evaluate it (and its includes) in `ctx`.
pub fn load(
    loader: &mut Loader,
    path: &Path,
    site: Option<&Site>,
    ctx: &mut Context,
) -> Result<Vec<Directive>, ConfigError> {
    let bytes = loader.enter(path, site)?;
    let file: Arc<Path> = Arc::from(path);
    let raw = parse_structure(&bytes, &file);
    let r = raw.and_then(|raw| eval(loader, raw, ctx, 0));
    loader.leave();
    r
}

fn eval(
    loader: &mut Loader,
    raw: Vec<Directive>,
    ctx: &mut Context,
    depth: usize,
) -> Result<Vec<Directive>, ConfigError> {
    let mut out = Vec::new();
    for mut d in raw {
        let at = d.at();
        d.args = d.args.iter().map(|a| substitute(a, ctx, &at)).collect();
        let lname = d.name.to_ascii_lowercase();
        match lname.as_str() {
            "define" => {
                if let Some(n) = d.arg(0) {
                    ctx.defines
                        .insert(n.to_owned(), d.arg(1).unwrap_or("").to_owned());
                }
                out.push(d);
            }
            "undefine" => {
                if let Some(n) = d.arg(0) {
                    ctx.defines.remove(n);
                }
            }
            "loadmodule" => {
                if let Some(id) = d.arg(0) {
                    ctx.modules.insert(id.to_owned());
                }
                if let Some(stem) = d.arg(1).and_then(|f| Path::new(f).file_stem()) {
                    ctx.modules.insert(format!("{}.c", stem.to_string_lossy()));
                }
                out.push(d);
            }
            "serverroot" => {
                if let Some(r) = d.arg(0) {
                    ctx.server_root = PathBuf::from(r);
                }
                out.push(d);
            }
            "include" | "includeoptional" => {
                let optional = lname == "includeoptional";
                let site = Site {
                    file: d.file.clone(),
                    line: d.line,
                    col: 1,
                };
                for arg in d.args.clone() {
                    let pattern = resolve(&ctx.server_root, &arg);
                    let files = if glob::is_pattern(&arg) {
                        let f = glob::expand(&pattern, loader.limits.max_files)
                            .map_err(|e| site.error(e))?;
                        if f.is_empty() && !optional {
                            ctx.notes
                                .push(format!("Include {arg} at {at} matches no file"));
                        }
                        f
                    } else if optional && !pattern.exists() {
                        Vec::new()
                    } else {
                        vec![pattern]
                    };
                    for f in files {
                        if f.is_dir() {
                            // httpd includes every file of a directory, sorted.
                            let inner = glob::expand(&f.join("*"), loader.limits.max_files)
                                .map_err(|e| site.error(e))?;
                            for g in inner.into_iter().filter(|g| g.is_file()) {
                                out.extend(load(loader, &g, Some(&site), ctx)?);
                            }
                        } else {
                            out.extend(load(loader, &f, Some(&site), ctx)?);
                        }
                    }
                }
            }
            "macro" if d.block.is_some() => {
                if let Some(n) = d.arg(0) {
                    ctx.macros.insert(
                        n.to_ascii_lowercase(),
                        (d.args[1..].to_vec(), d.block.take().unwrap_or_default()),
                    );
                }
            }
            "undefmacro" => {
                if let Some(n) = d.arg(0) {
                    ctx.macros.remove(&n.to_ascii_lowercase());
                }
            }
            "use" => {
                let name = d.arg(0).unwrap_or("").to_ascii_lowercase();
                match ctx.macros.get(&name).cloned() {
                    Some((params, body)) => {
                        if params.len() != d.args.len() - 1 {
                            return Err(ConfigError::new(
                                &d.file,
                                d.line,
                                1,
                                format!(
                                    "macro '{name}' takes {} arguments, Use gives {}",
                                    params.len(),
                                    d.args.len() - 1
                                ),
                            ));
                        }
                        ctx.macro_uses += 1;
                        if ctx.macro_uses > MAX_MACRO_USES || depth >= MAX_SECTION_DEPTH {
                            return Err(ConfigError::new(
                                &d.file,
                                d.line,
                                1,
                                format!(
                                    "Use {name}: macro expansion too deep or too large (more than {MAX_MACRO_USES} uses)"
                                ),
                            ));
                        }
                        let body = expand_macro(&body, &params, &d.args[1..]);
                        out.extend(eval(loader, body, ctx, depth + 1)?);
                    }
                    None => {
                        return Err(ConfigError::new(
                            &d.file,
                            d.line,
                            1,
                            format!("Use of undefined macro '{name}' (httpd refuses to start)"),
                        ));
                    }
                }
            }
            "ifdefine" | "ifmodule" | "iffile" | "ifversion" | "ifdirective" | "ifsection" => {
                let arg = d.arg(0).unwrap_or("");
                let (neg, name) = arg.strip_prefix('!').map_or((false, arg), |n| (true, n));
                let holds = match lname.as_str() {
                    "ifdefine" => ctx.defines.contains_key(name),
                    "ifmodule" => BUILTIN_MODULES.contains(&name) || ctx.modules.contains(name),
                    "iffile" => resolve(&ctx.server_root, name).exists(),
                    _ => true,
                };
                if holds != neg && depth < MAX_SECTION_DEPTH {
                    let children = d.block.take().unwrap_or_default();
                    out.extend(eval(loader, children, ctx, depth + 1)?);
                }
            }
            _ => {
                if let Some(children) = d.block.take() {
                    d.block = Some(eval(loader, children, ctx, depth + 1)?);
                }
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// Debian's `envvars` (`export NAME=value` lines; `$SUFFIX` is empty for
/// the default instance).
pub fn parse_envvars(text: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        let Some((k, v)) = rest.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        let mut val = v.replace("${SUFFIX}", "").replace("$SUFFIX", "");
        for (name, value) in &env {
            val = val
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        if !val.contains('$') && !val.contains('`') {
            env.insert(k.trim().to_owned(), val);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn structure(s: &str) -> Result<Vec<Directive>, ConfigError> {
        parse_structure(s.as_bytes(), &Arc::from(Path::new("/t.conf")))
    }

    #[test]
    fn sections_continuations_and_quotes() {
        let t = structure("# c\nServerName a.test\n<VirtualHost *:80>\n  ProxyPass \"/app\" \\\n    \"http://127.0.0.1:8080/\" timeout=5\n  <If \"%{HTTP_HOST} == 'x'\">\n    Require all denied\n  </If>\n</VirtualHost>\n").unwrap();
        assert_eq!(t.len(), 2);
        let vh = &t[1];
        assert_eq!(vh.args, vec!["*:80"]);
        let pp = &vh.children()[0];
        assert_eq!(pp.args, vec!["/app", "http://127.0.0.1:8080/", "timeout=5"]);
        assert_eq!(pp.line, 4);
        assert_eq!(vh.children()[1].name, "If");
        assert_eq!(vh.children()[1].args, vec!["%{HTTP_HOST} == 'x'"]);
    }

    #[test]
    fn mismatched_and_unclosed_sections() {
        let e = structure("<VirtualHost *:80>\n</Location>\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.contains("closes <VirtualHost>")),
            (2, true)
        );
        let e = structure("x\n<Location /a>\nSetHandler none\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never closed"), "{}", e.message);
        let e = structure("ErrorLog \"/var/log/x\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn defines_ifdefine_ifmodule_and_env() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("a.conf"),
            "Define LOGS /srv/logs\n<IfDefine !NOPE>\nErrorLog ${LOGS}/error.log\n</IfDefine>\n<IfModule mod_proxy.c>\nProxyTimeout 5\n</IfModule>\nLoadModule proxy_module modules/mod_proxy.so\n<IfModule proxy_module>\nProxyTimeout 7\n</IfModule>\nCustomLog ${APACHE_LOG_DIR}/access.log combined\nUser ${UNSET}\n",
        )
        .unwrap();
        let mut ctx = Context {
            server_root: d.path().to_path_buf(),
            env: parse_envvars("export APACHE_LOG_DIR=/var/log/apache2$SUFFIX\n"),
            ..Context::default()
        };
        let mut loader = Loader::new(crate::discovery::source::Limits::default());
        let t = load(&mut loader, &d.path().join("a.conf"), None, &mut ctx).unwrap();
        let names: Vec<String> = t
            .iter()
            .map(|d| format!("{} {}", d.name, d.args.join(" ")))
            .collect();
        assert!(
            names.contains(&"ErrorLog /srv/logs/error.log".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"ProxyTimeout 7".to_owned()));
        assert!(!names.contains(&"ProxyTimeout 5".to_owned()));
        assert!(names.contains(&"CustomLog /var/log/apache2/access.log combined".to_owned()));
        assert!(names.contains(&"User ${UNSET}".to_owned()));
        assert_eq!(ctx.undefined.len(), 1);
    }

    fn load_text(text: &str) -> Result<Vec<Directive>, ConfigError> {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("m.conf"), text).unwrap();
        let mut ctx = Context {
            server_root: d.path().to_path_buf(),
            ..Context::default()
        };
        let mut loader = Loader::new(crate::discovery::source::Limits::default());
        load(&mut loader, &d.path().join("m.conf"), None, &mut ctx)
    }

    #[test]
    fn macros_expand_at_each_use_and_undefmacro_forgets() {
        let t = load_text(
            "<Macro Site $host $hostname>\n<VirtualHost *:80>\nServerName $hostname\nServerAlias $host.alias\nProxyPass / http://${B}/\n</VirtualHost>\n</Macro>\nUse site a a.test\nUSE Site b b.test\nUndefMacro Site\n",
        )
        .unwrap();
        let vhosts: Vec<&Directive> = t.iter().filter(|d| d.is("VirtualHost")).collect();
        assert_eq!(vhosts.len(), 2);
        // `$hostname` is not eaten by the shorter `$host`; `${B}` is not a parameter.
        assert_eq!(vhosts[1].last("ServerName").unwrap().args, ["b.test"]);
        assert_eq!(vhosts[1].last("ServerAlias").unwrap().args, ["b.alias"]);
        assert_eq!(vhosts[0].last("ProxyPass").unwrap().args[1], "http://${B}/");
        // Lines are the macro body's.
        assert_eq!(vhosts[0].line, 2);
        assert!(!t.iter().any(|d| d.is("Macro") || d.is("Use")));
        let e = load_text("<Macro M $a>\nX $a\n</Macro>\nUndefMacro M\nUse M 1\n").unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("undefined macro"), "{}", e.message);
        let e = load_text("<Macro M $a $b>\nX $a\n</Macro>\nUse M 1\n").unwrap_err();
        assert!(e.message.contains("takes 2 arguments"), "{}", e.message);
    }

    #[test]
    fn macro_expansion_is_bounded() {
        // Each level uses the next twice: 2^40 expansions unbounded.
        let mut text = String::from("<Macro L0>\nX 1\n</Macro>\n");
        for i in 1..40 {
            let p = i - 1;
            text += &[
                "<Macro L",
                &i.to_string(),
                ">\nUse L",
                &p.to_string(),
                "\nUse L",
                &p.to_string(),
                "\n</Macro>\n",
            ]
            .concat();
        }
        text.push_str("Use L39\n");
        let e = load_text(&text).unwrap_err();
        assert!(e.message.contains("too deep or too large"), "{}", e.message);
        // Recursion too.
        let e = load_text("<Macro R>\nUse R\n</Macro>\nUse R\n").unwrap_err();
        assert!(e.message.contains("too deep"), "{}", e.message);
    }
}
