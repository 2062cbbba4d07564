//! Action specs: the data that describes a step which changes the server
//! (its kind, parameters and risk tier), as playbooks write it and the engine
//! offers it. No execution lives here: the pure engine and the playbook
//! loader use these types without depending on [`crate::action`], the
//! executor that runs processes and edits files.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// Why an unattended run did not run an action.
pub const NOT_RUN: &str =
    "non-interactive run: actions are never executed; run it yourself or use the TUI";

/// Risk tier, ordered from least to most dangerous.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Can be undone exactly (disable a plugin).
    Reversible,
    /// Interrupts service briefly (restart or reload a service).
    Disruptive,
    /// Loses data that cannot be restored (delete cache files).
    Destructive,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Reversible => "reversible",
            Tier::Disruptive => "disruptive",
            Tier::Destructive => "destructive",
        })
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reversible" => Ok(Tier::Reversible),
            "disruptive" => Ok(Tier::Disruptive),
            "destructive" => Ok(Tier::Destructive),
            _ => Err(format!(
                "`{s}` is not a tier (reversible, disruptive, destructive)"
            )),
        }
    }
}

/// What an action does. The key names the kind: `do = { service = { ... } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Reload or restart a service (systemd, or the server's own signal),
    /// after its configuration test passed.
    Service(Box<ServiceAction>),
    /// Delete the entries of a cache directory that discovery found in the config.
    ClearCache(ClearCacheAction),
    /// Disable or re-enable one WordPress plugin.
    Plugin(PluginAction),
    /// Find the plugin that breaks a page by disabling and re-enabling plugins.
    IsolatePlugins(IsolatePluginsAction),
    /// Restore a config file from its backup, then test the config and reload.
    Rollback(RollbackAction),
    /// A playbook-defined command, run as this exact argv.
    Command(CommandAction),
    /// Change directives of one configuration file, located by the parser
    /// (never a search-and-replace over the text); shown as a unified diff
    /// before consent, then config-tested, reloaded, verified, undoable.
    ConfigEdit(Box<ConfigEditAction>),
    /// Give a configured cache or temp directory (and what is inside it)
    /// back to the worker user: owner, group and the owner's access bits.
    /// Not a config edit; undone by restoring each entry's previous owner and mode.
    Ownership(OwnershipAction),
    /// IIS on Windows: restart the World Wide Web Publishing Service
    /// (`net stop w3svc`, `net start w3svc`), `iisreset`, or recycle one
    /// application pool (`appcmd recycle apppool`); then its state is read back.
    Iis(IisAction),
    /// Restart a container through the container engine's API on its unix socket
    /// (`POST /containers/ID/restart`, what `docker restart NAME` does), wait until it runs
    /// again, then verify the URL. Cannot be undone.
    ContainerRestart(ContainerRestartAction),
}

/// What an [`IisAction`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IisOp {
    /// `net stop w3svc` then `net start w3svc`: every site restarts.
    Restart,
    /// `iisreset`: every IIS service (WAS, W3SVC...) stops and starts.
    Reset,
    /// `appcmd recycle apppool /apppool.name:POOL`: one pool's workers are
    /// replaced (overlapped: new ones start before the old ones stop).
    Recycle,
}

impl fmt::Display for IisOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IisOp::Restart => "restart",
            IisOp::Reset => "reset",
            IisOp::Recycle => "recycle",
        })
    }
}

/// [`ActionSpec::Iis`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IisAction {
    /// `restart` (net stop/start w3svc), `reset` (iisreset) or `recycle` (one app pool).
    pub op: IisOp,
    /// The application pool `recycle` recycles, e.g. `DefaultAppPool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_pool: Option<String>,
    /// The failing URL, requested 3 times after the action (answers below 500 = fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// [`ActionSpec::ContainerRestart`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerRestartAction {
    /// The container's name (`{{ upstream.container }}`), typed to confirm.
    pub container: String,
    /// Its full id (`{{ upstream.container.id }}`): the API call names it, so a container
    /// recreated under the same name since the plan was shown is not the one restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Seconds the engine waits for the container to stop before killing it (default 10,
    /// as `docker restart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    /// The failing URL, requested after the container runs again until it answers (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ContainerRestartAction {
    /// The stop timeout in seconds (10 unless given, at most 300).
    pub fn stop_timeout(&self) -> u32 {
        self.stop_timeout.unwrap_or(10).min(300)
    }

    /// What the API call names: the id when known, else the name.
    pub fn target(&self) -> &str {
        self.id
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .unwrap_or(self.container.trim())
    }
}

/// [`ActionSpec::Ownership`]: `chown -R -h USER:GROUP PATH` and
/// `chmod -R u+rwX PATH`, done in-process entry by entry (symlinks never
/// followed, at most [`OWNERSHIP_MAX_ENTRIES`]) so each previous owner and
/// mode is recorded for the undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnershipAction {
    /// The directory to give back (a cache or temp path of the config).
    pub path: String,
    /// The cache and temp paths discovery found in the config
    /// (`["{{ cache_paths }}"]`); `path` must be one of them or inside one.
    pub allowed: Vec<String>,
    /// The user the server's workers run as.
    pub user: String,
    /// Their group; by default the user's primary group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The undo: `UID:GID MODE PATH` (octal mode) per entry, restored as
    /// recorded instead of giving the path back. Filled by the executor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore: Vec<String>,
    /// The failing URL: after the change it must answer three times in a
    /// row, or each entry's previous owner and mode is restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// An [`OwnershipAction`] refuses a tree with more entries than this (its
/// undo could not be recorded whole).
pub const OWNERSHIP_MAX_ENTRIES: usize = 100_000;

/// Which server a service is, for its config test and its own signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    Nginx,
    Apache,
    PhpFpm,
    Haproxy,
    /// No config test is known; restarted only through systemd.
    Other,
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::Nginx => "nginx",
            ServerKind::Apache => "apache",
            ServerKind::PhpFpm => "php-fpm",
            ServerKind::Haproxy => "haproxy",
            ServerKind::Other => "other",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAction {
    /// The systemd unit or service name, e.g. `php8.2-fpm`.
    pub unit: String,
    /// `reload` (preferred when it fixes the same thing) or `restart`.
    #[serde(default)]
    pub op: ServiceOp,
    /// The server behind the unit; guessed from the unit name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerKind>,
    /// The main config file (`nginx -c`, `apachectl -f`, `php-fpm -y`, `haproxy -f`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// nginx's prefix directory (`nginx -p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The master process id, for signals when systemd is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// A file holding the master process id (read when `pid` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOp {
    #[default]
    Reload,
    Restart,
}

impl fmt::Display for ServiceOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceOp::Reload => "reload",
            ServiceOp::Restart => "restart",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearCacheAction {
    /// The cache directory whose entries are deleted (the directory itself is kept).
    pub path: String,
    /// The cache paths discovery found in the config (`["{{ cache_paths }}"]`);
    /// `path` must be one of them or inside one.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// The user the server's workers run as, shown beside the directory's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginOp {
    Disable,
    Enable,
}

impl fmt::Display for PluginOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginOp::Disable => "disable",
            PluginOp::Enable => "enable",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginAction {
    /// The WordPress document root (holds `wp-content/plugins`).
    pub document_root: String,
    /// The plugin's directory name (its slug), e.g. `woocommerce`.
    pub name: String,
    /// `disable` or `enable`.
    pub op: PluginOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IsolatePluginsAction {
    /// The WordPress document root (holds `wp-content/plugins`).
    pub document_root: String,
    /// The failing URL, re-probed after each change.
    pub url: String,
    /// Plugins to suspect first (e.g. from recent fatal errors); empty means all active ones.
    #[serde(default)]
    pub suspects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackAction {
    /// The changed config file.
    pub file: String,
    /// Its backup (`.bak`, `.orig`, `~`) to restore.
    pub backup: String,
    /// The service to config-test and reload after the restore (its `op`
    /// defaults to reload; a restart where only that applies the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Box<ServiceAction>>,
}

/// The syntax of an edited configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSyntax {
    /// nginx: `name args;` directives and `{ }` blocks.
    Nginx,
    /// php-fpm: ini sections (`[www]`) of `key = value` lines.
    PhpFpm,
}

impl fmt::Display for ConfigSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigSyntax::Nginx => "nginx",
            ConfigSyntax::PhpFpm => "php-fpm",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigEditAction {
    /// The file to change; it must be one of `allowed`.
    pub file: String,
    /// The file's syntax; by default the service's server (nginx, php-fpm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<ConfigSyntax>,
    /// The changes, one per item (a remedy writes them as a fact, one per line):
    /// nginx `@LINE NAME ARGS...` sets the arguments of directive NAME that starts
    /// at LINE; `@LINE+ NAME ARGS...` sets NAME inside the block opened at LINE
    /// (replacing it there when present, else adding it as the block's first line);
    /// php-fpm `[POOL] KEY = VALUE` sets KEY in that pool's section of the file.
    pub changes: Vec<String>,
    /// The running server's configuration files, as discovery found them
    /// (`["{{ front.config_files }}"]`); a file outside them is refused.
    pub allowed: Vec<String>,
    /// The server to config-test and reload gracefully after the edit; its `op` is ignored.
    pub service: Box<ServiceAction>,
    /// The failing URL, verified after the reload (3 answers below 500 in a row);
    /// a failed verification restores the file and reloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// SHA-256 (hex) of the file when its diff was shown; the edit is refused
    /// when the file changed since. Front ends fill it from the preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_sha256: Option<String>,
    /// Why this edit (the remedy's reasoning with its figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One parsed change of a [`ConfigEditAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set the arguments of the nginx directive `name` that starts at `line`.
    NginxSet {
        line: u32,
        name: String,
        args: Vec<String>,
    },
    /// Set `name` among the direct children of the nginx block opened at `line`.
    NginxInBlock {
        line: u32,
        name: String,
        args: Vec<String>,
    },
    /// Set `key = value` in php-fpm pool `pool`.
    FpmSet {
        pool: String,
        key: String,
        value: String,
    },
}

impl Change {
    /// Parse one item of [`ConfigEditAction::changes`].
    pub fn parse(syntax: ConfigSyntax, text: &str) -> Result<Change, String> {
        let t = text.trim();
        match syntax {
            ConfigSyntax::Nginx => {
                let bad = || {
                    format!(
                        "`{t}` is not an nginx change (`@LINE NAME ARGS...` or `@LINE+ NAME ARGS...`)"
                    )
                };
                let rest = t.strip_prefix('@').ok_or_else(bad)?;
                let mut words = rest.split_whitespace();
                let at = words.next().ok_or_else(bad)?;
                let (num, in_block) = match at.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (at, false),
                };
                let line = num.parse::<u32>().ok().filter(|l| *l > 0).ok_or_else(bad)?;
                let name = words.next().ok_or_else(bad)?.to_owned();
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("`{name}` is not an nginx directive name"));
                }
                let args: Vec<String> = words.map(str::to_owned).collect();
                if args.is_empty() {
                    return Err(format!("`{t}`: the directive needs a value"));
                }
                if args
                    .iter()
                    .any(|a| a.contains([';', '{', '}', '#', '"', '\'', '\\']))
                {
                    return Err(format!("`{t}`: a value holds nginx syntax characters"));
                }
                Ok(if in_block {
                    Change::NginxInBlock { line, name, args }
                } else {
                    Change::NginxSet { line, name, args }
                })
            }
            ConfigSyntax::PhpFpm => {
                let bad = || format!("`{t}` is not a php-fpm change (`[POOL] KEY = VALUE`)");
                let rest = t.strip_prefix('[').ok_or_else(bad)?;
                let (pool, rest) = rest.split_once(']').ok_or_else(bad)?;
                let (key, value) = rest.split_once('=').ok_or_else(bad)?;
                let (pool, key, value) = (pool.trim(), key.trim(), value.trim());
                if pool.is_empty() || key.is_empty() || value.is_empty() {
                    return Err(bad());
                }
                if !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._[]-".contains(c))
                {
                    return Err(format!("`{key}` is not a php-fpm key"));
                }
                if value.contains([';', '"', '\n']) {
                    return Err(format!("`{t}`: the value holds `;` or a quote"));
                }
                Ok(Change::FpmSet {
                    pool: pool.to_owned(),
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
            }
        }
    }

    /// How the change reads to the operator.
    pub fn describe(&self) -> String {
        match self {
            Change::NginxSet { line, name, args } => {
                format!("set {name} {} (line {line})", args.join(" "))
            }
            Change::NginxInBlock { line, name, args } => {
                format!("set {name} {} in the block at line {line}", args.join(" "))
            }
            Change::FpmSet { pool, key, value } => format!("set {key} = {value} in pool {pool}"),
        }
    }
}

impl ConfigEditAction {
    /// The file's syntax: the declared one, else the service's server's.
    pub fn syntax(&self) -> Result<ConfigSyntax, String> {
        if let Some(s) = self.syntax {
            return Ok(s);
        }
        match self.service.server_kind() {
            ServerKind::Nginx => Ok(ConfigSyntax::Nginx),
            ServerKind::PhpFpm => Ok(ConfigSyntax::PhpFpm),
            k => Err(format!("editing a {k} configuration is not supported")),
        }
    }

    /// The parsed changes (all, or the first error).
    pub fn parsed(&self) -> Result<Vec<Change>, String> {
        if self.changes.is_empty() {
            return Err("the edit has no changes".into());
        }
        let syntax = self.syntax()?;
        self.changes
            .iter()
            .map(|c| Change::parse(syntax, c))
            .collect()
    }
}

impl ServiceAction {
    /// The server kind: the `server` param, or a guess from the unit name.
    pub fn server_kind(&self) -> ServerKind {
        if let Some(k) = self.server {
            return k;
        }
        let u = self.unit.to_ascii_lowercase();
        if u.contains("nginx") {
            ServerKind::Nginx
        } else if u.contains("apache") || u.contains("httpd") {
            ServerKind::Apache
        } else if u.contains("fpm") {
            ServerKind::PhpFpm
        } else if u.contains("haproxy") {
            ServerKind::Haproxy
        } else {
            ServerKind::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAction {
    /// The program and its arguments; never passed to a shell.
    pub argv: Vec<String>,
    /// How long it may run (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// IIS's command-line tool, as Windows names it before `%windir%` is expanded.
pub const APPCMD: &str = r"%windir%\system32\inetsrv\appcmd.exe";

/// Is `name` usable as an application pool name in an `appcmd` argument?
/// IIS forbids `|` and control characters; a quote, or a leading `/` or
/// `-`, would read as another argument or switch.
pub fn valid_pool_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty()
        || name.len() > 256
        || name.starts_with(['/', '-'])
        || name.chars().any(|c| c.is_control() || c == '"' || c == '|')
    {
        return Err(format!("`{name}` is not an application pool name"));
    }
    Ok(())
}

/// The exact commands of an IIS action, in order (`appcmd` is the path of
/// `appcmd.exe`): `net stop w3svc` and `net start w3svc`; `iisreset`;
/// `APPCMD recycle apppool /apppool.name:POOL`. Never through a shell.
pub fn iis_commands(a: &IisAction, appcmd: &str) -> Result<Vec<Vec<String>>, String> {
    let argv = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    match a.op {
        IisOp::Restart => Ok(vec![
            argv(&["net", "stop", "w3svc"]),
            argv(&["net", "start", "w3svc"]),
        ]),
        IisOp::Reset => Ok(vec![argv(&["iisreset"])]),
        IisOp::Recycle => {
            let pool = a
                .app_pool
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .ok_or("recycling needs the application pool (`app_pool`)")?;
            valid_pool_name(pool)?;
            Ok(vec![vec![
                appcmd.to_owned(),
                "recycle".into(),
                "apppool".into(),
                format!("/apppool.name:{pool}"),
            ]])
        }
    }
}

/// Quote an argv for display the way a POSIX shell would read it back.
pub fn shell_quote(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The wp-cli argv that switches plugin `p` (`wp` is the program to run).
pub fn wp_argv(wp: &str, p: &PluginAction) -> Vec<String> {
    vec![
        wp.to_owned(),
        "plugin".into(),
        match p.op {
            PluginOp::Disable => "deactivate",
            PluginOp::Enable => "activate",
        }
        .into(),
        p.name.clone(),
        format!("--path={}", p.document_root),
        // A broken plugin must not break wp-cli itself.
        "--skip-plugins".into(),
        "--skip-themes".into(),
    ]
}

impl ActionSpec {
    /// The exact argv of the main command, independent of this machine
    /// (the engine is pure). The [`Plan`] resolves the commands this host
    /// will really run (systemd or the server's signal, wp-cli or a rename).
    pub fn argv(&self) -> Vec<String> {
        match self {
            ActionSpec::Service(s) => {
                vec!["systemctl".into(), s.op.to_string(), s.unit.clone()]
            }
            ActionSpec::ClearCache(c) => vec![
                "find".into(),
                c.path.clone(),
                "-mindepth".into(),
                "1".into(),
                "-delete".into(),
            ],
            ActionSpec::Plugin(p) => wp_argv("wp", p),
            ActionSpec::IsolatePlugins(i) => {
                let mut v = vec![
                    "wp".into(),
                    "plugin".into(),
                    "deactivate".into(),
                    format!("--path={}", i.document_root),
                ];
                if i.suspects.is_empty() {
                    v.push("--all".into());
                } else {
                    v.extend(i.suspects.iter().cloned());
                }
                v
            }
            ActionSpec::Rollback(r) => vec!["cp".into(), r.backup.clone(), r.file.clone()],
            ActionSpec::Command(c) => c.argv.clone(),
            // The edit is made in-process; this is its effect as a command
            // line for the record (the diff is what the operator consents to).
            ActionSpec::ConfigEdit(e) => {
                let mut v = vec!["edit".into(), e.file.clone()];
                v.extend(e.changes.iter().cloned());
                v
            }
            ActionSpec::Ownership(o) if !o.restore.is_empty() => {
                vec!["restore-ownership".into(), o.path.clone()]
            }
            // The stop of a restart is the step that interrupts; the plan lists both.
            ActionSpec::Iis(a) => iis_commands(a, APPCMD)
                .ok()
                .and_then(|c| c.into_iter().next())
                .unwrap_or_else(|| {
                    vec![
                        APPCMD.into(),
                        "recycle".into(),
                        "apppool".into(),
                        "/apppool.name:".into(),
                    ]
                }),
            ActionSpec::Ownership(o) => vec![
                "chown".into(),
                "-R".into(),
                "-h".into(),
                format!("{}:{}", o.user, o.group.as_deref().unwrap_or("")),
                o.path.clone(),
            ],
            // The operator's equivalent of the API call the executor makes.
            ActionSpec::ContainerRestart(c) => {
                let mut v = vec!["docker".into(), "restart".into()];
                if let Some(t) = c.stop_timeout {
                    v.push("--time".into());
                    v.push(t.min(300).to_string());
                }
                v.push(c.container.clone());
                v
            }
        }
    }

    /// Substitute `{{ name }}` values. A command's argv items are rendered one
    /// for one: a value with newlines or shell metacharacters stays exactly one
    /// argument (no list expansion, never a shell). Other kinds use the
    /// engine's JSON rendering, where a list param written as
    /// `["{{ cache_paths }}"]` expands to one item per line.
    pub fn render(&self, values: &crate::template::Values) -> Result<ActionSpec, String> {
        if let ActionSpec::Command(c) = self {
            let argv = c
                .argv
                .iter()
                .map(|a| crate::template::render(a, values).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(ActionSpec::Command(CommandAction {
                argv,
                timeout: c.timeout,
            }));
        }
        serde_json::to_value(self)
            .map_err(|e| e.to_string())
            .and_then(|j| crate::template::render_json(&j, values).map_err(|e| e.to_string()))
            .and_then(|j| serde_json::from_value::<ActionSpec>(j).map_err(|e| e.to_string()))
    }

    /// A short human description.
    pub fn describe(&self) -> String {
        match self {
            ActionSpec::Service(s) => format!(
                "{} {}",
                match s.op {
                    ServiceOp::Reload => "Reload",
                    ServiceOp::Restart => "Restart",
                },
                s.unit
            ),
            ActionSpec::ClearCache(c) => format!("Clear the cache in {}", c.path),
            ActionSpec::Plugin(p) => match p.op {
                PluginOp::Disable => format!("Disable plugin {}", p.name),
                PluginOp::Enable => format!("Re-enable plugin {}", p.name),
            },
            ActionSpec::IsolatePlugins(i) => {
                if i.suspects.is_empty() {
                    format!("Find the plugin that breaks {}", i.url)
                } else {
                    format!("Find which of {} breaks {}", i.suspects.join(", "), i.url)
                }
            }
            ActionSpec::Rollback(r) => format!("Restore {} from {}", r.file, r.backup),
            ActionSpec::Command(c) => format!("Run {}", c.argv.first().map_or("", String::as_str)),
            ActionSpec::ConfigEdit(e) => {
                let what = e.parsed().map_or_else(
                    |_| e.changes.join("; "),
                    |cs| {
                        cs.iter()
                            .map(Change::describe)
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                );
                format!("Edit {}: {what}", e.file)
            }
            ActionSpec::Ownership(o) if !o.restore.is_empty() => format!(
                "Restore the previous owner and mode of {} entries in {}",
                o.restore.len(),
                o.path
            ),
            ActionSpec::Iis(a) => match a.op {
                IisOp::Restart => "Restart IIS (net stop w3svc, net start w3svc)".into(),
                IisOp::Reset => "Restart every IIS service (iisreset)".into(),
                IisOp::Recycle => format!(
                    "Recycle the IIS application pool {}",
                    a.app_pool.as_deref().unwrap_or("(none given)")
                ),
            },
            ActionSpec::ContainerRestart(c) => format!("Restart container {}", c.container),
            ActionSpec::Ownership(o) => format!(
                "Give {} back to {}{} (chown -R -h, chmod -R u+rwX)",
                o.path,
                o.user,
                o.group
                    .as_deref()
                    .map(|g| format!(":{g}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// The least tier this kind of action can have, whatever the playbook
    /// declares: restarting is at least disruptive, deleting cache files destructive.
    pub fn min_tier(&self) -> Tier {
        match self {
            ActionSpec::Service(_)
            | ActionSpec::Rollback(_)
            | ActionSpec::ConfigEdit(_)
            | ActionSpec::Ownership(_)
            | ActionSpec::Iis(_) => Tier::Disruptive,
            ActionSpec::ContainerRestart(_) => Tier::Disruptive,
            ActionSpec::ClearCache(_) => Tier::Destructive,
            ActionSpec::Plugin(_) | ActionSpec::IsolatePlugins(_) | ActionSpec::Command(_) => {
                Tier::Reversible
            }
        }
    }

    /// The tier the executor enforces: the declared one, raised to [`Self::min_tier`].
    pub fn effective_tier(&self, declared: Tier) -> Tier {
        declared.max(self.min_tier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_raised_to_the_kind_minimum() {
        let s = ActionSpec::ClearCache(ClearCacheAction {
            path: "/c".into(),
            allowed: vec![],
            worker_user: None,
        });
        assert_eq!(s.effective_tier(Tier::Reversible), Tier::Destructive);
        let c = ActionSpec::Command(CommandAction {
            argv: vec!["true".into()],
            timeout: None,
        });
        assert_eq!(c.effective_tier(Tier::Disruptive), Tier::Disruptive);
    }

    #[test]
    fn quoting_keeps_metacharacters_literal() {
        let q = shell_quote(&["echo".into(), "; rm -rf /".into(), "it's".into()]);
        assert_eq!(q, r"echo '; rm -rf /' 'it'\''s'");
    }

    #[test]
    fn kinds_parse_from_toml() {
        let s: ActionSpec = toml::from_str(
            r#"plugin = { document_root = "/srv/wp", name = "evil", op = "disable" }"#,
        )
        .unwrap();
        assert!(matches!(s, ActionSpec::Plugin(_)));
        let e = toml::from_str::<ActionSpec>(
            r#"plugin = { document_root = "/", name = "x", op = "disable", extra = 1 }"#,
        );
        assert!(e.is_err());
    }
}
