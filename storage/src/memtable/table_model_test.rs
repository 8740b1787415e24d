//! Model-based test: a `Table` (memtables, sealing, the merging read path) against an
//! oracle that keeps every mutation as written and answers each read by brute force,
//! straight from the rules in `model::reconcile`'s docs. The disk variant adds flushes
//! to SSTables and restarts (flush, close, reopen from the directory) on the real disk.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::Bytes;
use proptest::prelude::*;

use crate::model::{
    Cell, CellKey, CellKind, ClusteringBound, ClusteringRange, ColumnId, DecoratedKey, Expiry,
    LiveCell, LiveRow, Mutation, PartitionRange, PartitionResult, RangeTombstone, RingPosition,
    Row, RowMarker, SliceQuery, TableId, Tombstone,
};
use crate::sstable::SstableOptions;
use crate::table::{Table, TableSettings, TableStorage};

const T: TableId = uuid::Uuid::from_u128(42);
const COLLECTION: ColumnId = 3;

/// Every write, in order; reads evaluate them from scratch.
#[derive(Default)]
struct Oracle {
    writes: Vec<Mutation>,
}

/// Total order in which the winning version of a cell is the maximum.
fn cell_rank(c: &Cell) -> (i64, u8, i32, u8, i32, i64, Bytes) {
    match &c.kind {
        CellKind::Dead { deletion_time } => (c.timestamp, 1, *deletion_time, 0, 0, 0, Bytes::new()),
        CellKind::Live { value, expiry } => {
            let (has, at, ttl) = expiry.map_or((0, 0, 0), |e| (1, e.expires_at, -i64::from(e.ttl)));
            (c.timestamp, 0, 0, has, at, ttl, value.clone())
        }
    }
}

fn marker_rank(m: &RowMarker) -> (i64, u8, i32, i64) {
    let (has, at, ttl) = m
        .expiry
        .map_or((0, 0, 0), |e| (1, e.expires_at, -i64::from(e.ttl)));
    (m.timestamp, has, at, ttl)
}

fn in_clustering_range(r: &ClusteringRange, k: &[u8]) -> bool {
    let start_ok = r.start.as_ref().is_none_or(|b| {
        let p = &b.prefix[..];
        if b.inclusive {
            k >= p
        } else {
            k > p && !k.starts_with(p)
        }
    });
    let end_ok = r.end.as_ref().is_none_or(|b| {
        let p = &b.prefix[..];
        if b.inclusive {
            k <= p || k.starts_with(p)
        } else {
            k < p
        }
    });
    start_ok && end_ok
}

fn in_partition_range(r: &PartitionRange, k: &DecoratedKey) -> bool {
    // A token-only position compares equal with every key of its token.
    let cmp = |p: &RingPosition| match &p.key {
        None => k.token.cmp(&p.token),
        Some(key) => (k.token, &k.key).cmp(&(p.token, key)),
    };
    let start_ok = match &r.start {
        Bound::Unbounded => true,
        Bound::Included(p) => cmp(p).is_ge(),
        Bound::Excluded(p) => cmp(p).is_gt(),
    };
    let end_ok = match &r.end {
        Bound::Unbounded => true,
        Bound::Included(p) => cmp(p).is_le(),
        Bound::Excluded(p) => cmp(p).is_lt(),
    };
    start_ok && end_ok
}

impl Oracle {
    /// Evaluates one row from all its versions; `deleted_at` is the newest covering
    /// tombstone timestamp from outside the row.
    fn live_row(
        &self,
        versions: &[&Row],
        deleted_at: Option<i64>,
        cmd: &SliceQuery,
        now: i32,
    ) -> Option<LiveRow> {
        let row_del = versions
            .iter()
            .filter_map(|r| r.deletion.map(|t| t.timestamp))
            .max();
        let deleted_at = deleted_at.max(row_del);
        let alive = |ts: i64, del: Option<i64>| del.is_none_or(|d| ts > d);
        let marker = versions
            .iter()
            .filter_map(|r| r.marker)
            .max_by_key(marker_rank)
            .filter(|m| {
                alive(m.timestamp, deleted_at) && m.expiry.is_none_or(|e| e.expires_at > now)
            });
        let mut all: BTreeMap<CellKey, Vec<&Cell>> = BTreeMap::new();
        for (k, c) in versions.iter().flat_map(|r| r.cells.iter()) {
            all.entry(k.clone()).or_default().push(c);
        }
        let mut any_cell = false;
        let mut cells = Vec::new();
        for (k, vs) in all {
            let winner = vs
                .into_iter()
                .max_by_key(|c| cell_rank(c))
                .expect("non-empty");
            let complex = versions
                .iter()
                .filter_map(|r| r.complex_deletions.get(&k.column).map(|t| t.timestamp))
                .max();
            let CellKind::Live { value, expiry } = &winner.kind else {
                continue;
            };
            if !alive(winner.timestamp, deleted_at.max(complex))
                || expiry.is_some_and(|e| e.expires_at <= now)
            {
                continue;
            }
            any_cell = true;
            if cmd.columns.as_ref().is_none_or(|cs| cs.contains(&k.column)) {
                cells.push((
                    k,
                    LiveCell {
                        timestamp: winner.timestamp,
                        value: value.clone(),
                        expiry: *expiry,
                    },
                ));
            }
        }
        (marker.is_some() || any_cell).then_some(LiveRow { marker, cells })
    }

    fn read(&self, key: &DecoratedKey, cmd: &SliceQuery, now: i32) -> Option<PartitionResult> {
        let ms: Vec<&Mutation> = self.writes.iter().filter(|m| m.key == *key).collect();
        let pdel = ms
            .iter()
            .filter_map(|m| m.partition_deletion.map(|t| t.timestamp))
            .max();
        let statics: Vec<&Row> = ms.iter().filter_map(|m| m.static_row.as_ref()).collect();
        let static_row = if statics.is_empty() {
            None
        } else {
            self.live_row(&statics, pdel, cmd, now)
        };
        let rts: Vec<&RangeTombstone> = ms.iter().flat_map(|m| m.range_tombstones.iter()).collect();
        let keys: BTreeSet<&Bytes> = ms
            .iter()
            .flat_map(|m| m.rows.iter().map(|(k, _)| k))
            .collect();
        let mut ordered: Vec<&Bytes> = Vec::new();
        for range in &cmd.ranges {
            ordered.extend(keys.iter().filter(|k| in_clustering_range(range, k)));
        }
        if cmd.reversed {
            ordered.reverse();
        }
        let mut rows = Vec::new();
        for ck in ordered {
            if rows.len() >= cmd.row_limit {
                break;
            }
            let versions: Vec<&Row> = ms
                .iter()
                .flat_map(|m| m.rows.iter())
                .filter(|(k, _)| k == ck)
                .map(|(_, r)| r)
                .collect();
            let rt_del = rts
                .iter()
                .filter(|rt| in_clustering_range(&rt.range, ck))
                .map(|rt| rt.tombstone.timestamp)
                .max();
            if let Some(row) = self.live_row(&versions, pdel.max(rt_del), cmd, now) {
                rows.push((ck.clone(), row));
            }
        }
        (static_row.is_some() || !rows.is_empty()).then(|| PartitionResult {
            key: key.clone(),
            static_row,
            rows,
        })
    }

    fn scan(
        &self,
        range: &PartitionRange,
        cmd: &SliceQuery,
        partition_limit: usize,
        now: i32,
    ) -> Vec<PartitionResult> {
        let keys: BTreeSet<&DecoratedKey> = self
            .writes
            .iter()
            .map(|m| &m.key)
            .filter(|k| in_partition_range(range, k))
            .collect();
        let mut left = cmd.row_limit;
        let mut out = Vec::new();
        for key in keys {
            if out.len() >= partition_limit || left == 0 {
                break;
            }
            let cmd = SliceQuery {
                row_limit: left,
                ..cmd.clone()
            };
            if let Some(p) = self.read(key, &cmd, now) {
                let full = cmd.ranges.len() == 1 && cmd.ranges[0].is_full();
                left -= if p.rows.is_empty() && full {
                    1
                } else {
                    p.rows.len()
                };
                out.push(p);
            }
        }
        out
    }
}

// ---- generators: small domains so that keys, timestamps and values collide often ----

fn byte() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![0x00u8, 0x01, b'a', 0xff])
}

fn clustering() -> impl Strategy<Value = Bytes> {
    // Fixed-length keys are prefix-free.
    (byte(), byte()).prop_map(|(a, b)| Bytes::from(vec![a, b]))
}

fn prefix() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(byte(), 0..=2).prop_map(Bytes::from)
}

fn expiry() -> impl Strategy<Value = Option<Expiry>> {
    prop::option::weighted(
        0.4,
        (1..3i32, 2..6i32).prop_map(|(ttl, expires_at)| Expiry { ttl, expires_at }),
    )
}

fn tombstone() -> impl Strategy<Value = Tombstone> {
    (0..6i64, 0..3i32).prop_map(|(ts, dt)| Tombstone::new(ts, dt))
}

fn cell() -> impl Strategy<Value = Cell> {
    let value = prop::sample::select(vec!["", "a", "b"])
        .prop_map(|s: &str| Bytes::from_static(s.as_bytes()));
    prop_oneof![
        3 => (0..4i64, value, expiry()).prop_map(|(ts, value, expiry)| Cell { timestamp: ts, kind: CellKind::Live { value, expiry } }),
        1 => (0..6i64, 0..3i32).prop_map(|(ts, dt)| Cell::dead(ts, dt)),
    ]
}

fn cell_key() -> impl Strategy<Value = CellKey> {
    prop_oneof![
        (0..COLLECTION).prop_map(CellKey::atomic),
        prop::sample::select(vec!["x", "y", "z"]).prop_map(|p| CellKey::element(COLLECTION, p)),
    ]
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop::option::weighted(
            0.4,
            (0..6i64, expiry()).prop_map(|(ts, e)| RowMarker::new(ts, e)),
        ),
        prop::option::weighted(0.15, tombstone()),
        prop::collection::btree_map(cell_key(), cell(), 0..4),
        prop::option::weighted(0.15, tombstone()),
    )
        .prop_map(|(marker, deletion, cells, complex)| Row {
            marker,
            deletion,
            cells: cells.into_iter().collect(),
            complex_deletions: complex.map(|t| (COLLECTION, t)).into_iter().collect(),
        })
}

fn bound() -> impl Strategy<Value = Option<ClusteringBound>> {
    prop::option::weighted(
        0.8,
        (prefix(), any::<bool>())
            .prop_map(|(prefix, inclusive)| ClusteringBound { prefix, inclusive }),
    )
}

fn range() -> impl Strategy<Value = ClusteringRange> {
    (bound(), bound()).prop_map(|(start, end)| ClusteringRange { start, end })
}

/// Sorted, non-overlapping ranges: one arbitrary range, or ranges between distinct
/// one-byte prefixes (which cannot share keys).
fn ranges() -> impl Strategy<Value = Vec<ClusteringRange>> {
    let disjoint = (
        prop::collection::btree_set(byte(), 2..=4),
        any::<[bool; 4]>(),
    )
        .prop_map(|(points, incl)| {
            let points: Vec<u8> = points.into_iter().collect();
            points
                .chunks_exact(2)
                .enumerate()
                .map(|(i, pair)| ClusteringRange {
                    start: Some(ClusteringBound {
                        prefix: Bytes::from(vec![pair[0]]),
                        inclusive: incl[2 * i],
                    }),
                    end: Some(ClusteringBound {
                        prefix: Bytes::from(vec![pair[1]]),
                        inclusive: incl[2 * i + 1],
                    }),
                })
                .collect()
        });
    prop_oneof![
        Just(vec![ClusteringRange::full()]),
        range().prop_map(|r| vec![r]),
        disjoint
    ]
}

fn slice() -> impl Strategy<Value = SliceQuery> {
    let columns = prop::option::weighted(0.2, prop::collection::vec(0..=COLLECTION, 0..3));
    (
        ranges(),
        any::<bool>(),
        prop_oneof![Just(usize::MAX), 0..5usize],
        columns,
    )
        .prop_map(|(ranges, reversed, row_limit, columns)| SliceQuery {
            ranges,
            reversed,
            row_limit,
            columns,
        })
}

fn pkey() -> impl Strategy<Value = DecoratedKey> {
    (0..3i64, prop::sample::select(vec!["p", "q"]))
        .prop_map(|(t, k)| DecoratedKey::new(t, Bytes::from_static(k.as_bytes())))
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        pkey(),
        prop::option::weighted(0.1, tombstone()),
        prop::option::weighted(0.3, row()),
        prop::collection::vec((clustering(), row()), 0..3),
        prop::collection::vec(
            (range(), tombstone())
                .prop_map(|(range, tombstone)| RangeTombstone { range, tombstone }),
            0..2,
        ),
    )
        .prop_map(
            |(key, partition_deletion, static_row, rows, range_tombstones)| Mutation {
                table: T,
                key,
                partition_deletion,
                static_row,
                rows,
                range_tombstones,
            },
        )
}

fn ring_bound() -> impl Strategy<Value = Bound<RingPosition>> {
    let pos = prop_oneof![
        (0..3i64).prop_map(RingPosition::token),
        pkey().prop_map(|k| RingPosition::key(&k)),
    ];
    prop_oneof![
        Just(Bound::Unbounded),
        pos.clone().prop_map(Bound::Included),
        pos.prop_map(Bound::Excluded),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Apply(Mutation),
    Seal,
    /// Seal and write every sealed memtable to an SSTable (memory-only: seal).
    Flush,
    /// Flush, then reopen the table from its directory (memory-only: seal).
    Restart,
    /// A major compaction at time 0 with no gc grace (memory-only: seal).
    Compact,
    Read(DecoratedKey, SliceQuery, i32),
    Scan(PartitionRange, SliceQuery, usize, i32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => mutation().prop_map(Op::Apply),
        1 => Just(Op::Seal),
        1 => Just(Op::Flush),
        1 => Just(Op::Restart),
        1 => Just(Op::Compact),
        3 => (pkey(), slice(), 0..8i32).prop_map(|(k, s, now)| Op::Read(k, s, now)),
        2 => (ring_bound(), ring_bound(), slice(), 1..4usize, 0..8i32)
            .prop_map(|(start, end, s, limit, now)| Op::Scan(PartitionRange { start, end }, s, limit, now)),
    ]
}

fn run(ops: &[Op]) {
    let table = Table::new(T);
    // A memory-only table never awaits IO: one poll completes every step.
    futures_lite::future::block_on(run_on(table, ops, None));
}

/// Runs `ops` against `table` and the oracle. With `storage`, `Restart` reopens the
/// table from its directory.
async fn run_on(
    mut table: Table,
    ops: &[Op],
    storage: Option<(&TableStorage, &TableSettings)>,
) -> u64 {
    let mut oracle = Oracle::default();
    let mut compactions = 0;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Apply(m) => {
                table.apply(m, None);
                oracle.writes.push(m.clone());
            }
            Op::Seal => {
                table.seal_memtable();
            }
            Op::Flush => {
                table.flush().await.expect("flush");
            }
            Op::Restart => {
                table.flush().await.expect("flush");
                if let Some((storage, settings)) = storage {
                    drop(table);
                    table = Table::open(T, storage.clone(), settings.clone())
                        .await
                        .expect("reopen")
                        .0;
                }
            }
            Op::Compact => {
                // Reads happen at times 0..8, so compacting "at 0" never expires
                // anything a later read would still see live.
                compactions += u64::from(table.major_compaction_at(0).await.expect("compact"));
            }
            Op::Read(key, cmd, now) => {
                let read = table.read_partition(key, cmd, *now).await.expect("read");
                assert_eq!(read, oracle.read(key, cmd, *now), "op {i}: {op:?}");
            }
            Op::Scan(range, cmd, limit, now) => {
                let scanned = table.scan(range, cmd, *limit, *now).await.expect("scan");
                assert_eq!(
                    scanned,
                    oracle.scan(range, cmd, *limit, *now),
                    "op {i}: {op:?}"
                );
            }
        }
    }
    compactions
}

#[test]
fn table_with_sstables_matches_oracle() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    // Cases are drawn up front (deterministically) and run inside one shard, since the
    // SSTable IO needs the shard's reactor; a failure prints the case's ops.
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 1..60);
    let cases: Vec<Vec<Op>> = (0..100)
        .map(|_| strategy.new_tree(&mut runner).expect("generate").current())
        .collect();
    let dir = crate::test_support::test_dir("table-model-tests", "sstables");
    let compactions = crate::test_support::on_shard(move || async move {
        let mut compactions = 0;
        for (n, ops) in cases.iter().enumerate() {
            let storage = TableStorage {
                dir: dir.join(n.to_string()),
                shard: 0,
                shard_count: 1,
            };
            let settings = TableSettings {
                sstable: SstableOptions {
                    chunk_size: 512,
                    index_block_entries: 4,
                    ..SstableOptions::default()
                },
                gc_grace_seconds: 0,
                ..TableSettings::default()
            };
            let table = Table::open(T, storage.clone(), settings.clone())
                .await
                .expect("open")
                .0;
            compactions += run_on(table, ops, Some((&storage, &settings))).await;
        }
        compactions
    });
    assert!(compactions > 20, "only {compactions} compactions ran");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_oracle(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

/// Many versions of one cell (and its row marker) in one row: exercises the tie-break
/// rules far more often than the wide generator does.
fn contended_op() -> impl Strategy<Value = Op> {
    let key = DecoratedKey::new(0, Bytes::from_static(b"p"));
    let write = (
        prop::option::weighted(
            0.3,
            (0..3i64, expiry()).prop_map(|(ts, e)| RowMarker::new(ts, e)),
        ),
        cell(),
    )
        .prop_map(move |(marker, cell)| {
            let row = Row {
                marker,
                ..Row::new()
            }
            .cell(
                0,
                Cell {
                    timestamp: cell.timestamp % 3,
                    ..cell
                },
            );
            Op::Apply(
                Mutation::new(T, DecoratedKey::new(0, Bytes::from_static(b"p"))).with_row("c", row),
            )
        });
    prop_oneof![
        4 => write,
        1 => Just(Op::Seal),
        1 => Just(Op::Flush),
        2 => (0..8i32).prop_map(move |now| Op::Read(key.clone(), SliceQuery::full(), now)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn contended_cell_matches_oracle(ops in prop::collection::vec(contended_op(), 1..20)) {
        run(&ops);
    }
}

/// A table with storage in `dir`.
async fn disk_table(dir: std::path::PathBuf) -> Table {
    let storage = TableStorage {
        dir,
        shard: 0,
        shard_count: 1,
    };
    Table::open(T, storage, TableSettings::default())
        .await
        .expect("open")
        .0
}

/// The clustering keys a read of `key`'s rows under `prefix` returns, and
/// how many SSTables it read.
async fn read_prefix(table: &Table, key: &DecoratedKey, prefix: &[u8]) -> (Vec<Bytes>, u64) {
    let slice = SliceQuery {
        ranges: vec![ClusteringRange::prefix(prefix.to_vec())],
        ..SliceQuery::full()
    };
    let before = table.stats().sstable_reads;
    let result = table.read_partition(key, &slice, 0).await.expect("read");
    let rows: Vec<Bytes> = result
        .map(|r| r.rows.into_iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    (rows, table.stats().sstable_reads - before)
}

/// A point read of a clustering slice opens only the SSTables whose
/// clustering statistics admit the slice, and every SSTable with a partition
/// tombstone (which shadows rows wherever they lie).
#[test]
fn clustering_statistics_skip_sstables_outside_the_slice() {
    let dir = crate::test_support::test_dir("table-model-tests", "clustering-skip");
    crate::test_support::on_shard(move || async move {
        let table = disk_table(dir).await;
        let key = DecoratedKey::new(7, b"k".to_vec());
        let live = |ts| Row::new().cell(1, Cell::live(ts, "v"));
        for rows in [[&b"a"[..], b"b"], [b"x", b"y"]] {
            let mut m = Mutation::new(T, key.clone());
            for row in rows {
                m = m.with_row(Bytes::copy_from_slice(row), live(10));
            }
            table.apply(&m, None);
            table.flush().await.expect("flush");
        }
        assert_eq!(
            read_prefix(&table, &key, b"x").await,
            (vec![Bytes::from_static(b"x")], 1)
        );
        // A newer partition tombstone in a third SSTable must be read, and
        // shadows the row.
        table.apply(
            &Mutation::partition_delete(T, key.clone(), Tombstone::new(20, 0)),
            None,
        );
        table.flush().await.expect("flush");
        assert_eq!(read_prefix(&table, &key, b"x").await, (vec![], 2));
    });
}

/// Compaction copies a plain partition's bytes unchanged; its clustering
/// statistics must still cover the copied rows, or point reads would skip
/// the compacted SSTable.
#[test]
fn compaction_keeps_clustering_statistics_of_copied_partitions() {
    let dir = crate::test_support::test_dir("table-model-tests", "clustering-copied");
    crate::test_support::on_shard(move || async move {
        let table = disk_table(dir).await;
        let keys = [
            DecoratedKey::new(3, b"k1".to_vec()),
            DecoratedKey::new(9, b"k2".to_vec()),
        ];
        for (key, clustering) in keys.iter().zip([&b"m"[..], b"x"]) {
            let row = Row::with_marker(10, None).cell(1, Cell::live(10, "v"));
            let static_row = Row::new().cell(2, Cell::live(10, "s"));
            let mut m =
                Mutation::new(T, key.clone()).with_row(Bytes::copy_from_slice(clustering), row);
            m.static_row = (key.token == 9).then_some(static_row);
            table.apply(&m, None);
            table.flush().await.expect("flush");
        }
        assert!(table.major_compaction().await.expect("compact"));
        assert_eq!(table.sstable_count(), 1);
        for (key, clustering) in keys.iter().zip([&b"m"[..], b"x"]) {
            let (rows, _) = read_prefix(&table, key, clustering).await;
            assert_eq!(rows, vec![Bytes::copy_from_slice(clustering)], "{key:?}");
        }
    });
}
