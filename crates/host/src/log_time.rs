//! Times in container logs: fixed-width RFC 3339 stamps (UTC, nanoseconds) and the points
//! `logs --since/--until` accept, in the forms `docker logs` takes.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Nanoseconds since the Unix epoch (i64 lasts until 2262).
pub type Nanos = i64;

pub fn now() -> Nanos {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as Nanos
}

/// `2026-11-27T13:27:29.123456789Z`: always 30 characters, so records sort as text too.
pub fn format(t: Nanos) -> String {
    let d = OffsetDateTime::from_unix_timestamp_nanos(t as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        d.year(),
        d.month() as u8,
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.nanosecond()
    )
}

/// Parses a stamp written by [`format`] (or any RFC 3339 time).
pub fn parse_stamp(s: &str) -> Option<Nanos> {
    // Times past 2262 (or before 1677) saturate: still later (earlier) than any log line.
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp_nanos().clamp(Nanos::MIN as i128, Nanos::MAX as i128) as Nanos)
}

/// A `--since`/`--until` value: a duration back from `now` (`90s`, `10m`, `1h30m`, `2d`), an
/// RFC 3339 time, a date (`2026-11-27`, midnight UTC), or Unix seconds (`1764250000[.5]`).
pub fn parse_point(s: &str, now: Nanos) -> Result<Nanos, String> {
    let s = s.trim();
    if let Some(ago) = parse_duration(s) {
        return Ok(now - ago);
    }
    if let Some(t) = parse_stamp(s) {
        return Ok(t);
    }
    if let Some(t) = parse_stamp(&format!("{s}T00:00:00Z")) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>()
        && (0.0..9.2e9).contains(&secs)
    {
        return Ok((secs * 1e9) as Nanos);
    }
    Err(format!(
        "`{s}` is not a time (expected a duration like 10m or 1h30m, an RFC 3339 time like \
         2026-11-27T13:00:00Z, a date, or Unix seconds)"
    ))
}

/// `1h30m`, `90s`, `500ms`, `2d`: units d, h, m, s, ms, each at most once in that order.
fn parse_duration(s: &str) -> Option<Nanos> {
    const UNITS: [(&str, i64); 5] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("ms", 1_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
    ];
    if s.is_empty() {
        return None;
    }
    let (mut rest, mut total) = (s, 0i64);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).filter(|n| *n > 0)?;
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, scale) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        total = total.checked_add(n.checked_mul(*scale)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_fixed_width_and_round_trip() {
        let t = 1_764_250_049_000_000_123;
        let s = format(t);
        assert_eq!(s, "2025-11-27T13:27:29.000000123Z");
        assert_eq!(s.len(), 30);
        assert_eq!(parse_stamp(&s), Some(t));
    }

    #[test]
    fn points_take_docker_forms() {
        let now = 1_764_250_049_000_000_000;
        assert_eq!(parse_point("10m", now), Ok(now - 600_000_000_000));
        assert_eq!(parse_point("1h30m", now), Ok(now - 5_400_000_000_000));
        assert_eq!(parse_point("500ms", now), Ok(now - 500_000_000));
        assert_eq!(parse_point("2025-11-27T13:27:29Z", now), Ok(now));
        assert_eq!(parse_point("2025-11-27T14:27:29+01:00", now), Ok(now));
        assert_eq!(parse_point("1764250049", now), Ok(now));
        assert_eq!(parse_point("2025-11-27", now), Ok(1_764_201_600_000_000_000));
        assert_eq!(parse_point("2999-01-01", now), Ok(Nanos::MAX));
        for bad in ["", "10x", "m", "yesterday", "-5", "1e99"] {
            assert!(parse_point(bad, now).is_err(), "{bad}");
        }
    }
}
