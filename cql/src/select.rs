//! SELECT: preparing a statement into a plan and executing the plan page by page.
//!
//! Preparation checks the statement against the table once: which columns are
//! selected, how the WHERE clause splits into the partitions to read, the
//! clustering slices to read in each, and the filters applied to the rows read
//! (which need ALLOW FILTERING), and whether rows come in reverse clustering
//! order. It records every bind marker's receiver on the way.
//!
//! Execution evaluates the plan's terms with the bound values, reads storage in
//! bounded chunks (a partition at a time for key lookups, ring-ordered scans
//! otherwise) and writes the selected values straight into a [`RowsWriter`].
//! Values are copied as stored: a stored cell already holds the wire value, and
//! non-frozen collections are reassembled from their element cells.
//!
//! Paging: the paging state is our own encoding of where the page stopped (the
//! last partition, the last clustering key inside it if any, and the limit
//! counters so far); the next page resumes strictly after that position.
//! Aggregates are never paged: they read everything in chunks and return one row.
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cluster::token::{murmur3_token, serialize_partition_key, split_partition_key};
use storage::model::{
    ClusteringBound, ClusteringRange, DecoratedKey, LiveCell, LiveRow, PartitionRange,
    PartitionResult, RingPosition, SliceQuery,
};
use storage::schema::{ColumnDef, ColumnKind, TableDef};
use storage::types::{self, CqlType};

use crate::error::{invalid, CqlError};
use crate::frame::{ColumnSpec, ResultMetadata, Rows, RowsWriter};
use crate::functions::{self, ScalarFn};
use crate::metadata::column_spec;
use crate::parser::ast::{self, InValues, Operator, Order, Relation, Selectable, Term};
use crate::values::{element_type, eval, BindSpecs, EvalContext, Evaluated};

/// The message of every query that would filter without ALLOW FILTERING.
pub const REQUIRES_ALLOW_FILTERING: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// Rows read per storage request when rows may be filtered out or aggregated.
const CHUNK_ROWS: usize = 1000;
/// Partitions read per scan request.
const SCAN_PARTITIONS: usize = 128;

/// A prepared SELECT.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    table: Arc<TableDef>,
    outputs: Vec<Output>,
    aggregates: Vec<AggSpec>,
    /// Rows are folded into groups (aggregates, or GROUP BY).
    aggregate: bool,
    /// GROUP BY: how many primary key columns make a group (None: one group).
    group_width: Option<usize>,
    /// SELECT JSON: every row becomes one JSON object.
    json: bool,
    distinct: bool,
    partition: PartitionPlan,
    clustering: ClusteringPlan,
    filters: Vec<Filter>,
    reversed: bool,
    /// ORDER BY over several partitions: rows are sorted in memory (unpaged only).
    sort_across_partitions: bool,
    limit: Option<Term>,
    per_partition_limit: Option<Term>,
}

/// One result column.
#[derive(Debug, Clone)]
struct Output {
    name: String,
    ty: CqlType,
    sel: Sel,
}

/// What a result column holds; `usize` fields index `TableDef::columns`.
#[derive(Debug, Clone)]
enum Sel {
    Column(usize),
    Field(usize, usize),
    WriteTime(usize),
    Ttl(usize),
    Token,
    /// A value already known (a first row's column inside a group).
    Const(Option<Bytes>),
    /// A native scalar function (or cast) of other selectors.
    Call(ScalarFn, Vec<Sel>),
    /// The result of `SelectPlan::aggregates[i]` over the group.
    Agg(usize),
}

/// One aggregate call: its kind, its argument selector and type (none for
/// `count(*)`), and its result type.
#[derive(Debug, Clone)]
struct AggSpec {
    kind: AggKind,
    arg: Option<(Sel, CqlType)>,
    ty: CqlType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

/// Which partitions are read.
#[derive(Debug, Clone)]
enum PartitionPlan {
    /// One restriction per partition key column, in key order.
    Keys(Vec<ValuesPlan>),
    /// `token(...)` bounds: (value, inclusive).
    Tokens {
        start: Option<(Term, bool)>,
        end: Option<(Term, bool)>,
    },
    Scan,
}

/// `= term`, `IN (terms)` or `IN ?` over one column or a column tuple.
#[derive(Debug, Clone)]
enum ValuesPlan {
    Eq(Term),
    In(InValues),
}

/// The clustering slices: equality/IN parts for a prefix, then an optional slice.
#[derive(Debug, Clone, Default)]
struct ClusteringPlan {
    /// Equality/IN parts covering consecutive columns, in key order.
    prefix: Vec<PrefixPart>,
    slice: Option<SlicePlan>,
}

impl ClusteringPlan {
    fn is_empty(&self) -> bool {
        self.prefix.is_empty() && self.slice.is_none()
    }
}

/// `c = x`, `c IN (...)`, `(c1, c2) = (x, y)` or `(c1, c2) IN (...)`.
#[derive(Debug, Clone)]
struct PrefixPart {
    first: usize,
    width: usize,
    multi: bool,
    values: ValuesPlan,
}

/// Bounds on the clustering columns from position `first`; each bound is a
/// single value (single column) or a tuple (multi-column), with inclusivity.
#[derive(Debug, Clone)]
struct SlicePlan {
    first: usize,
    /// Bounds are tuples (multi-column relations).
    tuples: bool,
    /// Every component of the bound tuples is used (false: the first only).
    multi: bool,
    lower: Option<(Term, usize, bool)>,
    upper: Option<(Term, usize, bool)>,
}

/// A condition checked on every row read.
#[derive(Debug, Clone)]
struct Filter {
    /// One column, or a clustering column tuple.
    columns: Vec<usize>,
    /// The value is a tuple (a multi-column relation).
    tuple: bool,
    op: Operator,
    value: FilterValue,
}

#[derive(Debug, Clone)]
enum FilterValue {
    Term(Term),
    In(InValues),
}

/// Where rows come from.
pub enum DataSource<'a> {
    Proxy(&'a cluster::StorageProxy),
    /// A shard-local table (virtual tables filled by the caller).
    Local(&'a storage::table::Table),
}

/// The client's paging request.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    pub page_size: Option<usize>,
    pub paging_state: Option<Bytes>,
}

fn undefined(name: &str) -> CqlError {
    invalid(format!("Undefined column name {}", ast::Ident(name)))
}

fn column_index(table: &TableDef, name: &str) -> Result<usize, CqlError> {
    table
        .columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| undefined(name))
}

/// Prepares `stmt` against `table`, recording bind receivers in `binds`.
pub fn prepare_select(
    stmt: &ast::SelectStatement,
    table: Arc<TableDef>,
    binds: &mut BindSpecs,
) -> Result<SelectPlan, CqlError> {
    let mut aggregates = Vec::new();
    let outputs = prepare_selection(&stmt.selection, &table, stmt.distinct, &mut aggregates)?;
    let mut where_plan = WherePlanner::new(&table, stmt.allow_filtering, binds);
    where_plan.plan(&stmt.where_clause)?;
    let WherePlanner {
        partition,
        clustering,
        filters,
        ..
    } = where_plan;
    if stmt.distinct
        && (!clustering.is_empty() || filters.iter().any(|f| is_clustering_or_regular(&table, f)))
    {
        return Err(invalid(
            "SELECT DISTINCT with WHERE clause only supports restriction by partition key and/or static columns.",
        ));
    }
    let reversed = prepare_order_by(&stmt.order_by, &table, &partition)?;
    let group_width = prepare_group_by(&stmt.group_by, &table, &partition, &clustering)?;
    let multi_key = match &partition {
        PartitionPlan::Keys(parts) => parts.iter().any(|p| matches!(p, ValuesPlan::In(_))),
        _ => false,
    };
    collect_limit(&stmt.limit, "[limit]", binds);
    collect_limit(&stmt.per_partition_limit, "[per_partition_limit]", binds);
    if let Some(timeout) = &stmt.timeout {
        binds.collect(timeout, "[timeout]", &CqlType::Duration);
    }
    Ok(SelectPlan {
        table,
        outputs,
        aggregate: !aggregates.is_empty() || group_width.is_some(),
        aggregates,
        group_width,
        json: stmt.json,
        distinct: stmt.distinct,
        partition,
        clustering,
        filters,
        reversed,
        sort_across_partitions: multi_key && !stmt.order_by.is_empty(),
        limit: stmt.limit.clone(),
        per_partition_limit: stmt.per_partition_limit.clone(),
    })
}

/// GROUP BY columns: primary key columns in key order, starting with the
/// partition key; columns fixed by an equality may be left out. Returns
/// how many leading primary key columns make a group.
fn prepare_group_by(
    group_by: &[String],
    table: &TableDef,
    partition: &PartitionPlan,
    clustering: &ClusteringPlan,
) -> Result<Option<usize>, CqlError> {
    if group_by.is_empty() {
        return Ok(None);
    }
    let key: Vec<&ColumnDef> = table
        .partition_key()
        .chain(table.clustering_key())
        .collect();
    let pk_fixed = matches!(partition, PartitionPlan::Keys(parts) if parts.iter().all(|p| matches!(p, ValuesPlan::Eq(_))));
    let ck_fixed = |position: usize| {
        clustering.prefix.iter().any(|p| {
            matches!(p.values, ValuesPlan::Eq(_))
                && (p.first..p.first + p.width).contains(&position)
        })
    };
    let mut next = 0;
    for name in group_by {
        let i = column_index(table, name)?;
        loop {
            let Some(c) = key.get(next) else {
                return Err(group_by_order());
            };
            if c.name == table.columns[i].name {
                break;
            }
            let fixed = match c.kind {
                ColumnKind::PartitionKey => pk_fixed,
                _ => ck_fixed(c.position as usize),
            };
            if !fixed {
                return Err(group_by_order());
            }
            next += 1;
        }
        next += 1;
    }
    Ok(Some(next))
}

fn group_by_order() -> CqlError {
    invalid("Group by currently only support groups of columns following their declared order in the PRIMARY KEY")
}

fn is_clustering_or_regular(table: &TableDef, f: &Filter) -> bool {
    f.columns.iter().any(|&i| {
        matches!(
            table.columns[i].kind,
            ColumnKind::Clustering | ColumnKind::Regular
        )
    })
}

fn collect_limit(term: &Option<Term>, name: &str, binds: &mut BindSpecs) {
    if let Some(term) = term {
        binds.collect(term, name, &CqlType::Int);
    }
}

impl SelectPlan {
    /// The result metadata columns, aliases honoured.
    pub fn result_columns(&self) -> Vec<ColumnSpec> {
        if self.json {
            return vec![column_spec(&self.table, "[json]", &CqlType::Text)];
        }
        self.outputs
            .iter()
            .map(|o| column_spec(&self.table, &o.name, &o.ty))
            .collect()
    }

    /// The table read.
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// A result row as sent: for SELECT JSON, one JSON object of the values.
    fn finish_row(&self, values: Vec<Option<Bytes>>) -> Vec<Option<Bytes>> {
        if !self.json {
            return values;
        }
        let mut out = String::from("{");
        for (i, (o, v)) in self.outputs.iter().zip(&values).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            // Names that are not all lower case are quoted, as they must be
            // written to name the column in CQL.
            let name = if o.name.chars().any(char::is_uppercase) {
                format!("\"{}\"", o.name.replace('"', "\"\""))
            } else {
                o.name.clone()
            };
            out.push_str(&crate::json::json_string(&name));
            out.push_str(": ");
            out.push_str(&crate::json::to_json(&o.ty, v.as_deref()));
        }
        out.push('}');
        vec![Some(Bytes::from(out))]
    }
}

// ---------------------------------------------------------------- selection

fn prepare_selection(
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

fn distinct_error(c: &ColumnDef) -> CqlError {
    invalid(format!(
        "SELECT DISTINCT queries must only request partition key columns and/or static columns (not {})",
        c.name
    ))
}

fn check_distinct(outputs: &[Output], table: &TableDef) -> Result<(), CqlError> {
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
fn prepare_selectable(
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
fn prepare_cell_function(s: &Selectable, name: &str, table: &TableDef) -> Result<Output, CqlError> {
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

fn prepare_field(base: &Selectable, field: &str, table: &TableDef) -> Result<Output, CqlError> {
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
fn prepare_cast(
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

fn aggregate_kind(name: &str) -> Option<AggKind> {
    Some(match name {
        "count" => AggKind::Count,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "sum" => AggKind::Sum,
        "avg" => AggKind::Avg,
        _ => return None,
    })
}

fn prepare_function(
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

fn prepare_token(args: &[Selectable], table: &TableDef) -> Result<Output, CqlError> {
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

fn prepare_aggregate(
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

// ---------------------------------------------------------------- where clause

/// Splits a WHERE clause into partition, clustering and filter parts.
struct WherePlanner<'a> {
    table: &'a TableDef,
    allow_filtering: bool,
    binds: &'a mut BindSpecs,
    partition: PartitionPlan,
    clustering: ClusteringPlan,
    filters: Vec<Filter>,
}

/// A single-column relation, normalised.
#[derive(Debug, Clone)]
enum Single {
    Op(Operator, Term),
    In(InValues),
}

impl<'a> WherePlanner<'a> {
    fn new(table: &'a TableDef, allow_filtering: bool, binds: &'a mut BindSpecs) -> Self {
        WherePlanner {
            table,
            allow_filtering,
            binds,
            partition: PartitionPlan::Scan,
            clustering: ClusteringPlan::default(),
            filters: Vec::new(),
        }
    }

    fn column(&self, i: usize) -> &'a ColumnDef {
        &self.table.columns[i]
    }

    fn plan(&mut self, relations: &[Relation]) -> Result<(), CqlError> {
        let mut singles: Vec<Vec<Single>> = vec![Vec::new(); self.table.columns.len()];
        let mut tokens = Vec::new();
        let mut multis = Vec::new();
        for relation in relations {
            match relation {
                Relation::Simple { column, op, value } => {
                    let i = column_index(self.table, column)?;
                    self.collect_single(i, *op, value)?;
                    singles[i].push(Single::Op(*op, value.clone()));
                }
                Relation::In { column, values } => {
                    let i = column_index(self.table, column)?;
                    self.collect_in(i, values);
                    singles[i].push(Single::In(values.clone()));
                }
                Relation::Token { columns, op, value } => {
                    self.check_token_columns(columns)?;
                    self.binds
                        .collect(value, "partition key token", &CqlType::Bigint);
                    tokens.push((*op, value.clone()));
                }
                Relation::MultiColumn { .. } | Relation::MultiColumnIn { .. } => {
                    multis.push(self.multi_relation(relation)?);
                }
                Relation::Element { .. } => {
                    return Err(invalid("Element relations (c[k] = v) are not supported"))
                }
                Relation::IsNotNull { column } => {
                    return Err(invalid(format!(
                        "Unsupported restriction: {} IS NOT NULL",
                        ast::Ident(column)
                    )))
                }
            }
        }
        self.plan_partition(&mut singles, tokens)?;
        let ranged = !matches!(self.partition, PartitionPlan::Keys(_));
        self.plan_clustering(&mut singles, multis)?;
        if ranged && !self.clustering.is_empty() && !self.allow_filtering {
            return Err(invalid(REQUIRES_ALLOW_FILTERING));
        }
        self.plan_regular(singles)
    }

    fn collect_single(&mut self, i: usize, op: Operator, value: &Term) -> Result<(), CqlError> {
        let c = self.column(i);
        let (name, ty) = match op {
            Operator::Contains => (
                format!("value({})", c.name),
                element_type(&c.ty).ok_or_else(|| {
                    invalid(format!(
                        "Cannot use CONTAINS on non-collection column {}",
                        c.name
                    ))
                })?,
            ),
            Operator::ContainsKey => match &c.ty {
                CqlType::Map { key, .. } => (format!("key({})", c.name), (**key).clone()),
                _ => {
                    return Err(invalid(format!(
                        "Cannot use CONTAINS KEY on non-map column {}",
                        c.name
                    )))
                }
            },
            Operator::Like => return Err(invalid("LIKE restrictions are not supported")),
            _ => (c.name.clone(), c.ty.clone()),
        };
        self.binds.collect(value, &name, &ty);
        Ok(())
    }

    fn collect_in(&mut self, i: usize, values: &InValues) {
        let c = self.column(i);
        collect_in_values(self.binds, values, &c.name, &c.ty);
    }

    fn check_token_columns(&self, columns: &[String]) -> Result<(), CqlError> {
        let pk: Vec<&str> = self
            .table
            .partition_key()
            .map(|c| c.name.as_str())
            .collect();
        for c in columns {
            column_index(self.table, c)?;
        }
        if columns.iter().map(String::as_str).ne(pk.iter().copied()) {
            return Err(invalid(format!(
                "The token function arguments must be in the partition key order: {}",
                pk.join(", ")
            )));
        }
        Ok(())
    }
}

fn collect_in_values(binds: &mut BindSpecs, values: &InValues, name: &str, ty: &CqlType) {
    match values {
        InValues::List(terms) => {
            for t in terms {
                binds.collect(t, name, ty);
            }
        }
        InValues::Marker(m) => {
            let list = CqlType::list(ty.clone(), false);
            let name = m.name.clone().unwrap_or_else(|| format!("in({name})"));
            binds.set(m.index, &name, &list);
        }
    }
}

/// A multi-column relation on clustering columns, normalised.
#[derive(Debug, Clone)]
struct Multi {
    positions: Vec<usize>,
    columns: Vec<usize>,
    rel: Single,
}

impl WherePlanner<'_> {
    fn multi_relation(&mut self, relation: &Relation) -> Result<Multi, CqlError> {
        let (names, rel) = match relation {
            Relation::MultiColumn { columns, op, value } => {
                (columns, Single::Op(*op, value.clone()))
            }
            Relation::MultiColumnIn { columns, values } => (columns, Single::In(values.clone())),
            _ => unreachable!("only multi-column relations are passed"),
        };
        let mut columns = Vec::new();
        for name in names {
            let i = column_index(self.table, name)?;
            if self.column(i).kind != ColumnKind::Clustering {
                return Err(invalid(format!(
                    "Multi-column relations can only be applied to clustering columns but was applied to: {name}"
                )));
            }
            columns.push(i);
        }
        let positions: Vec<usize> = columns
            .iter()
            .map(|&i| self.column(i).position as usize)
            .collect();
        if positions.windows(2).any(|w| w[1] != w[0] + 1) {
            let listed: Vec<&str> = names.iter().map(String::as_str).collect();
            return Err(invalid(format!(
                "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: ({})",
                listed.join(", ")
            )));
        }
        let ty = CqlType::tuple(columns.iter().map(|&i| self.column(i).ty.clone()).collect());
        let display = format!("({})", names.join(","));
        match &rel {
            Single::Op(op, value) => {
                if !matches!(
                    op,
                    Operator::Eq | Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte
                ) {
                    return Err(invalid(format!(
                        "Unsupported \"{op}\" relation: {relation}"
                    )));
                }
                self.binds.collect(value, &display, &ty);
            }
            Single::In(values) => collect_in_values(self.binds, values, &display, &ty),
        }
        Ok(Multi {
            positions,
            columns,
            rel,
        })
    }

    fn plan_partition(
        &mut self,
        singles: &mut [Vec<Single>],
        tokens: Vec<(Operator, Term)>,
    ) -> Result<(), CqlError> {
        let pk: Vec<usize> = (0..self.table.columns.len())
            .filter(|&i| self.column(i).kind == ColumnKind::PartitionKey)
            .collect();
        let restricted: Vec<usize> = pk
            .iter()
            .copied()
            .filter(|&i| !singles[i].is_empty())
            .collect();
        if !tokens.is_empty() {
            if let Some(&i) = restricted.first() {
                return Err(invalid(format!(
                    "Columns \"{}\" cannot be restricted by both a normal relation and a token relation",
                    self.column(i).name
                )));
            }
            self.partition = token_plan(tokens)?;
            return Ok(());
        }
        let all_eq = pk.iter().all(|&i| {
            matches!(
                singles[i].as_slice(),
                [Single::Op(Operator::Eq, _)] | [Single::In(_)]
            )
        });
        if all_eq {
            let parts = pk
                .iter()
                .map(|&i| match std::mem::take(&mut singles[i]).remove(0) {
                    Single::Op(_, t) => ValuesPlan::Eq(t),
                    Single::In(v) => ValuesPlan::In(v),
                })
                .collect();
            self.partition = PartitionPlan::Keys(parts);
            return Ok(());
        }
        for &i in &restricted {
            self.check_duplicate_eq(i, &singles[i])?;
            let slice = singles[i]
                .iter()
                .any(|s| !matches!(s, Single::Op(Operator::Eq, _) | Single::In(_)));
            if !self.allow_filtering {
                return Err(invalid(if slice {
                    "Only EQ and IN relation are supported on the partition key (unless you use the token() function or allow filtering)"
                } else {
                    REQUIRES_ALLOW_FILTERING
                }));
            }
            self.add_filters(i, std::mem::take(&mut singles[i]));
        }
        Ok(())
    }

    fn check_duplicate_eq(&self, i: usize, rels: &[Single]) -> Result<(), CqlError> {
        let has_eq = rels
            .iter()
            .any(|s| matches!(s, Single::Op(Operator::Eq, _) | Single::In(_)));
        if has_eq && rels.len() > 1 {
            return Err(invalid(format!(
                "{} cannot be restricted by more than one relation if it includes an Equal",
                self.column(i).name
            )));
        }
        Ok(())
    }

    fn add_filters(&mut self, i: usize, rels: Vec<Single>) {
        for rel in rels {
            let (op, value) = match rel {
                Single::Op(op, t) => (op, FilterValue::Term(t)),
                Single::In(v) => (Operator::Eq, FilterValue::In(v)),
            };
            self.filters.push(Filter {
                columns: vec![i],
                tuple: false,
                op,
                value,
            });
        }
    }

    fn plan_regular(&mut self, singles: Vec<Vec<Single>>) -> Result<(), CqlError> {
        for (i, rels) in singles.into_iter().enumerate() {
            if rels.is_empty() {
                continue;
            }
            if !self.allow_filtering {
                return Err(invalid(REQUIRES_ALLOW_FILTERING));
            }
            self.add_filters(i, rels);
        }
        Ok(())
    }
}

fn token_plan(tokens: Vec<(Operator, Term)>) -> Result<PartitionPlan, CqlError> {
    let mut start = None;
    let mut end = None;
    for (op, term) in tokens {
        let (slot, incl, which) = match op {
            Operator::Gt => (&mut start, false, "start"),
            Operator::Gte => (&mut start, true, "start"),
            Operator::Lt => (&mut end, false, "end"),
            Operator::Lte => (&mut end, true, "end"),
            Operator::Eq => {
                if start.is_some() || end.is_some() {
                    return Err(invalid("More than one restriction was found for the start bound on partition key token"));
                }
                start = Some((term.clone(), true));
                end = Some((term, true));
                continue;
            }
            _ => {
                return Err(invalid(format!(
                    "Unsupported \"{op}\" relation on the partition key token"
                )))
            }
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "More than one restriction was found for the {which} bound on partition key token"
            )));
        }
        *slot = Some((term, incl));
    }
    Ok(PartitionPlan::Tokens { start, end })
}

// ---------------------------------------------------------------- clustering

impl WherePlanner<'_> {
    fn clustering_columns(&self) -> Vec<usize> {
        let mut cols: Vec<usize> = (0..self.table.columns.len())
            .filter(|&i| self.column(i).kind == ColumnKind::Clustering)
            .collect();
        cols.sort_by_key(|&i| self.column(i).position);
        cols
    }

    fn plan_clustering(
        &mut self,
        singles: &mut [Vec<Single>],
        multis: Vec<Multi>,
    ) -> Result<(), CqlError> {
        let cols = self.clustering_columns();
        let single_used = cols.iter().any(|&i| !singles[i].is_empty());
        if !multis.is_empty() {
            if single_used {
                return Err(invalid(
                    "Mixing single column relations and multi column relations on clustering columns is not allowed",
                ));
            }
            return self.plan_multi(&cols, multis);
        }
        let mut stop: Option<(usize, bool)> = None; // (position, true if after a slice)
        for (pos, &i) in cols.iter().enumerate() {
            let rels = std::mem::take(&mut singles[i]);
            if let Some((prev, after_slice)) = stop {
                if !rels.is_empty() {
                    self.clustering_needs_filtering(i, cols[prev], after_slice)?;
                    self.add_filters(i, rels);
                }
                continue;
            }
            if rels.is_empty() {
                stop = Some((pos, false));
                continue;
            }
            self.check_duplicate_eq(i, &rels)?;
            match &rels[0] {
                Single::Op(Operator::Eq, t) => self.clustering.prefix.push(PrefixPart {
                    first: pos,
                    width: 1,
                    multi: false,
                    values: ValuesPlan::Eq(t.clone()),
                }),
                Single::In(v) => self.clustering.prefix.push(PrefixPart {
                    first: pos,
                    width: 1,
                    multi: false,
                    values: ValuesPlan::In(v.clone()),
                }),
                _ => {
                    let (slice, rest) = self.single_slice(i, pos, rels)?;
                    self.clustering.slice = slice;
                    if !rest.is_empty() {
                        if !self.allow_filtering {
                            return Err(invalid(REQUIRES_ALLOW_FILTERING));
                        }
                        self.add_filters(i, rest);
                    }
                    stop = Some((pos, true));
                }
            }
        }
        Ok(())
    }

    fn clustering_needs_filtering(
        &self,
        i: usize,
        prev: usize,
        after_slice: bool,
    ) -> Result<(), CqlError> {
        if self.allow_filtering {
            return Ok(());
        }
        let (c, p) = (&self.column(i).name, &self.column(prev).name);
        Err(invalid(if after_slice {
            format!("Clustering column \"{c}\" cannot be restricted (preceding column \"{p}\" is restricted by a non-EQ relation)")
        } else {
            format!("PRIMARY KEY column \"{c}\" cannot be restricted as preceding column \"{p}\" is not restricted")
        }))
    }

    /// The slice of single-column bounds on clustering column `i`; other
    /// relations on it (`!=`, CONTAINS) are returned to be filtered.
    fn single_slice(
        &self,
        i: usize,
        pos: usize,
        rels: Vec<Single>,
    ) -> Result<(Option<SlicePlan>, Vec<Single>), CqlError> {
        let mut slice = SlicePlan {
            first: pos,
            tuples: false,
            multi: false,
            lower: None,
            upper: None,
        };
        let mut rest = Vec::new();
        for rel in rels {
            match rel {
                Single::Op(
                    op @ (Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte),
                    t,
                ) => self.set_bound(&mut slice, op, t, 1, &self.column(i).name)?,
                other => rest.push(other),
            }
        }
        let slice = (slice.lower.is_some() || slice.upper.is_some()).then_some(slice);
        Ok((slice, rest))
    }

    fn set_bound(
        &self,
        slice: &mut SlicePlan,
        op: Operator,
        t: Term,
        width: usize,
        name: &str,
    ) -> Result<(), CqlError> {
        let (slot, which, incl) = match op {
            Operator::Gt => (&mut slice.lower, "start", false),
            Operator::Gte => (&mut slice.lower, "start", true),
            Operator::Lt => (&mut slice.upper, "end", false),
            _ => (&mut slice.upper, "end", true),
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "More than one restriction was found for the {which} bound on {name}"
            )));
        }
        *slot = Some((t, width, incl));
        Ok(())
    }

    fn plan_multi(&mut self, cols: &[usize], multis: Vec<Multi>) -> Result<(), CqlError> {
        let mut slice = SlicePlan {
            first: 0,
            tuples: true,
            multi: true,
            lower: None,
            upper: None,
        };
        let mut mixed_order = false;
        let mut slices = Vec::new();
        for m in multis {
            if m.positions.first() != Some(&0) {
                let first = m.columns[0];
                self.clustering_needs_filtering(first, cols[0], false)?;
                self.filters.push(multi_filter(m));
                continue;
            }
            match &m.rel {
                Single::Op(Operator::Eq, t) => {
                    self.push_multi_prefix(m.columns.len(), ValuesPlan::Eq(t.clone()))?
                }
                Single::In(v) => {
                    self.push_multi_prefix(m.columns.len(), ValuesPlan::In(v.clone()))?
                }
                Single::Op(op, t) => {
                    let names: Vec<&str> = m
                        .columns
                        .iter()
                        .map(|&i| self.column(i).name.as_str())
                        .collect();
                    self.set_bound(
                        &mut slice,
                        *op,
                        t.clone(),
                        m.columns.len(),
                        &format!("({})", names.join(",")),
                    )?;
                    let desc = self.column(m.columns[0]).descending;
                    mixed_order |= m.columns.iter().any(|&i| self.column(i).descending != desc);
                    slices.push(m);
                }
            }
        }
        if mixed_order {
            // The storage slice then covers the first column only (inclusive);
            // the exact tuple comparisons are applied to the rows read.
            self.filters.extend(slices.into_iter().map(multi_filter));
        }
        if slice.lower.is_some() || slice.upper.is_some() {
            if !self.clustering.prefix.is_empty() {
                return Err(invalid(
                    "Multi-column slice restrictions cannot be combined with equality restrictions",
                ));
            }
            if mixed_order {
                slice.multi = false;
                slice.lower = slice.lower.map(|(t, w, _)| (t, w, true));
                slice.upper = slice.upper.map(|(t, w, _)| (t, w, true));
            }
            self.clustering.slice = Some(slice);
        }
        Ok(())
    }

    fn push_multi_prefix(&mut self, width: usize, values: ValuesPlan) -> Result<(), CqlError> {
        if !self.clustering.prefix.is_empty() {
            return Err(invalid(
                "Clustering columns cannot be restricted by more than one multi-column equality",
            ));
        }
        self.clustering.prefix.push(PrefixPart {
            first: 0,
            width,
            multi: true,
            values,
        });
        Ok(())
    }
}

fn multi_filter(m: Multi) -> Filter {
    let (op, value) = match m.rel {
        Single::Op(op, t) => (op, FilterValue::Term(t)),
        Single::In(v) => (Operator::Eq, FilterValue::In(v)),
    };
    Filter {
        columns: m.columns,
        tuple: true,
        op,
        value,
    }
}

// ---------------------------------------------------------------- order by

fn prepare_order_by(
    order_by: &[(String, Order)],
    table: &TableDef,
    partition: &PartitionPlan,
) -> Result<bool, CqlError> {
    if order_by.is_empty() {
        return Ok(false);
    }
    let mut reversed = None;
    for (n, (name, order)) in order_by.iter().enumerate() {
        let i = column_index(table, name)?;
        let c = &table.columns[i];
        if c.kind != ColumnKind::Clustering {
            return Err(invalid(format!(
                "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}"
            )));
        }
        if c.position as usize != n {
            return Err(invalid(
                "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY",
            ));
        }
        let this = (*order == Order::Desc) != c.descending;
        if reversed.is_some_and(|r| r != this) {
            return Err(invalid("Unsupported order by relation"));
        }
        reversed = Some(this);
    }
    if !matches!(partition, PartitionPlan::Keys(_)) {
        return Err(invalid(
            "ORDER BY is only supported when the partition key is restricted by an EQ or an IN.",
        ));
    }
    Ok(reversed.unwrap_or(false))
}

// ---------------------------------------------------------------- evaluation

fn required(
    term: &Term,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
    what: &str,
) -> Result<Bytes, CqlError> {
    eval(term, ty, ctx)?.required(what)
}

/// The values of `= term` / `IN ...` against `ty` (a tuple type for multi-column parts).
fn eval_values(
    plan: &ValuesPlan,
    ty: &CqlType,
    ctx: &EvalContext<'_>,
    what: &str,
) -> Result<Vec<Bytes>, CqlError> {
    match plan {
        ValuesPlan::Eq(t) => Ok(vec![required(t, ty, ctx, what)?]),
        ValuesPlan::In(InValues::List(terms)) => {
            terms.iter().map(|t| required(t, ty, ctx, what)).collect()
        }
        ValuesPlan::In(InValues::Marker(m)) => {
            let list = CqlType::list(ty.clone(), false);
            match eval(&Term::Bind(m.clone()), &list, ctx)? {
                Evaluated::Value(v) => Ok(types::parse_collection(&v)?
                    .into_iter()
                    .map(Bytes::copy_from_slice)
                    .collect()),
                Evaluated::Null => Err(invalid(format!("Invalid null value for {what}"))),
                Evaluated::Unset => Err(invalid(format!("Invalid unset value for {what}"))),
            }
        }
    }
}

/// Splits a serialized tuple of `width` components; nulls are refused.
fn tuple_parts(value: &[u8], width: usize, what: &str) -> Result<Vec<Bytes>, CqlError> {
    let parts = types::parse_tuple(value)?;
    if parts.len() != width {
        return Err(invalid(format!(
            "Expected {width} elements in value tuple for {what}, but got {}",
            parts.len()
        )));
    }
    parts
        .into_iter()
        .map(|p| {
            p.map(Bytes::copy_from_slice).ok_or_else(|| {
                invalid(format!(
                    "Invalid null value in condition for columns {what}"
                ))
            })
        })
        .collect()
}

fn evaluate_limit(
    term: &Option<Term>,
    what: &str,
    ctx: &EvalContext<'_>,
) -> Result<usize, CqlError> {
    let Some(term) = term else {
        return Ok(usize::MAX);
    };
    match eval(term, &CqlType::Int, ctx)? {
        Evaluated::Unset => Ok(usize::MAX),
        Evaluated::Null => Err(invalid(format!(
            "Invalid null value of {}",
            what.to_ascii_lowercase()
        ))),
        Evaluated::Value(v) => {
            let n = <[u8; 4]>::try_from(&v[..])
                .map(i32::from_be_bytes)
                .map_err(|_| invalid("Invalid limit value"))?;
            usize::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid(format!("{what} must be strictly positive")))
        }
    }
}

/// The partitions to read, resolved.
enum Partitions {
    Keys(Vec<DecoratedKey>),
    Range(PartitionRange),
    Empty,
}

impl SelectPlan {
    fn pk_columns(&self) -> Vec<&ColumnDef> {
        self.table.partition_key().collect()
    }

    fn resolve_partitions(&self, ctx: &EvalContext<'_>) -> Result<Partitions, CqlError> {
        match &self.partition {
            PartitionPlan::Scan => Ok(Partitions::Range(PartitionRange::full())),
            PartitionPlan::Tokens { start, end } => resolve_tokens(start, end, ctx),
            PartitionPlan::Keys(parts) => {
                let cols = self.pk_columns();
                let mut combos: Vec<Vec<Bytes>> = vec![Vec::new()];
                for (part, col) in parts.iter().zip(&cols) {
                    let what = format!("partition key part {}", col.name);
                    let values = eval_values(part, &col.ty, ctx, &what)?;
                    combos = cartesian(combos, values.into_iter().map(|v| vec![v]).collect());
                }
                combos.sort_by(|a, b| compare_tuples(a, b, cols.iter().map(|c| &c.ty)));
                combos.dedup();
                let keys = combos
                    .iter()
                    .map(|combo| {
                        let parts: Vec<&[u8]> = combo.iter().map(|b| &b[..]).collect();
                        let key =
                            serialize_partition_key(&parts).map_err(|e| invalid(e.to_string()))?;
                        Ok(DecoratedKey::new(murmur3_token(&key), key))
                    })
                    .collect::<Result<Vec<_>, CqlError>>()?;
                Ok(Partitions::Keys(keys))
            }
        }
    }
}

fn cartesian(combos: Vec<Vec<Bytes>>, values: Vec<Vec<Bytes>>) -> Vec<Vec<Bytes>> {
    let mut out = Vec::with_capacity(combos.len() * values.len());
    for combo in &combos {
        for v in &values {
            let mut next = combo.clone();
            next.extend(v.iter().cloned());
            out.push(next);
        }
    }
    out
}

fn compare_tuples<'t>(
    a: &[Bytes],
    b: &[Bytes],
    types: impl Iterator<Item = &'t CqlType>,
) -> Ordering {
    for ((x, y), ty) in a.iter().zip(b).zip(types) {
        match ty.compare(x, y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

fn token_value(term: &Term, ctx: &EvalContext<'_>) -> Result<i64, CqlError> {
    let v = required(term, &CqlType::Bigint, ctx, "partition key token")?;
    <[u8; 8]>::try_from(&v[..])
        .map(i64::from_be_bytes)
        .map_err(|_| invalid("Invalid token value"))
}

fn resolve_tokens(
    start: &Option<(Term, bool)>,
    end: &Option<(Term, bool)>,
    ctx: &EvalContext<'_>,
) -> Result<Partitions, CqlError> {
    let start = start
        .as_ref()
        .map(|(t, incl)| Ok::<_, CqlError>((token_value(t, ctx)?, *incl)))
        .transpose()?;
    let end = end
        .as_ref()
        .map(|(t, incl)| Ok::<_, CqlError>((token_value(t, ctx)?, *incl)))
        .transpose()?;
    // The minimum token stands for the start of the ring as a start bound
    // and for the end of the ring as an end bound.
    let start = start.filter(|(t, _)| *t != i64::MIN);
    let end = end.filter(|(t, _)| *t != i64::MIN);
    if let (Some((s, si)), Some((e, ei))) = (start, end) {
        if s > e || (s == e && !(si && ei)) {
            return Ok(Partitions::Empty);
        }
    }
    let bound = |b: Option<(i64, bool)>| match b {
        None => Bound::Unbounded,
        Some((t, true)) => Bound::Included(t),
        Some((t, false)) => Bound::Excluded(t),
    };
    Ok(Partitions::Range(PartitionRange::tokens(
        bound(start),
        bound(end),
    )))
}

impl SelectPlan {
    /// The clustering ranges to read, sorted in clustering order.
    fn resolve_ranges(&self, ctx: &EvalContext<'_>) -> Result<Vec<ClusteringRange>, CqlError> {
        let types = self.table.clustering_types();
        let cols: Vec<&ColumnDef> = self.table.clustering_key().collect();
        let mut combos: Vec<Vec<Bytes>> = vec![Vec::new()];
        for part in &self.clustering.prefix {
            let (ty, what) = tuple_type(&cols[part.first..part.first + part.width], part.multi);
            let values = eval_values(&part.values, &ty, ctx, &what)?;
            let values = values
                .iter()
                .map(|v| {
                    if part.multi {
                        tuple_parts(v, part.width, &what)
                    } else {
                        Ok(vec![v.clone()])
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            combos = cartesian(combos, values);
        }
        let mut prefixes: Vec<Vec<u8>> = combos
            .iter()
            .map(|c| {
                types::encode_clustering(&types, &c.iter().map(|b| &b[..]).collect::<Vec<_>>())
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let slice = match &self.clustering.slice {
            Some(s) => Some(self.resolve_slice(s, &cols, &types, ctx)?),
            None => None,
        };
        Ok(prefixes
            .into_iter()
            .map(|p| slice_range(&p, slice.as_ref()))
            .collect())
    }

    fn resolve_slice(
        &self,
        s: &SlicePlan,
        cols: &[&ColumnDef],
        types: &[(CqlType, bool)],
        ctx: &EvalContext<'_>,
    ) -> Result<ResolvedSlice, CqlError> {
        let bound = |b: &Option<(Term, usize, bool)>| -> Result<Option<(Vec<u8>, bool)>, CqlError> {
            let Some((term, width, incl)) = b else {
                return Ok(None);
            };
            let values = if s.tuples {
                let (ty, what) = tuple_type(&cols[s.first..s.first + width], true);
                let v = required(term, &ty, ctx, &what)?;
                let mut parts = tuple_parts(&v, *width, &what)?;
                if !s.multi {
                    parts.truncate(1);
                }
                parts
            } else {
                let c = cols[s.first];
                vec![
                    required(term, &c.ty, ctx, &format!("column {}", c.name)).map_err(|_| {
                        invalid(format!(
                            "Invalid null value in condition for column {}",
                            c.name
                        ))
                    })?,
                ]
            };
            let mut out = Vec::new();
            for (v, (ty, desc)) in values.iter().zip(&types[s.first..]) {
                ty.encode_key(v, *desc, &mut out);
            }
            Ok(Some((out, *incl)))
        };
        Ok(ResolvedSlice {
            lower: bound(&s.lower)?,
            upper: bound(&s.upper)?,
            descending: types[s.first].1,
        })
    }
}

/// A slice's bounds in key encoding (after the prefix); `descending` is the
/// order of its first column, which decides whether a lower bound is a start.
struct ResolvedSlice {
    lower: Option<(Vec<u8>, bool)>,
    upper: Option<(Vec<u8>, bool)>,
    descending: bool,
}

fn tuple_type(cols: &[&ColumnDef], multi: bool) -> (CqlType, String) {
    if let (false, [c]) = (multi, cols) {
        return (c.ty.clone(), format!("column {}", c.name));
    }
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    (
        CqlType::tuple(cols.iter().map(|c| c.ty.clone()).collect()),
        format!("({})", names.join(",")),
    )
}

fn slice_range(prefix: &[u8], slice: Option<&ResolvedSlice>) -> ClusteringRange {
    let Some(slice) = slice else {
        return if prefix.is_empty() {
            ClusteringRange::full()
        } else {
            ClusteringRange::prefix(prefix.to_vec())
        };
    };
    let with_prefix = |b: &Option<(Vec<u8>, bool)>| {
        b.as_ref().map(|(v, incl)| {
            let mut p = prefix.to_vec();
            p.extend_from_slice(v);
            ClusteringBound {
                prefix: p.into(),
                inclusive: *incl,
            }
        })
    };
    let (mut start, mut end) = if slice.descending {
        (with_prefix(&slice.upper), with_prefix(&slice.lower))
    } else {
        (with_prefix(&slice.lower), with_prefix(&slice.upper))
    };
    if !prefix.is_empty() {
        start = start.or_else(|| Some(ClusteringBound::inclusive(prefix.to_vec())));
        end = end.or_else(|| Some(ClusteringBound::inclusive(prefix.to_vec())));
    }
    ClusteringRange::new(start, end)
}

/// `ranges` restricted to the keys strictly after `last` in read order.
fn ranges_after(ranges: &[ClusteringRange], last: &[u8], reversed: bool) -> Vec<ClusteringRange> {
    ranges
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if reversed {
                let covers = match &r.end {
                    None => true,
                    Some(b) if b.inclusive => last <= &b.prefix[..] || last.starts_with(&b.prefix),
                    Some(b) => last < &b.prefix[..],
                };
                if covers {
                    r.end = Some(ClusteringBound::exclusive(last.to_vec()));
                }
            } else {
                let covers = match &r.start {
                    None => true,
                    Some(b) if b.inclusive => last >= &b.prefix[..],
                    Some(b) => last > &b.prefix[..] && !last.starts_with(&b.prefix),
                };
                if covers {
                    r.start = Some(ClusteringBound::exclusive(last.to_vec()));
                }
            }
            r
        })
        .collect()
}

// ---------------------------------------------------------------- rows

/// One row as the selectors and filters see it.
struct RowView<'a> {
    table: &'a TableDef,
    token: i64,
    pk: &'a [Bytes],
    /// Empty for a partition's static-only row.
    ck: &'a [Bytes],
    statics: Option<&'a LiveRow>,
    row: Option<&'a LiveRow>,
}

impl RowView<'_> {
    fn live_row(&self, c: &ColumnDef) -> Option<&LiveRow> {
        match c.kind {
            ColumnKind::Static => self.statics,
            _ => self.row,
        }
    }

    fn cell(&self, c: &ColumnDef) -> Option<&LiveCell> {
        self.live_row(c)?.cell(c.id)
    }

    /// The wire value of column `i`, `None` when null.
    fn value(&self, i: usize) -> Option<Bytes> {
        let c = &self.table.columns[i];
        match c.kind {
            ColumnKind::PartitionKey => self.pk.get(c.position as usize).cloned(),
            ColumnKind::Clustering => self.ck.get(c.position as usize).cloned(),
            _ if c.ty.is_multi_cell() => self
                .live_row(c)
                .and_then(|r| multi_cell_value(&c.ty, r, c.id)),
            _ => self.cell(c).map(|cell| cell.value.clone()),
        }
    }
}

/// Reassembles a non-frozen collection or UDT from its element cells; an
/// empty one is null. Malformed element paths are skipped.
fn multi_cell_value(ty: &CqlType, row: &LiveRow, column: u32) -> Option<Bytes> {
    let elements: Vec<(&Bytes, &LiveCell)> = row.elements(column).collect();
    if elements.is_empty() {
        return None;
    }
    let bytes = match ty {
        CqlType::List { .. } => {
            let values: Vec<Option<&[u8]>> =
                elements.iter().map(|(_, c)| Some(&c.value[..])).collect();
            types::serialize_collection(&values)
        }
        CqlType::Set { elem, .. } => {
            let keys: Vec<Vec<u8>> = elements
                .iter()
                .filter_map(|(p, _)| elem.decode_key(&mut &p[..], false).ok())
                .collect();
            types::serialize_collection(&keys.iter().map(|k| Some(&k[..])).collect::<Vec<_>>())
        }
        CqlType::Map { key, .. } => {
            let pairs: Vec<(Vec<u8>, &[u8])> = elements
                .iter()
                .filter_map(|(p, c)| Some((key.decode_key(&mut &p[..], false).ok()?, &c.value[..])))
                .collect();
            types::serialize_map(&pairs.iter().map(|(k, v)| (&k[..], *v)).collect::<Vec<_>>())
        }
        CqlType::Udt(udt) => {
            let mut fields: Vec<Option<&[u8]>> = vec![None; udt.fields.len()];
            for (path, cell) in &elements {
                let index = <[u8; 2]>::try_from(&path[..]).map(u16::from_be_bytes);
                if let Some(slot) = index.ok().and_then(|i| fields.get_mut(usize::from(i))) {
                    *slot = Some(&cell.value[..]);
                }
            }
            types::serialize_tuple(&fields)
        }
        _ => return None,
    };
    Some(Bytes::from(bytes))
}

/// The clocks selectors read: `ttl()` counts from `secs`, `now()` and
/// friends use `micros`.
#[derive(Debug, Clone, Copy)]
struct Now {
    secs: i32,
    micros: i64,
}

/// The value of a selector over one row; aggregates read `aggs` (the
/// group's results, empty while rows are still being read).
fn eval_sel(
    sel: &Sel,
    view: Option<&RowView<'_>>,
    now: Now,
    aggs: &[Option<Bytes>],
) -> Result<Option<Bytes>, CqlError> {
    match sel {
        Sel::Const(v) => Ok(v.clone()),
        Sel::Agg(i) => Ok(aggs.get(*i).cloned().flatten()),
        Sel::Call(f, args) => {
            let values = args
                .iter()
                .map(|a| eval_sel(a, view, now, aggs))
                .collect::<Result<Vec<_>, _>>()?;
            f.apply(&values, now.micros)
        }
        leaf => Ok(view.and_then(|v| leaf_value(leaf, v, now.secs))),
    }
}

/// A copy of `sel` with every value read from the row replaced by that
/// value: what a group keeps of its first row.
fn bind_row(sel: &Sel, view: &RowView<'_>, now_secs: i32) -> Sel {
    match sel {
        Sel::Const(_) | Sel::Agg(_) => sel.clone(),
        Sel::Call(f, args) => Sel::Call(
            f.clone(),
            args.iter().map(|a| bind_row(a, view, now_secs)).collect(),
        ),
        leaf => Sel::Const(leaf_value(leaf, view, now_secs)),
    }
}

/// The value of a selector read straight from the row.
fn leaf_value(sel: &Sel, view: &RowView<'_>, now_secs: i32) -> Option<Bytes> {
    let columns = &view.table.columns;
    match sel {
        Sel::Column(i) => view.value(*i),
        Sel::Field(i, f) => {
            let c = &columns[*i];
            if c.ty.is_multi_cell() {
                let path = u16::try_from(*f).ok()?.to_be_bytes();
                let row = view.live_row(c)?;
                row.elements(c.id)
                    .find(|(p, _)| p[..] == path)
                    .map(|(_, cell)| cell.value.clone())
            } else {
                let v = view.value(*i)?;
                let fields = types::parse_tuple(&v).ok()?;
                fields
                    .get(*f)
                    .copied()
                    .flatten()
                    .map(Bytes::copy_from_slice)
            }
        }
        Sel::WriteTime(i) => view
            .cell(&columns[*i])
            .map(|c| Bytes::copy_from_slice(&c.timestamp.to_be_bytes())),
        Sel::Ttl(i) => {
            let expiry = view.cell(&columns[*i])?.expiry?;
            let left = expiry.expires_at.saturating_sub(now_secs).max(0);
            Some(Bytes::copy_from_slice(&left.to_be_bytes()))
        }
        Sel::Token => Some(Bytes::copy_from_slice(&view.token.to_be_bytes())),
        Sel::Const(_) | Sel::Call(..) | Sel::Agg(_) => None,
    }
}

// ---------------------------------------------------------------- filters

/// A filter with its values evaluated.
struct ResolvedFilter {
    columns: Vec<usize>,
    op: Operator,
    /// Alternatives (IN) or the one value; tuples for multi-column filters.
    values: Vec<Vec<Bytes>>,
}

impl SelectPlan {
    fn resolve_filters(&self, ctx: &EvalContext<'_>) -> Result<Vec<ResolvedFilter>, CqlError> {
        self.filters
            .iter()
            .map(|f| self.resolve_filter(f, ctx))
            .collect()
    }

    fn resolve_filter(
        &self,
        f: &Filter,
        ctx: &EvalContext<'_>,
    ) -> Result<ResolvedFilter, CqlError> {
        let cols: Vec<&ColumnDef> = f.columns.iter().map(|&i| &self.table.columns[i]).collect();
        let multi = f.tuple;
        let (ty, what) = if multi {
            tuple_type(&cols, true)
        } else {
            let c = cols[0];
            let ty = match f.op {
                Operator::Contains => element_type(&c.ty).unwrap_or_else(|| c.ty.clone()),
                Operator::ContainsKey => match &c.ty {
                    CqlType::Map { key, .. } => (**key).clone(),
                    other => other.clone(),
                },
                _ => c.ty.clone(),
            };
            (ty, format!("column {}", c.name))
        };
        let plan = match &f.value {
            FilterValue::Term(t) => ValuesPlan::Eq(t.clone()),
            FilterValue::In(v) => ValuesPlan::In(v.clone()),
        };
        let values = eval_values(&plan, &ty, ctx, &what)
            .map_err(|_| invalid(format!("Unsupported null value for {what}")))?;
        let values = values
            .into_iter()
            .map(|v| {
                if multi {
                    tuple_parts(&v, cols.len(), &what)
                } else {
                    Ok(vec![v])
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResolvedFilter {
            columns: f.columns.clone(),
            op: f.op,
            values,
        })
    }
}

impl ResolvedFilter {
    fn matches(&self, view: &RowView<'_>) -> bool {
        let columns = &view.table.columns;
        let mut actual = Vec::with_capacity(self.columns.len());
        for &i in &self.columns {
            match view.value(i) {
                Some(v) => actual.push(v),
                None => return false,
            }
        }
        let types: Vec<&CqlType> = self.columns.iter().map(|&i| &columns[i].ty).collect();
        match self.op {
            Operator::Contains | Operator::ContainsKey => {
                let ty = types[0];
                let Some(needle) = self.values.first().and_then(|v| v.first()) else {
                    return false;
                };
                contains(ty, &actual[0], needle, self.op == Operator::ContainsKey)
            }
            op => self.values.iter().any(|value| {
                let ord = compare_tuples(&actual, value, types.iter().copied());
                match op {
                    Operator::Eq => ord == Ordering::Equal,
                    Operator::Neq => ord != Ordering::Equal,
                    Operator::Lt => ord == Ordering::Less,
                    Operator::Lte => ord != Ordering::Greater,
                    Operator::Gt => ord == Ordering::Greater,
                    Operator::Gte => ord != Ordering::Less,
                    _ => false,
                }
            }),
        }
    }
}

/// Whether collection `value` of `ty` holds `needle` (as a map key when `key`).
fn contains(ty: &CqlType, value: &[u8], needle: &[u8], key: bool) -> bool {
    match ty {
        CqlType::List { elem, .. } | CqlType::Set { elem, .. } => types::parse_collection(value)
            .map(|items| {
                items
                    .iter()
                    .any(|e| elem.compare(e, needle) == Ordering::Equal)
            })
            .unwrap_or(false),
        CqlType::Map {
            key: kt, value: vt, ..
        } => types::parse_map(value)
            .map(|pairs| {
                pairs.iter().any(|(k, v)| {
                    if key {
                        kt.compare(k, needle) == Ordering::Equal
                    } else {
                        vt.compare(v, needle) == Ordering::Equal
                    }
                })
            })
            .unwrap_or(false),
        _ => false,
    }
}

// ---------------------------------------------------------------- aggregates

/// How sum/avg read a numeric type: (width, float).
fn numeric_kind(ty: &CqlType) -> Option<(usize, bool)> {
    match ty {
        CqlType::Tinyint => Some((1, false)),
        CqlType::Smallint => Some((2, false)),
        CqlType::Int => Some((4, false)),
        CqlType::Bigint | CqlType::Counter => Some((8, false)),
        CqlType::Float => Some((4, true)),
        CqlType::Double => Some((8, true)),
        _ => None,
    }
}

/// One aggregate's running state over the rows of a group.
#[derive(Debug, Clone, Default)]
struct Accumulator {
    count: i64,
    int_sum: i128,
    float_sum: f64,
    best: Option<Bytes>,
}

impl Accumulator {
    fn add(&mut self, spec: &AggSpec, view: &RowView<'_>, now: Now) -> Result<(), CqlError> {
        let Some((arg, arg_ty)) = &spec.arg else {
            self.count += 1;
            return Ok(());
        };
        let Some(v) = eval_sel(arg, Some(view), now, &[])?.filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        self.count += 1;
        match spec.kind {
            AggKind::Count => {}
            AggKind::Min | AggKind::Max => {
                let better = self.best.as_ref().is_none_or(|b| {
                    let ord = arg_ty.compare(&v, b);
                    if spec.kind == AggKind::Min {
                        ord == Ordering::Less
                    } else {
                        ord == Ordering::Greater
                    }
                });
                if better {
                    self.best = Some(v);
                }
            }
            AggKind::Sum | AggKind::Avg => match numeric_kind(arg_ty) {
                Some((_, true)) => self.float_sum += read_float(&v),
                Some((_, false)) => self.int_sum += read_int(&v),
                None => {}
            },
        }
        Ok(())
    }

    fn result(&self, spec: &AggSpec) -> Option<Bytes> {
        match spec.kind {
            AggKind::Count => Some(Bytes::copy_from_slice(&self.count.to_be_bytes())),
            AggKind::Min | AggKind::Max => self.best.clone(),
            AggKind::Sum | AggKind::Avg => {
                let (width, float) = numeric_kind(&spec.ty)?;
                let n = if spec.kind == AggKind::Avg {
                    self.count.max(1)
                } else {
                    1
                };
                Some(if float {
                    write_float(self.float_sum / n as f64, width)
                } else {
                    write_int(self.int_sum / i128::from(n), width)
                })
            }
        }
    }
}

/// The group being folded: its key, its aggregates and its first row.
#[derive(Debug, Clone)]
struct Group {
    key: Vec<Bytes>,
    accumulators: Vec<Accumulator>,
    first_row: Vec<Sel>,
}

fn read_int(v: &[u8]) -> i128 {
    let mut n: i128 = if v.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for b in v {
        n = (n << 8) | i128::from(*b);
    }
    n
}

fn read_float(v: &[u8]) -> f64 {
    match v.len() {
        4 => f64::from(f32::from_be_bytes(v.try_into().unwrap_or_default())),
        8 => f64::from_be_bytes(v.try_into().unwrap_or_default()),
        _ => 0.0,
    }
}

fn write_int(n: i128, width: usize) -> Bytes {
    // Sums wrap at the column type's width, as the type's own arithmetic does.
    let bytes = n.to_be_bytes();
    Bytes::copy_from_slice(&bytes[16 - width..])
}

fn write_float(x: f64, width: usize) -> Bytes {
    if width == 4 {
        Bytes::copy_from_slice(&(x as f32).to_be_bytes())
    } else {
        Bytes::copy_from_slice(&x.to_be_bytes())
    }
}

// ---------------------------------------------------------------- paging state

/// Where a page stopped: after `key` (and inside it, after `clustering`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PagingState {
    key: DecoratedKey,
    clustering: Option<Bytes>,
    /// Rows returned by earlier pages (for LIMIT).
    emitted: u64,
    /// Rows of `key` returned so far (for PER PARTITION LIMIT).
    in_partition: u64,
}

const PAGING_STATE_VERSION: u8 = 1;

impl PagingState {
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(PAGING_STATE_VERSION);
        out.put_i64(self.key.token);
        put_blob(&mut out, &self.key.key);
        match &self.clustering {
            Some(ck) => {
                out.put_u8(1);
                put_blob(&mut out, ck);
            }
            None => out.put_u8(0),
        }
        out.put_u64(self.emitted);
        out.put_u64(self.in_partition);
        out.freeze()
    }

    fn decode(bytes: &[u8]) -> Result<Self, CqlError> {
        let bad = || invalid("Invalid value for the paging state");
        let mut input = bytes;
        if input.remaining() < 9 || input.get_u8() != PAGING_STATE_VERSION {
            return Err(bad());
        }
        let token = input.get_i64();
        let key = get_blob(&mut input).ok_or_else(bad)?;
        let clustering = match input.first() {
            Some(1) => {
                input.advance(1);
                Some(get_blob(&mut input).ok_or_else(bad)?)
            }
            Some(0) => {
                input.advance(1);
                None
            }
            _ => return Err(bad()),
        };
        if input.remaining() != 16 {
            return Err(bad());
        }
        Ok(PagingState {
            key: DecoratedKey::new(token, key),
            clustering,
            emitted: input.get_u64(),
            in_partition: input.get_u64(),
        })
    }
}

fn put_blob(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(u32::try_from(b.len()).expect("keys are far shorter than 4 GiB"));
    out.put_slice(b);
}

fn get_blob(input: &mut &[u8]) -> Option<Bytes> {
    if input.remaining() < 4 {
        return None;
    }
    let len = usize::try_from(input.get_u32()).ok()?;
    if input.remaining() < len {
        return None;
    }
    let b = Bytes::copy_from_slice(&input[..len]);
    input.advance(len);
    Some(b)
}

// ---------------------------------------------------------------- emitting rows

/// What the reader should do after handing rows to the emitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Read more of this partition.
    More,
    NextPartition,
    /// The page is full or the limit reached.
    Stop,
}

/// Turns the rows read into result rows, counting them against the limits.
struct Emitter<'p> {
    plan: &'p SelectPlan,
    filters: Vec<ResolvedFilter>,
    now: Now,
    writer: RowsWriter,
    page_left: usize,
    limit_left: usize,
    per_partition: usize,
    emitted: u64,
    current: Option<DecoratedKey>,
    pk: Vec<Bytes>,
    in_partition: usize,
    had_rows: bool,
    /// The paging position after the last row returned.
    last: Option<(DecoratedKey, Option<Bytes>)>,
    page_full: bool,
    /// The group being folded (aggregates and GROUP BY).
    group: Option<Group>,
    /// Groups still allowed by LIMIT.
    groups_left: usize,
    /// Rows held for the in-memory ORDER BY across partitions.
    sorted: Option<Vec<(Bytes, Vec<Option<Bytes>>)>>,
}

impl<'p> Emitter<'p> {
    fn new(
        plan: &'p SelectPlan,
        ctx: &EvalContext<'_>,
        page_size: Option<usize>,
        state: Option<&PagingState>,
        now_secs: i32,
        sort_rows: bool,
    ) -> Result<Self, CqlError> {
        let limit = evaluate_limit(&plan.limit, "LIMIT", ctx)?;
        let per_partition = evaluate_limit(&plan.per_partition_limit, "PER PARTITION LIMIT", ctx)?;
        let emitted = state.map_or(0, |s| s.emitted);
        let sort_rows = sort_rows && !plan.aggregate;
        let unbounded = plan.aggregate || sort_rows;
        Ok(Emitter {
            plan,
            filters: plan.resolve_filters(ctx)?,
            now: Now {
                secs: now_secs,
                micros: ctx.now_micros,
            },
            writer: RowsWriter::new(if plan.json { 1 } else { plan.outputs.len() }),
            page_left: if unbounded {
                usize::MAX
            } else {
                page_size.unwrap_or(usize::MAX)
            },
            limit_left: if unbounded {
                usize::MAX
            } else {
                limit.saturating_sub(usize::try_from(emitted).unwrap_or(usize::MAX))
            },
            per_partition,
            emitted,
            current: None,
            pk: Vec::new(),
            in_partition: 0,
            had_rows: false,
            last: None,
            page_full: false,
            group: None,
            groups_left: limit,
            sorted: sort_rows.then(Vec::new),
        })
    }

    /// Rows worth asking storage for at once.
    fn chunk_rows(&self) -> usize {
        if self.filters.is_empty() && !self.plan.aggregate && self.sorted.is_none() {
            self.page_left
                .min(self.limit_left)
                .min(self.per_partition)
                .clamp(1, CHUNK_ROWS)
        } else {
            CHUNK_ROWS
        }
    }

    fn enter(&mut self, key: &DecoratedKey) -> Result<(), CqlError> {
        if self.current.as_ref() == Some(key) {
            return Ok(());
        }
        let count = self.plan.table.partition_key_len();
        self.pk =
            split_partition_key(&key.key, count).map_err(|e| CqlError::Server(e.to_string()))?;
        self.current = Some(key.clone());
        self.in_partition = 0;
        self.had_rows = false;
        Ok(())
    }

    /// Continues inside `key` after a page boundary.
    fn resume(&mut self, key: &DecoratedKey, in_partition: u64) -> Result<(), CqlError> {
        self.enter(key)?;
        self.in_partition = usize::try_from(in_partition).unwrap_or(usize::MAX);
        self.had_rows = true;
        Ok(())
    }

    /// Takes a chunk of `key`'s rows in read order; `complete` when no more
    /// rows of the partition follow.
    fn chunk(
        &mut self,
        key: &DecoratedKey,
        statics: Option<&LiveRow>,
        rows: &[(Bytes, LiveRow)],
        complete: bool,
    ) -> Result<Flow, CqlError> {
        self.enter(key)?;
        let types = self.plan.table.clustering_types();
        for (ck_bytes, row) in rows {
            self.had_rows = true;
            let ck: Vec<Bytes> = types::decode_clustering(&types, ck_bytes)
                .map_err(|e| CqlError::Server(format!("stored clustering key: {e}")))?
                .into_iter()
                .map(Bytes::from)
                .collect();
            let pk = std::mem::take(&mut self.pk);
            let flow = self.offer(key, &pk, &ck, Some(ck_bytes), statics, Some(row));
            self.pk = pk;
            if let Some(flow) = flow? {
                return Ok(flow);
            }
        }
        if !complete {
            return Ok(Flow::More);
        }
        if !self.had_rows && statics.is_some() && self.plan.clustering.is_empty() {
            let pk = std::mem::take(&mut self.pk);
            let flow = self.offer(key, &pk, &[], None, statics, None);
            self.pk = pk;
            if let Some(flow) = flow? {
                return Ok(flow);
            }
        }
        Ok(Flow::NextPartition)
    }

    /// Filters, then emits one row; returns a flow when reading should not simply go on.
    fn offer(
        &mut self,
        key: &DecoratedKey,
        pk: &[Bytes],
        ck: &[Bytes],
        ck_bytes: Option<&Bytes>,
        statics: Option<&LiveRow>,
        row: Option<&LiveRow>,
    ) -> Result<Option<Flow>, CqlError> {
        let view = RowView {
            table: &self.plan.table,
            token: key.token,
            pk,
            ck,
            statics,
            row,
        };
        if !self.filters.iter().all(|f| f.matches(&view)) {
            return Ok(None);
        }
        if let Some(flow) = self.emit(&view, ck_bytes)? {
            return Ok(Some(flow));
        }
        self.emitted += 1;
        self.in_partition += 1;
        self.limit_left = self.limit_left.saturating_sub(1);
        self.page_left = self.page_left.saturating_sub(1);
        let partition_done =
            self.in_partition >= self.per_partition || ck_bytes.is_none() || self.plan.distinct;
        let position = if partition_done {
            None
        } else {
            ck_bytes.cloned()
        };
        self.last = Some((key.clone(), position));
        if self.limit_left == 0 {
            return Ok(Some(Flow::Stop));
        }
        if self.page_left == 0 {
            self.page_full = true;
            return Ok(Some(Flow::Stop));
        }
        Ok(partition_done.then_some(Flow::NextPartition))
    }

    fn emit(
        &mut self,
        view: &RowView<'_>,
        ck_bytes: Option<&Bytes>,
    ) -> Result<Option<Flow>, CqlError> {
        if self.plan.aggregate {
            return self.fold(view);
        }
        let values = self
            .plan
            .outputs
            .iter()
            .map(|o| eval_sel(&o.sel, Some(view), self.now, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let values = self.plan.finish_row(values);
        match &mut self.sorted {
            Some(sorted) => sorted.push((ck_bytes.cloned().unwrap_or_default(), values)),
            None => write_row(&mut self.writer, &values),
        }
        Ok(None)
    }

    /// Adds a row to its group, closing the previous group when the row
    /// starts a new one.
    fn fold(&mut self, view: &RowView<'_>) -> Result<Option<Flow>, CqlError> {
        let key: Vec<Bytes> = match self.plan.group_width {
            Some(width) => view.pk.iter().chain(view.ck).take(width).cloned().collect(),
            None => Vec::new(),
        };
        if self.group.as_ref().is_some_and(|g| g.key != key) {
            self.flush_group()?;
            if self.groups_left == 0 {
                return Ok(Some(Flow::Stop));
            }
        }
        let now = self.now;
        let plan = self.plan;
        let group = self.group.get_or_insert_with(|| Group {
            key,
            accumulators: vec![Accumulator::default(); plan.aggregates.len()],
            first_row: plan
                .outputs
                .iter()
                .map(|o| bind_row(&o.sel, view, now.secs))
                .collect(),
        });
        for (acc, spec) in group.accumulators.iter_mut().zip(&plan.aggregates) {
            acc.add(spec, view, now)?;
        }
        Ok(None)
    }

    /// Writes the open group's row.
    fn flush_group(&mut self) -> Result<(), CqlError> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let aggs: Vec<Option<Bytes>> = group
            .accumulators
            .iter()
            .zip(&self.plan.aggregates)
            .map(|(a, spec)| a.result(spec))
            .collect();
        let values = group
            .first_row
            .iter()
            .map(|sel| eval_sel(sel, None, self.now, &aggs))
            .collect::<Result<Vec<_>, _>>()?;
        write_row(&mut self.writer, &self.plan.finish_row(values));
        self.groups_left = self.groups_left.saturating_sub(1);
        Ok(())
    }

    fn finish(mut self, limit: usize) -> Result<Rows, CqlError> {
        if self.plan.aggregate {
            if self.group.is_none() && self.plan.group_width.is_none() {
                // An aggregate over no rows still answers one row (count 0).
                self.group = Some(Group {
                    key: Vec::new(),
                    accumulators: vec![Accumulator::default(); self.plan.aggregates.len()],
                    first_row: self.plan.outputs.iter().map(|o| o.sel.clone()).collect(),
                });
            }
            if self.groups_left > 0 {
                self.flush_group()?;
            }
        }
        if let Some(mut sorted) = self.sorted.take() {
            // Stable: rows of one clustering key keep their partition order.
            sorted.sort_by(|a, b| {
                if self.plan.reversed {
                    b.0.cmp(&a.0)
                } else {
                    a.0.cmp(&b.0)
                }
            });
            for (_, values) in sorted.iter().take(limit) {
                write_row(&mut self.writer, values);
            }
        }
        let paging_state = match (&self.last, self.page_full && self.limit_left > 0) {
            (Some((key, clustering)), true) => Some(
                PagingState {
                    key: key.clone(),
                    clustering: clustering.clone(),
                    emitted: self.emitted,
                    in_partition: u64::try_from(self.in_partition).unwrap_or(u64::MAX),
                }
                .encode(),
            ),
            _ => None,
        };
        let metadata = ResultMetadata {
            columns: self.plan.result_columns(),
            paging_state,
            no_metadata: false,
        };
        self.writer
            .finish(metadata)
            .map_err(|e| CqlError::Server(e.to_string()))
    }
}

fn write_row(writer: &mut RowsWriter, values: &[Option<Bytes>]) {
    for v in values {
        writer.push_value(v.as_deref());
    }
    writer.end_row();
}

// ---------------------------------------------------------------- reading

impl DataSource<'_> {
    async fn read(
        &self,
        table: &TableDef,
        key: &DecoratedKey,
        slice: SliceQuery,
        now_secs: i32,
    ) -> Result<Option<PartitionResult>, CqlError> {
        match self {
            DataSource::Proxy(proxy) => Ok(proxy
                .read_partition(table.id, key.clone(), slice, now_secs)
                .await?),
            DataSource::Local(t) => Ok(t.read_partition(key, &slice, now_secs)),
        }
    }

    async fn scan(
        &self,
        table: &TableDef,
        range: &PartitionRange,
        slice: SliceQuery,
        now_secs: i32,
    ) -> Result<Vec<PartitionResult>, CqlError> {
        match self {
            DataSource::Proxy(proxy) => Ok(proxy
                .scan(table.id, range.clone(), slice, SCAN_PARTITIONS, now_secs)
                .await?),
            DataSource::Local(t) => Ok(t.scan(range, &slice, SCAN_PARTITIONS, now_secs)),
        }
    }
}

/// One execution: the plan, its resolved slices and where rows come from.
struct Reader<'a> {
    plan: &'a SelectPlan,
    source: DataSource<'a>,
    ranges: Vec<ClusteringRange>,
    now_secs: i32,
}

impl Reader<'_> {
    fn slice(&self, after: Option<&Bytes>, row_limit: usize) -> SliceQuery {
        SliceQuery {
            ranges: match after {
                Some(ck) => ranges_after(&self.ranges, ck, self.plan.reversed),
                None => self.ranges.clone(),
            },
            reversed: self.plan.reversed,
            row_limit,
            columns: None,
        }
    }

    /// Reads `key` from after `after` (or its start) until the partition ends
    /// or the emitter stops.
    async fn read_partition(
        &self,
        em: &mut Emitter<'_>,
        key: &DecoratedKey,
        mut after: Option<Bytes>,
    ) -> Result<Flow, CqlError> {
        loop {
            let slice = self.slice(after.as_ref(), em.chunk_rows());
            let Some(result) = self
                .source
                .read(&self.plan.table, key, slice.clone(), self.now_secs)
                .await?
            else {
                return Ok(Flow::NextPartition);
            };
            let complete = result.rows.len() < slice.row_limit;
            let flow = em.chunk(
                &result.key,
                result.static_row.as_ref(),
                &result.rows,
                complete,
            )?;
            match (flow, result.rows.last()) {
                (Flow::More, Some((ck, _))) => after = Some(ck.clone()),
                (Flow::More, None) => return Ok(Flow::NextPartition),
                (other, _) => return Ok(other),
            }
        }
    }

    async fn read_keys(
        &self,
        em: &mut Emitter<'_>,
        keys: &[DecoratedKey],
        state: Option<&PagingState>,
    ) -> Result<(), CqlError> {
        let mut start = 0;
        if let Some(state) = state {
            let i = keys
                .iter()
                .position(|k| *k == state.key)
                .ok_or_else(|| invalid("Invalid value for the paging state"))?;
            if let Some(ck) = &state.clustering {
                em.resume(&keys[i], state.in_partition)?;
                if self.read_partition(em, &keys[i], Some(ck.clone())).await? == Flow::Stop {
                    return Ok(());
                }
            }
            start = i + 1;
        }
        for key in &keys[start..] {
            if self.read_partition(em, key, None).await? == Flow::Stop {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn read_range(
        &self,
        em: &mut Emitter<'_>,
        mut range: PartitionRange,
        state: Option<&PagingState>,
    ) -> Result<(), CqlError> {
        if let Some(state) = state {
            if let Some(ck) = &state.clustering {
                em.resume(&state.key, state.in_partition)?;
                if self
                    .read_partition(em, &state.key, Some(ck.clone()))
                    .await?
                    == Flow::Stop
                {
                    return Ok(());
                }
            }
            range.start = Bound::Excluded(RingPosition::key(&state.key));
        }
        loop {
            let slice = self.slice(None, em.chunk_rows());
            let parts = self
                .source
                .scan(&self.plan.table, &range, slice.clone(), self.now_secs)
                .await?;
            let Some(last) = parts.last() else {
                return Ok(());
            };
            let counted: usize = parts.iter().map(|p| p.counted_rows(&slice)).sum();
            let truncated = counted >= slice.row_limit;
            for (i, p) in parts.iter().enumerate() {
                let complete = !(i + 1 == parts.len() && truncated && !p.rows.is_empty());
                let flow = match em.chunk(&p.key, p.static_row.as_ref(), &p.rows, complete)? {
                    Flow::More => {
                        let after = p.rows.last().map(|(ck, _)| ck.clone());
                        self.read_partition(em, &p.key, after).await?
                    }
                    other => other,
                };
                if flow == Flow::Stop {
                    return Ok(());
                }
            }
            if parts.len() < SCAN_PARTITIONS && !truncated {
                return Ok(());
            }
            range.start = Bound::Excluded(RingPosition::key(&last.key));
        }
    }
}

/// Executes `plan` with the bound values in `ctx`, returning one page.
pub async fn execute_select(
    plan: &SelectPlan,
    source: DataSource<'_>,
    ctx: &EvalContext<'_>,
    page: &PageOptions,
    now_secs: i32,
) -> Result<Rows, CqlError> {
    let page_size = page.page_size.filter(|&n| n > 0);
    let state = match page.paging_state.as_deref() {
        Some(bytes) if !bytes.is_empty() => Some(PagingState::decode(bytes)?),
        _ => None,
    };
    let limit = evaluate_limit(&plan.limit, "LIMIT", ctx)?;
    let partitions = plan.resolve_partitions(ctx)?;
    let sort_rows = plan.sort_across_partitions
        && matches!(&partitions, Partitions::Keys(keys) if keys.len() > 1);
    if sort_rows && page_size.is_some() && !plan.aggregate {
        return Err(invalid("Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query"));
    }
    let mut em = Emitter::new(plan, ctx, page_size, state.as_ref(), now_secs, sort_rows)?;
    let reader = Reader {
        plan,
        source,
        ranges: plan.resolve_ranges(ctx)?,
        now_secs,
    };
    if !reader.ranges.is_empty() {
        match partitions {
            Partitions::Keys(keys) => reader.read_keys(&mut em, &keys, state.as_ref()).await?,
            Partitions::Range(range) => reader.read_range(&mut em, range, state.as_ref()).await?,
            Partitions::Empty => {}
        }
    }
    em.finish(limit)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use storage::model::{Cell, Expiry, Mutation, Row};
    use storage::schema::TableOptions;
    use storage::table::Table;

    use super::*;
    use crate::frame::Value;
    use crate::parser::parse_statement;

    /// Local reads never wait, so polling until ready never spins for long.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn int(n: i32) -> Vec<u8> {
        n.to_be_bytes().to_vec()
    }

    type Cells = Vec<Option<Vec<u8>>>;

    struct Fixture {
        def: Arc<TableDef>,
        table: Table,
        ts: i64,
    }

    /// `pk int, c1 int, c2 int [DESC], s int static, v int, l list<int>, st set<int>, m map<int,int>`.
    fn fixture(c2_desc: bool) -> Fixture {
        let col = |name: &str, id, ty, kind, position, descending| ColumnDef {
            name: name.into(),
            id,
            ty,
            kind,
            position,
            descending,
        };
        let mut def = TableDef {
            keyspace: "ks".into(),
            name: "t".into(),
            id: uuid::Uuid::from_u128(9),
            columns: vec![
                col("pk", 1, CqlType::Int, ColumnKind::PartitionKey, 0, false),
                col("c1", 2, CqlType::Int, ColumnKind::Clustering, 0, false),
                col("c2", 3, CqlType::Int, ColumnKind::Clustering, 1, c2_desc),
                col("s", 4, CqlType::Int, ColumnKind::Static, 0, false),
                col("v", 5, CqlType::Int, ColumnKind::Regular, 0, false),
                col(
                    "l",
                    6,
                    CqlType::list(CqlType::Int, false),
                    ColumnKind::Regular,
                    0,
                    false,
                ),
                col(
                    "st",
                    7,
                    CqlType::set(CqlType::Int, false),
                    ColumnKind::Regular,
                    0,
                    false,
                ),
                col(
                    "m",
                    8,
                    CqlType::map(CqlType::Int, CqlType::Int, false),
                    ColumnKind::Regular,
                    0,
                    false,
                ),
            ],
            options: TableOptions::default(),
            next_column_id: 9,
            dropped_columns: vec![],
            compact_storage: false,
        };
        def.sort_columns();
        Fixture {
            table: Table::new(def.id),
            def: Arc::new(def),
            ts: 1,
        }
    }

    fn dkey(pk: i32) -> DecoratedKey {
        let key = serialize_partition_key(&[&int(pk)]).expect("short key");
        DecoratedKey::new(murmur3_token(&key), key)
    }

    impl Fixture {
        fn col_id(&self, name: &str) -> u32 {
            self.def.column(name).expect("test column").id
        }

        fn ck(&self, c1: i32, c2: i32) -> Bytes {
            types::encode_clustering(&self.def.clustering_types(), &[&int(c1), &int(c2)]).into()
        }

        fn insert(&mut self, pk: i32, c1: i32, c2: i32, v: i32) {
            self.ts += 1;
            let row =
                Row::with_marker(self.ts, None).cell(self.col_id("v"), Cell::live(self.ts, int(v)));
            let m = Mutation::new(self.def.id, dkey(pk)).with_row(self.ck(c1, c2), row);
            self.table.apply(&m);
        }

        fn apply_row(&mut self, pk: i32, c1: i32, c2: i32, row: Row) {
            let m = Mutation::new(self.def.id, dkey(pk)).with_row(self.ck(c1, c2), row);
            self.table.apply(&m);
        }

        fn set_static(&mut self, pk: i32, s: i32) {
            self.ts += 1;
            let row = Row::new().cell(self.col_id("s"), Cell::live(self.ts, int(s)));
            let m = Mutation::new(self.def.id, dkey(pk)).with_static_row(row);
            self.table.apply(&m);
        }

        fn run(&self, cql: &str, values: &[Value], page: &PageOptions) -> Result<Rows, CqlError> {
            let parsed = parse_statement(cql).expect("test statement parses");
            let ast::Statement::Select(stmt) = parsed.statement else {
                panic!("not a select");
            };
            let mut binds = BindSpecs::new(parsed.bind_count);
            let plan = prepare_select(&stmt, Arc::clone(&self.def), &mut binds)?;
            assert!(binds.complete(), "every marker has a receiver: {binds:?}");
            let ctx = EvalContext {
                values,
                now_micros: 0,
            };
            block_on(execute_select(
                &plan,
                DataSource::Local(&self.table),
                &ctx,
                page,
                100,
            ))
        }

        fn rows(&self, cql: &str) -> Vec<Cells> {
            decode(
                &self
                    .run(cql, &[], &PageOptions::default())
                    .expect("query runs"),
            )
        }

        fn ints(&self, cql: &str) -> Vec<Vec<Option<i32>>> {
            to_ints(&self.rows(cql))
        }

        fn err(&self, cql: &str) -> String {
            self.run(cql, &[], &PageOptions::default())
                .expect_err("query fails")
                .to_string()
        }

        /// Every page of `cql` at `page_size`, concatenated.
        fn paged(&self, cql: &str, values: &[Value], page_size: usize) -> Vec<Cells> {
            let mut all = Vec::new();
            let mut state = None;
            for _ in 0..1000 {
                let page = PageOptions {
                    page_size: Some(page_size),
                    paging_state: state.take(),
                };
                let rows = self.run(cql, values, &page).expect("page runs");
                assert!(rows.rows_count as usize <= page_size);
                all.extend(decode(&rows));
                match rows.metadata.paging_state {
                    Some(s) => state = Some(s),
                    None => return all,
                }
            }
            panic!("paging does not end");
        }
    }

    fn decode(rows: &Rows) -> Vec<Cells> {
        let width = rows.metadata.columns.len();
        let mut input = &rows.rows_content[..];
        (0..rows.rows_count)
            .map(|_| {
                (0..width)
                    .map(|_| {
                        let len = input.get_i32();
                        (len >= 0).then(|| {
                            let v = input[..len as usize].to_vec();
                            input.advance(len as usize);
                            v
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn to_ints(rows: &[Cells]) -> Vec<Vec<Option<i32>>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|c| {
                        c.as_ref()
                            .map(|v| i32::from_be_bytes(v[..4].try_into().expect("int")))
                    })
                    .collect()
            })
            .collect()
    }

    fn sample(c2_desc: bool) -> Fixture {
        let mut f = fixture(c2_desc);
        for pk in 0..4 {
            for c1 in 0..3 {
                for c2 in 0..3 {
                    f.insert(pk, c1, c2, pk * 100 + c1 * 10 + c2);
                }
            }
        }
        f
    }

    #[test]
    fn wildcard_selects_schema_order_and_static_only_partitions() {
        let mut f = fixture(false);
        f.insert(1, 1, 2, 12);
        f.set_static(1, 7);
        f.set_static(2, 8);
        let names: Vec<String> = f
            .run("SELECT * FROM t WHERE pk = 1", &[], &PageOptions::default())
            .expect("runs")
            .metadata
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, ["pk", "c1", "c2", "l", "m", "s", "st", "v"]);
        assert_eq!(
            f.ints("SELECT pk, c1, c2, s, v FROM t WHERE pk = 1"),
            vec![vec![Some(1), Some(1), Some(2), Some(7), Some(12)]]
        );
        assert_eq!(
            f.ints("SELECT pk, c1, s, v FROM t WHERE pk = 2"),
            vec![vec![Some(2), None, Some(8), None]]
        );
        assert!(f
            .ints("SELECT pk FROM t WHERE pk = 2 AND c1 = 1")
            .is_empty());
        assert_eq!(f.ints("SELECT pk, s FROM t").len(), 2);
    }

    #[test]
    fn partition_in_returns_sorted_distinct_keys() {
        let f = sample(false);
        let rows = f.ints("SELECT pk FROM t WHERE pk IN (3, 1, 3) AND c1 = 0 AND c2 = 0");
        assert_eq!(rows, vec![vec![Some(1)], vec![Some(3)]]);
    }

    #[test]
    fn clustering_slices_and_order() {
        let f = sample(false);
        let v = |q: &str| {
            f.ints(q)
                .into_iter()
                .map(|r| r[0].expect("v"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 = 1"),
            [110, 111, 112]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 = 1 AND c2 > 0"),
            [111, 112]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 IN (2, 0) AND c2 <= 1"),
            [100, 101, 120, 121]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 >= 1 AND c1 < 2"),
            [110, 111, 112]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND (c1, c2) > (1, 1) AND (c1) < (2)"),
            [112]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND (c1, c2) >= (1, 1) AND (c1, c2) < (2, 1)"),
            [111, 112, 120]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND (c1, c2) IN ((2, 2), (0, 1))"),
            [101, 122]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 = 0 ORDER BY c1 DESC"),
            [102, 101, 100]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 > 1 ORDER BY c1 DESC, c2 DESC"),
            [122, 121, 120]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 IN (0, 1) ORDER BY c1 DESC LIMIT 4"),
            [112, 111, 110, 102]
        );
        assert!(v("SELECT v FROM t WHERE pk = 1 AND c1 IN ()").is_empty());
        assert_eq!(
            v("SELECT v FROM t WHERE pk IN (2, 1) AND c1 = 0 ORDER BY c1 DESC LIMIT 5"),
            [102, 202, 101, 201, 100]
        );
    }

    #[test]
    fn descending_clustering_column() {
        let f = sample(true);
        let v = |q: &str| {
            f.ints(q)
                .into_iter()
                .map(|r| r[0].expect("v"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 = 1"),
            [112, 111, 110]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 = 1 AND c2 > 0"),
            [112, 111]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c1 = 1 AND c2 < 2 ORDER BY c1 DESC, c2 ASC"),
            [110, 111]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND (c1, c2) > (1, 1) AND (c1) < (2)"),
            [112]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND (c1, c2) <= (0, 1)"),
            [101, 100]
        );
        assert_eq!(
            f.err("SELECT v FROM t WHERE pk = 1 ORDER BY c1 DESC, c2 DESC"),
            "Unsupported order by relation"
        );
    }

    #[test]
    fn paging_concatenates_to_the_unpaged_result() {
        let mut f = sample(false);
        f.set_static(9, 1);
        let queries = [
            "SELECT pk, c1, c2, v FROM t",
            "SELECT pk, c1, c2, v FROM t WHERE pk = 2",
            "SELECT pk, c1, c2, v FROM t WHERE pk = 2 ORDER BY c1 DESC",
            "SELECT pk, c1, c2, v FROM t WHERE pk IN (0, 2, 3) AND c1 > 0",
            "SELECT pk, c1, c2, v FROM t LIMIT 11",
            "SELECT pk, c1, c2, v FROM t PER PARTITION LIMIT 4",
            "SELECT pk, c1, c2, v FROM t PER PARTITION LIMIT 2 LIMIT 7",
            "SELECT pk, c1, c2, v FROM t WHERE v > 105 ALLOW FILTERING",
            "SELECT pk, s FROM t WHERE token(pk) > 0",
            "SELECT DISTINCT pk, s FROM t",
        ];
        for q in queries {
            let all = f.rows(q);
            for size in [1, 2, 3, 5, 100] {
                assert_eq!(f.paged(q, &[], size), all, "{q} at page size {size}");
            }
        }
        assert_eq!(f.rows(queries[0]).len(), 37);
        assert_eq!(f.rows(queries[5]).len(), 17);
        assert_eq!(f.rows(queries[6]).len(), 7);
    }

    #[test]
    fn aggregates_read_everything() {
        let f = sample(false);
        let count = |q: &str, page: Option<usize>| {
            let rows = f
                .run(
                    q,
                    &[],
                    &PageOptions {
                        page_size: page,
                        paging_state: None,
                    },
                )
                .expect("runs");
            assert!(rows.metadata.paging_state.is_none());
            decode(&rows)
        };
        let n = count("SELECT count(*) FROM t", Some(5));
        assert_eq!(n, vec![vec![Some(36i64.to_be_bytes().to_vec())]]);
        let n = count("SELECT COUNT(*) FROM t WHERE pk = 1 AND c1 = 2", Some(1));
        assert_eq!(n, vec![vec![Some(3i64.to_be_bytes().to_vec())]]);
        let stats = to_ints(&f.rows("SELECT min(v), max(v), sum(v), avg(v) FROM t WHERE pk = 1"));
        assert_eq!(
            stats,
            vec![vec![Some(100), Some(122), Some(999), Some(111)]]
        );
        let empty = f.rows("SELECT count(*), max(v) FROM t WHERE pk = 42");
        assert_eq!(empty, vec![vec![Some(0i64.to_be_bytes().to_vec()), None]]);
        let names: Vec<String> = f
            .run(
                "SELECT count(*), max(v) AS top FROM t",
                &[],
                &PageOptions::default(),
            )
            .expect("runs")
            .metadata
            .columns
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["count", "top"]);
    }

    #[test]
    fn filtering_requires_allow_filtering() {
        let f = sample(false);
        assert_eq!(
            f.err("SELECT * FROM t WHERE v = 1"),
            REQUIRES_ALLOW_FILTERING
        );
        assert_eq!(
            f.err("SELECT * FROM t WHERE c1 = 1"),
            REQUIRES_ALLOW_FILTERING
        );
        assert_eq!(f.err("SELECT * FROM t WHERE pk = 1 AND c2 = 1"), "PRIMARY KEY column \"c2\" cannot be restricted as preceding column \"c1\" is not restricted");
        assert_eq!(f.err("SELECT * FROM t WHERE pk = 1 AND c1 > 1 AND c2 = 1"), "Clustering column \"c2\" cannot be restricted (preceding column \"c1\" is restricted by a non-EQ relation)");
        assert_eq!(f.err("SELECT * FROM t WHERE pk > 1"), "Only EQ and IN relation are supported on the partition key (unless you use the token() function or allow filtering)");
        let v = |q: &str| {
            f.ints(q)
                .into_iter()
                .map(|r| r[0].expect("v"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 1 AND c2 = 1 ALLOW FILTERING"),
            [101, 111, 121]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE c1 = 2 AND c2 = 2 AND pk > 1 ALLOW FILTERING").len(),
            2
        );
        assert_eq!(
            v("SELECT v FROM t WHERE v IN (1, 301, 5) ALLOW FILTERING"),
            [1, 301]
        );
        assert_eq!(
            v("SELECT v FROM t WHERE pk = 0 AND v != 1 AND v < 5 ALLOW FILTERING"),
            [0, 2]
        );
    }

    #[test]
    fn schema_errors() {
        let f = sample(false);
        assert_eq!(f.err("SELECT x FROM t"), "Undefined column name x");
        assert_eq!(
            f.err("SELECT * FROM t WHERE x = 1"),
            "Undefined column name x"
        );
        assert_eq!(f.err("SELECT * FROM t WHERE pk = 1 ORDER BY v"), "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got v");
        assert_eq!(
            f.err("SELECT * FROM t ORDER BY c1"),
            "ORDER BY is only supported when the partition key is restricted by an EQ or an IN."
        );
        assert_eq!(
            f.err("SELECT * FROM t WHERE pk = 1 LIMIT 0"),
            "LIMIT must be strictly positive"
        );
        assert_eq!(f.err("SELECT DISTINCT pk, v FROM t"), "SELECT DISTINCT queries must only request partition key columns and/or static columns (not v)");
        assert_eq!(
            f.err("SELECT writetime(pk) FROM t"),
            "Cannot use selection function writetime on PRIMARY KEY part pk"
        );
        let paged = PageOptions {
            page_size: Some(10),
            paging_state: None,
        };
        let err = f
            .run(
                "SELECT * FROM t WHERE pk IN (1, 2) ORDER BY c1 DESC",
                &[],
                &paged,
            )
            .expect_err("refused");
        assert!(err
            .to_string()
            .starts_with("Cannot page queries with both ORDER BY and a IN"));
    }

    #[test]
    fn token_ranges() {
        let f = sample(false);
        let tokens: Vec<i64> = f
            .rows("SELECT token(pk) FROM t PER PARTITION LIMIT 1")
            .iter()
            .map(|r| {
                i64::from_be_bytes(r[0].clone().expect("token")[..].try_into().expect("bigint"))
            })
            .collect();
        assert_eq!(tokens.len(), 4);
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]),
            "scan in token order"
        );
        let count = |q: String| f.rows(&q).len();
        assert_eq!(
            count(format!(
                "SELECT pk FROM t WHERE token(pk) > {} PER PARTITION LIMIT 1",
                tokens[1]
            )),
            2
        );
        assert_eq!(
            count(format!(
                "SELECT pk FROM t WHERE token(pk) >= {} PER PARTITION LIMIT 1",
                tokens[1]
            )),
            3
        );
        assert_eq!(
            count(format!(
                "SELECT pk FROM t WHERE token(pk) > {} AND token(pk) <= {} PER PARTITION LIMIT 1",
                tokens[0], tokens[2]
            )),
            2
        );
        assert_eq!(
            count(format!(
                "SELECT pk FROM t WHERE token(pk) > {} AND token(pk) < {} PER PARTITION LIMIT 1",
                tokens[2], tokens[1]
            )),
            0
        );
        assert_eq!(
            count(format!(
                "SELECT pk FROM t WHERE token(pk) > {} PER PARTITION LIMIT 1",
                i64::MIN
            )),
            4
        );
        assert_eq!(
            count(format!(
                "SELECT pk FROM t WHERE token(pk) > {} AND token(pk) < {} PER PARTITION LIMIT 1",
                tokens[1],
                i64::MIN
            )),
            2
        );
    }

    #[test]
    fn collections_writetime_and_ttl() {
        let mut f = fixture(false);
        let (l, st, m, v) = (f.col_id("l"), f.col_id("st"), f.col_id("m"), f.col_id("v"));
        let key = |n: i32| {
            let mut out = Vec::new();
            CqlType::Int.encode_key(&int(n), false, &mut out);
            out
        };
        let row = Row::with_marker(5, None)
            .cell(v, Cell::expiring(42, int(1), Expiry::new(60, 90)))
            .element(l, vec![1u8; 16], Cell::live(5, int(30)))
            .element(l, vec![2u8; 16], Cell::live(5, int(10)))
            .element(st, key(3), Cell::live(5, Vec::new()))
            .element(st, key(-1), Cell::live(5, Vec::new()))
            .element(m, key(2), Cell::live(5, int(20)));
        f.apply_row(1, 0, 0, row);
        let rows = f.rows("SELECT l, st, m, writetime(v), ttl(v) FROM t WHERE pk = 1");
        let list = types::serialize_collection(&[Some(&int(30)), Some(&int(10))]);
        let set = types::serialize_collection(&[Some(&int(-1)), Some(&int(3))]);
        let map = types::serialize_map(&[(&int(2), &int(20))]);
        assert_eq!(
            rows,
            vec![vec![
                Some(list),
                Some(set),
                Some(map),
                Some(42i64.to_be_bytes().to_vec()),
                Some(int(50))
            ]]
        );
        let v = |q: &str| f.rows(q).len();
        assert_eq!(v("SELECT v FROM t WHERE l CONTAINS 10 ALLOW FILTERING"), 1);
        assert_eq!(
            v("SELECT v FROM t WHERE m CONTAINS KEY 3 ALLOW FILTERING"),
            0
        );
        assert_eq!(v("SELECT v FROM t WHERE m CONTAINS 20 ALLOW FILTERING"), 1);
    }

    #[test]
    fn bind_markers_and_their_receivers() {
        let f = sample(false);
        let cql = "SELECT v FROM t WHERE pk IN ? AND c1 = :first AND c2 > ? LIMIT ?";
        let parsed = parse_statement(cql).expect("parses");
        let ast::Statement::Select(stmt) = parsed.statement else {
            panic!("select")
        };
        let mut binds = BindSpecs::new(parsed.bind_count);
        prepare_select(&stmt, Arc::clone(&f.def), &mut binds).expect("prepares");
        let names: Vec<(String, CqlType)> = binds
            .specs
            .into_iter()
            .map(|s| s.expect("receiver"))
            .collect();
        assert_eq!(
            names,
            [
                ("in(pk)".to_string(), CqlType::list(CqlType::Int, false)),
                ("first".to_string(), CqlType::Int),
                ("c2".to_string(), CqlType::Int),
                ("[limit]".to_string(), CqlType::Int),
            ]
        );
        let list = types::serialize_collection(&[Some(&int(2)), Some(&int(1))]);
        let values = [
            Value::Bytes(list.into()),
            Value::Bytes(int(1).into()),
            Value::Bytes(int(0).into()),
            Value::Bytes(int(3).into()),
        ];
        let all = decode(&f.run(cql, &values, &PageOptions::default()).expect("runs"));
        assert_eq!(
            to_ints(&all),
            vec![vec![Some(111)], vec![Some(112)], vec![Some(211)]]
        );
        assert_eq!(f.paged(cql, &values, 1), all);
    }

    #[test]
    fn paging_state_round_trips_and_rejects_garbage() {
        let state = PagingState {
            key: dkey(5),
            clustering: Some(Bytes::from_static(b"abc")),
            emitted: 7,
            in_partition: 2,
        };
        assert_eq!(
            PagingState::decode(&state.encode()).expect("decodes"),
            state
        );
        assert!(PagingState::decode(b"\x01\x02").is_err());
        let mut long = state.encode().to_vec();
        long.push(0);
        assert!(PagingState::decode(&long).is_err());
    }
    #[test]
    fn group_by_folds_groups_in_key_order() {
        let f = sample(false);
        let rows = to_ints(&f.rows("SELECT pk, c1, v FROM t WHERE pk = 1 GROUP BY pk, c1"));
        assert_eq!(
            rows,
            vec![
                vec![Some(1), Some(0), Some(100)],
                vec![Some(1), Some(1), Some(110)],
                vec![Some(1), Some(2), Some(120)],
            ]
        );
        let sums = to_ints(&f.rows("SELECT pk, sum(v) FROM t WHERE pk IN (1, 2) GROUP BY pk"));
        assert_eq!(
            sums,
            vec![vec![Some(1), Some(999)], vec![Some(2), Some(1899)]]
        );
        let limited = f.rows("SELECT pk, c1 FROM t WHERE pk = 1 GROUP BY c1 LIMIT 2");
        assert_eq!(limited.len(), 2);
        for bad in [
            "SELECT v FROM t GROUP BY c1",
            "SELECT v FROM t GROUP BY pk, c2",
        ] {
            let err = f.run(bad, &[], &PageOptions::default()).expect_err(bad);
            assert!(err.to_string().contains("order"), "{err}");
        }
    }

    #[test]
    fn scalar_functions_casts_and_names() {
        let f = sample(false);
        let rows = f.run(
            "SELECT cast(v AS bigint), blobasint(intasblob(v)), cast(v AS text), \
                 system.todate(system.min(v)) FROM t WHERE pk = 1 AND c1 = 0 AND c2 = 1",
            &[],
            &PageOptions::default(),
        );
        // An aggregate inside a scalar function is fine, but todate(int) is not.
        assert!(rows.is_err());
        let rows = f
            .run(
                "SELECT cast(v AS bigint), blobasint(intasblob(v)), cast(v AS text) \
                 FROM t WHERE pk = 1 AND c1 = 0 AND c2 = 1",
                &[],
                &PageOptions::default(),
            )
            .expect("runs");
        let names: Vec<&str> = rows
            .metadata
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "cast(v as bigint)",
                "system.blobasint(system.intasblob(v))",
                "cast(v as text)"
            ]
        );
        assert_eq!(
            decode(&rows),
            vec![vec![
                Some(101i64.to_be_bytes().to_vec()),
                Some(101i32.to_be_bytes().to_vec()),
                Some(b"101".to_vec()),
            ]]
        );
        let same = f
            .run(
                "SELECT cast(v AS int) FROM t WHERE pk = 1",
                &[],
                &PageOptions::default(),
            )
            .expect("runs");
        assert_eq!(same.metadata.columns[0].name, "v");
        let err = f
            .run(
                "SELECT cast(v AS counter) FROM t",
                &[],
                &PageOptions::default(),
            )
            .expect_err("no casts to counter");
        assert!(err.to_string().contains("cannot be cast"), "{err}");
    }

    #[test]
    fn select_json_renders_one_object_per_row() {
        let f = sample(false);
        let rows = f
            .run(
                "SELECT JSON pk, v AS \"Value\", tojson(c1) FROM t WHERE pk = 1 AND c1 = 2 AND c2 = 0",
                &[],
                &PageOptions::default(),
            )
            .expect("runs");
        assert_eq!(rows.metadata.columns.len(), 1);
        assert_eq!(rows.metadata.columns[0].name, "[json]");
        let text = decode(&rows)[0][0].clone().expect("a json row");
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            r#"{"pk": 1, "\"Value\"": 120, "system.tojson(c1)": "2"}"#
        );
    }
}
