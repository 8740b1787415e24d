//! Memtables: one table's recent writes on one shard, in memory, sorted for reads and
//! for flushing.
//!
//! Partitions live in a hash map keyed by decorated key, beside a `BTreeSet` of the
//! keys in ring order: point writes and reads (the common case) find their partition
//! in one or two cache misses instead of a B-tree walk over every level, and scans and
//! flushes walk the ordered set. No concurrent skiplist: only the owning shard ever
//! touches a memtable, so there is nothing to synchronize. Writes are merged
//! at apply time (one winner per cell, strongest tombstones kept) so memory grows with
//! distinct data, not with the number of writes. Memory use is tracked approximately on
//! every apply, which is what the flush policy needs.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Bound;

use crate::model::merge::SortedSource;
use crate::model::reconcile::size_isize;
use crate::model::{DecoratedKey, Mutation, Partition, PartitionRange};

#[cfg(test)]
mod table_model_test;

/// Fixed per-partition overhead assumed by the accounting (hash entry, ordered-set
/// node, key handles, headers).
const PARTITION_OVERHEAD_BYTES: usize = 160;

/// Hashes a decorated key by its token alone: the token is already a
/// well-mixed 64-bit hash of the key, and keys with equal tokens are told
/// apart by equality.
#[derive(Debug, Default)]
struct TokenHasher {
    hash: u64,
    seen_token: bool,
}

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write_i64(&mut self, token: i64) {
        if !self.seen_token {
            self.hash = token as u64;
            self.seen_token = true;
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for what follows the token (the key bytes), which
        // equality settles; mix them in only if no token came first.
        if !self.seen_token {
            for byte in bytes {
                self.hash = (self.hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
}

/// One table's in-memory writes.
#[derive(Debug, Clone, Default)]
pub struct Memtable {
    partitions: HashMap<DecoratedKey, Partition, BuildHasherDefault<TokenHasher>>,
    /// Every key of `partitions`, in ring order.
    order: BTreeSet<DecoratedKey>,
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
                self.order.insert(m.key.clone());
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
        self.order
            .range((range.seek_start(), Bound::Unbounded))
            .skip_while(|k| !range.after_start(k))
            .take_while(|k| range.before_end(k))
            .map(|k| (k, self.partition_of(k)))
    }

    /// Every partition in ring order (for flushing).
    pub fn iter(&self) -> impl Iterator<Item = (&DecoratedKey, &Partition)> {
        self.order.iter().map(|k| (k, self.partition_of(k)))
    }

    fn partition_of(&self, key: &DecoratedKey) -> &Partition {
        self.partitions
            .get(key)
            .expect("every key in the ring order has its partition")
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.partitions.clear();
        self.order.clear();
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
