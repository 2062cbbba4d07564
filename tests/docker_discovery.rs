//! Discovery through containers against the real Docker Engine: an nginx
//! container publishing on 127.0.0.1 in front of an app container reached
//! by its network alias (`app:3000`). `triage502 map URL --format json`
//! must name both containers (name and id), the configuration as seen
//! inside the front's container, and the namespace the probes run from;
//! with the app stopped, the walk's probes must look from that namespace.
//!
//! Skips (with the reason) only when no Engine answers. Every container and
//! network is labelled `triage502.test=docker-core` plus a per-run label,
//! and removed by that label when the test ends, even on failure.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const LABEL: &str = "triage502.test=docker-core";
const NGINX_IMAGE: &str = "triage502-lab/nginx";
const APP_IMAGE: &str = "triage502-lab/app";

fn engine_answers() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let docker = triage502::docker::Docker::from_env().map_err(|u| u.to_string())?;
    rt.block_on(docker.ping()).map_err(|e| e.to_string())
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

fn must(args: &[&str]) -> String {
    let (ok, text) = docker(args);
    assert!(ok, "docker {}: {text}", args.join(" "));
    text
}

/// Removes everything carrying this run's label, even when the test panics.
struct Cleanup {
    run_label: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={}", self.run_label);
        let (_, ids) = docker(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = docker(&args);
        }
        let (_, nets) = docker(&["network", "ls", "-q", "--filter", &filter]);
        for n in nets.split_whitespace() {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

/// The lab images (docker-lab's `scripts/lab/docker-images.sh` builds and
/// caches them from Debian packages; no registry is reachable).
fn ensure_images() {
    let have = |img: &str| docker(&["image", "inspect", img]).0;
    if have(NGINX_IMAGE) && have(APP_IMAGE) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab/docker-images.sh");
    assert!(
        std::path::Path::new(script).exists(),
        "the images {NGINX_IMAGE} and {APP_IMAGE} are missing and {script} (which builds them) is not in this tree"
    );
    let st = Command::new("bash")
        .arg(script)
        .status()
        .expect("bash runs");
    assert!(st.success(), "{script} failed");
    assert!(
        have(NGINX_IMAGE) && have(APP_IMAGE),
        "{script} did not build the images"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn triage(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("triage502 runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(url: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "3",
                "-w",
                "%{http_code}",
                url,
            ])
            .output()
            .expect("curl runs");
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if last == want.to_string() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{url} never answered {want} (last: {last:?})");
}

#[test]
fn map_and_probes_go_through_the_containers() {
    if let Err(why) = engine_answers() {
        eprintln!("SKIP docker_discovery: no Docker Engine answers: {why}");
        return;
    }
    ensure_images();
    let run = format!("{}-{}", std::process::id(), free_port());
    let run_label = format!("triage502.run={run}");
    let _cleanup = Cleanup {
        run_label: run_label.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("default.conf");
    std::fs::write(
        &conf,
        "server {\n    listen 80 default_server;\n    location / {\n        proxy_pass http://app:3000;\n    }\n}\n",
    )
    .unwrap();
    let net = format!("tdc-net-{run}");
    let app = format!("tdc-app-{run}");
    let web = format!("tdc-web-{run}");
    let port = free_port();
    must(&[
        "network", "create", "--label", LABEL, "--label", &run_label, &net,
    ]);
    must(&[
        "run",
        "-d",
        "--label",
        LABEL,
        "--label",
        &run_label,
        "--name",
        &app,
        "--network",
        &net,
        "--network-alias",
        "app",
        "-e",
        "APP_LISTEN=127.0.0.1:3000",
        APP_IMAGE,
    ]);
    let publish = format!("127.0.0.1:{port}:80");
    let mount = format!("{}:/etc/nginx/conf.d/default.conf:ro", conf.display());
    must(&[
        "run",
        "-d",
        "--label",
        LABEL,
        "--label",
        &run_label,
        "--name",
        &web,
        "--network",
        &net,
        "-p",
        &publish,
        "-v",
        &mount,
        NGINX_IMAGE,
    ]);
    let app_id = must(&["inspect", "-f", "{{.Id}}", &app]);
    let web_id = must(&["inspect", "-f", "{{.Id}}", &web]);
    let app_ip = must(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &app,
    ]);
    let url = format!("http://127.0.0.1:{port}/");
    // The app listens on its own loopback only: nginx is refused (502).
    wait_for(&url, 502);

    // The map, as JSON.
    let (code, out, err) = triage(&["map", &url, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).expect("map JSON");
    let front = &m["front"];
    assert_eq!(front["kind"], "nginx", "{out}");
    assert_eq!(front["container"]["name"], web.as_str());
    assert_eq!(front["container"]["id"], web_id.as_str());
    assert_eq!(front["config"], "/etc/nginx/nginx.conf");
    let files: Vec<&str> = front["config_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        files.contains(&"/etc/nginx/conf.d/default.conf"),
        "{files:?}"
    );
    assert_eq!(
        m["route"]["location"]["file"], "/etc/nginx/conf.d/default.conf",
        "the route's file as nginx sees it inside its container"
    );
    let up = &m["upstreams"][0];
    assert_eq!(up["address"], "app:3000");
    assert_eq!(up["container"]["name"], app.as_str());
    assert_eq!(up["container"]["id"], app_id.as_str());
    assert_eq!(up["resolved"][0], app_ip.as_str());
    assert!(
        up["resolved_from"].as_str().unwrap().contains(&web),
        "{}",
        up["resolved_from"]
    );
    assert!(
        up["listener"].is_null(),
        "nothing listens at the address nginx dials: {up}"
    );
    let note = up["listener_note"].as_str().unwrap();
    assert!(
        note.contains(&format!(
            "container {app} listens on port 3000 only on 127.0.0.1:3000"
        )),
        "the app's own listeners, read from its namespace: {note}"
    );
    assert_eq!(m["vantage"]["kind"], "netns");
    assert_eq!(m["vantage"]["pid"], front["pid"]);
    assert_eq!(m["vantage"]["container"], web.as_str());
    assert_eq!(m["published"]["host"], format!("127.0.0.1:{port}"));
    assert_eq!(m["facts"]["front.container"], web.as_str());
    assert_eq!(m["facts"]["upstream.container.id"], app_id.as_str());

    // The text map: every hop with its container.
    let (code, text, err) = triage(&["map", &url]);
    assert_eq!(code, 0, "{err}");
    let hop = format!("client → 127.0.0.1:{port} (");
    assert!(text.contains(&hop), "{text}");
    assert!(
        text.contains(&format!("→ container {web} (nginx)"))
            && text.contains(&format!(
                "→ location / → app:3000 = container {app} {app_ip}"
            )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "probes    from the network namespace of container {web}"
        )),
        "{text}"
    );

    // Without the engine (no socket): the same path from /proc alone, the
    // containers named by their hostnames (the short ids), and the map
    // says what it could not see and the command that would let it.
    let out = Command::new(env!("CARGO_BIN_EXE_triage502"))
        .args(["map", &url, "--format", "json"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("triage502 runs");
    let m2: Value = serde_json::from_slice(&out.stdout).expect("map JSON");
    assert_eq!(m2["front"]["container"]["id"], &web_id[..12], "{m2}");
    assert_eq!(m2["front"]["config"], "/etc/nginx/nginx.conf");
    assert_eq!(m2["upstreams"][0]["container"]["id"], &app_id[..12]);
    assert!(
        m2["upstreams"][0]["listener_note"]
            .as_str()
            .unwrap()
            .contains("only on 127.0.0.1:3000"),
        "{m2}"
    );
    assert!(
        m2["engine"]["reason"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/docker.sock"),
        "{m2}"
    );
    assert!(!m2["engine"]["fix"].as_str().unwrap().is_empty());

    // The walk: the probes of the upstream look from nginx's namespace,
    // where app:3000 is refused (from this host it is not even reachable).
    let (_, out, err) = triage(&["run", "--non-interactive", "--format", "json", &url]);
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let looked = format!("from the network namespace of container {web}");
    let first = &r["findings"][0];
    assert_eq!(first["cause"], "upstream_refused", "{first}");
    let evidence = first["evidence"].as_array().unwrap();
    assert!(
        evidence.iter().any(|e| e["label"] == "looked"
            && e["text"].as_str().is_some_and(|t| t.starts_with(&looked))),
        "the finding's probe looked from the proxy's namespace: {first}"
    );
    assert!(
        evidence
            .iter()
            .any(|e| e["label"] == "name resolved by the proxy's resolver"
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&app_ip) && t.contains("127.0.0.11"))),
        "app resolved by Docker's embedded DNS from nginx's namespace: {first}"
    );
    assert!(
        first["summary"].as_str().unwrap().contains("refused"),
        "{first}"
    );
}

/// Stops the host nginx this test started (by its pid file).
struct HostNginx {
    pid_file: std::path::PathBuf,
}

impl Drop for HostNginx {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

#[test]
fn a_host_nginx_in_front_of_a_published_port_names_the_container() {
    if let Err(why) = engine_answers() {
        eprintln!("SKIP docker_discovery: no Docker Engine answers: {why}");
        return;
    }
    let Ok(nginx) = which::which("nginx") else {
        panic!(
            "nginx is not installed on this host (apt-get install nginx-light; scripts/test.sh does)"
        );
    };
    ensure_images();
    let run = format!("{}-{}", std::process::id(), free_port());
    let run_label = format!("triage502.run={run}");
    let _cleanup = Cleanup {
        run_label: run_label.clone(),
    };
    let app = format!("tdc-hostapp-{run}");
    let app_port = free_port();
    let publish = format!("127.0.0.1:{app_port}:3000");
    must(&[
        "run", "-d", "--label", LABEL, "--label", &run_label, "--name", &app, "-p", &publish,
        APP_IMAGE,
    ]);
    let app_id = must(&["inspect", "-f", "{{.Id}}", &app]);
    let dir = tempfile::tempdir().unwrap();
    let front_port = free_port();
    let d = dir.path().display();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    access_log {d}/access.log;\n    server {{\n        listen 127.0.0.1:{front_port};\n        location / {{\n            proxy_pass http://127.0.0.1:{app_port};\n        }}\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let _nginx = HostNginx {
        pid_file: dir.path().join("nginx.pid"),
    };
    let st = Command::new(&nginx)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path())
        .status()
        .expect("nginx starts");
    assert!(st.success());
    let url = format!("http://127.0.0.1:{front_port}/");
    wait_for(&url, 200);
    let (code, out, err) = triage(&["map", &url, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).expect("map JSON");
    assert!(
        m["front"]["container"].is_null(),
        "the front is on the host: {out}"
    );
    assert_eq!(m["vantage"]["kind"], "host");
    let up = &m["upstreams"][0];
    assert_eq!(up["address"], format!("127.0.0.1:{app_port}"));
    assert_eq!(up["container"]["name"], app.as_str());
    assert_eq!(up["container"]["id"], app_id.as_str());
    assert!(
        up["listener"].as_str().unwrap().contains("docker-proxy")
            || up["listener_note"]
                .as_str()
                .unwrap()
                .contains("docker-proxy"),
        "{up}"
    );
    assert_eq!(m["facts"]["upstream.container"], app.as_str());
}
