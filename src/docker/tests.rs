//! The client against fake engines on a unix socket in a tempdir: real
//! answers, and broken or hostile ones.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// Serve `answers` (raw bytes, one per connection, in order) on a fresh
/// socket; returns the client and the requests seen.
fn fake(
    answers: Vec<Vec<u8>>,
) -> (
    Docker,
    tempfile::TempDir,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for answer in answers {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
            let _ = s.write_all(&answer).await;
            let _ = s.shutdown().await;
        }
    });
    (
        Docker::at(path).with_timeout(Duration::from_secs(2)),
        dir,
        rx,
    )
}

fn ok_json(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

const CONTAINERS: &str = r#"[{"Id":"4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b","Names":["/shop-web"],"Image":"triage502-lab-nginx:1","ImageID":"sha256:aa","Command":"nginx -g 'daemon off;'","Created":1796300000,"Ports":[{"IP":"127.0.0.1","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":443,"Type":"tcp"}],"Labels":{"com.docker.compose.project":"shop","com.docker.compose.service":"web"},"State":"running","Status":"Up 3 minutes","HostConfig":{"NetworkMode":"shop_default"},"NetworkSettings":{"Networks":{"shop_default":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"n1","EndpointID":"e1","Gateway":"172.18.0.1","IPAddress":"172.18.0.3","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"02:42:ac:12:00:03","DriverOpts":null}}},"Mounts":[]},
{"Id":"bbbb","Names":["/old"],"Image":"x","Labels":null,"Ports":null,"State":"exited","Status":"Exited (137) 2 minutes ago","NetworkSettings":{"Networks":null}}]"#;

const INSPECT: &str = r#"{"Id":"4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b","Created":"2026-12-03T09:00:00.123456789Z","Path":"nginx","Args":["-g","daemon off;"],
"State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":4242,"ExitCode":0,"Error":"","StartedAt":"2026-12-03T09:00:01Z","FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"unhealthy","FailingStreak":3,"Log":[{"Start":"a","End":"b","ExitCode":1,"Output":"curl: (7) Failed to connect"}]}},
"Image":"sha256:aa","LogPath":"/var/lib/docker/containers/4f/4f-json.log","Name":"/shop-web","RestartCount":2,
"HostConfig":{"NetworkMode":"shop_default","RestartPolicy":{"Name":"unless-stopped","MaximumRetryCount":0},"LogConfig":{"Type":"json-file","Config":{}},"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}},
"Mounts":null,
"Config":{"Hostname":"4f1c2a9b8e7d","Env":["SECRET=hunter2"],"Image":"triage502-lab-nginx:1","Tty":false,"Labels":{"com.docker.compose.project":"shop","com.docker.compose.service":"web"},"Cmd":["nginx","-g","daemon off;"],"Entrypoint":null,"ExposedPorts":{"80/tcp":{}}},
"NetworkSettings":{"SandboxKey":"/var/run/docker/netns/abc","Ports":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}],"443/tcp":null},"Networks":{"shop_default":{"Aliases":["web","4f1c2a9b8e7d"],"NetworkID":"n1","IPAddress":"172.18.0.3","Gateway":"172.18.0.1","IPPrefixLen":16}}}}"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn lists_and_inspects_real_shaped_answers() {
    rt().block_on(async {
        let (d, _dir, mut reqs) = fake(vec![
            ok_json(CONTAINERS),
            chunked(INSPECT.as_bytes(), 97),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".to_vec(),
        ]);
        let list = d.containers().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name(), "shop-web");
        assert_eq!(list[0].ports[0].public_port, 8080);
        assert_eq!(list[0].ports[1].public_port, 0);
        assert_eq!(
            list[0].network_settings.networks["shop_default"].ip_address,
            "172.18.0.3"
        );
        assert!(list[1].labels.is_empty() && list[1].ports.is_empty());
        let req = reqs.recv().await.unwrap();
        assert!(
            req.starts_with("GET /containers/json?all=1 HTTP/1.1\r\n"),
            "{req}"
        );

        let c = d.inspect("shop-web").await.unwrap();
        assert_eq!(c.short_name(), "shop-web");
        assert_eq!(c.short_id(), "4f1c2a9b8e7d");
        assert_eq!(c.pid(), Some(4242));
        assert_eq!(c.compose_service(), Some("web"));
        assert_eq!(c.restart_count, 2);
        assert_eq!(c.host_config.restart_policy.name, "unless-stopped");
        assert_eq!(c.state.health.as_ref().unwrap().status, "unhealthy");
        assert_eq!(
            c.network_settings.published(),
            vec![(80, "tcp".to_owned(), "127.0.0.1".to_owned(), 8080)]
        );
        // Env is never kept.
        assert!(!format!("{c:?}").contains("hunter2"));
        d.ping().await.unwrap();
    });
}

#[test]
fn engine_errors_carry_status_and_message() {
    rt().block_on(async {
        let body = r#"{"message":"No such container: nope"}"#;
        let (d, _dir, _r) = fake(vec![
            format!(
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        ]);
        let e = d.inspect("nope").await.unwrap_err();
        assert_eq!(
            e,
            DockerError::Status {
                endpoint: "/containers/nope/json".to_owned(),
                status: 404,
                message: "No such container: nope".to_owned()
            }
        );
    });
}

#[test]
fn hostile_answers_are_one_error_naming_the_endpoint() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (ok_json("{not json"), "not the JSON expected"),
        (ok_json(r#"{"Id": 5}"#), "not the JSON expected"),
        (ok_json(r#"[{"Names": "x"}]"#), "not the JSON expected"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n[{\"Id\":".to_vec(),
            "cut short",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n".to_vec(),
            "larger than",
        ),
        (b"\x00\x01garbage\r\n\r\n".to_vec(), "not an HTTP answer"),
        (Vec::new(), "without an answer"),
    ];
    rt().block_on(async {
        for (answer, want) in cases {
            let (d, _dir, _r) = fake(vec![answer]);
            let e = d.containers().await.unwrap_err();
            let text = e.to_string();
            assert!(text.contains("/containers/json?all=1"), "{text}");
            assert!(text.contains(want), "{text} lacks {want}");
        }
    });
}

#[test]
fn a_huge_body_without_length_is_refused() {
    rt().block_on(async {
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        answer.resize(MAX_JSON + 1024 * 1024, b' ');
        let (d, _dir, _r) = fake(vec![answer]);
        let e = d.networks().await.unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    });
}

#[test]
fn a_silent_engine_times_out() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let d = Docker::at(&path).with_timeout(Duration::from_millis(200));
        let e = d.version().await.unwrap_err();
        assert!(e.to_string().contains("/version"), "{e}");
        assert!(e.to_string().contains("within 200 ms"), "{e}");
    });
}

#[test]
fn missing_socket_is_unavailable_with_a_fix() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let d = Docker::at(dir.path().join("none.sock"));
        let e = d.ping().await.unwrap_err();
        let u = e.unavailable().expect("unavailable");
        assert!(u.reason.contains("does not exist"), "{u}");
        assert!(u.fix.contains("systemctl start docker"), "{u}");
        assert!(!u.permission);
    });
}

#[test]
fn permission_denied_names_sudo_and_the_docker_group() {
    let u = connect_unavailable(
        Path::new("/var/run/docker.sock"),
        std::io::ErrorKind::PermissionDenied,
        "Permission denied (os error 13)",
    );
    assert!(u.permission);
    assert!(u.fix.contains("sudo"), "{u}");
    assert!(u.fix.contains("usermod -aG docker $USER"), "{u}");
}

#[test]
fn socket_location_follows_docker_host_then_docker_then_podman() {
    let none = |_: &Path| false;
    let all = |_: &Path| true;
    assert_eq!(
        locate_socket_from(Some("unix:///tmp/d.sock"), None, &none).unwrap(),
        PathBuf::from("/tmp/d.sock")
    );
    let e = locate_socket_from(Some("tcp://10.0.0.1:2375"), None, &all).unwrap_err();
    assert!(e.reason.contains("not a local unix socket"), "{e}");
    assert_eq!(
        locate_socket_from(None, None, &all).unwrap(),
        PathBuf::from(DOCKER_SOCKET)
    );
    let podman_user = |p: &Path| p == Path::new("/run/user/1000/podman/podman.sock");
    assert_eq!(
        locate_socket_from(None, Some("/run/user/1000"), &podman_user).unwrap(),
        PathBuf::from("/run/user/1000/podman/podman.sock")
    );
    let e = locate_socket_from(None, Some("/run/user/1000"), &none).unwrap_err();
    assert!(
        e.reason.contains("/run/user/1000/podman/podman.sock"),
        "{e}"
    );
}

#[test]
fn bad_ids_never_reach_the_socket() {
    rt().block_on(async {
        let d = Docker::at("/nonexistent.sock");
        for id in ["", "../../images/json", "a b", "x?y", "a/b"] {
            let e = d.inspect(id).await.unwrap_err();
            assert!(matches!(e, DockerError::Invalid { .. }), "{id}: {e:?}");
        }
    });
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![stream, 0, 0, 0];
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn multiplexed_logs_are_decoded_and_lines_rejoined() {
    let mut body = frame(
        2,
        b"2026-12-03T10:00:00.000000001Z 2026/12/03 10:00:00 [error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream\n",
    );
    body.extend(frame(
        1,
        b"2026-12-03T10:00:01.5Z 172.18.0.1 - - \"GET / HTTP/1.1\" 5",
    ));
    body.extend(frame(1, b"02 157\n"));
    let lines = decode_logs(&body, false, true).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].stream, LogStream::Stderr);
    assert_eq!(
        lines[0].timestamp.as_deref(),
        Some("2026-12-03T10:00:00.000000001Z")
    );
    assert!(lines[0].text.starts_with("2026/12/03 10:00:00 [error]"));
    assert_eq!(lines[1].stream, LogStream::Stdout);
    assert!(
        lines[1].text.ends_with("\"GET / HTTP/1.1\" 502 157"),
        "{:?}",
        lines[1]
    );
}

#[test]
fn tty_logs_are_raw_and_broken_frames_are_errors() {
    let lines = decode_logs(b"hello\r\nworld", true, false).unwrap();
    assert_eq!(
        lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        ["hello", "world"]
    );
    assert_eq!(lines[0].stream, LogStream::Tty);
    assert!(decode_logs(b"hello world\n", false, false).is_err());
    assert!(
        decode_logs(&[1, 0, 0, 0, 0, 0, 0, 9, b'a'], false, false)
            .unwrap_err()
            .contains("cut short")
    );
    assert!(decode_logs(&[1, 0, 0], false, false).is_err());
}

#[test]
fn logs_query_and_endpoint() {
    rt().block_on(async {
        let body = frame(1, b"x\n");
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend(body);
        let (d, _dir, mut reqs) = fake(vec![answer]);
        let opts = LogsOptions {
            since: Some(100),
            until: Some(200),
            tty: Some(false),
            timestamps: false,
            ..LogsOptions::default()
        };
        let lines = d.logs("shop-web", &opts).await.unwrap();
        assert_eq!(lines[0].text, "x");
        let req = reqs.recv().await.unwrap();
        assert!(
            req.starts_with(
                "GET /containers/shop-web/logs?stdout=1&stderr=1&timestamps=0&since=100&until=200 HTTP/1.1"
            ),
            "{req}"
        );
    });
}
