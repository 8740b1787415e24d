//! The commitlog's errors.

/// Why a commitlog operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitlogError {
    /// Filesystem work failed (`operation` says which, e.g. "open segment").
    #[error("commitlog: cannot {operation} {path}: {message}")]
    Io {
        operation: &'static str,
        path: String,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// A write or sync failed earlier: nothing written since can be trusted
    /// to be durable, so every append is refused until a restart replays
    /// what did reach the disk.
    #[error("commitlog is poisoned and refuses writes until restart: {reason}")]
    Poisoned { reason: String },
    /// The entry cannot fit in one segment.
    #[error("commitlog entry of {bytes} bytes exceeds the largest entry of {max_bytes} bytes")]
    EntryTooLarge { bytes: usize, max_bytes: usize },
    /// The configuration cannot be used.
    #[error("invalid commitlog configuration: {reason}")]
    InvalidConfig { reason: String },
    /// The commitlog is closing or closed.
    #[error("commitlog is closed")]
    Closed,
}

impl CommitlogError {
    pub(crate) fn io(
        operation: &'static str,
        path: &std::path::Path,
        error: std::io::Error,
    ) -> Self {
        CommitlogError::Io {
            operation,
            path: path.display().to_string(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}
