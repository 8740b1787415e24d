//! CQL text that recreates a keyspace, a user type or a table: what DESCRIBE prints.
//!
//! The output parses back through CREATE KEYSPACE / CREATE TYPE / CREATE TABLE to the
//! same definition, options included, so it doubles as a schema dump.

use std::fmt::Write;

use storage::schema::{ColumnDef, ColumnKind, DroppedColumn, KeyspaceDef, OptionMap, TableDef};
use storage::types::UdtType;

use super::rows::table_flags;

/// An identifier as CQL text: bare when it is lower-case and not reserved, else quoted.
pub fn quote_ident(name: &str) -> String {
    // Quoted exactly when the parser would not read the name back bare.
    crate::parser::ast::Ident(name).to_string()
}

/// A string literal.
fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A `map<text, text>` literal, in key order.
fn map_literal(map: &OptionMap) -> String {
    let entries: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}: {}", quote_string(k), quote_string(v)))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// `CREATE KEYSPACE ks WITH replication = {...} AND durable_writes = true;`
pub fn create_keyspace_cql(ks: &KeyspaceDef) -> String {
    format!(
        "CREATE KEYSPACE {} WITH replication = {} AND durable_writes = {};",
        quote_ident(&ks.name),
        map_literal(&ks.replication),
        ks.durable_writes
    )
}

/// `CREATE TYPE ks.name (field type, ...);`, one field per line.
pub fn describe_type(udt: &UdtType) -> String {
    let fields: Vec<String> = udt
        .fields
        .iter()
        .map(|(name, ty)| format!("    {} {}", quote_ident(name), ty.cql_name()))
        .collect();
    format!(
        "CREATE TYPE {}.{} (\n{}\n);",
        quote_ident(&udt.keyspace),
        quote_ident(&udt.name),
        fields.join(",\n")
    )
}

/// Everything DESCRIBE KEYSPACE prints: the keyspace, then its types, then its tables,
/// separated by blank lines.
pub fn describe_keyspace(ks: &KeyspaceDef) -> String {
    let mut parts = vec![create_keyspace_cql(ks)];
    parts.extend(ks.types.values().map(describe_type));
    parts.extend(ks.tables.values().map(|t| describe_table(t)));
    parts.join("\n\n")
}

/// `CREATE TABLE ks.t (...) WITH ...;` with every option, one per line.
pub fn describe_table(table: &TableDef) -> String {
    let mut out = format!(
        "CREATE TABLE {}.{} (\n",
        quote_ident(&table.keyspace),
        quote_ident(&table.name)
    );
    let inline_key = table.partition_key_len() == 1 && table.clustering_key_len() == 0;
    for column in ordered_columns(table) {
        let _ = write!(
            out,
            "    {} {}",
            quote_ident(&column.name),
            column.ty.cql_name()
        );
        if column.kind == ColumnKind::Static {
            out.push_str(" static");
        }
        if inline_key && column.kind == ColumnKind::PartitionKey {
            out.push_str(" PRIMARY KEY");
        }
        out.push_str(",\n");
    }
    if inline_key {
        // The key was written inline; drop the trailing comma.
        out.truncate(out.len() - 2);
        out.push('\n');
    } else {
        let _ = writeln!(out, "    PRIMARY KEY ({})", primary_key_cql(table));
    }
    let clauses = with_clauses(table);
    let _ = write!(out, ") WITH {};", clauses.join("\n    AND "));
    out
}

/// DESCRIBE TABLE ... WITH INTERNALS: the CREATE TABLE with every dropped
/// column declared (with the type it had), then for each dropped column an
/// `ALTER TABLE ... DROP c USING TIMESTAMP t;`, followed by `ALTER TABLE ...
/// ADD c type;` when a column of that name was added again. Replaying the
/// text recreates the drop timestamps, so old cells of a dropped column stay
/// dead in a restored copy.
pub fn describe_table_with_internals(table: &TableDef) -> String {
    let mut latest: Vec<&DroppedColumn> = Vec::new();
    for dropped in &table.dropped_columns {
        match latest.iter_mut().find(|d| d.name == dropped.name) {
            Some(d) if d.dropped_at_micros <= dropped.dropped_at_micros => *d = dropped,
            Some(_) => {}
            None => latest.push(dropped),
        }
    }
    latest.sort_by_key(|d| d.dropped_at_micros);
    let mut shape = table.clone();
    for dropped in &latest {
        shape.columns.retain(|c| c.name != dropped.name);
        shape.columns.push(ColumnDef {
            name: dropped.name.clone(),
            id: u32::MAX,
            ty: dropped.ty.clone(),
            kind: ColumnKind::Regular,
            position: 0,
            descending: false,
        });
    }
    shape.sort_columns();
    let mut out = describe_table(&shape);
    let target = format!(
        "{}.{}",
        quote_ident(&table.keyspace),
        quote_ident(&table.name)
    );
    for dropped in &latest {
        let name = quote_ident(&dropped.name);
        let _ = write!(
            out,
            "\nALTER TABLE {target} DROP {name} USING TIMESTAMP {};",
            dropped.dropped_at_micros
        );
        if let Some(live) = table.column(&dropped.name) {
            let kind = if live.kind == ColumnKind::Static {
                " static"
            } else {
                ""
            };
            let _ = write!(
                out,
                "\nALTER TABLE {target} ADD {name} {}{kind};",
                live.ty.cql_name()
            );
        }
    }
    out
}

/// Key columns in key order, then the other columns by name.
fn ordered_columns(table: &TableDef) -> Vec<&ColumnDef> {
    let mut others: Vec<&ColumnDef> = table
        .columns
        .iter()
        .filter(|c| !c.is_primary_key())
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    table
        .partition_key()
        .chain(table.clustering_key())
        .chain(others)
        .collect()
}

/// `(a, b), c` / `a, c` / `(a, b)`: the partition key in parentheses when compound.
fn primary_key_cql(table: &TableDef) -> String {
    let names = |cols: Vec<&ColumnDef>| -> Vec<String> {
        cols.iter().map(|c| quote_ident(&c.name)).collect()
    };
    let partition = names(table.partition_key().collect());
    let partition = if partition.len() == 1 {
        partition.join("")
    } else {
        format!("({})", partition.join(", "))
    };
    let mut parts = vec![partition];
    parts.extend(names(table.clustering_key().collect()));
    parts.join(", ")
}

fn with_clauses(table: &TableDef) -> Vec<String> {
    let o = &table.options;
    let mut clauses = Vec::new();
    if table_flags(table) != ["compound"] {
        clauses.push("COMPACT STORAGE".to_string());
    }
    if table.clustering_key_len() > 0 {
        let order: Vec<String> = table
            .clustering_key()
            .map(|c| {
                let dir = if c.descending { "DESC" } else { "ASC" };
                format!("{} {dir}", quote_ident(&c.name))
            })
            .collect();
        clauses.push(format!("CLUSTERING ORDER BY ({})", order.join(", ")));
    }
    clauses.push(format!(
        "bloom_filter_fp_chance = {:?}",
        o.bloom_filter_fp_chance
    ));
    clauses.push(format!("caching = {}", map_literal(&o.caching)));
    if let Some(cdc) = &o.cdc {
        clauses.push(format!("cdc = {}", map_literal(cdc)));
    }
    clauses.push(format!("comment = {}", quote_string(&o.comment)));
    clauses.push(format!("compaction = {}", map_literal(&o.compaction)));
    clauses.push(format!("compression = {}", map_literal(&o.compression)));
    clauses.push(format!("crc_check_chance = {:?}", o.crc_check_chance));
    clauses.push("dclocal_read_repair_chance = 0.0".to_string());
    clauses.push(format!("default_time_to_live = {}", o.default_time_to_live));
    clauses.push(format!("gc_grace_seconds = {}", o.gc_grace_seconds));
    clauses.push(format!("max_index_interval = {}", o.max_index_interval));
    clauses.push(format!(
        "memtable_flush_period_in_ms = {}",
        o.memtable_flush_period_in_ms
    ));
    clauses.push(format!("min_index_interval = {}", o.min_index_interval));
    clauses.push("read_repair_chance = 0.0".to_string());
    clauses.push(format!(
        "speculative_retry = {}",
        quote_string(&o.speculative_retry)
    ));
    clauses
}
