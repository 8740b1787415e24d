//! Literal conversion tables: each accepted form with its exact bytes, and
//! the rejected forms.

use super::*;

fn int(s: &str) -> Literal {
    Literal::Integer(s.into())
}
fn float(s: &str) -> Literal {
    Literal::Float(s.into())
}
fn string(s: &str) -> Literal {
    Literal::String(s.into())
}

fn value(ty: &CqlType, lit: &Literal) -> Vec<u8> {
    ty.literal_to_value(lit)
        .unwrap_or_else(|e| panic!("{ty} {lit:?}: {e}"))
        .expect("not null")
        .to_vec()
}

fn fails(ty: &CqlType, lit: &Literal) -> TypeError {
    match ty.literal_to_value(lit) {
        Ok(v) => panic!("{ty} {lit:?} accepted as {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn integers() {
    assert_eq!(value(&CqlType::Tinyint, &int("-128")), [0x80]);
    assert_eq!(value(&CqlType::Smallint, &int("258")), [1, 2]);
    assert_eq!(value(&CqlType::Int, &int("-1")), [0xff; 4]);
    assert_eq!(value(&CqlType::Bigint, &int("1")), [0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(value(&CqlType::Counter, &int("2")), 2i64.to_be_bytes());
    assert_eq!(value(&CqlType::Varint, &int("128")), [0x00, 0x80]);
    assert_eq!(value(&CqlType::Varint, &int("-129")), [0xff, 0x7f]);
    assert_eq!(value(&CqlType::Float, &int("1")), 1f32.to_be_bytes());
    assert_eq!(value(&CqlType::Double, &int("-2")), (-2f64).to_be_bytes());
    assert_eq!(value(&CqlType::Decimal, &int("12")), [0, 0, 0, 0, 12]);
    assert_eq!(
        value(&CqlType::Timestamp, &int("1000")),
        1000i64.to_be_bytes()
    );
    assert_eq!(value(&CqlType::Date, &int("2147483648")), [0x80, 0, 0, 0]);
    assert_eq!(value(&CqlType::Time, &int("5")), 5i64.to_be_bytes());
    assert!(matches!(
        fails(&CqlType::Tinyint, &int("128")),
        TypeError::OutOfRange { .. }
    ));
    assert!(matches!(
        fails(&CqlType::Int, &int("2147483648")),
        TypeError::OutOfRange { .. }
    ));
    assert!(matches!(
        fails(&CqlType::Bigint, &int("9223372036854775808")),
        TypeError::OutOfRange { .. }
    ));
    assert!(fails(&CqlType::Date, &int("-1"))
        .to_string()
        .contains("unsigned int"));
    assert!(fails(&CqlType::Time, &int("86400000000000"))
        .to_string()
        .contains("time out"));
    let e = fails(&CqlType::Text, &int("1"));
    assert_eq!(e.to_string(), "Invalid INTEGER constant (1) for type text");
    assert!(matches!(
        fails(&CqlType::Boolean, &int("1")),
        TypeError::IncompatibleLiteral { .. }
    ));
}

#[test]
fn floats() {
    assert_eq!(value(&CqlType::Double, &float("1.5")), 1.5f64.to_be_bytes());
    assert_eq!(value(&CqlType::Float, &float("2.5e1")), 25f32.to_be_bytes());
    let nan = value(&CqlType::Double, &float("NaN"));
    assert!(f64::from_be_bytes(nan.try_into().unwrap()).is_nan());
    assert_eq!(
        value(&CqlType::Float, &float("-Infinity")),
        f32::NEG_INFINITY.to_be_bytes()
    );
    assert_eq!(
        value(&CqlType::Decimal, &float("1.50")),
        [0, 0, 0, 2, 0, 150]
    );
    assert_eq!(value(&CqlType::Decimal, &float("-0.1")), [0, 0, 0, 1, 0xff]);
    assert_eq!(
        value(&CqlType::Decimal, &float("1e3")),
        [0xff, 0xff, 0xff, 0xfd, 1]
    );
    assert!(fails(&CqlType::Decimal, &float("NaN"))
        .to_string()
        .contains("decimal"));
    assert!(matches!(
        fails(&CqlType::Int, &float("1.5")),
        TypeError::IncompatibleLiteral { .. }
    ));
    assert!(fails(&CqlType::Double, &float("inf"))
        .to_string()
        .contains("double"));
}

#[test]
fn strings() {
    assert_eq!(value(&CqlType::Text, &string("héllo")), "héllo".as_bytes());
    assert_eq!(value(&CqlType::Ascii, &string("abc")), b"abc");
    assert!(fails(&CqlType::Ascii, &string("é"))
        .to_string()
        .contains("ASCII"));
    assert_eq!(value(&CqlType::Inet, &string("127.0.0.1")), [127, 0, 0, 1]);
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    assert_eq!(value(&CqlType::Inet, &string("::1")), v6);
    assert!(fails(&CqlType::Inet, &string("1.2.3"))
        .to_string()
        .contains("inet"));
    assert_eq!(value(&CqlType::Varint, &string("-1")), [0xff]);
    assert_eq!(
        value(&CqlType::Decimal, &string("3.14")),
        [0, 0, 0, 2, 1, 0x3a]
    );
    assert_eq!(
        value(&CqlType::Int, &Literal::Value(Bytes::new())),
        Vec::<u8>::new()
    );
    assert_eq!(value(&CqlType::Uuid, &string("")), Vec::<u8>::new());
    assert!(matches!(
        fails(&CqlType::Int, &string("1")),
        TypeError::IncompatibleLiteral { .. }
    ));
    assert!(matches!(
        fails(&CqlType::Blob, &string("00")),
        TypeError::IncompatibleLiteral { .. }
    ));
}

#[test]
fn temporal() {
    let ts = |s| value(&CqlType::Timestamp, &string(s));
    assert_eq!(
        ts("2011-02-03 04:05:00+0000"),
        1_296_705_900_000i64.to_be_bytes()
    );
    assert_eq!(
        ts("2011-02-03T04:05:00.000+0000"),
        1_296_705_900_000i64.to_be_bytes()
    );
    assert_eq!(
        ts("2011-02-03 04:05+01:00"),
        1_296_702_300_000i64.to_be_bytes()
    );
    assert_eq!(ts("1296705900000"), 1_296_705_900_000i64.to_be_bytes());
    assert!(fails(&CqlType::Timestamp, &string("2011-02-30"))
        .to_string()
        .contains("timestamp"));
    assert_eq!(
        value(&CqlType::Date, &string("1970-01-01")),
        (1u32 << 31).to_be_bytes()
    );
    assert_eq!(
        value(&CqlType::Date, &string("2011-02-03")),
        ((1u32 << 31) + 15_008).to_be_bytes()
    );
    assert_eq!(
        value(&CqlType::Time, &string("08:12:54.123456789")),
        29_574_123_456_789i64.to_be_bytes()
    );
}

#[test]
fn durations() {
    let d = |s: &str| value(&CqlType::Duration, &Literal::Duration(s.into()));
    assert_eq!(
        d("1h30m"),
        [0x00, 0x00, 0xfc, 0x09, 0xd2, 0x92, 0x29, 0xe0, 0x00]
    );
    assert_eq!(d("-2d"), [0x00, 0x03, 0x00]);
    assert_eq!(d("P1Y2M3DT4H5M6S")[..2], [28, 6]);
    assert_eq!(d("P2W"), [0, 28, 0]);
    assert_eq!(d("P0001-02-03T00:00:00"), [28, 6, 0]);
    assert_eq!(d("1mo"), [2, 0, 0]);
    assert_eq!(d("1us"), [0, 0, 0x87, 0xd0]);
    assert_eq!(value(&CqlType::Duration, &string("2d")), [0, 4, 0]);
    let e = fails(&CqlType::Duration, &Literal::Duration("1m1h".into()));
    assert!(e.to_string().contains("invalid order"), "{e}");
}

#[test]
fn uuids_booleans_blobs() {
    let v1 = "5b6962dd-3f90-11e6-8a6d-0800200c9a66";
    let v4 = "1e1f5a9c-2d46-4e4c-9d13-8f7f2e5d0f01";
    let parsed = uuid::Uuid::parse_str(v1).unwrap();
    assert_eq!(
        value(&CqlType::Timeuuid, &Literal::Uuid(v1.into())),
        parsed.as_bytes()
    );
    assert_eq!(value(&CqlType::Uuid, &string(v4)).len(), 16);
    assert_eq!(
        fails(&CqlType::Timeuuid, &Literal::Uuid(v4.into())),
        TypeError::TimeuuidVersion { version: 4 }
    );
    assert!(fails(&CqlType::Uuid, &Literal::Uuid("1234".into()))
        .to_string()
        .contains("uuid"));
    assert_eq!(value(&CqlType::Boolean, &Literal::Boolean(true)), [1]);
    assert_eq!(
        value(&CqlType::Blob, &Literal::Hex("0xCAFE".into())),
        [0xca, 0xfe]
    );
    assert_eq!(
        value(&CqlType::Blob, &Literal::Hex("0x".into())),
        Vec::<u8>::new()
    );
    assert!(fails(&CqlType::Blob, &Literal::Hex("0xabc".into()))
        .to_string()
        .contains("even"));
    assert!(fails(&CqlType::Blob, &Literal::Hex("0xzz".into()))
        .to_string()
        .contains("hex"));
    assert_eq!(CqlType::Int.literal_to_value(&Literal::Null), Ok(None));
    assert!(CqlType::Int
        .literal_to_value(&Literal::Value(Bytes::from_static(&[1])))
        .is_err());
}

fn ints(xs: &[i32]) -> Vec<Literal> {
    xs.iter().map(|x| int(&x.to_string())).collect()
}

#[test]
fn collections() {
    let enc = |xs: &[i32]| {
        let v: Vec<[u8; 4]> = xs.iter().map(|x| x.to_be_bytes()).collect();
        let refs: Vec<Option<&[u8]>> = v.iter().map(|b| Some(&b[..])).collect();
        serialize_collection(&refs)
    };
    let list = CqlType::list(CqlType::Int, false);
    assert_eq!(
        value(&list, &Literal::List(ints(&[3, 1, 3]))),
        enc(&[3, 1, 3])
    );
    let set = CqlType::set(CqlType::Int, true);
    assert_eq!(
        value(&set, &Literal::Set(ints(&[3, -1, 3, 2]))),
        enc(&[-1, 2, 3])
    );
    assert_eq!(value(&set, &Literal::Map(vec![])), enc(&[]));
    assert_eq!(
        fails(&list, &Literal::List(vec![Literal::Null])),
        TypeError::NullInCollection
    );
    assert!(matches!(
        fails(&list, &Literal::Set(ints(&[1]))),
        TypeError::IncompatibleLiteral { .. }
    ));
    let map = CqlType::map(CqlType::Text, CqlType::Int, false);
    let lit = Literal::Map(vec![
        (string("b"), int("1")),
        (string("a"), int("2")),
        (string("b"), int("3")),
    ]);
    let three = 3i32.to_be_bytes();
    let two = 2i32.to_be_bytes();
    assert_eq!(
        value(&map, &lit),
        serialize_map(&[(b"a", &two), (b"b", &three)])
    );
    let nested = CqlType::list(CqlType::set(CqlType::Int, false), false);
    let lit = Literal::List(vec![Literal::Set(ints(&[2, 1]))]);
    assert_eq!(
        value(&nested, &lit),
        serialize_collection(&[Some(&enc(&[1, 2]))])
    );
}

#[test]
fn tuples_and_udts() {
    let t = CqlType::tuple(vec![CqlType::Int, CqlType::Text]);
    let one = 1i32.to_be_bytes();
    assert_eq!(
        value(&t, &Literal::Tuple(vec![int("1"), Literal::Null])),
        serialize_tuple(&[Some(&one), None])
    );
    assert_eq!(
        value(&t, &Literal::Tuple(ints(&[1]))),
        serialize_tuple(&[Some(&one)])
    );
    assert!(matches!(
        fails(&t, &Literal::Tuple(ints(&[1, 2, 3]))),
        TypeError::TupleLiteralTooLong {
            expected: 2,
            actual: 3,
            ..
        }
    ));
    let udt = CqlType::udt(
        "ks",
        "address",
        vec![
            ("street".into(), CqlType::Text),
            ("zip".into(), CqlType::Int),
        ],
        true,
    );
    let lit = Literal::Udt(vec![("zip".into(), int("1"))]);
    assert_eq!(value(&udt, &lit), serialize_tuple(&[None, Some(&one)]));
    let bad = Literal::Udt(vec![("city".into(), string("x"))]);
    assert_eq!(
        fails(&udt, &bad).to_string(),
        "Unknown field 'city' in value of user defined type address"
    );
    let dup = Literal::Udt(vec![("zip".into(), int("1")), ("zip".into(), int("2"))]);
    assert!(matches!(
        fails(&udt, &dup),
        TypeError::DuplicateField { .. }
    ));
}

#[test]
fn display_round_trips_through_literals() {
    let cases: Vec<(CqlType, Literal)> = vec![
        (CqlType::Text, string("it's")),
        (CqlType::Timestamp, string("2011-02-03 04:05:06.789+0000")),
        (CqlType::Date, string("-0044-03-15")),
        (CqlType::Time, string("23:59:59.999999999")),
        (CqlType::Inet, string("2001:db8::1")),
        (
            CqlType::Duration,
            Literal::Duration("-1y2mo3d4h5m6s7ms8us9ns".into()),
        ),
    ];
    for (ty, lit) in cases {
        let v = value(&ty, &lit);
        let text = ty.to_cql_literal(&v);
        let reparsed = match &ty {
            CqlType::Duration => Literal::Duration(text.clone()),
            _ => string(text.trim_matches('\'').replace("''", "'").as_str()),
        };
        assert_eq!(value(&ty, &reparsed), v, "{ty}: {text}");
    }
}
