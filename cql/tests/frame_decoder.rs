//! FrameDecoder: splitting, limits, versions, compression, custom payloads.

use bytes::{BufMut, Bytes, BytesMut};
use cql::frame::{
    flags, Compression, ErrorCode, ErrorScope, FrameDecoder, FrameError, Opcode, RequestFrame,
};

fn frame(version: u8, frame_flags: u8, stream: i16, opcode: u8, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(version);
    out.put_u8(frame_flags);
    out.put_i16(stream);
    out.put_u8(opcode);
    out.put_u32(u32::try_from(body.len()).expect("small"));
    out.put_slice(body);
    out
}

fn options(stream: i16) -> BytesMut {
    frame(4, 0, stream, Opcode::Options as u8, &[])
}

fn decode_one(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> RequestFrame {
    decoder
        .decode(buf)
        .expect("valid frame")
        .expect("complete frame")
}

#[test]
fn splits_back_to_back_frames_and_waits_for_partial_ones() {
    let mut decoder = FrameDecoder::new(1024);
    let mut wire = options(1);
    wire.extend_from_slice(&frame(4, 0, 2, Opcode::Prepare as u8, b"\0\0\0\x01x"));
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    // Feed one byte at a time: every prefix must be handled.
    for byte in wire.iter() {
        buf.put_u8(*byte);
        while let Some(f) = decoder.decode(&mut buf).expect("valid frames") {
            got.push(f);
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].stream, got[0].opcode), (1, Opcode::Options));
    assert_eq!((got[1].stream, got[1].opcode), (2, Opcode::Prepare));
    assert_eq!(&got[1].body[..], b"\0\0\0\x01x");
    assert!(buf.is_empty());
    assert_eq!(decoder.version(), Some(4));
}

#[test]
fn oversize_frame_errors_before_body_and_is_skipped_across_reads() {
    let mut decoder = FrameDecoder::new(16);
    let body = vec![0xAB; 100];
    let big = frame(4, 0, 7, Opcode::Query as u8, &body);
    let mut buf = BytesMut::from(&big[..9 + 10]);
    let err = decoder.decode(&mut buf).expect_err("too large");
    assert!(matches!(
        err,
        FrameError::FrameTooLarge {
            stream: 7,
            version: 4,
            body_bytes: 100,
            max_frame_bytes: 16
        }
    ));
    assert_eq!(
        err.scope(),
        ErrorScope::Stream {
            stream: 7,
            version: 4
        }
    );
    assert_eq!(err.to_response().code, ErrorCode::Invalid);
    assert!(buf.is_empty(), "header and available body bytes consumed");
    // The rest of the body arrives in pieces, followed by a good frame.
    for chunk in big[19..].chunks(30) {
        buf.extend_from_slice(chunk);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }
    buf.extend_from_slice(&options(8));
    let next = decode_one(&mut decoder, &mut buf);
    assert_eq!((next.stream, next.opcode), (8, Opcode::Options));
}

#[test]
fn unsupported_versions_carry_stream_and_answer_version() {
    for (version, answer) in [(5u8, 4u8), (6, 4), (0x41, 4)] {
        let mut decoder = FrameDecoder::new(1024);
        let mut buf = frame(version, 0, 3, Opcode::Options as u8, &[]);
        let err = decoder.decode(&mut buf).expect_err("unsupported");
        assert_eq!(err, FrameError::UnsupportedVersion { version, stream: 3 });
        assert_eq!(
            err.scope(),
            ErrorScope::AnswerThenClose {
                stream: 3,
                version: answer
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "Invalid or unsupported protocol version ({version}); \
                 the lowest supported version is 3 and the greatest is 4"
            )
        );
        assert_eq!(err.to_response().code, ErrorCode::ProtocolError);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::DecoderClosed));
    }
    // v1/v2 headers are 8 bytes with a one-byte stream.
    let mut decoder = FrameDecoder::new(1024);
    let mut buf = BytesMut::from(&[0x02, 0, 9, 0x05, 0, 0, 0, 0][..]);
    let err = decoder.decode(&mut buf).expect_err("unsupported");
    assert_eq!(
        err.scope(),
        ErrorScope::AnswerThenClose {
            stream: 9,
            version: 2
        }
    );
}

#[test]
fn version_is_fixed_by_the_first_frame() {
    let mut decoder = FrameDecoder::new(1024);
    let mut buf = frame(3, 0, 1, Opcode::Options as u8, &[]);
    assert_eq!(decode_one(&mut decoder, &mut buf).version, 3);
    buf.extend_from_slice(&options(2));
    buf.extend_from_slice(&frame(3, 0, 3, Opcode::Options as u8, &[]));
    let err = decoder.decode(&mut buf).expect_err("mismatch");
    assert_eq!(
        err.scope(),
        ErrorScope::Stream {
            stream: 2,
            version: 3
        }
    );
    assert_eq!(decode_one(&mut decoder, &mut buf).stream, 3);
}

#[test]
fn response_direction_and_bad_opcodes_are_per_stream_errors() {
    let mut decoder = FrameDecoder::new(1024);
    let mut buf = frame(0x84, 0, 1, Opcode::Options as u8, b"xyz");
    buf.extend_from_slice(&frame(4, 0, 2, 0x04, b"ab"));
    buf.extend_from_slice(&frame(4, 0, 3, Opcode::Result as u8, b""));
    buf.extend_from_slice(&options(4));
    let e1 = decoder.decode(&mut buf).expect_err("response bit");
    assert!(matches!(e1, FrameError::NotARequest { stream: 1, .. }));
    let e2 = decoder.decode(&mut buf).expect_err("opcode 4");
    assert!(matches!(
        e2,
        FrameError::UnexpectedOpcode {
            stream: 2,
            opcode: 4,
            ..
        }
    ));
    let e3 = decoder.decode(&mut buf).expect_err("response opcode");
    assert_eq!(
        e3.scope(),
        ErrorScope::Stream {
            stream: 3,
            version: 4
        }
    );
    assert_eq!(e3.to_response().code, ErrorCode::ProtocolError);
    assert_eq!(decode_one(&mut decoder, &mut buf).stream, 4);
}

fn lz4_body(raw: &[u8]) -> Vec<u8> {
    let mut body = u32::try_from(raw.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    body.extend_from_slice(&lz4_flex::block::compress(raw));
    body
}

#[test]
fn lz4_bodies_are_decompressed_once_negotiated() {
    let raw = b"\0\0\0\x10SELECT * FROM t;".repeat(20);
    let mut decoder = FrameDecoder::new(1024);
    let mut buf = frame(
        4,
        flags::COMPRESSION,
        5,
        Opcode::Prepare as u8,
        &lz4_body(&raw),
    );
    let err = decoder.decode(&mut buf).expect_err("not negotiated");
    assert!(matches!(
        err,
        FrameError::CompressionNotNegotiated { stream: 5, .. }
    ));
    decoder.set_compression(Compression::parse("LZ4"));
    buf = frame(
        4,
        flags::COMPRESSION,
        6,
        Opcode::Prepare as u8,
        &lz4_body(&raw),
    );
    let f = decode_one(&mut decoder, &mut buf);
    assert_eq!(&f.body[..], &raw[..]);
    assert_eq!(Compression::parse("snappy"), None);
}

#[test]
fn lz4_length_prefix_is_bounded() {
    let mut decoder = FrameDecoder::new(1 << 20);
    decoder.set_compression(Some(Compression::Lz4));
    // A 9-byte body claiming 1 MiB + 1 of output.
    let mut body = ((1u32 << 20) + 1).to_be_bytes().to_vec();
    body.extend_from_slice(&[0x1f, 0, 0, 0, 0]);
    let mut buf = frame(4, flags::COMPRESSION, 1, Opcode::Query as u8, &body);
    let err = decoder.decode(&mut buf).expect_err("too large");
    assert_eq!(
        err.scope(),
        ErrorScope::Stream {
            stream: 1,
            version: 4
        }
    );
    assert!(err.to_string().contains("exceeds maximum"));
    // Within the limit but far beyond what 5 bytes of lz4 can expand to.
    let mut body = 100_000u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x1f, 0, 0, 0, 0]);
    buf.extend_from_slice(&frame(4, flags::COMPRESSION, 2, Opcode::Query as u8, &body));
    assert!(decoder.decode(&mut buf).is_err());
    // Garbage block, short prefix: errors, and the connection goes on.
    buf.extend_from_slice(&frame(
        4,
        flags::COMPRESSION,
        3,
        Opcode::Query as u8,
        b"\0\0\0\x08\xff\xff",
    ));
    buf.extend_from_slice(&frame(
        4,
        flags::COMPRESSION,
        4,
        Opcode::Query as u8,
        b"\0\0",
    ));
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(FrameError::InFrame { stream: 3, .. })
    ));
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(FrameError::InFrame { stream: 4, .. })
    ));
    buf.extend_from_slice(&options(5));
    assert_eq!(decode_one(&mut decoder, &mut buf).stream, 5);
}

#[test]
fn custom_payload_is_split_off_in_v4() {
    let mut body = BytesMut::new();
    body.put_u16(1);
    body.put_u16(3);
    body.put_slice(b"key");
    body.put_i32(2);
    body.put_slice(b"vv");
    body.put_slice(b"\0\0\0\x01q");
    let mut decoder = FrameDecoder::new(1024);
    let mut buf = frame(
        4,
        flags::CUSTOM_PAYLOAD | flags::TRACING,
        1,
        Opcode::Prepare as u8,
        &body,
    );
    let f = decode_one(&mut decoder, &mut buf);
    assert!(f.tracing());
    assert_eq!(&f.body[..], b"\0\0\0\x01q");
    assert_eq!(
        f.custom_payload,
        Some(vec![("key".to_owned(), Some(Bytes::from_static(b"vv")))])
    );
}
