//! Murmur3 tokens and shard ownership.
//!
//! This module owns three pure functions of bytes that must agree, bit for bit, with what
//! token-aware and shard-aware CQL drivers compute on the client side; if they disagree, every
//! request is routed to the wrong node or shard and pays an extra hop.
//!
//! - **Token**: the Murmur3 partitioner token of a serialized partition key: the first 64-bit
//!   half (`h1`) of the x64 128-bit MurmurHash3 with seed 0, with one deliberate deviation from
//!   the reference hash: the up-to-15 tail bytes are sign-extended (read as `i8`) before being
//!   folded in. General-purpose murmur3 crates read them as `u8` and therefore disagree for every
//!   key whose tail contains a byte >= 0x80. `i64::MIN` is reserved as the ring's minimum token,
//!   so a hash that lands there becomes `i64::MAX`, and the empty key maps to the minimum token.
//! - **Compound partition keys**: a key of several columns is hashed in its composite form (each
//!   component as a big-endian `u16` length, the bytes, and a zero end-of-component byte); a
//!   single-column key is hashed as its raw bytes.
//! - **Shard of a token**: biased-token round-robin. The token is biased into `u64` (so the
//!   ring's minimum maps to 0), its `ignore_msb` most significant bits are dropped, and the
//!   remaining fraction of the ring is scaled by the shard count. Dropping the top bits makes
//!   ownership alternate between shards 2^ignore_msb times around the ring, so a vnode range of
//!   any node spreads over all shards instead of landing on one.
//! - **Shard of a source port**: on the shard-aware port the client picks its source port so
//!   that `port % shard_count` names the shard it wants.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The minimum token of the ring; no partition key hashes to it (see [`murmur3_token`]).
pub const MIN_TOKEN: i64 = i64::MIN;

/// The `ignore_msb` value shard-aware drivers expect us to advertise and use.
pub const DEFAULT_IGNORE_MSB: u32 = 12;

/// Errors of partition-key (de)serialization.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A component of a compound key is longer than its `u16` length prefix can express.
    #[error("partition key component {index} is {len} bytes, longer than the 65535 allowed")]
    ComponentTooLong { index: usize, len: usize },
    /// A compound key ended in the middle of a component.
    #[error(
        "compound partition key truncated at byte {offset}: need {needed} bytes, have {available}"
    )]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A component was not followed by the zero end-of-component byte.
    #[error("compound partition key component {index} ends with byte {found:#04x}, expected 0x00")]
    BadEndOfComponent { index: usize, found: u8 },
    /// The key holds a different number of components than the table's partition key has.
    #[error("compound partition key has {found} components, expected {expected}")]
    ComponentCountMismatch { expected: usize, found: usize },
}

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

/// The partitioner token of a serialized partition key (see the module docs).
///
/// The empty key is the ring's minimum token, [`MIN_TOKEN`]; every other key hashes into
/// `(MIN_TOKEN, i64::MAX]`.
pub fn murmur3_token(key: &[u8]) -> i64 {
    if key.is_empty() {
        return MIN_TOKEN;
    }
    let h1 = murmur3_x64_128_h1(key) as i64;
    // The minimum token means "before every key", so no key may own it.
    if h1 == MIN_TOKEN {
        i64::MAX
    } else {
        h1
    }
}

/// The first half of MurmurHash3 x64 128 with seed 0 and sign-extended tail bytes.
fn murmur3_x64_128_h1(data: &[u8]) -> u64 {
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let (k1, k2) = block.split_at(8);
        h1 ^= mix_k1(u64::from_le_bytes(
            k1.try_into().expect("split_at(8) of 16"),
        ));
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(u64::from_le_bytes(
            k2.try_into().expect("split_at(8) of 16"),
        ));
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    if tail.len() > 8 {
        h2 ^= mix_k2(signed_tail_word(&tail[8..]));
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(signed_tail_word(&tail[..tail.len().min(8)]));
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1.wrapping_add(h2)
}

/// Folds up to 8 tail bytes into a little-endian word, sign-extending each byte: the quirk
/// that every deployed token depends on, so it is kept on purpose.
fn signed_tail_word(bytes: &[u8]) -> u64 {
    debug_assert!(bytes.len() <= 8);
    bytes.iter().enumerate().fold(0u64, |word, (i, &b)| {
        word ^ (i64::from(b as i8) as u64).wrapping_shl(8 * i as u32)
    })
}

fn mix_k1(k1: u64) -> u64 {
    k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2)
}

fn mix_k2(k2: u64) -> u64 {
    k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Serializes the partition key columns (each already in its CQL value encoding) into the form
/// that is hashed and stored: one column as its raw bytes, several in composite form
/// (`u16` BE length, bytes, `0x00` per column). No columns give the empty key.
pub fn serialize_partition_key(components: &[&[u8]]) -> Result<Bytes, TokenError> {
    if let [single] = components {
        return Ok(Bytes::copy_from_slice(single));
    }
    let total: usize = components.iter().map(|c| c.len() + 3).sum();
    let mut out = BytesMut::with_capacity(total);
    for (index, component) in components.iter().enumerate() {
        let len = u16::try_from(component.len()).map_err(|_| TokenError::ComponentTooLong {
            index,
            len: component.len(),
        })?;
        out.put_u16(len);
        out.put_slice(component);
        out.put_u8(0);
    }
    debug_assert_eq!(out.len(), total);
    Ok(out.freeze())
}

/// Splits a serialized partition key back into its `component_count` columns without copying;
/// the inverse of [`serialize_partition_key`].
pub fn split_partition_key(key: &Bytes, component_count: usize) -> Result<Vec<Bytes>, TokenError> {
    if component_count == 1 {
        return Ok(vec![key.clone()]);
    }
    let mut components = Vec::with_capacity(component_count);
    let mut offset = 0;
    while offset < key.len() {
        let (component, next) = split_component(key, offset, components.len())?;
        components.push(component);
        offset = next;
    }
    if components.len() != component_count {
        return Err(TokenError::ComponentCountMismatch {
            expected: component_count,
            found: components.len(),
        });
    }
    Ok(components)
}

/// Reads the component starting at `offset`; returns it and the offset just past its
/// end-of-component byte.
fn split_component(key: &Bytes, offset: usize, index: usize) -> Result<(Bytes, usize), TokenError> {
    let truncated = |needed: usize| TokenError::Truncated {
        offset,
        needed,
        available: key.len() - offset,
    };
    let header = key.get(offset..offset + 2).ok_or_else(|| truncated(2))?;
    let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
    let start = offset + 2;
    let end_of_component = start + len;
    let found = *key
        .get(end_of_component)
        .ok_or_else(|| truncated(len + 3))?;
    if found != 0 {
        return Err(TokenError::BadEndOfComponent { index, found });
    }
    Ok((key.slice(start..end_of_component), end_of_component + 1))
}

/// Which shard of a node owns a token (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharder {
    shard_count: u32,
    ignore_msb: u32,
}

impl Sharder {
    /// A sharder for `shard_count` shards (at least 1) dropping `ignore_msb` (< 64) bits.
    pub fn new(shard_count: u32, ignore_msb: u32) -> Self {
        assert!(shard_count > 0, "a node has at least one shard");
        assert!(ignore_msb < 64, "ignore_msb {ignore_msb} must be below 64");
        Self {
            shard_count,
            ignore_msb,
        }
    }

    /// A sharder with the [`DEFAULT_IGNORE_MSB`] drivers assume.
    pub fn with_default_ignore_msb(shard_count: u32) -> Self {
        Self::new(shard_count, DEFAULT_IGNORE_MSB)
    }

    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    pub fn ignore_msb(&self) -> u32 {
        self.ignore_msb
    }

    /// The shard owning `token`: bias into `u64`, drop the top `ignore_msb` bits, and take the
    /// high 64 bits of the remaining 64-bit fraction times the shard count.
    pub fn shard_of(&self, token: i64) -> u32 {
        let biased = (token as u64).wrapping_add(1 << 63);
        let fraction = biased << self.ignore_msb;
        let shard = (u128::from(fraction) * u128::from(self.shard_count)) >> 64;
        // The fraction is below 2^64, so the product's high half is below shard_count.
        u32::try_from(shard).expect("shard below shard_count")
    }

    /// The first token `shard` owns in ownership round `round` (`0..2^ignore_msb`, in ring
    /// order), or `None` when that round has no token for the shard (only possible when there
    /// are more shards than tokens per round) or the arguments are out of range.
    pub fn shard_range_start(&self, shard: u32, round: u64) -> Option<i64> {
        if shard >= self.shard_count || round >= self.rounds() {
            return None;
        }
        let round_bits = 64 - self.ignore_msb;
        // Smallest fraction x (a multiple of 2^ignore_msb) with x * shard_count >= shard * 2^64.
        let numerator = u128::from(shard) << 64;
        let min_fraction = numerator.div_ceil(u128::from(self.shard_count));
        let low = min_fraction.div_ceil(1u128 << self.ignore_msb);
        if low >= 1u128 << round_bits {
            return None;
        }
        let low = u64::try_from(low).expect("low below 2^(64 - ignore_msb)");
        let biased = round.checked_shl(round_bits).unwrap_or(0) | low;
        let start = biased.wrapping_sub(1 << 63) as i64;
        debug_assert_eq!(self.shard_of(start), shard);
        Some(start)
    }

    /// How many times ownership cycles through all shards around the ring.
    pub fn rounds(&self) -> u64 {
        1u64 << self.ignore_msb
    }

    /// The shard a connection to the shard-aware port belongs to, by its source port.
    pub fn shard_of_port(&self, source_port: u16) -> u32 {
        shard_of_port(source_port, self.shard_count)
    }
}

/// The shard a connection to the shard-aware port belongs to: `source_port % shard_count`.
pub fn shard_of_port(source_port: u16, shard_count: u32) -> u32 {
    assert!(shard_count > 0, "a node has at least one shard");
    u32::from(source_port) % shard_count
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use scylla::routing::partitioner::{Murmur3Partitioner, Partitioner};
    use scylla::routing::{ShardCount, Token};

    /// Tokens of CQL `int` keys 1..=20 as a Cassandra server reports them.
    const INT_KEY_TOKENS: [(i32, i64); 20] = [
        (1, -4069959284402364209),
        (2, -3248873570005575792),
        (3, 9010454139840013625),
        (4, -2729420104000364805),
        (5, -7509452495886106294),
        (6, 2705480034054113608),
        (7, 1634052884888577606),
        (8, -3799847372828181882),
        (9, 3728482343045213994),
        (10, -6715243485458697746),
        (11, -4156302194539278891),
        (12, 8582886034424406875),
        (13, -5034495173465742853),
        (14, 4279681877540623768),
        (15, -1191135763843456182),
        (16, -5477287129830487822),
        (17, 5467144456125416399),
        (18, -2695747960476065067),
        (19, -3974532302236993209),
        (20, 1388667306199997068),
    ];

    #[test]
    fn int_keys_match_server_tokens() {
        for (key, token) in INT_KEY_TOKENS {
            assert_eq!(murmur3_token(&key.to_be_bytes()), token, "int key {key}");
        }
    }

    #[test]
    fn text_keys_match_driver_vectors() {
        // "kremówki" carries 0xc3 0xb3 in its tail: the sign-extension quirk matters here.
        let vectors: [(&str, i64); 4] = [
            ("test", -6017608668500074083),
            ("xd", 4507812186440344727),
            ("primary_key", -1632642444691073360),
            ("kremówki", 4354931215268080151),
        ];
        for (key, token) in vectors {
            assert_eq!(murmur3_token(key.as_bytes()), token, "key {key:?}");
        }
    }

    fn driver_token(key: &[u8]) -> i64 {
        Murmur3Partitioner.hash_one(key).value()
    }

    #[test]
    fn high_tail_bytes_match_driver() {
        // Tails of every length 1..=15 after 0, 1 and 2 full blocks, all bytes >= 0x80.
        for blocks in 0..3 {
            for tail in 1..16 {
                let key: Vec<u8> = (0..blocks * 16 + tail).map(|i| 0x80 | i as u8).collect();
                assert_eq!(murmur3_token(&key), driver_token(&key), "len {}", key.len());
                let ff = vec![0xffu8; key.len()];
                assert_eq!(
                    murmur3_token(&ff),
                    driver_token(&ff),
                    "0xff len {}",
                    ff.len()
                );
            }
        }
        // int -1 and bigint -1: four and eight 0xff bytes.
        assert_eq!(
            murmur3_token(&(-1i32).to_be_bytes()),
            driver_token(&[0xff; 4])
        );
        assert_eq!(
            murmur3_token(&(-1i64).to_be_bytes()),
            driver_token(&[0xff; 8])
        );
    }

    #[test]
    fn empty_key_is_minimum_token() {
        assert_eq!(murmur3_token(b""), MIN_TOKEN);
    }

    proptest! {
        #[test]
        fn any_key_matches_driver(key in proptest::collection::vec(any::<u8>(), 1..100)) {
            let token = murmur3_token(&key);
            prop_assert_eq!(token, driver_token(&key));
            prop_assert_ne!(token, MIN_TOKEN);
        }

        #[test]
        fn compound_key_round_trips(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 2..5)
        ) {
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let key = serialize_partition_key(&refs).expect("short components");
            let split = split_partition_key(&key, parts.len()).expect("well formed");
            prop_assert_eq!(split.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), parts);
        }

        #[test]
        fn split_never_panics(
            key in proptest::collection::vec(any::<u8>(), 0..40),
            n in 0usize..4,
        ) {
            let _ = split_partition_key(&Bytes::from(key), n);
        }

        #[test]
        fn shard_of_matches_driver_and_spec(token in any::<i64>(), shards in 1u16..=256) {
            let ours = Sharder::with_default_ignore_msb(u32::from(shards));
            let driver = scylla::routing::Sharder::new(
                ShardCount::new(shards).expect("nonzero"),
                12,
            );
            let expected = driver.shard_of(Token::new(token));
            prop_assert_eq!(ours.shard_of(token), expected);
            prop_assert_eq!(ours.shard_of(token), spec_shard_of(token, u32::from(shards), 12));
            prop_assert!(ours.shard_of(token) < u32::from(shards));
        }

        #[test]
        fn shard_of_port_matches_driver(port in any::<u16>(), shards in 1u16..=256) {
            let count = ShardCount::new(shards).expect("nonzero");
            let driver = scylla::routing::Sharder::new(count, 12);
            let expected = driver.shard_of_source_port(port);
            prop_assert_eq!(shard_of_port(port, u32::from(shards)), expected);
        }
    }

    /// The sharding algorithm restated from its description, in wide arithmetic.
    fn spec_shard_of(token: i64, shard_count: u32, ignore_msb: u32) -> u32 {
        let biased = (i128::from(token) + (1i128 << 63)) as u128;
        let dropped = (biased << ignore_msb) & u128::from(u64::MAX);
        ((dropped * u128::from(shard_count)) >> 64) as u32
    }

    #[test]
    fn shard_of_known_vectors() {
        let sharder = Sharder::new(4, 12);
        assert_eq!(sharder.shard_of(-9219783007514621794), 3);
        assert_eq!(sharder.shard_of(9222582454147032830), 3);
        assert_eq!(sharder.shard_of(MIN_TOKEN), 0);
        assert_eq!(Sharder::new(1, 12).shard_of(12345), 0);
    }

    #[test]
    fn shards_cycle_around_the_ring() {
        let sharder = Sharder::new(3, 12);
        let round = 1u64 << 52;
        for r in [0u64, 1, 7, 4095] {
            for shard in 0..3 {
                let start = sharder.shard_range_start(shard, r).expect("in range");
                assert_eq!(sharder.shard_of(start), shard);
                if start != MIN_TOKEN {
                    let previous = sharder.shard_of(start - 1);
                    assert_eq!(previous, (shard + 2) % 3, "round {r} shard {shard}");
                }
                let biased = (start as u64).wrapping_add(1 << 63);
                assert_eq!(biased / round, r);
            }
        }
        assert_eq!(sharder.shard_range_start(3, 0), None);
        assert_eq!(sharder.shard_range_start(0, 4096), None);
        assert_eq!(
            Sharder::new(5, 0)
                .shard_range_start(4, 0)
                .map(|t| Sharder::new(5, 0).shard_of(t)),
            Some(4)
        );
    }

    #[test]
    fn compound_key_layout() {
        let key = serialize_partition_key(&[b"ab", b""]).expect("short");
        assert_eq!(&key[..], &[0, 2, b'a', b'b', 0, 0, 0, 0]);
        let single = serialize_partition_key(&[b"raw"]).expect("short");
        assert_eq!(&single[..], b"raw");
        assert_eq!(
            split_partition_key(&single, 1).expect("single"),
            vec![single.clone()]
        );
        let long = vec![0u8; 70_000];
        assert_eq!(
            serialize_partition_key(&[&long, b"x"]),
            Err(TokenError::ComponentTooLong {
                index: 0,
                len: 70_000
            })
        );
    }

    #[test]
    fn malformed_compound_keys_are_errors() {
        let key = Bytes::from_static(&[0, 2, b'a', b'b', 1]);
        assert_eq!(
            split_partition_key(&key, 1 + 1),
            Err(TokenError::BadEndOfComponent { index: 0, found: 1 })
        );
        let key = Bytes::from_static(&[0, 5, b'a']);
        assert!(matches!(
            split_partition_key(&key, 2),
            Err(TokenError::Truncated { .. })
        ));
        let key = serialize_partition_key(&[b"a", b"b"]).expect("short");
        assert_eq!(
            split_partition_key(&key, 3),
            Err(TokenError::ComponentCountMismatch {
                expected: 3,
                found: 2
            })
        );
    }
}
