//! One shard's set of tables: routes mutations by table id, hands tables to the async
//! read and flush paths, and counts for the metrics layer.
//!
//! The database is owned by its shard and never shared, so counters are plain `Cell`s
//! (reads take `&self`) rather than atomics. Tables are `Rc`s: an async read or flush
//! holds its table without holding the database.

use std::cell::Cell;
use std::rc::Rc;

use crate::commitlog::ReplayPosition;
use crate::error::StorageError;
use crate::model::{Mutation, PartitionResult, TableId};
use crate::table::{MemtableMemory, Table};

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
    /// Looked up on every request: a fast hash (ids are server-made).
    tables: rustc_hash::FxHashMap<TableId, Rc<Table>>,
    stats: Cell<DatabaseStats>,
    /// What every table's memtables hold, kept by the tables.
    memory: Rc<MemtableMemory>,
}

impl Database {
    /// A shard with no tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty table held in memory only.
    pub fn create_table(&mut self, id: TableId) -> Result<Rc<Table>, StorageError> {
        self.add_table(Table::new(id))
    }

    /// Adds a table opened elsewhere (e.g. with its SSTables by [`Table::open`]).
    pub fn add_table(&mut self, mut table: Table) -> Result<Rc<Table>, StorageError> {
        let id = table.id();
        match self.tables.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => {
                Err(StorageError::TableAlreadyExists { table: id })
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                table.share_memory_account(Rc::clone(&self.memory));
                Ok(Rc::clone(slot.insert(Rc::new(table))))
            }
        }
    }

    /// Removes a table, returning it so the caller can delete its data
    /// ([`Table::drop_data`]); reads and flushes still holding it finish on it.
    pub fn drop_table(&mut self, id: TableId) -> Result<Rc<Table>, StorageError> {
        self.tables
            .remove(&id)
            .ok_or(StorageError::UnknownTable { table: id })
    }

    /// The table with `id`.
    pub fn table(&self, id: TableId) -> Option<&Rc<Table>> {
        self.tables.get(&id)
    }

    /// The table with `id`, or `UnknownTable`.
    pub fn existing(&self, id: TableId) -> Result<Rc<Table>, StorageError> {
        self.tables
            .get(&id)
            .cloned()
            .ok_or(StorageError::UnknownTable { table: id })
    }

    /// Every table, in no particular order.
    pub fn tables(&self) -> impl Iterator<Item = &Rc<Table>> + '_ {
        self.tables.values()
    }

    /// Ids of all tables, in no particular order.
    pub fn table_ids(&self) -> impl Iterator<Item = TableId> + '_ {
        self.tables.keys().copied()
    }

    /// Applies a mutation, logged at `position`, to its table.
    pub fn apply(
        &self,
        m: &Mutation,
        position: Option<ReplayPosition>,
    ) -> Result<(), StorageError> {
        let table = self
            .tables
            .get(&m.table)
            .ok_or(StorageError::UnknownTable { table: m.table })?;
        table.apply(m, position);
        let rows = m.rows.len() + usize::from(m.static_row.is_some());
        self.update_stats(|s| {
            s.mutations_applied += 1;
            s.rows_written += as_u64(rows);
        });
        Ok(())
    }

    /// Approximate memory held by all memtables, bytes (O(1)).
    pub fn memory_bytes(&self) -> usize {
        self.checked(self.memory.total_bytes(), Table::memory_bytes)
    }

    /// Bytes held by every table's active memtable (O(1)).
    pub fn active_memory_bytes(&self) -> usize {
        self.checked(self.memory.active_bytes(), Table::active_memory_bytes)
    }

    /// `account`, checked in debug builds against the sum of `per_table`
    /// over the tables: at least that (a dropped table still being flushed
    /// keeps its share until it is freed), and never wrapped below zero.
    fn checked(&self, account: usize, per_table: fn(&Table) -> usize) -> usize {
        debug_assert!(
            (self.tables.values().map(|t| per_table(t)).sum::<usize>()..usize::MAX / 2)
                .contains(&account),
            "memtable memory account drifted"
        );
        account
    }

    /// The oldest commitlog position whose write is in no SSTable yet, over all tables.
    pub fn min_dirty_position(&self) -> Option<ReplayPosition> {
        self.tables
            .values()
            .filter_map(|t| t.min_dirty_position())
            .min()
    }

    /// The counters so far.
    pub fn stats(&self) -> DatabaseStats {
        self.stats.get()
    }

    /// Counts what a read or scan returned.
    pub fn count_reads(&self, results: &[PartitionResult]) {
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
    use crate::model::{Cell, DecoratedKey, Row, SliceQuery};

    #[test]
    fn the_memory_account_follows_every_memtable_change() {
        let mut db = Database::new();
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let write = |table, key: &str| {
            Mutation::new(table, DecoratedKey::new(1, key.to_string()))
                .with_row("r", Row::new().cell(1, Cell::live(1, "value")))
        };
        db.create_table(a).expect("a");
        db.create_table(b).expect("b");
        let sums = |db: &Database| {
            let active: usize = db.tables().map(|t| t.active_memory_bytes()).sum();
            let total: usize = db.tables().map(|t| t.memory_bytes()).sum();
            (active, total)
        };
        let account = |db: &Database| (db.active_memory_bytes(), db.memory_bytes());
        for key in ["x", "y", "z"] {
            db.apply(&write(a, key), None).expect("a");
            db.apply(&write(b, key), None).expect("b");
        }
        assert_eq!(account(&db), sums(&db));
        assert!(db.memory_bytes() > 0);
        let table_a = db.existing(a).expect("a");
        assert!(table_a.seal_memtable());
        db.apply(&write(a, "w"), None).expect("a");
        assert_eq!(account(&db), sums(&db));
        assert!(
            db.active_memory_bytes() < db.memory_bytes(),
            "a sealed memtable"
        );
        table_a.clear_memtables();
        assert_eq!(account(&db), sums(&db));
        drop(table_a);
        let dropped = db.drop_table(b).expect("b");
        assert!(db.memory_bytes() > 0, "b is not freed while held");
        drop(dropped);
        assert_eq!(account(&db), (0, 0));
    }

    #[test]
    fn routes_by_table_and_counts() {
        let mut db = Database::new();
        let id = uuid::Uuid::from_u128(7);
        let key = DecoratedKey::new(1, "k");
        let m = Mutation::new(id, key.clone())
            .with_row("a", Row::with_marker(1, None).cell(1, Cell::live(1, "v")));
        assert_eq!(
            db.apply(&m, None),
            Err(StorageError::UnknownTable { table: id })
        );
        db.create_table(id).expect("new table");
        assert!(matches!(
            db.create_table(id),
            Err(StorageError::TableAlreadyExists { .. })
        ));
        let position = ReplayPosition {
            segment_id: 3,
            offset: 10,
        };
        db.apply(&m, Some(position)).expect("table exists");
        assert_eq!(db.min_dirty_position(), Some(position));
        let table = db.existing(id).expect("table exists");
        let read =
            futures_lite::future::block_on(table.read_partition(&key, &SliceQuery::full(), 0))
                .expect("memory read");
        db.count_reads(read.as_slice());
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
        db.drop_table(id).expect("table exists");
        assert!(db.table(id).is_none());
    }
}
