//! The protocol-v4 layout of composite values.
//!
//! ```text
//! list / set:  [i32 n] n × ([i32 len][len bytes])
//! map:         [i32 n] n × ([i32 klen][key][i32 vlen][value])
//! tuple / UDT: fields × ([i32 len][len bytes])      (no count; may stop early)
//! ```
//! All integers are big-endian; a length of -1 is a null element (allowed in
//! tuples and UDTs only). The readers here borrow from the input and never
//! allocate, so `compare` and `encode_key` can walk nested values for free.

use super::TypeError;

/// Why a composite value failed to parse, before the type name is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    Negative {
        what: &'static str,
        value: i32,
    },
}

impl Malformed {
    pub(crate) fn into_error(self, cql_type: &impl std::fmt::Display) -> TypeError {
        match self {
            Malformed::Truncated {
                what,
                needed,
                available,
            } => TypeError::Truncated {
                cql_type: cql_type.to_string(),
                what,
                needed,
                available,
            },
            Malformed::Negative { what, value } => TypeError::NegativeLength {
                cql_type: cql_type.to_string(),
                what,
                value,
            },
        }
    }
}

/// Reads a big-endian i32 and advances `input`.
pub(crate) fn read_i32(input: &mut &[u8], what: &'static str) -> Result<i32, Malformed> {
    let Some((head, rest)) = input.split_first_chunk::<4>() else {
        return Err(Malformed::Truncated {
            what,
            needed: 4,
            available: input.len(),
        });
    };
    *input = rest;
    Ok(i32::from_be_bytes(*head))
}

/// Reads one `[i32 len][bytes]` element; `None` is a null (len -1).
pub(crate) fn read_element<'a>(input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, Malformed> {
    let len = read_i32(input, "element length")?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| Malformed::Negative {
        what: "element length",
        value: len,
    })?;
    if input.len() < len {
        return Err(Malformed::Truncated {
            what: "element",
            needed: len,
            available: input.len(),
        });
    }
    let (value, rest) = input.split_at(len);
    *input = rest;
    Ok(Some(value))
}

/// Reads the element count of a list, set or map.
pub(crate) fn read_count(input: &mut &[u8]) -> Result<usize, Malformed> {
    let n = read_i32(input, "element count")?;
    usize::try_from(n).map_err(|_| Malformed::Negative {
        what: "element count",
        value: n,
    })
}

/// Appends `[i32 len][bytes]`, or `[-1]` for a null.
pub(crate) fn write_element(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.extend_from_slice(&len_i32(v.len()).to_be_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

fn len_i32(len: usize) -> i32 {
    // A serialized element is always shorter than the 256 MiB frame limit.
    i32::try_from(len).expect("a CQL value is shorter than 2 GiB")
}

/// Serializes a list or set from its elements (`None` writes a null element).
pub fn serialize_collection(elems: &[Option<&[u8]>]) -> Vec<u8> {
    let body: usize = elems.iter().map(|e| 4 + e.map_or(0, <[u8]>::len)).sum();
    let mut out = Vec::with_capacity(4 + body);
    out.extend_from_slice(&len_i32(elems.len()).to_be_bytes());
    for e in elems {
        write_element(&mut out, *e);
    }
    out
}

/// Serializes a map from its (key, value) pairs, in the given order.
pub fn serialize_map(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let body: usize = pairs.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(4 + body);
    out.extend_from_slice(&len_i32(pairs.len()).to_be_bytes());
    for (k, v) in pairs {
        write_element(&mut out, Some(k));
        write_element(&mut out, Some(v));
    }
    out
}

/// Serializes a tuple or UDT from its fields (`None` writes a null field).
pub fn serialize_tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        write_element(&mut out, *f);
    }
    out
}

/// Splits a serialized list or set into its elements; nulls are an error.
pub fn parse_collection(value: &[u8]) -> Result<Vec<&[u8]>, TypeError> {
    let name = "collection";
    let mut input = value;
    let n = read_count(&mut input).map_err(|m| m.into_error(&name))?;
    let mut out = Vec::with_capacity(n.min(input.len() / 4));
    for _ in 0..n {
        let elem = read_element(&mut input).map_err(|m| m.into_error(&name))?;
        out.push(elem.ok_or(TypeError::NullInCollection)?);
    }
    expect_end(input, name)?;
    Ok(out)
}

/// One (key, value) pair of a serialized map.
pub type MapEntry<'a> = (&'a [u8], &'a [u8]);

/// Splits a serialized map into its (key, value) pairs; nulls are an error.
pub fn parse_map(value: &[u8]) -> Result<Vec<MapEntry<'_>>, TypeError> {
    let name = "map";
    let mut input = value;
    let n = read_count(&mut input).map_err(|m| m.into_error(&name))?;
    let mut out = Vec::with_capacity(n.min(input.len() / 8));
    for _ in 0..n {
        let k = read_element(&mut input).map_err(|m| m.into_error(&name))?;
        let v = read_element(&mut input).map_err(|m| m.into_error(&name))?;
        out.push((
            k.ok_or(TypeError::NullInCollection)?,
            v.ok_or(TypeError::NullInCollection)?,
        ));
    }
    expect_end(input, name)?;
    Ok(out)
}

/// Splits a serialized tuple or UDT into its fields (`None` for nulls).
pub fn parse_tuple(value: &[u8]) -> Result<Vec<Option<&[u8]>>, TypeError> {
    let mut input = value;
    let mut out = Vec::new();
    while !input.is_empty() {
        out.push(read_element(&mut input).map_err(|m| m.into_error(&"tuple"))?);
    }
    Ok(out)
}

fn expect_end(rest: &[u8], name: &str) -> Result<(), TypeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(TypeError::TrailingBytes {
            cql_type: name.to_owned(),
            count: rest.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_round_trip() {
        let bytes = serialize_collection(&[Some(b"ab"), Some(b"")]);
        assert_eq!(bytes, [0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]);
        assert_eq!(
            parse_collection(&bytes).unwrap(),
            vec![&b"ab"[..], &b""[..]]
        );
        let with_null = serialize_collection(&[None]);
        assert_eq!(with_null, [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            parse_collection(&with_null),
            Err(TypeError::NullInCollection)
        );
    }

    #[test]
    fn map_and_tuple_round_trip() {
        let bytes = serialize_map(&[(b"k", b"v")]);
        assert_eq!(parse_map(&bytes).unwrap(), vec![(&b"k"[..], &b"v"[..])]);
        let t = serialize_tuple(&[Some(b"x"), None]);
        assert_eq!(parse_tuple(&t).unwrap(), vec![Some(&b"x"[..]), None]);
    }

    #[test]
    fn malformed_collections_are_errors() {
        assert!(parse_collection(&[0, 0, 0]).is_err());
        assert!(parse_collection(&[0, 0, 0, 1, 0, 0, 0, 5, 1]).is_err());
        assert!(parse_collection(&[0xff, 0xff, 0xff, 0xfe]).is_err());
        assert!(parse_collection(&[0, 0, 0, 0, 1]).is_err());
        assert!(parse_tuple(&[0, 0, 0, 9]).is_err());
    }
}
