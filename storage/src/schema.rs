//! Schema: keyspaces, tables, columns and user types, as immutable snapshots.
//!
//! A [`Schema`] is a value: every change builds a new one with a new
//! version, and each shard swaps its `Arc<Schema>` when the change is
//! broadcast. Readers never lock; a statement holds the snapshot it was
//! prepared or executed against.
//!
//! Columns get a [`ColumnId`] when they are created and keep it for life, so
//! stored cells name columns by id and a dropped-then-re-added column never
//! reads the old column's cells.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{ColumnId, TableId};
use crate::types::{CqlType, UdtType};

/// What role a column plays in a table's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Static,
    Regular,
}

impl ColumnKind {
    /// The name system_schema.columns uses for the kind.
    pub fn schema_name(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Static => "static",
            ColumnKind::Regular => "regular",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub id: ColumnId,
    pub ty: CqlType,
    pub kind: ColumnKind,
    /// Position within the partition key or clustering key; 0 for others.
    pub position: u32,
    /// Clustering columns only: stored in descending order.
    pub descending: bool,
}

impl ColumnDef {
    /// True for partition key and clustering columns.
    pub fn is_primary_key(&self) -> bool {
        matches!(self.kind, ColumnKind::PartitionKey | ColumnKind::Clustering)
    }
}

/// Compaction strategy and its options, as CQL writes them.
pub type OptionMap = BTreeMap<String, String>;

/// Table options, stored and shown as system_schema.tables has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableOptions {
    pub bloom_filter_fp_chance: f64,
    pub caching: OptionMap,
    pub comment: String,
    pub compaction: OptionMap,
    pub compression: OptionMap,
    pub crc_check_chance: f64,
    pub default_time_to_live: i32,
    pub gc_grace_seconds: i32,
    pub max_index_interval: i32,
    pub memtable_flush_period_in_ms: i32,
    pub min_index_interval: i32,
    pub speculative_retry: String,
    pub cdc: Option<OptionMap>,
}

impl Default for TableOptions {
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| -> OptionMap {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        TableOptions {
            bloom_filter_fp_chance: 0.01,
            caching: map(&[("keys", "ALL"), ("rows_per_partition", "ALL")]),
            comment: String::new(),
            compaction: map(&[(
                "class",
                "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
            )]),
            compression: map(&[
                ("chunk_length_in_kb", "16"),
                (
                    "sstable_compression",
                    "org.apache.cassandra.io.compress.LZ4Compressor",
                ),
            ]),
            crc_check_chance: 1.0,
            default_time_to_live: 0,
            gc_grace_seconds: 864_000,
            max_index_interval: 2048,
            memtable_flush_period_in_ms: 0,
            min_index_interval: 128,
            speculative_retry: "99.0PERCENTILE".to_string(),
            cdc: None,
        }
    }
}

/// A column that was dropped, kept so its old cells are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedColumn {
    pub name: String,
    pub ty: CqlType,
    /// Write timestamp (micros) of the drop: older cells of the column are dead.
    pub dropped_at_micros: i64,
}

/// A table: its columns (primary key first, in key order, then static and
/// regular columns by name) and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub keyspace: String,
    pub name: String,
    pub id: TableId,
    pub columns: Vec<ColumnDef>,
    pub options: TableOptions,
    pub next_column_id: ColumnId,
    pub dropped_columns: Vec<DroppedColumn>,
    /// Set for tables declared WITH COMPACT STORAGE (shown, not otherwise honoured).
    pub compact_storage: bool,
}

impl TableDef {
    /// The partition key columns in key order.
    pub fn partition_key(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
    }

    /// The clustering columns in key order.
    pub fn clustering_key(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Clustering)
    }

    /// The number of partition key columns.
    pub fn partition_key_len(&self) -> usize {
        self.partition_key().count()
    }

    /// The number of clustering columns.
    pub fn clustering_key_len(&self) -> usize {
        self.clustering_key().count()
    }

    /// True when the table has static columns.
    pub fn has_static_columns(&self) -> bool {
        self.columns.iter().any(|c| c.kind == ColumnKind::Static)
    }

    /// Finds a column by (case-sensitive, already folded) name.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Finds a column by id.
    pub fn column_by_id(&self, id: ColumnId) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.id == id)
    }

    /// Sorts columns into the canonical order (the order of `SELECT *`):
    /// partition key, clustering key (each by position), then static
    /// columns, then regular columns (each by name).
    pub fn sort_columns(&mut self) {
        self.columns
            .sort_by(|a, b| match (a.is_primary_key(), b.is_primary_key()) {
                (true, true) => (a.kind, a.position).cmp(&(b.kind, b.position)),
                (true, false) => std::cmp::Ordering::Less,
                (false, true) => std::cmp::Ordering::Greater,
                (false, false) => (a.kind, &a.name).cmp(&(b.kind, &b.name)),
            });
    }

    /// The clustering column types with their order, for key encoding.
    pub fn clustering_types(&self) -> Vec<(CqlType, bool)> {
        self.clustering_key()
            .map(|c| (c.ty.clone(), c.descending))
            .collect()
    }
}

/// A keyspace: replication settings, user types, tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyspaceDef {
    pub name: String,
    /// The replication map as CQL writes it, `class` included (full class name).
    pub replication: OptionMap,
    pub durable_writes: bool,
    pub types: BTreeMap<String, UdtType>,
    pub tables: BTreeMap<String, Arc<TableDef>>,
}

impl KeyspaceDef {
    /// A keyspace with no tables or types.
    pub fn new(name: &str, replication: OptionMap, durable_writes: bool) -> Self {
        KeyspaceDef {
            name: name.to_string(),
            replication,
            durable_writes,
            types: BTreeMap::new(),
            tables: BTreeMap::new(),
        }
    }
}

/// A snapshot of the whole schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub keyspaces: BTreeMap<String, KeyspaceDef>,
    /// Changes with every schema change; drivers wait until all nodes agree on it.
    pub version: Uuid,
}

impl Default for Schema {
    fn default() -> Self {
        Schema {
            keyspaces: BTreeMap::new(),
            version: Uuid::nil(),
        }
    }
}

impl Schema {
    /// Looks up a keyspace.
    pub fn keyspace(&self, name: &str) -> Option<&KeyspaceDef> {
        self.keyspaces.get(name)
    }

    /// Looks up a table.
    pub fn table(&self, keyspace: &str, name: &str) -> Option<&Arc<TableDef>> {
        self.keyspaces.get(keyspace)?.tables.get(name)
    }

    /// Looks up a table by id.
    pub fn table_by_id(&self, id: TableId) -> Option<&Arc<TableDef>> {
        self.keyspaces
            .values()
            .flat_map(|ks| ks.tables.values())
            .find(|t| t.id == id)
    }

    /// Every table of every keyspace.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.keyspaces.values().flat_map(|ks| ks.tables.values())
    }

    /// Serializes the snapshot for the schema file.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }

    /// Reads a snapshot written by [`Schema::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Schema, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableDef {
        let column = |name: &str, id, kind, position| ColumnDef {
            name: name.to_string(),
            id,
            ty: CqlType::Int,
            kind,
            position,
            descending: false,
        };
        TableDef {
            keyspace: "ks".into(),
            name: "t".into(),
            id: Uuid::from_u128(7),
            columns: vec![
                column("v", 4, ColumnKind::Regular, 0),
                column("c2", 3, ColumnKind::Clustering, 1),
                column("a", 5, ColumnKind::Static, 0),
                column("c1", 2, ColumnKind::Clustering, 0),
                column("pk", 1, ColumnKind::PartitionKey, 0),
            ],
            options: TableOptions::default(),
            next_column_id: 6,
            dropped_columns: vec![],
            compact_storage: false,
        }
    }

    #[test]
    fn columns_sort_into_key_order_then_by_name() {
        let mut t = table();
        t.sort_columns();
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["pk", "c1", "c2", "a", "v"]);
        assert_eq!(t.partition_key_len(), 1);
        assert_eq!(t.clustering_key_len(), 2);
        assert!(t.has_static_columns());
    }

    #[test]
    fn schema_round_trips_through_json() {
        let mut ks = KeyspaceDef::new("ks", OptionMap::new(), true);
        ks.tables.insert("t".into(), Arc::new(table()));
        let mut schema = Schema::default();
        schema.keyspaces.insert("ks".into(), ks);
        schema.version = Uuid::from_u128(42);
        let bytes = schema.to_json().expect("serializes");
        assert_eq!(Schema::from_json(&bytes).expect("parses"), schema);
        assert_eq!(
            schema
                .table_by_id(Uuid::from_u128(7))
                .map(|t| t.name.as_str()),
            Some("t")
        );
    }
}
