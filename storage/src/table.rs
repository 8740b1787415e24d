//! One table on one shard: where its writes go and how its reads merge every source.
//!
//! Writes go to the active memtable. A full memtable is sealed (moved to the list of
//! memtables being flushed, shared with the flush task through an `Rc`) and replaced by
//! an empty one; once its SSTable is durable the flush task hands it back and it is
//! dropped. Reads merge every source that may hold the partition (the active memtable,
//! the sealed ones, later the SSTables) through [`crate::model::query`], which is
//! agnostic of where a version came from.

use std::rc::Rc;

use crate::memtable::{Memtable, PartitionSource};
use crate::model::merge::MergeByKey;
use crate::model::query::read_partition;
use crate::model::{DecoratedKey, Mutation, PartitionRange, PartitionResult, SliceQuery, TableId};

/// One table's data on one shard.
#[derive(Debug)]
pub struct Table {
    id: TableId,
    memtable: Memtable,
    /// Sealed memtables still being flushed, oldest first.
    flushing: Vec<Rc<Memtable>>,
}

impl Table {
    /// An empty table.
    pub fn new(id: TableId) -> Self {
        Self {
            id,
            memtable: Memtable::new(),
            flushing: Vec::new(),
        }
    }

    /// The table's id.
    pub fn id(&self) -> TableId {
        self.id
    }

    /// Applies a mutation of this table.
    pub fn apply(&mut self, m: &Mutation) {
        // Writing another table's mutation here would corrupt both tables.
        assert_eq!(m.table, self.id, "mutation routed to the wrong table");
        self.memtable.apply(m);
    }

    /// The active memtable.
    pub fn memtable(&self) -> &Memtable {
        &self.memtable
    }

    /// Memtables sealed and not yet flushed, oldest first.
    pub fn flushing(&self) -> &[Rc<Memtable>] {
        &self.flushing
    }

    /// Seals the active memtable for flushing and starts a new one. The sealed memtable
    /// keeps serving reads until [`Self::flush_finished`] is called with it.
    pub fn seal_memtable(&mut self) -> Rc<Memtable> {
        let sealed = Rc::new(std::mem::take(&mut self.memtable));
        self.flushing.push(Rc::clone(&sealed));
        sealed
    }

    /// Forgets a sealed memtable once its data is durable elsewhere. Returns whether it
    /// was still listed (a truncate in between drops it early).
    pub fn flush_finished(&mut self, sealed: &Rc<Memtable>) -> bool {
        let before = self.flushing.len();
        self.flushing.retain(|m| !Rc::ptr_eq(m, sealed));
        self.flushing.len() != before
    }

    /// Every source a read must merge.
    fn sources(&self) -> impl Iterator<Item = &dyn PartitionSource> {
        std::iter::once(&self.memtable as &dyn PartitionSource).chain(
            self.flushing
                .iter()
                .map(|m| m.as_ref() as &dyn PartitionSource),
        )
    }

    /// Reads one partition's live data, or `None` if it has none in the slice.
    pub fn read_partition(
        &self,
        key: &DecoratedKey,
        cmd: &SliceQuery,
        now_secs: i32,
    ) -> Option<PartitionResult> {
        let versions: Vec<_> = self.sources().filter_map(|s| s.partition(key)).collect();
        if versions.is_empty() {
            return None;
        }
        read_partition(&versions, key, cmd, now_secs)
    }

    /// Reads the live partitions of `range` in ring order, at most `partition_limit` of
    /// them and at most `cmd.row_limit` rows in all. Partitions with no live data in the
    /// slice are skipped and count toward neither limit.
    pub fn scan(
        &self,
        range: &PartitionRange,
        cmd: &SliceQuery,
        partition_limit: usize,
        now_secs: i32,
    ) -> Vec<PartitionResult> {
        let sources = self.sources().map(|s| s.partitions(range)).collect();
        let mut remaining = cmd.clone();
        let mut out = Vec::new();
        for (key, versions) in MergeByKey::new(sources, false) {
            if out.len() >= partition_limit || remaining.row_limit == 0 {
                break;
            }
            if let Some(result) = read_partition(&versions, key, &remaining, now_secs) {
                let counted = result.counted_rows(&remaining);
                remaining.row_limit = remaining.row_limit.saturating_sub(counted);
                out.push(result);
            }
        }
        out
    }

    /// Drops all data, including memtables being flushed.
    pub fn truncate(&mut self) {
        self.memtable.clear();
        self.flushing.clear();
    }

    /// Approximate memory held by the active and sealed memtables, bytes.
    pub fn memory_bytes(&self) -> usize {
        self.sources_memory().sum()
    }

    fn sources_memory(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.memtable.memory_bytes())
            .chain(self.flushing.iter().map(|m| m.memory_bytes()))
    }

    /// Partitions held by the active and sealed memtables (a partition present in several
    /// is counted in each).
    pub fn partition_count(&self) -> usize {
        self.memtable.partition_count()
            + self
                .flushing
                .iter()
                .map(|m| m.partition_count())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use bytes::Bytes;

    use super::*;
    use crate::model::{Cell, ClusteringBound, ClusteringRange, Expiry, Row, Tombstone};

    const T: TableId = uuid::Uuid::from_u128(1);

    fn key(token: i64) -> DecoratedKey {
        DecoratedKey::new(token, format!("k{token}"))
    }

    fn m(token: i64) -> Mutation {
        Mutation::new(T, key(token))
    }

    fn clusterings(table: &Table, token: i64, cmd: &SliceQuery, now: i32) -> Vec<Bytes> {
        table
            .read_partition(&key(token), cmd, now)
            .map(|p| p.rows.into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default()
    }

    fn table_with(ms: &[Mutation]) -> Table {
        let mut table = Table::new(T);
        for m in ms {
            table.apply(m);
        }
        table
    }

    #[test]
    fn row_is_live_by_marker_or_by_cell() {
        let table = table_with(&[
            m(1).with_row("a", Row::with_marker(1, None)),
            m(1).with_row("b", Row::new().cell(1, Cell::live(1, "v"))),
            m(1).with_row("c", Row::new().cell(1, Cell::dead(1, 0))),
        ]);
        assert_eq!(
            clusterings(&table, 1, &SliceQuery::full(), 0),
            vec!["a", "b"]
        );
    }

    #[test]
    fn partition_deletion_shadows_older_and_equal_only() {
        let table = table_with(&[
            m(1).with_row("a", Row::with_marker(5, None))
                .with_static_row(Row::new().cell(9, Cell::live(5, "s"))),
            m(1).with_row("b", Row::with_marker(6, None)),
            Mutation::partition_delete(T, key(1), Tombstone::new(5, 0)),
        ]);
        let result = table
            .read_partition(&key(1), &SliceQuery::full(), 0)
            .expect("b is live");
        assert!(result.static_row.is_none());
        assert_eq!(result.rows.len(), 1);
        assert_eq!(result.rows[0].0, "b");
    }

    #[test]
    fn row_deletion_shadows_marker_and_cells() {
        let table = table_with(&[
            m(1).with_row(
                "a",
                Row::with_marker(1, None)
                    .cell(1, Cell::live(1, "x"))
                    .cell(2, Cell::live(3, "y")),
            ),
            m(1).with_row("a", Row::deleted(Tombstone::new(2, 0))),
        ]);
        let result = table
            .read_partition(&key(1), &SliceQuery::full(), 0)
            .expect("cell 2 survives");
        let row = &result.rows[0].1;
        assert!(row.marker.is_none());
        assert!(row.cell(1).is_none());
        assert_eq!(row.cell(2).map(|c| c.value.clone()), Some(Bytes::from("y")));
    }

    #[test]
    fn range_tombstone_shadows_rows_in_prefix_range() {
        let rows = ["a\x01", "b\x01", "b\x02", "c\x01"];
        let mut ms: Vec<Mutation> = rows
            .iter()
            .map(|r| m(1).with_row(*r, Row::with_marker(1, None)))
            .collect();
        // DELETE WHERE ck1 > 'a' AND ck1 <= 'b'.
        let range = ClusteringRange::new(
            Some(ClusteringBound::exclusive("a")),
            Some(ClusteringBound::inclusive("b")),
        );
        ms.push(m(1).with_range_tombstone(range, Tombstone::new(1, 0)));
        let table = table_with(&ms);
        assert_eq!(
            clusterings(&table, 1, &SliceQuery::full(), 0),
            vec!["a\x01", "c\x01"]
        );
    }

    #[test]
    fn complex_deletion_shadows_older_elements() {
        let table = table_with(&[
            m(1).with_row(
                "a",
                Row::new()
                    .element(3, "x", Cell::live(1, "1"))
                    .element(3, "y", Cell::live(1, "2")),
            ),
            // Overwrite of the collection: delete at ts-1, then write new elements at ts.
            m(1).with_row(
                "a",
                Row::new()
                    .complex_deletion(3, Tombstone::new(1, 0))
                    .element(3, "z", Cell::live(2, "3")),
            ),
        ]);
        let result = table
            .read_partition(&key(1), &SliceQuery::full(), 0)
            .expect("live");
        let elements: Vec<_> = result.rows[0]
            .1
            .elements(3)
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(elements, vec![Bytes::from("z")]);
    }

    #[test]
    fn expired_cell_is_a_tombstone_that_shadows_older_values() {
        let table = table_with(&[
            m(1).with_row("a", Row::new().cell(1, Cell::live(1, "old"))),
            m(1).with_row(
                "a",
                Row::new().cell(1, Cell::expiring(2, "new", Expiry::new(10, 100))),
            ),
        ]);
        assert_eq!(clusterings(&table, 1, &SliceQuery::full(), 109), vec!["a"]);
        assert!(table
            .read_partition(&key(1), &SliceQuery::full(), 110)
            .is_none());
    }

    #[test]
    fn equal_timestamp_and_expiry_prefers_the_smaller_ttl() {
        let written_at_10 = Expiry {
            ttl: 5,
            expires_at: 15,
        };
        let written_at_12 = Expiry {
            ttl: 3,
            expires_at: 15,
        };
        for order in [
            [written_at_10, written_at_12],
            [written_at_12, written_at_10],
        ] {
            let ms: Vec<Mutation> = order
                .iter()
                .map(|e| m(1).with_row("a", Row::new().cell(1, Cell::expiring(1, "v", *e))))
                .collect();
            let table = table_with(&ms);
            let result = table
                .read_partition(&key(1), &SliceQuery::full(), 0)
                .expect("live");
            assert_eq!(
                result.rows[0].1.cell(1).and_then(|c| c.expiry),
                Some(written_at_12)
            );
        }
    }

    #[test]
    fn expired_marker_leaves_row_to_its_cells() {
        let table = table_with(&[m(1).with_row(
            "a",
            Row::with_marker(1, Some(Expiry::new(10, 0))).cell(1, Cell::live(2, "v")),
        )]);
        let row = table
            .read_partition(&key(1), &SliceQuery::full(), 20)
            .expect("cell is live")
            .rows[0]
            .1
            .clone();
        assert!(row.marker.is_none());
        assert!(row.cell(1).is_some());
    }

    #[test]
    fn static_only_partition_is_returned_and_counted_once() {
        let table = table_with(&[
            m(1).with_static_row(Row::new().cell(9, Cell::live(1, "s"))),
            m(2).with_row("a", Row::with_marker(1, None)),
        ]);
        let result = table
            .read_partition(&key(1), &SliceQuery::full(), 0)
            .expect("static is live");
        assert!(result.rows.is_empty() && result.static_row.is_some());
        let cmd = SliceQuery {
            row_limit: 1,
            ..SliceQuery::full()
        };
        let scanned = table.scan(&PartitionRange::full(), &cmd, 10, 0);
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].key, key(1));
    }

    #[test]
    fn reversed_multi_range_slice_with_limit() {
        let ms: Vec<Mutation> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|r| m(1).with_row(*r, Row::with_marker(1, None)))
            .collect();
        let table = table_with(&ms);
        let cmd = SliceQuery {
            ranges: vec![
                ClusteringRange::prefix("a"),
                ClusteringRange::new(Some(ClusteringBound::inclusive("c")), None),
            ],
            reversed: true,
            row_limit: 3,
            columns: None,
        };
        assert_eq!(clusterings(&table, 1, &cmd, 0), vec!["e", "d", "c"]);
        let forward = SliceQuery {
            reversed: false,
            ..cmd
        };
        assert_eq!(clusterings(&table, 1, &forward, 0), vec!["a", "c", "d"]);
    }

    #[test]
    fn column_selection_trims_cells_not_liveness() {
        let table = table_with(&[m(1).with_row(
            "a",
            Row::new()
                .cell(1, Cell::live(1, "x"))
                .cell(2, Cell::live(1, "y")),
        )]);
        let cmd = SliceQuery {
            columns: Some(vec![2]),
            ..SliceQuery::full()
        };
        let row = table.read_partition(&key(1), &cmd, 0).expect("live").rows[0]
            .1
            .clone();
        assert_eq!(row.cells.len(), 1);
        let cmd = SliceQuery {
            columns: Some(vec![3]),
            ..SliceQuery::full()
        };
        assert!(table
            .read_partition(&key(1), &cmd, 0)
            .expect("still live")
            .rows[0]
            .1
            .cells
            .is_empty());
    }

    #[test]
    fn scan_honours_token_bounds_limits_and_skips_dead_partitions() {
        let mut ms: Vec<Mutation> = (0..6)
            .map(|t| m(t).with_row("a", Row::with_marker(1, None)))
            .collect();
        ms.push(Mutation::partition_delete(T, key(2), Tombstone::new(1, 0)));
        let table = table_with(&ms);
        let range = PartitionRange::tokens(Bound::Excluded(0), Bound::Unbounded);
        let tokens =
            |ps: Vec<PartitionResult>| ps.into_iter().map(|p| p.key.token).collect::<Vec<_>>();
        assert_eq!(
            tokens(table.scan(&range, &SliceQuery::full(), 3, 0)),
            vec![1, 3, 4]
        );
        let cmd = SliceQuery {
            row_limit: 2,
            ..SliceQuery::full()
        };
        assert_eq!(tokens(table.scan(&range, &cmd, 10, 0)), vec![1, 3]);
    }

    #[test]
    fn sealed_memtables_are_merged_until_flushed() {
        let mut table =
            table_with(&[m(1).with_row("a", Row::new().cell(1, Cell::live(2, "sealed")))]);
        let sealed = table.seal_memtable();
        table.apply(&m(1).with_row("a", Row::new().cell(1, Cell::live(1, "older"))));
        table.apply(&m(1).with_row("b", Row::with_marker(1, None)));
        let result = table
            .read_partition(&key(1), &SliceQuery::full(), 0)
            .expect("live");
        assert_eq!(
            result.rows[0].1.cell(1).map(|c| c.value.clone()),
            Some(Bytes::from("sealed"))
        );
        assert_eq!(result.rows.len(), 2);
        assert_eq!(
            table
                .scan(&PartitionRange::full(), &SliceQuery::full(), 10, 0)
                .len(),
            1
        );
        assert!(table.flush_finished(&sealed));
        assert!(!table.flush_finished(&sealed));
        table.truncate();
        assert_eq!(table.memory_bytes(), 0);
        assert_eq!(table.partition_count(), 0);
    }
}
