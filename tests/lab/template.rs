//! Renders a scenario's config files from `tests/lab/scenarios/<name>/` into its temp dir.
//!
//! Files are real configs with `{{ name }}` placeholders (the temp dir, ports, …). Invariants: a
//! placeholder without a value is an error naming the file and line, so a typo never reaches a
//! server; relative paths are kept; files are written 0644 and dirs 0755, readable by the
//! workers' unprivileged users, and dated [`CONFIG_AGE`] ago: a site's configs have been in
//! place for days before an incident, so only a scenario's own edits are recent changes.

use std::collections::BTreeMap;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// How old rendered files look (their mtime).
pub const CONFIG_AGE: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

/// Where the scenario templates live in the repo.
pub fn scenarios_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/scenarios")
}

/// Renders every file under `src` into `dst`, keeping relative paths.
pub fn render_tree(src: &Path, dst: &Path, vars: &BTreeMap<String, String>) -> anyhow::Result<()> {
    if !src.is_dir() {
        bail!("no scenario templates at {}", src.display());
    }
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let rel = path.strip_prefix(src)?;
            let out = dst.join(rel);
            if path.is_dir() {
                make_dir(&out)?;
                stack.push(path);
            } else {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let rendered = render(&text, vars, &path)?;
                if let Some(parent) = out.parent() {
                    make_dir(parent)?;
                }
                std::fs::write(&out, rendered)?;
                std::fs::set_permissions(&out, Permissions::from_mode(0o644))?;
                std::fs::File::options()
                    .write(true)
                    .open(&out)?
                    .set_modified(std::time::SystemTime::now() - CONFIG_AGE)?;
            }
        }
    }
    Ok(())
}

/// Replaces each `{{ name }}` in `text`; `origin` names the file in errors.
pub fn render(
    text: &str,
    vars: &BTreeMap<String, String>,
    origin: &Path,
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find("}}") else {
                bail!("{}:{}: unclosed {{{{", origin.display(), n + 1);
            };
            let name = rest[start + 2..start + len].trim();
            let Some(value) = vars.get(name) else {
                bail!(
                    "{}:{}: no value for {{{{ {name} }}}}",
                    origin.display(),
                    n + 1
                );
            };
            out.push_str(value);
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// Creates `dir` (and parents) with mode 0755.
pub fn make_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o755))?;
    Ok(())
}
