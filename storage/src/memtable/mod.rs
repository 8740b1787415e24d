//! Memtables: one table's recent writes on one shard, in memory, sorted for reads and
//! for flushing.
//!
//! A `BTreeMap<DecoratedKey, Partition>` rather than a concurrent skiplist: only the
//! owning shard ever touches it, so there is nothing to synchronize. Writes are merged
//! at apply time (one winner per cell, strongest tombstones kept) so memory grows with
//! distinct data, not with the number of writes. Memory use is tracked approximately on
//! every apply, which is what the flush policy needs.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::model::merge::SortedSource;
use crate::model::reconcile::size_isize;
use crate::model::{DecoratedKey, Mutation, Partition, PartitionRange};

#[cfg(test)]
mod table_model_test;

/// Fixed per-partition overhead assumed by the accounting (map node, key, headers).
const PARTITION_OVERHEAD_BYTES: usize = 96;

/// One table's in-memory writes.
#[derive(Debug, Clone, Default)]
pub struct Memtable {
    partitions: BTreeMap<DecoratedKey, Partition>,
    memory_bytes: usize,
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges a mutation in.
    pub fn apply(&mut self, m: &Mutation) {
        // Keys and values are copied out of the buffers they arrived in.
        let m = &m.to_owned_buffers();
        let delta = match self.partitions.get_mut(&m.key) {
            Some(partition) => partition.apply(m),
            None => {
                let mut partition = Partition::new();
                let size = partition.apply(m);
                self.partitions.insert(m.key.clone(), partition);
                size + size_isize(PARTITION_OVERHEAD_BYTES + m.key.key.len())
            }
        };
        self.memory_bytes = self.memory_bytes.saturating_add_signed(delta);
        // The recount is O(memtable); only unit tests afford it on every apply.
        #[cfg(test)]
        assert_eq!(
            self.memory_bytes,
            self.recount_bytes(),
            "memory accounting drifted"
        );
    }

    /// Approximate memory held, bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Number of partitions held.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// The partition with `key`, if any write touched it.
    pub fn get(&self, key: &DecoratedKey) -> Option<&Partition> {
        self.partitions.get(key)
    }

    /// Partitions in `range`, in ring order.
    pub fn range<'a>(
        &'a self,
        range: &'a PartitionRange,
    ) -> impl Iterator<Item = (&'a DecoratedKey, &'a Partition)> + 'a {
        self.partitions
            .range((range.seek_start(), Bound::Unbounded))
            .skip_while(|(k, _)| !range.after_start(k))
            .take_while(|(k, _)| range.before_end(k))
    }

    /// Every partition in ring order (for flushing).
    pub fn iter(&self) -> impl Iterator<Item = (&DecoratedKey, &Partition)> {
        self.partitions.iter()
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.partitions.clear();
        self.memory_bytes = 0;
    }

    #[cfg(test)]
    fn recount_bytes(&self) -> usize {
        self.partitions
            .iter()
            .map(|(k, p)| PARTITION_OVERHEAD_BYTES + k.key.len() + p.size_bytes())
            .sum()
    }
}

/// A sorted source of partitions for the read path. The active memtable and memtables
/// being flushed implement it today; SSTable readers will join them.
pub trait PartitionSource {
    /// This source's version of one partition.
    fn partition(&self, key: &DecoratedKey) -> Option<&Partition>;

    /// This source's partitions within `range`, in ring order.
    fn partitions<'a>(
        &'a self,
        range: &'a PartitionRange,
    ) -> SortedSource<'a, DecoratedKey, Partition>;
}

impl PartitionSource for Memtable {
    fn partition(&self, key: &DecoratedKey) -> Option<&Partition> {
        self.get(key)
    }

    fn partitions<'a>(
        &'a self,
        range: &'a PartitionRange,
    ) -> SortedSource<'a, DecoratedKey, Partition> {
        Box::new(self.range(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, Row, Tombstone};

    fn key(token: i64) -> DecoratedKey {
        DecoratedKey::new(token, format!("k{token}"))
    }

    #[test]
    fn apply_keeps_newest_and_accounts_memory() {
        let table = uuid::Uuid::nil();
        let mut memtable = Memtable::new();
        memtable.apply(
            &Mutation::new(table, key(1)).with_row("a", Row::new().cell(1, Cell::live(5, "new"))),
        );
        let after_first = memtable.memory_bytes();
        assert!(after_first > 0);
        memtable.apply(
            &Mutation::new(table, key(1)).with_row("a", Row::new().cell(1, Cell::live(4, "older"))),
        );
        assert_eq!(memtable.memory_bytes(), after_first);
        memtable.apply(&Mutation::partition_delete(
            table,
            key(2),
            Tombstone::new(1, 0),
        ));
        assert_eq!(memtable.partition_count(), 2);
        let row = &memtable.get(&key(1)).expect("written").rows["a".as_bytes()];
        assert_eq!(row.cells.values().next(), Some(&Cell::live(5, "new")));
    }

    #[test]
    fn range_respects_token_bounds() {
        let table = uuid::Uuid::nil();
        let mut memtable = Memtable::new();
        for t in [-5, 0, 0, 3, 7] {
            memtable.apply(&Mutation::partition_delete(
                table,
                key(t),
                Tombstone::new(1, 0),
            ));
        }
        let range = PartitionRange::tokens(Bound::Excluded(0), Bound::Included(7));
        let tokens: Vec<i64> = memtable.range(&range).map(|(k, _)| k.token).collect();
        assert_eq!(tokens, vec![3, 7]);
        let inverted = PartitionRange::tokens(Bound::Included(7), Bound::Included(0));
        assert_eq!(memtable.range(&inverted).count(), 0);
    }
}
