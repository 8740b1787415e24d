//! The CQL layer's error type and its one mapping to protocol error codes.
//!
//! The code is the contract with drivers (they retry, re-prepare or give up
//! by code); the message carries the detail for the person reading it.
use bytes::Bytes;
use cluster::ProxyError;
use storage::types::TypeError;

use crate::frame::{ErrorCode, ErrorDetail, ErrorResponse};
use crate::parser::SyntaxError;

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CqlError {
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// The statement is well formed but not valid (unknown table, wrong type, ...).
    #[error("{0}")]
    Invalid(String),
    #[error("{message}")]
    AlreadyExists {
        keyspace: String,
        table: String,
        message: String,
    },
    #[error("{0}")]
    Config(String),
    /// A function failed on its arguments (e.g. `fromJson` of bad JSON).
    #[error("{message}")]
    FunctionFailure {
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
        message: String,
    },
    #[error("Prepared query with ID {} not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)", hex(.0))]
    Unprepared(Bytes),
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("Operation timed out")]
    Timeout { write: bool },
    /// The replica failed to read (a damaged SSTable, an IO error).
    #[error("Operation failed - received 0 responses and 1 failures: {0}")]
    ReadFailure(String),
    /// The replica failed to make the write durable (its commitlog failed).
    #[error("Operation failed - received 0 responses and 1 failures: {0}")]
    WriteFailure(String),
    #[error("internal error: {0}")]
    Server(String),
}

fn hex(bytes: &Bytes) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shorthand for an Invalid error.
pub fn invalid(message: impl Into<String>) -> CqlError {
    CqlError::Invalid(message.into())
}

impl From<TypeError> for CqlError {
    fn from(error: TypeError) -> Self {
        match malformed_value_type(&error) {
            Some(ty) => CqlError::Invalid(format!(
                "{error}: value is not a valid binary representation for type {ty}"
            )),
            None => CqlError::Invalid(error.to_string()),
        }
    }
}

/// The CQL type of a serialized value that failed validation, or `None`
/// when the error is about a literal or a key rather than a value's bytes.
/// Clients recognise malformed values by the "not a valid binary
/// representation" wording, so those errors carry it.
fn malformed_value_type(error: &TypeError) -> Option<String> {
    Some(match error {
        TypeError::WrongSize { cql_type, .. }
        | TypeError::Truncated { cql_type, .. }
        | TypeError::TrailingBytes { cql_type, .. }
        | TypeError::NegativeLength { cql_type, .. }
        | TypeError::TooManyFields { cql_type, .. } => cql_type.clone(),
        TypeError::InetLength { .. } => "inet".into(),
        TypeError::InvalidUtf8 { .. } => "text".into(),
        TypeError::InvalidAscii { .. } => "ascii".into(),
        TypeError::DecimalTooShort { .. } => "decimal".into(),
        TypeError::TimeuuidVersion { .. } => "timeuuid".into(),
        TypeError::TimeOutOfRange { .. } => "time".into(),
        TypeError::DurationSigns { .. } | TypeError::DurationOverflow { .. } => "duration".into(),
        _ => return None,
    })
}

impl From<ProxyError> for CqlError {
    /// A replica's failure to read or to write durably is the replica
    /// failure drivers know (`ReadFailure`, `WriteFailure`): they report it
    /// and may retry elsewhere, where a server error looks like a bug.
    fn from(error: ProxyError) -> Self {
        use storage::error::StorageError;
        match &error {
            ProxyError::Storage {
                source: StorageError::Sstable { .. },
                ..
            } => CqlError::ReadFailure(error.to_string()),
            ProxyError::Storage {
                source: StorageError::UnknownTable { .. },
                ..
            } => CqlError::Invalid(error.to_string()),
            ProxyError::Commitlog { .. } => CqlError::WriteFailure(error.to_string()),
            _ => CqlError::Server(error.to_string()),
        }
    }
}

impl CqlError {
    /// The protocol error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CqlError::Syntax(_) => ErrorCode::SyntaxError,
            CqlError::Invalid(_) => ErrorCode::Invalid,
            CqlError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            CqlError::Config(_) => ErrorCode::ConfigError,
            CqlError::FunctionFailure { .. } => ErrorCode::FunctionFailure,
            CqlError::Unprepared(_) => ErrorCode::Unprepared,
            CqlError::Protocol(_) => ErrorCode::ProtocolError,
            CqlError::Unauthorized(_) => ErrorCode::Unauthorized,
            CqlError::Timeout { write: true } => ErrorCode::WriteTimeout,
            CqlError::Timeout { write: false } => ErrorCode::ReadTimeout,
            CqlError::ReadFailure(_) => ErrorCode::ReadFailure,
            CqlError::WriteFailure(_) => ErrorCode::WriteFailure,
            CqlError::Server(_) => ErrorCode::ServerError,
        }
    }

    /// The ERROR response body for this error.
    pub fn to_response(&self) -> ErrorResponse {
        let detail = match self {
            CqlError::AlreadyExists {
                keyspace, table, ..
            } => ErrorDetail::AlreadyExists {
                keyspace: keyspace.clone(),
                table: table.clone(),
            },
            CqlError::Unprepared(id) => ErrorDetail::Unprepared { id: id.clone() },
            CqlError::FunctionFailure {
                keyspace,
                function,
                arg_types,
                ..
            } => ErrorDetail::FunctionFailure {
                keyspace: keyspace.clone(),
                function: function.clone(),
                arg_types: arg_types.clone(),
            },
            CqlError::Timeout { write: true } => ErrorDetail::WriteTimeout {
                consistency: crate::frame::Consistency::One,
                received: 0,
                block_for: 1,
                write_type: "SIMPLE".to_string(),
            },
            CqlError::Timeout { write: false } => ErrorDetail::ReadTimeout {
                consistency: crate::frame::Consistency::One,
                received: 0,
                block_for: 1,
                data_present: false,
            },
            CqlError::ReadFailure(_) => ErrorDetail::ReadFailure {
                consistency: crate::frame::Consistency::One,
                received: 0,
                block_for: 1,
                num_failures: 1,
                data_present: false,
            },
            CqlError::WriteFailure(_) => ErrorDetail::WriteFailure {
                consistency: crate::frame::Consistency::One,
                received: 0,
                block_for: 1,
                num_failures: 1,
                write_type: "SIMPLE".to_string(),
            },
            _ => ErrorDetail::None,
        };
        ErrorResponse {
            code: self.code(),
            message: self.to_string(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_name_their_type() {
        let error = CqlError::from(TypeError::InvalidAscii {
            byte: 215,
            position: 0,
        });
        assert!(error
            .to_string()
            .ends_with("not a valid binary representation for type ascii"));
        let error = CqlError::from(TypeError::WrongSize {
            cql_type: "int".into(),
            expected: 4,
            actual: 5,
        });
        assert!(error
            .to_string()
            .contains("is not a valid binary representation for type int"));
        let literal = CqlError::from(TypeError::OutOfRange {
            cql_type: "int".into(),
            literal: "1e99".into(),
        });
        assert!(!literal.to_string().contains("binary representation"));
    }
}
