//! Where playbooks come from: the search path and the embedded defaults.
//!
//! Order, first wins: `--playbook FILE`, `./playbooks/`,
//! `$XDG_CONFIG_HOME/triage502/playbooks/`, `/etc/triage502/playbooks/`,
//! then the playbooks compiled into the binary. A file whose id matches an
//! embedded playbook shadows it, and the listing says so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Playbook;
use super::diagnostic::{Diagnostic, Level, Rendered, utf8_error_at};
use super::load::{Loaded, load};

/// The playbooks shipped inside the binary: (file name, source).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("502.toml", include_str!("../../playbooks/502.toml")),
    ("php-fpm.toml", include_str!("../../playbooks/php-fpm.toml")),
    (
        "wordpress.toml",
        include_str!("../../playbooks/wordpress.toml"),
    ),
    ("cdn.toml", include_str!("../../playbooks/cdn.toml")),
];

/// Where a playbook was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Embedded(&'static str),
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded(name) => write!(f, "embedded:{name}"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One playbook source: where it is and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

impl Source {
    /// A printable name for diagnostics.
    pub fn name(&self) -> String {
        self.origin.to_string()
    }

    pub fn read(path: &Path) -> Result<Source, String> {
        let bytes = read_capped(path)?;
        if let Some((line, col, byte)) = utf8_error_at(&bytes) {
            return Err(format!(
                "{}:{line}:{col}: invalid UTF-8 (byte 0x{byte:02X}): a playbook is UTF-8 text",
                path.display()
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Source {
            origin: Origin::File(path.to_owned()),
            text,
        })
    }
}

/// The bytes of a playbook file: a regular file (checked before opening,
/// so a FIFO is never waited on) of at most [`MAX_PLAYBOOK_BYTES`], read
/// with that cap too (a file growing meanwhile cannot exceed it).
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let too_big = |n: u64| {
        format!(
            "{}: {n} bytes is larger than a playbook can be ({MAX_PLAYBOOK_BYTES})",
            path.display()
        )
    };
    if meta.len() > MAX_PLAYBOOK_BYTES {
        return Err(too_big(meta.len()));
    }
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_PLAYBOOK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PLAYBOOK_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Playbooks larger than this are refused before parsing.
pub const MAX_PLAYBOOK_BYTES: u64 = 4 * 1024 * 1024;

/// The directories searched, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("playbooks")];
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(crate::platform::config_home);
    if let Some(x) = xdg {
        dirs.push(x.join("triage502").join("playbooks"));
    }
    dirs.push(PathBuf::from("/etc/triage502/playbooks"));
    dirs
}

/// All candidate sources: files on the search path (in order), then embedded.
pub fn discover(dirs: &[PathBuf]) -> Vec<Source> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(s) = Source::read(&f) {
                out.push(s);
            }
        }
    }
    out.extend(EMBEDDED.iter().map(|(name, text)| Source {
        origin: Origin::Embedded(name),
        text: (*text).to_owned(),
    }));
    out
}

/// The id a source declares, read cheaply (before full validation).
pub fn declared_id(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("id")?.as_str().map(str::to_owned)
}

/// An entry of `playbook list`.
#[derive(Debug, Clone)]
pub struct Listing {
    pub id: String,
    pub title: String,
    pub origin: Origin,
    /// Sources with the same id that this one hides.
    pub shadows: Vec<Origin>,
    pub valid: bool,
}

/// A loaded set of playbooks by id, ready for the engine.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub playbooks: BTreeMap<String, Arc<Playbook>>,
    pub listing: Vec<Listing>,
}

/// A source that failed to load, with its rendered diagnostics.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub name: String,
    pub rendered: String,
}

impl Library {
    /// Load `sources` in priority order: the first source of an id wins.
    pub fn from_sources(sources: Vec<Source>) -> (Library, Vec<LoadFailure>) {
        let mut by_id: BTreeMap<String, Vec<Source>> = BTreeMap::new();
        let mut order = Vec::new();
        let mut failures = Vec::new();
        for s in sources {
            if let Some(id) = declared_id(&s.text) {
                if !by_id.contains_key(&id) {
                    order.push(id.clone());
                }
                by_id.entry(id).or_default().push(s);
            } else {
                let l = load(&s.text, &HashSet::new());
                failures.push(LoadFailure {
                    name: s.name(),
                    rendered: render_all(&s, &l.diagnostics),
                });
            }
        }
        let ids: HashSet<String> = by_id.keys().cloned().collect();
        let mut lib = Library::default();
        for id in order {
            let mut group = by_id.remove(&id).unwrap_or_default();
            if group.is_empty() {
                continue;
            }
            let winner = group.remove(0);
            let loaded = load(&winner.text, &ids);
            let valid = !loaded.has_errors();
            let title = loaded
                .playbook
                .as_ref()
                .map_or_else(String::new, |p| p.title.clone());
            lib.listing.push(Listing {
                id: id.clone(),
                title,
                origin: winner.origin.clone(),
                shadows: group.iter().map(|s| s.origin.clone()).collect(),
                valid,
            });
            match loaded.playbook {
                Some(p) if valid => {
                    lib.playbooks.insert(id, Arc::new(p));
                }
                _ => failures.push(LoadFailure {
                    name: winner.name(),
                    rendered: render_all(&winner, &loaded.diagnostics),
                }),
            }
        }
        (lib, failures)
    }

    /// The library from the standard search path, with `extra` files first.
    pub fn standard(extra: &[PathBuf]) -> Result<(Library, Vec<LoadFailure>), String> {
        let mut sources = Vec::new();
        for p in extra {
            sources.push(Source::read(p)?);
        }
        sources.extend(discover(&search_dirs()));
        Ok(Library::from_sources(sources))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Playbook>> {
        self.playbooks.get(id)
    }

    /// The ids every playbook calls, transitively; a cycle of calls is reported.
    pub fn call_cycles(&self) -> Vec<Vec<String>> {
        let mut cycles = Vec::new();
        for start in self.playbooks.keys() {
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut steps = 0;
            while let Some((id, path)) = stack.pop() {
                steps += 1;
                if steps > 10_000 {
                    break;
                }
                let Some(pb) = self.playbooks.get(&id) else {
                    continue;
                };
                for n in &pb.nodes {
                    if let super::NodeKind::Call { playbook, .. } = &n.kind {
                        if playbook == start {
                            let mut c = path.clone();
                            c.push(start.clone());
                            cycles.push(c);
                        } else if !path.contains(playbook) {
                            let mut p = path.clone();
                            p.push(playbook.clone());
                            stack.push((playbook.clone(), p));
                        }
                    }
                }
            }
        }
        cycles
    }
}

/// Render every diagnostic of a source, errors first.
pub fn render_all(src: &Source, diags: &[Diagnostic]) -> String {
    let name = src.name();
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| {
        (
            d.level != Level::Error,
            d.span.as_ref().map_or(0, |s| s.start),
        )
    });
    let mut out = String::new();
    for d in sorted {
        out.push_str(
            &Rendered {
                file: &name,
                src: &src.text,
                diag: d,
            }
            .to_string(),
        );
    }
    out
}

/// Validate files as `playbook validate` does: all ids on the search path
/// (and the given files) may be called.
pub fn validate_files(paths: &[PathBuf]) -> Vec<(Source, Loaded)> {
    let mut sources = Vec::new();
    let mut out = Vec::new();
    let unreadable = |p: &PathBuf, text: String, d: Diagnostic| {
        (
            Source {
                origin: Origin::File(p.clone()),
                text,
            },
            Loaded {
                playbook: None,
                diagnostics: vec![d],
            },
        )
    };
    for p in paths {
        match read_capped(p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => sources.push(Source {
                    origin: Origin::File(p.clone()),
                    text,
                }),
                Err(e) => {
                    // Shown at its place: the lossy text keeps every offset before it.
                    let at = e.utf8_error().valid_up_to();
                    let byte = e.as_bytes().get(at).copied().unwrap_or_default();
                    let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    let d = Diagnostic::error(
                        format!("invalid UTF-8 (byte 0x{byte:02X}): a playbook is UTF-8 text"),
                        Some(at..at + 1),
                    );
                    out.push(unreadable(p, text, d));
                }
            },
            Err(e) => out.push(unreadable(p, String::new(), Diagnostic::error(e, None))),
        }
    }
    let others = discover(&search_dirs());
    let mut ids: HashSet<String> = others.iter().filter_map(|s| declared_id(&s.text)).collect();
    ids.extend(sources.iter().filter_map(|s| declared_id(&s.text)));
    let mut loaded = Vec::new();
    for s in sources {
        let l = load(&s.text, &ids);
        loaded.push((s, l));
    }
    // Calls across playbooks: the given files first, then the search path
    // and the embedded ones (first of an id wins, as when walking).
    let mut graph: HashMap<String, Vec<String>> = HashMap::new();
    for (_, l) in &loaded {
        if let Some(pb) = &l.playbook {
            graph.entry(pb.id.clone()).or_insert_with(|| callees(pb));
        }
    }
    for s in &others {
        if let Some(id) = declared_id(&s.text)
            && !graph.contains_key(&id)
            && let Some(pb) = load(&s.text, &ids).playbook
        {
            graph.insert(id, callees(&pb));
        }
    }
    for (s, l) in &mut loaded {
        if let Some(pb) = &l.playbook
            && let Some(d) = call_problem(&pb.id, &graph, &s.text)
        {
            l.diagnostics.push(d);
        }
    }
    out.extend(loaded);
    out
}

/// Sub-playbook calls nest at most this deep (the caller counts as one).
pub const MAX_CALL_DEPTH: usize = 16;

/// The playbooks a playbook's `call` nodes name, in order, without repeats.
fn callees(pb: &Playbook) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for n in &pb.nodes {
        if let super::NodeKind::Call { playbook, .. } = &n.kind
            && !v.contains(playbook)
        {
            v.push(playbook.clone());
        }
    }
    v
}

/// A cycle of calls reachable from `start`, or a chain of calls deeper than
/// [`MAX_CALL_DEPTH`], as an error at `start`'s first `call` on that path.
/// Iterative depth-first search; each playbook is finished once, so the
/// cost is linear in the calls whatever the graph.
fn call_problem(
    start: &str,
    graph: &HashMap<String, Vec<String>>,
    src: &str,
) -> Option<Diagnostic> {
    let none: Vec<String> = Vec::new();
    let kids = |id: &str| graph.get(id).unwrap_or(&none);
    // Longest chain of calls from a finished playbook, counting itself.
    let mut below: HashMap<&str, usize> = HashMap::new();
    let mut path: Vec<(&str, usize)> = vec![(start, 0)];
    const CYCLE_HINT: &str = "a `call` runs the other playbook to its end and comes back: make the chain end without returning to a caller";
    const DEPTH_HINT: &str = "flatten the chain: let a playbook route to the steps it needs instead of calling through many levels";
    let problem: Option<(String, Vec<&str>, &str)> = loop {
        let Some(&(id, i)) = path.last() else {
            break None;
        };
        let ks = kids(id);
        if let Some(k) = ks.get(i) {
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let k = k.as_str();
            let names = || path.iter().map(|(p, _)| *p).collect::<Vec<_>>();
            if let Some(pos) = path.iter().position(|(p, _)| *p == k) {
                let mut c = names();
                c.push(k);
                let msg = format!(
                    "calls form a cycle: {} (a sub-playbook must not call back into a playbook that called it)",
                    c[pos..].join(" → ")
                );
                break Some((msg, c, CYCLE_HINT));
            }
            let depth = path.len() + below.get(k).copied().unwrap_or(1);
            if depth > MAX_CALL_DEPTH {
                let mut c = names();
                c.push(k);
                let msg = format!(
                    "calls nest {depth} playbooks deep, more than {MAX_CALL_DEPTH}: {}{}",
                    c.join(" → "),
                    if below.get(k).copied().unwrap_or(1) > 1 {
                        " → …"
                    } else {
                        ""
                    }
                );
                break Some((msg, c, DEPTH_HINT));
            }
            if !below.contains_key(k) {
                path.push((k, 0));
            }
        } else {
            let d = 1 + ks
                .iter()
                .filter_map(|k| below.get(k.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            below.insert(id, d);
            path.pop();
        }
    };
    let (msg, chain, hint) = problem?;
    let first = chain.get(1).copied().unwrap_or(start);
    Some(Diagnostic::error(msg, call_span(src, first)).hint(hint))
}

/// The span of the first `call = "ID"` in `src`.
fn call_span(src: &str, id: &str) -> Option<std::ops::Range<usize>> {
    let mut from = 0;
    while let Some(i) = src[from..].find("call") {
        let at = from + i;
        let rest = src[at + 4..].trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            let v_at = src.len() - r.len();
            for q in ['"', '\''] {
                if r.strip_prefix(q)
                    .and_then(|r| r.strip_prefix(id))
                    .is_some_and(|r| r.starts_with(q))
                {
                    return Some(v_at..v_at + id.len() + 2);
                }
            }
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_playbook_validates_without_warnings() {
        let (lib, failures) = Library::from_sources(discover(&[]));
        assert!(
            failures.is_empty(),
            "{}",
            failures
                .iter()
                .map(|f| f.rendered.clone())
                .collect::<String>()
        );
        for (name, text) in EMBEDDED {
            let ids: HashSet<String> = lib.playbooks.keys().cloned().collect();
            let l = load(text, &ids);
            let src = Source {
                origin: Origin::Embedded(name),
                text: (*text).to_owned(),
            };
            assert!(
                l.diagnostics.is_empty(),
                "{}",
                render_all(&src, &l.diagnostics)
            );
        }
        assert!(lib.get("502").is_some());
        assert!(lib.call_cycles().is_empty(), "{:?}", lib.call_cycles());
    }

    #[test]
    fn a_file_shadows_the_embedded_playbook_with_the_same_id() {
        let own = EMBEDDED[0].1.replace("title = \"", "title = \"Ours: ");
        let sources = vec![Source {
            origin: Origin::File("mine/502.toml".into()),
            text: own,
        }]
        .into_iter()
        .chain(discover(&[]))
        .collect();
        let (lib, _) = Library::from_sources(sources);
        let entry = lib.listing.iter().find(|l| l.id == "502").unwrap();
        assert_eq!(entry.origin, Origin::File("mine/502.toml".into()));
        assert_eq!(entry.shadows, vec![Origin::Embedded("502.toml")]);
        assert!(lib.get("502").unwrap().title.starts_with("Ours: "));
    }
}
