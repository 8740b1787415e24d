//! Native scalar functions: `now()`, `uuid()`, `currentTimestamp()`,
//! `toTimestamp(...)`, `minTimeuuid(...)`, the `typeAsBlob`/`blobAsType`
//! conversions, `toJson`/`fromJson` and `CAST`.
//!
//! A function is resolved once against its argument types into a
//! [`ScalarFn`] (which fixes its return type) and then applied to wire
//! values. Terms (INSERT values, WHERE values) and selectors share this: a
//! term's arguments are typed by a type hint, a nested call's return type,
//! or else the function's usual argument type, while a selector's arguments
//! are typed by the columns they read. Native functions return null for a
//! null argument.
use bytes::Bytes;
use storage::types::{self, CqlType};

use crate::error::{invalid, CqlError};
use crate::parser::ast::{self, Term};
use crate::values::{eval, EvalContext, Evaluated};

/// Per-process node bits for generated timeuuids: random, fixed at start.
fn clock_seq_and_node() -> u64 {
    use std::sync::OnceLock;
    static NODE: OnceLock<u64> = OnceLock::new();
    *NODE.get_or_init(|| {
        u64::from_be_bytes(
            *uuid::Uuid::new_v4()
                .as_bytes()
                .first_chunk()
                .expect("16 bytes"),
        )
    })
}

/// A new time-based uuid for `micros`.
pub fn new_timeuuid(micros: i64) -> Bytes {
    Bytes::copy_from_slice(&types::timeuuid_from_micros(micros, clock_seq_and_node()))
}

/// A native scalar function resolved against its argument types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalarFn {
    Now,
    Uuid,
    CurrentTimestamp,
    CurrentDate,
    CurrentTime,
    /// `toTimestamp`/`dateOf` of a timeuuid, date or timestamp.
    ToTimestamp(CqlType),
    /// `toDate` of a timeuuid, timestamp or date.
    ToDate(CqlType),
    /// `toUnixTimestamp`/`unixTimestampOf` of a timeuuid, timestamp or date.
    ToUnixTimestamp(CqlType),
    MinTimeuuid,
    MaxTimeuuid,
    /// `<type>AsBlob`: the value's bytes, retyped.
    TypeAsBlob,
    /// `blobAs<type>`: the bytes, validated as the type.
    BlobAsType(CqlType),
    /// `toJson` of a value of the given type.
    ToJson(CqlType),
    /// `fromJson` into the given type.
    FromJson(CqlType),
    Cast {
        from: CqlType,
        to: CqlType,
    },
}

fn arity(name: &str, want: usize, got: usize) -> Result<(), CqlError> {
    if want == got {
        return Ok(());
    }
    Err(invalid(format!(
        "Invalid number of arguments in call to function system.{name}: {want} required but {got} provided"
    )))
}

/// Resolves native function `name` (lower-cased) for arguments of `args` types.
pub fn resolve(name: &str, args: &[CqlType]) -> Result<ScalarFn, CqlError> {
    let nullary = match name {
        "now" | "currenttimeuuid" => Some(ScalarFn::Now),
        "uuid" => Some(ScalarFn::Uuid),
        "currenttimestamp" => Some(ScalarFn::CurrentTimestamp),
        "currentdate" => Some(ScalarFn::CurrentDate),
        "currenttime" => Some(ScalarFn::CurrentTime),
        _ => None,
    };
    if let Some(f) = nullary {
        arity(name, 0, args.len())?;
        return Ok(f);
    }
    let Some(arg) = args.first() else {
        return Err(unknown_or_arity(name, 0));
    };
    arity(name, 1, args.len())?;
    let bad_arg = || {
        let expected = match name {
            "mintimeuuid" | "maxtimeuuid" => "timestamp",
            "dateof" | "unixtimestampof" => "timeuuid",
            _ => "timeuuid, timestamp or date",
        };
        invalid(format!(
            "Type error: cannot pass an argument of type {} to function system.{name}, which takes an argument of type {expected}",
            arg.cql_name()
        ))
    };
    let time_arg = matches!(arg, CqlType::Timeuuid | CqlType::Timestamp | CqlType::Date);
    Ok(match name {
        "totimestamp" if time_arg => ScalarFn::ToTimestamp(arg.clone()),
        "todate" if time_arg => ScalarFn::ToDate(arg.clone()),
        "tounixtimestamp" if time_arg => ScalarFn::ToUnixTimestamp(arg.clone()),
        "dateof" if *arg == CqlType::Timeuuid => ScalarFn::ToTimestamp(arg.clone()),
        "unixtimestampof" if *arg == CqlType::Timeuuid => ScalarFn::ToUnixTimestamp(arg.clone()),
        "mintimeuuid" | "maxtimeuuid" if matches!(arg, CqlType::Timestamp | CqlType::Bigint) => {
            if name == "mintimeuuid" {
                ScalarFn::MinTimeuuid
            } else {
                ScalarFn::MaxTimeuuid
            }
        }
        "totimestamp" | "todate" | "tounixtimestamp" | "dateof" | "unixtimestampof"
        | "mintimeuuid" | "maxtimeuuid" => return Err(bad_arg()),
        "tojson" => ScalarFn::ToJson(arg.clone()),
        _ => return blob_function(name, arg),
    })
}

fn unknown_or_arity(name: &str, got: usize) -> CqlError {
    if default_arg_type(name).is_some() || name == "tojson" {
        return invalid(format!(
            "Invalid number of arguments in call to function system.{name}: 1 required but {got} provided"
        ));
    }
    unknown_function(name)
}

/// The error for a call of `name` where a scalar function is expected.
fn unknown_function(name: &str) -> CqlError {
    if matches!(name, "count" | "sum" | "avg" | "min" | "max") {
        return invalid(format!(
            "Aggregation functions are only allowed in a SELECT's selection, not here: {name}"
        ));
    }
    invalid(format!("Unknown function '{name}'"))
}

fn blob_function(name: &str, arg: &CqlType) -> Result<ScalarFn, CqlError> {
    if let Some(source) = name.strip_suffix("asblob").and_then(native_type_named) {
        if *arg != source && !(source == CqlType::Text && *arg == CqlType::Ascii) {
            return Err(invalid(format!(
                "Type error: cannot pass an argument of type {} to function system.{name} (expects {})",
                arg.cql_name(),
                source.cql_name()
            )));
        }
        return Ok(ScalarFn::TypeAsBlob);
    }
    if let Some(target) = name.strip_prefix("blobas").and_then(native_type_named) {
        if *arg != CqlType::Blob {
            return Err(invalid(format!(
                "Type error: cannot pass an argument of type {} to function system.{name} (expects blob)",
                arg.cql_name()
            )));
        }
        return Ok(ScalarFn::BlobAsType(target));
    }
    Err(unknown_function(name))
}

/// The type a term argument of function `name` takes when nothing else
/// types it (a bare literal or bind marker).
pub fn default_arg_type(name: &str) -> Option<CqlType> {
    match name {
        "totimestamp" | "todate" | "tounixtimestamp" | "dateof" | "unixtimestampof" => {
            Some(CqlType::Timeuuid)
        }
        "mintimeuuid" | "maxtimeuuid" => Some(CqlType::Timestamp),
        "fromjson" => Some(CqlType::Text),
        _ => {
            if let Some(source) = name.strip_suffix("asblob").and_then(native_type_named) {
                return Some(source);
            }
            name.strip_prefix("blobas")
                .and_then(native_type_named)
                .map(|_| CqlType::Blob)
        }
    }
}

impl ScalarFn {
    /// The type of the function's result.
    pub fn return_type(&self) -> CqlType {
        match self {
            ScalarFn::Now | ScalarFn::MinTimeuuid | ScalarFn::MaxTimeuuid => CqlType::Timeuuid,
            ScalarFn::Uuid => CqlType::Uuid,
            ScalarFn::CurrentTimestamp | ScalarFn::ToTimestamp(_) => CqlType::Timestamp,
            ScalarFn::CurrentDate | ScalarFn::ToDate(_) => CqlType::Date,
            ScalarFn::CurrentTime => CqlType::Time,
            ScalarFn::ToUnixTimestamp(_) => CqlType::Bigint,
            ScalarFn::TypeAsBlob => CqlType::Blob,
            ScalarFn::BlobAsType(t) | ScalarFn::FromJson(t) => t.clone(),
            ScalarFn::ToJson(_) => CqlType::Text,
            ScalarFn::Cast { to, .. } => to.clone(),
        }
    }

    /// Applies the function to wire values (`None` is null).
    pub fn apply(
        &self,
        args: &[Option<Bytes>],
        now_micros: i64,
    ) -> Result<Option<Bytes>, CqlError> {
        let value = |bytes: Vec<u8>| Ok(Some(Bytes::from(bytes)));
        let millis = now_micros.div_euclid(1000);
        match self {
            ScalarFn::Now => Ok(Some(new_timeuuid(now_micros))),
            ScalarFn::Uuid => value(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ScalarFn::CurrentTimestamp => value(millis.to_be_bytes().to_vec()),
            ScalarFn::CurrentDate => value(to_date(millis)?.to_be_bytes().to_vec()),
            ScalarFn::CurrentTime => {
                let nanos = now_micros.rem_euclid(86_400_000_000) * 1000;
                value(nanos.to_be_bytes().to_vec())
            }
            ScalarFn::ToJson(ty) => {
                let arg = args.first().cloned().flatten();
                value(crate::json::to_json(ty, arg.as_deref()).into_bytes())
            }
            _ => {
                let Some(arg) = args.first().cloned().flatten() else {
                    return Ok(None);
                };
                self.apply_unary(arg)
            }
        }
    }

    fn apply_unary(&self, arg: Bytes) -> Result<Option<Bytes>, CqlError> {
        let value = |bytes: Vec<u8>| Ok(Some(Bytes::from(bytes)));
        match self {
            ScalarFn::ToTimestamp(ty) => value(millis_of(ty, &arg)?.to_be_bytes().to_vec()),
            ScalarFn::ToUnixTimestamp(ty) => value(millis_of(ty, &arg)?.to_be_bytes().to_vec()),
            ScalarFn::ToDate(ty) => value(to_date(millis_of(ty, &arg)?)?.to_be_bytes().to_vec()),
            ScalarFn::MinTimeuuid | ScalarFn::MaxTimeuuid => {
                let ms = millis_of(&CqlType::Timestamp, &arg)?;
                value(if *self == ScalarFn::MinTimeuuid {
                    types::min_timeuuid(ms).to_vec()
                } else {
                    types::max_timeuuid(ms).to_vec()
                })
            }
            ScalarFn::TypeAsBlob => Ok(Some(arg)),
            ScalarFn::BlobAsType(ty) => {
                ty.validate(&arg).map_err(|e| {
                    invalid(format!(
                        "In call to function system.blobas{}: value is not a valid binary representation for type {} ({e})",
                        ty.cql_name(),
                        ty.cql_name()
                    ))
                })?;
                Ok(Some(arg))
            }
            ScalarFn::FromJson(ty) => {
                let failure = |message: String| CqlError::FunctionFailure {
                    keyspace: "system".to_string(),
                    function: "fromjson".to_string(),
                    arg_types: vec!["text".to_string()],
                    message,
                };
                let text = std::str::from_utf8(&arg)
                    .map_err(|_| failure("fromJson() argument is not valid UTF-8".into()))?;
                crate::json::from_json(text, ty).map_err(|e| failure(e.to_string()))
            }
            ScalarFn::Cast { from, to } => cast(&arg, from, to),
            _ => Ok(Some(arg)),
        }
    }
}

/// Milliseconds since the epoch of a timeuuid, timestamp or date value.
fn millis_of(ty: &CqlType, v: &[u8]) -> Result<i64, CqlError> {
    let bad = || invalid(format!("Invalid {} value", ty.cql_name()));
    match ty {
        CqlType::Timeuuid => types::timeuuid_to_millis(v).ok_or_else(bad),
        CqlType::Date => Ok(types::date_to_timestamp_millis(u32::from_be_bytes(
            v.try_into().map_err(|_| bad())?,
        ))),
        _ => Ok(i64::from_be_bytes(v.try_into().map_err(|_| bad())?)),
    }
}

fn to_date(millis: i64) -> Result<u32, CqlError> {
    types::timestamp_millis_to_date(millis).ok_or_else(|| invalid("date out of range"))
}

/// The schema type of a native syntax type (`None` for collections,
/// tuples, UDTs and custom types, which casts and hints do not take).
pub fn native_type(ty: &ast::CqlType) -> Option<CqlType> {
    match ty {
        ast::CqlType::Native(n) => native_type_named(n.name()),
        _ => None,
    }
}

fn native_type_named(name: &str) -> Option<CqlType> {
    Some(match name {
        "ascii" => CqlType::Ascii,
        "bigint" => CqlType::Bigint,
        "blob" => CqlType::Blob,
        "boolean" => CqlType::Boolean,
        "counter" => CqlType::Counter,
        "date" => CqlType::Date,
        "decimal" => CqlType::Decimal,
        "double" => CqlType::Double,
        "duration" => CqlType::Duration,
        "float" => CqlType::Float,
        "inet" => CqlType::Inet,
        "int" => CqlType::Int,
        "smallint" => CqlType::Smallint,
        "text" | "varchar" => CqlType::Text,
        "time" => CqlType::Time,
        "timestamp" => CqlType::Timestamp,
        "timeuuid" => CqlType::Timeuuid,
        "tinyint" => CqlType::Tinyint,
        "uuid" => CqlType::Uuid,
        "varint" => CqlType::Varint,
        _ => return None,
    })
}

/// Whether a value of type `from` may be stored where `to` is expected:
/// the same type, anything into a blob, ascii into text, integers into varint.
pub fn assignable(from: &CqlType, to: &CqlType) -> bool {
    use CqlType as T;
    from == to
        || *to == T::Blob
        || (*to == T::Text && *from == T::Ascii)
        || (*to == T::Varint && matches!(from, T::Tinyint | T::Smallint | T::Int | T::Bigint))
}

/// The type a term is known to have on its own: a type hint, or a function
/// call's return type. `None` for literals and markers, which take their
/// receiver's type.
pub fn term_type(term: &Term) -> Option<CqlType> {
    match term {
        Term::TypeHint { ty, .. } => native_type(ty),
        Term::FunctionCall { name, args } if name.keyspace.as_deref() != Some(JSON_COLUMN) => {
            let arg_types: Vec<CqlType> = args.iter().map(arg_type_of(&name.name)).collect();
            match name.name.as_str() {
                "fromjson" => None,
                n => resolve(n, &arg_types).ok().map(|f| f.return_type()),
            }
        }
        _ => None,
    }
}

fn arg_type_of(name: &str) -> impl Fn(&Term) -> CqlType + '_ {
    move |t| {
        term_type(t)
            .or_else(|| default_arg_type(name))
            .unwrap_or(CqlType::Blob)
    }
}

/// The pseudo keyspace of the per-column terms INSERT JSON is rewritten to:
/// `[json].<column>([doc], default_unset, columns...)`.
pub const JSON_COLUMN: &str = "[json]";

/// INSERT JSON as plain INSERT: every column of the table, each taking
/// its value out of the document `doc` (the first one also checks that
/// the document names no other column).
pub fn insert_json_terms(
    table: &storage::schema::TableDef,
    doc: &Term,
    default_unset: bool,
) -> (Vec<String>, Vec<Term>) {
    let constant = |kind, text: &str| {
        Term::Constant(ast::Constant {
            kind,
            text: text.to_string(),
        })
    };
    let columns: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let terms = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let mut args = vec![
                doc.clone(),
                constant(ast::ConstantKind::Boolean, &default_unset.to_string()),
            ];
            if i == 0 {
                args.extend(
                    columns
                        .iter()
                        .map(|c| constant(ast::ConstantKind::String, c)),
                );
            }
            Term::FunctionCall {
                name: ast::QualifiedName {
                    keyspace: Some(JSON_COLUMN.to_string()),
                    name: column.clone(),
                },
                args,
            }
        })
        .collect();
    (columns, terms)
}

/// Calls the scalar function `name` (already lower-cased unless quoted)
/// for a receiver of type `ty`.
pub fn call_scalar(
    name: &ast::QualifiedName,
    args: &[Term],
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    if name.keyspace.as_deref() == Some(JSON_COLUMN) {
        return json_column(&name.name, args, ty, ctx);
    }
    let name = name.name.as_str();
    let arg_types: Vec<CqlType> = args.iter().map(arg_type_of(name)).collect();
    let f = if name == "fromjson" {
        arity(name, 1, args.len())?;
        ScalarFn::FromJson(ty.clone())
    } else {
        resolve(name, &arg_types)?
    };
    let ret = f.return_type();
    if !assignable(&ret, ty) {
        return Err(invalid(format!(
            "Type error: cannot assign result of function system.{name} (type {}) to a value of type {}",
            ret.cql_name(),
            ty.cql_name()
        )));
    }
    let mut values = Vec::with_capacity(args.len());
    for (arg, arg_ty) in args.iter().zip(&arg_types) {
        values.push(match eval(arg, arg_ty, ctx)? {
            Evaluated::Value(v) => Some(v),
            Evaluated::Null => None,
            Evaluated::Unset => {
                return Err(invalid(format!(
                    "Invalid unset value for argument in call to function {name}"
                )))
            }
        });
    }
    Ok(match f.apply(&values, ctx.now_micros)? {
        Some(v) => Evaluated::Value(v),
        None => Evaluated::Null,
    })
}

/// One column's value out of an INSERT JSON document: absent columns are
/// null (or unset with DEFAULT UNSET). The term carrying the list of all
/// columns also rejects keys naming no column.
fn json_column(
    column: &str,
    args: &[Term],
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    let [doc, default_unset, columns @ ..] = args else {
        return Err(CqlError::Server("malformed INSERT JSON term".into()));
    };
    let text = match eval(doc, &CqlType::Text, ctx)? {
        Evaluated::Value(v) => v,
        _ => return Err(invalid("Got null for INSERT JSON values")),
    };
    let text = std::str::from_utf8(&text).map_err(|_| invalid("INSERT JSON is not UTF-8"))?;
    let json = crate::json::parse(text).map_err(|e| invalid(e.to_string()))?;
    let serde_json::Value::Object(fields) = &json else {
        return Err(invalid(format!(
            "Could not decode JSON string as a map: {text}"
        )));
    };
    let names: Vec<&str> = columns
        .iter()
        .filter_map(|t| match t {
            Term::Constant(c) => Some(c.text.as_str()),
            _ => None,
        })
        .collect();
    let mut found = None;
    for (key, value) in fields {
        let name = crate::json::identifier(key);
        if name == column {
            found = Some(value);
        } else if !names.is_empty() && !names.contains(&name.as_str()) {
            return Err(invalid(
                crate::json::JsonError::UnknownColumn { column: name }.to_string(),
            ));
        }
    }
    match found {
        Some(value) => match crate::json::value_from_json(value, ty) {
            Ok(Some(v)) => Ok(Evaluated::Value(v)),
            Ok(None) => Ok(Evaluated::Null),
            Err(e) => Err(invalid(format!(
                "Error decoding JSON value for {column}: {e}"
            ))),
        },
        None if matches!(default_unset, Term::Constant(c) if c.text == "true") => {
            Ok(Evaluated::Unset)
        }
        None => Ok(Evaluated::Null),
    }
}

// ---------------------------------------------------------------- CAST

/// A number read from any numeric type, kept exact where the type is.
enum Number {
    Int(num_bigint::BigInt),
    Float(f64),
    Decimal(bigdecimal::BigDecimal),
}

fn is_numeric(ty: &CqlType) -> bool {
    use CqlType as T;
    matches!(
        ty,
        T::Tinyint
            | T::Smallint
            | T::Int
            | T::Bigint
            | T::Counter
            | T::Varint
            | T::Float
            | T::Double
            | T::Decimal
    )
}

/// Checks that `CAST(x AS to)` is defined for `x` of type `from`.
pub fn check_cast(from: &CqlType, to: &CqlType) -> Result<(), CqlError> {
    use CqlType as T;
    let ok = match to {
        T::Counter => false,
        T::Ascii | T::Text => !from.is_collection() && !matches!(from, T::Tuple(_) | T::Udt(_)),
        _ if is_numeric(to) => is_numeric(from),
        T::Timestamp => matches!(from, T::Date | T::Timeuuid),
        T::Date => matches!(from, T::Timestamp | T::Timeuuid),
        _ => false,
    };
    if ok || from == to {
        return Ok(());
    }
    Err(invalid(format!(
        "{} cannot be cast to {}",
        from.cql_name(),
        to.cql_name()
    )))
}

/// `CAST(value AS to)` of a `from` value; numeric narrowing wraps around
/// and floating point to integer truncates, as two's complement casts do.
pub fn cast(value: &[u8], from: &CqlType, to: &CqlType) -> Result<Option<Bytes>, CqlError> {
    use CqlType as T;
    if value.is_empty() {
        return Ok(None);
    }
    let bytes = match to {
        _ if from == to => value.to_vec(),
        T::Ascii | T::Text => cast_to_text(value, from).into_bytes(),
        T::Timestamp => millis_of(from, value)?.to_be_bytes().to_vec(),
        T::Date => to_date(millis_of(from, value)?)?.to_be_bytes().to_vec(),
        _ => number_to(read_number(value, from)?, to)?,
    };
    Ok(Some(Bytes::from(bytes)))
}

fn cast_to_text(value: &[u8], from: &CqlType) -> String {
    use CqlType as T;
    match from {
        T::Ascii | T::Text => String::from_utf8_lossy(value).into_owned(),
        T::Float if value.len() == 4 => {
            let x = f32::from_be_bytes(value.try_into().expect("length checked"));
            format_float(f64::from(x), format!("{x:?}"))
        }
        T::Double if value.len() == 8 => {
            let x = f64::from_be_bytes(value.try_into().expect("length checked"));
            format_float(x, format!("{x:?}"))
        }
        T::Timestamp if value.len() == 8 => {
            let json = crate::json::to_json(from, Some(value));
            json.trim_matches('"').replacen(' ', "T", 1)
        }
        T::Blob => value.iter().map(|b| format!("{b:02x}")).collect(),
        _ => {
            let text = from.to_cql_literal(value);
            match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                Some(inner) => inner.replace("''", "'"),
                None => text,
            }
        }
    }
}

fn format_float(x: f64, debug: String) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        debug
    }
}

fn read_number(v: &[u8], ty: &CqlType) -> Result<Number, CqlError> {
    use num_bigint::BigInt;
    use CqlType as T;
    let bad = || invalid(format!("Invalid {} value", ty.cql_name()));
    Ok(match ty {
        T::Float => Number::Float(f64::from(f32::from_be_bytes(
            v.try_into().map_err(|_| bad())?,
        ))),
        T::Double => Number::Float(f64::from_be_bytes(v.try_into().map_err(|_| bad())?)),
        T::Decimal => {
            let (scale, unscaled) = v.split_first_chunk::<4>().ok_or_else(bad)?;
            Number::Decimal(bigdecimal::BigDecimal::new(
                BigInt::from_signed_bytes_be(unscaled),
                i64::from(i32::from_be_bytes(*scale)),
            ))
        }
        _ if is_numeric(ty) => Number::Int(BigInt::from_signed_bytes_be(v)),
        _ => return Err(bad()),
    })
}

fn number_to(n: Number, to: &CqlType) -> Result<Vec<u8>, CqlError> {
    use CqlType as T;
    let width = match to {
        T::Tinyint => 1,
        T::Smallint => 2,
        T::Int => 4,
        T::Bigint | T::Counter => 8,
        _ => 0,
    };
    Ok(match (to, n) {
        (T::Float, n) => (as_f64(&n) as f32).to_be_bytes().to_vec(),
        (T::Double, n) => as_f64(&n).to_be_bytes().to_vec(),
        (T::Decimal, n) => {
            let d = match n {
                Number::Int(i) => bigdecimal::BigDecimal::from(i),
                Number::Decimal(d) => d,
                Number::Float(f) => format!("{f:?}")
                    .parse()
                    .map_err(|_| invalid(format!("{f} cannot be cast to decimal")))?,
            };
            decimal_bytes(&d)
        }
        (_, Number::Float(f)) if width > 0 => {
            // Below 64 bits the value saturates to 32 bits first, then wraps.
            let whole = if width == 8 {
                i128::from(f as i64)
            } else {
                i128::from(f as i32)
            };
            whole.to_be_bytes()[16 - width..].to_vec()
        }
        (T::Varint, n) => integer_of(n).to_signed_bytes_be(),
        (_, n) if width > 0 => {
            let bytes = integer_of(n).to_signed_bytes_be();
            let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut out = vec![fill; width.saturating_sub(bytes.len())];
            out.extend_from_slice(&bytes[bytes.len().saturating_sub(width)..]);
            out
        }
        _ => return Err(invalid(format!("cannot be cast to {}", to.cql_name()))),
    })
}

fn as_f64(n: &Number) -> f64 {
    use num_traits::ToPrimitive;
    match n {
        Number::Int(i) => i.to_f64().unwrap_or(f64::NAN),
        Number::Float(f) => *f,
        Number::Decimal(d) => d.to_f64().unwrap_or(f64::NAN),
    }
}

fn integer_of(n: Number) -> num_bigint::BigInt {
    match n {
        Number::Int(i) => i,
        Number::Float(f) => num_bigint::BigInt::from(f as i64),
        Number::Decimal(d) => d.with_scale(0).into_bigint_and_exponent().0,
    }
}

fn decimal_bytes(d: &bigdecimal::BigDecimal) -> Vec<u8> {
    let (unscaled, scale) = d.as_bigint_and_exponent();
    let scale = i32::try_from(scale).unwrap_or(i32::MAX);
    let mut out = scale.to_be_bytes().to_vec();
    out.extend_from_slice(&unscaled.to_signed_bytes_be());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_conversions() {
        let ts = ScalarFn::ToDate(CqlType::Timestamp);
        let day = ts
            .apply(
                &[Some(Bytes::from(
                    (2 * 86_400_000i64).to_be_bytes().to_vec(),
                ))],
                0,
            )
            .expect("valid")
            .expect("not null");
        assert_eq!(&day[..], &(types::DATE_EPOCH_DAYS + 2).to_be_bytes());
        let f = resolve("tounixtimestamp", &[CqlType::Date]).expect("resolves");
        assert_eq!(f.return_type(), CqlType::Bigint);
        assert_eq!(f.apply(&[None], 0).expect("null in"), None);
        assert!(resolve("mintimeuuid", &[CqlType::Int]).is_err());
        assert!(resolve("nosuchfunction", &[CqlType::Int]).is_err());
    }

    #[test]
    fn an_aggregate_where_a_scalar_is_expected_is_named_as_one() {
        for name in ["sum", "count", "max"] {
            let error = resolve(name, &[CqlType::Int]).expect_err("not a scalar");
            assert!(error.to_string().contains("Aggregation"), "{error}");
        }
        let error = resolve("nosuchfunction", &[CqlType::Int]).expect_err("unknown");
        assert!(error.to_string().contains("Unknown function"), "{error}");
    }

    #[test]
    fn blob_conversions_check_types() {
        assert_eq!(
            resolve("blobasint", &[CqlType::Blob]).expect("resolves"),
            ScalarFn::BlobAsType(CqlType::Int)
        );
        assert!(resolve("blobasint", &[CqlType::Int]).is_err());
        let f = ScalarFn::BlobAsType(CqlType::Int);
        assert!(f.apply(&[Some(Bytes::from_static(&[1, 2]))], 0).is_err());
        assert!(assignable(&CqlType::Int, &CqlType::Blob));
        assert!(!assignable(&CqlType::Int, &CqlType::Bigint));
    }
}
