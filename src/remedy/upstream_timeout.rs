//! `upstream_timeout`: the proxy gave up before the upstream answered. Only
//! when a direct probe shows the upstream does answer, later, the remedy
//! raises the read timeout of the one location to the measured time plus a
//! margin, and says it is a stopgap (the slowness remains; find why the page
//! is slow).

use super::{Inputs, Remedy, file_of, nginx_front, nginx_prefix, primary_upstream, route_location};
use crate::action_spec::ConfigSyntax;

/// The margin over the measured time: 50%, at least 5 s.
pub fn new_timeout_s(measured_ms: u64) -> u64 {
    let margin = (measured_ms / 2).max(5_000);
    (measured_ms + margin).div_ceil(1000)
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, allowed) = nginx_front(i.map)?;
    let ms = i
        .measured
        .first_byte_ms
        .ok_or("no direct probe saw the upstream answer: raising the timeout would not help")?;
    let up = primary_upstream(i.map)?;
    let directive = format!("{}_read_timeout", nginx_prefix(&up.scheme));
    let loc = route_location(i.map)?;
    let current = i.map.settings.get(&directive);
    let current_s = current.and_then(|s| parse_seconds(&s.value));
    let secs = new_timeout_s(ms);
    if current_s.is_some_and(|c| c >= secs) {
        return Err(format!(
            "{directive} is already {}s, above the measured {ms} ms plus margin",
            current_s.unwrap_or_default()
        ));
    }
    let now = current.map_or_else(
        || "the default 60s".to_owned(),
        |s| format!("{} ({})", s.value, s.source),
    );
    Ok(Remedy::edit(
        "upstream_timeout",
        ConfigSyntax::Nginx,
        (server, allowed),
        file_of(loc),
        vec![format!("@{}+ {directive} {secs}s", loc.line)],
        format!(
            "the upstream answers, but after {ms} ms, while {directive} is {now}: raise it to {secs}s for `{}` ({}) only: measured time + max(50%, 5 s). A stopgap: the page stays slow; find out why",
            loc.text,
            loc.at()
        ),
    )
    .stopgap())
}

/// nginx time (`60`, `60s`, `2m`, `1m30s`, `500ms`) in whole seconds, rounded up.
pub fn parse_seconds(v: &str) -> Option<u64> {
    parse_ms(v).map(|ms| ms.div_ceil(1000))
}

/// nginx time (`60`, `60s`, `2m`, `1m30s`, `500ms`) in milliseconds.
pub fn parse_ms(v: &str) -> Option<u64> {
    let mut total_ms: u64 = 0;
    let mut num = String::new();
    let mut chars = v.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit_ms = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        total_ms += n * unit_ms;
        any = true;
    }
    if !num.is_empty() {
        total_ms += num.parse::<u64>().ok()? * 1000;
        any = true;
    }
    any.then_some(total_ms)
}

#[cfg(test)]
mod tests {
    use super::super::Measured;
    use super::super::fixture::{nginx_map, place, remedy, upstream};
    use super::*;
    use crate::discovery::service_map::{Route, Setting};

    #[test]
    fn the_location_gets_the_measured_time_plus_a_margin_flagged_as_stopgap() {
        let mut m = nginx_map(
            Route {
                location: Some(place(30, "location /")),
                ..Route::default()
            },
            vec![upstream("127.0.0.1:3000", "http", 31)],
        );
        m.settings.insert(
            "proxy_read_timeout".into(),
            Setting {
                value: "1s".into(),
                source: "/etc/nginx/nginx.conf:32".into(),
            },
        );
        let measured = Measured {
            first_byte_ms: Some(5_012),
            ..Measured::default()
        };
        let r = remedy("upstream_timeout", &m, &measured).unwrap();
        assert_eq!(r.changes, ["@30+ proxy_read_timeout 11s"]);
        assert!(r.stopgap);
        assert!(r.reason.contains("after 5012 ms"), "{}", r.reason);
        let none = Measured::default();
        assert!(remedy("upstream_timeout", &m, &none).is_err());
    }

    #[test]
    fn nginx_times_parse() {
        assert_eq!(parse_seconds("60"), Some(60));
        assert_eq!(parse_seconds("1m30s"), Some(90));
        assert_eq!(parse_seconds("500ms"), Some(1));
        assert_eq!(parse_seconds("x"), None);
        assert_eq!(parse_ms("750ms"), Some(750));
        assert_eq!(parse_ms("1m30s"), Some(90_000));
        assert_eq!(new_timeout_s(5_012), 11);
        assert_eq!(new_timeout_s(30_000), 45);
    }
}
