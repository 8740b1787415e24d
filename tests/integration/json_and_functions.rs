//! JSON, native functions, CAST and GROUP BY through the driver, prepared
//! and unprepared.
use scylla::client::session::Session;

use crate::harness::{create_keyspace, TestNode};

async fn setup(session: &Session) -> String {
    let ks = create_keyspace(session, "json").await;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {ks}.t (p int, c int, v int, ts timestamp, m map<int, text>, \
                 PRIMARY KEY (p, c))"
            ),
            (),
        )
        .await
        .expect("table");
    ks
}

async fn one_text(session: &Session, query: String) -> String {
    let rows = session
        .query_unpaged(query, ())
        .await
        .expect("query runs")
        .into_rows_result()
        .expect("rows");
    let (text,): (String,) = rows.single_row().expect("one row");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn insert_json_and_select_json_round_trip() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = setup(&session).await;
    session
        .query_unpaged(
            format!(
                "INSERT INTO {ks}.t JSON '{{\"p\": 1, \"c\": 2, \"v\": 3, \
                 \"ts\": \"2014-01-01 12:15:45.000Z\", \"m\": {{\"1\": \"a\"}}}}'"
            ),
            (),
        )
        .await
        .expect("insert json");
    let json = one_text(&session, format!("SELECT JSON * FROM {ks}.t WHERE p = 1")).await;
    assert_eq!(
        json,
        r#"{"p": 1, "c": 2, "m": {"1": "a"}, "ts": "2014-01-01 12:15:45.000Z", "v": 3}"#
    );
    // DEFAULT UNSET keeps v; the default (NULL) clears it.
    let prepared = session
        .prepare(format!("INSERT INTO {ks}.t JSON ? DEFAULT UNSET"))
        .await
        .expect("prepare insert json");
    session
        .execute_unpaged(&prepared, (r#"{"p": 1, "c": 2}"#,))
        .await
        .expect("insert json unset");
    let v = one_text(
        &session,
        format!("SELECT toJson(v) FROM {ks}.t WHERE p = 1"),
    )
    .await;
    assert_eq!(v, "3");
    let fromjson = session
        .prepare(format!(
            "UPDATE {ks}.t SET v = fromJson(?) WHERE p = 1 AND c = 2"
        ))
        .await
        .expect("prepare fromJson");
    session
        .execute_unpaged(&fromjson, ("\"17\"",))
        .await
        .expect("fromJson of a numeric string");
    let v = one_text(
        &session,
        format!("SELECT cast(v AS text) FROM {ks}.t WHERE p = 1"),
    )
    .await;
    assert_eq!(v, "17");
    let err = session
        .query_unpaged(
            format!("INSERT INTO {ks}.t JSON '{{\"p\": 1, \"c\": 2, \"nope\": 1}}'"),
            (),
        )
        .await
        .expect_err("unknown column");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_in_selectors_and_group_by() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = setup(&session).await;
    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.t (p, c, v, ts) VALUES (?, ?, ?, toTimestamp((date) ?))"
        ))
        .await
        .expect("prepare with a hinted function argument");
    for (p, c) in [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)] {
        session
            .execute_unpaged(
                &insert,
                (p, c, p * 10 + c, scylla::value::CqlDate((1u32 << 31) + 2)),
            )
            .await
            .expect("insert");
    }
    let rows = session
        .query_unpaged(
            format!("SELECT p, count(*), sum(v), max(c) FROM {ks}.t GROUP BY p"),
            (),
        )
        .await
        .expect("group by")
        .into_rows_result()
        .expect("rows");
    let mut groups: Vec<(i32, i64, i32, i32)> = rows
        .rows::<(i32, i64, i32, i32)>()
        .expect("typed rows")
        .map(|r| r.expect("row"))
        .collect();
    groups.sort();
    assert_eq!(groups, [(0, 2, 1, 1), (1, 3, 33, 2)]);
    let rows = session
        .query_unpaged(
            format!(
                "SELECT tounixtimestamp(ts), cast(v AS bigint), blobasint(intasblob(v)) \
                 FROM {ks}.t WHERE p = 1 AND c = 2"
            ),
            (),
        )
        .await
        .expect("scalar functions")
        .into_rows_result()
        .expect("rows");
    let names: Vec<&str> = rows.column_specs().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "system.tounixtimestamp(ts)",
            "cast(v as bigint)",
            "system.blobasint(system.intasblob(v))"
        ]
    );
    let row: (i64, i64, i32) = rows.single_row().expect("one row");
    assert_eq!(row, (2 * 86_400_000, 12, 12));
}
