//! Text forms of the temporal types, as CQL string literals write them.
//!
//! - timestamp: integer milliseconds, or `yyyy-mm-dd[( |T)HH:MM[:SS[.f…]]][zone]`
//!   with zone `Z`, `±HH`, `±HHMM` or `±HH:MM` (optionally after a space);
//!   no zone means UTC.
//! - date: an unsigned day number (epoch at 2^31) or `[-]yyyy-mm-dd`.
//! - time: integer nanoseconds or `HH:MM:SS[.f…]` (up to 9 fraction digits).
//! - duration: `[-](<n><unit>)+` with units y, mo, w, d, h, m, s, ms, us/µs,
//!   ns in that order (case-insensitive), or ISO 8601 `P[nY][nM][nD][T[nH][nM][nS]]`,
//!   `PnW`, or `PYYYY-MM-DDThh:mm:ss`.
//!
//! Errors are plain reasons; the caller wraps them with the type and text.

use super::time::{days_from_civil, days_in_month, Duration, DATE_EPOCH_DAYS, NANOS_PER_DAY};
use super::TypeError;

type Reason = &'static str;

/// A byte cursor over ASCII text.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.pos += usize::from(hit);
        hit
    }

    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    /// Reads `min..=max` decimal digits as a number.
    fn number(&mut self, min: usize, max: usize) -> Result<(i64, usize), Reason> {
        let start = self.pos;
        let mut v: i64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            if self.pos - start == max {
                break;
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(i64::from(d - b'0')))
                .ok_or("number too large")?;
            self.pos += 1;
        }
        let n = self.pos - start;
        if n < min {
            return Err("expected digits");
        }
        Ok((v, n))
    }

    fn expect(&mut self, c: u8, reason: Reason) -> Result<(), Reason> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(reason)
        }
    }
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]y…y-mm-dd` as days since 1970-01-01.
fn date_part(c: &mut Cursor<'_>) -> Result<i64, Reason> {
    let negative = c.eat(b'-');
    if !negative {
        c.eat(b'+');
    }
    let (year, _) = c.number(1, 9)?;
    let year = if negative { -year } else { year };
    c.expect(b'-', "expected '-' after the year")?;
    let (month, _) = c.number(1, 2)?;
    c.expect(b'-', "expected '-' after the month")?;
    let (day, _) = c.number(1, 2)?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > i64::from(days_in_month(year, month as u32)) {
        return Err("day out of range");
    }
    Ok(days_from_civil(year, month as u32, day as u32))
}

/// `HH:MM[:SS[.f…]]` as nanoseconds; seconds are required when `need_seconds`.
fn time_part(c: &mut Cursor<'_>, need_seconds: bool) -> Result<i64, Reason> {
    let (h, _) = c.number(1, 2)?;
    c.expect(b':', "expected ':' after the hours")?;
    let (m, _) = c.number(2, 2)?;
    let mut nanos = 0;
    if need_seconds || c.peek() == Some(b':') {
        c.expect(b':', "expected ':' after the minutes")?;
        let (s, _) = c.number(2, 2)?;
        if s > 59 {
            return Err("seconds out of range");
        }
        nanos = s * 1_000_000_000;
        if c.eat(b'.') {
            let (frac, n) = c.number(1, 9)?;
            nanos += frac * 10i64.pow(9 - n as u32);
        }
    }
    if h > 23 || m > 59 {
        return Err("hours or minutes out of range");
    }
    Ok(h * 3_600_000_000_000 + m * 60_000_000_000 + nanos)
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM` as an offset in milliseconds.
fn zone_part(c: &mut Cursor<'_>) -> Result<i64, Reason> {
    if c.eat(b'Z') || c.eat(b'z') {
        return Ok(0);
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return Err("expected a time zone");
    };
    let (h, _) = c.number(2, 2)?;
    c.eat(b':');
    let m = if c.at_end() { 0 } else { c.number(2, 2)?.0 };
    if h > 23 || m > 59 {
        return Err("time zone offset out of range");
    }
    Ok(sign * (h * 3_600_000 + m * 60_000))
}

/// Parses a timestamp string into milliseconds since the Unix epoch.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, Reason> {
    if is_integer(s) {
        return s.parse().map_err(|_| "milliseconds out of range");
    }
    let mut c = Cursor::new(s);
    let days = date_part(&mut c)?;
    let mut nanos = 0;
    if (c.peek() == Some(b' ') || c.peek() == Some(b'T'))
        && c.s.get(c.pos + 1).is_some_and(u8::is_ascii_digit)
    {
        c.pos += 1;
        nanos = time_part(&mut c, false)?;
    }
    let mut offset_ms = 0;
    if !c.at_end() {
        c.eat(b' ');
        offset_ms = zone_part(&mut c)?;
    }
    if !c.at_end() {
        return Err("unexpected trailing characters");
    }
    days.checked_mul(86_400_000)
        .and_then(|ms| ms.checked_add(nanos / 1_000_000))
        .and_then(|ms| ms.checked_sub(offset_ms))
        .ok_or("timestamp out of range")
}

/// Parses a date string into the unsigned day number (epoch at 2^31).
pub(crate) fn parse_date(s: &str) -> Result<u32, Reason> {
    if is_integer(s) {
        return s.parse().map_err(|_| "day number out of range");
    }
    let mut c = Cursor::new(s);
    let days = date_part(&mut c)?;
    if !c.at_end() {
        return Err("unexpected trailing characters");
    }
    u32::try_from(days + i64::from(DATE_EPOCH_DAYS)).map_err(|_| "date out of range")
}

/// Parses a time-of-day string into nanoseconds since midnight.
pub(crate) fn parse_time(s: &str) -> Result<i64, Reason> {
    let nanos = if is_integer(s) {
        s.parse().map_err(|_| "nanoseconds out of range")?
    } else {
        let mut c = Cursor::new(s);
        let nanos = time_part(&mut c, true)?;
        if !c.at_end() {
            return Err("unexpected trailing characters");
        }
        nanos
    };
    if (0..NANOS_PER_DAY).contains(&nanos) {
        Ok(nanos)
    } else {
        Err("time out of range: must be between 00:00:00 and 23:59:59.999999999")
    }
}

/// Accumulated magnitude of a duration literal before the sign is applied.
#[derive(Default)]
struct DurationParts {
    months: i64,
    days: i64,
    nanos: i64,
}

impl DurationParts {
    fn add(&mut self, unit: DurationUnit, n: i64) -> Result<(), Reason> {
        let (slot, factor) = match unit {
            DurationUnit::Years => (&mut self.months, 12),
            DurationUnit::Months => (&mut self.months, 1),
            DurationUnit::Weeks => (&mut self.days, 7),
            DurationUnit::Days => (&mut self.days, 1),
            DurationUnit::Nanos(per) => (&mut self.nanos, per),
        };
        *slot = n
            .checked_mul(factor)
            .and_then(|v| slot.checked_add(v))
            .ok_or("duration component out of range")?;
        Ok(())
    }

    fn finish(self, negative: bool) -> Result<Duration, TypeError> {
        let sign = if negative { -1 } else { 1 };
        Duration::checked(self.months * sign, self.days * sign, self.nanos * sign)
    }
}

#[derive(Clone, Copy)]
enum DurationUnit {
    Years,
    Months,
    Weeks,
    Days,
    Nanos(i64),
}

/// Units of the `1h30m` form, in the order they must appear. Longer spellings
/// come before their prefixes (`mo`, `ms` before `m`).
const UNITS: [(&str, usize, DurationUnit); 11] = [
    ("y", 0, DurationUnit::Years),
    ("mo", 1, DurationUnit::Months),
    ("w", 2, DurationUnit::Weeks),
    ("d", 3, DurationUnit::Days),
    ("h", 4, DurationUnit::Nanos(3_600_000_000_000)),
    ("ms", 7, DurationUnit::Nanos(1_000_000)),
    ("m", 5, DurationUnit::Nanos(60_000_000_000)),
    ("s", 6, DurationUnit::Nanos(1_000_000_000)),
    ("us", 8, DurationUnit::Nanos(1_000)),
    ("µs", 8, DurationUnit::Nanos(1_000)),
    ("ns", 9, DurationUnit::Nanos(1)),
];

/// Parses a duration literal in any of its three forms.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, Result<TypeError, Reason>> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let parts = if let Some(iso) = body.strip_prefix(['P', 'p']) {
        parse_iso_duration(iso)
    } else {
        parse_unit_duration(body)
    }
    .map_err(Err)?;
    parts.finish(negative).map_err(Ok)
}

fn parse_unit_duration(s: &str) -> Result<DurationParts, Reason> {
    let lower = s.to_lowercase();
    let mut c = Cursor::new(&lower);
    let mut parts = DurationParts::default();
    let mut last_rank = None;
    while !c.at_end() {
        let (n, _) = c.number(1, 19)?;
        let rest = &lower[c.pos..];
        let (unit, rank, kind) = UNITS
            .iter()
            .find(|(u, _, _)| rest.starts_with(u))
            .ok_or("unknown duration unit")?;
        if last_rank.is_some_and(|last| *rank <= last) {
            return Err("duration units in an invalid order");
        }
        last_rank = Some(*rank);
        c.pos += unit.len();
        parts.add(*kind, n)?;
    }
    if last_rank.is_none() {
        return Err("empty duration");
    }
    Ok(parts)
}

fn parse_iso_duration(s: &str) -> Result<DurationParts, Reason> {
    let upper = s.to_ascii_uppercase();
    if let Some(weeks) = upper.strip_suffix('W') {
        let mut parts = DurationParts::default();
        let n = weeks.parse().map_err(|_| "bad week count")?;
        parts.add(DurationUnit::Weeks, n)?;
        return Ok(parts);
    }
    if upper.contains('-') {
        return parse_iso_alternative(&upper);
    }
    let (date, time) = match upper.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err("empty time part"),
        None => (upper.as_str(), None),
    };
    let mut parts = DurationParts::default();
    let date_units = [
        ('Y', DurationUnit::Years),
        ('M', DurationUnit::Months),
        ('D', DurationUnit::Days),
    ];
    let mut any = iso_fields(date, &date_units, &mut parts)?;
    if let Some(time) = time {
        let time_units = [
            ('H', DurationUnit::Nanos(3_600_000_000_000)),
            ('M', DurationUnit::Nanos(60_000_000_000)),
            ('S', DurationUnit::Nanos(1_000_000_000)),
        ];
        any |= iso_fields(time, &time_units, &mut parts)?;
    }
    if !any {
        return Err("empty duration");
    }
    Ok(parts)
}

/// Reads `nX` fields whose designators appear in `units` order.
fn iso_fields(
    s: &str,
    units: &[(char, DurationUnit)],
    parts: &mut DurationParts,
) -> Result<bool, Reason> {
    let mut c = Cursor::new(s);
    let mut next = 0;
    let mut any = false;
    while !c.at_end() {
        let (n, _) = c.number(1, 19)?;
        let designator = char::from(c.peek().ok_or("missing designator")?);
        c.pos += 1;
        let offset = units[next..]
            .iter()
            .position(|(d, _)| *d == designator)
            .ok_or("unexpected designator")?;
        parts.add(units[next + offset].1, n)?;
        next += offset + 1;
        any = true;
    }
    Ok(any)
}

/// `YYYY-MM-DDThh:mm:ss`.
fn parse_iso_alternative(s: &str) -> Result<DurationParts, Reason> {
    let mut c = Cursor::new(s);
    let (years, _) = c.number(4, 4)?;
    c.expect(b'-', "expected '-'")?;
    let (months, _) = c.number(2, 2)?;
    c.expect(b'-', "expected '-'")?;
    let (days, _) = c.number(2, 2)?;
    c.expect(b'T', "expected 'T'")?;
    let (h, _) = c.number(2, 2)?;
    c.expect(b':', "expected ':'")?;
    let (m, _) = c.number(2, 2)?;
    c.expect(b':', "expected ':'")?;
    let (sec, _) = c.number(2, 2)?;
    if !c.at_end() {
        return Err("unexpected trailing characters");
    }
    let mut parts = DurationParts::default();
    parts.add(DurationUnit::Years, years)?;
    parts.add(DurationUnit::Months, months)?;
    parts.add(DurationUnit::Days, days)?;
    parts.add(DurationUnit::Nanos(3_600_000_000_000), h)?;
    parts.add(DurationUnit::Nanos(60_000_000_000), m)?;
    parts.add(DurationUnit::Nanos(1_000_000_000), sec)?;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let base = 1_296_705_900_000;
        for s in [
            "2011-02-03 04:05",
            "2011-02-03 04:05:00",
            "2011-02-03 04:05:00.000",
            "2011-02-03T04:05:00.000+0000",
            "2011-02-03 04:05:00+0000",
            "2011-02-03 04:05:00Z",
            "2011-02-03T04:05Z",
            "2011-02-03 05:05:00+01:00",
            "2011-02-03 05:05:00 +0100",
            "2011-02-03 03:05:00-01",
            "2011-02-03 04:05:00.000000+0000",
            "1296705900000",
        ] {
            assert_eq!(parse_timestamp(s), Ok(base), "{s}");
        }
        assert_eq!(parse_timestamp("2011-02-03"), Ok(1_296_691_200_000));
        assert_eq!(parse_timestamp("2011-02-03+0100"), Ok(1_296_687_600_000));
        assert_eq!(parse_timestamp("2011-02-03 04:05:00.5"), Ok(base + 500));
        assert_eq!(parse_timestamp("-5"), Ok(-5));
        for bad in [
            "2011-02-30",
            "2011-13-01",
            "2011-02-03 25:00",
            "x",
            "2011-02-03 04:05:00 junk",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("1970-01-01"), Ok(1 << 31));
        assert_eq!(parse_date("2011-02-03"), Ok((1 << 31) + 15_008));
        assert_eq!(parse_date("1969-12-31"), Ok((1 << 31) - 1));
        assert_eq!(parse_date("12345"), Ok(12_345));
        assert!(parse_date("-1").is_err());
        assert!(parse_date("4294967296").is_err());
        assert_eq!(parse_time("08:12:54.123456789"), Ok(29_574_123_456_789));
        assert_eq!(parse_time("08:12:54"), Ok(29_574_000_000_000));
        assert_eq!(parse_time("08:12:54.1"), Ok(29_574_100_000_000));
        assert_eq!(parse_time("1"), Ok(1));
        assert!(parse_time("24:00:00").is_err());
        assert!(parse_time("08:12").is_err());
        assert!(parse_time("86400000000000").is_err());
    }

    fn dur(s: &str) -> (i32, i32, i64) {
        let d = parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        (d.months, d.days, d.nanos)
    }

    #[test]
    fn durations() {
        assert_eq!(dur("1h30m"), (0, 0, 5_400_000_000_000));
        assert_eq!(dur("-2d"), (0, -2, 0));
        assert_eq!(
            dur("1y2mo3w4d5h6m7s8ms9us10ns"),
            (14, 25, 18_367_008_009_010)
        );
        assert_eq!(dur("3µs"), (0, 0, 3_000));
        assert_eq!(dur("1MO"), (1, 0, 0));
        assert_eq!(dur("P1Y2M3DT4H5M6S"), (14, 3, 14_706_000_000_000));
        assert_eq!(dur("P2W"), (0, 14, 0));
        assert_eq!(dur("PT30M"), (0, 0, 1_800_000_000_000));
        assert_eq!(dur("P0001-02-03T04:05:06"), (14, 3, 14_706_000_000_000));
        assert_eq!(dur("-P1D"), (0, -1, 0));
        for bad in [
            "",
            "1",
            "1x",
            "30m1h",
            "1h1h",
            "P",
            "PT",
            "P1S",
            "10000000000y",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
