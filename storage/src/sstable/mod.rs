//! Tessera's SSTable format (version 4): an immutable, sorted, checksummed file set holding
//! the partitions of one memtable flush (or, later, of a compaction).
//!
//! An SSTable is identified by its directory and a generation number; each component is a
//! file `tsr-<generation>-<Component>` in that directory. The format is specified in
//! `storage/DESIGN.md` ("SSTables"); in short:
//!
//! - `Data.db`: partitions in ring order, lz4-compressed in chunks, each chunk followed by
//!   its CRC32. Offsets into data are positions in the *uncompressed* stream. A partition
//!   is a header (tombstone, static row, range tombstones), its rows in clustering order
//!   cut into row blocks, and, when it has several blocks, a clustering index (each
//!   block's first and last clustering key and position), so a slice of a large
//!   partition reads only the blocks that can hold it.
//! - `CompressionInfo.db`: the chunk size and every chunk's offset in `Data.db`.
//! - `Index.db`: key → data position (and clustering index position), in blocks, each
//!   with its own CRC32.
//! - `Summary.db`: the first key of every index block; held in memory to find the one
//!   index block a lookup reads.
//! - `Filter.db`: a bloom filter over the partition keys.
//! - `Statistics.db`: timestamps, token range, partition count, and what compaction
//!   strategies choose by: level, tombstone drop times and counts, creation time; and
//!   the clustering span (smallest and largest clustering keys) that lets a point read
//!   of a clustering slice skip the SSTable.
//! - `TOC.txt`: the component list, written last (after every other component is durable,
//!   via a temporary name and a rename). An SSTable without a TOC is incomplete.
//!
//! Every byte read is covered by a checksum that is verified before it is used, so
//! corruption surfaces as an [`SstableError`], never as wrong data.
//!
//! Decompressed chunks are kept in the shard's [`ChunkCache`], shared by every SSTable
//! the shard has open.
//!
//! All file IO goes through `scheduler::io` (direct IO on the shard's reactor); the types
//! here are `!Send` and live on one shard.

mod bloom;
mod cache;
mod clustering;
mod format;
mod reader;
mod scan;
mod writer;

#[cfg(test)]
mod slice_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

pub use cache::{ChunkCache, ChunkCacheStats, DEFAULT_CHUNK_CACHE_BYTES};
pub use reader::Sstable;
pub use scan::{ScannedPartition, SstableScanner};
pub use writer::SstableWriter;

use crate::commitlog::ReplayPosition;
use crate::model::CodecError;

/// The SSTable format version this build writes and reads.
///
/// Version 1 (no level or tombstone statistics) was never released; version 2 (each
/// partition one mutation payload, no clustering index) is refused too. Version 3
/// (no clustering statistics) is still read; its SSTables are never skipped by a
/// clustering slice.
pub const SSTABLE_FORMAT_VERSION: u32 = 4;

/// The oldest format version this build reads.
pub const OLDEST_READABLE_FORMAT_VERSION: u32 = 3;

/// Tuning of a written SSTable (readers take everything from the files).
#[derive(Debug, Clone, PartialEq)]
pub struct SstableOptions {
    /// Uncompressed bytes per compressed data chunk.
    pub chunk_size: usize,
    /// Target false-positive chance of the bloom filter, in (0, 1).
    pub bloom_fp_chance: f64,
    /// Index entries per index block (one summary entry per block).
    pub index_block_entries: usize,
    /// Uncompressed bytes after which a partition's row block is cut (a block holds at
    /// least one row, so a larger row makes a larger block).
    pub row_block_size: usize,
}

impl Default for SstableOptions {
    fn default() -> Self {
        Self {
            chunk_size: 16 * 1024,
            bloom_fp_chance: 0.01,
            index_block_entries: 128,
            row_block_size: 8 * 1024,
        }
    }
}

/// What `Statistics.db` records about an SSTable's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SstableStats {
    /// Number of partitions.
    pub partition_count: u64,
    /// Smallest write or deletion timestamp of any cell, marker or tombstone (`None`: no
    /// timestamped data at all).
    pub min_timestamp: Option<i64>,
    /// Largest such timestamp.
    pub max_timestamp: Option<i64>,
    /// Token of the first partition (`None`: empty SSTable).
    pub min_token: Option<i64>,
    /// Token of the last partition.
    pub max_token: Option<i64>,
    /// Length of the uncompressed data stream, bytes.
    pub uncompressed_bytes: u64,
    /// Length of `Data.db` on disk, bytes.
    pub data_bytes: u64,
    /// Compaction level (0: flushed, or written by a strategy without levels).
    pub level: u32,
    /// Smallest local deletion time (tombstone deletion time, or the expiry of a TTL
    /// value), seconds (`None`: no tombstone and no TTL value).
    pub min_local_deletion_time: Option<i32>,
    /// Largest such local deletion time.
    pub max_local_deletion_time: Option<i32>,
    /// Cells, row markers and tombstones of every kind.
    pub cell_count: u64,
    /// Tombstones of every kind plus TTL values (which become tombstones when they
    /// expire): what a purge may drop once past gc grace.
    pub tombstone_count: u64,
    /// When the SSTable was written, seconds since the epoch.
    pub created_at_secs: i64,
    /// Every write of the table logged before this commitlog position was in an
    /// SSTable (this one or an older one) when this SSTable was written, so replay
    /// skips the table's entries before it (`None`: nothing known).
    pub replay_floor: Option<ReplayPosition>,
}

impl SstableStats {
    /// Estimated share of the cells that a compaction at `gc_before_secs` could drop,
    /// in `[0, 1]`, assuming drop times spread evenly between the recorded minimum and
    /// maximum (the statistics keep no histogram).
    pub fn droppable_tombstone_ratio(&self, gc_before_secs: i32) -> f64 {
        let (Some(min), Some(max)) = (self.min_local_deletion_time, self.max_local_deletion_time)
        else {
            return 0.0;
        };
        if self.cell_count == 0 || gc_before_secs <= min {
            return 0.0;
        }
        let share = if gc_before_secs > max {
            1.0
        } else {
            f64::from(gc_before_secs - min) / (f64::from(max) - f64::from(min) + 1.0)
        };
        share * self.tombstone_count as f64 / self.cell_count as f64
    }
}

/// A finished SSTable, as [`SstableWriter::finish`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstableMeta {
    /// The SSTable's directory.
    pub dir: PathBuf,
    /// Its generation.
    pub generation: u64,
    /// Its statistics.
    pub stats: SstableStats,
}

/// The components of an SSTable, in the order the TOC lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// Compressed partitions.
    Data,
    /// Chunk offsets of `Data`.
    CompressionInfo,
    /// Key → position, in checksummed blocks.
    Index,
    /// First key of each index block.
    Summary,
    /// Bloom filter of the keys.
    Filter,
    /// Statistics.
    Statistics,
    /// Table of contents (written last).
    Toc,
}

impl Component {
    /// Every component but the TOC, in TOC order.
    pub const LISTED: [Component; 6] = [
        Component::Data,
        Component::CompressionInfo,
        Component::Index,
        Component::Summary,
        Component::Filter,
        Component::Statistics,
    ];

    /// The component's file-name suffix.
    pub fn name(self) -> &'static str {
        match self {
            Component::Data => "Data.db",
            Component::CompressionInfo => "CompressionInfo.db",
            Component::Index => "Index.db",
            Component::Summary => "Summary.db",
            Component::Filter => "Filter.db",
            Component::Statistics => "Statistics.db",
            Component::Toc => "TOC.txt",
        }
    }

    /// The component's file in `dir` for `generation`.
    pub fn path(self, dir: &Path, generation: u64) -> PathBuf {
        dir.join(format!("tsr-{generation}-{}", self.name()))
    }

    fn from_name(name: &str) -> Option<Component> {
        Component::LISTED.into_iter().find(|c| c.name() == name)
    }
}

/// Why an SSTable could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SstableError {
    /// A file operation failed.
    #[error("sstable io: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOC is missing: the SSTable was never completely written.
    #[error("sstable generation {generation} in {dir} is incomplete (no TOC)")]
    Incomplete { dir: PathBuf, generation: u64 },
    /// A complete SSTable of this generation already exists.
    #[error("sstable generation {generation} already exists in {dir}")]
    AlreadyExists { dir: PathBuf, generation: u64 },
    /// Bytes do not match the checksum stored with them.
    #[error("sstable {component:?} checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        component: Component,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    /// Checksummed bytes that do not form valid contents (or a file of the wrong size).
    #[error("sstable {component:?} malformed at offset {offset}: {reason}")]
    Malformed {
        component: Component,
        offset: u64,
        reason: String,
    },
    /// A component of a format version this build does not read.
    #[error(
        "sstable {component:?} has format version {version}, this build reads 3 to {supported}"
    )]
    UnsupportedVersion {
        component: Component,
        version: u32,
        supported: u32,
    },
    /// A partition payload failed to decode.
    #[error("sstable partition at data position {position} undecodable: {source}")]
    Decode {
        position: u64,
        #[source]
        source: CodecError,
    },
    /// The writer was given partitions out of ring order (or a key twice).
    #[error("sstable partitions out of order: token {token} key {key:?} after token {previous_token} key {previous_key:?}")]
    OutOfOrder {
        previous_token: i64,
        previous_key: Vec<u8>,
        token: i64,
        key: Vec<u8>,
    },
    /// Options the writer cannot honour.
    #[error("invalid sstable options: {reason}")]
    InvalidOptions { reason: String },
}

impl SstableError {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SstableError {
        let path = path.to_path_buf();
        move |source| SstableError::Io { op, path, source }
    }

    fn malformed(component: Component, offset: u64, reason: impl Into<String>) -> SstableError {
        SstableError::Malformed {
            component,
            offset,
            reason: reason.into(),
        }
    }
}
