//! Cells, row markers, tombstones and rows: the versioned values a mutation carries.
//!
//! Every value carries its write timestamp (microseconds) so that replicas and
//! memtables merge by the rules in [`super::reconcile`] without any coordination.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::sorted_map::SortedMap;
use super::ColumnId;

/// A deletion: shadows everything written at or before `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tombstone {
    /// Write timestamp of the deletion, microseconds.
    pub timestamp: i64,
    /// Local time of the deletion, seconds since the epoch (used for purging, and as
    /// the tie-break between two tombstones with the same timestamp).
    pub deletion_time: i32,
}

impl Tombstone {
    /// A tombstone.
    pub fn new(timestamp: i64, deletion_time: i32) -> Self {
        Self {
            timestamp,
            deletion_time,
        }
    }

    /// Whether data written at `timestamp` is deleted by this tombstone.
    pub fn shadows(&self, timestamp: i64) -> bool {
        timestamp <= self.timestamp
    }
}

/// When an expiring (TTL) value dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expiry {
    /// The TTL the value was written with, seconds.
    pub ttl: i32,
    /// The local time at which it expires, seconds since the epoch.
    pub expires_at: i32,
}

impl Expiry {
    /// An expiry `ttl` seconds after `now_secs`.
    pub fn new(ttl: i32, now_secs: i32) -> Self {
        Self {
            ttl,
            expires_at: now_secs.saturating_add(ttl),
        }
    }

    /// Whether the value is expired at `now_secs` (it then acts as a tombstone).
    pub fn is_expired(&self, now_secs: i32) -> bool {
        self.expires_at <= now_secs
    }
}

/// What a cell holds: a value, or a deletion of the cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// A value, possibly expiring.
    Live {
        /// The serialized value.
        value: Bytes,
        /// When the value expires, if it was written with a TTL.
        expiry: Option<Expiry>,
    },
    /// A cell tombstone.
    Dead {
        /// Local time of the deletion, seconds since the epoch.
        deletion_time: i32,
    },
}

/// One versioned value of one column (or of one collection element).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cell {
    /// Write timestamp, microseconds.
    pub timestamp: i64,
    /// Value or deletion.
    pub kind: CellKind,
}

impl Cell {
    /// A non-expiring value.
    pub fn live(timestamp: i64, value: impl Into<Bytes>) -> Self {
        Self {
            timestamp,
            kind: CellKind::Live {
                value: value.into(),
                expiry: None,
            },
        }
    }

    /// A value with a TTL.
    pub fn expiring(timestamp: i64, value: impl Into<Bytes>, expiry: Expiry) -> Self {
        Self {
            timestamp,
            kind: CellKind::Live {
                value: value.into(),
                expiry: Some(expiry),
            },
        }
    }

    /// A cell tombstone.
    pub fn dead(timestamp: i64, deletion_time: i32) -> Self {
        Self {
            timestamp,
            kind: CellKind::Dead { deletion_time },
        }
    }

    /// Whether the cell holds an unexpired value at `now_secs` (tombstones aside).
    pub fn is_live(&self, now_secs: i32) -> bool {
        match &self.kind {
            CellKind::Live { expiry, .. } => !expiry.is_some_and(|e| e.is_expired(now_secs)),
            CellKind::Dead { .. } => false,
        }
    }

    /// Approximate memory footprint, bytes.
    pub fn size_bytes(&self) -> usize {
        let payload = match &self.kind {
            CellKind::Live { value, .. } => value.len(),
            CellKind::Dead { .. } => 0,
        };
        48 + payload
    }
}

/// Which cell of a row: a column, and for a non-frozen collection the element's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    /// The column.
    pub column: ColumnId,
    /// The collection element key (memcmp-ordered bytes); `None` for atomic cells.
    pub path: Option<Bytes>,
}

impl CellKey {
    /// An atomic (non-collection) cell.
    pub fn atomic(column: ColumnId) -> Self {
        Self { column, path: None }
    }

    /// A collection element.
    pub fn element(column: ColumnId, path: impl Into<Bytes>) -> Self {
        Self {
            column,
            path: Some(path.into()),
        }
    }

    /// Approximate memory footprint, bytes.
    pub fn size_bytes(&self) -> usize {
        8 + self.path.as_ref().map_or(0, Bytes::len)
    }
}

/// The liveness of a row independent of its cells: INSERT writes one, UPDATE does not,
/// so a row created by INSERT survives setting all its columns to null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowMarker {
    /// Write timestamp, microseconds.
    pub timestamp: i64,
    /// Expiry when the INSERT had a TTL.
    pub expiry: Option<Expiry>,
}

impl RowMarker {
    /// A marker.
    pub fn new(timestamp: i64, expiry: Option<Expiry>) -> Self {
        Self { timestamp, expiry }
    }

    /// Whether the marker is unexpired at `now_secs` (tombstones aside).
    pub fn is_live(&self, now_secs: i32) -> bool {
        !self.expiry.is_some_and(|e| e.is_expired(now_secs))
    }
}

/// One row's data in one mutation or memtable: marker, row tombstone, cells and
/// per-collection deletions. Also used for the static row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Row marker (INSERT).
    pub marker: Option<RowMarker>,
    /// Row tombstone (DELETE of the whole row).
    pub deletion: Option<Tombstone>,
    /// Cells by column and element path.
    pub cells: SortedMap<CellKey, Cell>,
    /// Collection tombstones: deletes every cell of the column written at or before the
    /// tombstone's timestamp (collection overwrite or deletion).
    pub complex_deletions: BTreeMap<ColumnId, Tombstone>,
}

impl Row {
    /// An empty row (an UPDATE's row before cells are added).
    pub fn new() -> Self {
        Self::default()
    }

    /// A row with a marker (an INSERT's row before cells are added).
    pub fn with_marker(timestamp: i64, expiry: Option<Expiry>) -> Self {
        Self {
            marker: Some(RowMarker::new(timestamp, expiry)),
            ..Self::default()
        }
    }

    /// A row tombstone.
    pub fn deleted(tombstone: Tombstone) -> Self {
        Self {
            deletion: Some(tombstone),
            ..Self::default()
        }
    }

    /// Sets an atomic cell (builder style).
    pub fn cell(mut self, column: ColumnId, cell: Cell) -> Self {
        self.cells.insert(CellKey::atomic(column), cell);
        self
    }

    /// Sets a collection element (builder style).
    pub fn element(mut self, column: ColumnId, path: impl Into<Bytes>, cell: Cell) -> Self {
        self.cells.insert(CellKey::element(column, path), cell);
        self
    }

    /// Adds a collection tombstone (builder style).
    pub fn complex_deletion(mut self, column: ColumnId, tombstone: Tombstone) -> Self {
        self.complex_deletions.insert(column, tombstone);
        self
    }

    /// Whether the row carries nothing at all.
    pub fn is_empty(&self) -> bool {
        self.marker.is_none()
            && self.deletion.is_none()
            && self.cells.is_empty()
            && self.complex_deletions.is_empty()
    }

    /// Approximate memory footprint, bytes.
    pub fn size_bytes(&self) -> usize {
        let cells: usize = self
            .cells
            .iter()
            .map(|(k, c)| k.size_bytes() + c.size_bytes())
            .sum();
        64 + cells + 24 * self.complex_deletions.len()
    }
}
