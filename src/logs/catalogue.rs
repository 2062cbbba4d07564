//! The signature catalogue: data (`assets/signatures.toml` plus the operator's
//! own files) compiled into a two-level literal prefilter and an ordered regex list.
//!
//! Invariants: every signature has at least one literal that each of its
//! matches contains, and at least one example line that it matches and that
//! contains a literal; both are checked when the file loads, with the error
//! at `file:line:col`. Signatures are tried in order (operator files first,
//! then the built-ins, each in file order): the first regex that matches an
//! entry decides, so negative controls sit before the broad patterns.
//!
//! Start-up cost matters (a last-hour scan should take milliseconds): the
//! operator's files are compiled and checked eagerly, but the built-in
//! signatures, validated by the test `builtin_catalogue_is_valid`, compile
//! each regex on its first use ([`LazyRegex`]), and the first prefilter level
//! is a set of SIMD searchers that build in microseconds ([`super::prefilter`]).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::bytes::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::prefilter::Prefilter;
use crate::cause::Cause;
use crate::playbook::diagnostic::line_col;

/// The built-in catalogue, compiled in.
pub const BUILTIN: &str = include_str!("../../assets/signatures.toml");

/// Servers a signature may name in `server`.
pub const SERVERS: &[&str] = &[
    "any", "nginx", "apache", "php-fpm", "haproxy", "caddy", "kernel", "audit", "systemd",
    "gunicorn", "uwsgi", "iis",
];

/// How a signature decides its cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseRule {
    Fixed(Cause),
    /// From the errno and whether the peer is a unix socket (`[[errno]]` table).
    Errno,
    /// No cause of its own (a consequence, or a negative control).
    None,
}

/// A signature regex, compiled when first used.
///
/// Invariant: the pattern is known to compile: either it was compiled when
/// its file loaded (operator files), or it is a built-in one, all of which
/// the test `builtin_catalogue_is_valid` compiles and checks.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: String,
    compiled: OnceLock<Regex>,
}

impl LazyRegex {
    fn compiled(re: Regex) -> Self {
        LazyRegex {
            pattern: re.as_str().to_owned(),
            compiled: OnceLock::from(re),
        }
    }

    fn deferred(pattern: String) -> Self {
        LazyRegex {
            pattern,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled regex.
    pub fn get(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            // Only built-in patterns are deferred, and the test
            // `builtin_catalogue_is_valid` compiles every one of them.
            #[allow(clippy::expect_used)]
            Regex::new(&self.pattern).expect("built-in signature regexes compile (tested)")
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// One compiled signature.
#[derive(Debug, Clone)]
pub struct Signature {
    pub id: String,
    pub server: String,
    pub regex: LazyRegex,
    pub cause: CauseRule,
    /// A consequence of an earlier failure: never outranks a primary cause.
    pub secondary: bool,
    /// Looks related but is not a gateway failure (negative control).
    pub not_a_cause: bool,
    /// A consequence: the cause of the primary failure before it wins over its own.
    pub inherit: bool,
    /// Hooks for correlation (`super::correlate`): `premature_close`, `worker_timeout`,
    /// `worker_crash`, `worker_killed`, `oom_kill`, `mac_denial`.
    pub tags: Vec<String>,
    /// Other causes a match may mean (shown with the verdict).
    pub alternatives: Vec<Cause>,
    pub literals: Vec<String>,
    pub examples: Vec<String>,
    /// `file:line` where it was defined.
    pub origin: String,
}

impl Signature {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// A problem in a signature file, located at `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CatalogueError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    unmatched_literals: Vec<String>,
    #[serde(default)]
    errno: Vec<RawErrno>,
    #[serde(default)]
    signature: Vec<RawSignature>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrno {
    number: u32,
    tcp: Spanned<String>,
    unix: Spanned<String>,
    /// Other causes the errno may mean (the walk decides).
    #[serde(default)]
    alternatives: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    id: Spanned<String>,
    server: Spanned<String>,
    literals: Spanned<Vec<String>>,
    regex: Spanned<String>,
    #[serde(default)]
    cause: Option<Spanned<String>>,
    #[serde(default)]
    secondary: bool,
    #[serde(default)]
    not_a_cause: bool,
    /// A consequence that takes the cause of the primary failure just before
    /// it, its own `cause` only when there is none.
    #[serde(default)]
    inherit: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    alternatives: Vec<Spanned<String>>,
    examples: Spanned<Vec<Spanned<String>>>,
    /// Free text for maintainers (the source of the message).
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

const TAGS: &[&str] = &[
    "premature_close",
    "worker_timeout",
    "worker_crash",
    "worker_killed",
    "oom_kill",
    "mac_denial",
];

/// The compiled catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub signatures: Vec<Signature>,
    errno_tcp: HashMap<u32, Option<Cause>>,
    errno_unix: HashMap<u32, Option<Cause>>,
    errno_alternatives: HashMap<u32, Vec<Cause>>,
    /// First level: where some literal may start (SIMD, over reduced literals).
    pub(crate) prefilter: Prefilter,
    /// Second level: every literal of every signature, then the unmatched markers.
    pub(crate) literals: AhoCorasick,
    /// For each prefilter pattern: the signatures that own it (empty for markers).
    pub(crate) owners: Vec<Vec<u32>>,
    pub(crate) literal_count: usize,
    /// The literal strings, in prefilter order (for `rg`/`grep` comparisons).
    pub all_literals: Vec<String>,
    /// Unique per built catalogue (clones share it: same signatures): the
    /// template cache of [`super::classify`] belongs to one catalogue.
    pub(crate) id: u64,
}

/// Source of [`Catalogue::id`].
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An `[[errno]]` entry: number, cause on TCP, cause on a unix socket, alternatives.
type ErrnoRow = (u32, Option<Cause>, Option<Cause>, Vec<Cause>);

/// A parsed but not yet compiled file.
struct Parsed {
    unmatched: Vec<String>,
    errno: Vec<ErrnoRow>,
    sigs: Vec<Signature>,
}

fn err(file: &str, src: &str, offset: usize, message: impl Into<String>) -> CatalogueError {
    let (line, col) = line_col(src, offset);
    CatalogueError {
        file: file.to_owned(),
        line,
        col,
        message: message.into(),
    }
}

fn cause_or_none(
    file: &str,
    src: &str,
    s: &Spanned<String>,
) -> Result<Option<Cause>, CatalogueError> {
    if s.get_ref() == "none" {
        return Ok(None);
    }
    s.get_ref().parse::<Cause>().map(Some).map_err(|e| {
        err(
            file,
            src,
            s.span().start,
            format!("{e}; use one of the cause ids or \"none\""),
        )
    })
}

/// A list of cause ids (no `none`).
fn causes(file: &str, src: &str, ids: &[Spanned<String>]) -> Result<Vec<Cause>, CatalogueError> {
    let mut out = Vec::new();
    for id in ids {
        match cause_or_none(file, src, id)? {
            Some(c) => out.push(c),
            None => {
                return Err(err(
                    file,
                    src,
                    id.span().start,
                    "`alternatives` lists cause ids, not \"none\"",
                ));
            }
        }
    }
    Ok(out)
}

/// Parse one file. `trusted`: the built-in file, whose regexes and examples
/// the tests check, so its regexes are compiled on first use instead of now.
fn parse_file(file: &str, src: &str, trusted: bool) -> Result<Parsed, CatalogueError> {
    let raw: RawFile = toml::from_str(src).map_err(|e| {
        // Some limits (key nesting) come without a position: find the line.
        let at = e
            .span()
            .or_else(|| crate::playbook::diagnostic::locate_toml_error(src, e.message()))
            .map_or(0, |s| s.start);
        err(file, src, at, e.message().trim().to_owned())
    })?;
    let mut errno = Vec::new();
    for e in &raw.errno {
        errno.push((
            e.number,
            cause_or_none(file, src, &e.tcp)?,
            cause_or_none(file, src, &e.unix)?,
            causes(file, src, &e.alternatives)?,
        ));
    }
    let mut sigs = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for s in raw.signature {
        let at = |sp: std::ops::Range<usize>| sp.start;
        let id = s.id.get_ref().clone();
        if let Some(prev) = seen.insert(id.clone(), s.id.span().start) {
            let (l, _) = line_col(src, prev);
            return Err(err(
                file,
                src,
                at(s.id.span()),
                format!("signature id `{id}` is defined twice (first at line {l})"),
            ));
        }
        if !SERVERS.contains(&s.server.get_ref().as_str()) {
            return Err(err(
                file,
                src,
                at(s.server.span()),
                format!(
                    "unknown server `{}`; use one of: {}",
                    s.server.get_ref(),
                    SERVERS.join(", ")
                ),
            ));
        }
        let regex = if trusted {
            None
        } else {
            Some(Regex::new(s.regex.get_ref()).map_err(|e| {
                err(
                    file,
                    src,
                    at(s.regex.span()),
                    format!(
                        "invalid regex: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                )
            })?)
        };
        let cause = match &s.cause {
            None => CauseRule::None,
            Some(c) if c.get_ref() == "errno" => CauseRule::Errno,
            Some(c) => match cause_or_none(file, src, c)? {
                Some(c) => CauseRule::Fixed(c),
                None => CauseRule::None,
            },
        };
        if cause == CauseRule::None && !s.secondary && !s.not_a_cause {
            return Err(err(
                file,
                src,
                at(s.id.span()),
                format!(
                    "signature `{id}` has no cause: give `cause`, or mark it `secondary` or `not_a_cause`"
                ),
            ));
        }
        if s.inherit && !s.secondary {
            return Err(err(
                file,
                src,
                at(s.id.span()),
                format!("signature `{id}` is `inherit` but not `secondary`"),
            ));
        }
        if s.not_a_cause && cause != CauseRule::None {
            return Err(err(
                file,
                src,
                at(s.id.span()),
                format!("signature `{id}` is `not_a_cause` but names a cause"),
            ));
        }
        for t in &s.tags {
            if !TAGS.contains(&t.as_str()) {
                return Err(err(
                    file,
                    src,
                    at(s.id.span()),
                    format!("unknown tag `{t}`; known tags: {}", TAGS.join(", ")),
                ));
            }
        }
        let literals = s.literals.get_ref().clone();
        if literals.is_empty() || literals.iter().any(String::is_empty) {
            return Err(err(
                file,
                src,
                at(s.literals.span()),
                "`literals` needs at least one non-empty string that every match contains",
            ));
        }
        if s.examples.get_ref().is_empty() {
            return Err(err(
                file,
                src,
                at(s.examples.span()),
                "`examples` needs at least one real log line the regex matches",
            ));
        }
        let mut examples = Vec::new();
        for ex in s.examples.get_ref() {
            let text = ex.get_ref();
            if regex.as_ref().is_some_and(|r| !r.is_match(text.as_bytes())) {
                return Err(err(
                    file,
                    src,
                    at(ex.span()),
                    format!("the regex of `{id}` does not match this example"),
                ));
            }
            if !literals.iter().any(|l| text.contains(l.as_str())) {
                return Err(err(
                    file,
                    src,
                    at(ex.span()),
                    format!("this example of `{id}` contains none of its `literals`"),
                ));
            }
            examples.push(text.clone());
        }
        let alternatives = causes(file, src, &s.alternatives)?;
        let (line, _) = line_col(src, s.id.span().start);
        sigs.push(Signature {
            id,
            server: s.server.into_inner(),
            regex: match regex {
                Some(r) => LazyRegex::compiled(r),
                None => LazyRegex::deferred(s.regex.into_inner()),
            },
            cause,
            secondary: s.secondary,
            not_a_cause: s.not_a_cause,
            inherit: s.inherit,
            tags: s.tags,
            alternatives,
            literals,
            examples,
            origin: format!("{file}:{line}"),
        });
    }
    Ok(Parsed {
        unmatched: raw.unmatched_literals,
        errno,
        sigs,
    })
}

/// Where operator signature files are looked for, most specific first.
pub fn user_paths() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("playbooks/signatures.toml")];
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(crate::platform::config_home);
    if let Some(x) = xdg {
        v.push(x.join("triage502/signatures.toml"));
    }
    v.push(PathBuf::from("/etc/triage502/signatures.toml"));
    v
}

/// Largest signature file read (the built-in one is about 40 KiB).
const MAX_FILE: u64 = 4 << 20;

impl Catalogue {
    /// The built-in catalogue alone.
    pub fn builtin() -> &'static Catalogue {
        static CAT: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
        CAT.get_or_init(|| {
            // The asset is compiled in and validated by the test
            // `builtin_catalogue_is_valid`; failure is a build defect.
            #[allow(clippy::expect_used)]
            Catalogue::build(&[("assets/signatures.toml", BUILTIN)], true)
                .expect("assets/signatures.toml is valid (tested)")
        })
    }

    /// Operator files (in [`user_paths`] order, those that exist) before the built-ins.
    pub fn load_with_user_files() -> Result<Catalogue, CatalogueError> {
        Self::load_from(&user_paths())
    }

    /// The given operator files that exist, then the built-ins.
    pub fn load_from(paths: &[PathBuf]) -> Result<Catalogue, CatalogueError> {
        let mut texts = Vec::new();
        for p in paths {
            if let Some(t) = read_small(p)? {
                texts.push((p.display().to_string(), t));
            }
        }
        if texts.is_empty() {
            return Ok(Catalogue::builtin().clone());
        }
        let mut sources: Vec<(&str, &str)> = texts
            .iter()
            .map(|(f, t)| (f.as_str(), t.as_str()))
            .collect();
        sources.push(("assets/signatures.toml", BUILTIN));
        Catalogue::build(&sources, true)
    }

    /// Compile `(file name, text)` sources; earlier sources take precedence.
    /// Every regex is compiled and checked against its examples now.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Catalogue, CatalogueError> {
        Catalogue::build(sources, false)
    }

    /// [`Catalogue::from_sources`]; with `builtin_last_trusted`, the last
    /// source is the built-in file and its regexes compile on first use.
    fn build(
        sources: &[(&str, &str)],
        builtin_last_trusted: bool,
    ) -> Result<Catalogue, CatalogueError> {
        let mut sigs: Vec<Signature> = Vec::new();
        let mut errno_tcp = HashMap::new();
        let mut errno_unix = HashMap::new();
        let mut errno_alternatives = HashMap::new();
        let mut markers: Vec<String> = Vec::new();
        for (i, (file, src)) in sources.iter().enumerate() {
            let trusted = builtin_last_trusted && i + 1 == sources.len();
            let p = parse_file(file, src, trusted)?;
            for (n, t, u, a) in p.errno {
                errno_tcp.entry(n).or_insert(t);
                errno_unix.entry(n).or_insert(u);
                errno_alternatives.entry(n).or_insert(a);
            }
            for s in p.sigs {
                if sigs.iter().any(|o| o.id == s.id) {
                    // An operator signature with a built-in id replaces it.
                    continue;
                }
                sigs.push(s);
            }
            for m in p.unmatched {
                if !markers.contains(&m) {
                    markers.push(m);
                }
            }
        }
        let mut literals: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<u32>> = Vec::new();
        for (i, s) in sigs.iter().enumerate() {
            for l in &s.literals {
                if let Some(at) = literals.iter().position(|x| x == l) {
                    owners[at].push(i as u32);
                } else {
                    literals.push(l.clone());
                    owners.push(vec![i as u32]);
                }
            }
        }
        // Lines inside Docker's json-file records are JSON-escaped (`"` is
        // `\"`, `<` is `\u003c`), once or, nested, twice: the escaped forms
        // find the same signatures, so a scan of such a file misses nothing
        // that classifying its unwrapped lines finds.
        for i in 0..literals.len() {
            let mut v = literals[i].clone();
            for _ in 0..2 {
                let e = json_escape(&v);
                if e == v {
                    break;
                }
                let own = owners[i].clone();
                if let Some(at) = literals.iter().position(|x| *x == e) {
                    owners[at].extend(own);
                    owners[at].sort_unstable();
                    owners[at].dedup();
                } else {
                    literals.push(e.clone());
                    owners.push(own);
                }
                v = e;
            }
        }
        let literal_count = literals.len();
        for m in markers {
            if !literals.contains(&m) {
                literals.push(m);
                owners.push(Vec::new());
            }
        }
        let cannot = |e: aho_corasick::BuildError| CatalogueError {
            file: (*sources.first().map_or(&"", |s| &s.0)).to_owned(),
            line: 1,
            col: 1,
            message: format!("literals cannot be compiled: {e}"),
        };
        // Searched over every candidate entry: the DFA costs about 1.5 ms to
        // build and searches several times faster than the NFA (measured: the
        // NFA's overlapping search was a quarter of a whole-file scan). The
        // prefilter confirms its places with the same automaton.
        let literal_ac = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&literals)
            .map_err(cannot)?;
        let prefilter = Prefilter::with_automaton(&literals, literal_ac.clone());
        Ok(Catalogue {
            signatures: sigs,
            errno_tcp,
            errno_unix,
            errno_alternatives,
            prefilter,
            literals: literal_ac,
            owners,
            literal_count,
            all_literals: literals,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The cause an errno means on a TCP or a unix-socket peer; `None` when unknown.
    pub fn errno_cause(&self, errno: u32, unix: bool) -> Option<Cause> {
        let t = if unix {
            &self.errno_unix
        } else {
            &self.errno_tcp
        };
        t.get(&errno).copied().flatten()
    }

    /// Other causes an errno may mean besides its table entry.
    pub fn errno_alternatives(&self, errno: u32) -> &[Cause] {
        self.errno_alternatives
            .get(&errno)
            .map_or(&[], Vec::as_slice)
    }

    /// Literals that find signature candidates (markers excluded).
    pub fn signature_literals(&self) -> &[String] {
        &self.all_literals[..self.literal_count]
    }
}

/// A string as a JSON encoder that escapes HTML characters (Go's, Docker's) writes it.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

fn read_small(p: &Path) -> Result<Option<String>, CatalogueError> {
    use std::io::Read;
    let file = p.display().to_string();
    let at = |line: usize, col: usize, message: String| CatalogueError {
        file: file.clone(),
        line,
        col,
        message,
    };
    // Regular files only, opened without blocking (a FIFO or /dev/zero
    // named as a signature file is refused, never waited on or read forever).
    let f = match super::input::open(p) {
        Ok(o) => o.file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(1, 1, format!("cannot read: {e}"))),
    };
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| at(1, 1, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(at(1, 1, format!("larger than {} MiB", MAX_FILE >> 20)));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            let bytes = e.as_bytes();
            let bad = e.utf8_error().valid_up_to();
            let before = &bytes[..bad];
            let line = memchr::memchr_iter(b'\n', before).count() + 1;
            let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
            let col = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            Err(at(
                line,
                col,
                format!(
                    "invalid UTF-8 (byte 0x{:02X}): a signature file is UTF-8 text",
                    bytes.get(bad).copied().unwrap_or_default()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_is_valid() {
        let c = Catalogue::from_sources(&[("assets/signatures.toml", BUILTIN)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.signatures.len() > 40, "{}", c.signatures.len());
    }

    #[test]
    fn errors_point_at_file_line_col() {
        let src = "[[signature]]\nid = \"x\"\nserver = \"nginx\"\nliterals = [\"a\"]\nregex = \"a(\"\ncause = \"upstream_refused\"\nexamples = [\"a\"]\n";
        let e = Catalogue::from_sources(&[("mine.toml", src)]).unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.col), ("mine.toml", 5, 9), "{e}");
        assert!(e.message.contains("invalid regex"), "{e}");

        let src = src
            .replace("a(", "a")
            .replace("upstream_refused", "upstream_refsed");
        let e = Catalogue::from_sources(&[("mine.toml", &src)]).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("unknown cause id"), "{e}");

        let src = src
            .replace("upstream_refsed", "upstream_refused")
            .replace("[\"a\"]\n", "[\"b\"]\n");
        let e = Catalogue::from_sources(&[("mine.toml", &src)]).unwrap_err();
        assert!(e.to_string().starts_with("mine.toml:"), "{e}");

        let e = Catalogue::from_sources(&[("mine.toml", "[[signature]]\nid = 3\n")]).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn user_signatures_come_first_and_may_replace_builtins() {
        let mine = "[[signature]]\nid = \"local.app_down\"\nserver = \"any\"\nliterals = [\"MyApp backend gone\"]\nregex = \"MyApp backend gone\"\ncause = \"upstream_refused\"\nexamples = [\"2024-03-14T09:22:07Z MyApp backend gone\"]\n";
        let c =
            Catalogue::from_sources(&[("mine.toml", mine), ("assets/signatures.toml", BUILTIN)])
                .unwrap();
        assert_eq!(c.signatures[0].id, "local.app_down");
        assert!(c.signatures[0].origin.starts_with("mine.toml:2"));
    }
}
