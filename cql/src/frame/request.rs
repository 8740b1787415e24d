//! Typed request bodies.
//!
//! Decoding never copies a bound value or a prepared id: they are `Bytes` views
//! of the frame body. Query text is copied once into a `String` because the
//! parser wants `&str` and the text must be checked as UTF-8 anyway. Trailing
//! bytes after a well-formed body are ignored, as the protocol allows for
//! future extensions.

use bytes::Bytes;

use super::header::Opcode;
use super::primitives::{Reader, Value};
use super::types::Consistency;
use super::FrameError;

/// A decoded client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// STARTUP options ([string map]) in wire order, e.g. `CQL_VERSION`, `COMPRESSION`.
    Startup(Vec<(String, String)>),
    /// AUTH_RESPONSE token (null is `None`).
    AuthResponse(Option<Bytes>),
    Options,
    Query {
        query: String,
        params: QueryParameters,
    },
    Prepare {
        query: String,
    },
    Execute {
        id: Bytes,
        params: QueryParameters,
    },
    Batch(Batch),
    /// REGISTER event types as sent (e.g. `SCHEMA_CHANGE`); the handler validates them.
    Register(Vec<String>),
}

/// The <query_parameters> of QUERY and EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: Values,
    pub skip_metadata: bool,
    /// As sent; zero or negative means "no paging".
    pub page_size: Option<i32>,
    pub paging_state: Option<Bytes>,
    pub serial_consistency: Option<Consistency>,
    /// Default timestamp in microseconds.
    pub timestamp: Option<i64>,
}

/// Bound values of a QUERY or EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    Positional(Vec<Value>),
    Named(Vec<(String, Value)>),
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Self::Positional(v) => v.len(),
            Self::Named(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Batch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Logged = 0,
    Unlogged = 1,
    Counter = 2,
}

/// One statement of a BATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchQuery {
    Query(String),
    Prepared(Bytes),
}

/// A statement of a BATCH with its positional values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub query: BatchQuery,
    pub values: Vec<Value>,
}

/// A decoded BATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: BatchKind,
    pub statements: Vec<BatchStatement>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}

mod query_flags {
    pub const VALUES: u8 = 0x01;
    pub const SKIP_METADATA: u8 = 0x02;
    pub const PAGE_SIZE: u8 = 0x04;
    pub const PAGING_STATE: u8 = 0x08;
    pub const SERIAL_CONSISTENCY: u8 = 0x10;
    pub const TIMESTAMP: u8 = 0x20;
    pub const NAMES: u8 = 0x40;
}

/// Smallest encoding of one [value] (its length), to bound preallocation.
const MIN_VALUE_BYTES: usize = 4;

impl Request {
    /// Decodes the body of a request frame of `opcode` for protocol `version`.
    pub fn decode(version: u8, opcode: Opcode, body: Bytes) -> Result<Self, FrameError> {
        let mut r = Reader::new(body);
        let request = match opcode {
            Opcode::Startup => Self::Startup(r.read_string_map("STARTUP options")?),
            Opcode::AuthResponse => Self::AuthResponse(r.read_bytes("auth token")?),
            Opcode::Options => Self::Options,
            Opcode::Query => Self::Query {
                query: r.read_long_string("query")?,
                params: QueryParameters::decode(version, &mut r)?,
            },
            Opcode::Prepare => Self::Prepare {
                query: r.read_long_string("query")?,
            },
            Opcode::Execute => Self::Execute {
                id: r.read_short_bytes("prepared id")?,
                params: QueryParameters::decode(version, &mut r)?,
            },
            Opcode::Batch => Self::Batch(Batch::decode(version, &mut r)?),
            Opcode::Register => Self::Register(r.read_string_list("event types")?),
            other => {
                return Err(FrameError::NotARequestOpcode {
                    opcode: other as u8,
                })
            }
        };
        Ok(request)
    }
}

impl QueryParameters {
    /// Reads <query_parameters>.
    pub fn decode(version: u8, r: &mut Reader) -> Result<Self, FrameError> {
        let consistency = r.read_consistency("consistency")?;
        let flags = r.read_u8("query flags")?;
        let values = if flags & query_flags::VALUES != 0 {
            decode_values(version, r, flags & query_flags::NAMES != 0)?
        } else {
            Values::Positional(Vec::new())
        };
        let page_size = (flags & query_flags::PAGE_SIZE != 0)
            .then(|| r.read_int("page size"))
            .transpose()?;
        let paging_state = if flags & query_flags::PAGING_STATE != 0 {
            r.read_bytes("paging state")?
        } else {
            None
        };
        let (serial_consistency, timestamp) = decode_serial_and_timestamp(r, flags)?;
        Ok(Self {
            consistency,
            values,
            skip_metadata: flags & query_flags::SKIP_METADATA != 0,
            page_size,
            paging_state,
            serial_consistency,
            timestamp,
        })
    }
}

fn decode_values(version: u8, r: &mut Reader, named: bool) -> Result<Values, FrameError> {
    let n = usize::from(r.read_short("value count")?);
    if named {
        let mut values = Vec::with_capacity(n.min(r.remaining() / (MIN_VALUE_BYTES + 2)));
        for _ in 0..n {
            let name = r.read_string("value name")?;
            values.push((name, r.read_value(version)?));
        }
        return Ok(Values::Named(values));
    }
    decode_positional(version, r, n).map(Values::Positional)
}

fn decode_positional(version: u8, r: &mut Reader, n: usize) -> Result<Vec<Value>, FrameError> {
    let mut values = Vec::with_capacity(n.min(r.remaining() / MIN_VALUE_BYTES));
    for _ in 0..n {
        values.push(r.read_value(version)?);
    }
    Ok(values)
}

fn decode_serial_and_timestamp(
    r: &mut Reader,
    flags: u8,
) -> Result<(Option<Consistency>, Option<i64>), FrameError> {
    let serial = (flags & query_flags::SERIAL_CONSISTENCY != 0)
        .then(|| r.read_consistency("serial consistency"))
        .transpose()?;
    let timestamp = (flags & query_flags::TIMESTAMP != 0)
        .then(|| r.read_long("timestamp"))
        .transpose()?;
    if timestamp == Some(i64::MIN) {
        return Err(FrameError::InvalidTimestamp);
    }
    Ok((serial, timestamp))
}

impl Batch {
    /// Reads a BATCH body.
    pub fn decode(version: u8, r: &mut Reader) -> Result<Self, FrameError> {
        let kind = match r.read_u8("batch type")? {
            0 => BatchKind::Logged,
            1 => BatchKind::Unlogged,
            2 => BatchKind::Counter,
            kind => return Err(FrameError::InvalidBatchKind { kind }),
        };
        let n = usize::from(r.read_short("batch size")?);
        // Each statement takes at least kind (1) + short bytes (2) + count (2).
        let mut raw = Vec::with_capacity(n.min(r.remaining() / 5));
        for _ in 0..n {
            raw.push(decode_batch_statement(version, r)?);
        }
        let consistency = r.read_consistency("consistency")?;
        let flags = r.read_u8("batch flags")?;
        // Names cannot be resolved per statement as the protocol lays them out
        // (the spec itself says so), so they are refused rather than misbound.
        if flags & query_flags::NAMES != 0 {
            return Err(FrameError::BatchNamedValues);
        }
        let (serial_consistency, timestamp) = decode_serial_and_timestamp(r, flags)?;
        Ok(Self {
            kind,
            statements: raw,
            consistency,
            serial_consistency,
            timestamp,
        })
    }
}

fn decode_batch_statement(version: u8, r: &mut Reader) -> Result<BatchStatement, FrameError> {
    let query = match r.read_u8("batch query kind")? {
        0 => BatchQuery::Query(r.read_long_string("batch query")?),
        1 => BatchQuery::Prepared(r.read_short_bytes("batch prepared id")?),
        kind => return Err(FrameError::InvalidBatchQueryKind { kind }),
    };
    let n = usize::from(r.read_short("batch value count")?);
    let values = decode_positional(version, r, n)?;
    Ok(BatchStatement { query, values })
}
