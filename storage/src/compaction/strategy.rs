//! Compaction strategies: which SSTables to compact next, as a pure function of their
//! statistics.
//!
//! A strategy is parsed from the table's `compaction` option map (the class as users
//! write it, `org.apache.cassandra.db.compaction.X` or just `X`, plus sub-options).
//! [`CompactionStrategy::pick`] looks at the SSTables not already being compacted and
//! returns at most one [`CompactionJob`]; the caller runs it and asks again. Keeping the
//! choice pure (no IO, no clock, no state between calls) makes every strategy testable
//! on made-up statistics and lets the caller decide when and how many jobs run.
//!
//! - **SizeTiered** (default): sort by size, group SSTables of similar size into buckets,
//!   compact the fullest bucket with at least `min_threshold` members (at most
//!   `max_threshold`).
//! - **Leveled**: level 0 holds flushes (overlapping); every level `n >= 1` holds
//!   SSTables of about `sstable_size_in_mb` with disjoint token ranges, `fanout_size^n`
//!   times the SSTable size in all. L0 is compacted into L1 once it has
//!   `min_threshold` SSTables; an over-full level pushes one SSTable into the next
//!   together with every SSTable there it overlaps.
//! - **TimeWindow**: SSTables are grouped into windows by their largest timestamp;
//!   size-tiered inside the newest window, and each older window is compacted into one
//!   SSTable.
//! - **Incremental** is run as SizeTiered with outputs split at `sstable_size_in_mb`;
//!   **Null** never compacts.
//!
//! When no regular job is due, every strategy but Null considers a *tombstone
//! compaction*: one SSTable, at least `tombstone_compaction_interval` old, whose
//! estimated droppable share ([`SstableStats::droppable_tombstone_ratio`]) exceeds
//! `tombstone_threshold`, and which no other SSTable could stop from purging (none
//! overlaps its token range with data as old as its newest). The age keeps a
//! compaction that could not purge (a memtable still held older data) from being
//! picked again at once.

use std::collections::BTreeMap;

use super::CompactionError;
use crate::schema::OptionMap;
use crate::sstable::{Sstable, SstableStats};

/// The prefix of the class names Cassandra users write.
const CLASS_PREFIX: &str = "org.apache.cassandra.db.compaction.";

const MIB: u64 = 1024 * 1024;

/// Leveled compaction's highest level; it has no size limit.
pub const MAX_LEVEL: u32 = 8;

/// What a strategy knows about one SSTable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SstableInfo {
    /// The SSTable's generation.
    pub generation: u64,
    /// Its statistics (sizes, level, timestamps, token range, tombstones).
    pub stats: SstableStats,
}

impl SstableInfo {
    /// The strategy's view of an open SSTable.
    pub fn of(sstable: &Sstable) -> SstableInfo {
        SstableInfo {
            generation: sstable.generation(),
            stats: *sstable.stats(),
        }
    }

    fn bytes(&self) -> u64 {
        self.stats.data_bytes
    }

    /// Whether the two SSTables' token ranges (inclusive) intersect; empty SSTables
    /// overlap nothing.
    fn overlaps(&self, other: &SstableInfo) -> bool {
        match (self.span(), other.span()) {
            (Some((a0, a1)), Some((b0, b1))) => a0 <= b1 && b0 <= a1,
            _ => false,
        }
    }

    fn span(&self) -> Option<(i64, i64)> {
        Some((self.stats.min_token?, self.stats.max_token?))
    }
}

/// Why a job was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A regular job of the strategy.
    Regular,
    /// A single SSTable rewritten to drop its droppable tombstones.
    Tombstone,
    /// An explicit major compaction of every SSTable.
    Major,
}

/// One compaction to run: merge `inputs` into new SSTables at `output_level`, starting a
/// new output SSTable once one holds `max_output_bytes` of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionJob {
    /// Generations of the SSTables to merge.
    pub inputs: Vec<u64>,
    /// Level recorded in the outputs' statistics.
    pub output_level: u32,
    /// Split outputs after this many data bytes (`u64::MAX`: one output).
    pub max_output_bytes: u64,
    /// Why the job was picked.
    pub kind: JobKind,
}

/// Options every strategy shares.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonOptions {
    /// `enabled`: when false, `pick` returns nothing (major compactions still run).
    pub enabled: bool,
    /// `min_threshold`: fewest SSTables a size-tiered job merges (and L0's trigger).
    pub min_threshold: usize,
    /// `max_threshold`: most SSTables one job merges.
    pub max_threshold: usize,
    /// `tombstone_threshold`: droppable share above which a tombstone compaction runs.
    pub tombstone_threshold: f64,
    /// `tombstone_compaction_interval`: minimum SSTable age for a tombstone compaction.
    pub tombstone_compaction_interval_secs: i64,
    /// `unchecked_tombstone_compaction`: skip the overlap check.
    pub unchecked_tombstone_compaction: bool,
}

/// Size-tiered options.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeTieredOptions {
    /// `bucket_low`: an SSTable joins a bucket above this share of its average size.
    pub bucket_low: f64,
    /// `bucket_high`: ... and below this multiple of it.
    pub bucket_high: f64,
    /// `min_sstable_size` (bytes): SSTables below it all share one bucket.
    pub min_sstable_bytes: u64,
}

/// Leveled options.
#[derive(Debug, Clone, PartialEq)]
pub struct LeveledOptions {
    /// `sstable_size_in_mb`, in bytes: the target size of every SSTable of level >= 1.
    pub sstable_bytes: u64,
    /// `fanout_size`: each level holds this many times the previous one.
    pub fanout: u64,
}

/// Time-window options.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindowOptions {
    /// `compaction_window_unit` × `compaction_window_size`, in seconds.
    pub window_secs: i64,
    /// `timestamp_resolution`: write timestamps per second (microseconds by default).
    pub timestamps_per_sec: i64,
}

/// A table's compaction strategy with its options.
#[derive(Debug, Clone, PartialEq)]
pub enum CompactionStrategy {
    /// `SizeTieredCompactionStrategy` (and `IncrementalCompactionStrategy`, whose
    /// outputs are split at `max_output_bytes`).
    SizeTiered {
        common: CommonOptions,
        tiers: SizeTieredOptions,
        max_output_bytes: u64,
    },
    /// `LeveledCompactionStrategy`.
    Leveled {
        common: CommonOptions,
        tiers: SizeTieredOptions,
        levels: LeveledOptions,
    },
    /// `TimeWindowCompactionStrategy`.
    TimeWindow {
        common: CommonOptions,
        tiers: SizeTieredOptions,
        windows: TimeWindowOptions,
    },
    /// `NullCompactionStrategy`: never compacts.
    Null,
}

impl Default for CompactionStrategy {
    fn default() -> Self {
        CompactionStrategy::SizeTiered {
            common: CommonOptions::default(),
            tiers: SizeTieredOptions::default(),
            max_output_bytes: u64::MAX,
        }
    }
}

impl Default for CommonOptions {
    fn default() -> Self {
        CommonOptions {
            enabled: true,
            min_threshold: 4,
            max_threshold: 32,
            tombstone_threshold: 0.2,
            tombstone_compaction_interval_secs: 86_400,
            unchecked_tombstone_compaction: false,
        }
    }
}

impl Default for SizeTieredOptions {
    fn default() -> Self {
        SizeTieredOptions {
            bucket_low: 0.5,
            bucket_high: 1.5,
            min_sstable_bytes: 50 * MIB,
        }
    }
}

impl Default for LeveledOptions {
    fn default() -> Self {
        LeveledOptions {
            sstable_bytes: 160 * MIB,
            fanout: 10,
        }
    }
}

impl Default for TimeWindowOptions {
    fn default() -> Self {
        TimeWindowOptions {
            window_secs: 86_400,
            timestamps_per_sec: 1_000_000,
        }
    }
}

/// Reads typed sub-options out of the map, naming the bad one on failure.
struct Options<'a>(&'a OptionMap);

impl Options<'_> {
    fn get<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        valid: impl Fn(&T) -> bool,
    ) -> Result<T, CompactionError> {
        let Some(text) = self.0.get(key) else {
            return Ok(default);
        };
        let bad = || CompactionError::InvalidOption {
            option: key.to_string(),
            value: text.clone(),
        };
        let value: T = text.trim().parse().map_err(|_| bad())?;
        valid(&value).then_some(value).ok_or_else(bad)
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, CompactionError> {
        match self.0.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(CompactionError::InvalidOption {
                option: key.to_string(),
                value: v,
            }),
        }
    }

    fn common(&self) -> Result<CommonOptions, CompactionError> {
        let d = CommonOptions::default();
        // Thresholds may be written as floats ("4.0"); they count SSTables.
        let min: f64 = self.get("min_threshold", 4.0, |v| *v >= 2.0)?;
        let max: f64 = self.get("max_threshold", 32.0, |v| *v >= 2.0)?;
        Ok(CommonOptions {
            enabled: self.bool("enabled", d.enabled)?,
            min_threshold: min as usize,
            max_threshold: (max as usize).max(min as usize),
            tombstone_threshold: self.get("tombstone_threshold", d.tombstone_threshold, |v| {
                (0.0..=1.0).contains(v)
            })?,
            tombstone_compaction_interval_secs: self.get(
                "tombstone_compaction_interval",
                d.tombstone_compaction_interval_secs,
                |v| *v >= 0,
            )?,
            unchecked_tombstone_compaction: self.bool(
                "unchecked_tombstone_compaction",
                d.unchecked_tombstone_compaction,
            )?,
        })
    }

    fn tiers(&self) -> Result<SizeTieredOptions, CompactionError> {
        let d = SizeTieredOptions::default();
        let min_bytes: f64 = self.get("min_sstable_size", d.min_sstable_bytes as f64, |v| {
            *v >= 0.0
        })?;
        Ok(SizeTieredOptions {
            bucket_low: self.get("bucket_low", d.bucket_low, |v| *v > 0.0 && *v < 1.0)?,
            bucket_high: self.get("bucket_high", d.bucket_high, |v| *v > 1.0)?,
            min_sstable_bytes: min_bytes as u64,
        })
    }

    fn sstable_bytes(&self, default_mib: u64) -> Result<u64, CompactionError> {
        let mib: u64 = self.get("sstable_size_in_mb", default_mib, |v| *v > 0)?;
        Ok(mib.saturating_mul(MIB))
    }

    fn levels(&self) -> Result<LeveledOptions, CompactionError> {
        Ok(LeveledOptions {
            sstable_bytes: self.sstable_bytes(160)?,
            fanout: self.get("fanout_size", 10, |v| *v >= 2)?,
        })
    }

    fn windows(&self) -> Result<TimeWindowOptions, CompactionError> {
        let unit = self
            .0
            .get("compaction_window_unit")
            .map_or("DAYS".into(), |u| u.trim().to_ascii_uppercase());
        let unit_secs: i64 = match unit.as_str() {
            "MINUTES" => 60,
            "HOURS" => 3_600,
            "DAYS" => 86_400,
            _ => {
                return Err(CompactionError::InvalidOption {
                    option: "compaction_window_unit".into(),
                    value: unit,
                })
            }
        };
        let size: i64 = self.get("compaction_window_size", 1, |v| *v >= 1)?;
        let resolution = self
            .0
            .get("timestamp_resolution")
            .map_or("MICROSECONDS".into(), |r| r.trim().to_ascii_uppercase());
        let timestamps_per_sec = match resolution.as_str() {
            "MICROSECONDS" => 1_000_000,
            "MILLISECONDS" => 1_000,
            _ => {
                return Err(CompactionError::InvalidOption {
                    option: "timestamp_resolution".into(),
                    value: resolution,
                })
            }
        };
        Ok(TimeWindowOptions {
            window_secs: unit_secs.saturating_mul(size),
            timestamps_per_sec,
        })
    }
}

impl CompactionStrategy {
    /// Parses a table's `compaction` option map; a missing class is SizeTiered.
    pub fn from_options(map: &OptionMap) -> Result<CompactionStrategy, CompactionError> {
        let class = map
            .get("class")
            .map_or("SizeTieredCompactionStrategy", |c| {
                c.strip_prefix(CLASS_PREFIX).unwrap_or(c)
            });
        let o = Options(map);
        Ok(match class {
            "SizeTieredCompactionStrategy" => CompactionStrategy::SizeTiered {
                common: o.common()?,
                tiers: o.tiers()?,
                max_output_bytes: u64::MAX,
            },
            "IncrementalCompactionStrategy" => CompactionStrategy::SizeTiered {
                common: o.common()?,
                tiers: o.tiers()?,
                max_output_bytes: o.sstable_bytes(1000)?,
            },
            "LeveledCompactionStrategy" => CompactionStrategy::Leveled {
                common: o.common()?,
                tiers: o.tiers()?,
                levels: o.levels()?,
            },
            "TimeWindowCompactionStrategy" => CompactionStrategy::TimeWindow {
                common: o.common()?,
                tiers: o.tiers()?,
                windows: o.windows()?,
            },
            "NullCompactionStrategy" => CompactionStrategy::Null,
            other => {
                return Err(CompactionError::InvalidOption {
                    option: "class".into(),
                    value: other.to_string(),
                })
            }
        })
    }

    /// The next compaction to run among `sstables` (those not already being compacted),
    /// if any. `compacting` are the inputs of the table's jobs still running: Leveled
    /// picks nothing while any runs (a second job could write outputs overlapping the
    /// first's in the same level), and tombstone compactions treat them as data that may
    /// block a purge. `now_secs` and `gc_before_secs` (now minus the table's gc grace)
    /// judge tombstone compactions.
    pub fn pick(
        &self,
        sstables: &[SstableInfo],
        compacting: &[SstableInfo],
        now_secs: i32,
        gc_before_secs: i32,
    ) -> Option<CompactionJob> {
        let common = self.common()?;
        let serialized = matches!(self, CompactionStrategy::Leveled { .. });
        if !common.enabled || (serialized && !compacting.is_empty()) {
            return None;
        }
        let regular = match self {
            CompactionStrategy::Null => None,
            CompactionStrategy::SizeTiered {
                common,
                tiers,
                max_output_bytes,
            } => {
                let all: Vec<&SstableInfo> = sstables.iter().collect();
                size_tiered(common, tiers, &all)
                    .map(|inputs| regular_job(inputs, 0, *max_output_bytes))
            }
            CompactionStrategy::Leveled {
                common,
                tiers,
                levels,
            } => leveled(common, tiers, levels, sstables),
            CompactionStrategy::TimeWindow {
                common,
                tiers,
                windows,
            } => time_window(common, tiers, windows, sstables),
        };
        let clock = (now_secs, gc_before_secs);
        regular.or_else(|| tombstone_job(self, common, sstables, compacting, clock))
    }

    /// The options every strategy shares (`None` for Null).
    pub fn common(&self) -> Option<&CommonOptions> {
        match self {
            CompactionStrategy::SizeTiered { common, .. }
            | CompactionStrategy::Leveled { common, .. }
            | CompactionStrategy::TimeWindow { common, .. } => Some(common),
            CompactionStrategy::Null => None,
        }
    }

    /// A major compaction: every SSTable into one run (split at the strategy's output
    /// size). Time windows are merged too, as an explicit major compaction asks.
    pub fn major(&self, sstables: &[SstableInfo]) -> Option<CompactionJob> {
        if sstables.is_empty() || matches!(self, CompactionStrategy::Null) {
            return None;
        }
        let total: u64 = sstables.iter().map(SstableInfo::bytes).sum();
        let (output_level, max_output_bytes) = match self {
            CompactionStrategy::Leveled { levels, .. } => {
                let level = (1..MAX_LEVEL)
                    .find(|&n| level_limit(levels, n) >= total)
                    .unwrap_or(MAX_LEVEL);
                (level, levels.sstable_bytes)
            }
            CompactionStrategy::SizeTiered {
                max_output_bytes, ..
            } => (0, *max_output_bytes),
            _ => (0, u64::MAX),
        };
        Some(CompactionJob {
            inputs: sstables.iter().map(|s| s.generation).collect(),
            output_level,
            max_output_bytes,
            kind: JobKind::Major,
        })
    }

    /// The level a job's outputs keep when the strategy rewrites `sstable` alone.
    fn level_of(&self, sstable: &SstableInfo) -> u32 {
        match self {
            CompactionStrategy::Leveled { .. } => sstable.stats.level,
            _ => 0,
        }
    }

    fn output_bytes(&self) -> u64 {
        match self {
            CompactionStrategy::Leveled { levels, .. } => levels.sstable_bytes,
            CompactionStrategy::SizeTiered {
                max_output_bytes, ..
            } => *max_output_bytes,
            _ => u64::MAX,
        }
    }
}

fn regular_job(inputs: Vec<&SstableInfo>, output_level: u32, max_bytes: u64) -> CompactionJob {
    CompactionJob {
        inputs: inputs.iter().map(|s| s.generation).collect(),
        output_level,
        max_output_bytes: max_bytes,
        kind: JobKind::Regular,
    }
}

/// Groups SSTables of similar size, smallest first. An SSTable joins the current bucket
/// when its size is within `[bucket_low, bucket_high]` × the bucket's average, or when
/// both are below `min_sstable_size`.
pub fn size_tiered_buckets<'a>(
    tiers: &SizeTieredOptions,
    sstables: &[&'a SstableInfo],
) -> Vec<Vec<&'a SstableInfo>> {
    let mut sorted = sstables.to_vec();
    sorted.sort_by_key(|s| (s.bytes(), s.generation));
    let mut buckets: Vec<(f64, Vec<&SstableInfo>)> = Vec::new();
    let small = tiers.min_sstable_bytes as f64;
    for s in sorted {
        let size = s.bytes() as f64;
        let joins = buckets.last().is_some_and(|(avg, _)| {
            let similar = size >= avg * tiers.bucket_low && size <= avg * tiers.bucket_high;
            similar || (size < small && *avg < small)
        });
        match buckets.last_mut() {
            Some((avg, members)) if joins => {
                *avg = (*avg * members.len() as f64 + size) / (members.len() + 1) as f64;
                members.push(s);
            }
            _ => buckets.push((size, vec![s])),
        }
    }
    buckets.into_iter().map(|(_, members)| members).collect()
}

/// The size-tiered choice: the bucket with the most SSTables (at least `min_threshold`,
/// trimmed to the `max_threshold` smallest), ties to the smaller SSTables.
fn size_tiered<'a>(
    common: &CommonOptions,
    tiers: &SizeTieredOptions,
    sstables: &[&'a SstableInfo],
) -> Option<Vec<&'a SstableInfo>> {
    size_tiered_buckets(tiers, sstables)
        .into_iter()
        .filter(|b| b.len() >= common.min_threshold)
        .map(|mut b| {
            b.truncate(common.max_threshold);
            b
        })
        .max_by(|a, b| {
            let avg =
                |v: &Vec<&SstableInfo>| v.iter().map(|s| s.bytes()).sum::<u64>() / v.len() as u64;
            a.len().cmp(&b.len()).then(avg(b).cmp(&avg(a)))
        })
}

/// The data a leveled level `n >= 1` may hold before it is compacted into `n + 1`.
fn level_limit(levels: &LeveledOptions, n: u32) -> u64 {
    levels
        .fanout
        .saturating_pow(n)
        .saturating_mul(levels.sstable_bytes)
}

fn leveled(
    common: &CommonOptions,
    tiers: &SizeTieredOptions,
    levels: &LeveledOptions,
    sstables: &[SstableInfo],
) -> Option<CompactionJob> {
    let mut by_level: BTreeMap<u32, Vec<&SstableInfo>> = BTreeMap::new();
    for s in sstables {
        by_level
            .entry(s.stats.level.min(MAX_LEVEL))
            .or_default()
            .push(s);
    }
    let l0 = by_level.get(&0).cloned().unwrap_or_default();
    if l0.len() > common.max_threshold {
        // L0 is far behind: merging it into L1 would rewrite all of L1 each time;
        // size-tier L0 first, as flushes pile up.
        if let Some(inputs) = size_tiered(common, tiers, &l0) {
            return Some(regular_job(inputs, 0, u64::MAX));
        }
    }
    if l0.len() >= common.min_threshold {
        let mut oldest = l0;
        oldest.sort_by_key(|s| (s.stats.max_timestamp, s.generation));
        oldest.truncate(common.max_threshold);
        let next = by_level.get(&1).map_or(&[][..], Vec::as_slice);
        return Some(push_down(&oldest, next, 1, levels));
    }
    let (level, _) = (1..MAX_LEVEL)
        .map(|n| {
            let bytes: u64 = by_level
                .get(&n)
                .map_or(0, |v| v.iter().map(|s| s.bytes()).sum());
            (n, bytes as f64 / level_limit(levels, n) as f64)
        })
        .filter(|(_, score)| *score > 1.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let next = by_level.get(&(level + 1)).map_or(&[][..], Vec::as_slice);
    let chosen = by_level[&level]
        .iter()
        .min_by_key(|s| {
            let overlapping: u64 = overlapping(&[**s], next).iter().map(|o| o.bytes()).sum();
            // Least data rewritten in the next level per byte moved down.
            (
                overlapping.saturating_mul(1024) / s.bytes().max(1),
                s.generation,
            )
        })
        .copied()?;
    Some(push_down(&[chosen], next, level + 1, levels))
}

/// A job merging `upper` with every SSTable of the next level that its token hull
/// overlaps, written to `level`.
fn push_down(
    upper: &[&SstableInfo],
    next: &[&SstableInfo],
    level: u32,
    levels: &LeveledOptions,
) -> CompactionJob {
    let mut inputs = upper.to_vec();
    inputs.extend(overlapping(upper, next));
    regular_job(inputs, level, levels.sstable_bytes)
}

/// The SSTables of `level` overlapping the token hull of `upper`.
fn overlapping<'a>(upper: &[&SstableInfo], level: &[&'a SstableInfo]) -> Vec<&'a SstableInfo> {
    let spans = upper.iter().filter_map(|s| s.span());
    let hull = spans.fold(None, |acc: Option<(i64, i64)>, (a, b)| {
        Some(acc.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
    });
    let Some((lo, hi)) = hull else {
        return Vec::new();
    };
    let probe = SstableInfo {
        generation: 0,
        stats: SstableStats {
            min_token: Some(lo),
            max_token: Some(hi),
            ..SstableStats::default()
        },
    };
    level
        .iter()
        .filter(|s| s.overlaps(&probe))
        .copied()
        .collect()
}

/// The window (its start, seconds) an SSTable belongs to: that of its newest write.
pub fn time_window_of(windows: &TimeWindowOptions, sstable: &SstableInfo) -> i64 {
    let secs = sstable
        .stats
        .max_timestamp
        .unwrap_or(0)
        .div_euclid(windows.timestamps_per_sec);
    secs.div_euclid(windows.window_secs) * windows.window_secs
}

fn time_window(
    common: &CommonOptions,
    tiers: &SizeTieredOptions,
    windows: &TimeWindowOptions,
    sstables: &[SstableInfo],
) -> Option<CompactionJob> {
    let mut by_window: BTreeMap<i64, Vec<&SstableInfo>> = BTreeMap::new();
    for s in sstables {
        by_window
            .entry(time_window_of(windows, s))
            .or_default()
            .push(s);
    }
    let mut newest_first = by_window.into_iter().rev();
    let (_, newest) = newest_first.next()?;
    if let Some(inputs) = size_tiered(common, tiers, &newest) {
        return Some(regular_job(inputs, 0, u64::MAX));
    }
    newest_first
        .map(|(_, mut members)| {
            members.sort_by_key(|s| (s.bytes(), s.generation));
            members.truncate(common.max_threshold);
            members
        })
        .find(|members| members.len() >= 2)
        .map(|inputs| regular_job(inputs, 0, u64::MAX))
}

/// One SSTable worth rewriting alone for its droppable tombstones, if any.
fn tombstone_job(
    strategy: &CompactionStrategy,
    common: &CommonOptions,
    sstables: &[SstableInfo],
    compacting: &[SstableInfo],
    (now_secs, gc_before_secs): (i32, i32),
) -> Option<CompactionJob> {
    let old_enough = |s: &SstableInfo| {
        i64::from(now_secs) - s.stats.created_at_secs >= common.tombstone_compaction_interval_secs
    };
    let unblocked = |s: &SstableInfo| {
        common.unchecked_tombstone_compaction
            || !sstables.iter().chain(compacting).any(|o| {
                o.generation != s.generation
                    && o.overlaps(s)
                    && o.stats.min_timestamp <= s.stats.max_timestamp
            })
    };
    let ratio = |s: &SstableInfo| s.stats.droppable_tombstone_ratio(gc_before_secs);
    let chosen = sstables
        .iter()
        .filter(|s| ratio(s) > common.tombstone_threshold && old_enough(s) && unblocked(s))
        .max_by(|a, b| ratio(a).total_cmp(&ratio(b)))?;
    Some(CompactionJob {
        inputs: vec![chosen.generation],
        output_level: strategy.level_of(chosen),
        max_output_bytes: strategy.output_bytes(),
        kind: JobKind::Tombstone,
    })
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
