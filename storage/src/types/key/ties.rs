//! The ties part of a key component: what the canonical primary part drops.
//!
//! The primary part orders values exactly as `compare` does, so values that
//! compare Equal share it. Their remaining differences follow the primary
//! part of the whole component, depth-first in element order:
//! ```text
//! boolean        [raw byte]
//! float/double   [raw bits]                  only for NaN
//! varint         [count of redundant sign bytes]
//! decimal        [scale, sign flipped][count of redundant sign bytes]
//! list/set/map   ties of each element in order
//! tuple/UDT      ties of each significant field, then [count of trailing nulls]
//! ```
//! Every entry is self-delimiting given the primary part, so the component
//! stays prefix-free. Empty, null and malformed values have no ties.

use num_bigint::Sign;

use super::super::compare::{decimal_parts, f32_of, f64_of, varint_minimal};
use super::super::wire::{read_count, read_element, write_element};
use super::super::CqlType;
use super::{read_len, rebuild_unscaled, significant_fields, write_len, KeyReader};

impl CqlType {
    /// Appends the ties part of a (possibly null) value.
    pub(super) fn encode_ties(&self, value: Option<&[u8]>, out: &mut Vec<u8>) {
        let Some(v) = value.filter(|v| !v.is_empty() && self.well_framed(v)) else {
            return;
        };
        match self {
            CqlType::Boolean => out.push(v[0]),
            CqlType::Float if f32_of(v).is_nan() => out.extend_from_slice(v),
            CqlType::Double if f64_of(v).is_nan() => out.extend_from_slice(v),
            CqlType::Varint => write_len(v.len() - varint_minimal(v).len(), out),
            CqlType::Decimal => {
                out.push(v[0] ^ 0x80);
                out.extend_from_slice(&v[1..4]);
                write_len(v.len() - 4 - varint_minimal(&v[4..]).len(), out);
            }
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                sequence_ties(&[elem], v, out)
            }
            CqlType::Map { key, value, .. } => sequence_ties(&[key, value], v, out),
            CqlType::Tuple(types) => fields_ties(types.iter(), v, out),
            CqlType::Udt(udt) => fields_ties(udt.fields.iter().map(|(_, t)| t), v, out),
            _ => {}
        }
    }

    /// Rebuilds the exact value from its canonical form and the ties part.
    pub(super) fn apply_ties(
        &self,
        canonical: &[u8],
        r: &mut KeyReader<'_, '_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        if canonical.is_empty() || !self.well_framed(canonical) {
            out.extend_from_slice(canonical);
            return Ok(());
        }
        match self {
            CqlType::Boolean => out.push(r.byte()?),
            CqlType::Float if f32_of(canonical).is_nan() => r.copy(4, out)?,
            CqlType::Double if f64_of(canonical).is_nan() => r.copy(8, out)?,
            CqlType::Varint => {
                let pad = if canonical[0] & 0x80 != 0 { 0xFF } else { 0x00 };
                out.extend(std::iter::repeat_n(pad, read_len(r)?));
                out.extend_from_slice(canonical);
            }
            CqlType::Decimal => apply_decimal_ties(canonical, r, out)?,
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                apply_sequence_ties(&[elem], canonical, r, out)?
            }
            CqlType::Map { key, value, .. } => {
                apply_sequence_ties(&[key, value], canonical, r, out)?
            }
            CqlType::Tuple(types) => apply_fields_ties(types.iter(), canonical, r, out)?,
            CqlType::Udt(udt) => {
                apply_fields_ties(udt.fields.iter().map(|(_, t)| t), canonical, r, out)?
            }
            _ => out.extend_from_slice(canonical),
        }
        Ok(())
    }
}

fn sequence_ties(types: &[&CqlType], v: &[u8], out: &mut Vec<u8>) {
    let mut input = v;
    let n = read_count(&mut input).unwrap_or(0);
    for _ in 0..n {
        for ty in types {
            ty.encode_ties(read_element(&mut input).ok().flatten(), out);
        }
    }
}

fn fields_ties<'t>(types: impl Iterator<Item = &'t CqlType>, v: &[u8], out: &mut Vec<u8>) {
    let significant = significant_fields(v);
    let mut input = v;
    let mut total = 0;
    for ty in types.take(significant) {
        ty.encode_ties(read_element(&mut input).ok().flatten(), out);
        total += 1;
    }
    while read_element(&mut input).is_ok() {
        total += 1;
    }
    write_len(total - significant, out);
}

fn apply_decimal_ties(
    canonical: &[u8],
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let mut scale = r.array::<4>()?;
    scale[0] ^= 0x80;
    let extra = read_len(r)?;
    let parts = decimal_parts(canonical).ok_or("bad canonical decimal")?;
    let unscaled = match parts.sign {
        Sign::NoSign => vec![0],
        sign => rebuild_unscaled(
            sign,
            &parts.digits,
            parts.exponent,
            i32::from_be_bytes(scale),
        )?,
    };
    out.extend_from_slice(&scale);
    let pad = if parts.sign == Sign::Minus {
        0xFF
    } else {
        0x00
    };
    out.extend(std::iter::repeat_n(pad, extra));
    out.extend_from_slice(&unscaled);
    Ok(())
}

/// Rewrites one element as `[i32 len][exact bytes]` (or -1 for null).
fn apply_element(
    ty: &CqlType,
    canonical: Option<&[u8]>,
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let Some(canonical) = canonical else {
        write_element(out, None);
        return Ok(());
    };
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    ty.apply_ties(canonical, r, out)?;
    let len = i32::try_from(out.len() - at - 4).map_err(|_| "element too large")?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn apply_sequence_ties(
    types: &[&CqlType],
    canonical: &[u8],
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let mut input = canonical;
    let n = read_count(&mut input).map_err(|_| "bad canonical collection")?;
    out.extend_from_slice(&canonical[..4]);
    for _ in 0..n {
        for ty in types {
            let elem = read_element(&mut input).map_err(|_| "bad canonical element")?;
            apply_element(ty, elem, r, out)?;
        }
    }
    Ok(())
}

fn apply_fields_ties<'t>(
    types: impl Iterator<Item = &'t CqlType>,
    canonical: &[u8],
    r: &mut KeyReader<'_, '_>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let mut input = canonical;
    let mut types = types;
    while !input.is_empty() {
        let field = read_element(&mut input).map_err(|_| "bad canonical field")?;
        let ty = types.next().ok_or("more fields than the type")?;
        apply_element(ty, field, r, out)?;
    }
    for _ in 0..read_len(r)? {
        write_element(out, None);
    }
    Ok(())
}
