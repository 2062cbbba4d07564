//! A read-only client for the Docker Engine API (and Podman's compatible
//! API) over the local unix socket.
//!
//! Why not a crate: `bollard` brings hyper's client stack plus its own
//! generated models (a few hundred kB in the static musl binary, which issue
//! 18 caps at 15 MB and is at 14.3 MB), and `hyperlocal` still needs a body
//! collector and size caps around it. The API used here is six `GET`s whose
//! answers fit in memory, so [`http`] is a small HTTP/1.1 client over
//! `tokio::net::UnixStream` (one request per connection, `Content-Length`,
//! `chunked` and end-of-stream bodies, a size cap and a deadline per call),
//! using `httparse`, which reqwest already builds. Nothing else is linked.
//!
//! Invariants: [`Docker`] only ever sends `GET` (checks and discovery use it: they cannot
//! change anything); the one write, `POST /containers/ID/restart`, is [`restart_container`],
//! called only by the restart action (`crate::action::container`) after consent;
//! only a unix socket is ever dialled (`DOCKER_HOST=tcp://...` is refused,
//! not followed); every answer is size-capped and time-limited; a broken or
//! hostile answer (bad JSON, wrong types, huge or truncated body) is one
//! [`DockerError`] naming the endpoint, never a panic. Without a socket, or
//! without the right to use it, the answer is [`Unavailable`]: the reason and
//! the one command that would fix it.

pub mod http;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// Default deadline for one API call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest JSON answer accepted (`/containers/json?all=1` on a host with a
/// thousand containers is a few MB).
pub const MAX_JSON: usize = 32 * 1024 * 1024;

/// Largest log answer accepted by default.
pub const MAX_LOGS: usize = 16 * 1024 * 1024;

/// The Docker socket when `DOCKER_HOST` is not set.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Podman's rootful API socket.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Why the Engine cannot be asked, and what would let us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// The socket tried, when one was found.
    pub socket: Option<PathBuf>,
    pub reason: String,
    /// The one command (or step) that would make the Engine readable.
    pub fix: String,
    /// True when the socket exists but this user may not use it.
    pub permission: bool,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (fix: {})", self.reason, self.fix)
    }
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    #[error("the container engine is not available: {0}")]
    Unavailable(Unavailable),
    /// The Engine answered with an error status (404 for an unknown
    /// container, 500 ...), with its `message`.
    #[error("GET {endpoint}: the engine answered {status}: {message}")]
    Status {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// The answer could not be used (broken HTTP, bad JSON, wrong types,
    /// too large, cut short, too slow).
    #[error("GET {endpoint}: {reason}")]
    Answer { endpoint: String, reason: String },
    /// An argument (a container id) that cannot be put in a request.
    #[error("invalid {what}: {value:?}")]
    Invalid { what: &'static str, value: String },
}

impl DockerError {
    /// The unavailability, when that is what this is.
    pub fn unavailable(&self) -> Option<&Unavailable> {
        match self {
            DockerError::Unavailable(u) => Some(u),
            _ => None,
        }
    }
}

/// Where the Engine's socket is, from `DOCKER_HOST` (a `unix://` URL), else
/// `/var/run/docker.sock`, else Podman's rootful then rootless socket.
pub fn locate_socket() -> Result<PathBuf, Unavailable> {
    locate_socket_from(
        std::env::var("DOCKER_HOST").ok().as_deref(),
        std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
        &|p: &Path| p.exists(),
    )
}

/// [`locate_socket`] with its inputs given (tests).
pub fn locate_socket_from(
    docker_host: Option<&str>,
    xdg_runtime_dir: Option<&str>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf, Unavailable> {
    if let Some(host) = docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(PathBuf::from(path));
        }
        return Err(Unavailable {
            socket: None,
            reason: format!(
                "DOCKER_HOST={host} is not a local unix socket; triage502 only reads the engine of this host"
            ),
            fix: "unset DOCKER_HOST (or set it to unix:///var/run/docker.sock)".to_owned(),
            permission: false,
        });
    }
    let mut tried = vec![PathBuf::from(DOCKER_SOCKET), PathBuf::from(PODMAN_SOCKET)];
    if let Some(dir) = xdg_runtime_dir.filter(|d| !d.is_empty()) {
        tried.push(Path::new(dir).join("podman/podman.sock"));
    }
    if let Some(found) = tried.iter().find(|p| exists(p)) {
        return Ok(found.clone());
    }
    Err(Unavailable {
        socket: None,
        reason: format!(
            "no Docker or Podman API socket on this host (looked at {})",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        fix: "sudo systemctl start docker (or podman.socket), if containers run here".to_owned(),
        permission: false,
    })
}

/// The client: a socket path, a deadline and a size cap per call.
#[derive(Debug, Clone)]
pub struct Docker {
    pub socket: PathBuf,
    pub timeout: Duration,
}

impl Docker {
    /// The client for the socket [`locate_socket`] finds.
    pub fn from_env() -> Result<Docker, Unavailable> {
        locate_socket().map(Docker::at)
    }

    /// A client for `socket`.
    pub fn at(socket: impl Into<PathBuf>) -> Docker {
        Docker {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another per-call deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Docker {
        self.timeout = timeout;
        self
    }

    /// One `GET`, its body returned when the status is 2xx.
    pub async fn get_raw(&self, endpoint: &str, max_body: usize) -> Result<Vec<u8>, DockerError> {
        let resp = http::get(&self.socket, endpoint, self.timeout, max_body)
            .await
            .map_err(|e| self.http_error(endpoint, e))?;
        if !(200..300).contains(&resp.status) {
            // The Engine's errors are `{"message": "..."}`.
            let message = serde_json::from_slice::<ErrorBody>(&resp.body).map_or_else(
                |_| {
                    let t = String::from_utf8_lossy(&resp.body);
                    t.chars().take(200).collect::<String>().trim().to_owned()
                },
                |b| b.message,
            );
            return Err(DockerError::Status {
                endpoint: endpoint.to_owned(),
                status: resp.status,
                message,
            });
        }
        Ok(resp.body)
    }

    /// One `GET` whose JSON answer is decoded as `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
    ) -> Result<T, DockerError> {
        let body = self.get_raw(endpoint, MAX_JSON).await?;
        serde_json::from_slice(&body).map_err(|e| DockerError::Answer {
            endpoint: endpoint.to_owned(),
            reason: format!("the answer is not the JSON expected: {e}"),
        })
    }

    /// `GET /_ping`: true when the Engine answers `OK`.
    pub async fn ping(&self) -> Result<(), DockerError> {
        let body = self.get_raw("/_ping", 1024).await?;
        if body.trim_ascii() == b"OK" {
            Ok(())
        } else {
            Err(DockerError::Answer {
                endpoint: "/_ping".to_owned(),
                reason: format!(
                    "expected OK, got {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(40)])
                ),
            })
        }
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Version, DockerError> {
        self.get_json("/version").await
    }

    /// `GET /containers/json?all=1`: every container, running or not.
    pub async fn containers(&self) -> Result<Vec<ContainerSummary>, DockerError> {
        self.get_json("/containers/json?all=1").await
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect(&self, id: &str) -> Result<ContainerInspect, DockerError> {
        check_id(id)?;
        self.get_json(&format!("/containers/{id}/json")).await
    }

    /// `GET /networks`.
    pub async fn networks(&self) -> Result<Vec<Network>, DockerError> {
        self.get_json("/networks").await
    }

    /// `GET /containers/{id}/logs`, decoded into lines. When `opts.tty` is
    /// `None` the container is inspected first: a TTY container's log is
    /// raw, any other is multiplexed with 8-byte frame headers.
    pub async fn logs(&self, id: &str, opts: &LogsOptions) -> Result<Vec<LogLine>, DockerError> {
        check_id(id)?;
        let tty = match opts.tty {
            Some(t) => t,
            None => self.inspect(id).await?.config.tty,
        };
        let endpoint = format!("/containers/{id}/logs?{}", opts.query());
        let body = self
            .get_raw(&endpoint, opts.max_bytes.unwrap_or(MAX_LOGS))
            .await?;
        decode_logs(&body, tty, opts.timestamps)
            .map_err(|reason| DockerError::Answer { endpoint, reason })
    }

    fn http_error(&self, endpoint: &str, e: http::HttpError) -> DockerError {
        match e {
            http::HttpError::Connect(kind, msg) => {
                DockerError::Unavailable(connect_unavailable(&self.socket, kind, &msg))
            }
            http::HttpError::Timeout(d) => DockerError::Answer {
                endpoint: endpoint.to_owned(),
                reason: format!("no complete answer within {} ms", d.as_millis()),
            },
            other => DockerError::Answer {
                endpoint: endpoint.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

/// `POST /containers/{id}/restart?t=STOP` on `socket`: what `docker restart` does (the Engine
/// stops the container, SIGTERM then SIGKILL after `stop_timeout` seconds, and starts it again).
/// The only call of this module that changes anything: used by the restart action alone.
pub async fn restart_container(
    socket: &Path,
    id: &str,
    stop_timeout: u32,
) -> Result<(), DockerError> {
    check_id(id)?;
    let endpoint = restart_endpoint(id, stop_timeout);
    // Stopping may take the whole stop timeout; starting takes a few seconds more.
    let deadline = Duration::from_secs(u64::from(stop_timeout) + 30);
    let d = Docker::at(socket);
    let resp = http::request(socket, http::Method::Post, &endpoint, deadline, 64 * 1024)
        .await
        .map_err(|e| d.http_error(&endpoint, e))?;
    if (200..300).contains(&resp.status) {
        return Ok(());
    }
    let message = serde_json::from_slice::<ErrorBody>(&resp.body).map_or_else(
        |_| {
            String::from_utf8_lossy(&resp.body)
                .chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_owned()
        },
        |b| b.message,
    );
    Err(DockerError::Status {
        endpoint,
        status: resp.status,
        message,
    })
}

/// The restart call's path: `/containers/ID/restart?t=10`.
pub fn restart_endpoint(id: &str, stop_timeout: u32) -> String {
    format!("/containers/{id}/restart?t={stop_timeout}")
}

/// The unavailability for a failed `connect` on `socket`.
pub fn connect_unavailable(socket: &Path, kind: std::io::ErrorKind, msg: &str) -> Unavailable {
    use std::io::ErrorKind as K;
    let (reason, fix, permission) = match kind {
        K::PermissionDenied => (
            format!("permission denied on {} ({msg})", socket.display()),
            "run it as root (sudo triage502 ...), or join the docker group: sudo usermod -aG docker $USER (then log in again)".to_owned(),
            true,
        ),
        K::NotFound => (
            format!("{} does not exist", socket.display()),
            "sudo systemctl start docker (or podman.socket), if containers run here".to_owned(),
            false,
        ),
        K::ConnectionRefused => (
            format!("nothing answers on {} (connection refused)", socket.display()),
            "sudo systemctl start docker (or podman.socket)".to_owned(),
            false,
        ),
        _ => (
            format!("cannot connect to {}: {msg}", socket.display()),
            "sudo systemctl status docker".to_owned(),
            false,
        ),
    };
    Unavailable {
        socket: Some(socket.to_path_buf()),
        reason,
        fix,
        permission,
    }
}

/// Container ids and names as the API accepts them in a path.
fn check_id(id: &str) -> Result<(), DockerError> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DockerError::Invalid {
            what: "container id or name",
            value: id.chars().take(80).collect(),
        })
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// `null` read as the type's default (the Engine sends `"Labels": null`,
/// `"Ports": null`, `"Mounts": null` ...).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    #[serde(rename = "ApiVersion", deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(deserialize_with = "nullable")]
    pub os: String,
    #[serde(deserialize_with = "nullable")]
    pub arch: String,
    /// `Docker Engine - Community`, `Podman Engine` ... from `Components`.
    #[serde(deserialize_with = "nullable")]
    pub components: Vec<VersionComponent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VersionComponent {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub version: String,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    /// With their leading `/` as the API sends them.
    #[serde(deserialize_with = "nullable")]
    pub names: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    #[serde(rename = "ImageID", deserialize_with = "nullable")]
    pub image_id: String,
    #[serde(deserialize_with = "nullable")]
    pub command: String,
    #[serde(deserialize_with = "nullable")]
    pub created: i64,
    /// `running`, `exited`, `restarting` ...
    #[serde(deserialize_with = "nullable")]
    pub state: String,
    /// `Up 3 minutes (healthy)`, `Exited (137) 2 minutes ago` ...
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortSummary>,
    #[serde(deserialize_with = "nullable")]
    pub network_settings: SummaryNetworks,
}

impl ContainerSummary {
    /// The first name without its leading `/`.
    pub fn name(&self) -> &str {
        self.names
            .first()
            .map_or("", |n| n.strip_prefix('/').unwrap_or(n))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryNetworks {
    #[serde(deserialize_with = "nullable")]
    pub networks: BTreeMap<String, Endpoint>,
}

/// A published or exposed port in the container list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortSummary {
    /// The host address it is published on (absent when only exposed).
    #[serde(rename = "IP", deserialize_with = "nullable")]
    pub ip: String,
    #[serde(rename = "PrivatePort", deserialize_with = "nullable")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", deserialize_with = "nullable")]
    pub public_port: u16,
    /// `tcp`, `udp`, `sctp`.
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub proto: String,
}

/// A container's attachment to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    #[serde(rename = "NetworkID", deserialize_with = "nullable")]
    pub network_id: String,
    #[serde(rename = "EndpointID", deserialize_with = "nullable")]
    pub endpoint_id: String,
    #[serde(deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "IPAddress", deserialize_with = "nullable")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", deserialize_with = "nullable")]
    pub ip_prefix_len: u8,
    #[serde(rename = "GlobalIPv6Address", deserialize_with = "nullable")]
    pub global_ipv6_address: String,
    #[serde(deserialize_with = "nullable")]
    pub aliases: Vec<String>,
    #[serde(rename = "DNSNames", deserialize_with = "nullable")]
    pub dns_names: Vec<String>,
}

/// `GET /containers/{id}/json` (the fields triage502 uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    /// With its leading `/`.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// RFC 3339.
    #[serde(deserialize_with = "nullable")]
    pub created: String,
    /// The image id (`sha256:...`); the reference is `config.image`.
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    #[serde(deserialize_with = "nullable")]
    pub restart_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub log_path: String,
    #[serde(deserialize_with = "nullable")]
    pub state: ContainerState,
    #[serde(deserialize_with = "nullable")]
    pub config: ContainerConfig,
    #[serde(deserialize_with = "nullable")]
    pub host_config: HostConfig,
    #[serde(deserialize_with = "nullable")]
    pub network_settings: NetworkSettings,
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<Mount>,
}

impl ContainerInspect {
    /// The name without its leading `/`.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// The first 12 characters of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// `com.docker.compose.project`, when set.
    pub fn compose_project(&self) -> Option<&str> {
        self.config
            .labels
            .get("com.docker.compose.project")
            .map(String::as_str)
    }

    /// `com.docker.compose.service`, when set.
    pub fn compose_service(&self) -> Option<&str> {
        self.config
            .labels
            .get("com.docker.compose.service")
            .map(String::as_str)
    }

    /// The host PID of its first process, when it runs.
    pub fn pid(&self) -> Option<u32> {
        u32::try_from(self.state.pid).ok().filter(|&p| p > 0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub running: bool,
    #[serde(deserialize_with = "nullable")]
    pub paused: bool,
    #[serde(deserialize_with = "nullable")]
    pub restarting: bool,
    #[serde(rename = "OOMKilled", deserialize_with = "nullable")]
    pub oom_killed: bool,
    #[serde(deserialize_with = "nullable")]
    pub dead: bool,
    /// Host PID of the container's first process (0 when not running).
    #[serde(deserialize_with = "nullable")]
    pub pid: i64,
    #[serde(deserialize_with = "nullable")]
    pub exit_code: i64,
    #[serde(deserialize_with = "nullable")]
    pub error: String,
    #[serde(deserialize_with = "nullable")]
    pub started_at: String,
    #[serde(deserialize_with = "nullable")]
    pub finished_at: String,
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub failing_streak: u64,
    #[serde(deserialize_with = "nullable")]
    pub log: Vec<HealthProbe>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthProbe {
    #[serde(deserialize_with = "nullable")]
    pub start: String,
    #[serde(deserialize_with = "nullable")]
    pub end: String,
    #[serde(deserialize_with = "nullable")]
    pub exit_code: i64,
    #[serde(deserialize_with = "nullable")]
    pub output: String,
}

/// The container's configuration. `Env` is deliberately not read: it holds
/// secrets more often than not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "nullable")]
    pub hostname: String,
    /// The image reference it was created from (`shop-app:2`).
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    #[serde(deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub entrypoint: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `bridge`, `host`, `none`, `container:ID`, or a network's name.
    #[serde(deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    #[serde(deserialize_with = "nullable")]
    pub log_config: LogConfig,
    #[serde(deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `no`, `always`, `unless-stopped`, `on-failure` (or empty).
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `json-file`, `local`, `journald`, `none` ...
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub driver: String,
    #[serde(rename = "Config", deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(deserialize_with = "nullable")]
    pub host_ip: String,
    #[serde(deserialize_with = "nullable")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    /// `"80/tcp"` → its host bindings (`null` when exposed, not published).
    #[serde(deserialize_with = "nullable")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(deserialize_with = "nullable")]
    pub networks: BTreeMap<String, Endpoint>,
    /// `/var/run/docker/netns/...`
    #[serde(deserialize_with = "nullable")]
    pub sandbox_key: String,
}

impl NetworkSettings {
    /// `(container port, proto, host ip, host port)` for every published port.
    pub fn published(&self) -> Vec<(u16, String, String, u16)> {
        let mut out = Vec::new();
        for (key, bindings) in &self.ports {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for b in bindings.iter().flatten() {
                if let Ok(hp) = b.host_port.parse::<u16>() {
                    out.push((port, proto.to_owned(), b.host_ip.clone(), hp));
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub source: String,
    #[serde(deserialize_with = "nullable")]
    pub destination: String,
    #[serde(rename = "RW", deserialize_with = "nullable")]
    pub rw: bool,
}

/// One entry of `GET /networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub driver: String,
    #[serde(deserialize_with = "nullable")]
    pub scope: String,
    #[serde(deserialize_with = "nullable")]
    pub internal: bool,
    #[serde(rename = "IPAM", deserialize_with = "nullable")]
    pub ipam: Ipam,
    /// Filled by `/networks/{id}` only; empty in the list.
    #[serde(deserialize_with = "nullable")]
    pub containers: BTreeMap<String, NetworkMember>,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(deserialize_with = "nullable")]
    pub subnet: String,
    #[serde(deserialize_with = "nullable")]
    pub gateway: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkMember {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "IPv4Address", deserialize_with = "nullable")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", deserialize_with = "nullable")]
    pub ipv6_address: String,
}

/// What `GET /containers/{id}/logs` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds; lines at or after.
    pub since: Option<i64>,
    /// Unix seconds; lines before.
    pub until: Option<i64>,
    /// Prefix each line with its RFC 3339 time (split into [`LogLine::timestamp`]).
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Whether the container has a TTY (`None`: inspect it first).
    pub tty: Option<bool>,
    /// Body cap (default [`MAX_LOGS`]).
    pub max_bytes: Option<usize>,
}

impl Default for LogsOptions {
    fn default() -> Self {
        LogsOptions {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            timestamps: true,
            tail: None,
            tty: None,
            max_bytes: None,
        }
    }
}

impl LogsOptions {
    /// The query string (without `?`).
    pub fn query(&self) -> String {
        let mut q = vec![
            format!("stdout={}", u8::from(self.stdout)),
            format!("stderr={}", u8::from(self.stderr)),
            format!("timestamps={}", u8::from(self.timestamps)),
        ];
        if let Some(s) = self.since {
            q.push(format!("since={s}"));
        }
        if let Some(u) = self.until {
            q.push(format!("until={u}"));
        }
        if let Some(t) = self.tail {
            q.push(format!("tail={t}"));
        }
        q.join("&")
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdin,
    Stdout,
    Stderr,
    /// A TTY container: one stream, no frame headers.
    Tty,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub stream: LogStream,
    /// RFC 3339 with nanoseconds, when asked for.
    pub timestamp: Option<String>,
    /// Without its newline (lossy UTF-8).
    pub text: String,
}

/// Decode a logs body: multiplexed frames (`[stream, 0, 0, 0, len u32 BE]`
/// then `len` bytes) unless `tty`, then split into lines, and the
/// timestamp prefix split off when `timestamps`.
pub fn decode_logs(body: &[u8], tty: bool, timestamps: bool) -> Result<Vec<LogLine>, String> {
    let mut out = Vec::new();
    let mut push = |stream: LogStream, data: &[u8], pending: &mut Vec<u8>| {
        pending.extend_from_slice(data);
        while let Some(nl) = memchr::memchr(b'\n', pending) {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            out.push(make_line(stream, &line[..line.len() - 1], timestamps));
        }
    };
    // A frame may end mid-line; lines are joined per stream.
    let mut pending_out = Vec::new();
    let mut pending_err = Vec::new();
    let mut pending_tty = Vec::new();
    if tty {
        push(LogStream::Tty, body, &mut pending_tty);
    } else {
        let mut rest = body;
        while !rest.is_empty() {
            if rest.len() < 8 {
                return Err(format!(
                    "a log frame header is cut short ({} of 8 bytes)",
                    rest.len()
                ));
            }
            let stream = match rest[0] {
                0 => LogStream::Stdin,
                1 => LogStream::Stdout,
                2 => LogStream::Stderr,
                b => {
                    return Err(format!(
                        "not a multiplexed log stream (frame type {b}); is the container a TTY?"
                    ));
                }
            };
            if rest[1..4] != [0, 0, 0] {
                return Err("not a multiplexed log stream (bad frame header)".to_owned());
            }
            let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let data = &rest[8..];
            if data.len() < len {
                return Err(format!(
                    "a log frame is cut short ({} of {len} bytes)",
                    data.len()
                ));
            }
            let pending = if stream == LogStream::Stderr {
                &mut pending_err
            } else {
                &mut pending_out
            };
            push(stream, &data[..len], pending);
            rest = &data[len..];
        }
    }
    for (stream, pending) in [
        (LogStream::Stdout, pending_out),
        (LogStream::Stderr, pending_err),
        (LogStream::Tty, pending_tty),
    ] {
        if !pending.is_empty() {
            out.push(make_line(stream, &pending, timestamps));
        }
    }
    Ok(out)
}

fn make_line(stream: LogStream, line: &[u8], timestamps: bool) -> LogLine {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    if timestamps
        && let Some((ts, rest)) = text.split_once(' ')
        && ts.len() >= 20
        && ts.as_bytes()[4] == b'-'
        && ts.contains('T')
    {
        return LogLine {
            stream,
            timestamp: Some(ts.to_owned()),
            text: rest.to_owned(),
        };
    }
    LogLine {
        stream,
        timestamp: None,
        text: text.into_owned(),
    }
}

// The tests serve the Engine API on a unix socket: Linux only.
#[cfg(test)]
#[cfg(unix)]
mod tests;
