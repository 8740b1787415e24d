//! Connecting, DDL, DML and semantics through the scylla driver.

use crate::harness::{create_keyspace, TestNode};

#[tokio::test(flavor = "multi_thread")]
async fn connects_and_reads_system_local() {
    let node = TestNode::start();
    let session = node.session().await;
    let rows = session
        .query_unpaged(
            "SELECT cluster_name, release_version FROM system.local WHERE key='local'",
            (),
        )
        .await
        .expect("select system.local")
        .into_rows_result()
        .expect("rows");
    let (cluster, version): (String, String) = rows.single_row().expect("one row");
    assert_eq!(cluster, "Test Cluster");
    assert!(!version.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn insert_update_delete_select() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "dml").await;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {ks}.t (pk int, ck int, v text, s int static, PRIMARY KEY (pk, ck))"
            ),
            (),
        )
        .await
        .expect("create table");
    for ck in 0..5 {
        session
            .query_unpaged(
                format!("INSERT INTO {ks}.t (pk, ck, v) VALUES (1, ?, ?)"),
                (ck, format!("v{ck}")),
            )
            .await
            .expect("insert");
    }
    session
        .query_unpaged(
            format!("UPDATE {ks}.t SET v = 'changed', s = 7 WHERE pk = 1 AND ck = 2"),
            (),
        )
        .await
        .expect("update");
    session
        .query_unpaged(format!("DELETE FROM {ks}.t WHERE pk = 1 AND ck = 4"), ())
        .await
        .expect("delete row");
    let rows: Vec<(i32, i32, Option<String>, Option<i32>)> = session
        .query_unpaged(format!("SELECT pk, ck, v, s FROM {ks}.t WHERE pk = 1"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows()
        .expect("typed rows")
        .collect::<Result<_, _>>()
        .expect("deserialize");
    assert_eq!(
        rows,
        vec![
            (1, 0, Some("v0".into()), Some(7)),
            (1, 1, Some("v1".into()), Some(7)),
            (1, 2, Some("changed".into()), Some(7)),
            (1, 3, Some("v3".into()), Some(7)),
        ]
    );
    let rows: Vec<(i32,)> = session
        .query_unpaged(
            format!("SELECT ck FROM {ks}.t WHERE pk = 1 AND ck > 1 AND ck <= 3 ORDER BY ck DESC"),
            (),
        )
        .await
        .expect("slice")
        .into_rows_result()
        .expect("rows")
        .rows()
        .expect("typed")
        .collect::<Result<_, _>>()
        .expect("deserialize");
    assert_eq!(rows, vec![(3,), (2,)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_without_marker_vanishes_when_cells_are_deleted() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "marker").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
            (),
        )
        .await
        .expect("create");
    session
        .query_unpaged(format!("UPDATE {ks}.t SET v = 1 WHERE k = 1"), ())
        .await
        .expect("update");
    session
        .query_unpaged(format!("INSERT INTO {ks}.t (k, v) VALUES (2, 2)"), ())
        .await
        .expect("insert");
    session
        .query_unpaged(format!("DELETE v FROM {ks}.t WHERE k IN (1, 2)"), ())
        .await
        .expect("delete cells");
    let mut keys: Vec<(i32,)> = session
        .query_unpaged(format!("SELECT k FROM {ks}.t"), ())
        .await
        .expect("scan")
        .into_rows_result()
        .expect("rows")
        .rows()
        .expect("typed")
        .collect::<Result<_, _>>()
        .expect("deserialize");
    keys.sort();
    // The INSERTed row keeps its row marker; the UPDATEd one had none.
    assert_eq!(keys, vec![(2,)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn last_write_wins_by_client_timestamp() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "lww").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
            (),
        )
        .await
        .expect("create");
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (k, v) VALUES (1, 10) USING TIMESTAMP 2000"),
            (),
        )
        .await
        .expect("newer");
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (k, v) VALUES (1, 20) USING TIMESTAMP 1000"),
            (),
        )
        .await
        .expect("older");
    let (v, wt): (i32, i64) = session
        .query_unpaged(
            format!("SELECT v, writetime(v) FROM {ks}.t WHERE k = 1"),
            (),
        )
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!((v, wt), (10, 2000));
    session
        .query_unpaged(
            format!("DELETE FROM {ks}.t USING TIMESTAMP 1500 WHERE k = 1"),
            (),
        )
        .await
        .expect("older delete");
    let rows = session
        .query_unpaged(format!("SELECT v FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows");
    assert_eq!(
        rows.rows_num(),
        1,
        "an older tombstone does not shadow a newer write"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_and_batches() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "coll").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>)"),
            (),
        )
        .await
        .expect("create");
    session
        .query_unpaged(
            format!(
                "BEGIN BATCH \
                 INSERT INTO {ks}.t (k, l, s, m) VALUES (1, [1, 2], {{'a', 'b'}}, {{'x': 1}}); \
                 UPDATE {ks}.t SET l = l + [3], s = s - {{'a'}}, m['y'] = 2 WHERE k = 1; \
                 UPDATE {ks}.t SET l = [0] + l WHERE k = 1; \
                 APPLY BATCH"
            ),
            (),
        )
        .await
        .expect("batch");
    session
        .query_unpaged("BEGIN BATCH APPLY BATCH", ())
        .await
        .expect("empty batch is valid");
    type Row = (
        Vec<i32>,
        Vec<String>,
        std::collections::BTreeMap<String, i32>,
    );
    let (l, s, m): Row = session
        .query_unpaged(format!("SELECT l, s, m FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(l, vec![0, 1, 2, 3]);
    assert_eq!(s, vec!["b".to_string()]);
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        vec![("x".into(), 1), ("y".into(), 2)]
    );
    session
        .query_unpaged(format!("UPDATE {ks}.t SET l[1] = 10 WHERE k = 1"), ())
        .await
        .expect("set by index");
    session
        .query_unpaged(format!("DELETE m['x'] FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("delete map element");
    let (l, m): (Vec<i32>, std::collections::BTreeMap<String, i32>) = session
        .query_unpaged(format!("SELECT l, m FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(l, vec![0, 10, 2, 3]);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![("y".into(), 2)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_expires() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "ttl").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
            (),
        )
        .await
        .expect("create");
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (k, v) VALUES (1, 1) USING TTL 1"),
            (),
        )
        .await
        .expect("insert with ttl");
    let (ttl,): (Option<i32>,) = session
        .query_unpaged(format!("SELECT ttl(v) FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("select ttl")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert!(matches!(ttl, Some(0..=1)), "ttl {ttl:?}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let rows = session
        .query_unpaged(format!("SELECT v FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows");
    assert_eq!(rows.rows_num(), 0, "expired row is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_survives_restart_and_sigterm_exits_cleanly() {
    let mut node = TestNode::start();
    let ks;
    {
        let session = node.session().await;
        ks = create_keyspace(&session, "persist").await;
        session
            .query_unpaged(
                format!("CREATE TABLE {ks}.t (a int, b text, c double, PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'kept'"),
                (),
            )
            .await
            .expect("create");
    }
    node.restart();
    let session = node.session().await;
    let (comment,): (String,) = session
        .query_unpaged(
            "SELECT comment FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 't'",
            (ks.as_str(),),
        )
        .await
        .expect("select schema")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(comment, "kept");
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (a, b, c) VALUES (1, 'x', 1.5)"),
            (),
        )
        .await
        .expect("table usable after restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_schema_metadata_sees_tables_and_types() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "meta").await;
    session
        .query_unpaged(
            format!("CREATE TYPE {ks}.address (street text, zip int)"),
            (),
        )
        .await
        .expect("create type");
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.people (id uuid PRIMARY KEY, home frozen<address>, tags set<text>)"),
            (),
        )
        .await
        .expect("create table");
    session
        .await_schema_agreement()
        .await
        .expect("schema agreement");
    session.refresh_metadata().await.expect("refresh metadata");
    let state = session.get_cluster_state();
    let keyspace = state
        .get_keyspace(&ks)
        .expect("keyspace in driver metadata");
    let table = keyspace.tables.get("people").expect("table in metadata");
    assert_eq!(table.partition_key, vec!["id".to_string()]);
    assert!(keyspace.user_defined_types.contains_key("address"));
}

#[tokio::test(flavor = "multi_thread")]
async fn lz4_compressed_connections_work() {
    let node = TestNode::start();
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node_addr(node.addr())
        .compression(Some(scylla::client::Compression::Lz4))
        .build()
        .await
        .expect("connect with lz4");
    let ks = create_keyspace(&session, "lz4").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
            (),
        )
        .await
        .expect("create");
    let big = "x".repeat(100_000);
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (k, v) VALUES (1, ?)"),
            (big.as_str(),),
        )
        .await
        .expect("insert a compressible value");
    let (v,): (String,) = session
        .query_unpaged(format!("SELECT v FROM {ks}.t WHERE k = 1"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(v, big);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_batches_carry_a_warning() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "warn").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
            (),
        )
        .await
        .expect("create");
    let value = "y".repeat(2000);
    let statements: String = (0..5)
        .map(|k| format!("INSERT INTO {ks}.t (k, v) VALUES ({k}, '{value}'); "))
        .collect();
    let result = session
        .query_unpaged(format!("BEGIN BATCH {statements} APPLY BATCH"), ())
        .await
        .expect("batch");
    let warnings: Vec<&str> = result.warnings().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("exceeding specified threshold"),
        "{warnings:?}"
    );
}
