//! One partition's merged writes: what a memtable holds per key, and the unit the read
//! path merges across sources.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::cell::{Row, Tombstone};
use super::mutation::{Mutation, RangeTombstone};
use super::reconcile::{max_tombstone, merge_row, size_isize};

/// All versions of one partition's data held by one source, already reconciled cell by
/// cell. Shadowed data is kept (reads drop it), so a source is a plain union of writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partition {
    /// Partition tombstone.
    pub deletion: Option<Tombstone>,
    /// Static row.
    pub static_row: Option<Row>,
    /// Clustering rows by encoded clustering key.
    pub rows: BTreeMap<Bytes, Row>,
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
        self.deletion = max_tombstone(self.deletion, m.partition_deletion);
        let mut delta = 0;
        if let Some(row) = &m.static_row {
            delta += merge_into(&mut self.static_row, row);
        }
        for (clustering, row) in &m.rows {
            delta += self.apply_row(clustering, row);
        }
        for rt in &m.range_tombstones {
            delta += self.apply_range_tombstone(rt);
        }
        delta
    }

    /// Merges another partition in (e.g. two sources); returns the size change.
    pub fn merge(&mut self, other: &Partition) -> isize {
        self.deletion = max_tombstone(self.deletion, other.deletion);
        let mut delta = 0;
        if let Some(row) = &other.static_row {
            delta += merge_into(&mut self.static_row, row);
        }
        for (clustering, row) in &other.rows {
            delta += self.apply_row(clustering, row);
        }
        for rt in &other.range_tombstones {
            delta += self.apply_range_tombstone(rt);
        }
        delta
    }

    fn apply_row(&mut self, clustering: &Bytes, row: &Row) -> isize {
        match self.rows.get_mut(clustering) {
            Some(existing) => merge_row(existing, row),
            None => {
                self.rows.insert(clustering.clone(), row.clone());
                size_isize(clustering.len() + row.size_bytes())
            }
        }
    }

    fn apply_range_tombstone(&mut self, rt: &RangeTombstone) -> isize {
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
                self.range_tombstones.push(rt.clone());
                size_isize(rt.size_bytes())
            }
        }
    }

    /// Approximate memory footprint, bytes (computed from scratch; callers keep running
    /// totals from the deltas `apply` returns).
    pub fn size_bytes(&self) -> usize {
        content_size(
            self.rows.iter(),
            self.static_row.as_ref(),
            &self.range_tombstones,
        )
    }
}

fn merge_into(slot: &mut Option<Row>, row: &Row) -> isize {
    match slot {
        Some(existing) => merge_row(existing, row),
        None => {
            *slot = Some(row.clone());
            size_isize(row.size_bytes())
        }
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
