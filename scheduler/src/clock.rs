//! The wall clock, in the units storage and CQL use.
//!
//! Write timestamps are microseconds since the Unix epoch; TTL expiry and
//! deletion times are whole seconds. One place reads the system clock so a
//! simulated clock can replace it later.
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock is after 1970");
    i64::try_from(since_epoch.as_micros()).expect("microseconds fit in i64 until year 294247")
}

/// Seconds since the Unix epoch, as storage records deletion and expiry times.
pub fn now_secs() -> i32 {
    i32::try_from(now_micros() / 1_000_000).unwrap_or(i32::MAX)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    now_micros() / 1000
}

/// A monotonic instant for measuring durations and deadlines.
pub type Instant = std::time::Instant;

/// The current monotonic instant.
pub fn monotonic_now() -> Instant {
    std::time::Instant::now()
}
