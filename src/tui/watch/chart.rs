//! The Watch screen's view: the verdict, the last probe, and three charts
//! (status per probe, latency, the access log's gateway errors per minute).
//!
//! Pure: a function of `app.watch` and `app.now`. Every meaning carried by
//! colour is also carried by a height or a symbol (5xx bars are the tall
//! ones, a probe without an answer is `×`/`x`), so monochrome loses nothing.

use std::collections::VecDeque;
use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Sparkline, SparklineBar, Wrap};

use super::{ACCESS_MINUTES, AccessRate, Class, RECOVERED_AFTER, Sample, Verdict};
use crate::tui::app::App;
use crate::tui::render::{block, theme};
use crate::tui::theme::{Mark, Theme};

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
        Span::raw(t.text(&format!("{last} {d} {fail} {d} "))),
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
    let url = t.text(w.url.as_deref().unwrap_or("(no URL)"));
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
    let latency_h = (chart_rows.saturating_sub(status_h) / 2).max(1);
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
    let mut title_line = vec![Span::styled(t.text(&title), t.title())];
    if let Some(r) = body
        && !r.unreadable.is_empty()
    {
        title_line.push(Span::styled(
            t.text(&format!(" (unreadable: {})", r.unreadable.join("; "))),
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
