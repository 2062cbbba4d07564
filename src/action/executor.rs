//! The executor: runs one action under the session's [`ExecPolicy`] and
//! returns a journal-friendly [`ActionResult`] plus what it left changed.
//! The policy is checked here first (read-only, tier cap, consent), whatever
//! the front end did; a service is only signalled after its config test passed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::cache;
use super::isolate;
use super::plugin;
use super::policy::ExecPolicy;
use super::preflight;
use super::process::{self, Run};
use super::rollback;
use super::service::{self, Step};
use super::undo::{self, UndoEntry};
use super::{
    ActionSpec, ClearCacheAction, CommandAction, PluginAction, PluginOp, RollbackAction,
    ServiceAction, ServiceOp, Tier,
};
use crate::engine::{ActionResult, Input};

/// Each service command may run this long.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(60);
/// A custom command without a timeout gets this one; none may exceed [`MAX_TIMEOUT`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a stopping server may take to exit.
pub const STOP_WAIT: Duration = Duration::from_secs(15);
/// The combined output kept in a result.
pub const RESULT_OUTPUT_CAP: usize = 128 * 1024;

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub result: ActionResult,
    /// Set when the policy refused the action: nothing ran. Feed the engine
    /// `Input::ActionDeclined { reason }` then, not `ActionDone`.
    pub refused: Option<String>,
    /// Changes this action left in place (for the undo list).
    pub undo: Vec<UndoEntry>,
    /// Keys of earlier changes this action undid.
    pub resolved: Vec<String>,
}

impl Executed {
    /// What the engine must be told: `ActionDeclined` when the policy
    /// refused (nothing ran), else `ActionDone` with the result.
    pub fn input(&self) -> Input {
        match &self.refused {
            Some(reason) => Input::ActionDeclined {
                reason: reason.clone(),
            },
            None => Input::ActionDone(self.result.clone()),
        }
    }

    /// A result that left nothing changed.
    pub fn from_result(result: ActionResult) -> Executed {
        Executed::new(result)
    }

    fn new(result: ActionResult) -> Executed {
        Executed {
            result,
            refused: None,
            undo: Vec::new(),
            resolved: Vec::new(),
        }
    }
}

/// An action's result, its output capped at [`RESULT_OUTPUT_CAP`] bytes.
pub(super) fn result(
    argv: Vec<String>,
    ok: bool,
    output: String,
    summary: String,
    t0: Instant,
) -> ActionResult {
    let mut output = output;
    if output.len() > RESULT_OUTPUT_CAP {
        let mut cut = RESULT_OUTPUT_CAP;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output.truncate(cut);
        output.push_str("\n[output cut]\n");
    }
    ActionResult {
        argv,
        ok,
        exit_code: None,
        output,
        summary,
        duration_ms: t0.elapsed().as_millis() as u64,
    }
}

/// Run `spec`, declared at `tier`, if `policy` allows it.
pub async fn execute(spec: &ActionSpec, tier: Tier, policy: &ExecPolicy) -> Executed {
    let tier = spec.effective_tier(tier);
    if let Some(reason) = policy.refusal(tier) {
        let mut x = Executed::new(ActionResult {
            argv: spec.argv(),
            ok: false,
            exit_code: None,
            output: String::new(),
            summary: format!("not run: {reason}"),
            duration_ms: 0,
        });
        x.refused = Some(reason);
        return x;
    }
    match spec {
        ActionSpec::Service(s) => Executed::new(run_service(s, policy).await),
        ActionSpec::ClearCache(c) => {
            // Deleting a large cache is blocking file-system work.
            let c = c.clone();
            let argv = spec.argv();
            let r = tokio::task::spawn_blocking(move || clear_cache(&c))
                .await
                .unwrap_or_else(|e| ActionResult {
                    argv,
                    ok: false,
                    exit_code: None,
                    output: String::new(),
                    summary: format!("clearing the cache stopped: {e}"),
                    duration_ms: 0,
                });
            Executed::new(r)
        }
        ActionSpec::Plugin(p) => switch_plugin(p, policy).await,
        ActionSpec::IsolatePlugins(i) => {
            let t0 = Instant::now();
            let iso = isolate::isolate(i, policy).await;
            let mut output = iso.log.join("\n");
            output.push('\n');
            let mut x = Executed::new(result(
                iso.commands.last().cloned().unwrap_or_else(|| spec.argv()),
                iso.ok,
                output,
                iso.summary.clone(),
                t0,
            ));
            for n in &iso.still_disabled {
                let p = PluginAction {
                    document_root: i.document_root.clone(),
                    name: n.clone(),
                    op: PluginOp::Enable,
                };
                x.undo.push(UndoEntry {
                    key: undo::plugin_key(&i.document_root, n),
                    what: format!("plugin {n} is still disabled"),
                    how: super::shell_quote(&plugin::command(&p, policy)),
                    undo: Some(ActionSpec::Plugin(p)),
                });
            }
            x
        }
        ActionSpec::Rollback(r) => rollback_config(r, policy).await,
        ActionSpec::Command(c) => Executed::new(run_command(c, policy).await),
        ActionSpec::ContainerRestart(c) => Executed::new(super::container::restart(c).await),
        ActionSpec::ConfigEdit(e) => super::config_edit::apply(e, policy).await,
        ActionSpec::Iis(a) => Executed::new(super::iis::run(a, policy).await),
        ActionSpec::Ownership(o) => super::ownership::apply(o).await,
    }
}

async fn run_command(c: &CommandAction, policy: &ExecPolicy) -> ActionResult {
    let timeout = c.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0).min(MAX_TIMEOUT);
    let r = process::run(&c.argv, timeout, policy).await;
    let summary = if r.ok {
        format!("{} succeeded", c.argv.first().map_or("", String::as_str))
    } else {
        format!(
            "{} failed{}: {}",
            c.argv.first().map_or("", String::as_str),
            r.exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default(),
            r.head(3)
        )
    };
    ActionResult {
        exit_code: r.exit_code,
        duration_ms: r.duration_ms,
        output: r.transcript(),
        ok: r.ok,
        argv: r.argv,
        summary,
    }
}

/// Pre-flight, then the service steps. Returns the transcript, the last
/// command run, and whether every step succeeded.
pub(super) async fn service_steps(
    s: &ServiceAction,
    policy: &ExecPolicy,
    out: &mut String,
) -> (bool, Vec<String>, String) {
    let pre = preflight::check(s, policy).await;
    if let Some(t) = &pre.test {
        out.push_str(&t.transcript());
    }
    let _ = writeln!(out, "{}", pre.message);
    let test_argv = pre
        .test
        .as_ref()
        .map(|t| t.argv.clone())
        .unwrap_or_default();
    if !pre.ok {
        return (false, test_argv, pre.message);
    }
    let steps = match service::steps(s, policy) {
        Ok(v) => v,
        Err(e) => return (false, test_argv, e),
    };
    let mut last = test_argv;
    for step in steps {
        match step {
            Step::Command(argv) => {
                let r: Run = process::run(&argv, SERVICE_TIMEOUT, policy).await;
                out.push_str(&r.transcript());
                last.clone_from(&r.argv);
                if !r.ok {
                    return (
                        false,
                        last,
                        format!("`{}` failed: {}", super::shell_quote(&argv), r.head(3)),
                    );
                }
            }
            Step::WaitExit(pid) => {
                let t = Instant::now();
                // Bounded by STOP_WAIT.
                while service::alive(pid) && t.elapsed() < STOP_WAIT {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if service::alive(pid) {
                    return (
                        false,
                        last,
                        format!("process {pid} did not exit within {}s", STOP_WAIT.as_secs()),
                    );
                }
                let _ = writeln!(out, "process {pid} exited");
            }
        }
    }
    let verb = match s.op {
        ServiceOp::Reload => "reloaded",
        ServiceOp::Restart => "restarted",
    };
    (true, last, format!("{}; {} {verb}", pre.message, s.unit))
}

async fn run_service(s: &ServiceAction, policy: &ExecPolicy) -> ActionResult {
    let t0 = Instant::now();
    let mut out = String::new();
    let (ok, argv, summary) = service_steps(s, policy, &mut out).await;
    result(argv, ok, out, summary, t0)
}

fn clear_cache(c: &ClearCacheAction) -> ActionResult {
    let t0 = Instant::now();
    let argv = ActionSpec::ClearCache(c.clone()).argv();
    let dir = match cache::check_allowed(&c.path, &c.allowed) {
        Ok(d) => d,
        Err(e) => return result(argv, false, String::new(), e, t0),
    };
    let owner_before = cache::ownership(&dir).ok();
    match cache::clear(&dir) {
        Ok(cl) => {
            let owner_after = cache::ownership(&dir).ok();
            let mut out = format!(
                "before: {}\nafter: {}\n",
                cl.before.describe(),
                cl.after.describe()
            );
            for e in &cl.errors {
                let _ = writeln!(out, "not removed: {e}");
            }
            let kept = owner_before == owner_after;
            let removed = cl.before.files.saturating_sub(cl.after.files);
            let bytes = cl.before.bytes.saturating_sub(cl.after.bytes);
            let summary = format!(
                "deleted {removed} cache files ({}) from {}; the directory {}",
                cache::human_bytes(bytes),
                dir.display(),
                if kept {
                    "and its owner and mode are kept"
                } else {
                    "is kept but its owner or mode changed meanwhile"
                }
            );
            result(argv, cl.errors.is_empty(), out, summary, t0)
        }
        Err(e) => result(
            argv,
            false,
            String::new(),
            format!("cannot clear {}: {e}", dir.display()),
            t0,
        ),
    }
}

async fn switch_plugin(p: &PluginAction, policy: &ExecPolicy) -> Executed {
    let s = plugin::apply(p, policy).await;
    let mut x = Executed::new(ActionResult {
        argv: s.argv.clone(),
        ok: s.ok,
        exit_code: s.exit_code,
        output: s.output.clone(),
        summary: s.summary.clone(),
        duration_ms: s.duration_ms,
    });
    let key = undo::plugin_key(&p.document_root, &p.name);
    match (p.op, s.ok) {
        (PluginOp::Disable, true) => {
            let back = PluginAction {
                op: PluginOp::Enable,
                ..p.clone()
            };
            x.undo.push(UndoEntry {
                key,
                what: format!("plugin {} is still disabled", p.name),
                how: super::shell_quote(&plugin::command(&back, policy)),
                undo: Some(ActionSpec::Plugin(back)),
            });
        }
        (PluginOp::Enable, true) => x.resolved.push(key),
        _ => {}
    }
    x
}

async fn rollback_config(r: &RollbackAction, policy: &ExecPolicy) -> Executed {
    let t0 = Instant::now();
    let argv = ActionSpec::Rollback(r.clone()).argv();
    let saved = rollback::saved_copy_path(&r.file);
    if let Err(e) = rollback::restore(&r.file, &r.backup, &saved) {
        return Executed::new(result(argv, false, String::new(), e, t0));
    }
    let mut out = format!("$ cp {} {saved}\n$ cp {} {}\n", r.file, r.backup, r.file);
    let mut ok = true;
    let mut summary = format!(
        "restored {} from {} (previous version kept in {saved})",
        r.file, r.backup
    );
    let mut last = argv;
    if let Some(s) = &r.service {
        // A reload, unless the service asks for a restart (a php-fpm
        // `listen.*` change only takes effect on one).
        let (sok, sargv, ssum) = service_steps(s, policy, &mut out).await;
        last = sargv;
        if sok {
            let _ = write!(summary, "; {ssum}");
        } else {
            ok = false;
            // The restored config does not pass: put the current one back.
            let back = rollback::put_back(&r.file, &saved);
            let _ = write!(
                summary,
                "; {ssum}; {}",
                match back {
                    Ok(()) => format!("{} was put back as it was", r.file),
                    Err(e) => format!("and putting {} back failed: {e}", r.file),
                }
            );
        }
    }
    let mut x = Executed::new(result(last, ok, out, summary, t0));
    if ok {
        let back = RollbackAction {
            file: r.file.clone(),
            backup: saved.clone(),
            service: r.service.clone(),
        };
        x.undo.push(UndoEntry {
            key: undo::file_key(&r.file),
            what: format!("{} is restored from {}", r.file, r.backup),
            how: format!("restore {saved} over {} and reload", r.file),
            undo: Some(ActionSpec::Rollback(back)),
        });
    }
    x
}
