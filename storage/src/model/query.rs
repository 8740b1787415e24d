//! The read path's core: merge one partition's versions from every source, apply
//! tombstones and TTLs, and return only live data.
//!
//! Steps for one partition (rules in [`super::reconcile`]):
//! 1. The partition tombstone is the strongest across sources; range tombstones are the
//!    union of all sources' (only those overlapping the query are consulted).
//! 2. The static row versions are merged and compacted against the partition tombstone.
//! 3. For each query range (last to first when reversed) the sources' rows are merged by
//!    clustering key; each merged row is compacted against the partition tombstone, the
//!    range tombstones covering it and its own tombstone; live rows are kept until
//!    `row_limit` is reached.
//! 4. The partition is returned if its static row or any clustering row is live.
//!
//! Column selection only trims the returned cells: a row's liveness is judged on all of
//! its cells, so `SELECT a` still returns a row whose only live cell is `b` (with `a`
//! absent), as CQL requires.

use super::sorted_map::SortedMap;
use std::borrow::Cow;
use std::ops::Bound;

use bytes::Bytes;

use super::cell::{CellKey, CellKind, Expiry, Row, RowMarker, Tombstone};
use super::keys::{ClusteringRange, DecoratedKey};
use super::merge::{MergeByKey, SortedSource};
use super::mutation::RangeTombstone;
use super::partition::Partition;
use super::reconcile::merge_row;
use super::ColumnId;

/// What to read from each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceQuery {
    /// Clustering ranges, sorted and non-overlapping, in clustering order.
    pub ranges: Vec<ClusteringRange>,
    /// Return rows in reverse clustering order.
    pub reversed: bool,
    /// Maximum live rows returned (across partitions for a scan); `usize::MAX` for none.
    pub row_limit: usize,
    /// Columns whose cells are returned; `None` for all.
    pub columns: Option<Vec<ColumnId>>,
}

impl SliceQuery {
    /// Every row and column of the partition, forward, unlimited.
    pub fn full() -> Self {
        Self {
            ranges: vec![ClusteringRange::full()],
            reversed: false,
            row_limit: usize::MAX,
            columns: None,
        }
    }

    /// Whether the query selects whole partitions (a single unbounded range). Only then
    /// does a partition with a live static row and no live rows count as one row.
    pub fn selects_full_partition(&self) -> bool {
        self.ranges.len() == 1 && self.ranges[0].is_full()
    }

    fn selects(&self, column: ColumnId) -> bool {
        self.columns.as_ref().is_none_or(|c| c.contains(&column))
    }
}

/// A live value as returned to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCell {
    /// Write timestamp (for `WRITETIME`).
    pub timestamp: i64,
    /// The value.
    pub value: Bytes,
    /// Expiry (for `TTL`).
    pub expiry: Option<Expiry>,
}

/// A live row: its live marker (if any) and its live, selected cells in cell-key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveRow {
    /// The row marker, when live.
    pub marker: Option<RowMarker>,
    /// Live cells of the selected columns, sorted by (column, path).
    pub cells: Vec<(CellKey, LiveCell)>,
}

impl LiveRow {
    /// The atomic cell of `column`, if live.
    pub fn cell(&self, column: ColumnId) -> Option<&LiveCell> {
        self.cells
            .iter()
            .find(|(k, _)| k.column == column && k.path.is_none())
            .map(|(_, c)| c)
    }

    /// The live elements of collection `column`, in path order.
    pub fn elements(&self, column: ColumnId) -> impl Iterator<Item = (&Bytes, &LiveCell)> {
        self.cells
            .iter()
            .filter(move |(k, _)| k.column == column)
            .filter_map(|(k, c)| k.path.as_ref().map(|p| (p, c)))
    }
}

/// One partition's live data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    /// The partition.
    pub key: DecoratedKey,
    /// The static row, when live.
    pub static_row: Option<LiveRow>,
    /// Live clustering rows in query order.
    pub rows: Vec<(Bytes, LiveRow)>,
}

impl PartitionResult {
    /// How many rows this result counts for against a row limit: its clustering rows, or
    /// one for a static-only partition when the query selects whole partitions.
    pub fn counted_rows(&self, cmd: &SliceQuery) -> usize {
        if self.rows.is_empty() && self.static_row.is_some() && cmd.selects_full_partition() {
            1
        } else {
            self.rows.len()
        }
    }
}

/// Reads one partition from its versions in every source (in any order).
pub fn read_partition(
    versions: &[&Partition],
    key: &DecoratedKey,
    cmd: &SliceQuery,
    now_secs: i32,
) -> Option<PartitionResult> {
    let compactor = Compactor::new(versions, cmd, now_secs);
    let static_row = merge_static(versions).and_then(|row| compactor.live_row(&row, None));
    let mut rows = Vec::new();
    let count = cmd.ranges.len();
    for i in 0..count {
        let range = &cmd.ranges[if cmd.reversed { count - 1 - i } else { i }];
        if rows.len() >= cmd.row_limit {
            break;
        }
        read_range(versions, range, &compactor, &mut rows);
    }
    if static_row.is_none() && rows.is_empty() {
        return None;
    }
    Some(PartitionResult {
        key: key.clone(),
        static_row,
        rows,
    })
}

/// Appends the live rows of one clustering range to `out`, up to the row limit.
fn read_range(
    versions: &[&Partition],
    range: &ClusteringRange,
    compactor: &Compactor<'_>,
    out: &mut Vec<(Bytes, LiveRow)>,
) {
    let Some(bounds) = range.key_bounds() else {
        return;
    };
    let reversed = compactor.cmd.reversed;
    if let [single] = versions {
        // One source (a table with only its active memtable): its rows are
        // already one version each, in order; nothing to merge.
        let rows = single
            .rows
            .range::<[u8]>((as_slice(&bounds.0), as_slice(&bounds.1)));
        if reversed {
            push_live_rows(rows.rev(), compactor, out);
        } else {
            push_live_rows(rows, compactor, out);
        }
        return;
    }
    let sources = versions
        .iter()
        .map(|p| rows_in(&p.rows, &bounds, reversed))
        .collect();
    for (clustering, rows) in MergeByKey::new(sources, reversed) {
        if out.len() >= compactor.cmd.row_limit {
            return;
        }
        let row = merge_versions(&rows);
        if let Some(live) = compactor.live_row(&row, Some(clustering)) {
            out.push((clustering.clone(), live));
        }
    }
}

/// Appends the live rows of one source's `rows` to `out`, up to the row limit.
fn push_live_rows<'a>(
    rows: impl Iterator<Item = (&'a Bytes, &'a Row)>,
    compactor: &Compactor<'_>,
    out: &mut Vec<(Bytes, LiveRow)>,
) {
    for (clustering, row) in rows {
        if out.len() >= compactor.cmd.row_limit {
            return;
        }
        if let Some(live) = compactor.live_row(row, Some(clustering)) {
            out.push((clustering.clone(), live));
        }
    }
}

fn rows_in<'a>(
    rows: &'a SortedMap<Bytes, Row>,
    bounds: &(Bound<Bytes>, Bound<Bytes>),
    reversed: bool,
) -> SortedSource<'a, Bytes, Row> {
    let range = rows.range::<[u8]>((as_slice(&bounds.0), as_slice(&bounds.1)));
    if reversed {
        Box::new(range.rev())
    } else {
        Box::new(range)
    }
}

fn as_slice(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(b) => Bound::Included(&b[..]),
        Bound::Excluded(b) => Bound::Excluded(&b[..]),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn merge_static(versions: &[&Partition]) -> Option<Row> {
    let rows: Vec<&Row> = versions
        .iter()
        .filter_map(|p| p.static_row.as_deref())
        .collect();
    (!rows.is_empty()).then(|| merge_versions(&rows).into_owned())
}

/// One row from its versions; borrows when only one source has it (the common case).
fn merge_versions<'a>(rows: &[&'a Row]) -> Cow<'a, Row> {
    match rows {
        [single] => Cow::Borrowed(*single),
        _ => {
            let mut merged = Row::new();
            for row in rows {
                merge_row(&mut merged, row);
            }
            Cow::Owned(merged)
        }
    }
}

/// Values up to this size are copied out of the source for the reader
/// rather than shared.
const COPIED_VALUE_MAX_BYTES: usize = 256;

/// A reader's handle on a stored value. A small value is copied: sharing
/// it would make the first read of every value allocate the value's shared
/// reference count (promoting its buffer), and every later read and drop
/// touch that count in a cache line of its own, which costs more than a
/// small allocation and a copy of bytes the response copies again from a
/// hot cache. It also leaves the stored buffer unshared, so a later write of
/// the same size can reuse it.
fn read_copy(value: &Bytes) -> Bytes {
    if value.len() <= COPIED_VALUE_MAX_BYTES {
        Bytes::copy_from_slice(value)
    } else {
        value.clone()
    }
}

/// Applies tombstones and TTLs to merged rows.
struct Compactor<'a> {
    partition_deletion: Option<Tombstone>,
    range_tombstones: Vec<&'a RangeTombstone>,
    cmd: &'a SliceQuery,
    now_secs: i32,
}

impl<'a> Compactor<'a> {
    fn new(versions: &[&'a Partition], cmd: &'a SliceQuery, now_secs: i32) -> Self {
        let partition_deletion = versions.iter().filter_map(|p| p.deletion).max();
        // Range tombstones that cannot shadow anything newer than the partition tombstone
        // are dropped here, so the per-row check only sees the ones that matter.
        let range_tombstones = versions
            .iter()
            .flat_map(|p| p.range_tombstones.iter())
            .filter(|rt| partition_deletion.is_none_or(|d| rt.tombstone > d))
            .collect();
        Self {
            partition_deletion,
            range_tombstones,
            cmd,
            now_secs,
        }
    }

    /// The strongest tombstone covering a row (`clustering` is `None` for the static row,
    /// which range tombstones do not cover).
    fn row_deletion(&self, row: &Row, clustering: Option<&[u8]>) -> Option<Tombstone> {
        let covering = clustering.and_then(|key| {
            self.range_tombstones
                .iter()
                .filter(|rt| rt.range.contains(key))
                .map(|rt| rt.tombstone)
                .max()
        });
        self.partition_deletion.max(row.deletion).max(covering)
    }

    fn live_row(&self, row: &Row, clustering: Option<&Bytes>) -> Option<LiveRow> {
        let deletion = self.row_deletion(row, clustering.map(|c| &c[..]));
        let shadowed = |d: Option<Tombstone>, ts: i64| d.is_some_and(|d| d.shadows(ts));
        let marker = row
            .marker
            .filter(|m| !shadowed(deletion, m.timestamp) && m.is_live(self.now_secs));
        let mut live = marker.is_some();
        let mut cells = Vec::new();
        for (key, cell) in &row.cells {
            let CellKind::Live { value, expiry } = &cell.kind else {
                continue;
            };
            let deletion = deletion.max(row.complex_deletions.get(&key.column).copied());
            if shadowed(deletion, cell.timestamp) || !cell.is_live(self.now_secs) {
                continue;
            }
            live = true;
            if self.cmd.selects(key.column) {
                let value = read_copy(value);
                let live_cell = LiveCell {
                    timestamp: cell.timestamp,
                    value,
                    expiry: *expiry,
                };
                cells.push((key.clone(), live_cell));
            }
        }
        live.then_some(LiveRow { marker, cells })
    }
}
