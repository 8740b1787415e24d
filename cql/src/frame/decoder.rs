//! Pulling request frames out of a connection's read buffer.
//!
//! The decoder is a small state machine over the caller's `BytesMut`:
//!
//! 1. If an earlier frame was refused, drop its body bytes as they arrive.
//! 2. Wait for a whole header; check version, size, direction, opcode and the
//!    compression flag. A refused header is consumed at once and its body is
//!    scheduled for skipping, so the error (with the stream to answer on) is
//!    returned before the body is buffered and the connection goes on.
//! 3. Wait for the whole body (reserving room for it once, bounded by the
//!    limit), split it off as `Bytes`, decompress it and strip a custom payload.
//!
//! The first accepted frame fixes the connection's protocol version.

use bytes::{Buf, Bytes, BytesMut};

use super::header::{flags, FrameHeader, Opcode, MAX_VERSION, MIN_VERSION};
use super::primitives::{BytesMap, Reader};
use super::FrameError;

/// Frame body compression negotiated by STARTUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// lz4 block format, body prefixed by its uncompressed length ([int], big-endian).
    Lz4,
}

impl Compression {
    /// Parses the STARTUP `COMPRESSION` option; `None` for algorithms we do not
    /// serve (e.g. "snappy"), which the STARTUP handler must refuse.
    pub fn parse(name: &str) -> Option<Self> {
        name.eq_ignore_ascii_case("lz4").then_some(Self::Lz4)
    }

    /// The STARTUP option value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lz4 => "lz4",
        }
    }
}

/// One decoded request frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    /// Protocol version (3 or 4).
    pub version: u8,
    /// Header flags as sent (the tracing bit is the one callers care about).
    pub flags: u8,
    pub stream: i16,
    pub opcode: Opcode,
    /// The body, decompressed, with any custom payload removed.
    pub body: Bytes,
    /// The custom payload (v4 flag 0x04), if the client sent one.
    pub custom_payload: Option<BytesMap>,
}

impl RequestFrame {
    /// Whether the client asked for tracing.
    pub fn tracing(&self) -> bool {
        self.flags & flags::TRACING != 0
    }
}

/// Stateful frame splitter for one connection.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    compression: Option<Compression>,
    version: Option<u8>,
    skip_bytes: u64,
    closed: bool,
}

/// lz4 cannot expand data by more than this factor; a larger claimed
/// uncompressed length is a lie and must not size an allocation.
const LZ4_MAX_RATIO: u64 = 255;

impl FrameDecoder {
    /// A decoder refusing bodies (compressed or not) above `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            compression: None,
            version: None,
            skip_bytes: 0,
            closed: false,
        }
    }

    /// Sets the compression negotiated by STARTUP. It applies to frames decoded
    /// after the call, so call it before decoding the frame after STARTUP
    /// (drivers wait for READY before sending more, so nothing is in between).
    pub fn set_compression(&mut self, compression: Option<Compression>) {
        self.compression = compression;
    }

    /// The connection's protocol version, once a frame has been accepted.
    pub fn version(&self) -> Option<u8> {
        self.version
    }

    /// The body size limit.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Takes the next complete frame out of `buf`, or `Ok(None)` if more bytes
    /// are needed. See [`FrameError::scope`] for what to do with an error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RequestFrame>, FrameError> {
        if self.closed {
            return Err(FrameError::DecoderClosed);
        }
        if !self.skip_pending(buf) {
            return Ok(None);
        }
        let Some(header) = FrameHeader::parse(buf) else {
            return Ok(None);
        };
        let opcode = match self.check_header(&header) {
            Ok(opcode) => opcode,
            Err(err) => {
                self.refuse(buf, &header, &err);
                return Err(err);
            }
        };
        let frame_len = header.len() + header.body_len as usize;
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        buf.advance(header.len());
        let body = buf.split_to(header.body_len as usize).freeze();
        self.version = Some(header.version);
        self.finish_frame(&header, opcode, body)
            .map(Some)
            .map_err(|source| FrameError::InFrame {
                version: header.version,
                stream: header.stream,
                source: Box::new(source),
            })
    }

    /// Drops body bytes of a refused frame; true when none are left to drop.
    fn skip_pending(&mut self, buf: &mut BytesMut) -> bool {
        let n = usize::try_from(self.skip_bytes)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        buf.advance(n);
        self.skip_bytes -= n as u64;
        self.skip_bytes == 0
    }

    /// Consumes a refused frame's header and arranges to skip its body, or
    /// closes the decoder when the header itself cannot be trusted.
    fn refuse(&mut self, buf: &mut BytesMut, header: &FrameHeader, err: &FrameError) {
        if matches!(err, FrameError::UnsupportedVersion { .. }) {
            self.closed = true;
            return;
        }
        buf.advance(header.len());
        self.skip_bytes = u64::from(header.body_len);
        self.skip_pending(buf);
    }

    fn check_header(&self, header: &FrameHeader) -> Result<Opcode, FrameError> {
        let (version, stream) = (header.version, header.stream);
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            return Err(FrameError::UnsupportedVersion { version, stream });
        }
        if let Some(negotiated) = self.version.filter(|v| *v != version) {
            return Err(FrameError::VersionMismatch {
                version: negotiated,
                got: version,
                stream,
            });
        }
        if header.body_len as usize > self.max_frame_bytes {
            return Err(FrameError::FrameTooLarge {
                version,
                stream,
                body_bytes: u64::from(header.body_len),
                max_frame_bytes: self.max_frame_bytes,
            });
        }
        if header.is_response {
            return Err(FrameError::NotARequest { version, stream });
        }
        let opcode = Opcode::from_u8(header.opcode)
            .filter(|op| op.is_request())
            .ok_or(FrameError::UnexpectedOpcode {
                version,
                stream,
                opcode: header.opcode,
            })?;
        if header.flags & flags::COMPRESSION != 0 && self.compression.is_none() {
            return Err(FrameError::CompressionNotNegotiated { version, stream });
        }
        Ok(opcode)
    }

    fn finish_frame(
        &self,
        header: &FrameHeader,
        opcode: Opcode,
        mut body: Bytes,
    ) -> Result<RequestFrame, FrameError> {
        if header.flags & flags::COMPRESSION != 0 {
            body = decompress_lz4(&body, self.max_frame_bytes)?;
        }
        let mut custom_payload = None;
        if header.flags & flags::CUSTOM_PAYLOAD != 0 && header.version >= 4 {
            let mut reader = Reader::new(body);
            custom_payload = Some(reader.read_bytes_map("custom payload")?);
            body = reader.into_rest();
        }
        Ok(RequestFrame {
            version: header.version,
            flags: header.flags,
            stream: header.stream,
            opcode,
            body,
            custom_payload,
        })
    }
}

/// Undoes lz4 body compression: a big-endian u32 uncompressed length, then an
/// lz4 block. The claimed length is checked against the limit and against the
/// most lz4 can expand the input before anything is allocated.
pub(crate) fn decompress_lz4(body: &[u8], max_frame_bytes: usize) -> Result<Bytes, FrameError> {
    let Some((prefix, block)) = body.split_first_chunk::<4>() else {
        return Err(FrameError::Decompression {
            reason: format!("{} bytes is too short for the length prefix", body.len()),
        });
    };
    let length = u64::from(u32::from_be_bytes(*prefix));
    if length > max_frame_bytes as u64 {
        return Err(FrameError::DecompressedTooLarge {
            length,
            max_frame_bytes,
        });
    }
    if length > (block.len() as u64 + 1) * LZ4_MAX_RATIO {
        return Err(FrameError::Decompression {
            reason: format!(
                "{length} bytes cannot come from a {}-byte block",
                block.len()
            ),
        });
    }
    let mut out = vec![0u8; usize::try_from(length).unwrap_or(0)];
    let written = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| {
        FrameError::Decompression {
            reason: e.to_string(),
        }
    })?;
    if written as u64 != length {
        return Err(FrameError::Decompression {
            reason: format!("block holds {written} bytes, prefix says {length}"),
        });
    }
    Ok(Bytes::from(out))
}

/// Compresses `body` for a frame: u32 length prefix, then an lz4 block.
pub(crate) fn compress_lz4(body: &[u8], out: &mut BytesMut) {
    let length = u32::try_from(body.len()).expect("frame bodies stay below 4 GiB");
    out.extend_from_slice(&length.to_be_bytes());
    let start = out.len();
    out.resize(
        start + lz4_flex::block::get_maximum_output_size(body.len()),
        0,
    );
    let written = lz4_flex::block::compress_into(body, &mut out[start..])
        .expect("output sized by get_maximum_output_size");
    out.truncate(start + written);
}
