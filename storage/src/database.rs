//! One shard's set of tables: routes mutations and reads by table id and counts them
//! for the metrics layer.
//!
//! The database is owned by its shard and never shared, so counters are plain `Cell`s
//! (reads take `&self`) rather than atomics.

use std::cell::Cell;
use std::collections::HashMap;

use crate::error::StorageError;
use crate::model::{DecoratedKey, Mutation, PartitionRange, PartitionResult, SliceQuery, TableId};
use crate::table::Table;

/// Counters exported as metrics (monotonic since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatabaseStats {
    /// Mutations applied.
    pub mutations_applied: u64,
    /// Clustering rows (plus static rows) written.
    pub rows_written: u64,
    /// Partitions returned by reads and scans.
    pub partitions_read: u64,
    /// Live clustering rows returned by reads and scans.
    pub rows_read: u64,
}

/// One shard's tables.
#[derive(Debug, Default)]
pub struct Database {
    tables: HashMap<TableId, Table>,
    stats: Cell<DatabaseStats>,
}

impl Database {
    /// A shard with no tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty table.
    pub fn create_table(&mut self, id: TableId) -> Result<&mut Table, StorageError> {
        match self.tables.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => {
                Err(StorageError::TableAlreadyExists { table: id })
            }
            std::collections::hash_map::Entry::Vacant(slot) => Ok(slot.insert(Table::new(id))),
        }
    }

    /// Drops a table and its data, returning it (sealed memtables may still be flushing).
    pub fn drop_table(&mut self, id: TableId) -> Result<Table, StorageError> {
        self.tables
            .remove(&id)
            .ok_or(StorageError::UnknownTable { table: id })
    }

    /// The table with `id`.
    pub fn table(&self, id: TableId) -> Option<&Table> {
        self.tables.get(&id)
    }

    /// The table with `id`, mutably.
    pub fn table_mut(&mut self, id: TableId) -> Option<&mut Table> {
        self.tables.get_mut(&id)
    }

    /// Ids of all tables, in no particular order.
    pub fn table_ids(&self) -> impl Iterator<Item = TableId> + '_ {
        self.tables.keys().copied()
    }

    fn existing(&self, id: TableId) -> Result<&Table, StorageError> {
        self.tables
            .get(&id)
            .ok_or(StorageError::UnknownTable { table: id })
    }

    /// Applies a mutation to its table.
    pub fn apply(&mut self, m: &Mutation) -> Result<(), StorageError> {
        let table = self
            .tables
            .get_mut(&m.table)
            .ok_or(StorageError::UnknownTable { table: m.table })?;
        table.apply(m);
        let rows = m.rows.len() + usize::from(m.static_row.is_some());
        self.update_stats(|s| {
            s.mutations_applied += 1;
            s.rows_written += as_u64(rows);
        });
        Ok(())
    }

    /// Reads one partition of `table` (see [`Table::read_partition`]).
    pub fn read_partition(
        &self,
        table: TableId,
        key: &DecoratedKey,
        cmd: &SliceQuery,
        now_secs: i32,
    ) -> Result<Option<PartitionResult>, StorageError> {
        let result = self.existing(table)?.read_partition(key, cmd, now_secs);
        self.count_reads(result.as_slice());
        Ok(result)
    }

    /// Scans partitions of `table` (see [`Table::scan`]).
    pub fn scan(
        &self,
        table: TableId,
        range: &PartitionRange,
        cmd: &SliceQuery,
        partition_limit: usize,
        now_secs: i32,
    ) -> Result<Vec<PartitionResult>, StorageError> {
        let results = self
            .existing(table)?
            .scan(range, cmd, partition_limit, now_secs);
        self.count_reads(&results);
        Ok(results)
    }

    /// Drops all data of `table`.
    pub fn truncate(&mut self, table: TableId) -> Result<(), StorageError> {
        self.tables
            .get_mut(&table)
            .ok_or(StorageError::UnknownTable { table })?
            .truncate();
        Ok(())
    }

    /// Approximate memory held by all memtables, bytes.
    pub fn memory_bytes(&self) -> usize {
        self.tables.values().map(Table::memory_bytes).sum()
    }

    /// The counters so far.
    pub fn stats(&self) -> DatabaseStats {
        self.stats.get()
    }

    fn count_reads(&self, results: &[PartitionResult]) {
        let rows: usize = results.iter().map(|r| r.rows.len()).sum();
        self.update_stats(|s| {
            s.partitions_read += as_u64(results.len());
            s.rows_read += as_u64(rows);
        });
    }

    fn update_stats(&self, f: impl FnOnce(&mut DatabaseStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, Row};

    #[test]
    fn routes_by_table_and_counts() {
        let mut db = Database::new();
        let id = uuid::Uuid::from_u128(7);
        let key = DecoratedKey::new(1, "k");
        let m = Mutation::new(id, key.clone())
            .with_row("a", Row::with_marker(1, None).cell(1, Cell::live(1, "v")));
        assert_eq!(db.apply(&m), Err(StorageError::UnknownTable { table: id }));
        db.create_table(id).expect("new table");
        assert!(matches!(
            db.create_table(id),
            Err(StorageError::TableAlreadyExists { .. })
        ));
        db.apply(&m).expect("table exists");
        let read = db
            .read_partition(id, &key, &SliceQuery::full(), 0)
            .expect("table exists");
        assert_eq!(read.map(|r| r.rows.len()), Some(1));
        assert!(db.memory_bytes() > 0);
        assert_eq!(
            db.stats(),
            DatabaseStats {
                mutations_applied: 1,
                rows_written: 1,
                partitions_read: 1,
                rows_read: 1
            }
        );
        db.truncate(id).expect("table exists");
        assert_eq!(
            db.scan(id, &PartitionRange::full(), &SliceQuery::full(), 10, 0),
            Ok(vec![])
        );
        db.drop_table(id).expect("table exists");
        assert!(db.table(id).is_none());
    }
}
