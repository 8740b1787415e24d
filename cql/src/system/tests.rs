use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use cluster::token::{murmur3_token, serialize_partition_key};
use storage::model::{CellKind, Mutation};
use storage::schema::{
    ColumnDef, ColumnKind, KeyspaceDef, OptionMap, Schema, TableDef, TableOptions,
};
use storage::types::{decode_clustering, parse_collection, parse_map, CqlType};
use uuid::Uuid;

use super::*;

const NOW: i64 = 1_700_000_000_000_000;

fn address_type() -> CqlType {
    CqlType::udt(
        "ks",
        "address",
        vec![
            ("street".into(), CqlType::Text),
            ("zip".into(), CqlType::Int),
            ("tags".into(), CqlType::list(CqlType::Text, true)),
        ],
        true,
    )
}

fn user_table() -> TableDef {
    let column = |name: &str, id, ty, kind, position, descending| ColumnDef {
        name: name.to_string(),
        id,
        ty,
        kind,
        position,
        descending,
    };
    let mut table = TableDef {
        keyspace: "ks".into(),
        name: "t".into(),
        id: Uuid::from_u128(0x1234),
        columns: vec![
            column("a", 0, CqlType::Int, ColumnKind::PartitionKey, 0, false),
            column("b", 1, CqlType::Text, ColumnKind::PartitionKey, 1, false),
            column("c", 2, CqlType::Int, ColumnKind::Clustering, 0, true),
            column("d", 3, CqlType::Text, ColumnKind::Clustering, 1, false),
            column("s", 4, CqlType::Int, ColumnKind::Static, 0, false),
            column(
                "v",
                5,
                CqlType::list(CqlType::Int, true),
                ColumnKind::Regular,
                0,
                false,
            ),
            column(
                "m",
                6,
                CqlType::map(CqlType::Text, CqlType::Int, false),
                ColumnKind::Regular,
                0,
                false,
            ),
            column("addr", 7, address_type(), ColumnKind::Regular, 0, false),
        ],
        options: TableOptions::default(),
        next_column_id: 8,
        dropped_columns: vec![],
        compact_storage: false,
    };
    table.sort_columns();
    table
}

fn schema() -> Schema {
    let replication: OptionMap = [
        ("class", "org.apache.cassandra.locator.SimpleStrategy"),
        ("replication_factor", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut ks = KeyspaceDef::new("ks", replication, true);
    let CqlType::Udt(udt) = address_type() else {
        unreachable!("address is a UDT")
    };
    ks.types.insert("address".into(), udt);
    ks.tables.insert("t".into(), Arc::new(user_table()));
    let mut schema = Schema::default();
    schema.keyspaces.insert("ks".into(), ks);
    schema.version = Uuid::from_u128(0xabcd);
    schema
}

fn node() -> NodeInfo {
    let mut node = NodeInfo::single(
        "Test Cluster",
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        9042,
        Uuid::from_u128(0x77),
        vec![-5, 10, 3],
    );
    node.gossip_generation = 1_700_000_000;
    node
}

fn system_table(keyspace: &str, name: &str) -> TableDef {
    let keyspaces = system_keyspaces();
    let ks = keyspaces
        .iter()
        .find(|ks| ks.name == keyspace)
        .expect("system keyspace exists");
    ks.tables
        .get(name)
        .expect("system table exists")
        .as_ref()
        .clone()
}

/// One decoded row: key column values and live cell values, by column name.
type DecodedRow = BTreeMap<String, Vec<u8>>;

fn decode_rows(table: &TableDef, mutations: &[Mutation]) -> Vec<DecodedRow> {
    let mut rows = Vec::new();
    for m in mutations {
        assert_eq!(m.table, table.id);
        assert_eq!(m.key.token, murmur3_token(&m.key.key));
        let pk_values = cluster::token::split_partition_key(&m.key.key, table.partition_key_len())
            .expect("partition key splits");
        for (clustering, row) in &m.rows {
            assert_eq!(row.marker.map(|mk| mk.timestamp), Some(NOW));
            let ck_values =
                decode_clustering(&table.clustering_types(), clustering).expect("clustering");
            let mut decoded = DecodedRow::new();
            for (c, v) in table.partition_key().zip(&pk_values) {
                decoded.insert(c.name.clone(), v.to_vec());
            }
            for (c, v) in table.clustering_key().zip(ck_values) {
                decoded.insert(c.name.clone(), v);
            }
            for (key, cell) in &row.cells {
                assert!(key.path.is_none(), "system cells are atomic");
                let column = table.column_by_id(key.column).expect("cell names a column");
                let CellKind::Live { value, .. } = &cell.kind else {
                    panic!("system cells are live");
                };
                column
                    .ty
                    .validate(value)
                    .expect("cell value matches its type");
                decoded.insert(column.name.clone(), value.to_vec());
            }
            rows.push(decoded);
        }
    }
    rows
}

fn rows_of(keyspace: &str, name: &str) -> Vec<DecodedRow> {
    let table = system_table(keyspace, name);
    decode_rows(&table, &virtual_rows(&table, &schema(), &node(), NOW))
}

fn text(row: &DecodedRow, column: &str) -> String {
    String::from_utf8(
        row.get(column)
            .unwrap_or_else(|| panic!("{column} set"))
            .clone(),
    )
    .expect("utf-8")
}

fn int(row: &DecodedRow, column: &str) -> i32 {
    i32::from_be_bytes(row[column].as_slice().try_into().expect("4 bytes"))
}

fn texts(value: &[u8]) -> Vec<String> {
    parse_collection(value)
        .expect("collection")
        .into_iter()
        .map(|e| String::from_utf8(e.to_vec()).expect("utf-8"))
        .collect()
}

fn text_map(value: &[u8]) -> BTreeMap<String, String> {
    parse_map(value)
        .expect("map")
        .into_iter()
        .map(|(k, v)| {
            let s = |b: &[u8]| String::from_utf8(b.to_vec()).expect("utf-8");
            (s(k), s(v))
        })
        .collect()
}

#[test]
fn local_row_shows_node_facts() {
    let table = system_table("system", "local");
    let mutations = virtual_rows(&table, &schema(), &node(), NOW);
    assert_eq!(mutations.len(), 1);
    let key = serialize_partition_key(&[b"local"]).expect("key");
    assert_eq!(mutations[0].key.key, key);
    let rows = decode_rows(&table, &mutations);
    let row = &rows[0];
    assert_eq!(text(row, "key"), "local");
    assert_eq!(text(row, "bootstrapped"), "COMPLETED");
    assert_eq!(text(row, "cluster_name"), "Test Cluster");
    assert_eq!(text(row, "release_version"), RELEASE_VERSION);
    assert_eq!(text(row, "cql_version"), "3.4.5");
    assert_eq!(text(row, "native_protocol_version"), "4");
    assert_eq!(text(row, "partitioner"), PARTITIONER);
    assert_eq!(text(row, "data_center"), "datacenter1");
    assert_eq!(text(row, "rack"), "rack1");
    assert_eq!(row["host_id"], Uuid::from_u128(0x77).as_bytes().to_vec());
    assert_eq!(
        row["schema_version"],
        Uuid::from_u128(0xabcd).as_bytes().to_vec()
    );
    assert_eq!(row["rpc_address"], vec![127, 0, 0, 1]);
    assert_eq!(row["broadcast_address"], vec![127, 0, 0, 1]);
    assert_eq!(int(row, "rpc_port"), 9042);
    assert_eq!(int(row, "gossip_generation"), 1_700_000_000);
    // A set is stored sorted by its elements' bytes.
    assert_eq!(texts(&row["tokens"]), ["-5", "10", "3"]);
}

#[test]
fn peers_lists_other_nodes() {
    assert!(rows_of("system", "peers").is_empty());
    let mut node = node();
    node.peers.push(PeerInfo {
        peer: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        rpc_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        rpc_port: 9042,
        data_center: "dc1".into(),
        rack: "r1".into(),
        host_id: Uuid::from_u128(2),
        tokens: vec![42],
        release_version: RELEASE_VERSION.into(),
        schema_version: Uuid::from_u128(0xabcd),
        supported_features: vec![],
    });
    let table = system_table("system", "peers");
    let rows = decode_rows(&table, &virtual_rows(&table, &schema(), &node, NOW));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["peer"], vec![10, 0, 0, 2]);
    assert_eq!(text(&rows[0], "data_center"), "dc1");
    assert_eq!(texts(&rows[0]["tokens"]), ["42"]);
}

#[test]
fn keyspaces_include_user_and_system_keyspaces() {
    let rows = rows_of("system_schema", "keyspaces");
    let names: Vec<String> = rows.iter().map(|r| text(r, "keyspace_name")).collect();
    for expected in ["ks", "system", "system_schema"] {
        assert!(names.iter().any(|n| n == expected), "{expected} listed");
    }
    let ks = rows
        .iter()
        .find(|r| text(r, "keyspace_name") == "ks")
        .expect("ks");
    assert_eq!(ks["durable_writes"], vec![1]);
    let replication = text_map(&ks["replication"]);
    assert_eq!(
        replication["class"],
        "org.apache.cassandra.locator.SimpleStrategy"
    );
    assert_eq!(replication["replication_factor"], "1");
    let system = rows
        .iter()
        .find(|r| text(r, "keyspace_name") == "system")
        .expect("system");
    assert_eq!(text_map(&system["replication"])["class"], LOCAL_STRATEGY);
}

#[test]
fn tables_row_carries_every_option() {
    let rows = rows_of("system_schema", "tables");
    let t = rows
        .iter()
        .find(|r| text(r, "keyspace_name") == "ks" && text(r, "table_name") == "t")
        .expect("ks.t listed");
    assert_eq!(texts(&t["flags"]), ["compound"]);
    assert_eq!(t["id"], Uuid::from_u128(0x1234).as_bytes().to_vec());
    assert_eq!(t["bloom_filter_fp_chance"], 0.01f64.to_be_bytes().to_vec());
    assert_eq!(
        t["dclocal_read_repair_chance"],
        0.0f64.to_be_bytes().to_vec()
    );
    assert_eq!(int(t, "gc_grace_seconds"), 864_000);
    assert_eq!(int(t, "default_time_to_live"), 0);
    assert_eq!(text(t, "speculative_retry"), "99.0PERCENTILE");
    assert_eq!(text_map(&t["caching"])["keys"], "ALL");
    assert!(text_map(&t["compaction"])["class"].ends_with("SizeTieredCompactionStrategy"));
    assert!(parse_map(&t["extensions"]).expect("map").is_empty());
    // The system tables describe themselves too.
    assert!(
        rows.iter()
            .any(|r| text(r, "keyspace_name") == "system_schema"
                && text(r, "table_name") == "columns")
    );
}

#[test]
fn columns_rows_describe_keys_order_and_types() {
    let rows = rows_of("system_schema", "columns");
    let col = |name: &str| {
        rows.iter()
            .find(|r| text(r, "table_name") == "t" && text(r, "column_name") == name)
            .unwrap_or_else(|| panic!("column {name} listed"))
    };
    let expect = |name: &str, kind: &str, position: i32, order: &str, ty: &str| {
        let row = col(name);
        assert_eq!(text(row, "keyspace_name"), "ks");
        assert_eq!(text(row, "kind"), kind, "{name}");
        assert_eq!(int(row, "position"), position, "{name}");
        assert_eq!(text(row, "clustering_order"), order, "{name}");
        assert_eq!(text(row, "type"), ty, "{name}");
        assert_eq!(row["column_name_bytes"], name.as_bytes());
    };
    expect("a", "partition_key", 0, "none", "int");
    expect("b", "partition_key", 1, "none", "text");
    expect("c", "clustering", 0, "desc", "int");
    expect("d", "clustering", 1, "asc", "text");
    expect("s", "static", -1, "none", "int");
    expect("v", "regular", -1, "none", "frozen<list<int>>");
    expect("m", "regular", -1, "none", "map<text, int>");
    expect("addr", "regular", -1, "none", "frozen<address>");
    let system_key = rows
        .iter()
        .find(|r| text(r, "table_name") == "local" && text(r, "column_name") == "key")
        .expect("system.local columns listed");
    assert_eq!(text(system_key, "kind"), "partition_key");
}

#[test]
fn mutations_are_in_ring_and_clustering_order() {
    let table = system_table("system_schema", "columns");
    let mutations = virtual_rows(&table, &schema(), &node(), NOW);
    assert!(mutations.windows(2).all(|w| w[0].key < w[1].key));
    for m in &mutations {
        assert!(m.rows.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

#[test]
fn types_rows_list_fields_in_order() {
    let rows = rows_of("system_schema", "types");
    assert_eq!(rows.len(), 1);
    assert_eq!(text(&rows[0], "keyspace_name"), "ks");
    assert_eq!(text(&rows[0], "type_name"), "address");
    assert_eq!(texts(&rows[0]["field_names"]), ["street", "zip", "tags"]);
    assert_eq!(
        texts(&rows[0]["field_types"]),
        ["text", "int", "frozen<list<text>>"]
    );
}

#[test]
fn dropped_columns_are_listed() {
    let mut schema = schema();
    let ks = schema.keyspaces.get_mut("ks").expect("ks");
    let mut t = user_table();
    t.dropped_columns.push(storage::schema::DroppedColumn {
        name: "old".into(),
        ty: CqlType::Bigint,
        dropped_at_micros: 5_000_000,
    });
    ks.tables.insert("t".into(), Arc::new(t));
    let table = system_table("system_schema", "dropped_columns");
    let rows = decode_rows(&table, &virtual_rows(&table, &schema, &node(), NOW));
    assert_eq!(rows.len(), 1);
    assert_eq!(text(&rows[0], "column_name"), "old");
    assert_eq!(text(&rows[0], "type"), "bigint");
    assert_eq!(rows[0]["dropped_time"], 5_000i64.to_be_bytes().to_vec());
}

#[test]
fn every_virtual_table_generates_valid_rows() {
    for ks in system_keyspaces() {
        for table in ks.tables.values() {
            assert!(is_virtual_table(&ks.name, &table.name));
            // decode_rows validates every cell against its column type.
            decode_rows(table, &virtual_rows(table, &schema(), &node(), NOW));
        }
    }
    assert!(!is_virtual_table("ks", "t"));
    assert!(virtual_rows(&user_table(), &schema(), &node(), NOW).is_empty());
}

/// The tables and columns the `scylla` driver and the Python driver (Cassandra 3 schema
/// parser, control connection) select, with the types they decode them as.
/// A keyspace, a table, and the (column, type) pairs read from it.
type TableRead = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const DRIVER_READS: &[TableRead] = &[
    (
        "system",
        "local",
        &[
            ("key", "text"),
            ("host_id", "uuid"),
            ("rpc_address", "inet"),
            ("data_center", "text"),
            ("rack", "text"),
            ("tokens", "frozen<set<text>>"),
            ("cluster_name", "text"),
            ("schema_version", "uuid"),
            ("partitioner", "text"),
            ("release_version", "text"),
            ("cql_version", "text"),
            ("listen_address", "inet"),
            ("broadcast_address", "inet"),
            ("rpc_port", "int"),
            ("supported_features", "text"),
            ("native_protocol_version", "text"),
            ("bootstrapped", "text"),
            ("gossip_generation", "int"),
        ],
    ),
    (
        "system",
        "peers",
        &[
            ("peer", "inet"),
            ("host_id", "uuid"),
            ("rpc_address", "inet"),
            ("data_center", "text"),
            ("rack", "text"),
            ("tokens", "frozen<set<text>>"),
            ("release_version", "text"),
            ("schema_version", "uuid"),
        ],
    ),
    (
        "system_schema",
        "keyspaces",
        &[
            ("keyspace_name", "text"),
            ("replication", "frozen<map<text, text>>"),
            ("durable_writes", "boolean"),
        ],
    ),
    (
        "system_schema",
        "tables",
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("flags", "frozen<set<text>>"),
            ("bloom_filter_fp_chance", "double"),
            ("caching", "frozen<map<text, text>>"),
            ("comment", "text"),
            ("compaction", "frozen<map<text, text>>"),
            ("compression", "frozen<map<text, text>>"),
            ("crc_check_chance", "double"),
            ("dclocal_read_repair_chance", "double"),
            ("default_time_to_live", "int"),
            ("extensions", "frozen<map<text, blob>>"),
            ("gc_grace_seconds", "int"),
            ("id", "uuid"),
            ("max_index_interval", "int"),
            ("memtable_flush_period_in_ms", "int"),
            ("min_index_interval", "int"),
            ("read_repair_chance", "double"),
            ("speculative_retry", "text"),
        ],
    ),
    (
        "system_schema",
        "columns",
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("column_name", "text"),
            ("kind", "text"),
            ("position", "int"),
            ("type", "text"),
            ("clustering_order", "text"),
            ("column_name_bytes", "blob"),
        ],
    ),
    (
        "system_schema",
        "types",
        &[
            ("keyspace_name", "text"),
            ("type_name", "text"),
            ("field_names", "frozen<list<text>>"),
            ("field_types", "frozen<list<text>>"),
        ],
    ),
    (
        "system_schema",
        "views",
        &[
            ("keyspace_name", "text"),
            ("view_name", "text"),
            ("base_table_name", "text"),
            ("include_all_columns", "boolean"),
            ("where_clause", "text"),
        ],
    ),
    (
        "system_schema",
        "functions",
        &[
            ("keyspace_name", "text"),
            ("function_name", "text"),
            ("argument_types", "frozen<list<text>>"),
            ("argument_names", "frozen<list<text>>"),
            ("return_type", "text"),
            ("language", "text"),
            ("body", "text"),
            ("called_on_null_input", "boolean"),
        ],
    ),
    (
        "system_schema",
        "aggregates",
        &[
            ("keyspace_name", "text"),
            ("aggregate_name", "text"),
            ("argument_types", "frozen<list<text>>"),
            ("state_func", "text"),
            ("state_type", "text"),
            ("final_func", "text"),
            ("initcond", "text"),
            ("return_type", "text"),
        ],
    ),
    (
        "system_schema",
        "indexes",
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("index_name", "text"),
            ("kind", "text"),
            ("options", "frozen<map<text, text>>"),
        ],
    ),
    (
        "system_schema",
        "triggers",
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("trigger_name", "text"),
            ("options", "frozen<map<text, text>>"),
        ],
    ),
    (
        "system_schema",
        "dropped_columns",
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("column_name", "text"),
            ("dropped_time", "timestamp"),
            ("type", "text"),
        ],
    ),
    (
        "system",
        "size_estimates",
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("range_start", "text"),
            ("range_end", "text"),
            ("mean_partition_size", "bigint"),
            ("partitions_count", "bigint"),
        ],
    ),
];

#[test]
fn every_table_drivers_read_has_the_columns_they_select() {
    for (keyspace, name, columns) in DRIVER_READS {
        let table = system_table(keyspace, name);
        for (column, ty) in *columns {
            let def = table
                .column(column)
                .unwrap_or_else(|| panic!("{keyspace}.{name}.{column} exists"));
            assert_eq!(def.ty.cql_name(), *ty, "{keyspace}.{name}.{column}");
        }
    }
}

#[test]
fn system_keyspaces_are_local_and_ids_stable_and_unique() {
    let keyspaces = system_keyspaces();
    let mut ids = std::collections::BTreeSet::new();
    for ks in &keyspaces {
        assert!(is_system_keyspace(&ks.name));
        assert_eq!(ks.replication["class"], LOCAL_STRATEGY);
        for t in ks.tables.values() {
            assert_eq!(t.id, system_table_id(&ks.name, &t.name));
            assert!(ids.insert(t.id), "{}.{} id unique", ks.name, t.name);
        }
    }
    assert_eq!(system_keyspaces(), keyspaces);
    for name in ["system_auth", "system_traces", "system_distributed"] {
        assert!(is_system_keyspace(name));
    }
    assert!(!is_system_keyspace("ks"));
    assert!(!is_system_keyspace("systemx"));
}

#[test]
fn describe_table_renders_compound_keys_and_options() {
    let text = describe_table(&user_table());
    let expected = "CREATE TABLE ks.t (
    a int,
    b text,
    c int,
    d text,
    addr frozen<address>,
    m map<text, int>,
    s int static,
    v frozen<list<int>>,
    PRIMARY KEY ((a, b), c, d)
) WITH CLUSTERING ORDER BY (c DESC, d ASC)
    AND bloom_filter_fp_chance = 0.01
    AND caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'}
    AND comment = ''
    AND compaction = {'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy'}
    AND compression = {'chunk_length_in_kb': '16', 'sstable_compression': 'org.apache.cassandra.io.compress.LZ4Compressor'}
    AND crc_check_chance = 1.0
    AND dclocal_read_repair_chance = 0.0
    AND default_time_to_live = 0
    AND gc_grace_seconds = 864000
    AND max_index_interval = 2048
    AND memtable_flush_period_in_ms = 0
    AND min_index_interval = 128
    AND read_repair_chance = 0.0
    AND speculative_retry = '99.0PERCENTILE';";
    assert_eq!(text, expected);
}

#[test]
fn describe_table_inlines_a_single_key_and_quotes_names() {
    let mut table = system_table("system", "local");
    table.options.comment = "it's local".into();
    let text = describe_table(&table);
    assert!(text.starts_with("CREATE TABLE system.local (\n    key text PRIMARY KEY,\n"));
    assert!(text.contains("    truncated_at frozen<map<uuid, blob>>\n) WITH bloom_filter"));
    assert!(text.contains("AND comment = 'it''s local'"));
    assert_eq!(quote_ident("Mixed"), "\"Mixed\"");
    assert_eq!(quote_ident("select"), "\"select\"");
    assert_eq!(quote_ident("plain_1"), "plain_1");
}

#[test]
fn describe_keyspace_lists_keyspace_types_and_tables() {
    let schema = schema();
    let text = describe_keyspace(schema.keyspace("ks").expect("ks"));
    let expected_head = "CREATE KEYSPACE ks WITH replication = {'class': \
        'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '1'} \
        AND durable_writes = true;\n\n\
        CREATE TYPE ks.address (\n    street text,\n    zip int,\n    tags frozen<list<text>>\n);\n\n\
        CREATE TABLE ks.t (";
    assert!(text.starts_with(expected_head), "{text}");
}
