//! Order-preserving, reversible, prefix-free key encoding.
//!
//! Clustering keys and collection element paths are stored as the
//! concatenation of one encoded component per column, so the memtable and
//! SSTables order rows with `memcmp` and never need the schema. Invariants
//! (property-tested for every type in `proptests`):
//! 1. `compare(a, b) == Less` implies `enc(a) < enc(b)` under memcmp.
//!    Values that compare Equal but differ in bytes (`1.0`/`1.00`, `0x0001`/
//!    `0x01` varints, NaN payloads, trailing null tuple fields, booleans other
//!    than 0/1) keep distinct encodings, ordered consistently, so that
//!    decoding gives back the exact bytes.
//! 2. `decode(enc(v)) == v`.
//! 3. No encoding is a proper prefix of another: concatenations compare
//!    component-wise, and a clustering prefix encodes to a byte prefix.
//! 4. A descending component is the bitwise complement of its ascending one.
//!
//! Layout of one component (ascending):
//! ```text
//! tag: 0x01 null (inside composites only) | 0x02 empty | 0x03 value | 0x04 malformed
//! value bodies:
//!   int types, timestamp, time   big-endian, sign bit flipped
//!   date                         raw 4 bytes (already unsigned-ordered)
//!   boolean                      [0|1] [raw byte]
//!   float/double                 [0x00][IEEE bits: negatives inverted, else sign flipped] | [0x01][raw NaN bits]
//!   uuid                         [msb rearranged: version, time or rest][lsb]
//!   timeuuid                     [reordered msb, sign flipped][lsb with each byte's top bit flipped]
//!   text/ascii/blob/inet/duration  bytes with 0x00 → 0x00 0xFF, then 0x00 0x00
//!   varint                       [0x01 neg|0x02 non-neg][len (inverted if neg)][minimal bytes][extra sign bytes]
//!   decimal                      [0x01 neg|0x02 zero|0x03 pos][exponent, digits+1, 0x00 (inverted if neg)]
//!                                [scale, sign flipped][extra sign bytes of unscaled]
//!   list/set  (0x02 elem)* 0x01      map  (0x02 key value)* 0x01
//!   tuple/UDT (0x02 field)* 0x01
//!   malformed: escaped raw bytes (never produced for validated values)
//! ```
//! Tags never use 0x00 or 0xFF, in either direction, so `prefix ++ [0x00]`
//! sorts before and `prefix ++ [0xFF]` after every key extending `prefix`:
//! see `KEY_BEFORE_ALL`/`KEY_AFTER_ALL`.

use num_bigint::{BigInt, BigUint, Sign};

use super::compare::{decimal_parts, f32_of, f64_of, uuid_order_msb, varint_minimal};
use super::time::{reorder_v1_msb, unreorder_v1_msb};
use super::wire::{read_count, read_element};
use super::{CqlType, TypeError};

/// A byte that sorts before any component encoding (for exclusive lower bounds).
pub const KEY_BEFORE_ALL: u8 = 0x00;
/// A byte that sorts after any component encoding (for inclusive upper bounds).
pub const KEY_AFTER_ALL: u8 = 0xFF;

const TAG_NULL: u8 = 0x01;
const TAG_EMPTY: u8 = 0x02;
const TAG_VALUE: u8 = 0x03;
const TAG_MALFORMED: u8 = 0x04;
const SEQ_END: u8 = 0x01;
const SEQ_MORE: u8 = 0x02;
const TIMEUUID_LSB_FLIP: u64 = 0x8080_8080_8080_8080;

/// The body could not be encoded: the value is malformed for its type.
struct Malformed;

impl CqlType {
    /// Appends the key encoding of `value` to `out`.
    pub fn encode_key(&self, value: &[u8], descending: bool, out: &mut Vec<u8>) {
        let start = out.len();
        self.encode_component(Some(value), out);
        if descending {
            complement(&mut out[start..]);
        }
    }

    /// Reads one encoded component from the front of `input` and returns its
    /// serialized value.
    pub fn decode_key(&self, input: &mut &[u8], descending: bool) -> Result<Vec<u8>, TypeError> {
        let mut reader = KeyReader {
            input,
            mask: if descending { 0xFF } else { 0x00 },
        };
        let mut out = Vec::new();
        match self.decode_component(&mut reader, &mut out) {
            Ok(true) => Ok(out),
            Ok(false) => Err(self.corrupt("null at top level")),
            Err(reason) => Err(self.corrupt(reason)),
        }
    }

    fn corrupt(&self, reason: &'static str) -> TypeError {
        TypeError::CorruptKey {
            cql_type: self.to_string(),
            reason,
        }
    }

    fn encode_component(&self, value: Option<&[u8]>, out: &mut Vec<u8>) {
        let Some(value) = value else {
            out.push(TAG_NULL);
            return;
        };
        if value.is_empty() {
            out.push(TAG_EMPTY);
            return;
        }
        let start = out.len();
        out.push(TAG_VALUE);
        if self.encode_body(value, out).is_err() {
            out.truncate(start);
            out.push(TAG_MALFORMED);
            write_escaped(value, out);
        }
    }

    fn encode_body(&self, v: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
        if let Some(size) = self.is_fixed_size() {
            if v.len() != size {
                return Err(Malformed);
            }
        }
        match self {
            CqlType::Boolean => out.extend_from_slice(&[u8::from(v[0] != 0), v[0]]),
            CqlType::Tinyint
            | CqlType::Smallint
            | CqlType::Int
            | CqlType::Bigint
            | CqlType::Counter
            | CqlType::Timestamp
            | CqlType::Time => {
                out.push(v[0] ^ 0x80);
                out.extend_from_slice(&v[1..]);
            }
            CqlType::Date => out.extend_from_slice(v),
            CqlType::Float => encode_float(f32_of(v).is_nan(), v, out),
            CqlType::Double => encode_float(f64_of(v).is_nan(), v, out),
            CqlType::Uuid => encode_uuid(v, out),
            CqlType::Timeuuid => encode_timeuuid(v, out),
            CqlType::Varint => encode_varint(v, out),
            CqlType::Decimal => encode_decimal(v, out)?,
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                encode_sequence(&[elem], v, out)?
            }
            CqlType::Map { key, value, .. } => encode_sequence(&[key, value], v, out)?,
            CqlType::Tuple(types) => encode_fields(types.iter(), v, out)?,
            CqlType::Udt(udt) => encode_fields(udt.fields.iter().map(|(_, t)| t), v, out)?,
            _ => write_escaped(v, out),
        }
        Ok(())
    }

    /// Decodes one component into `out`; `Ok(false)` for a null.
    fn decode_component(
        &self,
        r: &mut KeyReader<'_, '_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, &'static str> {
        match r.byte()? {
            TAG_NULL => Ok(false),
            TAG_EMPTY => Ok(true),
            TAG_VALUE => self.decode_body(r, out).map(|()| true),
            TAG_MALFORMED => read_escaped(r, out).map(|()| true),
            _ => Err("unknown tag"),
        }
    }

    fn decode_body(&self, r: &mut KeyReader<'_, '_>, out: &mut Vec<u8>) -> Result<(), &'static str> {
        match self {
            CqlType::Boolean => {
                let [_, raw] = r.array::<2>()?;
                out.push(raw);
            }
            CqlType::Tinyint
            | CqlType::Smallint
            | CqlType::Int
            | CqlType::Bigint
            | CqlType::Counter
            | CqlType::Timestamp
            | CqlType::Time => {
                let start = out.len();
                let size = self.is_fixed_size().expect("fixed-size integer type");
                r.copy(size, out)?;
                out[start] ^= 0x80;
            }
            CqlType::Date => r.copy(4, out)?,
            CqlType::Float => decode_float::<4>(r, out)?,
            CqlType::Double => decode_float::<8>(r, out)?,
            CqlType::Uuid => decode_uuid(r, out)?,
            CqlType::Timeuuid => decode_timeuuid(r, out)?,
            CqlType::Varint => decode_varint(r, out)?,
            CqlType::Decimal => decode_decimal(r, out)?,
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                decode_sequence(&[elem], r, out)?
            }
            CqlType::Map { key, value, .. } => decode_sequence(&[key, value], r, out)?,
            CqlType::Tuple(types) => decode_fields(types.iter(), r, out)?,
            CqlType::Udt(udt) => decode_fields(udt.fields.iter().map(|(_, t)| t), r, out)?,
            _ => read_escaped(r, out)?,
        }
        Ok(())
    }
}

/// Encodes a clustering key or prefix: one component per value, in order.
/// `values` may be shorter than `types` (a prefix), never longer.
pub fn encode_clustering(types: &[(CqlType, bool)], values: &[&[u8]]) -> Vec<u8> {
    debug_assert!(values.len() <= types.len(), "more values than clustering columns");
    let mut out = Vec::with_capacity(values.iter().map(|v| v.len() + 3).sum());
    for ((ty, descending), value) in types.iter().zip(values) {
        ty.encode_key(value, *descending, &mut out);
    }
    out
}

/// Decodes a clustering key or prefix back into serialized values.
pub fn decode_clustering(
    types: &[(CqlType, bool)],
    bytes: &[u8],
) -> Result<Vec<Vec<u8>>, TypeError> {
    let mut input = bytes;
    let mut values = Vec::with_capacity(types.len());
    for (ty, descending) in types {
        if input.is_empty() {
            break;
        }
        values.push(ty.decode_key(&mut input, *descending)?);
    }
    if !input.is_empty() {
        return Err(TypeError::CorruptKey {
            cql_type: "clustering key".into(),
            reason: "bytes left after the last clustering column",
        });
    }
    Ok(values)
}

fn complement(bytes: &mut [u8]) {
    for b in bytes {
        *b = !*b;
    }
}

/// Reads key bytes, undoing the descending complement on the fly.
struct KeyReader<'r, 'a> {
    input: &'r mut &'a [u8],
    mask: u8,
}

impl KeyReader<'_, '_> {
    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&b, rest) = self.input.split_first().ok_or("truncated")?;
        *self.input = rest;
        Ok(b ^ self.mask)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let (head, rest) = self.input.split_first_chunk::<N>().ok_or("truncated")?;
        *self.input = rest;
        let mut out = *head;
        for b in &mut out {
            *b ^= self.mask;
        }
        Ok(out)
    }

    fn copy(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), &'static str> {
        if self.input.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.input.split_at(n);
        *self.input = rest;
        out.extend(head.iter().map(|b| b ^ self.mask));
        Ok(())
    }
}

/// Writes bytes with 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x00.
fn write_escaped(v: &[u8], out: &mut Vec<u8>) {
    let mut pieces = v.split(|&b| b == 0);
    if let Some(first) = pieces.next() {
        out.extend_from_slice(first);
    }
    for piece in pieces {
        out.extend_from_slice(&[0x00, 0xFF]);
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(&[0x00, 0x00]);
}

fn read_escaped(r: &mut KeyReader<'_, '_>, out: &mut Vec<u8>) -> Result<(), &'static str> {
    loop {
        match r.byte()? {
            0x00 => match r.byte()? {
                0x00 => return Ok(()),
                0xFF => out.push(0x00),
                _ => return Err("bad escape in byte string"),
            },
            b => out.push(b),
        }
    }
}

fn encode_float(is_nan: bool, v: &[u8], out: &mut Vec<u8>) {
    if is_nan {
        out.push(0x01);
        out.extend_from_slice(v);
    } else if v[0] & 0x80 != 0 {
        out.push(0x00);
        out.extend(v.iter().map(|b| !b));
    } else {
        out.push(0x00);
        out.push(v[0] ^ 0x80);
        out.extend_from_slice(&v[1..]);
    }
}

fn decode_float<const N: usize>(
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let kind = r.byte()?;
    let mut bits = r.array::<N>()?;
    match kind {
        0x01 => {}
        0x00 if bits[0] & 0x80 != 0 => bits[0] ^= 0x80,
        0x00 => complement(&mut bits),
        _ => return Err("bad float kind"),
    }
    out.extend_from_slice(&bits);
    Ok(())
}

fn u64_pair(v: &[u8]) -> (u64, u64) {
    let msb = u64::from_be_bytes(v[..8].try_into().expect("16-byte uuid"));
    let lsb = u64::from_be_bytes(v[8..16].try_into().expect("16-byte uuid"));
    (msb, lsb)
}

fn encode_uuid(v: &[u8], out: &mut Vec<u8>) {
    let (msb, lsb) = u64_pair(v);
    out.extend_from_slice(&uuid_order_msb(msb).to_be_bytes());
    out.extend_from_slice(&lsb.to_be_bytes());
}

fn decode_uuid(r: &mut KeyReader<'_, '_>, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let ordered = u64::from_be_bytes(r.array::<8>()?);
    let version = ordered >> 60;
    let msb = if version == 1 {
        unreorder_v1_msb(ordered)
    } else {
        ((ordered << 4) & 0xFFFF_FFFF_FFFF_0000) | (version << 12) | (ordered & 0xFFF)
    };
    out.extend_from_slice(&msb.to_be_bytes());
    r.copy(8, out)
}

fn encode_timeuuid(v: &[u8], out: &mut Vec<u8>) {
    let (msb, lsb) = u64_pair(v);
    out.extend_from_slice(&(reorder_v1_msb(msb) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&(lsb ^ TIMEUUID_LSB_FLIP).to_be_bytes());
}

fn decode_timeuuid(r: &mut KeyReader<'_, '_>, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let ordered = u64::from_be_bytes(r.array::<8>()?) ^ (1 << 63);
    let lsb = u64::from_be_bytes(r.array::<8>()?) ^ TIMEUUID_LSB_FLIP;
    out.extend_from_slice(&unreorder_v1_msb(ordered).to_be_bytes());
    out.extend_from_slice(&lsb.to_be_bytes());
    Ok(())
}

/// An order-preserving, prefix-free length: one byte below 0xF8, else
/// 0xF8 + n followed by n big-endian bytes.
fn write_len(len: usize, out: &mut Vec<u8>) {
    if len < 0xF8 {
        out.push(len as u8);
        return;
    }
    let be = (len as u64).to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count();
    out.push(0xF8 + (8 - skip) as u8);
    out.extend_from_slice(&be[skip..]);
}

fn read_len(r: &mut KeyReader<'_, '_>) -> Result<usize, &'static str> {
    let first = r.byte()?;
    if first < 0xF8 {
        return Ok(first.into());
    }
    let n = usize::from(first - 0xF8);
    if !(1..=8).contains(&n) {
        return Err("bad length prefix");
    }
    let mut len = 0u64;
    for _ in 0..n {
        len = (len << 8) | u64::from(r.byte()?);
    }
    usize::try_from(len).map_err(|_| "length overflow")
}

fn write_len_inverted(len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    write_len(len, out);
    complement(&mut out[start..]);
}

fn read_len_inverted(r: &mut KeyReader<'_, '_>) -> Result<usize, &'static str> {
    r.mask = !r.mask;
    let len = read_len(r);
    r.mask = !r.mask;
    len
}

fn encode_varint(v: &[u8], out: &mut Vec<u8>) {
    let minimal = varint_minimal(v);
    if minimal[0] & 0x80 != 0 {
        out.push(0x01);
        write_len_inverted(minimal.len(), out);
    } else {
        out.push(0x02);
        write_len(minimal.len(), out);
    }
    out.extend_from_slice(minimal);
    write_len(v.len() - minimal.len(), out);
}

fn decode_varint(r: &mut KeyReader<'_, '_>, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let negative = match r.byte()? {
        0x01 => true,
        0x02 => false,
        _ => return Err("bad varint sign"),
    };
    let len = if negative {
        read_len_inverted(r)?
    } else {
        read_len(r)?
    };
    let mut minimal = Vec::with_capacity(len);
    r.copy(len, &mut minimal)?;
    let extra = read_len(r)?;
    out.extend(std::iter::repeat_n(if negative { 0xFF } else { 0x00 }, extra));
    out.extend_from_slice(&minimal);
    Ok(())
}

fn encode_decimal(v: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let parts = decimal_parts(v).ok_or(Malformed)?;
    let (scale, unscaled) = v.split_at(4);
    match parts.sign {
        Sign::NoSign => out.push(0x02),
        sign => {
            out.push(if sign == Sign::Minus { 0x01 } else { 0x03 });
            let start = out.len();
            out.extend_from_slice(&(parts.exponent ^ i64::MIN).to_be_bytes());
            out.extend(parts.digits.iter().map(|d| d + 1));
            out.push(0x00);
            if sign == Sign::Minus {
                complement(&mut out[start..]);
            }
        }
    }
    out.push(scale[0] ^ 0x80);
    out.extend_from_slice(&scale[1..]);
    write_len(unscaled.len() - varint_minimal(unscaled).len(), out);
    Ok(())
}

fn decode_decimal(r: &mut KeyReader<'_, '_>, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let sign = match r.byte()? {
        0x01 => Sign::Minus,
        0x02 => Sign::NoSign,
        0x03 => Sign::Plus,
        _ => return Err("bad decimal sign"),
    };
    let mut digits = Vec::new();
    let mut exponent = 0;
    if sign != Sign::NoSign {
        if sign == Sign::Minus {
            r.mask = !r.mask;
        }
        let parsed = read_decimal_digits(r, &mut digits);
        if sign == Sign::Minus {
            r.mask = !r.mask;
        }
        exponent = parsed?;
    }
    let mut scale = r.array::<4>()?;
    scale[0] ^= 0x80;
    let extra = read_len(r)?;
    let unscaled = if sign == Sign::NoSign {
        vec![0]
    } else {
        rebuild_unscaled(sign, &digits, exponent, i32::from_be_bytes(scale))?
    };
    out.extend_from_slice(&scale);
    let pad = if sign == Sign::Minus { 0xFF } else { 0x00 };
    out.extend(std::iter::repeat_n(pad, extra));
    out.extend_from_slice(&unscaled);
    Ok(())
}

/// The unscaled integer of a non-zero decimal: its significant digits
/// followed by as many zeros as the scale requires.
fn rebuild_unscaled(
    sign: Sign,
    digits: &[u8],
    exponent: i64,
    scale: i32,
) -> Result<Vec<u8>, &'static str> {
    // Digit count of the unscaled integer = exponent + scale.
    let total = exponent + i64::from(scale);
    let zeros = total - digits.len() as i64;
    if !(0..=1 << 20).contains(&zeros) || digits.first().is_none_or(|d| *d == 0) {
        return Err("bad decimal digits or scale");
    }
    let ten_pow = BigUint::from(10u8).pow(zeros as u32);
    let magnitude = BigUint::from_radix_be(digits, 10).ok_or("bad decimal digit")? * ten_pow;
    Ok(BigInt::from_biguint(sign, magnitude).to_signed_bytes_be())
}

fn read_decimal_digits(r: &mut KeyReader<'_, '_>, digits: &mut Vec<u8>) -> Result<i64, &'static str> {
    let exponent = i64::from_be_bytes(r.array::<8>()?) ^ i64::MIN;
    loop {
        match r.byte()? {
            0 => return Ok(exponent),
            d @ 1..=10 => digits.push(d - 1),
            _ => return Err("bad decimal digit"),
        }
    }
}

fn encode_sequence(types: &[&CqlType], v: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let mut input = v;
    let n = read_count(&mut input).map_err(|_| Malformed)?;
    for _ in 0..n {
        out.push(SEQ_MORE);
        for ty in types {
            let elem = read_element(&mut input).map_err(|_| Malformed)?;
            ty.encode_component(elem, out);
        }
    }
    if !input.is_empty() {
        return Err(Malformed);
    }
    out.push(SEQ_END);
    Ok(())
}

fn encode_fields<'t>(
    mut types: impl Iterator<Item = &'t CqlType>,
    v: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    let mut input = v;
    while !input.is_empty() {
        let field = read_element(&mut input).map_err(|_| Malformed)?;
        let ty = types.next().ok_or(Malformed)?;
        out.push(SEQ_MORE);
        ty.encode_component(field, out);
    }
    out.push(SEQ_END);
    Ok(())
}

/// Decodes one element into `out` as `[i32 len][bytes]` (or -1 for null).
fn decode_element(
    ty: &CqlType,
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let len = if ty.decode_component(r, out)? {
        i32::try_from(out.len() - at - 4).map_err(|_| "element too large")?
    } else {
        -1
    };
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn decode_sequence(
    types: &[&CqlType],
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut n: i32 = 0;
    loop {
        match r.byte()? {
            SEQ_END => break,
            SEQ_MORE => {}
            _ => return Err("bad sequence marker"),
        }
        for ty in types {
            decode_element(ty, r, out)?;
        }
        n = n.checked_add(1).ok_or("too many elements")?;
    }
    out[at..at + 4].copy_from_slice(&n.to_be_bytes());
    Ok(())
}

fn decode_fields<'t>(
    mut types: impl Iterator<Item = &'t CqlType>,
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    loop {
        match r.byte()? {
            SEQ_END => return Ok(()),
            SEQ_MORE => {}
            _ => return Err("bad field marker"),
        }
        let ty = types.next().ok_or("more fields than the type")?;
        decode_element(ty, r, out)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: &CqlType, v: &[u8], desc: bool) -> Vec<u8> {
        let mut out = Vec::new();
        ty.encode_key(v, desc, &mut out);
        out
    }

    #[test]
    fn simple_layouts() {
        assert_eq!(enc(&CqlType::Int, &[0, 0, 0, 1], false), [3, 0x80, 0, 0, 1]);
        assert_eq!(enc(&CqlType::Int, &[], false), [2]);
        assert_eq!(enc(&CqlType::Int, &[], true), [0xFD]);
        assert_eq!(enc(&CqlType::Text, b"a\0b", false), [3, b'a', 0, 0xFF, b'b', 0, 0]);
    }

    #[test]
    fn clustering_prefix_round_trip() {
        let types = vec![(CqlType::Int, false), (CqlType::Text, true)];
        let full = encode_clustering(&types, &[&[0, 0, 0, 7], b"x"]);
        let prefix = encode_clustering(&types, &[&[0, 0, 0, 7]]);
        assert!(full.starts_with(&prefix));
        assert_eq!(
            decode_clustering(&types, &full).unwrap(),
            vec![vec![0, 0, 0, 7], b"x".to_vec()]
        );
        assert_eq!(decode_clustering(&types, &prefix).unwrap().len(), 1);
        assert!(decode_clustering(&types, &full[..full.len() - 1]).is_err());
        let mut after = prefix.clone();
        after.push(KEY_AFTER_ALL);
        assert!(after > full);
    }

    #[test]
    fn malformed_values_round_trip() {
        let bad = [1u8, 2, 3];
        let e = enc(&CqlType::Int, &bad, false);
        assert_eq!(e[0], TAG_MALFORMED);
        assert_eq!(CqlType::Int.decode_key(&mut &e[..], false).unwrap(), bad);
        assert!(CqlType::Int.decode_key(&mut &[9u8][..], false).is_err());
    }
}
