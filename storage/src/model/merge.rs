//! K-way merge of sorted sources: groups the entries that share a key.
//!
//! Reads see a handful of sources (the active memtable, memtables being flushed, later
//! SSTables), each sorted by the same key. A linear scan over the peeked heads beats a
//! heap at these sizes and keeps the code obvious.

use std::iter::Peekable;

/// One sorted source of `(key, value)` entries.
pub type SortedSource<'a, K, V> = Box<dyn Iterator<Item = (&'a K, &'a V)> + 'a>;

/// Yields `(key, values from every source holding key)` in ascending key order, or
/// descending when `reversed` (each source must then iterate descending too).
pub struct MergeByKey<'a, K: Ord, V> {
    sources: Vec<Peekable<SortedSource<'a, K, V>>>,
    reversed: bool,
}

impl<'a, K: Ord, V> MergeByKey<'a, K, V> {
    /// Merges sources that are each sorted in the direction given by `reversed`.
    pub fn new(sources: Vec<SortedSource<'a, K, V>>, reversed: bool) -> Self {
        Self {
            sources: sources.into_iter().map(Iterator::peekable).collect(),
            reversed,
        }
    }

    fn next_key(&mut self) -> Option<&'a K> {
        let mut best: Option<&'a K> = None;
        for source in &mut self.sources {
            if let Some(&(key, _)) = source.peek() {
                let better = best.is_none_or(|b| (key < b) != self.reversed && key != b);
                if better {
                    best = Some(key);
                }
            }
        }
        best
    }
}

impl<'a, K: Ord, V> Iterator for MergeByKey<'a, K, V> {
    type Item = (&'a K, Vec<&'a V>);

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.next_key()?;
        let mut values = Vec::with_capacity(self.sources.len());
        for source in &mut self.sources {
            if let Some((_, value)) = source.next_if(|&(k, _)| k == key) {
                values.push(value);
            }
        }
        Some((key, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn merges_and_groups_both_directions() {
        let a: BTreeMap<u32, char> = [(1, 'a'), (3, 'a'), (5, 'a')].into();
        let b: BTreeMap<u32, char> = [(2, 'b'), (3, 'b')].into();
        let fwd = MergeByKey::new(vec![Box::new(a.iter()), Box::new(b.iter())], false);
        let got: Vec<_> = fwd.map(|(k, v)| (*k, v.len())).collect();
        assert_eq!(got, vec![(1, 1), (2, 1), (3, 2), (5, 1)]);
        let rev = MergeByKey::new(
            vec![Box::new(a.iter().rev()), Box::new(b.iter().rev())],
            true,
        );
        let got: Vec<_> = rev.map(|(k, _)| *k).collect();
        assert_eq!(got, vec![5, 3, 2, 1]);
    }
}
