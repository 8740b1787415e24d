//! Strategy tests on made-up statistics: option parsing, and for each strategy the
//! property that defines it, checked over random SSTable sets and job sequences.
use proptest::prelude::*;

use super::*;

fn options(pairs: &[(&str, &str)]) -> OptionMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn info(generation: u64, bytes: u64, level: u32, span: (i64, i64), max_ts: i64) -> SstableInfo {
    SstableInfo {
        generation,
        stats: SstableStats {
            partition_count: 1,
            min_timestamp: Some(max_ts - 10),
            max_timestamp: Some(max_ts),
            min_token: Some(span.0),
            max_token: Some(span.1),
            data_bytes: bytes,
            uncompressed_bytes: bytes,
            level,
            ..SstableStats::default()
        },
    }
}

fn stcs() -> CompactionStrategy {
    CompactionStrategy::default()
}

#[test]
fn classes_parse_in_full_and_short_form_with_defaults() {
    assert_eq!(
        CompactionStrategy::from_options(&options(&[(
            "class",
            "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"
        )]))
        .expect("stcs"),
        stcs()
    );
    assert_eq!(
        CompactionStrategy::from_options(&OptionMap::new()).expect("default"),
        stcs()
    );
    let lcs = CompactionStrategy::from_options(&options(&[
        ("class", "LeveledCompactionStrategy"),
        ("sstable_size_in_mb", "5"),
        ("fanout_size", "4"),
        ("min_threshold", "6"),
    ]))
    .expect("lcs");
    let CompactionStrategy::Leveled { common, levels, .. } = lcs else {
        panic!("{lcs:?}")
    };
    assert_eq!(levels.sstable_bytes, 5 * MIB);
    assert_eq!(levels.fanout, 4);
    assert_eq!(common.min_threshold, 6);
    let twcs = CompactionStrategy::from_options(&options(&[
        ("class", "TimeWindowCompactionStrategy"),
        ("compaction_window_unit", "hours"),
        ("compaction_window_size", "6"),
        ("timestamp_resolution", "MILLISECONDS"),
    ]))
    .expect("twcs");
    let CompactionStrategy::TimeWindow { windows, .. } = twcs else {
        panic!("{twcs:?}")
    };
    assert_eq!(windows.window_secs, 6 * 3600);
    assert_eq!(windows.timestamps_per_sec, 1000);
    let ics =
        CompactionStrategy::from_options(&options(&[("class", "IncrementalCompactionStrategy")]))
            .expect("ics");
    assert!(matches!(
        ics,
        CompactionStrategy::SizeTiered {
            max_output_bytes,
            ..
        } if max_output_bytes == 1000 * MIB
    ));
    let null = options(&[("class", "NullCompactionStrategy")]);
    assert_eq!(
        CompactionStrategy::from_options(&null).expect("null"),
        CompactionStrategy::Null
    );
}

#[test]
fn bad_options_are_refused_with_their_name() {
    for (pairs, option) in [
        (vec![("class", "NoSuchStrategy")], "class"),
        (vec![("bucket_low", "2")], "bucket_low"),
        (vec![("min_threshold", "one")], "min_threshold"),
        (vec![("enabled", "maybe")], "enabled"),
        (
            vec![
                ("class", "TimeWindowCompactionStrategy"),
                ("compaction_window_unit", "WEEKS"),
            ],
            "compaction_window_unit",
        ),
        (
            vec![
                ("class", "LeveledCompactionStrategy"),
                ("sstable_size_in_mb", "0"),
            ],
            "sstable_size_in_mb",
        ),
    ] {
        let err = CompactionStrategy::from_options(&options(&pairs)).expect_err("invalid");
        assert!(
            matches!(&err, CompactionError::InvalidOption { option: o, .. } if o == option),
            "{err}"
        );
    }
}

#[test]
fn size_tiered_merges_similar_sizes_only() {
    let mb = MIB;
    let mut sstables: Vec<SstableInfo> = (0..3)
        .map(|g| info(g, 100 * mb + g, 0, (0, 10), 5))
        .collect();
    assert_eq!(
        stcs().pick(&sstables, &[], 0, 0),
        None,
        "three are not enough"
    );
    sstables.push(info(3, 120 * mb, 0, (0, 10), 5));
    sstables.push(info(4, 1000 * mb, 0, (0, 10), 5));
    let job = stcs().pick(&sstables, &[], 0, 0).expect("a bucket of four");
    assert_eq!(job.inputs, vec![0, 1, 2, 3]);
    assert_eq!((job.output_level, job.kind), (0, JobKind::Regular));
    // Small SSTables all share one bucket, whatever their ratio.
    let small: Vec<SstableInfo> = (0..4)
        .map(|g| info(g, 1 + g * 1000, 0, (0, 1), 1))
        .collect();
    assert_eq!(
        stcs().pick(&small, &[], 0, 0).expect("small").inputs.len(),
        4
    );
    let disabled =
        CompactionStrategy::from_options(&options(&[("enabled", "false")])).expect("disabled");
    assert_eq!(disabled.pick(&small, &[], 0, 0), None);
    let major = disabled.major(&small).expect("major runs when disabled");
    assert_eq!((major.inputs.len(), major.kind), (4, JobKind::Major));
}

#[test]
fn tombstone_compaction_needs_age_ratio_and_no_blocking_overlap() {
    let mut heavy = info(7, MIB, 0, (0, 100), 50);
    heavy.stats.cell_count = 100;
    heavy.stats.tombstone_count = 80;
    heavy.stats.min_local_deletion_time = Some(1000);
    heavy.stats.max_local_deletion_time = Some(1000);
    heavy.stats.created_at_secs = 10_000;
    let day = 86_400;
    let job = stcs()
        .pick(&[heavy], &[], 10_000 + day, 2000)
        .expect("tombstone job");
    assert_eq!((job.inputs, job.kind), (vec![7], JobKind::Tombstone));
    assert_eq!(
        stcs().pick(&[heavy], &[], 10_000 + day - 1, 2000),
        None,
        "too young"
    );
    assert_eq!(
        stcs().pick(&[heavy], &[], 10_000 + day, 1000),
        None,
        "not yet droppable"
    );
    let older = info(8, MIB, 0, (50, 150), 40);
    assert_eq!(
        stcs().pick(&[heavy, older], &[], 10_000 + day, 2000),
        None,
        "an overlapping SSTable with older data blocks the purge"
    );
    assert_eq!(
        stcs().pick(&[heavy], &[older], 10_000 + day, 2000),
        None,
        "an SSTable being compacted blocks too"
    );
    let unchecked =
        CompactionStrategy::from_options(&options(&[("unchecked_tombstone_compaction", "true")]))
            .expect("unchecked");
    assert!(unchecked
        .pick(&[heavy, older], &[], 10_000 + day, 2000)
        .is_some());
}

fn sizes() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![
            1u64..1000,
            1000u64..100_000_000,
            100_000_000u64..10_000_000_000
        ],
        0..40,
    )
}

proptest! {
    #[test]
    fn size_tiered_jobs_are_one_bucket_of_similar_sizes(sizes in sizes()) {
        let sstables: Vec<SstableInfo> = sizes
            .iter()
            .enumerate()
            .map(|(g, &b)| info(g as u64, b, 0, (0, 1), 1))
            .collect();
        let tiers = SizeTieredOptions::default();
        let refs: Vec<&SstableInfo> = sstables.iter().collect();
        let buckets = size_tiered_buckets(&tiers, &refs);
        for bucket in &buckets {
            let mut sum = 0u64;
            for (i, s) in bucket.iter().enumerate() {
                if i > 0 {
                    let avg = sum as f64 / i as f64;
                    let size = s.bytes() as f64;
                    let similar = size >= avg * tiers.bucket_low && size <= avg * tiers.bucket_high;
                    let small = size < tiers.min_sstable_bytes as f64
                        && avg < tiers.min_sstable_bytes as f64;
                    prop_assert!(similar || small, "{size} joined average {avg}");
                }
                sum += s.bytes();
            }
        }
        match stcs().pick(&sstables, &[], 0, 0) {
            Some(job) => {
                prop_assert!((4..=32).contains(&job.inputs.len()));
                let in_one_bucket = buckets.iter().any(|b| {
                    job.inputs.iter().all(|g| b.iter().any(|s| s.generation == *g))
                });
                prop_assert!(in_one_bucket);
            }
            None => prop_assert!(buckets.iter().all(|b| b.len() < 4)),
        }
    }
}

/// Applies a job as a compaction without purges would: the inputs go, and their data
/// comes back as SSTables splitting the inputs' token hull into disjoint spans of at
/// most `max_output_bytes` each.
fn apply(sstables: &mut Vec<SstableInfo>, job: &CompactionJob, next_generation: &mut u64) {
    let inputs: Vec<SstableInfo> = sstables
        .iter()
        .filter(|s| job.inputs.contains(&s.generation))
        .copied()
        .collect();
    assert_eq!(inputs.len(), job.inputs.len(), "a job names known SSTables");
    sstables.retain(|s| !job.inputs.contains(&s.generation));
    let total: u64 = inputs.iter().map(|s| s.bytes()).sum();
    let lo = inputs.iter().filter_map(|s| s.stats.min_token).min();
    let hi = inputs.iter().filter_map(|s| s.stats.max_token).max();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return;
    };
    let max_ts = inputs.iter().filter_map(|s| s.stats.max_timestamp).max();
    let pieces = total
        .div_ceil(job.max_output_bytes.max(1))
        .clamp(1, (hi - lo + 1) as u64);
    let width = (hi - lo + 1) / pieces as i64;
    for i in 0..pieces as i64 {
        let start = lo + i * width;
        let end = if i == pieces as i64 - 1 {
            hi
        } else {
            start + width - 1
        };
        *next_generation += 1;
        let mut out = info(
            *next_generation,
            total / pieces,
            job.output_level,
            (start, end),
            max_ts.unwrap_or(0),
        );
        out.stats.min_timestamp = inputs.iter().filter_map(|s| s.stats.min_timestamp).min();
        sstables.push(out);
    }
}

fn assert_levels_disjoint(sstables: &[SstableInfo]) {
    for a in sstables {
        for b in sstables {
            if a.generation < b.generation && a.stats.level >= 1 && a.stats.level == b.stats.level {
                assert!(
                    !a.overlaps(b),
                    "level {} overlap: {a:?} {b:?}",
                    a.stats.level
                );
            }
        }
    }
}

fn lcs() -> CompactionStrategy {
    CompactionStrategy::Leveled {
        common: CommonOptions::default(),
        tiers: SizeTieredOptions::default(),
        levels: LeveledOptions {
            sstable_bytes: 1000,
            fanout: 4,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn leveled_never_leaves_overlap_in_levels_above_0(
        flushes in prop::collection::vec((0..1_000_000i64, 1..200_000i64, 100..3000u64), 1..120),
    ) {
        let strategy = lcs();
        let mut sstables = Vec::new();
        let mut next_generation = 0;
        for (start, width, bytes) in flushes {
            next_generation += 1;
            sstables.push(info(next_generation, bytes, 0, (start, start + width), 1));
            let mut jobs = 0;
            while let Some(job) = strategy.pick(&sstables, &[], 0, 0) {
                apply(&mut sstables, &job, &mut next_generation);
                assert_levels_disjoint(&sstables);
                jobs += 1;
                prop_assert!(jobs < 1000, "compaction does not settle");
            }
            let l0 = sstables.iter().filter(|s| s.stats.level == 0).count();
            prop_assert!(l0 < 4, "L0 left with {l0} SSTables");
            for n in 1..MAX_LEVEL {
                let bytes: u64 = sstables
                    .iter()
                    .filter(|s| s.stats.level == n)
                    .map(|s| s.bytes())
                    .sum();
                prop_assert!(bytes <= 1000 * 4u64.pow(n), "level {n} holds {bytes}");
            }
        }
        if let Some(job) = strategy.major(&sstables) {
            apply(&mut sstables, &job, &mut next_generation);
            assert_levels_disjoint(&sstables);
        }
    }
}

fn twcs() -> (CompactionStrategy, TimeWindowOptions) {
    let windows = TimeWindowOptions {
        window_secs: 3600,
        timestamps_per_sec: 1_000_000,
    };
    let strategy = CompactionStrategy::TimeWindow {
        common: CommonOptions::default(),
        tiers: SizeTieredOptions::default(),
        windows: windows.clone(),
    };
    (strategy, windows)
}

#[test]
fn time_window_compacts_each_older_window_into_one() {
    let (strategy, _) = twcs();
    let hour = 3_600_000_000i64;
    let sstables = vec![
        info(1, 100, 0, (0, 9), hour / 2),
        info(2, 5000, 0, (0, 9), hour / 3),
        info(3, 100, 0, (0, 9), 5 * hour + 1),
        info(4, 100, 0, (0, 9), 5 * hour + 2),
    ];
    let job = strategy.pick(&sstables, &[], 0, 0).expect("older window");
    assert_eq!(job.inputs, vec![1, 2]);
    // The newest window is size-tiered: two SSTables are not enough.
    assert_eq!(strategy.pick(&sstables[2..], &[], 0, 0), None);
}

proptest! {
    #[test]
    fn time_window_jobs_never_mix_windows(
        sstables in prop::collection::vec((1..100_000u64, 0..20i64, 0..3_600_000_000i64), 0..40),
    ) {
        let (strategy, windows) = twcs();
        let sstables: Vec<SstableInfo> = sstables
            .iter()
            .enumerate()
            .map(|(g, &(bytes, hour, offset))| {
                info(g as u64, bytes, 0, (0, 9), hour * 3_600_000_000 + offset)
            })
            .collect();
        if let Some(job) = strategy.pick(&sstables, &[], 0, 0) {
            let windows: std::collections::BTreeSet<i64> = sstables
                .iter()
                .filter(|s| job.inputs.contains(&s.generation))
                .map(|s| time_window_of(&windows, s))
                .collect();
            prop_assert_eq!(windows.len(), 1);
            prop_assert!(job.inputs.len() >= 2);
        }
    }
}

#[test]
fn leveled_size_tiers_an_overflowing_level_0_and_otherwise_pushes_it_into_level_1() {
    let strategy = lcs();
    let mut sstables: Vec<SstableInfo> = (0..40)
        .map(|g| info(g, 500, 0, (g as i64 * 10, g as i64 * 10 + 5), g as i64))
        .collect();
    let job = strategy.pick(&sstables, &[], 0, 0).expect("L0 overflow");
    assert_eq!((job.output_level, job.inputs.len()), (0, 32));
    sstables.truncate(5);
    sstables.push(info(100, 900, 1, (0, 12), 1));
    sstables.push(info(101, 900, 1, (13, 200), 1));
    sstables.push(info(102, 900, 1, (201, 300), 1));
    let job = strategy.pick(&sstables, &[], 0, 0).expect("L0 into L1");
    assert_eq!(job.output_level, 1);
    assert_eq!(job.max_output_bytes, 1000);
    let mut inputs = job.inputs.clone();
    inputs.sort_unstable();
    assert_eq!(inputs, vec![0, 1, 2, 3, 4, 100, 101]);
    assert_eq!(
        strategy.pick(&sstables[1..], &sstables[..1], 0, 0),
        None,
        "leveled jobs run one at a time"
    );
    let major = strategy.major(&sstables).expect("major");
    assert_eq!(
        major.output_level, 2,
        "5.2 KB fits level 2 (16 KB), not level 1 (4 KB)"
    );
}
