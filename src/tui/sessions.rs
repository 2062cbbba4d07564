//! `triage502 --resume` without an id: the saved sessions to choose from.
//!
//! The list is read off the UI thread (`load`: each journal is read and its
//! walk replayed to name the node it reached) and arrives as one message, so
//! the first frame never waits for it. Newest first, at most [`MAX_ROWS`]
//! (older ones: `triage502 sessions` and `--resume ID`). Choosing a session
//! resumes it on a task too ([`resume`]); the journal it reopens is handed to
//! the app once through a [`Handoff`] (messages are `Clone`, a journal is not).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::engine::Engine;
use crate::journal::{self, Journal, Session};
use crate::playbook::library::Library;

/// Sessions listed at most.
pub const MAX_ROWS: usize = 50;

/// One saved session, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub url: Option<String>,
    pub playbook: String,
    /// Where the walk is (`playbook/node`, `the end (node)`), or why that
    /// cannot be told.
    pub reached: String,
    /// "12 min ago" (of the last event).
    pub age: String,
    /// How it ended (`problem`, `healthy`, ...), `None` while open.
    pub ended: Option<String>,
}

/// What a key asks of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickOp {
    Prev,
    Next,
    /// Highlight row N (0-based).
    Select(usize),
    /// Continue the highlighted session.
    Take,
}

/// The list on the start screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionList {
    /// `None` while it is being read.
    pub rows: Option<Vec<Row>>,
    pub selected: usize,
    /// The chosen session is being opened.
    pub taking: bool,
}

impl SessionList {
    /// Apply `op`; returns the id of the session to resume on `Take`.
    pub fn apply(&mut self, op: PickOp) -> Option<String> {
        let n = self.rows.as_ref().map_or(0, Vec::len);
        match op {
            PickOp::Prev => self.selected = self.selected.saturating_sub(1),
            PickOp::Next => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            PickOp::Select(i) if i < n => self.selected = i,
            PickOp::Select(_) => {}
            PickOp::Take if self.taking => {}
            PickOp::Take => {
                let id = self.rows.as_ref()?.get(self.selected)?.id.clone();
                self.taking = true;
                return Some(id);
            }
        }
        None
    }
}

/// "just now", "5 min ago", "3 h ago", "2 d ago".
pub fn age(then: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    match s {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Read the newest saved sessions (blocking: journals and playbooks are
/// read, each walk replayed). Unreadable journals are left out, as in
/// `triage502 sessions`.
pub fn load(now: jiff::Timestamp) -> Vec<Row> {
    let Ok(dir) = journal::sessions_dir() else {
        return Vec::new();
    };
    let mut standard: Option<Arc<Library>> = None;
    journal::paths_in(&dir, MAX_ROWS)
        .iter()
        .filter_map(|p| journal::load(p).ok())
        .map(|s| row(&s, &mut standard, now))
        .collect()
}

fn row(s: &Session, standard: &mut Option<Arc<Library>>, now: jiff::Timestamp) -> Row {
    let summary = s.summary();
    let extra: Vec<PathBuf> = s
        .meta
        .playbook_file
        .iter()
        .filter(|p| p.is_file())
        .cloned()
        .collect();
    let library = if extra.is_empty() {
        match standard {
            Some(l) => Ok(l.clone()),
            None => Library::standard(&[]).map(|(l, _)| {
                let l = Arc::new(l);
                *standard = Some(l.clone());
                l
            }),
        }
    } else {
        Library::standard(&extra).map(|(l, _)| Arc::new(l))
    };
    let reached = match library {
        Ok(lib) => match journal::rebuild(lib, s, &BTreeMap::new(), now) {
            Ok((engine, _)) => journal::position(&engine),
            Err(e) => format!("? ({e})"),
        },
        Err(e) => format!("? ({e})"),
    };
    let last = summary.last_event.parse().unwrap_or(now);
    Row {
        id: summary.id,
        url: summary.url,
        playbook: s.meta.playbook.clone(),
        reached,
        age: age(last, now),
        ended: s.end().map(|_| summary.status),
    }
}

/// A resumed session: the rebuilt walk, its reopened journal, and the
/// journal as read.
#[derive(Debug)]
pub struct Resumed {
    pub engine: Engine,
    pub journal: Journal,
    pub session: Session,
}

/// Resume session `id` (blocking), with `vars` overriding journalled values.
pub fn resume(id: &str, vars: &[(String, String)]) -> Result<Resumed, String> {
    let overrides = vars.iter().cloned().collect();
    journal::resume_with(Some(id), &overrides)
        .map(|(engine, journal, session)| Resumed {
            engine,
            journal,
            session,
        })
        .map_err(|e| e.to_string())
}

/// Hands a [`Resumed`] from the task that opened it to the app, once.
#[derive(Debug, Clone)]
pub struct Handoff(Arc<Mutex<Option<Result<Resumed, String>>>>);

impl Handoff {
    pub fn new(r: Result<Resumed, String>) -> Handoff {
        Handoff(Arc::new(Mutex::new(Some(r))))
    }

    /// The result, the first time only.
    pub fn take(&self) -> Option<Result<Resumed, String>> {
        self.0.lock().ok()?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> Row {
        Row {
            id: id.into(),
            url: None,
            playbook: "502".into(),
            reached: "502/probe".into(),
            age: "just now".into(),
            ended: None,
        }
    }

    #[test]
    fn keys_move_within_the_list_and_take_once() {
        let mut l = SessionList::default();
        assert_eq!(l.apply(PickOp::Take), None, "nothing to take while loading");
        l.rows = Some(vec![row("a"), row("b"), row("c")]);
        l.apply(PickOp::Next);
        l.apply(PickOp::Next);
        l.apply(PickOp::Next);
        assert_eq!(l.selected, 2);
        l.apply(PickOp::Select(7));
        assert_eq!(l.selected, 2, "no row 8");
        l.apply(PickOp::Select(0));
        l.apply(PickOp::Prev);
        assert_eq!(l.selected, 0);
        l.apply(PickOp::Select(1));
        assert_eq!(l.apply(PickOp::Take).as_deref(), Some("b"));
        assert_eq!(l.apply(PickOp::Take), None, "a second Enter while opening");
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        let now: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let ago = |s: i64| age(now - jiff::SignedDuration::from_secs(s), now);
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(300), "5 min ago");
        assert_eq!(ago(3 * 3600 + 5), "3 h ago");
        assert_eq!(ago(2 * 86_400), "2 d ago");
        assert_eq!(ago(-30), "just now", "a clock that went back");
    }

    #[test]
    fn a_handoff_gives_its_result_once() {
        let h = Handoff::new(Err("gone".into()));
        let copy = h.clone();
        assert!(matches!(copy.take(), Some(Err(e)) if e == "gone"));
        assert!(h.take().is_none());
    }
}
