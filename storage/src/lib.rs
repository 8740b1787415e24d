//! The storage engine of one shard: types, schema, mutations, memtables.
pub mod commitlog;
pub mod compaction;
pub mod database;
pub mod error;
pub mod memtable;
pub mod model;
pub mod schema;
pub mod sstable;
pub mod table;
#[cfg(test)]
mod test_support;
pub mod types;
