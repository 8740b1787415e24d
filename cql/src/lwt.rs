//! Conditional statements (lightweight transactions): `INSERT ... IF NOT
//! EXISTS`, `UPDATE/DELETE ... IF EXISTS`, `UPDATE/DELETE ... IF col op
//! value AND ...`, and batches holding any of them.
//!
//! This module owns the meaning of a condition and the shape of the answer;
//! [`StorageProxy::cas`] owns atomicity. One execution:
//! 1. Every statement builds its mutations as usual (at a provisional
//!    timestamp) and binds its condition values; a bad value (a null for
//!    `<`, an unset marker) fails the request before anything is read.
//! 2. All statements must write one partition of one table.
//! 3. The partition is read with the slice the conditions need: the rows the
//!    statements with regular-column conditions name, or, when only static
//!    columns matter, the first live row (which tells an existing partition
//!    from an absent one).
//! 4. On the owning shard, with no await in between, the conditions are
//!    checked against that read and, when all hold, the mutations are
//!    applied, moved to a write timestamp the proxy hands out (strictly
//!    increasing per shard, like a Paxos ballot).
//! 5. The answer is a Rows result whose first column is `[applied]`.
//!
//! Single node only: a shard owns its partitions and runs one job at a time,
//! so step 4 is linearizable. A cluster replaces the inside of
//! `StorageProxy::cas` with Paxos over the replicas; nothing here changes.
//!
//! The result follows Cassandra (what the compatibility suite expects of a
//! node that does not present itself as ScyllaDB): a write that applied
//! answers `[applied] = true` alone; one that did not adds the current
//! values of every column (IF EXISTS / IF NOT EXISTS) or of the condition
//! columns in IF order (after the primary key in a batch), one row per row
//! read, or `[applied] = false` alone when nothing was found. Since the
//! columns depend on the outcome, prepared statements announce no result
//! metadata and every result carries its own. Which row a condition judges
//! is the row its key names; when that row is absent and the statement is
//! not an existence check, the partition's static row stands in for it.
//!
//! Not atomic: operations that read the current row to build their writes
//! (`l[i] = x`, `l = l - [...]`) read it before step 4, as unconditional
//! statements do.
use std::sync::Arc;

use bytes::Bytes;
use cluster::StorageProxy;
use storage::model::{
    ClusteringBound, ClusteringRange, DecoratedKey, LiveRow, Mutation, PartitionResult, Row,
    SliceQuery,
};
use storage::schema::{ColumnDef, ColumnKind, TableDef};
use storage::types::{self, CqlType};

use crate::error::{invalid, CqlError};
use crate::frame::{ColumnSpec, ResultMetadata, Rows, RowsWriter};
use crate::metadata::column_spec;
use crate::modify::{self, ModifyKind, ModifyPlan};
use crate::parser::ast::{
    self, ConditionPredicate, ConditionTarget, DeleteStatement, IfClause, InValues,
    InsertStatement, InsertValues, Operator, Relation, Term, UpdateStatement,
};
use crate::values::{eval, BindSpecs, EvalContext, Evaluated};

/// The name of the first result column.
pub const APPLIED_COLUMN: &str = "[applied]";

/// What one condition reads from its column.
#[derive(Debug, Clone)]
enum Target {
    Whole,
    /// `m[key]` of a map, `l[index]` of a list.
    Element(Term),
    /// `u.field`, by field index.
    Field(usize),
}

/// A prepared `IF target op value`.
#[derive(Debug, Clone)]
struct ColumnCondition {
    column: ColumnDef,
    target: Target,
    predicate: ConditionPredicate,
}

/// The IF clause of one statement.
#[derive(Debug, Clone)]
enum Clause {
    None,
    Exists,
    NotExists,
    Columns(Vec<ColumnCondition>),
}

/// What a statement's conditions are about, prepared from its syntax.
#[derive(Debug, Clone)]
pub struct CasSpec {
    table: Arc<TableDef>,
    clause: Clause,
    /// The clause reads static columns (IF EXISTS without a clustering key
    /// in a table with static columns counts as static).
    static_conditions: bool,
    /// The clause reads a clustering row.
    regular_conditions: bool,
    /// The equality terms of the clustering key prefix the statement names,
    /// or `None` to take the row key from the built mutation.
    clustering: Option<Vec<Term>>,
}

impl CasSpec {
    /// A statement without conditions inside a conditional batch whose row
    /// is taken from its mutation.
    pub fn unconditional(table: Arc<TableDef>) -> Self {
        CasSpec {
            table,
            clause: Clause::None,
            static_conditions: false,
            regular_conditions: false,
            clustering: None,
        }
    }

    /// Whether the statement has an IF clause.
    pub fn is_conditional(&self) -> bool {
        !matches!(self.clause, Clause::None)
    }

    fn only_static_conditions(&self) -> bool {
        self.static_conditions && !self.regular_conditions
    }

    /// Result metadata announced when the statement is prepared: none,
    /// since the columns depend on the outcome (drivers then read them
    /// from each result).
    pub fn result_columns(&self) -> Vec<ColumnSpec> {
        Vec::new()
    }
}

/// A conditional statement ready to execute.
#[derive(Debug, Clone)]
pub struct CasStatement {
    pub plan: ModifyPlan,
    pub spec: CasSpec,
}

impl CasStatement {
    /// Pairs a prepared statement with its conditions.
    pub fn new(spec: CasSpec, plan: ModifyPlan) -> Self {
        CasStatement { plan, spec }
    }

    /// A statement without conditions, for a conditional batch.
    pub fn unconditional(plan: ModifyPlan) -> Self {
        CasStatement {
            spec: CasSpec::unconditional(plan.table.clone()),
            plan,
        }
    }
}

/// The columns of `table` that `keep` selects, in result order: partition
/// key, clustering key, static columns, regular columns.
fn ordered_columns(table: &TableDef, keep: impl Fn(&ColumnDef) -> bool) -> Vec<&ColumnDef> {
    let mut out: Vec<&ColumnDef> = Vec::new();
    out.extend(table.partition_key());
    out.extend(table.clustering_key());
    for kind in [ColumnKind::Static, ColumnKind::Regular] {
        out.extend(table.columns.iter().filter(|c| c.kind == kind));
    }
    out.retain(|c| keep(c));
    out
}

fn result_specs(table: &TableDef, columns: &[&ColumnDef]) -> Vec<ColumnSpec> {
    let mut specs = vec![column_spec(table, APPLIED_COLUMN, &CqlType::Boolean)];
    specs.extend(columns.iter().map(|c| column_spec(table, &c.name, &c.ty)));
    specs
}

/// Result metadata of a conditional batch, announced when it is prepared:
/// none (see [`CasSpec::result_columns`]).
pub fn batch_result_columns(_statements: &[CasStatement]) -> Vec<ColumnSpec> {
    Vec::new()
}

/// The columns after `[applied]` when a statement did not apply: every
/// column if an existence check took part, else the condition columns in
/// the order the IF clauses name them, after the primary key in a batch
/// (so each row says which row it is).
fn failure_columns<'t>(table: &'t TableDef, specs: &[&CasSpec], batch: bool) -> Vec<&'t ColumnDef> {
    let existence = specs
        .iter()
        .any(|s| matches!(s.clause, Clause::Exists | Clause::NotExists));
    if existence {
        return ordered_columns(table, |_| true);
    }
    let mut out: Vec<&ColumnDef> = Vec::new();
    if batch {
        out.extend(table.partition_key());
        out.extend(table.clustering_key());
    }
    for spec in specs {
        let Clause::Columns(conditions) = &spec.clause else {
            continue;
        };
        for c in conditions {
            if let Some(col) = table.column_by_id(c.column.id) {
                if !out.iter().any(|o| o.id == col.id) {
                    out.push(col);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------- prepare

fn update_or_delete(kind: ModifyKind) -> &'static str {
    if kind == ModifyKind::Delete {
        "deletions"
    } else {
        "updates"
    }
}

/// Checks that apply to every conditional statement.
fn check_conditional(
    table: &TableDef,
    using: &ast::Using,
    kind: ModifyKind,
) -> Result<(), CqlError> {
    if table.columns.iter().any(|c| c.ty.is_counter()) {
        return Err(invalid(
            "Conditional updates are not supported on counter tables",
        ));
    }
    if using.timestamp.is_some() {
        return Err(invalid(format!(
            "Cannot provide custom timestamp for conditional {}",
            update_or_delete(kind)
        )));
    }
    Ok(())
}

/// Prepares the conditions of an INSERT (`IF NOT EXISTS` or none).
pub fn insert_spec(stmt: &InsertStatement, table: Arc<TableDef>) -> Result<CasSpec, CqlError> {
    let mut spec = CasSpec::unconditional(table.clone());
    let restricts_clustering = match &stmt.values {
        InsertValues::Columns { columns, values } => {
            let mut terms = Vec::new();
            for ck in table.clustering_key() {
                match columns.iter().position(|c| *c == ck.name) {
                    Some(i) if i < values.len() => terms.push(values[i].clone()),
                    _ => break,
                }
            }
            let restricts = !terms.is_empty();
            spec.clustering = Some(terms);
            restricts
        }
        // The key is inside the document; it is taken from the mutation.
        InsertValues::Json { .. } => table.clustering_key_len() > 0,
    };
    if stmt.if_not_exists {
        check_conditional(&table, &stmt.using, ModifyKind::Insert)?;
        spec.clause = Clause::NotExists;
        classify_existence(&mut spec, restricts_clustering);
    }
    Ok(spec)
}

/// An existence check is about the static row when the statement names no
/// clustering row of a table with static columns, else about the row.
fn classify_existence(spec: &mut CasSpec, restricts_clustering: bool) {
    if spec.table.has_static_columns() && !restricts_clustering {
        spec.static_conditions = true;
    } else {
        spec.regular_conditions = true;
    }
}

/// What the WHERE clause of an UPDATE or DELETE restricts.
struct KeyShape {
    /// Equality terms of the clustering key prefix, in column order.
    clustering: Vec<Term>,
    /// Some clustering column is restricted at all.
    restricts_clustering: bool,
}

fn key_shape(
    table: &TableDef,
    relations: &[Relation],
    kind: ModifyKind,
) -> Result<KeyShape, CqlError> {
    let mut eq: Vec<Option<Term>> = vec![None; table.clustering_key_len()];
    let mut seen_pk: Vec<&str> = Vec::new();
    let mut restricts_clustering = false;
    for relation in relations {
        let (name, value) = match relation {
            Relation::Simple { column, op, value } => {
                (column, (*op == Operator::Eq).then_some(value))
            }
            Relation::In { column, .. } => (column, None),
            _ => continue,
        };
        let Some(col) = table.column(name) else {
            continue;
        };
        let is_in = matches!(relation, Relation::In { .. });
        match col.kind {
            ColumnKind::PartitionKey if is_in => {
                return Err(invalid(format!(
                    "IN on the partition key is not supported with conditional {}",
                    update_or_delete(kind)
                )))
            }
            ColumnKind::Clustering if is_in => {
                return Err(invalid(format!(
                    "IN on the clustering key columns is not supported with conditional {}",
                    update_or_delete(kind)
                )))
            }
            ColumnKind::PartitionKey if value.is_some() => {
                if seen_pk.contains(&name.as_str()) {
                    return Err(more_than_one_relation(name));
                }
                seen_pk.push(name);
            }
            ColumnKind::Clustering => {
                restricts_clustering = true;
                let slot = &mut eq[col.position as usize];
                if let Some(value) = value {
                    if slot.is_some() {
                        return Err(more_than_one_relation(name));
                    }
                    *slot = Some(value.clone());
                }
            }
            _ => {}
        }
    }
    let clustering = eq.into_iter().map_while(|t| t).collect();
    Ok(KeyShape {
        clustering,
        restricts_clustering,
    })
}

fn more_than_one_relation(name: &str) -> CqlError {
    invalid(format!(
        "{name} cannot be restricted by more than one relation if it includes an Equal"
    ))
}

/// Prepares the conditions of an UPDATE. Runs before the statement itself
/// is prepared, so its errors (which Cassandra reports first) win.
pub fn update_spec(
    stmt: &UpdateStatement,
    table: Arc<TableDef>,
    binds: &mut BindSpecs,
) -> Result<CasSpec, CqlError> {
    let written: Vec<&str> = stmt
        .assignments
        .iter()
        .map(|a| match a {
            ast::Assignment::Set { column, .. }
            | ast::Assignment::SetElement { column, .. }
            | ast::Assignment::SetField { column, .. }
            | ast::Assignment::Add { column, .. }
            | ast::Assignment::Prepend { column, .. }
            | ast::Assignment::Subtract { column, .. } => column.as_str(),
        })
        .collect();
    modification_spec(
        table,
        ModifyKind::Update,
        &stmt.where_clause,
        stmt.if_clause.as_ref(),
        &stmt.using,
        &written,
        binds,
    )
}

/// Prepares the conditions of a DELETE (see [`update_spec`]).
pub fn delete_spec(
    stmt: &DeleteStatement,
    table: Arc<TableDef>,
    binds: &mut BindSpecs,
) -> Result<CasSpec, CqlError> {
    let written: Vec<&str> = stmt
        .targets
        .iter()
        .map(|t| match t {
            ast::DeleteTarget::Column(c)
            | ast::DeleteTarget::Element { column: c, .. }
            | ast::DeleteTarget::Field { column: c, .. } => c.as_str(),
        })
        .collect();
    modification_spec(
        table,
        ModifyKind::Delete,
        &stmt.where_clause,
        stmt.if_clause.as_ref(),
        &stmt.using,
        &written,
        binds,
    )
}

fn modification_spec(
    table: Arc<TableDef>,
    kind: ModifyKind,
    where_clause: &[Relation],
    if_clause: Option<&IfClause>,
    using: &ast::Using,
    written: &[&str],
    binds: &mut BindSpecs,
) -> Result<CasSpec, CqlError> {
    let mut spec = CasSpec::unconditional(table.clone());
    let Some(if_clause) = if_clause else {
        // Unconditional statements of a conditional batch only need the
        // row they name.
        let shape = key_shape(&table, where_clause, kind).unwrap_or(KeyShape {
            clustering: Vec::new(),
            restricts_clustering: false,
        });
        spec.clustering = Some(shape.clustering);
        return Ok(spec);
    };
    check_conditional(&table, using, kind)?;
    let shape = key_shape(&table, where_clause, kind)?;
    match if_clause {
        IfClause::Exists => {
            spec.clause = Clause::Exists;
            classify_existence(&mut spec, shape.restricts_clustering);
        }
        IfClause::Conditions(conditions) => {
            let prepared = conditions
                .iter()
                .map(|c| prepare_condition(&table, c, binds))
                .collect::<Result<Vec<_>, _>>()?;
            for c in &prepared {
                if c.column.kind == ColumnKind::Static {
                    spec.static_conditions = true;
                } else {
                    spec.regular_conditions = true;
                }
            }
            spec.clause = Clause::Columns(prepared);
        }
    }
    check_row_restrictions(&spec, &shape, kind, written)?;
    spec.clustering = Some(shape.clustering);
    Ok(spec)
}

/// A statement whose conditions or writes concern a clustering row must
/// name the whole clustering key; one that only touches static columns
/// must name none of it.
fn check_row_restrictions(
    spec: &CasSpec,
    shape: &KeyShape,
    kind: ModifyKind,
    written: &[&str],
) -> Result<(), CqlError> {
    let table = &spec.table;
    let full_key = shape.clustering.len() == table.clustering_key_len();
    let writes_regular = written.iter().any(|name| {
        table
            .column(name)
            .is_some_and(|c| c.kind == ColumnKind::Regular)
    });
    let missing = || {
        table
            .clustering_key()
            .nth(shape.clustering.len())
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    if !full_key && kind == ModifyKind::Delete {
        if writes_regular {
            return Err(invalid(
                "DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to delete non static columns",
            ));
        }
        if spec.regular_conditions {
            return Err(invalid(
                "DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to use IF condition on non static columns",
            ));
        }
    }
    if !full_key && spec.regular_conditions {
        return Err(invalid(format!(
            "Some clustering keys are missing: {}",
            missing()
        )));
    }
    let only_static = !written.is_empty() && !writes_regular && !spec.regular_conditions;
    if only_static && shape.restricts_clustering {
        let verb = if kind == ModifyKind::Delete {
            "DELETE"
        } else {
            "UPDATE"
        };
        return Err(invalid(format!(
            "Invalid restrictions on clustering columns since the {verb} statement modifies only static columns"
        )));
    }
    Ok(())
}

fn prepare_condition(
    table: &TableDef,
    condition: &ast::Condition,
    binds: &mut BindSpecs,
) -> Result<ColumnCondition, CqlError> {
    let name = match &condition.target {
        ConditionTarget::Column(c)
        | ConditionTarget::Element { column: c, .. }
        | ConditionTarget::Field { column: c, .. } => c,
    };
    let column = table
        .column(name)
        .ok_or_else(|| invalid(format!("Undefined column name {name}")))?
        .clone();
    if column.is_primary_key() {
        return Err(invalid(format!(
            "PRIMARY KEY column '{name}' cannot have IF conditions"
        )));
    }
    let (target, value_ty, label) = match &condition.target {
        ConditionTarget::Column(_) => (Target::Whole, column.ty.clone(), name.clone()),
        ConditionTarget::Element { key, .. } => {
            let (key_ty, value_ty) = element_types(&column)?;
            binds.collect(key, &format!("key({name})"), &key_ty);
            (
                Target::Element(key.clone()),
                value_ty,
                format!("value({name})"),
            )
        }
        ConditionTarget::Field { field, .. } => {
            let (index, ty) = udt_field(&column, field)?;
            (Target::Field(index), ty, format!("{name}.{field}"))
        }
    };
    collect_predicate(
        &condition.predicate,
        &column,
        &target,
        &value_ty,
        &label,
        binds,
    )?;
    Ok(ColumnCondition {
        column,
        target,
        predicate: condition.predicate.clone(),
    })
}

fn collect_predicate(
    predicate: &ConditionPredicate,
    column: &ColumnDef,
    target: &Target,
    value_ty: &CqlType,
    label: &str,
    binds: &mut BindSpecs,
) -> Result<(), CqlError> {
    match predicate {
        ConditionPredicate::Compare(op, term) => {
            let ty = operand_type(*op, column, target, value_ty)?;
            binds.collect(term, label, &ty);
        }
        ConditionPredicate::In(InValues::List(terms)) => {
            terms.iter().for_each(|t| binds.collect(t, label, value_ty))
        }
        ConditionPredicate::In(InValues::Marker(m)) => binds.set(
            m.index,
            &format!("in({label})"),
            &CqlType::list(value_ty.clone(), false),
        ),
    }
    Ok(())
}

/// The type of the right side of `op`.
fn operand_type(
    op: Operator,
    column: &ColumnDef,
    target: &Target,
    value_ty: &CqlType,
) -> Result<CqlType, CqlError> {
    let whole = matches!(target, Target::Whole);
    match (op, &column.ty) {
        (Operator::Contains, CqlType::List { elem, .. } | CqlType::Set { elem, .. }) if whole => {
            Ok((**elem).clone())
        }
        (Operator::Contains, CqlType::Map { value, .. }) if whole => Ok((**value).clone()),
        (Operator::ContainsKey, CqlType::Map { key, .. }) if whole => Ok((**key).clone()),
        // The grammar only allows CONTAINS after a whole column.
        (Operator::Contains | Operator::ContainsKey, _) if !whole => {
            Err(CqlError::Syntax(crate::parser::SyntaxError {
                line: 1,
                column: 0,
                message: format!(
                    "{} is not allowed on an element or field of {}",
                    op_name(op),
                    column.name
                ),
            }))
        }
        (Operator::Contains | Operator::ContainsKey | Operator::Like, _) => Err(invalid(format!(
            "Unsupported operator {} in a condition on {}",
            op_name(op),
            column.name
        ))),
        _ => Ok(value_ty.clone()),
    }
}

fn element_types(column: &ColumnDef) -> Result<(CqlType, CqlType), CqlError> {
    match &column.ty {
        CqlType::Map { key, value, .. } => Ok(((**key).clone(), (**value).clone())),
        CqlType::List { elem, .. } => Ok((CqlType::Int, (**elem).clone())),
        _ => Err(invalid(format!(
            "Invalid element access in a condition: {} is not a map or a list",
            column.name
        ))),
    }
}

fn udt_field(column: &ColumnDef, field: &str) -> Result<(usize, CqlType), CqlError> {
    let CqlType::Udt(udt) = &column.ty else {
        return Err(invalid(format!(
            "Invalid field selection in a condition: {} is not a user type",
            column.name
        )));
    };
    udt.fields
        .iter()
        .position(|(f, _)| f == field)
        .map(|i| (i, udt.fields[i].1.clone()))
        .ok_or_else(|| {
            invalid(format!(
                "UDT column {} does not have a field named {field}",
                column.name
            ))
        })
}

fn op_name(op: Operator) -> &'static str {
    match op {
        Operator::Eq => "=",
        Operator::Neq => "!=",
        Operator::Lt => "<",
        Operator::Lte => "<=",
        Operator::Gt => ">",
        Operator::Gte => ">=",
        Operator::Contains => "CONTAINS",
        Operator::ContainsKey => "CONTAINS KEY",
        Operator::Like => "LIKE",
    }
}

/// Checks a batch of conditional statements before it runs.
pub fn check_batch(using: &ast::Using) -> Result<(), CqlError> {
    if using.timestamp.is_some() {
        return Err(invalid(
            "Cannot provide custom timestamp for conditional BATCH",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- bind

/// A condition with its values bound.
#[derive(Debug, Clone)]
struct BoundCondition {
    column: ColumnDef,
    target: BoundTarget,
    predicate: BoundPredicate,
}

#[derive(Debug, Clone)]
enum BoundTarget {
    Whole,
    /// A map key (serialized) or a list index.
    Element(Bytes),
    Field(usize),
}

#[derive(Debug, Clone)]
enum BoundPredicate {
    Compare(Operator, Option<Bytes>),
    In(Vec<Option<Bytes>>),
    /// Decided before reading (e.g. `CONTAINS` of an unset value).
    Constant(bool),
}

/// Where a statement's old row is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RowKey {
    /// A full clustering key (empty for a table without one).
    Row(Bytes),
    /// A clustering prefix, empty when the statement names no row.
    Prefix(Bytes),
}

/// Everything the owning shard needs to judge one statement.
#[derive(Debug, Clone)]
struct Check {
    row: RowKey,
    existence: Option<bool>,
    only_static: bool,
    has_conditions: bool,
    reads_row: bool,
    conditions: Vec<BoundCondition>,
}

fn bind_conditions(spec: &CasSpec, ctx: &EvalContext<'_>) -> Result<Vec<BoundCondition>, CqlError> {
    let Clause::Columns(conditions) = &spec.clause else {
        return Ok(Vec::new());
    };
    conditions.iter().map(|c| bind_condition(c, ctx)).collect()
}

fn bind_condition(c: &ColumnCondition, ctx: &EvalContext<'_>) -> Result<BoundCondition, CqlError> {
    let (target, value_ty) = match &c.target {
        Target::Whole => (BoundTarget::Whole, c.column.ty.clone()),
        Target::Element(key) => {
            let (key_ty, value_ty) = element_types(&c.column)?;
            let key = eval(key, &key_ty, ctx)?.required(&format!("key of {}", c.column.name))?;
            (BoundTarget::Element(key), value_ty)
        }
        Target::Field(index) => {
            let (_, ty) = udt_field_by_index(&c.column, *index)?;
            (BoundTarget::Field(*index), ty)
        }
    };
    let predicate = match &c.predicate {
        ConditionPredicate::Compare(op, term) => {
            let target = match &c.target {
                Target::Whole => Target::Whole,
                _ => Target::Field(0),
            };
            let ty = operand_type(*op, &c.column, &target, &value_ty)?;
            bind_compare(*op, eval(term, &ty, ctx)?, &c.column)?
        }
        ConditionPredicate::In(values) => bind_in(values, &value_ty, ctx)?,
    };
    Ok(BoundCondition {
        column: c.column.clone(),
        target,
        predicate: normalize_empty(predicate, &c.column, &c.target),
    })
}

fn udt_field_by_index(column: &ColumnDef, index: usize) -> Result<(usize, CqlType), CqlError> {
    match &column.ty {
        CqlType::Udt(udt) => udt
            .fields
            .get(index)
            .map(|(_, ty)| (index, ty.clone()))
            .ok_or_else(|| invalid(format!("No field {index} in {}", column.name))),
        _ => Err(invalid(format!("{} is not a user type", column.name))),
    }
}

fn bind_compare(
    op: Operator,
    value: Evaluated,
    column: &ColumnDef,
) -> Result<BoundPredicate, CqlError> {
    let ordered = matches!(
        op,
        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte
    );
    let contains = matches!(op, Operator::Contains | Operator::ContainsKey);
    match value {
        Evaluated::Unset if contains => Ok(BoundPredicate::Constant(false)),
        Evaluated::Unset => Err(invalid(format!(
            "Invalid 'unset' value in condition on {}",
            column.name
        ))),
        Evaluated::Null if ordered || contains => Err(invalid(format!(
            "Invalid comparison with null for operator \"{}\"",
            op_name(op)
        ))),
        Evaluated::Null => Ok(BoundPredicate::Compare(op, None)),
        Evaluated::Value(v) => Ok(BoundPredicate::Compare(op, Some(v))),
    }
}

fn bind_in(
    values: &InValues,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
) -> Result<BoundPredicate, CqlError> {
    let mut out = Vec::new();
    match values {
        InValues::List(terms) => {
            for term in terms {
                match eval(term, ty, ctx)? {
                    // An unset element is left out of the list.
                    Evaluated::Unset => {}
                    Evaluated::Null => out.push(None),
                    Evaluated::Value(v) => out.push(Some(v)),
                }
            }
        }
        InValues::Marker(m) => {
            let list_ty = CqlType::list(ty.clone(), true);
            match eval(&Term::Bind(m.clone()), &list_ty, ctx)? {
                Evaluated::Unset => return Err(invalid("Invalid 'unset' value in IN condition")),
                // `IN null` matches nothing.
                Evaluated::Null => {}
                Evaluated::Value(list) => {
                    for item in types::parse_collection(&list)? {
                        out.push(Some(Bytes::copy_from_slice(item)));
                    }
                }
            }
        }
    }
    Ok(BoundPredicate::In(out))
}

/// An empty non-frozen collection is stored as no cells, so it is null.
fn normalize_empty(
    predicate: BoundPredicate,
    column: &ColumnDef,
    target: &Target,
) -> BoundPredicate {
    if !matches!(target, Target::Whole) || !column.ty.is_multi_cell() || !column.ty.is_collection()
    {
        return predicate;
    }
    let empty = |v: &Option<Bytes>| {
        v.as_ref()
            .is_some_and(|b| b.len() == 4 && b[..] == [0, 0, 0, 0])
    };
    match predicate {
        BoundPredicate::Compare(op, v)
            if empty(&v) && matches!(op, Operator::Eq | Operator::Neq) =>
        {
            BoundPredicate::Compare(op, None)
        }
        BoundPredicate::In(items) => BoundPredicate::In(
            items
                .into_iter()
                .map(|v| if empty(&v) { None } else { v })
                .collect(),
        ),
        other => other,
    }
}

// ---------------------------------------------------------------- judge

/// A statement's old row: the clustering row it names, or the partition's
/// static row standing in for it (`clustering` is then `None`).
struct OldRow<'a> {
    clustering: Option<&'a Bytes>,
    statics: Option<&'a LiveRow>,
    row: Option<&'a LiveRow>,
}

impl OldRow<'_> {
    fn has_static(&self) -> bool {
        self.statics.is_some_and(|s| !s.cells.is_empty())
    }

    fn live(&self, column: &ColumnDef) -> Option<&LiveRow> {
        if column.kind == ColumnKind::Static {
            self.statics
        } else {
            self.row
        }
    }
}

fn find_old_row<'a>(
    table: &TableDef,
    partition: Option<&'a PartitionResult>,
    check: &Check,
) -> Option<OldRow<'a>> {
    let partition = partition?;
    let static_entry = || {
        (table.clustering_key_len() > 0 && table.has_static_columns()).then_some(OldRow {
            clustering: None,
            statics: partition.static_row.as_ref(),
            row: None,
        })
    };
    match &check.row {
        RowKey::Row(key) => {
            if let Some((k, row)) = partition.rows.iter().find(|(k, _)| k == key) {
                return Some(OldRow {
                    clustering: Some(k),
                    statics: partition.static_row.as_ref(),
                    row: Some(row),
                });
            }
            if check.existence.is_some() || key.is_empty() {
                return None;
            }
            static_entry()
        }
        RowKey::Prefix(prefix) if prefix.is_empty() => static_entry(),
        RowKey::Prefix(_) if check.existence.is_some() => None,
        RowKey::Prefix(_) => static_entry(),
    }
}

/// Whether one statement's conditions hold.
fn applies(table: &TableDef, partition: Option<&PartitionResult>, check: &Check) -> bool {
    if !check.has_conditions {
        return true;
    }
    let mut old = find_old_row(table, partition, check);
    // A statement about static columns treats a partition without a live
    // static row as absent, so IF NOT EXISTS on the static row applies to a
    // partition that only has clustering rows.
    if check.only_static && old.as_ref().is_some_and(|r| !r.has_static()) {
        old = None;
    }
    match check.existence {
        Some(true) => return old.is_some(),
        Some(false) => return old.is_none(),
        None => {}
    }
    check
        .conditions
        .iter()
        .all(|c| condition_holds(c, old.as_ref()))
}

fn condition_holds(c: &BoundCondition, old: Option<&OldRow<'_>>) -> bool {
    let live = old.and_then(|r| r.live(&c.column));
    let (current, ty) = target_value(c, live);
    let current = current.as_deref();
    match &c.predicate {
        BoundPredicate::Constant(v) => *v,
        BoundPredicate::In(items) => items.iter().any(|v| equal(&ty, current, v.as_deref())),
        BoundPredicate::Compare(op, value) => {
            compare(*op, &ty, &c.column.ty, current, value.as_deref())
        }
    }
}

fn equal(ty: &CqlType, a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => ty.compare(a, b).is_eq(),
        _ => false,
    }
}

fn compare(
    op: Operator,
    ty: &CqlType,
    column_ty: &CqlType,
    current: Option<&[u8]>,
    value: Option<&[u8]>,
) -> bool {
    match op {
        Operator::Eq => equal(ty, current, value),
        Operator::Neq => !equal(ty, current, value),
        Operator::Contains | Operator::ContainsKey => match (current, value) {
            (Some(current), Some(value)) => contains(column_ty, current, value, op),
            _ => false,
        },
        _ => match (current, value) {
            (Some(current), Some(value)) => {
                let ord = ty.compare(current, value);
                match op {
                    Operator::Lt => ord.is_lt(),
                    Operator::Lte => ord.is_le(),
                    Operator::Gt => ord.is_gt(),
                    _ => ord.is_ge(),
                }
            }
            _ => false,
        },
    }
}

fn contains(ty: &CqlType, collection: &[u8], needle: &[u8], op: Operator) -> bool {
    match ty {
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => {
            types::parse_collection(collection)
                .map(|items| items.iter().any(|i| elem.compare(i, needle).is_eq()))
                .unwrap_or(false)
        }
        CqlType::Map { key, value, .. } => types::parse_map(collection)
            .map(|pairs| {
                pairs.iter().any(|(k, v)| {
                    if op == Operator::ContainsKey {
                        key.compare(k, needle).is_eq()
                    } else {
                        value.compare(v, needle).is_eq()
                    }
                })
            })
            .unwrap_or(false),
        _ => false,
    }
}

/// The current value a condition tests, with the type to compare it by.
fn target_value(c: &BoundCondition, live: Option<&LiveRow>) -> (Option<Bytes>, CqlType) {
    let col = &c.column;
    match &c.target {
        BoundTarget::Whole => (live.and_then(|r| column_value(col, r)), col.ty.clone()),
        BoundTarget::Element(key) => element_value(col, live, key),
        BoundTarget::Field(index) => {
            let ty = udt_field_by_index(col, *index)
                .map(|(_, t)| t)
                .unwrap_or(CqlType::Blob);
            (field_value(col, live, *index), ty)
        }
    }
}

fn element_value(col: &ColumnDef, live: Option<&LiveRow>, key: &Bytes) -> (Option<Bytes>, CqlType) {
    let Ok((key_ty, value_ty)) = element_types(col) else {
        return (None, CqlType::Blob);
    };
    let Some(live) = live else {
        return (None, value_ty);
    };
    let found = match &col.ty {
        CqlType::List { .. } => {
            let index = <[u8; 4]>::try_from(&key[..]).map(i32::from_be_bytes).ok();
            let index = index.and_then(|i| usize::try_from(i).ok());
            index.and_then(|i| list_items(col, live).into_iter().nth(i))
        }
        _ if col.ty.is_multi_cell() => {
            let mut path = Vec::new();
            key_ty.encode_key(key, false, &mut path);
            live.elements(col.id)
                .find(|(p, _)| p[..] == path[..])
                .map(|(_, c)| c.value.clone())
        }
        _ => live.cell(col.id).and_then(|cell| {
            types::parse_map(&cell.value).ok().and_then(|pairs| {
                pairs
                    .iter()
                    .find(|(k, _)| key_ty.compare(k, key).is_eq())
                    .map(|(_, v)| Bytes::copy_from_slice(v))
            })
        }),
    };
    (found, value_ty)
}

fn list_items(col: &ColumnDef, live: &LiveRow) -> Vec<Bytes> {
    if col.ty.is_multi_cell() {
        return live
            .elements(col.id)
            .map(|(_, c)| c.value.clone())
            .collect();
    }
    live.cell(col.id)
        .and_then(|cell| {
            types::parse_collection(&cell.value)
                .ok()
                .map(|items| items.into_iter().map(Bytes::copy_from_slice).collect())
        })
        .unwrap_or_default()
}

fn field_value(col: &ColumnDef, live: Option<&LiveRow>, index: usize) -> Option<Bytes> {
    let live = live?;
    if col.ty.is_multi_cell() {
        let path = modify::field_path(index);
        return live
            .elements(col.id)
            .find(|(p, _)| **p == path)
            .map(|(_, c)| c.value.clone());
    }
    let cell = live.cell(col.id)?;
    let fields = types::parse_tuple(&cell.value).ok()?;
    fields
        .get(index)
        .copied()
        .flatten()
        .map(Bytes::copy_from_slice)
}

/// The wire value of a static or regular column of a live row, `None` when
/// null. Non-frozen collections and UDTs are reassembled from their cells.
fn column_value(col: &ColumnDef, row: &LiveRow) -> Option<Bytes> {
    if !col.ty.is_multi_cell() {
        return row.cell(col.id).map(|c| c.value.clone());
    }
    crate::select::multi_cell_value(&col.ty, row, col.id)
}

// ---------------------------------------------------------------- execute

/// One statement of an execution: what it writes and how it is judged.
struct Prepared {
    table: Arc<TableDef>,
    key: DecoratedKey,
    mutations: Vec<(Mutation, i64)>,
    check: Check,
}

async fn prepare_one(
    statement: &CasStatement,
    ctx: &EvalContext<'_>,
    proxy: &StorageProxy,
) -> Result<Prepared, CqlError> {
    let plan = &statement.plan;
    let spec = &statement.spec;
    let keys = modify::partition_keys(plan, ctx)?;
    let [key] = keys.as_slice() else {
        return Err(invalid(format!(
            "IN on the partition key is not supported with conditional {}",
            update_or_delete(plan.kind)
        )));
    };
    let params = modify::write_params(plan.using(), &plan.table, ctx, None)?;
    let mutations = modify::build_mutations(plan, ctx, params, proxy).await?;
    // Non-deterministic terms (`uuid()`, `now()`) in the key are evaluated
    // anew when the mutations are built: the key written is the key read.
    let key = mutations.first().map_or(key, |m| &m.key);
    let row = row_key(spec, ctx, &mutations)?;
    let check = Check {
        row,
        existence: match spec.clause {
            Clause::Exists => Some(true),
            Clause::NotExists => Some(false),
            _ => None,
        },
        only_static: spec.only_static_conditions(),
        has_conditions: spec.is_conditional(),
        reads_row: spec.is_conditional() && !spec.only_static_conditions(),
        conditions: bind_conditions(spec, ctx)?,
    };
    Ok(Prepared {
        table: plan.table.clone(),
        key: key.clone(),
        mutations: mutations
            .into_iter()
            .map(|m| (m, params.timestamp))
            .collect(),
        check,
    })
}

fn row_key(
    spec: &CasSpec,
    ctx: &EvalContext<'_>,
    mutations: &[Mutation],
) -> Result<RowKey, CqlError> {
    let table = &spec.table;
    if table.clustering_key_len() == 0 {
        return Ok(RowKey::Row(Bytes::new()));
    }
    let Some(terms) = &spec.clustering else {
        let first = mutations.first().and_then(|m| m.rows.first());
        return Ok(match first {
            Some((key, _)) => RowKey::Row(key.clone()),
            None => RowKey::Prefix(Bytes::new()),
        });
    };
    let values = table
        .clustering_key()
        .zip(terms)
        .map(|(col, term)| eval(term, &col.ty, ctx)?.required(&col.name))
        .collect::<Result<Vec<_>, _>>()?;
    let slices: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
    let encoded = Bytes::from(types::encode_clustering(&table.clustering_types(), &slices));
    Ok(if values.len() == table.clustering_key_len() {
        RowKey::Row(encoded)
    } else {
        RowKey::Prefix(encoded)
    })
}

/// The slice that covers every row the conditions read; when only static
/// columns matter, the first live row tells whether the partition exists.
fn read_slice(table: &TableDef, checks: &[Check]) -> SliceQuery {
    let mut keys: Vec<Bytes> = Vec::new();
    for check in checks.iter().filter(|c| c.reads_row) {
        match &check.row {
            RowKey::Row(key) if table.clustering_key_len() > 0 => keys.push(key.clone()),
            // A table without clustering key, or a statement naming part
            // of one (rare: only static conditions allow it), reads it all.
            RowKey::Row(_) | RowKey::Prefix(_) => return SliceQuery::full(),
        }
    }
    if keys.is_empty() {
        return SliceQuery {
            row_limit: 1,
            ..SliceQuery::full()
        };
    }
    // Encoded clustering keys sort in clustering order, so sorted and
    // deduplicated points are the sorted, disjoint ranges the read needs.
    keys.sort();
    keys.dedup();
    let ranges = keys
        .into_iter()
        .map(|k| {
            ClusteringRange::new(
                Some(ClusteringBound::inclusive(k.clone())),
                Some(ClusteringBound::inclusive(k)),
            )
        })
        .collect();
    SliceQuery {
        ranges,
        ..SliceQuery::full()
    }
}

/// Moves every timestamp of `mutation` by `delta` microseconds, keeping
/// their differences (a collection overwrite's tombstone stays one
/// microsecond before its elements).
fn shift_timestamps(mutation: &mut Mutation, delta: i64) {
    let shift = |t: &mut i64| *t = t.saturating_add(delta);
    if let Some(t) = &mut mutation.partition_deletion {
        shift(&mut t.timestamp);
    }
    for rt in &mut mutation.range_tombstones {
        shift(&mut rt.tombstone.timestamp);
    }
    let rows = mutation
        .static_row
        .iter_mut()
        .chain(mutation.rows.iter_mut().map(|(_, r)| r));
    rows.for_each(|row: &mut Row| {
        if let Some(m) = &mut row.marker {
            shift(&mut m.timestamp);
        }
        if let Some(d) = &mut row.deletion {
            shift(&mut d.timestamp);
        }
        row.cells.values_mut().for_each(|c| shift(&mut c.timestamp));
        row.complex_deletions
            .values_mut()
            .for_each(|d| shift(&mut d.timestamp));
    });
}

/// Executes conditional statements (one, or a batch) as one compare-and-set
/// and returns the `[applied]` result.
pub async fn execute(
    statements: &[(&CasStatement, EvalContext<'_>)],
    proxy: &StorageProxy,
) -> Result<Rows, CqlError> {
    let mut prepared = Vec::with_capacity(statements.len());
    for (statement, ctx) in statements {
        prepared.push(prepare_one(statement, ctx, proxy).await?);
    }
    let Some(first) = prepared.first() else {
        return Err(invalid("Empty conditional batch"));
    };
    let (table, key) = (first.table.clone(), first.key.clone());
    if prepared.iter().any(|p| p.table.id != table.id) {
        return Err(invalid("Batch with conditions cannot span multiple tables"));
    }
    if prepared.iter().any(|p| p.key != key) {
        return Err(invalid(
            "Batch with conditions cannot span multiple partitions",
        ));
    }
    let checks: Vec<Check> = prepared.iter().map(|p| p.check.clone()).collect();
    let slice = read_slice(&table, &checks);
    let writes: Vec<(Mutation, i64)> = prepared.into_iter().flat_map(|p| p.mutations).collect();
    let now_secs = i32::try_from(scheduler::clock::now_micros() / 1_000_000).unwrap_or(i32::MAX);
    let judge_table = table.clone();
    let judge_checks = checks.clone();
    let outcome = proxy
        .cas(
            table.id,
            key.clone(),
            slice,
            now_secs,
            move |current| {
                judge_checks
                    .iter()
                    .all(|c| applies(&judge_table, current, c))
            },
            move |timestamp| {
                writes
                    .into_iter()
                    .map(|(mut m, base)| {
                        shift_timestamps(&mut m, timestamp.saturating_sub(base));
                        m
                    })
                    .collect()
            },
        )
        .await?;
    let specs: Vec<&CasSpec> = statements.iter().map(|(s, _)| &s.spec).collect();
    if outcome.applied {
        return applied_rows(&table);
    }
    let columns = failure_columns(&table, &specs, specs.len() > 1);
    failure_rows(&table, &key, &columns, outcome.current.as_ref())
}

/// The answer of a write that applied: `[applied] = true` alone.
fn applied_rows(table: &TableDef) -> Result<Rows, CqlError> {
    let mut writer = RowsWriter::new(1);
    writer.push_value(Some(&[1]));
    writer.end_row();
    finish(writer, result_specs(table, &[]))
}

fn finish(writer: RowsWriter, columns: Vec<ColumnSpec>) -> Result<Rows, CqlError> {
    let metadata = ResultMetadata {
        columns: columns.into(),
        paging_state: None,
        no_metadata: false,
    };
    writer
        .finish(metadata)
        .map_err(|e| CqlError::Server(e.to_string()))
}

/// The answer of a write that did not apply: `[applied] = false` with the
/// current values of `columns`, one row per clustering row read (the static
/// row alone when there is none); `[applied]` alone when nothing was found.
fn failure_rows(
    table: &TableDef,
    key: &DecoratedKey,
    columns: &[&ColumnDef],
    current: Option<&PartitionResult>,
) -> Result<Rows, CqlError> {
    let mut found: Vec<OldRow<'_>> = Vec::new();
    if let Some(p) = current {
        found.extend(p.rows.iter().map(|(k, row)| OldRow {
            clustering: Some(k),
            statics: p.static_row.as_ref(),
            row: Some(row),
        }));
        if found.is_empty() && p.static_row.is_some() {
            found.push(OldRow {
                clustering: None,
                statics: p.static_row.as_ref(),
                row: None,
            });
        }
    }
    if found.is_empty() {
        let mut writer = RowsWriter::new(1);
        writer.push_value(Some(&[0]));
        writer.end_row();
        return finish(writer, result_specs(table, &[]));
    }
    let pk = cluster::token::split_partition_key(&key.key, table.partition_key_len())
        .map_err(|e| CqlError::Server(e.to_string()))?;
    let mut writer = RowsWriter::new(columns.len() + 1);
    for old in &found {
        writer.push_value(Some(&[0]));
        let ck = old
            .clustering
            .and_then(|k| types::decode_clustering(&table.clustering_types(), k).ok())
            .unwrap_or_default();
        for col in columns {
            let value = match col.kind {
                ColumnKind::PartitionKey => pk.get(col.position as usize).cloned(),
                ColumnKind::Clustering => ck
                    .get(col.position as usize)
                    .map(|v| Bytes::copy_from_slice(v)),
                _ => old.live(col).and_then(|live| column_value(col, live)),
            };
            writer.push_value(value.as_deref());
        }
        writer.end_row();
    }
    finish(writer, result_specs(table, columns))
}

#[cfg(test)]
mod tests {
    use storage::model::{CellKey, LiveCell};

    use super::*;

    fn int(v: i32) -> Bytes {
        Bytes::copy_from_slice(&v.to_be_bytes())
    }

    fn table() -> TableDef {
        let col = |name: &str, id: u32, kind: ColumnKind, position: u32| ColumnDef {
            name: name.to_string(),
            id,
            ty: CqlType::Int,
            kind,
            position,
            descending: false,
        };
        TableDef {
            keyspace: "ks".into(),
            name: "t".into(),
            id: Default::default(),
            columns: vec![
                col("p", 0, ColumnKind::PartitionKey, 0),
                col("c", 1, ColumnKind::Clustering, 0),
                col("s", 2, ColumnKind::Static, 0),
                col("v", 3, ColumnKind::Regular, 0),
            ],
            options: Default::default(),
            next_column_id: 4,
            dropped_columns: Vec::new(),
            compact_storage: false,
        }
    }

    fn live(column: u32, value: i32) -> LiveRow {
        LiveRow {
            marker: None,
            cells: vec![(
                CellKey::atomic(column),
                LiveCell {
                    timestamp: 1,
                    value: int(value),
                    expiry: None,
                },
            )],
        }
    }

    fn check(row: RowKey, existence: Option<bool>, only_static: bool) -> Check {
        Check {
            row,
            existence,
            only_static,
            has_conditions: true,
            reads_row: !only_static,
            conditions: Vec::new(),
        }
    }

    fn partition(static_value: Option<i32>, rows: &[(i32, i32)]) -> PartitionResult {
        PartitionResult {
            key: DecoratedKey::new(0, int(1)),
            static_row: static_value.map(|v| live(2, v)),
            rows: rows.iter().map(|(c, v)| (ck(*c), live(3, *v))).collect(),
        }
    }

    fn ck(c: i32) -> Bytes {
        Bytes::from(types::encode_clustering(
            &[(CqlType::Int, false)],
            &[&int(c)],
        ))
    }

    #[test]
    fn null_rules_of_conditions() {
        let ty = CqlType::Int;
        assert!(compare(Operator::Eq, &ty, &ty, None, None));
        assert!(!compare(Operator::Eq, &ty, &ty, Some(&int(1)), None));
        assert!(compare(Operator::Neq, &ty, &ty, None, Some(&int(1))));
        assert!(!compare(Operator::Lt, &ty, &ty, None, Some(&int(1))));
        assert!(compare(
            Operator::Lt,
            &ty,
            &ty,
            Some(&int(-1)),
            Some(&int(1))
        ));
        assert!(compare(
            Operator::Gte,
            &ty,
            &ty,
            Some(&int(1)),
            Some(&int(1))
        ));
        assert!(!compare(
            Operator::Gt,
            &ty,
            &ty,
            Some(&int(1)),
            Some(&int(1))
        ));
    }

    #[test]
    fn ordered_comparison_with_null_is_an_error() {
        let col = &table().columns[3];
        assert!(bind_compare(Operator::Lt, Evaluated::Null, col).is_err());
        assert!(bind_compare(Operator::Eq, Evaluated::Unset, col).is_err());
        assert!(matches!(
            bind_compare(Operator::Eq, Evaluated::Null, col),
            Ok(BoundPredicate::Compare(Operator::Eq, None))
        ));
    }

    #[test]
    fn existence_of_row_and_static_row() {
        let t = table();
        let p = partition(None, &[(1, 10)]);
        // The row exists; another row does not.
        assert!(applies(
            &t,
            Some(&p),
            &check(RowKey::Row(ck(1)), Some(true), false)
        ));
        assert!(applies(
            &t,
            Some(&p),
            &check(RowKey::Row(ck(2)), Some(false), false)
        ));
        // A partition with rows but no static row has no static row to exist.
        let static_check = check(RowKey::Prefix(Bytes::new()), Some(false), true);
        assert!(applies(&t, Some(&p), &static_check));
        let with_static = partition(Some(5), &[(1, 10)]);
        assert!(!applies(&t, Some(&with_static), &static_check));
        assert!(applies(&t, None, &static_check));
    }

    #[test]
    fn missing_row_falls_back_to_the_static_row() {
        let t = table();
        let p = partition(Some(5), &[]);
        let mut c = check(RowKey::Row(ck(7)), None, false);
        c.conditions = vec![BoundCondition {
            column: t.columns[2].clone(),
            target: BoundTarget::Whole,
            predicate: BoundPredicate::Compare(Operator::Eq, Some(int(5))),
        }];
        assert!(applies(&t, Some(&p), &c));
        c.existence = Some(true);
        assert!(!applies(&t, Some(&p), &c));
    }

    #[test]
    fn shifting_keeps_timestamp_differences() {
        let mut m = Mutation::new(Default::default(), DecoratedKey::new(0, int(1)));
        let mut row = Row::new();
        row.cells
            .insert(CellKey::atomic(3), storage::model::Cell::live(100, int(1)));
        row.complex_deletions
            .insert(4, storage::model::Tombstone::new(99, 0));
        m.rows.push((ck(1), row));
        shift_timestamps(&mut m, 1000);
        let (_, row) = &m.rows[0];
        assert_eq!(row.cells.values().next().map(|c| c.timestamp), Some(1100));
        assert_eq!(
            row.complex_deletions.get(&4).map(|t| t.timestamp),
            Some(1099)
        );
    }

    #[test]
    fn static_only_conditions_read_one_row() {
        let t = table();
        let slice = read_slice(&t, &[check(RowKey::Prefix(Bytes::new()), None, true)]);
        assert_eq!(slice.row_limit, 1);
        let rows = read_slice(
            &t,
            &[
                check(RowKey::Row(ck(2)), None, false),
                check(RowKey::Row(ck(1)), None, false),
                check(RowKey::Row(ck(2)), None, false),
            ],
        );
        assert_eq!(rows.ranges.len(), 2);
        assert_eq!(rows.row_limit, usize::MAX);
    }
}
