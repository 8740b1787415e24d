//! The selection: what each output column of a SELECT computes (columns,
//! writetime/ttl, functions, casts, aggregates, UDT fields) and its result spec.
use super::*;

pub(super) fn prepare_selection(
    selection: &ast::Selection,
    table: &TableDef,
    distinct: bool,
    aggs: &mut Vec<AggSpec>,
) -> Result<Vec<Output>, CqlError> {
    let outputs = match selection {
        ast::Selection::Wildcard => {
            if distinct {
                if let Some(c) = table
                    .columns
                    .iter()
                    .find(|c| matches!(c.kind, ColumnKind::Clustering | ColumnKind::Regular))
                {
                    return Err(distinct_error(c));
                }
            }
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| Output {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                    sel: Sel::Column(i),
                })
                .collect()
        }
        ast::Selection::Selectors(selectors) => selectors
            .iter()
            .map(|s| {
                let mut out = prepare_selectable(&s.selectable, table, aggs)?;
                if let Some(alias) = &s.alias {
                    out.name = alias.clone();
                }
                Ok(out)
            })
            .collect::<Result<Vec<_>, CqlError>>()?,
    };
    if distinct {
        check_distinct(&outputs, table)?;
    }
    Ok(outputs)
}

pub(super) fn distinct_error(c: &ColumnDef) -> CqlError {
    invalid(format!(
        "SELECT DISTINCT queries must only request partition key columns and/or static columns (not {})",
        c.name
    ))
}

pub(super) fn check_distinct(outputs: &[Output], table: &TableDef) -> Result<(), CqlError> {
    for o in outputs {
        if let Sel::Column(i) | Sel::Field(i, _) | Sel::WriteTime(i) | Sel::Ttl(i) = o.sel {
            let c = &table.columns[i];
            if matches!(c.kind, ColumnKind::Clustering | ColumnKind::Regular) {
                return Err(distinct_error(c));
            }
        }
    }
    for (i, c) in table.columns.iter().enumerate() {
        if c.kind == ColumnKind::PartitionKey
            && !outputs
                .iter()
                .any(|o| matches!(o.sel, Sel::Column(j) if j == i))
        {
            return Err(invalid(format!(
                "SELECT DISTINCT queries must request all the partition key columns (missing {})",
                c.name
            )));
        }
    }
    Ok(())
}

/// Prepares one selector; aggregate calls are appended to `aggs` and
/// referred to by index.
pub(super) fn prepare_selectable(
    s: &Selectable,
    table: &TableDef,
    aggs: &mut Vec<AggSpec>,
) -> Result<Output, CqlError> {
    let out = |name: String, ty: CqlType, sel| Output { name, ty, sel };
    match s {
        Selectable::Column(name) => {
            let i = column_index(table, name)?;
            Ok(out(
                name.clone(),
                table.columns[i].ty.clone(),
                Sel::Column(i),
            ))
        }
        Selectable::WriteTime(name) | Selectable::Ttl(name) => {
            prepare_cell_function(s, name, table)
        }
        Selectable::CountRows => {
            aggs.push(AggSpec {
                kind: AggKind::Count,
                arg: None,
                ty: CqlType::Bigint,
            });
            Ok(out(
                "count".into(),
                CqlType::Bigint,
                Sel::Agg(aggs.len() - 1),
            ))
        }
        Selectable::Function { name, args } => prepare_function(&name.name, args, table, aggs),
        Selectable::Field { base, field } => prepare_field(base, field, table),
        Selectable::Cast { arg, ty } => prepare_cast(arg, ty, table, aggs),
        Selectable::Term(_) => Err(invalid("Selecting terms is not supported")),
        Selectable::Element { .. } => Err(invalid(
            "Selecting a collection element (c[key]) is not supported yet",
        )),
    }
}

/// `writetime(c)` and `ttl(c)`.
pub(super) fn prepare_cell_function(
    s: &Selectable,
    name: &str,
    table: &TableDef,
) -> Result<Output, CqlError> {
    let writetime = matches!(s, Selectable::WriteTime(_));
    let function = if writetime { "writetime" } else { "ttl" };
    let i = column_index(table, name)?;
    let c = &table.columns[i];
    if c.is_primary_key() {
        return Err(invalid(format!(
            "Cannot use selection function {function} on PRIMARY KEY part {name}"
        )));
    }
    if c.ty.is_multi_cell() {
        return Err(invalid(format!(
            "Cannot use selection function {function} on non-frozen {}",
            c.ty.cql_name()
        )));
    }
    let name = format!("{function}({name})");
    Ok(if writetime {
        Output {
            name,
            ty: CqlType::Bigint,
            sel: Sel::WriteTime(i),
        }
    } else {
        Output {
            name,
            ty: CqlType::Int,
            sel: Sel::Ttl(i),
        }
    })
}

pub(super) fn prepare_field(
    base: &Selectable,
    field: &str,
    table: &TableDef,
) -> Result<Output, CqlError> {
    let Selectable::Column(name) = base else {
        return Err(invalid("Field selection is only supported on columns"));
    };
    let i = column_index(table, name)?;
    let CqlType::Udt(udt) = &table.columns[i].ty else {
        return Err(invalid(format!(
            "Invalid field selection: {name} of type {} is not a user type",
            table.columns[i].ty.cql_name()
        )));
    };
    let (f, (_, ty)) = udt
        .fields
        .iter()
        .enumerate()
        .find(|(_, (n, _))| n == field)
        .ok_or_else(|| invalid(format!("{} has no field {field}", udt.name)))?;
    Ok(Output {
        name: format!("{name}.{field}"),
        ty: ty.clone(),
        sel: Sel::Field(i, f),
    })
}

/// `CAST(arg AS ty)`; a cast to the argument's own type is dropped.
pub(super) fn prepare_cast(
    arg: &Selectable,
    ty: &ast::CqlType,
    table: &TableDef,
    aggs: &mut Vec<AggSpec>,
) -> Result<Output, CqlError> {
    let arg = prepare_selectable(arg, table, aggs)?;
    let to = functions::native_type(ty)
        .ok_or_else(|| invalid(format!("Invalid cast to non-native type {ty}")))?;
    if arg.ty == to {
        return Ok(arg);
    }
    functions::check_cast(&arg.ty, &to)
        .map_err(|e| invalid(format!("Invalid cast of {}: {e}", arg.name)))?;
    Ok(Output {
        name: format!("cast({} as {ty})", arg.name),
        ty: to.clone(),
        sel: Sel::Call(ScalarFn::Cast { from: arg.ty, to }, vec![arg.sel]),
    })
}

pub(super) fn aggregate_kind(name: &str) -> Option<AggKind> {
    Some(match name {
        "count" => AggKind::Count,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "sum" => AggKind::Sum,
        "avg" => AggKind::Avg,
        _ => return None,
    })
}

pub(super) fn prepare_function(
    name: &str,
    args: &[Selectable],
    table: &TableDef,
    aggs: &mut Vec<AggSpec>,
) -> Result<Output, CqlError> {
    if name == "token" {
        return prepare_token(args, table);
    }
    if let Some(kind) = aggregate_kind(name) {
        return prepare_aggregate(name, kind, args, table, aggs);
    }
    let args = args
        .iter()
        .map(|a| prepare_selectable(a, table, aggs))
        .collect::<Result<Vec<_>, _>>()?;
    let arg_types: Vec<CqlType> = args.iter().map(|a| a.ty.clone()).collect();
    let f = functions::resolve(name, &arg_types)?;
    let arg_names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
    Ok(Output {
        name: format!("system.{name}({})", arg_names.join(", ")),
        ty: f.return_type(),
        sel: Sel::Call(f, args.into_iter().map(|a| a.sel).collect()),
    })
}

pub(super) fn prepare_token(args: &[Selectable], table: &TableDef) -> Result<Output, CqlError> {
    let pk: Vec<&str> = table.partition_key().map(|c| c.name.as_str()).collect();
    let given: Vec<&str> = args
        .iter()
        .map(|a| match a {
            Selectable::Column(c) => Ok(c.as_str()),
            _ => Err(invalid("token() only accepts partition key columns")),
        })
        .collect::<Result<_, _>>()?;
    if given != pk {
        return Err(invalid(format!(
            "Type error: token() requires the partition key columns in order: {}",
            pk.join(", ")
        )));
    }
    Ok(Output {
        name: format!("system.token({})", given.join(", ")),
        ty: CqlType::Bigint,
        sel: Sel::Token,
    })
}

pub(super) fn prepare_aggregate(
    name: &str,
    kind: AggKind,
    args: &[Selectable],
    table: &TableDef,
    aggs: &mut Vec<AggSpec>,
) -> Result<Output, CqlError> {
    let [arg] = args else {
        return Err(invalid(format!(
            "Invalid number of arguments in call to function system.{name}: 1 required but {} provided",
            args.len()
        )));
    };
    let mut nested = Vec::new();
    let arg = prepare_selectable(arg, table, &mut nested)?;
    if !nested.is_empty() {
        return Err(invalid(
            "aggregate functions cannot be used as arguments of aggregate functions",
        ));
    }
    let ty = match kind {
        AggKind::Count => CqlType::Bigint,
        AggKind::Min | AggKind::Max => arg.ty.clone(),
        AggKind::Sum | AggKind::Avg => {
            if numeric_kind(&arg.ty).is_none() {
                return Err(invalid(format!(
                    "Invalid call to function {name}, none of its type signatures match (argument {} of type {})",
                    arg.name,
                    arg.ty.cql_name()
                )));
            }
            arg.ty.clone()
        }
    };
    aggs.push(AggSpec {
        kind,
        arg: Some((arg.sel, arg.ty)),
        ty: ty.clone(),
    });
    Ok(Output {
        name: format!("system.{name}({})", arg.name),
        ty,
        sel: Sel::Agg(aggs.len() - 1),
    })
}
