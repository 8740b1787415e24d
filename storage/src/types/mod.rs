//! CQL types, their wire encodings and byte-ordered key encodings.
//!
//! This module owns everything that depends on a column's CQL type and nothing
//! that depends on a table: the schema-level type (`CqlType`), validation of
//! protocol-v4 serialized values, the type's ordering (`compare`), an
//! order-preserving key encoding (`encode_key`) that lets the memtable and
//! SSTables order clustering keys with `memcmp` and stay schema-agnostic,
//! conversion of CQL literals to serialized values, and rendering of values
//! back as CQL text.
//!
//! Values travel as their serialized bytes everywhere (`&[u8]`/`Bytes`), never
//! as a decoded enum: the hot paths (memtable insert, read merge) only need
//! `encode_key`/`compare`, which work on bytes without allocating.
//!
//! Submodules:
//! - `wire`: length-prefixed collection/tuple layout, vints, builders and parsers.
//! - `validate`, `compare`, `key`: the per-type checks, ordering and key encoding.
//! - `literal`, `display`: CQL literal text in and out.
//! - `time`: calendar arithmetic, time-of-day, durations and timeuuids.

mod compare;
mod display;
mod error;
mod key;
mod literal;
mod parse;
mod time;
mod validate;
mod wire;

#[cfg(test)]
mod proptests;

use std::fmt;

pub use error::TypeError;
pub use key::{decode_clustering, encode_clustering, KEY_AFTER_ALL, KEY_BEFORE_ALL};
pub use literal::Literal;
pub use time::{
    date_to_timestamp_millis, max_timeuuid, min_timeuuid, timestamp_millis_to_date,
    timeuuid_from_micros, timeuuid_micros, timeuuid_to_date, timeuuid_to_millis, Duration,
    DATE_EPOCH_DAYS,
};
pub use wire::{
    parse_collection, parse_map, parse_tuple, serialize_collection, serialize_map, serialize_tuple,
    MapEntry,
};

/// A CQL column type as stored in the schema.
///
/// Elements of collections, tuples and UDTs are always frozen; the
/// constructors (`CqlType::list` etc.) normalise that so that equal types
/// compare equal however they were spelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CqlType {
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Inet,
    Int,
    Smallint,
    Text,
    Time,
    Timestamp,
    Timeuuid,
    Tinyint,
    Uuid,
    Varint,
    List {
        elem: Box<CqlType>,
        frozen: bool,
    },
    Set {
        elem: Box<CqlType>,
        frozen: bool,
    },
    Map {
        key: Box<CqlType>,
        value: Box<CqlType>,
        frozen: bool,
    },
    /// Tuples are always frozen.
    Tuple(Vec<CqlType>),
    Udt(UdtType),
}

/// A user-defined type: its name, its keyspace and its fields in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct UdtType {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, CqlType)>,
    pub frozen: bool,
}

impl CqlType {
    /// A list type; a collection or UDT element is frozen.
    pub fn list(elem: CqlType, frozen: bool) -> CqlType {
        CqlType::List {
            elem: Box::new(elem.frozen()),
            frozen,
        }
    }

    /// A set type; a collection or UDT element is frozen.
    pub fn set(elem: CqlType, frozen: bool) -> CqlType {
        CqlType::Set {
            elem: Box::new(elem.frozen()),
            frozen,
        }
    }

    /// A map type; collection or UDT keys and values are frozen.
    pub fn map(key: CqlType, value: CqlType, frozen: bool) -> CqlType {
        CqlType::Map {
            key: Box::new(key.frozen()),
            value: Box::new(value.frozen()),
            frozen,
        }
    }

    /// A tuple type; its components are frozen.
    pub fn tuple(components: Vec<CqlType>) -> CqlType {
        CqlType::Tuple(components.into_iter().map(|t| t.frozen()).collect())
    }

    /// A user-defined type; its field types are frozen.
    pub fn udt(keyspace: &str, name: &str, fields: Vec<(String, CqlType)>, frozen: bool) -> Self {
        CqlType::Udt(UdtType {
            keyspace: keyspace.to_owned(),
            name: name.to_owned(),
            fields: fields.into_iter().map(|(n, t)| (n, t.frozen())).collect(),
            frozen,
        })
    }

    /// The type string the schema tables store, e.g. `frozen<list<int>>`.
    pub fn cql_name(&self) -> String {
        self.to_string()
    }

    /// True for a non-frozen collection or UDT: its value is stored as one cell per element.
    pub fn is_multi_cell(&self) -> bool {
        match self {
            CqlType::List { frozen, .. }
            | CqlType::Set { frozen, .. }
            | CqlType::Map { frozen, .. } => !frozen,
            CqlType::Udt(udt) => !udt.frozen,
            _ => false,
        }
    }

    /// True for lists, sets and maps, frozen or not.
    pub fn is_collection(&self) -> bool {
        matches!(
            self,
            CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. }
        )
    }

    /// True for `counter`.
    pub fn is_counter(&self) -> bool {
        matches!(self, CqlType::Counter)
    }

    /// The frozen form of this type, frozen all the way down.
    pub fn frozen(&self) -> CqlType {
        match self {
            CqlType::List { elem, .. } => CqlType::List {
                elem: Box::new(elem.frozen()),
                frozen: true,
            },
            CqlType::Set { elem, .. } => CqlType::Set {
                elem: Box::new(elem.frozen()),
                frozen: true,
            },
            CqlType::Map { key, value, .. } => CqlType::Map {
                key: Box::new(key.frozen()),
                value: Box::new(value.frozen()),
                frozen: true,
            },
            CqlType::Tuple(types) => CqlType::Tuple(types.iter().map(CqlType::frozen).collect()),
            CqlType::Udt(udt) => CqlType::Udt(UdtType {
                keyspace: udt.keyspace.clone(),
                name: udt.name.clone(),
                fields: udt
                    .fields
                    .iter()
                    .map(|(n, t)| (n.clone(), t.frozen()))
                    .collect(),
                frozen: true,
            }),
            other => other.clone(),
        }
    }

    /// The serialized size of a non-empty value, for fixed-size types.
    pub fn is_fixed_size(&self) -> Option<usize> {
        match self {
            CqlType::Boolean | CqlType::Tinyint => Some(1),
            CqlType::Smallint => Some(2),
            CqlType::Int | CqlType::Float | CqlType::Date => Some(4),
            CqlType::Bigint
            | CqlType::Counter
            | CqlType::Double
            | CqlType::Timestamp
            | CqlType::Time => Some(8),
            CqlType::Uuid | CqlType::Timeuuid => Some(16),
            _ => None,
        }
    }

    /// The name of a native type (`int`, `text`, ...); `None` for collections, tuples, UDTs.
    pub fn native_name(&self) -> Option<&'static str> {
        let name = match self {
            CqlType::Ascii => "ascii",
            CqlType::Bigint => "bigint",
            CqlType::Blob => "blob",
            CqlType::Boolean => "boolean",
            CqlType::Counter => "counter",
            CqlType::Date => "date",
            CqlType::Decimal => "decimal",
            CqlType::Double => "double",
            CqlType::Duration => "duration",
            CqlType::Float => "float",
            CqlType::Inet => "inet",
            CqlType::Int => "int",
            CqlType::Smallint => "smallint",
            CqlType::Text => "text",
            CqlType::Time => "time",
            CqlType::Timestamp => "timestamp",
            CqlType::Timeuuid => "timeuuid",
            CqlType::Tinyint => "tinyint",
            CqlType::Uuid => "uuid",
            CqlType::Varint => "varint",
            _ => return None,
        };
        Some(name)
    }

    /// Writes the type; `nested` is true inside a collection, tuple or UDT,
    /// where collections and UDTs are always frozen.
    fn write_name(&self, f: &mut fmt::Formatter<'_>, nested: bool) -> fmt::Result {
        if let Some(name) = self.native_name() {
            return f.write_str(name);
        }
        let frozen = nested || !self.is_multi_cell();
        match self {
            CqlType::List { elem, .. } => write_wrapped(f, frozen, "list", &[elem]),
            CqlType::Set { elem, .. } => write_wrapped(f, frozen, "set", &[elem]),
            CqlType::Map { key, value, .. } => write_wrapped(f, frozen, "map", &[key, value]),
            CqlType::Tuple(types) => {
                let refs: Vec<&CqlType> = types.iter().collect();
                write_wrapped(f, false, "tuple", &refs)
            }
            CqlType::Udt(udt) if frozen => write!(f, "frozen<{}>", maybe_quote(&udt.name)),
            CqlType::Udt(udt) => f.write_str(&maybe_quote(&udt.name)),
            _ => Ok(()),
        }
    }
}

fn write_wrapped(
    f: &mut fmt::Formatter<'_>,
    frozen: bool,
    name: &str,
    args: &[&CqlType],
) -> fmt::Result {
    if frozen {
        f.write_str("frozen<")?;
    }
    write!(f, "{name}<")?;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        arg.write_name(f, true)?;
    }
    f.write_str(">")?;
    if frozen {
        f.write_str(">")?;
    }
    Ok(())
}

/// Quotes an identifier unless it is a plain lower-case one.
pub(crate) fn maybe_quote(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl fmt::Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_name(f, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> CqlType {
        CqlType::udt(
            "ks",
            "address",
            vec![("street".into(), CqlType::Text)],
            true,
        )
    }

    #[test]
    fn type_names_match_schema_strings() {
        assert_eq!(CqlType::Int.cql_name(), "int");
        assert_eq!(
            CqlType::list(CqlType::Int, true).cql_name(),
            "frozen<list<int>>"
        );
        assert_eq!(CqlType::list(CqlType::Int, false).cql_name(), "list<int>");
        let m = CqlType::map(CqlType::Text, CqlType::set(CqlType::Int, false), false);
        assert_eq!(m.cql_name(), "map<text, frozen<set<int>>>");
        let t = CqlType::tuple(vec![CqlType::Int, CqlType::Text]);
        assert_eq!(t.cql_name(), "tuple<int, text>");
        assert_eq!(address().cql_name(), "frozen<address>");
        let mut open = address();
        if let CqlType::Udt(u) = &mut open {
            u.frozen = false;
        }
        assert_eq!(open.cql_name(), "address");
        assert_eq!(
            CqlType::list(open, false).cql_name(),
            "list<frozen<address>>"
        );
        let raw = CqlType::List {
            elem: Box::new(CqlType::List {
                elem: Box::new(CqlType::Int),
                frozen: false,
            }),
            frozen: false,
        };
        assert_eq!(raw.cql_name(), "list<frozen<list<int>>>");
        let quoted = CqlType::udt("ks", "MyType", vec![], true);
        assert_eq!(quoted.cql_name(), "frozen<\"MyType\">");
    }

    #[test]
    fn type_properties() {
        let l = CqlType::list(CqlType::Int, false);
        assert!(l.is_multi_cell() && l.is_collection());
        assert!(!l.frozen().is_multi_cell());
        assert_eq!(l.frozen(), CqlType::list(CqlType::Int, true));
        assert!(!address().is_multi_cell());
        assert!(CqlType::Counter.is_counter());
        assert_eq!(CqlType::Timeuuid.is_fixed_size(), Some(16));
        assert_eq!(CqlType::Text.is_fixed_size(), None);
        assert!(!CqlType::tuple(vec![CqlType::Int]).is_multi_cell());
    }
}
