//! The rows of the virtual system tables, generated as mutations on every read.
//!
//! The rows are built from the schema snapshot and the node facts at the moment of the
//! read rather than stored: they can never disagree with the schema, and a schema
//! change needs no second write to keep them current. The mutations follow the storage
//! layout the SELECT executor reads (see [`RowSink`]), so the executor filters, orders
//! and pages them exactly like stored data.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bytes::Bytes;
use cluster::token::{murmur3_token, serialize_partition_key};
use storage::model::{Cell, DecoratedKey, Mutation, Row};
use storage::schema::{ColumnKind, KeyspaceDef, Schema, TableDef, TableOptions};
use storage::types::{encode_clustering, serialize_collection, serialize_map, UdtType};
use tracing::warn;
use uuid::Uuid;

use super::tables::{system_keyspaces, SYSTEM, SYSTEM_SCHEMA};
use super::NodeInfo;

/// Serialized column values of one row, by column name; a column left out is null.
type Values = Vec<(&'static str, Vec<u8>)>;

/// Wire encodings of the values the system tables hold.
pub(crate) mod enc {
    use super::*;

    pub fn text(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    pub fn int(v: i32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    pub fn double(v: f64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    pub fn boolean(v: bool) -> Vec<u8> {
        vec![u8::from(v)]
    }

    pub fn uuid(v: Uuid) -> Vec<u8> {
        v.as_bytes().to_vec()
    }

    pub fn inet(v: IpAddr) -> Vec<u8> {
        match v {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    pub fn timestamp_millis(v: i64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    /// A `set<text>`: elements sorted by their bytes and unique, as a set is stored.
    pub fn text_set<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Vec<u8> {
        let set: BTreeSet<Vec<u8>> = items.into_iter().map(|s| text(s.as_ref())).collect();
        let elems: Vec<Option<&[u8]>> = set.iter().map(|e| Some(e.as_slice())).collect();
        serialize_collection(&elems)
    }

    /// A `list<text>` in the given order.
    pub fn text_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Vec<u8> {
        let items: Vec<Vec<u8>> = items.into_iter().map(|s| text(s.as_ref())).collect();
        let elems: Vec<Option<&[u8]>> = items.iter().map(|e| Some(e.as_slice())).collect();
        serialize_collection(&elems)
    }

    /// A `map<text, text>`; a `BTreeMap` iterates in the byte order a map is stored in.
    pub fn text_map(map: &BTreeMap<String, String>) -> Vec<u8> {
        let pairs: Vec<(&[u8], &[u8])> = map
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        serialize_map(&pairs)
    }

    /// An empty map of any type.
    pub fn empty_map() -> Vec<u8> {
        serialize_map(&[])
    }
}

/// Collects rows into one mutation per partition, in the layout the executor reads:
/// partition key = `serialize_partition_key` of the key components, token = murmur3 of
/// it, clustering key = `encode_clustering`, one atomic cell per non-null column, and a
/// row marker on every row so rows with only key columns are still live.
struct RowSink<'a> {
    table: &'a TableDef,
    timestamp: i64,
    partitions: BTreeMap<DecoratedKey, Mutation>,
}

impl<'a> RowSink<'a> {
    fn new(table: &'a TableDef, timestamp: i64) -> Self {
        RowSink {
            table,
            timestamp,
            partitions: BTreeMap::new(),
        }
    }

    fn push(&mut self, values: Values) {
        let find = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let pk: Option<Vec<&[u8]>> = self
            .table
            .partition_key()
            .map(|c| find(&c.name).map(Vec::as_slice))
            .collect();
        let ck: Option<Vec<&[u8]>> = self
            .table
            .clustering_key()
            .map(|c| find(&c.name).map(Vec::as_slice))
            .collect();
        let (Some(pk), Some(ck)) = (pk, ck) else {
            warn!(table = %self.table.name, "system row without its full primary key skipped");
            return;
        };
        let key = match serialize_partition_key(&pk) {
            Ok(key) => key,
            Err(error) => {
                warn!(table = %self.table.name, %error, "system row with an oversized key skipped");
                return;
            }
        };
        let decorated = DecoratedKey::new(murmur3_token(&key), key);
        let clustering = Bytes::from(encode_clustering(&self.table.clustering_types(), &ck));
        let (row, static_row) = self.build_rows(&values);
        let table_id = self.table.id;
        let mutation = self
            .partitions
            .entry(decorated.clone())
            .or_insert_with(|| Mutation::new(table_id, decorated));
        if let Some(static_row) = static_row {
            mutation.static_row = Some(static_row);
        }
        mutation.rows.push((clustering, row));
    }

    /// The clustering row (with its marker) and, if the values set any, the static row.
    fn build_rows(&self, values: &Values) -> (Row, Option<Row>) {
        let mut row = Row::with_marker(self.timestamp, None);
        let mut static_row: Option<Row> = None;
        for column in &self.table.columns {
            let Some((_, value)) = values.iter().find(|(n, _)| *n == column.name) else {
                continue;
            };
            let cell = Cell::live(self.timestamp, value.clone());
            match column.kind {
                ColumnKind::Regular => row = row.cell(column.id, cell),
                ColumnKind::Static => {
                    let target = static_row.take().unwrap_or_default();
                    static_row = Some(target.cell(column.id, cell));
                }
                ColumnKind::PartitionKey | ColumnKind::Clustering => {}
            }
        }
        (row, static_row)
    }

    /// The mutations in ring order, each with its rows in clustering order, as a
    /// partition read from storage would be.
    fn finish(self) -> Vec<Mutation> {
        let mut mutations: Vec<Mutation> = self.partitions.into_values().collect();
        for m in &mut mutations {
            m.rows.sort_by(|a, b| a.0.cmp(&b.0));
        }
        mutations
    }
}

/// The rows of a virtual table as mutations, generated from `schema` (user keyspaces and
/// the system keyspaces, which are listed whether or not `schema` holds them) and `node`.
/// Cells and row markers carry `now_micros`. A table that is not virtual has no rows.
pub fn virtual_rows(
    table: &TableDef,
    schema: &Schema,
    node: &NodeInfo,
    now_micros: i64,
) -> Vec<Mutation> {
    let mut sink = RowSink::new(table, now_micros);
    let system = system_keyspaces();
    let mut keyspaces: BTreeMap<&str, &KeyspaceDef> =
        system.iter().map(|ks| (ks.name.as_str(), ks)).collect();
    keyspaces.extend(schema.keyspaces.iter().map(|(n, ks)| (n.as_str(), ks)));
    let keyspaces: Vec<&KeyspaceDef> = keyspaces.into_values().collect();
    let rows: Vec<Values> = match (table.keyspace.as_str(), table.name.as_str()) {
        (SYSTEM, "local") => vec![local_row(node, schema.version)],
        (SYSTEM, "peers") => node.peers.iter().map(peer_row).collect(),
        (SYSTEM_SCHEMA, "keyspaces") => keyspaces.iter().map(|ks| keyspace_row(ks)).collect(),
        (SYSTEM_SCHEMA, "tables") => tables_of(&keyspaces).map(table_row).collect(),
        (SYSTEM_SCHEMA, "columns") => tables_of(&keyspaces).flat_map(column_rows).collect(),
        (SYSTEM_SCHEMA, "dropped_columns") => {
            tables_of(&keyspaces).flat_map(dropped_rows).collect()
        }
        (SYSTEM_SCHEMA, "types") => keyspaces
            .iter()
            .flat_map(|ks| ks.types.values().map(type_row))
            .collect(),
        // No functions, aggregates, views, indexes, triggers or size estimates exist yet:
        // the tables are there so that drivers reading them get an empty result.
        _ => Vec::new(),
    };
    for values in rows {
        sink.push(values);
    }
    sink.finish()
}

fn tables_of<'a>(keyspaces: &'a [&'a KeyspaceDef]) -> impl Iterator<Item = &'a TableDef> + 'a {
    keyspaces
        .iter()
        .flat_map(|ks| ks.tables.values().map(|t| t.as_ref()))
}

fn local_row(node: &NodeInfo, schema_version: Uuid) -> Values {
    vec![
        ("key", enc::text("local")),
        ("bootstrapped", enc::text("COMPLETED")),
        ("broadcast_address", enc::inet(node.broadcast_address)),
        ("cluster_name", enc::text(&node.cluster_name)),
        ("cql_version", enc::text(&node.cql_version)),
        ("data_center", enc::text(&node.data_center)),
        ("gossip_generation", enc::int(node.gossip_generation)),
        ("host_id", enc::uuid(node.host_id)),
        ("listen_address", enc::inet(node.listen_address)),
        (
            "native_protocol_version",
            enc::text(&node.native_protocol_version),
        ),
        ("partitioner", enc::text(&node.partitioner)),
        ("rack", enc::text(&node.rack)),
        ("release_version", enc::text(&node.release_version)),
        ("rpc_address", enc::inet(node.rpc_address)),
        ("rpc_port", enc::int(i32::from(node.rpc_port))),
        ("schema_version", enc::uuid(schema_version)),
        (
            "supported_features",
            enc::text(&node.supported_features.join(",")),
        ),
        ("thrift_version", enc::text(super::THRIFT_VERSION)),
        (
            "tokens",
            enc::text_set(node.tokens.iter().map(i64::to_string)),
        ),
    ]
}

fn peer_row(peer: &super::PeerInfo) -> Values {
    vec![
        ("peer", enc::inet(peer.peer)),
        ("data_center", enc::text(&peer.data_center)),
        ("host_id", enc::uuid(peer.host_id)),
        ("preferred_ip", enc::inet(peer.peer)),
        ("rack", enc::text(&peer.rack)),
        ("release_version", enc::text(&peer.release_version)),
        ("rpc_address", enc::inet(peer.rpc_address)),
        ("rpc_port", enc::int(i32::from(peer.rpc_port))),
        ("schema_version", enc::uuid(peer.schema_version)),
        (
            "supported_features",
            enc::text(&peer.supported_features.join(",")),
        ),
        (
            "tokens",
            enc::text_set(peer.tokens.iter().map(i64::to_string)),
        ),
    ]
}

fn keyspace_row(ks: &KeyspaceDef) -> Values {
    vec![
        ("keyspace_name", enc::text(&ks.name)),
        ("durable_writes", enc::boolean(ks.durable_writes)),
        ("replication", enc::text_map(&ks.replication)),
    ]
}

/// The `flags` a table shows. Drivers read a table without `compound` as COMPACT
/// STORAGE, so every ordinary table must carry it.
pub(crate) fn table_flags(table: &TableDef) -> Vec<&'static str> {
    match (table.compact_storage, table.clustering_key_len()) {
        (false, _) => vec!["compound"],
        (true, 0) => vec![],
        (true, 1) => vec!["dense"],
        (true, _) => vec!["compound", "dense"],
    }
}

fn option_values(options: &TableOptions, id: Uuid) -> Values {
    vec![
        (
            "bloom_filter_fp_chance",
            enc::double(options.bloom_filter_fp_chance),
        ),
        ("caching", enc::text_map(&options.caching)),
        ("comment", enc::text(&options.comment)),
        ("compaction", enc::text_map(&options.compaction)),
        ("compression", enc::text_map(&options.compression)),
        ("crc_check_chance", enc::double(options.crc_check_chance)),
        ("dclocal_read_repair_chance", enc::double(0.0)),
        (
            "default_time_to_live",
            enc::int(options.default_time_to_live),
        ),
        ("extensions", enc::empty_map()),
        ("gc_grace_seconds", enc::int(options.gc_grace_seconds)),
        ("id", enc::uuid(id)),
        ("max_index_interval", enc::int(options.max_index_interval)),
        (
            "memtable_flush_period_in_ms",
            enc::int(options.memtable_flush_period_in_ms),
        ),
        ("min_index_interval", enc::int(options.min_index_interval)),
        ("read_repair_chance", enc::double(0.0)),
        ("speculative_retry", enc::text(&options.speculative_retry)),
    ]
}

fn table_row(table: &TableDef) -> Values {
    let mut values = vec![
        ("keyspace_name", enc::text(&table.keyspace)),
        ("table_name", enc::text(&table.name)),
        ("flags", enc::text_set(table_flags(table))),
    ];
    values.extend(option_values(&table.options, table.id));
    values
}

fn column_rows(table: &TableDef) -> Vec<Values> {
    table
        .columns
        .iter()
        .map(|c| {
            let order = match c.kind {
                ColumnKind::Clustering if c.descending => "desc",
                ColumnKind::Clustering => "asc",
                _ => "none",
            };
            // Regular and static columns have no position; the tables show -1.
            let position = if c.is_primary_key() {
                i32::try_from(c.position).unwrap_or(i32::MAX)
            } else {
                -1
            };
            vec![
                ("keyspace_name", enc::text(&table.keyspace)),
                ("table_name", enc::text(&table.name)),
                ("column_name", enc::text(&c.name)),
                ("clustering_order", enc::text(order)),
                ("column_name_bytes", c.name.as_bytes().to_vec()),
                ("kind", enc::text(c.kind.schema_name())),
                ("position", enc::int(position)),
                ("type", enc::text(&c.ty.cql_name())),
            ]
        })
        .collect()
}

fn dropped_rows(table: &TableDef) -> Vec<Values> {
    table
        .dropped_columns
        .iter()
        .map(|d| {
            vec![
                ("keyspace_name", enc::text(&table.keyspace)),
                ("table_name", enc::text(&table.name)),
                ("column_name", enc::text(&d.name)),
                (
                    "dropped_time",
                    enc::timestamp_millis(d.dropped_at_micros.div_euclid(1000)),
                ),
                ("kind", enc::text(ColumnKind::Regular.schema_name())),
                ("type", enc::text(&d.ty.cql_name())),
            ]
        })
        .collect()
}

fn type_row(udt: &UdtType) -> Values {
    vec![
        ("keyspace_name", enc::text(&udt.keyspace)),
        ("type_name", enc::text(&udt.name)),
        (
            "field_names",
            enc::text_list(udt.fields.iter().map(|(n, _)| n.as_str())),
        ),
        (
            "field_types",
            enc::text_list(udt.fields.iter().map(|(_, t)| t.cql_name())),
        ),
    ]
}
