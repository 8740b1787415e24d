//! Cluster layer: tokens, sharding, the storage proxy (coordinator).
pub mod token;
