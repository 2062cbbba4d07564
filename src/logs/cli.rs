//! `triage502 logs scan | access | classify`: the command-line front of the
//! log analysis. The lead wires [`LogsCommand`] into the main CLI.
//! `logs scan --url URL` reads the logs discovery finds ([`super::discovered`]).
//!
//! Exit codes: 0 nothing found, 1 causes (or gateway errors) found, 2 bad
//! input (no readable file, a bad window, a bad format or signature file).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::access;
use super::catalogue::Catalogue;
use super::classify::Role;
use super::format::{self, Fields};
use super::reader::{self, Joiner};
use super::scan::{self, ScanOptions, Window};
use super::time::{self, Zone};
use crate::cause::Cause;
use crate::duration::HumanDuration;

/// Work with web-server logs.
#[derive(Debug, Clone, Subcommand)]
pub enum LogsCommand {
    /// Classify the upstream failures in error logs within the incident window.
    Scan(ScanArgs),
    /// Summarise access logs: statuses, 502/503/504 per minute, onset, failing paths, scope.
    Access(AccessArgs),
    /// Classify each entry of a stream (`tail -F error.log | triage502 logs classify`).
    Classify(ClassifyArgs),
}

/// The incident window. Default: the last hour.
#[derive(Debug, Clone, Args, Default)]
pub struct WindowArgs {
    /// How far back from now (`30m`, `2h`, `1h30m`).
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["from", "all"])]
    pub since: Option<HumanDuration>,
    /// Window start: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (local), or a duration back from now.
    #[arg(long, value_name = "TIME", conflicts_with = "all")]
    pub from: Option<String>,
    /// Window end (default: now).
    #[arg(long, value_name = "TIME", conflicts_with = "all")]
    pub to: Option<String>,
    /// The whole files, no window.
    #[arg(long)]
    pub all: bool,
}

impl WindowArgs {
    /// The window these options describe.
    pub fn window(&self) -> anyhow::Result<Window> {
        let now = jiff::Timestamp::now();
        if self.all {
            return Ok(Window::all());
        }
        if let Some(s) = self.since {
            return Ok(Window::last(s.0));
        }
        let from = match &self.from {
            Some(f) => Some(time::parse_user_time(f, now).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let to = match &self.to {
            Some(t) => Some(time::parse_user_time(t, now).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let from = from.unwrap_or_else(|| {
            let end = to.unwrap_or(now);
            end.checked_sub(jiff::SignedDuration::from_hours(1))
                .unwrap_or(end)
        });
        if let Some(t) = to
            && t < from
        {
            anyhow::bail!("--to ({t}) is before --from ({from})");
        }
        Ok(Window {
            from: Some(from.as_second()),
            to: to.map(jiff::Timestamp::as_second),
        })
    }
}

/// Output format of `scan` and `access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Output format of `classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StreamOutput {
    #[default]
    Text,
    Jsonl,
}

#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// Error logs (nginx, Apache, php-fpm, HAProxy, Caddy, kernel/journal/audit), detected per line.
    #[arg(required_unless_present = "url", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Read the error logs discovery finds for this URL (the front server's and,
    /// behind php-fpm, the pool's), instead of FILEs.
    #[arg(long, value_name = "URL", conflicts_with = "files")]
    pub url: Option<String>,
    /// With --url: override a discovered fact, e.g. `--var error_logs=/srv/logs/error.log` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "url",
          value_parser = crate::discovery::cli::parse_var)]
    pub vars: Vec<(String, String)>,
    #[command(flatten)]
    pub window: WindowArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Output,
    /// Do not read rotated files (`error.log.1`, `error.log.2.gz`).
    #[arg(long)]
    pub no_rotated: bool,
    /// An extra signature file, tried before the operator's and the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub signatures: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// Access logs (nginx combined or custom, Apache common/combined/LogFormat, HAProxy httplog).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub window: WindowArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Output,
    /// The format: a preset (combined, main, common, vhost_combined, haproxy), an nginx
    /// `log_format` string or an Apache `LogFormat` string. Default: detected.
    #[arg(long, value_name = "STR")]
    pub log_format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ClassifyArgs {
    /// A file, or `-` / nothing for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: StreamOutput,
    /// An extra signature file, tried first.
    #[arg(long, value_name = "FILE")]
    pub signatures: Option<PathBuf>,
}

fn bad_input(out: &mut dyn Write, msg: &str) -> ExitCode {
    // Bad input goes to stderr so JSON on stdout stays valid.
    let _ = out.flush();
    eprintln!("triage502 logs: {msg}");
    ExitCode::from(2)
}

fn catalogue(extra: Option<&PathBuf>) -> Result<Catalogue, String> {
    let mut paths = Vec::new();
    if let Some(p) = extra {
        // `exists`, not `is_file`: a FIFO or a device is refused by the loader, by name.
        if !p.exists() {
            return Err(format!("{}: no such signature file", p.display()));
        }
        paths.push(p.clone());
    }
    paths.extend(super::catalogue::user_paths());
    Catalogue::load_from(&paths).map_err(|e| e.to_string())
}

/// Run a `logs` subcommand, writing its output to `out`.
pub fn run(cmd: LogsCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cmd {
        LogsCommand::Scan(a) => run_scan(&a, out),
        LogsCommand::Access(a) => run_access(&a, out),
        LogsCommand::Classify(a) => run_classify(&a, out),
    }
}

fn run_scan(a: &ScanArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let window = match a.window.window() {
        Ok(w) => w,
        Err(e) => return Ok(bad_input(out, &e.to_string())),
    };
    let cat = match catalogue(a.signatures.as_ref()) {
        Ok(c) => c,
        Err(e) => return Ok(bad_input(out, &e)),
    };
    let opts = ScanOptions {
        catalogue: &cat,
        zone: Zone::system(),
        follow_rotations: !a.no_rotated,
        samples: 3,
    };
    let (files, discovered) = match &a.url {
        None => (a.files.clone(), None),
        Some(url) => match discover_logs(url, &a.vars) {
            Ok(d) => (d.logs.iter().map(|l| l.path.clone()).collect(), Some(d)),
            Err(e) => return Ok(bad_input(out, &e)),
        },
    };
    let report = scan::scan(&files, &window, &opts);
    match a.format {
        Output::Json => {
            /// The scan report, with where `--url` found the logs.
            #[derive(Serialize)]
            struct WithDiscovery<'r> {
                #[serde(skip_serializing_if = "Option::is_none")]
                discovered: Option<&'r super::discovered::Discovered>,
                #[serde(flatten)]
                report: &'r scan::ScanReport,
            }
            let v = WithDiscovery {
                discovered: discovered.as_ref(),
                report: &report,
            };
            serde_json::to_writer_pretty(&mut *out, &v)?;
            writeln!(out)?;
        }
        Output::Text => {
            if let Some(d) = &discovered {
                writeln!(
                    out,
                    "logs of {} ({}), found by discovery:",
                    d.url,
                    d.front.as_deref().unwrap_or("front server")
                )?;
                for l in &d.logs {
                    writeln!(out, "  {} [{}] from {}", l.path.display(), l.role, l.source)?;
                }
                for s in &d.skipped {
                    writeln!(out, "  skipped {s}")?;
                }
            }
            out.write_all(scan::render_text(&report).as_bytes())?;
        }
    }
    let operands_failed = report
        .files
        .iter()
        .filter(|f| !f.rotated && f.error.is_some())
        .count();
    if operands_failed == files.len() {
        return Ok(bad_input(out, "no file could be read"));
    }
    Ok(ExitCode::from(u8::from(!report.causes.is_empty())))
}

/// The error logs discovery finds for `url` (a current-thread runtime, as `map` uses).
fn discover_logs(
    url: &str,
    vars: &[(String, String)],
) -> Result<super::discovered::Discovered, String> {
    let overrides: std::collections::BTreeMap<String, String> = vars.iter().cloned().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let map = rt
        .block_on(crate::discovery::discover(url, &overrides))
        .map_err(|e| e.to_string())?;
    super::discovered::error_logs(&map).map_err(|e| e.to_string())
}

fn run_access(a: &AccessArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let window = match a.window.window() {
        Ok(w) => w,
        Err(e) => return Ok(bad_input(out, &e.to_string())),
    };
    let summary = match access::summarise(&a.files, a.log_format.as_deref(), &window) {
        Ok(s) => s,
        Err(e) => return Ok(bad_input(out, &format!("--log-format: {e}"))),
    };
    match a.format {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &summary)?;
            writeln!(out)?;
        }
        Output::Text => out.write_all(access::render_text(&summary).as_bytes())?,
    }
    if summary.files.iter().all(|f| f.error.is_some()) {
        return Ok(bad_input(out, "no access log could be read"));
    }
    Ok(ExitCode::from(u8::from(summary.gateway_errors > 0)))
}

/// One line of `classify` output.
#[derive(Debug, Serialize)]
struct Verdict<'a> {
    line: u64,
    cause: Option<Cause>,
    role: Option<Role>,
    signature: Option<&'a str>,
    format: Option<format::Format>,
    time: Option<String>,
    fields: Option<&'a Fields>,
    /// Other causes the entry may mean (the walk decides with more evidence).
    #[serde(skip_serializing_if = "<[Cause]>::is_empty")]
    alternatives: &'a [Cause],
    text: String,
}

fn run_classify(a: &ClassifyArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let cat = match catalogue(a.signatures.as_ref()) {
        Ok(c) => c,
        Err(e) => return Ok(bad_input(out, &e)),
    };
    let stdin = a.input.as_ref().is_none_or(|p| p.as_os_str() == "-");
    if stdin && let Err(e) = super::input::check_stdin() {
        return Ok(bad_input(out, &e.to_string()));
    }
    let input: Box<dyn BufRead + Send> = match &a.input {
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::BufReader::new(std::io::stdin())),
        // A named file must be a regular file (read up to its size at open);
        // streams come through standard input.
        Some(p) => match super::input::open(p) {
            Ok(o) => Box::new(std::io::BufReader::with_capacity(
                1 << 16,
                std::io::Read::take(o.file, o.size),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return Ok(bad_input(out, &super::input::refusal(&e)));
            }
            Err(e) => return Ok(bad_input(out, &format!("{}: {e}", p.display()))),
        },
    };
    // A reader thread feeds lines; a pause of 300 ms completes the pending
    // entry, so a live `tail -F` shows each entry as soon as it is whole.
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(1024);
    let reader = std::thread::spawn(move || {
        let mut input = input;
        loop {
            let mut line = Vec::new();
            match reader::read_capped_line(&mut input, &mut line) {
                Ok(true) => {
                    if tx.send(Ok(line)).is_err() {
                        break;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
    });
    let mut zone = Zone::system();
    let mut joiner = Joiner::default();
    let mut found = false;
    // IIS W3C logs: the `#Fields:` line in effect decides the columns.
    let mut w3c = super::w3c::Tracker::default();
    let mut emit = |e: reader::Entry, zone: &mut Zone, out: &mut dyn Write| -> anyhow::Result<()> {
        let head = format::head(&e.text, zone);
        let view = w3c.view(head.as_ref(), &e.text);
        let c = cat.classify(head.as_ref().unwrap_or(&format::Head::unknown()), &view);
        if c.as_ref()
            .is_some_and(|c| c.cause.is_some() && c.role == Role::Primary)
        {
            found = true;
        }
        let first =
            String::from_utf8_lossy(e.text.split(|b| *b == b'\n').next().unwrap_or_default())
                .into_owned();
        match a.format {
            StreamOutput::Jsonl => {
                let v = Verdict {
                    line: e.line,
                    cause: c.as_ref().and_then(|c| c.cause),
                    role: c.as_ref().map(|c| c.role),
                    signature: c
                        .as_ref()
                        .and_then(|c| c.signature(&cat))
                        .map(|s| s.id.as_str()),
                    format: Some(head.as_ref().map_or(format::Format::Unknown, |h| h.format)),
                    time: head.as_ref().and_then(|h| h.ts).map(time::rfc3339),
                    fields: c.as_ref().map(|c| &c.fields),
                    alternatives: c.as_ref().map_or(&[], |c| c.alternatives.as_slice()),
                    text: scan::redact(&e.text),
                };
                serde_json::to_writer(&mut *out, &v)?;
                writeln!(out)?;
            }
            StreamOutput::Text => {
                let cause = c
                    .as_ref()
                    .and_then(|c| c.cause)
                    .map_or_else(|| "-".to_owned(), |c| c.to_string());
                let role = match c.as_ref().map(|c| c.role) {
                    Some(Role::Primary) => "primary",
                    Some(Role::Secondary) => "secondary",
                    Some(Role::Ignored) => "not-a-cause",
                    Some(Role::Unmatched) => "unmatched",
                    None => "-",
                };
                let sig = c
                    .as_ref()
                    .and_then(|c| c.signature(&cat))
                    .map_or("-", |s| s.id.as_str());
                let cut: String = first.chars().take(160).collect();
                writeln!(out, "{}\t{cause}\t{role}\t{sig}\t{cut}", e.line)?;
            }
        }
        out.flush()?;
        Ok(())
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(300)) {
            Ok(Ok(line)) => {
                if let Some(e) = joiner.push(&line, &mut zone) {
                    emit(e, &mut zone, out)?;
                }
            }
            Ok(Err(e)) => {
                return Err(e).context("reading the input");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(e) = joiner.flush() {
                    emit(e, &mut zone, out)?;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(e) = joiner.flush() {
        emit(e, &mut zone, out)?;
    }
    let _ = reader.join();
    Ok(ExitCode::from(u8::from(found)))
}
