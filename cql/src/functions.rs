//! Native scalar functions usable in terms: `now()`, `uuid()`,
//! `currentTimestamp()`, `toTimestamp(...)`, `minTimeuuid(...)`, the
//! `typeAsBlob`/`blobAsType` conversions, and friends.
use bytes::Bytes;
use storage::types::{self, CqlType};

use crate::error::{invalid, CqlError};
use crate::parser::ast::Term;
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

fn one_arg<'a>(name: &str, args: &'a [Term]) -> Result<&'a Term, CqlError> {
    match args {
        [arg] => Ok(arg),
        _ => Err(invalid(format!(
            "Invalid number of arguments in call to function {name}: 1 required but {} provided",
            args.len()
        ))),
    }
}

fn no_args(name: &str, args: &[Term]) -> Result<(), CqlError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid number of arguments in call to function {name}: 0 required but {} provided",
            args.len()
        )))
    }
}

/// Calls the scalar function `name` (already lower-cased unless quoted)
/// for a receiver of type `ty`.
pub fn call_scalar(
    name: &str,
    args: &[Term],
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    let millis = ctx.now_micros.div_euclid(1000);
    let value = |bytes: Vec<u8>| Ok(Evaluated::Value(Bytes::from(bytes)));
    match name {
        "now" | "currenttimeuuid" => {
            no_args(name, args)?;
            Ok(Evaluated::Value(new_timeuuid(ctx.now_micros)))
        }
        "uuid" => {
            no_args(name, args)?;
            value(uuid::Uuid::new_v4().as_bytes().to_vec())
        }
        "currenttimestamp" => {
            no_args(name, args)?;
            value(millis.to_be_bytes().to_vec())
        }
        "currentdate" => {
            no_args(name, args)?;
            let date = types::timestamp_millis_to_date(millis)
                .ok_or_else(|| invalid("date out of range"))?;
            value(date.to_be_bytes().to_vec())
        }
        "currenttime" => {
            no_args(name, args)?;
            let nanos = ctx.now_micros.rem_euclid(86_400_000_000) * 1000;
            value(nanos.to_be_bytes().to_vec())
        }
        "totimestamp" | "tounixtimestamp" | "todate" | "dateof" | "unixtimestampof" => {
            convert_time(name, one_arg(name, args)?, ctx)
        }
        "mintimeuuid" | "maxtimeuuid" => {
            let arg = eval(one_arg(name, args)?, &CqlType::Timestamp, ctx)?.required(name)?;
            let ms = i64::from_be_bytes(
                arg.as_ref()
                    .try_into()
                    .map_err(|_| invalid("bad timestamp"))?,
            );
            let id = if name == "mintimeuuid" {
                types::min_timeuuid(ms)
            } else {
                types::max_timeuuid(ms)
            };
            value(id.to_vec())
        }
        _ => blob_conversion(name, args, ty, ctx),
    }
}

/// `toTimestamp(x)`, `toDate(x)`, `toUnixTimestamp(x)` of a timeuuid, date or timestamp.
fn convert_time(name: &str, arg: &Term, ctx: &EvalContext<'_>) -> Result<Evaluated, CqlError> {
    // The argument is most often now() or a timeuuid marker.
    let raw = eval(arg, &CqlType::Timeuuid, ctx)?.required(name)?;
    let millis = types::timeuuid_to_millis(&raw)
        .ok_or_else(|| invalid(format!("Invalid argument to {name}")))?;
    let bytes = match name {
        "todate" => types::timestamp_millis_to_date(millis)
            .ok_or_else(|| invalid("date out of range"))?
            .to_be_bytes()
            .to_vec(),
        _ => millis.to_be_bytes().to_vec(),
    };
    Ok(Evaluated::Value(Bytes::from(bytes)))
}

fn native_type_named(name: &str) -> Option<CqlType> {
    Some(match name {
        "ascii" => CqlType::Ascii,
        "bigint" => CqlType::Bigint,
        "blob" => CqlType::Blob,
        "boolean" => CqlType::Boolean,
        "date" => CqlType::Date,
        "decimal" => CqlType::Decimal,
        "double" => CqlType::Double,
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

fn blob_conversion(
    name: &str,
    args: &[Term],
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    if let Some(source) = name.strip_suffix("asblob").and_then(native_type_named) {
        return eval(one_arg(name, args)?, &source, ctx);
    }
    if let Some(target) = name.strip_prefix("blobas").and_then(native_type_named) {
        let raw = eval(one_arg(name, args)?, &CqlType::Blob, ctx)?;
        if let Evaluated::Value(bytes) = &raw {
            target.validate(bytes)?;
        }
        let _ = ty;
        return Ok(raw);
    }
    Err(invalid(format!("Unknown function '{name}'")))
}
