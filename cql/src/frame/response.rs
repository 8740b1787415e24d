//! Response messages and the frame encoder.
//!
//! [`encode_response`] writes a whole frame into the connection's output
//! buffer in one pass: a header placeholder, the optional tracing id and
//! warnings, the body, then (if asked) the body is replaced by its lz4 form and
//! the header is filled in with the final flags and length.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::decoder::{compress_lz4, Compression};
use super::header::{flags, header_len, FrameHeader, Opcode};
use super::primitives::{
    put_bytes, put_consistency, put_inet, put_int, put_short_bytes, put_string, put_string_list,
    put_string_multimap,
};
use super::result::{ResultResponse, SchemaChange};
use super::types::Consistency;

/// A server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Error(ErrorResponse),
    Ready,
    /// The authenticator's class name.
    Authenticate(String),
    /// STARTUP options and their accepted values.
    Supported(Vec<(String, Vec<String>)>),
    Result(ResultResponse),
    Event(Event),
    AuthChallenge(Option<Bytes>),
    AuthSuccess(Option<Bytes>),
}

/// CQL error codes (v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    ServerError = 0x0000,
    ProtocolError = 0x000A,
    BadCredentials = 0x0100,
    Unavailable = 0x1000,
    Overloaded = 0x1001,
    IsBootstrapping = 0x1002,
    TruncateError = 0x1003,
    WriteTimeout = 0x1100,
    ReadTimeout = 0x1200,
    ReadFailure = 0x1300,
    FunctionFailure = 0x1400,
    WriteFailure = 0x1500,
    SyntaxError = 0x2000,
    Unauthorized = 0x2100,
    Invalid = 0x2200,
    ConfigError = 0x2300,
    AlreadyExists = 0x2400,
    Unprepared = 0x2500,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 18] = [
        Self::ServerError,
        Self::ProtocolError,
        Self::BadCredentials,
        Self::Unavailable,
        Self::Overloaded,
        Self::IsBootstrapping,
        Self::TruncateError,
        Self::WriteTimeout,
        Self::ReadTimeout,
        Self::ReadFailure,
        Self::FunctionFailure,
        Self::WriteFailure,
        Self::SyntaxError,
        Self::Unauthorized,
        Self::Invalid,
        Self::ConfigError,
        Self::AlreadyExists,
        Self::Unprepared,
    ];

    /// The wire code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The error for a wire code, if it is one.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The extra fields some errors carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDetail {
    None,
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        /// SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER, BATCH_LOG, CAS, ...
        write_type: String,
    },
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    ReadFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        data_present: bool,
    },
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        write_type: String,
    },
    FunctionFailure {
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
    },
    AlreadyExists {
        keyspace: String,
        /// Empty when a keyspace already exists.
        table: String,
    },
    Unprepared {
        id: Bytes,
    },
}

impl ErrorDetail {
    /// The code these fields belong to; `None` for `ErrorDetail::None`.
    pub fn code(&self) -> Option<ErrorCode> {
        let code = match self {
            Self::None => return None,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::WriteTimeout { .. } => ErrorCode::WriteTimeout,
            Self::ReadTimeout { .. } => ErrorCode::ReadTimeout,
            Self::ReadFailure { .. } => ErrorCode::ReadFailure,
            Self::WriteFailure { .. } => ErrorCode::WriteFailure,
            Self::FunctionFailure { .. } => ErrorCode::FunctionFailure,
            Self::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Self::Unprepared { .. } => ErrorCode::Unprepared,
        };
        Some(code)
    }
}

/// An ERROR message.
///
/// When `detail` is not `None` its code is what goes on the wire (the detail
/// decides the body layout, so the two cannot disagree on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub code: ErrorCode,
    pub message: String,
    pub detail: ErrorDetail,
}

impl ErrorResponse {
    /// An error without extra fields.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: ErrorDetail::None,
        }
    }

    /// An error with extra fields; the code is the detail's.
    pub fn with_detail(message: impl Into<String>, detail: ErrorDetail) -> Self {
        Self {
            code: detail.code().unwrap_or(ErrorCode::ServerError),
            message: message.into(),
            detail,
        }
    }

    /// Writes the ERROR body. Protocol v3 lacks the failure codes: read and
    /// write failures go out as the matching timeouts, function failures as
    /// Invalid, which is how v3 clients expect to see them.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        debug_assert!(
            self.detail.code().is_none_or(|c| c == self.code),
            "error code {:?} disagrees with its detail {:?}",
            self.code,
            self.detail
        );
        let code = self.detail.code().unwrap_or(self.code);
        let v3_code = match code {
            ErrorCode::ReadFailure => ErrorCode::ReadTimeout,
            ErrorCode::WriteFailure => ErrorCode::WriteTimeout,
            ErrorCode::FunctionFailure => ErrorCode::Invalid,
            other => other,
        };
        put_int(out, if version < 4 { v3_code } else { code }.code());
        put_string(out, &self.message);
        encode_detail(&self.detail, version, out);
    }
}

fn encode_detail(detail: &ErrorDetail, version: u8, out: &mut BytesMut) {
    use ErrorDetail as D;
    match detail {
        D::None => {}
        D::Unavailable {
            consistency,
            required,
            alive,
        } => {
            put_consistency(out, *consistency);
            put_int(out, *required);
            put_int(out, *alive);
        }
        D::WriteTimeout {
            consistency,
            received,
            block_for,
            write_type,
        } => {
            put_replicas(out, *consistency, *received, *block_for);
            put_string(out, write_type);
        }
        D::ReadTimeout {
            consistency,
            received,
            block_for,
            data_present,
        } => {
            put_replicas(out, *consistency, *received, *block_for);
            out.put_u8(u8::from(*data_present));
        }
        D::ReadFailure {
            consistency,
            received,
            block_for,
            num_failures,
            data_present,
        } => {
            put_replicas(out, *consistency, *received, *block_for);
            if version >= 4 {
                put_int(out, *num_failures);
            }
            out.put_u8(u8::from(*data_present));
        }
        D::WriteFailure {
            consistency,
            received,
            block_for,
            num_failures,
            write_type,
        } => {
            put_replicas(out, *consistency, *received, *block_for);
            if version >= 4 {
                put_int(out, *num_failures);
            }
            put_string(out, write_type);
        }
        D::FunctionFailure {
            keyspace,
            function,
            arg_types,
        } => {
            if version >= 4 {
                put_string(out, keyspace);
                put_string(out, function);
                put_string_list(out, arg_types);
            }
        }
        D::AlreadyExists { keyspace, table } => {
            put_string(out, keyspace);
            put_string(out, table);
        }
        D::Unprepared { id } => put_short_bytes(out, id),
    }
}

fn put_replicas(out: &mut BytesMut, consistency: Consistency, received: i32, block_for: i32) {
    put_consistency(out, consistency);
    put_int(out, received);
    put_int(out, block_for);
}

/// TOPOLOGY_CHANGE kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyChangeType {
    NewNode,
    RemovedNode,
    MovedNode,
}

impl TopologyChangeType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewNode => "NEW_NODE",
            Self::RemovedNode => "REMOVED_NODE",
            Self::MovedNode => "MOVED_NODE",
        }
    }
}

/// STATUS_CHANGE kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChangeType {
    Up,
    Down,
}

impl StatusChangeType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "UP",
            Self::Down => "DOWN",
        }
    }
}

/// A server-pushed EVENT (sent on stream -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SchemaChange(SchemaChange),
    TopologyChange {
        change: TopologyChangeType,
        addr: SocketAddr,
    },
    StatusChange {
        change: StatusChangeType,
        addr: SocketAddr,
    },
}

impl Event {
    /// The REGISTER name of this event's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::SchemaChange(_) => "SCHEMA_CHANGE",
            Self::TopologyChange { .. } => "TOPOLOGY_CHANGE",
            Self::StatusChange { .. } => "STATUS_CHANGE",
        }
    }

    /// Writes the EVENT body.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        put_string(out, self.type_name());
        match self {
            Self::SchemaChange(change) => change.encode(version, out),
            Self::TopologyChange { change, addr } => {
                put_string(out, change.as_str());
                put_inet(out, addr);
            }
            Self::StatusChange { change, addr } => {
                put_string(out, change.as_str());
                put_inet(out, addr);
            }
        }
    }
}

impl Response {
    /// The frame opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Self::Error(_) => Opcode::Error,
            Self::Ready => Opcode::Ready,
            Self::Authenticate(_) => Opcode::Authenticate,
            Self::Supported(_) => Opcode::Supported,
            Self::Result(_) => Opcode::Result,
            Self::Event(_) => Opcode::Event,
            Self::AuthChallenge(_) => Opcode::AuthChallenge,
            Self::AuthSuccess(_) => Opcode::AuthSuccess,
        }
    }

    /// Writes the body (without header, tracing id or warnings).
    pub fn encode_body(&self, version: u8, out: &mut BytesMut) {
        match self {
            Self::Error(error) => error.encode(version, out),
            Self::Ready => {}
            Self::Authenticate(class) => put_string(out, class),
            Self::Supported(options) => put_string_multimap(out, options),
            Self::Result(result) => result.encode(version, out),
            Self::Event(event) => event.encode(version, out),
            Self::AuthChallenge(token) | Self::AuthSuccess(token) => {
                put_bytes(out, token.as_deref())
            }
        }
    }
}

/// Frame-level parameters of a response.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFrame<'a> {
    /// Protocol version (the direction bit is added).
    pub version: u8,
    /// The request's stream, or -1 for events.
    pub stream: i16,
    /// Tracing session id, when the request asked for tracing.
    pub tracing_id: Option<[u8; 16]>,
    /// Warnings for the client (sent in v4 only).
    pub warnings: &'a [String],
    /// Compress the body (pass `None` for the answer to STARTUP itself).
    pub compression: Option<Compression>,
}

/// Writes a whole response frame to `out`.
pub fn encode_response(
    out: &mut BytesMut,
    version: u8,
    stream: i16,
    response: &Response,
    warnings: &[String],
    compression: Option<Compression>,
) {
    let frame = ResponseFrame {
        version,
        stream,
        tracing_id: None,
        warnings,
        compression,
    };
    encode_response_frame(out, &frame, response);
}

/// Writes a whole response frame to `out`, with every frame-level option.
pub fn encode_response_frame(out: &mut BytesMut, frame: &ResponseFrame<'_>, response: &Response) {
    let header_at = out.len();
    let body_at = header_at + header_len(frame.version);
    out.resize(body_at, 0);
    let mut frame_flags = 0;
    if let Some(id) = frame.tracing_id {
        frame_flags |= flags::TRACING;
        out.put_slice(&id);
    }
    if frame.version >= 4 && !frame.warnings.is_empty() {
        frame_flags |= flags::WARNING;
        put_string_list(out, frame.warnings);
    }
    response.encode_body(frame.version, out);
    // An empty body stays uncompressed: the flag is optional per frame, and
    // some clients choke on an lz4 block of nothing.
    if let (Some(Compression::Lz4), true) = (frame.compression, out.len() > body_at) {
        let mut compressed = BytesMut::new();
        compress_lz4(&out[body_at..], &mut compressed);
        out.truncate(body_at);
        out.extend_from_slice(&compressed);
        frame_flags |= flags::COMPRESSION;
    }
    let header = FrameHeader {
        version: frame.version,
        is_response: true,
        flags: frame_flags,
        stream: frame.stream,
        opcode: response.opcode() as u8,
        body_len: u32::try_from(out.len() - body_at).expect("response bodies stay below 4 GiB"),
    };
    header.encode(&mut &mut out[header_at..body_at]);
}
