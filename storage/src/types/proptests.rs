//! Property tests over generated (type, value) pairs for every native type and
//! nested frozen collections, tuples and UDTs: the key encoding invariants
//! listed in `key`, and agreement of `compare`, `validate` and display.

use std::cmp::Ordering;

use proptest::collection::vec;
use proptest::prelude::*;

use super::time::{Duration, NANOS_PER_DAY};
use super::wire::{serialize_collection, serialize_map, serialize_tuple};
use super::{decode_clustering, encode_clustering, CqlType};

const NATIVES: [CqlType; 20] = [
    CqlType::Ascii,
    CqlType::Bigint,
    CqlType::Blob,
    CqlType::Boolean,
    CqlType::Counter,
    CqlType::Date,
    CqlType::Decimal,
    CqlType::Double,
    CqlType::Duration,
    CqlType::Float,
    CqlType::Inet,
    CqlType::Int,
    CqlType::Smallint,
    CqlType::Text,
    CqlType::Time,
    CqlType::Timestamp,
    CqlType::Timeuuid,
    CqlType::Tinyint,
    CqlType::Uuid,
    CqlType::Varint,
];

fn arb_type() -> impl Strategy<Value = CqlType> {
    let leaf = proptest::sample::select(NATIVES.to_vec());
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| CqlType::list(t, true)),
            inner.clone().prop_map(|t| CqlType::set(t, true)),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| CqlType::map(k, v, true)),
            vec(inner.clone(), 1..4).prop_map(CqlType::tuple),
            vec(inner, 1..3).prop_map(|ts| {
                let fields = ts
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (format!("f{i}"), t))
                    .collect();
                CqlType::udt("ks", "u", fields, true)
            }),
        ]
    })
}

/// Small-domain bytes so that equal and near-equal values are common.
fn fixed(size: usize) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), size),
        vec(
            prop_oneof![Just(0u8), Just(0x7f), Just(0x80), Just(0xff)],
            size
        ),
    ]
    .boxed()
}

fn float_bits(size: usize) -> BoxedStrategy<Vec<u8>> {
    let specials: Vec<f64> = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
    ];
    let special = proptest::sample::select(specials).prop_map(move |f| match size {
        4 => (f as f32).to_be_bytes().to_vec(),
        _ => f.to_be_bytes().to_vec(),
    });
    prop_oneof![fixed(size), special].boxed()
}

fn duration_value() -> BoxedStrategy<Vec<u8>> {
    (0i32..100, 0i32..100, 0i64..1_000_000_000_000, any::<bool>())
        .prop_map(|(m, d, n, neg)| {
            let s = if neg { -1 } else { 1 };
            Duration::checked(i64::from(m * s), i64::from(d * s), n * i64::from(s))
                .expect("same sign")
                .encode()
        })
        .boxed()
}

fn native_value(ty: &CqlType) -> BoxedStrategy<Vec<u8>> {
    match ty {
        CqlType::Float => float_bits(4),
        CqlType::Double => float_bits(8),
        CqlType::Time => (0..NANOS_PER_DAY)
            .prop_map(|n| n.to_be_bytes().to_vec())
            .boxed(),
        CqlType::Timeuuid => fixed(16)
            .prop_map(|mut v| {
                v[6] = (v[6] & 0x0f) | 0x10;
                v
            })
            .boxed(),
        CqlType::Text => ".{0,6}".prop_map(String::into_bytes).boxed(),
        CqlType::Ascii => "[\\x00-\\x7f]{0,6}".prop_map(String::into_bytes).boxed(),
        CqlType::Blob => vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 0..6).boxed(),
        CqlType::Inet => prop_oneof![fixed(4), fixed(16)].boxed(),
        CqlType::Duration => duration_value(),
        CqlType::Varint => vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 1..5).boxed(),
        CqlType::Decimal => (prop_oneof![-3i32..3, any::<i32>()], vec(any::<u8>(), 1..4))
            .prop_map(|(scale, unscaled)| {
                let mut v = scale.to_be_bytes().to_vec();
                v.extend(unscaled);
                v
            })
            .boxed(),
        other => fixed(
            other
                .is_fixed_size()
                .expect("remaining natives are fixed-size"),
        ),
    }
}

fn arb_value(ty: &CqlType) -> BoxedStrategy<Vec<u8>> {
    let value = match ty {
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
            return vec(arb_value(elem), 0..3)
                .prop_map(|items| {
                    let refs: Vec<Option<&[u8]>> = items.iter().map(|v| Some(&v[..])).collect();
                    serialize_collection(&refs)
                })
                .boxed();
        }
        CqlType::Map { key, value, .. } => {
            return vec((arb_value(key), arb_value(value)), 0..3)
                .prop_map(|pairs| {
                    let refs: Vec<(&[u8], &[u8])> =
                        pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
                    serialize_map(&refs)
                })
                .boxed();
        }
        CqlType::Tuple(types) => fields_value(types),
        CqlType::Udt(udt) => {
            let types: Vec<CqlType> = udt.fields.iter().map(|(_, t)| t.clone()).collect();
            fields_value(&types)
        }
        native => native_value(native),
    };
    prop_oneof![1 => Just(Vec::new()), 8 => value].boxed()
}

fn fields_value(types: &[CqlType]) -> BoxedStrategy<Vec<u8>> {
    let fields: Vec<BoxedStrategy<Option<Vec<u8>>>> = types
        .iter()
        .map(|t| proptest::option::weighted(0.8, arb_value(t)).boxed())
        .collect();
    (fields, 0..=types.len())
        .prop_map(|(fields, n)| {
            let refs: Vec<Option<&[u8]>> = fields[..n].iter().map(Option::as_deref).collect();
            serialize_tuple(&refs)
        })
        .boxed()
}

fn typed_pair() -> impl Strategy<Value = (CqlType, Vec<u8>, Vec<u8>)> {
    arb_type().prop_flat_map(|ty| {
        let a = arb_value(&ty);
        let b = arb_value(&ty);
        (Just(ty), a, b)
    })
}

fn enc(ty: &CqlType, v: &[u8], desc: bool) -> Vec<u8> {
    let mut out = Vec::new();
    ty.encode_key(v, desc, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_values_validate((ty, a, _b) in typed_pair()) {
        prop_assert!(ty.validate(&a).is_ok(), "{} {:?}: {:?}", ty, a, ty.validate(&a));
        let _ = ty.to_cql_literal(&a);
    }

    #[test]
    fn encoding_order_matches_compare((ty, a, b) in typed_pair()) {
        let ord = ty.compare(&a, &b);
        prop_assert_eq!(ord, ty.compare(&b, &a).reverse());
        let (ea, eb) = (enc(&ty, &a, false), enc(&ty, &b, false));
        let enc_ord = ea.cmp(&eb);
        if ord != Ordering::Equal {
            prop_assert_eq!(enc_ord, ord, "{} {:?} {:?}", ty, a, b);
        }
        prop_assert_eq!(enc_ord == Ordering::Equal, a == b);
        let (da, db) = (enc(&ty, &a, true), enc(&ty, &b, true));
        prop_assert_eq!(da.cmp(&db), enc_ord.reverse());
    }

    #[test]
    fn encoding_round_trips((ty, a, _b) in typed_pair(), desc in any::<bool>()) {
        let e = enc(&ty, &a, desc);
        let mut input = &e[..];
        prop_assert_eq!(ty.decode_key(&mut input, desc), Ok(a.clone()));
        prop_assert!(input.is_empty());
        let complement: Vec<u8> = enc(&ty, &a, !desc).iter().map(|b| !b).collect();
        prop_assert_eq!(e, complement);
    }

    #[test]
    fn encoding_is_prefix_free((ty, a, b) in typed_pair(), desc in any::<bool>()) {
        let (ea, eb) = (enc(&ty, &a, desc), enc(&ty, &b, desc));
        if ea != eb {
            prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
        }
    }

    #[test]
    fn clustering_keys_compare_component_wise(
        (t1, a1, b1) in typed_pair(),
        (t2, a2, b2) in typed_pair(),
        d1 in any::<bool>(),
        d2 in any::<bool>(),
    ) {
        let types = vec![(t1.clone(), d1), (t2.clone(), d2)];
        let ka = encode_clustering(&types, &[&a1, &a2]);
        let kb = encode_clustering(&types, &[&b1, &b2]);
        let dir = |o: Ordering, d: bool| if d { o.reverse() } else { o };
        let first = dir(enc(&t1, &a1, false).cmp(&enc(&t1, &b1, false)), d1);
        let second = dir(enc(&t2, &a2, false).cmp(&enc(&t2, &b2, false)), d2);
        prop_assert_eq!(ka.cmp(&kb), first.then(second));
        let prefix = encode_clustering(&types, &[&a1]);
        prop_assert!(ka.starts_with(&prefix));
        prop_assert_eq!(decode_clustering(&types, &ka), Ok(vec![a1.clone(), a2]));
        prop_assert_eq!(decode_clustering(&types, &prefix), Ok(vec![a1]));
    }

    #[test]
    fn decoding_garbage_never_panics(ty in arb_type(), bytes in vec(any::<u8>(), 0..40)) {
        let mut input = &bytes[..];
        let _ = ty.decode_key(&mut input, false);
        let _ = ty.validate(&bytes);
        let _ = ty.compare(&bytes, &bytes[..bytes.len() / 2]);
        let _ = ty.to_cql_literal(&bytes);
        let mut out = Vec::new();
        ty.encode_key(&bytes, false, &mut out);
        prop_assert_eq!(ty.decode_key(&mut &out[..], false), Ok(bytes.clone()));
    }
}
