//! The Watch screen's tasks: probe the URL every interval and summarise the
//! access log, reporting as `Msg::Watch` on the app's one channel.
//!
//! Invariants: the [`Prober`] is the only owner of these tasks; the loop
//! calls `sync(wanted(&app))` after every message, so they run exactly while
//! the Watch overlay is open and are aborted (an in-flight request with
//! them) as soon as it is not; dropping the prober aborts them too. One
//! request at a time, at most once per [`MIN_INTERVAL`]; a slow probe
//! delays the next instead of stacking requests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{ACCESS_EVERY, ACCESS_MINUTES, AccessRate, MIN_INTERVAL, Sample, WatchEvent};
use crate::tui::app::{App, Msg, Overlay};

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
