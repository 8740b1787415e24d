//! Order-preserving, reversible, prefix-free key encoding.
//!
//! Clustering keys and collection element paths are stored as the
//! concatenation of one encoded component per column, so the memtable and
//! SSTables order rows with `memcmp` and never need the schema. Invariants
//! (property-tested for every type in `proptests`):
//! 1. `compare(a, b) == Less` implies `enc(a) < enc(b)` under memcmp.
//!    Values that compare Equal but differ in bytes (`1.0`/`1.00`, `0x0001`/
//!    `0x01` varints, NaN payloads, trailing null tuple fields, booleans other
//!    than 0/1) keep distinct encodings so that decoding gives back the exact
//!    bytes: a component is a *primary* part, the canonical form that
//!    memcmp-orders exactly like `compare` (equal iff `compare` is Equal, also
//!    for nested elements), followed by a *ties* part holding what the
//!    canonical form dropped (see `ties`).
//! 2. `decode(enc(v)) == v`.
//! 3. No encoding is a proper prefix of another: concatenations compare
//!    component-wise, and a clustering prefix encodes to a byte prefix.
//! 4. A descending component is the bitwise complement of its ascending one.
//!
//! Layout of the primary part of one component (ascending):
//! ```text
//! tag: 0x01 null (inside composites only) | 0x02 empty | 0x03 value | 0x04 malformed
//! value bodies:
//!   int types, timestamp, time   big-endian, sign bit flipped
//!   date                         raw 4 bytes (already unsigned-ordered)
//!   boolean                      [0|1]
//!   float/double                 [0x00][IEEE bits: negatives inverted, else sign flipped] | [0x01] for NaN
//!   uuid                         [msb rearranged: version, time or rest][lsb]
//!   timeuuid                     [reordered msb, sign flipped][lsb with each byte's top bit flipped]
//!   text/ascii/blob/inet/duration  bytes with 0x00 → 0x00 0xFF, then 0x00 0x00
//!   varint                       [0x01 neg|0x02 non-neg][len (inverted if neg)][minimal bytes]
//!   decimal                      [0x01 neg|0x02 zero|0x03 pos][exponent, digits+1, 0x00 (inverted if neg)]
//!   list/set  (0x02 elem)* 0x01      map  (0x02 key value)* 0x01
//!   tuple/UDT (0x02 field)* 0x01     (fields up to the last non-null one)
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

mod ties;

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

impl CqlType {
    /// Appends the key encoding of `value` to `out`.
    pub fn encode_key(&self, value: &[u8], descending: bool, out: &mut Vec<u8>) {
        let start = out.len();
        self.encode_component(Some(value), out);
        self.encode_ties(Some(value), out);
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
        let mut canonical = Vec::new();
        match self.decode_component(&mut reader, &mut canonical) {
            Ok(true) => {}
            Ok(false) => return Err(self.corrupt("null at top level")),
            Err(reason) => return Err(self.corrupt(reason)),
        }
        let mut out = Vec::with_capacity(canonical.len());
        self.apply_ties(&canonical, &mut reader, &mut out)
            .map_err(|reason| self.corrupt(reason))?;
        Ok(out)
    }

    fn corrupt(&self, reason: &'static str) -> TypeError {
        TypeError::CorruptKey {
            cql_type: self.to_string(),
            reason,
        }
    }

    /// True when `v` (non-empty) has the shape the primary encoding needs:
    /// the right size, or parseable composite framing. Shared by the encoder
    /// and `apply_ties` so both agree on which values are stored raw.
    fn well_framed(&self, v: &[u8]) -> bool {
        if let Some(size) = self.is_fixed_size() {
            return v.len() == size;
        }
        match self {
            CqlType::Decimal => v.len() >= 5,
            CqlType::List { .. } | CqlType::Set { .. } => sequence_framed(v, 1),
            CqlType::Map { .. } => sequence_framed(v, 2),
            CqlType::Tuple(types) => fields_framed(v, types.len()),
            CqlType::Udt(udt) => fields_framed(v, udt.fields.len()),
            _ => true,
        }
    }

    /// Writes the primary part of one component.
    fn encode_component(&self, value: Option<&[u8]>, out: &mut Vec<u8>) {
        match value {
            None => out.push(TAG_NULL),
            Some([]) => out.push(TAG_EMPTY),
            Some(v) if !self.well_framed(v) => {
                out.push(TAG_MALFORMED);
                write_escaped(v, out);
            }
            Some(v) => {
                out.push(TAG_VALUE);
                self.encode_body(v, out);
            }
        }
    }

    fn encode_body(&self, v: &[u8], out: &mut Vec<u8>) {
        match self {
            CqlType::Boolean => out.push(u8::from(v[0] != 0)),
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
            CqlType::Decimal => encode_decimal(v, out),
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                encode_sequence(&[elem], v, out)
            }
            CqlType::Map { key, value, .. } => encode_sequence(&[key, value], v, out),
            CqlType::Tuple(types) => encode_fields(types.iter(), v, out),
            CqlType::Udt(udt) => encode_fields(udt.fields.iter().map(|(_, t)| t), v, out),
            _ => write_escaped(v, out),
        }
    }

    /// Decodes the primary part of one component into its canonical
    /// serialized form; `Ok(false)` for a null.
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

    fn decode_body(
        &self,
        r: &mut KeyReader<'_, '_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        match self {
            CqlType::Boolean => out.push(r.byte()?),
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
            CqlType::Float => decode_float::<4>(r, out, &f32::NAN.to_be_bytes())?,
            CqlType::Double => decode_float::<8>(r, out, &f64::NAN.to_be_bytes())?,
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

fn sequence_framed(v: &[u8], per_entry: usize) -> bool {
    let mut input = v;
    let Ok(n) = read_count(&mut input) else {
        return false;
    };
    for _ in 0..n.saturating_mul(per_entry) {
        if read_element(&mut input).is_err() {
            return false;
        }
    }
    input.is_empty()
}

fn fields_framed(v: &[u8], max_fields: usize) -> bool {
    let mut input = v;
    let mut n = 0;
    while !input.is_empty() {
        if read_element(&mut input).is_err() {
            return false;
        }
        n += 1;
    }
    n <= max_fields
}

/// Encodes a clustering key or prefix: one component per value, in order.
/// `values` may be shorter than `types` (a prefix), never longer.
pub fn encode_clustering(types: &[(CqlType, bool)], values: &[&[u8]]) -> Vec<u8> {
    debug_assert!(
        values.len() <= types.len(),
        "more values than clustering columns"
    );
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
        // Every NaN compares equal; its bits go to the ties part.
        out.push(0x01);
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
    canonical_nan: &[u8; N],
) -> Result<(), &'static str> {
    match r.byte()? {
        0x01 => out.extend_from_slice(canonical_nan),
        0x00 => {
            let mut bits = r.array::<N>()?;
            if bits[0] & 0x80 != 0 {
                bits[0] ^= 0x80;
            } else {
                complement(&mut bits);
            }
            out.extend_from_slice(&bits);
        }
        _ => return Err("bad float kind"),
    }
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
    r.copy(len, out)
}

fn encode_decimal(v: &[u8], out: &mut Vec<u8>) {
    let Some(parts) = decimal_parts(v) else {
        return;
    };
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
    // The canonical form: significant digits only, scale to match.
    let (scale, unscaled) = match sign {
        Sign::NoSign => (0, vec![0]),
        _ => {
            let scale = i32::try_from(digits.len() as i64 - exponent)
                .map_err(|_| "decimal scale out of range")?;
            (scale, rebuild_unscaled(sign, &digits, exponent, scale)?)
        }
    };
    out.extend_from_slice(&scale.to_be_bytes());
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

fn read_decimal_digits(
    r: &mut KeyReader<'_, '_>,
    digits: &mut Vec<u8>,
) -> Result<i64, &'static str> {
    let exponent = i64::from_be_bytes(r.array::<8>()?) ^ i64::MIN;
    loop {
        match r.byte()? {
            0 => return Ok(exponent),
            d @ 1..=10 => digits.push(d - 1),
            _ => return Err("bad decimal digit"),
        }
    }
}

/// Lists/sets (`types` = [elem]) or maps ([key, value]); framing was checked.
fn encode_sequence(types: &[&CqlType], v: &[u8], out: &mut Vec<u8>) {
    let mut input = v;
    let n = read_count(&mut input).unwrap_or(0);
    for _ in 0..n {
        out.push(SEQ_MORE);
        for ty in types {
            ty.encode_component(read_element(&mut input).ok().flatten(), out);
        }
    }
    out.push(SEQ_END);
}

/// Tuples and UDTs, up to the last non-null field (trailing nulls compare
/// equal to missing fields; their count goes to the ties part).
fn encode_fields<'t>(types: impl Iterator<Item = &'t CqlType>, v: &[u8], out: &mut Vec<u8>) {
    let significant = significant_fields(v);
    let mut input = v;
    for ty in types.take(significant) {
        out.push(SEQ_MORE);
        ty.encode_component(read_element(&mut input).ok().flatten(), out);
    }
    out.push(SEQ_END);
}

/// The number of fields up to and including the last non-null one, but at
/// least one, so that an all-null tuple stays distinct from the empty value.
pub(crate) fn significant_fields(v: &[u8]) -> usize {
    let mut input = v;
    let (mut count, mut significant) = (0, 0);
    while !input.is_empty() {
        let Ok(field) = read_element(&mut input) else {
            break;
        };
        count += 1;
        if field.is_some() {
            significant = count;
        }
    }
    significant.max(count.min(1))
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
        assert_eq!(
            enc(&CqlType::Text, b"a\0b", false),
            [3, b'a', 0, 0xFF, b'b', 0, 0]
        );
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

    /// Found by proptest: an element that compares Equal with different
    /// bytes (NaN payloads) must not decide the order of the collection.
    #[test]
    fn equal_elements_with_different_bytes_do_not_decide_order() {
        use super::super::wire::{serialize_collection, serialize_tuple};
        let ty = CqlType::list(CqlType::Double, true);
        let neg_nan = [0xff, 0xff, 0, 0, 0, 0, 0, 0];
        let pos_nan = [0x7f, 0xff, 0, 0, 0, 0, 0, 0];
        let a = serialize_collection(&[Some(&neg_nan)]);
        let b = serialize_collection(&[Some(&pos_nan), Some(&[])]);
        assert_eq!(ty.compare(&a, &b), std::cmp::Ordering::Less);
        assert!(enc(&ty, &a, false) < enc(&ty, &b, false));
        let t = CqlType::list(CqlType::tuple(vec![CqlType::Int, CqlType::Int]), true);
        let short = serialize_collection(&[Some(&serialize_tuple(&[None]))]);
        let long = serialize_collection(&[Some(&serialize_tuple(&[None, None]))]);
        let empty = serialize_collection(&[Some(&[])]);
        for v in [&short, &long, &empty] {
            assert_eq!(t.decode_key(&mut &enc(&t, v, true)[..], true).unwrap(), *v);
        }
        assert!(enc(&t, &empty, false) < enc(&t, &short, false));
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
