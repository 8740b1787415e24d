//! The cluster layer: tokens and shard ownership, each shard's local replica
//! state, and the storage proxy (coordinator) through which every statement
//! reads and writes.
//!
//! On a single node the proxy routes each request to the shard that owns
//! its token; the multi-node coordinator (replicas, consistency levels)
//! extends the same entry points, so the CQL layer never changes with it.
pub mod error;
pub mod local;
pub mod migration;
pub mod proxy;
pub mod token;

pub use error::ProxyError;
pub use proxy::StorageProxy;
