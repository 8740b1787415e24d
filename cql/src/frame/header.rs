//! The frame header: version (with the direction bit), flags, stream, opcode and
//! body length.
//!
//! Versions 3 and 4 use a 9-byte header with a 2-byte stream. Versions 1 and 2
//! used 8 bytes with a 1-byte stream; we parse and write that layout only so a
//! client of those versions can read the error that tells it to upgrade.

use bytes::BufMut;

/// Length of a v3+ header.
pub const HEADER_LEN: usize = 9;
/// Length of a v1/v2 header (1-byte stream).
pub const LEGACY_HEADER_LEN: usize = 8;
/// Lowest protocol version served.
pub const MIN_VERSION: u8 = 3;
/// Highest protocol version served.
pub const MAX_VERSION: u8 = 4;
/// The version byte's top bit: set on responses.
pub const RESPONSE_BIT: u8 = 0x80;

/// Frame flag bits.
pub mod flags {
    /// The body is compressed with the negotiated algorithm.
    pub const COMPRESSION: u8 = 0x01;
    /// Request: trace this request. Response: body starts with a tracing id.
    pub const TRACING: u8 = 0x02;
    /// The body starts (after any tracing id / warnings) with a [bytes map] (v4).
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
    /// Response: body starts (after any tracing id) with a [string list] of warnings (v4).
    pub const WARNING: u8 = 0x08;
}

/// Message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

impl Opcode {
    /// The opcode for a wire byte, if it is one.
    pub fn from_u8(byte: u8) -> Option<Self> {
        let op = match byte {
            0x00 => Self::Error,
            0x01 => Self::Startup,
            0x02 => Self::Ready,
            0x03 => Self::Authenticate,
            0x05 => Self::Options,
            0x06 => Self::Supported,
            0x07 => Self::Query,
            0x08 => Self::Result,
            0x09 => Self::Prepare,
            0x0A => Self::Execute,
            0x0B => Self::Register,
            0x0C => Self::Event,
            0x0D => Self::Batch,
            0x0E => Self::AuthChallenge,
            0x0F => Self::AuthResponse,
            0x10 => Self::AuthSuccess,
            _ => return None,
        };
        Some(op)
    }

    /// Whether clients send this opcode.
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Self::Startup
                | Self::Options
                | Self::Query
                | Self::Prepare
                | Self::Execute
                | Self::Register
                | Self::Batch
                | Self::AuthResponse
        )
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version without the direction bit.
    pub version: u8,
    /// Whether the direction bit is set.
    pub is_response: bool,
    pub flags: u8,
    pub stream: i16,
    /// The raw opcode byte (validated by the caller).
    pub opcode: u8,
    pub body_len: u32,
}

/// Header length for a version: 8 bytes for v1/v2, 9 otherwise.
pub fn header_len(version: u8) -> usize {
    if matches!(version, 1 | 2) {
        LEGACY_HEADER_LEN
    } else {
        HEADER_LEN
    }
}

impl FrameHeader {
    /// Parses a header from the start of `buf`, or `None` if it is not all there.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let first = *buf.first()?;
        let version = first & !RESPONSE_BIT;
        let len = header_len(version);
        let raw = buf.get(..len)?;
        let (stream, rest) = if len == LEGACY_HEADER_LEN {
            (i16::from(i8::from_be_bytes([raw[2]])), &raw[3..])
        } else {
            (i16::from_be_bytes([raw[2], raw[3]]), &raw[4..])
        };
        Some(Self {
            version,
            is_response: first & RESPONSE_BIT != 0,
            flags: raw[1],
            stream,
            opcode: rest[0],
            body_len: u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]),
        })
    }

    /// Bytes this header occupies on the wire.
    pub fn len(&self) -> usize {
        header_len(self.version)
    }

    /// Always false: a header is never empty (clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header.
    pub fn encode(&self, out: &mut impl BufMut) {
        let direction = if self.is_response { RESPONSE_BIT } else { 0 };
        out.put_u8(self.version | direction);
        out.put_u8(self.flags);
        if self.len() == LEGACY_HEADER_LEN {
            // v1/v2 streams are one byte; only negotiation errors use this layout.
            out.put_i8(i8::try_from(self.stream).unwrap_or(0));
        } else {
            out.put_i16(self.stream);
        }
        out.put_u8(self.opcode);
        out.put_u32(self.body_len);
    }
}

/// The version to answer a client that asked for `requested`: its own if we serve
/// it or it is older than anything we serve (so it can parse the error), else our
/// highest. Drivers read the error and retry with a version we accept.
pub fn answer_version(requested: u8) -> u8 {
    requested.clamp(1, MAX_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn header_round_trips() {
        let h = FrameHeader {
            version: 4,
            is_response: true,
            flags: flags::WARNING,
            stream: -1,
            opcode: Opcode::Event as u8,
            body_len: 0x0102_0304,
        };
        let mut out = BytesMut::new();
        h.encode(&mut out);
        assert_eq!(&out[..], &[0x84, 0x08, 0xff, 0xff, 0x0C, 1, 2, 3, 4]);
        assert_eq!(FrameHeader::parse(&out), Some(h));
        assert_eq!(FrameHeader::parse(&out[..8]), None);
    }

    #[test]
    fn legacy_header_has_one_byte_stream() {
        let h = FrameHeader::parse(&[0x02, 0, 0x7f, 0x05, 0, 0, 0, 0]).expect("complete");
        assert_eq!((h.version, h.stream, h.opcode), (2, 127, 5));
        assert_eq!(h.len(), 8);
    }

    #[test]
    fn opcodes_round_trip() {
        for byte in 0..=0xff_u8 {
            if let Some(op) = Opcode::from_u8(byte) {
                assert_eq!(op as u8, byte);
            }
        }
        assert_eq!(Opcode::from_u8(0x04), None);
        assert!(Opcode::Query.is_request());
        assert!(!Opcode::Result.is_request());
    }

    #[test]
    fn answer_version_prefers_ours() {
        assert_eq!(answer_version(5), 4);
        assert_eq!(answer_version(0x41), 4);
        assert_eq!(answer_version(3), 3);
        assert_eq!(answer_version(2), 2);
        assert_eq!(answer_version(0), 1);
    }
}
