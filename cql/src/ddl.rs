//! Schema statements: CREATE/ALTER/DROP KEYSPACE, TABLE and TYPE.
//!
//! Each statement is a pure function from the current schema to the next
//! one plus the SCHEMA_CHANGE it announces (`None` when IF [NOT] EXISTS made
//! it a no-op). Persisting and installing the result is
//! `cluster::migration`'s job; this module only decides what changes.
use std::collections::BTreeMap;
use std::sync::Arc;

use storage::schema::{
    ColumnDef, ColumnKind, DroppedColumn, KeyspaceDef, OptionMap, Schema, TableDef, TableOptions,
};
use storage::types::{CqlType, UdtType};
use uuid::Uuid;

use crate::error::{invalid, CqlError};
use crate::frame::{SchemaChange, SchemaChangeTarget, SchemaChangeType};
use crate::parser::ast::{self, Order, PropertyValue, Statement};

mod options;

/// The outcome of a schema statement.
pub struct SchemaOutcome {
    pub schema: Schema,
    pub change: Option<SchemaChange>,
}

/// Applies a schema statement to `schema`. `current_keyspace` is the
/// session's keyspace (USE); `now_micros` stamps dropped columns.
///
/// Replication maps are not checked against the cluster's datacenters; use
/// [`apply_in_cluster`] where the topology is known.
pub fn apply(
    schema: &Schema,
    statement: &Statement,
    current_keyspace: Option<&str>,
    now_micros: i64,
) -> Result<SchemaOutcome, CqlError> {
    apply_in_cluster(schema, statement, current_keyspace, now_micros, &[])
}

/// [`apply`], also refusing NetworkTopologyStrategy options that name a
/// datacenter outside `datacenters` (the datacenters of this node and its
/// peers). An empty `datacenters` skips that check.
pub fn apply_in_cluster(
    schema: &Schema,
    statement: &Statement,
    current_keyspace: Option<&str>,
    now_micros: i64,
    datacenters: &[String],
) -> Result<SchemaOutcome, CqlError> {
    let mut next = schema.clone();
    let change = match statement {
        Statement::CreateKeyspace(s) => create_keyspace(&mut next, s, datacenters)?,
        Statement::AlterKeyspace(s) => alter_keyspace(&mut next, s, datacenters)?,
        Statement::DropKeyspace(s) => drop_keyspace(&mut next, s)?,
        Statement::CreateTable(s) => create_table(&mut next, s, current_keyspace)?,
        Statement::AlterTable(s) => alter_table(&mut next, s, current_keyspace, now_micros)?,
        Statement::DropTable(s) => drop_table(&mut next, s, current_keyspace)?,
        Statement::CreateType(s) => create_type(&mut next, s, current_keyspace)?,
        Statement::AlterType(s) => alter_type(&mut next, s, current_keyspace)?,
        Statement::DropType(s) => drop_type(&mut next, s, current_keyspace)?,
        Statement::CreateIndex(_) | Statement::DropIndex(_) => {
            return Err(invalid("Secondary indexes are not supported yet"))
        }
        Statement::CreateMaterializedView(_) | Statement::DropMaterializedView(_) => {
            return Err(invalid("Materialized views are not supported yet"))
        }
        _ => return Err(invalid("not a schema statement")),
    };
    if change.is_some() {
        next.version = Uuid::new_v4();
    }
    Ok(SchemaOutcome {
        schema: next,
        change,
    })
}

fn change(kind: SchemaChangeType, target: SchemaChangeTarget) -> Option<SchemaChange> {
    Some(SchemaChange {
        change: kind,
        target,
    })
}

/// The keyspace a name refers to: explicit, or the session's.
pub fn keyspace_of(name: &ast::QualifiedName, current: Option<&str>) -> Result<String, CqlError> {
    name.keyspace
        .clone()
        .or_else(|| current.map(str::to_string))
        .ok_or_else(|| {
            invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
        })
}

fn user_keyspace<'s>(schema: &'s mut Schema, name: &str) -> Result<&'s mut KeyspaceDef, CqlError> {
    if crate::system::is_system_keyspace(name) {
        return Err(CqlError::Unauthorized(format!(
            "{name} keyspace is not user-modifiable."
        )));
    }
    schema
        .keyspaces
        .get_mut(name)
        .ok_or_else(|| invalid(format!("Keyspace '{name}' does not exist")))
}

fn property_text(value: &PropertyValue) -> String {
    match value {
        PropertyValue::Constant(c) => c.text.clone(),
        PropertyValue::Name(n) => n.clone(),
        PropertyValue::Map(_) => String::new(),
    }
}

fn property_map(value: &PropertyValue) -> Option<OptionMap> {
    match value {
        PropertyValue::Map(pairs) => Some(
            pairs
                .iter()
                .map(|(k, v)| (k.text.clone(), v.text.clone()))
                .collect(),
        ),
        _ => None,
    }
}

/// Checks and normalizes a replication map (full class names).
fn replication(map: OptionMap, datacenters: &[String]) -> Result<OptionMap, CqlError> {
    let class = map
        .get("class")
        .cloned()
        .ok_or_else(|| CqlError::Config("Missing replication strategy class".into()))?;
    let short = class.rsplit('.').next().unwrap_or(&class).to_string();
    let full = match short.as_str() {
        "SimpleStrategy" => "org.apache.cassandra.locator.SimpleStrategy",
        "NetworkTopologyStrategy" => "org.apache.cassandra.locator.NetworkTopologyStrategy",
        "LocalStrategy" => "org.apache.cassandra.locator.LocalStrategy",
        "EverywhereStrategy" => "org.apache.cassandra.locator.EverywhereStrategy",
        other => {
            return Err(CqlError::Config(format!(
                "Unable to find replication strategy class '{other}'"
            )))
        }
    };
    let mut out = OptionMap::new();
    out.insert("class".into(), full.into());
    for (k, v) in map {
        if k == "class" {
            continue;
        }
        if short == "SimpleStrategy" && k != "replication_factor" {
            return Err(CqlError::Config(format!(
                "Unrecognized strategy option {{{k}}} passed to SimpleStrategy"
            )));
        }
        let unknown_dc = !datacenters.is_empty() && !datacenters.contains(&k);
        if short == "NetworkTopologyStrategy" && k != "replication_factor" && unknown_dc {
            return Err(CqlError::Config(format!(
                "Unrecognized strategy option {{{k}}} passed to {full}"
            )));
        }
        if v.parse::<u32>().is_err() && !(k == "replication_factor" && v.contains('/')) {
            return Err(CqlError::Config(format!(
                "Replication factor must be numeric and non-negative, found '{v}'"
            )));
        }
        out.insert(k, v);
    }
    if short == "SimpleStrategy" && !out.contains_key("replication_factor") {
        return Err(CqlError::Config(
            "SimpleStrategy requires a replication_factor strategy option.".into(),
        ));
    }
    Ok(out)
}

fn keyspace_properties(
    properties: &ast::Properties,
    mut ks: KeyspaceDef,
    creating: bool,
    datacenters: &[String],
) -> Result<KeyspaceDef, CqlError> {
    let mut saw_replication = false;
    for (name, value) in properties {
        match name.as_str() {
            "replication" => {
                let map = property_map(value).ok_or_else(|| {
                    CqlError::Syntax(crate::parser::SyntaxError {
                        line: 1,
                        column: 0,
                        message: "replication must be a map".into(),
                    })
                })?;
                ks.replication = replication(map, datacenters)?;
                saw_replication = true;
            }
            "durable_writes" => {
                ks.durable_writes = match property_text(value).to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    other => return Err(invalid(format!("Invalid boolean value {other}"))),
                }
            }
            "tablets" => tablets(value)?,
            other => {
                return Err(CqlError::Syntax(crate::parser::SyntaxError {
                    line: 1,
                    column: 0,
                    message: format!("Unknown property '{other}'"),
                }))
            }
        }
    }
    if creating && !saw_replication {
        return Err(CqlError::Config(
            "Missing mandatory replication strategy class".into(),
        ));
    }
    Ok(ks)
}

/// Checks the `tablets` keyspace option. Every keyspace here is
/// distributed by vnode tokens, so a valid option is accepted and has no
/// further effect.
fn tablets(value: &PropertyValue) -> Result<(), CqlError> {
    let map =
        property_map(value).ok_or_else(|| CqlError::Config("tablets must be a map".into()))?;
    for (key, value) in &map {
        let ok = match key.as_str() {
            "enabled" => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
            "initial" => value.parse::<u32>().is_ok(),
            _ => {
                return Err(CqlError::Config(format!(
                    "Unrecognized tablets option {key}"
                )))
            }
        };
        if !ok {
            return Err(CqlError::Config(format!(
                "Invalid value '{value}' for tablets option {key}"
            )));
        }
    }
    Ok(())
}

fn create_keyspace(
    schema: &mut Schema,
    s: &ast::CreateKeyspace,
    datacenters: &[String],
) -> Result<Option<SchemaChange>, CqlError> {
    if crate::system::is_system_keyspace(&s.name) || schema.keyspaces.contains_key(&s.name) {
        if s.if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::AlreadyExists {
            keyspace: s.name.clone(),
            table: String::new(),
            message: format!("Keyspace '{}' already exists", s.name),
        });
    }
    if s.name.is_empty()
        || s.name.len() > 48
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(format!(
            "Keyspace name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"{}\")",
            s.name
        )));
    }
    let ks = keyspace_properties(
        &s.properties,
        KeyspaceDef::new(&s.name, OptionMap::new(), true),
        true,
        datacenters,
    )?;
    schema.keyspaces.insert(s.name.clone(), ks);
    Ok(change(
        SchemaChangeType::Created,
        SchemaChangeTarget::Keyspace(s.name.clone()),
    ))
}

fn alter_keyspace(
    schema: &mut Schema,
    s: &ast::AlterKeyspace,
    datacenters: &[String],
) -> Result<Option<SchemaChange>, CqlError> {
    let ks = user_keyspace(schema, &s.name)?;
    let updated = keyspace_properties(&s.properties, ks.clone(), false, datacenters)?;
    *ks = updated;
    Ok(change(
        SchemaChangeType::Updated,
        SchemaChangeTarget::Keyspace(s.name.clone()),
    ))
}

fn drop_keyspace(schema: &mut Schema, s: &ast::Drop) -> Result<Option<SchemaChange>, CqlError> {
    let name = &s.name.name;
    if !schema.keyspaces.contains_key(name) && !crate::system::is_system_keyspace(name) {
        if s.if_exists {
            return Ok(None);
        }
        return Err(CqlError::Config(format!(
            "Cannot drop non existing keyspace '{name}'."
        )));
    }
    user_keyspace(schema, name)?;
    schema.keyspaces.remove(name);
    Ok(change(
        SchemaChangeType::Dropped,
        SchemaChangeTarget::Keyspace(name.clone()),
    ))
}

/// Resolves a syntax type to a schema type; UDTs come from `keyspace`.
pub fn resolve_type(
    ty: &ast::CqlType,
    keyspace: &KeyspaceDef,
    frozen: bool,
) -> Result<CqlType, CqlError> {
    use ast::NativeType as N;
    Ok(match ty {
        ast::CqlType::Native(n) => match n {
            N::Ascii => CqlType::Ascii,
            N::Bigint => CqlType::Bigint,
            N::Blob => CqlType::Blob,
            N::Boolean => CqlType::Boolean,
            N::Counter => CqlType::Counter,
            N::Date => CqlType::Date,
            N::Decimal => CqlType::Decimal,
            N::Double => CqlType::Double,
            N::Duration => CqlType::Duration,
            N::Float => CqlType::Float,
            N::Inet => CqlType::Inet,
            N::Int => CqlType::Int,
            N::Smallint => CqlType::Smallint,
            N::Text => CqlType::Text,
            N::Time => CqlType::Time,
            N::Timestamp => CqlType::Timestamp,
            N::Timeuuid => CqlType::Timeuuid,
            N::Tinyint => CqlType::Tinyint,
            N::Uuid => CqlType::Uuid,
            N::Varint => CqlType::Varint,
        },
        ast::CqlType::List(e) => CqlType::list(resolve_type(e, keyspace, true)?, frozen),
        ast::CqlType::Set(e) => CqlType::set(resolve_type(e, keyspace, true)?, frozen),
        ast::CqlType::Map(k, v) => CqlType::map(
            resolve_type(k, keyspace, true)?,
            resolve_type(v, keyspace, true)?,
            frozen,
        ),
        ast::CqlType::Tuple(items) => CqlType::tuple(
            items
                .iter()
                .map(|t| resolve_type(t, keyspace, true))
                .collect::<Result<_, _>>()?,
        ),
        ast::CqlType::Frozen(inner) => resolve_type(inner, keyspace, true)?,
        ast::CqlType::UserDefined(name) => {
            if let Some(ks) = &name.keyspace {
                if ks != &keyspace.name {
                    return Err(invalid(format!(
                        "Statement on keyspace {} cannot refer to a user type in keyspace {ks}; user types can only be used in the keyspace they are defined in",
                        keyspace.name
                    )));
                }
            }
            let udt = keyspace
                .types
                .get(&name.name)
                .ok_or_else(|| invalid(format!("Unknown type {}.{}", keyspace.name, name.name)))?;
            let mut udt = udt.clone();
            udt.frozen = frozen;
            CqlType::Udt(udt)
        }
        ast::CqlType::Custom(class) => {
            return Err(invalid(format!(
                "Custom types are not supported: '{class}'"
            )))
        }
    })
}

fn is_frozen_syntax(ty: &ast::CqlType) -> bool {
    matches!(
        ty,
        ast::CqlType::Frozen(_) | ast::CqlType::Tuple(_) | ast::CqlType::Native(_)
    )
}

fn create_table(
    schema: &mut Schema,
    s: &ast::CreateTable,
    current: Option<&str>,
) -> Result<Option<SchemaChange>, CqlError> {
    let ks_name = keyspace_of(&s.name, current)?;
    let ks = user_keyspace(schema, &ks_name)?;
    if ks.tables.contains_key(&s.name.name) {
        if s.if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::AlreadyExists {
            keyspace: ks_name.clone(),
            table: s.name.name.clone(),
            message: format!(
                "Cannot add already existing table \"{}\" to keyspace \"{ks_name}\"",
                s.name.name
            ),
        });
    }
    check_table_name(&s.name.name)?;
    let key = s.key().map_err(invalid)?;
    let mut columns = Vec::new();
    let mut next_id = 0u32;
    for def in &s.columns {
        if columns.iter().any(|c: &ColumnDef| c.name == def.name) {
            return Err(invalid(format!(
                "Multiple definition of identifier {}",
                def.name
            )));
        }
        let frozen = is_frozen_syntax(&def.ty);
        let ty = resolve_type(&def.ty, ks, frozen)?;
        let (kind, position) =
            if let Some(p) = key.partition_key.iter().position(|n| n == &def.name) {
                (ColumnKind::PartitionKey, p)
            } else if let Some(p) = key.clustering_columns.iter().position(|n| n == &def.name) {
                (ColumnKind::Clustering, p)
            } else if def.is_static {
                (ColumnKind::Static, 0)
            } else {
                (ColumnKind::Regular, 0)
            };
        if kind != ColumnKind::Regular && kind != ColumnKind::Static && ty.is_multi_cell() {
            return Err(invalid(format!(
                "Invalid non-frozen collection type for PRIMARY KEY component {}",
                def.name
            )));
        }
        if def.is_static && matches!(kind, ColumnKind::PartitionKey | ColumnKind::Clustering) {
            return Err(invalid(format!(
                "Static column {} cannot be part of the PRIMARY KEY",
                def.name
            )));
        }
        columns.push(ColumnDef {
            name: def.name.clone(),
            id: next_id,
            ty,
            kind,
            position: u32::try_from(position).unwrap_or(0),
            descending: false,
        });
        next_id += 1;
    }
    for name in key.partition_key.iter().chain(&key.clustering_columns) {
        if !columns.iter().any(|c| &c.name == name) {
            return Err(invalid(format!(
                "Unknown definition {name} referenced in PRIMARY KEY"
            )));
        }
    }
    if key.clustering_columns.is_empty() && columns.iter().any(|c| c.kind == ColumnKind::Static) {
        return Err(invalid("Static columns are only useful (and thus allowed) if the table has at least one clustering column"));
    }
    apply_clustering_order(
        &mut columns,
        &s.options.clustering_order,
        &key.clustering_columns,
    )?;
    let mut table = TableDef {
        keyspace: ks_name.clone(),
        name: s.name.name.clone(),
        id: Uuid::new_v4(),
        columns,
        options: TableOptions::default(),
        next_column_id: next_id,
        dropped_columns: vec![],
        compact_storage: s.options.compact_storage,
    };
    apply_table_options(&mut table.options, &s.options.properties)?;
    table.sort_columns();
    ks.tables.insert(table.name.clone(), Arc::new(table));
    Ok(change(
        SchemaChangeType::Created,
        SchemaChangeTarget::Table(ks_name, s.name.name.clone()),
    ))
}

/// Table names become directory names and must be the same on every
/// platform: ASCII letters, digits and underscores, at most 48 of them.
fn check_table_name(name: &str) -> Result<(), CqlError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid(format!(
            "\"{name}\" is not a valid table name (must contain alphanumeric character only: [0-9A-Za-z] or the underscore)"
        )));
    }
    if name.len() > 48 {
        return Err(invalid(format!(
            "Table names shouldn't be more than 48 characters long (got \"{name}\")"
        )));
    }
    Ok(())
}

fn apply_clustering_order(
    columns: &mut [ColumnDef],
    order: &[(String, Order)],
    clustering: &[String],
) -> Result<(), CqlError> {
    if order.is_empty() {
        return Ok(());
    }
    for (i, (name, direction)) in order.iter().enumerate() {
        if clustering.get(i) != Some(name) {
            return Err(invalid(
                "Only clustering key columns can be defined in CLUSTERING ORDER directive, in the order they are declared",
            ));
        }
        if let Some(col) = columns.iter_mut().find(|c| &c.name == name) {
            col.descending = matches!(direction, Order::Desc);
        }
    }
    Ok(())
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &PropertyValue) -> Result<T, CqlError> {
    property_text(value).parse().map_err(|_| {
        CqlError::Config(format!(
            "Invalid value for {name}: {}",
            property_text(value)
        ))
    })
}

/// Applies WITH options to table options.
fn apply_table_options(
    options: &mut TableOptions,
    properties: &ast::Properties,
) -> Result<(), CqlError> {
    for (name, value) in properties {
        match name.as_str() {
            "bloom_filter_fp_chance" => {
                options.bloom_filter_fp_chance =
                    self::options::bloom_filter_fp_chance(&property_text(value))?
            }
            "comment" => options.comment = property_text(value),
            "crc_check_chance" => options.crc_check_chance = parse_number(name, value)?,
            "default_time_to_live" => {
                let ttl: i32 = parse_number(name, value)?;
                if !(0..=crate::modify::MAX_TTL_SECS as i32).contains(&ttl) {
                    return Err(CqlError::Config(format!(
                        "default_time_to_live must be between 0 and {}",
                        crate::modify::MAX_TTL_SECS
                    )));
                }
                options.default_time_to_live = ttl;
            }
            "gc_grace_seconds" => options.gc_grace_seconds = parse_number(name, value)?,
            "max_index_interval" => options.max_index_interval = parse_number(name, value)?,
            "min_index_interval" => options.min_index_interval = parse_number(name, value)?,
            "memtable_flush_period_in_ms" => {
                options.memtable_flush_period_in_ms = parse_number(name, value)?
            }
            "speculative_retry" => options.speculative_retry = property_text(value),
            "caching" | "compaction" | "compression" | "cdc" => {
                let map = property_map(value)
                    .ok_or_else(|| CqlError::Config(format!("{name} must be a map")))?;
                match name.as_str() {
                    "caching" => options.caching = map,
                    "compaction" => options.compaction = self::options::compaction(map)?,
                    "compression" => options.compression = self::options::compression(map)?,
                    _ => options.cdc = Some(map),
                }
            }
            "read_repair_chance"
            | "dclocal_read_repair_chance"
            | "read_repair"
            | "additional_write_policy"
            | "extensions"
            | "paxos_grace_seconds"
            | "tombstone_gc"
            | "synchronous_updates" => {}
            other => {
                return Err(CqlError::Syntax(crate::parser::SyntaxError {
                    line: 1,
                    column: 0,
                    message: format!("Unknown property '{other}'"),
                }))
            }
        }
    }
    Ok(())
}

fn find_table<'s>(
    schema: &'s mut Schema,
    name: &ast::QualifiedName,
    current: Option<&str>,
) -> Result<(String, &'s mut KeyspaceDef), CqlError> {
    let ks_name = keyspace_of(name, current)?;
    let ks = user_keyspace(schema, &ks_name)?;
    if !ks.tables.contains_key(&name.name) {
        return Err(invalid(format!(
            "Table '{ks_name}.{}' doesn't exist",
            name.name
        )));
    }
    Ok((ks_name, ks))
}

fn alter_table(
    schema: &mut Schema,
    s: &ast::AlterTable,
    current: Option<&str>,
    now_micros: i64,
) -> Result<Option<SchemaChange>, CqlError> {
    let (ks_name, ks) = match find_table(schema, &s.name, current) {
        Ok(found) => found,
        Err(CqlError::Invalid(m)) => return Err(invalid(m)),
        Err(e) => return Err(e),
    };
    let ks_snapshot = ks.clone();
    let table = Arc::make_mut(ks.tables.get_mut(&s.name.name).expect("checked above"));
    match &s.operation {
        ast::AlterTableOperation::Add(defs) => {
            for def in defs {
                if table.column(&def.name).is_some() {
                    return Err(invalid(format!(
                        "Invalid column name {} because it conflicts with an existing column",
                        def.name
                    )));
                }
                if def.is_static && table.clustering_key_len() == 0 {
                    return Err(invalid("Static columns are only useful (and thus allowed) if the table has at least one clustering column"));
                }
                let ty = resolve_type(&def.ty, &ks_snapshot, is_frozen_syntax(&def.ty))?;
                table.columns.push(ColumnDef {
                    name: def.name.clone(),
                    id: table.next_column_id,
                    ty,
                    kind: if def.is_static {
                        ColumnKind::Static
                    } else {
                        ColumnKind::Regular
                    },
                    position: 0,
                    descending: false,
                });
                table.next_column_id += 1;
            }
        }
        ast::AlterTableOperation::Drop { columns, .. } => {
            for name in columns {
                let col = table.column(name).cloned().ok_or_else(|| {
                    invalid(format!(
                        "Column {name} was not found in table {}",
                        table.name
                    ))
                })?;
                if col.is_primary_key() {
                    return Err(invalid(format!("Cannot drop PRIMARY KEY part {name}")));
                }
                table.columns.retain(|c| c.name != *name);
                table.dropped_columns.push(DroppedColumn {
                    name: name.clone(),
                    ty: col.ty.clone(),
                    dropped_at_micros: now_micros,
                });
            }
        }
        ast::AlterTableOperation::Rename(pairs) => {
            for (from, to) in pairs {
                if table.column(to).is_some() {
                    return Err(invalid(format!("Cannot rename column {from} to {to} in keyspace {ks_name}; another column of that name already exist")));
                }
                let col = table
                    .columns
                    .iter_mut()
                    .find(|c| &c.name == from)
                    .ok_or_else(|| {
                        invalid(format!(
                            "Cannot rename unknown column {from} in keyspace {ks_name}"
                        ))
                    })?;
                if !col.is_primary_key() {
                    return Err(invalid(format!(
                        "Cannot rename non PRIMARY KEY part {from}"
                    )));
                }
                col.name = to.clone();
            }
        }
        ast::AlterTableOperation::AlterColumnType { .. } => {
            return Err(invalid("Altering of types is not allowed"))
        }
        ast::AlterTableOperation::With(options) => {
            if !options.clustering_order.is_empty() {
                return Err(invalid(
                    "Cannot change CLUSTERING ORDER of an existing table",
                ));
            }
            apply_table_options(&mut table.options, &options.properties)?;
        }
    }
    table.sort_columns();
    Ok(change(
        SchemaChangeType::Updated,
        SchemaChangeTarget::Table(ks_name, s.name.name.clone()),
    ))
}

fn drop_table(
    schema: &mut Schema,
    s: &ast::Drop,
    current: Option<&str>,
) -> Result<Option<SchemaChange>, CqlError> {
    let ks_name = keyspace_of(&s.name, current)?;
    let exists = schema.table(&ks_name, &s.name.name).is_some();
    if !exists {
        if s.if_exists {
            return Ok(None);
        }
        return Err(invalid(format!(
            "Table '{ks_name}.{}' doesn't exist",
            s.name.name
        )));
    }
    user_keyspace(schema, &ks_name)?.tables.remove(&s.name.name);
    Ok(change(
        SchemaChangeType::Dropped,
        SchemaChangeTarget::Table(ks_name, s.name.name.clone()),
    ))
}

fn create_type(
    schema: &mut Schema,
    s: &ast::CreateType,
    current: Option<&str>,
) -> Result<Option<SchemaChange>, CqlError> {
    let ks_name = keyspace_of(&s.name, current)?;
    let ks = user_keyspace(schema, &ks_name)?;
    if ks.types.contains_key(&s.name.name) {
        if s.if_not_exists {
            return Ok(None);
        }
        return Err(CqlError::AlreadyExists {
            keyspace: ks_name.clone(),
            table: s.name.name.clone(),
            message: format!(
                "A user type of name {ks_name}.{} already exists",
                s.name.name
            ),
        });
    }
    let mut fields: Vec<(String, CqlType)> = Vec::new();
    for (name, ty) in &s.fields {
        if fields.iter().any(|(f, _)| f == name) {
            return Err(invalid(format!(
                "Duplicate field name {name} in type {}",
                s.name.name
            )));
        }
        if matches!(ty, ast::CqlType::UserDefined(n) if n.name == s.name.name) {
            return Err(invalid(format!(
                "Cannot create a user type {} that references itself",
                s.name.name
            )));
        }
        fields.push((name.clone(), resolve_type(ty, ks, true)?));
    }
    let udt = UdtType {
        keyspace: ks_name.clone(),
        name: s.name.name.clone(),
        fields,
        frozen: true,
    };
    ks.types.insert(udt.name.clone(), udt);
    Ok(change(
        SchemaChangeType::Created,
        SchemaChangeTarget::Type(ks_name, s.name.name.clone()),
    ))
}

fn alter_type(
    schema: &mut Schema,
    s: &ast::AlterType,
    current: Option<&str>,
) -> Result<Option<SchemaChange>, CqlError> {
    let ks_name = keyspace_of(&s.name, current)?;
    let ks = user_keyspace(schema, &ks_name)?;
    let snapshot = ks.clone();
    let udt = ks
        .types
        .get_mut(&s.name.name)
        .ok_or_else(|| invalid(format!("No user type named {} exists.", s.name.name)))?;
    match &s.operation {
        ast::AlterTypeOperation::Add { field, ty } => {
            if udt.fields.iter().any(|(f, _)| f == field) {
                return Err(invalid(format!("Cannot add new field {field} to type {}: a field of the same name already exists", udt.name)));
            }
            udt.fields
                .push((field.clone(), resolve_type(ty, &snapshot, true)?));
        }
        ast::AlterTypeOperation::Rename(pairs) => {
            for (from, to) in pairs {
                let field = udt
                    .fields
                    .iter_mut()
                    .find(|(f, _)| f == from)
                    .ok_or_else(|| {
                        invalid(format!("Unknown field {from} in type {}", s.name.name))
                    })?;
                field.0 = to.clone();
            }
        }
        ast::AlterTypeOperation::AlterFieldType { .. } => {
            return Err(invalid("Altering of types is not allowed"))
        }
    }
    let updated = udt.clone();
    refresh_udt_uses(ks, &updated);
    Ok(change(
        SchemaChangeType::Updated,
        SchemaChangeTarget::Type(ks_name, s.name.name.clone()),
    ))
}

/// Rewrites every column type that embeds the altered UDT.
fn refresh_udt_uses(ks: &mut KeyspaceDef, updated: &UdtType) {
    fn rewrite(ty: &mut CqlType, updated: &UdtType) {
        match ty {
            CqlType::Udt(u) if u.name == updated.name => {
                let frozen = u.frozen;
                *u = updated.clone();
                u.frozen = frozen;
            }
            CqlType::Udt(u) => u.fields.iter_mut().for_each(|(_, t)| rewrite(t, updated)),
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => rewrite(elem, updated),
            CqlType::Map { key, value, .. } => {
                rewrite(key, updated);
                rewrite(value, updated);
            }
            CqlType::Tuple(items) => items.iter_mut().for_each(|t| rewrite(t, updated)),
            _ => {}
        }
    }
    let types: BTreeMap<String, UdtType> = ks.types.clone();
    for (name, mut udt) in types {
        udt.fields.iter_mut().for_each(|(_, t)| rewrite(t, updated));
        ks.types.insert(name, udt);
    }
    for table in ks.tables.values_mut() {
        let table = Arc::make_mut(table);
        table
            .columns
            .iter_mut()
            .for_each(|c| rewrite(&mut c.ty, updated));
    }
}

fn drop_type(
    schema: &mut Schema,
    s: &ast::Drop,
    current: Option<&str>,
) -> Result<Option<SchemaChange>, CqlError> {
    let ks_name = keyspace_of(&s.name, current)?;
    let ks = user_keyspace(schema, &ks_name)?;
    if !ks.types.contains_key(&s.name.name) {
        if s.if_exists {
            return Ok(None);
        }
        return Err(invalid(format!(
            "No user type named {} exists.",
            s.name.name
        )));
    }
    fn uses(ty: &CqlType, name: &str) -> bool {
        match ty {
            CqlType::Udt(u) => u.name == name || u.fields.iter().any(|(_, t)| uses(t, name)),
            CqlType::List { elem, .. } | CqlType::Set { elem, .. } => uses(elem, name),
            CqlType::Map { key, value, .. } => uses(key, name) || uses(value, name),
            CqlType::Tuple(items) => items.iter().any(|t| uses(t, name)),
            _ => false,
        }
    }
    if let Some(table) = ks
        .tables
        .values()
        .find(|t| t.columns.iter().any(|c| uses(&c.ty, &s.name.name)))
    {
        return Err(invalid(format!(
            "Cannot drop user type {ks_name}.{} as it is still used by table {}",
            s.name.name, table.name
        )));
    }
    ks.types.remove(&s.name.name);
    Ok(change(
        SchemaChangeType::Dropped,
        SchemaChangeTarget::Type(ks_name, s.name.name.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_statement;

    fn run(schema: &Schema, text: &str, dcs: &[String]) -> Result<Schema, CqlError> {
        let parsed = parse_statement(text).expect("parses");
        apply_in_cluster(schema, &parsed.statement, Some("ks"), 0, dcs).map(|o| o.schema)
    }

    fn with_keyspace() -> Schema {
        let create =
            "CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}";
        run(&Schema::default(), create, &[]).expect("keyspace")
    }

    #[test]
    fn network_topology_options_must_name_known_datacenters() {
        let dcs = ["dc1".to_string()];
        let create = |dc: &str| {
            format!("CREATE KEYSPACE k2 WITH replication = {{'class': 'NetworkTopologyStrategy', '{dc}': 1}}")
        };
        assert!(run(&Schema::default(), &create("dc1"), &dcs).is_ok());
        let err = run(&Schema::default(), &create("nonexistentdc"), &dcs);
        assert!(matches!(err, Err(CqlError::Config(m)) if m.contains("nonexistentdc")));
        let rf = "CREATE KEYSPACE k2 WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1}";
        assert!(run(&Schema::default(), rf, &dcs).is_ok());
        let alter =
            "ALTER KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'nope': 1}";
        assert!(matches!(
            run(&with_keyspace(), alter, &dcs),
            Err(CqlError::Config(_))
        ));
    }

    #[test]
    fn tablets_option_is_validated_and_accepted() {
        let base =
            "CREATE KEYSPACE k2 WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}";
        for ok in [
            "{'enabled': true}",
            "{'enabled': false}",
            "{'enabled': true, 'initial': 128}",
        ] {
            assert!(run(
                &Schema::default(),
                &format!("{base} AND tablets = {ok}"),
                &[]
            )
            .is_ok());
        }
        for bad in ["{'enabled': 'maybe'}", "{'initial': -1}", "{'colour': 1}"] {
            let result = run(
                &Schema::default(),
                &format!("{base} AND tablets = {bad}"),
                &[],
            );
            assert!(matches!(result, Err(CqlError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn table_names_must_be_ascii_word_characters() {
        let schema = with_keyspace();
        assert!(run(&schema, "CREATE TABLE ks.good_1 (p int PRIMARY KEY)", &[]).is_ok());
        for bad in [
            "\"Français\"",
            "\"a-b\"",
            &format!("\"{}\"", "x".repeat(49)),
        ] {
            let result = run(
                &schema,
                &format!("CREATE TABLE ks.{bad} (p int PRIMARY KEY)"),
                &[],
            );
            assert!(matches!(result, Err(CqlError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn table_options_are_validated() {
        let schema = with_keyspace();
        let create = |with: &str| format!("CREATE TABLE ks.t (p int PRIMARY KEY) WITH {with}");
        for bad in [
            "bloom_filter_fp_chance = 1.1",
            "bloom_filter_fp_chance = 0",
            "compression = {'sstable_compression': 'LZ4Compressor', 'chunk_length_in_kb': 100}",
            "compaction = {'class': 'SizeTieredCompactionStrategy', 'abc': 1}",
        ] {
            assert!(
                matches!(run(&schema, &create(bad), &[]), Err(CqlError::Config(_))),
                "{bad}"
            );
        }
        let good = "bloom_filter_fp_chance = 0.1 AND compression = {'sstable_compression': 'LZ4Compressor', 'chunk_length_in_kb': 64}";
        assert!(run(&schema, &create(good), &[]).is_ok());
    }
}
