//! What an SSTable holds below the partition level, recorded in
//! `Statistics.db` (format 4) so that a point read of a clustering slice
//! skips an SSTable with nothing in it: the smallest and largest clustering
//! keys (and range tombstone bounds), and whether any partition has a
//! partition tombstone or a static row (those matter to every slice).
//!
//! Clustering keys compare as bytes with prefix semantics
//! ([`crate::model::ClusteringRange`]); the span's upper end is a *cover*:
//! every key is at or before it, or starts with it, which is what an
//! inclusive end bound of a range tombstone covers.

use bytes::Bytes;

use crate::model::{ClusteringRange, Partition, SliceQuery};

/// The clustering content of an SSTable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusteringStats {
    /// Some partition has a partition tombstone.
    pub partition_deletions: bool,
    /// Some partition has a static row.
    pub static_rows: bool,
    /// Where the clustering rows and range tombstones lie (`None`: there are none).
    pub span: Option<ClusteringSpan>,
}

/// The clustering keys an SSTable's rows and range tombstones cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusteringSpan {
    /// Every key and range tombstone start is at or after it (empty: from the first key).
    pub min: Bytes,
    /// Every key and range tombstone end is at or before it or starts with it
    /// (`None`: a range tombstone reaches past the last key).
    pub max: Option<Bytes>,
}

impl ClusteringStats {
    /// Widens the record to cover `partition`.
    pub fn record(&mut self, partition: &Partition) {
        self.partition_deletions |= partition.deletion.is_some();
        self.static_rows |= partition.static_row.is_some();
        for key in partition.rows.keys() {
            self.widen(key, Some(key));
        }
        for rt in &partition.range_tombstones {
            let start = rt.range.start.as_ref().map_or(&[][..], |b| &b.prefix[..]);
            let end = rt.range.end.as_ref().map(|b| &b.prefix[..]);
            self.widen(start, end);
        }
    }

    /// Widens the record to cover a partition known only by a skim: whether
    /// it has a static row, and its first and last clustering keys (it has no
    /// tombstones of any kind).
    pub fn record_plain(&mut self, static_row: bool, first: Option<&[u8]>, last: Option<&[u8]>) {
        self.static_rows |= static_row;
        if let (Some(first), Some(last)) = (first, last) {
            self.widen(first, Some(last));
        }
    }

    fn widen(&mut self, start: &[u8], end: Option<&[u8]>) {
        match &mut self.span {
            None => {
                self.span = Some(ClusteringSpan {
                    min: Bytes::copy_from_slice(start),
                    max: end.map(Bytes::copy_from_slice),
                });
            }
            Some(span) => {
                if start < &span.min[..] {
                    span.min = Bytes::copy_from_slice(start);
                }
                span.max = match (span.max.take(), end) {
                    (Some(max), Some(end)) => Some(cover(max, end)),
                    _ => None,
                };
            }
        }
    }

    /// Whether a read of `slice` may find anything here: always when some
    /// partition has a partition tombstone or static row, else when one of
    /// the slice's ranges meets the span. Never false when it should be true.
    pub fn may_intersect(&self, slice: &SliceQuery) -> bool {
        if self.partition_deletions || self.static_rows {
            return true;
        }
        let Some(span) = &self.span else {
            return false;
        };
        slice.ranges.iter().any(|range| span.meets(range))
    }
}

/// The smallest cover of both `max` and `end`: a key is at or before the
/// result, or starts with it, whenever that holds for `max` or for `end`.
fn cover(max: Bytes, end: &[u8]) -> Bytes {
    if max.starts_with(end) {
        // Everything `max` covers, `end` covers: it is the wider.
        Bytes::copy_from_slice(end)
    } else if end.starts_with(&max) || end < &max[..] {
        max
    } else {
        Bytes::copy_from_slice(end)
    }
}

impl ClusteringSpan {
    /// Whether `range` may hold a key of the span (conservative: true when unsure).
    fn meets(&self, range: &ClusteringRange) -> bool {
        if let Some(end) = &range.end {
            // Below the span: the range ends before its first key.
            let below = if end.inclusive {
                self.min[..] > end.prefix[..] && !self.min.starts_with(&end.prefix)
            } else {
                self.min[..] >= end.prefix[..]
            };
            if below {
                return false;
            }
        }
        if let (Some(start), Some(max)) = (&range.start, &self.max) {
            // Above the span: the range starts past everything it covers.
            // (An exclusive start is treated as inclusive: it admits more.)
            if max[..] < start.prefix[..] && !start.prefix.starts_with(max) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, ClusteringBound, RangeTombstone, Row, Tombstone};
    use proptest::prelude::*;

    /// Every byte string of up to three bytes over a three-letter alphabet.
    fn universe() -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..3 {
            let next: Vec<Vec<u8>> = last
                .iter()
                .flat_map(|p| {
                    (0..3u8).map(move |b| {
                        let mut k = p.clone();
                        k.push(b);
                        k
                    })
                })
                .collect();
            all.extend(next.iter().cloned());
            last = next;
        }
        all
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0..3u8, 0..=3)
    }

    fn bound() -> impl Strategy<Value = Option<ClusteringBound>> {
        proptest::option::of((key(), any::<bool>()).prop_map(|(prefix, inclusive)| {
            ClusteringBound {
                prefix: prefix.into(),
                inclusive,
            }
        }))
    }

    fn range() -> impl Strategy<Value = ClusteringRange> {
        (bound(), bound()).prop_map(|(start, end)| ClusteringRange { start, end })
    }

    proptest! {
        /// A slice that holds one of the partition's keys, or a key one of
        /// its range tombstones covers, is never reported as missing it.
        #[test]
        fn never_skips_what_a_slice_holds(
            keys in proptest::collection::vec(key(), 0..4),
            tombstones in proptest::collection::vec(range(), 0..3),
            query in proptest::collection::vec(range(), 1..3),
        ) {
            let mut partition = Partition::new();
            for k in &keys {
                partition.rows.insert(k.clone().into(), Row::new().cell(1, Cell::live(1, "v")));
            }
            for range in &tombstones {
                partition.range_tombstones.push(RangeTombstone {
                    range: range.clone(),
                    tombstone: Tombstone::new(1, 0),
                });
            }
            let mut stats = ClusteringStats::default();
            stats.record(&partition);
            let slice = SliceQuery { ranges: query.clone(), ..SliceQuery::full() };
            let held = universe().into_iter().any(|x| {
                let in_query = query.iter().any(|q| q.contains(&x));
                let present = keys.contains(&x) || tombstones.iter().any(|t| t.contains(&x));
                in_query && present
            });
            if held {
                prop_assert!(stats.may_intersect(&slice), "{stats:?} skipped {query:?}");
            }
        }

        /// Recording partitions one by one covers each of them.
        #[test]
        fn widening_covers_every_partition(
            parts in proptest::collection::vec(proptest::collection::vec(key(), 1..3), 1..4),
            query in range(),
        ) {
            let mut all = ClusteringStats::default();
            let mut partitions = Vec::new();
            for keys in parts {
                let mut p = Partition::new();
                for k in keys {
                    p.rows.insert(k.into(), Row::new());
                }
                all.record(&p);
                partitions.push(p);
            }
            let slice = SliceQuery { ranges: vec![query], ..SliceQuery::full() };
            for p in &partitions {
                let mut one = ClusteringStats::default();
                one.record(p);
                if one.may_intersect(&slice) {
                    prop_assert!(all.may_intersect(&slice));
                }
            }
        }
    }

    #[test]
    fn skips_disjoint_slices_unless_tombstones_or_statics() {
        let mut partition = Partition::new();
        for k in [&b"\x05"[..], b"\x07"] {
            partition.rows.insert(Bytes::copy_from_slice(k), Row::new());
        }
        let mut stats = ClusteringStats::default();
        stats.record(&partition);
        let slice = |start: &[u8], end: &[u8]| SliceQuery {
            ranges: vec![ClusteringRange::new(
                Some(ClusteringBound::inclusive(start.to_vec())),
                Some(ClusteringBound::inclusive(end.to_vec())),
            )],
            ..SliceQuery::full()
        };
        assert!(!stats.may_intersect(&slice(b"\x08", b"\x09")));
        assert!(!stats.may_intersect(&slice(b"\x01", b"\x04")));
        assert!(stats.may_intersect(&slice(b"\x06", b"\x09")));
        assert!(stats.may_intersect(&SliceQuery::full()));
        partition.deletion = Some(Tombstone::new(1, 0));
        stats.record(&partition);
        assert!(stats.may_intersect(&slice(b"\x08", b"\x09")));
        assert!(!ClusteringStats::default().may_intersect(&SliceQuery::full()));
    }
}
