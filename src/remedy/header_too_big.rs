//! `header_too_big`: the upstream's response header does not fit the buffer
//! nginx reads it into (`proxy_buffer_size`, `fastcgi_buffer_size`, ...;
//! one memory page, 4k, by default). Remedy: size that buffer from the
//! header a direct probe measured, for the one location:
//!
//! `size = next power of two ≥ max(4k, header × 1.25)` (a quarter more for a
//! header that grows a little: one more cookie), and the `*_buffers` beside
//! it so the response body still fits nginx's rule that the busy buffers
//! (by default 2 × size) stay below all buffers minus one:
//! `*_buffers = max(4, count) size` when the configured ones are smaller.

use std::fmt::Write as _;

use super::{Inputs, Remedy, file_of, nginx_front, nginx_prefix, primary_upstream, route_location};
use crate::action_spec::ConfigSyntax;

const KIB: u64 = 1024;

/// The buffer size for a header of `header_bytes`, in bytes (formula above).
pub fn buffer_size(header_bytes: u64) -> u64 {
    let want = (header_bytes + header_bytes / 4).max(4 * KIB);
    want.next_power_of_two()
}

/// nginx size (`4k`, `8K`, `1m`, `4096`) in bytes.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], KIB),
        'm' | 'M' => (&v[..v.len() - 1], KIB * KIB),
        'g' | 'G' => (&v[..v.len() - 1], KIB * KIB * KIB),
        _ => (v, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// Bytes as nginx writes them (`32k`, `1m`, or plain bytes).
pub fn size_text(bytes: u64) -> String {
    if bytes % (KIB * KIB) == 0 {
        format!("{}m", bytes / (KIB * KIB))
    } else if bytes % KIB == 0 {
        format!("{}k", bytes / KIB)
    } else {
        bytes.to_string()
    }
}

pub fn compute(i: Inputs<'_>) -> Result<Remedy, String> {
    let (server, allowed) = nginx_front(i.map)?;
    let header = i
        .measured
        .header_bytes
        .ok_or("no direct probe measured the upstream's response header")?;
    let prefix = nginx_prefix(&primary_upstream(i.map)?.scheme);
    let size_name = format!("{prefix}_buffer_size");
    let buffers_name = format!("{prefix}_buffers");
    let loc = route_location(i.map)?;
    let current = i.map.settings.get(&size_name);
    let current_bytes = current
        .and_then(|s| parse_size(&s.value))
        .unwrap_or(4 * KIB);
    let size = buffer_size(header);
    if current_bytes >= size {
        return Err(format!(
            "{size_name} is already {} for a {header}-byte header: the buffer is not what is too small",
            size_text(current_bytes)
        ));
    }
    let now = current.map_or_else(
        || "the default 4k".to_owned(),
        |s| {
            if s.source.starts_with("default") {
                format!("the default {}", s.value)
            } else {
                format!("{} ({})", s.value, s.source)
            }
        },
    );
    let mut changes = vec![format!("@{}+ {size_name} {}", loc.line, size_text(size))];
    // The buffers beside it: nginx refuses a busy size (2 × size by default)
    // that is not below all buffers minus one.
    let (count, each) = i
        .map
        .settings
        .get(&buffers_name)
        .and_then(|s| {
            let mut w = s.value.split_whitespace();
            Some((w.next()?.parse::<u64>().ok()?, parse_size(w.next()?)?))
        })
        .unwrap_or((8, 4 * KIB));
    let mut buffers_note = String::new();
    if count * each < 3 * size || each < size {
        let n = count.max(4);
        changes.push(format!(
            "@{}+ {buffers_name} {n} {}",
            loc.line,
            size_text(size)
        ));
        buffers_note = format!(
            "; {buffers_name} {count} {} becomes {n} {} so the busy buffers (2 × {}) stay below all buffers minus one",
            size_text(each),
            size_text(size),
            size_text(size)
        );
    }
    // A busy size set by hand must be at least one buffer (nginx's other rule).
    let busy_name = format!("{prefix}_busy_buffers_size");
    if let Some(b) = i.map.settings.get(&busy_name)
        && !b.source.starts_with("default")
        && parse_size(&b.value).is_some_and(|v| v < size)
    {
        changes.push(format!(
            "@{}+ {busy_name} {}",
            loc.line,
            size_text(2 * size)
        ));
        let _ = write!(
            buffers_note,
            "; {busy_name} {} ({}) becomes {} (at least one buffer)",
            b.value,
            b.source,
            size_text(2 * size)
        );
    }
    Ok(Remedy::edit(
        "header_too_big",
        ConfigSyntax::Nginx,
        (server, allowed),
        file_of(loc),
        changes,
        format!(
            "nginx cannot read the upstream's {header}-byte ({:.1} KiB) response header into {size_name} = {now}: set {size_name} {} for `{}` ({}); measured by a direct probe, sized as the next power of two ≥ max(4k, {header} × 1.25){buffers_note}",
            header as f64 / KIB as f64,
            size_text(size),
            loc.text,
            loc.at()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Measured;
    use super::super::fixture::{nginx_map, place, remedy, upstream};
    use super::*;
    use crate::discovery::ServiceMap;
    use crate::discovery::service_map::{Route, Setting};

    fn map(scheme: &str) -> ServiceMap {
        let mut m = nginx_map(
            Route {
                location: Some(place(26, "location /")),
                ..Route::default()
            },
            vec![upstream("127.0.0.1:3000", scheme, 27)],
        );
        for (k, v) in [
            ("proxy_buffer_size", "4k"),
            ("proxy_buffers", "8 4k"),
            ("fastcgi_buffer_size", "4k"),
            ("fastcgi_buffers", "8 4k"),
        ] {
            m.settings.insert(
                k.into(),
                Setting {
                    value: v.into(),
                    source: "default (nginx built-in)".into(),
                },
            );
        }
        m
    }

    #[test]
    fn the_buffer_fits_the_measured_header_rounded_up() {
        let m = map("http");
        let measured = Measured {
            header_bytes: Some(16_500),
            ..Measured::default()
        };
        let r = remedy("header_too_big", &m, &measured).unwrap();
        assert_eq!(
            r.changes,
            ["@26+ proxy_buffer_size 32k", "@26+ proxy_buffers 8 32k"]
        );
        assert!(
            r.reason.starts_with(
                "nginx cannot read the upstream's 16500-byte (16.1 KiB) response header"
            ),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("the default 4k"), "{}", r.reason);
        assert!(!r.stopgap);
        let f = compute(Inputs {
            map: &map("fastcgi"),
            measured: &measured,
        })
        .unwrap();
        assert_eq!(f.changes[0], "@26+ fastcgi_buffer_size 32k");
        // No measurement, no remedy; a buffer already large enough is not the problem.
        assert!(remedy("header_too_big", &m, &Measured::default()).is_err());
        let small = Measured {
            header_bytes: Some(1_000),
            ..Measured::default()
        };
        assert!(
            remedy("header_too_big", &m, &small)
                .unwrap_err()
                .contains("already 4k")
        );
    }

    #[test]
    fn sizes_round_and_print_as_nginx_writes_them() {
        assert_eq!(buffer_size(100), 4096);
        assert_eq!(buffer_size(16_500), 32 * 1024);
        assert_eq!(buffer_size(13_000), 16 * 1024);
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        assert_eq!(size_text(32 * 1024), "32k");
        assert_eq!(size_text(1 << 20), "1m");
    }
}
