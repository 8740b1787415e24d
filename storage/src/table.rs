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
        std::iter::once(&self.memtable as &dyn PartitionSource)
            .chain(self.flushing.iter().map(|m| m.as_ref() as &dyn PartitionSource))
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
            + self.flushing.iter().map(|m| m.partition_count()).sum::<usize>()
    }
}
