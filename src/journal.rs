//! The crash-safe session journal and resume.
//!
//! Every event of a session is appended as one JSON line to
//! `$XDG_STATE_HOME/triage502/sessions/<id>.jsonl` (default
//! `~/.local/state/triage502/sessions/`), written with a single `write` and
//! `fsync`ed (`sync_data`) before the next event, so a crash or `kill -9`
//! loses at most the event in flight and never corrupts earlier lines.
//!
//! Invariants: a line is complete only when it ends in `\n`; an unterminated
//! (torn) tail is ignored on load and cut off before anything is appended
//! again. The engine state is a pure function of the start values and the
//! inputs, so a session is rebuilt by collecting the `Input` events (a `Back`
//! event pops the last one) and replaying them: completed actions are
//! recorded inputs and are never executed again. Files and the directory are
//! private to the user (0600/0700): they hold unredacted evidence.
//!
//! A front end journals like this: `Journal::create(meta_for(&engine, url,
//! read_only))` at the start (or `resume(id)` to pick a session up again),
//! `journal.input(&input)` after every accepted `engine.step(input)`,
//! `journal.back()` after `engine.back()`, `journal.note(text, node)` for the
//! operator's notes and `journal.end(&engine)` when the effect is `Done`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{Effect, Engine, EngineError, Input};
use crate::playbook::EndKind;
use crate::playbook::library::Library;
use crate::report::Status;

/// A journal larger than this is refused on load (a runaway or foreign file).
pub const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;
/// At most this many sessions are listed (newest first).
pub const MAX_LISTED: usize = 500;
/// Check results older than this at the end of a journal are run again on resume.
pub const STALE_CHECKS: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// What a journal operation could not do.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a journal event: {message}")]
    Corrupt {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: the journal has no start event")]
    NoStart { path: String },
    #[error("no saved session{}", .0.as_deref().map(|i| format!(" `{i}`")).unwrap_or_default())]
    NotFound(Option<String>),
    #[error("cannot rebuild session `{id}`: {message}")]
    Rebuild { id: String, message: String },
    #[error("no state directory: set XDG_STATE_HOME or HOME")]
    NoStateDir,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The first event: what the session is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub url: Option<String>,
    pub playbook: String,
    pub playbook_version: String,
    /// The playbook file given with `--playbook FILE`, so resume loads the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_file: Option<PathBuf>,
    pub host: String,
    /// `PRETTY_NAME` from /etc/os-release, when readable.
    #[serde(default)]
    pub os: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// The operator's values; values whose name looks secret are stored as `[REDACTED]`.
    pub initial_values: BTreeMap<String, String>,
    pub read_only: bool,
    #[serde(default)]
    pub tool_version: String,
}

/// One thing that happened in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Start(Meta),
    /// An engine input: check results with evidence, an answer, continue, an action result or refusal.
    Input(Input),
    /// The operator went back: the last input is undone.
    Back {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A note the operator typed, at a node.
    Note {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// A hop to an upstream's host over ssh: how it went, the exact commands, its temporary
    /// directory and whether it was removed (the undo of the copy).
    Hop {
        hop: Box<crate::hop::Hop>,
        /// The findings established there (each with its `host`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        findings: Vec<crate::engine::Finding>,
    },
    /// The session was picked up again (after an SSH drop or a crash).
    Resumed {
        pid: u32,
    },
    End {
        status: Status,
        end: Option<EndKind>,
    },
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, when the event was written.
    pub at: String,
    pub event: Event,
}

impl Entry {
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.at.parse().ok()
    }
}

/// A journal read back.
#[derive(Debug, Clone)]
pub struct Session {
    pub path: PathBuf,
    pub meta: Meta,
    /// Every event after the start, in order.
    pub events: Vec<Entry>,
    /// The last line was incomplete (cut by a crash) and was ignored.
    pub torn: bool,
}

impl Session {
    /// The engine inputs in effect: `Back` events undo the input before them.
    pub fn inputs(&self) -> Vec<Input> {
        let mut v = Vec::new();
        for e in &self.events {
            match &e.event {
                Event::Input(i) => v.push(i.clone()),
                Event::Back { .. } => {
                    v.pop();
                }
                _ => {}
            }
        }
        v
    }

    /// How the session ended, if it did.
    pub fn end(&self) -> Option<(Status, Option<EndKind>)> {
        self.events.iter().rev().find_map(|e| match &e.event {
            Event::End { status, end } => Some((*status, *end)),
            _ => None,
        })
    }

    pub fn last_at(&self) -> String {
        self.events
            .last()
            .map_or_else(|| self.meta.started_at.clone(), |e| e.at.clone())
    }

    pub fn summary(&self) -> SessionSummary {
        SessionSummary {
            id: self.meta.id.clone(),
            url: self.meta.url.clone(),
            started: self.meta.started_at.clone(),
            last_event: self.last_at(),
            status: match self.end() {
                Some((s, Some(EndKind::Escalate))) => format!("{} (escalate)", status_str(s)),
                Some((s, _)) => status_str(s).to_owned(),
                None => "in progress".into(),
            },
            path: self.path.clone(),
        }
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Problem => "problem",
        Status::Healthy => "healthy",
        Status::Inconclusive => "inconclusive",
    }
}

/// One row of `triage502 sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub url: Option<String>,
    pub started: String,
    pub last_event: String,
    /// `in progress`, `problem`, `healthy (resolved)`, ...
    pub status: String,
    pub path: PathBuf,
}

/// The directory sessions are kept in.
pub fn sessions_dir() -> Result<PathBuf, JournalError> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(crate::platform::state_home)
        .ok_or(JournalError::NoStateDir)?;
    Ok(base.join("triage502").join("sessions"))
}

/// The path of session `id`.
pub fn session_path(id: &str) -> Result<PathBuf, JournalError> {
    Ok(sessions_dir()?.join(format!("{id}.jsonl")))
}

/// The machine's host name.
pub fn host_name() -> String {
    crate::platform::host_name().unwrap_or_else(|| "unknown".into())
}

/// `PRETTY_NAME` from /etc/os-release.
pub fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().take(200).find_map(|l| {
        l.strip_prefix("PRETTY_NAME=")
            .map(|v| v.trim().trim_matches('"').to_owned())
    })
}

/// Whether a value's name says it holds a secret (it is not written to the journal).
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|k| n.contains(k))
}

/// A new session id: UTC start time (sorts chronologically) and a per-process suffix.
fn new_id(now: jiff::Timestamp) -> String {
    let t = now.strftime("%Y%m%dT%H%M%SZ");
    let salt = u64::from(std::process::id()) ^ u64::from(now.subsec_nanosecond().unsigned_abs());
    format!("{t}-{:04x}", salt & 0xffff)
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    id: String,
}

impl Journal {
    /// Start a new session journal and write its start event. `meta.id` and
    /// `meta.started_at` are filled in when empty.
    pub fn create(mut meta: Meta) -> Result<Journal, JournalError> {
        let dir = sessions_dir()?;
        Self::create_in(&dir, &mut meta)
    }

    /// [`Journal::create`] in a given directory.
    pub fn create_in(dir: &Path, meta: &mut Meta) -> Result<Journal, JournalError> {
        use crate::platform::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
        let now = jiff::Timestamp::now();
        if meta.started_at.is_empty() {
            meta.started_at = now.to_string();
        }
        if meta.id.is_empty() {
            meta.id = new_id(now);
        }
        for (k, v) in &mut meta.initial_values {
            if secret_name(k) {
                crate::redact::MASK.clone_into(v);
            }
        }
        // Bounded: a clash needs another process with the same second and salt.
        let mut file = None;
        for attempt in 0..20u32 {
            let id = if attempt == 0 {
                meta.id.clone()
            } else {
                format!("{}-{attempt}", meta.id)
            };
            let path = dir.join(format!("{id}.jsonl"));
            match OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => {
                    meta.id = id;
                    file = Some((f, path));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let Some((file, path)) = file else {
            return Err(io_err(dir)(std::io::Error::other(
                "cannot pick a free session id",
            )));
        };
        // Make the new directory entry durable too.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let mut j = Journal {
            path,
            file,
            id: meta.id.clone(),
        };
        j.append(&Event::Start(meta.clone()))?;
        Ok(j)
    }

    /// Reopen a journal for appending, cutting off a torn last line first.
    pub fn reopen(path: &Path) -> Result<(Journal, Session), JournalError> {
        let session = load(path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_JOURNAL_BYTES)
            .read_to_end(&mut bytes)
            .map_err(io_err(path))?;
        // Keep every line that parses; `load` already refused a bad line before the last,
        // so this cuts an unterminated tail or a garbled last line.
        let mut keep = 0;
        let mut at = 0;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            at += line.len();
            if line.ends_with(b"\n") && serde_json::from_slice::<Entry>(line).is_ok() {
                keep = at;
            }
        }
        if keep < bytes.len() {
            file.set_len(keep as u64).map_err(io_err(path))?;
            file.sync_data().map_err(io_err(path))?;
        }
        file.seek(std::io::SeekFrom::End(0)).map_err(io_err(path))?;
        Ok((
            Journal {
                path: path.to_owned(),
                file,
                id: session.meta.id.clone(),
            },
            session,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Append one event: one write of one line, then `fsync` of the data.
    pub fn append(&mut self, event: &Event) -> Result<(), JournalError> {
        let entry = Entry {
            at: jiff::Timestamp::now().to_string(),
            event: event.clone(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| JournalError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Append an engine input.
    pub fn input(&mut self, input: &Input) -> Result<(), JournalError> {
        self.append(&Event::Input(input.clone()))
    }

    /// Append an operator note taken at `node`.
    pub fn note(&mut self, text: &str, node: Option<&str>) -> Result<(), JournalError> {
        self.append(&Event::Note {
            text: text.to_owned(),
            node: node.map(str::to_owned),
        })
    }

    /// Append that the operator went back one step (after `engine.back()`).
    pub fn back(&mut self) -> Result<(), JournalError> {
        self.append(&Event::Back { reason: None })
    }

    /// Append the end of the walk.
    pub fn end(&mut self, engine: &Engine) -> Result<(), JournalError> {
        let end = match engine.effect() {
            Effect::Done(c) => c.end,
            _ => None,
        };
        self.append(&Event::End {
            status: crate::report::status(engine),
            end,
        })
    }
}

/// Read a journal. A torn (unterminated or unparseable) last line is ignored
/// and reported as `torn`; a bad line before the last is an error naming it.
pub fn load(path: &Path) -> Result<Session, JournalError> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut bytes = Vec::new();
    f.take(MAX_JOURNAL_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    let name = path.display().to_string();
    let (complete, mut torn) = if let Some(i) = bytes.iter().rposition(|b| *b == b'\n') {
        (&bytes[..=i], i + 1 < bytes.len())
    } else {
        (&bytes[..0], !bytes.is_empty())
    };
    let lines: Vec<&[u8]> = complete.split(|b| *b == b'\n').collect();
    // `split` yields an empty piece after the final newline.
    let n = lines.len().saturating_sub(1);
    let mut entries = Vec::with_capacity(n);
    for (i, line) in lines.iter().take(n).enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(e) => entries.push(e),
            Err(_) if i + 1 == n && !torn => {
                // A last line that is complete but garbled (a crash mid-sector): torn.
                torn = true;
            }
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: name,
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    let mut it = entries.into_iter();
    let Some(Entry {
        event: Event::Start(meta),
        ..
    }) = it.next()
    else {
        return Err(JournalError::NoStart { path: name });
    };
    Ok(Session {
        path: path.to_owned(),
        meta,
        events: it.collect(),
        torn,
    })
}

/// The journal files in `dir`, newest first, at most `limit`.
pub fn paths_in(dir: &Path, limit: usize) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    // Ids start with the UTC start time, so names sort chronologically.
    paths.sort();
    paths.reverse();
    paths.truncate(limit);
    paths
}

/// The saved sessions in `dir`, newest first (unreadable files are skipped).
pub fn list_in(dir: &Path) -> Vec<SessionSummary> {
    paths_in(dir, MAX_LISTED)
        .iter()
        .filter_map(|p| load(p).ok())
        .map(|s| s.summary())
        .collect()
}

/// The saved sessions, newest first.
pub fn list() -> Vec<SessionSummary> {
    sessions_dir().map(|d| list_in(&d)).unwrap_or_default()
}

/// The journal path of session `id`, or of the newest session when `None`.
/// An id may be abbreviated to any unique prefix.
pub fn find(id: Option<&str>) -> Result<PathBuf, JournalError> {
    let dir = sessions_dir()?;
    let all = list_in(&dir);
    match id {
        None | Some("" | "latest") => all
            .first()
            .map(|s| s.path.clone())
            .ok_or(JournalError::NotFound(None)),
        Some(id) => {
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(JournalError::NotFound(Some(id.to_owned())));
            }
            let exact = dir.join(format!("{id}.jsonl"));
            if exact.is_file() {
                return Ok(exact);
            }
            let hits: Vec<_> = all.iter().filter(|s| s.id.starts_with(id)).collect();
            match hits.as_slice() {
                [one] => Ok(one.path.clone()),
                _ => Err(JournalError::NotFound(Some(id.to_owned()))),
            }
        }
    }
}

/// What [`rebuild`] did besides replaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The last check results were older than [`STALE_CHECKS`] and were dropped, so they run again.
    pub dropped_stale_checks: bool,
}

/// Rebuild the engine of a saved session with `library`. When the session
/// has not ended and its last input is check results older than
/// [`STALE_CHECKS`] (at `now`), they are dropped so the checks run again.
pub fn rebuild(
    library: Arc<Library>,
    session: &Session,
    overrides: &BTreeMap<String, String>,
    now: jiff::Timestamp,
) -> Result<(Engine, Rebuilt), JournalError> {
    let mut inputs = session.inputs();
    let mut dropped = false;
    if session.end().is_none() {
        if let Some(Input::ChecksDone(_)) = inputs.last() {
            let at = session
                .events
                .iter()
                .rev()
                .find(|e| matches!(e.event, Event::Input(_)))
                .and_then(Entry::timestamp);
            let stale = at.is_none_or(|t| now.duration_since(t) > STALE_CHECKS);
            if stale {
                inputs.pop();
                dropped = true;
            }
        }
    }
    let mut values = session.meta.initial_values.clone();
    for (k, v) in overrides {
        values.insert(k.clone(), v.clone());
    }
    if let Some((k, _)) = values
        .iter()
        .find(|(_, v)| v.as_str() == crate::redact::MASK)
    {
        return Err(JournalError::Rebuild {
            id: session.meta.id.clone(),
            message: format!("`{k}` is a secret and was not journalled: pass --var {k}=VALUE"),
        });
    }
    let rebuild_err = |e: EngineError| JournalError::Rebuild {
        id: session.meta.id.clone(),
        message: e.to_string(),
    };
    let engine =
        Engine::replay(library, &session.meta.playbook, values, &inputs).map_err(rebuild_err)?;
    Ok((
        engine,
        Rebuilt {
            dropped_stale_checks: dropped,
        },
    ))
}

/// Resume a saved session (the newest when `id` is `None`): the journal is
/// reopened for appending, the walk rebuilt from it (stale trailing check
/// results dropped so they run again; completed actions are inputs, never
/// re-executed) and a `Resumed` event written. The caller continues from
/// `engine.effect()` and appends every further input to the journal.
pub fn resume(id: Option<&str>) -> Result<(Engine, Journal), JournalError> {
    resume_with(id, &BTreeMap::new()).map(|(e, j, _)| (e, j))
}

/// [`resume`] with values that override the journal's (e.g. secrets that
/// were not journalled), also returning the session read back.
pub fn resume_with(
    id: Option<&str>,
    overrides: &BTreeMap<String, String>,
) -> Result<(Engine, Journal, Session), JournalError> {
    let path = find(id)?;
    let (mut journal, session) = Journal::reopen(&path)?;
    let extra: Vec<PathBuf> = session
        .meta
        .playbook_file
        .iter()
        .filter(|p| p.is_file())
        .cloned()
        .collect();
    let (lib, _failures) = Library::standard(&extra).map_err(|message| JournalError::Rebuild {
        id: session.meta.id.clone(),
        message,
    })?;
    let (engine, rebuilt) = rebuild(Arc::new(lib), &session, overrides, jiff::Timestamp::now())?;
    journal.append(&Event::Resumed {
        pid: std::process::id(),
    })?;
    if rebuilt.dropped_stale_checks {
        journal.append(&Event::Back {
            reason: Some(format!(
                "check results older than {} are run again on resume",
                crate::duration::HumanDuration(STALE_CHECKS.unsigned_abs())
            )),
        })?;
    }
    Ok((engine, journal, session))
}

/// Where the walk is: `playbook/node`, or `end (node)` when it is over.
pub fn position(engine: &Engine) -> String {
    match (engine.effect(), engine.current()) {
        (Effect::Done(c), _) => format!("the end ({})", c.node),
        (_, Some((pb, node))) => format!("{}/{}", pb.id, node.id),
        (_, None) => "an unknown node".into(),
    }
}

/// The meta of a new session from the walk about to start.
pub fn meta_for(engine: &Engine, url: Option<String>, read_only: bool) -> Meta {
    let version = engine
        .library()
        .get(engine.root())
        .map(|p| p.version.clone())
        .unwrap_or_default();
    Meta {
        id: String::new(),
        url,
        playbook: engine.root().to_owned(),
        playbook_version: version,
        playbook_file: None,
        host: host_name(),
        os: os_name(),
        started_at: String::new(),
        initial_values: engine.initial_values().clone(),
        read_only,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckReport, Outcome};
    use crate::engine::AnswerSource;
    use crate::playbook::library::{Origin, Source};

    const PB: &str = r#"
id = "jt"
title = "journal test"
version = "1.2.3"
start = "probe"

[[var]]
name = "url"
prompt = "url"
type = "url"
required = true

[[node]]
id = "probe"
title = "Probe"
checks = [{ tcp = { address = "127.0.0.1:9" } }]
on = { ok = "ask", problem = "ask", inconclusive = "ask" }

[[node]]
id = "ask"
title = "Ask"
question = "?"
default = "a"
choices = [{ id = "a", label = "A", next = "done" }]

[[node]]
id = "done"
title = "Done"
end = "resolved"
"#;

    fn lib() -> Arc<Library> {
        let (lib, failures) = Library::from_sources(vec![Source {
            origin: Origin::Embedded("jt.toml"),
            text: PB.into(),
        }]);
        assert!(failures.is_empty(), "{:?}", failures[0].rendered);
        Arc::new(lib)
    }

    fn meta() -> Meta {
        Meta {
            id: String::new(),
            url: Some("http://127.0.0.1:9/".into()),
            playbook: "jt".into(),
            playbook_version: "1.2.3".into(),
            playbook_file: None,
            host: "h".into(),
            os: None,
            started_at: String::new(),
            initial_values: [
                ("url".to_owned(), "http://127.0.0.1:9/".to_owned()),
                ("db_password".to_owned(), "hunter2".to_owned()),
            ]
            .into(),
            read_only: true,
            tool_version: String::new(),
        }
    }

    fn report() -> CheckReport {
        CheckReport::new("tcp", "connect 127.0.0.1:9", Outcome::Problem, "refused")
    }

    #[test]
    fn events_round_trip_and_back_pops_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta();
        let mut j = Journal::create_in(dir.path(), &mut m).unwrap();
        j.input(&Input::ChecksDone(vec![report()])).unwrap();
        j.input(&Input::Answer {
            choice: "a".into(),
            by: AnswerSource::Operator,
        })
        .unwrap();
        j.append(&Event::Back { reason: None }).unwrap();
        j.note("customer says since 09:10", Some("ask")).unwrap();
        let s = load(j.path()).unwrap();
        assert!(!s.torn);
        assert_eq!(s.meta.id, m.id);
        assert_eq!(s.meta.initial_values["db_password"], "[REDACTED]");
        assert_eq!(s.events.len(), 4);
        assert_eq!(s.inputs(), vec![Input::ChecksDone(vec![report()])]);
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert!(!text.contains("hunter2"));
        // The journal is private through its mode on Linux (on Windows, through
        // the ACL of the user's profile, which the test cannot read).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(j.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let summary = list_in(dir.path());
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].status, "in progress");
    }

    #[test]
    fn torn_at_every_offset_of_the_last_event_keeps_the_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta();
        let mut j = Journal::create_in(dir.path(), &mut m).unwrap();
        j.input(&Input::ChecksDone(vec![report()])).unwrap();
        j.note("before the last", None).unwrap();
        let before = std::fs::metadata(j.path()).unwrap().len() as usize;
        j.input(&Input::Answer {
            choice: "a".into(),
            by: AnswerSource::Operator,
        })
        .unwrap();
        let full = std::fs::read(j.path()).unwrap();
        let expected = load(j.path()).unwrap();
        assert_eq!(expected.events.len(), 3);
        let torn_path = dir.path().join("torn.jsonl");
        for cut in before..full.len() {
            std::fs::write(&torn_path, &full[..cut]).unwrap();
            let s = load(&torn_path).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(s.events.len(), 2, "cut at {cut}");
            assert_eq!(s.events[..], expected.events[..2], "cut at {cut}");
            assert_eq!(s.torn, cut > before, "cut at {cut}");
            // Reopening cuts the torn tail, and new events follow cleanly.
            let (mut j2, _) = Journal::reopen(&torn_path).unwrap();
            j2.note("after", None).unwrap();
            let again = load(&torn_path).unwrap();
            assert!(!again.torn, "cut at {cut}");
            assert_eq!(again.events.len(), 3, "cut at {cut}");
        }
        // A complete but garbled last line (a crash mid-sector) is torn too, and cut on reopen.
        let mut garbled = full[..before].to_vec();
        garbled.extend_from_slice(&[0u8; 40]);
        garbled.push(b'\n');
        std::fs::write(&torn_path, &garbled).unwrap();
        let s = load(&torn_path).unwrap();
        assert!(s.torn);
        assert_eq!(s.events.len(), 2);
        let (mut j3, _) = Journal::reopen(&torn_path).unwrap();
        j3.note("after garbage", None).unwrap();
        let again = load(&torn_path).unwrap();
        assert!(!again.torn);
        assert_eq!(again.events.len(), 3);
    }

    #[test]
    fn secret_values_must_be_given_again_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta();
        let j = Journal::create_in(dir.path(), &mut m).unwrap();
        let s = load(j.path()).unwrap();
        let now = jiff::Timestamp::now();
        let err = rebuild(lib(), &s, &BTreeMap::new(), now).unwrap_err();
        assert!(err.to_string().contains("--var db_password=VALUE"), "{err}");
        let given = [("db_password".to_owned(), "x".to_owned())].into();
        assert!(rebuild(lib(), &s, &given, now).is_ok());
    }

    #[test]
    fn a_bad_line_before_the_last_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta();
        let mut j = Journal::create_in(dir.path(), &mut m).unwrap();
        j.note("x", None).unwrap();
        j.note("y", None).unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = "{garbage";
        std::fs::write(j.path(), lines.join("\n") + "\n").unwrap();
        let e = load(j.path()).unwrap_err().to_string();
        assert!(e.contains(":2: not a journal event"), "{e}");
    }

    #[test]
    #[allow(clippy::many_single_char_names)] // short-lived test bindings
    fn stale_trailing_checks_are_dropped_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta();
        let mut j = Journal::create_in(dir.path(), &mut m).unwrap();
        j.input(&Input::ChecksDone(vec![report()])).unwrap();
        let s = load(j.path()).unwrap();
        let given: BTreeMap<String, String> = [("db_password".to_owned(), "x".to_owned())].into();
        let now = jiff::Timestamp::now();
        let (e, r) = rebuild(lib(), &s, &given, now).unwrap();
        assert!(!r.dropped_stale_checks);
        assert!(matches!(e.effect(), Effect::Ask { node, .. } if node == "ask"));
        let later = now
            .checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap();
        let (e, r) = rebuild(lib(), &s, &given, later).unwrap();
        assert!(r.dropped_stale_checks);
        assert!(matches!(e.effect(), Effect::RunChecks { node, .. } if node == "probe"));
        // An answer after the checks: nothing is dropped, however old.
        j.input(&Input::Answer {
            choice: "a".into(),
            by: AnswerSource::Operator,
        })
        .unwrap();
        let s = load(j.path()).unwrap();
        let (e, r) = rebuild(lib(), &s, &given, later).unwrap();
        assert!(!r.dropped_stale_checks);
        assert!(matches!(e.effect(), Effect::Done(_)));
        assert_eq!(e.trail().len(), 3);
    }
}
