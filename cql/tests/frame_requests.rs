//! Request::decode for every request kind, built by hand, plus malformed bodies.

use bytes::{BufMut, Bytes, BytesMut};
use cql::frame::{
    primitives::*, Batch, BatchKind, BatchQuery, Consistency, FrameError, Opcode, QueryParameters,
    Request, Value, Values,
};

fn decode(version: u8, opcode: Opcode, body: BytesMut) -> Result<Request, FrameError> {
    Request::decode(version, opcode, body.freeze())
}

#[test]
fn startup_options_register_auth() {
    let mut body = BytesMut::new();
    put_string_map(
        &mut body,
        &[("CQL_VERSION", "3.0.0"), ("COMPRESSION", "lz4")],
    );
    let got = decode(4, Opcode::Startup, body).expect("valid");
    let want = vec![
        ("CQL_VERSION".to_owned(), "3.0.0".to_owned()),
        ("COMPRESSION".to_owned(), "lz4".to_owned()),
    ];
    assert_eq!(got, Request::Startup(want));
    assert_eq!(
        decode(4, Opcode::Options, BytesMut::new()),
        Ok(Request::Options)
    );
    let mut body = BytesMut::new();
    put_string_list(&mut body, &["SCHEMA_CHANGE", "STATUS_CHANGE"]);
    let got = decode(3, Opcode::Register, body).expect("valid");
    assert_eq!(
        got,
        Request::Register(vec!["SCHEMA_CHANGE".into(), "STATUS_CHANGE".into()])
    );
    let mut body = BytesMut::new();
    put_bytes(&mut body, Some(b"\0user\0pass"));
    let got = decode(4, Opcode::AuthResponse, body).expect("valid");
    assert_eq!(
        got,
        Request::AuthResponse(Some(Bytes::from_static(b"\0user\0pass")))
    );
    let mut body = BytesMut::new();
    put_long_string(&mut body, "SELECT * FROM ks.t WHERE k = ?");
    let got = decode(4, Opcode::Prepare, body).expect("valid");
    assert_eq!(
        got,
        Request::Prepare {
            query: "SELECT * FROM ks.t WHERE k = ?".into()
        }
    );
}

#[test]
fn query_with_every_parameter() {
    let mut body = BytesMut::new();
    put_long_string(&mut body, "INSERT INTO t (k, v) VALUES (?, ?)");
    put_short(&mut body, Consistency::LocalQuorum.code());
    body.put_u8(0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20);
    put_short(&mut body, 3);
    put_bytes(&mut body, Some(b"\0\0\0\x01"));
    put_int(&mut body, -1);
    put_int(&mut body, -2);
    put_int(&mut body, 5000);
    put_bytes(&mut body, Some(b"state"));
    put_short(&mut body, Consistency::LocalSerial.code());
    put_long(&mut body, 1_700_000_000_000_000);
    let Request::Query { query, params } = decode(4, Opcode::Query, body).expect("valid") else {
        panic!("not a query");
    };
    assert_eq!(query, "INSERT INTO t (k, v) VALUES (?, ?)");
    let want = QueryParameters {
        consistency: Consistency::LocalQuorum,
        values: Values::Positional(vec![
            Value::Bytes(Bytes::from_static(b"\0\0\0\x01")),
            Value::Null,
            Value::Unset,
        ]),
        skip_metadata: true,
        page_size: Some(5000),
        paging_state: Some(Bytes::from_static(b"state")),
        serial_consistency: Some(Consistency::LocalSerial),
        timestamp: Some(1_700_000_000_000_000),
    };
    assert_eq!(params, want);
}

fn execute_body(flags: u8, values: &[i32]) -> BytesMut {
    let mut body = BytesMut::new();
    put_short_bytes(&mut body, &[0xAA; 16]);
    put_short(&mut body, Consistency::One.code());
    body.put_u8(flags);
    if flags & 0x01 != 0 {
        put_short(&mut body, u16::try_from(values.len()).expect("few"));
        for v in values {
            if flags & 0x40 != 0 {
                put_string(&mut body, "name");
            }
            put_int(&mut body, *v);
        }
    }
    body
}

#[test]
fn execute_values_are_views_of_the_body() {
    let body = execute_body(0x01, &[0]).freeze();
    let got = Request::decode(4, Opcode::Execute, body.clone()).expect("valid");
    let Request::Execute { id, params } = got else {
        panic!("not execute");
    };
    assert_eq!(&id[..], &[0xAA; 16]);
    assert_eq!(
        params.values,
        Values::Positional(vec![Value::Bytes(Bytes::new())])
    );
    assert_eq!(params.page_size, None);
    // Zero-copy: the id points into the original body.
    let body_range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
    assert!(body_range.contains(&(id.as_ptr() as usize)));
}

#[test]
fn named_values() {
    let body = execute_body(0x41, &[-1, -1]);
    let Request::Execute { params, .. } = decode(4, Opcode::Execute, body).expect("valid") else {
        panic!("not execute");
    };
    let want = vec![
        ("name".to_owned(), Value::Null),
        ("name".to_owned(), Value::Null),
    ];
    assert_eq!(params.values, Values::Named(want));
}

#[test]
fn unset_is_refused_in_v3() {
    let body = execute_body(0x01, &[-2]);
    assert!(matches!(
        decode(3, Opcode::Execute, body),
        Err(FrameError::InvalidValueLength {
            length: -2,
            version: 3
        })
    ));
    let body = execute_body(0x01, &[-3]);
    assert!(decode(4, Opcode::Execute, body).is_err());
}

fn batch_body(flags: u8) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u8(1);
    put_short(&mut body, 2);
    body.put_u8(0);
    put_long_string(&mut body, "INSERT INTO t (k) VALUES (?)");
    put_short(&mut body, 1);
    put_bytes(&mut body, Some(b"k1"));
    body.put_u8(1);
    put_short_bytes(&mut body, b"id");
    put_short(&mut body, 2);
    put_bytes(&mut body, None);
    put_int(&mut body, -2);
    put_short(&mut body, Consistency::Quorum.code());
    body.put_u8(flags);
    if flags & 0x10 != 0 {
        put_short(&mut body, Consistency::Serial.code());
    }
    if flags & 0x20 != 0 {
        put_long(&mut body, 42);
    }
    body
}

#[test]
fn batch_of_query_and_prepared() {
    let Request::Batch(batch) = decode(4, Opcode::Batch, batch_body(0x30)).expect("valid") else {
        panic!("not batch");
    };
    let Batch {
        kind,
        statements,
        consistency,
        serial_consistency,
        timestamp,
    } = batch;
    assert_eq!(kind, BatchKind::Unlogged);
    assert_eq!(statements.len(), 2);
    assert_eq!(
        statements[0].query,
        BatchQuery::Query("INSERT INTO t (k) VALUES (?)".into())
    );
    assert_eq!(
        statements[0].values,
        vec![Value::Bytes(Bytes::from_static(b"k1"))]
    );
    assert_eq!(
        statements[1].query,
        BatchQuery::Prepared(Bytes::from_static(b"id"))
    );
    assert_eq!(statements[1].values, vec![Value::Null, Value::Unset]);
    assert_eq!(consistency, Consistency::Quorum);
    assert_eq!(serial_consistency, Some(Consistency::Serial));
    assert_eq!(timestamp, Some(42));
}

#[test]
fn batch_errors() {
    assert_eq!(
        decode(4, Opcode::Batch, batch_body(0x40)),
        Err(FrameError::BatchNamedValues)
    );
    let mut body = batch_body(0);
    body[0] = 3;
    assert_eq!(
        decode(4, Opcode::Batch, body),
        Err(FrameError::InvalidBatchKind { kind: 3 })
    );
    // v3 has no unset values.
    assert!(decode(3, Opcode::Batch, batch_body(0)).is_err());
}

#[test]
fn truncated_and_garbage_bodies_are_errors() {
    let full = batch_body(0x30);
    for cut in 0..full.len() {
        let body = Bytes::copy_from_slice(&full[..cut]);
        assert!(
            Request::decode(4, Opcode::Batch, body).is_err(),
            "cut at {cut}"
        );
    }
    let mut q = BytesMut::new();
    put_long_string(&mut q, "SELECT");
    put_short(&mut q, 0x0B);
    q.put_u8(0);
    assert_eq!(
        decode(4, Opcode::Query, q),
        Err(FrameError::InvalidConsistency { code: 0x0B })
    );
    let mut q = BytesMut::new();
    put_long_string(&mut q, "SELECT");
    put_short(&mut q, 1);
    q.put_u8(0x20);
    put_long(&mut q, i64::MIN);
    assert_eq!(
        decode(4, Opcode::Query, q),
        Err(FrameError::InvalidTimestamp)
    );
    let garbage = Bytes::from_static(&[0xff; 64]);
    for op in [
        Opcode::Query,
        Opcode::Execute,
        Opcode::Startup,
        Opcode::Register,
    ] {
        assert!(Request::decode(4, op, garbage.clone()).is_err(), "{op:?}");
    }
    assert!(Request::decode(4, Opcode::Result, Bytes::new()).is_err());
}
