//! Hostile files (issue 10): logs, configurations, playbooks and signature
//! files that a server in trouble may hold. The real binary runs as a child
//! on each; its peak resident memory (VmHWM, polled from /proc while it
//! runs) must stay under 100 MiB, it must end within its time limit, and
//! bad input must give one clear message naming the place. Big files are
//! generated under $TMPDIR and deleted with their temp dir.
//!
//! Figures are printed (`peak-rss …` on stderr; `cargo test --test
//! hostile_files -- --nocapture`) and recorded in docs/hardening.md.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(clippy::many_single_char_names)] // short names for paths and runs keep the cases readable

#[path = "discovery_support/servers.rs"]
mod servers;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use triage502::discovery::source::{ConfigError, Limits};
use triage502::discovery::{apache, haproxy, nginx};

const BIN: &str = env!("CARGO_BIN_EXE_triage502");
/// Peak resident memory allowed to the binary in every case.
const CAP_KIB: u64 = 100 * 1024;

// ── Running the binary and measuring it ─────────────────────────────────────

/// What the child reads on standard input.
#[derive(Clone)]
enum Input {
    Null,
    File(PathBuf),
    /// A thread writes this many bytes of the pattern into a pipe.
    Pipe(Vec<u8>, u64),
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_kib: u64,
    ms: u128,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

/// Read a stream to its end, keeping its first 64 MiB.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            if kept.len() < 64 << 20 {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// VmHWM of `pid` in KiB, once it runs triage502 (not the test's fork).
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let name = status.lines().next()?.strip_prefix("Name:")?.trim();
    if name != "triage502" {
        return None;
    }
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run the binary, poll its peak memory until it exits, and assert that it
/// ends within `limit` and stays under [`CAP_KIB`]. `during` runs once the
/// child has started (given its pid), on the test's thread.
fn run_with(
    case: &str,
    args: &[&str],
    input: Input,
    limit: Duration,
    during: impl FnMut(u32),
) -> Run {
    attempt(case, args, input, limit, during)
        .unwrap_or_else(|| panic!("{case}: exited before it could be measured"))
}

/// One run; `None` when the child exited before its memory could be read.
fn attempt(
    case: &str,
    args: &[&str],
    input: Input,
    limit: Duration,
    mut during: impl FnMut(u32),
) -> Option<Run> {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut feeder = None;
    match &input {
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::File(p) => {
            cmd.stdin(std::fs::File::open(p).unwrap());
        }
        Input::Pipe(..) => {
            cmd.stdin(Stdio::piped());
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    if let Input::Pipe(pattern, total) = input {
        let mut stdin = child.stdin.take().unwrap();
        feeder = Some(std::thread::spawn(move || {
            let mut sent = 0u64;
            while sent < total {
                let n = pattern.len().min((total - sent) as usize);
                if stdin.write_all(&pattern[..n]).is_err() {
                    break; // the child stopped reading (refused or ended)
                }
                sent += n as u64;
            }
        }));
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let pid = child.id();
    let mut peak = None;
    let mut during_done = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if let Some(k) = vm_hwm(pid) {
            peak = Some(k);
            if !during_done {
                during_done = true;
                during(pid);
            }
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{case}: still running after {limit:?} (a hang): {args:?}");
        }
        // Poll tightly at first, so even a run of a few ms is measured.
        if started.elapsed() > Duration::from_millis(100) {
            std::thread::sleep(Duration::from_millis(2));
        } else {
            std::thread::yield_now();
        }
    };
    let ms = started.elapsed().as_millis();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    let run = Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        peak_kib: peak?,
        ms,
    };
    eprintln!(
        "peak-rss {case}: {:.1} MiB in {} ms (exit {:?})",
        run.peak_kib as f64 / 1024.0,
        run.ms,
        run.code
    );
    assert!(
        run.peak_kib < CAP_KIB,
        "{case}: peak RSS {} KiB is over the {} KiB cap",
        run.peak_kib,
        CAP_KIB
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{case}: the binary panicked:\n{}",
        run.stderr
    );
    Some(run)
}

#[allow(clippy::needless_pass_by_value)] // reads like the commands it runs: `run(…, Input::Null)`
fn run(case: &str, args: &[&str], input: Input) -> Run {
    run_quick(case, args, || input.clone())
}

/// Run to the end (30 s at most); a command that ends in a few ms (a
/// refusal) is tried again when it exited before its memory could be read.
fn run_quick(case: &str, args: &[&str], input: impl Fn() -> Input) -> Run {
    for _ in 0..20 {
        if let Some(r) = attempt(case, args, input(), Duration::from_secs(30), |_| {}) {
            return r;
        }
    }
    panic!("{case}: exited before it could be measured, 20 times");
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("t502-hostile-")
        .tempdir()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ── Log lines ────────────────────────────────────────────────────────────────

/// The argv of `logs access FILE WINDOW… --log-format combined --format json`.
fn access_json<'a>(file: &'a str, window: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["logs", "access", file];
    argv.extend_from_slice(window);
    argv.extend(["--log-format", "combined", "--format", "json"]);
    argv
}

/// nginx's error-log time, `secs_ago` seconds ago (negative: in the future).
fn nginx_time(secs_ago: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs_ago);
    t.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y/%m/%d %H:%M:%S")
        .to_string()
}

/// One nginx "connection refused" entry for upstream port `port`.
fn refused(secs_ago: i64, port: u16) -> String {
    format!(
        "{} [error] 4242#4242: *17 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: shop, request: \"GET /cart HTTP/1.1\", upstream: \"http://127.0.0.1:{port}/cart\", host: \"shop\"\n",
        nginx_time(secs_ago)
    )
}

/// A combined-format access line with a 502, `secs_ago` seconds ago.
fn access_502(secs_ago: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs_ago);
    format!(
        "10.0.0.1 - - [{}] \"GET /cart HTTP/1.1\" 502 157 \"-\" \"curl/8\"\n",
        t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .strftime("%d/%b/%Y:%H:%M:%S %z")
    )
}

/// Write `total` bytes of `fill` (repeated) to `w`, in 1 MiB pieces.
fn write_repeated(w: &mut impl Write, fill: &[u8], total: usize) {
    let chunk: Vec<u8> = fill.iter().copied().cycle().take(1 << 20).collect();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len());
        w.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
}

/// Pseudo-random bytes (xorshift), NULs and all; never a newline-free
/// literal of the catalogue by more than chance.
fn junk(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The one cause of a `logs scan --format json` report, with its count.
fn only_cause(r: &Run) -> (String, u64) {
    let v = r.json();
    let causes = v["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{}", r.stdout);
    (
        causes[0]["cause"].as_str().unwrap().to_owned(),
        causes[0]["count"].as_u64().unwrap(),
    )
}

fn upstreams(r: &Run) -> Vec<String> {
    r.json()["causes"][0]["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["value"].as_str().unwrap().to_owned())
        .collect()
}

// ── Logs ─────────────────────────────────────────────────────────────────────

/// A 100 MiB line with no newline between two real entries, and a last
/// line of 8 MiB with no newline at all: every command reads through it in
/// bounded chunks and still finds the entry after it.
#[test]
fn logs_a_100_mib_line_without_newline() {
    let d = tmp();
    let p = d.path().join("error.log");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        w.write_all(refused(120, 8081).as_bytes()).unwrap();
        // A head that is a candidate too, then 100 MiB of the same line.
        w.write_all(refused(90, 8083).trim_end().as_bytes())
            .unwrap();
        write_repeated(&mut w, b"A", 100 << 20);
        w.write_all(b"\n").unwrap();
        w.write_all(refused(60, 8082).as_bytes()).unwrap();
        write_repeated(&mut w, b"\x00tail-without-newline ", 8 << 20);
        w.flush().unwrap();
    }
    let all = run(
        "logs scan --all, 100 MiB line",
        &["logs", "scan", s(&p), "--all", "--format", "json"],
        Input::Null,
    );
    assert_eq!(all.code, Some(1), "{}", all.all());
    let (cause, n) = only_cause(&all);
    assert_eq!(cause, "upstream_refused", "{}", all.stdout);
    assert_eq!(n, 3, "{}", all.stdout);
    let ups = upstreams(&all);
    for port in ["8081", "8083"] {
        assert!(ups.iter().any(|u| u.ends_with(port)), "{ups:?}");
    }
    // The entry after the huge line is found (its fields are not: nginx's
    // tail is read from an entry's last line, here the junk joined to it).
    let after = all.json()["causes"][0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["text"].as_str().unwrap().contains("127.0.0.1:8082"));
    assert!(after, "{}", all.stdout);
    // The window search seeks through the same line.
    let windowed = run(
        "logs scan --since 1h, 100 MiB line",
        &["logs", "scan", s(&p), "--since", "1h", "--format", "json"],
        Input::Null,
    );
    assert_eq!(only_cause(&windowed).1, 3, "{}", windowed.stdout);

    let acc = run(
        "logs access --log-format combined, 100 MiB line",
        &access_json(s(&p), &["--all"]),
        Input::Null,
    );
    let v = acc.json();
    assert_eq!(v["requests"], 0, "{}", acc.stdout);
    assert!(
        v["files"][0]["malformed"].as_u64().unwrap() >= 4,
        "{}",
        acc.stdout
    );
    assert!(v["files"][0]["bytes_read"].as_u64().unwrap() > 100 << 20);

    for (case, args, input) in [
        (
            "logs classify FILE, 100 MiB line",
            vec!["logs", "classify", s(&p), "--format", "jsonl"],
            Input::Null,
        ),
        (
            "logs classify - (stdin file), 100 MiB line",
            vec!["logs", "classify", "-", "--format", "jsonl"],
            Input::File(p.clone()),
        ),
    ] {
        let r = run(case, &args, input);
        assert_eq!(r.code, Some(1), "{case}: {}", r.stderr);
        let refused = r
            .stdout
            .lines()
            .filter(|l| l.contains("\"cause\":\"upstream_refused\""))
            .count();
        assert_eq!(refused, 3, "{case}");
        // Entries are capped (64 KiB), never the whole line.
        assert!(r.stdout.lines().all(|l| l.len() < 200 * 1024), "{case}");
    }
    // Through a pipe, 100 MiB without a single newline.
    let r = run(
        "logs classify - (pipe), 100 MiB without newline",
        &["logs", "classify", "-", "--format", "jsonl"],
        Input::Pipe(b"x".repeat(1 << 16), 100 << 20),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "one (capped) entry");
}

/// Binary junk and NUL bytes around real entries: each entry is found
/// exactly once, the junk is not mistaken for anything.
#[test]
fn logs_binary_junk_and_nul_bytes() {
    let d = tmp();
    let p = d.path().join("error.log");
    let access = d.path().join("access.log");
    let mut text = Vec::new();
    let mut acc = Vec::new();
    for i in 0..16u64 {
        text.extend(junk(1 << 20, i + 1));
        text.extend(std::iter::repeat_n(0u8, 64 * 1024));
        text.push(b'\n');
        text.extend(refused(600 - i as i64, 8080).as_bytes());
        acc.extend(junk(256 * 1024, i + 100));
        acc.push(b'\n');
        acc.extend(access_502(600 - i as i64).as_bytes());
    }
    std::fs::write(&p, &text).unwrap();
    std::fs::write(&access, &acc).unwrap();
    let r = run(
        "logs scan, junk and NULs",
        &["logs", "scan", s(&p), "--since", "1h", "--format", "json"],
        Input::Null,
    );
    assert_eq!(
        only_cause(&r),
        ("upstream_refused".into(), 16),
        "{}",
        r.stdout
    );
    let r = run(
        "logs classify -, junk and NULs",
        &["logs", "classify", "-", "--format", "jsonl"],
        Input::File(p.clone()),
    );
    let found = r
        .stdout
        .lines()
        .filter(|l| l.contains("\"role\":\"primary\""))
        .count();
    assert_eq!(found, 16);
    // Every output line is valid JSON, junk or not.
    for l in r.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    let r = run(
        "logs access, junk and NULs",
        &access_json(s(&access), &["--all"]),
        Input::Null,
    );
    let v = r.json();
    assert_eq!(v["gateway_errors"], 16, "{}", r.stdout);
    assert!(v["files"][0]["malformed"].as_u64().unwrap() >= 16);
    // Junk at the head: the format cannot be detected, and it says so.
    let r = run(
        "logs access (detect), junk",
        &["logs", "access", s(&access), "--all"],
        Input::Null,
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.all().contains("access-log format not recognised"),
        "{}",
        r.all()
    );
}

/// Times out of order, in the future and missing: the window holds what
/// it should, first/last seen are the true extremes, and entries without a
/// time are counted as not parsed (access) or joined to the entry before
/// (error logs, where such lines are continuation lines).
#[test]
fn logs_timestamps_out_of_order_future_and_missing() {
    let d = tmp();
    let p = d.path().join("error.log");
    let a = d.path().join("access.log");
    let mut text = String::new();
    let mut acc = String::new();
    for i in 0..5 {
        text.push_str(&refused(3 * 3600 + i, 9000)); // hours before the window
        acc.push_str(&access_502(3 * 3600 + i));
    }
    for i in 0..20i64 {
        text.push_str(&refused(1800 - i * 60, 9001)); // in the window, in order
        acc.push_str(&access_502(1800 - i * 60));
        if i % 4 == 0 {
            text.push_str(&refused(2400 - i * 10, 9002)); // ten minutes out of order
            acc.push_str(&access_502(2400 - i * 10));
            // No time at all.
            text.push_str(
                "connect() failed (111: Connection refused) while connecting to upstream\n",
            );
            acc.push_str("10.0.0.1 - - \"GET / HTTP/1.1\" 502 157 \"-\" \"-\"\n");
        }
    }
    for i in 0..5 {
        text.push_str(&refused(-86_400 - i, 9003)); // a day in the future
        acc.push_str(&access_502(-86_400 - i));
    }
    std::fs::write(&p, &text).unwrap();
    std::fs::write(&a, &acc).unwrap();

    let r = run(
        "logs scan --all, disordered times",
        &["logs", "scan", s(&p), "--all", "--format", "json"],
        Input::Null,
    );
    assert_eq!(only_cause(&r).1, 35, "{}", r.stdout);
    let v = r.json();
    let last = v["causes"][0]["last_seen"].as_str().unwrap();
    let first = v["causes"][0]["first_seen"].as_str().unwrap();
    let now = jiff::Timestamp::now();
    assert!(last.parse::<jiff::Timestamp>().unwrap() > now, "{last}");
    assert!(
        first.parse::<jiff::Timestamp>().unwrap() < now - jiff::SignedDuration::from_hours(2),
        "{first}"
    );

    let from = (now - jiff::SignedDuration::from_hours(1)).to_string();
    let to = (now + jiff::SignedDuration::from_mins(1)).to_string();
    let r = run(
        "logs scan --from --to, disordered times",
        &[
            "logs",
            "scan",
            s(&p),
            "--from",
            &from,
            "--to",
            &to,
            "--format",
            "json",
        ],
        Input::Null,
    );
    assert_eq!(only_cause(&r).1, 25, "{}", r.stdout);
    let v = r.json();
    let last: jiff::Timestamp = v["causes"][0]["last_seen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last <= now, "a future entry leaked into the window: {last}");
    // Nothing from before the window or from the future; the entries with a
    // time-less line after them have no fields (it is their last line).
    let ups = upstreams(&r);
    assert!(ups.contains(&"http://127.0.0.1:9001".to_owned()), "{ups:?}");
    assert!(
        ups.iter()
            .all(|u| !u.ends_with("9000") && !u.ends_with("9003")),
        "{ups:?}"
    );

    let r = run(
        "logs access --from --to, disordered times",
        &access_json(s(&a), &["--from", &from, "--to", &to]),
        Input::Null,
    );
    let v = r.json();
    assert_eq!(v["gateway_errors"], 25, "{}", r.stdout);
    assert!(
        v["files"][0]["malformed"].as_u64().unwrap() >= 5,
        "{}",
        r.stdout
    );
}

/// Seven lines of noise (no candidate) and one failure for port 8080.
fn block_of_eight() -> String {
    let noise = format!(
        "{} [notice] 4242#4242: signal process started\n",
        nginx_time(300)
    );
    format!("{}{}", noise.repeat(7), refused(300, 8080))
}

/// A log of about `mib` MiB where one entry in eight is a failure for
/// upstream port 8080; returns the number of failures.
fn big_log(path: &Path, mib: usize) -> u64 {
    let block = block_of_eight();
    let n = (mib << 20) / block.len();
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..n {
        w.write_all(block.as_bytes()).unwrap();
    }
    w.flush().unwrap();
    n as u64
}

/// Bytes `pid` has read so far (/proc/PID/io `rchar`).
fn rchar(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("rchar:").map(|v| v.trim().parse().ok()))?
        })
        .unwrap_or(0)
}

/// Wait until `pid` has read `bytes`, or it is gone.
fn wait_read(pid: u32, bytes: u64) {
    let t = Instant::now();
    while rchar(pid) < bytes && t.elapsed() < Duration::from_secs(20) {
        if !Path::new(&format!("/proc/{pid}/io")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Truncated while being read: the scan ends and says how much was missing.
#[test]
fn logs_truncated_while_being_read() {
    let d = tmp();
    let p = d.path().join("error.log");
    big_log(&p, 24);
    let mut truncated_at = None;
    let r = run_with(
        "logs scan, truncated while read",
        &["logs", "scan", s(&p), "--all", "--format", "json"],
        Input::Null,
        Duration::from_secs(60),
        |pid| {
            wait_read(pid, 2 << 20);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(1 << 20)
                .unwrap();
            truncated_at = Some(rchar(pid));
        },
    );
    let v = r.json();
    let unread = v["files"][0]["unread"].as_str().unwrap_or_else(|| {
        panic!(
            "no `unread` (truncated when {truncated_at:?} bytes were read): {}",
            r.stdout
        )
    });
    assert!(unread.contains("shrank while being read"), "{unread}");
    assert!(v["files"][0]["bytes_read"].as_u64().unwrap() < 24 << 20);
    assert!(r.stdout.contains("upstream_refused"));
}

/// Rotated (renamed, a new file created) while being read: the file as
/// opened is read to its end, and the report says the new one was not.
#[test]
fn logs_rotated_while_being_read() {
    let d = tmp();
    let p = d.path().join("error.log");
    let n = big_log(&p, 24);
    let r = run_with(
        "logs scan, rotated while read",
        &["logs", "scan", s(&p), "--all", "--format", "json"],
        Input::Null,
        Duration::from_secs(60),
        |pid| {
            wait_read(pid, 2 << 20);
            std::fs::rename(&p, d.path().join("error.log.1")).unwrap();
            std::fs::write(&p, refused(1, 9999)).unwrap();
        },
    );
    let v = r.json();
    let unread = v["files"][0]["unread"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(unread.contains("was replaced while being read"), "{unread}");
    assert_eq!(only_cause(&r).1, n, "every entry of the file as opened");
    assert_eq!(upstreams(&r), ["http://127.0.0.1:8080"]);
    // Sources are byte offsets (line numbers of the new file would be wrong).
    let src = v["causes"][0]["samples"][0]["source"].as_str().unwrap();
    assert!(src.contains("@byte"), "{src}");
}

/// A log growing by about 50 MB/s while it is scanned (a writer thread,
/// bounded to 3 s and 150 MB): every command ends, reads no further than
/// the size at open, says what it did not read, and stays under the cap.
#[test]
fn logs_growing_by_50_mb_per_second_while_scanned() {
    let d = tmp();
    let p = d.path().join("error.log");
    big_log(&p, 16);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (p, stop) = (p.clone(), stop.clone());
        std::thread::spawn(move || {
            let eight = block_of_eight();
            let block: Vec<u8> = eight.bytes().cycle().take(eight.len() * 250).collect();
            let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
            let t = Instant::now();
            let mut written = 0u64;
            // 50 MB/s: each block (~400 KB) is due at written / 50 MB/s.
            while !stop.load(Ordering::Relaxed)
                && t.elapsed() < Duration::from_secs(3)
                && written < 150_000_000
            {
                f.write_all(&block).unwrap();
                written += block.len() as u64;
                let due = Duration::from_secs_f64(written as f64 / 50e6);
                if let Some(wait) = due.checked_sub(t.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            (written, t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let mut unread = Vec::new();
    for (case, args) in [
        (
            "logs scan, growing 50 MB/s",
            vec!["logs", "scan", s(&p), "--all", "--format", "json"],
        ),
        (
            "logs access, growing 50 MB/s",
            access_json(s(&p), &["--all"]),
        ),
    ] {
        let r = run_with(case, &args, Input::Null, Duration::from_secs(30), |_| {});
        let v = r.json();
        let f = &v["files"][0];
        assert!(
            f["bytes_read"].as_u64().unwrap() <= f["size"].as_u64().unwrap(),
            "{case}: read past the size at open"
        );
        unread.push(f["unread"].as_str().map(str::to_owned));
    }
    stop.store(true, Ordering::Relaxed);
    let (written, took) = writer.join().unwrap();
    eprintln!(
        "growth writer: {:.0} MB in {:.2} s",
        written as f64 / 1e6,
        took.as_secs_f64()
    );
    // At least the first command ran while the writer was writing.
    let grew = unread
        .iter()
        .flatten()
        .filter(|u| u.contains("grew by"))
        .count();
    assert!(grew >= 1, "{unread:?}");
}

fn mkfifo(p: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, p, rustix::fs::Mode::from(0o600)).unwrap();
}

/// A FIFO or a device named as a log (or fed as standard input) is refused
/// at once by name: never a wait for a writer, never an endless read.
#[test]
fn logs_fifo_and_devices_are_refused() {
    let d = tmp();
    let fifo = d.path().join("error.log");
    mkfifo(&fifo);
    for path in [s(&fifo), "/dev/zero", "/dev/urandom"] {
        let what = if path.starts_with("/dev/") {
            "is a character device"
        } else {
            "is a FIFO (named pipe)"
        };
        for args in [
            vec!["logs", "scan", path, "--all"],
            vec!["logs", "access", path, "--all"],
            vec!["logs", "classify", path],
            vec!["logs", "classify", "--signatures", path, "/dev/null"],
        ] {
            let case = format!("{} {path}", args[..2].join(" "));
            let r = run_quick(&case, &args, || Input::Null);
            assert_eq!(r.code, Some(2), "{case}: {}", r.all());
            assert!(
                r.all().contains(&format!("{path} {what}")),
                "{case}: {}",
                r.all()
            );
        }
    }
    for dev in ["/dev/zero", "/dev/urandom"] {
        let case = format!("logs classify - < {dev}");
        let r = run_quick(&case, &["logs", "classify", "-"], || {
            Input::File(dev.into())
        });
        assert_eq!(r.code, Some(2), "{case}");
        assert!(
            r.stderr.contains("standard input is a device"),
            "{}",
            r.stderr
        );
    }
}

/// The log checks on a FIFO and a device end (well within their timeout)
/// as inconclusive, naming what the path is.
#[tokio::test]
async fn log_checks_on_a_fifo_and_a_device_are_inconclusive() {
    use triage502::check::Outcome;
    use triage502::checks::{access_log, log_scan};
    let d = tmp();
    let fifo = d.path().join("error.log");
    mkfifo(&fifo);
    let ctx = triage502::check::CheckContext::last(Duration::from_secs(3600));
    for path in [s(&fifo).to_owned(), "/dev/zero".to_owned()] {
        let p = log_scan::Params {
            paths: vec![path.clone()],
            since: None,
            timeout: None,
        };
        let r = tokio::time::timeout(Duration::from_secs(10), log_scan::run(&p, &ctx))
            .await
            .expect("log_scan hung");
        assert_eq!(r.outcome, Outcome::Inconclusive, "{r:?}");
        assert!(r.summary.contains("not a regular file"), "{}", r.summary);
        let p = access_log::Params {
            paths: vec![path.clone()],
            format: None,
            since: None,
            timeout: None,
        };
        let r = tokio::time::timeout(Duration::from_secs(10), access_log::run(&p, &ctx))
            .await
            .expect("access_log hung");
        assert_eq!(r.outcome, Outcome::Inconclusive, "{r:?}");
        assert!(r.summary.contains("not a regular file"), "{}", r.summary);
    }
}

// ── Configurations ───────────────────────────────────────────────────────────

/// A file of `len` bytes that takes no disk space (a hole).
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

fn name_line(e: &ConfigError) -> (String, u32) {
    (
        e.file.file_name().unwrap().to_string_lossy().into_owned(),
        e.line,
    )
}

fn nginx_parse(main: &Path) -> ConfigError {
    nginx::parse(main, main.parent().unwrap(), None, Limits::default()).unwrap_err()
}

fn apache_parse(main: &Path) -> ConfigError {
    apache::parse_config(
        main,
        main.parent().unwrap(),
        &[],
        std::collections::BTreeMap::default(),
        Limits::default(),
    )
    .unwrap_err()
}

fn haproxy_parse(main: &Path) -> ConfigError {
    haproxy::parse::parse(&[main.to_path_buf()], Limits::default()).unwrap_err()
}

/// The hostile configurations the cases share, written into `d`.
struct Hostile {
    deep_nginx: PathBuf,
    deep_apache: PathBuf,
    huge_include_nginx: PathBuf,
    huge_include_apache: PathBuf,
    huge_haproxy: PathBuf,
}

fn hostile_configs(d: &Path) -> Hostile {
    let n = 100_000;
    let deep_nginx = d.join("deep_nginx.conf");
    std::fs::write(
        &deep_nginx,
        format!("events {{}}\n{}{}", "http {\n".repeat(n), "}\n".repeat(n)),
    )
    .unwrap();
    let deep_apache = d.join("deep_apache.conf");
    std::fs::write(
        &deep_apache,
        format!(
            "ServerRoot {}\n{}{}",
            d.display(),
            "<IfModule x>\n".repeat(n),
            "</IfModule>\n".repeat(n)
        ),
    )
    .unwrap();
    sparse(&d.join("huge.conf"), 10 << 30); // 10 GiB of NULs, no disk
    let huge_include_nginx = d.join("huge_nginx.conf");
    std::fs::write(
        &huge_include_nginx,
        "events {}\nhttp {\n  include huge.conf;\n}\n",
    )
    .unwrap();
    let huge_include_apache = d.join("huge_apache.conf");
    std::fs::write(
        &huge_include_apache,
        format!("ServerRoot {}\n\nInclude huge.conf\n", d.display()),
    )
    .unwrap();
    let huge_haproxy = d.join("huge.cfg");
    sparse(&huge_haproxy, 10 << 30);
    Hostile {
        deep_nginx,
        deep_apache,
        huge_include_nginx,
        huge_include_apache,
        huge_haproxy,
    }
}

/// Deep nesting, a 10 GiB include, /dev/zero, a FIFO, non-UTF-8 bytes and
/// unterminated strings, for each of the three parsers (the cases already
/// in tests/discovery_parsers.rs are not repeated): one error naming the
/// file and line, on a test thread's 2 MiB stack (as on a blocking task).
#[test]
fn configs_hostile_inputs_give_a_located_error_in_every_parser() {
    let dir = tmp();
    let d = dir.path();
    let h = hostile_configs(d);
    let fifo = d.join("fifo.conf");
    mkfifo(&fifo);

    let e = nginx_parse(&h.deep_nginx);
    assert_eq!(name_line(&e), ("deep_nginx.conf".into(), 66), "{e}");
    assert!(e.message.contains("nested deeper than 64"), "{e}");
    let e = nginx_parse(&h.huge_include_nginx);
    assert_eq!(name_line(&e), ("huge_nginx.conf".into(), 3), "{e}");
    assert!(e.message.contains("larger than"), "{e}");
    std::fs::write(d.join("fifo_nginx.conf"), "events {}\ninclude fifo.conf;\n").unwrap();
    let e = nginx_parse(&d.join("fifo_nginx.conf"));
    assert_eq!(name_line(&e), ("fifo_nginx.conf".into(), 2), "{e}");
    assert!(e.message.contains("is not a regular file"), "{e}");

    let e = apache_parse(&h.deep_apache);
    assert_eq!(name_line(&e), ("deep_apache.conf".into(), 66), "{e}");
    assert!(e.message.contains("nested deeper than 64"), "{e}");
    let e = apache_parse(&h.huge_include_apache);
    assert_eq!(name_line(&e), ("huge_apache.conf".into(), 3), "{e}");
    assert!(e.message.contains("larger than"), "{e}");
    for (name, text, line, what) in [
        (
            "zero_apache.conf",
            "Include /dev/zero\n".to_owned(),
            1,
            "not a regular file",
        ),
        (
            "fifo_apache.conf",
            format!("\nInclude {}\n", fifo.display()),
            2,
            "not a regular file",
        ),
        (
            "latin1_apache.conf",
            "ServerName a\nServerAdmin caf\u{e9}\n".to_owned(),
            2,
            "",
        ),
        (
            "quote_apache.conf",
            "ServerName a\nErrorLog \"/var/log/x\n".to_owned(),
            2,
            "",
        ),
    ] {
        let p = d.join(name);
        let mut bytes = text.into_bytes();
        if name.starts_with("latin1") {
            // Latin-1 é, not UTF-8.
            let at = bytes.len() - 3;
            bytes.splice(at..at + 2, [0xE9]);
        }
        std::fs::write(&p, bytes).unwrap();
        let e = apache_parse(&p);
        assert_eq!(name_line(&e), (name.into(), line), "{e}");
        assert!(e.message.contains(what), "{e}");
    }

    let e = haproxy_parse(&h.huge_haproxy);
    assert!(e.message.contains("larger than"), "{e}");
    let e = haproxy_parse(Path::new("/dev/zero"));
    assert!(e.message.contains("not a regular file"), "{e}");
    let e = haproxy_parse(&fifo);
    assert!(e.message.contains("not a regular file"), "{e}");
    let p = d.join("latin1.cfg");
    std::fs::write(
        &p,
        b"global\n    log stdout format raw local0\nfrontend caf\xe9\n",
    )
    .unwrap();
    let e = haproxy_parse(&p);
    assert_eq!(name_line(&e), ("latin1.cfg".into(), 3), "{e}");
}

/// `triage502 map` of a real nginx whose configuration on disk has become
/// hostile (`--var front.config`): the map ends, says the configuration is
/// not parseable at file:line:col, and stays under the memory cap.
#[test]
fn configs_map_of_a_real_nginx_with_hostile_configs() {
    let dir = servers::tempdir();
    let d = dir.path();
    let port = servers::free_port();
    servers::write(
        &d.join("nginx.conf"),
        &format!(
            "worker_processes 1;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  server {{\n    listen 127.0.0.1:{port};\n    return 200 ok;\n  }}\n}}\n",
            d = d.display()
        ),
    );
    let mut n = servers::nginx(d);
    n.wait_tcp(&format!("127.0.0.1:{port}"));
    let h = hostile_configs(d);
    std::fs::write(d.join("zero.conf"), "events {}\ninclude /dev/zero;\n").unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    for (case, conf, at) in [
        (
            "map, 100k nested blocks",
            h.deep_nginx.clone(),
            "deep_nginx.conf:66:",
        ),
        (
            "map, 10 GiB include",
            h.huge_include_nginx.clone(),
            "huge_nginx.conf:3:",
        ),
        (
            "map, include /dev/zero",
            d.join("zero.conf"),
            "zero.conf:2:",
        ),
    ] {
        let var = format!("front.config={}", conf.display());
        let r = run(
            case,
            &["map", &url, "--format", "json", "--var", &var],
            Input::Null,
        );
        assert_eq!(r.code, Some(1), "{case}: {}", r.all());
        let v = r.json();
        assert_eq!(v["front"]["kind"], "nginx", "{case}");
        let notes = v["notes"].to_string();
        assert!(
            notes.contains("configuration not parseable") && notes.contains(at),
            "{case}: {notes}"
        );
    }
}

// ── Playbooks and signature files ────────────────────────────────────────────

fn playbook_calling(id: &str, callee: Option<&str>) -> String {
    let head = format!("id = \"{id}\"\ntitle = \"T\"\nversion = \"1\"\ndescription = \"d\"\n");
    match callee {
        Some(c) => format!(
            "{head}start = \"c\"\n\n[[node]]\nid = \"c\"\ntitle = \"call\"\ncall = \"{c}\"\non = {{ resolved = \"ok\", escalate = \"ok\" }}\n\n[[node]]\nid = \"ok\"\ntitle = \"done\"\nend = \"resolved\"\n"
        ),
        None => format!(
            "{head}start = \"ok\"\n\n[[node]]\nid = \"ok\"\ntitle = \"done\"\nend = \"resolved\"\n"
        ),
    }
}

/// Every file the playbook validator and the signature loader can meet:
/// one error with file:line:col (or naming the file when there is no
/// place), at once, under the memory cap, never a crash.
#[test]
fn playbooks_and_signature_files_hostile_inputs() {
    let dir = tmp();
    let d = dir.path();
    let n = 100_000;
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let keys = vec!["k"; n].join(".");
    let files = [
        (
            "deep_arrays.toml",
            write(
                "deep_arrays.toml",
                format!("id = \"x\"\na = {}{}\n", "[".repeat(n), "]".repeat(n)).as_bytes(),
            ),
            ":2:",
        ),
        (
            "deep_tables.toml",
            write(
                "deep_tables.toml",
                format!("id = \"x\"\na = {}1{}\n", "{b = ".repeat(n), "}".repeat(n)).as_bytes(),
            ),
            ":2:",
        ),
        (
            "deep_keys.toml",
            write(
                "deep_keys.toml",
                format!("id = \"x\"\n\n{keys} = 1\n").as_bytes(),
            ),
            ":3:1:",
        ),
        (
            "deep_header.toml",
            write(
                "deep_header.toml",
                format!("id = \"x\"\n[{keys}]\n").as_bytes(),
            ),
            ":2:1:",
        ),
        (
            "latin1.toml",
            write("latin1.toml", b"id = \"x\"\ntitle = \"caf\xe9\"\n"),
            ":2:13:",
        ),
        (
            "nul.toml",
            write("nul.toml", b"id = \"x\"\n\0\0\0\n"),
            ":2:",
        ),
        (
            "unterminated.toml",
            write("unterminated.toml", b"id = \"x\ntitle = 1\n"),
            ":1:",
        ),
    ];
    for (name, p, at) in &files {
        let r = run(
            &format!("playbook validate {name}"),
            &["playbook", "validate", s(p)],
            Input::Null,
        );
        assert_eq!(r.code, Some(2), "{name}: {}", r.all());
        let first = r.stdout.lines().next().unwrap_or_default();
        assert!(first.contains(&format!("{name}{at}")), "{name}: {first}");
        assert!(first.contains("error"), "{name}: {first}");
        // The source line is shown cut around the place, not 100k characters.
        assert!(r.stdout.lines().all(|l| l.chars().count() < 300), "{name}");
        let r = run(
            &format!("signatures {name}"),
            &["logs", "classify", "--signatures", s(p), "/dev/null"],
            Input::Null,
        );
        assert_eq!(r.code, Some(2), "{name}: {}", r.all());
        assert!(
            r.stderr.contains(&format!("{name}{at}")),
            "{name}: {}",
            r.stderr
        );
    }
    // Huge (a 10 GiB hole), a FIFO, a device: refused without reading.
    let huge = d.join("huge.toml");
    sparse(&huge, 10 << 30);
    let fifo = d.join("fifo.toml");
    mkfifo(&fifo);
    for (p, what) in [
        (huge.as_path(), "larger than a playbook can be"),
        (fifo.as_path(), "not a regular file"),
        (Path::new("/dev/zero"), "not a regular file"),
    ] {
        let r = run_quick(
            &format!("playbook validate {}", p.display()),
            &["playbook", "validate", s(p)],
            || Input::Null,
        );
        assert_eq!(r.code, Some(2), "{}", r.all());
        assert!(r.all().contains(what), "{}", r.all());
    }
    let r = run(
        "signatures 10 GiB",
        &["logs", "classify", "--signatures", s(&huge), "/dev/null"],
        Input::Null,
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("huge.toml:1:1: larger than 4 MiB"),
        "{}",
        r.stderr
    );

    // Sub-playbooks: a cycle between two, and a chain of 40.
    let a = write("a.toml", playbook_calling("a", Some("b")).as_bytes());
    let b = write("b.toml", playbook_calling("b", Some("a")).as_bytes());
    let r = run(
        "playbook validate, call cycle",
        &["playbook", "validate", s(&a), s(&b)],
        Input::Null,
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stdout
            .contains("a.toml:10:8: error: calls form a cycle: a → b → a"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("b.toml:10:8: error: calls form a cycle: b → a → b")
    );
    let mut chain = Vec::new();
    for i in 0..40 {
        let callee = (i < 39).then(|| format!("p{}", i + 1));
        chain.push(write(
            &format!("p{i}.toml"),
            playbook_calling(&format!("p{i}"), callee.as_deref()).as_bytes(),
        ));
    }
    let mut args = vec!["playbook", "validate"];
    args.extend(chain.iter().map(|p| s(p)));
    let r = run("playbook validate, 40 nested calls", &args, Input::Null);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stdout
            .contains("p0.toml:10:8: error: calls nest 17 playbooks deep, more than 16: p0 → p1"),
        "{}",
        r.stdout
    );
    // The last 16 of the chain are fine.
    for i in 24..40 {
        assert!(
            r.stdout.contains(&format!("p{i}.toml: ok")),
            "p{i}: {}",
            r.stdout
        );
    }
}
