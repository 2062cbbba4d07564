//! The session's undo list: what an executed action left changed ("plugin
//! evil is still disabled") and, where possible, the action that undoes it.
//! Entries are keyed by what they change, so undoing removes the entry.

use serde::{Deserialize, Serialize};

use super::ActionSpec;

/// One thing still changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoEntry {
    /// What is changed, e.g. `plugin:/srv/wp:evil`.
    pub key: String,
    /// For the operator: "plugin evil is still disabled".
    pub what: String,
    /// The action that undoes it, when there is one.
    pub undo: Option<ActionSpec>,
    /// In words, e.g. the exact command.
    pub how: String,
}

/// Keys for the things actions change.
pub fn plugin_key(root: &str, name: &str) -> String {
    format!("plugin:{root}:{name}")
}

pub fn file_key(file: &str) -> String {
    format!("file:{file}")
}

/// What this session still has changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoList {
    entries: Vec<UndoEntry>,
}

impl UndoList {
    pub fn new() -> UndoList {
        UndoList::default()
    }

    /// Record a change; a newer entry for the same key replaces the older one.
    pub fn record(&mut self, e: UndoEntry) {
        self.entries.retain(|x| x.key != e.key);
        self.entries.push(e);
    }

    /// The change with `key` was undone.
    pub fn resolve(&mut self, key: &str) {
        self.entries.retain(|x| x.key != key);
    }

    /// Take in what an executed action changed and undid.
    pub fn apply(&mut self, x: &super::Executed) {
        for k in &x.resolved {
            self.resolve(k);
        }
        for e in &x.undo {
            self.record(e.clone());
        }
    }

    pub fn entries(&self) -> &[UndoEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The lines to show on quit: "plugin evil is still disabled (undo: ...)".
    pub fn still_changed(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| format!("{} (undo: {})", e.what, e.how))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undoing_removes_the_entry() {
        let mut u = UndoList::new();
        u.record(UndoEntry {
            key: plugin_key("/srv", "evil"),
            what: "plugin evil is still disabled".into(),
            undo: None,
            how: "wp plugin activate evil".into(),
        });
        assert_eq!(
            u.still_changed(),
            ["plugin evil is still disabled (undo: wp plugin activate evil)"]
        );
        u.resolve(&plugin_key("/srv", "evil"));
        assert!(u.is_empty());
    }
}
