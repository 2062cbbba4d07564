//! Where playbooks come from: the search path and the embedded defaults.
//!
//! Order, first wins: `--playbook FILE`, `./playbooks/`,
//! `$XDG_CONFIG_HOME/triage502/playbooks/`, `/etc/triage502/playbooks/`,
//! then the playbooks compiled into the binary. A file whose id matches an
//! embedded playbook shadows it, and the listing says so.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Playbook;
use super::diagnostic::{Diagnostic, Level, Rendered};
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
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("{}: not a regular file", path.display()));
        }
        if meta.len() > MAX_PLAYBOOK_BYTES {
            return Err(format!(
                "{}: {} bytes is larger than a playbook can be ({MAX_PLAYBOOK_BYTES})",
                path.display(),
                meta.len()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "{}: not UTF-8 text (byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        Ok(Source {
            origin: Origin::File(path.to_owned()),
            text,
        })
    }
}

/// Playbooks larger than this are refused before parsing.
pub const MAX_PLAYBOOK_BYTES: u64 = 4 * 1024 * 1024;

/// The directories searched, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("playbooks")];
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
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
    for p in paths {
        match Source::read(p) {
            Ok(s) => sources.push(s),
            Err(e) => out.push((
                Source {
                    origin: Origin::File(p.clone()),
                    text: String::new(),
                },
                Loaded {
                    playbook: None,
                    diagnostics: vec![Diagnostic::error(e, None)],
                },
            )),
        }
    }
    let mut ids: HashSet<String> = discover(&search_dirs())
        .iter()
        .filter_map(|s| declared_id(&s.text))
        .collect();
    ids.extend(sources.iter().filter_map(|s| declared_id(&s.text)));
    for s in sources {
        let l = load(&s.text, &ids);
        out.push((s, l));
    }
    out
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
