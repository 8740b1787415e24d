//! The frame layer's error type and what a connection should do about each error.

use super::header::{answer_version, MAX_VERSION, MIN_VERSION};
use super::response::{ErrorCode, ErrorDetail, ErrorResponse};

/// Everything that can be wrong with a frame or a body, with the facts needed
/// to answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("Invalid or unsupported protocol version ({version}); the lowest supported version is {MIN_VERSION} and the greatest is {MAX_VERSION}")]
    UnsupportedVersion { version: u8, stream: i16 },
    #[error(
        "Request is too big: length {body_bytes} exceeds maximum allowed length {max_frame_bytes}"
    )]
    FrameTooLarge {
        version: u8,
        stream: i16,
        body_bytes: u64,
        max_frame_bytes: usize,
    },
    #[error("Received a response frame (direction bit set) from a client")]
    NotARequest { version: u8, stream: i16 },
    #[error("Opcode 0x{opcode:02X} is not a request opcode")]
    UnexpectedOpcode {
        version: u8,
        stream: i16,
        opcode: u8,
    },
    #[error("Invalid message version. Got {got} but previous messages on this connection had version {version}")]
    VersionMismatch { version: u8, got: u8, stream: i16 },
    #[error("Compressed frame received but no compression was negotiated")]
    CompressionNotNegotiated { version: u8, stream: i16 },
    #[error("{source}")]
    InFrame {
        version: u8,
        stream: i16,
        source: Box<FrameError>,
    },
    #[error("Opcode 0x{opcode:02X} is not a request opcode")]
    NotARequestOpcode { opcode: u8 },
    #[error("Frame decoder was closed by an earlier fatal error")]
    DecoderClosed,

    #[error("Not enough bytes to read {what}: needed {needed}, {remaining} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("Negative length {length} for {what}")]
    NegativeLength { what: &'static str, length: i32 },
    #[error("Invalid UTF-8 in {what}")]
    InvalidUtf8 { what: &'static str },
    #[error("Invalid value length {length} for protocol version {version}")]
    InvalidValueLength { length: i32, version: u8 },
    #[error("Invalid inet address size {size}")]
    InvalidInetSize { size: u8 },
    #[error("Invalid inet port {port}")]
    InvalidPort { port: i32 },
    #[error("Unknown consistency level code 0x{code:04X}")]
    InvalidConsistency { code: u16 },
    #[error("Unknown type option id 0x{id:04X}")]
    UnknownTypeId { id: u16 },
    #[error("Type option nested too deeply")]
    TypeTooDeep,
    #[error("Invalid BATCH type {kind}")]
    InvalidBatchKind { kind: u8 },
    #[error("Invalid query kind {kind} in BATCH; must be 0 or 1")]
    InvalidBatchQueryKind { kind: u8 },
    #[error("Names for values are not supported in BATCH")]
    BatchNamedValues,
    #[error("Out of bound timestamp, must be in [-9223372036854775807, 9223372036854775807]")]
    InvalidTimestamp,
    #[error("Invalid compressed body: {reason}")]
    Decompression { reason: String },
    #[error(
        "Decompressed body of {length} bytes exceeds maximum allowed length {max_frame_bytes}"
    )]
    DecompressedTooLarge { length: u64, max_frame_bytes: usize },
    #[error("Row has {got} values but the result has {expected} columns")]
    RowWidth { expected: usize, got: usize },
}

/// What a connection should do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorScope {
    /// Answer `to_response()` on `stream` with `version`, then keep reading:
    /// the decoder has skipped (or is skipping) the offending frame.
    Stream { stream: i16, version: u8 },
    /// Answer on `stream` with `version`, then close the connection. Used for
    /// unsupported versions: drivers read the message and reconnect lower.
    AnswerThenClose { stream: i16, version: u8 },
    /// An error in a body handed to `Request::decode` (or built by a writer):
    /// answer on the stream of the frame being handled and keep reading.
    CurrentFrame,
    /// Close without answering.
    Fatal,
}

impl FrameError {
    /// What the connection should do.
    pub fn scope(&self) -> ErrorScope {
        match *self {
            Self::UnsupportedVersion { version, stream } => ErrorScope::AnswerThenClose {
                stream,
                version: answer_version(version),
            },
            Self::FrameTooLarge {
                version, stream, ..
            }
            | Self::NotARequest { version, stream }
            | Self::UnexpectedOpcode {
                version, stream, ..
            }
            | Self::VersionMismatch {
                version, stream, ..
            }
            | Self::CompressionNotNegotiated { version, stream }
            | Self::InFrame {
                version, stream, ..
            } => ErrorScope::Stream { stream, version },
            Self::DecoderClosed => ErrorScope::Fatal,
            _ => ErrorScope::CurrentFrame,
        }
    }

    /// The CQL error code. A too-large frame is `Invalid` rather than
    /// `ProtocolError` because drivers drop the connection on protocol errors,
    /// and this one leaves the connection usable.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::FrameTooLarge { .. } | Self::DecompressedTooLarge { .. } => ErrorCode::Invalid,
            Self::RowWidth { .. } => ErrorCode::ServerError,
            Self::InFrame { source, .. } => source.error_code(),
            _ => ErrorCode::ProtocolError,
        }
    }

    /// The ERROR response to send for this error.
    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse {
            code: self.error_code(),
            message: self.to_string(),
            detail: ErrorDetail::None,
        }
    }
}
