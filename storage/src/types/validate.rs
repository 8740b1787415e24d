//! Validation of serialized (protocol v4) values against their type.
//!
//! Every value from a client or a literal passes here before it reaches
//! storage, so `compare` and `encode_key` may assume well-formed input (they
//! still never panic on bad bytes). An empty value is valid for every type
//! except lists, sets and maps, whose serialized form always has a count.

use super::time::{timeuuid_ticks, Duration, NANOS_PER_DAY};
use super::wire::{read_count, read_element};
use super::{CqlType, TypeError};

impl CqlType {
    /// Checks that `value` is a well-formed serialized value of this type.
    pub fn validate(&self, value: &[u8]) -> Result<(), TypeError> {
        if value.is_empty() && !self.is_collection() {
            return Ok(());
        }
        if let Some(size) = self.is_fixed_size() {
            self.check_size(value, size)?;
        }
        match self {
            CqlType::Text => validate_utf8(value),
            CqlType::Ascii => validate_ascii(value),
            CqlType::Inet => match value.len() {
                4 | 16 => Ok(()),
                actual => Err(TypeError::InetLength { actual }),
            },
            CqlType::Decimal if value.len() < 5 => Err(TypeError::DecimalTooShort {
                actual: value.len(),
            }),
            CqlType::Duration => Duration::decode(value).map(|_| ()),
            CqlType::Time => validate_time(value),
            CqlType::Timeuuid => match timeuuid_ticks(value) {
                Some(_) => Ok(()),
                None => Err(TypeError::TimeuuidVersion {
                    version: value[6] >> 4,
                }),
            },
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
                self.validate_elements(value, &[elem], 1)
            }
            CqlType::Map { key, value: v, .. } => self.validate_elements(value, &[key, v], 2),
            CqlType::Tuple(types) => self.validate_fields(value, types.iter()),
            CqlType::Udt(udt) => self.validate_fields(value, udt.fields.iter().map(|(_, t)| t)),
            _ => Ok(()),
        }
    }

    fn check_size(&self, value: &[u8], expected: usize) -> Result<(), TypeError> {
        if value.len() == expected {
            Ok(())
        } else {
            Err(TypeError::WrongSize {
                cql_type: self.to_string(),
                expected,
                actual: value.len(),
            })
        }
    }

    /// Validates a list/set (`types` = [elem]) or map (`types` = [key, value]).
    fn validate_elements(
        &self,
        value: &[u8],
        types: &[&CqlType],
        per_entry: usize,
    ) -> Result<(), TypeError> {
        let mut input = value;
        let n = read_count(&mut input).map_err(|m| m.into_error(self))?;
        for _ in 0..n {
            for ty in types.iter().take(per_entry) {
                let elem = read_element(&mut input).map_err(|m| m.into_error(self))?;
                ty.validate(elem.ok_or(TypeError::NullInCollection)?)?;
            }
        }
        self.expect_end(input)
    }

    /// Validates a tuple or UDT: at most one element per field, nulls allowed.
    fn validate_fields<'t>(
        &self,
        value: &[u8],
        types: impl ExactSizeIterator<Item = &'t CqlType>,
    ) -> Result<(), TypeError> {
        let expected = types.len();
        let mut input = value;
        let mut actual = 0;
        let mut types = types;
        while !input.is_empty() {
            let field = read_element(&mut input).map_err(|m| m.into_error(self))?;
            actual += 1;
            let Some(ty) = types.next() else {
                continue;
            };
            if let Some(field) = field {
                ty.validate(field)?;
            }
        }
        if actual > expected {
            return Err(TypeError::TooManyFields {
                cql_type: self.to_string(),
                expected,
                actual,
            });
        }
        Ok(())
    }

    fn expect_end(&self, rest: &[u8]) -> Result<(), TypeError> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(TypeError::TrailingBytes {
                cql_type: self.to_string(),
                count: rest.len(),
            })
        }
    }
}

fn validate_utf8(value: &[u8]) -> Result<(), TypeError> {
    std::str::from_utf8(value)
        .map(|_| ())
        .map_err(|e| TypeError::InvalidUtf8 {
            position: e.valid_up_to(),
        })
}

fn validate_ascii(value: &[u8]) -> Result<(), TypeError> {
    match value.iter().position(|b| *b > 127) {
        None => Ok(()),
        Some(position) => Err(TypeError::InvalidAscii {
            byte: value[position],
            position,
        }),
    }
}

fn validate_time(value: &[u8]) -> Result<(), TypeError> {
    let nanos = i64::from_be_bytes(value.try_into().expect("size checked by caller"));
    if (0..NANOS_PER_DAY).contains(&nanos) {
        Ok(())
    } else {
        Err(TypeError::TimeOutOfRange { nanos })
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::{serialize_collection, serialize_map, serialize_tuple};
    use super::*;

    #[test]
    fn fixed_sizes() {
        assert_eq!(
            CqlType::Int.validate(&[1, 2, 3]).unwrap_err().to_string(),
            "Expected 4 or 0 byte int (3)"
        );
        assert!(CqlType::Int.validate(&[]).is_ok());
        assert!(CqlType::Bigint.validate(&[0; 8]).is_ok());
        assert!(CqlType::Uuid.validate(&[0; 15]).is_err());
        assert!(CqlType::Boolean.validate(&[1, 0]).is_err());
    }

    #[test]
    fn strings_and_inet() {
        assert!(CqlType::Text.validate("héllo".as_bytes()).is_ok());
        assert_eq!(
            CqlType::Text.validate(&[b'a', 0xff]),
            Err(TypeError::InvalidUtf8 { position: 1 })
        );
        assert_eq!(
            CqlType::Ascii.validate(&[b'a', 200]),
            Err(TypeError::InvalidAscii {
                byte: 200,
                position: 1
            })
        );
        assert!(CqlType::Inet.validate(&[127, 0, 0, 1]).is_ok());
        assert_eq!(
            CqlType::Inet.validate(&[1, 2, 3]),
            Err(TypeError::InetLength { actual: 3 })
        );
    }

    #[test]
    fn temporal_and_numeric() {
        assert!(CqlType::Time.validate(&(-1i64).to_be_bytes()).is_err());
        assert!(CqlType::Time
            .validate(&(NANOS_PER_DAY - 1).to_be_bytes())
            .is_ok());
        let v4 = uuid::Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        assert!(CqlType::Uuid.validate(v4.as_bytes()).is_ok());
        assert_eq!(
            CqlType::Timeuuid.validate(v4.as_bytes()),
            Err(TypeError::TimeuuidVersion { version: 4 })
        );
        assert!(CqlType::Decimal.validate(&[0, 0, 0, 1]).is_err());
        assert!(CqlType::Decimal.validate(&[0, 0, 0, 1, 10]).is_ok());
        assert!(CqlType::Duration.validate(&[2, 1, 0]).is_err());
        assert!(CqlType::Duration.validate(&[2, 2, 2]).is_ok());
    }

    #[test]
    fn collections_recursively() {
        let list = CqlType::list(CqlType::Int, true);
        let good = serialize_collection(&[Some(&[0, 0, 0, 1])]);
        assert!(list.validate(&good).is_ok());
        let bad = serialize_collection(&[Some(&[0, 0, 1])]);
        assert!(list.validate(&bad).is_err());
        assert_eq!(
            list.validate(&serialize_collection(&[None])),
            Err(TypeError::NullInCollection)
        );
        assert!(list.validate(&[]).is_err());
        let map = CqlType::map(CqlType::Text, CqlType::Int, false);
        assert!(map
            .validate(&serialize_map(&[(b"a", &[0, 0, 0, 1])]))
            .is_ok());
        assert!(map.validate(&serialize_map(&[(b"a", &[0])])).is_err());
    }

    #[test]
    fn tuples_allow_fewer_fields_and_nulls() {
        let t = CqlType::tuple(vec![CqlType::Int, CqlType::Text]);
        assert!(t.validate(&serialize_tuple(&[Some(&[0, 0, 0, 1])])).is_ok());
        assert!(t.validate(&serialize_tuple(&[None, Some(b"x")])).is_ok());
        let too_many = serialize_tuple(&[None, None, None]);
        assert!(matches!(
            t.validate(&too_many),
            Err(TypeError::TooManyFields { actual: 3, .. })
        ));
        assert!(t.validate(&serialize_tuple(&[Some(&[0xff])])).is_err());
    }
}
