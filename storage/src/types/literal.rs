//! CQL literals to serialized values, for the statement executor.
//!
//! The parser hands over a `Literal` (text kept as written) and the column's
//! type decides what it means. Accepted forms:
//! - integers: every integer type (range-checked), float, double, decimal,
//!   varint, counter, timestamp (ms), date (raw day number), time (ns);
//! - floats (incl. NaN, Infinity): float, double, decimal;
//! - strings: ascii, text, inet, timestamp, date, time, and also uuid,
//!   timeuuid, decimal, varint, duration;
//! - booleans, uuids (timeuuid must be version 1), hex blobs, durations;
//! - collections: sets are sorted and deduplicated, maps sorted by key (the
//!   last duplicate wins), UDTs by field name with missing fields null;
//! - `Value`: bytes already serialized for the type, validated here.
//!
//! An empty collection literal yields the serialized empty collection; for a
//! non-frozen column the executor treats that as a deletion.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::BigInt;

use super::parse::{parse_date, parse_duration, parse_time, parse_timestamp};
use super::wire::{serialize_collection, serialize_map, serialize_tuple};
use super::{CqlType, TypeError, UdtType};

/// A CQL literal as written in a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Integer(String),
    Float(String),
    Boolean(bool),
    Uuid(String),
    Hex(String),
    Duration(String),
    Null,
    /// Already serialized for the receiving type (e.g. a bound marker).
    Value(Bytes),
    List(Vec<Literal>),
    Set(Vec<Literal>),
    Map(Vec<(Literal, Literal)>),
    Tuple(Vec<Literal>),
    Udt(Vec<(String, Literal)>),
}

impl Literal {
    fn kind(&self) -> &'static str {
        match self {
            Literal::String(_) => "STRING",
            Literal::Integer(_) => "INTEGER",
            Literal::Float(_) => "FLOAT",
            Literal::Boolean(_) => "BOOLEAN",
            Literal::Uuid(_) => "UUID",
            Literal::Hex(_) => "HEX",
            Literal::Duration(_) => "DURATION",
            Literal::Null => "NULL",
            Literal::Value(_) => "bound value",
            Literal::List(_) => "list literal",
            Literal::Set(_) => "set literal",
            Literal::Map(_) => "map literal",
            Literal::Tuple(_) => "tuple literal",
            Literal::Udt(_) => "user type literal",
        }
    }

    fn text(&self) -> String {
        match self {
            Literal::String(s)
            | Literal::Integer(s)
            | Literal::Float(s)
            | Literal::Uuid(s)
            | Literal::Hex(s)
            | Literal::Duration(s) => s.clone(),
            Literal::Boolean(b) => b.to_string(),
            other => other.kind().to_owned(),
        }
    }
}

impl CqlType {
    /// Converts a literal to this type's serialized value; `None` for `Null`.
    pub fn literal_to_value(&self, lit: &Literal) -> Result<Option<Bytes>, TypeError> {
        match lit {
            Literal::Null => Ok(None),
            Literal::Value(bytes) => {
                self.validate(bytes)?;
                Ok(Some(bytes.clone()))
            }
            _ => self.literal_bytes(lit).map(|v| Some(Bytes::from(v))),
        }
    }

    fn incompatible(&self, lit: &Literal) -> TypeError {
        TypeError::IncompatibleLiteral {
            kind: lit.kind(),
            literal: lit.text(),
            cql_type: self.to_string(),
        }
    }

    fn unparsable(&self, text: &str, reason: impl Into<String>) -> TypeError {
        TypeError::UnparsableLiteral {
            cql_type: self.to_string(),
            literal: text.to_owned(),
            reason: reason.into(),
        }
    }

    fn out_of_range(&self, text: &str) -> TypeError {
        TypeError::OutOfRange {
            cql_type: self.to_string(),
            literal: text.to_owned(),
        }
    }

    /// A non-null literal's bytes.
    fn literal_bytes(&self, lit: &Literal) -> Result<Vec<u8>, TypeError> {
        match (self, lit) {
            (CqlType::List { elem, .. }, Literal::List(items)) => {
                let items = elements(elem, items)?;
                Ok(serialize_collection(&as_slices(&items)))
            }
            (CqlType::Set { elem, .. }, Literal::Set(items)) => set_literal(elem, items),
            (CqlType::Set { elem, .. }, Literal::Map(pairs)) if pairs.is_empty() => {
                set_literal(elem, &[])
            }
            (CqlType::Map { key, value, .. }, Literal::Map(pairs)) => {
                map_literal(key, value, pairs)
            }
            (CqlType::Map { key, value, .. }, Literal::Set(items)) if items.is_empty() => {
                map_literal(key, value, &[])
            }
            (CqlType::Tuple(types), Literal::Tuple(items)) => self.tuple_literal(types, items),
            (CqlType::Udt(udt), Literal::Udt(fields)) => udt_literal(udt, fields),
            (_, Literal::Integer(s)) => self
                .integer_literal(s)
                .ok_or_else(|| self.incompatible(lit))?,
            (_, Literal::Float(s)) => self
                .float_literal(s)
                .ok_or_else(|| self.incompatible(lit))?,
            (_, Literal::String(s)) => self
                .string_literal(s)
                .ok_or_else(|| self.incompatible(lit))?,
            (CqlType::Boolean, Literal::Boolean(b)) => Ok(vec![u8::from(*b)]),
            (CqlType::Uuid | CqlType::Timeuuid, Literal::Uuid(s)) => self.parse_uuid(s),
            (CqlType::Blob, Literal::Hex(s)) => self.parse_hex(s),
            (CqlType::Duration, Literal::Duration(s)) => self.parse_duration_text(s),
            _ => Err(self.incompatible(lit)),
        }
    }

    /// `None` when integers are not accepted by this type.
    fn integer_literal(&self, s: &str) -> Option<Result<Vec<u8>, TypeError>> {
        let int = || BigInt::from_str(s).map_err(|e| self.unparsable(s, e.to_string()));
        let fit = |v: Result<BigInt, TypeError>| -> Result<i64, TypeError> {
            i64::try_from(&v?).map_err(|_| self.out_of_range(s))
        };
        let narrow = |bits: u32| -> Result<i64, TypeError> {
            let v = fit(int())?;
            let limit = 1i64 << (bits - 1);
            if (-limit..limit).contains(&v) {
                Ok(v)
            } else {
                Err(self.out_of_range(s))
            }
        };
        let bytes = match self {
            CqlType::Tinyint => narrow(8).map(|v| (v as i8).to_be_bytes().to_vec()),
            CqlType::Smallint => narrow(16).map(|v| (v as i16).to_be_bytes().to_vec()),
            CqlType::Int => narrow(32).map(|v| (v as i32).to_be_bytes().to_vec()),
            CqlType::Bigint | CqlType::Counter | CqlType::Timestamp => {
                fit(int()).map(|v| v.to_be_bytes().to_vec())
            }
            CqlType::Varint => int().map(|v| v.to_signed_bytes_be()),
            CqlType::Decimal | CqlType::Float | CqlType::Double => return self.float_literal(s),
            CqlType::Date => int().and_then(|v| {
                u32::try_from(&v)
                    .map(|d| d.to_be_bytes().to_vec())
                    .map_err(|_| {
                        self.unparsable(
                            s,
                            format!("Unable to make unsigned int (for date) from: '{s}'"),
                        )
                    })
            }),
            CqlType::Time => self.time_bytes(s),
            _ => return None,
        };
        Some(bytes)
    }

    /// `None` when floats are not accepted by this type.
    fn float_literal(&self, s: &str) -> Option<Result<Vec<u8>, TypeError>> {
        let bytes = match self {
            CqlType::Float => parse_java_float::<f32>(s)
                .map(|f| f.to_be_bytes().to_vec())
                .ok_or_else(|| self.unparsable(s, "not a float")),
            CqlType::Double => parse_java_float::<f64>(s)
                .map(|f| f.to_be_bytes().to_vec())
                .ok_or_else(|| self.unparsable(s, "not a double")),
            CqlType::Decimal => self.decimal_bytes(s),
            _ => return None,
        };
        Some(bytes)
    }

    /// `None` when strings are not accepted by this type.
    fn string_literal(&self, s: &str) -> Option<Result<Vec<u8>, TypeError>> {
        if s.is_empty() && !matches!(self, CqlType::Ascii | CqlType::Text) {
            // The empty string is the empty value for every string-accepting type.
            return self.accepts_strings().then(|| Ok(Vec::new()));
        }
        let bytes = match self {
            CqlType::Text => Ok(s.as_bytes().to_vec()),
            CqlType::Ascii if s.is_ascii() => Ok(s.as_bytes().to_vec()),
            CqlType::Ascii => Err(self.unparsable(s, "Invalid ASCII character in string literal")),
            CqlType::Inet => match IpAddr::from_str(s) {
                Ok(IpAddr::V4(a)) => Ok(a.octets().to_vec()),
                Ok(IpAddr::V6(a)) => Ok(a.octets().to_vec()),
                Err(_) => Err(self.unparsable(s, "not an IP address")),
            },
            CqlType::Timestamp => parse_timestamp(s)
                .map(|ms| ms.to_be_bytes().to_vec())
                .map_err(|r| self.unparsable(s, r)),
            CqlType::Date => parse_date(s)
                .map(|d| d.to_be_bytes().to_vec())
                .map_err(|r| self.unparsable(s, r)),
            CqlType::Time => self.time_bytes(s),
            CqlType::Uuid | CqlType::Timeuuid => self.parse_uuid(s),
            CqlType::Decimal => self.decimal_bytes(s),
            CqlType::Varint => BigInt::from_str(s)
                .map(|v| v.to_signed_bytes_be())
                .map_err(|e| self.unparsable(s, e.to_string())),
            CqlType::Duration => self.parse_duration_text(s),
            _ => return None,
        };
        Some(bytes)
    }

    fn accepts_strings(&self) -> bool {
        matches!(
            self,
            CqlType::Ascii
                | CqlType::Text
                | CqlType::Inet
                | CqlType::Timestamp
                | CqlType::Date
                | CqlType::Time
                | CqlType::Uuid
                | CqlType::Timeuuid
                | CqlType::Decimal
                | CqlType::Varint
                | CqlType::Duration
        )
    }

    fn time_bytes(&self, s: &str) -> Result<Vec<u8>, TypeError> {
        parse_time(s)
            .map(|ns| ns.to_be_bytes().to_vec())
            .map_err(|r| self.unparsable(s, r))
    }

    fn decimal_bytes(&self, s: &str) -> Result<Vec<u8>, TypeError> {
        let d = BigDecimal::from_str(s).map_err(|e| self.unparsable(s, e.to_string()))?;
        let (unscaled, scale) = d.as_bigint_and_exponent();
        let scale = i32::try_from(scale).map_err(|_| self.out_of_range(s))?;
        let mut out = scale.to_be_bytes().to_vec();
        out.extend_from_slice(&unscaled.to_signed_bytes_be());
        Ok(out)
    }

    fn parse_uuid(&self, s: &str) -> Result<Vec<u8>, TypeError> {
        let parsed = (s.len() == 36)
            .then(|| uuid::Uuid::try_parse(s).ok())
            .flatten()
            .ok_or_else(|| self.unparsable(s, "not a UUID"))?;
        let version = parsed.as_bytes()[6] >> 4;
        if *self == CqlType::Timeuuid && version != 1 {
            return Err(TypeError::TimeuuidVersion { version });
        }
        Ok(parsed.as_bytes().to_vec())
    }

    fn parse_hex(&self, s: &str) -> Result<Vec<u8>, TypeError> {
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if !digits.len().is_multiple_of(2) {
            return Err(self.unparsable(s, "a hex string must have an even length"));
        }
        let nibble = |c: u8| char::from(c).to_digit(16);
        digits
            .as_bytes()
            .chunks(2)
            .map(|pair| Some((nibble(pair[0])? << 4 | nibble(pair[1])?) as u8))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| self.unparsable(s, "non-hex character"))
    }

    fn parse_duration_text(&self, s: &str) -> Result<Vec<u8>, TypeError> {
        match parse_duration(s) {
            Ok(d) => Ok(d.encode()),
            Err(Ok(e)) => Err(e),
            Err(Err(reason)) => Err(self.unparsable(s, reason)),
        }
    }

    fn tuple_literal(&self, types: &[CqlType], items: &[Literal]) -> Result<Vec<u8>, TypeError> {
        if items.len() > types.len() {
            return Err(TypeError::TupleLiteralTooLong {
                cql_type: self.to_string(),
                expected: types.len(),
                actual: items.len(),
            });
        }
        let fields = types
            .iter()
            .zip(items)
            .map(|(ty, lit)| nullable_element(ty, lit))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serialize_tuple(&as_option_slices(&fields)))
    }
}

/// Parses a float literal; `NaN`, `Infinity`, `-Infinity` included, in any
/// case (they are case-insensitive keywords in CQL).
fn parse_java_float<F: FromStr>(s: &str) -> Option<F> {
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b".-+eE".contains(&b))
        || matches!(
            s.to_ascii_lowercase().as_str(),
            "nan" | "infinity" | "-infinity" | "+infinity"
        );
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// A collection element: never null.
fn element(ty: &CqlType, lit: &Literal) -> Result<Vec<u8>, TypeError> {
    match lit {
        Literal::Null => Err(TypeError::NullInCollection),
        Literal::Value(bytes) => {
            ty.validate(bytes)?;
            Ok(bytes.to_vec())
        }
        _ => ty.literal_bytes(lit),
    }
}

/// A tuple or UDT field: null allowed.
fn nullable_element(ty: &CqlType, lit: &Literal) -> Result<Option<Vec<u8>>, TypeError> {
    match lit {
        Literal::Null => Ok(None),
        _ => element(ty, lit).map(Some),
    }
}

fn elements(ty: &CqlType, items: &[Literal]) -> Result<Vec<Vec<u8>>, TypeError> {
    items.iter().map(|lit| element(ty, lit)).collect()
}

fn as_slices(items: &[Vec<u8>]) -> Vec<Option<&[u8]>> {
    items.iter().map(|v| Some(v.as_slice())).collect()
}

fn as_option_slices(items: &[Option<Vec<u8>>]) -> Vec<Option<&[u8]>> {
    items.iter().map(Option::as_deref).collect()
}

fn set_literal(elem: &CqlType, items: &[Literal]) -> Result<Vec<u8>, TypeError> {
    let mut values = elements(elem, items)?;
    values.sort_by(|a, b| elem.compare(a, b));
    values.dedup_by(|a, b| elem.compare(a, b) == Ordering::Equal);
    Ok(serialize_collection(&as_slices(&values)))
}

fn map_literal(
    key: &CqlType,
    value: &CqlType,
    pairs: &[(Literal, Literal)],
) -> Result<Vec<u8>, TypeError> {
    let mut entries = pairs
        .iter()
        .map(|(k, v)| Ok((element(key, k)?, element(value, v)?)))
        .collect::<Result<Vec<_>, TypeError>>()?;
    // A stable sort keeps duplicates in statement order; the last one wins.
    entries.sort_by(|a, b| key.compare(&a.0, &b.0));
    let mut unique: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
    for entry in entries {
        match unique.last_mut() {
            Some(last) if key.compare(&last.0, &entry.0) == Ordering::Equal => *last = entry,
            _ => unique.push(entry),
        }
    }
    let refs: Vec<(&[u8], &[u8])> = unique
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    Ok(serialize_map(&refs))
}

fn udt_literal(udt: &UdtType, given: &[(String, Literal)]) -> Result<Vec<u8>, TypeError> {
    let mut fields: Vec<Option<Vec<u8>>> = vec![None; udt.fields.len()];
    let mut seen = vec![false; udt.fields.len()];
    for (name, lit) in given {
        let index = udt
            .fields
            .iter()
            .position(|(field, _)| field == name)
            .ok_or_else(|| TypeError::UnknownField {
                field: name.clone(),
                udt: udt.name.clone(),
            })?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(TypeError::DuplicateField {
                field: name.clone(),
                udt: udt.name.clone(),
            });
        }
        fields[index] = nullable_element(&udt.fields[index].1, lit)?;
    }
    Ok(serialize_tuple(&as_option_slices(&fields)))
}

#[cfg(test)]
mod tests;
