//! Property tests: no input makes the decoder or request decoding panic, and
//! how bytes are split across reads never changes what is decoded.

use bytes::{BufMut, BytesMut};
use cql::frame::{
    flags, primitives::*, Compression, Consistency, ErrorScope, FrameDecoder, Opcode, Request,
    RequestFrame,
};
use proptest::prelude::*;

/// Feeds `chunks` to a decoder, decoding every frame's request, the way a
/// connection would; returns the frames it accepted.
fn drive(chunks: &[Vec<u8>], compression: Option<Compression>) -> Vec<RequestFrame> {
    let mut decoder = FrameDecoder::new(4096);
    decoder.set_compression(compression);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        // Each turn consumes input or stops, so this is bounded by the input size.
        for _ in 0..=buf.len() {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let _ = Request::decode(frame.version, frame.opcode, frame.body.clone());
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(e) => match e.scope() {
                    ErrorScope::Stream { .. } | ErrorScope::CurrentFrame => {
                        let _ = e.to_response();
                    }
                    ErrorScope::AnswerThenClose { .. } | ErrorScope::Fatal => return frames,
                },
            }
        }
    }
    frames
}

fn frame(stream: i16, opcode: Opcode, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(4);
    out.put_u8(0);
    out.put_i16(stream);
    out.put_u8(opcode as u8);
    out.put_u32(u32::try_from(body.len()).expect("small"));
    out.put_slice(body);
    out.to_vec()
}

fn valid_frames() -> Vec<u8> {
    let mut wire = frame(0, Opcode::Options, &[]);
    let mut body = BytesMut::new();
    put_string_map(&mut body, &[("CQL_VERSION", "3.0.0")]);
    wire.extend(frame(1, Opcode::Startup, &body));
    let mut body = BytesMut::new();
    put_long_string(&mut body, "SELECT * FROM t WHERE k = ?");
    put_short(&mut body, Consistency::One.code());
    body.put_u8(0x05);
    put_short(&mut body, 1);
    put_bytes(&mut body, Some(b"key"));
    put_int(&mut body, 100);
    wire.extend(frame(2, Opcode::Query, &body));
    let mut body = BytesMut::new();
    put_short_bytes(&mut body, &[1; 16]);
    put_short(&mut body, Consistency::Quorum.code());
    body.put_u8(0);
    wire.extend(frame(3, Opcode::Execute, &body));
    wire
}

fn split(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(data[last..p].to_vec());
        last = p;
    }
    chunks.push(data[last..].to_vec());
    chunks
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        lz4 in any::<bool>(),
    ) {
        drive(&split(&data, &cuts), lz4.then_some(Compression::Lz4));
    }

    #[test]
    fn header_like_prefixes_never_panic(
        version in prop_oneof![Just(3u8), Just(4u8), any::<u8>()],
        frame_flags in 0u8..16,
        opcode in 0u8..20,
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut wire = vec![version, frame_flags, 0, 1, opcode];
        wire.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
        wire.extend_from_slice(&body);
        drive(&[wire], Some(Compression::Lz4));
    }

    #[test]
    fn request_bodies_never_panic(
        version in 3u8..=4,
        opcode in prop::sample::select(vec![
            Opcode::Startup, Opcode::Options, Opcode::Query, Opcode::Prepare,
            Opcode::Execute, Opcode::Batch, Opcode::Register, Opcode::AuthResponse,
        ]),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = Request::decode(version, opcode, body.into());
    }

    #[test]
    fn splits_do_not_change_decoding(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let wire = valid_frames();
        let whole = drive(std::slice::from_ref(&wire), None);
        prop_assert_eq!(whole.len(), 4);
        let pieces = drive(&split(&wire, &cuts), None);
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn compressed_frames_survive_splits(
        text in "[a-z ]{0,300}",
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut body = BytesMut::new();
        put_long_string(&mut body, &text);
        let mut compressed = u32::try_from(body.len()).expect("small").to_be_bytes().to_vec();
        compressed.extend(lz4_flex::block::compress(&body));
        let mut wire = frame(9, Opcode::Prepare, &compressed);
        wire[1] = flags::COMPRESSION;
        let frames = drive(&split(&wire, &cuts), Some(Compression::Lz4));
        prop_assert_eq!(frames.len(), 1);
        let request = Request::decode(4, Opcode::Prepare, frames[0].body.clone());
        prop_assert_eq!(request, Ok(Request::Prepare { query: text }));
    }
}
