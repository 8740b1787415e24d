//! The definitions of the virtual system tables: their names, columns and CQL types.
//!
//! The layouts are the ones drivers read when they connect (`system.local`, `system.peers`)
//! and when they build schema metadata (`system_schema.*`). Every collection column is
//! frozen so that one cell holds the whole serialized value; the wire type a driver sees
//! is the same either way.
//!
//! Tables that drivers probe and tolerate missing are deliberately absent, so a SELECT on
//! them fails with Invalid ("unconfigured table"), which is what the drivers expect:
//! - `system.peers_v2`: the Python driver falls back to `system.peers` on any error.
//! - `system_schema.scylla_tables`, `system_schema.scylla_keyspaces`: the `scylla` driver
//!   treats Invalid as "not ScyllaDB with tablets" and uses vnode routing.
//! - `system_virtual_schema.*`: only read when `release_version` is 4.0 or later.

use std::collections::BTreeMap;
use std::sync::Arc;

use storage::schema::{ColumnDef, ColumnKind, KeyspaceDef, OptionMap, TableDef, TableOptions};
use storage::types::CqlType;
use uuid::Uuid;

/// The node-local system keyspace.
pub const SYSTEM: &str = "system";
/// The keyspace whose tables describe the schema.
pub const SYSTEM_SCHEMA: &str = "system_schema";

/// The replication class of the node-local keyspaces.
pub const LOCAL_STRATEGY: &str = "org.apache.cassandra.locator.LocalStrategy";

/// Keyspaces whose names are reserved for the server.
const RESERVED_KEYSPACES: &[&str] = &[
    "system",
    "system_schema",
    "system_auth",
    "system_distributed",
    "system_distributed_everywhere",
    "system_traces",
    "system_virtual_schema",
];

/// True for keyspaces users may not create, alter or drop.
pub fn is_system_keyspace(name: &str) -> bool {
    RESERVED_KEYSPACES.contains(&name)
}

/// One column of a table layout: name, type, kind.
type ColumnSpec = (&'static str, CqlType, ColumnKind);

fn pk(name: &'static str, ty: CqlType) -> ColumnSpec {
    (name, ty, ColumnKind::PartitionKey)
}

fn ck(name: &'static str, ty: CqlType) -> ColumnSpec {
    (name, ty, ColumnKind::Clustering)
}

fn col(name: &'static str, ty: CqlType) -> ColumnSpec {
    (name, ty, ColumnKind::Regular)
}

fn text_map() -> CqlType {
    CqlType::map(CqlType::Text, CqlType::Text, true)
}

fn text_set() -> CqlType {
    CqlType::set(CqlType::Text, true)
}

fn text_list() -> CqlType {
    CqlType::list(CqlType::Text, true)
}

/// A stable table id derived from the table's name, so every node and every restart
/// agrees on the ids of the system tables without storing them.
pub fn system_table_id(keyspace: &str, table: &str) -> Uuid {
    let name = format!("{keyspace}.{table}");
    let high = fnv1a64(name.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let low = fnv1a64(name.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let mut bytes = ((u128::from(high) << 64) | u128::from(low)).to_be_bytes();
    // Mark it as a name-based (version 3 layout), RFC 4122 variant id.
    bytes[6] = (bytes[6] & 0x0f) | 0x30;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

fn fnv1a64(data: &[u8], seed: u64) -> u64 {
    data.iter().fold(seed, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Builds a table definition from its layout, numbering columns in layout order.
fn table(keyspace: &str, name: &str, comment: &str, columns: Vec<ColumnSpec>) -> TableDef {
    let mut positions: BTreeMap<ColumnKind, u32> = BTreeMap::new();
    let columns: Vec<ColumnDef> = columns
        .into_iter()
        .enumerate()
        .map(|(index, (name, ty, kind))| {
            let position = if matches!(kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
                let slot = positions.entry(kind).or_insert(0);
                *slot += 1;
                *slot - 1
            } else {
                0
            };
            ColumnDef {
                name: name.to_string(),
                id: u32::try_from(index).expect("a system table has few columns"),
                ty,
                kind,
                position,
                descending: false,
            }
        })
        .collect();
    let next_column_id = u32::try_from(columns.len()).expect("a system table has few columns");
    let mut def = TableDef {
        keyspace: keyspace.to_string(),
        name: name.to_string(),
        id: system_table_id(keyspace, name),
        columns,
        options: TableOptions {
            comment: comment.to_string(),
            gc_grace_seconds: 0,
            ..TableOptions::default()
        },
        next_column_id,
        dropped_columns: Vec::new(),
        compact_storage: false,
    };
    def.sort_columns();
    def
}

fn local_table() -> TableDef {
    let columns = vec![
        pk("key", CqlType::Text),
        col("bootstrapped", CqlType::Text),
        col("broadcast_address", CqlType::Inet),
        col("cluster_name", CqlType::Text),
        col("cql_version", CqlType::Text),
        col("data_center", CqlType::Text),
        col("gossip_generation", CqlType::Int),
        col("host_id", CqlType::Uuid),
        col("listen_address", CqlType::Inet),
        col("native_protocol_version", CqlType::Text),
        col("partitioner", CqlType::Text),
        col("rack", CqlType::Text),
        col("release_version", CqlType::Text),
        col("rpc_address", CqlType::Inet),
        col("rpc_port", CqlType::Int),
        col("schema_version", CqlType::Uuid),
        col("supported_features", CqlType::Text),
        col("thrift_version", CqlType::Text),
        col("tokens", text_set()),
        col(
            "truncated_at",
            CqlType::map(CqlType::Uuid, CqlType::Blob, true),
        ),
    ];
    table(SYSTEM, "local", "information about the local node", columns)
}

fn peers_table() -> TableDef {
    let columns = vec![
        pk("peer", CqlType::Inet),
        col("data_center", CqlType::Text),
        col("host_id", CqlType::Uuid),
        col("preferred_ip", CqlType::Inet),
        col("rack", CqlType::Text),
        col("release_version", CqlType::Text),
        col("rpc_address", CqlType::Inet),
        col("rpc_port", CqlType::Int),
        col("schema_version", CqlType::Uuid),
        col("supported_features", CqlType::Text),
        col("tokens", text_set()),
    ];
    table(
        SYSTEM,
        "peers",
        "information about known peers in the cluster",
        columns,
    )
}

fn size_estimates_table() -> TableDef {
    let columns = vec![
        pk("keyspace_name", CqlType::Text),
        ck("table_name", CqlType::Text),
        ck("range_start", CqlType::Text),
        ck("range_end", CqlType::Text),
        col("mean_partition_size", CqlType::Bigint),
        col("partitions_count", CqlType::Bigint),
    ];
    table(
        SYSTEM,
        "size_estimates",
        "per-table primary range size estimates",
        columns,
    )
}

/// The tables of the `system` keyspace.
fn system_tables() -> Vec<TableDef> {
    vec![local_table(), peers_table(), size_estimates_table()]
}

/// The table options every table and view row of system_schema carries.
fn table_option_columns() -> Vec<ColumnSpec> {
    vec![
        col("bloom_filter_fp_chance", CqlType::Double),
        col("caching", text_map()),
        col("comment", CqlType::Text),
        col("compaction", text_map()),
        col("compression", text_map()),
        col("crc_check_chance", CqlType::Double),
        col("dclocal_read_repair_chance", CqlType::Double),
        col("default_time_to_live", CqlType::Int),
        col(
            "extensions",
            CqlType::map(CqlType::Text, CqlType::Blob, true),
        ),
        col("gc_grace_seconds", CqlType::Int),
        col("id", CqlType::Uuid),
        col("max_index_interval", CqlType::Int),
        col("memtable_flush_period_in_ms", CqlType::Int),
        col("min_index_interval", CqlType::Int),
        col("read_repair_chance", CqlType::Double),
        col("speculative_retry", CqlType::Text),
    ]
}

fn schema_tables_table() -> TableDef {
    let mut columns = vec![
        pk("keyspace_name", CqlType::Text),
        ck("table_name", CqlType::Text),
        col("flags", text_set()),
    ];
    columns.extend(table_option_columns());
    table(SYSTEM_SCHEMA, "tables", "table definitions", columns)
}

fn schema_views_table() -> TableDef {
    let mut columns = vec![
        pk("keyspace_name", CqlType::Text),
        ck("view_name", CqlType::Text),
        col("base_table_id", CqlType::Uuid),
        col("base_table_name", CqlType::Text),
        col("include_all_columns", CqlType::Boolean),
        col("where_clause", CqlType::Text),
    ];
    columns.extend(table_option_columns());
    table(SYSTEM_SCHEMA, "views", "view definitions", columns)
}

fn schema_layouts() -> Vec<(&'static str, &'static str, Vec<ColumnSpec>)> {
    let ks = || pk("keyspace_name", CqlType::Text);
    vec![
        (
            "keyspaces",
            "keyspace definitions",
            vec![
                ks(),
                col("durable_writes", CqlType::Boolean),
                col("replication", text_map()),
            ],
        ),
        (
            "columns",
            "column definitions",
            vec![
                ks(),
                ck("table_name", CqlType::Text),
                ck("column_name", CqlType::Text),
                col("clustering_order", CqlType::Text),
                col("column_name_bytes", CqlType::Blob),
                col("kind", CqlType::Text),
                col("position", CqlType::Int),
                col("type", CqlType::Text),
            ],
        ),
        (
            "dropped_columns",
            "dropped column registry",
            vec![
                ks(),
                ck("table_name", CqlType::Text),
                ck("column_name", CqlType::Text),
                col("dropped_time", CqlType::Timestamp),
                col("kind", CqlType::Text),
                col("type", CqlType::Text),
            ],
        ),
        (
            "types",
            "user defined type definitions",
            vec![
                ks(),
                ck("type_name", CqlType::Text),
                col("field_names", text_list()),
                col("field_types", text_list()),
            ],
        ),
        (
            "functions",
            "user defined function definitions",
            vec![
                ks(),
                ck("function_name", CqlType::Text),
                ck("argument_types", text_list()),
                col("argument_names", text_list()),
                col("body", CqlType::Text),
                col("called_on_null_input", CqlType::Boolean),
                col("language", CqlType::Text),
                col("return_type", CqlType::Text),
            ],
        ),
        (
            "aggregates",
            "user defined aggregate definitions",
            vec![
                ks(),
                ck("aggregate_name", CqlType::Text),
                ck("argument_types", text_list()),
                col("final_func", CqlType::Text),
                col("initcond", CqlType::Text),
                col("return_type", CqlType::Text),
                col("state_func", CqlType::Text),
                col("state_type", CqlType::Text),
            ],
        ),
        (
            "indexes",
            "secondary index definitions",
            vec![
                ks(),
                ck("table_name", CqlType::Text),
                ck("index_name", CqlType::Text),
                col("kind", CqlType::Text),
                col("options", text_map()),
            ],
        ),
        (
            "triggers",
            "trigger definitions",
            vec![
                ks(),
                ck("table_name", CqlType::Text),
                ck("trigger_name", CqlType::Text),
                col("options", text_map()),
            ],
        ),
    ]
}

/// The tables of the `system_schema` keyspace.
fn system_schema_tables() -> Vec<TableDef> {
    let mut tables: Vec<TableDef> = schema_layouts()
        .into_iter()
        .map(|(name, comment, columns)| table(SYSTEM_SCHEMA, name, comment, columns))
        .collect();
    tables.push(schema_tables_table());
    tables.push(schema_views_table());
    tables
}

fn keyspace(name: &str, tables: Vec<TableDef>) -> KeyspaceDef {
    let replication: OptionMap = [("class".to_string(), LOCAL_STRATEGY.to_string())].into();
    let mut ks = KeyspaceDef::new(name, replication, true);
    for t in tables {
        ks.tables.insert(t.name.clone(), Arc::new(t));
    }
    ks
}

/// The system keyspaces with their virtual table definitions. Table ids are stable
/// (derived from the names) and replication is LocalStrategy: every node answers from
/// its own state.
pub fn system_keyspaces() -> Vec<KeyspaceDef> {
    vec![
        keyspace(SYSTEM, system_tables()),
        keyspace(SYSTEM_SCHEMA, system_schema_tables()),
    ]
}

/// True when `table` is one of the virtual tables whose rows [`super::virtual_rows`]
/// generates.
pub fn is_virtual_table(keyspace: &str, table: &str) -> bool {
    match keyspace {
        SYSTEM => matches!(table, "local" | "peers" | "size_estimates"),
        SYSTEM_SCHEMA => matches!(
            table,
            "keyspaces"
                | "tables"
                | "columns"
                | "dropped_columns"
                | "types"
                | "functions"
                | "aggregates"
                | "indexes"
                | "triggers"
                | "views"
        ),
        _ => false,
    }
}
