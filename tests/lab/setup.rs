//! How each scenario is brought up and provoked: which servers run, what is broken after start,
//! and which requests trigger the incident.
//!
//! Invariants: the scenario's own files are rendered last, so they override shared ones; anything
//! that must be true before the fault (e.g. "the site worked before the edit") is checked here and
//! fails the start; loads are bounded (see `load`).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail, ensure};

use super::client::{self, Reply};
use super::load::Load;
use super::{Observed, RunningScenario};

/// How long the overload scenario's clients keep php-fpm saturated.
const OVERLOAD_FOR: Duration = Duration::from_secs(8);
/// Past the keepalive-race app's idle timeout (1 s), with room for a loaded machine.
pub const KEEPALIVE_RACE_WAIT: Duration = Duration::from_millis(1_400);
/// Clients in the overload scenario (1 busy child + 2 queued on a backlog of 1, the rest refused).
const OVERLOAD_CLIENTS: usize = 6;

/// Brings the scenario up: renders its configs, starts its servers, breaks what it breaks.
pub fn bring_up(rs: &mut RunningScenario) -> anyhow::Result<()> {
    let name = rs.spec.name;
    let app = format!("127.0.0.1:{}", rs.var("app_port"));
    if uses_php(name) {
        rs.render("_php")?;
    }
    rs.render(name)?;
    match name {
        "nginx_upstream_refused" | "nginx_no_live_upstreams" => rs.start_nginx(),
        "nginx_upstream_oom" => upstream_oom(rs),
        "nginx_socket_missing"
        | "nginx_socket_permission"
        | "nginx_app_fatal_segv"
        | "nginx_app_fatal_undefined"
        | "nginx_plugin_fault"
        | "nginx_upstream_overloaded" => {
            rs.start_php_fpm()?;
            rs.start_nginx()
        }
        "nginx_upstream_timeout" => {
            rs.start_app(&app, "slow", &["--delay", "5"])?;
            rs.start_nginx()
        }
        "nginx_upstream_closed" => {
            rs.start_app(&app, "close-after-read", &[])?;
            rs.start_nginx()
        }
        "nginx_invalid_response" => {
            rs.start_app(&app, "nul-header", &[])?;
            rs.start_nginx()
        }
        "nginx_header_too_big" => {
            rs.start_app(&app, "big-header", &["--header-size", "16384"])?;
            rs.start_nginx()
        }
        "nginx_dns_failure" => {
            rs.start_dns_stub()?;
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()
        }
        "nginx_recent_change" => recent_change(rs, &app),
        "nginx_config_typo_backup" => config_typo_backup(rs, &app),
        "nginx_config_error" => config_error(rs, &app),
        "nginx_cache_fault" => cache_fault(rs, &app),
        "nginx_cache_fault_tree" => cache_fault_tree(rs, &app),
        "nginx_dns_no_resolver" => {
            rs.start_dns_resolver("app.shop.internal")?;
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()
        }
        "nginx_dns_typo" => {
            rs.start_dns_hosts("app.shop.internal")?;
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()
        }
        "nginx_keepalive_race" => {
            rs.start_app(&app, "keepalive", &["--idle-timeout", "1000"])?;
            rs.start_nginx()
        }
        "nginx_firewall_blocked" => {
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()?;
            let port = rs.port("app_port");
            rs.block_port(port)
        }
        "nginx_firewall_ufw_user_drop" => {
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()?;
            let port = rs.port("app_port");
            rs.block_port_ufw(port)
        }
        "nginx_firewall_nft_output" => {
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()?;
            let port = rs.port("app_port");
            rs.block_port_nft(port)
        }
        "nginx_tls_upstream" => {
            rs.start_tls_app()?;
            rs.start_nginx()
        }
        "nginx_ipv6_only_app" => {
            let v6 = format!("[::1]:{}", rs.var("app_port"));
            rs.start_app(&v6, "healthy", &[])?;
            rs.start_nginx()
        }
        "nginx_frontend_down" => {
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()?;
            rs.stop_nginx();
            Ok(())
        }
        "nginx_resource_exhaustion" | "nginx_healthy" => {
            rs.start_app(&app, "healthy", &[])?;
            rs.start_nginx()
        }
        "apache_upstream_refused" => rs.start_apache(),
        "apache_invalid_response" => {
            rs.start_app(&app, "nul-header", &[])?;
            rs.start_apache()
        }
        "apache_upstream_timeout" => {
            rs.start_app(&app, "slow", &["--delay", "5"])?;
            rs.start_apache()
        }
        "apache_socket_missing" => {
            rs.start_php_fpm()?;
            rs.start_apache()
        }
        "haproxy_upstream_refused" => {
            rs.start_haproxy()?;
            // Let the health check mark the server DOWN, as it would be minutes into an incident.
            rs.wait_for_line(&super::Proof {
                log: "haproxy",
                pattern: r"Server be_app/app1 is DOWN",
            })
            .map(drop)
        }
        "haproxy_edge_error" => {
            rs.start_origin_nginx()?;
            rs.start_haproxy()?;
            rs.wait_for_line(&super::Proof {
                log: "haproxy",
                pattern: r"Server be_origin/origin1 is DOWN",
            })
            .map(drop)
        }
        "haproxy_invalid_response" => {
            rs.start_app(&app, "garbage", &[])?;
            rs.start_haproxy()
        }
        other => bail!("scenario {other} has no setup"),
    }
}

/// Makes the requests that trigger the incident.
pub fn provoke(rs: &mut RunningScenario) -> Observed {
    let mut controls: Vec<(String, Reply)> = rs
        .spec
        .healthy_paths
        .iter()
        .map(|p| ((*p).to_owned(), client::get(&format!("{}{p}", rs.base))))
        .collect();
    match rs.spec.name {
        // The origin behind the load balancer answers when asked directly.
        "haproxy_edge_error" => {
            let origin = format!("http://127.0.0.1:{}/", rs.var("app_port"));
            let reply = client::get(&origin);
            controls.push((origin, reply));
        }
        // The first request marks both peers failed; the second finds no live upstream.
        "nginx_no_live_upstreams" => {
            client::get(&rs.url);
        }
        "nginx_upstream_overloaded" => {
            rs.load = Some(Load::start(
                &format!("{}/report", rs.base),
                OVERLOAD_CLIENTS,
                OVERLOAD_FOR,
            ));
            std::thread::sleep(Duration::from_millis(700));
        }
        // A request leaves a kept-alive connection; the next one, past the app's idle timeout,
        // is sent on it. Afterwards a last request leaves a fresh idle connection, and the wait
        // puts it past the app's idle timeout too: the next request through nginx (the
        // diagnosis's own) meets the race again.
        "nginx_keepalive_race" => {
            let first = client::get(&rs.url);
            controls.push(("/ (opens the kept-alive connection)".into(), first));
            std::thread::sleep(KEEPALIVE_RACE_WAIT);
            let reply = client::get(&rs.url);
            let again = client::get(&rs.url);
            controls.push(("/ (leaves an idle connection)".into(), again));
            std::thread::sleep(KEEPALIVE_RACE_WAIT);
            return Observed { reply, controls };
        }
        _ => {}
    }
    let reply = client::get(&rs.url);
    Observed { reply, controls }
}

fn uses_php(name: &str) -> bool {
    matches!(
        name,
        "nginx_socket_missing"
            | "nginx_socket_permission"
            | "nginx_app_fatal_segv"
            | "nginx_app_fatal_undefined"
            | "nginx_plugin_fault"
            | "nginx_upstream_overloaded"
            | "nginx_upstream_oom"
            | "apache_socket_missing"
    )
}

/// Memory limit of the upstream's cgroup in `nginx_upstream_oom`: room for the pool, not for
/// the 512 MiB a page allocates.
const UPSTREAM_OOM_LIMIT: u64 = 96 << 20;

/// php-fpm (master and workers) is moved into a memory cgroup of its own, as a container or a
/// systemd unit with `MemoryMax=` would hold it; the site's pages then allocate past that limit
/// and the kernel OOM-kills the worker serving the request.
fn upstream_oom(rs: &mut RunningScenario) -> anyhow::Result<()> {
    rs.start_php_fpm()?;
    let tag = rs
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("scenario dir name")?
        .to_owned();
    let cg = super::noise::MemCgroup::create(&format!("triage502-lab-{tag}"), UPSTREAM_OOM_LIMIT)?;
    let (_, master) = *rs
        .masters()
        .iter()
        .find(|(n, _)| *n == "php-fpm")
        .context("php-fpm master")?;
    for pid in super::process::session_members(master) {
        cg.add(pid)?;
    }
    rs.cgroups.push(cg);
    rs.start_nginx()
}

/// The site works; then `shop.conf` is copied to `shop.conf.bak` (mtime kept), edited with a
/// port typo from `edits/shop.conf`, and nginx is reloaded.
fn recent_change(rs: &mut RunningScenario, app: &str) -> anyhow::Result<()> {
    rs.start_app(app, "healthy", &[])?;
    let site = rs.dir.join("sites-enabled/shop.conf");
    // The working config has been in place for days.
    let days_ago = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&site)?
        .set_modified(days_ago)?;
    rs.start_nginx()?;
    let before = client::get(&rs.url);
    ensure!(
        before.status() == Some(200),
        "the site should work before the edit, got {}",
        before.describe()
    );
    let backup = rs.dir.join("sites-enabled/shop.conf.bak");
    std::fs::copy(&site, &backup)?;
    std::fs::File::options()
        .write(true)
        .open(&backup)?
        .set_modified(days_ago)?;
    apply_edit(rs, "sites-enabled/shop.conf")?;
    rs.reload_nginx()
}

/// The site works; then `nginx.conf` itself is copied to `nginx.conf.bak` and edited with a wrong
/// upstream port from `edits/nginx.conf`, and nginx is reloaded: the backup holds the good one.
fn config_typo_backup(rs: &mut RunningScenario, app: &str) -> anyhow::Result<()> {
    rs.start_app(app, "healthy", &[])?;
    rs.start_nginx()?;
    let before = client::get(&rs.url);
    ensure!(
        before.status() == Some(200),
        "the site should work before the edit, got {}",
        before.describe()
    );
    let conf = rs.dir.join("nginx.conf");
    let backup = rs.dir.join("nginx.conf.bak");
    std::fs::copy(&conf, &backup)?;
    std::fs::File::options()
        .write(true)
        .open(&backup)?
        .set_modified(SystemTime::now() - super::template::CONFIG_AGE)?;
    apply_edit(rs, "nginx.conf")?;
    rs.reload_nginx()
}

/// The app moved to a new port; the old config still points at the old one. The operator's fix
/// (`edits/shop.conf`) has a syntax error, so the reload is rejected and the old config stays.
fn config_error(rs: &mut RunningScenario, app: &str) -> anyhow::Result<()> {
    rs.start_app(app, "healthy", &[])?;
    rs.start_nginx()?;
    apply_edit(rs, "sites-enabled/shop.conf")?;
    rs.reload_nginx_expecting_rejection()
}

/// Replaces `target` (relative to the scenario dir) with the scenario's `edits/<its file name>`
/// and removes `edits/`.
fn apply_edit(rs: &RunningScenario, target: &str) -> anyhow::Result<()> {
    let edits = rs.dir.join("edits");
    let name = std::path::Path::new(target)
        .file_name()
        .context("edit target without a file name")?;
    let text = std::fs::read_to_string(edits.join(name))
        .with_context(|| format!("edits/{}", name.to_string_lossy()))?;
    std::fs::write(rs.dir.join(target), text)?;
    std::fs::remove_dir_all(edits)?;
    Ok(())
}

/// The cache works; then the whole tree is re-owned root:root and made owner-only, as a careless
/// `chown -R root:root` and `chmod -R go-rwx` would. (`nginx -t` as root gives the top directory
/// back to the worker user, not what is below it: this fault survives a config test.)
fn cache_fault_tree(rs: &mut RunningScenario, app: &str) -> anyhow::Result<()> {
    cache_fault(rs, app)?;
    let mut stack = vec![rs.dir.join("cache")];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p)?;
        if m.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
        std::os::unix::fs::lchown(&p, Some(0), Some(0))?;
        if !m.file_type().is_symlink() {
            let mode = m.permissions().mode() & 0o700;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// The cache works; then its directory is re-owned root:root 0700, as a careless `chown -R` would.
fn cache_fault(rs: &mut RunningScenario, app: &str) -> anyhow::Result<()> {
    rs.start_app(app, "healthy", &[])?;
    rs.start_nginx()?;
    let warm = client::get(&rs.url);
    ensure!(
        warm.status() == Some(200),
        "the cached site should work before the chown, got {}",
        warm.describe()
    );
    let cache = rs.dir.join("cache");
    ensure!(cache.is_dir(), "nginx did not create {}", cache.display());
    std::os::unix::fs::chown(&cache, Some(0), Some(0))?;
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}
