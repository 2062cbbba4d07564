//! Timestamps as servers write them, parsed from bytes without allocation.
//!
//! Every parser takes the start of a line and returns Unix seconds plus how
//! many bytes the timestamp (with its brackets) took, or `None` when the bytes
//! are not that layout. Local-time layouts (nginx, Apache, php-fpm, syslog)
//! are converted with the system time zone through [`Zone`], which caches the
//! UTC offset per hour so the hot path does no time-zone lookups.
//! Invariant: no parser reads past the slice it is given, none panics.

#![allow(
    clippy::many_single_char_names,
    reason = "y, mo, d, h, mi, s are the calendar fields of the layouts"
)]

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Local-time conversion with a one-hour offset cache.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
    cached_hour: i64,
    cached_offset: i64,
    /// The year assumed for syslog lines, which carry none.
    pub syslog_year: i16,
    /// Syslog times later than this (Unix seconds) belong to the year before.
    pub syslog_latest: i64,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::system()
    }
}

impl Zone {
    /// The machine's zone; the syslog year is the current one.
    pub fn system() -> Self {
        Zone::with_tz(TimeZone::system())
    }

    /// UTC everywhere (tests, generated logs).
    pub fn utc() -> Self {
        Zone::with_tz(TimeZone::UTC)
    }

    pub fn with_tz(tz: TimeZone) -> Self {
        let now = Timestamp::now();
        let year = now.to_zoned_datetime(tz.clone()).year();
        Zone {
            tz,
            cached_hour: i64::MIN,
            cached_offset: 0,
            syslog_year: year,
            syslog_latest: now.as_second() + 2 * 86_400,
        }
    }

    /// The zone's time zone.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// Local civil seconds (as if UTC) to Unix seconds.
    pub fn local_to_unix(&mut self, naive: i64) -> i64 {
        let hour = naive.div_euclid(3600);
        if hour != self.cached_hour {
            self.cached_offset = self.offset_for(naive);
            self.cached_hour = hour;
        }
        naive - self.cached_offset
    }

    fn offset_for(&self, naive: i64) -> i64 {
        let Ok(ts) = Timestamp::from_second(naive) else {
            return 0;
        };
        let civil: DateTime = ts.to_zoned_datetime(TimeZone::UTC).datetime();
        match self.tz.to_ambiguous_timestamp(civil).compatible() {
            Ok(real) => naive - real.as_second(),
            Err(_) => 0,
        }
    }

    /// Unix seconds to the local civil time, for writing logs.
    pub fn civil(&self, unix: i64) -> DateTime {
        Timestamp::from_second(unix)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.tz.clone())
            .datetime()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn naive(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

#[inline]
fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// `Jan`..`Dec` to 1..12.
pub fn month(b: &[u8]) -> Option<i64> {
    Some(match b.get(..3)? {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// `HH:MM:SS` at `at`.
fn hms(b: &[u8], at: usize) -> Option<(i64, i64, i64)> {
    if byte(b, at + 2) != b':' || byte(b, at + 5) != b':' {
        return None;
    }
    Some((
        digits(b, at, 2)?,
        digits(b, at + 3, 2)?,
        digits(b, at + 6, 2)?,
    ))
}

/// Skip `.digits` (fractional seconds) at `at`; returns the index after them.
fn skip_fraction(b: &[u8], mut at: usize) -> usize {
    if byte(b, at) == b'.' || byte(b, at) == b',' {
        at += 1;
        while byte(b, at).is_ascii_digit() {
            at += 1;
        }
    }
    at
}

/// `+hhmm`, `+hh:mm`, `Z` at `at`: (offset seconds, index after).
fn zone_offset(b: &[u8], at: usize) -> Option<(i64, usize)> {
    match byte(b, at) {
        b'Z' => Some((0, at + 1)),
        sign @ (b'+' | b'-') => {
            let h = digits(b, at + 1, 2)?;
            let (m, end) = if byte(b, at + 3) == b':' {
                (digits(b, at + 4, 2)?, at + 6)
            } else {
                (digits(b, at + 3, 2)?, at + 5)
            };
            let off = h * 3600 + m * 60;
            Some((if sign == b'-' { -off } else { off }, end))
        }
        _ => None,
    }
}

/// nginx: `YYYY/MM/DD HH:MM:SS` (local time). Returns (unix, 19).
pub fn nginx(b: &[u8], z: &mut Zone) -> Option<(i64, usize)> {
    if byte(b, 4) != b'/' || byte(b, 7) != b'/' || byte(b, 10) != b' ' {
        return None;
    }
    let (h, mi, s) = hms(b, 11)?;
    let n = naive(
        digits(b, 0, 4)?,
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
        h,
        mi,
        s,
    )?;
    Some((z.local_to_unix(n), 19))
}

/// ISO 8601 / RFC 3339: `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±hh[:]mm]`; local
/// time when no zone is given. Returns (unix, bytes used).
pub fn iso(b: &[u8], z: &mut Zone) -> Option<(i64, usize)> {
    if byte(b, 4) != b'-' || byte(b, 7) != b'-' || !matches!(byte(b, 10), b'T' | b' ') {
        return None;
    }
    let (h, mi, s) = hms(b, 11)?;
    let n = naive(
        digits(b, 0, 4)?,
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
        h,
        mi,
        s,
    )?;
    let mut end = skip_fraction(b, 19);
    // Apache's ISO variant writes ` +0200` with a space.
    let zat = if byte(b, end) == b' ' && matches!(byte(b, end + 1), b'+' | b'-') {
        end + 1
    } else {
        end
    };
    if let Some((off, e)) = zone_offset(b, zat) {
        end = e;
        return Some((n - off, end));
    }
    Some((z.local_to_unix(n), end))
}

/// Apache default: `Www Mmm DD HH:MM:SS[.uuuuuu] YYYY` (inside brackets; `b`
/// starts after `[`). Returns (unix, bytes used).
pub fn apache(b: &[u8], z: &mut Zone) -> Option<(i64, usize)> {
    if byte(b, 3) != b' ' || byte(b, 7) != b' ' {
        return None;
    }
    let mo = month(b.get(4..)?)?;
    let d = if byte(b, 8) == b' ' {
        digits(b, 9, 1)?
    } else {
        digits(b, 8, 2)?
    };
    let (h, mi, s) = hms(b, 11)?;
    let end = skip_fraction(b, 19);
    if byte(b, end) != b' ' {
        return None;
    }
    let y = digits(b, end + 1, 4)?;
    let n = naive(y, mo, d, h, mi, s)?;
    Some((z.local_to_unix(n), end + 5))
}

/// php-fpm: `DD-Mon-YYYY HH:MM:SS[.uuuuuu]` (inside brackets). Returns (unix, bytes used).
pub fn fpm(b: &[u8], z: &mut Zone) -> Option<(i64, usize)> {
    if byte(b, 2) != b'-' || byte(b, 6) != b'-' || byte(b, 11) != b' ' {
        return None;
    }
    let d = digits(b, 0, 2)?;
    let mo = month(b.get(3..)?)?;
    let y = digits(b, 7, 4)?;
    let (h, mi, s) = hms(b, 12)?;
    let n = naive(y, mo, d, h, mi, s)?;
    Some((z.local_to_unix(n), skip_fraction(b, 20)))
}

/// Common Log Format: `DD/Mon/YYYY:HH:MM:SS[.mmm] [+zzzz]` (inside brackets;
/// HAProxy's accept date has milliseconds and no zone, so it is local).
pub fn clf(b: &[u8], z: &mut Zone) -> Option<(i64, usize)> {
    if byte(b, 2) != b'/' || byte(b, 6) != b'/' || byte(b, 11) != b':' {
        return None;
    }
    let d = digits(b, 0, 2)?;
    let mo = month(b.get(3..)?)?;
    let y = digits(b, 7, 4)?;
    let (h, mi, s) = hms(b, 12)?;
    let n = naive(y, mo, d, h, mi, s)?;
    let end = skip_fraction(b, 20);
    if byte(b, end) == b' '
        && let Some((off, e)) = zone_offset(b, end + 1)
    {
        return Some((n - off, e));
    }
    Some((z.local_to_unix(n), end))
}

/// Syslog (RFC 3164): `Mmm dd HH:MM:SS` with the year inferred. Returns (unix, 15).
pub fn syslog(b: &[u8], z: &mut Zone) -> Option<(i64, usize)> {
    let mo = month(b)?;
    if byte(b, 3) != b' ' || byte(b, 6) != b' ' {
        return None;
    }
    let d = if byte(b, 4) == b' ' {
        digits(b, 5, 1)?
    } else {
        digits(b, 4, 2)?
    };
    let (h, mi, s) = hms(b, 7)?;
    let mut y = i64::from(z.syslog_year);
    let mut t = z.local_to_unix(naive(y, mo, d, h, mi, s)?);
    if t > z.syslog_latest {
        y -= 1;
        t = z.local_to_unix(naive(y, mo, d, h, mi, s)?);
    }
    Some((t, 15))
}

/// `SECONDS[.frac]` as in Caddy's `"ts":1710408067.512` or audit's `audit(1710408067.512:42)`.
pub fn epoch(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    let mut n = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
        n += 1;
    }
    // Seconds since 1970 have 9 or 10 digits for the years that matter.
    (9..=10).contains(&n).then_some(v)
}

/// Format Unix seconds as RFC 3339 UTC (`2024-03-14T09:22:07Z`).
pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

/// Parse an operator-given time: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (local), or a
/// relative duration back from `now` (`30m`).
pub fn parse_user_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = t.parse::<DateTime>() {
        return dt
            .to_zoned_datetime(TimeZone::system())
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{s}`: {e}"));
    }
    if let Ok(d) = t.parse::<crate::duration::HumanDuration>() {
        let back = jiff::SignedDuration::try_from(d.0).map_err(|e| e.to_string())?;
        return now.checked_sub(back).map_err(|e| e.to_string());
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2024-03-14T09:22:07Z), `2024-03-14 09:22` (local) or a duration back from now (30m)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_agree_on_one_instant() {
        let mut z = Zone::utc();
        let want = 1_710_408_127; // 2024-03-14T09:22:07Z
        assert_eq!(
            nginx(b"2024/03/14 09:22:07 [error]", &mut z),
            Some((want, 19))
        );
        assert_eq!(iso(b"2024-03-14T09:22:07Z x", &mut z), Some((want, 20)));
        assert_eq!(iso(b"2024-03-14T11:22:07.5+02:00", &mut z).unwrap().0, want);
        assert_eq!(
            iso(b"2024-03-14 11:22:07.323610 +0200]", &mut z).unwrap().0,
            want
        );
        assert_eq!(
            apache(b"Thu Mar 14 09:22:07.123456 2024] [x]", &mut z),
            Some((want, 31))
        );
        assert_eq!(
            apache(b"Thu Mar 14 09:22:07 2024]", &mut z),
            Some((want, 24))
        );
        assert_eq!(
            fpm(b"14-Mar-2024 09:22:07] WARNING", &mut z),
            Some((want, 20))
        );
        assert_eq!(
            clf(b"14/Mar/2024:09:22:07 +0000]", &mut z),
            Some((want, 26))
        );
        assert_eq!(
            clf(b"14/Mar/2024:10:22:07.123]", &mut z).unwrap().0,
            want + 3600
        );
        z.syslog_year = 2024;
        z.syslog_latest = i64::MAX;
        assert_eq!(syslog(b"Mar 14 09:22:07 host", &mut z), Some((want, 15)));
        assert_eq!(epoch(b"1710408127.512:42"), Some(want));
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let mut z = Zone::utc();
        for junk in [
            &b""[..],
            b"2024/13/14 09:22:07",
            b"#0 /var/www",
            b"\xff\xfe",
            b"2024",
        ] {
            assert!(nginx(junk, &mut z).is_none());
            assert!(iso(junk, &mut z).is_none());
            assert!(apache(junk, &mut z).is_none());
            assert!(fpm(junk, &mut z).is_none());
            assert!(clf(junk, &mut z).is_none());
            assert!(syslog(junk, &mut z).is_none());
        }
    }
}
