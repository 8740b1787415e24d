//! Errors of the type system: malformed wire values, bad literals and
//! corrupt key encodings. Each variant carries the facts a CQL error message
//! needs; the statement layer maps them all to `Invalid` (literals) or
//! `ProtocolError`/`Invalid` (bound values).

/// A value, literal or key encoding that does not fit its CQL type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// A fixed-size value with the wrong number of bytes.
    #[error("Expected {expected} or 0 byte {cql_type} ({actual})")]
    WrongSize {
        cql_type: String,
        expected: usize,
        actual: usize,
    },
    /// An inet value that is neither 4 nor 16 bytes.
    #[error("Invalid length for inet address: expected 4 or 16 bytes, got {actual}")]
    InetLength { actual: usize },
    /// Text that is not UTF-8.
    #[error("Invalid UTF-8 in text value at byte {position}")]
    InvalidUtf8 { position: usize },
    /// An ascii value holding a byte above 127.
    #[error("Invalid byte for ascii: {byte} at position {position}")]
    InvalidAscii { byte: u8, position: usize },
    /// A decimal shorter than its 4-byte scale plus one byte of unscaled value.
    #[error("Invalid decimal: expected at least 5 bytes, got {actual}")]
    DecimalTooShort { actual: usize },
    /// A timeuuid whose version nibble is not 1.
    #[error("Invalid version for TimeUUID type: expected 1, got {version}")]
    TimeuuidVersion { version: u8 },
    /// A time of day outside `0..86_400_000_000_000` nanoseconds.
    #[error("Time value {nanos} out of range: must be between 0 and 86399999999999 nanoseconds")]
    TimeOutOfRange { nanos: i64 },
    /// A duration whose months, days and nanoseconds disagree in sign.
    #[error("The duration months, days and nanoseconds must be all of the same sign ({months}, {days}, {nanos})")]
    DurationSigns { months: i64, days: i64, nanos: i64 },
    /// A duration component out of its integer range.
    #[error("Invalid duration: the {component} value is out of range")]
    DurationOverflow { component: &'static str },
    /// A serialized value ended before a length-prefixed part.
    #[error("Not enough bytes to read {what} of {cql_type}: need {needed}, have {available}")]
    Truncated {
        cql_type: String,
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A serialized value with bytes left after its last part.
    #[error("Invalid {cql_type} value: {count} unexpected trailing bytes")]
    TrailingBytes { cql_type: String, count: usize },
    /// A negative element count or a length below -1.
    #[error("Invalid {cql_type} value: negative {what} ({value})")]
    NegativeLength {
        cql_type: String,
        what: &'static str,
        value: i32,
    },
    /// A null element inside a list, set or map.
    #[error("null is not supported inside collections")]
    NullInCollection,
    /// A tuple or UDT value with more fields than its type.
    #[error("Invalid {cql_type} value: {actual} fields but the type has {expected}")]
    TooManyFields {
        cql_type: String,
        expected: usize,
        actual: usize,
    },
    /// A literal of a kind the type never accepts (e.g. a string for an int).
    #[error("Invalid {kind} constant ({literal}) for type {cql_type}")]
    IncompatibleLiteral {
        kind: &'static str,
        literal: String,
        cql_type: String,
    },
    /// A literal of the right kind whose text does not parse.
    #[error("Unable to make {cql_type} from '{literal}': {reason}")]
    UnparsableLiteral {
        cql_type: String,
        literal: String,
        reason: String,
    },
    /// A numeric literal outside the type's range.
    #[error("Value out of range for {cql_type}: {literal}")]
    OutOfRange { cql_type: String, literal: String },
    /// A tuple literal with more elements than the tuple type.
    #[error("Invalid tuple literal: too many elements. Type {cql_type} expects {expected} but got {actual}")]
    TupleLiteralTooLong {
        cql_type: String,
        expected: usize,
        actual: usize,
    },
    /// A UDT literal naming a field the type lacks.
    #[error("Unknown field '{field}' in value of user defined type {udt}")]
    UnknownField { field: String, udt: String },
    /// A UDT literal naming a field twice.
    #[error("Duplicate field '{field}' in value of user defined type {udt}")]
    DuplicateField { field: String, udt: String },
    /// A key encoding that is truncated or otherwise not produced by `encode_key`.
    #[error("Corrupt key encoding for {cql_type}: {reason}")]
    CorruptKey {
        cql_type: String,
        reason: &'static str,
    },
}
