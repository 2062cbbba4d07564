//! Per scenario: which containers start on which networks, what is broken after start, and the
//! request that provokes it. Real nginx configs, written per run.

use std::time::Duration;

use anyhow::Context;

use super::docker;
use super::harness::ContainerLab;

/// Answered by nginx itself: the harness waits for it before provoking.
const READY: &str = "    location = /triage502-lab-ready { return 204; }";

/// An nginx `server {}` proxying `/` to `upstream` (a `proxy_pass` argument), with `extra`
/// directives in the server block.
fn proxy_site(upstream: &str, extra: &str) -> String {
    format!(
        "server {{\n    listen 80 default_server;\n    proxy_connect_timeout 3s;\n    \
         proxy_read_timeout 2s;\n{extra}\n{READY}\n    location / {{\n        proxy_pass {upstream};\n    }}\n}}\n"
    )
}

/// The site that resolves `app` per request through Docker's embedded DNS.
fn resolver_site() -> String {
    proxy_site(
        "http://$upstream_app",
        "    resolver 127.0.0.11 valid=1s ipv6=off;\n    resolver_timeout 2s;\n    \
         set $upstream_app app:3000;",
    )
}

/// A FastCGI site for `index.php` on `php:PORT`.
fn php_site(port: u16) -> String {
    format!(
        "server {{\n    listen 80 default_server;\n    root /var/www/html;\n    index index.php;\n{READY}\n    \
         location ~ \\.php$ {{\n        include fastcgi_params;\n        \
         fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n        \
         fastcgi_pass php:{port};\n    }}\n}}\n"
    )
}

/// Starts the app container on `net` with alias `app` and `env` (`APP_*` settings); waits until
/// it runs.
fn app(lab: &mut ContainerLab, role: &str, net: &str, extra: &[&str]) -> anyhow::Result<String> {
    let mut args = vec!["--network", net, "--network-alias", role];
    args.extend(extra);
    let name = lab.run(role, &args, "app", &[])?;
    Ok(name)
}

/// Waits until the app (python) listens inside its container: its health probe passes.
fn app_listening(name: &str) -> anyhow::Result<()> {
    docker::wait_until(Duration::from_secs(10), "the app to listen", || {
        Ok(docker::raw(&["exec", name, "python3", "/app/health.py"])?
            .status
            .success())
    })
}

/// Brings the scenario up and provokes it; returns what the client saw.
pub fn start(lab: &mut ContainerLab) -> anyhow::Result<super::client::Reply> {
    let name = lab.spec.name;
    match name {
        "healthy" | "slow_app_504" | "upstream_oom" => {
            let net = lab.network("net")?;
            let env: &[&str] = match name {
                "slow_app_504" => &["-e", "APP_MODE=slow", "-e", "APP_DELAY=5"],
                "upstream_oom" => &[
                    "-e",
                    "APP_MODE=hog-on-request",
                    "-e",
                    "APP_HOG_MB=16",
                    "--memory",
                    "64m",
                    "--memory-swap",
                    "64m",
                ],
                _ => &[],
            };
            let a = app(lab, "app", &net, env)?;
            app_listening(&a)?;
            lab.nginx(&proxy_site("http://app:3000", ""), &[&net])?;
            if name == "healthy" {
                // Docker's first probe comes after its 1 s interval (later on a loaded machine).
                docker::wait_until(Duration::from_secs(15), "the app to be healthy", || {
                    Ok(docker::inspect(&a, "{{.State.Health.Status}}")? == "healthy")
                })?;
            }
        }
        "app_loopback_only" => {
            let net = lab.network("net")?;
            let a = app(lab, "app", &net, &["-e", "APP_LISTEN=127.0.0.1:3000"])?;
            app_listening(&a)?;
            lab.nginx(&proxy_site("http://app:3000", ""), &[&net])?;
        }
        "stale_address" => {
            let net = lab.network("net")?;
            let a = app(lab, "app", &net, &[])?;
            app_listening(&a)?;
            lab.nginx(&proxy_site("http://app:3000", ""), &[&net])?;
            let old_ip = lab.ip("app");
            // A deploy: the app is removed; a worker (no port 3000) starts first and takes the
            // lowest free address, the app's old one; the new app gets another.
            docker::docker(&["rm", "-f", &a])?;
            lab.containers.remove("app");
            app(lab, "worker", &net, &["-e", "APP_LISTEN=0.0.0.0:4000"])?;
            let a = app(lab, "app", &net, &[])?;
            app_listening(&a)?;
            let (worker_ip, new_ip) = (lab.ip("worker"), lab.ip("app"));
            anyhow::ensure!(
                worker_ip == old_ip && new_ip != old_ip,
                "the worker did not take the app's old address {old_ip} (worker {worker_ip}, app {new_ip})"
            );
        }
        "different_networks" => {
            let front = lab.network("front")?;
            let back = lab.network("back")?;
            let a = app(lab, "app", &back, &[])?;
            app_listening(&a)?;
            lab.nginx(&resolver_site(), &[&front])?;
        }
        "upstream_exited" => {
            let net = lab.network("net")?;
            let a = app(lab, "app", &net, &[])?;
            app_listening(&a)?;
            lab.nginx(&proxy_site("http://app:3000", ""), &[&net])?;
            docker::docker(&["stop", "-t", "1", &a])?;
        }
        "restart_loop" => {
            let net = lab.network("net")?;
            let a = app(
                lab,
                "app",
                &net,
                &[
                    "-e",
                    "APP_MODE=exit",
                    "-e",
                    "APP_EXIT_CODE=3",
                    "--restart",
                    "always",
                ],
            )?;
            lab.nginx(&resolver_site(), &[&net])?;
            docker::wait_until(Duration::from_secs(20), "two restarts", || {
                Ok(docker::inspect(&a, "{{.RestartCount}}")?
                    .parse::<u32>()
                    .unwrap_or(0)
                    >= 2)
            })?;
        }
        "unhealthy_app" => {
            let net = lab.network("net")?;
            let a = app(lab, "app", &net, &["-e", "APP_MODE=unhealthy"])?;
            lab.nginx(&proxy_site("http://app:3000", ""), &[&net])?;
            docker::wait_until(Duration::from_secs(15), "the app to be unhealthy", || {
                Ok(docker::inspect(&a, "{{.State.Health.Status}}")? == "unhealthy")
            })?;
        }
        "php_fpm" | "php_fpm_wrong_port" => {
            let net = lab.network("net")?;
            lab.run(
                "php",
                &["--network", &net, "--network-alias", "php"],
                "php-fpm",
                &[],
            )?;
            let port = if name == "php_fpm" { 9000 } else { 9001 };
            lab.nginx(&php_site(port), &[&net])?;
            lab.url = format!("http://127.0.0.1:{}/index.php", lab.port);
        }
        "host_nginx_published_dead" => {
            let net = lab.network("net")?;
            let published = super::ports::free_port()?;
            let publish = format!("127.0.0.1:{published}:3000");
            lab.run(
                "app",
                &[
                    "--network",
                    &net,
                    "-p",
                    &publish,
                    "-e",
                    "APP_MODE=listen-nothing",
                ],
                "app",
                &[],
            )?;
            let site = format!(
                "  server {{\n    listen 127.0.0.1:{};\n    proxy_connect_timeout 3s;\n    \
                 proxy_read_timeout 5s;\n{READY}\n    location / {{ proxy_pass http://127.0.0.1:{published}; }}\n  }}",
                lab.port
            );
            lab.host_nginx(&site).context("host nginx")?;
        }
        other => anyhow::bail!("no setup for container scenario {other}"),
    }
    Ok(lab.get())
}
