//! Serialized values rendered as CQL literal text, for DESCRIBE output and
//! error messages. Every rendering parses back through `literal_to_value`
//! to the same value (for valid values).
//!
//! The empty value of a non-string type renders as `blobAs<type>(0x)` and a
//! malformed value as its hex bytes, so rendering never fails.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use num_bigint::BigInt;

use super::compare::{f32_of, f64_of};
use super::time::{format_civil_date, format_time, format_timestamp, Duration, DATE_EPOCH_DAYS};
use super::wire::{read_count, read_element};
use super::{maybe_quote, CqlType};

impl CqlType {
    /// Renders a serialized value as CQL literal text.
    pub fn to_cql_literal(&self, value: &[u8]) -> String {
        if value.is_empty() {
            return match self {
                CqlType::Ascii | CqlType::Text => "''".to_owned(),
                CqlType::Blob => "0x".to_owned(),
                _ => format!("blobAs{}(0x)", self.native_name().unwrap_or("blob")),
            };
        }
        if self.validate(value).is_err() {
            return hex(value);
        }
        let mut out = String::new();
        self.write_literal(value, &mut out);
        out
    }

    /// Renders a validated, non-empty value.
    fn write_literal(&self, v: &[u8], out: &mut String) {
        match self {
            CqlType::Ascii | CqlType::Text => quote(&String::from_utf8_lossy(v), out),
            CqlType::Blob => out.push_str(&hex(v)),
            CqlType::Boolean => out.push_str(if v[0] != 0 { "true" } else { "false" }),
            CqlType::Tinyint
            | CqlType::Smallint
            | CqlType::Int
            | CqlType::Bigint
            | CqlType::Counter
            | CqlType::Varint => out.push_str(&BigInt::from_signed_bytes_be(v).to_string()),
            CqlType::Float => write_float(f64::from(f32_of(v)), format!("{:?}", f32_of(v)), out),
            CqlType::Double => write_float(f64_of(v), format!("{:?}", f64_of(v)), out),
            CqlType::Decimal => write_decimal(v, out),
            CqlType::Uuid | CqlType::Timeuuid => {
                let bytes: [u8; 16] = v.try_into().expect("validated uuid");
                out.push_str(&uuid::Uuid::from_bytes(bytes).hyphenated().to_string());
            }
            CqlType::Inet => quote(&inet_text(v), out),
            CqlType::Date => {
                let days = u32::from_be_bytes(v.try_into().expect("validated date"));
                let since_epoch = i64::from(days) - i64::from(DATE_EPOCH_DAYS);
                quote(&format_civil_date(since_epoch), out);
            }
            CqlType::Time => quote(&format_time(i64_of(v)), out),
            CqlType::Timestamp => quote(&format_timestamp(i64_of(v)), out),
            CqlType::Duration => {
                let d = Duration::decode(v).unwrap_or_default();
                out.push_str(&d.to_string());
            }
            CqlType::List { elem, .. } => write_sequence(&[elem], v, ("[", "]"), out),
            CqlType::Set { elem, .. } => write_sequence(&[elem], v, ("{", "}"), out),
            CqlType::Map { key, value, .. } => write_sequence(&[key, value], v, ("{", "}"), out),
            CqlType::Tuple(types) => {
                let names = types.iter().map(|t| (None, t));
                write_fields(names, v, ("(", ")"), out);
            }
            CqlType::Udt(udt) => {
                let names = udt.fields.iter().map(|(n, t)| (Some(n.as_str()), t));
                write_fields(names, v, ("{", "}"), out);
            }
        }
    }

    fn write_element(&self, v: Option<&[u8]>, out: &mut String) {
        match v {
            None => out.push_str("null"),
            Some(v) => out.push_str(&self.to_cql_literal(v)),
        }
    }
}

fn i64_of(v: &[u8]) -> i64 {
    i64::from_be_bytes(v.try_into().expect("validated 8-byte value"))
}

fn hex(v: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * v.len());
    out.push_str("0x");
    for b in v {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn quote(s: &str, out: &mut String) {
    out.push('\'');
    out.push_str(&s.replace('\'', "''"));
    out.push('\'');
}

/// `NaN`, `Infinity`, `-Infinity`, else the shortest round-trip text.
fn write_float(value: f64, text: String, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else if text.contains(['.', 'e', 'E']) {
        out.push_str(&text);
    } else {
        out.push_str(&text);
        out.push_str(".0");
    }
}

fn write_decimal(v: &[u8], out: &mut String) {
    let scale = i32::from_be_bytes(v[..4].try_into().expect("validated decimal"));
    let unscaled = BigInt::from_signed_bytes_be(&v[4..]);
    out.push_str(&bigdecimal::BigDecimal::new(unscaled, scale.into()).to_string());
}

fn inet_text(v: &[u8]) -> String {
    match v.len() {
        4 => Ipv4Addr::from(<[u8; 4]>::try_from(v).expect("4 bytes")).to_string(),
        _ => Ipv6Addr::from(<[u8; 16]>::try_from(v).expect("validated inet")).to_string(),
    }
}

/// Lists and sets (`types` = [elem]) or maps ([key, value], as `k: v`).
fn write_sequence(types: &[&CqlType], v: &[u8], (open, close): (&str, &str), out: &mut String) {
    let mut input = v;
    let n = read_count(&mut input).unwrap_or(0);
    out.push_str(open);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, ty) in types.iter().enumerate() {
            if j > 0 {
                out.push_str(": ");
            }
            ty.write_element(read_element(&mut input).ok().flatten(), out);
        }
    }
    out.push_str(close);
}

/// Tuples `(a, b)` or UDTs `{f: a, g: b}`.
fn write_fields<'t>(
    mut fields: impl Iterator<Item = (Option<&'t str>, &'t CqlType)>,
    v: &[u8],
    (open, close): (&str, &str),
    out: &mut String,
) {
    let mut input = v;
    out.push_str(open);
    let mut first = true;
    while !input.is_empty() {
        let (Ok(value), Some((name, ty))) = (read_element(&mut input), fields.next()) else {
            break;
        };
        if !first {
            out.push_str(", ");
        }
        first = false;
        if let Some(name) = name {
            out.push_str(&maybe_quote(name));
            out.push_str(": ");
        }
        ty.write_element(value, out);
    }
    out.push_str(close);
}

#[cfg(test)]
mod tests {
    use super::super::wire::{serialize_collection, serialize_map, serialize_tuple};
    use super::*;

    #[test]
    fn natives() {
        assert_eq!(CqlType::Text.to_cql_literal(b"it's"), "'it''s'");
        assert_eq!(CqlType::Blob.to_cql_literal(&[0xca, 0xfe]), "0xcafe");
        assert_eq!(CqlType::Int.to_cql_literal(&(-5i32).to_be_bytes()), "-5");
        assert_eq!(CqlType::Int.to_cql_literal(&[]), "blobAsint(0x)");
        assert_eq!(CqlType::Double.to_cql_literal(&1.0f64.to_be_bytes()), "1.0");
        assert_eq!(
            CqlType::Float.to_cql_literal(&f32::NAN.to_be_bytes()),
            "NaN"
        );
        assert_eq!(
            CqlType::Double.to_cql_literal(&f64::NEG_INFINITY.to_be_bytes()),
            "-Infinity"
        );
        assert_eq!(CqlType::Float.to_cql_literal(&0.1f32.to_be_bytes()), "0.1");
        let ts = 1_296_705_900_000i64.to_be_bytes();
        assert_eq!(
            CqlType::Timestamp.to_cql_literal(&ts),
            "'2011-02-03 04:05:00.000000+0000'"
        );
        assert_eq!(
            CqlType::Date.to_cql_literal(&(1u32 << 31).to_be_bytes()),
            "'1970-01-01'"
        );
        assert_eq!(CqlType::Inet.to_cql_literal(&[127, 0, 0, 1]), "'127.0.0.1'");
        assert_eq!(
            CqlType::Decimal.to_cql_literal(&[0, 0, 0, 2, 0x01, 0x3a]),
            "3.14"
        );
        assert_eq!(CqlType::Boolean.to_cql_literal(&[1]), "true");
        assert_eq!(CqlType::Int.to_cql_literal(&[1]), "0x01");
    }

    #[test]
    fn composites() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let list = serialize_collection(&[Some(&one), Some(&two)]);
        assert_eq!(
            CqlType::list(CqlType::Int, false).to_cql_literal(&list),
            "[1, 2]"
        );
        assert_eq!(
            CqlType::set(CqlType::Int, false).to_cql_literal(&list),
            "{1, 2}"
        );
        let map = serialize_map(&[(b"a", &one)]);
        let ty = CqlType::map(CqlType::Text, CqlType::Int, false);
        assert_eq!(ty.to_cql_literal(&map), "{'a': 1}");
        let tuple = serialize_tuple(&[Some(&one), None]);
        let ty = CqlType::tuple(vec![CqlType::Int, CqlType::Text]);
        assert_eq!(ty.to_cql_literal(&tuple), "(1, null)");
        let udt = CqlType::udt(
            "ks",
            "a",
            vec![("f".into(), CqlType::Int), ("G".into(), CqlType::Int)],
            true,
        );
        assert_eq!(udt.to_cql_literal(&tuple), "{f: 1, \"G\": null}");
    }
}
