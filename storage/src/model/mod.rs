//! The schema-agnostic data model: keys, cells, tombstones, rows, mutations, and the
//! rules that reconcile versions of them.
//!
//! Storage knows nothing of CQL types. Partition keys, clustering keys, collection
//! element paths and values are bytes; clustering keys and paths arrive already encoded
//! so that `memcmp` order is the order CQL defines. That keeps every comparison here a
//! byte comparison and lets the same code serve every table.
//!
//! - [`keys`]: partition keys, ring positions, clustering ranges.
//! - [`cell`]: cells, markers, tombstones, rows.
//! - [`mutation`]: what one write carries.
//! - [`codec`]: a mutation's binary form (commitlog entries).
//! - [`reconcile`]: which version wins, what shadows what.
//! - [`partition`]: one partition's merged writes in one source.
//! - [`query`]: reading live data out of a partition's versions.
//! - [`sorted_map`]: the compact sorted map rows and cells live in.

pub mod cell;
pub mod codec;
mod compact;
pub mod keys;
pub mod merge;
pub mod mutation;
pub mod partition;
pub mod query;
pub mod reconcile;
pub mod sorted_map;

pub use cell::{Cell, CellKey, CellKind, Expiry, Row, RowMarker, Tombstone};
pub use codec::{CodecError, LogEntry, MUTATION_FORMAT_VERSION};
pub use keys::{ClusteringBound, ClusteringRange, DecoratedKey, PartitionRange, RingPosition};
pub use mutation::{Mutation, RangeTombstone};
pub use partition::Partition;
pub use query::{LiveCell, LiveRow, PartitionResult, SliceQuery};
pub use sorted_map::SortedMap;

/// A table's identity (schema id).
pub type TableId = uuid::Uuid;

/// A column's id within its table, assigned by the schema.
pub type ColumnId = u32;
