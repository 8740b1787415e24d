//! One partition's merged writes: what a memtable holds per key, and the unit the read
//! path merges across sources.

use bytes::Bytes;

use super::cell::{Row, Tombstone};
use super::keys::{ClusteringBound, ClusteringRange};
use super::mutation::{Mutation, RangeTombstone};
use super::reconcile::{max_tombstone, merge_row_as, size_isize, Keep};
use super::sorted_map::SortedMap;

/// All versions of one partition's data held by one source, already reconciled cell by
/// cell. Shadowed data is kept (reads drop it), so a source is a plain union of writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partition {
    /// Partition tombstone.
    pub deletion: Option<Tombstone>,
    /// Static row.
    pub static_row: Option<Box<Row>>,
    /// Clustering rows by encoded clustering key.
    pub rows: SortedMap<Bytes, Row>,
    /// Range tombstones, one per distinct range (the strongest tombstone is kept).
    pub range_tombstones: Vec<RangeTombstone>,
}

impl Partition {
    /// An empty partition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges a mutation in; returns the change in [`Self::size_bytes`].
    pub fn apply(&mut self, m: &Mutation) -> isize {
        self.apply_as(m, Keep::Share)
    }

    /// Merges a mutation in like [`Self::apply`], but copies every key and
    /// value it keeps into an allocation of its own, so the partition pins
    /// none of the mutation's buffers (a memtable's partitions must not keep
    /// a connection's read buffer alive). Only what wins is copied, once.
    pub fn apply_copying(&mut self, m: &Mutation) -> isize {
        self.apply_as(m, Keep::Copy)
    }

    fn apply_as(&mut self, m: &Mutation, keep: Keep) -> isize {
        self.deletion = max_tombstone(self.deletion, m.partition_deletion);
        let mut delta = 0;
        if let Some(row) = &m.static_row {
            delta += merge_into(&mut self.static_row, row, keep);
        }
        for (clustering, row) in &m.rows {
            delta += self.apply_row(clustering, row, keep);
        }
        for rt in &m.range_tombstones {
            delta += self.apply_range_tombstone(rt, keep);
        }
        delta
    }

    /// Merges another partition in (e.g. two sources); returns the size change.
    pub fn merge(&mut self, other: &Partition) -> isize {
        self.deletion = max_tombstone(self.deletion, other.deletion);
        let mut delta = 0;
        if let Some(row) = &other.static_row {
            delta += merge_into(&mut self.static_row, row, Keep::Share);
        }
        for (clustering, row) in &other.rows {
            delta += self.apply_row(clustering, row, Keep::Share);
        }
        for rt in &other.range_tombstones {
            delta += self.apply_range_tombstone(rt, Keep::Share);
        }
        delta
    }

    fn apply_row(&mut self, clustering: &Bytes, row: &Row, keep: Keep) -> isize {
        match self.rows.get_mut_bytes(clustering) {
            Some(existing) => merge_row_as(existing, row, keep),
            None => {
                self.rows.insert(keep.bytes(clustering), keep.row(row));
                size_isize(clustering.len() + row.size_bytes())
            }
        }
    }

    fn apply_range_tombstone(&mut self, rt: &RangeTombstone, keep: Keep) -> isize {
        // CQL range deletes often repeat the same range; keep one entry per range.
        match self
            .range_tombstones
            .iter_mut()
            .find(|r| r.range == rt.range)
        {
            Some(existing) => {
                existing.tombstone = existing.tombstone.max(rt.tombstone);
                0
            }
            None => {
                self.range_tombstones.push(keep_range_tombstone(rt, keep));
                size_isize(rt.size_bytes())
            }
        }
    }

    /// Approximate memory footprint, bytes (computed from scratch; callers keep running
    /// totals from the deltas `apply` returns).
    pub fn size_bytes(&self) -> usize {
        content_size(
            self.rows.iter(),
            self.static_row.as_deref(),
            &self.range_tombstones,
        )
    }
}

fn merge_into(slot: &mut Option<Box<Row>>, row: &Row, keep: Keep) -> isize {
    match slot {
        Some(existing) => merge_row_as(existing, row, keep),
        None => {
            *slot = Some(Box::new(keep.row(row)));
            size_isize(row.size_bytes())
        }
    }
}

pub(crate) fn keep_range_tombstone(rt: &RangeTombstone, keep: Keep) -> RangeTombstone {
    let bound = |b: &Option<ClusteringBound>| {
        b.as_ref().map(|b| ClusteringBound {
            prefix: keep.bytes(&b.prefix),
            inclusive: b.inclusive,
        })
    };
    RangeTombstone {
        range: ClusteringRange {
            start: bound(&rt.range.start),
            end: bound(&rt.range.end),
        },
        tombstone: rt.tombstone,
    }
}

/// The approximate size of a partition's (or a mutation's) rows, static row
/// and range tombstones, bytes.
pub(crate) fn content_size<'a>(
    rows: impl Iterator<Item = (&'a Bytes, &'a Row)>,
    static_row: Option<&Row>,
    range_tombstones: &[RangeTombstone],
) -> usize {
    let rows: usize = rows.map(|(k, r)| k.len() + r.size_bytes()).sum();
    let statics = static_row.map_or(0, Row::size_bytes);
    let ranges: usize = range_tombstones
        .iter()
        .map(RangeTombstone::size_bytes)
        .sum();
    rows + statics + ranges
}
