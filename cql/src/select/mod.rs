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

mod eval;
mod execute;
mod paging;
mod restrictions;
mod rows;
mod selection;
#[cfg(test)]
mod tests;

pub use execute::execute_select;
pub(crate) use rows::multi_cell_value;
use {eval::*, paging::*, restrictions::*, rows::*, selection::*};

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
    /// The result metadata columns, built once at PREPARE.
    result_columns: Arc<[ColumnSpec]>,
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
    if stmt.distinct
        && stmt.group_by.iter().any(|name| {
            table
                .column(name)
                .is_some_and(|c| c.kind == ColumnKind::Clustering)
        })
    {
        return Err(invalid(
            "Grouping on clustering columns is not allowed for SELECT DISTINCT queries",
        ));
    }
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
    let mut plan = SelectPlan {
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
        result_columns: Arc::from([]),
    };
    plan.result_columns = plan.build_result_columns().into();
    Ok(plan)
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
    pub fn result_columns(&self) -> &Arc<[ColumnSpec]> {
        &self.result_columns
    }

    fn build_result_columns(&self) -> Vec<ColumnSpec> {
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
