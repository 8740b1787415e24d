//! Fuzzes the CQL frame decoder and request decoding with arbitrary input.
//!
//! The first byte picks options (lz4 negotiated, frame size limit) and how the
//! rest is split into reads; the remaining bytes are the connection's input.
//! Any panic is a bug: hostile bytes must only ever produce `FrameError`s.
#![no_main]

use bytes::BytesMut;
use cql::frame::{Compression, ErrorScope, FrameDecoder, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, input)) = data.split_first() else {
        return;
    };
    let max_frame_bytes = if options & 0x01 != 0 { 64 } else { 1 << 16 };
    let mut decoder = FrameDecoder::new(max_frame_bytes);
    if options & 0x02 != 0 {
        decoder.set_compression(Some(Compression::Lz4));
    }
    let chunk = usize::from(options >> 2).max(1);
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(e) = Request::decode(frame.version, frame.opcode, frame.body) {
                        let _ = e.to_response();
                    }
                }
                Ok(None) => break,
                Err(e) => match e.scope() {
                    ErrorScope::Stream { .. } | ErrorScope::CurrentFrame => {
                        let _ = e.to_response();
                    }
                    ErrorScope::AnswerThenClose { .. } | ErrorScope::Fatal => return,
                },
            }
        }
    }
});
