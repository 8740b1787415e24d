//! CQL values to and from JSON: `SELECT JSON`, `toJson(x)`, `fromJson(x)`
//! and `INSERT ... JSON '...'`.
//!
//! Rendering is written by hand rather than through `serde_json`'s
//! serializer because clients compare the text itself: objects and arrays
//! use `", "` and `": "` separators, timestamps read `yyyy-mm-dd
//! HH:MM:SS.mmmZ`, blobs `"0x.."`, and map keys are always JSON strings
//! (a non-string key is the JSON text of the key, quoted).
//!
//! Parsing goes through `serde_json` into a [`Literal`] tree, so the
//! type-directed conversion (range checks, sorting sets and maps, timestamp
//! formats) is the same one CQL literals use. JSON is lenient where CQL is
//! not: numbers may be given as strings, booleans as `"true"`/`"false"`,
//! and a map key that is not text is itself parsed as JSON (`{"17": 3}`).
use std::fmt::Write;

use bytes::Bytes;
use serde_json::Value as Json;
use storage::types::{CqlType, Literal, TypeError};

use crate::parser::ast::Ident;

/// Why a JSON value could not become a CQL value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    #[error("Could not decode JSON string '{text}': {reason}")]
    Parse { text: String, reason: String },
    #[error("Unable to make {ty} from '{found}'")]
    Mismatch { ty: String, found: String },
    #[error("Unknown field '{field}' in value of user defined type {udt}")]
    UnknownField { udt: String, field: String },
    #[error("JSON values map contains unrecognized column: {column}")]
    UnknownColumn { column: String },
    #[error("Error decoding JSON value for {ty}: {source}")]
    Value {
        ty: String,
        #[source]
        source: TypeError,
    },
}

// ---------------------------------------------------------------- rendering

/// Renders `value` (a wire value of `ty`, `None` for null) as JSON text.
pub fn to_json(ty: &CqlType, value: Option<&[u8]>) -> String {
    let mut out = String::new();
    write_json(ty, value, &mut out);
    out
}

/// Renders a JSON object key for a column or alias named `name`: quoted
/// names keep their CQL double quotes, as they must to be read back.
pub fn column_key(name: &str) -> String {
    json_string(&Ident(name).to_string())
}

/// A JSON string literal for `s`.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("serializing a string cannot fail")
}

fn write_json(ty: &CqlType, value: Option<&[u8]>, out: &mut String) {
    let Some(v) = value else {
        out.push_str("null");
        return;
    };
    let is_text = matches!(ty, CqlType::Ascii | CqlType::Text | CqlType::Blob);
    if (v.is_empty() && !is_text) || ty.validate(v).is_err() {
        out.push_str("null");
        return;
    }
    match ty {
        CqlType::Ascii | CqlType::Text => out.push_str(&json_string(&String::from_utf8_lossy(v))),
        CqlType::Blob => {
            out.push_str("\"0x");
            for b in v {
                let _ = write!(out, "{b:02x}");
            }
            out.push('"');
        }
        CqlType::Uuid
        | CqlType::Timeuuid
        | CqlType::Inet
        | CqlType::Date
        | CqlType::Time
        | CqlType::Duration => out.push_str(&json_string(&unquoted_literal(ty, v))),
        CqlType::Timestamp => out.push_str(&json_string(&timestamp_text(v))),
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => write_list(elem, v, out),
        CqlType::Map { key, value, .. } => write_map(key, value, v, out),
        CqlType::Tuple(types) => write_tuple(types, v, out),
        CqlType::Udt(udt) => write_udt(&udt.fields, v, out),
        _ => out.push_str(&ty.to_cql_literal(v)),
    }
}

/// The CQL literal without its single quotes (for inet, date and time).
fn unquoted_literal(ty: &CqlType, v: &[u8]) -> String {
    let text = ty.to_cql_literal(v);
    match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => text,
    }
}

/// `yyyy-mm-dd HH:MM:SS.mmmZ` in UTC.
fn timestamp_text(v: &[u8]) -> String {
    let millis = i64::from_be_bytes(v.try_into().expect("validated timestamp"));
    let day = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let date = storage::types::timestamp_millis_to_date(millis)
        .map(|d| unquoted_literal(&CqlType::Date, &d.to_be_bytes()))
        .unwrap_or_else(|| day.to_string());
    format!(
        "{date} {:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

fn write_list(elem: &CqlType, v: &[u8], out: &mut String) {
    let items = storage::types::parse_collection(v).unwrap_or_default();
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_json(elem, Some(item), out);
    }
    out.push(']');
}

fn write_map(key: &CqlType, value: &CqlType, v: &[u8], out: &mut String) {
    let pairs = storage::types::parse_map(v).unwrap_or_default();
    out.push('{');
    for (i, (k, val)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let key_json = to_json(key, Some(k));
        if key_json.starts_with('"') {
            out.push_str(&key_json);
        } else {
            out.push_str(&json_string(&key_json));
        }
        out.push_str(": ");
        write_json(value, Some(val), out);
    }
    out.push('}');
}

fn write_tuple(types: &[CqlType], v: &[u8], out: &mut String) {
    let fields = storage::types::parse_tuple(v).unwrap_or_default();
    out.push('[');
    for (i, ty) in types.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_json(ty, fields.get(i).copied().flatten(), out);
    }
    out.push(']');
}

fn write_udt(fields: &[(String, CqlType)], v: &[u8], out: &mut String) {
    let values = storage::types::parse_tuple(v).unwrap_or_default();
    out.push('{');
    for (i, (name, ty)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&column_key(name));
        out.push_str(": ");
        write_json(ty, values.get(i).copied().flatten(), out);
    }
    out.push('}');
}

// ---------------------------------------------------------------- parsing

/// Parses JSON text.
pub fn parse(text: &str) -> Result<Json, JsonError> {
    serde_json::from_str(text).map_err(|e| JsonError::Parse {
        text: text.to_string(),
        reason: e.to_string(),
    })
}

/// Converts JSON text to a wire value of `ty` (`None` for JSON null).
pub fn from_json(text: &str, ty: &CqlType) -> Result<Option<Bytes>, JsonError> {
    value_from_json(&parse(text)?, ty)
}

/// Converts a parsed JSON value to a wire value of `ty`.
pub fn value_from_json(json: &Json, ty: &CqlType) -> Result<Option<Bytes>, JsonError> {
    let literal = to_literal(json, ty)?;
    ty.literal_to_value(&literal)
        .map_err(|source| JsonError::Value {
            ty: ty.cql_name(),
            source,
        })
}

fn mismatch(ty: &CqlType, json: &Json) -> JsonError {
    JsonError::Mismatch {
        ty: ty.cql_name(),
        found: json.to_string(),
    }
}

/// The literal a JSON value stands for as a `ty`.
fn to_literal(json: &Json, ty: &CqlType) -> Result<Literal, JsonError> {
    if json.is_null() {
        return Ok(Literal::Null);
    }
    match ty {
        CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. } => {
            collection_literal(json, ty)
        }
        CqlType::Tuple(types) => {
            let Json::Array(items) = json else {
                return Err(mismatch(ty, json));
            };
            if items.len() > types.len() {
                return Err(mismatch(ty, json));
            }
            let items = items
                .iter()
                .zip(types)
                .map(|(j, t)| to_literal(j, t))
                .collect::<Result<_, _>>()?;
            Ok(Literal::Tuple(items))
        }
        CqlType::Udt(udt) => {
            let Json::Object(fields) = json else {
                return Err(mismatch(ty, json));
            };
            let mut out = Vec::with_capacity(fields.len());
            for (key, value) in fields {
                let name = identifier(key);
                let Some((_, field_ty)) = udt.fields.iter().find(|(f, _)| *f == name) else {
                    return Err(JsonError::UnknownField {
                        udt: udt.name.clone(),
                        field: name,
                    });
                };
                out.push((name, to_literal(value, field_ty)?));
            }
            Ok(Literal::Udt(out))
        }
        _ => scalar_literal(json, ty),
    }
}

fn collection_literal(json: &Json, ty: &CqlType) -> Result<Literal, JsonError> {
    match (ty, json) {
        (CqlType::List { elem, .. }, Json::Array(items)) => Ok(Literal::List(
            items
                .iter()
                .map(|j| to_literal(j, elem))
                .collect::<Result<_, _>>()?,
        )),
        (CqlType::Set { elem, .. }, Json::Array(items)) => Ok(Literal::Set(
            items
                .iter()
                .map(|j| to_literal(j, elem))
                .collect::<Result<_, _>>()?,
        )),
        (CqlType::Map { key, value, .. }, Json::Object(pairs)) => {
            let mut out = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                out.push((map_key(k, key)?, to_literal(v, value)?));
            }
            Ok(Literal::Map(out))
        }
        _ => Err(mismatch(ty, json)),
    }
}

/// A JSON object key as a map key: text as is, anything else parsed as JSON
/// first (`"17"` is the number 17), falling back to the string itself
/// (`"2011-02-03"`, a uuid, `"0x12"`).
fn map_key(key: &str, ty: &CqlType) -> Result<Literal, JsonError> {
    if matches!(ty, CqlType::Ascii | CqlType::Text) {
        return Ok(Literal::String(key.to_string()));
    }
    let parsed = serde_json::from_str::<Json>(key).unwrap_or_else(|_| Json::String(key.into()));
    to_literal(&parsed, ty)
}

/// A JSON object key naming a column or field: `"\"Name\""` is the
/// case-sensitive `Name`, anything else is folded to lower case.
pub fn identifier(key: &str) -> String {
    match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => key.to_lowercase(),
    }
}

fn scalar_literal(json: &Json, ty: &CqlType) -> Result<Literal, JsonError> {
    use CqlType as T;
    let integral = matches!(
        ty,
        T::Tinyint | T::Smallint | T::Int | T::Bigint | T::Varint | T::Counter
    );
    match json {
        Json::String(s) => Ok(match ty {
            T::Blob => Literal::Hex(s.clone()),
            T::Boolean if s.eq_ignore_ascii_case("true") => Literal::Boolean(true),
            T::Boolean if s.eq_ignore_ascii_case("false") => Literal::Boolean(false),
            T::Boolean => return Err(mismatch(ty, json)),
            _ if integral => Literal::Integer(s.trim().to_string()),
            T::Float | T::Double => Literal::Float(s.trim().to_string()),
            _ => Literal::String(s.clone()),
        }),
        Json::Number(n) => {
            let text = n.to_string();
            match ty {
                _ if integral && (n.is_i64() || n.is_u64()) => Ok(Literal::Integer(text)),
                T::Float | T::Double | T::Decimal if n.is_f64() => Ok(Literal::Float(text)),
                T::Float | T::Double | T::Decimal => Ok(Literal::Integer(text)),
                T::Timestamp | T::Date | T::Time if !n.is_f64() => Ok(Literal::Integer(text)),
                _ => Err(mismatch(ty, json)),
            }
        }
        Json::Bool(b) if *ty == T::Boolean => Ok(Literal::Boolean(*b)),
        _ => Err(mismatch(ty, json)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ty: &CqlType, json: &str) -> String {
        let value = from_json(json, ty).expect("valid json").expect("not null");
        to_json(ty, Some(&value))
    }

    #[test]
    fn scalars_render_as_cql_clients_expect() {
        assert_eq!(round_trip(&CqlType::Int, "17"), "17");
        assert_eq!(round_trip(&CqlType::Int, "\"17\""), "17");
        assert_eq!(round_trip(&CqlType::Text, "\"a\\\"b\""), "\"a\\\"b\"");
        assert_eq!(round_trip(&CqlType::Blob, "\"0x12ab\""), "\"0x12ab\"");
        assert_eq!(round_trip(&CqlType::Boolean, "\"fALSe\""), "false");
        assert_eq!(
            round_trip(&CqlType::Timestamp, "\"2014-01-01 12:15:45+0000\""),
            "\"2014-01-01 12:15:45.000Z\""
        );
        assert_eq!(round_trip(&CqlType::Time, "123"), "\"00:00:00.000000123\"");
        assert_eq!(
            round_trip(&CqlType::Date, "\"2011-02-03\""),
            "\"2011-02-03\""
        );
        assert_eq!(round_trip(&CqlType::Inet, "\"1.2.3.4\""), "\"1.2.3.4\"");
    }

    #[test]
    fn collections_tuples_and_udts() {
        let map = CqlType::map(CqlType::Int, CqlType::Text, false);
        assert_eq!(
            round_trip(&map, "{\"2\": \"b\", \"1\": \"a\"}"),
            "{\"1\": \"a\", \"2\": \"b\"}"
        );
        let tuple = CqlType::tuple(vec![CqlType::Text, CqlType::Int]);
        assert_eq!(round_trip(&tuple, "[\"hello\", null]"), "[\"hello\", null]");
        let udt = CqlType::udt(
            "ks",
            "u",
            vec![("t".into(), CqlType::Text), ("B".into(), CqlType::Boolean)],
            true,
        );
        assert_eq!(
            round_trip(&udt, "{\"t\": \"x\", \"\\\"B\\\"\": true}"),
            "{\"t\": \"x\", \"\\\"B\\\"\": true}"
        );
        let set = CqlType::set(CqlType::Int, false);
        assert_eq!(round_trip(&set, "[3, 1, 3]"), "[1, 3]");
    }

    #[test]
    fn bad_json_is_refused() {
        assert!(matches!(
            from_json("dog", &CqlType::Int),
            Err(JsonError::Parse { .. })
        ));
        assert!(from_json("\"dog\"", &CqlType::Int).is_err());
        assert!(from_json("1.2", &CqlType::Int).is_err());
        assert!(from_json("3", &CqlType::Ascii).is_err());
        assert!(from_json("\"שלום\"", &CqlType::Ascii).is_err());
        assert!(from_json("2147483648", &CqlType::Int).is_err());
        assert_eq!(
            from_json("null", &CqlType::Int).expect("null is fine"),
            None
        );
    }
}
