//! The confirmation dialog's content: what an offered action does and why,
//! the exact commands this host would run, its tier, what it affects, how to
//! undo it, and the confirmation it needs (`y` for reversible actions, typing
//! the service, plugin or directory name for disruptive and destructive ones).
//! Building a plan only reads (bounded): it never changes anything.

use std::fmt::Write as _;
use std::path::Path;

use super::policy::ExecPolicy;
use super::service::Step;
use super::{ActionSpec, PluginOp, Tier, cache, plugin, rollback, service};
use crate::engine::PlannedAction;

/// What the operator must do to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Press `y`.
    Yes,
    /// Type this name exactly.
    Type(String),
}

impl Confirmation {
    /// Does the operator's input confirm?
    pub fn accepts(&self, input: &str) -> bool {
        match self {
            Confirmation::Yes => matches!(input.trim(), "y" | "Y"),
            Confirmation::Type(name) => input.trim() == name,
        }
    }

    /// The prompt line.
    pub fn prompt(&self) -> String {
        match self {
            Confirmation::Yes => "Run it? [y/N]".into(),
            Confirmation::Type(n) => format!("Type `{n}` to run it (anything else cancels):"),
        }
    }
}

/// Everything the dialog shows before an action runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub title: String,
    /// What it does.
    pub what: String,
    /// Why this step suggests it (the node's guidance).
    pub why: String,
    /// The tier the executor enforces (the declared one, raised to the kind's minimum).
    pub tier: Tier,
    /// The exact commands, in order, as this host would run them.
    pub commands: Vec<String>,
    /// What it affects: the service, the files and bytes, the plugin.
    pub affects: Vec<String>,
    /// How to undo it, or "cannot be undone ...".
    pub undo: String,
    /// A diff (rollback) or other detail to show.
    pub detail: Option<String>,
    /// Why it cannot run at all (a missing value, a refused path).
    pub blocked: Option<String>,
    /// Why this session's policy will not run it (read-only, tier cap).
    pub refused: Option<String>,
    /// The spec to run on consent, pinned to what this plan showed (a config
    /// edit carries the hash of the file its diff was made from).
    pub spec: Option<ActionSpec>,
    confirm_name: String,
}

fn file_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map_or_else(|| p.to_owned(), |n| n.to_string_lossy().into_owned())
}

impl Plan {
    /// The plan for an offered action. `why` is the node's guidance.
    /// It reads the disk (cache size, the diff, pid files; all bounded):
    /// call it from `spawn_blocking` when a large cache may be measured.
    pub fn new(offer: &PlannedAction, why: &str, policy: &ExecPolicy) -> Plan {
        let mut plan = Plan {
            title: offer.title.clone(),
            what: offer.description.clone(),
            why: why.trim().to_owned(),
            tier: offer.tier,
            commands: Vec::new(),
            affects: Vec::new(),
            undo: offer
                .undo
                .clone()
                .unwrap_or_else(|| "cannot be undone".into()),
            detail: None,
            blocked: offer.blocked.clone(),
            refused: None,
            spec: offer.spec.clone(),
            confirm_name: offer
                .argv
                .first()
                .map_or_else(String::new, |a| file_name(a)),
        };
        if let Some(spec) = &offer.spec {
            plan.tier = spec.effective_tier(offer.tier);
            plan.fill(spec, policy);
        } else {
            plan.commands.push(super::shell_quote(&offer.argv));
        }
        // Consent is what the dialog asks for: only the session's rules
        // (--read-only, --max-tier) refuse here.
        plan.refused = ExecPolicy {
            interactive_consent: true,
            ..policy.clone()
        }
        .refusal(plan.tier);
        plan
    }

    fn fill(&mut self, spec: &ActionSpec, policy: &ExecPolicy) {
        match spec {
            ActionSpec::Service(s) => {
                self.confirm_name.clone_from(&s.unit);
                match service::config_test(s, policy) {
                    Some(t) => self.commands.push(format!(
                        "{}   (config test first: a failure stops here)",
                        super::shell_quote(&t)
                    )),
                    None => self
                        .affects
                        .push(format!("no configuration test is known for {}", s.unit)),
                }
                match service::steps(s, policy) {
                    Ok(steps) => self.commands.extend(steps.iter().map(Step::display)),
                    Err(e) => self.blocked = Some(e),
                }
                let state = match service::running_pid(s) {
                    Some(p) => format!("running as process {p}"),
                    None if s.pid.is_some() || s.pid_file.is_some() => "not running".into(),
                    None => "process not known".into(),
                };
                self.affects.push(format!(
                    "service {} ({}, {state}): its clients are interrupted briefly",
                    s.unit,
                    service::kind(s)
                ));
                self.undo = format!(
                    "cannot be undone (a {} cannot be taken back; nothing is deleted)",
                    s.op
                );
            }
            ActionSpec::ClearCache(c) => {
                self.commands.push(super::shell_quote(&spec.argv()));
                self.confirm_name = file_name(&c.path);
                match cache::check_allowed(&c.path, &c.allowed) {
                    Ok(dir) => {
                        match cache::measure(&dir) {
                            Ok(sz) => {
                                self.affects
                                    .push(format!("{}: {}", dir.display(), sz.describe()));
                            }
                            Err(e) => {
                                self.blocked = Some(format!("cannot read {}: {e}", dir.display()));
                            }
                        }
                        if let Ok((uid, gid, mode)) = cache::ownership(&dir) {
                            let mut line = format!(
                                "the directory itself is kept: owner {uid}:{gid}, mode {mode:04o}"
                            );
                            if let Some(u) = &c.worker_user {
                                match cache::user_uid(u) {
                                    Some(wu) if wu != uid && uid != 0 => {
                                        let _ = write!(
                                            line,
                                            "; note: owned by uid {uid}, not the worker user {u} (uid {wu})"
                                        );
                                    }
                                    _ => {
                                        let _ = write!(line, "; worker user {u}");
                                    }
                                }
                            }
                            self.affects.push(line);
                        }
                    }
                    Err(e) => self.blocked = Some(e),
                }
                self.undo = "cannot be undone: the entries are deleted (the server rebuilds them on demand)".into();
            }
            ActionSpec::Plugin(p) => {
                self.confirm_name.clone_from(&p.name);
                self.commands
                    .push(super::shell_quote(&plugin::command(p, policy)));
                self.affects.push(format!(
                    "plugin {} in {}",
                    p.name,
                    plugin::plugins_dir(&p.document_root).display()
                ));
                let back = super::PluginAction {
                    op: match p.op {
                        PluginOp::Disable => PluginOp::Enable,
                        PluginOp::Enable => PluginOp::Disable,
                    },
                    ..p.clone()
                };
                self.undo = super::shell_quote(&plugin::command(&back, policy));
                if let Err(e) = plugin::validate_name(&p.name) {
                    self.blocked = Some(e);
                }
            }
            ActionSpec::IsolatePlugins(i) => {
                self.confirm_name = "isolate".into();
                self.commands.push(format!(
                    "for each step: {}  (then re-enable half at a time)",
                    super::shell_quote(&plugin::command(
                        &super::PluginAction {
                            document_root: i.document_root.clone(),
                            name: "NAME".into(),
                            op: PluginOp::Disable,
                        },
                        policy
                    ))
                ));
                self.affects.push(if i.suspects.is_empty() {
                    format!(
                        "every enabled plugin in {}; {} is requested after each step",
                        plugin::plugins_dir(&i.document_root).display(),
                        i.url
                    )
                } else {
                    format!(
                        "plugins {}; {} is requested after each step",
                        i.suspects.join(", "),
                        i.url
                    )
                });
                self.undo = "the faulty plugin stays disabled (listed on quit, with the command to re-enable it); the others are re-enabled".into();
            }
            ActionSpec::Rollback(r) => {
                self.confirm_name = file_name(&r.file);
                let saved = format!("{}.triage502-<time>", r.file);
                self.commands.push(format!("cp {} {saved}", r.file));
                self.commands.push(format!("cp {} {}", r.backup, r.file));
                if let Some(s) = &r.service {
                    let reload = (**s).clone();
                    if let Some(t) = service::config_test(&reload, policy) {
                        self.commands.push(format!(
                            "{}   (a failure puts {} back)",
                            super::shell_quote(&t),
                            r.file
                        ));
                    }
                    match service::steps(&reload, policy) {
                        Ok(st) => self.commands.extend(st.iter().map(Step::display)),
                        Err(e) => self.blocked = Some(e),
                    }
                }
                self.affects.push(format!("config file {}", r.file));
                match rollback::diff(&r.file, &r.backup) {
                    Ok(d) if d.is_empty() => {
                        self.blocked = Some(format!("{} and {} are identical", r.file, r.backup));
                    }
                    Ok(d) => self.detail = Some(d),
                    Err(e) => self.blocked = Some(e),
                }
                self.undo = format!(
                    "restore {saved} over {} (the copy kept before restoring)",
                    r.file
                );
            }
            ActionSpec::ConfigEdit(e) => self.fill_edit(e, policy),
            ActionSpec::Ownership(o) => self.fill_ownership(o),
            ActionSpec::Iis(a) => self.fill_iis(a),
            ActionSpec::ContainerRestart(c) => {
                c.container.trim().clone_into(&mut self.confirm_name);
                match crate::docker::locate_socket() {
                    Ok(socket) => self.commands.push(super::container::api_call(c, &socket)),
                    Err(u) => {
                        self.blocked = Some(format!(
                            "cannot reach the container engine: {}; {}",
                            u.reason, u.fix
                        ));
                    }
                }
                self.commands.push(format!(
                    "the same by hand: {}",
                    super::shell_quote(&spec.argv())
                ));
                if let Some(u) = c.url.as_deref().filter(|u| !u.is_empty()) {
                    self.commands.push(format!(
                        "GET {u} until it answers below 500 (at most {} s)",
                        super::container::URL_WAIT.as_secs()
                    ));
                }
                self.affects.push(super::container::affects(c));
                self.undo = "cannot be undone (a restart cannot be taken back; nothing is deleted, but what the container held only in memory is lost)".into();
                if let Some(b) = super::container::blocked(c) {
                    self.blocked = Some(b);
                }
            }
            ActionSpec::Command(c) => {
                self.commands.push(super::shell_quote(&c.argv));
                self.affects.push(format!(
                    "runs {}",
                    c.argv.first().map_or("", String::as_str)
                ));
            }
        }
    }

    fn fill_iis(&mut self, a: &super::IisAction) {
        use super::IisOp;
        let appcmd = crate::checks::iis_service::appcmd();
        match super::iis::commands(a) {
            Ok(cmds) => self
                .commands
                .extend(cmds.iter().map(|c| super::shell_quote(c))),
            Err(e) => self.blocked = Some(e),
        }
        self.commands.push(format!(
            "{}   (read back: the state must be {})",
            super::shell_quote(&super::iis::readback_argv(a, &appcmd)),
            if a.op == IisOp::Recycle {
                "Started"
            } else {
                "RUNNING"
            }
        ));
        if let Some(u) = a.url.as_deref().filter(|u| !u.is_empty()) {
            self.commands
                .push(format!("GET {u} three times (answers below 500 = fixed)"));
        }
        let (name, affects) = match a.op {
            IisOp::Restart => (
                "w3svc".to_owned(),
                "service w3svc (World Wide Web Publishing Service): every IIS site stops, then starts; requests in flight are cut".to_owned(),
            ),
            IisOp::Reset => (
                "iisreset".to_owned(),
                "every IIS service (W3SVC, WAS and those depending on them): all sites and application pools restart".to_owned(),
            ),
            IisOp::Recycle => {
                let pool = a.app_pool.clone().unwrap_or_default();
                let text = format!(
                    "application pool {pool}: its worker processes are replaced (new ones start before the old ones finish their requests); in-process state and sessions are lost"
                );
                (pool, text)
            }
        };
        self.confirm_name = name;
        self.affects.push(affects);
        if let Some(why) = crate::platform::unavailable(crate::checks::iis_service::DOC.kind) {
            self.blocked = Some(format!("IIS actions run on Windows only ({why})"));
        }
        self.undo = format!(
            "cannot be undone (a {} cannot be taken back; nothing is deleted)",
            a.op
        );
    }

    fn fill_edit(&mut self, e: &super::ConfigEditAction, policy: &ExecPolicy) {
        self.confirm_name = file_name(&e.file);
        let reload = super::ServiceAction {
            op: super::config_edit::reload_or_restart(e),
            ..(*e.service).clone()
        };
        if let Some(r) = &e.reason {
            if self.why.is_empty() {
                self.why.clone_from(r);
            } else {
                self.why = format!("{r}\n{}", self.why);
            }
        }
        self.commands.push(format!(
            "edit {} in place (the diff below; backup {}.triage502-<time>)",
            e.file, e.file
        ));
        match service::config_test(&reload, policy) {
            Some(t) => self.commands.push(format!(
                "{}   (a failure restores {})",
                super::shell_quote(&t),
                e.file
            )),
            None => self.affects.push(format!(
                "no configuration test is known for {}: the edit is not tested before the reload",
                reload.unit
            )),
        }
        match service::steps(&reload, policy) {
            Ok(steps) => self.commands.extend(steps.iter().map(Step::display)),
            Err(x) => self.blocked = Some(x),
        }
        if let Some(u) = &e.url {
            self.commands.push(format!(
                "GET {u} {} times: any 5xx restores {} and reloads",
                super::config_edit::VERIFY_PROBES,
                e.file
            ));
        }
        self.affects.push(format!(
            "{} ({} configuration of {})",
            e.file,
            e.syntax().map_or_else(|x| x, |s| s.to_string()),
            reload.unit
        ));
        self.undo = format!(
            "restore the backup {}.triage502-<time> over {}, test the config and reload (listed in the undo list)",
            e.file, e.file
        );
        match super::config_edit::preview(e) {
            Ok(p) => {
                self.detail = Some(p.diff);
                self.spec = Some(ActionSpec::ConfigEdit(Box::new(super::ConfigEditAction {
                    expect_sha256: Some(p.sha256),
                    ..e.clone()
                })));
            }
            Err(x) => self.blocked = Some(x),
        }
    }

    fn fill_ownership(&mut self, o: &super::OwnershipAction) {
        self.confirm_name = file_name(&o.path);
        if !o.restore.is_empty() {
            self.commands.push(format!(
                "restore the recorded owner and mode of {} entries in {}",
                o.restore.len(),
                o.path
            ));
            return;
        }
        let group = o
            .group
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| {
                super::ownership::user_ids(&o.user).map_or_else(String::new, |(_, g)| g.to_string())
            });
        let own = format!("{}:{group}", o.user);
        self.commands.push(super::shell_quote(&[
            "chown".into(),
            "-R".into(),
            "-h".into(),
            own,
            o.path.clone(),
        ]));
        self.commands.push(super::shell_quote(&[
            "chmod".into(),
            "-R".into(),
            "u+rwX".into(),
            o.path.clone(),
        ]));
        self.undo =
            "restore each changed entry's previous owner and mode (recorded before the change)"
                .into();
        match super::ownership::plan(o) {
            Ok((root, changes)) => {
                if changes.is_empty() {
                    self.affects.push(format!(
                        "{}: already the worker user's, nothing to change",
                        root.display()
                    ));
                }
                for (p, b, (u, g, m)) in changes.iter().take(5) {
                    self.affects.push(format!(
                        "{}: owner {}:{} mode {:04o} -> {u}:{g} {m:04o}",
                        p.display(),
                        b.uid,
                        b.gid,
                        b.mode
                    ));
                }
                if changes.len() > 5 {
                    self.affects
                        .push(format!("and {} more entries", changes.len() - 5));
                }
                self.detail = Some(
                    changes
                        .iter()
                        .map(|(p, b, (u, g, m))| {
                            format!(
                                "{}: {}:{} {:04o} -> {u}:{g} {m:04o}",
                                p.display(),
                                b.uid,
                                b.gid,
                                b.mode
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            Err(e) => self.blocked = Some(e),
        }
    }

    /// What the operator must do to confirm.
    pub fn confirmation(&self) -> Confirmation {
        if self.tier == Tier::Reversible || self.confirm_name.is_empty() {
            Confirmation::Yes
        } else {
            Confirmation::Type(self.confirm_name.clone())
        }
    }

    /// May it run at all in this session (not blocked, not refused)?
    pub fn runnable(&self) -> bool {
        self.blocked.is_none() && self.refused.is_none()
    }

    /// The dialog as plain text.
    pub fn render(&self) -> String {
        let mut s = format!("{} [{}]\n{}\n", self.title, self.tier, self.what);
        if !self.why.is_empty() {
            let _ = writeln!(s, "\nWhy: {}", self.why);
        }
        let _ = writeln!(s, "\nCommands (no shell):");
        for c in &self.commands {
            let _ = writeln!(s, "  {c}");
        }
        let _ = writeln!(s, "\nAffects:");
        for a in &self.affects {
            let _ = writeln!(s, "  - {a}");
        }
        let _ = writeln!(s, "\nUndo: {}", self.undo);
        if let Some(d) = &self.detail {
            let _ = writeln!(s, "\n{d}");
        }
        if let Some(b) = &self.blocked {
            let _ = writeln!(s, "\nCannot run: {b}");
        } else if let Some(r) = &self.refused {
            let _ = writeln!(s, "\nNot allowed: {r}");
        } else {
            let _ = writeln!(s, "\n{}", self.confirmation().prompt());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{PluginAction, ServiceAction, ServiceOp};

    fn offer(spec: ActionSpec, tier: Tier) -> PlannedAction {
        PlannedAction {
            node: "n".into(),
            title: "T".into(),
            tier,
            argv: spec.argv(),
            description: spec.describe(),
            spec: Some(spec),
            undo: None,
            blocked: None,
        }
    }

    #[test]
    fn reversible_needs_y_and_disruptive_needs_the_name() {
        let p = Plan::new(
            &offer(
                ActionSpec::Plugin(PluginAction {
                    document_root: "/srv/wp".into(),
                    name: "evil".into(),
                    op: PluginOp::Disable,
                }),
                Tier::Reversible,
            ),
            "why",
            &ExecPolicy::default(),
        );
        assert_eq!(p.confirmation(), Confirmation::Yes);
        assert!(p.confirmation().accepts("y"));
        assert!(!p.confirmation().accepts("n"));
        assert!(p.undo.contains("evil"));
        let s = Plan::new(
            &offer(
                ActionSpec::Service(Box::new(ServiceAction {
                    unit: "php8.2-fpm".into(),
                    op: ServiceOp::Restart,
                    server: None,
                    config: None,
                    prefix: None,
                    pid: None,
                    pid_file: None,
                })),
                Tier::Reversible,
            ),
            "why",
            &ExecPolicy {
                max_tier: Some(Tier::Reversible),
                ..ExecPolicy::default()
            },
        );
        assert_eq!(s.tier, Tier::Disruptive);
        assert_eq!(s.confirmation(), Confirmation::Type("php8.2-fpm".into()));
        assert!(!s.confirmation().accepts("y"));
        assert!(s.confirmation().accepts("php8.2-fpm"));
        assert!(s.refused.as_deref().unwrap().contains("--max-tier"));
        assert!(s.commands[0].contains("-t"), "{:?}", s.commands);
        assert!(s.undo.contains("cannot be undone"));
        assert!(s.render().contains("Not allowed"));
    }
}
