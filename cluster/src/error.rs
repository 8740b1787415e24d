//! Errors of the cluster layer.
use storage::error::StorageError;

/// Why a request through the storage proxy failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error("storage error on shard {shard}: {source}")]
    Storage { shard: usize, source: StorageError },
    #[error("cannot reach shard {shard}: {source}")]
    Shard {
        shard: usize,
        source: scheduler::smp::SmpError,
    },
    /// The write could not be made durable (the commitlog failed or is
    /// poisoned); it was not applied unless the error says it was logged.
    #[error("commitlog error on shard {shard}: {source}")]
    Commitlog {
        shard: usize,
        source: storage::commitlog::CommitlogError,
    },
    #[error("schema change failed: {0}")]
    Schema(String),
    #[error("a compare-and-set may write only the partition it read")]
    CasOutsidePartition,
}
