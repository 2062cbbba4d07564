//! Disabling and re-enabling one WordPress plugin: `wp plugin
//! deactivate/activate` when wp-cli is installed, else renaming the plugin's
//! entry in `wp-content/plugins` to `NAME.disabled-by-triage502` and back
//! (WordPress skips a plugin whose directory is gone). Invariants: a plugin
//! name is one path component (no `/`, no `..`), so a rename never leaves the
//! plugins directory; listing is bounded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::policy::ExecPolicy;
use super::process;
use super::{PluginAction, PluginOp};

/// The suffix of a plugin directory disabled by renaming.
pub const DISABLED_SUFFIX: &str = ".disabled-by-triage502";
/// At most this many plugins are listed.
pub const MAX_PLUGINS: usize = 1_000;
/// How long one wp-cli call may run.
pub const WP_TIMEOUT: Duration = Duration::from_secs(60);

/// `ROOT/wp-content/plugins`.
pub fn plugins_dir(root: &str) -> PathBuf {
    Path::new(root).join("wp-content").join("plugins")
}

/// A plugin name must be one plain path component.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.starts_with('-')
    {
        return Err(format!("`{name}` is not a plugin name"));
    }
    Ok(())
}

fn running_as_root() -> bool {
    crate::platform::is_root()
}

pub use crate::action_spec::wp_argv;

/// How plugins are switched on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    WpCli,
    Rename,
}

/// wp-cli when it is on the search path, else renaming.
pub fn method(policy: &ExecPolicy) -> Method {
    if policy.find("wp").is_some() {
        Method::WpCli
    } else {
        Method::Rename
    }
}

fn with_root_flag(mut v: Vec<String>) -> Vec<String> {
    if running_as_root() {
        v.push("--allow-root".into());
    }
    v
}

/// The exact command this host runs for `p` (the rename is done with
/// rename(2), shown as the equivalent `mv`).
pub fn command(p: &PluginAction, policy: &ExecPolicy) -> Vec<String> {
    match method(policy) {
        Method::WpCli => with_root_flag(wp_argv("wp", p)),
        Method::Rename => {
            let dir = plugins_dir(&p.document_root);
            let on = dir.join(&p.name).display().to_string();
            let off = dir
                .join(format!("{}{DISABLED_SUFFIX}", p.name))
                .display()
                .to_string();
            match p.op {
                PluginOp::Disable => vec!["mv".into(), on, off],
                PluginOp::Enable => vec!["mv".into(), off, on],
            }
        }
    }
}

/// What switching one plugin did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switched {
    pub argv: Vec<String>,
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub output: String,
    pub summary: String,
    pub duration_ms: u64,
    /// The plugin's state changed (so the undo list must know).
    pub changed: bool,
}

/// Disable or enable `p` (no policy check here: the executor does that).
pub async fn apply(p: &PluginAction, policy: &ExecPolicy) -> Switched {
    let t0 = Instant::now();
    let argv = command(p, policy);
    if let Err(e) = validate_name(&p.name) {
        return Switched {
            argv,
            ok: false,
            exit_code: None,
            output: String::new(),
            summary: e,
            duration_ms: 0,
            changed: false,
        };
    }
    if method(policy) == Method::WpCli {
        let r = process::run(&argv, WP_TIMEOUT, policy).await;
        let verb = match p.op {
            PluginOp::Disable => "disabled",
            PluginOp::Enable => "re-enabled",
        };
        let summary = if r.ok {
            format!("plugin {} {verb} with wp-cli", p.name)
        } else {
            format!("wp-cli failed: {}", r.head(3))
        };
        return Switched {
            ok: r.ok,
            exit_code: r.exit_code,
            output: r.transcript(),
            summary,
            duration_ms: r.duration_ms,
            changed: r.ok,
            argv,
        };
    }
    let dir = plugins_dir(&p.document_root);
    let on = dir.join(&p.name);
    let off = dir.join(format!("{}{DISABLED_SUFFIX}", p.name));
    let (from, to, verb) = match p.op {
        PluginOp::Disable => (&on, &off, "disabled"),
        PluginOp::Enable => (&off, &on, "re-enabled"),
    };
    let exists = |q: &Path| q.symlink_metadata().is_ok();
    let (ok, changed, summary) = if exists(to) && !exists(from) {
        (true, false, format!("plugin {} was already {verb}", p.name))
    } else if !exists(from) {
        (
            false,
            false,
            format!("no plugin {} in {}", p.name, dir.display()),
        )
    } else if exists(to) {
        (
            false,
            false,
            format!(
                "both {} and {} exist; sort them out by hand",
                on.display(),
                off.display()
            ),
        )
    } else {
        match std::fs::rename(from, to) {
            Ok(()) => (
                true,
                true,
                format!(
                    "plugin {} {verb} (renamed {} → {})",
                    p.name,
                    from.display(),
                    to.display()
                ),
            ),
            Err(e) => (
                false,
                false,
                format!("cannot rename {}: {e}", from.display()),
            ),
        }
    };
    Switched {
        argv,
        ok,
        exit_code: None,
        output: String::new(),
        summary,
        duration_ms: t0.elapsed().as_millis() as u64,
        changed,
    }
}

/// The enabled plugins of the site, sorted (at most [`MAX_PLUGINS`]).
pub async fn list_enabled(root: &str, policy: &ExecPolicy) -> Result<Vec<String>, String> {
    if method(policy) == Method::WpCli {
        let argv = with_root_flag(vec![
            "wp".into(),
            "plugin".into(),
            "list".into(),
            "--status=active".into(),
            "--field=name".into(),
            format!("--path={root}"),
            "--skip-plugins".into(),
            "--skip-themes".into(),
        ]);
        let r = process::run(&argv, WP_TIMEOUT, policy).await;
        if !r.ok {
            return Err(format!("wp plugin list failed: {}", r.head(3)));
        }
        let mut v: Vec<String> = r
            .output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && validate_name(l).is_ok())
            .take(MAX_PLUGINS)
            .map(str::to_owned)
            .collect();
        v.sort();
        return Ok(v);
    }
    let dir = plugins_dir(root);
    let rd = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut v = Vec::new();
    for e in rd.flatten().take(MAX_PLUGINS * 4) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(DISABLED_SUFFIX) || name == "index.php" {
            continue;
        }
        let is_dir = e.path().is_dir();
        if is_dir || Path::new(&name).extension().is_some_and(|x| x == "php") {
            v.push(name);
        }
        if v.len() >= MAX_PLUGINS {
            break;
        }
    }
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_plugins_directory() {
        assert!(validate_name("woocommerce").is_ok());
        for bad in ["", "..", "../etc", "a/b", "-rf"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
