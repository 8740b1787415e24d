//! Renders statements back to CQL (for logs, error messages and round-trip tests).
//!
//! The output re-parses to an equal AST; it is not byte-identical to the input (keywords come
//! out uppercase, names are quoted only when needed).

use std::fmt::{self, Display, Formatter, Write};

use super::ast::*;

fn names(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|n| Ident(n).to_string()).collect();
    quoted.join(", ")
}

fn joined<T: Display>(items: &[T], separator: &str) -> String {
    let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    parts.join(separator)
}

fn where_part(relations: &[Relation]) -> String {
    if relations.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", joined(relations, " AND "))
    }
}

impl Display for Using {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("TTL", &self.ttl),
            ("TIMESTAMP", &self.timestamp),
            ("TIMEOUT", &self.timeout),
        ]
        .iter()
        .filter_map(|(word, value)| value.as_ref().map(|v| format!("{word} {v}")))
        .collect();
        if parts.is_empty() {
            return Ok(());
        }
        write!(f, " USING {}", parts.join(" AND "))
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.selectable)?;
        if let Some(alias) = &self.alias {
            write!(f, " AS {}", Ident(alias))?;
        }
        Ok(())
    }
}

impl Display for Selection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Selection::Wildcard => f.write_str("*"),
            Selection::Selectors(selectors) => f.write_str(&joined(selectors, ", ")),
        }
    }
}

impl Display for SelectStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        if self.json {
            f.write_str("JSON ")?;
        }
        if self.distinct {
            f.write_str("DISTINCT ")?;
        }
        write!(f, "{} FROM {}", self.selection, self.table)?;
        f.write_str(&where_part(&self.where_clause))?;
        if !self.group_by.is_empty() {
            write!(f, " GROUP BY {}", names(&self.group_by))?;
        }
        if !self.order_by.is_empty() {
            let parts: Vec<String> = self
                .order_by
                .iter()
                .map(|(c, o)| format!("{} {o}", Ident(c)))
                .collect();
            write!(f, " ORDER BY {}", parts.join(", "))?;
        }
        if let Some(limit) = &self.per_partition_limit {
            write!(f, " PER PARTITION LIMIT {limit}")?;
        }
        if let Some(limit) = &self.limit {
            write!(f, " LIMIT {limit}")?;
        }
        if self.allow_filtering {
            f.write_str(" ALLOW FILTERING")?;
        }
        if self.bypass_cache {
            f.write_str(" BYPASS CACHE")?;
        }
        if let Some(timeout) = &self.timeout {
            write!(f, " USING TIMEOUT {timeout}")?;
        }
        Ok(())
    }
}

impl Display for InsertStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {} ", self.table)?;
        match &self.values {
            InsertValues::Columns { columns, values } => {
                write!(f, "({}) VALUES ({})", names(columns), joined(values, ", "))?
            }
            InsertValues::Json {
                json,
                default_unset,
            } => {
                write!(f, "JSON {json}")?;
                if *default_unset {
                    f.write_str(" DEFAULT UNSET")?;
                }
            }
        }
        if self.if_not_exists {
            f.write_str(" IF NOT EXISTS")?;
        }
        write!(f, "{}", self.using)
    }
}

impl Display for Assignment {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Assignment::Set { column, value } => write!(f, "{} = {value}", Ident(column)),
            Assignment::SetElement { column, key, value } => {
                write!(f, "{}[{key}] = {value}", Ident(column))
            }
            Assignment::SetField {
                column,
                field,
                value,
            } => write!(f, "{}.{} = {value}", Ident(column), Ident(field)),
            Assignment::Add { column, value } => {
                write!(f, "{0} = {0} + {value}", Ident(column))
            }
            Assignment::Prepend { column, value } => {
                write!(f, "{0} = {value} + {0}", Ident(column))
            }
            Assignment::Subtract { column, value } => {
                write!(f, "{0} = {0} - {value}", Ident(column))
            }
        }
    }
}

impl Display for ConditionTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ConditionTarget::Column(c) => write!(f, "{}", Ident(c)),
            ConditionTarget::Element { column, key } => write!(f, "{}[{key}]", Ident(column)),
            ConditionTarget::Field { column, field } => {
                write!(f, "{}.{}", Ident(column), Ident(field))
            }
        }
    }
}

impl Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.predicate {
            ConditionPredicate::Compare(op, value) => write!(f, "{} {op} {value}", self.target),
            ConditionPredicate::In(values) => write!(f, "{} IN {values}", self.target),
        }
    }
}

impl Display for IfClause {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            IfClause::Exists => f.write_str(" IF EXISTS"),
            IfClause::Conditions(conditions) => write!(f, " IF {}", joined(conditions, " AND ")),
        }
    }
}

impl Display for UpdateStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UPDATE {}{} SET {}{}",
            self.table,
            self.using,
            joined(&self.assignments, ", "),
            where_part(&self.where_clause)
        )?;
        if let Some(clause) = &self.if_clause {
            write!(f, "{clause}")?;
        }
        Ok(())
    }
}

impl Display for DeleteTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DeleteTarget::Column(c) => write!(f, "{}", Ident(c)),
            DeleteTarget::Element { column, key } => write!(f, "{}[{key}]", Ident(column)),
            DeleteTarget::Field { column, field } => {
                write!(f, "{}.{}", Ident(column), Ident(field))
            }
        }
    }
}

impl Display for DeleteStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DELETE ")?;
        if !self.targets.is_empty() {
            write!(f, "{} ", joined(&self.targets, ", "))?;
        }
        write!(
            f,
            "FROM {}{}{}",
            self.table,
            self.using,
            where_part(&self.where_clause)
        )?;
        if let Some(clause) = &self.if_clause {
            write!(f, "{clause}")?;
        }
        Ok(())
    }
}

impl Display for BatchChild {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            BatchChild::Insert(s) => write!(f, "{s}"),
            BatchChild::Update(s) => write!(f, "{s}"),
            BatchChild::Delete(s) => write!(f, "{s}"),
        }
    }
}

impl Display for BatchStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BatchKind::Logged => "",
            BatchKind::Unlogged => "UNLOGGED ",
            BatchKind::Counter => "COUNTER ",
        };
        write!(f, "BEGIN {kind}BATCH{}", self.using)?;
        for child in &self.statements {
            write!(f, " {child};")?;
        }
        f.write_str(" APPLY BATCH")
    }
}

impl Display for PropertyValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::Constant(c) => write!(f, "{c}"),
            PropertyValue::Name(n) => f.write_str(n),
            PropertyValue::Map(entries) => {
                let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
        }
    }
}

fn properties(props: &Properties) -> String {
    let parts: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("{} = {v}", Ident(k)))
        .collect();
    parts.join(" AND ")
}

impl Display for TableOptions {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.clustering_order.is_empty() {
            let order: Vec<String> = self
                .clustering_order
                .iter()
                .map(|(c, o)| format!("{} {o}", Ident(c)))
                .collect();
            parts.push(format!("CLUSTERING ORDER BY ({})", order.join(", ")));
        }
        if self.compact_storage {
            parts.push("COMPACT STORAGE".to_string());
        }
        if !self.properties.is_empty() {
            parts.push(properties(&self.properties));
        }
        if parts.is_empty() {
            return Ok(());
        }
        write!(f, " WITH {}", parts.join(" AND "))
    }
}

impl Display for PrimaryKey {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "PRIMARY KEY (({})", names(&self.partition_key))?;
        for c in &self.clustering_columns {
            write!(f, ", {}", Ident(c))?;
        }
        f.write_str(")")
    }
}

impl Display for ColumnDefinition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", Ident(&self.name), self.ty)?;
        if self.is_static {
            f.write_str(" STATIC")?;
        }
        if self.primary_key {
            f.write_str(" PRIMARY KEY")?;
        }
        Ok(())
    }
}

fn if_not_exists(flag: bool) -> &'static str {
    if flag {
        " IF NOT EXISTS"
    } else {
        ""
    }
}

fn if_exists(flag: bool) -> &'static str {
    if flag {
        " IF EXISTS"
    } else {
        ""
    }
}

fn renames(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(a, b)| format!("{} TO {}", Ident(a), Ident(b)))
        .collect();
    parts.join(" AND ")
}

impl Display for CreateTable {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.columns.iter().map(|c| c.to_string()).collect();
        if let Some(key) = &self.primary_key {
            parts.push(key.to_string());
        }
        write!(
            f,
            "CREATE TABLE{} {} ({}){}",
            if_not_exists(self.if_not_exists),
            self.name,
            parts.join(", "),
            self.options
        )
    }
}

impl Display for AlterTableOperation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AlterTableOperation::Add(columns) => write!(f, "ADD ({})", joined(columns, ", ")),
            AlterTableOperation::Drop { columns, timestamp } => {
                write!(f, "DROP ({})", names(columns))?;
                if let Some(ts) = timestamp {
                    write!(f, " USING TIMESTAMP {ts}")?;
                }
                Ok(())
            }
            AlterTableOperation::Rename(pairs) => write!(f, "RENAME {}", renames(pairs)),
            AlterTableOperation::AlterColumnType { column, ty } => {
                write!(f, "ALTER {} TYPE {ty}", Ident(column))
            }
            AlterTableOperation::With(options) => write!(f, "{}", options.to_string().trim()),
        }
    }
}

impl Display for AlterTypeOperation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AlterTypeOperation::Add { field, ty } => write!(f, "ADD {} {ty}", Ident(field)),
            AlterTypeOperation::Rename(pairs) => write!(f, "RENAME {}", renames(pairs)),
            AlterTypeOperation::AlterFieldType { field, ty } => {
                write!(f, "ALTER {} TYPE {ty}", Ident(field))
            }
        }
    }
}

impl Display for CreateIndex {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let custom = if self.custom { "CUSTOM " } else { "" };
        write!(
            f,
            "CREATE {custom}INDEX{}",
            if_not_exists(self.if_not_exists)
        )?;
        if let Some(name) = &self.name {
            write!(f, " {}", Ident(name))?;
        }
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                let column = Ident(&t.column);
                match t.kind {
                    IndexTargetKind::Simple => column.to_string(),
                    IndexTargetKind::Keys => format!("keys({column})"),
                    IndexTargetKind::Values => format!("values({column})"),
                    IndexTargetKind::Entries => format!("entries({column})"),
                    IndexTargetKind::Full => format!("full({column})"),
                }
            })
            .collect();
        write!(f, " ON {} ({})", self.table, targets.join(", "))?;
        if let Some(class) = &self.using {
            write!(f, " USING '{}'", class.replace('\'', "''"))?;
        }
        if !self.properties.is_empty() {
            write!(f, " WITH {}", properties(&self.properties))?;
        }
        Ok(())
    }
}

impl Display for CreateMaterializedView {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CREATE MATERIALIZED VIEW{} {} AS SELECT {} FROM {}{} {}{}",
            if_not_exists(self.if_not_exists),
            self.name,
            self.selection,
            self.base_table,
            where_part(&self.where_clause),
            self.primary_key,
            self.options
        )
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Use(ks) => write!(f, "USE {}", Ident(ks)),
            Statement::Select(s) => write!(f, "{s}"),
            Statement::Insert(s) => write!(f, "{s}"),
            Statement::Update(s) => write!(f, "{s}"),
            Statement::Delete(s) => write!(f, "{s}"),
            Statement::Batch(s) => write!(f, "{s}"),
            Statement::CreateKeyspace(k) => write!(
                f,
                "CREATE KEYSPACE{} {} WITH {}",
                if_not_exists(k.if_not_exists),
                Ident(&k.name),
                properties(&k.properties)
            ),
            Statement::AlterKeyspace(k) => write!(
                f,
                "ALTER KEYSPACE {} WITH {}",
                Ident(&k.name),
                properties(&k.properties)
            ),
            Statement::DropKeyspace(d) => drop(f, "KEYSPACE", d),
            Statement::CreateTable(t) => write!(f, "{t}"),
            Statement::AlterTable(a) => write!(f, "ALTER TABLE {} {}", a.name, a.operation),
            Statement::DropTable(d) => drop(f, "TABLE", d),
            Statement::Truncate(name) => write!(f, "TRUNCATE {name}"),
            Statement::CreateType(t) => {
                let fields: Vec<String> = t
                    .fields
                    .iter()
                    .map(|(n, ty)| format!("{} {ty}", Ident(n)))
                    .collect();
                write!(
                    f,
                    "CREATE TYPE{} {} ({})",
                    if_not_exists(t.if_not_exists),
                    t.name,
                    fields.join(", ")
                )
            }
            Statement::AlterType(a) => write!(f, "ALTER TYPE {} {}", a.name, a.operation),
            Statement::DropType(d) => drop(f, "TYPE", d),
            Statement::CreateIndex(i) => write!(f, "{i}"),
            Statement::DropIndex(d) => drop(f, "INDEX", d),
            Statement::CreateMaterializedView(v) => write!(f, "{v}"),
            Statement::DropMaterializedView(d) => drop(f, "MATERIALIZED VIEW", d),
            Statement::Auth(a) => {
                f.write_str(&a.verb)?;
                a.rest.iter().try_for_each(|word| write!(f, " {word}"))
            }
        }
    }
}

fn drop(f: &mut Formatter<'_>, what: &str, d: &Drop) -> fmt::Result {
    let mut out = format!("DROP {what}{} ", if_exists(d.if_exists));
    write!(out, "{}", d.name)?;
    f.write_str(&out)
}
