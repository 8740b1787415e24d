//! The sorted map a partition keeps its rows in and a row its cells in.
//!
//! Most partitions hold one row and most rows a handful of cells, yet a
//! `BTreeMap` allocates a whole node (eleven slots) for its first entry: a
//! one-row, one-cell partition cost about 2.5 KiB in two nodes, and every
//! point read or write missed the cache on both. [`SortedMap`] keeps up to
//! [`LARGE_AT`] entries in a sorted vector whose first entry lives inline
//! (no allocation at all for one entry) and switches to a `BTreeMap` beyond
//! that, so wide partitions keep logarithmic inserts. It offers the part of
//! `BTreeMap`'s interface the model uses, with the same ordering semantics.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::btree_map;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, Index};

use smallvec::SmallVec;

/// A map of more entries than this is a `BTreeMap`; of fewer, a sorted
/// vector (inserting into 32 entries moves at most a few KiB).
pub const LARGE_AT: usize = 32;

/// A sorted map: a sorted vector while small, a B-tree once large.
#[derive(Clone)]
pub struct SortedMap<K, V> {
    repr: Repr<K, V>,
}

#[derive(Clone)]
enum Repr<K, V> {
    Small(SmallVec<[(K, V); 1]>),
    Large(BTreeMap<K, V>),
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self {
            repr: Repr::Small(SmallVec::new()),
        }
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(entries) => entries.len(),
            Repr::Large(map) => map.len(),
        }
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn position<Q>(entries: &[(K, V)], key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &self.repr {
            Repr::Small(entries) => Self::position(entries, key).ok().map(|i| &entries[i].1),
            Repr::Large(map) => map.get(key),
        }
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &mut self.repr {
            Repr::Small(entries) => Self::position(entries, key).ok().map(|i| &mut entries[i].1),
            Repr::Large(map) => map.get_mut(key),
        }
    }

    /// The value of `key`, mutably, for a map keyed by byte strings: as
    /// [`SortedMap::get_mut`], ordered by [`super::keys::cmp_bytes`] (no
    /// `memcmp` on an empty key) while the map is small.
    pub fn get_mut_bytes(&mut self, key: &[u8]) -> Option<&mut V>
    where
        K: Borrow<[u8]>,
    {
        match &mut self.repr {
            Repr::Small(entries) => entries
                .binary_search_by(|(k, _)| super::keys::cmp_bytes(k.borrow(), key))
                .ok()
                .map(|i| &mut entries[i].1),
            Repr::Large(map) => map.get_mut(key),
        }
    }

    /// Whether `key` has an entry.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match &mut self.repr {
            Repr::Small(entries) => match Self::position(entries, &key) {
                Ok(i) => Some(std::mem::replace(&mut entries[i].1, value)),
                Err(i) if entries.len() < LARGE_AT => {
                    entries.insert(i, (key, value));
                    None
                }
                Err(_) => {
                    let mut map: BTreeMap<K, V> = std::mem::take(entries).into_iter().collect();
                    map.insert(key, value);
                    self.repr = Repr::Large(map);
                    None
                }
            },
            Repr::Large(map) => map.insert(key, value),
        }
    }

    /// Removes `key`'s entry; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &mut self.repr {
            Repr::Small(entries) => Self::position(entries, key)
                .ok()
                .map(|i| entries.remove(i).1),
            Repr::Large(map) => map.remove(key),
        }
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        match &mut self.repr {
            Repr::Small(entries) => entries.retain(|(k, v)| keep(k, v)),
            Repr::Large(map) => map.retain(|k, v| keep(k, v)),
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            inner: match &self.repr {
                Repr::Small(entries) => IterRepr::Small(entries.iter()),
                Repr::Large(map) => IterRepr::Large(map.iter()),
            },
        }
    }

    /// Entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut {
            inner: match &mut self.repr {
                Repr::Small(entries) => IterMutRepr::Small(entries.iter_mut()),
                Repr::Large(map) => IterMutRepr::Large(map.iter_mut()),
            },
        }
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Values in key order, mutable.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + '_ {
        self.iter_mut().map(|(_, v)| v)
    }

    /// The first entry.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.iter().next()
    }

    /// The last entry.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.iter().next_back()
    }

    /// Entries with keys within `bounds`, in key order. Unlike
    /// `BTreeMap::range`, bounds that select nothing (start above end, or
    /// equal and excluded) give an empty iterator rather than a panic.
    pub fn range<Q>(&self, bounds: (Bound<&Q>, Bound<&Q>)) -> Iter<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if selects_nothing(&bounds) {
            return Iter {
                inner: IterRepr::Small([].iter()),
            };
        }
        Iter {
            inner: match &self.repr {
                Repr::Small(entries) => {
                    let start = match bounds.0 {
                        Bound::Included(b) => entries.partition_point(|(k, _)| k.borrow() < b),
                        Bound::Excluded(b) => entries.partition_point(|(k, _)| k.borrow() <= b),
                        Bound::Unbounded => 0,
                    };
                    let end = match bounds.1 {
                        Bound::Included(b) => entries.partition_point(|(k, _)| k.borrow() <= b),
                        Bound::Excluded(b) => entries.partition_point(|(k, _)| k.borrow() < b),
                        Bound::Unbounded => entries.len(),
                    };
                    IterRepr::Small(entries[start..end.max(start)].iter())
                }
                Repr::Large(map) => IterRepr::Range(map.range::<Q, _>(bounds)),
            },
        }
    }
}

/// Whether `bounds` cannot hold any key (where `BTreeMap::range` panics).
fn selects_nothing<Q: Ord + ?Sized>(bounds: &(Bound<&Q>, Bound<&Q>)) -> bool {
    match *bounds {
        (Bound::Included(start), Bound::Included(end)) => start > end,
        (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
        | (Bound::Excluded(start), Bound::Included(end)) => start.cmp(end) != Ordering::Less,
        _ => false,
    }
}

/// Iterator over a [`SortedMap`]'s entries (or a range of them).
pub struct Iter<'a, K, V> {
    inner: IterRepr<'a, K, V>,
}

enum IterRepr<'a, K, V> {
    Small(std::slice::Iter<'a, (K, V)>),
    Large(btree_map::Iter<'a, K, V>),
    Range(btree_map::Range<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterRepr::Small(entries) => entries.next().map(|(k, v)| (k, v)),
            IterRepr::Large(iter) => iter.next(),
            IterRepr::Range(iter) => iter.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            IterRepr::Small(entries) => entries.size_hint(),
            IterRepr::Large(iter) => iter.size_hint(),
            IterRepr::Range(iter) => iter.size_hint(),
        }
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterRepr::Small(entries) => entries.next_back().map(|(k, v)| (k, v)),
            IterRepr::Large(iter) => iter.next_back(),
            IterRepr::Range(iter) => iter.next_back(),
        }
    }
}

/// Iterator over a [`SortedMap`]'s entries with mutable values.
pub struct IterMut<'a, K, V> {
    inner: IterMutRepr<'a, K, V>,
}

enum IterMutRepr<'a, K, V> {
    Small(std::slice::IterMut<'a, (K, V)>),
    Large(btree_map::IterMut<'a, K, V>),
}

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterMutRepr::Small(entries) => entries.next().map(|(k, v)| (&*k, v)),
            IterMutRepr::Large(iter) => iter.next(),
        }
    }
}

impl<K, V> DoubleEndedIterator for IterMut<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterMutRepr::Small(entries) => entries.next_back().map(|(k, v)| (&*k, v)),
            IterMutRepr::Large(iter) => iter.next_back(),
        }
    }
}

/// Owning iterator over a [`SortedMap`]'s entries, in key order.
pub struct IntoIter<K, V> {
    inner: IntoIterRepr<K, V>,
}

enum IntoIterRepr<K, V> {
    Small(smallvec::IntoIter<[(K, V); 1]>),
    Large(btree_map::IntoIter<K, V>),
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IntoIterRepr::Small(entries) => entries.next(),
            IntoIterRepr::Large(iter) => iter.next(),
        }
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter {
            inner: match self.repr {
                Repr::Small(entries) => IntoIterRepr::Small(entries.into_iter()),
                Repr::Large(map) => IntoIterRepr::Large(map.into_iter()),
            },
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a mut SortedMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;

    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        map.extend(iter);
        map
    }
}

impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> Index<&Q> for SortedMap<K, V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key in SortedMap")
    }
}

impl<K: Ord, V: PartialEq> PartialEq for SortedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Ord, V: Eq> Eq for SortedMap<K, V> {}

impl<K: Ord + fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bound(kind: u8, key: u8) -> Bound<u8> {
        match kind % 3 {
            0 => Bound::Included(key),
            1 => Bound::Excluded(key),
            _ => Bound::Unbounded,
        }
    }

    fn as_ref(bound: &Bound<u8>) -> Bound<&u8> {
        match bound {
            Bound::Included(k) => Bound::Included(k),
            Bound::Excluded(k) => Bound::Excluded(k),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        Retain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => any::<u8>().prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Every operation agrees with `BTreeMap`, across the switch from
        /// vector to tree.
        #[test]
        fn behaves_as_a_btree_map(
            ops in proptest::collection::vec(op(), 0..200),
            ranges in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 8),
        ) {
            let mut ours = SortedMap::new();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(ours.remove(&k), model.remove(&k)),
                    Op::Retain(m) => {
                        let m = u32::from(m).max(1);
                        ours.retain(|_, v| *v % m != 0);
                        model.retain(|_, v| *v % m != 0);
                    }
                }
                prop_assert_eq!(ours.len(), model.len());
            }
            prop_assert!(ours.iter().eq(model.iter()));
            prop_assert!(ours.iter().rev().eq(model.iter().rev()));
            for key in 0..=255u8 {
                prop_assert_eq!(ours.get(&key), model.get(&key));
            }
            for (start_kind, start, end_kind, end) in ranges {
                let bounds = (bound(start_kind, start), bound(end_kind, end));
                let refs = (as_ref(&bounds.0), as_ref(&bounds.1));
                let expected: Vec<_> = if selects_nothing(&refs) {
                    Vec::new()
                } else {
                    model.range(bounds).collect()
                };
                prop_assert_eq!(ours.range(refs).collect::<Vec<_>>(), expected.clone());
                let reversed: Vec<_> = expected.into_iter().rev().collect();
                prop_assert_eq!(ours.range(refs).rev().collect::<Vec<_>>(), reversed);
            }
            for (_, v) in ours.iter_mut() {
                *v = v.wrapping_add(1);
            }
            let owned: Vec<_> = ours.into_iter().collect();
            let expected: Vec<_> = model.into_iter().map(|(k, v)| (k, v.wrapping_add(1))).collect();
            prop_assert_eq!(owned, expected);
        }
    }

    proptest! {
        /// The byte-keyed lookup finds what `get_mut` finds, empty keys
        /// included, small and large.
        #[test]
        fn byte_keyed_lookup_agrees_with_get_mut(
            keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3), 0..40),
            probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3), 8),
        ) {
            let mut map: SortedMap<bytes::Bytes, usize> = SortedMap::new();
            for (i, key) in keys.iter().enumerate() {
                map.insert(bytes::Bytes::copy_from_slice(key), i);
            }
            for probe in keys.iter().chain(&probes) {
                let expected = map.get_mut(probe.as_slice()).map(|v| *v);
                prop_assert_eq!(map.get_mut_bytes(probe).map(|v| *v), expected);
            }
        }
    }

    #[test]
    fn one_entry_allocates_nothing_and_large_maps_are_trees() {
        let mut map = SortedMap::new();
        map.insert(1u32, 1u32);
        assert!(matches!(&map.repr, Repr::Small(entries) if !entries.spilled()));
        for k in 0..=LARGE_AT as u32 {
            map.insert(k, k);
        }
        assert!(matches!(map.repr, Repr::Large(_)));
        assert_eq!(map.len(), LARGE_AT + 1);
    }

    /// Memtables hold a partition per key inline in their hash map: keep
    /// the one-row, one-cell partition small (its row and cell inline).
    #[test]
    fn model_types_stay_compact() {
        use crate::model::{Partition, Row};
        assert!(std::mem::size_of::<Row>() <= 192);
        assert!(std::mem::size_of::<Partition>() <= 288);
    }
}
