//! The bloom filter over an SSTable's partition keys: lets a lookup skip SSTables that
//! cannot hold a key without touching the index.
//!
//! Keys are hashed once with xxh3-128; the two 64-bit halves drive double hashing
//! (`h1 + i·h2`) for the `k` bit positions. Layout in `Filter.db` (framed):
//! `hashes u32 | bit count u64 | words u32 × u64`.
use xxhash_rust::xxh3::xxh3_128;

use super::format::{frame_end, frame_start, put_u32, put_u64, unframe};
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
    /// A filter sized for `keys` at false-positive chance `fp_chance`.
    pub(super) fn with_capacity(keys: usize, fp_chance: f64) -> Bloom {
        let n = keys.max(1) as f64;
        let ln2 = std::f64::consts::LN_2;
        let bits = (-(n * fp_chance.ln()) / (ln2 * ln2)).ceil().max(64.0) as u64;
        let hashes = ((bits as f64 / n) * ln2).round().clamp(1.0, 30.0) as u32;
        Bloom {
            hashes,
            bits,
            words: vec![0; bits.div_ceil(64) as usize],
        }
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

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = frame_start(Component::Filter);
        put_u32(&mut out, self.hashes);
        put_u64(&mut out, self.bits);
        put_u32(&mut out, self.words.len() as u32);
        for &w in &self.words {
            put_u64(&mut out, w);
        }
        frame_end(out)
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Bloom, SstableError> {
        let mut r = unframe(Component::Filter, bytes)?;
        let hashes = r.u32("hash count")?;
        let bits = r.u64("bit count")?;
        let n = r.count("filter words", 8)?;
        let words = (0..n)
            .map(|_| r.u64("filter word"))
            .collect::<Result<Vec<_>, _>>()?;
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
