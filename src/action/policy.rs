//! The session's rules for running actions: `--read-only`, `--max-tier`,
//! and whether the operator consented. The executor checks them itself
//! (defence in depth): a front end cannot run what the policy forbids.

use std::ffi::OsString;
use std::path::PathBuf;

use super::Tier;

/// What a session may run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecPolicy {
    /// `--read-only`: no action runs at all.
    pub read_only: bool,
    /// `--max-tier`: actions above this tier are refused.
    pub max_tier: Option<Tier>,
    /// The operator confirmed this action in the TUI. Non-interactive runs never set it.
    pub interactive_consent: bool,
    /// Where programs are looked up and the children's `PATH` (default: this process's `PATH`).
    pub search_path: Option<OsString>,
    /// Whether systemd manages services; `None` detects it
    /// (`/run/systemd/system` exists). Set only to test both paths.
    pub systemd: Option<bool>,
}

impl ExecPolicy {
    /// The policy of `run --non-interactive`: nothing ever runs.
    pub fn non_interactive(read_only: bool, max_tier: Option<Tier>) -> ExecPolicy {
        ExecPolicy {
            read_only,
            max_tier,
            interactive_consent: false,
            search_path: None,
            systemd: None,
        }
    }

    /// Why an action of `tier` may not run, or `None` when it may.
    pub fn refusal(&self, tier: Tier) -> Option<String> {
        if self.read_only {
            return Some("read-only session (--read-only): no action is executed".into());
        }
        if let Some(max) = self.max_tier {
            if tier > max {
                return Some(format!(
                    "a {tier} action is above this session's --max-tier {max}"
                ));
            }
        }
        if !self.interactive_consent {
            return Some(crate::action_spec::NOT_RUN.into());
        }
        None
    }

    /// Is systemd managing services here (or, in tests, said to be)?
    pub fn systemd(&self) -> bool {
        self.systemd.unwrap_or_else(super::service::systemd_running)
    }

    /// Find `program` on the search path.
    pub fn find(&self, program: &str) -> Option<PathBuf> {
        if program.contains(['/', std::path::MAIN_SEPARATOR]) {
            let p = PathBuf::from(program);
            return p.is_file().then_some(p);
        }
        let path = self
            .search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        which::which_in(program, Some(path), cwd).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_beats_everything() {
        let p = ExecPolicy {
            read_only: true,
            max_tier: Some(Tier::Destructive),
            interactive_consent: true,
            search_path: None,
            systemd: None,
        };
        assert!(p.refusal(Tier::Reversible).unwrap().contains("read-only"));
    }

    #[test]
    fn max_tier_caps_and_consent_is_required() {
        let mut p = ExecPolicy {
            max_tier: Some(Tier::Reversible),
            interactive_consent: true,
            ..ExecPolicy::default()
        };
        assert!(p.refusal(Tier::Reversible).is_none());
        assert!(p.refusal(Tier::Disruptive).unwrap().contains("--max-tier"));
        p.interactive_consent = false;
        assert!(p.refusal(Tier::Reversible).is_some());
    }
}
