//! Frames built by hand: malformed, oversize, and protocol negotiation.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::TestNode;

fn frame(version: u8, stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![version, 0];
    out.extend_from_slice(&stream.to_be_bytes());
    out.push(opcode);
    out.extend_from_slice(&u32::try_from(body.len()).expect("small body").to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn startup_body() -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    for s in ["CQL_VERSION", "3.0.0"] {
        body.extend_from_slice(&u16::try_from(s.len()).expect("short").to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body
}

/// Reads one response frame: (version, stream, opcode, body).
fn read_frame(stream: &mut TcpStream) -> (u8, i16, u8, Vec<u8>) {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).expect("response header");
    let len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("response body");
    (
        header[0],
        i16::from_be_bytes([header[2], header[3]]),
        header[4],
        body,
    )
}

fn error_code(body: &[u8]) -> i32 {
    i32::from_be_bytes([body[0], body[1], body[2], body[3]])
}

fn connect(node: &TestNode) -> TcpStream {
    let stream = TcpStream::connect(node.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

const OPCODE_ERROR: u8 = 0x00;
const OPCODE_STARTUP: u8 = 0x01;
const OPCODE_READY: u8 = 0x02;
const OPCODE_OPTIONS: u8 = 0x05;
const OPCODE_SUPPORTED: u8 = 0x06;
const OPCODE_QUERY: u8 = 0x07;

#[test]
fn hand_built_frames_get_clean_answers() {
    let node = TestNode::start_with(1, &["--native-transport-max-frame-size-in-mb", "1"]);

    // Unsupported version: a protocol error, answered in a version we speak.
    let mut s = connect(&node);
    s.write_all(&frame(0x05, 3, OPCODE_OPTIONS, &[]))
        .expect("send v5");
    let (version, stream, opcode, body) = read_frame(&mut s);
    assert_eq!((stream, opcode), (3, OPCODE_ERROR));
    assert!(
        version == 0x84 || version == 0x83,
        "response version {version:#x}"
    );
    assert_eq!(error_code(&body), 0x000A);

    // OPTIONS lists shard-awareness keys.
    let mut s = connect(&node);
    s.write_all(&frame(0x04, 1, OPCODE_OPTIONS, &[]))
        .expect("send options");
    let (_, _, opcode, body) = read_frame(&mut s);
    assert_eq!(opcode, OPCODE_SUPPORTED);
    let text = String::from_utf8_lossy(&body);
    for key in [
        "SCYLLA_SHARD",
        "SCYLLA_NR_SHARDS",
        "SCYLLA_SHARDING_IGNORE_MSB",
        "SCYLLA_SHARD_AWARE_PORT",
        "COMPRESSION",
        "CQL_VERSION",
    ] {
        assert!(text.contains(key), "SUPPORTED lacks {key}: {text}");
    }

    // A malformed QUERY body gets a protocol error on its stream; the
    // connection stays usable.
    s.write_all(&frame(0x04, 2, OPCODE_STARTUP, &startup_body()))
        .expect("startup");
    let (_, stream, opcode, _) = read_frame(&mut s);
    assert_eq!((stream, opcode), (2, OPCODE_READY));
    s.write_all(&frame(0x04, 5, OPCODE_QUERY, &[0, 0, 0, 200, b'x']))
        .expect("bad query");
    let (_, stream, opcode, body) = read_frame(&mut s);
    assert_eq!((stream, opcode), (5, OPCODE_ERROR));
    assert_eq!(error_code(&body), 0x000A);

    // An oversize frame is refused from its header, before its body.
    let mut header = vec![0x04, 0];
    header.extend_from_slice(&7i16.to_be_bytes());
    header.push(OPCODE_QUERY);
    header.extend_from_slice(&(64u32 << 20).to_be_bytes());
    s.write_all(&header).expect("oversize header");
    let (_, stream, opcode, body) = read_frame(&mut s);
    assert_eq!((stream, opcode), (7, OPCODE_ERROR));
    // Invalid, not a protocol error: drivers drop a connection on protocol
    // errors, and this one stays usable.
    assert_eq!(error_code(&body), 0x2200);

    // Garbage on a fresh connection: an error or a close, never a crash.
    let mut s = connect(&node);
    let _ = s.write_all(&[0xff; 64]);
    let mut sink = [0u8; 256];
    let _ = s.read(&mut sink);

    // The node still serves.
    let mut s = connect(&node);
    s.write_all(&frame(0x04, 9, OPCODE_OPTIONS, &[]))
        .expect("options again");
    let (_, stream, opcode, _) = read_frame(&mut s);
    assert_eq!((stream, opcode), (9, OPCODE_SUPPORTED));
    assert!(
        !node.log().contains("panicked"),
        "server panicked:\n{}",
        node.log()
    );
}
