//! The command line: clap types (in the library so tests can `Cli::parse_from`)
//! and the dispatch to each command.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::check::CheckContext;
use crate::duration::HumanDuration;
use crate::engine::Engine;
use crate::playbook::diagnostic::Level;
use crate::playbook::graph;
use crate::playbook::library::{self, Library, Source};
use crate::report::{Report, Status};

const AFTER_HELP: &str = "\
Examples:
  triage502 https://shop.example.com/checkout        walk the default 502 playbook in the TUI
  triage502 run --non-interactive --format json http://127.0.0.1:8080/
  triage502 run --non-interactive --answer cdn=no --var error_log=/srv/log/error.log URL
  triage502 playbook validate playbooks/*.toml
  triage502 playbook graph 502 --format mermaid

Exit codes:
  0  nothing wrong found (healthy)
  1  a problem was found (or a failure was seen but not explained)
  2  unusable input: a flag, a URL, a playbook
  3  internal error";

/// `triage502 --version`: the version, the git commit and the target it was built for.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TRIAGE502_GIT_COMMIT"),
    ", ",
    env!("TRIAGE502_TARGET"),
    ")"
);

/// The exit status of a command whose reader went away (`triage502 ticket | head`): what a
/// shell reports for a process ended by SIGPIPE, the usual status of Unix tools.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Standard output that ends quietly when its reader goes away: the first `EPIPE` marks it
/// closed and every later write is discarded, so no command (nor a library writing through it,
/// such as the completion generator) fails or panics half-way; `run` then exits with
/// [`EXIT_BROKEN_PIPE`] and prints nothing.
pub struct Stdout<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Stdout<W> {
    pub fn new(inner: W) -> Self {
        Stdout {
            inner,
            closed: false,
        }
    }

    /// True once a write or flush found the reader gone.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn check(&mut self, r: std::io::Result<()>) -> std::io::Result<()> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r,
        }
    }
}

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            r => r,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.check(r)
    }
}

/// Walks an operator through diagnosing a 502 Bad Gateway, from the URL to a support ticket.
#[derive(Debug, Parser)]
#[command(name = "triage502", version = VERSION, about, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The failing URL; opens the interactive wizard (TUI).
    pub url: Option<String>,
    #[command(flatten)]
    pub walk: WalkArgs,
}

/// Options shared by the TUI and `run`.
#[derive(Debug, Args, Clone)]
pub struct WalkArgs {
    /// Playbook file or id (default: 502).
    #[arg(long, value_name = "FILE|ID")]
    pub playbook: Option<String>,
    /// Set a playbook value, e.g. --var error_log=/srv/log/error.log (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// Never run any action; they are only shown.
    #[arg(long)]
    pub read_only: bool,
    /// Run no action above this risk tier: reversible, disruptive or destructive.
    #[arg(long, value_name = "TIER")]
    pub max_tier: Option<crate::action::Tier>,
    /// The incident window: how far back logs are read (e.g. 30m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub since: HumanDuration,
    /// Continue a saved session where it stopped: ID (or `latest`) directly; without an ID the
    /// wizard lists the saved sessions to choose from (`run --non-interactive`: the newest).
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// Plain ASCII marks and borders (for terminals without UTF-8 line drawing).
    #[arg(long)]
    pub ascii: bool,
    /// The ssh config file for hops to the upstreams' hosts (`ssh -F FILE`; default: ssh's own,
    /// ~/.ssh/config of the user's passwd home).
    #[arg(long, value_name = "FILE", env = "TRIAGE502_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// The static triage502 a hop copies to a host that lacks the same version (default: this
    /// executable, when it is static; e.g. the musl build of scripts/dist.sh).
    #[arg(long, value_name = "PATH", env = "TRIAGE502_HOP_BINARY")]
    pub hop_binary: Option<PathBuf>,
    /// Set by a hop on its remote run: `copy` when the operator's run allows copying triage502
    /// to a further host (its own run is still `--read-only`: the walk runs no action there),
    /// `no-copy` otherwise. A remote run at the depth limit says which hop it did not make.
    #[arg(long, value_name = "MODE", hide = true, env = "TRIAGE502_HOP_REMOTE", value_parser = ["copy", "no-copy"])]
    pub hop_remote: Option<String>,
}

impl WalkArgs {
    /// The hop plan these options describe, `hops` deep.
    pub fn hop_plan(&self, hops: u32) -> crate::hop::Plan {
        let ssh = crate::hop::Ssh {
            program: None,
            config: self.ssh_config.clone(),
            connect_timeout: 5,
        };
        let mut plan = crate::hop::Plan::new(ssh, hops);
        plan.binary.path.clone_from(&self.hop_binary);
        plan.since = self.since.to_string();
        match self.hop_remote.as_deref() {
            Some("copy") => {}
            Some(_) => {
                plan.copy = crate::hop::run::Copy::Forbidden(
                    "the first host's run does not allow it (--read-only)".into(),
                );
            }
            None if self.read_only => {
                plan.copy = crate::hop::run::Copy::Forbidden("--read-only forbids it".into());
            }
            None => {}
        }
        plan
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk a playbook (the TUI, or unattended with --non-interactive).
    Run(RunArgs),
    /// List, validate, draw and test playbooks.
    #[command(subcommand)]
    Playbook(PlaybookCommand),
    /// Describe the automated checks.
    #[command(subcommand)]
    Checks(ChecksCommand),
    /// Draw the serving path of a URL on this host: front server, route, upstream, logs.
    Map(crate::discovery::cli::MapArgs),
    /// Explain offline which server block, location and upstream of a configuration serve URLs.
    Route(crate::discovery::offline::RouteArgs),
    /// Scan, summarise and classify web-server logs.
    #[command(subcommand)]
    Logs(crate::logs::cli::LogsCommand),
    /// List saved sessions: id, URL, start, last event, status.
    Sessions,
    /// Render the support ticket of a saved session (the newest by default).
    Ticket(crate::ticket::TicketArgs),
    /// Merge the JSON reports of many hosts (Ansible, ssh in a loop, pssh) into one fleet report.
    Fleet(crate::fleet::FleetArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The failing URL.
    #[arg(conflicts_with = "url_flag")]
    pub url: Option<String>,
    /// The failing URL (alternative to the positional argument).
    #[arg(long = "url", value_name = "URL")]
    pub url_flag: Option<String>,
    #[command(flatten)]
    pub walk: WalkArgs,
    /// Answer a question: --answer NODE=CHOICE (repeatable); others take their default.
    #[arg(long = "answer", value_name = "NODE=CHOICE", value_parser = parse_pair)]
    pub answers: Vec<(String, String)>,
    /// Walk without a terminal: questions take --answer or their default, actions never run
    /// (unless --apply).
    #[arg(long)]
    pub non_interactive: bool,
    /// With --non-interactive: run offered actions up to this tier unattended (reversible,
    /// disruptive or destructive), each with its pre-flight test, verification and undo.
    #[arg(long, value_name = "TIER", requires = "non_interactive")]
    pub apply: Option<crate::action_spec::Tier>,
    /// Report format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With --non-interactive: when the failing path's upstream is another host, continue the
    /// walk there over ssh (read-only), up to N hops deep (0: never, the default; at most 2).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=2))]
    pub hops: u32,
    /// One progress line per step on stderr (what a hop streams from the remote run).
    #[arg(long, hide = true)]
    pub progress: bool,
    /// Write no session journal (a hop's remote run leaves nothing behind on that host).
    #[arg(long)]
    pub no_journal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum PlaybookCommand {
    /// Every playbook on the search path: id, title, where it came from, what it shadows.
    List,
    /// Check playbook files; every problem is reported as file:line:col.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Draw a playbook's decision tree.
    Graph {
        /// Playbook file or id.
        playbook: String,
        #[arg(long, value_enum, default_value = "text")]
        format: graph::Format,
    },
    /// Run walk scenario files (default: ./playbooks/tests/).
    Test { paths: Vec<PathBuf> },
    /// Print the JSON Schema of the playbook format (or of the JSON report).
    Schema {
        /// Print the report schema instead.
        #[arg(long)]
        report: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChecksCommand {
    /// Each check kind, its parameters, the facts it publishes, and an example.
    List,
}

/// Bad input from the operator: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut out = Stdout::new(std::io::stdout().lock());
    let result = dispatch(cli, &mut out);
    let flushed = out.flush();
    if out.is_closed() {
        return Ok(ExitCode::from(EXIT_BROKEN_PIPE));
    }
    flushed?;
    result
}

fn dispatch(cli: Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut out = out;
    match cli.command {
        None => crate::interactive(cli.url, &cli.walk),
        Some(Command::Run(args)) => run_command(args, &mut out),
        Some(Command::Playbook(cmd)) => playbook_command(cmd, &mut out),
        Some(Command::Sessions) => crate::ticket::sessions_command(&mut out),
        Some(Command::Ticket(args)) => crate::ticket::ticket_command(&args, &mut out),
        Some(Command::Fleet(args)) => crate::fleet::run(&args, &mut out),
        Some(Command::Map(args)) => crate::discovery::cli::run(args, &mut out),
        Some(Command::Route(args)) => crate::discovery::offline::run(&args, &mut out),
        Some(Command::Logs(cmd)) => crate::logs::cli::run(cmd, &mut out),
        Some(Command::Checks(ChecksCommand::List)) => {
            write!(out, "{}", crate::check::checks_list_text())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "triage502", &mut out);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Load the library and pick the playbook named by `--playbook` (file or id).
pub fn select_playbook(choice: Option<&str>) -> anyhow::Result<(Arc<Library>, String)> {
    let choice = choice.unwrap_or("502");
    let path = PathBuf::from(choice);
    let is_file = path.extension().is_some_and(|e| e == "toml") || path.is_file();
    let extra = if is_file { vec![path.clone()] } else { vec![] };
    let (lib, failures) = Library::standard(&extra).map_err(usage)?;
    let id = if is_file {
        let src = Source::read(&path).map_err(usage)?;
        if let Some(id) = library::declared_id(&src.text) {
            id
        } else {
            let l = crate::playbook::load::load(&src.text, &std::collections::HashSet::new());
            return Err(usage(format!(
                "invalid playbook:\n{}",
                library::render_all(&src, &l.diagnostics)
            )));
        }
    } else {
        choice.to_owned()
    };
    if lib.get(&id).is_none() {
        if let Some(f) = failures.iter().find(|f| f.name.contains(&id) || is_file) {
            return Err(usage(format!(
                "playbook `{id}` is invalid:\n{}",
                f.rendered
            )));
        }
        let known: Vec<&str> = lib.playbooks.keys().map(String::as_str).collect();
        return Err(usage(format!(
            "no playbook `{id}` (known: {})",
            known.join(", ")
        )));
    }
    for f in &failures {
        eprintln!(
            "warning: skipped invalid playbook {}:\n{}",
            f.name, f.rendered
        );
    }
    Ok((Arc::new(lib), id))
}

/// Values for the engine from `--var` and the URL; validated against the playbook.
pub fn initial_values(
    lib: &Library,
    id: &str,
    url: Option<&str>,
    vars: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values: BTreeMap<String, String> = vars.iter().cloned().collect();
    if let Some(u) = url {
        values.insert("url".into(), u.to_owned());
    }
    let pb = lib
        .get(id)
        .ok_or_else(|| usage(format!("no playbook `{id}`")))?;
    for (k, v) in &values {
        if let Some(var) = pb.var(k) {
            var.validate(v).map_err(|e| usage(format!("--var {e}")))?;
        }
    }
    for var in pb.vars.iter().filter(|v| v.required) {
        if !values.contains_key(&var.name) && var.default.is_none() {
            let how = if var.name == "url" {
                "give the URL as an argument".to_owned()
            } else {
                format!("pass --var {}=VALUE", var.name)
            };
            return Err(usage(format!(
                "missing value `{}` ({}): {how}",
                var.name, var.prompt
            )));
        }
    }
    Ok(values)
}

#[allow(clippy::needless_pass_by_value)] // consumed by value from the parsed Cli
fn run_command(args: RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let url = args.url.clone().or(args.url_flag.clone());
    if !args.non_interactive {
        return crate::interactive(url, &args.walk);
    }
    let answers: BTreeMap<String, String> = args.answers.iter().cloned().collect();
    let mut ended = false;
    let (engine, mut journal, url, started_at) = if let Some(id) = &args.walk.resume {
        let overrides: BTreeMap<String, String> = args.walk.vars.iter().cloned().collect();
        let id = Some(id.as_str()).filter(|i| *i != "latest");
        let (engine, journal, session) =
            crate::journal::resume_with(id, &overrides).map_err(|e| usage(e.to_string()))?;
        let at = crate::journal::position(&engine);
        eprintln!(
            "triage502: resuming session {} at {at} ({})",
            journal.id(),
            journal.path().display()
        );
        ended = session.end().is_some();
        let started: jiff::Timestamp = session
            .meta
            .started_at
            .parse()
            .unwrap_or_else(|_| jiff::Timestamp::now());
        (engine, Some(journal), session.meta.url, started)
    } else {
        let (lib, id) = select_playbook(args.walk.playbook.as_deref())?;
        let values = initial_values(&lib, &id, url.as_deref(), &args.walk.vars)?;
        let engine = Engine::start(lib, &id, values).map_err(|e| usage(e.to_string()))?;
        let mut meta = crate::journal::meta_for(&engine, url.clone(), args.walk.read_only);
        meta.playbook_file = args
            .walk
            .playbook
            .as_deref()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .and_then(|p| std::fs::canonicalize(p).ok());
        let journal = if args.no_journal {
            None
        } else {
            match crate::journal::Journal::create(meta) {
                Ok(j) => Some(j),
                Err(e) => {
                    eprintln!("warning: this session is not journalled: {e}");
                    None
                }
            }
        };
        (engine, journal, url, jiff::Timestamp::now())
    };
    let t0 = std::time::Instant::now();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let ctx = CheckContext::last(args.walk.since.0);
    let progress = args.progress;
    let mut observe = |i: &crate::engine::Input| {
        if progress {
            progress_lines(i);
        }
        if let Some(j) = journal.as_mut() {
            if let Err(e) = j.input(i) {
                eprintln!("warning: journal write failed, journalling stops: {e}");
                journal = None;
            }
        }
    };
    let unattended = crate::walk::Unattended {
        apply: args.apply,
        url: url.clone(),
    };
    let (engine, walked) = rt
        .block_on(crate::walk::walk_unattended(
            engine,
            &answers,
            ctx,
            &crate::action::ExecPolicy::non_interactive(args.walk.read_only, args.walk.max_tier),
            &unattended,
            &mut observe,
        ))
        .map_err(|e| usage(e.to_string()))?;
    if let Some(j) = journal.as_mut().filter(|_| !ended) {
        if let Err(e) = j.end(&engine) {
            eprintln!("warning: journal write failed: {e}");
        }
        eprintln!(
            "triage502: session {} journalled in {}",
            j.id(),
            j.path().display()
        );
    }
    let mut report = Report::from_engine(
        &engine,
        url.clone(),
        started_at,
        t0.elapsed().as_millis() as u64,
    )
    .with_walk(&walked);
    if args.hops > 0 && report.status != Status::Healthy {
        let results = rt.block_on(hop_from(&engine, url.as_deref(), &args));
        report.merge_hops(results);
        if let Some(j) = journal.as_mut() {
            for h in &report.hops {
                let findings = report
                    .findings
                    .iter()
                    .filter(|f| f.host.as_deref() == Some(h.host.as_str()) && f.host != report.host)
                    .cloned()
                    .collect();
                let ev = crate::journal::Event::Hop {
                    hop: Box::new(h.clone()),
                    findings,
                };
                if let Err(e) = j.append(&ev) {
                    eprintln!("warning: journal write failed: {e}");
                }
            }
        }
        report.duration_ms = t0.elapsed().as_millis() as u64;
    } else if args.walk.hop_remote.is_some() && report.status != Status::Healthy {
        // A hop's remote run at the depth limit: the upstreams on further hosts bound what it
        // can say.
        let here = rt.block_on(crate::hop::Locality::here());
        let (targets, _) =
            crate::hop::targets(engine.values(), url.as_deref().unwrap_or_default(), &here);
        for t in targets {
            eprintln!(
                "triage502: hop: not to {}: the hop depth limit (--hops) is reached",
                t.ssh_host
            );
            report.unseen.push(crate::check::Unseen::new(
                format!("the upstream's host {} ({})", t.ssh_host, t.upstream),
                "a further hop was not made: the hop depth limit (--hops) is reached",
                "run with a larger --hops (at most 2), or run triage502 on that host",
            ));
        }
    }
    let text = match args.format {
        ReportFormat::Json => {
            let mut v = serde_json::to_value(&report)?;
            crate::redact::value(&mut v);
            serde_json::to_string_pretty(&v)? + "\n"
        }
        ReportFormat::Md => crate::redact::text(&report.to_markdown()),
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(match report.status {
        Status::Healthy => ExitCode::SUCCESS,
        Status::Problem | Status::Inconclusive => ExitCode::from(1),
    })
}

/// `--progress`: one line per step on stderr, as the walk goes.
fn progress_lines(i: &crate::engine::Input) {
    use crate::engine::Input;
    match i {
        Input::ChecksDone(reports) => {
            for r in reports {
                eprintln!(
                    "progress: {} {}: {}",
                    r.outcome.as_str(),
                    r.label,
                    crate::report::one_line(&r.summary)
                );
            }
        }
        Input::Answer { choice, .. } => eprintln!("progress: answered {choice}"),
        Input::ActionDeclined { reason } => eprintln!("progress: action not run: {reason}"),
        _ => {}
    }
}

/// `--hops N`: hop to every remote upstream of the failing path, progress on stderr.
async fn hop_from(
    engine: &Engine,
    url: Option<&str>,
    args: &RunArgs,
) -> Vec<(crate::hop::Hop, Option<Report>)> {
    let here = crate::hop::Locality::here().await;
    let (targets, skipped) = crate::hop::targets(engine.values(), url.unwrap_or_default(), &here);
    for s in &skipped {
        eprintln!("triage502: hop: not to {}: {}", s.upstream, s.why);
    }
    if targets.is_empty() {
        eprintln!("triage502: hop: no upstream of the failing path is on another host");
        return Vec::new();
    }
    let plan = args.walk.hop_plan(args.hops);
    let progress: crate::hop::run::Progress = Arc::new(|e: crate::hop::HopEvent| {
        eprintln!("triage502: hop {}: {}", e.host, e.line);
    });
    crate::hop::hop_all(&targets, &plan, progress).await
}

fn playbook_command(cmd: PlaybookCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cmd {
        PlaybookCommand::List => {
            let (lib, failures) = Library::standard(&[]).map_err(usage)?;
            writeln!(out, "{:<14} {:<44} SOURCE", "ID", "TITLE")?;
            for l in &lib.listing {
                let mut src = l.origin.to_string();
                if !l.shadows.is_empty() {
                    let s: Vec<String> = l.shadows.iter().map(ToString::to_string).collect();
                    src = format!("{src} (shadows {})", s.join(", "));
                }
                if !l.valid {
                    src.push_str(" [INVALID]");
                }
                writeln!(out, "{:<14} {:<44} {src}", l.id, l.title)?;
            }
            for f in failures.iter().filter(|f| {
                !lib.listing
                    .iter()
                    .any(|l| l.origin.to_string() == f.name && !l.valid)
            }) {
                writeln!(out, "(unreadable) {}", f.name)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PlaybookCommand::Validate { files } => {
            let results = library::validate_files(&files);
            let mut errors = 0;
            for (src, loaded) in &results {
                let text = library::render_all(src, &loaded.diagnostics);
                let n = loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.level == Level::Error)
                    .count();
                errors += n;
                if !text.is_empty() {
                    write!(out, "{text}")?;
                }
                let w = loaded.diagnostics.len() - n;
                if n == 0 {
                    writeln!(
                        out,
                        "{}: ok ({w} warning{})",
                        src.name(),
                        if w == 1 { "" } else { "s" }
                    )?;
                } else {
                    writeln!(
                        out,
                        "{}: {n} error{}, {w} warning{}",
                        src.name(),
                        if n == 1 { "" } else { "s" },
                        if w == 1 { "" } else { "s" }
                    )?;
                }
            }
            Ok(if errors > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        PlaybookCommand::Graph { playbook, format } => {
            let (lib, id) = select_playbook(Some(&playbook))?;
            let pb = lib
                .get(&id)
                .ok_or_else(|| usage(format!("no playbook `{id}`")))?;
            write!(out, "{}", graph::render(pb, format))?;
            Ok(ExitCode::SUCCESS)
        }
        PlaybookCommand::Test { paths } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("playbooks/tests")]
            } else {
                paths
            };
            let (lib, failures) = Library::standard(&[]).map_err(usage)?;
            for f in &failures {
                eprintln!(
                    "warning: skipped invalid playbook {}:\n{}",
                    f.name, f.rendered
                );
            }
            let lib = Arc::new(lib);
            let mut files = Vec::new();
            for p in &paths {
                if p.is_dir() {
                    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                        .with_context(|| format!("cannot read {}", p.display()))?
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                        .collect();
                    v.sort();
                    files.extend(v);
                } else {
                    files.push(p.clone());
                }
            }
            if files.is_empty() {
                return Err(usage(format!(
                    "no scenario files in {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let (mut passed, mut failed) = (0, 0);
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                let result = crate::scenario::parse(&text)
                    .map_err(|e| format!("{}:{e}", f.display()))
                    .and_then(|sc| crate::scenario::run(&lib, &sc).map(|_| sc.name));
                match result {
                    Ok(name) => {
                        passed += 1;
                        writeln!(out, "ok   {} ({name})", f.display())?;
                    }
                    Err(e) => {
                        failed += 1;
                        writeln!(out, "FAIL {}: {e}", f.display())?;
                    }
                }
            }
            writeln!(out, "{passed} passed, {failed} failed")?;
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        PlaybookCommand::Schema { report } => {
            let v = if report {
                crate::report::schema()
            } else {
                crate::playbook::schema()
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
