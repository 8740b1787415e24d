//! Conditional statements (lightweight transactions) through the scylla
//! driver: the `[applied]` result, conditions, conditional batches, and
//! atomicity under concurrent IF NOT EXISTS inserts.
use std::sync::Arc;

use scylla::client::session::Session;
use scylla::response::query_result::QueryRowsResult;
use scylla::statement::batch::Batch;
use scylla::value::{CqlValue, Row};

use crate::harness::{create_keyspace, TestNode};

async fn setup(session: &Session) -> String {
    let ks = create_keyspace(session, "lwt").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (p int, c int, s int static, v text, PRIMARY KEY (p, c))"),
            (),
        )
        .await
        .expect("create table");
    ks
}

/// The `[applied]` flag of a result, whatever columns follow it.
fn flag(rows: &QueryRowsResult) -> bool {
    assert_eq!(
        rows.column_specs().get_by_index(0).map(|c| c.name()),
        Some("[applied]")
    );
    let row: Row = rows.first_row().expect("an [applied] row");
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(applied))) => *applied,
        other => panic!("[applied] is not a boolean: {other:?}"),
    }
}

async fn applied(session: &Session, query: String) -> bool {
    let rows = session
        .query_unpaged(query, ())
        .await
        .expect("conditional statement")
        .into_rows_result()
        .expect("rows");
    flag(&rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn insert_if_not_exists_applies_once_and_shows_the_row() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = setup(&session).await;
    let insert = format!("INSERT INTO {ks}.t (p, c, v) VALUES (1, 1, 'a') IF NOT EXISTS");
    let first = session
        .query_unpaged(insert.clone(), ())
        .await
        .expect("insert")
        .into_rows_result()
        .expect("rows");
    assert_eq!(first.rows_num(), 1);
    assert_eq!(first.column_specs().len(), 1);
    assert!(flag(&first));
    let second = session
        .query_unpaged(insert, ())
        .await
        .expect("insert again")
        .into_rows_result()
        .expect("rows");
    let row: (bool, i32, i32, Option<i32>, String) = second.first_row().expect("row");
    assert_eq!(row, (false, 1, 1, None, "a".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn update_and_delete_conditions() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = setup(&session).await;
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (p, c, s, v) VALUES (2, 1, 10, 'x')"),
            (),
        )
        .await
        .expect("insert");
    let t = format!("{ks}.t");
    assert!(
        !applied(
            &session,
            format!("UPDATE {t} SET v = 'y' WHERE p = 2 AND c = 1 IF v = 'z'")
        )
        .await
    );
    assert!(
        applied(
            &session,
            format!("UPDATE {t} SET v = 'y' WHERE p = 2 AND c = 1 IF v = 'x' AND s >= 10")
        )
        .await
    );
    assert!(
        applied(
            &session,
            format!("UPDATE {t} SET s = 11 WHERE p = 2 IF s IN (9, 10)")
        )
        .await
    );
    assert!(
        !applied(
            &session,
            format!("UPDATE {t} SET v = 'w' WHERE p = 2 AND c = 7 IF EXISTS")
        )
        .await
    );
    assert!(
        applied(
            &session,
            format!("UPDATE {t} SET v = 'w' WHERE p = 2 AND c = 1 IF v != null")
        )
        .await
    );
    assert!(
        applied(
            &session,
            format!("DELETE FROM {t} WHERE p = 2 AND c = 1 IF EXISTS")
        )
        .await
    );
    assert!(
        !applied(
            &session,
            format!("DELETE FROM {t} WHERE p = 2 AND c = 1 IF EXISTS")
        )
        .await
    );
    let rows = session
        .query_unpaged(format!("SELECT s FROM {t} WHERE p = 2"), ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows");
    assert_eq!(rows.first_row::<(i32,)>().expect("static row").0, 11);
    let err = session
        .query_unpaged(
            format!("UPDATE {t} USING TIMESTAMP 5 SET v = 'q' WHERE p = 2 AND c = 1 IF v = 'a'"),
            (),
        )
        .await
        .expect_err("custom timestamp");
    assert!(
        err.to_string().contains("Cannot provide custom timestamp"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_conditional_statement_and_batch() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = setup(&session).await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.t (p, c, v) VALUES (?, ?, ?) IF NOT EXISTS"
        ))
        .await
        .expect("prepare");
    let result = session
        .execute_unpaged(&insert, (3, 1, "a"))
        .await
        .expect("execute")
        .into_rows_result()
        .expect("rows");
    assert!(flag(&result));

    let mut batch = Batch::default();
    batch.append_statement(
        format!("UPDATE {ks}.t SET v = 'b' WHERE p = 3 AND c = 1 IF v = 'a'").as_str(),
    );
    batch.append_statement(insert.clone());
    let result = session
        .batch(&batch, ((), (3, 2, "c")))
        .await
        .expect("conditional batch")
        .into_rows_result()
        .expect("rows");
    assert!(flag(&result));

    let mut across = Batch::default();
    across.append_statement(insert.clone());
    across.append_statement(insert);
    let err = session
        .batch(&across, ((4, 1, "x"), (5, 1, "y")))
        .await
        .expect_err("two partitions");
    assert!(
        err.to_string().contains("cannot span multiple partitions"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_inserts_if_not_exists_apply_exactly_once() {
    let node = TestNode::start_with(2, &[]);
    let session = Arc::new(node.session().await);
    let ks = setup(&session).await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.t (p, c, v) VALUES (?, ?, ?) IF NOT EXISTS"
        ))
        .await
        .expect("prepare");
    for key in 0..5 {
        let tasks: Vec<_> = (0..32)
            .map(|writer| {
                let session = session.clone();
                let insert = insert.clone();
                tokio::spawn(async move {
                    let rows = session
                        .execute_unpaged(&insert, (100 + key, 0, format!("w{writer}")))
                        .await
                        .expect("execute")
                        .into_rows_result()
                        .expect("rows");
                    flag(&rows)
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            if task.await.expect("task") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "exactly one insert of key {key} applies");
    }
}
