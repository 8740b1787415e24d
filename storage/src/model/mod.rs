//! Mutations, cells, tombstones, keys.
