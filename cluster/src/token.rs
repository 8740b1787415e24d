//! Murmur3 tokens and shard ownership.
