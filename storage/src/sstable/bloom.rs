//! The bloom filter over an SSTable's partition keys: lets a lookup skip SSTables that
//! cannot hold a key without touching the index.
//!
//! Keys are hashed once with xxh3-128; the two 64-bit halves drive double hashing
//! (`h1 + i·h2`) for the `k` bit positions. Layout in `Filter.db` (framed):
//! `hashes u32 | bit count u64 | words u32 × u64`.
//!
//! The writer builds its filter as keys arrive ([`Bloom::foldable`]), sized for a count
//! it is told up front, an upper bound: at finish it folds the filter down to what the
//! real count needs ([`Bloom::fold_to`]). Why not collect the keys' hashes and build the
//! filter at the end: for a large SSTable that is millions of scattered inserts in one
//! stretch of the shard's time (and 16 bytes per key held until then).
use xxhash_rust::xxh3::xxh3_128;

use super::format::{frame_end, frame_start, put_u32, put_u64, put_u64s, unframe};
use super::{Component, SstableError};

/// A fixed-size bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bloom {
    hashes: u32,
    bits: u64,
    words: Vec<u64>,
}

/// The two hash halves of a key (what the writer keeps until the key count is known).
pub(super) fn key_hash(key: &[u8]) -> (u64, u64) {
    let h = xxh3_128(key);
    (h as u64, ((h >> 64) as u64) | 1)
}

impl Bloom {
    /// A filter for `keys` at false-positive chance `fp_chance` (`bits` as
    /// [`needed_bits`] gives, `hashes = round(bits/keys · ln 2)` in 1..=30) whose word
    /// count is a multiple of a large power of two, so [`Bloom::fold_to`] can halve it
    /// many times: `base << folds` words with `base` in 64..128 (at most 1/64 more words
    /// than needed).
    pub(super) fn foldable(keys: u64, fp_chance: f64) -> Bloom {
        let n = keys.max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let needed_words = needed_bits(keys, fp_chance).div_ceil(64);
        let folds = (needed_words / 64).max(1).ilog2();
        let words = needed_words.div_ceil(1 << folds) << folds;
        let bits = words * 64;
        let hashes = ((bits as f64 / n) * ln2).round().clamp(1.0, 30.0) as u32;
        Bloom {
            hashes,
            bits,
            words: vec![0; words as usize],
        }
    }

    /// The expected false-positive chance once `keys` keys are in the filter:
    /// `(1 - e^(-k·n/m))^k`.
    pub(super) fn fp_chance_at(&self, keys: u64) -> f64 {
        fp_chance(self.hashes, self.bits, keys)
    }

    /// Halves the filter while it can (a whole, even number of words) and the half
    /// would still meet `fp_chance` with `keys` keys. Bit `x mod bits` folds onto
    /// `x mod bits/2` (`bits/2` divides `bits`), so every key inserted before is still
    /// found: halving ORs the upper half of the words onto the lower.
    pub(super) fn fold_to(&mut self, keys: u64, fp_chance_target: f64) {
        while self.bits == self.words.len() as u64 * 64
            && self.words.len().is_multiple_of(2)
            && fp_chance(self.hashes, self.bits / 2, keys) <= fp_chance_target
        {
            let half = self.words.len() / 2;
            let (low, high) = self.words.split_at_mut(half);
            for (l, h) in low.iter_mut().zip(high.iter()) {
                *l |= *h;
            }
            self.words.truncate(half);
            self.bits /= 2;
        }
    }

    /// The filter's size in bits.
    #[cfg(test)]
    pub(super) fn bits(&self) -> u64 {
        self.bits
    }

    fn positions(&self, (h1, h2): (u64, u64)) -> impl Iterator<Item = u64> + '_ {
        (0..u64::from(self.hashes)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % self.bits)
    }

    /// Adds a key by its hash.
    pub(super) fn insert(&mut self, (h1, h2): (u64, u64)) {
        // The positions `positions` gives, without borrowing `self` (no
        // vector per key: a large SSTable's filter takes millions of inserts).
        let bits = self.bits;
        for i in 0..u64::from(self.hashes) {
            let p = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            self.words[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    /// Whether the key may have been inserted (never false for an inserted key).
    pub(super) fn may_contain(&self, key: &[u8]) -> bool {
        self.positions(key_hash(key))
            .all(|p| self.words[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }

    /// Encodes the filter; a large one in `TaskQuota`-sized slices (a filter of
    /// millions of keys is megabytes).
    pub(super) async fn encode(&self) -> Vec<u8> {
        let mut out = frame_start(Component::Filter);
        out.reserve(16 + self.words.len() * 8 + 4);
        put_u32(&mut out, self.hashes);
        put_u64(&mut out, self.bits);
        put_u32(&mut out, self.words.len() as u32);
        put_u64s(&mut out, &self.words).await;
        frame_end(out)
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Bloom, SstableError> {
        let mut r = unframe(Component::Filter, bytes)?;
        let hashes = r.u32("hash count")?;
        let bits = r.u64("bit count")?;
        let n = r.count("filter words", 8)?;
        let words = r.u64s(n, "filter words")?;
        r.finish()?;
        if bits == 0 || hashes == 0 || bits.div_ceil(64) != n as u64 {
            return Err(SstableError::malformed(
                Component::Filter,
                0,
                "inconsistent filter size",
            ));
        }
        Ok(Bloom {
            hashes,
            bits,
            words,
        })
    }
}

/// The bits a filter of `keys` keys needs for false-positive chance `fp_chance`:
/// `⌈-n·ln p / ln²2⌉`, at least 64.
fn needed_bits(keys: u64, fp_chance: f64) -> u64 {
    let n = keys.max(1) as f64;
    let ln2 = std::f64::consts::LN_2;
    (-(n * fp_chance.ln()) / (ln2 * ln2)).ceil().max(64.0) as u64
}

/// `(1 - e^(-k·n/m))^k`: the false-positive chance of `hashes` = k hash functions over
/// `bits` = m bits holding `keys` = n keys.
fn fp_chance(hashes: u32, bits: u64, keys: u64) -> f64 {
    let k = f64::from(hashes);
    (1.0 - (-k * keys as f64 / bits.max(1) as f64).exp()).powf(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    fn insert_keys(bloom: &mut Bloom, keys: std::ops::Range<u64>) {
        for i in keys {
            bloom.insert(key_hash(&key(i)));
        }
    }

    /// The share of `probes` keys never inserted that the filter admits.
    fn measured_fp(bloom: &Bloom, probes: u64) -> f64 {
        let admitted = (0..probes)
            .filter(|i| bloom.may_contain(&key(1_000_000_000 + i)))
            .count();
        admitted as f64 / probes as f64
    }

    #[test]
    fn a_foldable_filter_meets_its_chance_at_the_expected_count() {
        for fp in [0.01, 0.1] {
            let mut bloom = Bloom::foldable(20_000, fp);
            insert_keys(&mut bloom, 0..20_000);
            assert!((0..20_000).all(|i| bloom.may_contain(&key(i))));
            assert!(bloom.fp_chance_at(20_000) <= fp * 1.02, "{fp}");
            let measured = measured_fp(&bloom, 200_000);
            assert!(measured <= fp * 1.3, "fp {fp}: measured {measured}");
        }
    }

    #[test]
    fn folding_keeps_every_key_and_the_chance() {
        let (keys, fp) = (20_000, 0.01);
        let mut bloom = Bloom::foldable(16 * keys, fp);
        let before = bloom.bits();
        insert_keys(&mut bloom, 0..keys);
        bloom.fold_to(keys, fp);
        let exact = needed_bits(keys, fp);
        assert!(bloom.bits() < before / 8, "{} of {before}", bloom.bits());
        // Folding stops at the last halving that meets the chance: within twice the
        // size a filter sized exactly would have.
        assert!(bloom.bits() >= exact && bloom.bits() <= 2 * exact);
        assert!((0..keys).all(|i| bloom.may_contain(&key(i))));
        assert!(bloom.fp_chance_at(keys) <= fp);
        let measured = measured_fp(&bloom, 200_000);
        assert!(measured <= fp * 1.3, "measured {measured}");
        // The folded filter survives encoding.
        let decoded = Bloom::decode(&futures_lite::future::block_on(bloom.encode()));
        assert_eq!(decoded.expect("decode"), bloom);
    }

    #[test]
    fn folding_a_filter_sized_right_changes_nothing() {
        let mut bloom = Bloom::foldable(20_000, 0.01);
        insert_keys(&mut bloom, 0..20_000);
        let before = bloom.clone();
        bloom.fold_to(20_000, 0.01);
        assert_eq!(bloom, before);
    }

    #[test]
    fn keys_beyond_the_expected_count_are_still_found() {
        let mut bloom = Bloom::foldable(1_000, 0.01);
        insert_keys(&mut bloom, 0..5_000);
        assert!((0..5_000).all(|i| bloom.may_contain(&key(i))));
        // The chance degrades: what makes the writer build the filter again.
        assert!(bloom.fp_chance_at(5_000) > 0.1);
        bloom.fold_to(5_000, 0.01);
        assert!((0..5_000).all(|i| bloom.may_contain(&key(i))));
    }

    #[test]
    fn foldable_sizes_waste_little() {
        for keys in [0, 1, 100, 10_000, 1_000_000, 40_000_000] {
            let foldable = Bloom::foldable(keys, 0.01);
            let exact = needed_bits(keys, 0.01);
            assert!(foldable.bits() >= exact);
            assert!(foldable.bits() <= exact + exact / 64 + 64, "{keys}");
            assert_eq!(foldable.bits() % 64, 0);
        }
    }
}
