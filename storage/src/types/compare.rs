//! The ordering of each CQL type over serialized values.
//!
//! This is the order clients observe for clustering columns and sets/maps,
//! so it follows the reference implementation exactly, quirks included:
//! - the empty value sorts before every other value of its type;
//! - float/double: numeric, `-0.0 < 0.0`, every NaN equal and above +Infinity;
//! - `uuid`: version first, then v1 by timestamp, others by unsigned msb,
//!   then the low eight bytes unsigned;
//! - `timeuuid`: timestamp, then the low eight bytes as *signed* bytes;
//! - `date`: unsigned (epoch at 2^31); `varint`/`decimal` numerically, so
//!   `1.0 == 1.00`;
//! - lists/sets/maps element-wise, shorter first; tuples/UDTs field-wise
//!   with null first, and trailing nulls equal to missing fields.
//!
//! Malformed values never panic: they fall back to raw byte order.
//! `decimal` allocates (digit expansion); every other type compares in place.

use std::cmp::Ordering;

use num_bigint::{BigInt, Sign};

use super::time::reorder_v1_msb;
use super::wire::{read_count, read_element};
use super::CqlType;

impl CqlType {
    /// Compares two serialized values of this type.
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        self.compare_non_empty(a, b).unwrap_or_else(|| a.cmp(b))
    }

    /// `None` when a value is malformed for the type.
    fn compare_non_empty(&self, a: &[u8], b: &[u8]) -> Option<Ordering> {
        if let Some(size) = self.is_fixed_size() {
            if a.len() != size || b.len() != size {
                return None;
            }
        }
        let ord = match self {
            CqlType::Boolean => (a[0] != 0).cmp(&(b[0] != 0)),
            CqlType::Tinyint
            | CqlType::Smallint
            | CqlType::Int
            | CqlType::Bigint
            | CqlType::Counter
            | CqlType::Timestamp
            | CqlType::Time => compare_signed(a, b),
            CqlType::Float => java_cmp_f32(f32_of(a), f32_of(b)),
            CqlType::Double => java_cmp_f64(f64_of(a), f64_of(b)),
            CqlType::Varint => compare_varint(a, b),
            CqlType::Decimal => compare_decimal(a, b)?,
            CqlType::Uuid => compare_uuid(a, b),
            CqlType::Timeuuid => compare_timeuuid(a, b),
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                compare_sequences(&[elem], a, b)?
            }
            CqlType::Map { key, value, .. } => compare_sequences(&[key, value], a, b)?,
            CqlType::Tuple(types) => compare_fields(types.iter(), a, b)?,
            CqlType::Udt(udt) => compare_fields(udt.fields.iter().map(|(_, t)| t), a, b)?,
            _ => a.cmp(b),
        };
        Some(ord)
    }

    /// Compares nullable elements: null first.
    fn compare_nullable(&self, a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => self.compare(a, b),
        }
    }
}

/// Big-endian two's complement of equal length.
fn compare_signed(a: &[u8], b: &[u8]) -> Ordering {
    (a[0] ^ 0x80)
        .cmp(&(b[0] ^ 0x80))
        .then_with(|| a[1..].cmp(&b[1..]))
}

pub(crate) fn f32_of(v: &[u8]) -> f32 {
    f32::from_be_bytes(v.try_into().expect("size checked by caller"))
}

pub(crate) fn f64_of(v: &[u8]) -> f64 {
    f64::from_be_bytes(v.try_into().expect("size checked by caller"))
}

/// Numeric order; ties (±0, NaN) broken by the bits with NaN made canonical,
/// which puts -0.0 below 0.0 and every NaN above +Infinity.
fn java_cmp_f32(x: f32, y: f32) -> Ordering {
    let bits = |f: f32| {
        if f.is_nan() {
            0x7fc0_0000
        } else {
            f.to_bits() as i32
        }
    };
    x.partial_cmp(&y)
        .filter(|o| o.is_ne())
        .unwrap_or_else(|| bits(x).cmp(&bits(y)))
}

fn java_cmp_f64(x: f64, y: f64) -> Ordering {
    let bits = |f: f64| {
        if f.is_nan() {
            0x7ff8_0000_0000_0000
        } else {
            f.to_bits() as i64
        }
    };
    x.partial_cmp(&y)
        .filter(|o| o.is_ne())
        .unwrap_or_else(|| bits(x).cmp(&bits(y)))
}

/// Strips redundant sign-extension bytes from a two's complement integer.
pub(crate) fn varint_minimal(mut v: &[u8]) -> &[u8] {
    while v.len() > 1 {
        let redundant = (v[0] == 0x00 && v[1] & 0x80 == 0) || (v[0] == 0xFF && v[1] & 0x80 != 0);
        if !redundant {
            break;
        }
        v = &v[1..];
    }
    v
}

fn compare_varint(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (varint_minimal(a), varint_minimal(b));
    let (neg_a, neg_b) = (a[0] & 0x80 != 0, b[0] & 0x80 != 0);
    match (neg_a, neg_b) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // Same sign: a longer minimal form is further from zero; equal lengths
        // compare as unsigned bytes in two's complement.
        (false, false) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, true) => b.len().cmp(&a.len()).then_with(|| a.cmp(b)),
    }
}

/// A decimal as sign, decimal exponent and significant digits:
/// value = sign × 0.d1d2…dn × 10^exponent, with no trailing zero digits.
pub(crate) struct DecimalParts {
    pub sign: Sign,
    pub exponent: i64,
    pub digits: Vec<u8>,
}

/// Splits a serialized decimal; `None` if shorter than 5 bytes.
pub(crate) fn decimal_parts(v: &[u8]) -> Option<DecimalParts> {
    let (scale, unscaled) = v.split_first_chunk::<4>()?;
    if unscaled.is_empty() {
        return None;
    }
    let scale = i64::from(i32::from_be_bytes(*scale));
    let int = BigInt::from_signed_bytes_be(unscaled);
    let (sign, magnitude) = int.into_parts();
    let mut digits = magnitude.to_radix_be(10);
    let exponent = digits.len() as i64 - scale;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    Some(DecimalParts {
        sign,
        exponent,
        digits,
    })
}

fn compare_decimal(a: &[u8], b: &[u8]) -> Option<Ordering> {
    let (a, b) = (decimal_parts(a)?, decimal_parts(b)?);
    let ord = a.sign.cmp(&b.sign).then_with(|| {
        let magnitude = a
            .exponent
            .cmp(&b.exponent)
            .then_with(|| a.digits.cmp(&b.digits));
        match a.sign {
            Sign::Minus => magnitude.reverse(),
            Sign::NoSign => Ordering::Equal,
            Sign::Plus => magnitude,
        }
    });
    Some(ord)
}

fn halves(v: &[u8]) -> (u64, u64) {
    let msb = u64::from_be_bytes(v[..8].try_into().expect("16-byte uuid"));
    let lsb = u64::from_be_bytes(v[8..16].try_into().expect("16-byte uuid"));
    (msb, lsb)
}

/// The msb of a uuid rearranged so that unsigned order is `uuid` order:
/// version nibble first, then the v1 timestamp or the remaining msb bits.
pub(crate) fn uuid_order_msb(msb: u64) -> u64 {
    let version = (msb >> 12) & 0xF;
    if version == 1 {
        reorder_v1_msb(msb)
    } else {
        (version << 60) | ((msb >> 4) & 0x0FFF_FFFF_FFFF_F000) | (msb & 0xFFF)
    }
}

fn compare_uuid(a: &[u8], b: &[u8]) -> Ordering {
    let ((ma, la), (mb, lb)) = (halves(a), halves(b));
    uuid_order_msb(ma)
        .cmp(&uuid_order_msb(mb))
        .then_with(|| la.cmp(&lb))
}

fn compare_timeuuid(a: &[u8], b: &[u8]) -> Ordering {
    let ((ma, la), (mb, lb)) = (halves(a), halves(b));
    let signed_bytes = 0x8080_8080_8080_8080u64;
    (reorder_v1_msb(ma) as i64)
        .cmp(&(reorder_v1_msb(mb) as i64))
        .then_with(|| (la ^ signed_bytes).cmp(&(lb ^ signed_bytes)))
}

/// Lists and sets (`types` = [elem]) or maps ([key, value]): entry by entry,
/// then the shorter first.
fn compare_sequences(types: &[&CqlType], a: &[u8], b: &[u8]) -> Option<Ordering> {
    let (mut ia, mut ib) = (a, b);
    let na = read_count(&mut ia).ok()?;
    let nb = read_count(&mut ib).ok()?;
    for _ in 0..na.min(nb) {
        for ty in types {
            let ea = read_element(&mut ia).ok()?;
            let eb = read_element(&mut ib).ok()?;
            let ord = ty.compare_nullable(ea, eb);
            if ord.is_ne() {
                return Some(ord);
            }
        }
    }
    Some(na.cmp(&nb))
}

/// Tuples and UDTs: field by field, null first; a missing field equals null.
fn compare_fields<'t>(
    mut types: impl Iterator<Item = &'t CqlType>,
    a: &[u8],
    b: &[u8],
) -> Option<Ordering> {
    let (mut ia, mut ib) = (a, b);
    while !ia.is_empty() && !ib.is_empty() {
        let ea = read_element(&mut ia).ok()?;
        let eb = read_element(&mut ib).ok()?;
        let ty = types.next().unwrap_or(&CqlType::Blob);
        let ord = ty.compare_nullable(ea, eb);
        if ord.is_ne() {
            return Some(ord);
        }
    }
    if has_non_null(ia)? {
        return Some(Ordering::Greater);
    }
    if has_non_null(ib)? {
        return Some(Ordering::Less);
    }
    Some(Ordering::Equal)
}

fn has_non_null(mut rest: &[u8]) -> Option<bool> {
    while !rest.is_empty() {
        if read_element(&mut rest).ok()?.is_some() {
            return Some(true);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::super::wire::{serialize_collection, serialize_tuple};
    use super::*;

    fn dec(scale: i32, unscaled: &[u8]) -> Vec<u8> {
        let mut v = scale.to_be_bytes().to_vec();
        v.extend_from_slice(unscaled);
        v
    }

    #[test]
    fn numbers() {
        let int = |i: i32| i.to_be_bytes().to_vec();
        assert_eq!(CqlType::Int.compare(&int(-1), &int(1)), Ordering::Less);
        assert_eq!(CqlType::Int.compare(&[], &int(i32::MIN)), Ordering::Less);
        let f = |x: f32| x.to_be_bytes().to_vec();
        assert_eq!(CqlType::Float.compare(&f(-0.0), &f(0.0)), Ordering::Less);
        assert_eq!(
            CqlType::Float.compare(&f(f32::NAN), &f(f32::INFINITY)),
            Ordering::Greater
        );
        assert_eq!(
            CqlType::Float.compare(&f(-f32::NAN), &f(f32::NAN)),
            Ordering::Equal
        );
        assert_eq!(
            CqlType::Varint.compare(&[0x00, 0x01], &[0x01]),
            Ordering::Equal
        );
        assert_eq!(
            CqlType::Varint.compare(&[0xff, 0x7f], &[0x80]),
            Ordering::Less
        );
        assert_eq!(CqlType::Varint.compare(&[0xff], &[0x00]), Ordering::Less);
        assert_eq!(
            CqlType::Decimal.compare(&dec(1, &[10]), &dec(2, &[100])),
            Ordering::Equal
        );
        assert_eq!(
            CqlType::Decimal.compare(&dec(1, &[0xf6]), &dec(0, &[0xff])),
            Ordering::Equal
        );
        assert_eq!(
            CqlType::Decimal.compare(&dec(0, &[0xfe]), &dec(0, &[0xff])),
            Ordering::Less
        );
        assert_eq!(
            CqlType::Decimal.compare(&dec(5, &[0]), &dec(-3, &[0])),
            Ordering::Equal
        );
        assert_eq!(
            CqlType::Date.compare(&[0x80, 0, 0, 0], &[0x7f, 0, 0, 0]),
            Ordering::Greater
        );
        assert_eq!(CqlType::Boolean.compare(&[2], &[1]), Ordering::Equal);
    }

    #[test]
    fn uuids() {
        let v1 = uuid::Uuid::parse_str("00000001-0000-1000-8000-000000000000").unwrap();
        let v1_later = uuid::Uuid::parse_str("00000000-0001-1000-8000-000000000000").unwrap();
        let v4 = uuid::Uuid::parse_str("00000000-0000-4000-8000-000000000000").unwrap();
        let ty = CqlType::Timeuuid;
        assert_eq!(
            ty.compare(v1.as_bytes(), v1_later.as_bytes()),
            Ordering::Less
        );
        assert_eq!(
            CqlType::Uuid.compare(v4.as_bytes(), v1.as_bytes()),
            Ordering::Greater
        );
        let lo = uuid::Uuid::parse_str("00000001-0000-1000-8000-000000000000").unwrap();
        let hi = uuid::Uuid::parse_str("00000001-0000-1000-7f00-000000000000").unwrap();
        // timeuuid compares the low half as signed bytes, uuid as unsigned.
        assert_eq!(ty.compare(lo.as_bytes(), hi.as_bytes()), Ordering::Less);
        assert_eq!(
            CqlType::Uuid.compare(lo.as_bytes(), hi.as_bytes()),
            Ordering::Greater
        );
    }

    #[test]
    fn composites() {
        let list = CqlType::list(CqlType::Int, true);
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let l1 = serialize_collection(&[Some(&one)]);
        let l12 = serialize_collection(&[Some(&one), Some(&two)]);
        let l2 = serialize_collection(&[Some(&two)]);
        assert_eq!(list.compare(&l1, &l12), Ordering::Less);
        assert_eq!(list.compare(&l12, &l2), Ordering::Less);
        let t = CqlType::tuple(vec![CqlType::Int, CqlType::Int]);
        let t1 = serialize_tuple(&[Some(&one)]);
        let t1n = serialize_tuple(&[Some(&one), None]);
        let t12 = serialize_tuple(&[Some(&one), Some(&two)]);
        assert_eq!(t.compare(&t1, &t1n), Ordering::Equal);
        assert_eq!(t.compare(&t1n, &t12), Ordering::Less);
        assert_eq!(t.compare(&t12, &t1), Ordering::Greater);
    }
}
