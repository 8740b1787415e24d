//! Turning terms of a statement into wire values of a known type.
//!
//! A term is evaluated against the type of its receiver (the column it is
//! assigned to or compared with), since CQL literals are untyped: `1` is an
//! int for an int column and a bigint for a bigint one, `{}` is an empty map
//! or set. Bind markers take the values the client sent, checked against the
//! same type. [`BindSpecs`] records each marker's receiver while a statement
//! is prepared, which becomes the bind metadata the drivers serialize by.
use bytes::Bytes;
use storage::types::{CqlType, Literal};

use crate::error::{invalid, CqlError};
use crate::frame::Value;
use crate::parser::ast::{self, Constant, ConstantKind, Term};

/// An evaluated term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluated {
    Null,
    /// A bind marker the client left unset: the assignment is skipped.
    Unset,
    Value(Bytes),
}

impl Evaluated {
    /// The value, or an error naming what `what()` describes when it is
    /// null or unset (the description is only built on the error path).
    pub fn required_with(self, what: impl FnOnce() -> String) -> Result<Bytes, CqlError> {
        match self {
            Evaluated::Value(v) => Ok(v),
            other => other.required(&what()),
        }
    }

    /// The value, or an error naming `what` when it is null or unset.
    pub fn required(self, what: &str) -> Result<Bytes, CqlError> {
        match self {
            Evaluated::Value(v) => Ok(v),
            Evaluated::Null => Err(invalid(format!("Invalid null value for {what}"))),
            Evaluated::Unset => Err(invalid(format!("Invalid unset value for {what}"))),
        }
    }
}

/// What a term is evaluated with: the bound values and the statement's clock.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    pub values: &'a [Value],
    pub now_micros: i64,
}

/// The receiver of each bind marker, by marker index.
#[derive(Debug, Clone, Default)]
pub struct BindSpecs {
    /// The name (a named marker's own name, else its receiver's) and type.
    pub specs: Vec<Option<(String, CqlType)>>,
    /// The receiver each marker binds (the column, for `col = ?` or
    /// `col = :name`), which decides the partition key indexes.
    pub receivers: Vec<Option<String>>,
}

impl BindSpecs {
    /// Room for `count` markers.
    pub fn new(count: usize) -> Self {
        BindSpecs {
            specs: vec![None; count],
            receivers: vec![None; count],
        }
    }

    /// Records that marker `index` receives `name` of type `ty`.
    pub fn set(&mut self, index: usize, name: &str, ty: &CqlType) {
        if let Some(slot) = self.specs.get_mut(index) {
            *slot = Some((name.to_string(), ty.clone()));
        }
        if let Some(slot) = self.receivers.get_mut(index) {
            *slot = Some(name.to_string());
        }
    }

    /// Walks `term` as it would be evaluated against `ty`, recording markers.
    pub fn collect(&mut self, term: &Term, name: &str, ty: &CqlType) {
        match term {
            Term::Bind(marker) => {
                self.set(marker.index, name, ty);
                if let (Some(own), Some(Some(spec))) =
                    (&marker.name, self.specs.get_mut(marker.index))
                {
                    spec.0 = own.clone();
                }
            }
            Term::List(items) | Term::Set(items) => {
                if let Some(elem) = element_type(ty) {
                    for item in items {
                        self.collect(item, &format!("value({name})"), &elem);
                    }
                }
            }
            Term::Map(pairs) => {
                if let CqlType::Map { key, value, .. } = ty {
                    for (k, v) in pairs {
                        self.collect(k, &format!("key({name})"), key);
                        self.collect(v, &format!("value({name})"), value);
                    }
                }
            }
            Term::Tuple(items) => {
                if let CqlType::Tuple(types) = ty {
                    for (i, (item, t)) in items.iter().zip(types).enumerate() {
                        self.collect(item, &format!("{name}[{i}]"), t);
                    }
                }
            }
            Term::Udt(fields) => {
                if let CqlType::Udt(udt) = ty {
                    for (field, item) in fields {
                        if let Some((_, t)) = udt.fields.iter().find(|(f, _)| f == field) {
                            self.collect(item, &format!("{name}.{field}"), t);
                        }
                    }
                }
            }
            Term::TypeHint { ty: hint, term } => {
                let hinted = crate::functions::native_type(hint);
                self.collect(term, name, hinted.as_ref().unwrap_or(ty))
            }
            Term::FunctionCall { name: f, args } => self.collect_call(f, args, name, ty),
            _ => {}
        }
    }

    /// Function arguments: a marker is typed by the function's signature
    /// (`fromJson(?)` takes text, `blobAsInt(?)` a blob, ...).
    fn collect_call(&mut self, f: &ast::QualifiedName, args: &[Term], name: &str, ty: &CqlType) {
        if f.keyspace.as_deref() == Some(crate::functions::JSON_COLUMN) {
            if let Some(doc) = args.first() {
                self.collect(doc, "[json]", &CqlType::Text);
            }
            return;
        }
        let _ = (name, ty);
        for (i, arg) in args.iter().enumerate() {
            let arg_ty = crate::functions::term_type(arg)
                .or_else(|| crate::functions::default_arg_type(&f.name));
            if let Some(arg_ty) = arg_ty {
                self.collect(arg, &format!("arg{i}({})", f.name), &arg_ty);
            }
        }
    }

    /// True when every marker has a receiver.
    pub fn complete(&self) -> bool {
        self.specs.iter().all(Option::is_some)
    }
}

/// The element type of a list or set (for a map, its value type).
pub fn element_type(ty: &CqlType) -> Option<CqlType> {
    match ty {
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => Some((**elem).clone()),
        CqlType::Map { value, .. } => Some((**value).clone()),
        _ => None,
    }
}

/// Evaluates `term` as a value of type `ty`.
pub fn eval(term: &Term, ty: &CqlType, ctx: &EvalContext<'_>) -> Result<Evaluated, CqlError> {
    match term {
        Term::Null => Ok(Evaluated::Null),
        Term::Bind(marker) => bound_value(marker, ty, ctx),
        Term::FunctionCall { name, args } => call_function(name, args, ty, ctx),
        Term::TypeHint { ty: hint, term } => eval_hinted(hint, term, ty, ctx),
        _ => {
            let literal = to_literal(term, ty, ctx)?;
            match ty
                .literal_to_value(&literal)
                .map_err(|e| describe(e, term, ty))?
            {
                Some(bytes) => Ok(Evaluated::Value(bytes)),
                None => Ok(Evaluated::Null),
            }
        }
    }
}

/// `(type) term`: the term is read as the hinted type, which must fit the receiver.
fn eval_hinted(
    hint: &ast::CqlType,
    term: &Term,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    let Some(hinted) = crate::functions::native_type(hint) else {
        return eval(term, ty, ctx);
    };
    if !crate::functions::assignable(&hinted, ty) {
        return Err(invalid(format!(
            "Type error: ({hint}){term} of type {} cannot be used for a value of type {}",
            hinted.cql_name(),
            ty.cql_name()
        )));
    }
    eval(term, &hinted, ctx)
}

fn describe(error: storage::types::TypeError, term: &Term, ty: &CqlType) -> CqlError {
    invalid(format!(
        "Invalid {term} for type {}: {error}",
        ty.cql_name(),
        term = term_kind(term)
    ))
}

fn term_kind(term: &Term) -> String {
    match term {
        Term::Constant(c) => match c.kind {
            ConstantKind::String => format!("STRING constant ({})", c.text),
            ConstantKind::Integer => format!("INTEGER constant ({})", c.text),
            ConstantKind::Float => format!("FLOAT constant ({})", c.text),
            ConstantKind::Boolean => format!("BOOLEAN constant ({})", c.text),
            ConstantKind::Uuid => format!("UUID constant ({})", c.text),
            ConstantKind::Hex => format!("HEX constant ({})", c.text),
            ConstantKind::Duration => format!("DURATION constant ({})", c.text),
        },
        Term::List(_) => "list literal".to_string(),
        Term::Set(_) => "set literal".to_string(),
        Term::Map(_) | Term::EmptyBraces => "map literal".to_string(),
        Term::Tuple(_) => "tuple literal".to_string(),
        Term::Udt(_) => "user type literal".to_string(),
        _ => "value".to_string(),
    }
}

fn bound_value(
    marker: &ast::BindMarker,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    match ctx.values.get(marker.index) {
        None => Err(invalid(format!(
            "There were {} markers(?) in CQL but {} bound variables",
            marker.index + 1,
            ctx.values.len()
        ))),
        Some(Value::Null) => Ok(Evaluated::Null),
        Some(Value::Unset) => Ok(Evaluated::Unset),
        Some(Value::Bytes(bytes)) => {
            ty.validate(bytes).map_err(|e| {
                invalid(format!(
                    "Exception while binding column {}: {e}",
                    marker.name.as_deref().unwrap_or("?")
                ))
            })?;
            if !holds_set_or_map(ty) {
                return Ok(Evaluated::Value(bytes.clone()));
            }
            Ok(Evaluated::Value(Bytes::from(normalize(ty, bytes)?)))
        }
    }
}

/// Whether values of `ty` may hold a set or map somewhere inside.
fn holds_set_or_map(ty: &CqlType) -> bool {
    match ty {
        CqlType::Set { .. } | CqlType::Map { .. } => true,
        CqlType::List { elem, .. } => holds_set_or_map(elem),
        CqlType::Tuple(items) => items.iter().any(holds_set_or_map),
        CqlType::Udt(udt) => udt.fields.iter().any(|(_, t)| holds_set_or_map(t)),
        _ => false,
    }
}

/// The canonical serialization of a bound value: set elements and map keys
/// sorted by their type's order and deduplicated, at every depth. A client
/// may send `{2, 1}`; stored, compared and used as a key it must equal the
/// literal `{1, 2}`.
fn normalize(ty: &CqlType, value: &[u8]) -> Result<Vec<u8>, CqlError> {
    use storage::types::{
        parse_collection, parse_map, parse_tuple, serialize_collection, serialize_map,
        serialize_tuple,
    };
    Ok(match ty {
        CqlType::Set { elem, .. } => {
            let mut items = parse_collection(value)?
                .into_iter()
                .map(|v| normalize(elem, v))
                .collect::<Result<Vec<_>, _>>()?;
            items.sort_by(|a, b| elem.compare(a, b));
            items.dedup_by(|a, b| elem.compare(a, b) == std::cmp::Ordering::Equal);
            serialize_collection(&items.iter().map(|v| Some(&v[..])).collect::<Vec<_>>())
        }
        CqlType::Map {
            key,
            value: value_ty,
            ..
        } => {
            let mut pairs = parse_map(value)?
                .into_iter()
                .map(|(k, v)| Ok((normalize(key, k)?, normalize(value_ty, v)?)))
                .collect::<Result<Vec<_>, CqlError>>()?;
            // A stable sort keeps duplicates in arrival order; the last one wins.
            pairs.sort_by(|a, b| key.compare(&a.0, &b.0));
            let mut unique: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match unique.last_mut() {
                    Some(last) if key.compare(&last.0, &pair.0) == std::cmp::Ordering::Equal => {
                        *last = pair
                    }
                    _ => unique.push(pair),
                }
            }
            serialize_map(
                &unique
                    .iter()
                    .map(|(k, v)| (&k[..], &v[..]))
                    .collect::<Vec<_>>(),
            )
        }
        CqlType::List { elem, .. } => {
            let items = parse_collection(value)?
                .into_iter()
                .map(|v| normalize(elem, v))
                .collect::<Result<Vec<_>, _>>()?;
            serialize_collection(&items.iter().map(|v| Some(&v[..])).collect::<Vec<_>>())
        }
        CqlType::Tuple(_) | CqlType::Udt(_) => {
            let types: Vec<&CqlType> = match ty {
                CqlType::Tuple(items) => items.iter().collect(),
                CqlType::Udt(udt) => udt.fields.iter().map(|(_, t)| t).collect(),
                _ => Vec::new(),
            };
            let fields = parse_tuple(value)?
                .into_iter()
                .zip(types)
                .map(|(field, t)| field.map(|v| normalize(t, v)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            serialize_tuple(&fields.iter().map(|f| f.as_deref()).collect::<Vec<_>>())
        }
        _ => value.to_vec(),
    })
}

/// Builds the literal for `term`; nested terms (which may hold markers or
/// function calls) are evaluated first against their element types.
fn to_literal(term: &Term, ty: &CqlType, ctx: &EvalContext<'_>) -> Result<Literal, CqlError> {
    let nested = |t: &Term, ty: &CqlType| -> Result<Literal, CqlError> {
        Ok(match eval(t, ty, ctx)? {
            Evaluated::Value(v) => Literal::Value(v),
            Evaluated::Null => Literal::Null,
            Evaluated::Unset => return Err(invalid("Invalid unset value in a collection")),
        })
    };
    Ok(match (term, ty) {
        (Term::Constant(c), _) => {
            // A quoted string is a value of the string-like types only;
            // Cassandra refuses it for numbers, uuids, blobs and durations.
            let string_like = matches!(
                ty,
                CqlType::Ascii
                    | CqlType::Text
                    | CqlType::Inet
                    | CqlType::Timestamp
                    | CqlType::Date
                    | CqlType::Time
            );
            if c.kind == ConstantKind::String && !string_like {
                return Err(invalid(format!(
                    "Invalid STRING constant ({}) for type {}",
                    c.text,
                    ty.cql_name()
                )));
            }
            constant_literal(c)
        }
        (Term::List(items), _) | (Term::Set(items), _) => {
            let elem = element_type(ty).ok_or_else(|| describe_mismatch(term, ty))?;
            let items = items
                .iter()
                .map(|t| nested(t, &elem))
                .collect::<Result<_, _>>()?;
            match (term, ty) {
                (_, CqlType::Set { .. }) => Literal::Set(items),
                _ => Literal::List(items),
            }
        }
        (Term::Map(pairs), CqlType::Map { key, value, .. }) => Literal::Map(
            pairs
                .iter()
                .map(|(k, v)| Ok((nested(k, key)?, nested(v, value)?)))
                .collect::<Result<_, CqlError>>()?,
        ),
        (Term::Udt(fields), CqlType::Udt(udt)) => Literal::Udt(
            fields
                .iter()
                .map(|(name, t)| {
                    let field_ty = udt
                        .fields
                        .iter()
                        .find(|(f, _)| f == name)
                        .map(|(_, ty)| ty)
                        .ok_or_else(|| {
                            invalid(format!(
                                "Unknown field '{name}' in value of user defined type {}",
                                udt.name
                            ))
                        })?;
                    Ok((name.clone(), nested(t, field_ty)?))
                })
                .collect::<Result<_, CqlError>>()?,
        ),
        (Term::EmptyBraces, CqlType::Set { .. }) => Literal::Set(vec![]),
        (Term::EmptyBraces, CqlType::Map { .. }) => Literal::Map(vec![]),
        (Term::EmptyBraces, CqlType::Udt(_)) => Literal::Udt(vec![]),
        (Term::Tuple(items), CqlType::Tuple(types)) => {
            if items.len() > types.len() {
                return Err(invalid(format!(
                    "Invalid tuple literal: too many elements. Type {} expects {} but got {}",
                    ty.cql_name(),
                    types.len(),
                    items.len()
                )));
            }
            Literal::Tuple(
                items
                    .iter()
                    .zip(types)
                    .map(|(t, ty)| nested(t, ty))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => return Err(describe_mismatch(term, ty)),
    })
}

fn describe_mismatch(term: &Term, ty: &CqlType) -> CqlError {
    invalid(format!(
        "Invalid {} for type {}",
        term_kind(term),
        ty.cql_name()
    ))
}

/// The literal form of a constant.
pub fn constant_literal(c: &Constant) -> Literal {
    match c.kind {
        ConstantKind::String => Literal::String(c.text.clone()),
        ConstantKind::Integer => Literal::Integer(c.text.clone()),
        ConstantKind::Float => Literal::Float(c.text.clone()),
        ConstantKind::Boolean => Literal::Boolean(c.text.eq_ignore_ascii_case("true")),
        ConstantKind::Uuid => Literal::Uuid(c.text.clone()),
        ConstantKind::Hex => Literal::Hex(c.text.clone()),
        ConstantKind::Duration => Literal::Duration(c.text.clone()),
    }
}

fn call_function(
    name: &ast::QualifiedName,
    args: &[Term],
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, CqlError> {
    crate::functions::call_scalar(name, args, ty, ctx)
}

#[cfg(test)]
mod normalize_tests {
    use super::*;
    use storage::types::serialize_collection;

    fn int(v: i32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    #[test]
    fn bound_sets_are_sorted_and_deduplicated_like_literals() {
        let ty = CqlType::set(CqlType::Int, true);
        let (two, one) = (int(2), int(1));
        let bound = serialize_collection(&[Some(&two[..]), Some(&one[..]), Some(&two[..])]);
        let values = [Value::Bytes(Bytes::from(bound))];
        let ctx = EvalContext {
            values: &values,
            now_micros: 0,
        };
        let marker = Term::Bind(ast::BindMarker {
            index: 0,
            name: None,
        });
        let literal = ty
            .literal_to_value(&Literal::Set(vec![
                Literal::Integer("1".into()),
                Literal::Integer("2".into()),
            ]))
            .expect("literal")
            .expect("not null");
        assert_eq!(
            eval(&marker, &ty, &ctx).expect("binds"),
            Evaluated::Value(literal)
        );
    }
}
