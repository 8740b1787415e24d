//! Mutations: the unit of writing, one partition of one table.

use bytes::Bytes;

use super::cell::{Row, Tombstone};
use super::keys::{ClusteringRange, DecoratedKey};
use super::partition::keep_range_tombstone;
use super::reconcile::Keep;
use super::TableId;

/// A deletion of every clustering row in a range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    /// The clustering rows deleted.
    pub range: ClusteringRange,
    /// The deletion.
    pub tombstone: Tombstone,
}

impl RangeTombstone {
    /// Approximate memory footprint, bytes.
    pub fn size_bytes(&self) -> usize {
        let bound = |b: &Option<super::ClusteringBound>| b.as_ref().map_or(0, |b| b.prefix.len());
        64 + bound(&self.range.start) + bound(&self.range.end)
    }
}

/// Writes to one partition of one table: everything one statement (or one batch entry)
/// changes there. Rows may repeat a clustering key; applying merges them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// The table written.
    pub table: TableId,
    /// The partition written.
    pub key: DecoratedKey,
    /// Deletion of the whole partition.
    pub partition_deletion: Option<Tombstone>,
    /// Writes to static columns.
    pub static_row: Option<Row>,
    /// Writes to clustering rows, by encoded clustering key.
    pub rows: Vec<(Bytes, Row)>,
    /// Deletions of clustering ranges.
    pub range_tombstones: Vec<RangeTombstone>,
}

impl Mutation {
    /// An empty mutation of `key` in `table`.
    pub fn new(table: TableId, key: DecoratedKey) -> Self {
        Self {
            table,
            key,
            partition_deletion: None,
            static_row: None,
            rows: Vec::new(),
            range_tombstones: Vec::new(),
        }
    }

    /// A deletion of the whole partition.
    pub fn partition_delete(table: TableId, key: DecoratedKey, tombstone: Tombstone) -> Self {
        Self {
            partition_deletion: Some(tombstone),
            ..Self::new(table, key)
        }
    }

    /// Adds a clustering row (builder style).
    pub fn with_row(mut self, clustering: impl Into<Bytes>, row: Row) -> Self {
        self.rows.push((clustering.into(), row));
        self
    }

    /// Sets the static row (builder style).
    pub fn with_static_row(mut self, row: Row) -> Self {
        self.static_row = Some(row);
        self
    }

    /// Adds a range tombstone (builder style).
    pub fn with_range_tombstone(mut self, range: ClusteringRange, tombstone: Tombstone) -> Self {
        self.range_tombstones
            .push(RangeTombstone { range, tombstone });
        self
    }

    /// The row for `clustering`, added empty if the mutation has none yet.
    pub fn row_mut(&mut self, clustering: impl Into<Bytes>) -> &mut Row {
        let clustering = clustering.into();
        let index = match self.rows.iter().position(|(k, _)| *k == clustering) {
            Some(index) => index,
            None => {
                self.rows.push((clustering, Row::new()));
                self.rows.len() - 1
            }
        };
        &mut self.rows[index].1
    }

    /// The static row, added empty if absent.
    pub fn static_row_mut(&mut self) -> &mut Row {
        self.static_row.get_or_insert_with(Row::new)
    }

    /// Whether the mutation writes nothing.
    pub fn is_empty(&self) -> bool {
        self.partition_deletion.is_none()
            && self.static_row.is_none()
            && self.rows.is_empty()
            && self.range_tombstones.is_empty()
    }

    /// Approximate size, bytes (for memory accounting and batch limits).
    pub fn size_bytes(&self) -> usize {
        let content = super::partition::content_size(
            self.rows.iter().map(|(k, r)| (k, r)),
            self.static_row.as_ref(),
            &self.range_tombstones,
        );
        64 + self.key.key.len() + content
    }
}

impl Mutation {
    /// A copy whose keys and values live in allocations of their own.
    ///
    /// Mutations built from a request hold slices of the connection's read
    /// buffer; a memtable that kept them would pin whole buffers for every
    /// small value and account for a fraction of the memory it holds. The
    /// memtable copies the same way, but only what it keeps
    /// ([`super::Partition::apply_copying`]).
    pub fn to_owned_buffers(&self) -> Mutation {
        let copy = Keep::Copy;
        Mutation {
            table: self.table,
            key: DecoratedKey {
                token: self.key.token,
                key: copy.bytes(&self.key.key),
            },
            partition_deletion: self.partition_deletion,
            static_row: self.static_row.as_ref().map(|r| copy.row(r)),
            rows: self
                .rows
                .iter()
                .map(|(k, r)| (copy.bytes(k), copy.row(r)))
                .collect(),
            range_tombstones: self
                .range_tombstones
                .iter()
                .map(|rt| keep_range_tombstone(rt, copy))
                .collect(),
        }
    }
}

#[cfg(test)]
mod owned_buffer_tests {
    use super::*;
    use crate::model::{Cell, CellKey};

    #[test]
    fn owned_copies_share_no_memory_with_the_request_buffer() {
        let buffer = Bytes::from(vec![7u8; 64 * 1024]);
        let value = buffer.slice(100..200);
        let key = buffer.slice(0..4);
        let row = Row::new().cell(1, Cell::live(5, value.clone()));
        let m = Mutation::new(uuid::Uuid::nil(), DecoratedKey::new(1, key))
            .with_row(buffer.slice(10..12), row);
        let owned = m.to_owned_buffers();
        assert_eq!(owned, m, "same contents");
        let range = buffer.as_ptr_range();
        let inside = |b: &Bytes| range.contains(&b.as_ptr());
        assert!(!inside(&owned.key.key));
        let (clustering, row) = &owned.rows[0];
        assert!(!inside(clustering));
        match &row.cells[&CellKey::atomic(1)].kind {
            crate::model::CellKind::Live { value, .. } => assert!(!inside(value)),
            other => panic!("live cell expected, got {other:?}"),
        }
    }
}
