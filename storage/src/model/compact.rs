//! Compacting one partition: what a compaction writes out of the merged versions it read.
//!
//! A source (memtable, SSTable) keeps shadowed data so that writing stays a plain union;
//! a compaction's output holds only what can still matter to a read or to another
//! source. [`Partition::compact`] does that in three steps:
//!
//! 1. **Shadowing.** Everything a tombstone of the partition deletes is dropped: data
//!    with `timestamp <= tombstone.timestamp` under the partition tombstone, a covering
//!    range tombstone, the row tombstone or (for collection cells) the complex deletion.
//!    Tombstones no stronger than one that covers them are dropped too (a row tombstone
//!    under a stronger range tombstone, a range tombstone under the partition
//!    tombstone); reads take the strongest covering tombstone, so nothing changes.
//! 2. **Expiry.** A cell whose TTL has run out (`expires_at <= now`) becomes a cell
//!    tombstone with the same timestamp and `deletion_time = expires_at`. An expired
//!    row marker stays as it is: an expired marker already is the marker's tombstone
//!    (it beats older markers of the row in other sources), with deletion time
//!    `expires_at`.
//! 3. **Purge.** A tombstone (of any kind, expired markers included) is removed when
//!    both hold:
//!    - `deletion_time < gc_before` (`now - gc_grace_seconds`): every replica has had
//!      `gc_grace_seconds` to receive it by repair, so it no longer needs to be spread;
//!    - `timestamp < max_purgeable_timestamp`: no source outside the compaction holds
//!      data of this partition the tombstone could still shadow. The caller computes
//!      the bound as the smallest timestamp of any other SSTable that may hold the
//!      partition and of the memtables (`i64::MAX` when none).
//!
//!    Whatever the purged tombstone shadowed inside the compaction was dropped in
//!    step 1, so purging never resurrects data.
//!
//! Live data is never removed except when shadowed, so a read of the compacted
//! partition at any time `>= now` returns what a read of the original returns.

use super::cell::{Cell, CellKind, Row, RowMarker, Tombstone};
use super::partition::Partition;

/// When tombstones may be dropped.
#[derive(Debug, Clone, Copy)]
struct Purge {
    now_secs: i32,
    gc_before_secs: i32,
    max_purgeable_timestamp: i64,
}

impl Purge {
    fn purgeable(&self, timestamp: i64, deletion_time: i32) -> bool {
        deletion_time < self.gc_before_secs && timestamp < self.max_purgeable_timestamp
    }

    fn tombstone(&self, t: Tombstone) -> bool {
        self.purgeable(t.timestamp, t.deletion_time)
    }

    fn cell(&self, cell: &Cell) -> bool {
        match cell.kind {
            CellKind::Dead { deletion_time } => self.purgeable(cell.timestamp, deletion_time),
            CellKind::Live { .. } => false,
        }
    }

    fn marker(&self, marker: &RowMarker) -> bool {
        marker.expiry.is_some_and(|e| {
            e.is_expired(self.now_secs) && self.purgeable(marker.timestamp, e.expires_at)
        })
    }
}

impl Partition {
    /// Drops shadowed data, turns expired cells into tombstones and purges tombstones
    /// older than `gc_before_secs` whose timestamp is below `max_purgeable_timestamp`
    /// (see the module docs). The partition may be left empty ([`Partition::is_empty`]);
    /// a compaction then writes nothing for it.
    pub fn compact(&mut self, now_secs: i32, gc_before_secs: i32, max_purgeable_timestamp: i64) {
        let purge = Purge {
            now_secs,
            gc_before_secs,
            max_purgeable_timestamp,
        };
        let partition_deletion = self.deletion;
        self.range_tombstones
            .retain(|rt| partition_deletion.is_none_or(|d| rt.tombstone > d));
        if let Some(row) = &mut self.static_row {
            compact_row(row, partition_deletion, &purge);
        }
        if self.static_row.as_deref().is_some_and(Row::is_empty) {
            self.static_row = None;
        }
        let range_tombstones = &self.range_tombstones;
        self.rows.retain(|clustering, row| {
            let covering = range_tombstones
                .iter()
                .filter(|rt| rt.range.contains(clustering))
                .map(|rt| rt.tombstone)
                .max();
            compact_row(row, partition_deletion.max(covering), &purge);
            !row.is_empty()
        });
        self.range_tombstones
            .retain(|rt| !purge.tombstone(rt.tombstone));
        self.deletion = self.deletion.filter(|t| !purge.tombstone(*t));
    }

    /// The smallest timestamp of any cell, marker or tombstone (`None`: nothing at all).
    /// A memtable's version of a partition bounds what a compaction may purge with it.
    pub fn min_timestamp(&self) -> Option<i64> {
        let rows = self
            .static_row
            .as_deref()
            .into_iter()
            .chain(self.rows.values());
        let row_min = rows
            .flat_map(|row| {
                let cells = row.cells.values().map(|c| c.timestamp);
                let tombstones = row.deletion.iter().chain(row.complex_deletions.values());
                row.marker
                    .iter()
                    .map(|m| m.timestamp)
                    .chain(tombstones.map(|t| t.timestamp))
                    .chain(cells)
            })
            .min();
        let tombstones = self
            .deletion
            .iter()
            .chain(self.range_tombstones.iter().map(|rt| &rt.tombstone))
            .map(|t| t.timestamp)
            .min();
        row_min.into_iter().chain(tombstones).min()
    }

    /// Whether the partition holds nothing at all (no data, no tombstone).
    pub fn is_empty(&self) -> bool {
        self.deletion.is_none()
            && self.static_row.is_none()
            && self.rows.is_empty()
            && self.range_tombstones.is_empty()
    }
}

/// Compacts one row under `inherited`, the strongest partition or range tombstone
/// covering it.
fn compact_row(row: &mut Row, inherited: Option<Tombstone>, purge: &Purge) {
    if row
        .deletion
        .is_some_and(|d| inherited.is_some_and(|i| d <= i))
    {
        row.deletion = None;
    }
    let deletion = inherited.max(row.deletion);
    let shadowed = |d: Option<Tombstone>, ts: i64| d.is_some_and(|d| d.shadows(ts));
    row.marker = row.marker.filter(|m| !shadowed(deletion, m.timestamp));
    row.complex_deletions
        .retain(|_, t| deletion.is_none_or(|d| *t > d));
    let complex = &row.complex_deletions;
    row.cells.retain(|key, cell| {
        let d = deletion.max(complex.get(&key.column).copied());
        !shadowed(d, cell.timestamp)
    });
    for cell in row.cells.values_mut() {
        expire(cell, purge.now_secs);
    }
    row.marker = row.marker.filter(|m| !purge.marker(m));
    row.cells.retain(|_, cell| !purge.cell(cell));
    row.complex_deletions.retain(|_, t| !purge.tombstone(*t));
    row.deletion = row.deletion.filter(|t| !purge.tombstone(*t));
}

/// Turns an expired cell into the tombstone it already acts as.
fn expire(cell: &mut Cell, now_secs: i32) {
    if let CellKind::Live {
        expiry: Some(expiry),
        ..
    } = &cell.kind
    {
        if expiry.is_expired(now_secs) {
            cell.kind = CellKind::Dead {
                deletion_time: expiry.expires_at,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::model::query::read_partition;
    use crate::model::{
        CellKey, ClusteringBound, ClusteringRange, DecoratedKey, Expiry, Mutation, RangeTombstone,
        SliceQuery,
    };

    const KEYS: [&[u8]; 4] = [b"a", b"ab", b"b", b"c"];

    /// Timestamps are `base + 2·i`: even inside the compaction, odd outside, so the two
    /// never tie (ties between an expired cell and a live one reconcile differently once
    /// the expired cell is a tombstone, as they do in every Cassandra-like store).
    fn tombstone(base: i64) -> impl Strategy<Value = Tombstone> {
        (0..12i64, 0..40i32).prop_map(move |(ts, dt)| Tombstone::new(base + 2 * ts, dt))
    }

    fn expiry() -> impl Strategy<Value = Option<Expiry>> {
        prop::option::weighted(
            0.4,
            (1..20i32, 0..40i32).prop_map(|(ttl, at)| {
                Some(Expiry {
                    ttl,
                    expires_at: at,
                })
            }),
        )
        .prop_map(Option::flatten)
    }

    fn cell(base: i64) -> impl Strategy<Value = Cell> {
        (0..12i64, any::<bool>(), expiry(), 0..40i32, 0..3u8).prop_map(
            move |(ts, live, expiry, dt, v)| {
                let timestamp = base + 2 * ts;
                if live {
                    Cell {
                        timestamp,
                        kind: CellKind::Live {
                            value: Bytes::from(vec![v]),
                            expiry,
                        },
                    }
                } else {
                    Cell::dead(timestamp, dt)
                }
            },
        )
    }

    fn row(base: i64) -> impl Strategy<Value = Row> {
        (
            prop::option::weighted(0.5, (0..12i64, expiry())),
            prop::option::weighted(0.2, tombstone(base)),
            prop::collection::vec(((0..3u32, prop::option::of(0..2u8)), cell(base)), 0..4),
            prop::option::weighted(0.2, (0..3u32, tombstone(base))),
        )
            .prop_map(move |(marker, deletion, cells, complex)| {
                let mut row = Row {
                    marker: marker.map(|(ts, e)| RowMarker::new(base + 2 * ts, e)),
                    deletion,
                    ..Row::new()
                };
                for ((column, path), c) in cells {
                    let key = CellKey {
                        column,
                        path: path.map(|p| Bytes::from(vec![p])),
                    };
                    row.cells.insert(key, c);
                }
                row.complex_deletions.extend(complex);
                row
            })
    }

    fn bound() -> impl Strategy<Value = Option<ClusteringBound>> {
        prop::option::of(
            (prop::sample::select(KEYS.to_vec()), any::<bool>()).prop_map(|(p, inclusive)| {
                ClusteringBound {
                    prefix: Bytes::from_static(p),
                    inclusive,
                }
            }),
        )
    }

    fn partition(base: i64) -> impl Strategy<Value = Partition> {
        let mutation = (
            prop::option::weighted(0.15, tombstone(base)),
            prop::option::weighted(0.3, row(base)),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), row(base)), 0..4),
            prop::collection::vec(((bound(), bound()), tombstone(base)), 0..2),
        )
            .prop_map(|(deletion, static_row, rows, rts)| {
                let mut m = Mutation::new(uuid::Uuid::nil(), key());
                m.partition_deletion = deletion;
                m.static_row = static_row;
                m.rows = rows
                    .into_iter()
                    .map(|(k, r)| (Bytes::from_static(k), r))
                    .collect();
                m.range_tombstones = rts
                    .into_iter()
                    .map(|((start, end), tombstone)| RangeTombstone {
                        range: ClusteringRange::new(start, end),
                        tombstone,
                    })
                    .collect();
                m
            });
        prop::collection::vec(mutation, 1..4).prop_map(|ms| {
            let mut p = Partition::new();
            for m in &ms {
                p.apply(m);
            }
            p
        })
    }

    fn key() -> DecoratedKey {
        DecoratedKey::new(1, Bytes::from_static(b"k"))
    }

    fn queries() -> Vec<SliceQuery> {
        let mut reversed = SliceQuery::full();
        reversed.reversed = true;
        let slice = SliceQuery {
            ranges: vec![ClusteringRange::prefix(Bytes::from_static(b"a"))],
            ..SliceQuery::full()
        };
        vec![SliceQuery::full(), reversed, slice]
    }

    fn reads_agree(original: &[&Partition], compacted: &[&Partition], now: i32) {
        for read_at in [now, now + 1, now + 7, now + 40, i32::MAX] {
            for q in queries() {
                assert_eq!(
                    read_partition(compacted, &key(), &q, read_at),
                    read_partition(original, &key(), &q, read_at),
                    "read at {read_at}, query {q:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn compacted_partition_reads_like_the_original(
            original in partition(0),
            now in 0..45i32,
            gc_grace in 0..30i32,
            max_purgeable in prop::sample::select(vec![0i64, 5, 11, 30, i64::MAX]),
        ) {
            let mut compacted = original.clone();
            compacted.compact(now, now - gc_grace, max_purgeable);
            reads_agree(&[&original], &[&compacted], now);
            // Compacting again changes nothing: the output holds only what matters.
            let mut again = compacted.clone();
            again.compact(now, now - gc_grace, max_purgeable);
            prop_assert_eq!(again, compacted);
        }

        #[test]
        fn purged_tombstones_never_resurrect_outside_data(
            original in partition(0),
            (outside_base, outside) in (0..20i64).prop_flat_map(|b| (Just(2 * b + 1), partition(2 * b + 1))),
            now in 0..45i32,
            gc_grace in 0..30i32,
        ) {
            // Every outside timestamp is odd and at least `outside_base`.
            let mut compacted = original.clone();
            compacted.compact(now, now - gc_grace, outside_base);
            reads_agree(&[&original, &outside], &[&compacted, &outside], now);
        }
    }

    #[test]
    fn expired_cells_become_tombstones_then_purge() {
        let expiry = Expiry {
            ttl: 10,
            expires_at: 100,
        };
        let row = Row::with_marker(5, Some(expiry))
            .cell(1, Cell::expiring(5, "v", expiry))
            .cell(2, Cell::live(5, "w"));
        let mut p = Partition::new();
        p.rows.insert(Bytes::from_static(b"a"), row);
        let mut kept = p.clone();
        kept.compact(100, 50, i64::MAX);
        let row = &kept.rows[&Bytes::from_static(b"a")];
        assert_eq!(row.cells[&CellKey::atomic(1)], Cell::dead(5, 100));
        assert_eq!(row.marker, Some(RowMarker::new(5, Some(expiry))));
        // Past gc grace, the tombstones go; the live cell stays.
        let mut purged = p.clone();
        purged.compact(200, 150, i64::MAX);
        let row = &purged.rows[&Bytes::from_static(b"a")];
        assert_eq!(row.marker, None);
        assert_eq!(row.cells.len(), 1);
        // Unless another source may hold older data of the partition.
        let mut blocked = p;
        blocked.compact(200, 150, 5);
        let row = &blocked.rows[&Bytes::from_static(b"a")];
        assert_eq!(row.cells[&CellKey::atomic(1)], Cell::dead(5, 100));
    }

    #[test]
    fn shadowed_data_is_dropped_and_a_purged_partition_is_empty() {
        let mut p = Partition::new();
        p.deletion = Some(Tombstone::new(10, 5));
        p.rows.insert(
            Bytes::from_static(b"a"),
            Row::with_marker(9, None).cell(1, Cell::live(10, "x")),
        );
        p.static_row = Some(Box::new(Row::new().cell(1, Cell::live(11, "s"))));
        let mut c = p.clone();
        c.compact(100, 0, i64::MAX);
        assert!(c.rows.is_empty());
        assert_eq!(c.deletion, Some(Tombstone::new(10, 5)));
        assert!(c.static_row.is_some());
        p.static_row = None;
        assert_eq!(p.min_timestamp(), Some(9));
        p.compact(100, 6, i64::MAX);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.min_timestamp(), None);
    }
}
