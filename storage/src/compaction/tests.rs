//! Compaction on the real disk (under `target/`): merged outputs read like their inputs,
//! gc grace and the purge bound hold, and recovery from a crash after every step of the
//! compaction log leaves exactly the inputs or exactly the outputs.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::*;
use crate::memtable::Memtable;
use crate::model::query::read_partition;
use crate::model::{
    Cell, DecoratedKey, Mutation, Partition, PartitionRange, Row, SliceQuery, Tombstone,
};
use crate::sstable::tests::{random_memtable, small_options, write};
use crate::sstable::{Component, SstableOptions};
use crate::test_support::on_shard;

fn test_dir(name: &str) -> PathBuf {
    crate::test_support::test_dir("compaction-tests", name)
}

const NOW: i32 = 50_000;
const GC_GRACE: i32 = 10_000;

fn no_outside(_: &DecoratedKey) -> i64 {
    i64::MAX
}

fn purge_options(max_purgeable: &dyn Fn(&DecoratedKey) -> i64) -> PurgeOptions<'_> {
    PurgeOptions {
        now_secs: NOW,
        gc_grace_seconds: GC_GRACE,
        max_purgeable_timestamp: max_purgeable,
    }
}

fn output_options(max_output_bytes: u64, level: u32) -> OutputOptions {
    OutputOptions {
        replay_floor: None,
        sstable: small_options(),
        level,
        max_output_bytes,
    }
}

/// Writes one SSTable per memtable, generations 1..=n, and opens them.
async fn inputs(dir: &Path, memtables: &[Memtable]) -> Vec<Rc<Sstable>> {
    let mut out = Vec::new();
    for (i, memtable) in memtables.iter().enumerate() {
        let generation = i as u64 + 1;
        write(dir, generation, memtable, small_options()).await;
        out.push(Rc::new(
            Sstable::open(dir, generation).await.expect("open input"),
        ));
    }
    out
}

/// The oracle: every input's version of every key, merged.
fn merged(memtables: &[Memtable]) -> BTreeMap<DecoratedKey, Partition> {
    let mut all: BTreeMap<DecoratedKey, Partition> = BTreeMap::new();
    for memtable in memtables {
        for (key, partition) in memtable.iter() {
            all.entry(key.clone()).or_default().merge(partition);
        }
    }
    all
}

/// Every partition of the outputs, checking each key is in exactly one of them.
async fn output_partitions(dir: &Path, metas: &[SstableMeta]) -> BTreeMap<DecoratedKey, Partition> {
    let mut out = BTreeMap::new();
    for meta in metas {
        let sstable = Sstable::open(dir, meta.generation)
            .await
            .expect("open output");
        assert_eq!(sstable.stats(), &meta.stats);
        for (key, partition) in sstable.scan(&PartitionRange::full()).await.expect("scan") {
            assert!(!partition.is_empty(), "empty partition {key:?} written");
            assert!(out.insert(key, partition).is_none(), "key in two outputs");
        }
        sstable.close().await.expect("close");
    }
    out
}

fn assert_same_reads(
    expected: &BTreeMap<DecoratedKey, Partition>,
    got: &BTreeMap<DecoratedKey, Partition>,
) {
    let mut reversed = SliceQuery::full();
    reversed.reversed = true;
    for (key, original) in expected {
        for read_at in [NOW, NOW + 1, NOW + 100_000, i32::MAX] {
            for q in [SliceQuery::full(), reversed.clone()] {
                let want = read_partition(&[original], key, &q, read_at);
                let have = got
                    .get(key)
                    .and_then(|p| read_partition(&[p], key, &q, read_at));
                assert_eq!(have, want, "{key:?} read at {read_at}");
            }
        }
    }
    for key in got.keys() {
        assert!(expected.contains_key(key), "{key:?} appeared from nowhere");
    }
}

fn files_of(dir: &Path, generation: u64) -> Vec<String> {
    let prefix = format!("tsr-{generation}-");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

fn logs_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("list")
        .filter(|e| {
            let name = e.as_ref().expect("entry").file_name();
            name.to_string_lossy().starts_with("compaction-")
        })
        .count()
}

#[test]
fn compacted_outputs_read_like_the_merged_inputs() {
    for (name, max_output_bytes) in [("one_output", u64::MAX), ("split", 20_000)] {
        let dir = test_dir(name);
        on_shard(move || async move {
            let memtables: Vec<Memtable> =
                (0..4).map(|i| random_memtable(100 + i, 700, 300)).collect();
            let inputs = inputs(&dir, &memtables).await;
            let mut txn = CompactionTxn::begin(&dir, &[1, 2, 3, 4])
                .await
                .expect("begin");
            let mut next = 100;
            let mut next_generation = || {
                next += 1;
                next
            };
            let metas = compact(
                &inputs,
                &mut txn,
                &mut next_generation,
                &output_options(max_output_bytes, 2),
                &purge_options(&no_outside),
            )
            .await
            .expect("compact");
            let generations: Vec<u64> = metas.iter().map(|m| m.generation).collect();
            assert_eq!(txn.outputs(), &generations[..]);
            if max_output_bytes == u64::MAX {
                assert_eq!(metas.len(), 1);
            } else {
                assert!(metas.len() > 2, "{} outputs", metas.len());
                for pair in metas.windows(2) {
                    assert!(pair[0].stats.max_token < pair[1].stats.min_token);
                }
            }
            assert!(metas.iter().all(|m| m.stats.level == 2));
            let mut expected = merged(&memtables);
            let got = output_partitions(&dir, &metas).await;
            assert_same_reads(&expected, &got);
            // The outputs hold only what matters: compacting the oracle gives them.
            expected.retain(|key, p| {
                p.compact(NOW, NOW - GC_GRACE, no_outside(key));
                !p.is_empty()
            });
            assert_eq!(got, expected);
            let committed = txn.commit().await.expect("commit");
            assert_eq!(committed.inputs(), &[1, 2, 3, 4]);
            for sstable in inputs {
                Rc::try_unwrap(sstable)
                    .expect("sole owner")
                    .close()
                    .await
                    .expect("close");
            }
            if max_output_bytes == u64::MAX {
                committed.finish().await.expect("finish");
            } else {
                // Large input files (sparse): one is shrunk in steps, then
                // unlinked; the other is also linked from a snapshot, which
                // must keep every byte.
                let large = 3 * log::SHRINK_STEP_BYTES + 5;
                for generation in [1, 2] {
                    let data = std::fs::OpenOptions::new()
                        .write(true)
                        .open(Component::Data.path(&dir, generation))
                        .expect("open input");
                    data.set_len(large).expect("grow input");
                }
                let snapshot = dir.join("snapshot");
                std::fs::create_dir_all(&snapshot).expect("snapshot dir");
                let linked = snapshot.join("Data.db");
                std::fs::hard_link(Component::Data.path(&dir, 2), &linked).expect("link");
                committed.finish_gradually().await.expect("finish");
                let kept = std::fs::metadata(&linked).expect("snapshot file");
                assert_eq!(kept.len(), large, "the snapshot's copy was cut short");
            }
            for g in 1..=4 {
                assert!(files_of(&dir, g).is_empty(), "input {g} left");
            }
            assert_eq!(logs_in(&dir), 0);
            assert!(metas
                .iter()
                .all(|m| files_of(&dir, m.generation).len() == 7));
        });
    }
}

/// One partition: a tombstone at timestamp 10, deleted at `deletion_time`, over a row
/// written at 5.
fn deleted_partition(deletion_time: i32) -> Memtable {
    let key = DecoratedKey::new(7, b"k".to_vec());
    let mut memtable = Memtable::new();
    memtable.apply(&Mutation::new(uuid::Uuid::nil(), key.clone()).with_row(
        b"r".to_vec(),
        Row::with_marker(5, None).cell(1, Cell::live(5, "v")),
    ));
    memtable.apply(&Mutation::partition_delete(
        uuid::Uuid::nil(),
        key,
        Tombstone::new(10, deletion_time),
    ));
    memtable
}

#[test]
fn tombstones_are_purged_only_past_gc_grace_and_below_the_bound() {
    let dir = test_dir("gc_grace");
    on_shard(move || async move {
        // (deletion time, max purgeable timestamp, tombstone survives)
        let cases = [
            (NOW - GC_GRACE, i64::MAX, true),
            (NOW - GC_GRACE - 1, i64::MAX, false),
            (NOW - GC_GRACE - 1, 10, true),
            (NOW - GC_GRACE - 1, 11, false),
        ];
        for (i, (deletion_time, bound, survives)) in cases.into_iter().enumerate() {
            let generation = 10 * (i as u64 + 1);
            write(
                &dir,
                generation,
                &deleted_partition(deletion_time),
                SstableOptions::default(),
            )
            .await;
            let input = Rc::new(Sstable::open(&dir, generation).await.expect("open"));
            let mut txn = CompactionTxn::begin(&dir, &[generation])
                .await
                .expect("begin");
            let mut next_generation = || generation + 1;
            let max_purgeable = move |_: &DecoratedKey| bound;
            let metas = compact(
                &[input],
                &mut txn,
                &mut next_generation,
                &output_options(u64::MAX, 0),
                &purge_options(&max_purgeable),
            )
            .await
            .expect("compact");
            let got = output_partitions(&dir, &metas).await;
            if survives {
                let partition = got.values().next().expect("tombstone kept");
                assert_eq!(partition.deletion, Some(Tombstone::new(10, deletion_time)));
                assert!(partition.rows.is_empty(), "shadowed row dropped");
            } else {
                assert!(
                    metas.is_empty(),
                    "case {i}: everything purged, nothing written"
                );
            }
            txn.commit()
                .await
                .expect("commit")
                .finish()
                .await
                .expect("finish");
        }
    });
}

/// Where a simulated crash stops a compaction.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CrashAfter {
    Begin,
    OutputRecorded,
    OutputsWritten,
    CommitTorn,
    Commit,
    InputTocDeleted,
}

/// Runs a compaction of generations 1..=3 into 50.. up to `step`, drops everything,
/// runs recovery, and checks what is left.
async fn crash_and_recover(dir: &Path, step: CrashAfter) {
    let memtables: Vec<Memtable> = (0..3).map(|i| random_memtable(7 + i, 200, 100)).collect();
    let inputs = inputs(dir, &memtables).await;
    let mut txn = CompactionTxn::begin(dir, &[1, 2, 3]).await.expect("begin");
    let mut outputs = Vec::new();
    match step {
        CrashAfter::Begin => {}
        CrashAfter::OutputRecorded => {
            // The record is durable, the SSTable half written (no TOC).
            txn.add_output(50).await.expect("record");
            let mut writer = SstableWriter::create(dir, 50, small_options(), 1)
                .await
                .expect("create");
            let (key, partition) = memtables[0].iter().next().expect("a partition");
            writer.add_partition(key, partition).await.expect("add");
            drop(writer);
            outputs.push(50);
        }
        _ => {
            let mut next = 49;
            let mut next_generation = || {
                next += 1;
                next
            };
            let metas = compact(
                &inputs,
                &mut txn,
                &mut next_generation,
                &output_options(10_000, 1),
                &purge_options(&no_outside),
            )
            .await
            .expect("compact");
            assert!(metas.len() > 1);
            outputs = metas.iter().map(|m| m.generation).collect();
        }
    }
    let committed = matches!(step, CrashAfter::Commit | CrashAfter::InputTocDeleted);
    if step == CrashAfter::CommitTorn {
        // The commit record's block was written only partly: its bytes are garbage.
        let log = dir.join(log::log_file_name(1));
        let mut bytes = std::fs::read(&log).expect("read log");
        let len = bytes.len();
        bytes.extend_from_slice(&crate::sstable::tests::Rng(5).next().to_be_bytes());
        bytes.resize(len + 512, 0);
        bytes[len..len + 4].copy_from_slice(b"TSCL");
        std::fs::write(&log, bytes).expect("tear");
        drop(txn);
    } else if committed {
        let committed = txn.commit().await.expect("commit");
        if step == CrashAfter::InputTocDeleted {
            std::fs::remove_file(Component::Toc.path(dir, 2)).expect("remove TOC");
        }
        drop(committed);
    } else {
        drop(txn);
    }
    drop(inputs);
    let report = recover(dir).await.expect("recover");
    assert_eq!(report.logs, 1, "{step:?}");
    assert_eq!(logs_in(dir), 0, "{step:?}: log removed");
    let (kept, gone) = if committed {
        assert_eq!(report.rolled_forward, vec![1, 2, 3]);
        (outputs.clone(), vec![1, 2, 3])
    } else {
        assert_eq!(report.rolled_back, outputs);
        (vec![1, 2, 3], outputs.clone())
    };
    for g in gone {
        assert!(files_of(dir, g).is_empty(), "{step:?}: generation {g} left");
    }
    let mut served = Vec::new();
    for &g in &kept {
        let sstable = Sstable::open(dir, g).await.expect("kept SSTable opens");
        for (key, partition) in sstable.scan(&PartitionRange::full()).await.expect("scan") {
            served.push((key, partition));
        }
        sstable.close().await.expect("close");
    }
    let mut expected = merged(&memtables);
    if committed {
        expected.retain(|key, p| {
            p.compact(NOW, NOW - GC_GRACE, no_outside(key));
            !p.is_empty()
        });
    }
    let mut got: BTreeMap<DecoratedKey, Partition> = BTreeMap::new();
    for (key, partition) in served {
        got.entry(key).or_default().merge(&partition);
    }
    assert_eq!(got, expected, "{step:?}: served data");
    // Recovery again finds nothing to do.
    assert_eq!(
        recover(dir).await.expect("again"),
        RecoveryReport::default()
    );
}

#[test]
fn recovery_after_a_crash_at_every_step_keeps_inputs_or_outputs() {
    for step in [
        CrashAfter::Begin,
        CrashAfter::OutputRecorded,
        CrashAfter::OutputsWritten,
        CrashAfter::CommitTorn,
        CrashAfter::Commit,
        CrashAfter::InputTocDeleted,
    ] {
        let dir = test_dir(&format!("crash_{step:?}"));
        on_shard(move || async move { crash_and_recover(&dir, step).await });
    }
}

#[test]
fn abort_deletes_outputs_and_keeps_inputs() {
    let dir = test_dir("abort");
    on_shard(move || async move {
        let memtables = vec![random_memtable(3, 100, 50), random_memtable(4, 100, 50)];
        let inputs = inputs(&dir, &memtables).await;
        let mut txn = CompactionTxn::begin(&dir, &[1, 2]).await.expect("begin");
        let err = CompactionTxn::begin(&dir, &[1, 2])
            .await
            .expect_err("same id");
        assert!(matches!(err, CompactionError::LogExists { .. }), "{err}");
        for taken in [1, 2] {
            let err = txn.add_output(taken).await.expect_err("generation in use");
            assert!(matches!(err, CompactionError::OutputExists { .. }), "{err}");
        }
        let mut next_generation = || 9;
        let metas = compact(
            &inputs,
            &mut txn,
            &mut next_generation,
            &output_options(u64::MAX, 0),
            &purge_options(&no_outside),
        )
        .await
        .expect("compact");
        assert_eq!(metas.len(), 1);
        txn.abort().await.expect("abort");
        assert!(files_of(&dir, 9).is_empty());
        assert_eq!(logs_in(&dir), 0);
        for g in [1, 2] {
            Sstable::open(&dir, g).await.expect("input intact");
        }
        assert_eq!(
            recover(&dir).await.expect("recover"),
            RecoveryReport::default()
        );
        let missing = dir.join("no-such-table");
        assert_eq!(
            recover(&missing).await.expect("missing dir"),
            RecoveryReport::default()
        );
    });
}

#[test]
fn the_purge_bound_comes_from_sstables_that_may_hold_the_key_and_memtables() {
    let dir = test_dir("purge_bound");
    on_shard(move || async move {
        let memtable = deleted_partition(1);
        write(&dir, 1, &memtable, SstableOptions::default()).await;
        let sstable = Rc::new(Sstable::open(&dir, 1).await.expect("open"));
        let held = DecoratedKey::new(7, b"k".to_vec());
        let absent = DecoratedKey::new(8, b"other".to_vec());
        let others = [Rc::clone(&sstable)];
        assert_eq!(max_purgeable_timestamp(&held, &others, &[]), 5);
        assert_eq!(max_purgeable_timestamp(&absent, &others, &[]), i64::MAX);
        let mut in_memtable = Partition::new();
        in_memtable.deletion = Some(Tombstone::new(3, 0));
        assert_eq!(
            max_purgeable_timestamp(&absent, &others, &[&in_memtable]),
            3
        );
        assert_eq!(max_purgeable_timestamp(&held, &[], &[]), i64::MAX);
    });
}

/// Empty stand-ins for an SSTable's files (recovery only deletes by name).
fn touch_sstable(dir: &Path, generation: u64) {
    for c in Component::LISTED.into_iter().chain([Component::Toc]) {
        std::fs::write(c.path(dir, generation), b"").expect("touch");
    }
}

#[test]
fn the_log_format_1_fixture_is_recovered() {
    let dir = test_dir("log_fixture");
    crate::sstable::tests::copy_fixture("compaction-log-v1", &dir);
    for g in 1..=4 {
        touch_sstable(&dir, g);
    }
    on_shard(move || async move {
        let report = recover(&dir).await.expect("recover");
        assert_eq!(report.logs, 1);
        assert_eq!(report.rolled_forward, vec![1, 2]);
        for g in [1, 2] {
            assert!(files_of(&dir, g).is_empty());
        }
        for g in [3, 4] {
            assert_eq!(files_of(&dir, g).len(), 7);
        }
    });
}

/// Regenerates `storage/fixtures/compaction-log-v1`: a committed compaction of 1 and 2
/// into 3 and 4 (run by hand; never overwrite an existing version's fixture).
#[test]
#[ignore = "writes into the source tree"]
fn write_log_format_1_fixture() {
    let dir = test_dir("log_fixture_write");
    let written = dir.clone();
    on_shard(move || async move {
        let mut txn = CompactionTxn::begin(&written, &[1, 2])
            .await
            .expect("begin");
        txn.add_output(3).await.expect("output");
        txn.add_output(4).await.expect("output");
        drop(txn.commit().await.expect("commit"));
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/compaction-log-v1");
    std::fs::create_dir_all(&out).expect("fixture dir");
    let name = log::log_file_name(1);
    std::fs::copy(dir.join(&name), out.join(&name)).expect("copy");
}

#[test]
fn a_failed_compaction_is_aborted_without_touching_the_inputs() {
    let dir = test_dir("failed");
    on_shard(move || async move {
        let memtables: Vec<Memtable> = (0..2).map(|i| random_memtable(20 + i, 300, 150)).collect();
        let inputs = inputs(&dir, &memtables).await;
        let mut txn = CompactionTxn::begin(&dir, &[1, 2]).await.expect("begin");
        // The second output asks for a generation in use: the merge fails midway.
        let mut handed = vec![2, 60];
        let mut next_generation = || handed.pop().expect("two outputs at most");
        let err = compact(
            &inputs,
            &mut txn,
            &mut next_generation,
            &output_options(5_000, 0),
            &purge_options(&no_outside),
        )
        .await
        .expect_err("generation 2 is an input");
        assert!(
            matches!(err, CompactionError::OutputExists { generation: 2, .. }),
            "{err}"
        );
        assert_eq!(txn.outputs(), &[60]);
        txn.abort().await.expect("abort");
        assert!(files_of(&dir, 60).is_empty());
        assert_eq!(logs_in(&dir), 0);
        let mut got: BTreeMap<DecoratedKey, Partition> = BTreeMap::new();
        for g in [1, 2] {
            let sstable = Sstable::open(&dir, g).await.expect("input intact");
            for (key, partition) in sstable.scan(&PartitionRange::full()).await.expect("scan") {
                got.entry(key).or_default().merge(&partition);
            }
        }
        assert_eq!(got, merged(&memtables));
    });
}
