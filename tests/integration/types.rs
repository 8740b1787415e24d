//! Every native type round-trips bit-exactly through the driver.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use scylla::value::{
    CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlVarint,
};

use crate::harness::{create_keyspace, TestNode};

#[tokio::test(flavor = "multi_thread")]
async fn native_types_round_trip() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "types").await;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {ks}.t (k int PRIMARY KEY, a ascii, b bigint, bl blob, bo boolean, \
                 d date, de decimal, db double, du duration, f float, i inet, s smallint, \
                 t text, ti time, ts timestamp, tu timeuuid, ty tinyint, u uuid, vi varint)"
            ),
            (),
        )
        .await
        .expect("table");
    let timeuuid = CqlTimeuuid::from_bytes([
        0x8e, 0x14, 0xe7, 0x60, 0x7f, 0xa8, 0x11, 0xeb, 0xbc, 0x66, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01,
    ]);
    let uuid = uuid::Uuid::new_v4();
    let decimal = CqlDecimal::from_signed_be_bytes_slice_and_exponent(&[0x01, 0xE2, 0x40], 3);
    let varint = CqlVarint::from_signed_bytes_be(vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let duration = CqlDuration {
        months: -1,
        days: -2,
        nanoseconds: -3_000_000_000,
    };
    let first = (
        1i32,
        "ascii".to_string(),
        i64::MIN,
        vec![0u8, 1, 2, 255],
        true,
        CqlDate((1u32 << 31) + 19000),
        decimal.clone(),
        -1.5e300f64,
        duration,
        f32::MIN_POSITIVE,
    );
    let second = (
        1i32,
        "::1".parse::<IpAddr>().expect("ip"),
        -32768i16,
        "täxt ✓".to_string(),
        CqlTime(86_399_999_999_999),
        CqlTimestamp(-1_234_567),
        timeuuid,
        -128i8,
        uuid,
        varint.clone(),
    );
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (k, a, b, bl, bo, d, de, db, du, f) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            first.clone(),
        )
        .await
        .expect("insert first half");
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.t (k, i, s, t, ti, ts, tu, ty, u, vi) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            second.clone(),
        )
        .await
        .expect("insert second half");
    type First = (
        i32,
        String,
        i64,
        Vec<u8>,
        bool,
        CqlDate,
        CqlDecimal,
        f64,
        CqlDuration,
        f32,
    );
    type Second = (
        i32,
        IpAddr,
        i16,
        String,
        CqlTime,
        CqlTimestamp,
        CqlTimeuuid,
        i8,
        uuid::Uuid,
        CqlVarint,
    );
    let row: First = session
        .query_unpaged(
            format!("SELECT k, a, b, bl, bo, d, de, db, du, f FROM {ks}.t WHERE k = 1"),
            (),
        )
        .await
        .expect("select first half")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(row, first);
    let row: Second = session
        .query_unpaged(
            format!("SELECT k, i, s, t, ti, ts, tu, ty, u, vi FROM {ks}.t WHERE k = 1"),
            (),
        )
        .await
        .expect("select second half")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!(row, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_tuples_udts_round_trip_and_clustering_order_follows_type() {
    let node = TestNode::start();
    let session = node.session().await;
    let ks = create_keyspace(&session, "coll_types").await;
    session
        .query_unpaged(format!("CREATE TYPE {ks}.pt (x int, y text)"), ())
        .await
        .expect("type");
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {ks}.t (k int, c varint, fl frozen<list<int>>, s set<bigint>, \
                 m map<int, frozen<set<text>>>, tu tuple<int, text>, p frozen<pt>, \
                 PRIMARY KEY (k, c))"
            ),
            (),
        )
        .await
        .expect("table");
    for c in [-1000i64, 5, 100, -3, 70000] {
        session
            .query_unpaged(
                format!("INSERT INTO {ks}.t (k, c, fl, s, m, tu, p) VALUES (1, {c}, [3, 1], {{9, -9}}, {{1: {{'a'}}}}, (1, 'one'), {{x: 2, y: 'two'}})"),
                (),
            )
            .await
            .expect("insert");
    }
    type Row = (
        CqlVarint,
        Vec<i32>,
        BTreeSet<i64>,
        BTreeMap<i32, Vec<String>>,
        (i32, String),
    );
    let rows: Vec<Row> = session
        .query_unpaged(
            format!("SELECT c, fl, s, m, tu FROM {ks}.t WHERE k = 1"),
            (),
        )
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows()
        .expect("typed")
        .collect::<Result<_, _>>()
        .expect("deserialize");
    let order: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| r.0.as_signed_bytes_be_slice().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = [-1000i64, -3, 5, 100, 70000]
        .iter()
        .map(|v| num_bigint_bytes(*v).as_signed_bytes_be_slice().to_vec())
        .collect();
    assert_eq!(order, expected, "varint clustering sorts numerically");
    let first = &rows[0];
    assert_eq!(first.1, vec![3, 1]);
    assert_eq!(first.2, BTreeSet::from([-9, 9]));
    assert_eq!(first.3, BTreeMap::from([(1, vec!["a".to_string()])]));
    assert_eq!(first.4, (1, "one".to_string()));
}

fn num_bigint_bytes(value: i64) -> CqlVarint {
    // Minimal two's complement, as the server stores varints.
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let redundant = (bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    CqlVarint::from_signed_bytes_be(bytes[start..].to_vec())
}
