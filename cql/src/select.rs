//! Temporary stand-in for the SELECT executor (replaced by the real module).
use std::sync::Arc;

use bytes::Bytes;
use storage::schema::TableDef;

use crate::error::CqlError;
use crate::frame::ColumnSpec;
use crate::parser::ast;
use crate::values::{BindSpecs, EvalContext};

#[derive(Debug, Clone)]
pub struct SelectPlan {
    table: Arc<TableDef>,
}
pub fn prepare_select(_stmt: &ast::SelectStatement, table: Arc<TableDef>, _binds: &mut BindSpecs) -> Result<SelectPlan, CqlError> {
    Ok(SelectPlan { table })
}
impl SelectPlan {
    pub fn result_columns(&self) -> Vec<ColumnSpec> { vec![] }
    pub fn table(&self) -> &Arc<TableDef> { &self.table }
}
pub enum DataSource<'a> { Proxy(&'a cluster::StorageProxy), Local(&'a storage::table::Table) }
pub struct PageOptions { pub page_size: Option<usize>, pub paging_state: Option<Bytes> }
pub async fn execute_select(_plan: &SelectPlan, _source: DataSource<'_>, _ctx: &EvalContext<'_>, _page: &PageOptions, _now_secs: i32) -> Result<crate::frame::Rows, CqlError> {
    Err(CqlError::Invalid("stub".into()))
}
