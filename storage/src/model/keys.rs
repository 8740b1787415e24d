//! Keys and ranges: how partitions and clustering rows are addressed and ordered.
//!
//! Partitions sort by `(token, key bytes)`. Clustering keys are opaque bytes in an
//! order-preserving, prefix-free encoding, so `memcmp` order is clustering order and a
//! clustering prefix is a byte prefix of every full key it covers. Ranges therefore use
//! *prefix* semantics: an inclusive end bound `P` covers every key that starts with `P`.

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;

/// Orders two byte strings exactly as `<[u8]>::cmp` does, without calling
/// `memcmp` when either is empty.
///
/// An empty `Bytes` or `Vec` (every clustering key of a table without
/// clustering columns) points at a dangling address, and glibc's EVEX
/// `memcmp` reads short inputs with a masked vector load: with nothing to
/// read at an unmapped address the CPU takes a microcode assist, about 70 ns
/// a side here against 2 ns for a mapped one, which was 6-7 % of a
/// single-row INSERT's CPU. Hot lookups by clustering key go through this.
#[inline]
pub fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    if a.is_empty() || b.is_empty() {
        return a.len().cmp(&b.len());
    }
    a.cmp(b)
}

/// A partition key together with its token; the order of partitions on the ring.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecoratedKey {
    /// The partitioner's token for `key` (computed by the caller).
    pub token: i64,
    /// The serialized partition key.
    pub key: Bytes,
}

impl DecoratedKey {
    /// A key with its token.
    pub fn new(token: i64, key: impl Into<Bytes>) -> Self {
        Self {
            token,
            key: key.into(),
        }
    }
}

/// One end of a clustering range: a clustering prefix and whether it is included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusteringBound {
    /// An encoded clustering prefix (possibly a full key, possibly empty).
    pub prefix: Bytes,
    /// Whether keys equal to (for an end bound: starting with) the prefix are included.
    pub inclusive: bool,
}

impl ClusteringBound {
    /// An inclusive bound.
    pub fn inclusive(prefix: impl Into<Bytes>) -> Self {
        Self {
            prefix: prefix.into(),
            inclusive: true,
        }
    }

    /// An exclusive bound.
    pub fn exclusive(prefix: impl Into<Bytes>) -> Self {
        Self {
            prefix: prefix.into(),
            inclusive: false,
        }
    }
}

/// A range of clustering keys with prefix semantics (`None` = unbounded):
///
/// | bound           | a key `k` is inside when            |
/// |-----------------|-------------------------------------|
/// | start incl. `P` | `k >= P`                            |
/// | start excl. `P` | `k > P` and `!k.starts_with(P)`     |
/// | end incl. `P`   | `k <= P` or `k.starts_with(P)`      |
/// | end excl. `P`   | `k < P`                             |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClusteringRange {
    /// Lower bound; `None` means from the first row.
    pub start: Option<ClusteringBound>,
    /// Upper bound; `None` means to the last row.
    pub end: Option<ClusteringBound>,
}

impl ClusteringRange {
    /// Every clustering key.
    pub fn full() -> Self {
        Self::default()
    }

    /// Every key starting with `prefix` (one full key when `prefix` is a full key).
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        let prefix = prefix.into();
        Self {
            start: Some(ClusteringBound::inclusive(prefix.clone())),
            end: Some(ClusteringBound::inclusive(prefix)),
        }
    }

    /// A range from its two optional bounds.
    pub fn new(start: Option<ClusteringBound>, end: Option<ClusteringBound>) -> Self {
        Self { start, end }
    }

    /// Whether the range has no bounds at all.
    pub fn is_full(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    /// Whether `key` lies inside the range (see the type's table).
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            None => true,
            Some(b) if b.inclusive => key >= &b.prefix[..],
            Some(b) => key > &b.prefix[..] && !key.starts_with(&b.prefix),
        };
        let before_end = match &self.end {
            None => true,
            Some(b) if b.inclusive => key <= &b.prefix[..] || key.starts_with(&b.prefix),
            Some(b) => key < &b.prefix[..],
        };
        after_start && before_end
    }

    /// The range as plain `memcmp` bounds usable with `BTreeMap::range`, or `None` when
    /// the range is empty. Prefix semantics become the prefix's successor: the keys that
    /// start with `P` are exactly those in `[P, successor(P))`.
    pub fn key_bounds(&self) -> Option<(Bound<Bytes>, Bound<Bytes>)> {
        let start = match &self.start {
            None => Bound::Unbounded,
            Some(b) if b.inclusive => Bound::Included(b.prefix.clone()),
            Some(b) => Bound::Included(prefix_successor(&b.prefix)?),
        };
        let end = match &self.end {
            None => Bound::Unbounded,
            Some(b) if b.inclusive => match prefix_successor(&b.prefix) {
                Some(successor) => Bound::Excluded(successor),
                None => Bound::Unbounded,
            },
            Some(b) => Bound::Excluded(b.prefix.clone()),
        };
        bounds_nonempty(&start, &end).then_some((start, end))
    }
}

/// The smallest byte string greater than every string starting with `prefix`, or `None`
/// if there is none (the prefix is empty or all `0xff`).
fn prefix_successor(prefix: &[u8]) -> Option<Bytes> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut successor = prefix[..=last].to_vec();
    successor[last] += 1;
    Some(Bytes::from(successor))
}

/// Whether `(start, end)` selects at least a possible key. `BTreeMap::range` panics on
/// inverted bounds, so every bound pair is checked here first.
fn bounds_nonempty(start: &Bound<Bytes>, end: &Bound<Bytes>) -> bool {
    match (start, end) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => s < e,
    }
}

/// A point on the ring used to bound partition scans: a token alone, or a token and a key.
///
/// A token-only position stands for *all* keys with that token, so `Excluded(token t)` as a
/// start means "token > t" and `Included(token t)` as an end means "token <= t", which is
/// what `token(k) > t` style queries need.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RingPosition {
    /// The token.
    pub token: i64,
    /// The partition key, or `None` for every key with `token`.
    pub key: Option<Bytes>,
}

impl RingPosition {
    /// All keys with this token.
    pub fn token(token: i64) -> Self {
        Self { token, key: None }
    }

    /// Exactly this decorated key.
    pub fn key(key: &DecoratedKey) -> Self {
        Self {
            token: key.token,
            key: Some(key.key.clone()),
        }
    }

    /// How `key` compares with this position; `Equal` for every key of a token-only position.
    fn compare(&self, key: &DecoratedKey) -> Ordering {
        let by_token = key.token.cmp(&self.token);
        match &self.key {
            Some(k) => by_token.then_with(|| key.key.cmp(k)),
            None => by_token,
        }
    }
}

/// A non-wrapping range of partitions in ring order. Callers split wrapping token ranges
/// into two before asking storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRange {
    /// Lower bound.
    pub start: Bound<RingPosition>,
    /// Upper bound.
    pub end: Bound<RingPosition>,
}

impl PartitionRange {
    /// The whole ring.
    pub fn full() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// A range of tokens, e.g. `tokens(Excluded(t), Unbounded)` for `token(k) > t`.
    pub fn tokens(start: Bound<i64>, end: Bound<i64>) -> Self {
        Self {
            start: start.map(RingPosition::token),
            end: end.map(RingPosition::token),
        }
    }

    /// Whether `key` is after the start bound.
    pub fn after_start(&self, key: &DecoratedKey) -> bool {
        match &self.start {
            Bound::Unbounded => true,
            Bound::Included(p) => p.compare(key) != Ordering::Less,
            Bound::Excluded(p) => p.compare(key) == Ordering::Greater,
        }
    }

    /// Whether `key` is before the end bound.
    pub fn before_end(&self, key: &DecoratedKey) -> bool {
        match &self.end {
            Bound::Unbounded => true,
            Bound::Included(p) => p.compare(key) != Ordering::Greater,
            Bound::Excluded(p) => p.compare(key) == Ordering::Less,
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &DecoratedKey) -> bool {
        self.after_start(key) && self.before_end(key)
    }

    /// A lower bound for seeking a sorted map: no key in the range sorts before it (keys
    /// between it and the true start are skipped with [`Self::after_start`]).
    pub fn seek_start(&self) -> Bound<DecoratedKey> {
        match &self.start {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(p) | Bound::Excluded(p) => Bound::Included(DecoratedKey {
                token: p.token,
                key: p.key.clone().unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmp_bytes_orders_as_slices_do() {
        let backing = [0_u8, 1, 255];
        let keys: [&[u8]; 7] = [&[], &backing[..0], &[0], &[0, 0], &[1], &[255, 0], &backing];
        for a in keys {
            for b in keys {
                assert_eq!(cmp_bytes(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    fn range(
        start: Option<(&'static [u8], bool)>,
        end: Option<(&'static [u8], bool)>,
    ) -> ClusteringRange {
        let bound = |(p, inclusive): (&'static [u8], bool)| ClusteringBound {
            prefix: Bytes::from_static(p),
            inclusive,
        };
        ClusteringRange::new(start.map(bound), end.map(bound))
    }

    #[test]
    fn prefix_semantics() {
        let r = range(Some((b"a", false)), Some((b"c", true)));
        assert!(!r.contains(b"a"));
        assert!(!r.contains(b"a\x01"));
        assert!(r.contains(b"b"));
        assert!(r.contains(b"c"));
        assert!(r.contains(b"c\xff\xff"));
        assert!(!r.contains(b"d"));
        let r = range(Some((b"a", true)), Some((b"c", false)));
        assert!(r.contains(b"a"));
        assert!(r.contains(b"a\x05"));
        assert!(!r.contains(b"c"));
        assert!(!r.contains(b"c\x00"));
    }

    #[test]
    fn successor_and_bounds() {
        assert_eq!(prefix_successor(b"ab"), Some(Bytes::from_static(b"ac")));
        assert_eq!(
            prefix_successor(b"a\xff\xff"),
            Some(Bytes::from_static(b"b"))
        );
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(prefix_successor(b""), None);
        assert!(range(Some((b"", false)), None).key_bounds().is_none());
        assert!(range(Some((b"c", true)), Some((b"a", true)))
            .key_bounds()
            .is_none());
        assert!(range(Some((b"a", false)), Some((b"a", true)))
            .key_bounds()
            .is_none());
        assert!(range(Some((b"a", true)), Some((b"a", true)))
            .key_bounds()
            .is_some());
    }

    #[test]
    fn token_only_positions_cover_the_whole_token() {
        let k = |t, key: &'static [u8]| DecoratedKey::new(t, Bytes::from_static(key));
        let after_5 = PartitionRange::tokens(Bound::Excluded(5), Bound::Unbounded);
        assert!(!after_5.contains(&k(5, b"")));
        assert!(!after_5.contains(&k(5, b"zzz")));
        assert!(after_5.contains(&k(6, b"")));
        let upto_5 = PartitionRange::tokens(Bound::Unbounded, Bound::Included(5));
        assert!(upto_5.contains(&k(5, b"zzz")));
        assert!(!upto_5.contains(&k(6, b"")));
        let below_5 = PartitionRange::tokens(Bound::Unbounded, Bound::Excluded(5));
        assert!(!below_5.contains(&k(5, b"")));
        assert!(below_5.contains(&k(4, b"zzz")));
    }
}
