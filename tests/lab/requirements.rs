//! What the lab needs from the machine: root, and the servers from Debian's packages.
//!
//! Invariant: when something is missing the lab fails with the exact command that installs it;
//! it never skips a scenario silently.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The command that installs everything the lab runs.
pub const INSTALL: &str = "apt-get install -y nginx apache2 php-fpm haproxy iptables curl openssl";

/// Absolute paths of the binaries the lab runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub nginx: PathBuf,
    pub apache2: PathBuf,
    pub php_fpm: PathBuf,
    pub haproxy: PathBuf,
    pub iptables: PathBuf,
    pub openssl: PathBuf,
}

/// Checks once per process; panics with the install command when something is missing.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(check) {
        Ok(t) => t,
        Err(msg) => panic!("{msg}"),
    }
}

fn check() -> Result<Tools, String> {
    let mut problems = Vec::new();
    if !is_root() {
        problems.push(
            "the lab must run as root (masters as root, workers as www-data/nobody, iptables)"
                .to_owned(),
        );
    }
    let mut find = |name: &str| {
        which::which(name).unwrap_or_else(|_| {
            problems.push(format!("`{name}` not found"));
            PathBuf::new()
        })
    };
    let nginx = find("nginx");
    let apache2 = find("apache2");
    let haproxy = find("haproxy");
    let iptables = find("iptables");
    let openssl = find("openssl");
    let php_fpm = php_fpm_binary().unwrap_or_else(|| {
        problems.push("no php-fpm binary (php-fpm or /usr/sbin/php-fpmX.Y) found".to_owned());
        PathBuf::new()
    });
    if problems.is_empty() {
        Ok(Tools {
            nginx,
            apache2,
            php_fpm,
            haproxy,
            iptables,
            openssl,
        })
    } else {
        Err(format!(
            "the incident lab cannot run: {}.\nAs root on Debian/Ubuntu run:\n    {INSTALL}",
            problems.join("; ")
        ))
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// `php-fpm` on PATH, else the newest versioned `/usr/sbin/php-fpmX.Y` (Debian's layout).
fn php_fpm_binary() -> Option<PathBuf> {
    if let Ok(p) = which::which("php-fpm") {
        return Some(p);
    }
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .filter_map(|e| {
            let path = e.ok()?.path();
            let version = path
                .file_name()?
                .to_str()?
                .strip_prefix("php-fpm")?
                .to_owned();
            let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
            Some((parts?, path))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}
