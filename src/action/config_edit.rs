//! Configuration edits: change a directive where the parser found it, show the
//! unified diff, and apply it with a backup, the server's config test, a
//! graceful reload, a verification of the failing URL and an undo.
//!
//! Invariants:
//! - the change is located by the tokenizer (nginx) or the ini reader
//!   (php-fpm) at the `file:line` discovery found, never by searching the
//!   text; only the bytes of the changed directive (or one added line) differ;
//! - the edited text is parsed again and must equal the original parse with
//!   exactly the intended change (the round-trip check); a file the parser
//!   cannot read back this way is refused;
//! - only a file of the running server's discovered configuration is edited;
//! - the file's SHA-256 when the diff was shown must still match at apply time;
//! - the file is rewritten in place (inode, owner, mode kept) after a backup
//!   `FILE.triage502-<time>` beside it; any failure after the write (config
//!   test, reload, verification) restores it byte for byte and reloads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::executor::{Executed, result, service_steps};
use super::policy::ExecPolicy;
use super::undo::{self, UndoEntry};
use super::{ActionSpec, Change, ConfigEditAction, ConfigSyntax, RollbackAction, rollback};
use crate::discovery::nginx::lexer::{Kind, Lexer};

/// Probes after the reload: this many answers below 500 in a row mean recovered.
pub const VERIFY_PROBES: usize = 3;
/// Pause before each verification probe.
pub const VERIFY_PAUSE: Duration = Duration::from_millis(700);
/// At most this many probes while waiting for the answers in a row: a
/// reloading server (php-fpm re-executes on SIGUSR2, its socket is briefly
/// gone) may fail the first ones.
pub const VERIFY_MAX_PROBES: usize = 12;

/// Did the last [`VERIFY_PROBES`] probes all answer below 500?
pub fn recovered(v: &super::VerifyResult) -> bool {
    v.after.len() >= VERIFY_PROBES
        && v.after[v.after.len() - VERIFY_PROBES..]
            .iter()
            .all(super::Probe::answers)
}

/// Probe `url` until it answers [`VERIFY_PROBES`] times in a row, at most
/// [`VERIFY_MAX_PROBES`] probes [`VERIFY_PAUSE`] apart.
pub async fn verify_in_a_row(url: &str) -> super::VerifyResult {
    let mut after = Vec::new();
    let mut run = 0;
    while after.len() < VERIFY_MAX_PROBES && run < VERIFY_PROBES {
        tokio::time::sleep(VERIFY_PAUSE).await;
        let p = super::verify::probe(url).await;
        run = if p.answers() { run + 1 } else { 0 };
        after.push(p);
        // Not enough probes left for a full run: stop early.
        if VERIFY_MAX_PROBES - after.len() < VERIFY_PROBES - run {
            break;
        }
    }
    super::VerifyResult {
        url: url.to_owned(),
        before: Vec::new(),
        after,
    }
}

/// What the operator consents to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub file: PathBuf,
    /// SHA-256 of the file as read for this preview.
    pub sha256: String,
    pub old: String,
    pub new: String,
    /// The unified diff from `old` to `new`.
    pub diff: String,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `file` must be one of the discovered configuration files (compared after
/// resolving symlinks). Returns the resolved path.
pub fn check_allowed(file: &str, allowed: &[String]) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(file).map_err(|e| format!("cannot resolve {file}: {e}"))?;
    if allowed.is_empty() {
        return Err(format!(
            "refusing to edit {file}: discovery found no configuration files of the running server"
        ));
    }
    let ok = allowed
        .iter()
        .filter_map(|a| std::fs::canonicalize(a.trim()).ok())
        .any(|a| a == real);
    if ok {
        Ok(real)
    } else {
        Err(format!(
            "refusing to edit {file}: it is not one of the running server's configuration files ({})",
            allowed.join(", ")
        ))
    }
}

/// The unified diff from `old` to `new`, headed with `file`.
pub fn unified_diff(file: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{file} (now)"), &format!("{file} (edited)"))
        .to_string()
}

/// Read `e.file` (checked against `e.allowed`, capped) and compute the edit.
pub fn preview(e: &ConfigEditAction) -> Result<Preview, String> {
    let real = check_allowed(&e.file, &e.allowed)?;
    let meta = std::fs::metadata(&real).map_err(|x| format!("cannot read {}: {x}", e.file))?;
    if !meta.is_file() || meta.len() > rollback::MAX_FILE {
        return Err(format!(
            "{} is not a regular file of at most {} bytes",
            e.file,
            rollback::MAX_FILE
        ));
    }
    let bytes = std::fs::read(&real).map_err(|x| format!("cannot read {}: {x}", e.file))?;
    let sha256 = sha256_hex(&bytes);
    let old = String::from_utf8(bytes)
        .map_err(|_| format!("refusing to edit {}: it is not UTF-8 text", e.file))?;
    let changes = e.parsed()?;
    let new = edit_text(e.syntax()?, &old, &changes)
        .map_err(|x| format!("refusing to edit {}: {x}", e.file))?;
    let diff = unified_diff(&e.file, &old, &new);
    Ok(Preview {
        file: real,
        sha256,
        old,
        new,
        diff,
    })
}

/// Apply `changes` to `text` (pure). Each change is located by the parser and
/// the result is parsed again and compared with the intended change.
pub fn edit_text(syntax: ConfigSyntax, text: &str, changes: &[Change]) -> Result<String, String> {
    let mut out = text.to_owned();
    for c in changes {
        out = match (syntax, c) {
            (ConfigSyntax::Nginx, Change::NginxSet { .. } | Change::NginxInBlock { .. }) => {
                nginx::apply(&out, c)?
            }
            (ConfigSyntax::PhpFpm, Change::FpmSet { pool, key, value }) => {
                fpm::apply(&out, pool, key, value)?
            }
            _ => {
                return Err(format!(
                    "`{}` does not apply to a {syntax} file",
                    c.describe()
                ));
            }
        };
    }
    if out == text {
        return Err("the file already reads so: nothing to change".into());
    }
    Ok(out)
}

/// A directive inside an nginx block: its name, arguments and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxDirective {
    pub line: u32,
    pub name: String,
    pub args: Vec<String>,
}

/// An nginx block (`upstream app { ... }`) as the tokenizer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxBlock {
    /// The line its head (`upstream app`) starts on.
    pub line: u32,
    /// The head's words (`["upstream", "app"]`).
    pub head: Vec<String>,
    /// Its direct children, in order (a child block by its head).
    pub children: Vec<NginxDirective>,
}

impl NginxBlock {
    /// The last direct child called `name` (the one nginx uses).
    pub fn child(&self, name: &str) -> Option<&NginxDirective> {
        self.children.iter().rev().find(|d| d.name == name)
    }
}

/// The innermost block of an nginx text that holds `line` (read by the
/// tokenizer, as [`edit_text`] locates its changes).
pub fn nginx_block_around(text: &str, line: u32) -> Result<NginxBlock, String> {
    nginx_blocks_around(text, line)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no block holds line {line}"))
}

/// Every block of an nginx text that holds `line`, innermost first.
pub fn nginx_blocks_around(text: &str, line: u32) -> Result<Vec<NginxBlock>, String> {
    let toks = nginx::tokens(text)?;
    let mut stack: Vec<NginxBlock> = Vec::new();
    let mut stmt: Vec<(String, u32)> = Vec::new();
    let mut out = Vec::new();
    for t in toks {
        match t.kind {
            Kind::Word(w) => stmt.push((w, t.line)),
            Kind::Semi | Kind::Open => {
                let opens = t.kind == Kind::Open;
                let Some((name, l)) = stmt.first().cloned() else {
                    continue;
                };
                let args: Vec<String> = stmt.drain(..).skip(1).map(|(w, _)| w).collect();
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(NginxDirective {
                        line: l,
                        name: name.clone(),
                        args: args.clone(),
                    });
                }
                if opens {
                    let mut head = vec![name];
                    head.extend(args);
                    stack.push(NginxBlock {
                        line: l,
                        head,
                        children: Vec::new(),
                    });
                }
            }
            Kind::Close => {
                stmt.clear();
                // Blocks close innermost first.
                if let Some(b) = stack.pop() {
                    if b.line <= line && line <= t.line {
                        out.push(b);
                    }
                }
            }
            Kind::Eof => break,
        }
    }
    Ok(out)
}

fn newline_of(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Byte offset of each line start.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

mod nginx {
    use super::{Change, Kind, Lexer, indent_of, line_starts, newline_of};

    /// A token with its byte offset.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Tok {
        pub kind: Kind,
        pub line: u32,
        pub start: usize,
    }

    pub fn tokens(text: &str) -> Result<Vec<Tok>, String> {
        let starts = line_starts(text);
        let mut lx = Lexer::new(text.as_bytes());
        let mut out = Vec::new();
        let mut depth = 0i64;
        // Bounded by the text: every token consumes at least one byte.
        for _ in 0..=text.len() {
            let t = lx.next_token().map_err(|e| {
                format!(
                    "the parser cannot read it ({}:{}: {})",
                    e.line, e.col, e.message
                )
            })?;
            let ls = starts
                .get(t.line as usize - 1)
                .copied()
                .ok_or("a token beyond the last line")?;
            let start = ls
                + text[ls..]
                    .char_indices()
                    .nth(t.col as usize - 1)
                    .map_or(text.len() - ls, |(i, _)| i);
            match t.kind {
                Kind::Open => depth += 1,
                Kind::Close => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                return Err(format!("an unmatched `}}` at line {}", t.line));
            }
            let eof = t.kind == Kind::Eof;
            out.push(Tok {
                kind: t.kind,
                line: t.line,
                start,
            });
            if eof {
                if depth != 0 {
                    return Err("a block is not closed".into());
                }
                return Ok(out);
            }
        }
        Err("the tokenizer did not finish".into())
    }

    /// Index of the directive name token starting at `line` called `name`.
    fn directive_at(toks: &[Tok], line: u32, name: &str) -> Option<usize> {
        (0..toks.len()).find(|&i| {
            toks[i].line == line
                && toks[i].kind == Kind::Word(name.to_owned())
                && (i == 0 || matches!(toks[i - 1].kind, Kind::Semi | Kind::Open | Kind::Close))
        })
    }

    /// From a directive name at `i`: the index of its `;` or `{`.
    fn end_of(toks: &[Tok], i: usize) -> Option<usize> {
        (i + 1..toks.len()).find(|&j| !matches!(toks[j].kind, Kind::Word(_)))
    }

    fn words(args: &[String]) -> Vec<Kind> {
        args.iter().map(|a| Kind::Word(a.clone())).collect()
    }

    /// Replace the arguments of the simple directive whose name is token `i`.
    fn set(
        text: &str,
        toks: &[Tok],
        i: usize,
        name: &str,
        args: &[String],
    ) -> Result<(String, Vec<Kind>), String> {
        let end = end_of(toks, i).ok_or("the directive has no end")?;
        if toks[end].kind != Kind::Semi {
            return Err(format!(
                "`{name}` at line {} is a block, not a simple directive",
                toks[i].line
            ));
        }
        let span = &text[toks[i].start..toks[end].start];
        if span.contains('\n') || span.contains('#') {
            return Err(format!(
                "`{name}` at line {} spans lines or holds a comment: edit it by hand",
                toks[i].line
            ));
        }
        let mut new = String::with_capacity(text.len() + 64);
        new.push_str(&text[..toks[i].start]);
        new.push_str(name);
        for a in args {
            new.push(' ');
            new.push_str(a);
        }
        new.push_str(&text[toks[end].start..]);
        let mut expect: Vec<Kind> = toks[..=i].iter().map(|t| t.kind.clone()).collect();
        expect.extend(words(args));
        expect.extend(toks[end..].iter().map(|t| t.kind.clone()));
        Ok((new, expect))
    }

    pub fn apply(text: &str, c: &Change) -> Result<String, String> {
        let toks = tokens(text)?;
        let (new, expect) = match c {
            Change::NginxSet { line, name, args } => {
                let i = directive_at(&toks, *line, name)
                    .ok_or_else(|| format!("no `{name}` directive starts at line {line}"))?;
                set(text, &toks, i, name, args)?
            }
            Change::NginxInBlock { line, name, args } => {
                // The block opened by the directive starting at `line`.
                let head = (0..toks.len())
                    .find(|&i| {
                        toks[i].line == *line
                            && matches!(toks[i].kind, Kind::Word(_))
                            && (i == 0
                                || matches!(
                                    toks[i - 1].kind,
                                    Kind::Semi | Kind::Open | Kind::Close
                                ))
                    })
                    .ok_or_else(|| format!("no directive starts at line {line}"))?;
                let open = end_of(&toks, head).ok_or("the block has no end")?;
                if toks[open].kind != Kind::Open {
                    return Err(format!(
                        "the directive at line {line} does not open a block"
                    ));
                }
                // A direct child with the same name is replaced (the last wins in nginx).
                let mut depth = 0;
                let mut stmt_start = true;
                let mut found = None;
                let mut close = None;
                for (j, tok) in toks.iter().enumerate().skip(open + 1) {
                    match &tok.kind {
                        Kind::Open => {
                            depth += 1;
                            stmt_start = true;
                        }
                        Kind::Close if depth == 0 => {
                            close = Some(j);
                            break;
                        }
                        Kind::Close => {
                            depth -= 1;
                            stmt_start = true;
                        }
                        Kind::Semi => stmt_start = true,
                        Kind::Word(w) => {
                            if stmt_start && depth == 0 && w == name {
                                found = Some(j);
                            }
                            stmt_start = false;
                        }
                        Kind::Eof => break,
                    }
                }
                close.ok_or("the block is not closed")?;
                if let Some(j) = found {
                    set(text, &toks, j, name, args)?
                } else {
                    // Insert a line after the one holding `{`.
                    let brace = toks[open].start;
                    let eol = text[brace..]
                        .find('\n')
                        .map(|n| brace + n + 1)
                        .ok_or("the block opens on the last line")?;
                    let after = &text[brace + 1..eol];
                    let after = after.trim();
                    if !(after.is_empty() || after.starts_with('#')) {
                        return Err(format!(
                            "the block at line {line} has more on the line of its `{{`: edit it by hand"
                        ));
                    }
                    let starts = line_starts(text);
                    let head_line = &text[starts[*line as usize - 1]..];
                    let head_indent = indent_of(head_line.lines().next().unwrap_or(""));
                    let next_line = text[eol..]
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    let next_indent = indent_of(next_line);
                    let indent = if next_indent.len() > head_indent.len()
                        && !next_line.trim_start().starts_with('}')
                    {
                        next_indent.to_owned()
                    } else {
                        format!("{head_indent}    ")
                    };
                    let mut new = String::with_capacity(text.len() + 64);
                    new.push_str(&text[..eol]);
                    new.push_str(&indent);
                    new.push_str(name);
                    for a in args {
                        new.push(' ');
                        new.push_str(a);
                    }
                    new.push(';');
                    new.push_str(newline_of(text));
                    new.push_str(&text[eol..]);
                    let mut expect: Vec<Kind> =
                        toks[..=open].iter().map(|t| t.kind.clone()).collect();
                    expect.push(Kind::Word(name.clone()));
                    expect.extend(words(args));
                    expect.push(Kind::Semi);
                    expect.extend(toks[open + 1..].iter().map(|t| t.kind.clone()));
                    (new, expect)
                }
            }
            Change::FpmSet { .. } => return Err("not an nginx change".into()),
        };
        // Round trip: the edited text parses to the original plus exactly this change.
        let got: Vec<Kind> = tokens(&new)?.into_iter().map(|t| t.kind).collect();
        if got != expect {
            return Err("the edited file does not parse back to the intended change".into());
        }
        Ok(new)
    }
}

mod fpm {
    use super::{indent_of, newline_of};

    /// One line of an ini file as php-fpm reads it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Line {
        Other,
        Section(String),
        Entry(String, String),
    }

    fn classify(raw: &str) -> Result<Line, String> {
        let t = raw.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            return Ok(Line::Other);
        }
        if let Some(rest) = t.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("section header {t:?} has no closing ]"))?;
            return Ok(Line::Section(name.trim().to_owned()));
        }
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("expected `key = value`, found {t:?}"))?;
        let v = v.trim();
        let v = if let Some(rest) = v.strip_prefix('"') {
            rest.split('"').next().unwrap_or("").to_owned()
        } else {
            v.split(';').next().unwrap_or("").trim().to_owned()
        };
        Ok(Line::Entry(k.trim().to_owned(), v))
    }

    fn read(text: &str) -> Result<Vec<Line>, String> {
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                classify(l).map_err(|e| format!("the parser cannot read line {}: {e}", i + 1))
            })
            .collect()
    }

    pub fn apply(text: &str, pool: &str, key: &str, value: &str) -> Result<String, String> {
        let lines = read(text)?;
        let raw: Vec<&str> = text.lines().collect();
        let head = lines
            .iter()
            .rposition(|l| *l == Line::Section(pool.to_owned()))
            .ok_or_else(|| format!("pool [{pool}] is not declared in this file"))?;
        let end = (head + 1..lines.len())
            .find(|&i| matches!(lines[i], Line::Section(_)))
            .unwrap_or(lines.len());
        let existing = (head + 1..end)
            .rev()
            .find(|&i| matches!(&lines[i], Line::Entry(k, _) if k == key));
        let nl = newline_of(text);
        let mut expect = lines.clone();
        let mut out: Vec<String> = raw.iter().map(|l| (*l).to_owned()).collect();
        if let Some(i) = existing {
            let l = raw[i];
            // Keep a trailing `; comment` after an unquoted value.
            let comment = l
                .split_once('=')
                .map(|(_, v)| v)
                .filter(|v| !v.trim_start().starts_with('"'))
                .and_then(|v| v.find(';').map(|p| v[p..].to_owned()));
            let mut s = format!("{}{key} = {value}", indent_of(l));
            if let Some(c) = comment {
                s.push(' ');
                s.push_str(&c);
            }
            out[i] = s;
            expect[i] = Line::Entry(key.to_owned(), value.to_owned());
        } else {
            let last = (head + 1..end)
                .rev()
                .find(|&i| matches!(lines[i], Line::Entry(..)))
                .unwrap_or(head);
            let indent = if last == head {
                ""
            } else {
                indent_of(raw[last])
            };
            out.insert(last + 1, format!("{indent}{key} = {value}"));
            expect.insert(last + 1, Line::Entry(key.to_owned(), value.to_owned()));
        }
        let mut new = out.join(nl);
        if text.ends_with('\n') {
            new.push_str(nl);
        }
        // Round trip: the edited text reads back as the original plus this change.
        if read(&new)? != expect {
            return Err("the edited file does not parse back to the intended change".into());
        }
        Ok(new)
    }
}

/// A graceful reload, except where it cannot apply the change: php-fpm keeps
/// its listening sockets across SIGUSR2, so a `listen*` change (owner, group,
/// mode, address) needs the master stopped and started.
pub fn reload_or_restart(e: &ConfigEditAction) -> super::ServiceOp {
    let listen = e.parsed().is_ok_and(|cs| {
        cs.iter()
            .any(|c| matches!(c, Change::FpmSet { key, .. } if key.starts_with("listen")))
    });
    if listen && e.service.server_kind() == super::ServerKind::PhpFpm {
        super::ServiceOp::Restart
    } else {
        super::ServiceOp::Reload
    }
}

/// Write `bytes` into `file` in place (inode, owner and mode kept).
fn write_in_place(file: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(file, bytes).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// Put the original bytes back (the backup, then identical, is removed) and
/// reload; returns what happened, in words.
async fn restore(
    e: &ConfigEditAction,
    file: &Path,
    original: &[u8],
    backup: &str,
    policy: &ExecPolicy,
    out: &mut String,
    reload: bool,
) -> String {
    let mut s = match write_in_place(file, original) {
        Ok(()) if std::fs::read(file).is_ok_and(|b| b == original) => {
            let _ = std::fs::remove_file(backup);
            format!("{} was restored byte for byte", e.file)
        }
        Ok(()) => format!(
            "{} was rewritten but reads back differently; its backup is {backup}",
            e.file
        ),
        Err(x) => format!("restoring {} FAILED: {x}; its backup is {backup}", e.file),
    };
    let _ = writeln!(out, "{s}");
    if reload {
        let svc = super::ServiceAction {
            op: reload_or_restart(e),
            ..(*e.service).clone()
        };
        let (ok, _, sum) = service_steps(&svc, policy, out).await;
        let _ = write!(
            s,
            "; {}",
            if ok {
                format!(
                    "{} {} with it",
                    svc.unit,
                    match svc.op {
                        super::ServiceOp::Reload => "reloaded",
                        super::ServiceOp::Restart => "restarted",
                    }
                )
            } else {
                format!("reloading it failed: {sum}")
            }
        );
    }
    s
}

/// Run the edit (the policy was checked by the executor).
#[allow(clippy::many_single_char_names)] // e(dit), p(review), f(ile), v(erify), x: one each
pub async fn apply(e: &ConfigEditAction, policy: &ExecPolicy) -> Executed {
    let t0 = Instant::now();
    let argv = ActionSpec::ConfigEdit(Box::new(e.clone())).argv();
    let fail = |summary: String, output: String| {
        Executed::from_result(result(argv.clone(), false, output, summary, t0))
    };
    let p = match preview(e) {
        Ok(p) => p,
        Err(x) => return fail(x, String::new()),
    };
    let mut out = p.diff.clone();
    if let Some(want) = &e.expect_sha256 {
        if !want.eq_ignore_ascii_case(&p.sha256) {
            return fail(
                format!(
                    "refused: {} changed since its diff was shown (sha256 {} then, {} now); nothing was written",
                    e.file,
                    short(want),
                    short(&p.sha256)
                ),
                out,
            );
        }
    }
    // A fresh name: two edits within one second must not share a backup.
    let base = rollback::saved_copy_path(&e.file);
    let created = (0..100).find_map(|n| {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&name)
            .ok()
            .map(|f| (name, f))
    });
    let Some((saved, mut f)) = created else {
        return fail(
            format!("refused: cannot create a backup beside {}", e.file),
            out,
        );
    };
    if let Err(x) = std::io::Write::write_all(&mut f, p.old.as_bytes()).and_then(|()| f.sync_all())
    {
        let _ = std::fs::remove_file(&saved);
        return fail(
            format!("refused: cannot write the backup {saved}: {x}"),
            out,
        );
    }
    let _ = writeln!(out, "backup: {saved}");
    // Between the hash and the write nothing else reads the file; re-check
    // right before writing to narrow the window of a concurrent edit.
    match std::fs::read(&p.file) {
        Ok(b) if sha256_hex(&b) == p.sha256 => {}
        _ => {
            return fail(
                format!("refused: {} changed while the backup was written", e.file),
                out,
            );
        }
    }
    if let Err(x) = write_in_place(&p.file, p.new.as_bytes()) {
        return fail(format!("refused: {x}"), out);
    }
    let _ = writeln!(out, "wrote {}", e.file);
    let svc = super::ServiceAction {
        op: reload_or_restart(e),
        ..(*e.service).clone()
    };
    let _ = writeln!(out, "{} {}", svc.op, svc.unit);
    // Config test on the edited file, then the graceful reload.
    let (ok, last, sum) = service_steps(&svc, policy, &mut out).await;
    if !ok {
        // A failed config test means the reload never ran: no reload after restoring.
        let tested = sum.starts_with("configuration test failed");
        let r = restore(
            e,
            &p.file,
            p.old.as_bytes(),
            &saved,
            policy,
            &mut out,
            !tested,
        )
        .await;
        return fail(format!("rolled back: {sum}; {r}"), out);
    }
    let mut summary = format!("edited {}: {sum}", e.file);
    if let Some(url) = &e.url {
        let v = verify_in_a_row(url).await;
        let _ = writeln!(out, "verify: {}", v.summary());
        if !recovered(&v) {
            let r = restore(e, &p.file, p.old.as_bytes(), &saved, policy, &mut out, true).await;
            return fail(
                format!(
                    "rolled back: {url} did not answer {VERIFY_PROBES} times in a row after the edit ({}); {r}",
                    v.summary()
                ),
                out,
            );
        }
        let _ = write!(
            summary,
            "; verified: {url} answered {VERIFY_PROBES} times in a row"
        );
    }
    let mut x = Executed::from_result(result(last, true, out, summary, t0));
    x.undo.push(UndoEntry {
        key: undo::file_key(&e.file),
        what: format!("{} is edited ({})", e.file, e.changes.join("; ")),
        how: format!(
            "restore {saved} over {}, test the config and {}",
            e.file,
            reload_or_restart(e)
        ),
        undo: Some(ActionSpec::Rollback(RollbackAction {
            file: e.file.clone(),
            backup: saved,
            service: Some(Box::new(super::ServiceAction {
                op: reload_or_restart(e),
                ..(*e.service).clone()
            })),
        })),
    });
    x
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx(text: &str, c: &str) -> Result<String, String> {
        edit_text(
            ConfigSyntax::Nginx,
            text,
            &[Change::parse(ConfigSyntax::Nginx, c).unwrap()],
        )
    }

    const SITE: &str = "server {\n    listen 8080;\n    location ~ \\.php$ {\n        include fastcgi_params;\n        fastcgi_pass unix:/run/php/php7.4-fpm.sock;  # old\n    }\n}\n";

    #[test]
    fn an_nginx_directive_is_set_where_the_parser_found_it() {
        let n = nginx(SITE, "@5 fastcgi_pass unix:/run/php/php8.2-fpm.sock").unwrap();
        assert_eq!(n, SITE.replace("php7.4", "php8.2"));
        // A wrong line is refused, not searched for.
        let e = nginx(SITE, "@4 fastcgi_pass unix:/x.sock").unwrap_err();
        assert!(
            e.contains("no `fastcgi_pass` directive starts at line 4"),
            "{e}"
        );
    }

    #[test]
    fn a_directive_is_added_to_a_block_or_replaced_there() {
        let n = nginx(SITE, "@3+ fastcgi_read_timeout 12s").unwrap();
        assert!(
            n.contains("location ~ \\.php$ {\n        fastcgi_read_timeout 12s;\n        include"),
            "{n}"
        );
        let again = nginx(&n, "@3+ fastcgi_read_timeout 30s").unwrap();
        assert_eq!(again, n.replace("12s", "30s"));
        assert!(
            nginx(SITE, "@2+ x 1")
                .unwrap_err()
                .contains("does not open a block")
        );
    }

    #[test]
    fn the_block_around_a_line_is_read_with_its_children() {
        let text = "http {\n  upstream app {\n    server 127.0.0.1:3000 max_fails=1;\n    keepalive 4;\n  }\n  server {\n    location / { proxy_pass http://app; }\n  }\n}\n";
        let b = nginx_block_around(text, 3).unwrap();
        assert_eq!(b.line, 2);
        assert_eq!(b.head, ["upstream", "app"]);
        assert_eq!(b.child("keepalive").unwrap().args, ["4"]);
        assert_eq!(b.child("keepalive").unwrap().line, 4);
        assert!(b.child("keepalive_timeout").is_none());
        let l = nginx_block_around(text, 7).unwrap();
        assert_eq!(l.head, ["location", "/"]);
        let h = nginx_block_around(text, 6).unwrap();
        assert_eq!(h.head, ["server"]);
        let all = nginx_blocks_around(text, 7).unwrap();
        let heads: Vec<&str> = all.iter().map(|b| b.head[0].as_str()).collect();
        assert_eq!(heads, ["location", "server", "http"]);
        assert!(nginx_block_around(text, 20).is_err());
    }

    #[test]
    fn files_the_parser_cannot_read_back_are_refused() {
        let e = nginx("server {\n    listen 80;\n", "@2 listen 81").unwrap_err();
        assert!(e.contains("not closed"), "{e}");
        let e = nginx("server {\n listen \"80\n", "@2 listen 81").unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
        let multi = "server {\n    listen 80\n        default_server;\n}\n";
        assert!(
            nginx(multi, "@2 listen 81")
                .unwrap_err()
                .contains("spans lines")
        );
    }

    #[test]
    fn a_php_fpm_key_is_set_in_its_pool_only() {
        let pool = "[global]\npm.max_children = 3\n\n[www]\nuser = www-data\npm = static\npm.max_children = 1 ; small\n\n[other]\npm.max_children = 2\n";
        let c = Change::parse(ConfigSyntax::PhpFpm, "[www] pm.max_children = 40").unwrap();
        let n = edit_text(ConfigSyntax::PhpFpm, pool, &[c]).unwrap();
        assert_eq!(
            n,
            pool.replace(
                "pm.max_children = 1 ; small",
                "pm.max_children = 40 ; small"
            )
        );
        let c = Change::parse(ConfigSyntax::PhpFpm, "[www] listen.mode = 0660").unwrap();
        let n = edit_text(ConfigSyntax::PhpFpm, pool, &[c]).unwrap();
        assert!(
            n.contains("pm.max_children = 1 ; small\nlisten.mode = 0660\n\n[other]"),
            "{n}"
        );
        let c = Change::parse(ConfigSyntax::PhpFpm, "[nope] pm = static").unwrap();
        assert!(
            edit_text(ConfigSyntax::PhpFpm, pool, &[c])
                .unwrap_err()
                .contains("not declared")
        );
    }

    #[test]
    fn only_discovered_files_are_edited_and_the_diff_is_shown() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("site.conf");
        std::fs::write(&f, SITE).unwrap();
        let fs = f.display().to_string();
        let mut e = ConfigEditAction {
            file: fs.clone(),
            syntax: Some(ConfigSyntax::Nginx),
            changes: vec!["@5 fastcgi_pass unix:/run/php/php8.2-fpm.sock".into()],
            allowed: vec![t.path().join("other.conf").display().to_string()],
            service: Box::new(super::super::ServiceAction {
                unit: "nginx".into(),
                op: super::super::ServiceOp::Reload,
                server: None,
                config: None,
                prefix: None,
                pid: None,
                pid_file: None,
            }),
            url: None,
            expect_sha256: None,
            reason: None,
        };
        assert!(
            preview(&e)
                .unwrap_err()
                .contains("not one of the running server's")
        );
        e.allowed = vec![fs.clone()];
        let p = preview(&e).unwrap();
        assert!(
            p.diff
                .contains("-        fastcgi_pass unix:/run/php/php7.4-fpm.sock;"),
            "{}",
            p.diff
        );
        assert!(
            p.diff
                .contains("+        fastcgi_pass unix:/run/php/php8.2-fpm.sock;"),
            "{}",
            p.diff
        );
        assert_eq!(p.sha256, sha256_hex(SITE.as_bytes()));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            SITE,
            "a preview writes nothing"
        );
    }
}
