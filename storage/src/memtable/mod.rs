//! Memtables: one table's recent writes on one shard, in memory, sorted for reads and
//! for flushing.
//!
//! Partitions live in a hash map keyed by token and key bytes (short keys inline in
//! the entry), beside a `BTreeSet` of the keys in ring order: point writes and reads (the common case) find their partition
//! in one or two cache misses instead of a B-tree walk over every level, and scans and
//! flushes walk the ordered set. No concurrent skiplist: only the owning shard ever
//! touches a memtable, so there is nothing to synchronize. Writes are merged
//! at apply time (one winner per cell, strongest tombstones kept) so memory grows with
//! distinct data, not with the number of writes. Memory use is tracked approximately on
//! every apply, which is what the flush policy needs.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use bytes::Bytes;
use std::ops::Bound;

use crate::model::merge::SortedSource;
use crate::model::reconcile::size_isize;
use crate::model::{DecoratedKey, Mutation, Partition, PartitionRange};

#[cfg(test)]
mod table_model_test;

/// Fixed per-partition overhead assumed by the accounting: the hash map's
/// entry (the key and the partition inline, about 320 bytes, at the map's
/// typical load factor), the ring-order set's share of a node, the key's copy
/// and allocator headers. Measured: 100 000 one-row partitions of 100-byte
/// values took about 700 bytes each of resident memory.
const PARTITION_OVERHEAD_BYTES: usize = 480;

/// Hashes a [`SlotKey`] by its token alone: the token is already a
/// well-mixed 64-bit hash of the key, and keys with equal tokens are told
/// apart by equality.
#[derive(Debug, Default)]
struct TokenHasher {
    hash: u64,
}

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write_i64(&mut self, token: i64) {
        self.hash = token as u64;
    }

    fn write(&mut self, bytes: &[u8]) {
        // `SlotKey` hashes only its token; mix anything else in all the same.
        for byte in bytes {
            self.hash = (self.hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Partition keys up to this many bytes are kept inside the hash map's entry.
const INLINE_KEY_BYTES: usize = 22;

/// A partition's key as the hash map holds it. Short keys (every key of a
/// single-column numeric or uuid partition key) live inside the entry, so
/// the equality check of a point lookup reads the entry it already loaded
/// rather than missing the cache on the key's separate allocation.
#[derive(Debug, Clone)]
struct SlotKey {
    token: i64,
    bytes: SlotKeyBytes,
}

#[derive(Debug, Clone)]
enum SlotKeyBytes {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    Shared(Bytes),
}

impl SlotKey {
    /// The map key of `key`; copies a short key, shares a long one.
    fn of(key: &DecoratedKey) -> Self {
        let bytes = match u8::try_from(key.key.len()) {
            Ok(len) if usize::from(len) <= INLINE_KEY_BYTES => {
                let mut inline = [0; INLINE_KEY_BYTES];
                inline[..key.key.len()].copy_from_slice(&key.key);
                SlotKeyBytes::Inline { len, bytes: inline }
            }
            _ => SlotKeyBytes::Shared(key.key.clone()),
        };
        SlotKey {
            token: key.token,
            bytes,
        }
    }

    fn key_bytes(&self) -> &[u8] {
        match &self.bytes {
            SlotKeyBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            SlotKeyBytes::Shared(bytes) => bytes,
        }
    }
}

impl PartialEq for SlotKey {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token && self.key_bytes() == other.key_bytes()
    }
}

impl Eq for SlotKey {}

impl Hash for SlotKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_i64(self.token);
    }
}

/// One table's in-memory writes.
#[derive(Debug, Clone, Default)]
pub struct Memtable {
    partitions: HashMap<SlotKey, Partition, BuildHasherDefault<TokenHasher>>,
    /// Every key of `partitions`, in ring order.
    order: BTreeSet<DecoratedKey>,
    memory_bytes: usize,
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges a mutation in. The keys and values the memtable keeps are
    /// copied out of the mutation's buffers (request buffers, typically), once.
    pub fn apply(&mut self, m: &Mutation) {
        let slot = SlotKey::of(&m.key);
        let delta = match self.partitions.get_mut(&slot) {
            Some(partition) => partition.apply_copying(m),
            None => {
                let mut partition = Partition::new();
                let size = partition.apply_copying(m);
                let key = DecoratedKey {
                    token: m.key.token,
                    key: Bytes::copy_from_slice(&m.key.key),
                };
                let slot = match slot.bytes {
                    SlotKeyBytes::Inline { .. } => slot,
                    SlotKeyBytes::Shared(_) => SlotKey::of(&key),
                };
                self.partitions.insert(slot, partition);
                let key_len = key.key.len();
                self.order.insert(key);
                size + size_isize(PARTITION_OVERHEAD_BYTES + key_len)
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
        self.partitions.get(&SlotKey::of(key))
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
        self.get(key)
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
            .map(|(k, p)| PARTITION_OVERHEAD_BYTES + k.key_bytes().len() + p.size_bytes())
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

    fn stored_value(memtable: &Memtable, key: &DecoratedKey) -> Bytes {
        let row = &memtable.get(key).expect("written").rows[&b""[..]];
        match &row.cells[&crate::model::CellKey::atomic(1)].kind {
            crate::model::CellKind::Live { value, .. } => value.clone(),
            other => panic!("live cell expected, got {other:?}"),
        }
    }

    #[test]
    fn keeps_copies_not_the_request_buffer_and_never_overwrites_a_shared_value() {
        let table = uuid::Uuid::nil();
        let buffer = Bytes::from(vec![7u8; 4096]);
        let inside = |b: &Bytes| buffer.as_ptr_range().contains(&b.as_ptr());
        let short = DecoratedKey::new(1, buffer.slice(0..8));
        let long = DecoratedKey::new(1, buffer.slice(8..48));
        let mut memtable = Memtable::new();
        for (key, ts) in [(&short, 1), (&long, 1)] {
            let row = Row::new().cell(1, Cell::live(ts, buffer.slice(100..200)));
            memtable.apply(&Mutation::new(table, key.clone()).with_row(Bytes::new(), row));
        }
        assert_eq!(memtable.partition_count(), 2, "equal tokens, distinct keys");
        for (key, _) in memtable.iter() {
            assert!(!inside(&key.key));
        }
        let first = stored_value(&memtable, &short);
        assert!(!inside(&first));
        // A reader holds the stored value while a newer one of the same size
        // arrives: the reader's copy must not change.
        let newer = Bytes::from(vec![9u8; 100]);
        let row = Row::new().cell(1, Cell::live(2, newer.clone()));
        memtable.apply(&Mutation::new(table, short.clone()).with_row(Bytes::new(), row));
        assert_eq!(first, buffer.slice(100..200));
        drop(first);
        assert_eq!(stored_value(&memtable, &short), newer);
        // Nobody holds it now: a third version overwrites it in place.
        let before = stored_value(&memtable, &short).as_ptr();
        let third = Bytes::from(vec![3u8; 100]);
        let row = Row::new().cell(1, Cell::live(3, third.clone()));
        memtable.apply(&Mutation::new(table, short.clone()).with_row(Bytes::new(), row));
        assert_eq!(stored_value(&memtable, &short), third);
        assert_eq!(stored_value(&memtable, &short).as_ptr(), before, "reused");
        assert_eq!(
            stored_value(&memtable, &long),
            buffer.slice(100..200),
            "the other key of the token is untouched"
        );
        let expired = Cell::expiring(4, vec![1u8; 100], crate::model::Expiry::new(5, 10));
        let row = Row::new().cell(1, expired.clone());
        memtable.apply(&Mutation::new(table, short.clone()).with_row(Bytes::new(), row));
        let row = &memtable.get(&short).expect("written").rows[&b""[..]];
        assert_eq!(row.cells[&crate::model::CellKey::atomic(1)], expired);
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
