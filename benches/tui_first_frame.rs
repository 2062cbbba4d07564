//! Time to the wizard's first frame on a pseudo-terminal, side by side with
//! `less` and `top` on the same kind of pty in the same run.
//!
//! Each run opens a fresh 80x24 pty, starts the program on it (through
//! `setsid`, so it has no controlling terminal but the pty, like a login
//! shell's child would see it), and reads the master side until the first
//! screen is there: the switch to the alternate screen followed by the
//! program's first visible text (`triage502` in the wizard's header, the
//! first line of the file in `less`; `top` draws on the normal screen, so
//! there its `top - ` summary line alone).
//! The time is from just before the spawn to the read that completed the
//! marker, so process start, dynamic loading, the program's set-up and the
//! first draw are all in it. The program is then killed.
//!
//!   cargo bench --bench tui_first_frame [-- RUNS]        (default 30 runs)
//!
//! `TRIAGE502_BENCH_BIN=PATH` measures another build of the wizard (the shipped static binary
//! from `scripts/dist.sh`, say) beside the bench build, in the same run.
//!
//! Prints min / median / max per program, the ratio of medians against
//! `less`, and the wizard's peak RSS (VmHWM) at its first frame.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails by panicking"
)]

use std::fmt::Write as _;
use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

const BIN: &str = env!("CARGO_BIN_EXE_triage502");
const ALT_SCREEN: &[u8] = b"\x1b[?1049h";

/// A pty pair: the master we read, the slave the program gets as 0, 1 and 2.
fn pty() -> (OwnedFd, OwnedFd) {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    tcsetwinsize(
        &slave,
        Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    (master, slave)
}

/// What one run saw.
struct Run {
    first_frame: Duration,
    /// VmHWM of the program at its first frame, in KiB.
    peak_kib: Option<u64>,
}

fn peak_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Start `argv` on a fresh pty and time it until `marker` shows in its
/// output (after the alternate-screen switch when `alt`).
fn once(
    argv: &[&str],
    (marker, alt): (&[u8], bool),
    cwd: &std::path::Path,
    state: &std::path::Path,
) -> Run {
    let (master, slave) = pty();
    let mut cmd = Command::new("setsid");
    cmd.args(argv)
        .current_dir(cwd)
        .env("TERM", "xterm-256color")
        .env("XDG_STATE_HOME", state)
        .env_remove("LESS")
        .env_remove("NO_COLOR")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let (tx, rx) = mpsc::channel();
    let mut reader = std::fs::File::from(master);
    let marker = marker.to_vec();
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("setsid (util-linux) runs the program");
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        // Bounded: a program that never draws is killed after the timeout below,
        // which ends this read with EIO.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let from = if alt {
                find(&seen, ALT_SCREEN)
            } else {
                Some(0)
            };
            if let Some(at) = from
                && find(&seen[at..], &marker).is_some()
            {
                let _ = tx.send(t0.elapsed());
                break;
            }
            if seen.len() > 4 << 20 {
                break;
            }
        }
        // Keep the master open until the program is gone, so it never blocks on output.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    let first_frame = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{argv:?} drew no first frame within 10 s"));
    let peak = peak_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    Run {
        first_frame,
        peak_kib: peak,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Row {
    name: String,
    min: f64,
    median: f64,
    max: f64,
    peak_mib: Option<f64>,
}

fn measure(
    name: &str,
    argv: &[&str],
    marker: (&[u8], bool),
    runs: usize,
    cwd: &std::path::Path,
) -> Row {
    let state = tempfile::tempdir().unwrap();
    // One untimed run warms the page cache for the binary and its libraries.
    once(argv, marker, cwd, state.path());
    let mut times = Vec::with_capacity(runs);
    let mut peak = None;
    for _ in 0..runs {
        let r = once(argv, marker, cwd, state.path());
        times.push(ms(r.first_frame));
        peak = peak.max(r.peak_kib);
    }
    times.sort_by(f64::total_cmp);
    Row {
        name: name.to_owned(),
        min: times[0],
        median: times[times.len() / 2],
        max: times[times.len() - 1],
        peak_mib: peak.map(|k| k as f64 / 1024.0),
    }
}

fn main() {
    let runs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(30)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.txt");
    let mut text = String::new();
    for i in 1..=5000 {
        let _ = writeln!(text, "line {i:04} of a log");
    }
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    // Port 9 on loopback: nothing is contacted before Enter, the URL only has to be valid.
    let url = "http://127.0.0.1:9/checkout";
    let other = std::env::var("TRIAGE502_BENCH_BIN").ok();
    let mut rows = Vec::new();
    if let Some(other) = other.as_deref() {
        rows.push(measure(
            "TRIAGE502_BENCH_BIN URL (start screen)",
            &[other, url],
            (b"triage502", true),
            runs,
            dir.path(),
        ));
    }
    rows.extend([
        measure(
            "triage502 URL (start screen)",
            &[BIN, url],
            (b"triage502", true),
            runs,
            dir.path(),
        ),
        measure(
            "triage502 (URL prompt)",
            &[BIN],
            (b"triage502", true),
            runs,
            dir.path(),
        ),
        measure(
            "less FILE",
            &["less", file],
            (b"line 0001", true),
            runs,
            dir.path(),
        ),
    ]);
    if which::which("top").is_ok() {
        // procps top draws without the alternate screen: its summary line is the frame.
        rows.push(measure(
            "top",
            &["top"],
            (b"top - ", false),
            runs,
            dir.path(),
        ));
    }
    let less = rows
        .iter()
        .find(|r| r.name.starts_with("less"))
        .map_or(1.0, |r| r.median);
    println!("First frame on an 80x24 pty, {runs} runs each (after one warm-up run), ms:");
    println!();
    println!("| program | min | median | max | median vs less | peak RSS (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2}x | {} |",
            r.name,
            r.min,
            r.median,
            r.max,
            r.median / less,
            r.peak_mib.map_or_else(String::new, |m| format!("{m:.1}"))
        );
    }
}
