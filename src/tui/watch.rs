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
//!
//! Files: this one holds the state and its rules (samples, the verdict,
//! bounded history); `watch/prober.rs` the tasks; `watch/chart.rs` the view.

pub mod chart;
pub mod prober;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::engine::{Engine, Record};

pub use chart::render;
pub use prober::{Prober, Spec, wanted};

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
