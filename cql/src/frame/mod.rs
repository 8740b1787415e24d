//! CQL native protocol frames, versions 3 and 4, server side.
//!
//! This module owns the bytes on the wire and nothing else: it has no IO, no
//! statement logic and no schema. A connection uses it in four steps:
//!
//! 1. [`FrameDecoder::decode`] pulls whole request frames out of the socket's
//!    read buffer, enforcing the frame size limit before a body is buffered and
//!    undoing lz4 compression once STARTUP negotiated it.
//! 2. [`Request::decode`] turns a frame body into a typed request. Bound values
//!    and ids are `Bytes` views of the body: decoding an EXECUTE allocates one
//!    `Vec` for its values and copies no value.
//! 3. The executor builds a [`Response`]; rows are written cell by cell with a
//!    [`RowsWriter`] straight into their wire form.
//! 4. [`encode_response`] writes the whole response frame (header, warnings,
//!    body, compression) into the connection's output buffer.
//!
//! Errors are one [`FrameError`] enum. [`FrameError::scope`] says whether the
//! connection can answer on a stream and go on, must answer and close, or must
//! just close; [`FrameError::to_response`] gives the ERROR body to send.
//!
//! ```
//! use bytes::BytesMut;
//! use cql::frame::{encode_response, ErrorScope, FrameDecoder, Request, Response};
//!
//! let mut decoder = FrameDecoder::new(256 << 20);
//! // An OPTIONS request on stream 1, as read from a socket.
//! let mut input = BytesMut::from(&[0x04, 0, 0, 1, 0x05, 0, 0, 0, 0][..]);
//! let mut output = BytesMut::new();
//! loop {
//!     match decoder.decode(&mut input) {
//!         Ok(Some(frame)) => {
//!             let request = Request::decode(frame.version, frame.opcode, frame.body);
//!             assert_eq!(request, Ok(Request::Options));
//!             let supported = Response::Supported(vec![("COMPRESSION".into(), vec!["lz4".into()])]);
//!             encode_response(&mut output, frame.version, frame.stream, &supported, &[], None);
//!         }
//!         Ok(None) => break, // read more from the socket
//!         Err(e) => match e.scope() {
//!             ErrorScope::Stream { stream, version } => {
//!                 let error = Response::Error(e.to_response());
//!                 encode_response(&mut output, version, stream, &error, &[], None);
//!             }
//!             _ => break, // answer if asked to, then close
//!         },
//!     }
//! }
//! assert_eq!(output[0], 0x84);
//! ```
//!
//! Why our own codec: it is the hot path of every request and the existing
//! crates either allocate per value or are client-side only.

mod decoder;
mod error;
mod header;
pub mod primitives;
mod request;
mod response;
mod result;
mod types;

pub use decoder::{Compression, FrameDecoder, RequestFrame};
pub use error::{ErrorScope, FrameError};
pub use header::{
    answer_version, flags, header_len, FrameHeader, Opcode, HEADER_LEN, LEGACY_HEADER_LEN,
    MAX_VERSION, MIN_VERSION, RESPONSE_BIT,
};
pub use primitives::{BytesMap, Value};
pub use request::{Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, Values};
pub use response::{
    encode_response, encode_response_frame, ErrorCode, ErrorDetail, ErrorResponse, Event, Response,
    ResponseFrame, StatusChangeType, TopologyChangeType,
};
pub use result::{
    ColumnSpec, Prepared, PreparedMetadata, ResultMetadata, ResultResponse, Rows, RowsWriter,
    SchemaChange, SchemaChangeTarget, SchemaChangeType,
};
pub use types::{ColumnType, Consistency};
