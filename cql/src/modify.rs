//! INSERT, UPDATE and DELETE: preparing them against a table and turning an
//! execution into storage mutations.
//!
//! Data layout (the SELECT reader decodes exactly this):
//! 1. Partition key: the serialized partition key (one component: its raw
//!    bytes), decorated with its Murmur3 token.
//! 2. Clustering key: `encode_clustering` of the clustering values.
//! 3. Atomic columns (and frozen collections): one cell, path `None`.
//! 4. Non-frozen collections: one cell per element. Lists: a 16-byte path
//!    that sorts in list order ([`list_path`]); sets: the element's key
//!    encoding, empty value; maps: the key's key encoding, the value.
//!    Non-frozen UDTs: the field index (u16, big-endian), the field value.
//! 5. Overwriting a whole collection writes a complex deletion one
//!    microsecond before the new elements, so the new elements survive it.
use std::cell::Cell as StdCell;
use std::sync::Arc;

use bytes::Bytes;
use cluster::token::{murmur3_token, serialize_partition_key};
use cluster::StorageProxy;
use storage::model::{
    Cell, ClusteringBound, ClusteringRange, DecoratedKey, Expiry, Mutation, Row, SliceQuery,
    Tombstone,
};
use storage::schema::{ColumnDef, ColumnKind, TableDef};
use storage::types::{self, CqlType};

use crate::error::{invalid, CqlError};
use crate::parser::ast::{
    Assignment, DeleteStatement, DeleteTarget, InValues, InsertStatement, InsertValues, Operator,
    Relation, Term, UpdateStatement, Using,
};
use crate::values::{eval, BindSpecs, EvalContext, Evaluated};

/// The longest TTL Cassandra accepts: 20 years.
pub const MAX_TTL_SECS: i64 = 20 * 365 * 24 * 60 * 60;

/// One change to one column.
#[derive(Debug, Clone)]
enum Operation {
    /// `c = term` (whole value; collections are overwritten).
    Set(ColumnDef, Term),
    /// `c = c + term` for lists (append), sets and maps (add).
    Add(ColumnDef, Term),
    /// `c = term + c` for lists.
    Prepend(ColumnDef, Term),
    /// `c = c - term` for lists, sets, maps (by keys).
    Subtract(ColumnDef, Term),
    /// `c[key] = term` for maps and lists (by index).
    SetElement(ColumnDef, Term, Term),
    /// `c.field = term` for non-frozen UDTs.
    SetField(ColumnDef, usize, Term),
    /// `DELETE c`.
    Delete(ColumnDef),
    /// `DELETE c[key]`.
    DeleteElement(ColumnDef, Term),
    /// `DELETE c.field`.
    DeleteField(ColumnDef, usize),
}

/// What the WHERE clause (or INSERT's key columns) selects for one key column.
#[derive(Debug, Clone)]
enum KeyRestriction {
    /// Not restricted yet: a partition key part the statement has not named.
    /// (An empty `IN ()` is a real restriction that matches nothing.)
    Missing,
    Eq(Term),
    In(InValues),
    Slice {
        lower: Option<(Term, bool)>,
        upper: Option<(Term, bool)>,
    },
}

/// The kind of statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifyKind {
    Insert,
    Update,
    Delete,
}

/// A prepared INSERT, UPDATE or DELETE.
#[derive(Debug, Clone)]
pub struct ModifyPlan {
    pub table: Arc<TableDef>,
    pub kind: ModifyKind,
    partition: Vec<KeyRestriction>,
    clustering: Vec<Option<KeyRestriction>>,
    operations: Vec<Operation>,
    using: Using,
}

fn column<'t>(table: &'t TableDef, name: &str) -> Result<&'t ColumnDef, CqlError> {
    table
        .column(name)
        .ok_or_else(|| invalid(format!("Undefined column name {name}")))
}

impl ModifyPlan {
    /// The statement's USING clause.
    pub fn using(&self) -> &Using {
        &self.using
    }
}

/// Records receivers of the USING clause's markers.
fn collect_using(using: &Using, binds: &mut BindSpecs) {
    if let Some(t) = &using.ttl {
        binds.collect(t, "[ttl]", &CqlType::Int);
    }
    if let Some(t) = &using.timestamp {
        binds.collect(t, "[timestamp]", &CqlType::Bigint);
    }
    if let Some(t) = &using.timeout {
        binds.collect(t, "[timeout]", &CqlType::Duration);
    }
}

/// Prepares an INSERT.
pub fn prepare_insert(
    stmt: &InsertStatement,
    table: Arc<TableDef>,
    binds: &mut BindSpecs,
) -> Result<ModifyPlan, CqlError> {
    // IF NOT EXISTS is prepared by `crate::lwt`.
    let json_terms;
    let (columns, values) = match &stmt.values {
        InsertValues::Columns { columns, values } => (columns, values),
        InsertValues::Json {
            json,
            default_unset,
        } => {
            json_terms = crate::functions::insert_json_terms(&table, json, *default_unset);
            (&json_terms.0, &json_terms.1)
        }
    };
    if columns.len() != values.len() {
        return Err(invalid(format!(
            "Unmatched column names/values: {} names, {} values",
            columns.len(),
            values.len()
        )));
    }
    let mut plan = empty_plan(table.clone(), ModifyKind::Insert, stmt.using.clone());
    for (name, term) in columns.iter().zip(values) {
        let col = column(&table, name)?.clone();
        if columns.iter().filter(|c| *c == name).count() > 1 {
            return Err(invalid(format!(
                "Multiple definitions found for column {name}"
            )));
        }
        binds.collect(term, &col.name, &col.ty);
        match col.kind {
            ColumnKind::PartitionKey => {
                plan.partition[col.position as usize] = KeyRestriction::Eq(term.clone())
            }
            ColumnKind::Clustering => {
                plan.clustering[col.position as usize] = Some(KeyRestriction::Eq(term.clone()))
            }
            _ => plan.operations.push(Operation::Set(col, term.clone())),
        }
    }
    check_full_key(&plan)?;
    collect_using(&stmt.using, binds);
    Ok(plan)
}

fn empty_plan(table: Arc<TableDef>, kind: ModifyKind, using: Using) -> ModifyPlan {
    ModifyPlan {
        partition: vec![KeyRestriction::Missing; table.partition_key_len()],
        clustering: vec![None; table.clustering_key_len()],
        operations: Vec::new(),
        kind,
        using,
        table,
    }
}

fn check_full_key(plan: &ModifyPlan) -> Result<(), CqlError> {
    let missing: Vec<&str> = plan
        .table
        .partition_key()
        .zip(&plan.partition)
        .filter(|(_, r)| matches!(r, KeyRestriction::Missing))
        .map(|(c, _)| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "Some partition key parts are missing: {}",
            missing.join(", ")
        )));
    }
    let writes_regular = plan
        .operations
        .iter()
        .any(|op| op_column(op).kind == ColumnKind::Regular);
    let clustering_missing = plan.clustering.iter().any(Option::is_none);
    if plan.kind == ModifyKind::Insert && clustering_missing && plan.table.clustering_key_len() > 0
    {
        let first = plan
            .table
            .clustering_key()
            .zip(&plan.clustering)
            .find(|(_, r)| r.is_none())
            .map(|(c, _)| c.name.clone())
            .unwrap_or_default();
        if writes_regular
            || !plan
                .operations
                .iter()
                .all(|op| op_column(op).kind == ColumnKind::Static)
            || plan.operations.is_empty()
        {
            return Err(invalid(format!(
                "Some clustering keys are missing: {first}"
            )));
        }
    }
    Ok(())
}

fn op_column(op: &Operation) -> &ColumnDef {
    match op {
        Operation::Set(c, _)
        | Operation::Add(c, _)
        | Operation::Prepend(c, _)
        | Operation::Subtract(c, _)
        | Operation::SetElement(c, _, _)
        | Operation::SetField(c, _, _)
        | Operation::Delete(c)
        | Operation::DeleteElement(c, _)
        | Operation::DeleteField(c, _) => c,
    }
}

/// Prepares an UPDATE.
pub fn prepare_update(
    stmt: &UpdateStatement,
    table: Arc<TableDef>,
    binds: &mut BindSpecs,
) -> Result<ModifyPlan, CqlError> {
    // The IF clause is prepared by `crate::lwt`.
    let mut plan = empty_plan(table.clone(), ModifyKind::Update, stmt.using.clone());
    collect_using(&stmt.using, binds);
    for assignment in &stmt.assignments {
        let op = assignment_operation(&table, assignment, binds)?;
        if op_column(&op).is_primary_key() {
            return Err(invalid(format!(
                "PRIMARY KEY part {} found in SET part",
                op_column(&op).name
            )));
        }
        plan.operations.push(op);
    }
    restrict_keys(&mut plan, &stmt.where_clause, binds)?;
    check_where(&plan, false)?;
    Ok(plan)
}

fn assignment_operation(
    table: &TableDef,
    assignment: &Assignment,
    binds: &mut BindSpecs,
) -> Result<Operation, CqlError> {
    Ok(match assignment {
        Assignment::Set {
            column: name,
            value,
        } => {
            let col = column(table, name)?.clone();
            binds.collect(value, &col.name, &col.ty);
            Operation::Set(col, value.clone())
        }
        Assignment::Add {
            column: name,
            value,
        }
        | Assignment::Prepend {
            column: name,
            value,
        } => {
            let col = column(table, name)?.clone();
            if col.ty.is_counter() {
                return Err(invalid("Counter columns are not supported yet"));
            }
            if !col.ty.is_multi_cell() {
                return Err(invalid(format!(
                    "Invalid operation ({name} = {name} + ?) for non collection column {name}"
                )));
            }
            binds.collect(value, &col.name, &col.ty);
            if matches!(assignment, Assignment::Prepend { .. }) {
                if !matches!(col.ty, CqlType::List { .. }) {
                    return Err(invalid(format!(
                        "Invalid operation for non list column {name}"
                    )));
                }
                Operation::Prepend(col, value.clone())
            } else {
                Operation::Add(col, value.clone())
            }
        }
        Assignment::Subtract {
            column: name,
            value,
        } => {
            let col = column(table, name)?.clone();
            if !col.ty.is_multi_cell() {
                return Err(invalid(format!(
                    "Invalid operation ({name} = {name} - ?) for non collection column {name}"
                )));
            }
            let receiver = match &col.ty {
                CqlType::Map { key, .. } => CqlType::set((**key).clone(), true),
                other => other.clone(),
            };
            binds.collect(value, &col.name, &receiver);
            Operation::Subtract(col, value.clone())
        }
        Assignment::SetElement {
            column: name,
            key,
            value,
        } => {
            let col = column(table, name)?.clone();
            let (key_ty, value_ty) = element_types(&col)?;
            binds.collect(key, &format!("key({name})"), &key_ty);
            binds.collect(value, &format!("value({name})"), &value_ty);
            Operation::SetElement(col, key.clone(), value.clone())
        }
        Assignment::SetField {
            column: name,
            field,
            value,
        } => {
            let col = column(table, name)?.clone();
            let (index, ty) = udt_field(&col, field)?;
            binds.collect(value, &format!("{name}.{field}"), &ty);
            Operation::SetField(col, index, value.clone())
        }
    })
}

/// Key and value types for `c[key]` on a non-frozen list or map.
fn element_types(col: &ColumnDef) -> Result<(CqlType, CqlType), CqlError> {
    match &col.ty {
        CqlType::List {
            elem,
            frozen: false,
        } => Ok((CqlType::Int, (**elem).clone())),
        CqlType::Map {
            key,
            value,
            frozen: false,
        } => Ok(((**key).clone(), (**value).clone())),
        _ => Err(invalid(format!(
            "Invalid operation ({}[?] = ?) for non list/map column {}",
            col.name, col.name
        ))),
    }
}

fn udt_field(col: &ColumnDef, field: &str) -> Result<(usize, CqlType), CqlError> {
    match &col.ty {
        CqlType::Udt(udt) if !udt.frozen => udt
            .fields
            .iter()
            .position(|(f, _)| f == field)
            .map(|i| (i, udt.fields[i].1.clone()))
            .ok_or_else(|| {
                invalid(format!(
                    "UDT column {} does not have a field named {field}",
                    col.name
                ))
            }),
        CqlType::Udt(_) => Err(invalid(format!(
            "Invalid operation ({}.{field} = ?) for frozen UDT column {}",
            col.name, col.name
        ))),
        _ => Err(invalid(format!(
            "Invalid operation ({}.{field} = ?) for non-UDT column {}",
            col.name, col.name
        ))),
    }
}

/// Prepares a DELETE.
pub fn prepare_delete(
    stmt: &DeleteStatement,
    table: Arc<TableDef>,
    binds: &mut BindSpecs,
) -> Result<ModifyPlan, CqlError> {
    // The IF clause is prepared by `crate::lwt`.
    if stmt.using.ttl.is_some() {
        return Err(invalid("TTL attribute is not allowed for deletes"));
    }
    let mut plan = empty_plan(table.clone(), ModifyKind::Delete, stmt.using.clone());
    for target in &stmt.targets {
        let op = match target {
            DeleteTarget::Column(name) => Operation::Delete(column(&table, name)?.clone()),
            DeleteTarget::Element { column: name, key } => {
                let col = column(&table, name)?.clone();
                let key_ty = match &col.ty {
                    CqlType::Set {
                        elem,
                        frozen: false,
                    } => (**elem).clone(),
                    _ => element_types(&col)?.0,
                };
                binds.collect(key, &format!("key({name})"), &key_ty);
                Operation::DeleteElement(col, key.clone())
            }
            DeleteTarget::Field {
                column: name,
                field,
            } => {
                let col = column(&table, name)?.clone();
                let (index, _) = udt_field(&col, field)?;
                Operation::DeleteField(col, index)
            }
        };
        if op_column(&op).is_primary_key() {
            return Err(invalid(format!(
                "Invalid identifier {} for deletion (should not be a PRIMARY KEY part)",
                op_column(&op).name
            )));
        }
        plan.operations.push(op);
    }
    collect_using(&stmt.using, binds);
    restrict_keys(&mut plan, &stmt.where_clause, binds)?;
    check_where(&plan, true)?;
    Ok(plan)
}

fn restrict_keys(
    plan: &mut ModifyPlan,
    relations: &[Relation],
    binds: &mut BindSpecs,
) -> Result<(), CqlError> {
    let table = plan.table.clone();
    for relation in relations {
        let (name, restriction) = match relation {
            Relation::Simple {
                column: name,
                op: Operator::Eq,
                value,
            } => (name, KeyRestriction::Eq(value.clone())),
            Relation::In {
                column: name,
                values,
            } => (name, KeyRestriction::In(values.clone())),
            Relation::Simple {
                column: name,
                op,
                value,
            } if matches!(
                op,
                Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte
            ) =>
            {
                let col = column(&table, name)?;
                if col.kind != ColumnKind::Clustering || plan.kind != ModifyKind::Delete {
                    return Err(invalid(format!(
                        "Invalid operator {op:?} for PRIMARY KEY part {name}: only = and IN are supported here"
                    )));
                }
                binds.collect(value, &col.name, &col.ty);
                let bound = Some((value.clone(), matches!(op, Operator::Lte | Operator::Gte)));
                let slot = &mut plan.clustering[col.position as usize];
                let (mut lower, mut upper) = match slot.take() {
                    Some(KeyRestriction::Slice { lower, upper }) => (lower, upper),
                    _ => (None, None),
                };
                if matches!(op, Operator::Gt | Operator::Gte) {
                    lower = bound;
                } else {
                    upper = bound;
                }
                *slot = Some(KeyRestriction::Slice { lower, upper });
                continue;
            }
            other => {
                return Err(invalid(format!(
                    "Invalid restriction in WHERE clause of a modification: {other:?}"
                )))
            }
        };
        let col = column(&table, name)?.clone();
        match &restriction {
            KeyRestriction::Eq(t) => binds.collect(t, &col.name, &col.ty),
            KeyRestriction::In(InValues::List(ts)) => {
                ts.iter().for_each(|t| binds.collect(t, &col.name, &col.ty))
            }
            KeyRestriction::In(InValues::Marker(m)) => binds.set(
                m.index,
                &format!("in({})", col.name),
                &CqlType::list(col.ty.clone(), false),
            ),
            KeyRestriction::Slice { .. } | KeyRestriction::Missing => {}
        }
        match col.kind {
            ColumnKind::PartitionKey => plan.partition[col.position as usize] = restriction,
            ColumnKind::Clustering => plan.clustering[col.position as usize] = Some(restriction),
            _ => {
                return Err(invalid(format!(
                    "Non PRIMARY KEY columns found in where clause: {name}"
                )))
            }
        }
    }
    Ok(())
}

fn check_where(plan: &ModifyPlan, is_delete: bool) -> Result<(), CqlError> {
    check_full_key(plan)?;
    let restricted = plan.clustering.iter().take_while(|r| r.is_some()).count();
    let names: Vec<&str> = plan
        .table
        .clustering_key()
        .map(|c| c.name.as_str())
        .collect();
    if let Some(later) = plan.clustering[restricted..]
        .iter()
        .position(Option::is_some)
    {
        return Err(invalid(format!(
            "PRIMARY KEY column \"{}\" cannot be restricted as preceding column \"{}\" is not restricted",
            names[restricted + later],
            names[restricted]
        )));
    }
    let slices = plan
        .clustering
        .iter()
        .filter(|r| matches!(r, Some(KeyRestriction::Slice { .. })))
        .count();
    let full_row = restricted == plan.clustering.len();
    let only_static = !plan.operations.is_empty()
        && plan
            .operations
            .iter()
            .all(|op| op_column(op).kind == ColumnKind::Static);
    if !is_delete && !full_row && !only_static {
        let missing = plan
            .table
            .clustering_key()
            .nth(restricted)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        return Err(invalid(format!(
            "Some clustering keys are missing: {missing}"
        )));
    }
    if is_delete && !plan.operations.is_empty() && !full_row && !only_static {
        return Err(invalid(
            "Range deletions are not supported for specific columns",
        ));
    }
    if slices > 1
        || (slices == 1
            && !matches!(
                plan.clustering[restricted - 1],
                Some(KeyRestriction::Slice { .. })
            ))
    {
        return Err(invalid(
            "A slice restriction must be on the last restricted clustering column",
        ));
    }
    Ok(())
}

/// Timestamp, TTL and clock of one execution.
#[derive(Debug, Clone, Copy)]
pub struct WriteParams {
    pub timestamp: i64,
    pub ttl: Option<i32>,
    pub now_secs: i32,
}

/// Resolves `USING TIMESTAMP/TTL` against the client's default timestamp.
pub fn write_params(
    using: &Using,
    table: &TableDef,
    ctx: &EvalContext<'_>,
    client_timestamp: Option<i64>,
) -> Result<WriteParams, CqlError> {
    let timestamp = match &using.timestamp {
        Some(t) => match eval(t, &CqlType::Bigint, ctx)? {
            Evaluated::Value(v) => be_i64(&v)?,
            _ => client_timestamp.unwrap_or(ctx.now_micros),
        },
        None => client_timestamp.unwrap_or(ctx.now_micros),
    };
    if timestamp == i64::MIN {
        return Err(invalid(format!(
            "Timestamp must be greater than the lower bound {}; {} is reserved",
            i64::MIN + 1,
            i64::MIN
        )));
    }
    let ttl = match &using.ttl {
        Some(t) => match eval(t, &CqlType::Int, ctx)? {
            Evaluated::Value(v) => i64::from(be_i32(&v)?),
            Evaluated::Null => 0,
            Evaluated::Unset => i64::from(table.options.default_time_to_live),
        },
        None => i64::from(table.options.default_time_to_live),
    };
    if ttl < 0 {
        return Err(invalid(format!(
            "A TTL must be greater or equal to 0, but was {ttl}"
        )));
    }
    if ttl > MAX_TTL_SECS {
        return Err(invalid(format!(
            "ttl is too large. requested ({ttl}) maximum ({MAX_TTL_SECS})"
        )));
    }
    let now_secs = i32::try_from(ctx.now_micros.div_euclid(1_000_000)).unwrap_or(i32::MAX);
    Ok(WriteParams {
        timestamp,
        ttl: i32::try_from(ttl).ok().filter(|ttl| *ttl > 0),
        now_secs,
    })
}

fn be_i64(v: &[u8]) -> Result<i64, CqlError> {
    Ok(i64::from_be_bytes(
        v.try_into()
            .map_err(|_| invalid("Expected 8 bytes for a bigint"))?,
    ))
}

fn be_i32(v: &[u8]) -> Result<i32, CqlError> {
    Ok(i32::from_be_bytes(
        v.try_into()
            .map_err(|_| invalid("Expected 4 bytes for an int"))?,
    ))
}

/// Evaluates key restrictions to the list of values per column (cartesian
/// product taken later).
fn key_values(
    restriction: &KeyRestriction,
    col: &ColumnDef,
    ctx: &EvalContext<'_>,
) -> Result<Vec<Bytes>, CqlError> {
    match restriction {
        KeyRestriction::Eq(t) => Ok(vec![key_value(eval(t, &col.ty, ctx)?, col)?]),
        KeyRestriction::In(InValues::List(ts)) => ts
            .iter()
            .map(|t| key_value(eval(t, &col.ty, ctx)?, col))
            .collect(),
        KeyRestriction::In(InValues::Marker(m)) => {
            let list_ty = CqlType::list(col.ty.clone(), true);
            let raw = match eval(&Term::Bind(m.clone()), &list_ty, ctx)? {
                Evaluated::Value(v) => v,
                Evaluated::Null => {
                    return Err(invalid(format!("Invalid null value for {}", col.name)))
                }
                Evaluated::Unset => {
                    return Err(invalid(format!("Invalid unset value for {}", col.name)))
                }
            };
            Ok(types::parse_collection(&raw)?
                .into_iter()
                .map(Bytes::copy_from_slice)
                .collect())
        }
        KeyRestriction::Slice { .. } | KeyRestriction::Missing => {
            Err(invalid("slice is not a key value"))
        }
    }
}

/// A key column's value: a key part may be neither null nor unset.
fn key_value(value: Evaluated, col: &ColumnDef) -> Result<Bytes, CqlError> {
    match value {
        Evaluated::Value(v) => Ok(v),
        Evaluated::Null => Err(invalid(format!(
            "Invalid null value in condition for column {}",
            col.name
        ))),
        Evaluated::Unset => Err(invalid(format!(
            "Invalid unset value for column {}",
            col.name
        ))),
    }
}

fn cartesian(columns: Vec<Vec<Bytes>>) -> Vec<Vec<Bytes>> {
    columns.into_iter().fold(vec![vec![]], |acc, values| {
        acc.iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect()
    })
}

/// The decorated partition keys the plan writes.
pub fn partition_keys(
    plan: &ModifyPlan,
    ctx: &EvalContext<'_>,
) -> Result<Vec<DecoratedKey>, CqlError> {
    let mut columns = plan.table.partition_key();
    if let (Some(col), None, [KeyRestriction::Eq(term)]) =
        (columns.next(), columns.next(), plan.partition.as_slice())
    {
        // One key column, one value: the value is the serialized key.
        return Ok(vec![decorated_key(key_value(
            eval(term, &col.ty, ctx)?,
            col,
        )?)?]);
    }
    let per_column = plan
        .table
        .partition_key()
        .zip(&plan.partition)
        .map(|(col, r)| key_values(r, col, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    cartesian(per_column)
        .into_iter()
        .map(|values| {
            let slices: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
            let key = serialize_partition_key(&slices)
                .map_err(|e| invalid(format!("Invalid partition key: {e}")))?;
            decorated_key(key)
        })
        .collect()
}

fn decorated_key(key: Bytes) -> Result<DecoratedKey, CqlError> {
    // An empty key has no token of its own and cannot be stored.
    if key.is_empty() {
        return Err(invalid("Key may not be empty"));
    }
    Ok(DecoratedKey::new(murmur3_token(&key), key))
}

/// What rows a plan targets inside a partition.
enum RowTarget {
    Static,
    Rows(Vec<Bytes>),
    Range(ClusteringRange),
    Partition,
}

fn row_target(plan: &ModifyPlan, ctx: &EvalContext<'_>) -> Result<RowTarget, CqlError> {
    let restricted: Vec<(&ColumnDef, &KeyRestriction)> = plan
        .table
        .clustering_key()
        .zip(&plan.clustering)
        .filter_map(|(c, r)| r.as_ref().map(|r| (c, r)))
        .collect();
    let only_static = !plan.operations.is_empty()
        && plan
            .operations
            .iter()
            .all(|op| op_column(op).kind == ColumnKind::Static);
    if only_static && (restricted.is_empty() || plan.kind != ModifyKind::Delete) {
        return Ok(RowTarget::Static);
    }
    if plan.table.clustering_key_len() == 0 {
        // No clustering columns: the partition's one row, with the empty key.
        return Ok(RowTarget::Rows(vec![Bytes::new()]));
    }
    if restricted.is_empty() && plan.table.clustering_key_len() > 0 {
        return Ok(RowTarget::Partition);
    }
    let types = plan.table.clustering_types();
    let (eqs, slice) = match restricted.last() {
        Some((_, KeyRestriction::Slice { lower, upper })) => {
            (&restricted[..restricted.len() - 1], Some((lower, upper)))
        }
        _ => (&restricted[..], None),
    };
    let prefixes = cartesian(
        eqs.iter()
            .map(|(c, r)| key_values(r, c, ctx))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let encode = |values: &[Bytes]| -> Bytes {
        let slices: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
        Bytes::from(types::encode_clustering(&types, &slices))
    };
    if let Some((lower, upper)) = slice {
        let [prefix] = prefixes.as_slice() else {
            return Err(invalid(
                "IN restrictions are not supported with range deletions",
            ));
        };
        let col = restricted[restricted.len() - 1].0;
        let bound = |b: &Option<(Term, bool)>| -> Result<Option<ClusteringBound>, CqlError> {
            let Some((term, inclusive)) = b else {
                return Ok(if prefix.is_empty() {
                    None
                } else {
                    Some(ClusteringBound::inclusive(encode(prefix)))
                });
            };
            let mut values = prefix.clone();
            values.push(eval(term, &col.ty, ctx)?.required(&col.name)?);
            let key = encode(&values);
            Ok(Some(if *inclusive {
                ClusteringBound::inclusive(key)
            } else {
                ClusteringBound::exclusive(key)
            }))
        };
        let (mut start, mut end) = (bound(lower)?, bound(upper)?);
        if col.descending {
            std::mem::swap(&mut start, &mut end);
        }
        return Ok(RowTarget::Range(ClusteringRange::new(start, end)));
    }
    let keys: Vec<Bytes> = prefixes.iter().map(|p| encode(p)).collect();
    if restricted.len() < plan.table.clustering_key_len() {
        if keys.len() != 1 {
            return Err(invalid(
                "IN restrictions are not supported with range deletions",
            ));
        }
        return Ok(RowTarget::Range(ClusteringRange::prefix(keys[0].clone())));
    }
    Ok(RowTarget::Rows(keys))
}

/// Builds the mutations of one execution. Reads the current row first when
/// an operation needs it (list element by index, list removal).
pub async fn build_mutations(
    plan: &ModifyPlan,
    ctx: &EvalContext<'_>,
    params: WriteParams,
    proxy: &StorageProxy,
) -> Result<Vec<Mutation>, CqlError> {
    let keys = partition_keys(plan, ctx)?;
    let target = row_target(plan, ctx)?;
    let tombstone = Tombstone::new(params.timestamp, params.now_secs);
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let mut mutation = Mutation::new(plan.table.id, key.clone());
        match &target {
            RowTarget::Partition if plan.operations.is_empty() => {
                mutation.partition_deletion = Some(tombstone);
            }
            RowTarget::Range(range)
                if plan.kind == ModifyKind::Delete && plan.operations.is_empty() =>
            {
                mutation
                    .range_tombstones
                    .push(storage::model::RangeTombstone {
                        range: range.clone(),
                        tombstone,
                    });
            }
            RowTarget::Static => {
                let row = build_row(plan, ctx, params, proxy, &key, None).await?;
                mutation.static_row = Some(row);
            }
            RowTarget::Rows(rows) => {
                let writes_static = plan
                    .operations
                    .iter()
                    .any(|op| op_column(op).kind == ColumnKind::Static);
                if writes_static {
                    let row = build_row(plan, ctx, params, proxy, &key, None).await?;
                    mutation.static_row = Some(row);
                }
                for clustering in rows {
                    let row = build_row(plan, ctx, params, proxy, &key, Some(clustering)).await?;
                    mutation.rows.push((clustering.clone(), row));
                }
            }
            RowTarget::Partition if plan.table.clustering_key_len() == 0 => {
                let row = build_row(plan, ctx, params, proxy, &key, Some(&Bytes::new())).await?;
                mutation.rows.push((Bytes::new(), row));
            }
            RowTarget::Partition | RowTarget::Range(_) => {
                return Err(invalid(
                    "Range deletions are not supported for specific columns",
                ))
            }
        }
        out.push(mutation);
    }
    Ok(out)
}

async fn build_row(
    plan: &ModifyPlan,
    ctx: &EvalContext<'_>,
    params: WriteParams,
    proxy: &StorageProxy,
    key: &DecoratedKey,
    clustering: Option<&Bytes>,
) -> Result<Row, CqlError> {
    let expiry = params.ttl.map(|ttl| Expiry::new(ttl, params.now_secs));
    let mut row = Row::new();
    match plan.kind {
        ModifyKind::Insert if clustering.is_some() => {
            row.marker = Some(storage::model::RowMarker::new(params.timestamp, expiry));
        }
        ModifyKind::Delete if plan.operations.is_empty() => {
            row.deletion = Some(Tombstone::new(params.timestamp, params.now_secs));
            return Ok(row);
        }
        _ => {}
    }
    let writer = CellWriter {
        params,
        expiry,
        now_micros: ctx.now_micros,
    };
    for op in &plan.operations {
        let in_static = op_column(op).kind == ColumnKind::Static;
        if in_static != clustering.is_none() {
            continue;
        }
        apply_operation(&mut row, op, &writer, ctx, plan, proxy, key, clustering).await?;
    }
    Ok(row)
}

struct CellWriter {
    params: WriteParams,
    expiry: Option<Expiry>,
    now_micros: i64,
}

impl CellWriter {
    fn live(&self, value: Bytes) -> Cell {
        match self.expiry {
            Some(expiry) => Cell::expiring(self.params.timestamp, value, expiry),
            None => Cell::live(self.params.timestamp, value),
        }
    }

    fn dead(&self) -> Cell {
        Cell::dead(self.params.timestamp, self.params.now_secs)
    }

    fn complex_deletion(&self, before_write: bool) -> Tombstone {
        let timestamp = self.params.timestamp - i64::from(before_write);
        Tombstone::new(timestamp, self.params.now_secs)
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_operation(
    row: &mut Row,
    op: &Operation,
    w: &CellWriter,
    ctx: &EvalContext<'_>,
    plan: &ModifyPlan,
    proxy: &StorageProxy,
    key: &DecoratedKey,
    clustering: Option<&Bytes>,
) -> Result<(), CqlError> {
    match op {
        Operation::Set(col, term) => {
            let value = eval(term, &col.ty, ctx)?;
            if value == Evaluated::Unset {
                return Ok(());
            }
            if col.ty.is_multi_cell() {
                row.complex_deletions
                    .insert(col.id, w.complex_deletion(true));
                if let Evaluated::Value(v) = value {
                    write_elements(row, col, &v, w, false)?;
                }
            } else {
                let cell = match value {
                    Evaluated::Value(v) => w.live(v),
                    _ => w.dead(),
                };
                row.cells
                    .insert(storage::model::CellKey::atomic(col.id), cell);
            }
        }
        Operation::Add(col, term) | Operation::Prepend(col, term) => {
            if let Evaluated::Value(v) = eval(term, &col.ty, ctx)? {
                write_elements(row, col, &v, w, matches!(op, Operation::Prepend(..)))?;
            }
        }
        Operation::Subtract(col, term) => match &col.ty {
            CqlType::List { elem, .. } => {
                let Evaluated::Value(v) = eval(term, &col.ty, ctx)? else {
                    return Ok(());
                };
                let remove: Vec<&[u8]> = types::parse_collection(&v)?;
                // Read-before-write is rare: boxed, so that every other
                // write's future does not carry a read's state.
                let current = Box::pin(read_elements(
                    plan,
                    proxy,
                    key,
                    clustering,
                    col,
                    params_now(w),
                ))
                .await?;
                for (path, value) in current {
                    if remove
                        .iter()
                        .any(|r| elem.compare(r, &value) == std::cmp::Ordering::Equal)
                    {
                        row.cells
                            .insert(storage::model::CellKey::element(col.id, path), w.dead());
                    }
                }
            }
            CqlType::Set { elem: key_ty, .. } | CqlType::Map { key: key_ty, .. } => {
                let receiver = CqlType::set((**key_ty).clone(), true);
                let Evaluated::Value(v) = eval(term, &receiver, ctx)? else {
                    return Ok(());
                };
                for item in types::parse_collection(&v)? {
                    let mut path = Vec::new();
                    key_ty.encode_key(item, false, &mut path);
                    row.cells
                        .insert(storage::model::CellKey::element(col.id, path), w.dead());
                }
            }
            _ => {
                return Err(invalid(format!(
                    "Invalid operation for column {}",
                    col.name
                )))
            }
        },
        Operation::SetElement(col, key_term, value_term) => {
            let (key_ty, value_ty) = element_types(col)?;
            let k = eval(key_term, &key_ty, ctx)?.required(&format!("key of {}", col.name))?;
            let value = eval(value_term, &value_ty, ctx)?;
            if value == Evaluated::Unset {
                return Ok(());
            }
            let cell = match value {
                Evaluated::Value(v) => w.live(v),
                _ => w.dead(),
            };
            let path = match &col.ty {
                CqlType::List { .. } => {
                    list_path_at(plan, proxy, key, clustering, col, &k, params_now(w)).await?
                }
                _ => {
                    let mut path = Vec::new();
                    key_ty.encode_key(&k, false, &mut path);
                    Bytes::from(path)
                }
            };
            row.cells
                .insert(storage::model::CellKey::element(col.id, path), cell);
        }
        Operation::SetField(col, index, term) => {
            let CqlType::Udt(udt) = &col.ty else {
                return Ok(());
            };
            let value = eval(term, &udt.fields[*index].1, ctx)?;
            let cell = match value {
                Evaluated::Unset => return Ok(()),
                Evaluated::Value(v) => w.live(v),
                Evaluated::Null => w.dead(),
            };
            row.cells.insert(
                storage::model::CellKey::element(col.id, field_path(*index)),
                cell,
            );
        }
        Operation::Delete(col) => {
            if col.ty.is_multi_cell() {
                row.complex_deletions
                    .insert(col.id, w.complex_deletion(false));
            } else {
                row.cells
                    .insert(storage::model::CellKey::atomic(col.id), w.dead());
            }
        }
        Operation::DeleteElement(col, key_term) => {
            let path = match &col.ty {
                CqlType::List { .. } => {
                    let k = eval(key_term, &CqlType::Int, ctx)?.required("list index")?;
                    list_path_at(plan, proxy, key, clustering, col, &k, params_now(w)).await?
                }
                CqlType::Set { elem: key_ty, .. } | CqlType::Map { key: key_ty, .. } => {
                    let k =
                        eval(key_term, key_ty, ctx)?.required(&format!("key of {}", col.name))?;
                    let mut path = Vec::new();
                    key_ty.encode_key(&k, false, &mut path);
                    Bytes::from(path)
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid deletion of element of {}",
                        col.name
                    )))
                }
            };
            row.cells
                .insert(storage::model::CellKey::element(col.id, path), w.dead());
        }
        Operation::DeleteField(col, index) => {
            row.cells.insert(
                storage::model::CellKey::element(col.id, field_path(*index)),
                w.dead(),
            );
        }
    }
    Ok(())
}

fn params_now(w: &CellWriter) -> i32 {
    w.params.now_secs
}

/// The path of a non-frozen UDT field.
pub fn field_path(index: usize) -> Bytes {
    Bytes::copy_from_slice(&u16::try_from(index).unwrap_or(u16::MAX).to_be_bytes())
}

/// Writes the elements of collection value `v` into `row` as cells.
fn write_elements(
    row: &mut Row,
    col: &ColumnDef,
    v: &[u8],
    w: &CellWriter,
    prepend: bool,
) -> Result<(), CqlError> {
    match &col.ty {
        CqlType::List { .. } => {
            let mut items = types::parse_collection(v)?;
            // Prepended elements take paths from last to first, so the
            // first element gets the smallest path.
            if prepend {
                items.reverse();
            }
            for item in items {
                let path = list_path(prepend, w.now_micros);
                row.cells.insert(
                    storage::model::CellKey::element(col.id, path),
                    w.live(Bytes::copy_from_slice(item)),
                );
            }
        }
        CqlType::Set { elem, .. } => {
            for item in types::parse_collection(v)? {
                let mut path = Vec::new();
                elem.encode_key(item, false, &mut path);
                row.cells.insert(
                    storage::model::CellKey::element(col.id, path),
                    w.live(Bytes::new()),
                );
            }
        }
        CqlType::Map { key, .. } => {
            for (k, value) in types::parse_map(v)? {
                let mut path = Vec::new();
                key.encode_key(k, false, &mut path);
                row.cells.insert(
                    storage::model::CellKey::element(col.id, path),
                    w.live(Bytes::copy_from_slice(value)),
                );
            }
        }
        CqlType::Udt(_) => {
            for (index, field) in types::parse_tuple(v)?.into_iter().enumerate() {
                let cell = match field {
                    Some(value) => w.live(Bytes::copy_from_slice(value)),
                    None => w.dead(),
                };
                row.cells.insert(
                    storage::model::CellKey::element(col.id, field_path(index)),
                    cell,
                );
            }
        }
        _ => return Err(invalid(format!("Column {} is not a collection", col.name))),
    }
    Ok(())
}

thread_local! {
    static LIST_CLOCK: StdCell<i64> = const { StdCell::new(0) };
}

/// A strictly increasing microsecond clock for list element paths on this
/// shard: never behind the wall clock, never repeating.
fn next_list_micros(now_micros: i64) -> i64 {
    LIST_CLOCK.with(|last| {
        let next = now_micros.max(last.get() + 1);
        last.set(next);
        next
    })
}

/// A 16-byte list element path: memcmp order is list order. Appended
/// elements sort by when they were appended, after every prepended one;
/// prepended elements sort before, the latest prepend first. The random
/// tail keeps writers on different shards or nodes from colliding.
pub fn list_path(prepend: bool, now_micros: i64) -> Bytes {
    let micros = next_list_micros(now_micros);
    let position = if prepend { -micros } else { micros };
    let ordered = (position as u64) ^ (1 << 63);
    let random = uuid::Uuid::new_v4();
    let mut path = Vec::with_capacity(16);
    path.extend_from_slice(&ordered.to_be_bytes());
    path.extend_from_slice(&random.as_bytes()[..8]);
    Bytes::from(path)
}

/// Reads the live elements (path, value) of a collection column of one row.
async fn read_elements(
    plan: &ModifyPlan,
    proxy: &StorageProxy,
    key: &DecoratedKey,
    clustering: Option<&Bytes>,
    col: &ColumnDef,
    now_secs: i32,
) -> Result<Vec<(Bytes, Bytes)>, CqlError> {
    let ranges = match clustering {
        Some(c) => vec![ClusteringRange::new(
            Some(ClusteringBound::inclusive(c.clone())),
            Some(ClusteringBound::inclusive(c.clone())),
        )],
        None => vec![],
    };
    let slice = SliceQuery {
        ranges,
        reversed: false,
        row_limit: 1,
        columns: Some(vec![col.id]),
    };
    let result = proxy
        .read_partition(plan.table.id, key.clone(), slice, now_secs)
        .await?;
    let Some(partition) = result else {
        return Ok(vec![]);
    };
    let row = match clustering {
        Some(c) => partition
            .rows
            .into_iter()
            .find(|(k, _)| k == c)
            .map(|(_, r)| r),
        None => partition.static_row,
    };
    Ok(row
        .map(|r| {
            r.cells
                .into_iter()
                .filter(|(k, _)| k.column == col.id)
                .filter_map(|(k, c)| k.path.map(|p| (p, c.value)))
                .collect()
        })
        .unwrap_or_default())
}

#[allow(clippy::too_many_arguments)]
async fn list_path_at(
    plan: &ModifyPlan,
    proxy: &StorageProxy,
    key: &DecoratedKey,
    clustering: Option<&Bytes>,
    col: &ColumnDef,
    index: &[u8],
    now_secs: i32,
) -> Result<Bytes, CqlError> {
    let index = be_i32(index)?;
    // Boxed, as read-before-write is rare (see `apply_operation`).
    let elements = Box::pin(read_elements(plan, proxy, key, clustering, col, now_secs)).await?;
    usize::try_from(index)
        .ok()
        .and_then(|i| elements.get(i))
        .map(|(path, _)| path.clone())
        .ok_or_else(|| {
            invalid(format!(
                "List index {index} out of bound, list has size {}",
                elements.len()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{ast::Statement, parse_statement};

    fn table(columns: &str) -> Arc<TableDef> {
        let mut schema = storage::schema::Schema::default();
        for text in [
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            &format!("CREATE TABLE ks.t ({columns})"),
        ] {
            let parsed = parse_statement(text).expect("parses");
            schema = crate::ddl::apply(&schema, &parsed.statement, None, 0)
                .expect("applies")
                .schema;
        }
        schema.table("ks", "t").expect("created").clone()
    }

    fn prepare(table: Arc<TableDef>, text: &str) -> Result<ModifyPlan, CqlError> {
        let parsed = parse_statement(text).expect("parses");
        let mut binds = BindSpecs::new(parsed.bind_count);
        match &parsed.statement {
            Statement::Update(s) => prepare_update(s, table, &mut binds),
            Statement::Delete(s) => prepare_delete(s, table, &mut binds),
            Statement::Insert(s) => prepare_insert(s, table, &mut binds),
            other => panic!("not a modification: {other:?}"),
        }
    }

    fn message(result: Result<impl std::fmt::Debug, CqlError>) -> String {
        match result {
            Err(e) => e.to_string(),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    fn keys(plan: &ModifyPlan) -> Result<Vec<DecoratedKey>, CqlError> {
        let ctx = EvalContext {
            values: &[],
            now_micros: 0,
        };
        partition_keys(plan, &ctx)
    }

    #[test]
    fn skipped_clustering_column_is_named() {
        let t = table("id text, a int, b int, c list<int>, PRIMARY KEY (id, a, b)");
        assert_eq!(
            message(prepare(t, "DELETE c FROM ks.t WHERE id = 'k' AND b = 1")),
            "PRIMARY KEY column \"b\" cannot be restricted as preceding column \"a\" is not restricted"
        );
    }

    #[test]
    fn empty_in_on_the_partition_key_deletes_nothing() {
        let t = table("p int PRIMARY KEY, v int");
        let plan = prepare(t.clone(), "DELETE FROM ks.t WHERE p IN ()").expect("allowed");
        assert!(keys(&plan).expect("keys").is_empty());
        assert_eq!(
            message(prepare(t, "DELETE FROM ks.t WHERE v = 1")),
            "Non PRIMARY KEY columns found in where clause: v"
        );
    }

    #[test]
    fn partition_key_may_not_be_empty_or_null() {
        let t = table("p text, c text, v text, PRIMARY KEY (p, c)");
        let plan = prepare(
            t.clone(),
            "UPDATE ks.t SET v = 'x' WHERE p = '' AND c = 'a'",
        )
        .expect("prepares");
        assert_eq!(message(keys(&plan)), "Key may not be empty");
        let plan = prepare(t.clone(), "DELETE FROM ks.t WHERE p = 'k' AND c = ''").expect("ok");
        assert_eq!(
            keys(&plan).expect("an empty clustering key is fine").len(),
            1
        );
        let plan = prepare(t, "INSERT INTO ks.t (p, c) VALUES (null, 'a')").expect("prepares");
        assert_eq!(
            message(keys(&plan)),
            "Invalid null value in condition for column p"
        );
    }

    #[test]
    fn the_minimum_timestamp_is_reserved() {
        let t = table("p int PRIMARY KEY, v int");
        let ctx = EvalContext {
            values: &[],
            now_micros: 0,
        };
        let at = |ts: i128| {
            let plan = prepare(
                t.clone(),
                &format!("UPDATE ks.t USING TIMESTAMP {ts} SET v = 1 WHERE p = 1"),
            )
            .expect("prepares");
            write_params(plan.using(), &t, &ctx, None)
        };
        assert_eq!(at(-100).expect("negative is fine").timestamp, -100);
        assert!(at(i128::from(i64::MIN) + 1).is_ok());
        assert!(message(at(i128::from(i64::MIN))).contains("bound"));
    }
}
