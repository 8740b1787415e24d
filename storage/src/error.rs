//! The storage crate's error type.

use std::path::PathBuf;

use crate::model::TableId;

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The table does not exist on this shard (dropped, or schema not yet applied).
    #[error("unknown table {table}")]
    UnknownTable {
        /// The table asked for.
        table: TableId,
    },
    /// `create_table` for a table that already exists.
    #[error("table {table} already exists")]
    TableAlreadyExists {
        /// The table asked for.
        table: TableId,
    },
    /// A file operation on a table's directory failed.
    #[error("{op} {path}: {message}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// An SSTable could not be written or read (checksum mismatch, malformed, IO).
    #[error("table {table}: sstable {generation}: {message}")]
    Sstable {
        /// The table.
        table: TableId,
        /// The SSTable's generation.
        generation: u64,
        /// What went wrong.
        message: String,
    },
    /// An SSTable was written by a node running another number of shards, so its data
    /// belongs to other shards than it would now.
    #[error("sstable {generation} in {dir} was written with {written_with} shards, this node runs {running}; start with --smp {written_with}")]
    ShardCountChanged {
        /// The table's directory.
        dir: PathBuf,
        /// The SSTable's generation.
        generation: u64,
        /// The shard count it was written under.
        written_with: u32,
        /// The shard count running now.
        running: u32,
    },
    /// A compaction could not run or finish.
    #[error("table {table}: compaction: {message}")]
    Compaction {
        /// The table.
        table: TableId,
        /// What went wrong.
        message: String,
    },
    /// The shard is shutting down.
    #[error("storage is shutting down")]
    Closed,
}

impl StorageError {
    /// An SSTable error of `table`'s SSTable `generation`.
    pub fn sstable(table: TableId, generation: u64, error: &crate::sstable::SstableError) -> Self {
        StorageError::Sstable {
            table,
            generation,
            message: error.to_string(),
        }
    }

    /// A compaction error of `table`.
    pub fn compaction(table: TableId, error: &crate::compaction::CompactionError) -> Self {
        StorageError::Compaction {
            table,
            message: error.to_string(),
        }
    }
}
