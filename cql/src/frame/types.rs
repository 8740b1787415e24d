//! Wire enums shared by requests and responses: consistency levels and the
//! column type [option] of result metadata.
//!
//! `ColumnType` is this module's own description of the wire type option, not
//! the schema's type: the statement layer maps its types onto it when it builds
//! result metadata. Encoding depends on the protocol version because v3 has no
//! ids for date, time, smallint, tinyint and duration; those travel as custom
//! types named by their server class, which is what v3 drivers understand.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::primitives::{put_string, Reader};
use super::FrameError;

/// A consistency level with its protocol code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Consistency {
    Any = 0x0000,
    One = 0x0001,
    Two = 0x0002,
    Three = 0x0003,
    Quorum = 0x0004,
    All = 0x0005,
    LocalQuorum = 0x0006,
    EachQuorum = 0x0007,
    Serial = 0x0008,
    LocalSerial = 0x0009,
    LocalOne = 0x000A,
}

impl Consistency {
    /// Every level, in code order.
    pub const ALL: [Consistency; 11] = [
        Self::Any,
        Self::One,
        Self::Two,
        Self::Three,
        Self::Quorum,
        Self::All,
        Self::LocalQuorum,
        Self::EachQuorum,
        Self::Serial,
        Self::LocalSerial,
        Self::LocalOne,
    ];

    /// The level for a wire code, if it is one.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The wire code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The CQL name, e.g. `LOCAL_QUORUM`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "ANY",
            Self::One => "ONE",
            Self::Two => "TWO",
            Self::Three => "THREE",
            Self::Quorum => "QUORUM",
            Self::All => "ALL",
            Self::LocalQuorum => "LOCAL_QUORUM",
            Self::EachQuorum => "EACH_QUORUM",
            Self::Serial => "SERIAL",
            Self::LocalSerial => "LOCAL_SERIAL",
            Self::LocalOne => "LOCAL_ONE",
        }
    }

    /// Parses a CQL name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Whether this is one of the two serial levels.
    pub fn is_serial(self) -> bool {
        matches!(self, Self::Serial | Self::LocalSerial)
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type [option] of a column in result or bind metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// A server class name.
    Custom(String),
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    /// Also `text`.
    Varchar,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    Smallint,
    Tinyint,
    Duration,
    List(Box<ColumnType>),
    Map(Box<ColumnType>, Box<ColumnType>),
    Set(Box<ColumnType>),
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, ColumnType)>,
    },
    Tuple(Vec<ColumnType>),
}

/// Nesting bound for decoding type options, so hostile input cannot recurse deeply.
const MAX_TYPE_DEPTH: usize = 64;

impl ColumnType {
    /// The option id of a type without parameters, `None` for the others.
    fn simple_id(&self) -> Option<u16> {
        let id = match self {
            Self::Ascii => 0x0001,
            Self::Bigint => 0x0002,
            Self::Blob => 0x0003,
            Self::Boolean => 0x0004,
            Self::Counter => 0x0005,
            Self::Decimal => 0x0006,
            Self::Double => 0x0007,
            Self::Float => 0x0008,
            Self::Int => 0x0009,
            Self::Timestamp => 0x000B,
            Self::Uuid => 0x000C,
            Self::Varchar => 0x000D,
            Self::Varint => 0x000E,
            Self::Timeuuid => 0x000F,
            Self::Inet => 0x0010,
            Self::Date => 0x0011,
            Self::Time => 0x0012,
            Self::Smallint => 0x0013,
            Self::Tinyint => 0x0014,
            Self::Duration => 0x0015,
            _ => return None,
        };
        Some(id)
    }

    fn from_simple_id(id: u16) -> Option<Self> {
        let ty = match id {
            0x0001 => Self::Ascii,
            0x0002 => Self::Bigint,
            0x0003 => Self::Blob,
            0x0004 => Self::Boolean,
            0x0005 => Self::Counter,
            0x0006 => Self::Decimal,
            0x0007 => Self::Double,
            0x0008 => Self::Float,
            0x0009 => Self::Int,
            0x000B => Self::Timestamp,
            0x000C => Self::Uuid,
            0x000D => Self::Varchar,
            0x000E => Self::Varint,
            0x000F => Self::Timeuuid,
            0x0010 => Self::Inet,
            0x0011 => Self::Date,
            0x0012 => Self::Time,
            0x0013 => Self::Smallint,
            0x0014 => Self::Tinyint,
            0x0015 => Self::Duration,
            _ => return None,
        };
        Some(ty)
    }

    /// The server class name a v3 client sees for types v3 has no id for.
    fn v3_custom_name(&self) -> Option<&'static str> {
        let name = match self {
            Self::Date => "org.apache.cassandra.db.marshal.SimpleDateType",
            Self::Time => "org.apache.cassandra.db.marshal.TimeType",
            Self::Smallint => "org.apache.cassandra.db.marshal.ShortType",
            Self::Tinyint => "org.apache.cassandra.db.marshal.ByteType",
            Self::Duration => "org.apache.cassandra.db.marshal.DurationType",
            _ => return None,
        };
        Some(name)
    }

    /// Writes the type [option] for protocol `version`.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        if version < 4 {
            if let Some(name) = self.v3_custom_name() {
                out.put_u16(0x0000);
                put_string(out, name);
                return;
            }
        }
        if let Some(id) = self.simple_id() {
            out.put_u16(id);
            return;
        }
        self.encode_parameterized(version, out);
    }

    fn encode_parameterized(&self, version: u8, out: &mut BytesMut) {
        match self {
            Self::Custom(name) => {
                out.put_u16(0x0000);
                put_string(out, name);
            }
            Self::List(elem) => {
                out.put_u16(0x0020);
                elem.encode(version, out);
            }
            Self::Map(key, value) => {
                out.put_u16(0x0021);
                key.encode(version, out);
                value.encode(version, out);
            }
            Self::Set(elem) => {
                out.put_u16(0x0022);
                elem.encode(version, out);
            }
            Self::Udt {
                keyspace,
                name,
                fields,
            } => {
                out.put_u16(0x0030);
                put_string(out, keyspace);
                put_string(out, name);
                let n = u16::try_from(fields.len()).unwrap_or(u16::MAX);
                out.put_u16(n);
                for (field, ty) in &fields[..usize::from(n)] {
                    put_string(out, field);
                    ty.encode(version, out);
                }
            }
            Self::Tuple(items) => {
                out.put_u16(0x0031);
                let n = u16::try_from(items.len()).unwrap_or(u16::MAX);
                out.put_u16(n);
                for ty in &items[..usize::from(n)] {
                    ty.encode(version, out);
                }
            }
            simple => unreachable!("simple type {simple:?} has an id"),
        }
    }

    /// Reads a type [option] (used by tests and tools; servers only write them).
    pub fn decode(reader: &mut Reader) -> Result<Self, FrameError> {
        Self::decode_at(reader, 0)
    }

    fn decode_at(reader: &mut Reader, depth: usize) -> Result<Self, FrameError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(FrameError::TypeTooDeep);
        }
        let id = reader.read_short("type option")?;
        if let Some(ty) = Self::from_simple_id(id) {
            return Ok(ty);
        }
        let next = depth + 1;
        let ty = match id {
            0x0000 => Self::Custom(reader.read_string("custom type")?),
            0x0020 => Self::List(Box::new(Self::decode_at(reader, next)?)),
            0x0021 => {
                let key = Self::decode_at(reader, next)?;
                Self::Map(Box::new(key), Box::new(Self::decode_at(reader, next)?))
            }
            0x0022 => Self::Set(Box::new(Self::decode_at(reader, next)?)),
            0x0030 => Self::decode_udt(reader, next)?,
            0x0031 => {
                let n = usize::from(reader.read_short("tuple")?);
                let mut items = Vec::with_capacity(n.min(reader.remaining() / 2));
                for _ in 0..n {
                    items.push(Self::decode_at(reader, next)?);
                }
                Self::Tuple(items)
            }
            id => return Err(FrameError::UnknownTypeId { id }),
        };
        Ok(ty)
    }

    fn decode_udt(reader: &mut Reader, depth: usize) -> Result<Self, FrameError> {
        let keyspace = reader.read_string("udt keyspace")?;
        let name = reader.read_string("udt name")?;
        let n = usize::from(reader.read_short("udt fields")?);
        let mut fields = Vec::with_capacity(n.min(reader.remaining() / 4));
        for _ in 0..n {
            let field = reader.read_string("udt field")?;
            fields.push((field, Self::decode_at(reader, depth)?));
        }
        Ok(Self::Udt {
            keyspace,
            name,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ty: &ColumnType, version: u8) -> ColumnType {
        let mut out = BytesMut::new();
        ty.encode(version, &mut out);
        let mut r = Reader::new(out.freeze());
        let got = ColumnType::decode(&mut r).expect("well-formed");
        assert_eq!(r.remaining(), 0);
        got
    }

    #[test]
    fn consistency_codes_and_names() {
        for c in Consistency::ALL {
            assert_eq!(Consistency::from_code(c.code()), Some(c));
            assert_eq!(Consistency::from_name(c.name()), Some(c));
        }
        assert_eq!(Consistency::LocalOne.code(), 0x000A);
        assert_eq!(Consistency::LocalQuorum.to_string(), "LOCAL_QUORUM");
        assert_eq!(Consistency::from_code(11), None);
    }

    #[test]
    fn nested_types_round_trip() {
        let ty = ColumnType::Map(
            Box::new(ColumnType::Varchar),
            Box::new(ColumnType::List(Box::new(ColumnType::Tuple(vec![
                ColumnType::Int,
                ColumnType::Udt {
                    keyspace: "ks".into(),
                    name: "addr".into(),
                    fields: vec![("street".into(), ColumnType::Varchar)],
                },
                ColumnType::Set(Box::new(ColumnType::Duration)),
                ColumnType::Custom("com.example.T".into()),
            ])))),
        );
        assert_eq!(round_trip(&ty, 4), ty);
    }

    #[test]
    fn v4_only_types_become_custom_in_v3() {
        let mut out = BytesMut::new();
        ColumnType::Varchar.encode(4, &mut out);
        assert_eq!(&out[..], &[0x00, 0x0D]);
        let got = round_trip(&ColumnType::Smallint, 3);
        assert_eq!(
            got,
            ColumnType::Custom("org.apache.cassandra.db.marshal.ShortType".into())
        );
        assert_eq!(round_trip(&ColumnType::Date, 4), ColumnType::Date);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut out = BytesMut::new();
        for _ in 0..1000 {
            out.put_u16(0x0020);
        }
        out.put_u16(0x0009);
        let mut r = Reader::new(out.freeze());
        assert!(matches!(
            ColumnType::decode(&mut r),
            Err(FrameError::TypeTooDeep)
        ));
    }
}
