//! Validation of the map-valued table options: `compaction`, `compression`,
//! plus `bloom_filter_fp_chance`.
//!
//! Options are checked when the statement runs, not when sstables are later
//! written or compacted: a bad value found at flush time would fail a
//! background job the client never hears about. Every refusal is a
//! ConfigurationException whose text names the option and the bad value, in
//! the wording drivers and tools already match on.
use storage::schema::OptionMap;

use crate::error::CqlError;

/// Options every compaction strategy understands.
const COMMON_COMPACTION: &[&str] = &[
    "class",
    "enabled",
    "tombstone_threshold",
    "tombstone_compaction_interval",
    "unchecked_tombstone_compaction",
    "only_purge_repaired_tombstones",
    "provide_overlapping_tombstones",
    "log_all",
    "min_threshold",
    "max_threshold",
];

/// Size-tiered options; the other strategies fall back to size tiering
/// (level 0, inside a time window), so they accept these too.
const SIZE_TIERED: &[&str] = &[
    "min_sstable_size",
    "bucket_low",
    "bucket_high",
    "cold_reads_to_omit",
];

const LEVELED: &[&str] = &[
    "sstable_size_in_mb",
    "fanout_size",
    "single_sstable_uplevel",
];

const TIME_WINDOW: &[&str] = &[
    "compaction_window_unit",
    "compaction_window_size",
    "timestamp_resolution",
    "expired_sstable_check_frequency_seconds",
    "unsafe_aggressive_sstable_expiration",
    "enable_optimized_twcs_queries",
];

const INCREMENTAL: &[&str] = &["sstable_size_in_mb", "space_amplification_goal"];

/// The smallest false-positive chance a bloom filter can reach with the
/// largest supported number of hash buckets per key.
const MIN_BLOOM_FILTER_FP_CHANCE: f64 = 6.71e-5;

/// The largest compression chunk, in KiB: bigger chunks make every small
/// read decompress megabytes.
const MAX_CHUNK_LENGTH_KB: i64 = 128;

fn config(message: String) -> CqlError {
    CqlError::Config(message)
}

/// Checks `bloom_filter_fp_chance`: within (minimum, 1].
pub(super) fn bloom_filter_fp_chance(text: &str) -> Result<f64, CqlError> {
    let value: f64 = text
        .parse()
        .map_err(|_| config(format!("Invalid value for bloom_filter_fp_chance: {text}")))?;
    if value <= MIN_BLOOM_FILTER_FP_CHANCE || value > 1.0 || value.is_nan() {
        return Err(config(format!(
            "bloom_filter_fp_chance must be larger than {MIN_BLOOM_FILTER_FP_CHANCE} and less than or equal to 1.0 (got {value})"
        )));
    }
    Ok(value)
}

/// Checks a `compaction` map and normalizes its class to the full name.
pub(super) fn compaction(mut map: OptionMap) -> Result<OptionMap, CqlError> {
    let class = map
        .get("class")
        .cloned()
        .ok_or_else(|| config("Missing sub-option 'class' for the 'compaction' option.".into()))?;
    let short = class.rsplit('.').next().unwrap_or(&class).to_string();
    let specific: &[&[&str]] = match short.as_str() {
        "SizeTieredCompactionStrategy" => &[SIZE_TIERED],
        "LeveledCompactionStrategy" => &[SIZE_TIERED, LEVELED],
        "TimeWindowCompactionStrategy" => &[SIZE_TIERED, TIME_WINDOW],
        "IncrementalCompactionStrategy" => &[SIZE_TIERED, INCREMENTAL],
        "NullCompactionStrategy" => &[],
        _ => {
            return Err(config(format!(
                "Unable to find compaction strategy class '{class}'"
            )))
        }
    };
    check_common(&map)?;
    check_size_tiered(&map)?;
    if short == "LeveledCompactionStrategy" {
        check_positive_int(&map, "sstable_size_in_mb")?;
    }
    if short == "TimeWindowCompactionStrategy" {
        check_time_window(&map)?;
    }
    check_unknown(&map, specific)?;
    map.insert(
        "class".into(),
        format!("org.apache.cassandra.db.compaction.{short}"),
    );
    Ok(map)
}

fn check_unknown(map: &OptionMap, specific: &[&[&str]]) -> Result<(), CqlError> {
    let known =
        |k: &str| COMMON_COMPACTION.contains(&k) || specific.iter().any(|group| group.contains(&k));
    let unknown: Vec<String> = map
        .iter()
        .filter(|(k, _)| !known(k))
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(config(format!(
        "Invalid compaction strategy options {{{}}} for chosen strategy type",
        unknown.join(", ")
    )))
}

/// The option parsed as a float, if present. An unparsable value fails with
/// `requirement` in the message, like an out-of-range one.
fn float(map: &OptionMap, key: &str, requirement: &str) -> Result<Option<f64>, CqlError> {
    let Some(text) = map.get(key) else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(config(format!("{key} value ({text}) {requirement}"))),
    }
}

fn check_float(
    map: &OptionMap,
    key: &str,
    requirement: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<(), CqlError> {
    match float(map, key, requirement)? {
        Some(v) if !ok(v) => Err(config(format!("{key} value ({v}) {requirement}"))),
        _ => Ok(()),
    }
}

fn check_bool(map: &OptionMap, key: &str) -> Result<(), CqlError> {
    match map.get(key) {
        Some(v) if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => Err(
            config(format!("{key} value ({v}) must be \"true\" or \"false\"")),
        ),
        _ => Ok(()),
    }
}

fn check_common(map: &OptionMap) -> Result<(), CqlError> {
    let unit = "must be between 0.0 and 1.0";
    check_float(map, "tombstone_threshold", unit, |v| {
        (0.0..=1.0).contains(&v)
    })?;
    if let Some(text) = map.get("tombstone_compaction_interval") {
        let seconds: i64 = text.trim().parse().map_err(|_| {
            config(format!(
                "tombstone_compaction_interval value ({text}) must be positive"
            ))
        })?;
        if seconds < 0 {
            return Err(config(format!(
                "tombstone_compaction_interval value ({}ms) must be positive",
                seconds.saturating_mul(1000)
            )));
        }
    }
    check_bool(map, "unchecked_tombstone_compaction")?;
    check_bool(map, "enabled")?;
    for key in ["min_threshold", "max_threshold"] {
        check_float(map, key, "must be bigger or equal to 2", |v| v >= 2.0)?;
    }
    Ok(())
}

fn check_size_tiered(map: &OptionMap) -> Result<(), CqlError> {
    let unit = "must be between 0.0 and 1.0";
    check_float(map, "min_sstable_size", "must be non negative", |v| {
        v >= 0.0
    })?;
    check_float(map, "bucket_low", unit, |v| v > 0.0 && v < 1.0)?;
    check_float(map, "bucket_high", "must be greater than 1.0", |v| v > 1.0)?;
    check_float(map, "cold_reads_to_omit", unit, |v| {
        (0.0..=1.0).contains(&v)
    })
}

fn check_positive_int(map: &OptionMap, key: &str) -> Result<(), CqlError> {
    match map.get(key) {
        Some(text) if !text.trim().parse::<i64>().is_ok_and(|v| v > 0) => {
            Err(config(format!("{key} value ({text}) must be positive")))
        }
        _ => Ok(()),
    }
}

fn check_time_window(map: &OptionMap) -> Result<(), CqlError> {
    if let Some(unit) = map.get("compaction_window_unit") {
        if !["MINUTES", "HOURS", "DAYS"].contains(&unit.to_ascii_uppercase().as_str()) {
            return Err(config(format!(
                "Invalid window unit {unit} for compaction_window_unit"
            )));
        }
    }
    if let Some(size) = map.get("compaction_window_size") {
        if !size.trim().parse::<i64>().is_ok_and(|v| v >= 1) {
            return Err(config(format!(
                "compaction_window_size value ({size}) must be greater than 1"
            )));
        }
    }
    if let Some(resolution) = map.get("timestamp_resolution") {
        let known = ["MICROSECONDS", "MILLISECONDS"];
        if !known.contains(&resolution.to_ascii_uppercase().as_str()) {
            return Err(config(format!(
                "Invalid timestamp resolution {resolution} for timestamp_resolution"
            )));
        }
    }
    check_bool(map, "enable_optimized_twcs_queries")?;
    check_bool(map, "unsafe_aggressive_sstable_expiration")
}

/// Checks a `compression` map. An empty map or an empty compressor class
/// means "no compression".
pub(super) fn compression(map: OptionMap) -> Result<OptionMap, CqlError> {
    const KNOWN: &[&str] = &[
        "class",
        "sstable_compression",
        "chunk_length_in_kb",
        "chunk_length_kb",
        "crc_check_chance",
        "enabled",
        "compression_level",
    ];
    if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(config(format!("Unknown compression option '{unknown}'.")));
    }
    for key in ["chunk_length_in_kb", "chunk_length_kb"] {
        if let Some(text) = map.get(key) {
            check_chunk_length(key, text)?;
        }
    }
    if let Some(text) = map.get("crc_check_chance") {
        if !text
            .trim()
            .parse::<f64>()
            .is_ok_and(|v| (0.0..=1.0).contains(&v))
        {
            return Err(config(
                "crc_check_chance should be between 0.0 and 1.0".into(),
            ));
        }
    }
    Ok(map)
}

fn check_chunk_length(key: &str, text: &str) -> Result<(), CqlError> {
    let kb: i64 = text
        .trim()
        .parse()
        .map_err(|_| config(format!("Invalid integer value {text} for {key}")))?;
    if kb <= 0 {
        return Err(config(format!("Invalid negative or null {key}")));
    }
    if kb.count_ones() != 1 {
        return Err(config(format!("{key} must be a power of 2")));
    }
    if kb > MAX_CHUNK_LENGTH_KB {
        return Err(config(format!(
            "{key} must not exceed {MAX_CHUNK_LENGTH_KB}, got {kb}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> OptionMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn compaction_error(pairs: &[(&str, &str)]) -> String {
        match compaction(map(pairs)) {
            Err(CqlError::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn compaction_class_is_normalized() {
        let out = compaction(map(&[("class", "LeveledCompactionStrategy")])).expect("valid");
        assert_eq!(
            out["class"],
            "org.apache.cassandra.db.compaction.LeveledCompactionStrategy"
        );
    }

    #[test]
    fn compaction_common_options_are_range_checked() {
        let stcs = ("class", "SizeTieredCompactionStrategy");
        assert_eq!(
            compaction_error(&[stcs, ("tombstone_threshold", "5.5")]),
            "tombstone_threshold value (5.5) must be between 0.0 and 1.0"
        );
        assert_eq!(
            compaction_error(&[stcs, ("tombstone_compaction_interval", "-7")]),
            "tombstone_compaction_interval value (-7000ms) must be positive"
        );
        assert_eq!(
            compaction_error(&[stcs, ("enabled", "certainly")]),
            "enabled value (certainly) must be \"true\" or \"false\""
        );
        assert_eq!(
            compaction_error(&[stcs, ("min_threshold", "1")]),
            "min_threshold value (1) must be bigger or equal to 2"
        );
        assert!(compaction(map(&[stcs, ("enabled", "false"), ("min_threshold", "4")])).is_ok());
    }

    #[test]
    fn size_tiered_options_are_range_checked() {
        let stcs = ("class", "SizeTieredCompactionStrategy");
        assert_eq!(
            compaction_error(&[stcs, ("bucket_low", "0.0")]),
            "bucket_low value (0) must be between 0.0 and 1.0"
        );
        assert_eq!(
            compaction_error(&[stcs, ("bucket_high", "0.7")]),
            "bucket_high value (0.7) must be greater than 1.0"
        );
        assert_eq!(
            compaction_error(&[stcs, ("min_sstable_size", "-1")]),
            "min_sstable_size value (-1) must be non negative"
        );
    }

    #[test]
    fn strategy_specific_options_are_checked() {
        let twcs = ("class", "TimeWindowCompactionStrategy");
        assert_eq!(
            compaction_error(&[twcs, ("compaction_window_unit", "SECONDS")]),
            "Invalid window unit SECONDS for compaction_window_unit"
        );
        assert_eq!(
            compaction_error(&[twcs, ("compaction_window_size", "-8")]),
            "compaction_window_size value (-8) must be greater than 1"
        );
        assert_eq!(
            compaction_error(&[
                ("class", "LeveledCompactionStrategy"),
                ("sstable_size_in_mb", "-5")
            ]),
            "sstable_size_in_mb value (-5) must be positive"
        );
        assert_eq!(
            compaction_error(&[("class", "LeveledCompactionStrategy"), ("compaction_window_size", "4")]),
            "Invalid compaction strategy options {\"compaction_window_size\": \"4\"} for chosen strategy type"
        );
        assert!(compaction(map(&[twcs, ("compaction_window_unit", "days")])).is_ok());
    }

    #[test]
    fn bloom_filter_fp_chance_range() {
        assert!(bloom_filter_fp_chance("0.01").is_ok());
        assert!(bloom_filter_fp_chance("1").is_ok());
        for bad in ["0", "1e-5", "-0.1", "1.1", "x"] {
            assert!(bloom_filter_fp_chance(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compression_chunk_length() {
        let with = |v: &str| {
            compression(map(&[
                ("sstable_compression", "LZ4Compressor"),
                ("chunk_length_in_kb", v),
            ]))
        };
        assert!(with("64").is_ok());
        for bad in ["0", "-1", "dog", "100", "1048576"] {
            let Err(CqlError::Config(m)) = with(bad) else {
                panic!("{bad} accepted")
            };
            assert!(m.contains("chunk_length_in_kb"), "{m}");
        }
        assert!(matches!(with("100"), Err(CqlError::Config(m)) if m.contains("power of 2")));
    }
}
