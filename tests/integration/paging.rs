//! Paging over many rows and prepared statements routed to their owning shard.
use futures::TryStreamExt;
use scylla::statement::Statement;

use crate::harness::{create_keyspace, TestNode};

#[tokio::test(flavor = "multi_thread")]
async fn pages_over_ten_thousand_rows() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "paging").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (p int, c int, v bigint, PRIMARY KEY (p, c))"),
            (),
        )
        .await
        .expect("table");
    let insert = session
        .prepare(format!("INSERT INTO {ks}.t (p, c, v) VALUES (?, ?, ?)"))
        .await
        .expect("prepare");
    let mut pending = Vec::new();
    for i in 0..10_000i32 {
        pending.push(session.execute_unpaged(&insert, (i % 100, i, i64::from(i) * 3)));
        if pending.len() == 256 {
            futures::future::try_join_all(pending.drain(..))
                .await
                .expect("inserts");
        }
    }
    futures::future::try_join_all(pending)
        .await
        .expect("inserts");

    let mut scan = Statement::new(format!("SELECT p, c, v FROM {ks}.t"));
    scan.set_page_size(333);
    let rows: Vec<(i32, i32, i64)> = session
        .query_iter(scan, ())
        .await
        .expect("scan")
        .rows_stream::<(i32, i32, i64)>()
        .expect("typed")
        .try_collect()
        .await
        .expect("all pages");
    assert_eq!(rows.len(), 10_000);
    let mut seen: Vec<i32> = rows.iter().map(|r| r.1).collect();
    seen.sort();
    assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    assert!(rows
        .iter()
        .all(|(p, c, v)| c % 100 == *p && *v == i64::from(*c) * 3));

    let (count,): (i64,) = session
        .query_unpaged(format!("SELECT COUNT(*) FROM {ks}.t"), ())
        .await
        .expect("count")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(count, 10_000);

    let mut one_partition = Statement::new(format!("SELECT c FROM {ks}.t WHERE p = 7"));
    one_partition.set_page_size(7);
    let cs: Vec<(i32,)> = session
        .query_iter(one_partition, ())
        .await
        .expect("partition")
        .rows_stream::<(i32,)>()
        .expect("typed")
        .try_collect()
        .await
        .expect("pages");
    assert_eq!(cs, (0..100).map(|i| (i * 100 + 7,)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_statements_expose_partition_key_indexes_and_token() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "routing").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (a int, b text, v int, PRIMARY KEY ((a, b)))"),
            (),
        )
        .await
        .expect("table");
    let prepared = session
        .prepare(format!("INSERT INTO {ks}.t (v, b, a) VALUES (?, ?, ?)"))
        .await
        .expect("prepare");
    assert!(prepared.is_token_aware());
    let pk: Vec<u16> = prepared
        .get_variable_pk_indexes()
        .iter()
        .map(|i| i.index)
        .collect();
    assert_eq!(pk.len(), 2);
    assert!(pk.contains(&1) && pk.contains(&2));
    for a in 0..50 {
        session
            .execute_unpaged(&prepared, (a, format!("b{a}"), a))
            .await
            .expect("execute");
    }
    // The server computes the same tokens the driver does.
    let select = session
        .prepare(format!(
            "SELECT token(a, b), v FROM {ks}.t WHERE a = ? AND b = ?"
        ))
        .await
        .expect("prepare select");
    for a in 0..50 {
        let b = format!("b{a}");
        let token = select
            .calculate_token(&(a, b.as_str()))
            .expect("token")
            .expect("has token");
        let (server_token, v): (i64, i32) = session
            .execute_unpaged(&select, (a, b.as_str()))
            .await
            .expect("select")
            .into_rows_result()
            .expect("rows")
            .single_row()
            .expect("row");
        assert_eq!(server_token, token.value());
        assert_eq!(v, a);
    }
}
