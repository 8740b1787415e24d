//! The storage engine of one shard: types, schema, mutations, memtables.
pub mod memtable;
pub mod model;
pub mod types;
