//! Reconciliation: which of two versions of the same datum wins, and what shadows what.
//!
//! Replicas, memtables and (later) SSTables all hold versions of the same cells; the
//! rules below pick one winner per cell deterministically, never consulting the local
//! clock, so that every replica converges on the same data whatever order writes arrive
//! in. They are the rules of ScyllaDB's "timestamp conflict resolution" (which since
//! 2023 also agree with Cassandra, apart from the last tie-break on equal expiries).
//!
//! # Cells (`compare_cells`)
//!
//! 1. The higher write timestamp wins.
//! 2. Equal timestamps: a tombstone beats a live (or expiring) cell. Between two
//!    tombstones the later `deletion_time` wins.
//! 3. Two live cells: an expiring cell beats a non-expiring one (it will become a
//!    tombstone, and tombstones win ties). Between two expiring cells the later
//!    `expires_at` wins; with equal `expires_at` the smaller TTL wins (it was written
//!    later).
//! 4. Finally the greater value (unsigned byte comparison) wins. Fully equal cells are
//!    interchangeable.
//!
//! Row markers follow rules 1 and 3. Tombstones compare by timestamp, then deletion time.
//!
//! # Shadowing (applied at read time, see `super::query`)
//!
//! - A live cell or marker whose `expires_at <= now` is a tombstone with the same
//!   timestamp: it is not returned, and because it won reconciliation it keeps shadowing
//!   every older version of the same cell.
//! - A tombstone shadows data with `timestamp <= tombstone.timestamp`. The partition
//!   tombstone shadows everything in the partition (static row included); a range
//!   tombstone shadows the markers and cells of the clustering rows inside its range; a
//!   row tombstone its row's marker and cells; a complex (collection) deletion the cells of
//!   its column in its row.
//! - A clustering row is live when its marker or at least one cell is live after
//!   shadowing. The static row is live when at least one of its cells is.
//!
//! Memtables apply these rules when merging writes (keeping the winner of each cell and the
//! strongest tombstone of each kind), but do not drop shadowed data eagerly; reads do.

use std::cmp::Ordering;

use bytes::Bytes;

use super::cell::{Cell, CellKey, CellKind, Expiry, Row, RowMarker, Tombstone};

/// Orders two versions of the same cell: `Greater` means `a` wins.
pub fn compare_cells(a: &Cell, b: &Cell) -> Ordering {
    a.timestamp
        .cmp(&b.timestamp)
        .then_with(|| match (&a.kind, &b.kind) {
            (CellKind::Dead { deletion_time: x }, CellKind::Dead { deletion_time: y }) => x.cmp(y),
            (CellKind::Dead { .. }, CellKind::Live { .. }) => Ordering::Greater,
            (CellKind::Live { .. }, CellKind::Dead { .. }) => Ordering::Less,
            (
                CellKind::Live {
                    value: va,
                    expiry: ea,
                },
                CellKind::Live {
                    value: vb,
                    expiry: eb,
                },
            ) => compare_expiries(ea.as_ref(), eb.as_ref()).then_with(|| va.cmp(vb)),
        })
}

/// Orders two versions of a row marker: `Greater` means `a` wins.
pub fn compare_markers(a: &RowMarker, b: &RowMarker) -> Ordering {
    a.timestamp
        .cmp(&b.timestamp)
        .then_with(|| compare_expiries(a.expiry.as_ref(), b.expiry.as_ref()))
}

/// Expiring beats non-expiring; later expiry beats earlier; equal expiry: smaller TTL.
fn compare_expiries(a: Option<&Expiry>, b: Option<&Expiry>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (Some(x), Some(y)) => x.expires_at.cmp(&y.expires_at).then(y.ttl.cmp(&x.ttl)),
    }
}

/// The stronger of two optional tombstones.
pub fn max_tombstone(a: Option<Tombstone>, b: Option<Tombstone>) -> Option<Tombstone> {
    a.max(b)
}

/// Merges `other` into `row` keeping the winner of every cell, the winning marker and the
/// strongest tombstones. Returns the change in [`Row::size_bytes`].
pub fn merge_row(row: &mut Row, other: &Row) -> isize {
    merge_row_as(row, other, Keep::Share)
}

/// How a merge stores the parts of the incoming version it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Share them (`Bytes` clones): both versions are already owned data.
    Share,
    /// Copy them into allocations of their own: the incoming version holds
    /// slices of a request buffer, which the result must not pin.
    Copy,
}

impl Keep {
    pub(crate) fn bytes(self, bytes: &Bytes) -> Bytes {
        match self {
            Keep::Share => bytes.clone(),
            Keep::Copy => Bytes::copy_from_slice(bytes),
        }
    }

    pub(crate) fn cell(self, cell: &Cell) -> Cell {
        let kind = match &cell.kind {
            CellKind::Live { value, expiry } => CellKind::Live {
                value: self.bytes(value),
                expiry: *expiry,
            },
            dead @ CellKind::Dead { .. } => dead.clone(),
        };
        Cell {
            timestamp: cell.timestamp,
            kind,
        }
    }

    pub(crate) fn cell_key(self, key: &CellKey) -> CellKey {
        CellKey {
            column: key.column,
            path: key.path.as_ref().map(|p| self.bytes(p)),
        }
    }

    pub(crate) fn row(self, row: &Row) -> Row {
        if self == Keep::Share {
            return row.clone();
        }
        Row {
            marker: row.marker,
            deletion: row.deletion,
            cells: row
                .cells
                .iter()
                .map(|(key, cell)| (self.cell_key(key), self.cell(cell)))
                .collect(),
            complex_deletions: row.complex_deletions.clone(),
        }
    }

    /// Overwrites `slot` with the winning `cell`. Copying into a slot whose
    /// value buffer nobody else holds and that has exactly the new value's
    /// length reuses the buffer: an overwrite of a fixed-size value then
    /// allocates and frees nothing.
    fn overwrite(self, slot: &mut Cell, cell: &Cell) {
        if self == Keep::Copy {
            if let (CellKind::Live { value: old, .. }, CellKind::Live { value, expiry }) =
                (&mut slot.kind, &cell.kind)
            {
                if let Some(value) = refill(old, value) {
                    slot.timestamp = cell.timestamp;
                    slot.kind = CellKind::Live {
                        value,
                        expiry: *expiry,
                    };
                    return;
                }
            }
        }
        *slot = self.cell(cell);
    }
}

/// `buffer`'s allocation refilled with `bytes`, if nobody else holds it and
/// its capacity is exactly `bytes.len()` (so freezing it allocates nothing).
/// Leaves `buffer` empty when it returns `Some`, and maybe when not.
fn refill(buffer: &mut Bytes, bytes: &[u8]) -> Option<Bytes> {
    if buffer.len() != bytes.len() {
        return None;
    }
    let mut owned = std::mem::take(buffer).try_into_mut().ok()?;
    if owned.capacity() != bytes.len() {
        return None;
    }
    owned.clear();
    owned.extend_from_slice(bytes);
    Some(owned.freeze())
}

/// [`merge_row`], storing what it keeps from `other` as `keep` says.
pub(crate) fn merge_row_as(row: &mut Row, other: &Row, keep: Keep) -> isize {
    let mut delta: isize = 0;
    row.marker = match (row.marker, other.marker) {
        (Some(a), Some(b)) if compare_markers(&b, &a) == Ordering::Greater => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    row.deletion = max_tombstone(row.deletion, other.deletion);
    for (column, tombstone) in &other.complex_deletions {
        let slot = row.complex_deletions.entry(*column).or_insert_with(|| {
            delta += 24;
            *tombstone
        });
        *slot = (*slot).max(*tombstone);
    }
    for (key, cell) in &other.cells {
        delta += merge_cell(row, key, cell, keep);
    }
    delta
}

/// Merges one cell into `row`; returns the size change.
fn merge_cell(row: &mut Row, key: &CellKey, cell: &Cell, keep: Keep) -> isize {
    let new_size = size_isize(cell.size_bytes());
    match row.cells.get_mut(key) {
        Some(existing) => {
            if compare_cells(cell, existing) != Ordering::Greater {
                return 0;
            }
            let old_size = size_isize(existing.size_bytes());
            keep.overwrite(existing, cell);
            new_size - old_size
        }
        None => {
            row.cells.insert(keep.cell_key(key), keep.cell(cell));
            new_size + size_isize(key.size_bytes())
        }
    }
}

/// Sizes are small in-memory byte counts; they always fit.
pub(crate) fn size_isize(size: usize) -> isize {
    isize::try_from(size).expect("in-memory sizes fit in isize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CellKey;

    fn exp(ttl: i32, at: i32) -> Expiry {
        Expiry {
            ttl,
            expires_at: at,
        }
    }

    #[test]
    fn higher_timestamp_wins() {
        assert_eq!(
            compare_cells(&Cell::live(2, "a"), &Cell::dead(1, 9)),
            Ordering::Greater
        );
        assert_eq!(
            compare_cells(&Cell::live(1, "z"), &Cell::live(2, "a")),
            Ordering::Less
        );
    }

    #[test]
    fn tombstone_wins_equal_timestamp() {
        assert_eq!(
            compare_cells(&Cell::dead(5, 0), &Cell::live(5, "zz")),
            Ordering::Greater
        );
        let expiring = Cell::expiring(5, "zz", exp(10, 100));
        assert_eq!(
            compare_cells(&Cell::dead(5, 0), &expiring),
            Ordering::Greater
        );
        assert_eq!(
            compare_cells(&Cell::dead(5, 2), &Cell::dead(5, 1)),
            Ordering::Greater
        );
    }

    #[test]
    fn expiring_beats_plain_then_later_expiry_then_smaller_ttl() {
        let plain = Cell::live(5, "zz");
        let expiring = Cell::expiring(5, "aa", exp(10, 100));
        assert_eq!(compare_cells(&expiring, &plain), Ordering::Greater);
        let later = Cell::expiring(5, "aa", exp(10, 101));
        assert_eq!(compare_cells(&later, &expiring), Ordering::Greater);
        let written_later = Cell::expiring(5, "aa", exp(9, 100));
        assert_eq!(compare_cells(&written_later, &expiring), Ordering::Greater);
    }

    #[test]
    fn greater_value_wins_last() {
        assert_eq!(
            compare_cells(&Cell::live(5, "b"), &Cell::live(5, "a")),
            Ordering::Greater
        );
        assert_eq!(
            compare_cells(&Cell::live(5, "a"), &Cell::live(5, "a")),
            Ordering::Equal
        );
    }

    #[test]
    fn markers_compare_by_timestamp_then_expiry() {
        let a = RowMarker::new(5, None);
        let b = RowMarker::new(5, Some(exp(1, 10)));
        assert_eq!(compare_markers(&b, &a), Ordering::Greater);
        assert_eq!(
            compare_markers(&RowMarker::new(6, None), &b),
            Ordering::Greater
        );
    }

    #[test]
    fn merge_row_is_order_independent() {
        let a = Row::with_marker(3, None)
            .cell(1, Cell::live(3, "x"))
            .complex_deletion(2, Tombstone::new(2, 0));
        let b = Row::deleted(Tombstone::new(1, 0))
            .cell(1, Cell::dead(3, 7))
            .element(2, "k", Cell::live(4, "v"));
        let mut ab = a.clone();
        merge_row(&mut ab, &b);
        let mut ba = b.clone();
        merge_row(&mut ba, &a);
        assert_eq!(ab, ba);
        assert_eq!(ab.cells[&CellKey::atomic(1)], Cell::dead(3, 7));
    }
}
