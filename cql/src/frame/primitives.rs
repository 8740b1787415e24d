//! The protocol's primitive notations ([int], [string], [bytes], [value], ...).
//!
//! Reads go through [`Reader`], a cursor over a frame body held as `Bytes`: every
//! length is checked against what is left before anything is taken, and byte
//! slices are handed out as `Bytes` views of the body (a reference-count bump, no
//! copy). Counts read from the wire never size an allocation beyond what the
//! remaining bytes could possibly hold, so a tiny body cannot ask for a huge `Vec`.
//!
//! Writes are infallible helpers over `BytesMut`. They encode server-made data
//! only; a length that does not fit its prefix is clamped (strings cut at a char
//! boundary, lists shortened) so the output always stays well-formed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::types::Consistency;
use super::FrameError;

/// A bounds-checked cursor over a frame body.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The unread rest, consuming the reader.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    fn need(&self, what: &'static str, needed: usize) -> Result<(), FrameError> {
        if self.buf.len() < needed {
            return Err(FrameError::Truncated {
                what,
                needed,
                remaining: self.buf.len(),
            });
        }
        Ok(())
    }

    /// A [byte].
    pub fn read_u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        self.need(what, 1)?;
        Ok(self.buf.get_u8())
    }

    /// A [short] (unsigned).
    pub fn read_short(&mut self, what: &'static str) -> Result<u16, FrameError> {
        self.need(what, 2)?;
        Ok(self.buf.get_u16())
    }

    /// An [int].
    pub fn read_int(&mut self, what: &'static str) -> Result<i32, FrameError> {
        self.need(what, 4)?;
        Ok(self.buf.get_i32())
    }

    /// A [long].
    pub fn read_long(&mut self, what: &'static str) -> Result<i64, FrameError> {
        self.need(what, 8)?;
        Ok(self.buf.get_i64())
    }

    /// `n` raw bytes as a view of the body.
    pub fn read_raw(&mut self, what: &'static str, n: usize) -> Result<Bytes, FrameError> {
        self.need(what, n)?;
        Ok(self.buf.split_to(n))
    }

    /// A [string].
    pub fn read_string(&mut self, what: &'static str) -> Result<String, FrameError> {
        let n = usize::from(self.read_short(what)?);
        let raw = self.read_raw(what, n)?;
        utf8(what, &raw)
    }

    /// A [long string].
    pub fn read_long_string(&mut self, what: &'static str) -> Result<String, FrameError> {
        let n = self.read_int(what)?;
        let n = usize::try_from(n).map_err(|_| FrameError::NegativeLength { what, length: n })?;
        let raw = self.read_raw(what, n)?;
        utf8(what, &raw)
    }

    /// A [bytes]: `None` for a negative length (null).
    pub fn read_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, FrameError> {
        let n = self.read_int(what)?;
        match usize::try_from(n) {
            Ok(n) => self.read_raw(what, n).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A [short bytes].
    pub fn read_short_bytes(&mut self, what: &'static str) -> Result<Bytes, FrameError> {
        let n = usize::from(self.read_short(what)?);
        self.read_raw(what, n)
    }

    /// A [value]: -1 is null, -2 is "not set" (protocol v4 and later only).
    pub fn read_value(&mut self, version: u8) -> Result<Value, FrameError> {
        let n = self.read_int("value")?;
        match n {
            -1 => Ok(Value::Null),
            -2 if version >= 4 => Ok(Value::Unset),
            n if n < 0 => Err(FrameError::InvalidValueLength { length: n, version }),
            n => {
                let n = usize::try_from(n).expect("non-negative i32 fits usize");
                self.read_raw("value", n).map(Value::Bytes)
            }
        }
    }

    /// A [string list].
    pub fn read_string_list(&mut self, what: &'static str) -> Result<Vec<String>, FrameError> {
        let n = usize::from(self.read_short(what)?);
        let mut list = Vec::with_capacity(n.min(self.remaining() / 2));
        for _ in 0..n {
            list.push(self.read_string(what)?);
        }
        Ok(list)
    }

    /// A [string map], in wire order.
    pub fn read_string_map(
        &mut self,
        what: &'static str,
    ) -> Result<Vec<(String, String)>, FrameError> {
        let n = usize::from(self.read_short(what)?);
        let mut map = Vec::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            let key = self.read_string(what)?;
            map.push((key, self.read_string(what)?));
        }
        Ok(map)
    }

    /// A [string multimap], in wire order.
    pub fn read_string_multimap(
        &mut self,
        what: &'static str,
    ) -> Result<Vec<(String, Vec<String>)>, FrameError> {
        let n = usize::from(self.read_short(what)?);
        let mut map = Vec::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            let key = self.read_string(what)?;
            map.push((key, self.read_string_list(what)?));
        }
        Ok(map)
    }

    /// A [bytes map], in wire order.
    pub fn read_bytes_map(&mut self, what: &'static str) -> Result<BytesMap, FrameError> {
        let n = usize::from(self.read_short(what)?);
        let mut map = Vec::with_capacity(n.min(self.remaining() / 6));
        for _ in 0..n {
            let key = self.read_string(what)?;
            map.push((key, self.read_bytes(what)?));
        }
        Ok(map)
    }

    /// An [inet]: address size byte, address, [int] port.
    pub fn read_inet(&mut self, what: &'static str) -> Result<SocketAddr, FrameError> {
        let size = self.read_u8(what)?;
        let ip = match size {
            4 => {
                let raw = self.read_raw(what, 4)?;
                IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
            }
            16 => {
                let raw = self.read_raw(what, 16)?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&raw);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            size => return Err(FrameError::InvalidInetSize { size }),
        };
        let port = self.read_int(what)?;
        let port = u16::try_from(port).map_err(|_| FrameError::InvalidPort { port })?;
        Ok(SocketAddr::new(ip, port))
    }

    /// A [consistency].
    pub fn read_consistency(&mut self, what: &'static str) -> Result<Consistency, FrameError> {
        let code = self.read_short(what)?;
        Consistency::from_code(code).ok_or(FrameError::InvalidConsistency { code })
    }
}

/// A [bytes map]: keys and (possibly null) values, in wire order.
pub type BytesMap = Vec<(String, Option<Bytes>)>;

/// A bound value as sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Length -1.
    Null,
    /// Length -2 (v4): leave the column as it is.
    Unset,
    /// The serialized value, a view of the frame body.
    Bytes(Bytes),
}

fn utf8(what: &'static str, raw: &[u8]) -> Result<String, FrameError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| FrameError::InvalidUtf8 { what })
}

fn clamp_u16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn clamp_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes a [short].
pub fn put_short(out: &mut BytesMut, v: u16) {
    out.put_u16(v);
}

/// Writes an [int].
pub fn put_int(out: &mut BytesMut, v: i32) {
    out.put_i32(v);
}

/// Writes a [long].
pub fn put_long(out: &mut BytesMut, v: i64) {
    out.put_i64(v);
}

/// Writes a [string], cut to 65535 bytes at a char boundary.
pub fn put_string(out: &mut BytesMut, s: &str) {
    let s = cut(s, usize::from(u16::MAX));
    out.put_u16(clamp_u16(s.len()));
    out.put_slice(s.as_bytes());
}

/// Writes a [long string].
pub fn put_long_string(out: &mut BytesMut, s: &str) {
    let s = cut(s, usize::try_from(i32::MAX).unwrap_or(usize::MAX));
    out.put_i32(clamp_i32(s.len()));
    out.put_slice(s.as_bytes());
}

/// Writes a [bytes]; `None` is null (length -1).
pub fn put_bytes(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => out.put_i32(-1),
        Some(b) => {
            let len = clamp_i32(b.len());
            out.put_i32(len);
            out.put_slice(&b[..usize::try_from(len).unwrap_or(0)]);
        }
    }
}

/// Writes a [short bytes], clamped to 65535 bytes.
pub fn put_short_bytes(out: &mut BytesMut, b: &[u8]) {
    let len = clamp_u16(b.len());
    out.put_u16(len);
    out.put_slice(&b[..usize::from(len)]);
}

/// Writes a [value].
pub fn put_value(out: &mut BytesMut, v: &Value) {
    match v {
        Value::Null => out.put_i32(-1),
        Value::Unset => out.put_i32(-2),
        Value::Bytes(b) => put_bytes(out, Some(b)),
    }
}

/// Writes a [string list] (at most 65535 entries).
pub fn put_string_list<S: AsRef<str>>(out: &mut BytesMut, list: &[S]) {
    let n = clamp_u16(list.len());
    out.put_u16(n);
    for s in &list[..usize::from(n)] {
        put_string(out, s.as_ref());
    }
}

/// Writes a [string map].
pub fn put_string_map<K: AsRef<str>, V: AsRef<str>>(out: &mut BytesMut, map: &[(K, V)]) {
    let n = clamp_u16(map.len());
    out.put_u16(n);
    for (k, v) in &map[..usize::from(n)] {
        put_string(out, k.as_ref());
        put_string(out, v.as_ref());
    }
}

/// Writes a [string multimap].
pub fn put_string_multimap<K: AsRef<str>, V: AsRef<str>>(out: &mut BytesMut, map: &[(K, Vec<V>)]) {
    let n = clamp_u16(map.len());
    out.put_u16(n);
    for (k, v) in &map[..usize::from(n)] {
        put_string(out, k.as_ref());
        put_string_list(out, v);
    }
}

/// Writes a [bytes map].
pub fn put_bytes_map(out: &mut BytesMut, map: &[(String, Option<Bytes>)]) {
    let n = clamp_u16(map.len());
    out.put_u16(n);
    for (k, v) in &map[..usize::from(n)] {
        put_string(out, k);
        put_bytes(out, v.as_deref());
    }
}

/// Writes an [inet].
pub fn put_inet(out: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.put_u8(4);
            out.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.put_u8(16);
            out.put_slice(&ip.octets());
        }
    }
    out.put_i32(i32::from(addr.port()));
}

/// Writes a [consistency].
pub fn put_consistency(out: &mut BytesMut, c: Consistency) {
    out.put_u16(c.code());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(out: BytesMut) -> Reader {
        Reader::new(out.freeze())
    }

    #[test]
    fn primitives_round_trip() {
        let mut out = BytesMut::new();
        put_int(&mut out, -7);
        put_long(&mut out, i64::MIN + 1);
        put_string(&mut out, "héllo");
        put_long_string(&mut out, "SELECT 1");
        put_bytes(&mut out, None);
        put_bytes(&mut out, Some(b"ab"));
        put_short_bytes(&mut out, b"\x01\x02");
        put_string_list(&mut out, &["a", "b"]);
        put_string_map(&mut out, &[("k", "v")]);
        put_string_multimap(&mut out, &[("k", vec!["v1", "v2"])]);
        put_bytes_map(
            &mut out,
            &[("p".to_owned(), Some(Bytes::from_static(b"x")))],
        );
        put_inet(&mut out, &"[::1]:9042".parse().expect("literal"));
        put_inet(&mut out, &"10.0.0.1:7000".parse().expect("literal"));
        put_consistency(&mut out, Consistency::LocalQuorum);
        let mut r = reader(out);
        assert_eq!(r.read_int("i").ok(), Some(-7));
        assert_eq!(r.read_long("l").ok(), Some(i64::MIN + 1));
        assert_eq!(r.read_string("s").ok().as_deref(), Some("héllo"));
        assert_eq!(r.read_long_string("s").ok().as_deref(), Some("SELECT 1"));
        assert_eq!(r.read_bytes("b").ok(), Some(None));
        assert_eq!(
            r.read_bytes("b").ok(),
            Some(Some(Bytes::from_static(b"ab")))
        );
        assert_eq!(
            r.read_short_bytes("b").ok().as_deref(),
            Some(&b"\x01\x02"[..])
        );
        assert_eq!(
            r.read_string_list("l").ok(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            r.read_string_map("m").ok(),
            Some(vec![("k".into(), "v".into())])
        );
        let mm = r.read_string_multimap("mm").ok();
        assert_eq!(mm, Some(vec![("k".into(), vec!["v1".into(), "v2".into()])]));
        let bm = r.read_bytes_map("bm").ok();
        assert_eq!(bm, Some(vec![("p".into(), Some(Bytes::from_static(b"x")))]));
        assert_eq!(r.read_inet("a").ok(), "[::1]:9042".parse().ok());
        assert_eq!(r.read_inet("a").ok(), "10.0.0.1:7000".parse().ok());
        assert_eq!(r.read_consistency("c").ok(), Some(Consistency::LocalQuorum));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn truncated_reads_are_errors() {
        let mut r = Reader::new(Bytes::from_static(&[0, 5, b'a']));
        assert!(matches!(
            r.read_string("s"),
            Err(FrameError::Truncated {
                needed: 5,
                remaining: 1,
                ..
            })
        ));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xf0]));
        assert!(matches!(
            r.read_long_string("q"),
            Err(FrameError::NegativeLength { .. })
        ));
        let mut r = Reader::new(Bytes::from_static(&[0, 2, 0xc3, 0x28]));
        assert!(matches!(
            r.read_string("s"),
            Err(FrameError::InvalidUtf8 { .. })
        ));
        let mut r = Reader::new(Bytes::from_static(&[5, 1, 2, 3, 4, 5, 0, 0, 0, 1]));
        assert!(matches!(
            r.read_inet("a"),
            Err(FrameError::InvalidInetSize { size: 5 })
        ));
    }

    #[test]
    fn value_lengths_follow_the_version() {
        let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(
            Reader::new(body.clone()).read_value(4).ok(),
            Some(Value::Unset)
        );
        assert!(Reader::new(body).read_value(3).is_err());
        let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfd]);
        assert!(Reader::new(body).read_value(4).is_err());
        let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Reader::new(body).read_value(3).ok(), Some(Value::Null));
    }

    #[test]
    fn long_strings_are_cut_on_char_boundaries() {
        let s = "é".repeat(40_000);
        let mut out = BytesMut::new();
        put_string(&mut out, &s);
        let got = reader(out).read_string("s").expect("well-formed");
        assert_eq!(got.len(), 65_534);
    }
}
