//! The query processor of one shard: parse, prepare (cached), bind, execute.
//!
//! Every statement is prepared before it runs, whether it came as QUERY or
//! EXECUTE: preparing resolves names and types against the schema once, and
//! the prepared form is cached under an id every shard computes the same way
//! (a hash of keyspace and text), so a QUERY repeated by a driver costs one
//! hash lookup and the ids the drivers hold are valid on every shard.
//!
//! Schema statements run on shard 0, which serializes them: it applies the
//! statement to its schema, persists the result and installs it on every
//! shard before answering.
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster::{local, migration, StorageProxy};
use storage::schema::{KeyspaceDef, Schema, TableDef};
use storage::table::Table;
use storage::types::CqlType;
use uuid::Uuid;

use crate::ddl;
use crate::error::{invalid, CqlError};
use crate::frame::{
    ColumnSpec, Prepared as PreparedResponse, PreparedMetadata, ResultMetadata, ResultResponse,
    SchemaChange, Value, Values,
};
use crate::lwt;
use crate::metadata::column_type;
use crate::modify::{self, ModifyPlan};
use crate::parser::ast::{self, BatchChild, Statement};
use crate::parser::{parse_statement, ParsedStatement};
use crate::select::{self, DataSource, PageOptions, SelectPlan};
use crate::system::{self, NodeInfo};
use crate::values::{eval, BindSpecs, EvalContext, Evaluated};

/// Prepared statements kept per shard before the cache is cleared.
const PREPARED_CACHE_CAPACITY: usize = 10_000;

/// What a prepared statement does.
#[derive(Debug, Clone)]
pub enum Plan {
    Select {
        plan: Box<SelectPlan>,
        is_virtual: bool,
    },
    Modify(ModifyPlan),
    /// A statement with an IF clause (see [`crate::lwt`]).
    Conditional(Box<lwt::CasStatement>),
    Batch {
        kind: ast::BatchKind,
        using: ast::Using,
        plans: Vec<ModifyPlan>,
    },
    /// A batch with at least one IF clause: one compare-and-set.
    ConditionalBatch(Vec<lwt::CasStatement>),
    Schema(Box<Statement>),
    Use(String),
    Truncate(Arc<TableDef>),
    Describe(crate::describe::Describe),
}

/// A statement ready to execute.
#[derive(Debug)]
pub struct Prepared {
    pub id: Bytes,
    pub query: String,
    pub keyspace: Option<String>,
    pub plan: Plan,
    pub bind_specs: Vec<ColumnSpec>,
    pub bind_names: Vec<Option<String>>,
    pub pk_indexes: Vec<u16>,
    pub result_columns: Vec<ColumnSpec>,
    /// `USING TIMEOUT`: the statement's own deadline.
    timeout: Option<ast::Term>,
    schema_version: Uuid,
}

impl Prepared {
    /// The kind of statement, for metrics.
    pub fn kind(&self) -> &'static str {
        match &self.plan {
            Plan::Select { .. } => "select",
            Plan::Modify(m) => match m.kind {
                modify::ModifyKind::Insert => "insert",
                modify::ModifyKind::Update => "update",
                modify::ModifyKind::Delete => "delete",
            },
            Plan::Conditional(c) => match c.plan.kind {
                modify::ModifyKind::Insert => "insert",
                modify::ModifyKind::Update => "update",
                modify::ModifyKind::Delete => "delete",
            },
            Plan::Batch { .. } | Plan::ConditionalBatch(_) => "batch",
            Plan::Schema(_) | Plan::Truncate(_) => "ddl",
            Plan::Use(_) => "use",
            Plan::Describe(_) => "other",
        }
    }

    /// The PREPARED result.
    pub fn response(&self) -> PreparedResponse {
        PreparedResponse {
            id: self.id.clone(),
            metadata: PreparedMetadata {
                columns: self.bind_specs.clone(),
                pk_indexes: self.pk_indexes.clone(),
            },
            result_metadata: ResultMetadata {
                columns: self.result_columns.as_slice().into(),
                paging_state: None,
                no_metadata: self.result_columns.is_empty(),
            },
        }
    }
}

/// Options of one execution, from the request.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub page_size: Option<i32>,
    pub paging_state: Option<Bytes>,
    pub timestamp: Option<i64>,
    pub skip_metadata: bool,
}

/// What an execution returns to the connection.
#[derive(Debug)]
pub struct Outcome {
    pub result: ResultResponse,
    pub warnings: Vec<String>,
    /// A schema change to announce to registered connections.
    pub schema_change: Option<SchemaChange>,
}

impl Outcome {
    fn result(result: ResultResponse) -> Self {
        Outcome {
            result,
            warnings: Vec::new(),
            schema_change: None,
        }
    }
}

/// Settings the processor needs from the node's configuration.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub data_dir: PathBuf,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub range_timeout: Duration,
    pub truncate_timeout: Duration,
    pub schema_timeout: Duration,
    pub node: NodeInfo,
}

/// One shard's query processor.
pub struct QueryProcessor {
    proxy: StorageProxy,
    config: ProcessorConfig,
    /// Looked up on every EXECUTE: a fast hash (ids are server-made
    /// digests; a client can look up but not choose what is inserted).
    prepared: RefCell<rustc_hash::FxHashMap<Bytes, Rc<Prepared>>>,
    system_keyspaces: Vec<KeyspaceDef>,
}

/// The id every shard computes for `query` prepared in `keyspace`.
pub fn statement_id(keyspace: Option<&str>, query: &str) -> Bytes {
    let mut input = Vec::with_capacity(query.len() + 32);
    input.extend_from_slice(keyspace.unwrap_or("").as_bytes());
    input.push(0);
    input.extend_from_slice(query.as_bytes());
    Bytes::copy_from_slice(&xxhash_rust::xxh3::xxh3_128(&input).to_be_bytes())
}

impl QueryProcessor {
    /// A processor for this shard.
    pub fn new(proxy: StorageProxy, config: ProcessorConfig) -> Self {
        QueryProcessor {
            proxy,
            config,
            prepared: RefCell::new(rustc_hash::FxHashMap::default()),
            system_keyspaces: system::system_keyspaces(),
        }
    }

    /// The storage proxy.
    pub fn proxy(&self) -> &StorageProxy {
        &self.proxy
    }

    /// The node facts.
    pub fn node(&self) -> &NodeInfo {
        &self.config.node
    }

    /// Finds a table, user or system.
    pub fn lookup_table(
        &self,
        schema: &Schema,
        keyspace: &str,
        name: &str,
    ) -> Result<Arc<TableDef>, CqlError> {
        if system::is_system_keyspace(keyspace) {
            let ks = self
                .system_keyspaces
                .iter()
                .find(|k| k.name == keyspace)
                .ok_or_else(|| invalid(format!("Keyspace {keyspace} does not exist")))?;
            return ks
                .tables
                .get(name)
                .cloned()
                .ok_or_else(|| invalid(format!("unconfigured table {name}")));
        }
        let ks = schema
            .keyspace(keyspace)
            .ok_or_else(|| invalid(format!("Keyspace {keyspace} does not exist")))?;
        ks.tables
            .get(name)
            .cloned()
            .ok_or_else(|| invalid(format!("unconfigured table {name}")))
    }

    /// The schema with the system keyspaces added, as system_schema shows it.
    pub fn full_schema(&self) -> Schema {
        let mut schema = (*local::schema()).clone();
        for ks in &self.system_keyspaces {
            schema.keyspaces.insert(ks.name.clone(), ks.clone());
        }
        schema
    }

    /// Returns the cached prepared statement for `query`, preparing it on a miss.
    pub fn prepare(&self, query: &str, keyspace: Option<&str>) -> Result<Rc<Prepared>, CqlError> {
        let id = statement_id(keyspace, query);
        let version = local::schema().version;
        if let Some(found) = self.prepared.borrow().get(&id) {
            if found.schema_version == version {
                return Ok(found.clone());
            }
        }
        let prepared = Rc::new(self.prepare_uncached(id.clone(), query, keyspace)?);
        let mut cache = self.prepared.borrow_mut();
        if cache.len() >= PREPARED_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(id, prepared.clone());
        Ok(prepared)
    }

    /// Looks up a prepared statement by id (re-preparing it if the schema changed).
    pub fn prepared(&self, id: &Bytes) -> Result<Rc<Prepared>, CqlError> {
        let found = self
            .prepared
            .borrow()
            .get(id)
            .cloned()
            .ok_or_else(|| CqlError::Unprepared(id.clone()))?;
        if found.schema_version == local::schema().version {
            return Ok(found);
        }
        self.prepare(&found.query, found.keyspace.as_deref())
    }

    fn prepare_uncached(
        &self,
        id: Bytes,
        query: &str,
        keyspace: Option<&str>,
    ) -> Result<Prepared, CqlError> {
        if let Some(describe) = crate::describe::parse(query) {
            return Ok(Prepared {
                id,
                query: query.to_string(),
                keyspace: keyspace.map(str::to_string),
                plan: Plan::Describe(describe?),
                bind_specs: Vec::new(),
                bind_names: Vec::new(),
                pk_indexes: Vec::new(),
                result_columns: Vec::new(),
                timeout: None,
                schema_version: local::schema().version,
            });
        }
        let ParsedStatement {
            statement,
            bind_count,
            bind_names,
        } = parse_statement(query)?;
        let timeout = statement_timeout_term(&statement);
        let schema = local::schema();
        let mut binds = BindSpecs::new(bind_count);
        let mut result_columns = Vec::new();
        let mut pk_table: Option<Arc<TableDef>> = None;
        let plan = match statement {
            Statement::Select(s) => {
                let ks = ddl::keyspace_of(&s.table, keyspace)?;
                let table = self.lookup_table(&schema, &ks, &s.table.name)?;
                let plan = select::prepare_select(&s, table.clone(), &mut binds)?;
                result_columns = plan.result_columns().to_vec();
                pk_table = Some(table);
                Plan::Select {
                    plan: Box::new(plan),
                    is_virtual: system::is_system_keyspace(&ks),
                }
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let child = match statement {
                    Statement::Insert(s) => BatchChild::Insert(s),
                    Statement::Update(s) => BatchChild::Update(s),
                    Statement::Delete(s) => BatchChild::Delete(s),
                    _ => unreachable!("matched above"),
                };
                let (plan, spec) = self.prepare_child(&schema, &child, keyspace, &mut binds)?;
                pk_table = Some(plan.table.clone());
                if spec.is_conditional() {
                    result_columns = spec.result_columns();
                    Plan::Conditional(Box::new(lwt::CasStatement::new(spec, plan)))
                } else {
                    Plan::Modify(plan)
                }
            }
            Statement::Batch(b) => {
                let mut children = Vec::with_capacity(b.statements.len());
                for child in &b.statements {
                    children.push(self.prepare_child(&schema, child, keyspace, &mut binds)?);
                }
                if let Some(t) = &b.using.timestamp {
                    binds.collect(t, "[timestamp]", &CqlType::Bigint);
                }
                if children.iter().any(|(_, spec)| spec.is_conditional()) {
                    lwt::check_batch(&b.using)?;
                    let statements: Vec<lwt::CasStatement> = children
                        .into_iter()
                        .map(|(plan, spec)| lwt::CasStatement::new(spec, plan))
                        .collect();
                    result_columns = lwt::batch_result_columns(&statements);
                    Plan::ConditionalBatch(statements)
                } else {
                    Plan::Batch {
                        kind: b.kind,
                        using: b.using.clone(),
                        plans: children.into_iter().map(|(plan, _)| plan).collect(),
                    }
                }
            }
            Statement::Use(ks) => Plan::Use(ks),
            Statement::Truncate(name) => Plan::Truncate(self.user_table(&schema, &name, keyspace)?),
            Statement::Auth(a) => {
                return Err(invalid(format!(
                    "{} statements are not supported yet",
                    a.verb
                )))
            }
            other => Plan::Schema(Box::new(other)),
        };
        if !binds.complete() {
            return Err(invalid("Could not infer the type of every bind marker"));
        }
        let bind_specs = binds
            .specs
            .iter()
            .flatten()
            .map(|(name, ty)| match &pk_table {
                Some(t) => crate::metadata::column_spec(t, name, ty),
                None => ColumnSpec {
                    keyspace: keyspace.unwrap_or_default().to_string(),
                    table: String::new(),
                    name: name.clone(),
                    ty: column_type(ty),
                },
            })
            .collect();
        let pk_indexes = pk_table
            .as_ref()
            .map(|t| partition_key_indexes(t, &binds))
            .unwrap_or_default();
        Ok(Prepared {
            id,
            query: query.to_string(),
            keyspace: keyspace.map(str::to_string),
            plan,
            bind_specs,
            bind_names,
            pk_indexes,
            result_columns,
            timeout,
            schema_version: schema.version,
        })
    }

    fn user_table(
        &self,
        schema: &Schema,
        name: &ast::QualifiedName,
        keyspace: Option<&str>,
    ) -> Result<Arc<TableDef>, CqlError> {
        let ks = ddl::keyspace_of(name, keyspace)?;
        if system::is_system_keyspace(&ks) {
            return Err(CqlError::Unauthorized(format!(
                "{ks} keyspace is not user-modifiable."
            )));
        }
        self.lookup_table(schema, &ks, &name.name)
    }

    /// Prepares an INSERT, UPDATE or DELETE with its IF clause. The
    /// conditions are checked first: their errors are the ones Cassandra
    /// reports for a conditional statement.
    fn prepare_child(
        &self,
        schema: &Schema,
        child: &BatchChild,
        keyspace: Option<&str>,
        binds: &mut BindSpecs,
    ) -> Result<(ModifyPlan, lwt::CasSpec), CqlError> {
        match child {
            BatchChild::Insert(s) => {
                let table = self.user_table(schema, &s.table, keyspace)?;
                let spec = lwt::insert_spec(s, table.clone())?;
                Ok((modify::prepare_insert(s, table, binds)?, spec))
            }
            BatchChild::Update(s) => {
                let table = self.user_table(schema, &s.table, keyspace)?;
                let spec = lwt::update_spec(s, table.clone(), binds)?;
                Ok((modify::prepare_update(s, table, binds)?, spec))
            }
            BatchChild::Delete(s) => {
                let table = self.user_table(schema, &s.table, keyspace)?;
                let spec = lwt::delete_spec(s, table.clone(), binds)?;
                Ok((modify::prepare_delete(s, table, binds)?, spec))
            }
        }
    }

    /// Orders named values by the statement's markers.
    pub fn positional_values(
        &self,
        prepared: &Prepared,
        values: Values,
    ) -> Result<Vec<Value>, CqlError> {
        match values {
            Values::Positional(v) => Ok(v),
            Values::Named(named) => prepared
                .bind_specs
                .iter()
                .zip(&prepared.bind_names)
                .map(|(spec, marker)| {
                    let wanted = marker.as_deref().unwrap_or(&spec.name);
                    named
                        .iter()
                        .find(|(n, _)| n == wanted)
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| invalid(format!("No value for bind marker {wanted}")))
                })
                .collect(),
        }
    }

    /// Executes a prepared statement with bound values.
    pub async fn execute(
        &self,
        prepared: &Prepared,
        values: &[Value],
        options: &ExecOptions,
        session_keyspace: Option<&str>,
    ) -> Result<Outcome, CqlError> {
        if values.len() != prepared.bind_specs.len() {
            return Err(invalid(format!(
                "There were {} markers(?) in CQL but {} bound variables",
                prepared.bind_specs.len(),
                values.len()
            )));
        }
        let ctx = EvalContext {
            values,
            now_micros: scheduler::clock::now_micros(),
        };
        let own_timeout = statement_timeout(prepared.timeout.as_ref(), &ctx)?;
        let read_limit = own_timeout.unwrap_or(self.config.read_timeout);
        let write_limit = own_timeout.unwrap_or(self.config.write_timeout);
        match &prepared.plan {
            Plan::Select { plan, is_virtual } => {
                let rows = with_deadline(
                    read_limit,
                    false,
                    self.run_select(plan, *is_virtual, &ctx, options),
                )
                .await?;
                let mut rows = rows;
                rows.metadata.no_metadata = options.skip_metadata;
                Ok(Outcome::result(ResultResponse::Rows(rows)))
            }
            Plan::Modify(plan) => {
                let params =
                    modify::write_params(plan.using(), &plan.table, &ctx, options.timestamp)?;
                let mutations = modify::build_mutations(plan, &ctx, params, &self.proxy).await?;
                with_deadline(write_limit, true, async {
                    Ok(self.proxy.mutate(mutations).await?)
                })
                .await?;
                Ok(Outcome::result(ResultResponse::Void))
            }
            Plan::Conditional(statement) => {
                let rows = Box::pin(with_deadline(
                    write_limit,
                    true,
                    lwt::execute(&[(statement, ctx)], &self.proxy),
                ))
                .await?;
                Ok(Outcome::result(ResultResponse::Rows(rows)))
            }
            Plan::ConditionalBatch(statements) => {
                let items: Vec<_> = statements.iter().map(|s| (s, ctx)).collect();
                let rows = Box::pin(with_deadline(
                    write_limit,
                    true,
                    lwt::execute(&items, &self.proxy),
                ))
                .await?;
                Ok(Outcome::result(ResultResponse::Rows(rows)))
            }
            Plan::Batch { using, plans, .. } => {
                Box::pin(self.execute_batch_plan(using, plans, &ctx, options, write_limit)).await
            }
            Plan::Use(ks) => {
                if !system::is_system_keyspace(ks) && local::schema().keyspace(ks).is_none() {
                    return Err(invalid(format!("Keyspace '{ks}' does not exist")));
                }
                Ok(Outcome::result(ResultResponse::SetKeyspace(ks.clone())))
            }
            Plan::Truncate(table) => {
                Box::pin(with_deadline(self.config.truncate_timeout, true, async {
                    Ok(self.proxy.truncate(table.id).await?)
                }))
                .await?;
                Ok(Outcome::result(ResultResponse::Void))
            }
            Plan::Schema(statement) => {
                Box::pin(with_deadline(
                    self.config.schema_timeout,
                    true,
                    self.execute_schema(statement, session_keyspace),
                ))
                .await
            }
            Plan::Describe(describe) => {
                let rows = crate::describe::execute(
                    describe,
                    &self.full_schema(),
                    session_keyspace,
                    &self.config.node,
                )?;
                Ok(Outcome::result(ResultResponse::Rows(rows)))
            }
        }
    }

    /// Executes a prepared BATCH statement.
    async fn execute_batch_plan(
        &self,
        using: &ast::Using,
        plans: &[ModifyPlan],
        ctx: &EvalContext<'_>,
        options: &ExecOptions,
        write_limit: Duration,
    ) -> Result<Outcome, CqlError> {
        let batch_timestamp = Some(options.timestamp.unwrap_or(ctx.now_micros));
        let mut all = Vec::new();
        for plan in plans {
            let mut effective = plan_using(plan);
            if effective.timestamp.is_none() {
                effective.timestamp = using.timestamp.clone();
            }
            let params = modify::write_params(&effective, &plan.table, ctx, batch_timestamp)?;
            all.extend(modify::build_mutations(plan, ctx, params, &self.proxy).await?);
        }
        let warnings = batch_warnings(&all)?;
        with_deadline(write_limit, true, async {
            Ok(self.proxy.mutate(all).await?)
        })
        .await?;
        Ok(Outcome {
            warnings,
            ..Outcome::result(ResultResponse::Void)
        })
    }

    /// Executes a protocol BATCH: every statement's mutations are built
    /// with one default timestamp and applied together.
    pub async fn execute_batch(
        &self,
        items: &[(Rc<Prepared>, Vec<Value>)],
        client_timestamp: Option<i64>,
    ) -> Result<Outcome, CqlError> {
        let now_micros = scheduler::clock::now_micros();
        if items
            .iter()
            .any(|(p, _)| matches!(p.plan, Plan::Conditional(_)))
        {
            return self.execute_conditional_batch(items, now_micros).await;
        }
        let timestamp = Some(client_timestamp.unwrap_or(now_micros));
        let mut all = Vec::new();
        for (prepared, values) in items {
            let Plan::Modify(plan) = &prepared.plan else {
                return Err(invalid(
                    "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
                ));
            };
            if values.len() != prepared.bind_specs.len() {
                return Err(invalid(format!(
                    "There were {} markers(?) in CQL but {} bound variables",
                    prepared.bind_specs.len(),
                    values.len()
                )));
            }
            let ctx = EvalContext { values, now_micros };
            let params = modify::write_params(plan.using(), &plan.table, &ctx, timestamp)?;
            all.extend(modify::build_mutations(plan, &ctx, params, &self.proxy).await?);
        }
        let warnings = batch_warnings(&all)?;
        with_deadline(self.config.write_timeout, true, async {
            Ok(self.proxy.mutate(all).await?)
        })
        .await?;
        Ok(Outcome {
            warnings,
            ..Outcome::result(ResultResponse::Void)
        })
    }

    /// A protocol BATCH holding a conditional statement: every statement
    /// joins one compare-and-set (the client's timestamp is not used; the
    /// write takes the compare-and-set's own).
    async fn execute_conditional_batch(
        &self,
        items: &[(Rc<Prepared>, Vec<Value>)],
        now_micros: i64,
    ) -> Result<Outcome, CqlError> {
        let mut owned = Vec::with_capacity(items.len());
        for (prepared, values) in items {
            if values.len() != prepared.bind_specs.len() {
                return Err(invalid(format!(
                    "There were {} markers(?) in CQL but {} bound variables",
                    prepared.bind_specs.len(),
                    values.len()
                )));
            }
            let statement = match &prepared.plan {
                Plan::Conditional(c) => (**c).clone(),
                Plan::Modify(plan) => lwt::CasStatement::unconditional(plan.clone()),
                _ => {
                    return Err(invalid(
                        "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
                    ))
                }
            };
            owned.push(statement);
        }
        let statements: Vec<_> = owned
            .iter()
            .zip(items)
            .map(|(s, (_, values))| (s, EvalContext { values, now_micros }))
            .collect();
        let rows = with_deadline(
            self.config.write_timeout,
            true,
            lwt::execute(&statements, &self.proxy),
        )
        .await?;
        Ok(Outcome::result(ResultResponse::Rows(rows)))
    }

    async fn run_select(
        &self,
        plan: &SelectPlan,
        is_virtual: bool,
        ctx: &EvalContext<'_>,
        options: &ExecOptions,
    ) -> Result<crate::frame::Rows, CqlError> {
        let page = PageOptions {
            page_size: options
                .page_size
                .and_then(|p| usize::try_from(p).ok())
                .filter(|p| *p > 0),
            paging_state: options.paging_state.clone(),
        };
        let now_secs = i32::try_from(ctx.now_micros / 1_000_000).unwrap_or(i32::MAX);
        if is_virtual {
            let table_def = plan.table();
            let table = Table::new(table_def.id);
            let schema = self.full_schema();
            for mutation in
                system::virtual_rows(table_def, &schema, &self.config.node, ctx.now_micros)
            {
                table.apply(&mutation, None);
            }
            // Boxed: system tables are read rarely, and every read's future
            // would otherwise make room for this second select's state too.
            return Box::pin(select::execute_select(
                plan,
                DataSource::Local(&table),
                ctx,
                &page,
                now_secs,
            ))
            .await;
        }
        select::execute_select(plan, DataSource::Proxy(&self.proxy), ctx, &page, now_secs).await
    }

    async fn execute_schema(
        &self,
        statement: &Statement,
        session_keyspace: Option<&str>,
    ) -> Result<Outcome, CqlError> {
        let statement = statement.clone();
        let keyspace = session_keyspace.map(str::to_string);
        let data_dir = self.config.data_dir.clone();
        let node = &self.config.node;
        let mut datacenters: Vec<String> = std::iter::once(node.data_center.clone())
            .chain(node.peers.iter().map(|p| p.data_center.clone()))
            .collect();
        datacenters.sort();
        datacenters.dedup();
        let change = scheduler::smp::submit_to(0, move || async move {
            apply_schema_statement(statement, keyspace, data_dir, datacenters).await
        })
        .await
        .map_err(|e| CqlError::Server(e.to_string()))??;
        match change {
            Some(change) => Ok(Outcome {
                result: ResultResponse::SchemaChange(change.clone()),
                warnings: Vec::new(),
                schema_change: Some(change),
            }),
            None => Ok(Outcome::result(ResultResponse::Void)),
        }
    }
}

/// Runs on shard 0: applies a schema statement, persists and installs the
/// new schema on every shard.
async fn apply_schema_statement(
    statement: Statement,
    keyspace: Option<String>,
    data_dir: PathBuf,
    datacenters: Vec<String>,
) -> Result<Option<SchemaChange>, CqlError> {
    let current = local::schema();
    let outcome = ddl::apply_in_cluster(
        &current,
        &statement,
        keyspace.as_deref(),
        scheduler::clock::now_micros(),
        &datacenters,
    )?;
    if outcome.change.is_some() {
        migration::publish(data_dir, outcome.schema).await?;
    }
    Ok(outcome.change)
}

/// Batches larger than this get a warning, as Cassandra's
/// `batch_size_warn_threshold_in_kb` default.
const BATCH_SIZE_WARN_BYTES: usize = 5 * 1024;

/// Batches larger than this are refused, as Cassandra's
/// `batch_size_fail_threshold_in_kb` default.
const BATCH_SIZE_FAIL_BYTES: usize = 50 * 1024;

/// The client warnings a batch of `mutations` earns, or its refusal when
/// it is over the fail threshold.
fn batch_warnings(mutations: &[storage::model::Mutation]) -> Result<Vec<String>, CqlError> {
    let size: usize = mutations.iter().map(|m| m.size_bytes()).sum();
    if size > BATCH_SIZE_FAIL_BYTES {
        return Err(invalid(format!(
            "Batch too large: {size} bytes, over the {BATCH_SIZE_FAIL_BYTES}-byte limit"
        )));
    }
    if size <= BATCH_SIZE_WARN_BYTES {
        return Ok(Vec::new());
    }
    let kib = |bytes: usize| bytes as f64 / 1024.0;
    Ok(vec![format!(
        "Batch modifying {} partitions is of size {:.1}KiB, exceeding specified threshold of {:.1}KiB by {:.1}KiB.",
        mutations.len(),
        kib(size),
        kib(BATCH_SIZE_WARN_BYTES),
        kib(size - BATCH_SIZE_WARN_BYTES)
    )])
}

/// Runs `future` within `limit`; a request past it fails with a timeout.
///
/// A plain function over `or`, not an `async fn`: an async wrapper stores
/// the future it is handed in its own state and again in every async layer
/// it passes it to, and a request's future (boxed once per request by the
/// server) grew fourfold that way. The timer is created only if `future`
/// does not finish on its first poll.
pub(crate) fn with_deadline<T>(
    limit: Duration,
    write: bool,
    future: impl std::future::Future<Output = Result<T, CqlError>>,
) -> impl std::future::Future<Output = Result<T, CqlError>> {
    futures_lite::future::or(future, async move {
        scheduler::sleep(limit).await;
        Err(CqlError::Timeout { write })
    })
}

/// The `USING TIMEOUT` term of a statement, if it has one.
fn statement_timeout_term(statement: &Statement) -> Option<ast::Term> {
    match statement {
        Statement::Select(s) => s.timeout.clone(),
        Statement::Insert(s) => s.using.timeout.clone(),
        Statement::Update(s) => s.using.timeout.clone(),
        Statement::Delete(s) => s.using.timeout.clone(),
        Statement::Batch(b) => b.using.timeout.clone(),
        _ => None,
    }
}

/// Evaluates `USING TIMEOUT` to a duration.
fn statement_timeout(
    term: Option<&ast::Term>,
    ctx: &EvalContext<'_>,
) -> Result<Option<Duration>, CqlError> {
    let Some(term) = term else { return Ok(None) };
    let Evaluated::Value(bytes) = eval(term, &CqlType::Duration, ctx)? else {
        return Ok(None);
    };
    let duration = storage::types::Duration::decode(&bytes)?;
    if duration.months != 0 || duration.days != 0 || duration.nanos < 0 {
        return Err(invalid(
            "Timeout values must be positive and shorter than a day (months and days are not allowed)",
        ));
    }
    Ok(Some(Duration::from_nanos(duration.nanos.unsigned_abs())))
}

fn plan_using(plan: &ModifyPlan) -> ast::Using {
    plan.using().clone()
}

/// The bind marker index of each partition key column, when every
/// partition key column is bound by a marker.
fn partition_key_indexes(table: &TableDef, binds: &BindSpecs) -> Vec<u16> {
    let mut out = Vec::new();
    for col in table.partition_key() {
        let found = binds
            .receivers
            .iter()
            .zip(&binds.specs)
            .position(|(receiver, spec)| {
                receiver.as_deref() == Some(col.name.as_str())
                    && spec.as_ref().is_some_and(|(_, ty)| ty == &col.ty)
            });
        match found.and_then(|i| u16::try_from(i).ok()) {
            Some(i) => out.push(i),
            None => return Vec::new(),
        }
    }
    out
}
