//! The storage crate's error type.

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
}
