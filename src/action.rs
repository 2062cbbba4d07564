//! Actions: the steps that change the server, described as data.
//!
//! The engine only *offers* an action; a front end shows its [`Plan`]
//! (exact argv, tier, what it affects, how to undo it), asks for the
//! [`Confirmation`], and [`execute`] runs it under an [`ExecPolicy`].
//! Invariants: nothing here runs a shell (every command is a fixed argv whose
//! items are rendered from templates as data); every child has a timeout and
//! capped output; the policy is checked by the executor itself, so a front end
//! that forgets to check cannot run a forbidden action.

pub mod cache;
pub mod config_edit;
pub mod container;
pub mod executor;
pub mod iis;
pub mod isolate;
pub mod ownership;
pub mod plan;
pub mod plugin;
pub mod policy;
pub mod preflight;
pub mod process;
pub mod rollback;
pub mod service;
pub mod undo;
pub mod verify;

// The specs are data the engine and playbooks share; they live in
// `crate::action_spec` and are re-exported here for the executor's users.
pub use crate::action_spec::*;
pub use executor::{Executed, execute};
pub use plan::{Confirmation, Plan};
pub use policy::ExecPolicy;
pub use undo::{UndoEntry, UndoList};
pub use verify::{Probe, VerifyResult, probe, verify};
