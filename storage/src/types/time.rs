//! Calendar and clock arithmetic for the temporal types.
//!
//! - `date` is an unsigned day count with the Unix epoch at 2^31, so that its
//!   unsigned byte order is its time order.
//! - `timestamp` is signed milliseconds since the Unix epoch; `time` is
//!   nanoseconds since midnight.
//! - `duration` is (months, days, nanoseconds), each zig-zag vint encoded,
//!   because months and days have no fixed length in nanoseconds.
//! - `timeuuid` is a version-1 UUID: a 60-bit count of 100 ns ticks since
//!   1582-10-15, split over its first eight bytes.
//!
//! Civil dates use the proleptic Gregorian calendar in UTC, by the classic
//! days-from-civil arithmetic, so no time zone database is needed.

use super::TypeError;

/// The day number of 1970-01-01 in a `date` value.
pub const DATE_EPOCH_DAYS: u32 = 1 << 31;

const MILLIS_PER_DAY: i64 = 86_400_000;
pub(crate) const NANOS_PER_DAY: i64 = 86_400_000_000_000;
/// 100 ns ticks from the Gregorian reform (1582-10-15) to the Unix epoch.
const UUID_EPOCH_TICKS: i64 = 0x01B2_1DD2_1381_4000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month is in 1..=12 and day in 1..=31 by construction.
    (year, month as u32, day as u32)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Formats `yyyy-mm-dd` (years below 1000 zero-padded, negative years signed).
pub(crate) fn format_civil_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        format!("-{:04}-{m:02}-{d:02}", -y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Formats a timestamp as `yyyy-mm-dd HH:MM:SS.ffffff+0000`.
pub(crate) fn format_timestamp(millis: i64) -> String {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let in_day = millis.rem_euclid(MILLIS_PER_DAY);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!(
        "{} {h:02}:{m:02}:{s:02}.{:06}+0000",
        format_civil_date(days),
        ms * 1000
    )
}

/// Formats a time of day as `HH:MM:SS.nnnnnnnnn`.
pub(crate) fn format_time(nanos: i64) -> String {
    let (h, rest) = (nanos / 3_600_000_000_000, nanos % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let (s, ns) = (rest / 1_000_000_000, rest % 1_000_000_000);
    format!("{h:02}:{m:02}:{s:02}.{ns:09}")
}

/// The `date` of the day a timestamp falls in (UTC); `None` outside the date range.
pub fn timestamp_millis_to_date(millis: i64) -> Option<u32> {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    u32::try_from(days + i64::from(DATE_EPOCH_DAYS)).ok()
}

/// The timestamp (milliseconds) of midnight UTC starting a `date`.
pub fn date_to_timestamp_millis(date: u32) -> i64 {
    (i64::from(date) - i64::from(DATE_EPOCH_DAYS)) * MILLIS_PER_DAY
}

/// Builds a version-1 UUID from 100 ns ticks since 1582-10-15 and the low half.
fn timeuuid_from_ticks(ticks: u64, lsb: u64) -> [u8; 16] {
    let ticks = ticks & 0x0FFF_FFFF_FFFF_FFFF;
    let time_low = ticks & 0xFFFF_FFFF;
    let time_mid = (ticks >> 32) & 0xFFFF;
    let time_hi = (ticks >> 48) | 0x1000;
    let msb = (time_low << 32) | (time_mid << 16) | time_hi;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&msb.to_be_bytes());
    out[8..].copy_from_slice(&lsb.to_be_bytes());
    out
}

/// A timeuuid for a time in microseconds since the Unix epoch.
///
/// `clock_seq_and_node` is the low 64 bits; its two top bits are replaced by
/// the RFC 4122 variant (`10`).
pub fn timeuuid_from_micros(micros: i64, clock_seq_and_node: u64) -> [u8; 16] {
    let ticks = micros.wrapping_mul(10).wrapping_add(UUID_EPOCH_TICKS) as u64;
    let lsb = (clock_seq_and_node & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    timeuuid_from_ticks(ticks, lsb)
}

/// The 60-bit tick count of a version-1 UUID; `None` for other values.
pub(crate) fn timeuuid_ticks(value: &[u8]) -> Option<i64> {
    let bytes: &[u8; 16] = value.try_into().ok()?;
    if bytes[6] >> 4 != 1 {
        return None;
    }
    let msb = u64::from_be_bytes(bytes[..8].try_into().expect("8 of 16 bytes"));
    Some(reorder_v1_msb(msb) as i64 & 0x0FFF_FFFF_FFFF_FFFF)
}

/// Moves a v1 UUID's time fields into big-endian order: hi (with version), mid, low.
pub(crate) fn reorder_v1_msb(msb: u64) -> u64 {
    (msb << 48) | ((msb << 16) & 0xFFFF_0000_0000) | (msb >> 32)
}

/// Inverse of `reorder_v1_msb`.
pub(crate) fn unreorder_v1_msb(r: u64) -> u64 {
    (r << 32) | ((r >> 16) & 0xFFFF_0000) | (r >> 48)
}

/// Microseconds since the Unix epoch embedded in a timeuuid.
pub fn timeuuid_micros(value: &[u8]) -> Option<i64> {
    Some((timeuuid_ticks(value)? - UUID_EPOCH_TICKS).div_euclid(10))
}

/// Milliseconds since the Unix epoch embedded in a timeuuid (`toTimestamp`).
pub fn timeuuid_to_millis(value: &[u8]) -> Option<i64> {
    Some((timeuuid_ticks(value)? - UUID_EPOCH_TICKS).div_euclid(10_000))
}

/// The `date` a timeuuid falls on (`toDate`).
pub fn timeuuid_to_date(value: &[u8]) -> Option<u32> {
    timestamp_millis_to_date(timeuuid_to_millis(value)?)
}

/// The smallest timeuuid of a millisecond (`minTimeuuid`).
///
/// The low half 0x8080… is the smallest under timeuuid's signed-byte order.
pub fn min_timeuuid(millis: i64) -> [u8; 16] {
    let ticks = millis.wrapping_mul(10_000).wrapping_add(UUID_EPOCH_TICKS);
    timeuuid_from_ticks(ticks as u64, 0x8080_8080_8080_8080)
}

/// The largest timeuuid of a millisecond (`maxTimeuuid`).
pub fn max_timeuuid(millis: i64) -> [u8; 16] {
    let next = millis.wrapping_add(1).wrapping_mul(10_000);
    let ticks = next.wrapping_add(UUID_EPOCH_TICKS).wrapping_sub(1);
    timeuuid_from_ticks(ticks as u64, 0x7F7F_7F7F_7F7F_7F7F)
}

/// A CQL `duration`: months, days and nanoseconds, all of one sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Duration {
    pub months: i32,
    pub days: i32,
    pub nanos: i64,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Writes an unsigned vint: the count of leading one bits in the first byte
/// is the number of extra bytes; the value follows big-endian.
pub(crate) fn write_unsigned_vint(v: u64, out: &mut Vec<u8>) {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let size = bits.div_ceil(7).clamp(1, 9);
    if size == 1 {
        out.push(v as u8);
        return;
    }
    let extra = size - 1;
    let be = v.to_be_bytes();
    let mut first_and_rest = [0u8; 9];
    first_and_rest[9 - size.min(8)..].copy_from_slice(&be[8 - size.min(8)..]);
    let bytes = &mut first_and_rest[9 - size..];
    bytes[0] |= 0xFFu8.checked_shr(extra as u32).map_or(0xFF, |m| !m);
    out.extend_from_slice(bytes);
}

/// Reads an unsigned vint; `None` if truncated.
pub(crate) fn read_unsigned_vint(input: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = input.split_first()?;
    let extra = first.leading_ones() as usize;
    if rest.len() < extra {
        return None;
    }
    let mut v = if extra >= 8 {
        0
    } else {
        u64::from(first & (0xFF >> extra))
    };
    for &b in &rest[..extra] {
        v = (v << 8) | u64::from(b);
    }
    *input = &rest[extra..];
    Some(v)
}

impl Duration {
    /// The serialized value: three zig-zag vints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        write_unsigned_vint(zigzag(i64::from(self.months)), &mut out);
        write_unsigned_vint(zigzag(i64::from(self.days)), &mut out);
        write_unsigned_vint(zigzag(self.nanos), &mut out);
        out
    }

    /// Parses a serialized duration, checking ranges and signs.
    pub fn decode(value: &[u8]) -> Result<Duration, TypeError> {
        let mut input = value;
        let truncated = |input: &[u8]| TypeError::Truncated {
            cql_type: "duration".into(),
            what: "vint",
            needed: 1,
            available: input.len(),
        };
        let next = |input: &mut &[u8]| read_unsigned_vint(input).map(unzigzag);
        let months = next(&mut input).ok_or_else(|| truncated(input))?;
        let days = next(&mut input).ok_or_else(|| truncated(input))?;
        let nanos = next(&mut input).ok_or_else(|| truncated(input))?;
        if !input.is_empty() {
            return Err(TypeError::TrailingBytes {
                cql_type: "duration".into(),
                count: input.len(),
            });
        }
        Duration::checked(months, days, nanos)
    }

    /// Builds a duration, checking component ranges and the common sign.
    pub fn checked(months: i64, days: i64, nanos: i64) -> Result<Duration, TypeError> {
        let months = i32::try_from(months).map_err(|_| TypeError::DurationOverflow {
            component: "months",
        })?;
        let days =
            i32::try_from(days).map_err(|_| TypeError::DurationOverflow { component: "days" })?;
        let non_neg = months >= 0 && days >= 0 && nanos >= 0;
        let non_pos = months <= 0 && days <= 0 && nanos <= 0;
        if !(non_neg || non_pos) {
            return Err(TypeError::DurationSigns {
                months: months.into(),
                days: days.into(),
                nanos,
            });
        }
        Ok(Duration {
            months,
            days,
            nanos,
        })
    }
}

impl std::fmt::Display for Duration {
    /// Renders `1y2mo3d4h5m6s7ms8us9ns`, omitting zero units; zero is `0s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.months == 0 && self.days == 0 && self.nanos == 0 {
            return f.write_str("0s");
        }
        if self.months < 0 || self.days < 0 || self.nanos < 0 {
            f.write_str("-")?;
        }
        let months = u64::from(self.months.unsigned_abs());
        let parts = [(months / 12, "y"), (months % 12, "mo")];
        let days = [(u64::from(self.days.unsigned_abs()), "d")];
        let mut n = self.nanos.unsigned_abs();
        let mut time = [
            (0u64, "h"),
            (0, "m"),
            (0, "s"),
            (0, "ms"),
            (0, "us"),
            (0, "ns"),
        ];
        let unit_nanos = [
            3_600_000_000_000u64,
            60_000_000_000,
            1_000_000_000,
            1_000_000,
            1_000,
            1,
        ];
        for (slot, unit) in time.iter_mut().zip(unit_nanos) {
            slot.0 = n / unit;
            n %= unit;
        }
        for (count, unit) in parts.iter().chain(&days).chain(&time) {
            if *count != 0 {
                write!(f, "{count}{unit}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 15_008, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2011, 2, 3), 15_008);
        assert_eq!(format_civil_date(15_008), "2011-02-03");
        assert_eq!(
            format_timestamp(1_296_705_900_000),
            "2011-02-03 04:05:00.000000+0000"
        );
        assert_eq!(format_time(29_574_123_456_789), "08:12:54.123456789");
    }

    #[test]
    fn vints() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            1 << 40,
            u64::MAX >> 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_unsigned_vint(v, &mut out);
            let mut input = &out[..];
            assert_eq!(read_unsigned_vint(&mut input), Some(v), "{v}");
            assert!(input.is_empty());
        }
        let mut out = Vec::new();
        write_unsigned_vint(128, &mut out);
        assert_eq!(out, [0x80, 0x80]);
    }

    #[test]
    fn timeuuid_helpers() {
        let u = timeuuid_from_micros(1_296_705_900_000_123, 0x1234);
        assert_eq!(u[6] >> 4, 1);
        assert_eq!(u[8] >> 6, 0b10);
        assert_eq!(timeuuid_micros(&u), Some(1_296_705_900_000_123));
        assert_eq!(timeuuid_to_millis(&u), Some(1_296_705_900_000));
        assert_eq!(timeuuid_to_millis(&min_timeuuid(-5)), Some(-5));
        assert_eq!(timeuuid_to_millis(&max_timeuuid(-5)), Some(-5));
        assert_eq!(timeuuid_to_date(&u), Some(DATE_EPOCH_DAYS + 15_008));
        assert_eq!(date_to_timestamp_millis(DATE_EPOCH_DAYS + 1), 86_400_000);
        assert_eq!(timestamp_millis_to_date(-1), Some(DATE_EPOCH_DAYS - 1));
        let parsed = uuid::Uuid::from_bytes(u);
        assert_eq!(parsed.get_version_num(), 1);
        let r = reorder_v1_msb(0x0123_4567_89AB_1DEF);
        assert_eq!(unreorder_v1_msb(r), 0x0123_4567_89AB_1DEF);
    }

    #[test]
    fn duration_codec() {
        let d = Duration {
            months: 0,
            days: 0,
            nanos: 5_400_000_000_000,
        };
        let bytes = d.encode();
        assert_eq!(Duration::decode(&bytes), Ok(d));
        assert_eq!(d.to_string(), "1h30m");
        let neg = Duration::checked(-14, -3, -1).unwrap();
        assert_eq!(neg.to_string(), "-1y2mo3d1ns");
        assert!(Duration::checked(1, -1, 0).is_err());
        assert!(Duration::decode(&[0, 0]).is_err());
    }
}
