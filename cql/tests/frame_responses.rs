//! Response encoding, checked by the `scylla` driver's own frame parser (v4)
//! and by hand for the v3 forms the driver does not speak.

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use cql::frame::{
    encode_response, encode_response_frame, primitives::Reader, ColumnSpec, ColumnType,
    Compression, Consistency, ErrorCode, ErrorDetail, ErrorResponse, Event, Prepared,
    PreparedMetadata, Response, ResponseFrame, ResultMetadata, ResultResponse, RowsWriter,
    SchemaChange, SchemaChangeTarget, SchemaChangeType, StatusChangeType, TopologyChangeType,
};
use scylla_cql::frame::protocol_features::ProtocolFeatures;
use scylla_cql::frame::response::{self as driver, ResponseOpcode};
use scylla_cql::frame::{parse_response_body_extensions, Compression as DriverCompression};

/// What the driver made of one of our frames.
struct Parsed {
    stream: i16,
    warnings: Vec<String>,
    response: driver::Response,
}

fn driver_parse(mut wire: Bytes, compressed: bool) -> Parsed {
    assert_eq!(wire[0], 0x84, "v4 response direction");
    let frame_flags = wire[1];
    let stream = i16::from_be_bytes([wire[2], wire[3]]);
    let opcode = ResponseOpcode::try_from(wire[4]).expect("response opcode");
    wire.advance(5);
    let len = wire.get_u32() as usize;
    assert_eq!(len, wire.len(), "length field matches the body");
    let compression = compressed.then_some(DriverCompression::Lz4);
    let ext = parse_response_body_extensions(frame_flags, compression, wire).expect("extensions");
    let response =
        driver::Response::deserialize(&ProtocolFeatures::default(), opcode, ext.body, None)
            .expect("driver parses our body");
    Parsed {
        stream,
        warnings: ext.warnings,
        response,
    }
}

fn encode(version: u8, response: &Response) -> Bytes {
    let mut out = BytesMut::new();
    encode_response(&mut out, version, 17, response, &[], None);
    out.freeze()
}

fn col(table: &str, name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "ks".into(),
        table: table.into(),
        name: name.into(),
        ty,
    }
}

#[test]
fn ready_supported_authenticate_auth() {
    let p = driver_parse(encode(4, &Response::Ready), false);
    assert!(matches!(p.response, driver::Response::Ready));
    assert_eq!(p.stream, 17);
    let supported = Response::Supported(vec![
        ("CQL_VERSION".into(), vec!["3.4.5".into()]),
        ("COMPRESSION".into(), vec!["lz4".into()]),
    ]);
    let driver::Response::Supported(s) = driver_parse(encode(4, &supported), false).response else {
        panic!("not supported");
    };
    assert_eq!(s.options.get("COMPRESSION"), Some(&vec!["lz4".to_owned()]));
    let auth = Response::Authenticate("org.apache.cassandra.auth.PasswordAuthenticator".into());
    let driver::Response::Authenticate(a) = driver_parse(encode(4, &auth), false).response else {
        panic!("not authenticate");
    };
    assert_eq!(
        a.authenticator_name,
        "org.apache.cassandra.auth.PasswordAuthenticator"
    );
    let ok = driver_parse(encode(4, &Response::AuthSuccess(None)), false).response;
    assert!(matches!(ok, driver::Response::AuthSuccess(_)));
    let challenge = Response::AuthChallenge(Some(Bytes::from_static(b"nonce")));
    let c = driver_parse(encode(4, &challenge), false).response;
    assert!(matches!(c, driver::Response::AuthChallenge(_)));
}

fn driver_error(error: ErrorResponse) -> (String, String) {
    let driver::Response::Error(e) =
        driver_parse(encode(4, &Response::Error(error)), false).response
    else {
        panic!("not an error");
    };
    (format!("{:?}", e.error), e.reason)
}

#[test]
fn every_error_code_parses_in_the_driver() {
    let details = [
        ErrorDetail::Unavailable {
            consistency: Consistency::Quorum,
            required: 2,
            alive: 1,
        },
        ErrorDetail::WriteTimeout {
            consistency: Consistency::One,
            received: 0,
            block_for: 1,
            write_type: "SIMPLE".into(),
        },
        ErrorDetail::ReadTimeout {
            consistency: Consistency::All,
            received: 1,
            block_for: 3,
            data_present: true,
        },
        ErrorDetail::ReadFailure {
            consistency: Consistency::LocalOne,
            received: 0,
            block_for: 1,
            num_failures: 1,
            data_present: false,
        },
        ErrorDetail::WriteFailure {
            consistency: Consistency::EachQuorum,
            received: 1,
            block_for: 2,
            num_failures: 1,
            write_type: "BATCH".into(),
        },
        ErrorDetail::FunctionFailure {
            keyspace: "ks".into(),
            function: "f".into(),
            arg_types: vec!["int".into()],
        },
        ErrorDetail::AlreadyExists {
            keyspace: "ks".into(),
            table: "t".into(),
        },
        ErrorDetail::Unprepared {
            id: Bytes::from_static(&[1, 2, 3]),
        },
    ];
    for detail in details {
        let code = detail.code().expect("has a code");
        let (error, reason) = driver_error(ErrorResponse::with_detail("boom", detail));
        assert_eq!(reason, "boom");
        let name = format!("{code:?}");
        assert!(error.starts_with(&name), "{error} is not {name}");
    }
    for code in ErrorCode::ALL {
        if matches!(
            code,
            ErrorCode::ServerError
                | ErrorCode::ProtocolError
                | ErrorCode::BadCredentials
                | ErrorCode::Overloaded
                | ErrorCode::IsBootstrapping
                | ErrorCode::TruncateError
                | ErrorCode::SyntaxError
                | ErrorCode::Unauthorized
                | ErrorCode::Invalid
                | ErrorCode::ConfigError
        ) {
            let (error, _) = driver_error(ErrorResponse::new(code, "plain"));
            assert!(!error.contains("Other"), "{code:?} parsed as {error}");
        }
    }
}

#[test]
fn rows_with_global_spec_paging_and_warnings_in_lz4() {
    let columns = vec![
        col("t", "k", ColumnType::Int),
        col("t", "v", ColumnType::Varchar),
    ];
    let mut rows = RowsWriter::new(2);
    rows.push_value(Some(&7i32.to_be_bytes()));
    rows.push_value(Some(b"seven"));
    rows.end_row();
    rows.push_with(|b| b.extend_from_slice(&8i32.to_be_bytes()));
    rows.push_value(None);
    rows.end_row();
    let metadata = ResultMetadata {
        columns: columns.into(),
        paging_state: Some(Bytes::from_static(b"next")),
        no_metadata: false,
    };
    let rows = rows.finish(metadata).expect("well-formed rows");
    assert_eq!(rows.rows_count, 2);
    let response = Response::Result(ResultResponse::Rows(rows));
    let warnings = vec!["Aggregation query used without partition key".to_owned()];
    let mut out = BytesMut::new();
    encode_response(&mut out, 4, 3, &response, &warnings, Some(Compression::Lz4));
    assert_eq!(out[1] & 0x09, 0x09, "compression and warning flags");
    let p = driver_parse(out.freeze(), true);
    assert_eq!(p.warnings, warnings);
    let driver::Response::Result(driver::result::Result::Rows((raw, paging))) = p.response else {
        panic!("not rows");
    };
    assert!(format!("{paging:?}").contains("HasMorePages"));
    let rows = raw.deserialize_metadata().expect("metadata");
    assert_eq!(rows.rows_count(), 2);
    let specs = rows.metadata().col_specs();
    assert_eq!(specs[1].name(), "v");
    assert_eq!(specs[1].table_spec().ks_name(), "ks");
    let got: Vec<(i32, Option<String>)> = rows
        .rows_iter::<(i32, Option<String>)>()
        .expect("types match")
        .collect::<Result<_, _>>()
        .expect("rows decode");
    assert_eq!(got, vec![(7, Some("seven".into())), (8, None)]);
}

#[test]
fn rows_with_mixed_tables_and_no_metadata() {
    let columns = vec![
        col("a", "x", ColumnType::Blob),
        col("b", "y", ColumnType::Bigint),
    ];
    let mut w = RowsWriter::new(2);
    w.push_value(Some(b""));
    w.push_value(Some(&1i64.to_be_bytes()));
    w.end_row();
    let meta = ResultMetadata {
        columns: columns.clone().into(),
        paging_state: None,
        no_metadata: false,
    };
    let rows = w.finish(meta).expect("ok");
    let p = driver_parse(
        encode(4, &Response::Result(ResultResponse::Rows(rows))),
        false,
    );
    let driver::Response::Result(driver::result::Result::Rows((raw, _))) = p.response else {
        panic!("not rows");
    };
    let rows = raw.deserialize_metadata().expect("metadata");
    assert_eq!(
        rows.metadata().col_specs()[1].table_spec().table_name(),
        "b"
    );
    // No metadata: flags, count, nothing else, then rows.
    let meta = ResultMetadata {
        columns: columns.into(),
        paging_state: None,
        no_metadata: true,
    };
    let rows = RowsWriter::new(2).finish(meta).expect("ok");
    let wire = encode(4, &Response::Result(ResultResponse::Rows(rows)));
    assert_eq!(
        &wire[9..],
        &[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 0]
    );
}

#[test]
fn rows_writer_catches_wrong_widths() {
    let mut w = RowsWriter::new(2);
    w.push_value(None);
    w.end_row();
    assert!(w.finish(ResultMetadata::default()).is_err());
    let mut w = RowsWriter::new(0);
    w.push_value(None);
    assert!(w.finish(ResultMetadata::default()).is_err());
}

fn prepared() -> Prepared {
    Prepared {
        id: Bytes::from_static(&[9; 16]),
        metadata: PreparedMetadata {
            columns: vec![
                col("t", "k", ColumnType::Uuid),
                col(
                    "t",
                    "m",
                    ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::Int)),
                ),
            ],
            pk_indexes: vec![0],
        },
        result_metadata: ResultMetadata::empty(),
    }
}

#[test]
fn prepared_in_v4_has_pk_indexes() {
    let response = Response::Result(ResultResponse::Prepared(prepared()));
    let driver::Response::Result(driver::result::Result::Prepared(p)) =
        driver_parse(encode(4, &response), false).response
    else {
        panic!("not prepared");
    };
    assert_eq!(&p.id[..], &[9; 16]);
    assert_eq!(p.prepared_metadata.col_count, 2);
    assert_eq!(p.prepared_metadata.pk_indexes.len(), 1);
    assert_eq!(p.prepared_metadata.col_specs[1].name(), "m");
    // v3: no pk count, so the column specs follow the count directly.
    let wire = encode(3, &response);
    assert_eq!(wire[0], 0x83);
    let mut r = Reader::new(wire.slice(9..));
    assert_eq!(r.read_int("kind").ok(), Some(4));
    assert_eq!(r.read_short_bytes("id").ok().map(|b| b.len()), Some(16));
    assert_eq!(r.read_int("flags").ok(), Some(1));
    assert_eq!(r.read_int("count").ok(), Some(2));
    assert_eq!(r.read_string("ks").ok().as_deref(), Some("ks"));
}

#[test]
fn set_keyspace_void_and_schema_changes() {
    let r = driver_parse(
        encode(
            4,
            &Response::Result(ResultResponse::SetKeyspace("ks".into())),
        ),
        false,
    );
    assert!(format!("{:?}", r.response).contains("SetKeyspace"));
    let r = driver_parse(encode(4, &Response::Result(ResultResponse::Void)), false);
    assert!(matches!(
        r.response,
        driver::Response::Result(driver::result::Result::Void)
    ));
    let targets = [
        SchemaChangeTarget::Keyspace("ks".into()),
        SchemaChangeTarget::Table("ks".into(), "t".into()),
        SchemaChangeTarget::Type("ks".into(), "ty".into()),
        SchemaChangeTarget::Function("ks".into(), "f".into(), vec!["int".into()]),
        SchemaChangeTarget::Aggregate("ks".into(), "a".into(), vec![]),
    ];
    let expected = [
        "KeyspaceChange",
        "TableChange",
        "TypeChange",
        "FunctionChange",
        "AggregateChange",
    ];
    for (target, want) in targets.into_iter().zip(expected) {
        let change = SchemaChange {
            change: SchemaChangeType::Dropped,
            target,
        };
        let result = Response::Result(ResultResponse::SchemaChange(change.clone()));
        let got = format!("{:?}", driver_parse(encode(4, &result), false).response);
        assert!(got.contains(want) && got.contains("Dropped"), "{got}");
        let event = Response::Event(Event::SchemaChange(change));
        let got = format!("{:?}", driver_parse(encode(4, &event), false).response);
        assert!(got.contains(want), "{got}");
    }
}

#[test]
fn v3_downgrades_function_changes_and_failures() {
    let change = SchemaChange {
        change: SchemaChangeType::Created,
        target: SchemaChangeTarget::Function("ks".into(), "f".into(), vec![]),
    };
    let wire = encode(3, &Response::Event(Event::SchemaChange(change)));
    let mut r = Reader::new(wire.slice(9..));
    let strings: Vec<String> = (0..4).filter_map(|_| r.read_string("s").ok()).collect();
    assert_eq!(strings, ["SCHEMA_CHANGE", "UPDATED", "KEYSPACE", "ks"]);
    assert_eq!(r.remaining(), 0);
    let failure = ErrorResponse::with_detail(
        "failed",
        ErrorDetail::ReadFailure {
            consistency: Consistency::One,
            received: 0,
            block_for: 1,
            num_failures: 1,
            data_present: false,
        },
    );
    let wire = encode(3, &Response::Error(failure));
    let mut r = Reader::new(wire.slice(9..));
    assert_eq!(r.read_int("code").ok(), Some(ErrorCode::ReadTimeout.code()));
    assert_eq!(r.read_string("msg").ok().as_deref(), Some("failed"));
    assert_eq!(r.remaining(), 2 + 4 + 4 + 1);
    // Warnings are a v4 feature: never flagged in v3.
    let mut out = BytesMut::new();
    encode_response(&mut out, 3, 1, &Response::Ready, &["w".into()], None);
    assert_eq!(&out[..], &[0x83, 0, 0, 1, 2, 0, 0, 0, 0]);
}

#[test]
fn topology_and_status_events() {
    let addr: SocketAddr = "127.0.0.2:9042".parse().expect("literal");
    for event in [
        Event::TopologyChange {
            change: TopologyChangeType::NewNode,
            addr,
        },
        Event::StatusChange {
            change: StatusChangeType::Down,
            addr,
        },
    ] {
        let mut out = BytesMut::new();
        encode_response(&mut out, 4, -1, &Response::Event(event), &[], None);
        let p = driver_parse(out.freeze(), false);
        assert_eq!(p.stream, -1);
        let got = format!("{:?}", p.response);
        assert!(got.contains("127.0.0.2:9042"), "{got}");
    }
}

#[test]
fn tracing_id_precedes_warnings() {
    let frame = ResponseFrame {
        version: 4,
        stream: 2,
        tracing_id: Some([7; 16]),
        warnings: &["careful".to_owned()],
        compression: None,
    };
    let mut out = BytesMut::new();
    encode_response_frame(&mut out, &frame, &Response::Result(ResultResponse::Void));
    assert_eq!(out[1], 0x02 | 0x08);
    assert_eq!(&out[9..25], &[7; 16]);
    let p = driver_parse(out.freeze(), false);
    assert_eq!(p.warnings, ["careful"]);
}

#[test]
fn unsupported_version_answer_for_legacy_clients_uses_their_header() {
    let mut out = BytesMut::new();
    let error = ErrorResponse::new(
        ErrorCode::ProtocolError,
        "Invalid or unsupported protocol version (2)",
    );
    encode_response(&mut out, 2, 5, &Response::Error(error), &[], None);
    assert_eq!(&out[..4], &[0x82, 0, 5, 0]);
    assert_eq!(
        u32::from_be_bytes([out[4], out[5], out[6], out[7]]) as usize,
        out.len() - 8
    );
}
