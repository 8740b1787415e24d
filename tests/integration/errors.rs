//! Error codes the driver sees for bad statements.
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};

use crate::harness::{create_keyspace, TestNode};

fn db_error(error: ExecutionError) -> (DbError, String) {
    match error {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(code, message)) => {
            (code, message)
        }
        ExecutionError::PrepareError(prepare) => {
            let text = prepare.to_string();
            panic!("prepare error, not a db error: {text}")
        }
        other => panic!("not a db error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_errors_have_the_right_codes() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "errors").await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
            (),
        )
        .await
        .expect("table");

    let (code, message) = db_error(
        session
            .query_unpaged("SELEC * FROM x", ())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, DbError::SyntaxError, "{message}");
    assert!(
        message.contains("line 1:"),
        "syntax errors carry a position: {message}"
    );

    let (code, message) = db_error(
        session
            .query_unpaged("SELECT * FROM nosuchks.t", ())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, DbError::Invalid, "{message}");
    assert!(message.contains("nosuchks"), "{message}");

    let (code, message) = db_error(
        session
            .query_unpaged(format!("SELECT * FROM {ks}.nosuchtable"), ())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, DbError::Invalid, "{message}");

    let (code, _) = db_error(
        session
            .query_unpaged(
                format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
                (),
            )
            .await
            .unwrap_err(),
    );
    assert!(matches!(code, DbError::AlreadyExists { .. }), "{code:?}");

    let (code, message) = db_error(
        session
            .query_unpaged(
                format!("INSERT INTO {ks}.t (k, v) VALUES ('text', 'v')"),
                (),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, DbError::Invalid, "{message}");

    // A wrongly typed bind value: the driver checks types, so send raw bytes
    // of the wrong size for an int.
    let prepared = session
        .prepare(format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"))
        .await
        .expect("prepare");
    let wrong = session
        .execute_unpaged(&prepared, (1i64, "v"))
        .await
        .expect_err("bigint for an int column is refused");
    assert!(!wrong.to_string().is_empty());

    let (code, message) = db_error(
        session
            .query_unpaged(format!("SELECT * FROM {ks}.t WHERE v = 'x'"), ())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, DbError::Invalid, "{message}");
    assert!(message.contains("ALLOW FILTERING"), "{message}");
    session
        .query_unpaged(
            format!("SELECT * FROM {ks}.t WHERE v = 'x' ALLOW FILTERING"),
            (),
        )
        .await
        .expect("filtering allowed");
}
