//! The Watch screen (`w`): re-probe the session's URL every few seconds and
//! chart status and latency over time, with the 502/503/504 rate per minute
//! from the access log when one is known; used to see an incident's shape
//! and to confirm recovery after a fix.
//!
//! Invariants:
//! - The probing runs on tokio tasks owned by a [`Prober`] that the loop
//!   keeps in step with the app (`Prober::sync(wanted(&app))` after every
//!   message): while the Watch overlay is open exactly one probe task (and
//!   one access-log task when a log is known) runs; as soon as it is not
//!   (Esc, another window, quit) they are aborted, an in-flight request
//!   with them. The app never spawns; the draw loop never waits on a probe.
//! - Samples arrive as `Msg::Watch` on the app's one channel, stamped with
//!   the generation of the watch they belong to; samples of an older watch
//!   are dropped. History is bounded ([`HISTORY`] samples; the access series
//!   to [`ACCESS_MINUTES`] minutes).
//! - Only the session's URL is probed (`action::probe`: GET, no redirects,
//!   15 s limit), at most once per [`MIN_INTERVAL`]; the access log goes
//!   through `logs::access::summarise` (window seek, capped reads).
//! - Rendering is a pure function of the state and `app.now`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Sparkline, SparklineBar, Wrap};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::engine::{Engine, Record};
use crate::tui::app::{App, Msg, Overlay};
use crate::tui::render::{block, theme};
use crate::tui::theme::{Mark, Theme};

/// Samples kept (at the default 2 s, the last 4 minutes).
pub const HISTORY: usize = 120;
/// Answers in a row after a failure that count as recovered.
pub const RECOVERED_AFTER: usize = 3;
/// The intervals `+` and `-` step through.
pub const INTERVALS: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];
/// The default interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// No watch probes more often than this, whatever the state says.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How often the access log is summarised again.
pub const ACCESS_EVERY: Duration = Duration::from_secs(15);
/// Minutes of access log charted (the summary's window).
pub const ACCESS_MINUTES: usize = 30;

/// Key hints of the watch.
pub const HINTS: &str = "+/- probe interval · m map · ? help · Esc/w back (probing stops)";

/// One probe of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the answer (or the failure) came.
    pub at: Instant,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why no answer came.
    pub error: Option<String>,
}

/// What a sample says, for charts and the recovery rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx or 3xx: the page answers.
    Answer,
    /// 1xx or 4xx: an answer, but not the page.
    Other,
    /// 5xx.
    ServerError,
    /// No HTTP answer at all (refused, reset, timed out).
    NoAnswer,
}

impl Sample {
    pub fn class(&self) -> Class {
        match self.status {
            None => Class::NoAnswer,
            Some(s) if s >= 500 => Class::ServerError,
            Some(s) if (200..400).contains(&s) => Class::Answer,
            Some(_) => Class::Other,
        }
    }

    /// A 5xx or no answer.
    pub fn failed(&self) -> bool {
        matches!(self.class(), Class::ServerError | Class::NoAnswer)
    }

    /// "502 in 12 ms" or "no answer (connection refused) after 3 ms".
    pub fn describe(&self) -> String {
        match (self.status, &self.error) {
            (Some(s), _) => format!("{s} in {} ms", self.latency_ms),
            (None, Some(e)) => format!(
                "no answer ({}) after {} ms",
                short_error(e),
                self.latency_ms
            ),
            (None, None) => format!("no answer after {} ms", self.latency_ms),
        }
    }
}

/// The last link of an error chain, short ("Connection refused (os error 111)").
fn short_error(e: &str) -> String {
    let last = e.rsplit(": ").next().unwrap_or(e);
    last.chars().take(60).collect()
}

/// One minute of the access-log series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRate {
    /// `HH:MM`, local time.
    pub minute: String,
    pub requests: u64,
    /// 502 + 503 + 504.
    pub gateway: u64,
}

/// The access log's gateway errors per minute, from `logs::access::summarise`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRate {
    pub files: Vec<String>,
    /// Oldest first, one entry per minute up to the current one.
    pub minutes: Vec<MinuteRate>,
    pub requests: u64,
    pub gateway_errors: u64,
    /// Files that could not be read, with why.
    pub unreadable: Vec<String>,
}

impl AccessRate {
    /// The series of a summary, padded with empty minutes up to `now_minute`
    /// (unix seconds) and cut to the last [`ACCESS_MINUTES`].
    pub fn of(s: &crate::logs::access::AccessSummary, now_minute: i64) -> AccessRate {
        let first = now_minute - (ACCESS_MINUTES as i64 - 1) * 60;
        let mut minutes: Vec<MinuteRate> = (0..ACCESS_MINUTES as i64)
            .map(|i| MinuteRate {
                minute: hh_mm(first + i * 60),
                requests: 0,
                gateway: 0,
            })
            .collect();
        for m in &s.per_minute {
            let Ok(ts) = m.minute.parse::<jiff::Timestamp>() else {
                continue;
            };
            let at = ts.as_second().div_euclid(60) * 60;
            if at < first || at > now_minute {
                continue;
            }
            let slot = &mut minutes[((at - first) / 60) as usize];
            slot.requests += m.requests;
            slot.gateway += m.s502 + m.s503 + m.s504;
        }
        AccessRate {
            files: s.files.iter().map(|f| f.path.clone()).collect(),
            requests: minutes.iter().map(|m| m.requests).sum(),
            gateway_errors: minutes.iter().map(|m| m.gateway).sum(),
            minutes,
            unreadable: s
                .files
                .iter()
                .filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.path)))
                .collect(),
        }
    }
}

/// `HH:MM` in the machine's time zone (the one its logs are written in).
fn hh_mm(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(
        |_| unix.to_string(),
        |t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M")
                .to_string()
        },
    )
}

/// What the probe tasks report.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Sample {
        watch: u64,
        sample: Sample,
    },
    Access {
        watch: u64,
        rate: Result<AccessRate, String>,
    },
}

/// Where the URL stands, judged from the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    NoSamples,
    /// The last probe failed (5xx or no answer).
    Failing,
    /// Answers in a row since the last failure, fewer than [`RECOVERED_AFTER`].
    Recovering(usize),
    /// At least [`RECOVERED_AFTER`] answers in a row after a failure.
    Recovered(usize),
    /// No failure seen in this watch.
    Answering,
    /// The last probe got a 1xx/4xx: an answer, but not the page.
    Other,
}

/// The watch's state.
#[derive(Debug, Clone)]
pub struct Watch {
    pub interval: Duration,
    /// Oldest first, at most [`HISTORY`].
    pub samples: VecDeque<Sample>,
    /// The generation of the open watch (samples of older ones are dropped).
    pub id: u64,
    pub url: Option<String>,
    pub access_logs: Vec<String>,
    pub access_format: Option<String>,
    pub access: Option<Result<AccessRate, String>>,
    /// The last failed probe, kept when it leaves the history.
    pub last_failure: Option<Sample>,
    pub probes: u64,
    pub failures: u64,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            interval: DEFAULT_INTERVAL,
            samples: VecDeque::with_capacity(HISTORY),
            id: 0,
            url: None,
            access_logs: Vec::new(),
            access_format: None,
            access: None,
            last_failure: None,
            probes: 0,
            failures: 0,
        }
    }
}

impl Watch {
    /// Start a new watch of `url`: a new generation, a fresh history, and
    /// the access log the walk knows of.
    pub fn open(&mut self, url: Option<String>, engine: Option<&Engine>) {
        let (logs, format) = engine.map(access_logs).unwrap_or_default();
        *self = Watch {
            interval: self.interval,
            id: self.id.wrapping_add(1),
            url,
            access_logs: logs,
            access_format: format,
            ..Watch::default()
        };
    }

    /// Take a report of the probe tasks (of this watch only).
    pub fn apply(&mut self, ev: WatchEvent) {
        match ev {
            WatchEvent::Sample { watch, sample } if watch == self.id => {
                self.probes += 1;
                if sample.failed() {
                    self.failures += 1;
                    self.last_failure = Some(sample.clone());
                }
                if self.samples.len() == HISTORY {
                    self.samples.pop_front();
                }
                self.samples.push_back(sample);
            }
            WatchEvent::Access { watch, rate } if watch == self.id => self.access = Some(rate),
            WatchEvent::Sample { .. } | WatchEvent::Access { .. } => {}
        }
    }

    /// A longer interval (`+`).
    pub fn slower(&mut self) {
        self.interval = INTERVALS
            .iter()
            .copied()
            .find(|i| *i > self.interval)
            .unwrap_or(INTERVALS[INTERVALS.len() - 1]);
    }

    /// A shorter interval (`-`).
    pub fn faster(&mut self) {
        self.interval = INTERVALS
            .iter()
            .rev()
            .copied()
            .find(|i| *i < self.interval)
            .unwrap_or(INTERVALS[0]);
    }

    /// Answers (2xx/3xx) in a row at the end of the history.
    pub fn streak(&self) -> usize {
        self.samples
            .iter()
            .rev()
            .take_while(|s| s.class() == Class::Answer)
            .count()
    }

    pub fn verdict(&self) -> Verdict {
        let Some(last) = self.samples.back() else {
            return Verdict::NoSamples;
        };
        let streak = self.streak();
        match last.class() {
            Class::ServerError | Class::NoAnswer => Verdict::Failing,
            Class::Other => Verdict::Other,
            Class::Answer if self.last_failure.is_none() => Verdict::Answering,
            Class::Answer if streak >= RECOVERED_AFTER => Verdict::Recovered(streak),
            Class::Answer => Verdict::Recovering(streak),
        }
    }
}

/// The access logs to chart: discovery's (or `--var access_logs`), else
/// those the `access_log` check read.
fn access_logs(engine: &Engine) -> (Vec<String>, Option<String>) {
    let v = engine.values();
    let format = v
        .get("access_log_format")
        .filter(|f| !f.trim().is_empty())
        .cloned();
    let mut logs: Vec<String> = v
        .get("access_logs")
        .map(|l| {
            l.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if logs.is_empty() {
        // The check's label is "summarise access logs A, B" (its params are
        // not in the trail); only used when no fact names the logs.
        logs = engine
            .trail()
            .iter()
            .rev()
            .filter_map(|s| match &s.record {
                Record::Checks { reports, .. } => Some(reports),
                _ => None,
            })
            .flatten()
            .find(|r| r.kind == "access_log")
            .and_then(|r| r.label.strip_prefix("summarise access logs "))
            .map(|l| {
                l.split(", ")
                    .filter(|p| p.starts_with('/'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
    }
    logs.truncate(8);
    (logs, format)
}

/// What the probe tasks must be doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub watch: u64,
    pub url: String,
    pub interval: Duration,
    pub access_logs: Vec<String>,
    pub access_format: Option<String>,
}

/// The probing the app wants now: only while the Watch overlay is open.
pub fn wanted(app: &App) -> Option<Spec> {
    if app.overlay != Some(Overlay::Watch) || app.quit {
        return None;
    }
    let w = &app.watch;
    Some(Spec {
        watch: w.id,
        url: w.url.clone()?,
        interval: w.interval,
        access_logs: w.access_logs.clone(),
        access_format: w.access_format.clone(),
    })
}

/// Owns the probe tasks; dropping it (or `sync(None)`) aborts them.
pub struct Prober {
    tx: mpsc::UnboundedSender<Msg>,
    current: Option<Spec>,
    tasks: JoinSet<()>,
}

impl Prober {
    pub fn new(tx: mpsc::UnboundedSender<Msg>) -> Prober {
        Prober {
            tx,
            current: None,
            tasks: JoinSet::new(),
        }
    }

    /// Is a watch probing now?
    pub fn is_probing(&self) -> bool {
        self.current.is_some()
    }

    /// Make the tasks match `want`: stop them, (re)start them, or leave them.
    pub fn sync(&mut self, want: Option<Spec>) {
        if want == self.current {
            return;
        }
        self.tasks.abort_all();
        while self.tasks.try_join_next().is_some() {}
        self.current.clone_from(&want);
        let Some(spec) = want else { return };
        let tx = self.tx.clone();
        let (id, url, every) = (spec.watch, spec.url, spec.interval.max(MIN_INTERVAL));
        self.tasks.spawn(probe_loop(id, url, every, tx));
        if !spec.access_logs.is_empty() {
            let files = spec.access_logs.iter().map(PathBuf::from).collect();
            let tx = self.tx.clone();
            self.tasks
                .spawn(access_loop(id, files, spec.access_format, tx));
        }
    }
}

/// Probe `url` every `every` until aborted (the watch closed) or the app's
/// channel is gone. A probe slower than the interval delays the next one
/// instead of stacking requests.
async fn probe_loop(watch: u64, url: String, every: Duration, tx: mpsc::UnboundedSender<Msg>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let p = crate::action::probe(&url).await;
        let sample = Sample {
            at: Instant::now(),
            status: p.status,
            latency_ms: p.latency_ms,
            error: p.error,
        };
        if tx
            .send(Msg::Watch(WatchEvent::Sample { watch, sample }))
            .is_err()
        {
            break;
        }
    }
}

/// Summarise the access log's last [`ACCESS_MINUTES`] minutes every
/// [`ACCESS_EVERY`], off the async threads.
async fn access_loop(
    watch: u64,
    files: Vec<PathBuf>,
    format: Option<String>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let mut tick = tokio::time::interval(ACCESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (files, format) = (files.clone(), format.clone());
        let r = tokio::task::spawn_blocking(move || {
            let window = crate::logs::Window::last(Duration::from_secs(ACCESS_MINUTES as u64 * 60));
            let s = crate::logs::access::summarise(&files, format.as_deref(), &window);
            let now = jiff::Timestamp::now().as_second().div_euclid(60) * 60;
            s.map(|s| AccessRate::of(&s, now))
        })
        .await;
        let rate = match r {
            Ok(Ok(rate)) => Ok(rate),
            Ok(Err(e)) => Err(format!("bad access-log format: {e}")),
            Err(e) => Err(format!("the summary stopped: {e}")),
        };
        if tx
            .send(Msg::Watch(WatchEvent::Access { watch, rate }))
            .is_err()
        {
            break;
        }
    }
}

/// "14s", "2m05s", "1h03m".
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn status_bar(t: Theme, s: &Sample) -> SparklineBar {
    // Heights carry the class without colour: 5xx and no answer fill the
    // strip, 1xx/4xx half of it, answers a sliver.
    let (v, c) = match s.class() {
        Class::Answer => (Some(1), Color::Green),
        Class::Other => (Some(8), Color::Yellow),
        Class::ServerError => (Some(16), Color::Red),
        Class::NoAnswer => (None, Color::Red),
    };
    SparklineBar::from(v).style(t.fg(c))
}

fn latency_bar(t: Theme, s: &Sample) -> SparklineBar {
    let c = match s.class() {
        Class::Answer => Color::Green,
        Class::Other => Color::Yellow,
        Class::ServerError | Class::NoAnswer => Color::Red,
    };
    let v = s.status.map(|_| s.latency_ms.max(1));
    SparklineBar::from(v).style(t.fg(c))
}

const ASCII_BARS: symbols::bar::Set = symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: "_",
    one_eighth: "_",
    empty: " ",
};

fn spark<'a>(t: Theme, data: Vec<SparklineBar>, max: u64) -> Sparkline<'a> {
    let s = Sparkline::default()
        .data(data)
        .max(max.max(1))
        .absent_value_symbol(if t.ascii { "x" } else { "×" })
        .absent_value_style(t.fg(Color::Red).add_modifier(Modifier::BOLD));
    if t.ascii { s.bar_set(ASCII_BARS) } else { s }
}

/// The last `n` items.
fn tail<T>(v: &VecDeque<T>, n: usize) -> impl Iterator<Item = &T> {
    v.iter().skip(v.len().saturating_sub(n))
}

fn verdict_line(app: &App, t: Theme) -> Line<'static> {
    let w = &app.watch;
    let (mark, text) = match w.verdict() {
        Verdict::NoSamples => (
            Mark::Current,
            format!("{} first probe of the URL...", t.spinner(app.ticks)),
        ),
        Verdict::Failing => (
            Mark::Problem,
            format!(
                "FAILING: the last probe got {}",
                w.samples
                    .back()
                    .and_then(|s| s.status)
                    .map_or_else(|| "no answer".to_owned(), |s| s.to_string())
            ),
        ),
        Verdict::Recovering(n) => (
            Mark::Inconclusive,
            format!("recovering: {n} of {RECOVERED_AFTER} answers in a row since the last failure"),
        ),
        Verdict::Recovered(n) => (
            Mark::Ok,
            format!("RECOVERED: {n} answers in a row after the last failure"),
        ),
        Verdict::Answering => (Mark::Ok, "answering: no 5xx seen in this watch".into()),
        Verdict::Other => (
            Mark::Inconclusive,
            "answers, but not with the page (1xx/4xx)".into(),
        ),
    };
    Line::from(vec![
        Span::styled(format!("{} ", t.mark(mark)), t.mark_style(mark)),
        Span::styled(text, t.mark_style(mark).add_modifier(Modifier::BOLD)),
    ])
}

fn facts_line(app: &App, t: Theme) -> Line<'static> {
    let w = &app.watch;
    let d = t.dot();
    let last = w.samples.back().map_or_else(
        || "no probe yet".to_owned(),
        |s| format!("last {}", s.describe()),
    );
    let fail = w.last_failure.as_ref().map_or_else(
        || "no 5xx yet".to_owned(),
        |f| {
            let what = f
                .status
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            format!(
                "last 5xx/no answer {} ago ({what})",
                ago(app.now.saturating_duration_since(f.at))
            )
        },
    );
    Line::from(vec![
        Span::raw(format!("{last} {d} {fail} {d} ")),
        Span::styled(
            format!("{} probes, {} failed", w.probes, w.failures),
            t.dim(),
        ),
    ])
}

/// The watch over the body.
///
/// ```text
/// +- Watch: URL every 2s (+/- change) ----------------------------+
/// | ✗ FAILING: the last probe got no page                         |
/// | last 502 in 3 ms · last 5xx 0s ago (502) · 40 probes, 9 failed |
/// | Status, newest right: tall = 5xx, × = no answer, ...          |
/// | ▁▁▁▁██████▁▁▁                                                 |
/// | Latency, ms (max 230, last 12)                                |
/// | ▂▂▃▂▇▇▆▁▁                                                     |
/// | 502/503/504 per minute, last 30 min of access.log: peak 12    |
/// | ▁▁▁▁▁▁▁▁▃▇█▅▁                                                 |
/// +---------------------------------------------------------------+
/// ```
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = theme(app);
    let w = &app.watch;
    frame.render_widget(Clear, area);
    let url = w.url.as_deref().unwrap_or("(no URL)");
    let b = block(
        t,
        format!(
            " Watch: {url} every {} (+/- change, Esc stops) ",
            crate::duration::HumanDuration(w.interval)
        ),
    );
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let chart_rows = inner.height.saturating_sub(8);
    let status_h = (chart_rows / 4).clamp(1, 3);
    let latency_h = ((chart_rows - status_h) / 2).max(1);
    let [
        head,
        status_label,
        status,
        latency_label,
        latency,
        access_label,
        access,
    ] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(status_h),
        Constraint::Length(1),
        Constraint::Length(latency_h),
        Constraint::Length(2),
        Constraint::Min(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(vec![verdict_line(app, t), facts_line(app, t)]),
        head,
    );
    let n = usize::from(inner.width);
    let absent = if t.ascii { "x" } else { "×" };
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(
                "Status, newest right: tall = 5xx, {absent} = no answer, half = 4xx, low = 2xx/3xx"
            ),
            t.title(),
        )),
        status_label,
    );
    let bars: Vec<SparklineBar> = tail(&w.samples, n).map(|s| status_bar(t, s)).collect();
    frame.render_widget(spark(t, bars, 16), status);
    let shown: Vec<&Sample> = tail(&w.samples, n).collect();
    let max = shown
        .iter()
        .filter(|s| s.status.is_some())
        .map(|s| s.latency_ms)
        .max();
    let last = w
        .samples
        .back()
        .map_or_else(|| "-".to_owned(), |s| s.latency_ms.to_string());
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(
                "Latency, ms (max {}, last {last})",
                max.map_or_else(|| "-".to_owned(), |m| m.to_string())
            ),
            t.title(),
        )),
        latency_label,
    );
    let bars: Vec<SparklineBar> = shown.iter().map(|s| latency_bar(t, s)).collect();
    frame.render_widget(spark(t, bars, max.unwrap_or(1)), latency);
    render_access(app, t, frame, access_label, access);
}

fn render_access(app: &App, t: Theme, frame: &mut Frame, label: Rect, area: Rect) {
    let w = &app.watch;
    let (title, body): (String, Option<&AccessRate>) = match (&w.access, w.access_logs.first()) {
        (_, None) => (
            "502/503/504 per minute: no access log known yet (discovery finds it, or --var access_logs=PATH)".to_owned(),
            None,
        ),
        (None, Some(f)) => (format!("502/503/504 per minute in {f}: reading..."), None),
        (Some(Err(e)), Some(f)) => (format!("502/503/504 per minute in {f}: {e}"), None),
        (Some(Ok(r)), Some(f)) => {
            let peak = r.minutes.iter().max_by_key(|m| m.gateway);
            let peak = peak
                .filter(|m| m.gateway > 0)
                .map_or_else(|| "none".to_owned(), |m| format!("{} at {}", m.gateway, m.minute));
            let now = r.minutes.last().map_or(0, |m| m.gateway);
            let more = if r.files.len() > 1 {
                format!(" (+{} more)", r.files.len() - 1)
            } else {
                String::new()
            };
            (
                format!(
                    "502/503/504 per minute, last {ACCESS_MINUTES} min of {f}{more}: now {now}, peak {peak}, {} of {} requests",
                    r.gateway_errors, r.requests
                ),
                Some(r),
            )
        }
    };
    let mut title_line = vec![Span::styled(title, t.title())];
    if let Some(r) = body
        && !r.unreadable.is_empty()
    {
        title_line.push(Span::styled(
            format!(" (unreadable: {})", r.unreadable.join("; ")),
            t.fg(Color::Yellow),
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(title_line)).wrap(Wrap { trim: false }),
        label,
    );
    let Some(r) = body else { return };
    let n = usize::from(area.width);
    let series = &r.minutes[r.minutes.len().saturating_sub(n)..];
    let max = series.iter().map(|m| m.gateway).max().unwrap_or(0);
    let bars: Vec<SparklineBar> = series
        .iter()
        .map(|m| {
            // A minute without gateway errors is a dim floor, not a gap.
            if m.gateway == 0 {
                SparklineBar::from(Some(0)).style(t.dim())
            } else {
                SparklineBar::from(Some(m.gateway)).style(t.fg(Color::Red))
            }
        })
        .collect();
    let [chart, axis] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    frame.render_widget(spark(t, bars, max), chart);
    if let (Some(a), Some(b)) = (series.first(), series.last()) {
        let width = usize::from(axis.width).min(series.len());
        let left = a.minute.clone();
        let right = b.minute.clone();
        let pad = width.saturating_sub(left.len() + right.len());
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("{left}{}{right}", " ".repeat(pad)),
                Style::default().patch(t.dim()),
            )),
            axis,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: Option<u16>) -> Sample {
        Sample {
            at: Instant::now(),
            status,
            latency_ms: 5,
            error: status.is_none().then(|| "connection refused".to_owned()),
        }
    }

    fn feed(w: &mut Watch, statuses: &[Option<u16>]) {
        for s in statuses {
            w.apply(WatchEvent::Sample {
                watch: w.id,
                sample: sample(*s),
            });
        }
    }

    #[test]
    fn recovered_needs_enough_answers_in_a_row_after_a_failure() {
        let mut w = Watch::default();
        assert_eq!(w.verdict(), Verdict::NoSamples);
        feed(&mut w, &[Some(200), Some(200)]);
        assert_eq!(w.verdict(), Verdict::Answering);
        feed(&mut w, &[Some(502), None]);
        assert_eq!(w.verdict(), Verdict::Failing);
        feed(&mut w, &[Some(200), Some(200)]);
        assert_eq!(w.verdict(), Verdict::Recovering(2));
        feed(&mut w, &[Some(404)]);
        assert_eq!(w.verdict(), Verdict::Other);
        feed(&mut w, &[Some(200), Some(301), Some(200)]);
        assert_eq!(w.verdict(), Verdict::Recovered(3));
        assert_eq!((w.probes, w.failures), (10, 2));
    }

    #[test]
    fn history_is_bounded_and_the_last_failure_outlives_it() {
        let mut w = Watch::default();
        feed(&mut w, &[Some(503)]);
        feed(&mut w, &vec![Some(200); HISTORY + 5]);
        assert_eq!(w.samples.len(), HISTORY);
        assert_eq!(w.last_failure.as_ref().and_then(|s| s.status), Some(503));
        assert_eq!(w.verdict(), Verdict::Recovered(HISTORY));
    }

    #[test]
    fn samples_of_an_older_watch_are_dropped() {
        let mut w = Watch::default();
        w.open(Some("http://127.0.0.1:1/".into()), None);
        let old = w.id;
        w.open(Some("http://127.0.0.1:1/".into()), None);
        w.apply(WatchEvent::Sample {
            watch: old,
            sample: sample(Some(502)),
        });
        assert!(w.samples.is_empty());
    }

    #[test]
    fn plus_and_minus_step_through_the_intervals_and_stop_at_the_ends() {
        let mut w = Watch::default();
        assert_eq!(w.interval, Duration::from_secs(2));
        w.slower();
        assert_eq!(w.interval, Duration::from_secs(5));
        for _ in 0..10 {
            w.slower();
        }
        assert_eq!(w.interval, Duration::from_secs(60));
        for _ in 0..10 {
            w.faster();
        }
        assert_eq!(w.interval, Duration::from_secs(1));
    }

    #[test]
    fn access_rate_pads_to_the_current_minute_and_sums_gateway_statuses() {
        use crate::logs::access::Minute;
        let now = 1_800_000_000 / 60 * 60;
        let mut s = crate::logs::access::summarise(&[], None, &crate::logs::Window::all()).unwrap();
        s.per_minute = vec![
            Minute {
                minute: crate::logs::time::rfc3339(now - 120),
                requests: 10,
                s502: 3,
                s503: 1,
                s504: 1,
            },
            Minute {
                minute: crate::logs::time::rfc3339(now - 3600),
                requests: 99,
                s502: 99,
                s503: 0,
                s504: 0,
            },
        ];
        let r = AccessRate::of(&s, now);
        assert_eq!(r.minutes.len(), ACCESS_MINUTES);
        assert_eq!(r.minutes[ACCESS_MINUTES - 3].gateway, 5);
        assert_eq!(
            r.gateway_errors, 5,
            "a minute outside the window is not counted"
        );
        assert_eq!(
            r.minutes.last().map(|m| m.minute.as_str()),
            Some(hh_mm(now).as_str())
        );
    }
}
